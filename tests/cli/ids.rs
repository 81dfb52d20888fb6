//! Ids a user can keep: every short id lineage prints (the run's start and finish lines,
//! errors, list, show, diff, rerun, verify) is the same short form, taken from the id's
//! random bits, and resolves later, after other runs of the same minute; shell completion
//! offers it; `blake3:` prefixes of at least 8 hex digits name the artifact they start.

use std::collections::HashMap;

use serde_json::Value;

use crate::util::*;

/// The short id in a `lineage: run SHORT ...` line of `err`.
fn printed_short(err: &str, after: &str) -> String {
    err.lines()
        .find_map(|l| l.strip_prefix("lineage: run "))
        .filter(|rest| rest.contains(after))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no `run SHORT {after}` line in {err}"))
        .to_string()
}

/// `lineage run ARGS` (not quiet): the short ids its start and finish lines printed, and the
/// run's full id.
fn run_printing(env: &Env, args: &[&str], want: i32) -> (String, String, String) {
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    let out = env.cmd(&full);
    assert_eq!(code(&out), want, "{args:?}: {}", stderr(&out));
    let err = stderr(&out);
    let start = printed_short(&err, "recording");
    let end = err
        .lines()
        .filter_map(|l| l.strip_prefix("lineage: run "))
        .find(|l| !l.contains("recording"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no finish line in {err}"))
        .to_string();
    let id = env.show(None)["id"].as_str().expect("id").to_string();
    (start, end, id)
}

fn show_id(env: &Env, run: &str) -> Result<String, String> {
    let out = env.cmd(["show", "--json", "--run", run]);
    if code(&out) != 0 {
        return Err(stderr(&out));
    }
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    Ok(v["id"].as_str().expect("id").to_string())
}

#[test]
fn every_short_id_printed_resolves_later_and_is_the_same_everywhere() {
    let env = Env::local();
    env.init_repo();
    let mut runs = Vec::new();
    // A pipeline's runs, all of the same minute: UUIDv7 ids that share their first digits.
    for (i, script) in [
        "echo 1 > a.txt",
        "cat a.txt > b.txt",
        "cat b.txt > c.txt",
        "exit 3",
    ]
    .iter()
    .enumerate()
    {
        let out = ["a.txt", "b.txt", "c.txt", "never.txt"][i];
        let want = if i == 3 { 3 } else { 0 };
        let (start, end, id) = run_printing(&env, &["-o", out, "--", "sh", "-c", script], want);
        assert_eq!(start, end, "the start and finish lines print one form");
        runs.push((start, id));
    }
    let list: Vec<Value> =
        serde_json::from_slice(&env.cmd(["list", "--json"]).stdout).expect("list --json");
    let table = stdout(&env.cmd(["list"]));
    for (short, id) in &runs {
        // Printed when the run started, it still names that run alone.
        assert_eq!(show_id(&env, short).as_deref(), Ok(id.as_str()), "{short}");
        assert!(
            id.ends_with(short.as_str()) && short.len() >= 8,
            "{short} is taken from the id's random bits, not its time: {id}"
        );
        let listed = list
            .iter()
            .find(|r| r["id"] == id.as_str())
            .expect("listed");
        assert_eq!(listed["short_id"], short.as_str());
        assert!(table.contains(short.as_str()), "{short} in\n{table}");
        assert_eq!(env.show(Some(id))["short_id"], short.as_str());
        let shown = stdout(&env.cmd(["show", id]));
        assert!(shown.contains(short.as_str()), "{short} in\n{shown}");
    }
    let (a, b) = (&runs[0], &runs[1]);
    let diff = stdout(&env.cmd(["diff", &a.1, &b.1]));
    assert!(
        diff.starts_with(&format!("comparing run {} (a) with run {} (b)", a.0, b.0)),
        "{diff}"
    );
    let verify = stdout(&env.cmd(["verify", &a.1]));
    assert!(verify.contains(a.0.as_str()), "{verify}");
    // An error names the run by the same short id.
    std::fs::write(env.path("a.txt"), "changed\n").expect("write");
    let out = env.cmd(["show", "a.txt"]);
    assert!(
        stderr(&out).contains(&format!("modified after run {} produced it", a.0)),
        "{}",
        stderr(&out)
    );
    std::fs::write(env.path("a.txt"), "1\n").expect("write");
    // A rerun names its original and itself the same way, and the rerun's short id resolves.
    let out = env.cmd(["rerun", &a.0]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rerun_id = env.show(None)["id"].as_str().expect("id").to_string();
    let rerun_short = env.show(Some(&rerun_id))["short_id"]
        .as_str()
        .expect("short")
        .to_string();
    assert!(
        stderr(&out).contains(&format!("rerun {rerun_short} of {}: reproduced", a.0)),
        "{}",
        stderr(&out)
    );
    assert_eq!(show_id(&env, &rerun_short), Ok(rerun_id));
}

/// `list`'s "rerun of" column names the original by the short id its run printed when it
/// started, which still names it alone.
#[test]
fn the_rerun_of_column_uses_the_short_id_the_run_printed() {
    let env = Env::local();
    env.init_repo();
    let (first, _, id) = run_printing(
        &env,
        &["-o", "a.txt", "--", "sh", "-c", "echo a > a.txt"],
        0,
    );
    env.record(&["-o", "b.txt", "--", "sh", "-c", "echo b > b.txt"]);
    let out = env.cmd(["rerun", "-q", &first]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let table = stdout(&env.cmd(["list"]));
    assert!(
        table.contains(&format!("rerun of {first}")),
        "rerun of {first} in\n{table}"
    );
    assert_eq!(show_id(&env, &first), Ok(id));
}

/// Shell completion offers short ids as well as ids for what was typed.
#[test]
fn completion_offers_the_short_ids_that_start_with_what_was_typed() {
    let env = Env::local();
    let (short, _, _) = run_printing(&env, &["--", "true"], 0);
    let typed = &short[..3];
    let mut cmd = env.lineage();
    cmd.env("COMPLETE", "fish")
        .args(["--", "lineage", "show", typed]);
    let out = output_within(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let offered: Vec<String> = stdout(&out)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .collect();
    assert!(offered.contains(&short), "{short} in {offered:?}");
}

/// Two contents whose BLAKE3 hashes share their first 8 hex digits (a birthday search over
/// 32 bits: about 80,000 hashes).
fn two_contents_sharing_8_digits() -> (String, String) {
    let mut seen: HashMap<String, String> = HashMap::new();
    for i in 0u64.. {
        let content = i.to_string();
        let hex = blake3::hash(content.as_bytes()).to_hex()[..8].to_string();
        if let Some(other) = seen.insert(hex, content.clone()) {
            return (other, content);
        }
    }
    unreachable!("the search ends")
}

#[test]
fn a_blake3_prefix_of_eight_digits_or_more_names_the_artifact_it_starts() {
    let env = Env::local();
    env.init_repo();
    let (x, y) = two_contents_sharing_8_digits();
    env.record(&[
        "-o",
        "out",
        "-o",
        "y.txt",
        "--",
        "sh",
        "-c",
        &format!("mkdir -p out && printf {x} > out/x.txt && printf {y} > y.txt"),
    ]);
    let hex = |s: &str| blake3::hash(s.as_bytes()).to_hex().to_string();
    let (hx, hy) = (hex(&x), hex(&y));
    let shared = (0..64)
        .take_while(|&i| hx.as_bytes()[i] == hy.as_bytes()[i])
        .count();
    assert!(shared >= 8);
    // The 12 digits every table prints (more where these two share them), of a file inside a
    // recorded directory and of a recorded output.
    for h in [&hx, &hy] {
        let n = 12.max(shared + 1);
        let out = env.cmd(["show", "--json", &format!("blake3:{}", &h[..n])]);
        assert_eq!(code(&out), 0, "blake3:{}: {}", &h[..n], stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["target"]["hash"], format!("blake3:{h}"), "{v}");
    }
    // Eight digits both start with: how many, and what to do.
    let out = env.cmd(["show", &format!("blake3:{}", &hx[..8])]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains("is ambiguous: 2 recorded artifacts") && err.contains("more hex digits"),
        "{err}"
    );
    // Unknown digits: the usual error; too few: not a hash.
    let unknown = hex("never recorded");
    let out = env.cmd(["show", &format!("blake3:{}", &unknown[..12])]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("nothing is known about"),
        "{}",
        stderr(&out)
    );
    let out = env.cmd(["show", &format!("blake3:{}", &hx[..7])]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("8 to 64 hex digits"),
        "{}",
        stderr(&out)
    );
}
