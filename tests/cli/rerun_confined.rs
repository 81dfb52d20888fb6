//! `rerun --worktree` writes only inside its own private directory and says what will really
//! run (issue 15): absolute and `..` paths, links out of the checkout, crafted untracked
//! paths (edited in the local store and in a bundle), files planted where a rerun looks, and
//! the plan's argv, program and lookup variables. Each job runs with TMPDIR set to a
//! directory of the test's own, so that what a rerun leaves behind can be listed.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::util::*;

/// The test's own temporary directory, given to lineage as TMPDIR.
fn private_tmp(env: &Env) -> PathBuf {
    let tmp = env.root().join("tmp");
    std::fs::create_dir_all(&tmp).expect("mkdir tmp");
    tmp
}

/// `lineage ARGS` with TMPDIR set to `tmp`.
fn with_tmp(env: &Env, tmp: &Path, args: &[&str]) -> Output {
    let mut cmd = env.lineage();
    cmd.args(args).env("TMPDIR", tmp);
    output_within(cmd, Duration::from_secs(60))
}

/// Everything under `dir`, relative, sorted.
fn left_in(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .expect("under")
                .display()
                .to_string()
        })
        .collect();
    out.sort();
    out
}

fn no_rerun_branch_or_worktree_left(env: &Env) {
    assert_eq!(env.git(&["branch", "--list", "lineage-rerun-*"]), "");
    env.git(&["worktree", "prune"]);
    let worktrees = env.git(&["worktree", "list"]);
    assert_eq!(worktrees.lines().count(), 1, "{worktrees}");
}

#[test]
fn an_absolute_config_outside_the_repository_is_compared_never_overwritten() {
    let env = Env::new();
    env.init_repo();
    let tmp = private_tmp(&env);
    let cfg = env.root().join("outside/cfg.yaml");
    std::fs::create_dir_all(cfg.parent().expect("dir")).expect("mkdir");
    std::fs::write(&cfg, "lr: 0.1\napi_key: cfg-secret-5151\n").expect("cfg");
    let cfg_s = cfg.display().to_string();
    let id = env.record(&[
        "-c",
        &cfg_s,
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        &format!("cat '{cfg_s}' > out.txt"),
    ]);
    // The user edits their real file; a rerun must not put the recorded (redacted) bytes back.
    let edited = "lr: 0.2\napi_key: cfg-secret-5151\n";
    std::fs::write(&cfg, edited).expect("edit");
    let out = with_tmp(&env, &tmp, &["rerun", &id, "--worktree"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("config {cfg_s} differs from the record")),
        "{}",
        stderr(&out)
    );
    let out = with_tmp(&env, &tmp, &["rerun", &id, "--worktree", "--force"]);
    assert_eq!(code(&out), 100, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&cfg).expect("cfg"), edited);
    assert!(left_in(&tmp).is_empty(), "{:?}", left_in(&tmp));
    no_rerun_branch_or_worktree_left(&env);
}

