//! `lineage show RUN --packages | --patch | --env | --untracked FILE` (issue 18, item 8): what
//! the store keeps of a run, printed as stored (redacted as stored), raw into a pipe and inert
//! on a terminal; a one-line error, exit 1, when the run recorded none.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

const SECRET: &str = "sk-proj-abcdefghijklmnopqrstuvwx5151";

/// `lineage show ARGS`, its stdout as bytes; panics unless it exits 0.
fn kept(env: &Env, args: &[&str]) -> Vec<u8> {
    let mut full = vec!["show"];
    full.extend_from_slice(args);
    let out = env.cmd(&full);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    out.stdout
}

/// `lineage show ARGS` that must fail with exit 1 and a one-line error; returns it.
fn refused(env: &Env, args: &[&str]) -> String {
    let mut full = vec!["show"];
    full.extend_from_slice(args);
    let out = env.cmd(&full);
    assert_eq!(code(&out), 1, "{args:?}: {}", stderr(&out));
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("lineage: hint: "))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("lineage: error: "), "{err}");
    err
}

#[test]
fn patch_prints_the_uncommitted_changes_as_stored() {
    let env = Env::new();
    env.init_repo();
    env.write("train.py", "echo training\necho with a change\n");
    let id = env.record(&["--", "sh", "train.py"]);
    let patch = kept(&env, &["--patch", &id]);
    let text = String::from_utf8(patch.clone()).expect("utf-8");
    assert!(
        text.starts_with("diff --git a/train.py b/train.py\n"),
        "{text}"
    );
    assert!(text.contains("\n+echo with a change\n"), "{text}");
    // The bytes recorded: they apply to the commit (as `rerun --worktree` does).
    env.git(&["stash", "-q"]);
    env.write("changes.patch", &patch);
    env.git(&["apply", "changes.patch"]);
    assert_eq!(
        std::fs::read_to_string(env.path("train.py")).expect("read"),
        "echo training\necho with a change\n"
    );
    // The latest run when no run is named.
    assert_eq!(kept(&env, &["--patch"]), patch);

    // A patch holding a secret is kept, and shown, redacted.
    env.write("train.py", format!("echo training\nKEY={SECRET}\n"));
    let id = env.record(&["--", "sh", "train.py"]);
    let text = String::from_utf8(kept(&env, &["--patch", &id])).expect("utf-8");
    assert!(text.contains("+KEY=[REDACTED]"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}

#[test]
fn what_a_run_did_not_record_is_one_error_naming_it() {
    let env = Env::new();
    // Outside a repository: no git state.
    let id = env.record(&["--", "true"]);
    let short = &env.show(Some(&id))["short_id"]
        .as_str()
        .expect("short")
        .to_string();
    let err = refused(&env, &["--patch", &id]);
    assert!(
        err.contains(&format!(
            "run {short} recorded no uncommitted changes or untracked files: not in a git \
             repository"
        )),
        "{err}"
    );
    let err = refused(&env, &["--untracked", "a.txt", &id]);
    assert!(err.contains("not in a git repository"), "{err}");
    let err = refused(&env, &["--packages", &id]);
    assert!(
        err.contains(&format!("run {short} recorded no Python packages")),
        "{err}"
    );

    // A clean tree: no patch; an untracked file not recorded: the ones that were.
    env.init_repo();
    env.write("notes.txt", "n\n");
    let id = env.record(&["--", "sh", "train.py"]);
    let short = env.show(Some(&id))["short_id"]
        .as_str()
        .expect("short")
        .to_string();
    let err = refused(&env, &["--patch", &id]);
    assert!(
        err.contains(&format!("run {short} recorded no uncommitted changes")),
        "{err}"
    );
    assert!(err.contains("--untracked FILE"), "{err}");
    let err = refused(&env, &["--untracked", "other.txt", &id]);
    assert!(
        err.contains("recorded no untracked file other.txt (it recorded notes.txt;"),
        "{err}"
    );
}

#[test]
fn untracked_prints_a_recorded_file_by_its_path_raw_into_a_pipe() {
    let env = Env::new();
    env.init_repo();
    let hostile = b"line one\n\x1b]0;owned\x07\x1b[2J\tnot utf-8 \xff\n";
    env.write("notes.txt", hostile);
    env.write("sub/helper.sh", format!("TOKEN={SECRET}\n"));
    let id = env.record(&["--", "sh", "train.py"]);
    // Into a pipe or a file: the bytes as stored, untouched.
    assert_eq!(kept(&env, &["--untracked", "notes.txt", &id]), hostile);
    assert_eq!(kept(&env, &["--untracked", "./notes.txt", &id]), hostile);
    let abs = env.path("notes.txt");
    assert_eq!(
        kept(&env, &["--untracked", abs.to_str().expect("utf-8"), &id]),
        hostile
    );
    // A file that held a secret: its redacted copy.
    let text =
        String::from_utf8(kept(&env, &["--untracked", "sub/helper.sh", &id])).expect("utf-8");
    assert_eq!(text, "TOKEN=[REDACTED]\n");

    // Over the size cap: recorded by its hash only, said so.
    let big = vec![b'x'; 2 * 1024 * 1024];
    env.write("big.bin", &big);
    let id = env.record(&["--", "sh", "train.py"]);
    let err = refused(&env, &["--untracked", "big.bin", &id]);
    assert!(err.contains("by its hash only"), "{err}");
}

#[test]
fn on_a_terminal_contents_are_printed_inert() {
    let env = Env::new();
    env.init_repo();
    env.write("notes.txt", b"one\n\x1b]0;owned\x07two\tthree\n");
    let id = env.record(&["--", "sh", "train.py"]);
    // `script` gives lineage a terminal for stdout.
    let lineage = env.lineage();
    let typescript = env.root().join("typescript");
    let mut cmd = Command::new("script");
    cmd.arg("-q")
        .arg("-e")
        .arg("-c")
        .arg(format!(
            "{} show --untracked notes.txt {id}",
            env!("CARGO_BIN_EXE_lineage")
        ))
        .arg(&typescript)
        .stdin(Stdio::null());
    for (k, v) in lineage.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    if let Some(dir) = lineage.get_current_dir() {
        cmd.current_dir(dir);
    }
    if Command::new("script").arg("--version").output().is_err() {
        return; // no `script` here: the escaping is unit-tested (show.rs)
    }
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    assert_eq!(shown, "one\n\\x1b]0;owned\\x07two\tthree\n");
}

#[test]
fn env_prints_the_recorded_environment_redacted_as_stored() {
    let env = Env::new();
    let mut cmd = env.lineage();
    cmd.args(["run", "-q", "--", "true"])
        .env("MY_SETTING", "plain value")
        .env("HF_TOKEN", "hf_abcdefghijklmnopqrstuvwxyz0123456789");
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8(kept(&env, &["--env"])).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"MY_SETTING=plain value"), "{text}");
    assert!(lines.contains(&"HF_TOKEN=[REDACTED]"), "{text}");
    assert!(
        !text.contains("abcdefghijklmnopqrstuvwxyz0123456789"),
        "{text}"
    );
    assert!(!text.contains("LINEAGE_"), "{text}");
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted, "one variable a line, by name");
    // The same as show --json's env.
    let run = env.show(None);
    let recorded = run["env"].as_object().expect("env");
    assert_eq!(lines.len(), recorded.len());
}

