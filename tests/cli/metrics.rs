//! Metrics (`lineage run -m FILE`, `[run] metrics` in lineage.toml): the numbers a job
//! reports, read after it, flattened like params, stored as numbers, shown, compared by
//! `diff`, exported, signed and carried between stores.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::*;

/// A repository with `eval.py`, which writes `metrics.json` from its argument.
fn repo(env: &Env) {
    env.init_repo();
    env.write(
        "eval.py",
        "import json, sys\n\
         acc = float(sys.argv[1])\n\
         json.dump({'eval': {'acc': acc, 'loss': 0.5, 'model': 'rf'}, 'n': 3, 'ok': True}, open('metrics.json', 'w'))\n",
    );
    env.git(&["add", "eval.py"]);
    env.git(&["commit", "-q", "-m", "eval"]);
}

fn metrics(run: &Value) -> Value {
    run["metrics"].clone()
}

#[test]
fn a_metrics_file_becomes_numbers_shown_and_an_output() {
    let env = Env::new();
    repo(&env);
    let id = env.record(&["-m", "metrics.json", "--", "python3", "eval.py", "0.91"]);
    let run = env.show(Some(&id));
    assert_eq!(
        metrics(&run),
        json!({"eval.acc": 0.91, "eval.loss": 0.5, "n": 3.0})
    );
    assert_eq!(run["metric_sources"]["eval.acc"], "metrics.json");
    // Strings and booleans are not metrics: left out, with a note.
    let notes = run["notes"].to_string();
    assert!(notes.contains("2 metric values left out"), "{notes}");
    // The file is an output of the run, found by its bytes.
    let outputs: Vec<&str> = run["outputs"]
        .as_array()
        .expect("as the test set it up")
        .iter()
        .map(|o| o["path"].as_str().expect("as the test set it up"))
        .collect();
    assert_eq!(outputs, ["metrics.json"]);
    let shown = stdout(&env.cmd(["show", "metrics.json"]));
    assert!(shown.contains(&id[id.len() - 8..]), "{shown}");
    // The table lists them.
    let table = stdout(&env.cmd(["show", &id]));
    assert!(table.contains("metric"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("eval.acc") && l.contains("0.91")),
        "{table}"
    );
}

