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
    assert_eq!(
        explained(&text),
        [format!(
            "train.n_est: 50 -> 100 in runs {pa} -> {pb}, two levels up"
        )],
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
            && text.contains("\nexplained by\n  input raw.txt: ")
            && text.ends_with(" at its source (no recorded run made it), three levels up\n"),
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

/// The levels of `diff --ancestry --json` as (depth, finding, a, b, recipe).
fn levels_of(d: &Value) -> Vec<(u64, String, Value, Value, Value)> {
    d["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .map(|l| {
            (
                l["depth"].as_u64().expect("depth"),
                l["finding"].as_str().expect("finding").to_string(),
                l["a"].clone(),
                l["b"].clone(),
                l["recipe"].clone(),
            )
        })
        .collect()
}

/// The lines under "explained by".
fn explained(text: &str) -> Vec<String> {
    text.split("\nexplained by\n")
        .nth(1)
        .unwrap_or_else(|| panic!("an explanation in\n{text}"))
        .lines()
        .map(|l| l.trim_start().to_string())
        .collect()
}

/// Two stages, `-c p.yaml -o mid.txt` then `-i mid.txt -o out.txt` with a committed script:
/// returns their ids.
fn two_stages(env: &Env) -> [String; 2] {
    [
        env.record(&[
            "-c",
            "p.yaml",
            "-o",
            "mid.txt",
            "--",
            "sh",
            "-c",
            "cat p.yaml > mid.txt",
        ]),
        env.record(&[
            "-i", "mid.txt", "-o", "out.txt", "--", "sh", "up.sh", "mid.txt", "out.txt",
        ]),
    ]
}

