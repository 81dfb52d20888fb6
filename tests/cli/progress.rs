//! The hashing progress bar: drawn on a terminal and cleared before the job writes to it;
//! never on a pipe, never on stdout, never with -q.

use std::process::{Command, Stdio};

use crate::util::*;

/// `lineage ARGS` inside `script`, which gives it a real 120-column terminal; returns what
/// the terminal received.
fn at_a_terminal(env: &Env, args: &str) -> String {
    let lineage = env!("CARGO_BIN_EXE_lineage");
    let inner = format!("stty cols 120 rows 40; {lineage} {args}");
    let out = Command::new("script")
        .args(["-qefc", &inner, "/dev/null"])
        .current_dir(&env.work)
        .env("LINEAGE_STORE", &env.store)
        .env("HOME", &env.home)
        .env("LINEAGE_PROGRESS_DELAY_MS", "0")
        .stdin(Stdio::null())
        .output()
        .expect("script");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    stdout(&out)
}

fn dataset(env: &Env) {
    for i in 0..300 {
        env.write(&format!("data/part-{i:03}.bin"), vec![i as u8; 4096]);
    }
}

#[test]
fn a_terminal_sees_the_bar_cleared_before_the_job_prints() {
    let env = Env::new();
    dataset(&env);
    let screen = at_a_terminal(&env, "run -i data -- echo from-the-job");
    let bar = screen
        .rfind("lineage: hashing inputs: ")
        .unwrap_or_else(|| panic!("no progress bar on the terminal: {screen:?}"));
    let job = screen.find("from-the-job").expect("the job's output");
    assert!(
        bar < job,
        "the bar was drawn after the job started: {screen:?}"
    );
    let between = &screen[bar..job];
    assert!(
        between.contains("B/") && between.contains(" files, ") && between.contains("/s, ETA "),
        "the bar counts bytes of the total, files, rate and ETA: {between:?}"
    );
    // Cleared (carriage return, erase line) after its last drawing, before the job's line.
    assert!(
        between.contains("\r\x1b[2K"),
        "the bar was not cleared before the job started: {between:?}"
    );
    let line = screen[job..].lines().next().unwrap_or_default();
    assert_eq!(
        line.trim_end(),
        "from-the-job",
        "the job's line is untouched"
    );
}

#[test]
fn quiet_runs_and_pipes_get_no_bar() {
    let env = Env::new();
    dataset(&env);
    let screen = at_a_terminal(&env, "run -q -i data -- echo from-the-job");
    assert!(!screen.contains("hashing"), "{screen:?}");
    assert!(screen.contains("from-the-job"));
    // stderr a pipe: nothing, even with no delay, and never anything on stdout.
    let mut cmd = env.lineage();
    cmd.args([
        "run",
        "-i",
        "data",
        "-o",
        "data",
        "--",
        "echo",
        "from-the-job",
    ])
    .env("LINEAGE_PROGRESS_DELAY_MS", "0");
    let out = output_within(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("hashing"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from-the-job\n");
}

/// Settled inputs are hashed while the job runs: no bar is drawn then, the terminal being
/// the job's.
#[test]
fn inputs_hashed_while_the_job_runs_draw_nothing_on_its_terminal() {
    let env = Env::new();
    dataset(&env);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let screen = at_a_terminal(&env, "run -i data -- sh -c 'echo from-the-job; sleep 0.3'");
    let job = screen.find("from-the-job").expect("the job's output");
    assert!(
        !screen[job..].contains("hashing inputs"),
        "a bar was drawn while the job ran: {screen:?}"
    );
    let run = env.show(None);
    assert!(artifact(&run, "inputs", "data")["hash"].is_string());
}
