//! `lineage show PATH`, `--descendants`, `--depth`, graph formats and `lineage diff`, on the
//! shared pipeline (`fixture`): `evaluate` reads `model.bin` and a file inside `prepared/` (a
//! diamond through `prepare`); `report` joins two branches that both start at
//! `raw/data.csv`.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::fixture::{self, Pipeline};
use crate::util::*;

fn pipeline() -> Pipeline {
    Pipeline::new()
}

fn json_of(env: &Env, args: &[&str]) -> Value {
    let out = env.cmd(args);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn run_ids(doc: &Value) -> BTreeSet<String> {
    doc["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

fn has_edge(doc: &Value, run: &str, hash: &Value, role: &str) -> bool {
    doc["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .any(|e| e["run"] == run && e["artifact"] == *hash && e["role"] == role)
}

#[test]
fn the_ancestry_of_the_final_artifact_reaches_every_step_back_to_sources() {
    let p = pipeline();
    let doc = json_of(&p.env, &["show", "report.txt", "--format", "json"]);
    assert_eq!(doc["direction"], "ancestry");
    assert_eq!(doc["target"]["path"], "report.txt");
    assert_eq!(
        doc["target"]["hash"],
        blake3_hex(&std::fs::read(p.env.path("report.txt")).expect("read"))
    );
    let want: BTreeSet<String> = [&p.prepare, &p.train, &p.evaluate, &p.features, &p.report]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(run_ids(&doc), want);
    let hash_of =
        |rel: &str| Value::String(blake3_hex(&std::fs::read(p.env.path(rel)).expect("read")));
    assert!(has_edge(&doc, &p.train, &hash_of("model.bin"), "output"));
    assert!(has_edge(&doc, &p.evaluate, &hash_of("model.bin"), "input"));
    assert!(has_edge(&doc, &p.train, &hash_of("cfg.yaml"), "config"));
    assert!(has_edge(
        &doc,
        &p.prepare,
        &hash_of("raw/data.csv"),
        "input"
    ));
    assert!(has_edge(
        &doc,
        &p.features,
        &hash_of("raw/data.csv"),
        "input"
    ));
    // evaluate read a file inside prepare's output directory: linked through its contents.
    let inside = doc["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["run"] == *p.prepare && l["via"] == "inside_dir");
    let inside = inside.expect("an inside_dir link to prepare");
    assert_eq!(inside["path"], "train.csv");
    assert_eq!(inside["artifact"], hash_of("prepared/train.csv"));
    // Run objects carry the same fields as `show RUN --json`.
    let train = doc["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["id"] == *p.train)
        .expect("train");
    assert_eq!(train["params"]["lr"], 0.1);
    assert!(train["git"]["commit"].is_string());
}

#[test]
fn the_tree_prints_a_shared_ancestor_once() {
    let p = pipeline();
    let out = p.env.cmd(["show", "metrics.json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let tree = stdout(&out);
    let prepare_short = p.env.show(Some(&p.prepare))["short_id"]
        .as_str()
        .expect("short")
        .to_string();
    let full = tree
        .lines()
        .filter(|l| l.contains(&prepare_short) && !l.contains("shown above"))
        .count();
    let refs = tree
        .lines()
        .filter(|l| l.contains(&prepare_short) && l.contains("shown above"))
        .count();
    assert_eq!(full, 1, "prepare expanded once:\n{tree}");
    assert!(refs >= 1, "then referenced:\n{tree}");
    assert!(
        tree.contains("cfg.yaml") && tree.contains("source: no recorded run produced it"),
        "{tree}"
    );
    assert!(tree.contains("$ sh -c"), "{tree}");
    assert!(tree.starts_with("metrics.json"), "{tree}");
}

#[test]
fn the_same_bytes_copied_elsewhere_are_still_found() {
    let p = pipeline();
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let copy = elsewhere.path().join("renamed-model.pt");
    std::fs::copy(p.env.path("model.bin"), &copy).expect("copy");
    let doc = json_of(
        &p.env,
        &["show", copy.to_str().expect("utf-8"), "--format", "json"],
    );
    assert!(run_ids(&doc).contains(&p.train));
    assert!(run_ids(&doc).contains(&p.prepare));
    // And by hash alone.
    let hash = blake3_hex(&std::fs::read(&copy).expect("read"));
    let doc = json_of(&p.env, &["show", &hash, "--format", "json"]);
    assert!(run_ids(&doc).contains(&p.train));
    assert_eq!(doc["target"]["path"], Value::Null);
}

#[test]
fn a_file_inside_an_output_directory_is_traced_to_the_run_that_wrote_the_directory() {
    let p = pipeline();
    let doc = json_of(
        &p.env,
        &["show", "prepared/sub/meta.txt", "--format", "json"],
    );
    assert_eq!(run_ids(&doc), BTreeSet::from([p.prepare.clone()]));
    let out = p.env.cmd(["show", "prepared/sub/meta.txt"]);
    assert!(
        stdout(&out).contains("(as sub/meta.txt inside prepared)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_file_modified_after_it_was_recorded_is_said_so() {
    let p = pipeline();
    let recorded = blake3_hex(&std::fs::read(p.env.path("model.bin")).expect("read"));
    std::fs::write(p.env.path("model.bin"), "tampered").expect("write");
    let out = p.env.cmd(["show", "model.bin"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    let short = p.env.show(Some(&p.train))["short_id"]
        .as_str()
        .expect("short")
        .to_string();
    assert!(
        err.contains(&format!(
            "model.bin was modified after run {short} produced it"
        )),
        "{err}"
    );
    assert!(err.contains(&recorded), "{err}");
    assert!(err.contains(&blake3_hex(b"tampered")), "{err}");
}

#[test]
fn unknown_bytes_are_an_error() {
    let p = pipeline();
    p.env.write("new.txt", "never seen");
    let out = p.env.cmd(["show", "new.txt"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("nothing is known about new.txt"),
        "{}",
        stderr(&out)
    );
    let out = p.env.cmd(["show", &blake3_hex(b"never seen")]);
    assert_eq!(code(&out), 1);
    // A directory of copies no run read or wrote whole: the files inside that runs made
    // are named, the first in a hint; one with none keeps the plain answer.
    std::fs::create_dir_all(p.env.path("deploy")).expect("mkdir");
    std::fs::copy(p.env.path("model.bin"), p.env.path("deploy/model.bin")).expect("cp");
    p.env.write("deploy/README", "not made by any run");
    let out = p.env.cmd(["show", "deploy"]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains("nothing is known about deploy as a whole")
            && err.contains("1 file inside holds bytes recorded runs made: deploy/model.bin")
            && err.contains("hint: ask about a file: `lineage show deploy/model.bin`")
            && !err.contains("README"),
        "{err}"
    );
    p.env.write("notes/todo.txt", "never seen either");
    let out = p.env.cmd(["show", "notes"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("nothing is known about notes: no recorded run"),
        "{}",
        stderr(&out)
    );
    let out = p.env.cmd(["show", "blake3:xyz"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("not a valid hash"),
        "{}",
        stderr(&out)
    );
    let out = p.env.cmd(["show", "no/such/file"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("neither an existing path nor a recorded run id"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn descendants_walk_downstream_and_depth_bounds_either_walk() {
    let p = pipeline();
    let doc = json_of(
        &p.env,
        &["show", "raw/data.csv", "--descendants", "--format", "json"],
    );
    assert_eq!(doc["direction"], "descendants");
    let all: BTreeSet<String> = [&p.prepare, &p.train, &p.evaluate, &p.features, &p.report]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(run_ids(&doc), all);

    let doc = json_of(
        &p.env,
        &[
            "show",
            "raw/data.csv",
            "--descendants",
            "--depth",
            "1",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        run_ids(&doc),
        BTreeSet::from([p.prepare.clone(), p.features.clone()])
    );
    assert_eq!(doc["depth"], 1);

    let doc = json_of(
        &p.env,
        &["show", "report.txt", "--depth", "1", "--format", "json"],
    );
    assert_eq!(run_ids(&doc), BTreeSet::from([p.report.clone()]));
    let doc = json_of(
        &p.env,
        &["show", "report.txt", "--depth", "2", "--format", "json"],
    );
    assert_eq!(
        run_ids(&doc),
        BTreeSet::from([p.report.clone(), p.evaluate.clone(), p.features.clone()])
    );
    let out = p.env.cmd(["show", "report.txt", "--depth", "1"]);
    assert!(stdout(&out).contains("(depth limit)"), "{}", stdout(&out));

    // Changing the labels' bytes: what did the old labels feed? Everything downstream.
    let out = p.env.cmd(["show", "prepared/train.csv", "--descendants"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(
        text.contains("model.bin") && text.contains("metrics.json") && text.contains("report.txt"),
        "{text}"
    );
}

#[test]
fn several_runs_that_produced_the_same_bytes_are_all_shown() {
    let p = pipeline();
    // The train stage again, another seed: the same bytes.
    let again = fixture::train(&p.env, fixture::SECRET, "seed=4", &[]);
    let doc = json_of(
        &p.env,
        &["show", "model.bin", "--depth", "1", "--format", "json"],
    );
    assert_eq!(run_ids(&doc), BTreeSet::from([p.train.clone(), again]));
}

#[test]
fn dot_and_mermaid_graphs_render() {
    let p = pipeline();
    let out = p.env.cmd(["show", "report.txt", "--format", "dot"]);
    assert_eq!(code(&out), 0);
    let dot = stdout(&out);
    assert!(dot.starts_with("digraph lineage {"), "{dot}");
    assert_eq!(dot.matches("shape=box").count(), 5, "{dot}");
    match std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(dot.as_bytes())
                .expect("write");
            let res = child.wait_with_output().expect("dot");
            assert!(
                res.status.success(),
                "dot rejected the graph: {}",
                stderr(&res)
            );
            assert!(stdout(&res).contains("<svg"), "no svg");
        }
        // CI installs graphviz, so there the check must run.
        Err(e) => assert!(std::env::var_os("CI").is_none(), "dot not found on CI: {e}"),
    }
    let out = p.env.cmd(["show", "report.txt", "--format", "mermaid"]);
    let mermaid = stdout(&out);
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert_eq!(mermaid.matches("-->|output|").count(), 5, "{mermaid}");
}

#[test]
fn run_and_path_can_be_forced() {
    let p = pipeline();
    // A file named like a run prefix is taken as a path unless --run says otherwise.
    let prefix = p.report[..13].to_string();
    p.env.write(&prefix, "not a run");
    let out = p.env.cmd(["show", &prefix]);
    assert_eq!(code(&out), 1, "taken as an unknown path");
    assert!(
        stderr(&out).contains("nothing is known"),
        "{}",
        stderr(&out)
    );
    let doc = json_of(&p.env, &["show", &prefix, "--run", "--json"]);
    assert_eq!(doc["id"], *p.report);
    let out = p.env.cmd(["show", &p.report, "--descendants"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("not to a run"), "{}", stderr(&out));
}

fn venv(env: &Env, dir: &str, packages: &[&str]) {
    env.write(&format!("{dir}/pyvenv.cfg"), "version = 3.12.7\n");
    for p in packages {
        std::fs::create_dir_all(
            env.path(&format!("{dir}/lib/python3.12/site-packages/{p}.dist-info")),
        )
        .expect("mkdir");
    }
    std::fs::create_dir_all(env.path(&format!("{dir}/bin"))).expect("mkdir");
    std::os::unix::fs::symlink("/bin/sh", env.path(&format!("{dir}/bin/python3")))
        .expect("symlink");
}

#[test]
fn diff_names_changed_params_files_env_and_packages() {
    let env = Env::new();
    env.init_repo();
    venv(
        &env,
        "venv-a",
        &["torch-2.4.0", "numpy-2.1.0", "six-1.16.0"],
    );
    venv(
        &env,
        "venv-b",
        &["torch-2.5.1", "numpy-2.1.0", "tqdm-4.66.0"],
    );
    env.write("data/a.csv", "1\n");
    env.write("data/b.csv", "2\n");
    let run = |venv: &str, lr: &str, mode: &str, secret: &str| {
        let mut cmd = env.lineage();
        cmd.args([
            "run",
            "-q",
            "-i",
            "data",
            "-p",
            &format!("lr={lr}"),
            "-p",
            "seed=1",
            "--",
            &format!("{venv}/bin/python3"),
            "-c",
            "exit 0",
        ])
        .env("TRAIN_MODE", mode)
        .env("HF_TOKEN", secret);
        let out = output_within(cmd, Duration::from_secs(30));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        env.show(None)["id"].as_str().expect("id").to_string()
    };
    let a = run("venv-a", "0.01", "fast", "hf-secret-one-1111");
    env.write("data/b.csv", "2 changed\n");
    env.write("data/c.csv", "3\n");
    std::fs::remove_file(env.path("data/a.csv")).expect("rm");
    let b = run("venv-b", "0.02", "slow", "hf-secret-two-2222");

    let d = json_of(&env, &["diff", &a, &b, "--json"]);
    assert_eq!(
        d["params"]["changed"]["lr"],
        serde_json::json!({"a": 0.01, "b": 0.02})
    );
    assert!(d["params"]["changed"].get("seed").is_none());
    let data = d["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .find(|i| i["path"] == "data")
        .expect("data diff");
    assert_eq!(data["files"]["added"], serde_json::json!(["c.csv"]));
    assert_eq!(data["files"]["removed"], serde_json::json!(["a.csv"]));
    assert_eq!(data["files"]["changed"], serde_json::json!(["b.csv"]));
    assert_eq!(
        d["env"]["changed"]["TRAIN_MODE"],
        serde_json::json!({"a": "fast", "b": "slow"})
    );
    // The secret changed; the diff says so without revealing either value.
    assert_eq!(
        d["env"]["changed"]["HF_TOKEN"],
        serde_json::json!({"a": "[REDACTED]", "b": "[REDACTED]"})
    );
    assert_eq!(
        d["packages"]["changed"]["torch"],
        serde_json::json!({"a": "2.4.0", "b": "2.5.1"})
    );
    assert_eq!(d["packages"]["added"]["tqdm"], "4.66.0");
    assert_eq!(d["packages"]["removed"]["six"], "1.16.0");
    assert!(d["packages"]["changed"].get("numpy").is_none());
    let text = d.to_string();
    assert!(!text.contains("hf-secret"), "a secret leaked into the diff");

    let out = env.cmd(["diff", &a, &b]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    for needle in [
        "~ lr: 0.01 -> 0.02",
        "+ c.csv",
        "- a.csv",
        "~ b.csv",
        "~ TRAIN_MODE: fast -> slow",
        "~ HF_TOKEN: [REDACTED] -> [REDACTED]",
        "~ torch: 2.4.0 -> 2.5.1",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
}

#[test]
fn diff_accepts_paths_for_the_runs_that_produced_them() {
    let p = pipeline();
    let out = p.env.cmd(["diff", "model.bin", "metrics.json", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let d: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(d["a"], *p.train);
    assert_eq!(d["b"], *p.evaluate);
    let out = p.env.cmd(["diff", "cfg.yaml", "model.bin"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("no recorded run produced cfg.yaml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_run_that_passes_its_input_through_does_not_loop() {
    // `cp` puts the input's exact bytes inside the output directory: by content, the run
    // both read and wrote them. Both walks must still end, and say what happened.
    let env = Env::new();
    env.write("raw.csv", "1,2\n");
    let copy = env.record(&[
        "-i",
        "raw.csv",
        "-o",
        "staged",
        "--",
        "sh",
        "-c",
        "mkdir -p staged && cp raw.csv staged/raw.csv",
    ]);
    let use_it = env.record(&[
        "-i",
        "staged",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cat staged/raw.csv > out.txt",
    ]);
    let mut cmd = env.lineage();
    cmd.args(["show", "raw.csv", "--descendants", "--format", "json"]);
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        run_ids(&doc),
        BTreeSet::from([copy.clone(), use_it.clone()])
    );
    let mut cmd = env.lineage();
    cmd.args(["show", "out.txt"]);
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let tree = stdout(&out);
    // Causes come first: the copy run is not the producer of the raw.csv it read, so
    // there is no loop to cut.
    assert!(!tree.contains("shown above"), "no loop:\n{tree}");
    assert!(
        tree.contains("input raw.csv") && tree.contains("source: no recorded run produced it"),
        "raw.csv is a source:\n{tree}"
    );
}

/// Found by a user trial: the text tree of `--descendants` showed four readers of a file that
/// six runs read (the JSON had all six). Every reader is a branch of the tree.
#[test]
fn the_descendants_tree_shows_every_run_that_read_the_bytes() {
    let env = Env::new();
    env.write("data.csv", "x\n1\n");
    let mut readers = Vec::new();
    for i in 0..6 {
        let out = format!("model{i}.txt");
        let cmd = format!("cat data.csv > {out}; echo {i} >> {out}");
        readers.push(env.record(&["-i", "data.csv", "-o", &out, "--", "sh", "-c", &cmd]));
    }
    let tree = stdout(&env.cmd(["show", "data.csv", "--descendants"]));
    for id in &readers {
        assert!(tree.contains(&id[id.len() - 8..]), "{id} missing:\n{tree}");
    }
    assert_eq!(tree.matches("read by run").count(), 6, "{tree}");
}
