//! Parameters given on the job's own command line (issue 18, item 6): Hydra overrides and
//! argparse options after the script become params (source `argv`) over a config's value,
//! `-p` wins over both, `show` says which won, `diff` sees them, secrets stay redacted, and a
//! rerun replays them.

use serde_json::{Value, json};

use crate::util::*;

const PARAMS: &str = "optimizer:\n  lr: 0.001\nmodel:\n  depth: 2\n  dropout: 0.1\nseed: 1\n";

/// A project with a shared params file and a script that ignores its arguments.
fn project(env: &Env) {
    env.write("params.yaml", PARAMS);
    env.write("train.sh", "echo trained > model.bin\n");
}

fn param<'a>(run: &'a Value, key: &str) -> (&'a Value, &'a str) {
    (
        &run["params"][key],
        run["param_sources"][key].as_str().unwrap_or("(none)"),
    )
}

#[test]
fn hydra_overrides_win_over_the_config_and_show_says_which() {
    let env = Env::new();
    project(&env);
    env.record(&[
        "-c",
        "params.yaml",
        "-o",
        "model.bin",
        "--",
        "sh",
        "train.sh",
        "optimizer.lr=0.01",
        "+model.depth=4",
        "~model.dropout",
        "++extra.tag=v1",
    ]);
    let run = env.show(None);
    assert_eq!(param(&run, "optimizer.lr"), (&json!(0.01), "argv"));
    assert_eq!(param(&run, "model.depth"), (&json!(4), "argv"));
    assert_eq!(param(&run, "model.dropout"), (&Value::Null, "argv"));
    assert_eq!(param(&run, "extra.tag"), (&json!("v1"), "argv"));
    // What the config had and the job did not use.
    assert_eq!(param(&run, "seed"), (&json!(1), "params.yaml"));
    assert_eq!(
        run["param_overrides"],
        json!({
            "optimizer.lr": [{"source": "params.yaml", "value": 0.001}],
            "model.depth": [{"source": "params.yaml", "value": 2}],
            "model.dropout": [{"source": "params.yaml", "value": 0.1}],
        })
    );
    let out = env.cmd(["show"]);
    let text = stdout(&out);
    let row = |key: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no row for {key} in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        row("optimizer.lr"),
        "optimizer.lr 0.01 argv; params.yaml had 0.001"
    );
    assert_eq!(
        row("model.dropout"),
        "model.dropout null argv; params.yaml had 0.1"
    );
    assert_eq!(row("seed"), "seed 1 params.yaml");
}

#[test]
fn argparse_options_after_the_script_are_params_and_nothing_before_it() {
    let env = Env::new();
    project(&env);
    env.record(&[
        "-c",
        "params.yaml",
        "--",
        "env",
        "LR=3",
        "sh",
        "-e",
        "train.sh",
        "--seed",
        "5",
        "--batch-size=32",
        "--lr",
        "-0.5",
        "data/in.csv",
        "--verbose",
        "--",
        "--after",
        "x=1",
    ]);
    let run = env.show(None);
    assert_eq!(param(&run, "seed"), (&json!(5), "argv"));
    assert_eq!(param(&run, "batch_size"), (&json!(32), "argv"));
    assert_eq!(param(&run, "lr"), (&json!(-0.5), "argv"));
    assert_eq!(param(&run, "verbose"), (&json!(true), "argv"));
    let keys: Vec<&String> = run["params"].as_object().expect("params").keys().collect();
    for absent in ["LR", "e", "after", "x"] {
        assert!(!keys.iter().any(|k| *k == absent), "{absent} in {keys:?}");
    }
    assert_eq!(
        run["param_overrides"]["seed"],
        json!([{"source": "params.yaml", "value": 1}])
    );
    // An inline script tells nothing about its arguments: none are read.
    env.record(&["--", "sh", "-c", "true", "sh", "lr=1", "--epochs", "2"]);
    let run = env.show(None);
    assert_eq!(run["params"], json!({}));
    assert!(run.get("param_overrides").is_none(), "{run}");
}

#[test]
fn p_wins_over_the_command_line_and_the_config() {
    let env = Env::new();
    project(&env);
    env.record(&[
        "-c",
        "params.yaml",
        "-p",
        "optimizer.lr=0.5",
        "--",
        "sh",
        "train.sh",
        "optimizer.lr=0.01",
    ]);
    let run = env.show(None);
    assert_eq!(param(&run, "optimizer.lr"), (&json!(0.5), "cli"));
    assert_eq!(
        run["param_overrides"]["optimizer.lr"],
        json!([
            {"source": "argv", "value": 0.01},
            {"source": "params.yaml", "value": 0.001},
        ])
    );
    let text = stdout(&env.cmd(["show"]));
    assert!(
        text.contains("cli; argv had 0.01; params.yaml had 0.001"),
        "{text}"
    );
}

