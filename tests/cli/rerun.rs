//! `lineage rerun`: verdicts, exit codes, refusal, --force, --worktree, redacted env,
//! --dry-run and --upstream, with real temporary git repositories.

use std::time::Duration;

use serde_json::Value;

use crate::util::*;

fn list(env: &Env) -> Vec<Value> {
    let out = env.cmd(["list", "--json"]);
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("json")
        .as_array()
        .expect("array")
        .clone()
}

#[test]
fn a_deterministic_job_reproduces_bit_for_bit() {
    let env = Env::new();
    env.init_repo();
    env.write("in.txt", "hello\n");
    let id = env.record(&[
        "-i",
        "in.txt",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z < in.txt > out.txt",
    ]);
    let out = env.cmd(["rerun", &id[..13], "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("reproduced bit for bit"),
        "{}",
        stderr(&out)
    );
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verdict["verdict"], "reproduced");
    assert_eq!(verdict["outputs"][0]["result"], "identical");
    // The rerun is a new run linked to the original.
    let rerun = verdict["rerun"].as_str().expect("rerun id");
    let shown = env.show(Some(rerun));
    assert_eq!(shown["rerun_of"], id);
    assert_eq!(shown["status"], "succeeded");
    let runs = list(&env);
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["rerun_of"], id);
    assert_eq!(runs[1]["rerun_of"], Value::Null);
    let text = stdout(&env.cmd(["list"]));
    let short = env.show(Some(&id))["short_id"].clone();
    let short = short.as_str().expect("short id");
    assert!(text.contains(&format!("rerun of {short}")), "{text}");
}

#[test]
fn a_nondeterministic_job_reports_outputs_differ_with_code_100() {
    let env = Env::new();
    env.init_repo();
    let id = env.record(&[
        "-o",
        "rand.txt",
        "-o",
        "fixed.txt",
        "--",
        "sh",
        "-c",
        "date +%s%N > rand.txt; echo same > fixed.txt",
    ]);
    let out = env.cmd(["rerun", &id]);
    assert_eq!(code(&out), 100, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("outputs differ"), "{err}");
    assert!(err.contains("differs rand.txt"), "{err}");
    assert!(!err.contains("differs fixed.txt"), "{err}");
}

