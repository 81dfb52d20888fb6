//! Distributed jobs as one logical run (docs/recording.md, "Distributed jobs"): `srun lineage
//! run -- ...` and `torchrun --no-python lineage run -- ...` record one run per rank, grouped
//! into one launch (one row in `list`, its ranks in `show`); a rank's outputs are its own only
//! where it wrote them; a rank is not rerun alone; and `lineage run -- torchrun ...` stays one
//! run whose memory is all its processes' together. Ranks are real concurrent `lineage run`
//! processes against one store, with the launcher's variables set as srun and torchrun set them.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

/// `lineage run -q ARGS` as rank `vars` of a launch, started now.
fn rank(env: &Env, vars: &[(&str, String)], args: &[&str]) -> Command {
    let mut cmd = env.lineage();
    cmd.args(["run", "-q"]).args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// Run the ranks at once; every one must finish within a minute.
fn launch(cmds: Vec<Command>) -> Vec<Output> {
    std::thread::scope(|s| {
        let ranks: Vec<_> = cmds
            .into_iter()
            .map(|c| s.spawn(move || output_within(c, Duration::from_secs(60))))
            .collect();
        ranks
            .into_iter()
            .map(|r| r.join().expect("rank thread"))
            .collect()
    })
}

/// What `srun --ntasks=N` sets in task `procid` of step `step` of job 4242.
fn srun_task(step: u32, procid: u32, ntasks: u32) -> Vec<(&'static str, String)> {
    vec![
        ("SLURM_JOB_ID", "4242".into()),
        ("SLURM_STEP_ID", step.to_string()),
        ("SLURM_PROCID", procid.to_string()),
        ("SLURM_LOCALID", (procid % 2).to_string()),
        ("SLURM_NODEID", (procid / 2).to_string()),
        ("SLURM_STEP_NUM_TASKS", ntasks.to_string()),
        ("SLURM_NTASKS", ntasks.to_string()),
    ]
}

fn json(env: &Env, args: &[&str]) -> Value {
    let out = env.cmd(args);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The launch's ranks from `list --json`'s item for it: rank -> run id.
fn members(item: &Value) -> BTreeMap<u64, String> {
    item["group"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["rank"].as_u64().expect("rank"),
                m["id"].as_str().expect("id").to_string(),
            )
        })
        .collect()
}