#[test]
fn diff_shows_a_parameter_changed_on_the_command_line() {
    let env = Env::new();
    project(&env);
    let run = |lr: &str| {
        env.record(&[
            "-c",
            "params.yaml",
            "--",
            "sh",
            "train.sh",
            &format!("optimizer.lr={lr}"),
            "model.depth=4",
        ])
    };
    let (a, b) = (run("0.01"), run("0.02"));
    let out = env.cmd(["diff", &a, &b, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let d: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        d["params"]["changed"]["optimizer.lr"],
        json!({"a": 0.01, "b": 0.02}),
        "{d}"
    );
    assert!(d["params"]["changed"].get("model.depth").is_none(), "{d}");
    let text = stdout(&env.cmd(["diff", &a, &b]));
    assert!(text.contains("optimizer.lr"), "{text}");
}

#[test]
fn secrets_on_the_command_line_are_redacted_in_params_as_in_argv() {
    let env = Env::new();
    env.write(
        "params.yaml",
        "db:\n  password: cfg-pass-4545\n  host: h\nlr: 0.1\n",
    );
    env.write("train.sh", "true\n");
    env.record(&[
        "-c",
        "params.yaml",
        "--",
        "sh",
        "train.sh",
        "--api-key",
        "sk-proj-abcdefghijklmnopqrstuvwx3434",
        "password=argv-pass-7878",
        "db.password=argv-db-pass-9090",
        "--db-url=postgres://u:argv-url-pw-1212@h/db",
        "--token=argv-token-5656",
        "lr=0.2",
    ]);
    let run = env.show(None);
    assert_eq!(param(&run, "api_key"), (&json!("[REDACTED]"), "argv"));
    assert_eq!(param(&run, "password"), (&json!("[REDACTED]"), "argv"));
    assert_eq!(param(&run, "db.password"), (&json!("[REDACTED]"), "argv"));
    assert_eq!(param(&run, "token"), (&json!("[REDACTED]"), "argv"));
    assert_eq!(param(&run, "lr"), (&json!(0.2), "argv"));
    let url = run["params"]["db_url"].as_str().expect("db_url");
    assert!(!url.contains("argv-url-pw-1212"), "{url}");
    // The config's value it replaced is shown as stored: redacted.
    assert_eq!(
        run["param_overrides"]["db.password"],
        json!([{"source": "params.yaml", "value": "[REDACTED]"}])
    );
    assert_eq!(
        run["param_overrides"]["lr"],
        json!([{"source": "params.yaml", "value": 0.1}])
    );
    for secret in [
        "abcdefghijklmnopqrstuvwx3434",
        "argv-pass-7878",
        "argv-db-pass-9090",
        "argv-url-pw-1212",
        "argv-token-5656",
        "cfg-pass-4545",
    ] {
        for (path, bytes) in env.store_files() {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{secret} found in {}",
                path.display()
            );
        }
        let text = stdout(&env.cmd(["show"]));
        assert!(!text.contains(secret), "{secret} in\n{text}");
    }
}

#[test]
fn a_rerun_replays_the_command_line_and_records_the_same_params() {
    let env = Env::new();
    env.init_repo();
    project(&env);
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "project"]);
    let id = env.record(&[
        "-c",
        "params.yaml",
        "-o",
        "model.bin",
        "--",
        "sh",
        "train.sh",
        "optimizer.lr=0.01",
        "--epochs",
        "3",
    ]);
    let out = env.cmd(["rerun", &id, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    let rerun = verdict["rerun"].as_str().expect("rerun id").to_string();
    let (a, b) = (env.show(Some(&id)), env.show(Some(&rerun)));
    assert_eq!(a["params"], b["params"]);
    assert_eq!(a["param_sources"], b["param_sources"]);
    assert_eq!(a["param_overrides"], b["param_overrides"]);
    assert_eq!(param(&b, "epochs"), (&json!(3), "argv"));
    let d: Value =
        serde_json::from_slice(&env.cmd(["diff", &id, &rerun, "--json"]).stdout).expect("json");
    assert_eq!(d["params"]["changed"], json!({}), "{d}");
}

/// A command line of more keys than a config may give: the first 10,000 in key order are
/// params, each with the last value given, a warning says so, and the command is kept whole.
/// A value kept is judged beside every key given: `e.val` stays redacted though `e.var`,
/// which names a secret, sorts past the cut.
#[test]
fn a_command_line_of_too_many_keys_records_the_first_ten_thousand() {
    let env = Env::new();
    project(&env);
    let mut args: Vec<String> = ["run", "-o", "model.bin", "--", "sh", "train.sh"]
        .map(String::from)
        .to_vec();
    args.extend((0..9_999).map(|i| format!("a{i:05}={i}")));
    args.push("a00000=last".to_string());
    args.push("e.val=hunter2hunter2XYZ".to_string());
    args.push("e.var=AWS_SECRET_ACCESS_KEY".to_string());
    args.extend((0..49).map(|i| format!("z{i:02}={i}")));
    let out = env.cmd(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "the command line gives 10050 keys: the first 10000 (in key order) are recorded as params"
        ),
        "{}",
        stderr(&out)
    );
    let run = env.show(None);
    let params = run["params"].as_object().expect("params");
    assert_eq!(params.len(), 10_000);
    assert_eq!(param(&run, "a00000"), (&json!("last"), "argv"));
    assert_eq!(param(&run, "a09998"), (&json!(9998), "argv"));
    assert_eq!(param(&run, "e.val"), (&json!("[REDACTED]"), "argv"));
    assert!(params.get("e.var").is_none());
    assert!(params.get("z00").is_none());
    assert_eq!(run["command"].as_array().expect("command").len(), 10_053);
    assert!(
        run["notes"]
            .to_string()
            .contains("the command line gives 10050 keys")
    );
    // Shown to a person: the first 500 params and the start of the command, each with a
    // count of the rest.
    let out = env.cmd(["show"]);
    let text = stdout(&out);
    let start: String = text.chars().take(2000).collect();
    assert!(
        text.contains("\nand 9500 more params (--json lists them)"),
        "{start}"
    );
    assert!(
        text.contains("more characters; --json has the whole command)"),
        "{start}"
    );
    assert!(
        text.lines().count() < 1_200,
        "{} lines",
        text.lines().count()
    );
    assert!(text.lines().all(|l| l.chars().count() < 1_000));
}
