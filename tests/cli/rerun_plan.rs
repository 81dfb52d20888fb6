//! `lineage rerun --dry-run`: a dry run runs nothing (no job, no row, no byte of the store
//! or the tree), upstream steps included, and prints the whole plan: every upstream step in
//! the order it would run, then the run itself, as text or as JSON; blockers are reported in
//! it, never acted on.

use serde_json::Value;

use crate::util::*;

/// Every file of the work tree (but `.git`) and of the store (but the shared-memory index),
/// with its bytes.
type Snapshot = (Vec<(String, Vec<u8>)>, Vec<(String, Vec<u8>)>);

fn snapshot(env: &Env) -> Snapshot {
    let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(&env.work)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_type().is_file() && !e.path().components().any(|c| c.as_os_str() == ".git")
        })
        .map(|e| {
            (
                e.path().display().to_string(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    files.sort();
    let mut db: Vec<(String, Vec<u8>)> = env
        .store_files()
        .into_iter()
        .filter(|(p, _)| !p.to_string_lossy().ends_with("-shm"))
        .map(|(p, b)| (p.display().to_string(), b))
        .collect();
    db.sort();
    (files, db)
}

/// raw.txt -> step 1 -> mid.txt -> step 2 -> final.txt, both outputs deleted, files old
/// enough for the stat cache to take them and the cache empty: a check that wrote to it
/// would change the store.
fn chain(env: &Env) -> (String, String) {
    env.init_repo();
    env.write("raw.txt", "abc\n");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let step1 = env.record(&[
        "-i",
        "raw.txt",
        "-o",
        "mid.txt",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z < raw.txt > mid.txt",
    ]);
    let step2 = env.record(&[
        "-i",
        "mid.txt",
        "-o",
        "final.txt",
        "--",
        "sh",
        "-c",
        "rev mid.txt > final.txt",
    ]);
    std::fs::remove_file(env.path("mid.txt")).expect("rm");
    std::fs::remove_file(env.path("final.txt")).expect("rm");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.db()
        .execute("DELETE FROM stat_cache", [])
        .expect("clear the cache");
    // Closing that connection checkpointed and removed the WAL file; let lineage reopen the
    // store once so the snapshot starts from the files it keeps.
    assert_eq!(code(&env.cmd(["list", "--json"])), 0);
    (step1, step2)
}

#[test]
fn an_upstream_dry_run_runs_nothing_and_prints_every_step_in_order() {
    let env = Env::local();
    let (step1, step2) = chain(&env);
    let before = snapshot(&env);

    let out = env.cmd(["rerun", &step2, "--upstream", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan = stdout(&out);
    let first = plan
        .find("tr a-z A-Z < raw.txt > mid.txt")
        .unwrap_or_else(|| panic!("step 1 is in the plan: {plan}"));
    let second = plan
        .find("rev mid.txt > final.txt")
        .unwrap_or_else(|| panic!("step 2 is in the plan: {plan}"));
    assert!(first < second, "step 1 comes first: {plan}");
    assert!(
        plan.contains("upstream step 1 of 1: remakes mid.txt"),
        "{plan}"
    );
    assert!(
        plan.contains("input mid.txt: missing (upstream step 1 remakes it)"),
        "{plan}"
    );
    assert!(!plan.contains("would refuse"), "{plan}");
    assert!(
        before == snapshot(&env),
        "a dry run changed the store or the tree"
    );

    let out = env.cmd(["rerun", &step2, "--upstream", "--dry-run", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).expect("the plan is JSON");
    assert_eq!(plan["run"], step2.as_str());
    assert_eq!(plan["refused"], false, "{plan}");
    let steps = plan["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2, "{plan}");
    assert_eq!(steps[0]["step"], "upstream");
    assert_eq!(steps[0]["run"], step1.as_str());
    assert_eq!(steps[0]["remakes"][0]["path"], "mid.txt");
    assert_eq!(steps[0]["remakes"][0]["for"], step2.as_str());
    assert_eq!(steps[1]["step"], "run");
    assert_eq!(steps[1]["run"], step2.as_str());
    assert_eq!(steps[1]["remade"][0], "mid.txt");
    assert_eq!(steps[1]["checks"]["inputs"][0]["now"], Value::Null);
    assert_eq!(steps[1]["blockers"], serde_json::json!([]));
    assert!(
        before == snapshot(&env),
        "a dry run changed the store or the tree"
    );
    assert_eq!(counts(&env.store)[0], 2, "no run was recorded");
}

/// A dry run is never refused by what would refuse the rerun: it names it in the plan, and
/// says the rerun would be refused.
#[test]
fn a_dry_run_reports_the_blockers_instead_of_being_refused() {
    let env = Env::local();
    let (_, step2) = chain(&env);
    // Step 1's input changed: its rerun would be refused (and so the chain).
    env.write("raw.txt", "changed\n");
    let out = env.cmd(["rerun", &step2, "--upstream"]);
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    assert!(!env.path("mid.txt").exists());
    let before = snapshot(&env);

    let out = env.cmd(["rerun", &step2, "--upstream", "--dry-run", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).expect("the plan is JSON");
    assert_eq!(plan["refused"], true, "{plan}");
    let blockers = plan["steps"][0]["blockers"].to_string();
    assert!(
        blockers.contains("input raw.txt differs from the record"),
        "{plan}"
    );
    let out = env.cmd(["rerun", &step2, "--upstream", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("would refuse: input raw.txt differs from the record"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("a rerun now would be refused"),
        "{}",
        stdout(&out)
    );
    // With --force the plan says what it would run past.
    let out = env.cmd(["rerun", &step2, "--upstream", "--dry-run", "--force"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("--force: runs although input raw.txt differs"),
        "{}",
        stdout(&out)
    );
    assert!(
        before == snapshot(&env),
        "a dry run changed the store or the tree"
    );
}

/// `--upstream` picks a producer by the one rule; when its rerun would be refused and another
/// recorded run made the same bytes and would pass, the plan names it.
#[test]
fn a_refused_upstream_step_names_another_run_that_made_the_same_bytes() {
    let env = Env::local();
    env.init_repo();
    // Data is not code: ignored, it is no untracked file of the code of the runs.
    env.write(".gitignore", "*.txt\n");
    env.git(&["add", ".gitignore"]);
    env.git(&["commit", "-q", "-m", "data is ignored"]);
    env.write("raw.txt", "abc\n");
    // Made the same bytes without reading raw.txt; older, so not the one chosen.
    let other = env.record(&["-o", "mid.txt", "--", "sh", "-c", "echo ABC > mid.txt"]);
    env.record(&[
        "-i",
        "raw.txt",
        "-o",
        "mid.txt",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z < raw.txt > mid.txt",
    ]);
    let step2 = env.record(&[
        "-i",
        "mid.txt",
        "-o",
        "final.txt",
        "--",
        "sh",
        "-c",
        "rev mid.txt > final.txt",
    ]);
    std::fs::remove_file(env.path("mid.txt")).expect("rm");
    env.write("raw.txt", "changed\n");
    let other_short = env.show(Some(&other))["short_id"]
        .as_str()
        .expect("short id")
        .to_string();

    let out = env.cmd(["rerun", &step2, "--upstream", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(
        plan.contains("would refuse: input raw.txt differs"),
        "{plan}"
    );
    assert!(
        plan.contains(&format!(
            "run {other_short} also produced these bytes (mid.txt): lineage rerun {other_short}"
        )),
        "{plan}"
    );
    let out = env.cmd(["rerun", &step2, "--upstream", "--dry-run", "--json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        plan["steps"][0]["also_produced_by"],
        serde_json::json!([{"run": other, "path": "mid.txt"}]),
        "{plan}"
    );
    // And the refusal of a real rerun says so too.
    let out = env.cmd(["rerun", &step2, "--upstream"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("lineage rerun {other_short}")),
        "{}",
        stderr(&out)
    );
}
