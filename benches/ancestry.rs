//! Ancestry walks on a large store: `cargo bench --bench ancestry`.
//!
//! Fills a store (once; kept in target/bench-stores/) with 100,000 runs through the same store
//! API `lineage run` uses: 2,000 chains of 50 runs, where run j of chain k reads the output
//! of run j-1 and a config shared by every run (fan-out 100,000), and run 25 of each chain
//! also reads the outputs of run 24 of the 10 chains before it (fan-in). Then it times the
//! real `lineage` binary: `show` on the deepest artifact of chain 1000 (ancestry) and
//! `show --descendants` on that chain's raw input, in JSON and tree form, against
//! `lineage --version` (process start) as the reference.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use lineage::model::{Artifact, ArtifactKind, Capture, Edge, Hash, Resources, Role, Status};
use lineage::redact::Policy;
use lineage::store::{Finish, NewRun, Store};

const CHAINS: usize = 2_000;
const DEPTH: usize = 50;
const FAN_IN_STEP: usize = 25;
const FAN_IN: usize = 10;
const PROBE_CHAIN: usize = 1_000;
/// 2026-11-26T00:00:00Z, the runs' day (step s starts in minute s).
const START_SECS: u64 = 1_795_651_200;

fn artifact(name: &str) -> Artifact {
    Artifact {
        hash: Hash::of(name.as_bytes()),
        kind: ArtifactKind::File,
        size: 1_000_000,
        file_count: 1,
    }
}

fn output_name(chain: usize, step: usize) -> String {
    if step == 0 {
        format!("raw/{chain}.csv")
    } else {
        format!("out/{chain}/{step}.bin")
    }
}

fn edge(role: Role, name: &str) -> Edge {
    Edge {
        role,
        path: name.to_string(),
        abs_path: format!("/data/{name}"),
        artifact: Some(artifact(name)),
        manifest: None,
        changed: false,
        written: (role == Role::Output).then_some(lineage::model::Written::All),
        observed: None,
    }
}

fn fill(dir: &Path) {
    let started = Instant::now();
    let mut store = Store::open(dir).expect("open store");
    let mut capture = Capture::default();
    for i in 0..30 {
        capture.env.insert(
            format!("VAR_{i}"),
            format!("value number {i} of the environment"),
        );
    }
    capture.system.hostname = Some("bench-host".into());
    let resources = Resources::default();
    // The store takes only what went through the redaction engine.
    let policy = Policy::new(&[], &[], &[], [0; 32]).expect("policy");
    let capture = policy.seal(capture);
    let argv = policy
        .redact_argv(&[
            b"python".to_vec(),
            b"train.py".to_vec(),
            b"--lr".to_vec(),
            b"0.01".to_vec(),
        ])
        .argv;
    let params = policy.redact_params(Vec::new());
    for step in 1..=DEPTH {
        for chain in 0..CHAINS {
            // The id's time is the run's start, as lineage makes it (replicas check it).
            let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                START_SECS + 60 * step as u64,
                0,
            ))
            .to_string();
            let mut edges = vec![
                edge(Role::Input, &output_name(chain, step - 1)),
                edge(Role::Config, "configs/shared.yaml"),
            ];
            if step == FAN_IN_STEP {
                for other in 1..=FAN_IN {
                    let c = (chain + CHAINS - other) % CHAINS;
                    edges.push(edge(Role::Input, &output_name(c, step - 1)));
                }
            }
            store
                .begin_run(&NewRun {
                    id: &id,
                    argv: &argv,
                    cwd: b"/work",
                    // Step s runs in minute s: causes come before effects.
                    started_at: &format!("2026-11-26T00:{step:02}:00.000000Z"),
                    pid: 1,
                    rerun_of: None,
                    capture: &capture,
                    edges: &edges,
                    params: &params,
                    blobs: &[],
                })
                .expect("begin");
            store
                .finish_run(
                    &id,
                    &Finish {
                        status: Status::Succeeded,
                        ended_at: &format!("2026-11-26T00:{step:02}:30.000000Z"),
                        exit_code: Some(0),
                        signal: None,
                        capture: &capture,
                        resources: &resources,
                        outputs: &[edge(Role::Output, &output_name(chain, step))],
                        changed_inputs: &[],
                        seen: &[],
                        metrics: &[],
                        params: None,
                        blobs: &[],
                        signer: None,
                    },
                )
                .expect("finish");
        }
        eprint!("\rfilling store: {} runs", step * CHAINS);
    }
    eprintln!(" in {:.1}s", started.elapsed().as_secs_f64());
}

fn median_ms(args: &[&str], store: &Path, runs: usize) -> (f64, usize) {
    let bin = env!("CARGO_BIN_EXE_lineage");
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let out = Command::new(bin)
            .args(args)
            .env("LINEAGE_STORE", store)
            .output()
            .expect("run lineage");
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        bytes = out.stdout.len();
    }
    times.sort_by(f64::total_cmp);
    (times[runs / 2], bytes)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-stores");
    let dir = root.join(format!("ancestry-{CHAINS}x{DEPTH}-v3"));
    if !dir.join("lineage.db").exists() {
        let partial = root.join("ancestry-partial");
        let _ = std::fs::remove_dir_all(&partial);
        fill(&partial);
        std::fs::rename(&partial, &dir).expect("keep the filled store");
    }
    let db_size = std::fs::metadata(dir.join("lineage.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    let deepest = Hash::of(output_name(PROBE_CHAIN, DEPTH).as_bytes()).to_string();
    let raw = Hash::of(output_name(PROBE_CHAIN, 0).as_bytes()).to_string();
    let runs = 15;
    println!(
        "store: {} runs ({CHAINS} chains x {DEPTH}, fan-in {FAN_IN} at step {FAN_IN_STEP}), lineage.db {:.0} MiB",
        CHAINS * DEPTH,
        db_size as f64 / (1 << 20) as f64
    );
    println!(
        "{:<58} {:>9} {:>10}",
        "command (median of 15)", "ms", "stdout"
    );
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            "lineage --version (process start, reference)".into(),
            vec!["--version"],
        ),
        (
            "lineage show RUN --json (one run)".into(),
            vec!["show", "--json"],
        ),
        (
            "lineage show DEEPEST --format json".into(),
            vec!["show", &deepest, "--format", "json"],
        ),
        ("lineage show DEEPEST (tree)".into(), vec!["show", &deepest]),
        (
            "lineage show DEEPEST --depth 5 --format json".into(),
            vec!["show", &deepest, "--depth", "5", "--format", "json"],
        ),
        (
            "lineage show RAW --descendants --format json".into(),
            vec!["show", &raw, "--descendants", "--format", "json"],
        ),
        (
            "lineage show RAW --descendants (tree)".into(),
            vec!["show", &raw, "--descendants"],
        ),
    ];
    for (name, args) in &cases {
        let (ms, bytes) = median_ms(args, &dir, runs);
        println!("{name:<58} {ms:>9.1} {:>8} KB", bytes / 1024);
    }
}
