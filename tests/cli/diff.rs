//! `lineage diff`: the command line token by token, resources in the units `show` uses, and
//! `--ancestry`, which walks two files' ancestries level by level to the change that
//! explains their difference, on real pipelines in real git repositories.

use serde_json::Value;

use crate::util::*;

fn json_of(env: &Env, args: &[&str]) -> Value {
    let out = env.cmd(args);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn text_of(env: &Env, args: &[&str]) -> String {
    let out = env.cmd(args);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn short(env: &Env, id: &str) -> String {
    env.show(Some(id))["short_id"]
        .as_str()
        .expect("short id")
        .to_string()
}

#[test]
fn diff_shows_the_command_line_token_by_token() {
    let env = Env::local();
    env.init_repo();
    let job = |lr: &str| {
        env.record(&[
            "-o",
            "out.txt",
            "--",
            "sh",
            "-c",
            "echo \"$@\" > out.txt",
            "train.py",
            "--lr",
            lr,
        ])
    };
    let (a, b) = (job("0.01"), job("0.02"));
    let text = text_of(&env, &["diff", &a, &b]);
    assert!(
        text.contains(
            "\ncommand\n  a: sh -c 'echo \"$@\" > out.txt' train.py --lr 0.01\n  \
             b: sh -c 'echo \"$@\" > out.txt' train.py --lr 0.02\n  ~ 0.01 -> 0.02  (after --lr)\n"
        ),
        "{text}"
    );
    assert!(!text.contains("same command"), "{text}");
    let d = json_of(&env, &["diff", &a, &b, "--json"]);
    assert_eq!(d["command"]["a"][4], "--lr");
    assert_eq!(
        d["command"]["tokens"],
        serde_json::json!([
            {"change": "changed", "a_index": 5, "b_index": 5, "a": "0.01", "b": "0.02"}
        ])
    );
    // The same command: null, and no section.
    let c = job("0.02");
    assert_eq!(
        json_of(&env, &["diff", &b, &c, "--json"])["command"],
        Value::Null
    );
    assert!(!text_of(&env, &["diff", &b, &c]).contains("\ncommand\n"));
}

#[test]
fn diff_prints_resources_in_the_units_show_uses_and_json_keeps_raw_numbers() {
    let env = Env::local();
    env.init_repo();
    let small = env.record(&["--", "sh", "-c", "true"]);
    // A shell that holds 40 MB in a variable: a peak resident set a few times larger.
    let big = env.record(&[
        "--",
        "sh",
        "-c",
        "x=$(head -c 40000000 /dev/zero | tr '\\0' a); echo ${#x} > /dev/null",
    ]);
    let text = text_of(&env, &["diff", &small, &big]);
    let rss = text
        .lines()
        .find(|l| l.starts_with("  ~ max rss: "))
        .unwrap_or_else(|| panic!("a max rss line in\n{text}"));
    assert!(rss.ends_with(" MiB") && rss.contains(" MiB -> "), "{rss}");
    for raw in ["max_rss_bytes", "wall_seconds", "cpu_seconds"] {
        assert!(!text.contains(raw), "{raw} in\n{text}");
    }
    let d = json_of(&env, &["diff", &small, &big, "--json"]);
    let bytes = &d["resources"]["max_rss_bytes"];
    assert!(
        bytes["a"].is_u64() && bytes["b"].as_u64() > bytes["a"].as_u64(),
        "{bytes}"
    );
}

/// A three-stage pipeline (prepare -> featurize -> train) in a git repository whose
/// params.yaml is tracked, changed without a commit between two recordings, and whose outputs
/// are untracked files: returns the ids of (prepare, featurize, train), in that order.
fn pipeline(env: &Env) -> [String; 3] {
    [
        env.record(&[
            "-i",
            "raw.txt",
            "-c",
            "params.yaml",
            "-o",
            "clean.txt",
            "--",
            "sh",
            "-c",
            "cat raw.txt params.yaml > clean.txt",
        ]),
        env.record(&[
            "-i",
            "clean.txt",
            "-o",
            "features.txt",
            "--",
            "sh",
            "-c",
            "tr a-z A-Z < clean.txt > features.txt",
        ]),
        env.record(&[
            "-i",
            "features.txt",
            "-o",
            "model.txt",
            "--",
            "sh",
            "-c",
            "rev features.txt > model.txt",
        ]),
    ]
}

fn pipeline_repo() -> Env {
    let env = Env::local();
    env.init_repo();
    env.write("raw.txt", "rows\n");
    env.write("params.yaml", "train:\n  n_est: 50\n  depth: 3\n");
    env.git(&["add", "raw.txt", "params.yaml"]);
    env.git(&["commit", "-q", "-m", "data and params"]);
    env
}

#[test]
fn diff_ancestry_names_the_upstream_param_that_explains_the_difference() {
    let env = pipeline_repo();
    let first = pipeline(&env);
    std::fs::copy(env.path("model.txt"), env.path("model_a.txt")).expect("copy");
    env.write("params.yaml", "train:\n  n_est: 100\n  depth: 3\n");
    let second = pipeline(&env);
    let text = text_of(&env, &["diff", "model_a.txt", "model.txt", "--ancestry"]);
    let (pa, pb) = (short(&env, &first[0]), short(&env, &second[0]));
    let explained = text
        .split("\nexplained by\n")
        .nth(1)
        .unwrap_or_else(|| panic!("an explanation in\n{text}"));
    assert_eq!(
        explained,
        format!(
            "  train.n_est: 50 -> 100; config params.yaml changed: run {pa} (a) vs run {pb} (b), \
             two levels up, through input clean.txt\n"
        ),
        "{text}"
    );
    assert!(
        text.starts_with(&format!(
            "comparing the ancestry of model_a.txt (a, made by run {}) with model.txt (b, made by run {})\n",
            short(&env, &first[2]),
            short(&env, &second[2])
        )),
        "{text}"
    );
    // The levels below differ only in their inputs' bytes: no code, params or command
    // (the uncommitted params.yaml and the untracked outputs are data, not code).
    let level = |n: usize| {
        text.split(&format!("\nlevel {n}"))
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .unwrap_or_else(|| panic!("level {n} in\n{text}"))
            .to_string()
    };
    for n in [0, 1] {
        let l = level(n);
        assert!(l.contains("\n  inputs\n"), "{l}");
        for absent in ["code", "params", "command"] {
            assert!(!l.contains(absent), "{absent} at level {n}: {l}");
        }
    }
    assert!(
        level(2).contains("nothing above this level differs"),
        "{text}"
    );
    let d = json_of(
        &env,
        &["diff", "model_a.txt", "model.txt", "--ancestry", "--json"],
    );
    let levels = d["levels"].as_array().expect("levels");
    let got: Vec<(u64, &str, &str, &str)> = levels
        .iter()
        .map(|l| {
            (
                l["depth"].as_u64().expect("depth"),
                l["finding"].as_str().expect("finding"),
                l["a"].as_str().expect("a"),
                l["b"].as_str().expect("b"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, "inputs", first[2].as_str(), second[2].as_str()),
            (1, "inputs", first[1].as_str(), second[1].as_str()),
            (2, "recipe", first[0].as_str(), second[0].as_str()),
        ]
    );
    assert_eq!(
        levels[2]["recipe"],
        serde_json::json!(["params", "configs"])
    );
    assert_eq!(levels[2]["through"]["b"], "clean.txt");
    assert_eq!(
        levels[2]["diff"]["params"]["changed"]["train.n_est"],
        serde_json::json!({"a": 50, "b": 100})
    );
    assert_eq!(d["a"]["run"], first[2].as_str());
}

#[test]
fn diff_ancestry_tells_a_changed_source_and_a_job_that_is_not_deterministic() {
    let env = pipeline_repo();
    pipeline(&env);
    std::fs::copy(env.path("model.txt"), env.path("model_a.txt")).expect("copy");
    // The raw data changed, which no recorded run produced.
    env.write("raw.txt", "other rows\n");
    pipeline(&env);
    let d = json_of(
        &env,
        &["diff", "model_a.txt", "model.txt", "--ancestry", "--json"],
    );
    let last = d["levels"]
        .as_array()
        .expect("levels")
        .last()
        .expect("a level");
    assert_eq!(
        (
            &last["depth"],
            &last["finding"],
            &last["a"],
            &last["through"]["a"]
        ),
        (
            &serde_json::json!(3),
            &serde_json::json!("source"),
            &Value::Null,
            &serde_json::json!("raw.txt")
        ),
        "{d}"
    );
    let text = text_of(&env, &["diff", "model_a.txt", "model.txt", "--ancestry"]);
    assert!(
        text.contains("the bytes differ at a source: no recorded run produced either side")
            && text.contains(
                "\nexplained by\n  input raw.txt differs at its source, which no recorded run \
                 produced ("
            )
            && text.ends_with("), three levels up\n"),
        "{text}"
    );
    // The same command on the same bytes, different outputs.
    let noisy = |out: &str| {
        env.record(&[
            "-i",
            "raw.txt",
            "-o",
            out,
            "--",
            "sh",
            "-c",
            "cat raw.txt /proc/sys/kernel/random/uuid > \"$0\"",
            out,
        ])
    };
    noisy("n.txt");
    std::fs::copy(env.path("n.txt"), env.path("n_a.txt")).expect("copy");
    noisy("n.txt");
    let d = json_of(&env, &["diff", "n_a.txt", "n.txt", "--ancestry", "--json"]);
    assert_eq!(d["levels"][0]["finding"], "not_above", "{d}");
    let text = text_of(&env, &["diff", "n_a.txt", "n.txt", "--ancestry"]);
    assert!(
        text.contains("the same recipe on the same input bytes made different bytes"),
        "{text}"
    );
    // The same bytes: nothing to explain; a run has no ancestry to compare.
    let text = text_of(&env, &["diff", "model.txt", "model.txt", "--ancestry"]);
    assert!(text.contains(": nothing differs"), "{text}");
    let id = env.show(None)["id"].as_str().expect("id").to_string();
    let out = env.cmd(["diff", &id, "model.txt", "--ancestry"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("--ancestry applies to a file, a directory or a hash"),
        "{}",
        stderr(&out)
    );
}
