//! Settings files: `lineage.toml` at the repository root and the user's
//! `$XDG_CONFIG_HOME/lineage/config.toml`, their precedence against the environment and the
//! flags, and what a mistake in one does.

use std::path::Path;

use crate::util::*;

fn user_config(env: &Env, text: &str) {
    let dir = env.home.join(".config/lineage");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("config.toml"), text).expect("write");
}

#[test]
fn a_repository_file_adds_redaction_rules_and_turns_python_capture_off() {
    let env = Env::new();
    env.init_repo();
    let token = "corp-0123456789abcdef0123456789abcdef";
    env.write(
        "lineage.toml",
        "[env]\ndeny = [\"CORP_*\"]\n[redact]\nvalues = ['corp-[0-9a-f]{32}']\n[capture]\npython = false\n",
    );
    std::fs::create_dir_all(env.path("sub")).expect("mkdir");
    let mut cmd = env.lineage();
    cmd.current_dir(env.path("sub"))
        .env("CORP_ID", "plain-looking")
        .env("HARMLESS_NAME", token)
        .args(["run", "-q", "--", "python3", "-c", "import sys", token]);
    let out = output_within(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = env.show(None);
    assert_eq!(
        run["env"]["CORP_ID"], "[REDACTED]",
        "deny glob from the file"
    );
    assert_eq!(
        run["env"]["HARMLESS_NAME"], "[REDACTED]",
        "value pattern from the file"
    );
    assert_eq!(run["command"][3], "[REDACTED]", "argv too");
    assert!(
        run["software"]["python"].is_null(),
        "capture.python = false"
    );
    for (path, bytes) in env.store_files() {
        assert!(
            !contains(&bytes, token.as_bytes()),
            "{} holds the secret",
            path.display()
        );
    }
    // Without the file, the same job records Python and keeps the value.
    std::fs::remove_file(env.path("lineage.toml")).expect("rm");
    let mut cmd = env.lineage();
    cmd.env("HARMLESS_NAME", "not-a-secret-now").args([
        "run",
        "-q",
        "--",
        "python3",
        "-c",
        "import sys",
    ]);
    assert_eq!(
        code(&output_within(cmd, std::time::Duration::from_secs(60))),
        0
    );
    let run = env.show(None);
    assert_eq!(run["env"]["HARMLESS_NAME"], "not-a-secret-now");
    assert!(
        run["software"]["python"]["version"].is_string(),
        "{}",
        run["software"]
    );
}

fn db_in(dir: &Path) -> bool {
    dir.join("lineage.db").exists()
}

#[test]
fn the_store_comes_from_flag_then_environment_then_repository_then_user_file() {
    let env = Env::new();
    env.init_repo();
    let root = env.work.parent().expect("root").to_path_buf();
    user_config(
        &env,
        &format!("store = \"{}\"\n", root.join("user-store").display()),
    );
    let run = |extra: &[&str], lineage_store: Option<&Path>| {
        let mut cmd = env.lineage();
        cmd.env_remove("LINEAGE_STORE");
        if let Some(s) = lineage_store {
            cmd.env("LINEAGE_STORE", s);
        }
        cmd.arg("run").args(extra).args(["-q", "--", "true"]);
        let out = output_within(cmd, std::time::Duration::from_secs(60));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    };
    run(&[], None);
    assert!(db_in(&root.join("user-store")), "the user's file");
    env.write(
        "lineage.toml",
        "store = \"team-store\"  # relative to this file\n",
    );
    run(&[], None);
    assert!(
        db_in(&env.path("team-store")),
        "the repository's file beats the user's"
    );
    run(&[], Some(&root.join("env-store")));
    assert!(
        db_in(&root.join("env-store")),
        "LINEAGE_STORE beats the files"
    );
    let flag = root.join("flag-store");
    run(
        &["--store", &flag.display().to_string()],
        Some(&root.join("env-store")),
    );
    assert!(db_in(&flag), "--store beats everything");
}

#[test]
fn a_user_file_allow_list_adds_to_the_flags() {
    let env = Env::new();
    env.init_repo();
    user_config(&env, "[env]\nallow = [\"MY_TOKEN_COUNT\"]\n");
    let mut cmd = env.lineage();
    cmd.env("MY_TOKEN_COUNT", "3")
        .env("MY_AUTH_MODE", "basic")
        .args(["run", "-q", "--env-allow", "MY_AUTH_MODE", "--", "true"]);
    assert_eq!(
        code(&output_within(cmd, std::time::Duration::from_secs(60))),
        0
    );
    let run = env.show(None);
    assert_eq!(run["env"]["MY_TOKEN_COUNT"], "3", "allowed by the file");
    assert_eq!(run["env"]["MY_AUTH_MODE"], "basic", "allowed by the flag");
}

#[test]
fn a_broken_settings_file_stops_before_launch_with_one_line() {
    let env = Env::new();
    env.init_repo();
    env.write("lineage.toml", "[env]\nallow = [\"X\"]\ndenied = [\"Y\"]\n");
    let out = env.cmd(["run", "--", "touch", "ran"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&env.path("lineage.toml").display().to_string())
            && err.contains("line 3")
            && err.contains("denied"),
        "{err}"
    );
    assert!(!env.path("ran").exists(), "the job must not start");
    assert_eq!(code(&env.cmd(["list"])), 1);
    // Commands that read no settings still work.
    assert_eq!(code(&env.cmd(["man", "run"])), 0);
    env.write("lineage.toml", "[redact]\nvalues = [\"(unclosed\"]\n");
    let out = env.cmd(["run", "--", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("not a valid regex"),
        "{}",
        stderr(&out)
    );
}