#[test]
fn relative_paths_out_of_the_repository_are_read_from_the_real_files_and_nothing_is_left() {
    let env = Env::new();
    env.init_repo();
    let tmp = private_tmp(&env);
    std::fs::create_dir_all(env.root().join("shared")).expect("mkdir");
    std::fs::create_dir_all(env.root().join("data")).expect("mkdir");
    std::fs::write(
        env.root().join("shared/cfg.yaml"),
        "lr: 0.1\npassword: shared-secret-6161\n",
    )
    .expect("cfg");
    std::fs::write(env.root().join("data/x.csv"), "real,data\n").expect("data");
    let id = env.record(&[
        "-c",
        "../shared/cfg.yaml",
        "-i",
        "../data/x.csv",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cat ../shared/cfg.yaml ../data/x.csv > out.txt",
    ]);
    // Another user plants a file where a rerun in a shared temporary directory would look.
    std::fs::create_dir_all(tmp.join("data")).expect("mkdir");
    std::fs::write(tmp.join("data/x.csv"), "planted\n").expect("plant");
    let out = with_tmp(&env, &tmp, &["rerun", &id, "--worktree"]);
    assert_eq!(code(&out), 0, "the real files were read: {}", stderr(&out));
    assert!(
        stderr(&out).contains("reproduced bit for bit"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        left_in(&tmp),
        ["data", "data/x.csv"],
        "only the planted file is there"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.join("data/x.csv")).expect("x"),
        "planted\n"
    );
    assert_eq!(
        left_in(&env.root().join("shared")),
        ["cfg.yaml"],
        "nothing written beside the shared config"
    );
    assert_eq!(
        std::fs::read_to_string(env.root().join("shared/cfg.yaml")).expect("cfg"),
        "lr: 0.1\npassword: shared-secret-6161\n"
    );

    // The real input changes: refused by name, and nothing is left either.
    std::fs::write(env.root().join("data/x.csv"), "changed\n").expect("data");
    let out = with_tmp(&env, &tmp, &["rerun", &id, "--worktree"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("input ../data/x.csv differs from the record"),
        "{}",
        stderr(&out)
    );
    assert_eq!(left_in(&tmp), ["data", "data/x.csv"]);
    no_rerun_branch_or_worktree_left(&env);
}

#[test]
fn a_config_reached_through_a_committed_link_out_of_the_repository_is_never_written() {
    let env = Env::new();
    env.init_repo();
    let tmp = private_tmp(&env);
    let conf = env.root().join("team-conf");
    std::fs::create_dir_all(&conf).expect("mkdir");
    std::fs::write(conf.join("cfg.yaml"), "lr: 0.1\n").expect("cfg");
    std::os::unix::fs::symlink(&conf, env.path("conf")).expect("link");
    env.git(&["add", "conf"]);
    env.git(&["commit", "-q", "-m", "conf"]);
    let id = env.record(&[
        "-c",
        "conf/cfg.yaml",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cat conf/cfg.yaml > out.txt",
    ]);
    let out = with_tmp(&env, &tmp, &["rerun", &id, "--worktree"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The team's file changes: the rerun is refused; it never puts the recorded bytes back.
    std::fs::write(conf.join("cfg.yaml"), "lr: 0.5\n").expect("edit");
    let out = with_tmp(&env, &tmp, &["rerun", &id, "--worktree"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("config conf/cfg.yaml differs from the record"),
        "{}",
        stderr(&out)
    );
    let out = with_tmp(&env, &tmp, &["rerun", &id, "--worktree", "--force"]);
    assert_eq!(code(&out), 100, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("reached through a link leading out of the worktree"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(conf.join("cfg.yaml")).expect("cfg"),
        "lr: 0.5\n"
    );
    assert!(left_in(&tmp).is_empty(), "{:?}", left_in(&tmp));
    no_rerun_branch_or_worktree_left(&env);
}

/// A run recorded from a dirty tree: `helper.sh` untracked. Returns its id.
fn record_with_an_untracked_file(env: &Env) -> String {
    env.init_repo();
    env.write("helper.sh", "echo from-helper\n");
    env.record(&["-o", "out.txt", "--", "sh", "-c", "sh helper.sh > out.txt"])
}

/// Point the recorded untracked file of run `id` at `path`, in the store at `db`.
fn craft_untracked(db: &Path, id: &str, path: &str) {
    let conn = rusqlite::Connection::open(db).expect("open");
    let n = conn
        .execute(
            "UPDATE runs SET capture = json_set(capture, '$.git.untracked[0].path', ?1) \
             WHERE id = ?2",
            rusqlite::params![path, id],
        )
        .expect("edit the row");
    assert_eq!(n, 1);
}

#[test]
fn a_record_naming_untracked_files_outside_the_repository_is_refused_and_nothing_is_written() {
    let env = Env::new();
    let tmp = private_tmp(&env);
    let id = record_with_an_untracked_file(&env);
    let absolute = env.root().join("pwned-absolute");
    // From the worktree (TMPDIR/lineage-rerun-*/work), three levels up is the test's root.
    let climbing = env.root().join("pwned-climbing");
    for crafted in [
        absolute.display().to_string(),
        "../../../pwned-climbing".to_string(),
        // A `.git` file restored would make the worktree another repository's.
        ".git".to_string(),
    ] {
        craft_untracked(&env.store.join("lineage.db"), &id, &crafted);
        let out = with_tmp(&env, &tmp, &["rerun", &id, "--worktree", "--force"]);
        assert_ne!(code(&out), 0, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("not a path inside the repository"),
            "{}",
            stderr(&out)
        );
        assert!(
            !absolute.exists() && !climbing.exists(),
            "{crafted} written"
        );
        assert!(left_in(&tmp).is_empty(), "{:?}", left_in(&tmp));
        no_rerun_branch_or_worktree_left(&env);
    }
}

#[test]
fn a_crafted_bundle_naming_untracked_files_outside_the_repository_writes_nothing() {
    let env = Env::new();
    let tmp = private_tmp(&env);
    let id = record_with_an_untracked_file(&env);
    let bundle = env.root().join("crafted.lineage");
    let out = env.cmd(["bundle", "export", "-o", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let target = env.root().join("pwned-from-bundle");
    craft_untracked(&bundle, &id, &target.display().to_string());
    let other = env.root().join("other-store");
    let mut cmd = env.lineage();
    cmd.arg("--store")
        .arg(&other)
        .args(["bundle", "import", &bundle.display().to_string()]);
    let imported = output_within(cmd, Duration::from_secs(60));
    // Import may refuse the bundle (it validates paths); if it takes it, the rerun must not
    // write where the bundle says.
    if code(&imported) == 0 {
        let mut cmd = env.lineage();
        cmd.arg("--store")
            .arg(&other)
            .args(["rerun", &id, "--worktree", "--force"])
            .env("TMPDIR", &tmp);
        let out = output_within(cmd, Duration::from_secs(60));
        assert_ne!(code(&out), 0, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("not a path inside the repository"),
            "{}",
            stderr(&out)
        );
    }
    assert!(!target.exists(), "the bundle's path was written");
    assert!(left_in(&tmp).is_empty(), "{:?}", left_in(&tmp));
    no_rerun_branch_or_worktree_left(&env);
}

#[test]
fn restored_configs_are_user_only_and_stay_inside_the_kept_worktree() {
    let env = Env::new();
    env.init_repo();
    let tmp = private_tmp(&env);
    env.write("cfg/train.yaml", "lr: 0.1\n");
    let id = env.record(&[
        "-c",
        "cfg/train.yaml",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cat cfg/train.yaml > out.txt",
    ]);
    let out = with_tmp(
        &env,
        &tmp,
        &["rerun", &id, "--worktree", "--keep-worktree", "--json"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let kept = PathBuf::from(verdict["worktree"].as_str().expect("kept"));
    assert!(kept.starts_with(&tmp), "{}", kept.display());
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&kept.join("cfg/train.yaml")), 0o600);
    let private = kept.parent().expect("the private directory");
    assert_eq!(mode(private), 0o700);
    std::fs::remove_dir_all(private).expect("cleanup");
    env.git(&["worktree", "prune"]);
}

#[test]
fn the_plan_shows_the_exact_argv_the_program_found_and_the_lookup_variables_that_differ() {
    let env = Env::new();
    env.init_repo();
    let bin = env.root().join("evil-bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let tool = bin.join("mytool");
    std::fs::write(&tool, "#!/bin/sh\necho tool > out.txt\n").expect("tool");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let mut cmd = env.lineage();
    cmd.args([
        "run",
        "-q",
        "-o",
        "out.txt",
        "--",
        "mytool",
        "\x1b]0;owned\x07\x1b[2J",
        "two\nlines",
        "rtl\u{202e}txt",
    ])
    .env("PATH", &path)
    .env("PYTHONPATH", "/recorded/site")
    .env_remove("LD_PRELOAD");
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = env.show(None)["id"].as_str().expect("id").to_string();

    let mut cmd = env.lineage();
    cmd.args(["rerun", &id, "--dry-run"])
        .env("PATH", "/usr/bin:/bin")
        .env_remove("PYTHONPATH");
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(
        plan.contains(r"`mytool $'\x1b]0;owned\x07\x1b[2J' $'two\nlines' $'rtl\xe2\x80\xaetxt'`"),
        "{plan}"
    );
    assert!(
        plan.contains(&format!(
            "  program: {} (mytool, found on the job's PATH)\n",
            tool.display()
        )),
        "{plan}"
    );
    assert!(
        plan.contains(&format!(
            "  env: PATH for the job is {path} (now /usr/bin:/bin)\n"
        )),
        "{plan}"
    );
    assert!(
        plan.contains("  env: PYTHONPATH for the job is /recorded/site (not set now)\n"),
        "{plan}"
    );
    assert!(
        !plan.bytes().any(|b| b < 0x20 && b != b'\n') && !plan.contains('\u{202e}'),
        "{plan:?}"
    );
    assert_eq!(plan.lines().filter(|l| l.starts_with("plan:")).count(), 1);
}

#[test]
fn a_stored_config_that_is_not_its_recorded_bytes_is_refused_and_the_worktree_removed() {
    let env = Env::new();
    env.init_repo();
    let tmp = private_tmp(&env);
    env.write("cfg.yaml", "lr: 0.1\n");
    env.git(&["add", "cfg.yaml"]);
    env.git(&["commit", "-q", "-m", "cfg"]);
    let id = env.record(&[
        "-c",
        "cfg.yaml",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cat cfg.yaml > out.txt",
    ]);
    // Other bytes under the config's hash (a poisoned blob): never restored.
    let n = env
        .db()
        .execute(
            "UPDATE blobs SET data = ?1 WHERE hash = ?2",
            rusqlite::params![
                b"lr: 9.9\n".to_vec(),
                blake3_hex(b"lr: 0.1\n").trim_start_matches("blake3:")
            ],
        )
        .expect("poison");
    assert_eq!(n, 1);
    // The record no longer verifies: refused before anything is made.
    let out = with_tmp(&env, &tmp, &["rerun", &id, "--worktree"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("changed after it was signed"),
        "{}",
        stderr(&out)
    );
    assert!(left_in(&tmp).is_empty(), "{:?}", left_in(&tmp));
    // Forced past that, the worktree still never restores the poisoned bytes.
    let out = with_tmp(&env, &tmp, &["rerun", &id, "--worktree", "--force"]);
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("config cfg.yaml do not have its recorded hash"),
        "{}",
        stderr(&out)
    );
    assert!(left_in(&tmp).is_empty(), "{:?}", left_in(&tmp));
    no_rerun_branch_or_worktree_left(&env);
}

/// An untracked symbolic link is recorded as git records it, by the path it holds: one
/// pointing out of the repository never has its target's bytes kept (they need not look like
/// a secret), the code hash follows the link and not its target, and `--worktree` restores
/// the link that stays inside and says it does not restore the other.
#[test]
fn untracked_links_are_recorded_by_the_path_they_hold_never_followed() {
    let env = Env::new();
    env.init_repo();
    let tmp = private_tmp(&env);
    let outside = tempfile::tempdir().expect("a directory outside the repository");
    let private = outside.path().join("notes.txt");
    std::fs::write(&private, "plain words, private-7713 unseen\n").expect("private file");
    env.write("models/v2.txt", "weights v2\n");
    std::os::unix::fs::symlink(&private, env.path("notes")).expect("link out");
    std::os::unix::fs::symlink("models/v2.txt", env.path("latest")).expect("link in");
    let run =
        |out: &str| env.record(&["-o", out, "--", "sh", "-c", &format!("cat latest > {out}")]);
    let id = run("out.txt");
    for (path, bytes) in env.store_files() {
        assert!(
            !contains(&bytes, b"private-7713"),
            "{} holds the link's target",
            path.display()
        );
    }
    let rec = env.show(Some(&id));
    let untracked = rec["git"]["untracked"].as_array().expect("untracked");
    let entry = |p: &str| {
        untracked
            .iter()
            .find(|u| u["path"] == p)
            .unwrap_or_else(|| panic!("{p} not recorded: {untracked:?}"))
    };
    let target = private.display().to_string();
    assert_eq!(entry("notes")["link"], true);
    assert_eq!(entry("notes")["size"], target.len());
    assert_eq!(
        entry("notes")["hash"].as_str(),
        Some(blake3_hex(target.as_bytes()).as_str())
    );
    assert_eq!(entry("latest")["link"], true);
    assert!(
        entry("models/v2.txt").get("link").is_none(),
        "{untracked:?}"
    );

    // A link on the way to declared data (`data -> /mnt/datasets`, read as `-i
    // data/a.csv`) is how the data is reached: not code.
    std::fs::write(outside.path().join("a.csv"), "x,y\n").expect("data");
    std::os::unix::fs::symlink(outside.path(), env.path("data")).expect("data link");
    let through = env.record(&["-i", "data/a.csv", "--", "cat", "data/a.csv"]);
    let listed = env.show(Some(&through))["git"]["untracked"].clone();
    assert!(
        listed
            .as_array()
            .expect("untracked")
            .iter()
            .all(|u| u["path"] != "data"),
        "{listed}"
    );
    std::fs::remove_file(env.path("data")).expect("unlink data");

    // The target's bytes are not code: changing them leaves the code hash as it was.
    std::fs::write(&private, "other words\n").expect("rewrite");
    let same = run("out2.txt");
    assert_eq!(env.show(Some(&same))["code_hash"], rec["code_hash"]);
    // Where the link points is.
    std::fs::remove_file(env.path("notes")).expect("unlink");
    std::os::unix::fs::symlink("../elsewhere", env.path("notes")).expect("relink");
    let moved = run("out3.txt");
    assert_ne!(env.show(Some(&moved))["code_hash"], rec["code_hash"]);

    let out = with_tmp(
        &env,
        &tmp,
        &[
            "rerun",
            &id,
            "--worktree",
            "--keep-worktree",
            "--force",
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "untracked link notes leads out of the worktree (to {target}): not restored"
        )),
        "{}",
        stderr(&out)
    );
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let kept = PathBuf::from(verdict["worktree"].as_str().expect("kept"));
    assert_eq!(
        std::fs::read_link(kept.join("latest")).expect("latest restored as a link"),
        Path::new("models/v2.txt")
    );
    assert!(std::fs::symlink_metadata(kept.join("notes")).is_err());
    assert_eq!(
        std::fs::read_to_string(kept.join("out.txt")).expect("rerun's output"),
        "weights v2\n"
    );
    std::fs::remove_dir_all(kept.parent().expect("the private directory")).expect("cleanup");
    env.git(&["worktree", "prune"]);
}