#[test]
fn a_failing_rerun_exits_with_the_commands_code() {
    let env = Env::new();
    env.write("flag", "");
    let id = env.record(&[
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "test -e flag && echo ok > out.txt",
    ]);
    std::fs::remove_file(env.path("flag")).expect("rm");
    let out = env.cmd(["rerun", &id, "--json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verdict["verdict"], "failed");
}

#[test]
fn a_changed_input_is_refused_by_name_and_force_proceeds() {
    let env = Env::new();
    env.init_repo();
    env.write("data/labels.csv", "cat\n");
    let id = env.record(&[
        "-i",
        "data/labels.csv",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cp data/labels.csv out.txt",
    ]);
    env.write("data/labels.csv", "dog\n");
    let before = list(&env).len();
    let out = env.cmd(["rerun", &id]);
    assert_eq!(code(&out), 125);
    let err = stderr(&out);
    assert!(
        err.contains("input data/labels.csv differs from the record"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(list(&env).len(), before, "nothing ran");
    let out = env.cmd(["rerun", &id, "--force"]);
    assert_eq!(code(&out), 100, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("input data/labels.csv differs"),
        "explained: {}",
        stderr(&out)
    );
}

#[test]
fn changed_code_is_refused_and_worktree_restores_the_recorded_dirty_tree() {
    let env = Env::new();
    env.init_repo();
    env.write("job.sh", "echo v1 > out.txt\n");
    env.git(&["add", "job.sh"]);
    env.git(&["commit", "-q", "-m", "job"]);
    // Record from a dirty tree: an uncommitted change and an untracked helper.
    env.write("job.sh", "sh helper.sh > out.txt\n");
    env.write("helper.sh", "echo from-dirty-tree\n");
    let id = env.record(&["-o", "out.txt", "--", "sh", "job.sh"]);
    assert_eq!(
        std::fs::read_to_string(env.path("out.txt")).expect("out"),
        "from-dirty-tree\n"
    );
    let patch = env.show(Some(&id))["git"]["patch"].clone();
    assert!(patch.is_string());

    // The working tree moves on: a new commit, the helper gone.
    env.write("job.sh", "echo v2 > out.txt\n");
    env.git(&["commit", "-q", "-am", "v2"]);
    std::fs::remove_file(env.path("helper.sh")).expect("rm");
    let out = env.cmd(["rerun", &id]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    // The untracked helper the job ran was observed, and is kept with the code: compared
    // as code.
    assert!(
        stderr(&out)
            .contains("code: 2 files differ from the recorded code: helper.sh, job.sh (commit was"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--worktree"), "{}", stderr(&out));

    let out = env.cmd(["rerun", &id, "--worktree", "--keep-worktree", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verdict["verdict"], "reproduced");
    let kept = std::path::PathBuf::from(verdict["worktree"].as_str().expect("kept"));
    assert_eq!(
        std::fs::read_to_string(kept.join("job.sh")).expect("job"),
        "sh helper.sh > out.txt\n",
        "patch applied"
    );
    assert_eq!(
        std::fs::read_to_string(kept.join("helper.sh")).expect("helper"),
        "echo from-dirty-tree\n",
        "untracked restored"
    );
    assert_eq!(
        std::fs::read_to_string(kept.join("out.txt")).expect("out"),
        "from-dirty-tree\n"
    );
    // The working tree itself is untouched.
    assert_eq!(
        std::fs::read_to_string(env.path("job.sh")).expect("job"),
        "echo v2 > out.txt\n"
    );
    assert_eq!(
        env.git(&["branch", "--list", "lineage-rerun-*"]),
        "",
        "no branch is left behind"
    );
    std::fs::remove_dir_all(&kept).expect("cleanup");
    env.git(&["worktree", "prune"]);

    // Without --keep-worktree it is removed, and so is its temporary branch.
    let out = env.cmd(["rerun", &id, "--worktree", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let branches = env.git(&["branch", "--list", "lineage-rerun-*"]);
    assert_eq!(
        branches,
        "",
        "temporary branch left behind: {}",
        stderr(&out)
    );
    let worktrees = env.git(&["worktree", "list"]);
    assert_eq!(worktrees.lines().count(), 1, "{worktrees}");
}

#[test]
fn redacted_variables_come_from_the_current_environment_and_are_reported() {
    let env = Env::new();
    let script = "printf %s \"${HF_TOKEN-unset}\" > seen.txt; printf %s \"$PLAIN\" > plain.txt";
    let mut cmd = env.lineage();
    cmd.args([
        "run",
        "-q",
        "-o",
        "seen.txt",
        "-o",
        "plain.txt",
        "--",
        "sh",
        "-c",
        script,
    ])
    .env("HF_TOKEN", "hf-value-1234")
    .env("PLAIN", "recorded");
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0);
    let id = env.show(None)["id"].as_str().expect("id").to_string();

    // The same secret now, a different plain value now: the recorded one is restored.
    let mut cmd = env.lineage();
    cmd.args(["rerun", &id])
        .env("HF_TOKEN", "hf-value-1234")
        .env("PLAIN", "changed-now");
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let reported = stderr(&out)
        .lines()
        .any(|l| l.contains("taken from the current environment:") && l.contains("HF_TOKEN"));
    assert!(reported, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(env.path("plain.txt")).expect("plain"),
        "recorded"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("seen.txt")).expect("seen"),
        "hf-value-1234"
    );

    // Not set now: reported, and the job never sees "[REDACTED]".
    let mut cmd = env.lineage();
    cmd.args(["rerun", &id]).env_remove("HF_TOKEN");
    let out = output_within(cmd, Duration::from_secs(30));
    assert_eq!(code(&out), 100, "{}", stderr(&out));
    let reported = stderr(&out)
        .lines()
        .any(|l| l.contains("not set now (the job runs without them):") && l.contains("HF_TOKEN"));
    assert!(reported, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(env.path("seen.txt")).expect("seen"),
        "unset"
    );
}

#[test]
fn dry_run_changes_nothing() {
    let env = Env::new();
    env.init_repo();
    env.write("in.txt", "x\n");
    // Older than a second, so a rerun's input check could write to the stat cache.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let id = env.record(&[
        "-i",
        "in.txt",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cat in.txt > out.txt; date +%N >> out.txt",
    ]);
    env.write("in.txt", "changed\n");
    env.write("other.txt", "aged\n");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // An empty stat cache: a checking rerun would fill it, a dry run must not.
    env.db()
        .execute("DELETE FROM stat_cache", [])
        .expect("clear the cache");
    // Closing that connection checkpointed and removed the WAL file; let lineage reopen the
    // store once so the snapshot starts from the files it keeps.
    assert_eq!(code(&env.cmd(["list", "--json"])), 0);
    let snapshot = |env: &Env| {
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
        let db: Vec<(String, Vec<u8>)> = env
            .store_files()
            .into_iter()
            .filter(|(p, _)| !p.to_string_lossy().ends_with("-shm"))
            .map(|(p, b)| (p.display().to_string(), b))
            .collect();
        (files, db)
    };
    let before = snapshot(&env);
    let out = env.cmd(["rerun", &id, "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(
        plan.contains("input in.txt: differs from the record"),
        "{plan}"
    );
    assert!(plan.contains("plan: rerun"), "{plan}");
    assert!(
        before == snapshot(&env),
        "--dry-run changed the store or the files"
    );
}

#[test]
fn upstream_reruns_a_two_step_chain_in_order_after_its_intermediate_output_is_deleted() {
    let env = Env::new();
    env.init_repo();
    env.write("raw.txt", "abc\n");
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

    let out = env.cmd(["rerun", &step2]);
    assert_eq!(code(&out), 125);
    let err = stderr(&out);
    assert!(err.contains("input mid.txt is missing"), "{err}");
    assert!(err.contains("--upstream"), "{err}");

    // A dry run plans the chain and runs nothing.
    let out = env.cmd(["rerun", &step2, "--upstream", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("upstream step 1 of 1: remakes mid.txt"),
        "{}",
        stdout(&out)
    );
    assert!(!env.path("mid.txt").exists(), "a dry run ran step 1");
    assert_eq!(list(&env).len(), 2, "a dry run recorded a run");

    let out = env.cmd(["rerun", &step2, "--upstream"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(env.path("mid.txt")).expect("mid"),
        "ABC\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("final.txt")).expect("final"),
        "CBA\n"
    );
    // Newest first: the rerun of step 2 after the rerun of step 1.
    let runs = list(&env);
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[0]["rerun_of"], step2);
    assert_eq!(runs[1]["rerun_of"], step1);

    // Nothing missing now: --upstream skips step 1 and reruns step 2 only.
    let out = env.cmd(["rerun", &step2, "--upstream"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(list(&env).len(), 5);
}

/// A stage that copies its input wrote the input's bytes too: it is not its own upstream.
#[test]
fn upstream_never_takes_the_run_itself_or_a_later_one_for_the_cause() {
    let env = Env::new();
    env.init_repo();
    let first = env.record(&["-o", "a.txt", "--", "sh", "-c", "echo v1 > a.txt"]);
    let copy = env.record(&["-i", "a.txt", "-o", "b.txt", "--", "cp", "a.txt", "b.txt"]);
    env.write("a.txt", "changed\n");
    let out = env.cmd(["rerun", &copy, "--upstream"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    // Newest first: the copy's rerun after the first stage's, and nothing else.
    let runs = list(&env);
    assert_eq!(runs.len(), 4, "{err}");
    assert_eq!(runs[0]["rerun_of"], copy, "{err}");
    assert_eq!(runs[1]["rerun_of"], first, "{err}");
    assert_eq!(
        std::fs::read_to_string(env.path("b.txt")).expect("b"),
        "v1\n"
    );
}

#[test]
fn worktree_restores_a_config_that_held_secrets_from_the_real_file_when_unchanged() {
    let env = Env::new();
    env.init_repo();
    env.write("cfg.yaml", "lr: 0.1\napi_key: cfg-secret-3131\n");
    let id = env.record(&[
        "-c",
        "cfg.yaml",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cat cfg.yaml > out.txt",
    ]);
    let out = env.cmd(["rerun", &id, "--worktree"]);
    assert_eq!(
        code(&out),
        0,
        "the real, unchanged file was used: {}",
        stderr(&out)
    );
    env.write("cfg.yaml", "lr: 0.2\napi_key: cfg-secret-3131\n");
    let out = env.cmd(["rerun", &id, "--worktree", "--force"]);
    assert_eq!(code(&out), 100, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("config cfg.yaml held secrets and has changed since"),
        "{}",
        stderr(&out)
    );
    for (path, bytes) in env.store_files() {
        assert!(
            !contains(&bytes, b"cfg-secret-3131"),
            "found in {}",
            path.display()
        );
    }
}

/// `list` names the run a rerun reran by a prefix that names it alone now (8 characters are
/// shared by every run of the same minute).
#[test]
fn list_names_the_rerun_original_by_a_prefix_that_resolves() {
    let env = Env::local();
    env.init_repo();
    let first = env.record(&["-o", "a.txt", "--", "sh", "-c", "echo a > a.txt"]);
    // Almost always the same first 8 characters (they change every 65 s).
    env.record(&["-o", "b.txt", "--", "sh", "-c", "echo b > b.txt"]);
    let out = env.cmd(["rerun", "-q", &first]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let table = stdout(&env.cmd(["list"]));
    let shown = table
        .lines()
        .find_map(|l| l.split("rerun of ").nth(1))
        .map(|s| s.split_whitespace().next().unwrap_or_default().to_string())
        .expect("a rerun of line");
    let out = env.cmd(["show", "--json", "--run", &shown]);
    assert_eq!(code(&out), 0, "{shown} names one run: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["id"], first.as_str());
}

/// `--worktree --upstream` makes one worktree: the upstream step runs in it and writes its
/// output there, the run itself reads it there; the tree itself is not touched.
#[test]
fn worktree_upstream_runs_every_step_in_one_worktree() {
    let env = Env::local();
    env.init_repo();
    env.write("raw.txt", "abc\n");
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

    let out = env.cmd([
        "rerun",
        &step2,
        "--worktree",
        "--upstream",
        "--keep-worktree",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verdict["verdict"], "reproduced");
    let kept = std::path::PathBuf::from(verdict["worktree"].as_str().expect("kept"));
    assert_eq!(
        std::fs::read_to_string(kept.join("mid.txt")).expect("mid"),
        "ABC\n"
    );
    assert_eq!(
        std::fs::read_to_string(kept.join("final.txt")).expect("final"),
        "CBA\n"
    );
    assert!(
        !env.path("mid.txt").exists(),
        "written outside the worktree"
    );
    assert!(
        !env.path("final.txt").exists(),
        "written outside the worktree"
    );
    let worktrees = env.git(&["worktree", "list"]);
    assert_eq!(worktrees.lines().count(), 2, "one worktree: {worktrees}");
    let runs = list(&env);
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[0]["rerun_of"], step2);
    assert_eq!(runs[1]["rerun_of"], step1);
    let cwd = |r: &Value| env.show(r["id"].as_str())["cwd"].clone();
    assert_eq!(
        cwd(&runs[0]),
        cwd(&runs[1]),
        "both steps ran in the worktree"
    );
    std::fs::remove_dir_all(kept.parent().expect("private dir")).expect("cleanup");
    env.git(&["worktree", "prune"]);

    // Without --keep-worktree: removed, with its temporary branch.
    let out = env.cmd(["rerun", &step2, "--worktree", "--upstream"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.git(&["worktree", "list"]).lines().count(), 1);
    assert_eq!(env.git(&["branch", "--list", "lineage-rerun-*"]), "");
}

/// A run recorded by `rerun --worktree` ran in a worktree removed since: it is rerun as the
/// run it reproduced, in that run's repository, with or without --worktree.
#[test]
fn a_worktree_rerun_is_rerun_as_its_original() {
    let env = Env::local();
    env.init_repo();
    let id = env.record(&["-o", "out.txt", "--", "sh", "-c", "echo hi > out.txt"]);
    let out = env.cmd(["rerun", &id, "--worktree", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    let in_worktree = verdict["rerun"].as_str().expect("rerun").to_string();

    let out = env.cmd(["rerun", &in_worktree, "--worktree", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("recorded in a temporary worktree removed since"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.git(&["worktree", "list"]).lines().count(), 1);

    std::fs::remove_file(env.path("out.txt")).expect("rm");
    let out = env.cmd(["rerun", &in_worktree, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    let again = verdict["rerun"].as_str().expect("rerun");
    assert_eq!(
        env.show(Some(again))["cwd"],
        env.show(Some(&id))["cwd"],
        "rerun where the original ran"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("out.txt")).expect("out"),
        "hi\n"
    );
}

/// A directory that differs is compared file by file: the verdict names the files added,
/// removed and changed (the first ten, then how many more), and --json lists them all.
#[test]
fn a_directory_verdict_names_the_files_that_differ() {
    let env = Env::local();
    env.init_repo();
    // Read by the job, not declared, outside the repository: what makes the rerun differ.
    let counter = env.root().join("counter");
    std::fs::write(&counter, "1\n").expect("counter");
    let script = format!(
        "rm -rf eval && mkdir eval && echo same > eval/same.txt && cp {c} eval/metrics.json \
         && for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do cp {c} eval/f$i.txt; done \
         && if [ \"$(cat {c})\" = 1 ]; then echo x > eval/old.txt; else echo y > eval/new.txt; fi",
        c = counter.display()
    );
    let id = env.record(&["-o", "eval", "--", "sh", "-c", &script]);
    std::fs::write(&counter, "2\n").expect("counter");
    // The job's read of the counter was observed: a changed input, rerun only with --force.
    let out = env.cmd(["rerun", &id, "--json"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("counter differs from the record"),
        "{}",
        stderr(&out)
    );
    let out = env.cmd(["rerun", &id, "--force", "--json"]);
    assert_eq!(code(&out), 100, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("differs eval (15 files changed, 1 file added, 1 file removed)"),
        "{err}"
    );
    assert!(err.contains("    changed eval/f1.txt\n"), "{err}");
    assert!(err.contains("    and 7 more\n"), "{err}");
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    let files = &verdict["outputs"][0]["files"];
    assert_eq!(files["added"], serde_json::json!(["new.txt"]), "{verdict}");
    assert_eq!(
        files["removed"],
        serde_json::json!(["old.txt"]),
        "{verdict}"
    );
    let changed = files["changed"].as_array().expect("changed");
    assert_eq!(changed.len(), 15, "{verdict}");
    assert!(changed.contains(&Value::from("metrics.json")), "{verdict}");
    assert!(!changed.contains(&Value::from("same.txt")), "{verdict}");
    assert_eq!(files["run_id_only"], serde_json::json!([]));
}

/// A job that stamps `LINEAGE_RUN_ID` into its outputs (as the README suggests) reproduces:
/// its outputs differ only where the run id is written, and the verdict says so (exit 0).
#[test]
fn outputs_that_differ_only_where_the_run_id_is_written_are_reproduced() {
    let env = Env::local();
    env.init_repo();
    let id = env.record(&[
        "-o",
        "ckpt.txt",
        "-o",
        "ckpts",
        "--",
        "sh",
        "-c",
        "echo \"run $LINEAGE_RUN_ID epoch 3\" > ckpt.txt; mkdir -p ckpts; echo fixed > ckpts/a.txt; \
         printf %s \"$LINEAGE_RUN_ID\" | tr -d - > ckpts/id.txt",
    ]);
    let out = env.cmd(["rerun", &id, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the outputs differ only where the run id is written"),
        "{err}"
    );
    assert!(!err.contains("not deterministic"), "{err}");
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verdict["verdict"], "reproduced_except_run_id", "{verdict}");
    assert_eq!(verdict["outputs"][0]["result"], "run_id_only", "{verdict}");
    assert_eq!(verdict["outputs"][1]["result"], "run_id_only", "{verdict}");
    assert_eq!(
        verdict["outputs"][1]["files"]["run_id_only"],
        serde_json::json!(["id.txt"]),
        "{verdict}"
    );

    // Anything else that differs besides the id still differs.
    let id = env.record(&[
        "-o",
        "stamp.txt",
        "--",
        "sh",
        "-c",
        "echo \"$LINEAGE_RUN_ID $(date +%s%N)\" > stamp.txt",
    ]);
    let out = env.cmd(["rerun", &id, "--json"]);
    assert_eq!(code(&out), 100, "{}", stderr(&out));
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verdict["outputs"][0]["result"], "differs", "{verdict}");
}

/// Steps recorded at different commits each run their own recorded code in the one worktree,
/// and what a step wrote stays there for the next, across the change of code.
#[test]
fn worktree_upstream_runs_each_step_with_its_own_code() {
    let env = Env::local();
    env.init_repo();
    env.write("stage1.sh", "tr a-z A-Z < raw.txt > mid.txt\n");
    env.write("stage2.sh", "rev mid.txt > final.txt\n");
    env.write(".gitignore", "*.txt\n");
    env.git(&["add", "stage1.sh", "stage2.sh", ".gitignore"]);
    env.git(&["commit", "-q", "-m", "stages"]);
    env.write("raw.txt", "abc\n");
    let step1 = env.record(&["-i", "raw.txt", "-o", "mid.txt", "--", "sh", "stage1.sh"]);
    // Stage 1 changes after it ran (committed), then stage 2 runs with that code.
    env.write("stage1.sh", "tr a-z x < raw.txt > mid.txt\n");
    env.git(&["commit", "-q", "-am", "stage 1 v2"]);
    let step2 = env.record(&["-i", "mid.txt", "-o", "final.txt", "--", "sh", "stage2.sh"]);
    // And stage 2 changes too, uncommitted.
    env.write("stage2.sh", "echo changed > final.txt\n");
    std::fs::remove_file(env.path("mid.txt")).expect("rm");

    let out = env.cmd([
        "rerun",
        &step2,
        "--worktree",
        "--upstream",
        "--keep-worktree",
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verdict["verdict"], "reproduced", "{verdict}");
    let kept = std::path::PathBuf::from(verdict["worktree"].as_str().expect("kept"));
    assert_eq!(
        std::fs::read_to_string(kept.join("mid.txt")).expect("mid"),
        "ABC\n",
        "step 1 ran its own code"
    );
    assert_eq!(
        std::fs::read_to_string(kept.join("stage1.sh")).expect("stage1"),
        "tr a-z x < raw.txt > mid.txt\n",
        "the run itself has its own code"
    );
    assert_eq!(
        std::fs::read_to_string(kept.join("final.txt")).expect("final"),
        "CBA\n"
    );
    let runs = list(&env);
    assert_eq!(runs[1]["rerun_of"], step1);
    assert_eq!(
        std::fs::read_to_string(env.path("stage2.sh")).expect("stage2"),
        "echo changed > final.txt\n",
        "the tree is not touched"
    );
    std::fs::remove_dir_all(kept.parent().expect("private dir")).expect("cleanup");
    env.git(&["worktree", "prune"]);
}

/// Files inside an output directory that the original job did not write (`kept`: left there
/// by an earlier job) are nobody's product: the verdict compares only the files it wrote.
/// A declared output it did not write at all is not part of the verdict either.
#[test]
fn files_the_original_did_not_write_are_not_compared() {
    let env = Env::local();
    env.init_repo();
    env.write("ckpt/epoch_9.pt", "stale\n");
    env.write("untouched.txt", "left alone\n");
    let id = env.record(&[
        "-o",
        "ckpt",
        "-o",
        "untouched.txt",
        "--",
        "sh",
        "-c",
        "echo w > ckpt/epoch_1.pt",
    ]);
    let shown = env.show(Some(&id));
    assert_eq!(
        artifact(&shown, "outputs", "ckpt")["written"],
        "some",
        "{shown}"
    );
    assert_eq!(
        artifact(&shown, "outputs", "untouched.txt")["written"],
        "none",
        "{shown}"
    );
    std::fs::remove_file(env.path("ckpt/epoch_9.pt")).expect("rm");
    std::fs::remove_file(env.path("untouched.txt")).expect("rm");

    let out = env.cmd(["rerun", &id, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("reproduced bit for bit"), "{err}");
    assert!(!err.contains("not deterministic"), "{err}");
    assert!(
        err.contains("untouched.txt: not written by the original: not compared"),
        "{err}"
    );
    assert!(
        err.contains("ckpt: 1 file the original did not write: not compared (epoch_9.pt)"),
        "{err}"
    );
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verdict["verdict"], "reproduced", "{verdict}");
    assert_eq!(verdict["outputs"][0]["result"], "identical", "{verdict}");
    assert_eq!(
        verdict["outputs"][0]["not_compared"],
        serde_json::json!(["epoch_9.pt"]),
        "{verdict}"
    );
    assert_eq!(verdict["outputs"][1]["result"], "not_written", "{verdict}");

    // A file the original wrote still counts: changed, it differs.
    let id = env.record(&[
        "-o",
        "ckpt",
        "--",
        "sh",
        "-c",
        "date +%s%N > ckpt/epoch_2.pt",
    ]);
    let out = env.cmd(["rerun", &id, "--json"]);
    assert_eq!(code(&out), 100, "{}", stderr(&out));
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
    let files = &verdict["outputs"][0]["files"];
    assert_eq!(
        files["changed"],
        serde_json::json!(["epoch_2.pt"]),
        "{verdict}"
    );
    assert_eq!(files["removed"], serde_json::json!([]), "{verdict}");
    assert_eq!(files["added"], serde_json::json!([]), "{verdict}");
}

/// The real pipeline: a training writes into a checkpoint folder that already holds files of
/// earlier jobs, and a resumed training reads one of them; `--worktree` reruns (where the
/// folder holds only what the rerun wrote, and the input linked) reproduce.
#[test]
fn a_worktree_rerun_of_a_training_writing_into_an_existing_checkpoint_folder_reproduces() {
    let env = Env::local();
    env.init_repo();
    env.write(".gitignore", "ckpt/\n");
    env.write(
        "train.sh",
        "mkdir -p ckpt; echo \"weights 1\" > ckpt/epoch_1.pt\n",
    );
    env.write(
        "resume.sh",
        "sed s/1/2/ ckpt/epoch_1.pt > ckpt/epoch_2.pt\n",
    );
    env.git(&["add", ".gitignore", "train.sh", "resume.sh"]);
    env.git(&["commit", "-q", "-m", "training"]);
    env.write("ckpt/epoch_9.pt", "from an earlier experiment\n");
    let train = env.record(&["-o", "ckpt", "--", "sh", "train.sh"]);
    let resume = env.record(&[
        "-i",
        "ckpt/epoch_1.pt",
        "-o",
        "ckpt",
        "--",
        "sh",
        "resume.sh",
    ]);
    for id in [&train, &resume] {
        let out = env.cmd(["rerun", id, "--worktree", "--json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let verdict: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(verdict["verdict"], "reproduced", "{verdict}");
        assert!(!stderr(&out).contains("removed"), "{}", stderr(&out));
    }
}

/// A commit that changes only what the run declared (its config, checked as data by its
/// bytes) or commits exactly the recorded uncommitted changes leaves the code as the job
/// sees it: the rerun goes, the new commit a note. A commit that changes another file blocks,
/// naming the files (the first ten).
#[test]
fn the_code_check_compares_files_not_commit_ids() {
    let env = Env::local();
    env.init_repo();
    env.write("p.yaml", "k: 1\n");
    env.git(&["add", "p.yaml"]);
    env.git(&["commit", "-q", "-m", "k=1"]);
    env.write("p.yaml", "k: 2\n");
    // train.py changed, uncommitted, when recorded. Unobserved: every code file counts
    // (observed, only those the job opened do: observe.rs).
    env.write("train.py", "echo training v2\n");
    let id = env.record(&[
        "--no-observe",
        "-c",
        "p.yaml",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cat p.yaml > out.txt",
    ]);
    env.git(&["commit", "-q", "-am", "k=2"]);

    let out = env.cmd(["rerun", &id, "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(plan.contains("code: same as recorded"), "{plan}");
    assert!(plan.contains("config p.yaml: same as recorded"), "{plan}");
    assert!(!plan.contains("would refuse"), "{plan}");
    assert!(plan.contains("code: commit was "), "a note: {plan}");
    let out = env.cmd(["rerun", &id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A commit touching a file the run did not declare: the code differs, by name.
    env.write("README.md", "# notes\n");
    for i in 0..11 {
        env.write(&format!("lib/m{i:02}.sh"), "true\n");
    }
    env.git(&["add", "README.md", "lib"]);
    env.git(&["commit", "-q", "-m", "docs"]);
    let out = env.cmd(["rerun", &id]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("12 files differ from the recorded code: README.md, lib/m00.sh"),
        "{err}"
    );
    assert!(err.contains("lib/m08.sh, and 2 more"), "{err}");
    let out = env.cmd(["rerun", &id, "--dry-run", "--json"]);
    let plan: Value = serde_json::from_slice(&out.stdout).expect("json");
    let files = plan["steps"][0]["checks"]["code_files"]
        .as_array()
        .expect("code_files");
    assert_eq!(files.len(), 12, "{plan}");
    assert_eq!(files[0], "README.md", "{plan}");
}

/// An upstream step refused by the checks is said to be refused, with why, not to have failed.
#[test]
fn a_refused_upstream_step_is_said_to_be_refused() {
    let env = Env::local();
    env.init_repo();
    env.write("raw.txt", "abc\n");
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
    let out = env.cmd(["rerun", &step2, "--upstream"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("was refused: input raw.txt differs from the record; not rerunning the rest"),
        "{err}"
    );
    assert!(!err.contains("failed (exit"), "{err}");
}

/// A `--worktree` rerun applies the recorded uncommitted changes as `git diff HEAD` holds
/// them: a tracked link pointed elsewhere (which libgit2 could not apply in a working
/// directory: it read the old side through the link), a file changed, one deleted, a new one
/// staged; the rerun reproduces and records the same code hash.
#[test]
fn a_worktree_rerun_applies_a_retargeted_tracked_link_and_staged_changes() {
    let env = Env::local();
    env.init_repo();
    env.write("a.txt", "first\n");
    env.write("b.txt", "second\n");
    env.write("old.txt", "going\n");
    std::os::unix::fs::symlink("a.txt", env.path("latest")).expect("link");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "link"]);
    std::fs::remove_file(env.path("latest")).expect("unlink");
    std::os::unix::fs::symlink("b.txt", env.path("latest")).expect("relink");
    env.write("a.txt", "first, changed\n");
    env.git(&["rm", "-q", "old.txt"]);
    env.write("new.txt", "new\n");
    env.git(&["add", "new.txt"]);
    let id = env.record(&[
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cat latest a.txt new.txt > out.txt; test -e old.txt && echo old >> out.txt; true",
    ]);
    let recorded = env.show(Some(&id));
    assert_eq!(
        recorded["git"]["changed_files"],
        serde_json::json!(["a.txt", "latest", "new.txt", "old.txt"])
    );
    let out = env.cmd(["rerun", &id, "--worktree"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("reproduced bit for bit"),
        "{}",
        stderr(&out)
    );
    let rerun = env.show(None);
    assert_eq!(rerun["rerun_of"], recorded["id"]);
    assert_eq!(rerun["code_hash"], recorded["code_hash"]);
}

/// A stage that depends on some keys of a config (`-c params.yaml:train`), the config changed
/// by a later commit: `rerun OLD --worktree` restores the recorded config and reruns. It was
/// refused with "config params.yaml: same as recorded" (the keys were compared with the
/// file here, not the worktree's copy).
#[test]
fn a_worktree_rerun_restores_a_config_a_later_commit_changed_for_its_keys() {
    let env = Env::new();
    env.init_repo();
    env.write("params.yaml", "train:\n  lr: 0.1\n");
    env.write("train.sh", "cat params.yaml > model.txt\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-q", "-m", "init"]);
    let old = env.record(&[
        "-c",
        "params.yaml:train",
        "-o",
        "model.txt",
        "--",
        "sh",
        "train.sh",
    ]);
    env.write("params.yaml", "train:\n  lr: 0.3\n");
    env.git(&["commit", "-q", "-a", "-m", "lr"]);
    env.record(&[
        "-c",
        "params.yaml:train",
        "-o",
        "model.txt",
        "--",
        "sh",
        "train.sh",
    ]);
    let out = env.cmd(["rerun", &old, "--worktree"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("reproduced bit for bit"),
        "{}",
        stderr(&out)
    );
}

/// With `--json`, lineage's standard output is the JSON alone: the job's own standard output
/// goes to standard error (it came first on standard output, and `| jq` failed), for one
/// rerun and for `--stale`.
#[test]
fn rerun_json_keeps_the_jobs_output_off_standard_output() {
    let env = Env::new();
    env.init_repo();
    env.write("in.txt", "a\n");
    let id = env.record(&[
        "-i",
        "in.txt",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "echo job-says-hi; cat in.txt > out.txt",
    ]);
    let out = env.cmd(["rerun", &id, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert!(v["verdict"].is_string(), "{v}");
    assert!(stderr(&out).contains("job-says-hi"), "{}", stderr(&out));
    // Without --json the job's output is where the job put it.
    let out = env.cmd(["rerun", &id, "-q"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("job-says-hi"), "{}", stdout(&out));
    env.write("in.txt", "b\n");
    let out = env.cmd(["rerun", "--stale", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_eq!(v["reruns"].as_array().map(Vec::len), Some(1), "{v}");
    assert!(stderr(&out).contains("job-says-hi"), "{}", stderr(&out));
}
