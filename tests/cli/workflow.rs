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

/// `cp -r from to`, which must succeed.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let cp = std::process::Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(cp.success(), "cp -r {} {}", from.display(), to.display());
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
    // The earlier stages' outputs are the pipeline's data, not this stage's untracked code.
    let untracked = run["git"]["untracked"].to_string();
    assert!(
        !untracked.contains("train.csv") && !untracked.contains("features.csv"),
        "{untracked}"
    );

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
    // The same plan for scripts: one JSON object, the stages in the order they would run.
    let out = env.cmd(["rerun", "--stale", "--dry-run", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("rerun --stale --dry-run --json: {e}: {}", stdout(&out)));
    assert_eq!(plan["refused"], false, "{plan}");
    let order: Vec<&str> = plan["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["id"].as_str().expect("id"))
        .collect();
    assert_eq!(order, stale, "as status orders them: {plan}");
    assert_eq!(runs(&env), before + 1, "a dry run runs nothing");
    let out = env.cmd(["rerun", "--stale", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs(&env), before + 4);
    let done: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("rerun --stale --json: {e}: {}", stdout(&out)));
    let originals: Vec<&str> = done["reruns"]
        .as_array()
        .expect("reruns")
        .iter()
        .map(|v| v["original"].as_str().expect("original"))
        .collect();
    assert_eq!(originals, stale, "{done}");
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
    for args in [&["--dry-run", "--json"][..], &["--json"]] {
        let out = env.cmd([&["rerun", "--stale"][..], args].concat());
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON when nothing is stale");
        let empty = v
            .get("stages")
            .or(v.get("reruns"))
            .expect("stages or reruns");
        assert_eq!(empty, &json!([]), "{v}");
    }
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
    // Rerunning would overwrite the edit, which no record holds: refused, named, and the
    // edit kept; --force overwrites it.
    for dry in [false, true] {
        let mut args = vec!["rerun", "--stale"];
        args.extend(dry.then_some("--dry-run"));
        let out = env.cmd(&args);
        // The dry run prints its plan, naming what would refuse it, and exits 0.
        assert_eq!(code(&out), if dry { 0 } else { 125 }, "{}", stderr(&out));
        let said = if dry { stdout(&out) } else { stderr(&out) };
        assert!(
            said.contains(&format!(
                "stale run {} (`python3 featurize.py`) would overwrite features.csv, which no recorded run wrote",
                &featurize[featurize.len() - 8..]
            )),
            "{said}"
        );
        assert!(said.contains("--force"), "{said}");
        assert_eq!(
            std::fs::read_to_string(env.path("features.csv")).expect("kept"),
            "tampered"
        );
    }
    let out = env.cmd(["rerun", "--stale", "--force"]);
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
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}

#[test]
fn a_stage_rerun_by_hand_still_comes_before_the_stages_that_read_what_it_made() {
    let env = Env::new();
    pipeline(&env);
    let [prepare, featurize, _] = all_stages(&env);
    // train rerun by hand with another parameter: its new model is what is there now.
    set_param(&env, "train", "n_est", json!(120));
    let train2 = stage(&env, "train");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    let ids: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(ids, [&prepare, &featurize, &train2]);
    // A code change in the first stage that changes what it makes: every stage, in the
    // order they run.
    env.write(
        "prepare.py",
        std::fs::read_to_string(env.path("prepare.py"))
            .expect("read")
            .replace("range(20)", "range(30)"),
    );
    let out = env.cmd(["rerun", "--stale", "--dry-run"]);
    let plan = stdout(&out);
    let at = |s: &str| plan.find(s).unwrap_or_else(|| panic!("{s} in {plan}"));
    assert!(at("prepare.py") < at("featurize.py") && at("featurize.py") < at("train.py"));
    let before = runs(&env);
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs(&env), before + 3, "each stage once: {}", stderr(&out));
}