#[test]
fn a_metrics_file_the_job_did_not_write_is_not_its_metrics() {
    let env = Env::new();
    repo(&env);
    // Left by an earlier job: this one writes nothing.
    env.write("metrics.json", r#"{"acc": 0.99}"#);
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(env.path("metrics.json"))
        .expect("as the test set it up")
        .set_modified(old)
        .expect("as the test set it up");
    let id = env.record(&["-m", "metrics.json", "--", "true"]);
    let run = env.show(Some(&id));
    assert_eq!(metrics(&run), json!({}));
    assert!(
        run["notes"]
            .to_string()
            .contains("metrics file metrics.json was not written by this job"),
        "{}",
        run["notes"]
    );
    // A file that is not there: a note, and the job's exit code stands.
    let out = env.cmd(["run", "-q", "-m", "none.yaml", "--", "sh", "-c", "exit 4"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let run = env.show(None);
    assert!(
        run["notes"]
            .to_string()
            .contains("metrics file none.yaml could not be read"),
        "{}",
        run["notes"]
    );
}

#[test]
fn the_settings_name_metrics_files_every_job_may_write() {
    let env = Env::new();
    repo(&env);
    env.write(
        "lineage.toml",
        "[run]\nmetrics = [\"metrics.json\", \"reports/*.yaml\"]\n",
    );
    std::fs::create_dir_all(env.path("reports")).expect("as the test set it up");
    let id = env.record(&[
        "--",
        "sh",
        "-c",
        "python3 eval.py 0.7 && printf 'f1: 0.25\\nname: x\\n' > reports/a.yaml",
    ]);
    let run = env.show(Some(&id));
    assert_eq!(
        metrics(&run),
        json!({"eval.acc": 0.7, "eval.loss": 0.5, "f1": 0.25, "n": 3.0})
    );
    assert_eq!(run["metric_sources"]["f1"], "reports/a.yaml");
    // A job that writes none of them has none, and no note about them.
    let id = env.record(&["--", "true"]);
    let run = env.show(Some(&id));
    assert_eq!(metrics(&run), json!({}));
    assert!(
        !run["notes"].to_string().contains("metrics"),
        "{}",
        run["notes"]
    );
    // A pattern outside the job's directory is refused, naming the file and the key.
    env.write("lineage.toml", "[run]\nmetrics = [\"../*.json\"]\n");
    let out = env.cmd(["run", "--", "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("no .."), "{}", stderr(&out));
    // A pattern that is not one is an error naming the file and the key.
    env.write("lineage.toml", "[run]\nmetrics = [\"a/[\"]\n");
    let out = env.cmd(["run", "--", "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("run.metrics"), "{}", stderr(&out));
}

#[test]
fn diff_shows_each_metric_change_with_its_sign_and_relative_change() {
    let env = Env::new();
    repo(&env);
    let a = env.record(&["-m", "metrics.json", "--", "python3", "eval.py", "0.8"]);
    let b = env.record(&["-m", "metrics.json", "--", "python3", "eval.py", "0.9"]);
    let out = env.cmd(["diff", &a, &b]);
    let text = stdout(&out);
    assert!(
        text.contains("metrics\n  ~ eval.acc: 0.8 -> 0.9 (+0.1, +12.5%)\n"),
        "{text}"
    );
    assert!(
        !text.contains("eval.loss"),
        "unchanged metrics are not listed: {text}"
    );
    let out = env.cmd(["diff", "--json", &a, &b]);
    let d: Value = serde_json::from_slice(&out.stdout).expect("diff --json");
    let c = &d["metrics"]["changed"]["eval.acc"];
    assert_eq!((c["a"].as_f64(), c["b"].as_f64()), (Some(0.8), Some(0.9)));
    assert!(
        (c["relative"].as_f64().expect("as the test set it up") - 0.125).abs() < 1e-9,
        "{c}"
    );
    let out = env.cmd(["diff", &b, &a]);
    assert!(
        stdout(&out).contains("~ eval.acc: 0.9 -> 0.8 (-0.1, -11.1%)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn metrics_are_exported_signed_and_carried_by_bundles() {
    let env = Env::local();
    repo(&env);
    let id = env.record(&["-m", "metrics.json", "--", "python3", "eval.py", "0.75"]);
    // OpenLineage: a run facet on the COMPLETE event; PROV: an attribute of the activity.
    let out = env.cmd(["export", &id, "--format", "openlineage"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let complete: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("one event a line"))
        .find(|e| e["eventType"] == "COMPLETE")
        .expect("a COMPLETE event");
    let facet = &complete["run"]["facets"]["lineage_metrics"];
    assert!(
        facet["_schemaURL"]
            .as_str()
            .expect("as the test set it up")
            .ends_with("LineageMetricsRunFacet.json#/$defs/LineageMetricsRunFacet"),
        "{facet}"
    );
    assert!(
        facet["metrics"]
            .as_array()
            .expect("as the test set it up")
            .contains(&json!({"key": "eval.acc", "value": 0.75, "source": "metrics.json"})),
        "{facet}"
    );
    let out = env.cmd(["export", &id, "--format", "prov-json"]);
    assert!(stdout(&out).contains("lineage:metrics"), "{}", stdout(&out));

    // The record signed at finish covers them: a metric changed in the store is caught.
    let out = env.cmd(["verify", &id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env.db()
        .execute("UPDATE metrics SET value = 0.99 WHERE key = 'eval.acc'", [])
        .expect("as the test set it up");
    let out = env.cmd(["verify", &id]);
    assert_ne!(
        code(&out),
        0,
        "a changed metric must fail verify: {}",
        stdout(&out)
    );
    env.db()
        .execute("UPDATE metrics SET value = 0.75 WHERE key = 'eval.acc'", [])
        .expect("as the test set it up");

    // A bundle carries them; the other store checks each value.
    let bundle = env.path("runs.lineage");
    let out = env.cmd(["bundle", "export", "-o", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let other = Env::local();
    let out = other.cmd(["bundle", "import", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        metrics(&other.show(Some(&id))),
        json!({"eval.acc": 0.75, "eval.loss": 0.5, "n": 3.0})
    );
    // Signed by a key this store does not know, and intact.
    let out = other.cmd(["verify", &id]);
    assert!(stderr(&out).contains(" 0 tampered"), "{}", stderr(&out));

    // A bundle whose metric is not a number is refused, naming the column.
    let c = rusqlite::Connection::open(&bundle).expect("as the test set it up");
    c.execute("UPDATE metrics SET value = 'high' WHERE key = 'n'", [])
        .expect("as the test set it up");
    drop(c);
    let third = Env::local();
    let out = third.cmd(["bundle", "import", &bundle.display().to_string()]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("metrics"), "{}", stderr(&out));
    assert!(stderr(&out).contains("value"), "{}", stderr(&out));
}

#[cfg(feature = "team-store")]
#[test]
fn metrics_travel_through_a_team_store() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let url = pg.url(&db);
    let env = Env::local();
    repo(&env);
    let team = |replica: &std::path::Path, args: &[&str]| {
        let mut cmd = env.lineage();
        cmd.env("LINEAGE_STORE", &url)
            .env("LINEAGE_REPLICA", replica)
            .env("LINEAGE_PG_TIMEOUT", "5")
            .args(args);
        output_within(cmd, Duration::from_secs(120))
    };
    let root = env.work.parent().expect("as the test set it up");
    let out = team(
        &root.join("a"),
        &[
            "run",
            "-q",
            "-m",
            "metrics.json",
            "--",
            "python3",
            "eval.py",
            "0.6",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(
        pg.sql(&db, "SELECT key, value FROM metrics ORDER BY key"),
        [["eval.acc", "0.6"], ["eval.loss", "0.5"], ["n", "3"]]
    );
    // Another machine's replica has them, and the signature still holds.
    let out = team(&root.join("b"), &["show", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run: Value = serde_json::from_slice(&out.stdout).expect("as the test set it up");
    assert_eq!(run["metrics"]["eval.acc"], 0.6);
    let out = team(
        &root.join("b"),
        &["verify", run["id"].as_str().expect("as the test set it up")],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_key_with_a_nul_is_left_out_so_every_store_takes_the_run() {
    let env = Env::local();
    env.init_repo();
    let id = env.record(&[
        "-m",
        "m.json",
        "--",
        "sh",
        "-c",
        r#"printf '{"nul\\u0000key": 8, "ok": 1e308}' > m.json"#,
    ]);
    let run = env.show(Some(&id));
    assert_eq!(metrics(&run), json!({"ok": 1e308}));
    // Shown in exponent form, not as 309 digits.
    let table = stdout(&env.cmd(["show", &id]));
    assert!(table.contains("1e308"), "{table}");
    let bundle = env.path("b.lineage");
    let out = env.cmd(["bundle", "export", "-o", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let other = Env::local();
    let out = other.cmd(["bundle", "import", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
