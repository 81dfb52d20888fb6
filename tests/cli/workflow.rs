//! The daily ML loop on a pipeline of three stages sharing one params file: per-stage params
//! (`-c params.json:train`), `lineage status` (what is stale, and why) and
//! `lineage rerun --stale` (make-like, without a pipeline file).

use serde_json::{Value, json};

use crate::util::*;

const PARAMS: &str =
    r#"{"prepare": {"split": 0.2}, "featurize": {"n": 3}, "train": {"n_est": 100, "seed": 1}}"#;

/// prepare.py -> train.csv; featurize.py train.csv -> features.csv; train.py features.csv ->
/// model.txt, metrics.json. Each reads its own section of params.json.
fn pipeline(env: &Env) {
    env.init_repo();
    env.write("params.json", PARAMS);
    env.write(
        "prepare.py",
        "import json\np = json.load(open('params.json'))['prepare']\n\
         rows = [str(i) for i in range(20)]\n\
         open('train.csv', 'w').write('\\n'.join(rows[: int(len(rows) * (1 - p['split']))]))\n",
    );
    env.write(
        "featurize.py",
        "import json\np = json.load(open('params.json'))['featurize']\n\
         rows = open('train.csv').read().split()\n\
         open('features.csv', 'w').write('\\n'.join(r * p['n'] for r in rows))\n",
    );
    env.write(
        "train.py",
        "import json\np = json.load(open('params.json'))['train']\n\
         data = open('features.csv').read()\n\
         open('model.txt', 'w').write(str(len(data) * p['n_est'] + p['seed']))\n\
         json.dump({'acc': p['n_est'] / 1000}, open('metrics.json', 'w'))\n",
    );
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "pipeline"]);
}

fn stage(env: &Env, name: &str) -> String {
    let keys = format!("params.json:{name}");
    let script = format!("{name}.py");
    let mut args = vec!["-c", &keys];
    if name == "train" {
        args.extend(["-m", "metrics.json"]);
    }
    args.extend(["--", "python3", &script]);
    env.record(&args)
}

fn all_stages(env: &Env) -> [String; 3] {
    [
        stage(env, "prepare"),
        stage(env, "featurize"),
        stage(env, "train"),
    ]
}

/// `lineage status --json`: (exit code, [(short id, stale, reasons)]) in its order.
fn status(env: &Env) -> (i32, Vec<(String, bool, Vec<String>)>) {
    let out = env.cmd(["status", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}: {}", stderr(&out)));
    let stages = v["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().expect("as the test set it up").to_string(),
                s["stale"].as_bool().expect("as the test set it up"),
                s["reasons"]
                    .as_array()
                    .expect("as the test set it up")
                    .iter()
                    .map(|r| r.as_str().expect("as the test set it up").to_string())
                    .collect(),
            )
        })
        .collect();
    (code(&out), stages)
}

fn runs(env: &Env) -> usize {
    let out = env.cmd(["list", "--json"]);
    serde_json::from_slice::<Vec<Value>>(&out.stdout)
        .expect("list --json")
        .len()
}

fn set_param(env: &Env, section: &str, key: &str, value: Value) {
    let mut p: Value = serde_json::from_str(
        &std::fs::read_to_string(env.path("params.json")).expect("as the test set it up"),
    )
    .expect("as the test set it up");
    p[section][key] = value;
    env.write("params.json", p.to_string());
}