#[test]
fn a_copy_is_checked_through_the_run_that_made_its_bytes_and_an_unknown_path_is_an_error() {
    let env = Env::new();
    pipeline(&env);
    let [_, _, train] = all_stages(&env);
    std::fs::create_dir_all(env.path("deploy")).expect("mkdir");
    std::fs::copy(env.path("model.txt"), env.path("deploy/model.txt")).expect("cp");
    let out = env.cmd(["status", "deploy"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("deploy/model.txt (a copy of what it made)"),
        "{}",
        stdout(&out)
    );
    // `status ..` from inside deploy/ asks about the project: the same answer as `status`
    // at its root, not each output listed again as a copy of itself under `deploy/..`.
    let mut up = env.lineage();
    up.args(["status", "--json", ".."])
        .current_dir(env.path("deploy"));
    let up = output_within(up, std::time::Duration::from_secs(60));
    assert_eq!(code(&up), 0, "{}", stderr(&up));
    let here = env.cmd(["status", "--json"]);
    assert_eq!(stdout(&up), stdout(&here));
    assert!(!stdout(&up).contains("\"copy\""), "{}", stdout(&up));
    // The project through a symbolic link to it: its outputs, not each again as a copy.
    let link = env.root().join("link-to-project");
    std::os::unix::fs::symlink(&env.work, &link).expect("ln -s");
    let through = env.cmd([
        std::ffi::OsStr::new("status"),
        "--json".as_ref(),
        link.as_os_str(),
    ]);
    assert_eq!(stdout(&through), stdout(&here));
    // `..` after a link is where the kernel takes it: the link target's parent, not here.
    let elsewhere = env.root().join("elsewhere");
    std::fs::create_dir_all(elsewhere.join("inner")).expect("mkdir");
    std::fs::write(elsewhere.join("x.txt"), "unrelated").expect("write");
    std::os::unix::fs::symlink(elsewhere.join("inner"), env.path("lnk")).expect("ln -s");
    let out = env.cmd(["status", "lnk/.."]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stderr(&out).contains("elsewhere"), "{}", stderr(&out));
    std::fs::remove_file(env.path("lnk")).expect("rm");
    let out = env.cmd(["status", "model.txt/.."]);
    assert_eq!(code(&out), 1, "a file has no `..`: {}", stdout(&out));
    set_param(&env, "train", "seed", json!(2));
    let (rc, _) = status(&env);
    assert_eq!(rc, 6);
    let out = env.cmd(["status", "--json", "deploy/model.txt"]);
    assert_eq!(
        code(&out),
        6,
        "a stale model's copy is stale: {}",
        stderr(&out)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let last = v["stages"]
        .as_array()
        .expect("stages")
        .last()
        .expect("a stage")
        .clone();
    assert_eq!(last["id"], train.as_str());
    assert!(last["outputs"].to_string().contains("\"copy\""), "{last}");
    // A path that is not there, and one nothing recorded knows: errors, never "up to date".
    let out = env.cmd(["status", "nothere"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothere does not exist"),
        "{}",
        stderr(&out)
    );
    env.write("notes/readme.txt", "nobody made this");
    let out = env.cmd(["status", "notes"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nor holds bytes one wrote"),
        "{}",
        stderr(&out)
    );
    // A file named as a directory (`model.txt/`: the kernel refuses it), and a loop of
    // links: errors that say so. Before, the first was read as the file ("up to date") and
    // the second "does not exist".
    let out = env.cmd(["status", "model.txt/"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("model.txt/ is not a directory"),
        "{}",
        stderr(&out)
    );
    std::os::unix::fs::symlink("loop-b", env.path("loop-a")).expect("link");
    std::os::unix::fs::symlink("loop-a", env.path("loop-b")).expect("link");
    let out = env.cmd(["status", "loop-a"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("loop-a is a loop of symbolic links"),
        "{}",
        stderr(&out)
    );
    // A path after another option (`--stale --json PATH`) is a path, not a run; what is not
    // a path is an error that says so.
    let out = env.cmd(["rerun", "--stale", "--dry-run", "--json", "model.txt"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(plan["refused"], false, "{plan}");
    let out = env.cmd(["rerun", "--stale", "--json", "nothere"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("--stale takes paths, and nothere is not one"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rerun_stale_runs_only_proven_commands_and_stops_on_a_cycle() {
    let env = Env::new();
    pipeline(&env);
    let [_, _, train] = all_stages(&env);
    set_param(&env, "train", "n_est", json!(250));
    // A run whose signature is gone (an import, an edit): its command is not run for you.
    env.db()
        .execute("DELETE FROM signatures WHERE run_id = ?1", [&train])
        .expect("delete");
    let before = runs(&env);
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("is unsigned"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(runs(&env), before, "nothing ran");
    let out = env.cmd(["rerun", "--stale", "--force"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs(&env), before + 1);

    // Two stages that read what each other write: stopped, not rerun for ever.
    let cyc = Env::new();
    cyc.init_repo();
    cyc.write("a.txt", "1\n");
    cyc.git(&["add", "a.txt"]);
    cyc.git(&["commit", "-qm", "a"]);
    cyc.record(&[
        "-i",
        "a.txt",
        "-o",
        "b.txt",
        "--",
        "sh",
        "-c",
        "cat a.txt > b.txt; date +%N >> b.txt",
    ]);
    cyc.record(&[
        "-i",
        "b.txt",
        "-o",
        "a.txt",
        "--",
        "sh",
        "-c",
        "cat b.txt > a.txt; date +%N >> a.txt",
    ]);
    cyc.write("a.txt", "by hand\n");
    // (--force: the edit by hand is to be overwritten.)
    let out = cyc.cmd(["rerun", "--stale", "--force"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("a cycle"), "{}", stderr(&out));
    assert!(runs(&cyc) <= 5, "{}", runs(&cyc));
}

/// A checkpoint resumed in place (`-i ckpt.txt -o ckpt.txt`) changes its input by design: the
/// stage is current while the checkpoint holds the bytes it left there, and the stages after
/// it with it; a change by anyone else makes it stale.
#[test]
fn a_checkpoint_resumed_in_place_is_not_stale_for_its_own_writes() {
    let env = Env::local();
    env.init_repo();
    env.write("ckpt.txt", "epoch 0\n");
    env.record(&[
        "-i",
        "ckpt.txt",
        "-o",
        "ckpt.txt",
        "-o",
        "model.txt",
        "--",
        "sh",
        "-c",
        "echo step >> ckpt.txt; cat ckpt.txt > model.txt",
    ]);
    env.record(&[
        "-i",
        "model.txt",
        "-o",
        "eval.txt",
        "--",
        "sh",
        "-c",
        "wc -l < model.txt > eval.txt",
    ]);
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    assert!(stages.iter().all(|s| !s.1), "{stages:?}");

    env.write("ckpt.txt", "edited by hand\n");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6, "{stages:?}");
    assert!(
        stages
            .iter()
            .any(|s| s.1 && s.2.iter().any(|r| r == "input ckpt.txt changed")),
        "{stages:?}"
    );
}

#[test]
fn a_file_inside_an_output_directory_made_again_by_a_rerun_is_current() {
    // prep writes out/ (a declared output directory); train reads out/train.txt, eval
    // out/test.txt. A change that reaches test.txt only: prep's rerun makes train.txt's same
    // bytes again, so train is current and eval alone runs again. Before, train's input was
    // credited to prep's first run, stale for good: `rerun --stale` stopped (125) and
    // `status` never came back to 0.
    let env = Env::new();
    env.write("raw.txt", "apple\nbanana\ntomato\n");
    env.write(
        "prep.py",
        "import os\nos.makedirs('out', exist_ok=True)\nrows = open('raw.txt').read().split()\n\
         open('out/train.txt', 'w').write(' '.join(r for r in rows if not r.startswith('t')))\n\
         open('out/test.txt', 'w').write(' '.join(r for r in rows if r.startswith('t')))\n",
    );
    env.write(
        "train.py",
        "open('model.txt', 'w').write('model of ' + open('out/train.txt').read())\n",
    );
    env.write(
        "evaluate.py",
        "open('eval.txt', 'w').write(open('model.txt').read() + open('out/test.txt').read())\n",
    );
    let prep = env.record(&["-i", "raw.txt", "-o", "out", "--", "python3", "prep.py"]);
    let train = env.record(&[
        "-i",
        "out/train.txt",
        "-o",
        "model.txt",
        "--",
        "python3",
        "train.py",
    ]);
    env.record(&[
        "-i",
        "model.txt",
        "-i",
        "out/test.txt",
        "-o",
        "eval.txt",
        "--",
        "python3",
        "evaluate.py",
    ]);
    let mut raw = std::fs::read_to_string(env.path("raw.txt")).expect("raw");
    raw.push_str("tangerine\n");
    env.write("raw.txt", raw);
    let before = runs(&env);
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs(&env), before + 2, "prep and eval: {}", stderr(&out));
    assert!(
        stderr(&out).contains("current once their makers ran again"),
        "{}",
        stderr(&out)
    );
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    assert!(!stages.iter().any(|s| s.0 == prep), "{stages:?}");
    assert!(stages.iter().any(|s| s.0 == train), "{stages:?}");
    assert_eq!(
        std::fs::read_to_string(env.path("eval.txt")).expect("eval"),
        "model of apple bananatomato tangerine"
    );
}

#[test]
fn each_run_of_a_rerun_chain_has_its_own_jobs_resources() {
    // The CPU time of every job before it in the chain was added to each (lineage's own
    // children's, not this job's): a trivial step recorded the seconds of the one before.
    let env = Env::new();
    env.write("x.txt", "1");
    let busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n\
                open('a.txt', 'w').write(open('x.txt').read())\n";
    env.write("busy.py", busy);
    env.record(&["-i", "x.txt", "-o", "a.txt", "--", "python3", "busy.py"]);
    env.record(&["-i", "a.txt", "-o", "b.txt", "--", "cp", "a.txt", "b.txt"]);
    env.write("x.txt", "2");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let last = env.show(None);
    assert_eq!(last["command"], json!(["cp", "a.txt", "b.txt"]), "{last}");
    let cpu = last["resources"]["user_cpu_seconds"].as_f64().expect("cpu");
    assert!(
        cpu < 0.3,
        "cp recorded {cpu} s of CPU: {}",
        last["resources"]
    );
}

/// A stage whose outputs are many files (each declared, or copies found by their bytes):
/// its line lists 20 and counts the rest; `--json` lists them all.
#[test]
fn a_stage_of_many_outputs_lists_twenty_and_counts_the_rest() {
    let env = Env::new();
    let mut args = vec!["run".to_string(), "-q".to_string()];
    for i in 0..25 {
        args.push("-o".to_string());
        args.push(format!("out/{i:02}.txt"));
    }
    args.extend(
        [
            "--",
            "sh",
            "-c",
            "mkdir -p out; for i in $(seq -w 0 24); do echo $i > out/$i.txt; done",
        ]
        .map(String::from),
    );
    let out = env.cmd(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.cmd(["status"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("out/19.txt, and 5 more (`lineage status --json` lists them all)"),
        "{text}"
    );
    assert!(!text.contains("out/20.txt"), "{text}");
    let out = env.cmd(["status", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        json["stages"][0]["outputs"]
            .as_array()
            .expect("outputs")
            .len(),
        25
    );
}

/// What `rerun --stale` protects is bytes no recorded run wrote; what other recorded runs
/// wrote at a stage's outputs is no reason to stop, and every output a stage would write is
/// checked, not only those under the paths asked about.
#[test]
fn rerun_stale_stops_only_for_bytes_no_recorded_run_wrote() {
    let env = Env::new();
    env.init_repo();
    let sh = |script: &str| ["--", "sh", "-c", script].map(String::from);
    let record = |args: &[&str], script: &str| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(sh(script));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        env.record(&refs)
    };
    // A later stage writes into the directory an earlier one wrote (-o data, then a file of
    // it made again): rerunning the first stage must not find the second's work an edit.
    env.write("src.txt", "a\n");
    record(
        &["-i", "src.txt", "-o", "data/raw.txt"],
        "mkdir -p data; cat src.txt > data/raw.txt",
    );
    record(
        &["-i", "data/raw.txt", "-o", "data"],
        "tr a-z A-Z < data/raw.txt > data/processed.txt",
    );
    env.write("src.txt", "b\n");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(env.path("data/processed.txt")).expect("made"),
        "B\n"
    );
    // A failed run's partial output is recorded bytes: made again, not refused.
    env.write("in.txt", "x\n");
    record(&["-i", "in.txt", "-o", "out.txt"], "cat in.txt > out.txt");
    let out = env.cmd([
        "run",
        "-q",
        "-i",
        "in.txt",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "echo partial > out.txt; exit 1",
    ]);
    assert_eq!(code(&out), 1);
    let out = env.cmd(["rerun", "--stale", "out.txt"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(env.path("out.txt")).expect("out"),
        "x\n"
    );
    // A file the stage writes outside the path asked about, edited by hand: still refused.
    record(
        &["-i", "in.txt", "-o", "a.txt", "-o", "b.txt"],
        "cat in.txt > a.txt; cat in.txt > b.txt",
    );
    env.write("b.txt", "x\nHAND EDIT\n");
    env.write("in.txt", "y\n");
    let out = env.cmd(["rerun", "--stale", "a.txt"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("would overwrite b.txt, which no recorded run wrote"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(env.path("b.txt")).expect("kept"),
        "x\nHAND EDIT\n"
    );
    // Inside an output directory: a file the stage wrote, edited, is named, and so is a file
    // added beside it (a job may clear its directory first).
    env.write("data/NOTES.md", "mine\n");
    env.write("data/processed.txt", "B, by hand\n");
    env.write("src.txt", "c\n");
    let out = env.cmd(["rerun", "--stale", "data"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "would overwrite data/NOTES.md, data/processed.txt, which no recorded run wrote"
        ),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(env.path("data/processed.txt")).expect("rm");
    std::fs::rename(env.path("data/NOTES.md"), env.path("NOTES.md")).expect("mv");
    let out = env.cmd(["rerun", "--stale", "data"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// `lineage rerun RUN` in place does not overwrite an output edited by hand either: refused
/// (the dry run says why), --force overwrites it; what a recorded run wrote there is no
/// reason to stop.
#[test]
fn a_rerun_in_place_refuses_to_overwrite_an_output_edited_by_hand() {
    let env = Env::new();
    env.init_repo();
    env.write("in.txt", "x\n");
    let id = env.record(&[
        "-i",
        "in.txt",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cat in.txt > out.txt",
    ]);
    env.write("out.txt", "x, tuned by hand\n");
    let out = env.cmd(["rerun", &id]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("output out.txt holds bytes no recorded run wrote (edited by hand?)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(env.path("out.txt")).expect("kept"),
        "x, tuned by hand\n"
    );
    let out = env.cmd(["rerun", &id, "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("would refuse: output out.txt holds bytes no recorded run wrote"),
        "{}",
        stdout(&out)
    );
    let out = env.cmd(["rerun", &id, "--force"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(env.path("out.txt")).expect("made"),
        "x\n"
    );
    // A failed run's partial output is on record: rerun in place goes ahead.
    let out = env.cmd([
        "run",
        "-q",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "echo partial > out.txt; exit 1",
    ]);
    assert_eq!(code(&out), 1);
    let out = env.cmd(["rerun", &id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// A stage that reads a directory whole, holding what an earlier stage wrote inside it
/// (`-o d/a -o d/b`, then `-i d`), is stale when that stage is, and comes after it.
#[test]
fn a_directory_read_whole_has_the_runs_that_wrote_inside_it_for_makers() {
    let env = Env::new();
    env.init_repo();
    env.write("raw.txt", "1\n");
    let split = env.record(&[
        "-i",
        "raw.txt",
        "-o",
        "d/a",
        "-o",
        "d/b",
        "--",
        "sh",
        "-c",
        "mkdir -p d/a d/b; cat raw.txt > d/a/1; echo b > d/b/1",
    ]);
    let feat = env.record(&[
        "-i",
        "d",
        "-o",
        "feat.txt",
        "--",
        "sh",
        "-c",
        "cat d/a/* d/b/* > feat.txt",
    ]);
    assert_eq!(status(&env).0, 0);
    env.write("raw.txt", "2\n");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6, "{stages:?}");
    let short = |id: &str| id[id.len() - 8..].to_string();
    assert_eq!(stages[0].0, split, "makers first: {stages:?}");
    assert_eq!(stages[1].0, feat, "{stages:?}");
    assert!(stages[1].1, "{stages:?}");
    assert!(
        stages[1].2.iter().any(|r| r.contains(&format!(
            "run {}, which made d/a inside d, is stale",
            short(&split)
        ))),
        "{stages:?}"
    );
    let out = env.cmd(["status", "feat.txt"]);
    assert_eq!(code(&out), 6, "{}", stdout(&out));
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(env.path("feat.txt")).expect("made"),
        "2\nb\n"
    );
    assert_eq!(status(&env).0, 0);
}

/// A later stage writing into an earlier stage's output directory (`-o out`, then
/// `out/summary`) does not make the earlier one stale: every file it wrote is still there as
/// it wrote it. A change to one of them, or one removed, does.
#[test]
fn files_added_to_an_output_directory_leave_its_stage_current() {
    let env = Env::new();
    env.init_repo();
    env.write("p.txt", "1\n");
    env.record(&[
        "-i",
        "p.txt",
        "-o",
        "out",
        "--",
        "sh",
        "-c",
        "mkdir -p out; cat p.txt > out/a",
    ]);
    env.record(&[
        "-i",
        "out/a",
        "-o",
        "out/summary",
        "--",
        "sh",
        "-c",
        "cat out/a > out/summary",
    ]);
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    env.write("out/notes.txt", "mine\n");
    assert_eq!(status(&env).0, 0);
    std::fs::remove_file(env.path("out/notes.txt")).expect("rm");
    // Then a change: both rerun once, makers first, with no cycle found.
    env.write("p.txt", "2\n");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 stale run(s) rerun"),
        "{}",
        stderr(&out)
    );
    assert_eq!(status(&env).0, 0);
    // A file the stage wrote, changed: stale.
    env.write("out/a", "by hand\n");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6, "{stages:?}");
    assert!(
        stages[0].2.contains(&"output out is modified".to_string()),
        "{stages:?}"
    );
}

/// A project moved since its runs were recorded (`mv proj elsewhere`): its runs are read where
/// the repository holding their commit is now, so nothing reads as missing; a change there
/// is found, and `rerun` and `rerun --stale` run there. A copy whose original is still there
/// is read the same way (`a_copy_of_a_project_is_checked_and_rerun_in_the_copy`).
#[test]
fn a_moved_project_is_checked_and_rerun_where_it_is_now() {
    let mut env = Env::new();
    pipeline(&env);
    let [prepare, featurize, train] = all_stages(&env);
    let original = env.work.clone();
    let moved = env.root().join("moved project");
    std::fs::rename(&env.work, &moved).expect("mv");
    env.work = moved.clone();
    // An empty directory made where it was is no repository: still a move.
    std::fs::create_dir(&original).expect("mkdir");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "nothing changed but the place: {stages:?}");
    let ids: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(ids, [&prepare, &featurize, &train]);
    let out = env.cmd(["status"]);
    assert!(!stdout(&out).contains("missing"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!(
            "recorded in {}, moved here since",
            original.display()
        )),
        "{}",
        stdout(&out)
    );
    // A change made there: the stage that depends on it, nothing else.
    set_param(&env, "train", "seed", json!(2));
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6);
    let stale: Vec<(&str, &[String])> = stages
        .iter()
        .filter(|s| s.1)
        .map(|s| (s.0.as_str(), s.2.as_slice()))
        .collect();
    assert_eq!(stale.len(), 1, "{stages:?}");
    assert_eq!(stale[0].0, train);
    assert_eq!(stale[0].1, ["config params.json: train.seed differs"]);
    let out = env.cmd(["rerun", "--dry-run", &train]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "moved since: rerun in {}, where that repository is now",
            moved.display()
        )),
        "{}",
        stdout(&out)
    );
    let before = runs(&env);
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs(&env), before + 1, "train only: {}", stderr(&out));
    let model = std::fs::read_to_string(env.path("model.txt")).expect("model");
    assert!(
        model.ends_with('2'),
        "made again with seed 2 there: {model}"
    );
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    // A copy of the moved project, made after that rerun: its model is the rerun's output
    // there (the rerun read in the copy), not the first train run's output "modified".
    let rerun = env.show(None)["id"].as_str().expect("id").to_string();
    let copy2 = env.root().join("copy of the moved project");
    copy_dir(&moved, &copy2);
    env.work = copy2.clone();
    let out = env.cmd(["status", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let stages = v["stages"].as_array().expect("stages");
    let model = copy2.join("model.txt").display().to_string();
    assert!(
        stages.iter().any(|s| s["id"] == rerun.as_str()
            && s["copied_from"] == moved.display().to_string().as_str()
            && s["outputs"]
                .as_array()
                .expect("outputs")
                .iter()
                .any(|o| o["abs_path"] == model.as_str() && o["state"] == "current")),
        "{v}"
    );
    assert!(!v.to_string().contains("model.txt is modified"), "{v}");
}

/// A copy of a project beside its original (`cp -r proj exp`): its stages are the original's
/// runs read in the copy, so the copy's own edits make them stale, and `rerun --stale` there
/// writes the copy's outputs, not the original's. Before, a param changed in the copy left
/// `status` "up to date" (its files were checked as copies of the original's), and a stage
/// stale there was rerun in the original, wrote there, and read "still stale" for ever.
#[test]
fn a_copy_of_a_project_is_checked_and_rerun_in_the_copy() {
    let mut env = Env::new();
    pipeline(&env);
    let [prepare, featurize, train] = all_stages(&env);
    let original = env.work.clone();
    let model_before = std::fs::read(original.join("model.txt")).expect("model");
    let copy = env.root().join("exp");
    copy_dir(&original, &copy);
    env.work = copy.clone();
    // As it was copied: the original's stages, current, their outputs those of the copy.
    let out = env.cmd(["status", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let stages = v["stages"].as_array().expect("stages");
    let ids: Vec<&str> = stages.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, [&prepare, &featurize, &train], "{v}");
    for s in stages {
        assert_eq!(
            s["copied_from"],
            original.display().to_string().as_str(),
            "{s}"
        );
        for o in s["outputs"].as_array().expect("outputs") {
            let at = o["abs_path"].as_str().expect("abs_path");
            assert!(at.starts_with(&copy.display().to_string()), "{o}");
            assert_eq!(o["state"], "current", "{o}");
        }
    }
    let out = env.cmd(["status"]);
    assert!(
        stdout(&out).contains(&format!(
            "recorded in {}, another copy of this project",
            original.display()
        )),
        "{}",
        stdout(&out)
    );
    // The copy's own edit: the stage that depends on it is stale there, nowhere else.
    set_param(&env, "train", "seed", json!(2));
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6, "{stages:?}");
    let stale: Vec<(&str, &[String])> = stages
        .iter()
        .filter(|s| s.1)
        .map(|s| (s.0.as_str(), s.2.as_slice()))
        .collect();
    assert_eq!(stale.len(), 1, "{stages:?}");
    assert_eq!(stale[0].0, train);
    assert_eq!(stale[0].1, ["config params.json: train.seed differs"]);
    let out = env.cmd(["rerun", "--dry-run", &train]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "another copy of this project: rerun in {}",
            copy.display()
        )),
        "{}",
        stdout(&out)
    );
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let model = std::fs::read_to_string(copy.join("model.txt")).expect("model");
    assert!(model.ends_with('2'), "made again in the copy: {model}");
    assert_eq!(
        std::fs::read(original.join("model.txt")).expect("model"),
        model_before,
        "the original's model is untouched"
    );
    assert_eq!(status(&env).0, 0);
    // The original still reads as it was: its own runs, current.
    env.work = original;
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    let ids: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(ids, [&prepare, &featurize, &train]);
}

/// A copy of a moved project made after a rerun there changed every file the first run
/// wrote or read: the first run (its place gone, no file of its here with its bytes) is not
/// read there. Its stage read as stale for ever ("the recorded repository is gone", its
/// config "missing"), and `rerun --stale` failed on that config.
#[test]
fn a_copy_of_a_moved_project_is_not_the_gone_original() {
    let mut env = Env::new();
    env.init_repo();
    env.write("params.yaml", "train:\n  n: 1\n");
    env.write("train.sh", "cat params.yaml > model.txt\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "init"]);
    let first = env.record(&[
        "-c",
        "params.yaml:train",
        "-o",
        "model.txt",
        "--",
        "sh",
        "train.sh",
    ]);
    let moved = env.root().join("b");
    std::fs::rename(&env.work, &moved).expect("mv");
    env.work = moved.clone();
    env.write("params.yaml", "train:\n  n: 2\n");
    let out = env.cmd(["rerun", "--stale", "-q"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let copy = env.root().join("c");
    copy_dir(&moved, &copy);
    env.work = copy;
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    assert!(!stages.iter().any(|s| s.0 == first), "{stages:?}");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing is stale"),
        "{}",
        stderr(&out)
    );
    // The rerun made in b (still there) is read in the copy.
    let out = env.cmd(["status"]);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "recorded in {}, another copy of this project",
            moved.display()
        )) && text.contains("-> model.txt\n"),
        "{text}"
    );
}

/// A move is followed only on evidence: a project merged into a larger repository under a
/// prefix holds the commit, but nothing its runs named is at the same place under the larger
/// repository's root. Not followed: nothing is run or written there. An absolute input path
/// follows a move.
#[test]
fn a_move_is_followed_only_where_the_runs_files_are() {
    let mut env = Env::new();
    env.init_repo();
    env.write("data.txt", "rows\n");
    env.git(&["add", "data.txt"]);
    env.git(&["commit", "-q", "-m", "data"]);
    let data = env.path("data.txt").display().to_string();
    env.record(&[
        "-i",
        &data,
        "-o",
        "out/stamp.txt",
        "--",
        "sh",
        "-c",
        "mkdir -p out && cat data.txt > out/stamp.txt",
    ]);
    // Moved: the absolute input is read where it is now.
    let moved = env.root().join("moved");
    std::fs::rename(&env.work, &moved).expect("mv");
    env.work = moved.clone();
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    // Merged into a larger repository under `proj/`, the original gone: not followed.
    let mono = env.root().join("mono");
    std::fs::create_dir_all(&mono).expect("mkdir");
    env.work = mono.clone();
    env.git(&["init", "-q"]);
    env.write("README", "mono\n");
    env.git(&["add", "README"]);
    env.git(&["commit", "-q", "-m", "mono"]);
    env.git(&["fetch", "-q", moved.to_str().expect("utf-8"), "HEAD"]);
    env.git(&[
        "merge",
        "-q",
        "--allow-unrelated-histories",
        "-s",
        "ours",
        "--no-commit",
        "FETCH_HEAD",
    ]);
    env.git(&["read-tree", "--prefix=proj/", "-u", "FETCH_HEAD"]);
    env.git(&["commit", "-q", "-m", "import"]);
    copy_dir(&moved.join("out"), &mono.join("proj/out"));
    std::fs::remove_dir_all(&moved).expect("rm");
    env.work = mono.join("proj");
    let out = env.cmd(["status"]);
    assert!(
        !stdout(&out).contains("moved here since"),
        "{}",
        stdout(&out)
    );
    let _ = env.cmd(["rerun", "--stale"]);
    assert!(
        !mono.join("out").exists(),
        "written at the larger repository's root"
    );
}

/// An input no recorded run wrote at its path gets a maker by its bytes only where those
/// bytes can have come from: never for an empty file (every empty file is every other: an
/// empty note read as made by a stage's empty marker), nor a run that read the very bytes
/// itself (a stage that copies its input). Before, the reader was stale with that stage and
/// `rerun --stale` reran the stage again and again ("still stale after it was rerun").
#[test]
fn an_input_is_not_made_by_a_stage_that_left_the_same_bytes_elsewhere() {
    let env = Env::new();
    env.init_repo();
    env.write("notes.txt", "");
    env.write("in.txt", "data\n");
    env.write("p.yaml", "k: 1\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "init"]);
    let marker = env.record(&[
        "-c",
        "p.yaml",
        "-o",
        "done.marker",
        "--",
        "sh",
        "-c",
        "cat p.yaml >/dev/null; : > done.marker",
    ]);
    let copier = env.record(&[
        "-c",
        "p.yaml",
        "-i",
        "in.txt",
        "-o",
        "a.txt",
        "--",
        "sh",
        "-c",
        "cat p.yaml >/dev/null; cp in.txt a.txt",
    ]);
    let reader = env.record(&[
        "-i",
        "notes.txt",
        "-i",
        "in.txt",
        "-o",
        "b.txt",
        "--",
        "sh",
        "-c",
        "wc -c notes.txt in.txt > b.txt",
    ]);
    env.write("p.yaml", "k: 2\n");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6);
    let stale: Vec<&str> = stages
        .iter()
        .filter(|s| s.1)
        .map(|s| s.0.as_str())
        .collect();
    assert_eq!(stale.len(), 2, "{stages:?}");
    assert!(
        stale.contains(&marker.as_str()) && stale.contains(&copier.as_str()),
        "{stages:?}"
    );
    assert!(!stale.contains(&reader.as_str()), "{stages:?}");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
}

/// A symbolic link at an output path that leads out of the project (or to nothing there)
/// is bytes no recorded run wrote: `rerun --stale` refuses rather than write through it
/// (it made the link's target outside the project); a link inside the project is the
/// project's own (`latest -> ckpt-100`).
#[test]
fn rerun_stale_does_not_write_through_a_link_out_of_the_project() {
    let env = Env::new();
    env.init_repo();
    env.write("in.txt", "1 2 3\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "init"]);
    env.record(&[
        "-i",
        "in.txt",
        "-o",
        "model.txt",
        "--",
        "sh",
        "-c",
        "wc -w in.txt > model.txt",
    ]);
    let outside = env.root().join("planted.txt");
    std::fs::remove_file(env.path("model.txt")).expect("rm");
    std::os::unix::fs::symlink(&outside, env.path("model.txt")).expect("ln -s");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "would write out of the project through a symbolic link made since it ran: model.txt ("
        ),
        "{}",
        stderr(&out)
    );
    assert!(!outside.exists(), "written through the link");
    // With --json, one object on stdout however the chain ends, a refusal included.
    let out = env.cmd(["rerun", "--stale", "--json"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON on a refusal: {e}: {}", stdout(&out)));
    assert_eq!(v["reruns"], json!([]), "{v}");
    // A link to a place inside the project: made again there.
    std::fs::remove_file(env.path("model.txt")).expect("rm");
    std::os::unix::fs::symlink("latest.txt", env.path("model.txt")).expect("ln -s");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.path("latest.txt").exists());
}

/// An output declared through `d/..` is recorded where `d/..` was (`p.txt`); a link made
/// at `d` since, out of the project, would take the rerun's write with it: refused, as a
/// link on the way to any output is (the check once read the recorded path, without `d`).
#[test]
fn rerun_stale_does_not_write_through_a_link_made_at_a_name_before_dot_dot() {
    let env = Env::new();
    env.init_repo();
    env.write("in.txt", "1\n");
    std::fs::create_dir_all(env.path("d")).expect("mkdir");
    env.git(&["add", "in.txt"]);
    env.git(&["commit", "-q", "-m", "init"]);
    env.record(&[
        "-i",
        "in.txt",
        "-o",
        "d/../p.txt",
        "--",
        "sh",
        "-c",
        "cat in.txt > d/../p.txt",
    ]);
    let outside = env.root().join("outside/sub");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::rename(env.path("d"), env.path("d.old")).expect("mv");
    std::os::unix::fs::symlink(&outside, env.path("d")).expect("ln -s");
    env.write("in.txt", "2\n");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("through a symbolic link made since it ran: d/../p.txt ("),
        "{}",
        stderr(&out)
    );
    assert!(
        !env.root().join("outside/p.txt").exists(),
        "written through the link"
    );
}

/// One file two stages write under two names (`lnk/f.txt`, `a/b/f.txt`, `lnk -> a/b`), or one
/// inside the other's directory output: each rerun made the other stale, and `rerun --stale`
/// reran one and blamed a cycle. `status` says what it is, and `rerun --stale` refuses
/// before running anything. (A directory output around a file it kept, not wrote, is no
/// such pair: `rerun_stale_stops_only_for_bytes_no_recorded_run_wrote`.)
#[test]
fn one_file_two_stages_write_under_two_names_is_named_and_not_rerun() {
    let env = Env::new();
    env.init_repo();
    env.write("in.txt", "1\n");
    std::fs::create_dir_all(env.path("a/b")).expect("mkdir");
    std::os::unix::fs::symlink("a/b", env.path("lnk")).expect("ln -s");
    env.git(&["add", "in.txt"]);
    env.git(&["commit", "-q", "-m", "init"]);
    env.record(&[
        "-i",
        "in.txt",
        "-o",
        "lnk/f.txt",
        "--",
        "sh",
        "-c",
        "cat in.txt > lnk/f.txt; echo X >> lnk/f.txt",
    ]);
    env.record(&[
        "-i",
        "in.txt",
        "-o",
        "a/b/f.txt",
        "--",
        "sh",
        "-c",
        "cat in.txt > a/b/f.txt; echo Y >> a/b/f.txt",
    ]);
    let out = env.cmd(["status"]);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("lnk/f.txt is one file with a/b/f.txt, which run "),
        "{}",
        stdout(&out)
    );
    let runs = env.cmd(["list", "--json"]);
    let before = stdout(&runs);
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(", so that rerunning one makes the other stale: not rerunning it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&env.cmd(["list", "--json"])),
        before,
        "nothing was rerun"
    );
    let out = env.cmd(["rerun", "--stale", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("would refuse: stale run"),
        "{}",
        stdout(&out)
    );

    // A directory output and a file another stage writes inside it, through a link or not.
    for (dir, file) in [("od", "od/z.txt"), ("lnkd", "outdir/z.txt")] {
        let env = Env::new();
        env.init_repo();
        env.write("i1", "1\n");
        env.write("i2", "2\n");
        std::fs::create_dir_all(env.path("outdir")).expect("mkdir");
        std::os::unix::fs::symlink("outdir", env.path("lnkd")).expect("ln -s");
        env.git(&["add", "i1", "i2"]);
        env.git(&["commit", "-q", "-m", "init"]);
        let whole = format!("mkdir -p {dir}; cat i1 > {dir}/z.txt");
        env.record(&["-i", "i1", "-o", dir, "--", "sh", "-c", &whole]);
        let one = format!("cat i2 > {file}");
        env.record(&["-i", "i2", "-o", file, "--", "sh", "-c", &one]);
        let out = env.cmd(["status"]);
        assert_eq!(code(&out), 6, "{}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("{dir} holds {file}, which run ")),
            "{}",
            stdout(&out)
        );
        let before = stdout(&env.cmd(["list", "--json"]));
        let out = env.cmd(["rerun", "--stale"]);
        assert_eq!(code(&out), 125, "{}", stderr(&out));
        assert_eq!(
            stdout(&env.cmd(["list", "--json"])),
            before,
            "nothing was rerun"
        );
    }
}

/// The second attacking trial's ways past that check: a directory above a file output made a
/// link out of the project (`out -> ../outside/d`), the same recorded as `-o out/` (the
/// slash followed the link), and a link planted inside a directory output. Each is refused
/// with nothing written outside; a link that was there before the run (a data directory
/// kept elsewhere, `scratch -> /big/disk`) is its setup, and the rerun writes through it.
#[test]
fn rerun_does_not_write_through_a_link_planted_above_or_inside_an_output() {
    for (declared, plant_inside) in [("out/res.txt", false), ("out/", false), ("out", true)] {
        let env = Env::new();
        env.init_repo();
        env.write("in.txt", "1\n");
        env.write(
            "s.sh",
            "mkdir -p out; cat in.txt > out/res.txt; echo o > out/other.txt\n",
        );
        env.git(&["add", "."]);
        env.git(&["commit", "-q", "-m", "init"]);
        let run = env.record(&["-i", "in.txt", "-o", declared, "--", "sh", "s.sh"]);
        let outside = env.root().join("outside");
        std::fs::create_dir_all(&outside).expect("mkdir");
        if plant_inside {
            std::fs::rename(env.path("out/res.txt"), outside.join("res.txt")).expect("mv");
            std::os::unix::fs::symlink(outside.join("res.txt"), env.path("out/res.txt"))
                .expect("ln -s");
        } else {
            std::fs::rename(env.path("out"), outside.join("d")).expect("mv");
            std::os::unix::fs::symlink(outside.join("d"), env.path("out")).expect("ln -s");
        }
        let victim = if plant_inside {
            outside.join("res.txt")
        } else {
            outside.join("d/res.txt")
        };
        env.write("in.txt", "2\n");
        let out = env.cmd(["rerun", "--stale"]);
        assert_eq!(code(&out), 125, "{declared}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("through a symbolic link made since it ran"),
            "{declared}: {}",
            stderr(&out)
        );
        env.write("in.txt", "1\n");
        let out = env.cmd(["rerun", &run]);
        assert_eq!(code(&out), 125, "{declared}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("a symbolic link made since it ran leads it out of the project"),
            "{declared}: {}",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "1\n",
            "{declared}: written outside the project"
        );
    }
    // A link made beyond a link there before the run (in the scratch area it leads to):
    // still on the way, still refused.
    let env = Env::new();
    env.init_repo();
    env.write("in.txt", "1\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "init"]);
    let scratch = env.root().join("scratch");
    std::fs::create_dir_all(&scratch).expect("mkdir");
    std::os::unix::fs::symlink(&scratch, env.path("data")).expect("ln -s");
    env.record(&[
        "-i",
        "in.txt",
        "-o",
        "data",
        "--",
        "sh",
        "-c",
        "cat in.txt > data/m.txt",
    ]);
    std::fs::remove_file(scratch.join("m.txt")).expect("rm");
    let victim = env.root().join("victim.txt");
    std::os::unix::fs::symlink(&victim, scratch.join("m.txt")).expect("ln -s");
    env.write("in.txt", "2\n");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        !victim.exists(),
        "written through a link beyond the old one"
    );
    // A link there before the run: its setup, written through again.
    let env = Env::new();
    env.init_repo();
    env.write("in.txt", "1\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "init"]);
    let scratch = env.root().join("scratch");
    std::fs::create_dir_all(&scratch).expect("mkdir");
    std::os::unix::fs::symlink(&scratch, env.path("data")).expect("ln -s");
    env.record(&[
        "-i",
        "in.txt",
        "-o",
        "data/m.txt",
        "--",
        "sh",
        "-c",
        "cat in.txt > data/m.txt",
    ]);
    env.write("in.txt", "2\n");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(scratch.join("m.txt")).expect("m"),
        "2\n"
    );
}

/// A directory input that changed names what changed inside it: a note added beside the
/// data made its reader stale as "input feats changed", leaving the user to guess.
#[test]
fn a_changed_input_directory_names_the_files_that_changed() {
    let env = Env::new();
    env.init_repo();
    env.write("feats/a.csv", "1\n");
    env.write("feats/b.csv", "2\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "init"]);
    env.record(&[
        "-i",
        "feats",
        "-o",
        "model.txt",
        "--",
        "sh",
        "-c",
        "cat feats/*.csv > model.txt",
    ]);
    env.write("feats/NOTES.txt", "a note\n");
    env.write("feats/b.csv", "3\n");
    std::fs::remove_file(env.path("feats/a.csv")).expect("rm");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6);
    assert_eq!(
        stages[0].2,
        ["input feats changed (added NOTES.txt; removed a.csv; changed b.csv)"],
        "{stages:?}"
    );
}

/// Two ways a maker found by bytes alone kept `rerun --stale` from ending (the second
/// attacking trial): a hand copy of a model (`cp model.txt deploy/`) read by a stage, after
/// the model's stage went stale (its rerun replaced the model; the copy's bytes were the
/// stale original's for ever: "still stale after it was rerun"); and a hand-made file
/// holding the same tiny bytes as a downstream stage's output (a false cycle).
#[test]
fn rerun_stale_ends_when_bytes_match_a_copy_or_a_downstream_output() {
    let env = Env::new();
    env.init_repo();
    env.write("params.yaml", "n: 1\n");
    env.write(
        "train.sh",
        "cat params.yaml > model.txt; echo t >> model.txt\n",
    );
    env.write("eval.sh", "wc -c < deploy/model.txt > eval.txt\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "init"]);
    env.record(&[
        "-c",
        "params.yaml",
        "-o",
        "model.txt",
        "--",
        "sh",
        "train.sh",
    ]);
    std::fs::create_dir_all(env.path("deploy")).expect("mkdir");
    std::fs::copy(env.path("model.txt"), env.path("deploy/model.txt")).expect("cp");
    env.record(&[
        "-i",
        "deploy/model.txt",
        "-o",
        "eval.txt",
        "--",
        "sh",
        "eval.sh",
    ]);
    env.write("params.yaml", "n: 2\n");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");

    let env = Env::new();
    env.init_repo();
    env.write("x.txt", "1\n");
    env.write("q.txt", "q\n");
    env.write("b.sh", "cat x.txt > b.txt; echo b >> b.txt\n");
    env.write("c.sh", "cat b.txt q.txt >/dev/null; echo 1 > c.txt\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "init"]);
    env.record(&["-i", "x.txt", "-o", "b.txt", "--", "sh", "b.sh"]);
    env.record(&[
        "-i", "b.txt", "-i", "q.txt", "-o", "c.txt", "--", "sh", "c.sh",
    ]);
    env.write("q.txt", "r\n");
    let out = env.cmd(["rerun", "--stale", "-q"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env.write("b.sh", "cat x.txt > b.txt; echo bb >> b.txt\n");
    env.git(&["commit", "-q", "-a", "-m", "b2"]);
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "no cycle: {}", stderr(&out));
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
}

/// Two stages, `a` and `b`, each depending on its own section of params.yaml, in a
/// repository that ignores their outputs; returns their run ids.
fn two_stages(env: &Env) -> (String, String) {
    env.init_repo();
    env.write("params.yaml", "a:\n  k: 1\nb:\n  k: 1\n");
    env.write("raw.txt", "raw\n");
    env.write(
        "a.sh",
        "{ cat raw.txt; grep -A1 '^a:' params.yaml; } > a.out\n",
    );
    env.write(
        "b.sh",
        "{ cat a.out; grep -A1 '^b:' params.yaml; } > b.out\n",
    );
    env.write(".gitignore", "*.out\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "stages"]);
    let a = env.record(&[
        "-i",
        "raw.txt",
        "-c",
        "params.yaml:a",
        "-o",
        "a.out",
        "--",
        "sh",
        "a.sh",
    ]);
    let b = env.record(&[
        "-i",
        "a.out",
        "-c",
        "params.yaml:b",
        "-o",
        "b.out",
        "--",
        "sh",
        "b.sh",
    ]);
    (a, b)
}

/// A copy or a clone reads the runs whose files it holds, not those its original (or a
/// sibling copy) made since. Before: once the original ran its stages again (new params),
/// a copy made earlier lost a stage (the original's latest writer of its output made other
/// bytes and was not read there) and a param changed in the copy read "up to date"; a
/// clone made after reruns of uncommitted params was checked against those params, and
/// `rerun --stale` there skipped the second stage; a hand edit in one copy was blamed on a
/// sibling copy's rerun ("a.k differs").
#[test]
fn a_copy_or_clone_reads_the_runs_it_holds_not_those_made_since_elsewhere() {
    let mut env = Env::new();
    let (a, b) = two_stages(&env);
    let original = env.work.clone();
    let exp = env.root().join("exp");
    copy_dir(&original, &exp);
    let sibling = env.root().join("sibling");
    copy_dir(&original, &sibling);
    // The original runs again with a new, uncommitted a.k; so does the sibling copy.
    env.write("params.yaml", "a:\n  k: 2\nb:\n  k: 1\n");
    let out = env.cmd(["rerun", "--stale", "-q"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env.work = sibling.clone();
    env.write("params.yaml", "a:\n  k: 9\nb:\n  k: 1\n");
    let out = env.cmd(["rerun", "--stale", "-q"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The copy made before: both stages are the runs it was copied with, current.
    env.work = exp.clone();
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    let ids: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(ids, [&a, &b], "{stages:?}");
    // A hand edit there: its own stage, for its own reason.
    let a_out = std::fs::read(exp.join("a.out")).expect("a.out");
    env.write("a.out", "by hand\n");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6, "{stages:?}");
    assert_eq!(stages[0].0, a, "{stages:?}");
    assert_eq!(stages[0].2, ["output a.out is modified"], "{stages:?}");
    std::fs::write(exp.join("a.out"), a_out).expect("put back");
    // A param changed there: its stage is stale.
    env.write("params.yaml", "a:\n  k: 1\nb:\n  k: 5\n");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6, "{stages:?}");
    let stale: Vec<(&str, &[String])> = stages
        .iter()
        .filter(|s| s.1)
        .map(|s| (s.0.as_str(), s.2.as_slice()))
        .collect();
    assert_eq!(
        stale,
        [(
            b.as_str(),
            &["config params.yaml: b.k differs".to_string()][..]
        )]
    );
    // A clone (the committed params, no outputs): the first runs, whose configs it holds;
    // `rerun --stale` makes both stages there, the bytes those runs made.
    let clone = env.root().join("clone");
    env.work = env.root().to_path_buf();
    env.git(&["clone", "-q", &original.display().to_string(), "clone"]);
    env.work = clone.clone();
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6, "{stages:?}");
    let ids: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(ids, [&a, &b], "{stages:?}");
    assert_eq!(stages[0].2, ["output a.out is missing"], "{stages:?}");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 stale run(s) rerun"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(clone.join("b.out")).expect("b.out made in the clone"),
        std::fs::read(exp.join("b.out")).expect("b.out"),
    );
    assert_eq!(status(&env).0, 0);
}

/// A job that names its project's place by an absolute path (here in its config) still
/// writes there when rerun in a copy: lineage cannot stop it, and says so, naming the file.
#[test]
fn a_rerun_in_a_copy_that_writes_into_the_original_says_so() {
    let mut env = Env::new();
    env.init_repo();
    let original = env.work.clone();
    let target = original.join("c.out");
    env.write("params.yaml", format!("k: 1\nout: {}\n", target.display()));
    env.write(
        "job.sh",
        "sed -n 's/^k: //p' params.yaml > \"$(sed -n 's/^out: //p' params.yaml)\"\n",
    );
    env.write(".gitignore", "*.out\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "job"]);
    env.record(&["-c", "params.yaml", "-o", "c.out", "--", "sh", "job.sh"]);
    let exp = env.root().join("exp");
    copy_dir(&original, &exp);
    env.work = exp;
    env.write("params.yaml", format!("k: 3\nout: {}\n", target.display()));
    // The copy's c.out was not made again: still stale, and the chain stops (125).
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&target).expect("c.out"), "3\n");
    assert!(
        stderr(&out).contains(&format!(
            "the rerun wrote {}, in {} where run",
            target.display(),
            original.display()
        )),
        "{}",
        stderr(&out)
    );
}

/// `rerun --stale` in a copy never reruns a stage of another copy that is not read here (no
/// file of its here holds its bytes among those looked at): that rerun would write there.
/// Here the first 16 files of its output directory were edited in the copy, which holds the
/// 17th as the run made it (a copy of what it made), and the stage is stale where it was
/// recorded.
#[test]
fn rerun_stale_in_a_copy_never_reruns_a_stage_of_another_copy_there() {
    let mut env = Env::new();
    env.init_repo();
    env.write("params.yaml", "k: 1\n");
    env.write(
        "make.sh",
        "mkdir -p o; for i in 00 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16; do \
         { echo $i; cat params.yaml; } > o/f$i.txt; done\n",
    );
    env.write(".gitignore", "o/\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "stage"]);
    let run = env.record(&["-c", "params.yaml", "-o", "o", "--", "sh", "make.sh"]);
    let original = env.work.clone();
    let exp = env.root().join("exp");
    copy_dir(&original, &exp);
    env.write("params.yaml", "k: 2\n");
    env.work = exp.clone();
    env.write("params.yaml", "k: 3\n");
    for i in 0..16 {
        env.write(&format!("o/f{i:02}.txt"), "by hand\n");
    }
    let before = std::fs::read(original.join("o/f00.txt")).expect("f00");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "was recorded in {}, another copy of this project, and no file of its here holds the bytes it recorded",
            original.display()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(original.join("o/f00.txt")).expect("f00"),
        before,
        "nothing written in the original"
    ); // Asked for by its id, it reruns where it was recorded, and says so.
    let out = env.cmd(["rerun", "--dry-run", &run]);
    assert!(
        stderr(&out).contains("another copy of this project, and no file of its here holds the bytes it recorded: it reruns there, not here"),
        "{}",
        stderr(&out)
    );
}

/// A copy whose output directory was half rewritten (a rerun killed there, a file edited by
/// hand) and whose params changed is still read as the copy of its run, through a file
/// inside that directory that holds the bytes it recorded. Before, no file of the run held
/// its bytes as a whole, the run was checked where it was recorded, and the copy read "up
/// to date".
#[test]
fn a_copy_with_a_half_rewritten_output_directory_is_still_read_here() {
    let mut env = Env::new();
    env.init_repo();
    env.write("params.yaml", "k: 1\n");
    env.write(
        "make.sh",
        "mkdir -p o; cp params.yaml o/part1.txt; cp params.yaml o/part2.txt\n",
    );
    env.write(".gitignore", "o/\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "stage"]);
    let run = env.record(&["-c", "params.yaml", "-o", "o", "--", "sh", "make.sh"]);
    let original = env.work.clone();
    let exp = env.root().join("exp");
    copy_dir(&original, &exp);
    env.work = exp;
    env.write("params.yaml", "k: 2\n");
    env.write("o/part1.txt", "k: 2\n");
    let out = env.cmd(["status", "--json"]);
    assert_eq!(code(&out), 6, "{}", stdout(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let stage = &v["stages"][0];
    assert_eq!(stage["id"], run.as_str(), "{v}");
    assert_eq!(
        stage["copied_from"],
        original.display().to_string().as_str(),
        "{v}"
    );
    let reasons = stage["reasons"].to_string();
    assert!(
        reasons.contains("config params.yaml changed") && reasons.contains("output o is modified"),
        "{v}"
    );
}

/// After the original reran its stages with new params, a copy lists each stage once, for
/// its own reasons: a stage whose log the rerun left as it was is the run that holds both
/// its files here (not listed again as the rerun, "lr, n differ"); an output directory
/// removed in the copy is its own run's, missing (not the original's rerun, "seed differs",
/// found as the maker of the next stage's input).
#[test]
fn a_copy_lists_each_stage_once_after_its_original_reran() {
    let mut env = Env::new();
    env.init_repo();
    env.write("params.yaml", "prep:\n  seed: 1\ntrain:\n  lr: 1\n  n: 1\n");
    env.write("raw.txt", "raw\n");
    env.write(
        "prep.sh",
        "mkdir -p prep; { cat raw.txt; grep -A1 '^prep:' params.yaml; } > prep/a.txt\n",
    );
    env.write(
        "train.sh",
        "{ cat prep/a.txt; grep -A2 '^train:' params.yaml; } > model.txt; cat prep/a.txt > log.txt\n",
    );
    env.write(".gitignore", "prep/\n*.txt\n!raw.txt\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "stages"]);
    let prep = env.record(&[
        "-i",
        "raw.txt",
        "-c",
        "params.yaml:prep",
        "-o",
        "prep",
        "--",
        "sh",
        "prep.sh",
    ]);
    let train = env.record(&[
        "-i",
        "prep/a.txt",
        "-c",
        "params.yaml:train",
        "-o",
        "model.txt",
        "-o",
        "log.txt",
        "--",
        "sh",
        "train.sh",
    ]);
    let original = env.work.clone();
    let exp = env.root().join("exp");
    copy_dir(&original, &exp);
    // The original: a new lr (the log stays as it was), then a new seed.
    env.write("params.yaml", "prep:\n  seed: 1\ntrain:\n  lr: 2\n  n: 1\n");
    let out = env.cmd(["rerun", "--stale", "-q"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env.write("params.yaml", "prep:\n  seed: 2\ntrain:\n  lr: 2\n  n: 1\n");
    let out = env.cmd(["rerun", "--stale", "-q"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env.work = exp.clone();
    env.write("params.yaml", "prep:\n  seed: 1\ntrain:\n  lr: 1\n  n: 5\n");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6, "{stages:?}");
    let seen: Vec<(&str, &[String])> = stages
        .iter()
        .map(|s| (s.0.as_str(), s.2.as_slice()))
        .collect();
    assert_eq!(
        seen,
        [
            (prep.as_str(), &[][..]),
            (
                train.as_str(),
                &["config params.yaml: train.n differs".to_string()][..]
            )
        ],
        "{stages:?}"
    );
    std::fs::remove_dir_all(exp.join("prep")).expect("rm prep");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6, "{stages:?}");
    let ids: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(ids, [&prep, &train], "{stages:?}");
    assert_eq!(stages[0].2, ["output prep is missing"], "{stages:?}");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(status(&env).0, 0);
}

/// A config given by an absolute path with the keys a stage depends on (`-c
/// /abs/proj/params.yaml:s`), read in a copy: its keys and params follow the path, so a
/// change of those keys in the copy makes the stage stale, and a change elsewhere in the file
/// does not. Before, the params read as set over the config (nothing compared: "up to
/// date" with `s.k` changed), and a rerun there took the whole file.
#[test]
fn a_config_given_by_an_absolute_path_is_checked_by_its_keys_in_a_copy() {
    let mut env = Env::new();
    env.init_repo();
    env.write("params.yaml", "s:\n  k: 1\n");
    env.write(".gitignore", "out.txt\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "stage"]);
    let config = format!("{}:s", env.path("params.yaml").display());
    let run = env.record(&[
        "-c",
        &config,
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "grep k: params.yaml > out.txt",
    ]);
    let exp = env.root().join("exp");
    copy_dir(&env.work.clone(), &exp);
    env.work = exp.clone();
    env.write("params.yaml", "s:\n  k: 2\n");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 6, "{stages:?}");
    assert_eq!(stages[0].0, run, "{stages:?}");
    assert_eq!(
        stages[0].2,
        [format!(
            "config {}: s.k differs",
            exp.join("params.yaml").display()
        )],
        "{stages:?}"
    );
    let out = env.cmd(["rerun", "--stale", "-q"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env.write("params.yaml", "s:\n  k: 2\nt:\n  z: 1\n");
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
}

/// A clone holds no output (git ignores `out/`), so a stage that reads only what an earlier
/// stage made has no file of its in the clone: it is read there because the run that made
/// its inputs is (a chain back to a stage whose data or config is in the clone). Before,
/// `status` in the clone listed two stages of four, and `rerun --stale` failed on the first
/// (the job's `> out/prep.txt` with no `out/`: a rerun in place finds it there). Of two
/// generations of the pipeline (the original ran again with a param not committed), the
/// clone reads the one whose params it holds, for every stage (a trial found the stages
/// without a config read from the later one).
#[test]
fn a_clone_without_its_outputs_reads_every_stage_and_makes_them_all() {
    let mut env = Env::new();
    env.init_repo();
    env.write("raw.txt", "3\n1\n2\n");
    env.write("params.yaml", "prep:\n  k: 1\ntrain:\n  k: 2\n");
    env.write(".gitignore", "out/\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "pipeline"]);
    std::fs::create_dir(env.path("out")).expect("out");
    let stages = [
        (
            "-i",
            "raw.txt",
            Some("params.yaml:prep"),
            "out/prep.txt",
            "sort raw.txt params.yaml > out/prep.txt",
        ),
        (
            "-i",
            "out/prep.txt",
            None,
            "out/feat.txt",
            "sed s/^/f/ out/prep.txt > out/feat.txt",
        ),
        (
            "-i",
            "out/feat.txt",
            Some("params.yaml:train"),
            "out/model.txt",
            "tail -1 out/feat.txt > out/model.txt",
        ),
        (
            "-i",
            "out/model.txt",
            None,
            "out/report.txt",
            "wc -c < out/model.txt > out/report.txt",
        ),
    ];
    let mut ids = Vec::new();
    for (flag, input, config, output, script) in stages {
        let mut args = vec![flag, input];
        if let Some(c) = config {
            args.extend(["-c", c]);
        }
        args.extend(["-o", output, "--", "sh", "-c", script]);
        ids.push(env.record(&args));
    }
    let original = env.work.clone();
    // The original runs its pipeline again with a param not committed: a second generation,
    // which the clone (the committed params) must not take for its own.
    let first: Vec<Vec<u8>> = stages
        .iter()
        .map(|s| std::fs::read(original.join(s.3)).expect("output"))
        .collect();
    env.write("params.yaml", "prep:\n  k: 9\ntrain:\n  k: 2\n");
    let out = env.cmd(["rerun", "--stale", "-q"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env.work = env.root().to_path_buf();
    env.git(&["clone", "-q", &original.display().to_string(), "clone"]);
    let clone = env.root().join("clone");
    env.work = clone.clone();
    let (rc, listed) = status(&env);
    assert_eq!(rc, 6, "{listed:?}");
    let listed_ids: Vec<&str> = listed.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(listed_ids, ids, "every stage, makers first: {listed:?}");
    assert!(listed.iter().all(|s| s.1), "{listed:?}");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("4 stale run(s) rerun"),
        "{}",
        stderr(&out)
    );
    for ((.., output, _), bytes) in stages.iter().zip(&first) {
        assert_eq!(
            &std::fs::read(clone.join(output)).expect("made in the clone"),
            bytes,
            "{output}"
        );
    }
    assert_eq!(status(&env).0, 0);
    // The original is as it was: its own four stages, current.
    env.work = original;
    let (rc, listed) = status(&env);
    assert_eq!(rc, 0, "{listed:?}");
    assert_eq!(listed.len(), 4, "{listed:?}");
}

/// A rerun makes the directories its outputs were written in where they are missing (as a
/// rerun in place finds them), only inside the project: not through a link that leads out
/// of it, even with `--force`.
#[test]
fn a_rerun_makes_its_outputs_directories_only_inside_the_project() {
    let env = Env::new();
    env.init_repo();
    std::fs::create_dir_all(env.path("out/a")).expect("out/a");
    let run = env.record(&[
        "-o",
        "out/a/x.txt",
        "--",
        "sh",
        "-c",
        "echo made > out/a/x.txt",
    ]);
    std::fs::remove_dir_all(env.path("out")).expect("rm out");
    let out = env.cmd(["rerun", "-q", &run]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(env.path("out/a/x.txt")).expect("made again"),
        "made\n"
    );
    // A directory output is made too: its job writes inside it without making it.
    std::fs::create_dir(env.path("outd")).expect("outd");
    let dir_run = env.record(&["-o", "outd", "--", "sh", "-c", "echo in > outd/f.txt"]);
    std::fs::remove_dir_all(env.path("outd")).expect("rm outd");
    let out = env.cmd(["rerun", "-q", &dir_run]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.path("outd/f.txt").is_file());
    // `out` now a link out of the project: nothing is made there.
    std::fs::remove_dir_all(env.path("out")).expect("rm out");
    let outside = env.root().join("outside");
    std::fs::create_dir(&outside).expect("outside");
    std::os::unix::fs::symlink(&outside, env.path("out")).expect("link");
    let out = env.cmd(["rerun", "-q", "--force", &run]);
    assert_ne!(code(&out), 0, "the job finds no out/a: {}", stderr(&out));
    assert!(
        std::fs::read_dir(&outside)
            .expect("outside")
            .next()
            .is_none(),
        "nothing made outside the project"
    );
}

/// The chain of evidence in a clone goes through a file read inside an earlier stage's
/// directory output (`-o out/d`, then `-i out/d/f.txt`): a trial found `status` in the clone
/// listing only the first stage of three.
#[test]
fn a_clone_reads_a_stage_that_read_a_file_inside_a_directory_output() {
    let mut env = Env::new();
    env.init_repo();
    env.write("raw.txt", "hello\n");
    env.write(".gitignore", "out/\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "pipeline"]);
    let ids = [
        env.record(&[
            "-i",
            "raw.txt",
            "-o",
            "out/d",
            "--",
            "sh",
            "-c",
            "mkdir -p out/d; tr h H < raw.txt > out/d/f.txt; echo x > out/d/g.txt",
        ]),
        env.record(&[
            "-i",
            "out/d/f.txt",
            "-o",
            "out/s2.txt",
            "--",
            "sh",
            "-c",
            "tr a-z A-Z < out/d/f.txt > out/s2.txt",
        ]),
        env.record(&[
            "-i",
            "out/s2.txt",
            "-o",
            "out/s3.txt",
            "--",
            "sh",
            "-c",
            "rev < out/s2.txt > out/s3.txt",
        ]),
    ];
    let original = env.work.clone();
    env.work = env.root().to_path_buf();
    env.git(&["clone", "-q", &original.display().to_string(), "clone"]);
    env.work = env.root().join("clone");
    let (rc, listed) = status(&env);
    assert_eq!(rc, 6, "{listed:?}");
    let listed_ids: Vec<&str> = listed.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(listed_ids, ids, "{listed:?}");
}

/// An experiment in a copy (`cp -r proj exp`, a new stage there reading the model) is that
/// copy's own: the original's `status` does not list it (the model it read is there too,
/// with the same bytes), and `rerun --stale` there makes nothing of it. A stage the original
/// adds after the copy was made is not read in the copy either. Before, the original listed
/// the experiment's stage (its report missing) and `rerun --stale` wrote the report there.
#[test]
fn a_stage_run_only_in_a_copy_is_not_read_in_the_original() {
    let mut env = Env::new();
    pipeline(&env);
    let [prepare, featurize, train] = all_stages(&env);
    let original = env.work.clone();
    let exp = env.root().join("exp");
    copy_dir(&original, &exp);
    env.work = exp.clone();
    let report = env.record(&["--", "sh", "-c", "cat model.txt > report.txt"]);
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    let mut ids: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    ids.sort_unstable();
    let mut all = [&*prepare, &featurize, &train, &report];
    all.sort_unstable();
    assert_eq!(ids, all, "{stages:?}");
    // The original: its own three stages, current; nothing of the experiment made there.
    env.work = original.clone();
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    let ids: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(ids, [&prepare, &featurize, &train], "{stages:?}");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!original.join("report.txt").exists(), "{}", stderr(&out));
    let out = env.cmd(["rerun", "--dry-run", &report]);
    assert!(
        stderr(&out).contains(&format!(
            "was recorded in {}, another copy of this project, and it ran there after this copy was made: it reruns there, not here",
            exp.display()
        )),
        "{}",
        stderr(&out)
    );
    // A stage the original adds since the copy: its own.
    let summary = env.record(&["--", "sh", "-c", "cat metrics.json > summary.txt"]);
    let (_, stages) = status(&env);
    assert!(stages.iter().any(|s| s.0 == summary), "{stages:?}");
    env.work = exp.clone();
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    let mut ids: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    ids.sort_unstable();
    let mut all = [&*prepare, &featurize, &train, &report];
    all.sort_unstable();
    assert_eq!(ids, all, "{stages:?}");
    let out = env.cmd(["rerun", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!exp.join("summary.txt").exists(), "{}", stderr(&out));
}

/// What a copy's original ran after the copy was made stays the original's once the
/// original is deleted, and so does what a sibling copy ran once it is moved away: neither
/// reads as "moved here since" in the copy. The sibling, moved, still reads its own runs
/// (the same `.git`, recorded with them). Before, the copy listed both stages as moved
/// here, stale, and `rerun --stale` would have run them there.
#[test]
fn a_copy_does_not_take_what_a_gone_original_or_a_moved_sibling_ran_after_it_was_made() {
    let mut env = Env::new();
    pipeline(&env);
    let [prepare, featurize, train] = all_stages(&env);
    let original = env.work.clone();
    let exp = env.root().join("exp");
    copy_dir(&original, &exp);
    let sibling = env.root().join("c2");
    copy_dir(&original, &sibling);
    env.work = sibling.clone();
    let report = env.record(&["--", "sh", "-c", "cat model.txt > report.txt"]);
    let moved = env.root().join("c2-moved");
    std::fs::rename(&sibling, &moved).expect("mv c2 c2-moved");
    env.work = original.clone();
    env.record(&["--", "sh", "-c", "cat metrics.json > summary.txt"]);
    std::fs::remove_dir_all(&original).expect("rm -rf the original");
    env.work = exp.clone();
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    let ids: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(ids, [&prepare, &featurize, &train], "{stages:?}");
    // The sibling, moved: its own stage and those it was copied with.
    env.work = moved;
    let (rc, stages) = status(&env);
    assert_eq!(rc, 0, "{stages:?}");
    let mut ids: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    ids.sort_unstable();
    let mut all = [&*prepare, &featurize, &train, &report];
    all.sort_unstable();
    assert_eq!(ids, all, "{stages:?}");
}