#[test]
fn diff_ancestry_does_not_blame_code_for_a_commit_that_changed_only_a_config() {
    let env = Env::local();
    env.init_repo();
    env.write("up.sh", "tr a-z A-Z < \"$1\" > \"$2\"\n");
    env.write("p.yaml", "k: 1\n");
    env.git(&["add", "up.sh", "p.yaml"]);
    env.git(&["commit", "-q", "-m", "stages"]);
    let first = two_stages(&env);
    std::fs::copy(env.path("out.txt"), env.path("out_a.txt")).expect("copy");
    env.write("p.yaml", "k: 2\n");
    env.git(&["commit", "-qam", "k=2"]);
    let second = two_stages(&env);
    let args = ["diff", "out_a.txt", "out.txt", "--ancestry"];
    let d = json_of(&env, &[&args[..], &["--json"]].concat());
    // The commit changed, but no file of the code did: only the stage whose config changed
    // is named, for its params and config.
    assert_eq!(
        levels_of(&d),
        [
            (
                0,
                "inputs".to_string(),
                Value::from(first[1].as_str()),
                Value::from(second[1].as_str()),
                serde_json::json!([])
            ),
            (
                1,
                "recipe".to_string(),
                Value::from(first[0].as_str()),
                Value::from(second[0].as_str()),
                serde_json::json!(["params", "configs"])
            ),
        ],
        "{d}"
    );
    // The file the commit changed, at both levels: a config, which is data.
    for level in 0..2 {
        let l = &d["levels"][level];
        assert_eq!(l["diff"]["code"]["files"], serde_json::json!(["p.yaml"]));
        assert_eq!(l["code_files"], serde_json::json!([]));
    }
    let text = text_of(&env, &args);
    assert!(!text.contains("code"), "{text}");
    assert_eq!(
        explained(&text),
        [format!(
            "k: 1 -> 2 in runs {} -> {}, one level up",
            short(&env, &first[0]),
            short(&env, &second[0])
        )],
        "{text}"
    );
    // A commit that changes the script is code, and names the script, at its stage only.
    std::fs::copy(env.path("out.txt"), env.path("out_b.txt")).expect("copy");
    env.write("up.sh", "tr a-z A-Z < \"$1\" | rev > \"$2\"\n");
    env.git(&["commit", "-qam", "reverse"]);
    let third = two_stages(&env);
    let args = ["diff", "out_b.txt", "out.txt", "--ancestry"];
    let d = json_of(&env, &[&args[..], &["--json"]].concat());
    let levels = d["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 1, "{d}");
    assert_eq!(levels[0]["recipe"], serde_json::json!(["code"]), "{d}");
    assert_eq!(levels[0]["code_files"], serde_json::json!(["up.sh"]), "{d}");
    assert_eq!(
        explained(&text_of(&env, &args)),
        [format!(
            "code: up.sh differs in runs {} -> {}, which made a and b",
            short(&env, &second[1]),
            short(&env, &third[1])
        )]
    );
}

#[test]
fn diff_ancestry_lists_a_pair_of_runs_reached_twice_once() {
    let env = pipeline_repo();
    // prepare writes two files; featurize reads one, train reads featurize's and the other:
    // prepare is reached at depth 1 (through test.txt) and at depth 2 (through train.txt).
    let stages = |env: &Env| -> [String; 3] {
        [
            env.record(&[
                "-c",
                "params.yaml",
                "-o",
                "train.txt",
                "-o",
                "test.txt",
                "--",
                "sh",
                "-c",
                "cat params.yaml > train.txt; rev params.yaml > test.txt",
            ]),
            env.record(&[
                "-i",
                "train.txt",
                "-o",
                "feat.txt",
                "--",
                "sh",
                "-c",
                "tr a-z A-Z < train.txt > feat.txt",
            ]),
            env.record(&[
                "-i",
                "feat.txt",
                "-i",
                "test.txt",
                "-o",
                "model.txt",
                "--",
                "sh",
                "-c",
                "cat feat.txt test.txt > model.txt",
            ]),
        ]
    };
    let first = stages(&env);
    std::fs::copy(env.path("model.txt"), env.path("model_a.txt")).expect("copy");
    env.write("params.yaml", "train:\n  n_est: 100\n  depth: 3\n");
    let second = stages(&env);
    let args = ["diff", "model_a.txt", "model.txt", "--ancestry"];
    let d = json_of(&env, &[&args[..], &["--json"]].concat());
    let pairs: Vec<(Value, Value)> = levels_of(&d)
        .into_iter()
        .map(|(_, _, a, b, _)| (a, b))
        .collect();
    let prepare = (
        Value::from(first[0].as_str()),
        Value::from(second[0].as_str()),
    );
    assert_eq!(
        pairs.iter().filter(|p| **p == prepare).count(),
        1,
        "prepare listed once: {d}"
    );
    assert_eq!(pairs.len(), 3, "{d}");
    let text = text_of(&env, &args);
    assert_eq!(
        explained(&text),
        [format!(
            "train.n_est: 50 -> 100 in runs {} -> {}, one level up",
            short(&env, &first[0]),
            short(&env, &second[0])
        )],
        "{text}"
    );
}

#[test]
fn diff_ancestry_follows_an_input_only_one_run_read_to_its_producer() {
    let env = Env::local();
    env.init_repo();
    env.write("data.txt", "rows\n");
    let ckpt = env.record(&[
        "-o",
        "ckpt/epoch_020.json",
        "--",
        "sh",
        "-c",
        "mkdir -p ckpt; echo '{\"epoch\": 20}' > ckpt/epoch_020.json",
    ]);
    let train = |resume: &[&str], inputs: &[&str]| {
        let mut args = vec!["-i", "data.txt"];
        for i in inputs {
            args.extend(["-i", i]);
        }
        args.extend([
            "-o",
            "model.json",
            "--",
            "sh",
            "-c",
            "cat data.txt ${2:+\"$2\"} > model.json",
            "train",
        ]);
        args.extend(resume);
        env.record(&args)
    };
    let a = train(&[], &[]);
    env.write(
        "archive/v1/model.json",
        std::fs::read(env.path("model.json")).expect("read"),
    );
    let b = train(
        &["--resume", "ckpt/epoch_020.json"],
        &["ckpt/epoch_020.json"],
    );
    let args = ["diff", "archive/v1/model.json", "model.json", "--ancestry"];
    let d = json_of(&env, &[&args[..], &["--json"]].concat());
    let levels = d["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 2, "{d}");
    assert_eq!(
        (&levels[0]["finding"], &levels[0]["inputs_differ"]),
        (&serde_json::json!("recipe"), &serde_json::json!(true)),
        "an added input is an input difference: {d}"
    );
    assert_eq!(
        (
            &levels[1]["finding"],
            &levels[1]["through"],
            &levels[1]["artifact"]["a"],
            &levels[1]["a"],
            &levels[1]["b"]
        ),
        (
            &serde_json::json!("unpaired"),
            &serde_json::json!({"a": null, "b": "ckpt/epoch_020.json"}),
            &Value::Null,
            &Value::Null,
            &serde_json::json!(ckpt)
        ),
        "{d}"
    );
    let text = text_of(&env, &args);
    assert!(!text.contains("nothing above this level differs"), "{text}");
    let hash = blake3_hex(&std::fs::read(env.path("ckpt/epoch_020.json")).expect("read"));
    assert_eq!(
        explained(&text),
        [
            format!(
                "command: + --resume ckpt/epoch_020.json in runs {} -> {}, which made a and b",
                short(&env, &a),
                short(&env, &b)
            ),
            format!(
                "input ckpt/epoch_020.json: (none) -> {} (read only by b), made by run {}, \
                 one level up",
                &hash["blake3:".len()..][..12],
                short(&env, &ckpt)
            ),
        ],
        "{text}"
    );
}

#[test]
fn diff_ancestry_explains_one_cause_a_line_params_before_the_command() {
    let env = pipeline_repo();
    let first = pipeline(&env);
    std::fs::copy(env.path("model.txt"), env.path("model_a.txt")).expect("copy");
    env.write("params.yaml", "train:\n  n_est: 100\n  depth: 4\n");
    let mut second = pipeline(&env);
    // The last stage again, with another command line.
    second[2] = env.record(&[
        "-i",
        "features.txt",
        "-o",
        "model.txt",
        "--",
        "sh",
        "-c",
        "rev features.txt > model.txt",
        "train.py",
        "--lr",
        "0.02",
    ]);
    let text = text_of(&env, &["diff", "model_a.txt", "model.txt", "--ancestry"]);
    let runs = |i: usize| {
        format!(
            "runs {} -> {}",
            short(&env, &first[i]),
            short(&env, &second[i])
        )
    };
    assert_eq!(
        explained(&text),
        [
            format!("train.depth: 3 -> 4 in {}, two levels up", runs(0)),
            format!("train.n_est: 50 -> 100 in {}, two levels up", runs(0)),
            format!(
                "command: + train.py --lr 0.02 in {}, which made a and b",
                runs(2)
            ),
        ],
        "{text}"
    );
}

/// Two runs that named the same files two ways (`sub/../in.txt`, `in.txt`) read and wrote
/// the same files: `diff` pairs them by where they are, and finds no difference there (it
/// once listed each as gone and each as new).
#[test]
fn diff_pairs_a_file_named_two_ways() {
    let env = Env::local();
    env.init_repo();
    std::fs::create_dir_all(env.path("sub")).expect("mkdir");
    env.write("in.txt", "A\n");
    let a = env.record(&[
        "-i",
        "sub/../in.txt",
        "-c",
        "./sub/../in.txt",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "tr A Z < in.txt > out.txt",
    ]);
    let b = env.record(&[
        "-i",
        "in.txt",
        "-c",
        "in.txt",
        "-o",
        "sub/../out.txt",
        "--",
        "sh",
        "-c",
        "tr A Z < in.txt > out.txt",
    ]);
    let text = text_of(&env, &["diff", &a, &b]);
    assert!(!text.contains("in.txt"), "{text}");
    assert!(!text.contains("out.txt:"), "{text}");
}
