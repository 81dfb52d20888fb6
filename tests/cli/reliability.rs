//! Faults and concurrency: lineage killed mid-run, many jobs against one store.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

#[test]
fn a_killed_lineage_takes_its_job_down_and_the_run_is_marked_interrupted() {
    let env = Env::new();
    let mut cmd = env.lineage();
    cmd.args([
        "run",
        "--",
        "sh",
        "-c",
        "trap 'echo term > got-term; exit 0' TERM; touch ready; while :; do sleep 0.05; done",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("lineage");
    wait_for(&env.path("ready"));
    assert_eq!(env.show(None)["status"], "running");
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("kill");
    let _ = child.wait();
    // The job is not left running: the kernel sent it SIGTERM when lineage died.
    wait_for(&env.path("got-term"));
    // The next command that opens the store sees the wrapper gone.
    let run = env.show(None);
    assert_eq!(run["status"], "interrupted", "{run}");
    assert_eq!(run["ended_at"], Value::Null);
}

#[test]
fn sixty_four_jobs_at_once_are_all_recorded() {
    let env = Env::new();
    env.write("data.csv", "x\n");
    // Create the store first, as a user's first run would have.
    assert_eq!(code(&env.cmd(["run", "-q", "--", "true"])), 0);
    let start = Instant::now();
    let children: Vec<_> = (0..64)
        .map(|i| {
            let mut cmd = env.lineage();
            cmd.args([
                "run",
                "-q",
                "-i",
                "data.csv",
                "-o",
                &format!("out/{i}.txt"),
                "--",
                "sh",
                "-c",
                &format!("mkdir -p out && echo {i} > out/{i}.txt"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            cmd.spawn().expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(!stderr(&out).contains("locked"), "{}", stderr(&out));
        assert!(start.elapsed() < Duration::from_secs(120), "hung");
    }
    let out = env.cmd(["list", "--json"]);
    let runs: Value = serde_json::from_slice(&out.stdout).expect("json");
    let runs = runs.as_array().expect("array");
    assert_eq!(runs.len(), 65);
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
    let outputs: std::collections::BTreeSet<String> = runs
        .iter()
        .flat_map(|r| r["outputs"].as_array().expect("outputs").clone())
        .map(|o| o.as_str().expect("path").to_string())
        .collect();
    assert_eq!(
        outputs.len(),
        64,
        "every job's output edge arrived exactly once"
    );
    // The shared input is stored once, however many runs read it.
    let n: i64 = env
        .db()
        .query_row(
            "SELECT count(*) FROM artifacts WHERE hash = ?1",
            [blake3::hash(b"x\n").to_hex().as_str()],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(n, 1);
}
