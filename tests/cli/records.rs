//! Records lineage cannot read, and what reads them: never shown blank or as something else,
//! refused by name where a blank would be taken for the record, and found by `doctor`; exit
//! codes kept when stdout's reader goes away; odd arguments that once made lineage panic.

use std::process::Stdio;

use crate::util::*;

/// Change one column of one run in the store, as a newer lineage, another writer or a
/// damaged file could (the schema's CHECKs do not bind them).
fn tamper(env: &Env, id: &str, column: &str, value: &str) {
    let db = env.db();
    db.execute_batch("PRAGMA ignore_check_constraints = ON")
        .expect("pragma");
    db.execute(
        &format!("UPDATE runs SET {column} = ?1 WHERE id = ?2"),
        [value, id],
    )
    .expect("update");
}

fn two_runs(env: &Env) -> (String, String) {
    env.init_repo();
    env.write("in.txt", "x\n");
    let a = env.record(&["-i", "in.txt", "-o", "a.txt", "--", "cp", "in.txt", "a.txt"]);
    let b = env.record(&["-i", "in.txt", "-o", "b.txt", "--", "cp", "in.txt", "b.txt"]);
    (a, b)
}

#[test]
fn an_unreadable_capture_is_a_note_in_show_and_refused_where_it_would_be_used() {
    let env = Env::local();
    let (a, b) = two_runs(&env);
    tamper(&env, &b, "capture", "{not json");
    let shown = env.show(Some(&b));
    let notes = shown["notes"].to_string();
    assert!(notes.contains("capture cannot be read"), "{notes}");
    assert_eq!(
        shown["outputs"][0]["path"], "b.txt",
        "the rest of the record is there"
    );
    for args in [
        vec!["diff", a.as_str(), b.as_str()],
        vec!["export", b.as_str(), "--format", "in-toto"],
        vec!["export", "b.txt", "--format", "prov-json"],
        vec!["rerun", b.as_str()],
    ] {
        let out = env.cmd(&args);
        let expected = if args[0] == "rerun" { 125 } else { 1 };
        assert_eq!(code(&out), expected, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("run {b}: the recorded capture cannot be read")),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = env.cmd(["doctor"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("1 run with a capture or resources that are not JSON")
            && stdout(&out).contains(&b),
        "{}",
        stdout(&out)
    );
}

#[test]
fn an_unknown_status_is_an_error_naming_the_run_and_doctor_finds_it() {
    let env = Env::local();
    let (_, b) = two_runs(&env);
    tamper(&env, &b, "status", "paused");
    for args in [["list", "--json"], ["show", "--json"]] {
        let out = env.cmd(args);
        assert_eq!(code(&out), 1, "{args:?}");
        assert!(
            stderr(&out).contains(&format!("run {b} has the status \"paused\"")),
            "{}",
            stderr(&out)
        );
    }
    let out = env.cmd(["doctor"]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("with an unknown status") && !stdout(&out).contains("ok:"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn doctor_never_calls_healthy_a_store_it_cannot_use() {
    let env = Env::local();
    two_runs(&env);
    env.db()
        .pragma_update(None, "user_version", 99)
        .expect("pragma");
    let out = env.cmd(["doctor"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("newer lineage") && !stdout(&out).contains("ok:"),
        "{}",
        stdout(&out)
    );
}

/// `lineage ARGS` with stdout a pipe whose reader is gone: its exit code.
fn into_closed_pipe(env: &Env, args: &[&str]) -> i32 {
    let mut cmd = env.lineage();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    drop(child.stdout.take());
    child.wait().expect("wait").code().expect("exited")
}

#[test]
fn a_closed_stdout_keeps_the_exit_code_the_outcome_means() {
    let env = Env::local();
    env.init_repo();
    let id = env.record(&["-o", "t.txt", "--", "sh", "-c", "date +%N > t.txt"]);
    assert_eq!(into_closed_pipe(&env, &["rerun", "-q", "--json", &id]), 100);
    let other = Env::local();
    other.init_repo();
    let once = [
        "-o",
        "f.txt",
        "--",
        "sh",
        "-c",
        "test ! -e f.txt && touch f.txt",
    ];
    let failing = other.record(&once);
    assert_eq!(
        into_closed_pipe(&other, &["rerun", "-q", "--json", &failing]),
        1
    );
    tamper(&env, &id, "status", "paused");
    assert_eq!(into_closed_pipe(&env, &["doctor"]), 1);
    assert_eq!(
        into_closed_pipe(&env, &["list"]),
        1,
        "the error, not the pipe"
    );
}

#[test]
fn odd_values_are_errors_not_panics() {
    let env = Env::local();
    env.init_repo();
    let out = env.cmd(["run", "--sample-interval", "1e30", "--", "touch", "never"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(!env.path("never").exists());
    assert!(
        stderr(&out).contains("--sample-interval"),
        "{}",
        stderr(&out)
    );
    // A diagnostic with nowhere to go.
    let mut cmd = env.lineage();
    cmd.env("LINEAGE_TIMINGS", "1")
        .args(["run", "--", "true"])
        .stderr(std::fs::File::create("/dev/full").expect("/dev/full"));
    assert_eq!(cmd.status().expect("run").code(), Some(0));
    // A usage error quoting what was typed shows its control characters, not their effect.
    let out = env.cmd(["\u{1b}]0;owned\u{7}"]);
    assert_eq!(code(&out), 2);
    assert!(
        !stderr(&out).contains('\u{1b}') && !stderr(&out).contains('\u{7}'),
        "{:?}",
        stderr(&out)
    );
    // A store named by a path that is a file, or not UTF-8.
    env.write("a-file", "x");
    let out = env.cmd(["--store", "a-file", "list"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("it exists and is not a directory"),
        "{}",
        stderr(&out)
    );
    use std::os::unix::ffi::OsStrExt;
    let odd = env
        .path("odd")
        .join(std::ffi::OsStr::from_bytes(b"store-\xff"));
    let mut cmd = env.lineage();
    cmd.arg("--store")
        .arg(&odd)
        .args(["run", "-q", "--", "true"]);
    let out = output_within(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(odd.join("lineage.db").exists());
}

#[test]
fn list_says_a_store_is_empty_only_when_it_is_and_colours_a_pipe_when_asked() {
    let env = Env::local();
    two_runs(&env);
    let out = env.cmd(["list", "-n", "0"]);
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out).is_empty() && !stderr(&out).contains("no runs"),
        "{}",
        stderr(&out)
    );
    let out = env.cmd(["--color", "always", "list"]);
    assert!(stdout(&out).contains('\u{1b}'), "{}", stdout(&out));
    let out = env.cmd(["--color", "never", "list"]);
    assert!(!stdout(&out).contains('\u{1b}'));
}