/// The whole story on one Slurm step of 4 tasks, each running `lineage run -o model.bin`
/// over the same command (as srun runs it), after an earlier job left a model there. Rank 0
/// saves the model once rank 3 has started; ranks 1 and 2 exit at once; rank 3 waits until
/// the model is saved and writes nothing.
#[test]
fn the_ranks_of_an_srun_step_are_one_launch_and_each_owns_only_what_it_wrote() {
    let env = Env::new();
    env.init_repo();
    let earlier = env.record(&["-o", "model.bin", "--", "sh", "-c", "echo v0 > model.bin"]);
    // Outside the work tree (and in /tmp): files for the ranks to meet by, not data.
    let sync = env.root().join("sync");
    std::fs::create_dir_all(&sync).expect("mkdir sync");
    let script = format!(
        "case $SLURM_PROCID in \
         0) while [ ! -e {s}/r3 ]; do sleep 0.05; done; echo v1 > model.bin; touch {s}/saved;; \
         3) touch {s}/r3; while [ ! -e {s}/saved ]; do sleep 0.05; done;; \
         esac",
        s = sync.display()
    );
    let outs = launch(
        (0..4)
            .map(|r| {
                rank(
                    &env,
                    &srun_task(0, r, 4),
                    &["-o", "model.bin", "--", "sh", "-c", &script],
                )
            })
            .collect(),
    );
    for (r, out) in outs.iter().enumerate() {
        assert_eq!(code(out), 0, "rank {r}: {}", stderr(out));
    }

    // `list`: one row for the launch, named by rank 0, above the earlier run.
    let items = json(&env, &["list", "--json"]);
    let items = items.as_array().expect("items");
    assert_eq!(items.len(), 2, "{items:#?}");
    let (item, plain) = (&items[0], &items[1]);
    assert_eq!(plain["id"], earlier.as_str());
    assert!(plain.get("group").is_none(), "{plain}");
    let ranks = members(item);
    assert_eq!(ranks.keys().copied().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(item["id"], ranks[&0].as_str());
    assert_eq!(item["status"], "succeeded");
    assert_eq!(item["group"]["world_size"], 4);
    assert_eq!(item["group"]["launcher"], "slurm");
    assert_eq!(item["group"]["launch"], "slurm job 4242 step 0");
    let text = stdout(&env.cmd(["list"]));
    assert_eq!(text.matches("4 ranks").count(), 1, "{text}");
    // `-n` counts rows: the launch is one.
    let two = json(&env, &["list", "-n", "2", "--json"]);
    assert_eq!(two.as_array().expect("items").len(), 2, "{two:#}");
    assert_eq!(two[1]["id"], earlier.as_str());

    // Outputs: only rank 0 made the model; the others are on record with it, as nobody's
    // product (rank 3 saw it change, but never wrote it).
    let written = |r: u64| {
        let run = env.show(Some(&ranks[&r]));
        let o = artifact(&run, "outputs", "model.bin").clone();
        (o["written"].clone(), o["opened"].clone(), o["hash"].clone())
    };
    let v1 = blake3_hex(b"v1\n");
    assert_eq!(written(0).0, "all");
    assert_eq!(written(0).2, v1.as_str());
    for r in [1, 2] {
        assert_eq!(written(r).0, "none", "rank {r} exited before rank 0 saved");
    }
    let (w3, opened3, h3) = written(3);
    assert_eq!(h3, v1.as_str(), "rank 3 ended after the save");
    if opened3 == false {
        assert_eq!(
            w3, "none",
            "observed never opening it, rank 3 did not write it"
        );
    }
    let graph = json(
        &env,
        &["show", "model.bin", "--format", "json", "--depth", "1"],
    );
    let producers: Vec<&str> = graph["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(producers, [ranks[&0].as_str()], "{graph:#}");

    // `show` of a rank: the launch and its ranks.
    let run = env.show(Some(&ranks[&2]));
    let g = &run["group"];
    assert_eq!(g["rank"], 2);
    assert_eq!(g["local_rank"], 0);
    assert_eq!(g["status"], "succeeded");
    assert_eq!(g["members"].as_array().expect("members").len(), 4);
    assert!(g["resources"]["user_cpu_seconds"].is_number(), "{g:#}");
    let out = env.cmd(["show", &ranks[&2]]);
    let text = stdout(&out);
    assert!(
        text.contains("launch: rank 2 of slurm job 4242 step 0 (4 ranks, succeeded)"),
        "{text}"
    );
    assert!(text.contains("(this run)"), "{text}");
    assert!(text.contains("all ranks: wall"), "{text}");
    let earlier_run = env.show(Some(&earlier));
    assert!(earlier_run.get("group").is_none(), "{earlier_run:#}");

    // A rank rerun alone would wait for its peers: refused, at once, naming the launch.
    let out = env.cmd(["rerun", &ranks[&1]]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("rank 1 of a 4-rank launch (slurm job 4242 step 0)"),
        "{err}"
    );
    assert!(err.contains("srun lineage run"), "{err}");
    assert_eq!(err.lines().count(), 2, "the error and its hint: {err}");
}

#[test]
fn a_launch_with_a_failed_rank_is_failed_and_says_which() {
    let env = Env::new();
    env.init_repo();
    let outs = launch(
        (0..2)
            .map(|r| {
                rank(
                    &env,
                    &srun_task(1, r, 2),
                    &["--", "sh", "-c", "[ $SLURM_PROCID = 1 ] && exit 3; exit 0"],
                )
            })
            .collect(),
    );
    assert_eq!(outs.iter().map(code).collect::<Vec<_>>(), [0, 3]);
    let items = json(&env, &["list", "--json"]);
    assert_eq!(items.as_array().expect("items").len(), 1, "{items:#}");
    assert_eq!(items[0]["status"], "failed");
    assert_eq!(items[0]["exit_code"], 3);
    assert_eq!(items[0]["group"]["status"], "failed");
    let text = stdout(&env.cmd(["list"]));
    assert!(text.contains("failed (rank 1 exit 3)"), "{text}");
    assert!(text.contains("2 ranks"), "{text}");
}

/// A torchrun-like launcher: it starts `argv[2:]` twice as ranks 0 and 1 of one launch, with
/// the variables torchrun gives its workers (`torchrun --no-python lineage run -- ...`).
const TORCHRUN: &str = r#"
import os, subprocess, sys
run_id, cmd = sys.argv[1], sys.argv[2:]
ranks = []
for r in range(2):
    env = dict(os.environ, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", GROUP_RANK="0",
               MASTER_ADDR="127.0.0.1", MASTER_PORT="29500", TORCHELASTIC_RUN_ID=run_id,
               TORCHELASTIC_RESTART_COUNT="0")
    ranks.append(subprocess.Popen(cmd, env=env))
sys.exit(max(p.wait() for p in ranks))
"#;

/// `python3 torchrun.py RUN_ID lineage run -q -- sh -c ...`, in the test's environment.
fn torchrun(env: &Env, run_id: &str) -> Output {
    let base = env.lineage();
    let mut cmd = Command::new("python3");
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(&env.work)
        .arg(env.path("torchrun.py"))
        .arg(run_id)
        .arg(env!("CARGO_BIN_EXE_lineage"))
        .args(["run", "-q", "--", "sh", "-c", "echo rank $RANK"]);
    output_within(cmd, Duration::from_secs(60))
}

#[test]
fn torchrun_workers_are_one_launch_each_time_it_runs() {
    let env = Env::new();
    env.init_repo();
    env.write("torchrun.py", TORCHRUN);
    // The default rendezvous id (`none`) twice: two launches, told apart by their agent.
    for run_id in ["none", "none", "5c6f0e1e"] {
        let out = torchrun(&env, run_id);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let items = json(&env, &["list", "--json"]);
    let items = items.as_array().expect("items");
    assert_eq!(items.len(), 3, "{items:#?}");
    let ids: std::collections::BTreeSet<&str> = items
        .iter()
        .map(|i| i["group"]["id"].as_str().expect("group id"))
        .collect();
    assert_eq!(ids.len(), 3, "three launches: {items:#?}");
    for item in items {
        assert_eq!(members(item).len(), 2, "{item:#}");
        assert_eq!(item["group"]["launcher"], "torch");
    }
    assert_eq!(
        items[0]["group"]["launch"],
        "torchrun 127.0.0.1:29500 (rendezvous 5c6f0e1e)"
    );
    assert_eq!(items[1]["group"]["launch"], "torchrun 127.0.0.1:29500");
    let rank1 = &members(&items[0])[&1];
    let out = env.cmd(["rerun", rank1]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("torchrun"), "{}", stderr(&out));
}

/// `lineage run -- torchrun ...` wraps the whole launch once: one run, no group, and its
/// memory is its processes' together (two workers of 64 MiB each), not the largest one's.
#[test]
fn a_wrapped_launcher_is_one_run_whose_memory_adds_up_its_workers() {
    let env = Env::new();
    env.init_repo();
    env.write(
        "launcher.py",
        r#"
import subprocess, sys
hold = "import time; b = b'x' * (64 << 20); time.sleep(1.5)"
workers = [subprocess.Popen([sys.executable, "-c", hold]) for _ in range(2)]
sys.exit(max(w.wait() for w in workers))
"#,
    );
    let out = env.cmd([
        "run",
        "-q",
        "--sample-interval",
        "0.1",
        "--",
        "python3",
        "launcher.py",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = env.show(None);
    assert!(run.get("group").is_none(), "{run:#}");
    let res = &run["resources"];
    let largest = res["max_rss_bytes"].as_u64().expect("max rss");
    let total = res["peak_total_rss_bytes"].as_u64().expect("total rss");
    assert!(largest >= 64 << 20, "{res}");
    assert!(total >= 128 << 20, "two workers of 64 MiB together: {res}");
    assert!(total > largest, "{res}");
    let text = stdout(&env.cmd(["show"]));
    assert!(text.contains("all processes"), "{text}");
    assert_eq!(
        json(&env, &["list", "--json"])
            .as_array()
            .expect("items")
            .len(),
        1
    );
}