#[test]
fn packages_prints_the_python_package_list_as_stored() {
    // Local: a blob is deleted from the store below.
    let env = Env::local();
    // A virtual environment whose `python3` is a shell, so no real Python is needed.
    env.write("venv/pyvenv.cfg", "home = /usr/bin\nversion = 3.12.7\n");
    for dist in ["torch-2.5.1.dist-info", "numpy-2.1.0.dist-info"] {
        std::fs::create_dir_all(env.path(&format!("venv/lib/python3.12/site-packages/{dist}")))
            .expect("mkdir");
    }
    std::fs::create_dir_all(env.path("venv/bin")).expect("mkdir");
    std::os::unix::fs::symlink("/bin/sh", env.path("venv/bin/python3")).expect("symlink");
    let id = env.record(&["--", "venv/bin/python3", "-c", "exit 0"]);
    assert_eq!(
        kept(&env, &["--packages", &id]),
        b"numpy==2.1.0\ntorch==2.5.1\n"
    );

    // A blob gone from the store is named, not printed as nothing.
    let blob = env.show(Some(&id))["software"]["python"]["packages"]
        .as_str()
        .expect("blob")
        .trim_start_matches("blake3:")
        .to_string();
    env.db()
        .execute("DELETE FROM blobs WHERE hash = ?1", [&blob])
        .expect("delete");
    let err = refused(&env, &["--packages", &id]);
    assert!(err.contains("package list (blake3:"), "{err}");
    assert!(err.contains("is not in this store"), "{err}");
}

#[test]
fn the_options_want_a_run_and_one_another_alone() {
    let env = Env::new();
    env.init_repo();
    env.record(&["--", "true"]);
    for args in [
        &["show", "--patch", "--env"][..],
        &["show", "--patch", "--json"],
        &["show", "--env", "--format", "dot"],
        &["show", "--packages", "--descendants"],
        &["show", "--untracked", "a", "--depth", "2"],
        &["show", "--patch", "--path", "train.py"],
    ] {
        let out = env.cmd(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
    // A TARGET is a run id with these options, even where a file of that name exists.
    let err = refused(&env, &["--patch", "train.py"]);
    assert!(err.contains("no run matches \"train.py\""), "{err}");
}