#[test]
fn a_stage_depends_only_on_the_keys_it_names() {
    let env = Env::new();
    pipeline(&env);
    let [prepare, _, train] = all_stages(&env);
    let run = env.show(Some(&train));
    assert_eq!(run["params"], json!({"train.n_est": 100, "train.seed": 1}));
    // The whole file is still kept, byte for byte.
    let config = &run["configs"][0];
    assert_eq!(config["path"], "params.json");
    assert_eq!(config["hash"], blake3_hex(PARAMS.as_bytes()));
    assert_eq!(run["configs"][0]["keys"], json!(["train"]));

    // Changing train.n_est does not touch prepare: its rerun is not refused.
    set_param(&env, "train", "n_est", json!(150));
    let out = env.cmd(["rerun", "--dry-run", &prepare]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(
        plan.contains(
            "config params.json: changed, but not prepare (the keys this run depends on)"
        ),
        "{plan}"
    );
    assert!(!plan.contains("would refuse"), "{plan}");
    // The train stage's rerun is, naming the key.
    let out = env.cmd(["rerun", "--dry-run", &train]);
    assert!(
        stdout(&out).contains("would refuse: config params.json: train.n_est differs"),
        "{}",
        stdout(&out)
    );

    // Keys the file does not have are a note; keys that are not keys, an error before launch.
    let out = env.cmd(["run", "-q", "-c", "params.json:nothing", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        env.show(None)["notes"]
            .to_string()
            .contains("has no key nothing"),
        "{}",
        env.show(None)["notes"]
    );
    let out = env.cmd(["run", "-c", "params.json:a b", "--", "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("params.json:a b"), "{}", stderr(&out));
    let out = env.cmd(["run", "-c", "nothere.json:train", "--", "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothere.json:train"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn status_names_the_stages_a_change_reaches_and_rerun_stale_reruns_exactly_those() {
    let env = Env::new();
    pipeline(&env);
    let [prepare, featurize, train] = all_stages(&env);
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    let ids: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(ids, [&prepare, &featurize, &train], "makers first");
    assert!(stages.iter().all(|s| !s.1));

    // One stage's parameter: that stage only.
    set_param(&env, "train", "n_est", json!(200));
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6, "exit 6 when something is stale");
    let stale: Vec<&str> = stages
        .iter()
        .filter(|s| s.1)
        .map(|s| s.0.as_str())
        .collect();
    assert_eq!(stale, [train.as_str()]);
    assert_eq!(
        stages[2].2,
        ["config params.json: train.n_est differs"],
        "{stages:?}"
    );
    let before = runs(&env);
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs(&env), before + 1, "only the train stage ran again");
    let (rc, _) = status(&env);
    assert_eq!(rc, 0);
    assert_eq!(env.show(None)["metrics"]["acc"], 0.2);

    // The first stage's: it, and everything after it, makers first.
    set_param(&env, "prepare", "split", json!(0.5));
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6);
    let stale: Vec<&str> = stages
        .iter()
        .filter(|s| s.1)
        .map(|s| s.0.as_str())
        .collect();
    assert_eq!(stale.len(), 3, "{stages:?}");
    assert_eq!(stale[0], prepare);
    assert!(
        stages[1].2[0].contains(&format!(
            "run {}, which made train.csv, is stale",
            &prepare[prepare.len() - 8..]
        )),
        "{stages:?}"
    );
    let out = env.cmd(["rerun", "--stale", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("would rerun 3 stale run(s)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(runs(&env), before + 1, "a dry run runs nothing");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs(&env), before + 4);
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    // The new runs are reruns of the old ones.
    let last = env.show(None);
    assert!(last["rerun_of"].is_string(), "{last}");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0);
    assert!(
        stderr(&out).contains("nothing is stale"),
        "{}",
        stderr(&out)
    );
    assert_eq!(runs(&env), before + 4);
}

#[test]
fn a_modified_or_missing_output_or_changed_code_makes_its_stage_stale() {
    let env = Env::new();
    pipeline(&env);
    let [_, featurize, train] = all_stages(&env);
    // An output modified by hand: its stage, and the stages after it.
    env.write("features.csv", "tampered");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6);
    assert_eq!(stages[1].0, featurize);
    assert!(
        stages[1]
            .2
            .contains(&"output features.csv is modified".to_string()),
        "{stages:?}"
    );
    assert!(
        stages[2]
            .2
            .iter()
            .any(|r| r == "input features.csv changed"),
        "{stages:?}"
    );
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(status(&env).0, 0);

    // An output gone.
    std::fs::remove_file(env.path("model.txt")).expect("as the test set it up");
    let (_, stages) = status(&env);
    assert!(
        stages[2]
            .2
            .contains(&"output model.txt is missing".to_string()),
        "{stages:?}"
    );
    env.cmd(["rerun", "--stale"]);
    assert_eq!(status(&env).0, 0);

    // The code only the train stage reads: that stage only.
    env.write(
        "train.py",
        std::fs::read_to_string(env.path("train.py")).expect("as the test set it up") + "# tuned\n",
    );
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6);
    let stale: Vec<&str> = stages
        .iter()
        .filter(|s| s.1)
        .map(|s| s.0.as_str())
        .collect();
    assert_eq!(stale.len(), 1, "{stages:?}");
    assert!(stages[2].2[0].starts_with("code: "), "{stages:?}");
    let _ = train;

    // The text form: one line a stage, makers first, why under it.
    let out = env.cmd(["status"]);
    let text = stdout(&out);
    assert!(text.starts_with("ok "), "{text}");
    assert!(text.contains("stale  "), "{text}");
    assert!(text.contains("because code: "), "{text}");
    assert!(
        stderr(&out).contains("1 of 3 runs is stale"),
        "{}",
        stderr(&out)
    );
    // A path with nothing recorded under it.
    std::fs::create_dir_all(env.path("empty")).expect("as the test set it up");
    let out = env.cmd(["status", "empty"]);
    assert_eq!(code(&out), 0);
    assert!(
        stderr(&out).contains("no recorded outputs under"),
        "{}",
        stderr(&out)
    );
}
