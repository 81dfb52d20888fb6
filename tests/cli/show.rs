//! `lineage show` and `lineage list`: id prefixes, JSON shape, errors.

use serde_json::Value;

use crate::util::*;

fn record(env: &Env, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let out = env.cmd(["run", "-q", "--", "sh", "-c", &format!("exit {i}")]);
            assert_eq!(code(&out), i as i32);
            env.show(None)["id"].as_str().expect("id").to_string()
        })
        .collect()
}

#[test]
fn show_without_a_run_shows_the_latest_and_accepts_unique_prefixes() {
    let env = Env::new();
    let ids = record(&env, 3);
    assert_eq!(env.show(None)["id"], ids[2]);
    for id in &ids {
        let short = env.show(Some(id))["short_id"]
            .as_str()
            .expect("short")
            .to_string();
        assert!(id.ends_with(&short) && short.len() >= 8);
        assert_eq!(env.show(Some(&short))["id"], *id);
    }
}

#[test]
fn an_ambiguous_prefix_lists_the_candidates() {
    let env = Env::new();
    let ids = record(&env, 2);
    // UUIDv7 ids made within the same second share their first characters.
    let common: String = ids[0]
        .chars()
        .zip(ids[1].chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    assert!(!common.is_empty());
    let out = env.cmd(["show", &common]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("ambiguous"), "{err}");
    assert!(err.contains(&ids[0]) && err.contains(&ids[1]), "{err}");
}

#[test]
fn an_unknown_run_is_an_error_with_a_hint() {
    let env = Env::new();
    record(&env, 1);
    let out = env.cmd(["show", "ffffffff"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("no run matches \"ffffffff\""),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("lineage list"), "{}", stderr(&out));
}

#[test]
fn show_on_an_empty_store_says_so() {
    let env = Env::new();
    let out = env.cmd(["show"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("no runs recorded yet"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn show_json_hashes_and_times_have_the_documented_formats() {
    // The keys and their order are pinned by the contract's snapshots (contract.rs), which
    // replace hashes and times: their formats are checked here.
    let env = Env::new();
    env.init_repo();
    env.write("data.csv", "x\n");
    let out = env.cmd([
        "run",
        "-i",
        "data.csv",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "echo y > out.txt",
    ]);
    assert_eq!(code(&out), 0);
    let run = env.show(None);
    // Every hash is blake3: and 64 lowercase hex digits.
    fn check_hashes(v: &Value) {
        match v {
            Value::String(s) if s.starts_with("blake3:") => {
                let hex = &s[7..];
                assert_eq!(hex.len(), 64, "{s}");
                assert!(
                    hex.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                    "{s}"
                );
            }
            Value::Array(a) => a.iter().for_each(check_hashes),
            Value::Object(o) => o.values().for_each(check_hashes),
            _ => {}
        }
    }
    check_hashes(&run);
    for t in ["started_at", "ended_at"] {
        let s = run[t].as_str().expect("time");
        assert!(
            s.ends_with('Z') && s.parse::<jiff::Timestamp>().is_ok(),
            "{s}"
        );
    }
}

#[test]
fn show_prints_a_readable_summary() {
    let env = Env::new();
    env.init_repo();
    env.write("data.csv", "x\n");
    let out = env.cmd([
        "run", "-q", "-i", "data.csv", "-p", "lr=0.01", "--", "sh", "train.py",
    ]);
    assert_eq!(code(&out), 0);
    let out = env.cmd(["show"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    for needle in [
        "succeeded (exit 0)",
        "sh train.py",
        "main @ ",
        "data.csv",
        "lr",
        "0.01",
        "Test User",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
    assert!(
        !text.contains('\u{1b}'),
        "no colour when stdout is not a terminal"
    );
}

#[test]
fn list_shows_runs_newest_first_with_a_limit() {
    let env = Env::new();
    let ids = record(&env, 3);
    let out = env.cmd(["list", "--json"]);
    assert_eq!(code(&out), 0);
    let list: Value = serde_json::from_slice(&out.stdout).expect("json");
    let got: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(got, [&ids[2], &ids[1], &ids[0]]);
    for r in list.as_array().expect("array") {
        for key in ["id", "status", "command", "started_at"] {
            assert!(r.get(key).is_some(), "missing {key}");
        }
    }
    let out = env.cmd(["log", "--json", "--limit", "1"]);
    let list: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list.as_array().expect("array").len(), 1);
    assert_eq!(list[0]["id"], ids[2]);

    let out = env.cmd(["list"]);
    let text = stdout(&out);
    assert!(text.contains("exit 2") || text.contains("failed"), "{text}");
    assert_eq!(text.matches("sh -c").count(), 3, "{text}");
}

#[test]
fn a_store_from_a_newer_lineage_is_refused() {
    let env = Env::new();
    record(&env, 1);
    env.db()
        .pragma_update(None, "user_version", 99)
        .expect("pragma");
    let out = env.cmd(["list"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("schema version 99"),
        "{}",
        stderr(&out)
    );
    let out = env.cmd(["run", "--", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("newer lineage"), "{}", stderr(&out));
}

/// A checkpoint resumed in place (`-i ckpt.bin -o ckpt.bin`) changes during the run as it
/// should: `show` says the job rewrote it, not that it changed under the job.
#[test]
fn an_input_the_job_rewrote_is_labelled_as_its_output() {
    let env = Env::local();
    env.init_repo();
    env.write("ckpt.bin", "epoch 1\n");
    let id = env.record(&[
        "-i",
        "ckpt.bin",
        "-o",
        "ckpt.bin",
        "--",
        "sh",
        "-c",
        "echo epoch 2 >> ckpt.bin",
    ]);
    let out = env.cmd(["show", &id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("input (rewritten by the job: also its output)"),
        "{text}"
    );
    assert!(!text.contains("changed during run"), "{text}");
}
