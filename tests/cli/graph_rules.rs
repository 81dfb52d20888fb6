//! The rules of the lineage graph (docs/lineage-model.md), one test per way issue 16 found
//! the graph wrong: produced means written, causes come first, one rule picks the producer.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::util::*;

/// `show TARGET --format json` (plus `extra`), parsed.
fn graph(env: &Env, target: &str, extra: &[&str]) -> Value {
    let mut args = vec!["show", target, "--format", "json"];
    args.extend_from_slice(extra);
    let out = env.cmd(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The runs linked to `hash` in a graph document.
fn linked(doc: &Value, hash: &str) -> BTreeSet<String> {
    doc["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter(|l| l["artifact"] == hash)
        .map(|l| l["run"].as_str().expect("run").to_string())
        .collect()
}

fn tree(env: &Env, args: &[&str]) -> String {
    let mut full = vec!["show"];
    full.extend_from_slice(args);
    let out = env.cmd(&full);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
}

fn hash_of(env: &Env, rel: &str) -> String {
    blake3_hex(&std::fs::read(env.path(rel)).expect("read"))
}

/// Item 2: a declared output the job never wrote is nobody's product, even when the job
/// failed; a failed run that wrote it is a producer only with --all.
#[test]
fn an_output_the_job_did_not_write_is_not_its_product() {
    let env = Env::new();
    env.init_repo();
    env.write("out.txt", "a\n");
    let out = env.cmd(["run", "-q", "-o", "out.txt", "--", "false"]);
    assert_eq!(code(&out), 1);
    let run = env.show(None);
    assert_eq!(artifact(&run, "outputs", "out.txt")["written"], "none");
    let out = env.cmd(["show", "out.txt"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("source: no recorded run produced it"),
        "{}",
        stdout(&out)
    );
    assert!(
        tree(&env, &["--run", run["id"].as_str().expect("id")]).contains("declared, not written")
    );

    // A failed run that did write: not the producer by default, shown with --all.
    let out = env.cmd([
        "run",
        "-q",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "echo b > out.txt; exit 1",
    ]);
    assert_eq!(code(&out), 1);
    let failed = env.show(None)["id"].as_str().expect("id").to_string();
    assert!(linked(&graph(&env, "out.txt", &[]), &hash_of(&env, "out.txt")).is_empty());
    assert_eq!(
        linked(
            &graph(&env, "out.txt", &["--all"]),
            &hash_of(&env, "out.txt")
        ),
        BTreeSet::from([failed])
    );
    // Nor is it what `diff` or `rerun --upstream` would pick.
    let out = env.cmd(["diff", "out.txt", "out.txt"]);
    assert_ne!(code(&out), 0, "no producer to compare: {}", stdout(&out));
}

/// Items 6 and 22: a stage that copies its input is not its own ancestor (no cycle), and a
/// producer that ran after the consumer is not one of its causes.
#[test]
fn causes_come_before_their_effects() {
    let env = Env::new();
    env.init_repo();
    env.write("raw.txt", "raw\n");
    let prep = env.record(&[
        "-i",
        "raw.txt",
        "-o",
        "mid.txt",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z < raw.txt > mid.txt",
    ]);
    let copy = env.record(&[
        "-i", "mid.txt", "-o", "out.txt", "--", "cp", "mid.txt", "out.txt",
    ]);
    let doc = graph(&env, "out.txt", &[]);
    let mid = hash_of(&env, "mid.txt");
    assert_eq!(hash_of(&env, "out.txt"), mid, "the copy has the same bytes");
    // At the root both made these bytes; as the copy's input, only prep did.
    let t = tree(&env, &["out.txt"]);
    assert!(!t.contains("shown above"), "no loop:\n{t}");
    let copy_short = &copy[..8];
    assert_eq!(t.matches("─ produced by run").count(), 2, "{t}");
    assert!(t.contains("input mid.txt"), "{t}");
    assert_eq!(
        linked(&doc, &mid),
        BTreeSet::from([prep.clone(), copy.clone()])
    );
    // The copied file itself: made by prep; the copy, which read those bytes, comes after
    // (it named the copy first, then prep as the copy's own input's maker).
    let t = tree(&env, &["mid.txt"]);
    let first = t
        .lines()
        .find_map(|l| l.split("produced by run ").nth(1))
        .expect("a producer");
    assert!(first.starts_with(&prep[prep.len() - 8..]), "{t}");
    assert_eq!(t.matches("─ produced by run").count(), 1, "{t}");
    assert!(
        t.contains(&format!("also produced by run {}", &copy[copy.len() - 8..])),
        "{t}"
    );
    let _ = copy_short;

    // Re-recording prep later: the copy's input was not made by it.
    let again = env.record(&[
        "-i",
        "raw.txt",
        "-o",
        "mid.txt",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z < raw.txt > mid.txt",
    ]);
    let t = tree(&env, &["out.txt", "--depth", "2"]);
    let json = graph(&env, "out.txt", &[]);
    let runs: BTreeSet<&str> = json["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    // It is a producer of out.txt's bytes (the root: now), never under the copy.
    assert!(runs.contains(again.as_str()));
    let under_copy = t.split("input mid.txt").nth(1).unwrap_or_default();
    let again_short = env.show(Some(&again))["short_id"]
        .as_str()
        .expect("short")
        .to_string();
    assert!(
        !under_copy.contains(&again_short),
        "a later run is not a cause:\n{t}"
    );
}

/// Items 20 and 21: a directory inside an output directory is traced to the run that wrote
/// it, both ways; files the job did not write in its output directory are not its product.
#[test]
fn directories_nest_and_only_written_files_are_produced() {
    let env = Env::new();
    env.init_repo();
    let prep = env.record(&[
        "-o",
        "data",
        "--",
        "sh",
        "-c",
        "mkdir -p data/train data/test && echo 1 > data/train/a && echo 2 > data/test/b",
    ]);
    let train = env.record(&[
        "-i",
        "data/train",
        "-o",
        "model.txt",
        "--",
        "sh",
        "-c",
        "cat data/train/a data/train/a > model.txt",
    ]);
    let up = graph(&env, "data/train", &[]);
    assert_eq!(
        linked(&up, &hash_of_dir(&env, "data/train")),
        BTreeSet::from([prep.clone()])
    );
    let down = graph(&env, "data", &["--descendants"]);
    let readers: BTreeSet<&str> = down["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert!(readers.contains(train.as_str()), "{down}");

    // A resumed job: the checkpoint it started from is not its product.
    std::fs::create_dir_all(env.path("ck")).expect("mkdir");
    env.write("ck/epoch_1.pt", "one\n");
    env.write("ck/epoch_3.pt", "stale\n");
    std::thread::sleep(std::time::Duration::from_millis(50));
    let resume = env.record(&[
        "-o",
        "ck",
        "--",
        "sh",
        "-c",
        "cat ck/epoch_1.pt > ck/epoch_2.pt; echo two >> ck/epoch_2.pt",
    ]);
    let run = env.show(Some(&resume));
    let ck = artifact(&run, "outputs", "ck");
    assert_eq!(ck["written"], "some", "{run}");
    assert_eq!(ck["kept"], serde_json::json!(["epoch_1.pt", "epoch_3.pt"]));
    assert!(
        linked(
            &graph(&env, "ck/epoch_1.pt", &[]),
            &hash_of(&env, "ck/epoch_1.pt")
        )
        .is_empty()
    );
    assert!(
        linked(
            &graph(&env, "ck/epoch_3.pt", &[]),
            &hash_of(&env, "ck/epoch_3.pt")
        )
        .is_empty()
    );
    assert_eq!(
        linked(
            &graph(&env, "ck/epoch_2.pt", &[]),
            &hash_of(&env, "ck/epoch_2.pt")
        ),
        BTreeSet::from([resume.clone()])
    );
    // The directory as a whole is its product.
    let ck = graph(&env, "ck", &[]);
    let hash = ck["target"]["hash"].as_str().expect("hash");
    assert!(linked(&ck, hash).contains(&resume), "{ck}");
}

fn hash_of_dir(env: &Env, rel: &str) -> String {
    let doc = graph(env, rel, &[]);
    doc["target"]["hash"].as_str().expect("hash").to_string()
}

/// Item 9: a file changed inside an output directory is explained.
#[test]
fn a_file_changed_inside_an_output_directory_is_explained() {
    let env = Env::new();
    env.init_repo();
    env.record(&[
        "-o",
        "eval",
        "--",
        "sh",
        "-c",
        "mkdir -p eval && echo '{\"acc\": 1}' > eval/metrics.json",
    ]);
    let short = env.show(None)["short_id"]
        .as_str()
        .expect("short")
        .to_string();
    env.write("eval/metrics.json", "{\"acc\": 2}\n");
    let out = env.cmd(["show", "eval/metrics.json"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("modified after run")
            && err.contains(&short)
            && err.contains("as metrics.json inside eval"),
        "{err}"
    );
}

/// Items 5 and 13: reproductions are grouped under their original, not repeated; the
/// producer picked for a rerun is an original that ended before the consumer started.
#[test]
fn reproductions_are_grouped_and_originals_are_picked() {
    let env = Env::new();
    env.init_repo();
    env.write("raw.txt", "x\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-qm", "raw"]);
    let prep = env.record(&[
        "-i",
        "raw.txt",
        "-o",
        "mid.txt",
        "--",
        "sh",
        "-c",
        "cat raw.txt raw.txt > mid.txt",
    ]);
    // A worktree rerun of prep before train: newer than prep, but a rerun, and its
    // directory is gone. --upstream must not pick it (it once took the newest).
    let out = env.cmd(["rerun", "-q", "--worktree", &prep]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let train = env.record(&[
        "-i",
        "mid.txt",
        "-o",
        "model.txt",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z < mid.txt > model.txt",
    ]);
    for _ in 0..3 {
        let out = env.cmd(["rerun", "-q", &train]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let t = tree(&env, &["raw.txt", "--descendants"]);
    assert!(t.contains("reproduced by 3 reruns"), "{t}");
    assert_eq!(
        t.matches("$ sh -c 'tr a-z A-Z < mid.txt > model.txt'")
            .count(),
        1,
        "{t}"
    );
    let t = tree(&env, &["model.txt"]);
    assert!(t.contains("reproduced by 3 reruns"), "{t}");
    assert_eq!(
        t.matches("$ sh -c 'tr a-z A-Z < mid.txt > model.txt'")
            .count(),
        1,
        "{t}"
    );

    // A rerun of prep too; then mid.txt deleted: --upstream reruns the original prep,
    // never a later run.
    let out = env.cmd(["rerun", "-q", &prep]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::fs::remove_file(env.path("mid.txt")).expect("rm");
    let out = env.cmd(["rerun", &train, "--upstream"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let prep_short = env.show(Some(&prep))["short_id"]
        .as_str()
        .expect("s")
        .to_string();
    assert!(
        stderr(&out).contains(&format!("rerunning {prep_short}, which produced mid.txt")),
        "{}",
        stderr(&out)
    );
}

/// A rerun whose inputs changed and that made the same bytes again did not reproduce its
/// original: it made them from other inputs, and, newer, it is their maker in the tree
/// (with its own inputs); the original is "also produced by", not grouped as reproduced.
#[test]
fn a_rerun_from_changed_inputs_that_makes_the_same_bytes_is_their_maker() {
    let env = Env::new();
    env.init_repo();
    env.write("raw.txt", "abc\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-qm", "raw"]);
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
    let train = env.record(&[
        "-i",
        "mid.txt",
        "-o",
        "model.txt",
        "--",
        "sh",
        "-c",
        "wc -c < mid.txt > model.txt",
    ]);
    let model = hash_of(&env, "model.txt");
    // The same length: the model's bytes do not change.
    env.write("raw.txt", "xyz\n");
    let out = env.cmd(["rerun", "-q", "--stale", "model.txt"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(hash_of(&env, "model.txt"), model);
    let rerun = env.show(None);
    assert_eq!(rerun["rerun_of"], train.as_str(), "{rerun}");
    let short = |v: &Value| v["short_id"].as_str().expect("short").to_string();
    let (rerun_short, train_short) = (short(&rerun), short(&env.show(Some(&train))));
    let t = tree(&env, &["model.txt"]);
    assert!(
        t.contains(&format!("produced by run {rerun_short}")),
        "the rerun made these bytes from today's inputs: {t}"
    );
    let mid = hash_of(&env, "mid.txt");
    assert!(
        t.contains(&format!("input mid.txt  {}", &mid[7..19])),
        "{t}"
    );
    assert!(
        t.contains(&format!("also produced by run {train_short}")),
        "{t}"
    );
    assert!(!t.contains("reproduced by"), "{t}");
    // A rerun from the same inputs still reproduces it, grouped on its line.
    let out = env.cmd(["rerun", "-q", rerun["id"].as_str().expect("id")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let t = tree(&env, &["model.txt"]);
    assert!(t.contains(&format!("produced by run {rerun_short}")), "{t}");
    assert!(t.contains("reproduced by 1 rerun"), "{t}");
}

/// A file declared two ways (`m.txt`, `sub/../m.txt`) is one path in the store: its last
/// writer is the one stage `status` and `rerun --stale` answer to (they once took each name
/// for another file and reran the two stages in turn). Through a link, `..` is the parent
/// of where the link leads: the file is recorded where the job wrote it.
#[test]
fn a_file_declared_two_ways_is_one_path() {
    let env = Env::new();
    env.init_repo();
    std::fs::create_dir_all(env.path("sub")).expect("mkdir");
    std::fs::create_dir_all(env.path("elsewhere/deep")).expect("mkdir");
    std::os::unix::fs::symlink(env.path("elsewhere/deep"), env.path("lnk")).expect("ln");
    env.write("p.txt", "1\n");
    env.git(&["add", "p.txt"]);
    env.git(&["commit", "-qm", "p"]);
    env.record(&[
        "-i",
        "p.txt",
        "-o",
        "m.txt",
        "--",
        "sh",
        "-c",
        "cat p.txt > m.txt",
    ]);
    let second = env.record(&[
        "-i",
        "p.txt",
        "-o",
        "sub/../m.txt",
        "-o",
        "lnk/../n.txt",
        "-o",
        "elsewhere/w.txt",
        "--",
        "sh",
        "-c",
        "cat p.txt p.txt > m.txt; cat p.txt > elsewhere/n.txt; cat p.txt > lnk/../w.txt",
    ]);
    let doc = env.show(Some(&second));
    let abs: Vec<String> = doc["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|e| e["abs_path"].as_str().expect("abs").to_string())
        .collect();
    let root = env.path("").display().to_string();
    let root = root.trim_end_matches('/');
    assert!(abs.contains(&format!("{root}/m.txt")), "{abs:?}");
    // Declared through the link, written by its real name: one output where it really is.
    assert!(abs.contains(&format!("{root}/elsewhere/n.txt")), "{abs:?}");
    // Written through the link, declared by its real name: the same (the observer once took
    // `lnk/..` by name, a file the job never wrote).
    assert!(abs.contains(&format!("{root}/elsewhere/w.txt")), "{abs:?}");
    assert_eq!(abs.len(), 3, "{abs:?}");
    assert!(
        doc["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .all(|o| o["declared"] == true && o["opened"] == true && o["written"] == "all"),
        "{doc:#}"
    );
    // `show` by either name finds the second stage.
    for name in ["m.txt", "sub/../m.txt"] {
        let t = tree(&env, &[name]);
        assert!(t.contains("cat p.txt p.txt > m.txt"), "{name}: {t}");
    }
    env.write("p.txt", "2\n");
    let out = env.cmd(["status"]);
    assert_eq!(code(&out), 6, "stale: {}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("cat p.txt p.txt > m.txt"), "{said}");
    assert!(
        !said.contains("'cat p.txt > m.txt'"),
        "the first stage no longer answers for m.txt: {said}"
    );
    let out = env.cmd(["rerun", "-q", "--stale"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.cmd(["status"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        std::fs::read_to_string(env.path("m.txt")).expect("m"),
        "2\n2\n"
    );
}

/// Bytes two stages made, copied by hand and read by a third: the third is up to date while
/// one of the makers still makes them (it was called stale, for the other one's sake), and
/// a maker looked at only to know so is not a stage of its own.
#[test]
fn a_hand_copy_of_bytes_two_stages_made_is_current_while_one_of_them_is() {
    let env = Env::new();
    env.init_repo();
    env.write("a.txt", "a\n");
    env.write("b.txt", "b\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-qm", "in"]);
    let first = env.record(&[
        "-i",
        "a.txt",
        "-o",
        "x.txt",
        "--",
        "sh",
        "-c",
        "cat a.txt >/dev/null; echo same > x.txt",
    ]);
    let second = env.record(&[
        "-i",
        "b.txt",
        "-o",
        "y.txt",
        "--",
        "sh",
        "-c",
        "cat b.txt >/dev/null; echo same > y.txt",
    ]);
    std::fs::create_dir_all(env.path("deploy")).expect("mkdir");
    std::fs::copy(env.path("x.txt"), env.path("deploy/m.txt")).expect("cp");
    env.record(&[
        "-i",
        "deploy/m.txt",
        "-o",
        "c.txt",
        "--",
        "sh",
        "-c",
        "cat deploy/m.txt > c.txt",
    ]);
    let short = |id: &str| {
        env.show(Some(id))["short_id"]
            .as_str()
            .expect("short")
            .to_string()
    };
    let (first, second) = (short(&first), short(&second));
    env.write("b.txt", "b2\n");
    let out = env.cmd(["status", "c.txt"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let said = stdout(&out);
    assert!(said.contains(&first), "{said}");
    assert!(!said.contains(&second), "not a stage of c.txt's: {said}");
    // Both makers stale: the third is, for the first ranked.
    env.write("a.txt", "a2\n");
    let out = env.cmd(["status", "c.txt"]);
    assert_eq!(code(&out), 6, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("which made deploy/m.txt, is stale"),
        "{}",
        stdout(&out)
    );
}

/// A rerun after an edit to a config section the run does not read (`-c params.yaml:train`,
/// `eval` edited) reproduced it: the params it read are the same, and `rerun` said so; it is
/// grouped on the original's line, not drawn as a maker of its own.
#[test]
fn a_rerun_after_an_edit_to_a_config_section_it_does_not_read_reproduced_it() {
    let env = Env::new();
    env.init_repo();
    env.write("params.yaml", "train:\n  lr: 1\neval:\n  k: 1\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-qm", "p"]);
    let train = env.record(&[
        "-c",
        "params.yaml:train",
        "-o",
        "model.txt",
        "--",
        "sh",
        "-c",
        "grep lr params.yaml > model.txt",
    ]);
    env.write("params.yaml", "train:\n  lr: 1\neval:\n  k: 2\n");
    let out = env.cmd(["rerun", &train]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("reproduced bit for bit"),
        "{}",
        stderr(&out)
    );
    let short = env.show(Some(&train))["short_id"]
        .as_str()
        .expect("short")
        .to_string();
    let t = tree(&env, &["model.txt"]);
    assert!(t.contains(&format!("produced by run {short}")), "{t}");
    assert!(t.contains("reproduced by 1 rerun"), "{t}");
    assert!(!t.contains("also produced by"), "{t}");
}

/// A file only a failed or interrupted run wrote is not shown as a source: the tree and
/// `diff` say which run made it and that `--all` shows it.
#[test]
fn bytes_only_a_failed_run_wrote_say_so() {
    let env = Env::new();
    env.init_repo();
    let out = env.cmd([
        "run",
        "-q",
        "-o",
        "part.txt",
        "--",
        "sh",
        "-c",
        "echo partial > part.txt; exit 3",
    ]);
    assert_eq!(code(&out), 3);
    let failed = env.show(None)["short_id"]
        .as_str()
        .expect("short")
        .to_string();
    let t = tree(&env, &["part.txt"]);
    assert!(
        t.contains(&format!(
            "made only by a run that did not succeed: failed run {failed} (--all shows it)"
        )),
        "{t}"
    );
    env.record(&["-o", "out.txt", "--", "sh", "-c", "echo done > out.txt"]);
    let out = env.cmd(["diff", "part.txt", "out.txt"]);
    assert_ne!(code(&out), 0);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("only failed run {failed} wrote it")) && err.contains("--all"),
        "{err}"
    );
}

/// Downstream, a run is never a reader of bytes it wrote itself: not of its copy's bytes,
/// not of the directory it wrote holding a file it read (a resumed training).
#[test]
fn a_run_is_not_its_own_descendant() {
    let env = Env::new();
    env.init_repo();
    env.write("mid.txt", "m\n");
    let copy = env.record(&[
        "-i", "mid.txt", "-o", "out.txt", "--", "cp", "mid.txt", "out.txt",
    ]);
    let t = tree(&env, &["out.txt", "--descendants"]);
    let short = env.show(Some(&copy))["short_id"]
        .as_str()
        .expect("short")
        .to_string();
    assert!(
        !t.contains(&short),
        "the copy did not read its own output:\n{t}"
    );
    assert!(tree(&env, &["mid.txt", "--descendants"]).contains(&short));

    std::fs::create_dir_all(env.path("ck")).expect("mkdir");
    env.write("ck/epoch_1.pt", "one\n");
    std::thread::sleep(std::time::Duration::from_millis(50));
    let resume = env.record(&[
        "-i",
        "ck/epoch_1.pt",
        "-o",
        "ck",
        "--",
        "sh",
        "-c",
        "cat ck/epoch_1.pt > ck/epoch_2.pt",
    ]);
    let short = env.show(Some(&resume))["short_id"]
        .as_str()
        .expect("short")
        .to_string();
    let t = tree(&env, &["ck", "--descendants"]);
    assert!(!t.contains(&short), "{t}");
}

/// A directory changed inside an output directory is explained like a file.
#[test]
fn a_directory_changed_inside_an_output_directory_is_explained() {
    let env = Env::new();
    env.init_repo();
    env.record(&[
        "-o",
        "data",
        "--",
        "sh",
        "-c",
        "mkdir -p data/test && echo 1 > data/test/part-0.csv",
    ]);
    let short = env.show(None)["short_id"]
        .as_str()
        .expect("short")
        .to_string();
    let before = graph(&env, "data/test", &[])["target"]["hash"]
        .as_str()
        .expect("hash")
        .to_string();
    env.write("data/test/part-0.csv", "1\n2\n");
    let out = env.cmd(["show", "data/test"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&short) && err.contains("as test inside data") && err.contains(&before),
        "{err}"
    );
}

/// `show RUN` names the run it reproduced by its short id; an id too short to be one says
/// what to give.
#[test]
fn show_names_what_a_rerun_reproduced_by_its_short_id() {
    let env = Env::new();
    env.init_repo();
    let first = env.record(&["-o", "o.txt", "--", "sh", "-c", "echo o > o.txt"]);
    let out = env.cmd(["rerun", "-q", &first]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let short = env.show(Some(&first))["short_id"]
        .as_str()
        .expect("short")
        .to_string();
    let t = tree(&env, &[]);
    let line = t
        .lines()
        .find(|l| l.contains("rerun of"))
        .expect("rerun of");
    assert!(line.trim_end().ends_with(&short), "{line}");
    let out = env.cmd(["show", "0148bc"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("8 hex digits"), "{}", stderr(&out));
}

/// A job that only points a link at bytes written long before (a "promote" step) wrote
/// nothing: the model stays the product of the run that wrote it.
#[test]
fn retargeting_a_link_writes_nothing() {
    let env = Env::new();
    env.init_repo();
    let train = env.record(&[
        "-o",
        "ckpt_v2",
        "--",
        "sh",
        "-c",
        "mkdir -p ckpt_v2 && seq 1000 > ckpt_v2/model.pt",
    ]);
    // Older than the margin for a file server's clock.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    env.write("eval.txt", "good\n");
    let promote = env.record(&[
        "-i", "eval.txt", "-o", "current", "--", "ln", "-sfn", "ckpt_v2", "current",
    ]);
    let run = env.show(Some(&promote));
    assert_eq!(
        artifact(&run, "outputs", "current")["written"],
        "none",
        "{run}"
    );
    assert_eq!(
        linked(
            &graph(&env, "ckpt_v2/model.pt", &[]),
            &hash_of(&env, "ckpt_v2/model.pt")
        ),
        BTreeSet::from([train])
    );
}

/// A run imported from someone else, later than yours, that claims the same bytes does not
/// take your model over: your verified run is the producer in the tree, in `diff`, and for
/// `rerun --upstream`; theirs is "also produced by", marked.
#[test]
fn an_imported_run_never_outranks_your_own() {
    let env = Env::new();
    env.init_repo();
    env.write("data.csv", "1,2\n");
    let mine = env.record(&[
        "-i",
        "data.csv",
        "-o",
        "model.bin",
        "--",
        "sh",
        "-c",
        "tr , ';' < data.csv > model.bin",
    ]);
    let other = Env::local();
    other.init_repo();
    other.write("x.txt", "x\n");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let theirs = other.record(&[
        "-i",
        "x.txt",
        "-o",
        "model.bin",
        "--",
        "sh",
        "-c",
        "printf '1;2\\n' > model.bin",
    ]);
    assert_eq!(
        std::fs::read(other.path("model.bin")).expect("theirs"),
        std::fs::read(env.path("model.bin")).expect("mine"),
        "the same bytes"
    );
    let bundle = other.root().join("theirs.lineage");
    let out = other.cmd(["bundle", "export", "-o", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.cmd(["bundle", "import", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let t = tree(&env, &["model.bin"]);
    let my_short = env.show(Some(&mine))["short_id"]
        .as_str()
        .expect("s")
        .to_string();
    let their_short = env.show(Some(&theirs))["short_id"]
        .as_str()
        .expect("s")
        .to_string();
    let first = t
        .lines()
        .find(|l| l.contains("produced by"))
        .expect("a producer");
    assert!(first.contains(&my_short), "{t}");
    assert!(
        t.contains(&format!("also produced by run {their_short}")),
        "{t}"
    );
    env.record(&[
        "-i",
        "model.bin",
        "-o",
        "eval.txt",
        "--",
        "sh",
        "-c",
        "wc -c < model.bin > eval.txt",
    ]);
    std::fs::remove_file(env.path("model.bin")).expect("rm");
    let eval = env.show(None)["id"].as_str().expect("id").to_string();
    let out = env.cmd(["rerun", &eval, "--upstream", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&my_short) && !stdout(&out).contains(&format!("rerun {their_short}")),
        "{}",
        stdout(&out)
    );
}

/// `rerun --upstream` remakes a missing input with the run that wrote it there, not with a
/// newer run that wrote the same bytes under another name (a copy would not bring it back).
#[test]
fn upstream_remakes_a_file_with_the_run_that_wrote_it_there() {
    let env = Env::new();
    env.init_repo();
    env.write("raw.txt", "r\n");
    let prep = env.record(&[
        "-i",
        "raw.txt",
        "-o",
        "mid.txt",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z < raw.txt > mid.txt",
    ]);
    env.record(&[
        "-i", "mid.txt", "-o", "copy.txt", "--", "cp", "mid.txt", "copy.txt",
    ]);
    let use_it = env.record(&[
        "-i",
        "mid.txt",
        "-o",
        "t.txt",
        "--",
        "sh",
        "-c",
        "cat mid.txt mid.txt > t.txt",
    ]);
    let before = std::fs::read(env.path("mid.txt")).expect("mid");
    std::fs::remove_file(env.path("mid.txt")).expect("rm");
    let out = env.cmd(["rerun", "-q", &use_it, "--upstream"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read(env.path("mid.txt")).expect("remade"), before);
    let runs = env.cmd(["list", "--json"]);
    let list: Value = serde_json::from_slice(&runs.stdout).expect("json");
    let reran: Vec<&str> = list
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["rerun_of"].as_str())
        .collect();
    assert!(reran.contains(&prep.as_str()), "{list}");
}

/// One worktree per rerun, and the work tree left alone: an input the step also writes is
/// copied into the worktree, never linked (the job would write the real file through it).
#[test]
fn a_worktree_rerun_never_writes_through_to_the_work_tree() {
    let env = Env::new();
    env.init_repo();
    env.write(".gitignore", "d/\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-qm", "ignore data"]);
    std::fs::create_dir_all(env.path("d")).expect("mkdir");
    env.write("d/a.txt", "a\n");
    let run = env.record(&[
        "-i",
        "d/a.txt",
        "-o",
        "d/a.txt",
        "--",
        "sh",
        "-c",
        "echo more >> d/a.txt",
    ]);
    let before = std::fs::read(env.path("d/a.txt")).expect("read");
    let out = env.cmd(["rerun", "-q", "--worktree", "--force", &run]);
    assert!(code(&out) == 0 || code(&out) == 100, "{}", stderr(&out));
    assert_eq!(
        std::fs::read(env.path("d/a.txt")).expect("read"),
        before,
        "the real file was written"
    );
}

/// Files a recorded run wrote are a pipeline's data, not its code, even untracked and not
/// ignored: deleting one a later stage does not read does not make that stage's code
/// "differ" (and block its rerun).
#[test]
fn files_an_earlier_stage_wrote_are_data_not_code() {
    let env = Env::new();
    env.init_repo();
    env.write("raw.txt", "r\n");
    env.git(&["add", "."]);
    env.git(&["commit", "-qm", "raw"]);
    env.record(&[
        "-i",
        "raw.txt",
        "-o",
        "a.txt",
        "--",
        "sh",
        "-c",
        "cat raw.txt raw.txt > a.txt",
    ]);
    env.record(&[
        "-i",
        "a.txt",
        "-o",
        "b.txt",
        "--",
        "sh",
        "-c",
        "tr a-z A-Z < a.txt > b.txt",
    ]);
    let last = env.record(&[
        "-i",
        "b.txt",
        "-o",
        "c.txt",
        "--",
        "sh",
        "-c",
        "rev < b.txt > c.txt",
    ]);
    std::fs::remove_file(env.path("a.txt")).expect("rm");
    let out = env.cmd(["rerun", "-q", &last]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// A rerun of a rerun is grouped under the original too: the tree names every producer.
#[test]
fn reruns_of_reruns_are_grouped_under_the_original() {
    let env = Env::new();
    env.init_repo();
    let a = env.record(&["-o", "f.txt", "--", "sh", "-c", "echo f > f.txt"]);
    let out = env.cmd(["rerun", "-q", &a]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let b = env.show(None)["id"].as_str().expect("id").to_string();
    let out = env.cmd(["rerun", "-q", &b]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let t = tree(&env, &["f.txt"]);
    assert!(t.contains("reproduced by 2 reruns"), "{t}");
    assert_eq!(t.matches("─ produced by").count(), 1, "{t}");
}
