//! The `lineage run` process contract: exit codes, stdio, signals, the two-phase record.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

#[test]
fn run_propagates_child_exit_codes() {
    let env = Env::new();
    for (want, status) in [(0, "succeeded"), (1, "failed"), (3, "failed")] {
        let script = format!("exit {want}");
        let out = env.cmd(["run", "--", "sh", "-c", &script]);
        assert_eq!(code(&out), want, "{}", stderr(&out));
        let run = env.show(None);
        assert_eq!(run["exit_code"], want);
        assert_eq!(run["status"], status);
        assert!(run["ended_at"].is_string());
    }
}

#[test]
fn run_reports_death_by_signal_as_128_plus_n() {
    let env = Env::new();
    let out = env.cmd(["run", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(code(&out), 128 + 15);
    let run = env.show(None);
    assert_eq!(run["signal"], 15);
    assert_eq!(run["exit_code"], serde_json::Value::Null);
    assert_eq!(run["status"], "interrupted");

    let out = env.cmd(["run", "--", "sh", "-c", "kill -SEGV $$"]);
    assert_eq!(code(&out), 128 + 11);
    let run = env.show(None);
    assert_eq!(run["signal"], 11);
    assert_eq!(run["status"], "failed");
}

#[test]
fn run_exits_125_for_a_missing_input_and_runs_nothing() {
    let env = Env::new();
    let marker = env.path("ran");
    let out = env.cmd([
        OsStr::new("run"),
        OsStr::new("-i"),
        OsStr::new("data/nope.csv"),
        OsStr::new("--"),
        OsStr::new("touch"),
        marker.as_os_str(),
    ]);
    assert_eq!(code(&out), 125);
    let err = stderr(&out);
    assert!(err.contains("data/nope.csv"), "{err}");
    assert_eq!(
        err.lines().next().map(|l| l.starts_with("lineage: error:")),
        Some(true)
    );
    assert!(!marker.exists(), "the command ran");
    // Nothing was recorded.
    let out = env.cmd(["list", "--json"]);
    assert_eq!(stdout(&out).trim(), "[]");
}

/// A checkpoint the job resumes from and writes (`-i ckpt -o ckpt`) does not exist on the
/// first run: that run starts without it (said, and in the record) instead of refusing; the
/// next run reads it, and `show` follows the chain. An input that is no output must still
/// exist.
#[test]
fn a_first_run_starts_without_an_input_it_also_writes() {
    let env = Env::new();
    let job = "mkdir -p ckpt; cat ckpt/w 2>/dev/null; echo step >> ckpt/w";
    let out = env.cmd(["run", "-i", "ckpt", "-o", "ckpt", "--", "sh", "-c", job]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("note: input ckpt does not exist yet"),
        "{}",
        stderr(&out)
    );
    let first = env.show(None);
    assert_eq!(first["inputs"].as_array().map(Vec::len), Some(0), "{first}");
    assert!(first.to_string().contains("does not exist yet"), "{first}");
    let out = env.cmd([
        "run", "-q", "-i", "ckpt", "-o", "ckpt", "--", "sh", "-c", job,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let second = env.show(None);
    let input = artifact(&second, "inputs", "ckpt");
    assert_eq!(input["file_count"], 1, "{second}");
    // The second run's input is the first run's output, by its bytes.
    let out = env.cmd(["show", "ckpt", "--json"]);
    let tree: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let runs = tree["runs"].as_array().map_or(0, Vec::len);
    assert_eq!(runs, 2, "{tree}");
    let out = env.cmd(["run", "-i", "absent", "-o", "ckpt", "--", "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
}

#[test]
fn run_exits_126_and_127_like_env() {
    let env = Env::new();
    let out = env.cmd(["run", "--", "no-such-command-xyz"]);
    assert_eq!(code(&out), 127);
    assert!(
        stderr(&out).contains("not found: no-such-command-xyz"),
        "{}",
        stderr(&out)
    );

    env.write("script.sh", "#!/bin/sh\necho hi\n");
    let out = env.cmd(["run", "--", "./script.sh"]);
    assert_eq!(code(&out), 126);
    assert!(
        stderr(&out).contains("not executable: ./script.sh"),
        "{}",
        stderr(&out)
    );

    let out = env.cmd(["run", "--", "/"]);
    assert_eq!(code(&out), 126);
}

/// lineage starts a program found on PATH from where it found it (one exec, not one per
/// PATH entry): the job still sees the name it was given as argv[0], a PATH script without
/// `#!` still runs with /bin/sh, and the PATH searched is the job's own.
#[test]
fn a_program_found_on_path_keeps_its_name_and_the_shells_fallback() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let out = env.cmd(["run", "-q", "--", "sh", "-c", "echo \"$0\""]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "sh\n");

    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let script = env.write("bin/no-shebang", "echo ran by \"$0\"\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("elsewhere");
    let path = format!(
        "{}:{}:{}",
        elsewhere.display(),
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = env.lineage();
    cmd.env("PATH", &path)
        .args(["run", "-q", "--", "no-shebang"]);
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("ran by {}\n", script.display()));
}

#[test]
fn run_without_double_dash_is_a_usage_error() {
    let env = Env::new();
    let out = env.cmd(["run", "-i", "x"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn child_stdout_is_byte_identical_and_stdin_passes_through() {
    let env = Env::new();
    // Binary bytes, no trailing newline, and enough volume to fill pipes.
    let script = r#"printf 'a\000b\377c'; head -c 300000 /dev/zero | tr '\0' 'x'; cat"#;
    let direct = {
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"from stdin")
            .expect("write");
        child.wait_with_output().expect("wait").stdout
    };
    let mut cmd = env.lineage();
    cmd.args(["run", "--", "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("lineage");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"from stdin")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout.len(), direct.len());
    assert!(out.stdout == direct, "stdout differs");
    // lineage's own lines go to stderr only.
    assert!(stderr(&out).contains("lineage: run"));
}

#[test]
fn quiet_silences_the_start_and_summary_lines() {
    let env = Env::new();
    let out = env.cmd(["run", "-q", "--", "true"]);
    assert_eq!(code(&out), 0);
    assert_eq!(stderr(&out), "");
}

#[test]
fn the_child_sees_its_run_id() {
    let env = Env::new();
    let out = env.cmd([
        "run",
        "-q",
        "--",
        "sh",
        "-c",
        "printf %s \"$LINEAGE_RUN_ID\"",
    ]);
    assert_eq!(code(&out), 0);
    let run = env.show(None);
    assert_eq!(stdout(&out), run["id"].as_str().expect("id"));
}

#[test]
fn non_utf8_arguments_are_preserved_exactly() {
    let env = Env::new();
    let arg = OsStr::from_bytes(b"caf\xe9-\xff");
    let out = env.cmd([
        OsStr::new("run"),
        OsStr::new("-q"),
        OsStr::new("--"),
        OsStr::new("sh"),
        OsStr::new("-c"),
        OsStr::new("printf %s \"$1\""),
        OsStr::new("sh"),
        arg,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, arg.as_bytes());
    let raw: Vec<u8> = env
        .db()
        .query_row("SELECT argv FROM runs", [], |r| r.get(0))
        .expect("argv");
    let last = raw.split(|b| *b == 0).next_back().expect("args");
    assert_eq!(last, arg.as_bytes());
    // JSON shows it lossily but keeps the argument count.
    assert_eq!(
        env.show(None)["command"].as_array().expect("array").len(),
        5
    );
}

fn start_and_wait_until_ready(env: &Env, script: &str) -> std::process::Child {
    let mut cmd = env.lineage();
    cmd.args(["run", "--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("lineage");
    wait_for(&env.path("ready"));
    child
}

#[test]
fn termination_signals_sent_to_lineage_reach_the_child_and_are_recorded() {
    for (signal, name) in [(15, "TERM"), (2, "INT"), (1, "HUP")] {
        let env = Env::new();
        let script = format!(
            "trap 'echo got-{name}; exit 7' {name}; touch ready; while :; do sleep 0.05; done"
        );
        let child = start_and_wait_until_ready(&env, &script);
        let status = Command::new("kill")
            .args([format!("-{name}"), child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let out = child.wait_with_output().expect("wait");
        assert_eq!(code(&out), 7, "signal {signal}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim(), format!("got-{name}"), "delivered once");
        let run = env.show(None);
        assert_eq!(run["status"], "interrupted", "signal {signal}");
        assert_eq!(run["exit_code"], 7);
    }
}

#[test]
fn a_child_killed_after_lineage_forwards_term_gives_143() {
    let env = Env::new();
    let child = start_and_wait_until_ready(&env, "touch ready; while :; do sleep 0.05; done");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 143);
    let run = env.show(None);
    assert_eq!(run["status"], "interrupted");
    assert_eq!(run["signal"], 15);
}

#[test]
fn the_run_is_recorded_as_running_while_the_job_runs() {
    let env = Env::new();
    let child =
        start_and_wait_until_ready(&env, "touch ready; while [ ! -e go ]; do sleep 0.02; done");
    // While the job runs, the store is readable and not locked.
    let run = env.show(None);
    assert_eq!(run["status"], "running");
    assert_eq!(run["ended_at"], serde_json::Value::Null);
    env.write("go", "");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 0);
    assert_eq!(env.show(None)["status"], "succeeded");
}

#[test]
fn resources_are_measured() {
    let env = Env::new();
    let out = env.cmd([
        "run",
        "-q",
        "--",
        "sh",
        "-c",
        "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
    ]);
    assert_eq!(code(&out), 0);
    let res = &env.show(None)["resources"];
    assert!(res["wall_seconds"].as_f64().expect("wall") > 0.0);
    assert!(
        res["user_cpu_seconds"].as_f64().expect("user") > 0.0,
        "{res}"
    );
    assert!(
        res["max_rss_bytes"].as_u64().expect("rss") > 100_000,
        "{res}"
    );
    // No NVML here: no GPU samples.
    assert_eq!(res["gpu_peak_memory_bytes"], serde_json::Value::Null);
}

#[test]
fn a_store_that_cannot_be_created_stops_the_run_before_launch() {
    let env = Env::new();
    std::fs::write(env.home.join("a-file"), "").expect("write");
    let marker = env.path("ran");
    let mut cmd = env.lineage();
    cmd.env("LINEAGE_STORE", env.home.join("a-file/store"))
        .args([
            OsStr::new("run"),
            OsStr::new("--"),
            OsStr::new("touch"),
            marker.as_os_str(),
        ]);
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("cannot open store"),
        "{}",
        stderr(&out)
    );
    assert!(!marker.exists());
}

#[test]
fn a_recording_failure_after_the_job_ran_warns_and_keeps_the_childs_code() {
    let env = Env::new();
    let child = start_and_wait_until_ready(
        &env,
        "touch ready; while [ ! -e go ]; do sleep 0.02; done; exit 5",
    );
    // Break the store under the running job: the final write cannot succeed.
    env.db()
        .execute_batch("DROP TABLE edges")
        .expect("drop table");
    env.write("go", "");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 5, "the child's exit code wins");
    let err = stderr(&out);
    assert!(
        err.contains("warning: THE RUN WAS NOT FULLY RECORDED"),
        "{err}"
    );
}

#[test]
fn the_child_starts_with_default_signal_dispositions() {
    // Rust ignores SIGPIPE in lineage itself; a shell cannot un-ignore a signal ignored at
    // entry, so dying of SIGPIPE proves the child got the default disposition back.
    let env = Env::new();
    let out = env.cmd(["run", "-q", "--", "sh", "-c", "kill -PIPE $$"]);
    assert_eq!(code(&out), 128 + 13);
    // And a pipeline whose reader exits early behaves as without lineage.
    let out = env.cmd(["run", "-q", "--", "sh", "-c", "yes | head -n 2"]);
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out), "y\ny\n");
    assert_eq!(stderr(&out), "", "no broken-pipe errors");
}

/// A store directory named with a trailing `/.` (`LINEAGE_STORE=.lineage/./`) that does not
/// exist yet is created, user-only, like any other.
#[test]
fn a_new_store_named_with_a_trailing_dot_is_created() {
    let env = Env::local();
    env.init_repo();
    let mut cmd = env.lineage();
    cmd.args(["run", "-q", "--", "true"])
        .env("LINEAGE_STORE", "new-store/./");
    let out = output_within(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dir = env.path("new-store");
    assert!(dir.join("lineage.db").is_file());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&dir).expect("store").permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

/// `-o m.txt/` on a file that is there is refused before launch, naming the fix (it was
/// recorded, and shown, with its slash); on a name not there yet it declares a directory.
#[test]
fn an_output_with_a_trailing_slash_on_a_file_is_refused_before_launch() {
    let env = Env::new();
    env.init_repo();
    env.write("m.txt", "model\n");
    let out = env.cmd(["run", "-o", "m.txt/", "--", "touch", "ran"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("output \"m.txt/\" ends in / (a directory), but it is a file"),
        "{err}"
    );
    assert!(
        err.contains("drop the trailing / to declare the file: -o m.txt"),
        "{err}"
    );
    assert!(!env.path("ran").exists(), "the job never ran");
    let out = env.cmd(["run", "-q", "-o", "d/", "--", "mkdir", "d"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
