//! `lineage list`: finding runs by params, metrics, command, status, time and the bytes they
//! wrote or read; extra columns; a screenful on a terminal, everything into a pipe.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::*;

/// `lineage list ARGS` as short ids, newest first (from `--json`); the command must succeed.
fn listed(env: &Env, args: &[&str]) -> Vec<String> {
    let mut full = vec!["list", "--json"];
    full.extend_from_slice(args);
    let out = env.cmd(&full);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    let items: Vec<Value> = serde_json::from_slice(&out.stdout).expect("list --json is JSON");
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

/// Give a run a metric. Until -m lands: written straight into the store's `metrics` table
/// (the query side is what is tested here).
/// `lineage run -q ARGS -m metrics.json -- JOB`, where the job writes `{"KEY": VALUE}` to
/// metrics.json: a run with that param and that metric.
pub fn record_with_metric(env: &Env, args: &[&str], key: &str, value: f64) -> String {
    let job = format!("printf '{{\"{key}\": {value}}}' > metrics.json");
    let mut full = args.to_vec();
    full.extend(["-m", "metrics.json", "--", "sh", "-c", &job]);
    env.record(&full)
}

#[test]
fn where_selects_runs_by_params_and_metrics_numbers_as_numbers() {
    let env = Env::local();
    let a = record_with_metric(
        &env,
        &["-p", "train.n_est=100", "-p", "opt=adam"],
        "acc",
        0.95,
    );
    let b = record_with_metric(&env, &["-p", "train.n_est=20", "-p", "opt=sgd"], "acc", 0.5);
    let c = record_with_metric(
        &env,
        &["-p", "train.n_est=3", "-p", "acc=high"],
        "acc",
        0.99,
    );
    // As text, "100", "20" and "3" all sort before "9": only numbers find these two.
    assert_eq!(
        listed(&env, &["--where", "train.n_est>9"]),
        [b.as_str(), a.as_str()]
    );
    assert_eq!(
        listed(&env, &["--where", "params.train.n_est<=20"]),
        [c.as_str(), b.as_str()]
    );
    assert_eq!(listed(&env, &["--where", "train.n_est=100"]), [a.as_str()]);
    assert_eq!(listed(&env, &["--where", "opt=adam"]), [a.as_str()]);
    assert_eq!(
        listed(&env, &["--where", "opt!=adam"]),
        [b.as_str()],
        "no opt: no match"
    );
    assert_eq!(
        listed(&env, &["--where", "metrics.acc>=0.9"]),
        [c.as_str(), a.as_str()]
    );
    // A bare key is the run's param when it has one (c's acc is "high"), else its metric.
    assert_eq!(listed(&env, &["--where", "acc>=0.9"]), [a.as_str()]);
    assert_eq!(listed(&env, &["--where", "acc=high"]), [c.as_str()]);
    // Conditions combine.
    assert_eq!(
        listed(
            &env,
            &["--where", "metrics.acc>0.6", "--where", "train.n_est>=50"]
        ),
        [a.as_str()]
    );
    // Quoted, a number is text: compared with the param as written.
    assert_eq!(
        listed(&env, &["--where", "train.n_est=\"100\""]),
        [a.as_str()]
    );
    assert!(listed(&env, &["--where", "train.n_est>\"9\""]).is_empty());
}

#[test]
fn a_malformed_filter_is_a_usage_error_naming_it_and_the_fix() {
    let env = Env::local();
    env.record(&["--", "true"]);
    for (args, named) in [
        (&["--where", "lr"][..], "--where \"lr\""),
        (&["--where", "=3"][..], "--where \"=3\""),
        (&["--where", "lr=>3"][..], "--where \"lr=>3\""),
        (&["--since", "yesterday"][..], "--since \"yesterday\""),
        (&["--columns", "a,,b"][..], "--columns \"a,,b\""),
    ] {
        let mut full = vec!["list"];
        full.extend_from_slice(args);
        let out = env.cmd(&full);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().collect();
        assert!(
            lines.len() == 2
                && lines[0].starts_with("lineage: error: ")
                && lines[0].contains(named)
                && lines[1].starts_with("lineage: hint: "),
            "{args:?}: {err}"
        );
    }
    let out = env.cmd(["compare", "--sort", "lr=3"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn list_finds_runs_by_command_status_and_time() {
    let env = Env::local();
    let a = env.record(&["--", "sh", "-c", "echo training > /dev/null"]);
    let out = env.cmd(["run", "-q", "--", "false"]);
    assert_eq!(code(&out), 1);
    let b = env.show(None)["id"].as_str().expect("id").to_string();
    assert_eq!(listed(&env, &["--command", "echo training"]), [a.as_str()]);
    assert_eq!(
        listed(&env, &["--command", "sh -c"]),
        [a.as_str()],
        "across arguments"
    );
    assert_eq!(listed(&env, &["--status", "failed"]), [b.as_str()]);
    assert_eq!(listed(&env, &["--status", "succeeded"]), [a.as_str()]);
    assert_eq!(listed(&env, &["--since", "1h"]), [b.as_str(), a.as_str()]);
    assert_eq!(
        listed(&env, &["--since", "2000-01-01T00:00:00Z"]),
        [b.as_str(), a.as_str()]
    );
    assert!(listed(&env, &["--until", "2000-01-01"]).is_empty());
    assert!(listed(&env, &["--since", "2999-01-01"]).is_empty());
    let out = env.cmd(["list", "--status", "failed", "--command", "sh"]);
    assert_eq!(code(&out), 0);
    assert!(
        stderr(&out).contains("no run matches these filters"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn list_finds_the_runs_that_produced_or_read_a_path_by_its_bytes() {
    let env = Env::local();
    let a = env.record(&["-o", "out.txt", "--", "sh", "-c", "echo made > out.txt"]);
    let b = env.record(&[
        "-i",
        "out.txt",
        "-o",
        "b.txt",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z < out.txt > b.txt",
    ]);
    let d = env.record(&[
        "-o",
        "dir",
        "--",
        "sh",
        "-c",
        "mkdir -p dir && echo inside-the-directory > dir/f.txt",
    ]);
    assert_eq!(listed(&env, &["--produced", "out.txt"]), [a.as_str()]);
    assert_eq!(listed(&env, &["--read", "out.txt"]), [b.as_str()]);
    assert_eq!(listed(&env, &["--produced", "b.txt"]), [b.as_str()]);
    // A directory, and a file inside one.
    assert_eq!(listed(&env, &["--produced", "dir"]), [d.as_str()]);
    assert_eq!(listed(&env, &["--produced", "dir/f.txt"]), [d.as_str()]);
    // By bytes, wherever they are now.
    std::fs::copy(env.path("out.txt"), env.path("copy.txt")).expect("copy");
    assert_eq!(listed(&env, &["--produced", "copy.txt"]), [a.as_str()]);
    let hash = blake3_hex(b"made\n");
    assert_eq!(listed(&env, &["--produced", &hash]), [a.as_str()]);
    // Bytes nobody wrote.
    env.write("other.txt", "never recorded\n");
    assert!(listed(&env, &["--produced", "other.txt"]).is_empty());
    let out = env.cmd(["list", "--produced", "no-such-file"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-file"), "{}", stderr(&out));
}

#[test]
fn columns_add_params_and_metrics_to_the_table_and_the_json() {
    let env = Env::local();
    record_with_metric(&env, &["-p", "train.lr=0.1", "-p", "seed=1"], "acc", 0.75);
    let out = env.cmd(["list", "--json"]);
    let items: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        items[0].get("params").is_none() && items[0].get("metrics").is_none(),
        "no new fields unless asked: {}",
        items[0]
    );
    let out = env.cmd(["list", "--json", "--columns", "params.train.*,metrics.*"]);
    let items: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(items[0]["params"], serde_json::json!({"train.lr": 0.1}));
    assert_eq!(items[0]["metrics"], serde_json::json!({"acc": 0.75}));
    let out = env.cmd(["list", "--columns", "metrics.acc,params.seed,params.absent"]);
    let table = stdout(&out);
    let header = table.lines().nth(1).expect("header");
    for column in ["params.absent", "params.seed", "metrics.acc"] {
        assert!(header.contains(column), "{column}: {table}");
    }
    let row = table.lines().nth(3).expect("row");
    assert!(row.contains(" 1 ") && row.contains("0.75"), "{table}");
}

/// `lineage ARGS` inside `script`, which gives it a real terminal: (what the terminal
/// received, stdout and stderr together).
fn at_a_terminal(env: &Env, args: &str) -> String {
    let lineage = env!("CARGO_BIN_EXE_lineage");
    let inner = format!("stty cols 200 rows 50; {lineage} {args}");
    let out = Command::new("script")
        .args(["-qefc", &inner, "/dev/null"])
        .current_dir(&env.work)
        .env("LINEAGE_STORE", &env.store)
        .env("HOME", &env.home)
        .stdin(Stdio::null())
        .output()
        .expect("script");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    stdout(&out)
}

#[test]
fn a_terminal_gets_a_screenful_and_a_hint_a_pipe_gets_every_run() {
    let env = Env::local();
    for i in 0..23 {
        env.record(&["-p", &format!("i={i}"), "--", "true"]);
    }
    let rows = |text: &str| text.lines().filter(|l| l.contains(" true ")).count();
    let screen = at_a_terminal(&env, "list");
    assert_eq!(rows(&screen), 20, "{screen}");
    assert!(
        screen.contains("lineage: 20 of 23 runs shown; -n N or --all for more"),
        "{screen}"
    );
    let screen = at_a_terminal(&env, "list --all");
    assert_eq!(rows(&screen), 23, "{screen}");
    assert!(!screen.contains("shown"), "{screen}");
    let screen = at_a_terminal(&env, "list -n 3");
    assert_eq!(rows(&screen), 3, "{screen}");
    assert!(!screen.contains("shown"), "{screen}");
    let screen = at_a_terminal(&env, "list --where 'i>=10'");
    assert!(
        screen.contains("lineage: 13 matching runs shown") || rows(&screen) == 13,
        "{screen}"
    );
    assert!(!screen.contains("of 13"), "all 13 fit: {screen}");
    // Into a pipe: every run, no hint.
    let out = env.cmd(["list"]);
    assert_eq!(rows(&stdout(&out)), 23);
    assert_eq!(stderr(&out), "");
    let out = env.cmd(["list", "--json"]);
    let items: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(items.len(), 23);
}

#[test]
fn a_piped_table_is_the_table_a_terminal_would_draw_row_for_row() {
    let env = Env::local();
    let a = env.record(&["-o", "out.txt", "--", "sh", "-c", "echo x > out.txt"]);
    env.record(&["--", "echo", "wide \u{00e9}\u{4e2d}"]);
    let out = env.cmd(["rerun", "-q", &a]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // -n 10 at a terminal: gathered and drawn whole; into a pipe: streamed.
    // The ages ("3s ago") may change between the two: compared without them and their
    // padding.
    let same = |text: &str| {
        let text = regex::Regex::new(r"\d+[smhd] ago")
            .expect("regex")
            .replace_all(text, "ago");
        let text = regex::Regex::new(r" +")
            .expect("regex")
            .replace_all(&text, " ");
        regex::Regex::new(r"[─═]+")
            .expect("regex")
            .replace_all(&text, "─")
            .into_owned()
    };
    let piped = stdout(&env.cmd(["list", "--color", "never"]));
    let screen = at_a_terminal(&env, "list -n 10 --color never").replace("\r\n", "\n");
    assert_eq!(same(&piped), same(&screen));
    assert!(piped.contains("rerun of"), "{piped}");
}

#[test]
fn tag_finds_the_run_a_tag_names() {
    let env = Env::local();
    let a = env.record(&["-p", "lr=0.1", "--", "true"]);
    let _b = env.record(&["-p", "lr=0.2", "--", "true"]);
    let out = env.cmd(["tag", &a, "best"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(listed(&env, &["--tag", "best"]), [a.as_str()]);
    assert!(listed(&env, &["--tag", "nosuch"]).is_empty());
    // With other filters: all must hold.
    assert!(listed(&env, &["--tag", "best", "--where", "lr=0.2"]).is_empty());
}
