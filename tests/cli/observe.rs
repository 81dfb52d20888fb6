//! Observed I/O (docs/recording.md, "Observed I/O"): `lineage run -- CMD` with no flags
//! records what the job really read and wrote, through every process of the job, without
//! changing what the job sees. Real jobs: Python, shells, make, a static binary, strace.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Env, code, stderr, stdout};

/// The edges of `role` in a run's JSON: (path, declared, opened).
fn edges(run: &Value, role: &str) -> Vec<(String, bool, Option<bool>)> {
    run[role]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["path"].as_str().expect("path").to_string(),
                e["declared"].as_bool().expect("declared"),
                e["opened"].as_bool(),
            )
        })
        .collect()
}

fn paths(run: &Value, role: &str) -> Vec<String> {
    edges(run, role).into_iter().map(|(p, ..)| p).collect()
}

/// A repository with `script` committed as `job.py`, and the data files untracked.
fn repo_with(env: &Env, script: &str, data: &[(&str, &str)]) {
    env.git(&["init", "-q"]);
    env.write("job.py", script);
    env.git(&["add", "job.py"]);
    env.git(&["commit", "-q", "-m", "job"]);
    for (path, text) in data {
        env.write(path, text);
    }
}

fn run_ok(env: &Env, args: &[&str]) -> Value {
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    let out = env.cmd(&full);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    env.show(None)
}

#[test]
fn a_flag_free_pipeline_is_walked_back_to_its_raw_data() {
    let env = Env::local();
    env.git(&["init", "-q"]);
    env.write(
        "prep.py",
        "rows = open('data/raw.csv').read().split()\nopen('features.csv', 'w').write('\\n'.join(r.upper() for r in rows))\n",
    );
    env.write(
        "train.py",
        "import os\nf = open('features.csv').read()\nos.makedirs('models', exist_ok=True)\nopen('models/model.bin', 'w').write(f[::-1])\n",
    );
    env.git(&["add", "prep.py", "train.py"]);
    env.git(&["commit", "-q", "-m", "pipeline"]);
    env.write("data/raw.csv", "a\nb\nc\n");

    let prep = run_ok(&env, &["python3", "prep.py"]);
    assert_eq!(paths(&prep, "inputs"), ["data/raw.csv"]);
    assert_eq!(paths(&prep, "outputs"), ["features.csv"]);
    assert!(!edges(&prep, "inputs")[0].1, "observed, not declared");
    assert_eq!(
        prep["observed"]["code_read"],
        serde_json::json!(["prep.py"])
    );
    let train = run_ok(&env, &["python3", "train.py"]);
    assert_eq!(paths(&train, "inputs"), ["features.csv"]);
    assert_eq!(paths(&train, "outputs"), ["models/model.bin"]);

    // A copy elsewhere is found by its bytes, and walked back through both stages.
    std::fs::create_dir_all(env.path("deploy")).expect("mkdir");
    std::fs::copy(env.path("models/model.bin"), env.path("deploy/m.bin")).expect("copy");
    let out = env.cmd(["show", "deploy/m.bin"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let tree = stdout(&out);
    assert!(tree.contains("observed input features.csv"), "{tree}");
    assert!(tree.contains("observed input data/raw.csv"), "{tree}");
    assert!(tree.contains("python3 prep.py"), "{tree}");

    // Exports and rerun treat observed edges like declared ones.
    let out = env.cmd(["export", "--format", "prov-json", "deploy/m.bin"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("data/raw.csv"), "{}", stdout(&out));
    let id = train["id"].as_str().expect("id");
    let out = env.cmd(["rerun", id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("reproduced"), "{}", stderr(&out));
}

#[test]
fn many_files_read_in_one_directory_are_one_input() {
    let env = Env::local();
    let mut data = Vec::new();
    let names: Vec<String> = (0..10)
        .flat_map(|i| {
            [
                format!("data/train/cat/{i}.txt"),
                format!("data/train/dog/{i}.txt"),
            ]
        })
        .collect();
    for n in &names {
        data.push((n.as_str(), "pixels"));
    }
    data.push(("data/other/unread.txt", "never read"));
    repo_with(
        &env,
        "import glob\nn = sum(len(open(p).read()) for p in glob.glob('data/train/*/*.txt'))\nopen('count.txt', 'w').write(str(n))\n",
        &data,
    );
    let run = run_ok(&env, &["python3", "job.py"]);
    let inputs = run["inputs"].as_array().expect("inputs");
    assert_eq!(inputs.len(), 1, "{inputs:?}");
    assert_eq!(inputs[0]["path"], "data/train");
    assert_eq!(inputs[0]["kind"], "dir");
    assert_eq!(inputs[0]["file_count"], 20);
    // `data` itself is not rolled up: the job never read data/other.
}

#[test]
fn each_path_is_classified_by_the_documented_rules() {
    let env = Env::local();
    repo_with(
        &env,
        r#"import os, tempfile
open('job.py').read()                      # code: tracked by git
open('/etc/hostname').read()               # environment
open('/proc/self/status').read()           # ignored
open('input.csv').read()                   # data
open('half.tmp', 'w').write('x'); os.unlink('half.tmp')   # created and deleted: nothing
os.unlink('old.log')                       # deleted
with open('result.json.tmp', 'w') as f: f.write('{}')
os.rename('result.json.tmp', 'result.json')  # written through a temporary: the final name
fd, scratch = tempfile.mkstemp(); os.write(fd, b'x'); os.close(fd)  # scratch: not an output
try:
    open('never-there.csv')
except FileNotFoundError:
    pass
"#,
        &[("input.csv", "1,2\n"), ("old.log", "old\n")],
    );
    let run = run_ok(&env, &["python3", "job.py"]);
    assert_eq!(paths(&run, "inputs"), ["input.csv"]);
    assert_eq!(paths(&run, "outputs"), ["result.json"]);
    let o = &run["observed"];
    assert_eq!(o["code_read"], serde_json::json!(["job.py"]));
    assert_eq!(o["deleted"], serde_json::json!(["old.log"]));
    assert!(o["environment"].as_u64().expect("count") > 0, "{o}");
    assert!(o["calls"].as_u64().expect("calls") > 10, "{o}");
    assert!(o["off"].is_null());
}

#[test]
fn declared_and_observed_paths_are_told_apart() {
    let env = Env::local();
    repo_with(
        &env,
        "open('a.csv').read(); open('c.csv').read(); open('out.txt', 'w').write('x')\n",
        &[("a.csv", "a"), ("b.csv", "b"), ("c.csv", "c")],
    );
    let out = env.cmd([
        "run", "-i", "a.csv", "-i", "b.csv", "-o", "out.txt", "--", "python3", "job.py",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("declared input b.csv was never opened by the job"),
        "{}",
        stderr(&out)
    );
    let run = env.show(None);
    let ins = edges(&run, "inputs");
    assert!(ins.contains(&("a.csv".into(), true, Some(true))), "{ins:?}");
    assert!(
        ins.contains(&("b.csv".into(), true, Some(false))),
        "{ins:?}"
    );
    assert!(
        ins.contains(&("c.csv".into(), false, Some(true))),
        "{ins:?}"
    );
    assert_eq!(
        edges(&run, "outputs"),
        [("out.txt".into(), true, Some(true))]
    );

    // The same in `show RUN`.
    let out = env.cmd(["show", run["id"].as_str().expect("id")]);
    let text = stdout(&out);
    assert!(text.contains("input (declared, never opened)"), "{text}");
    assert!(text.contains("input (observed)"), "{text}");
}

/// A path declared through `..` is the one the job names through `..`: opened, not "never
/// opened", no second edge for what the job read or wrote, and `--strict` satisfied (a
/// performance trial found each of these wrong, and 50,000 files of `../data` recorded as
/// undeclared reads).
#[test]
fn paths_declared_through_dot_dot_are_the_paths_the_job_opens() {
    let env = Env::local();
    env.write("data/f1.csv", "a,b\n1,2\n");
    env.write("data/f2.csv", "a,b\n3,4\n");
    env.write("work/sub/keep", "");
    let out = env
        .lineage()
        .current_dir(env.path("work"))
        .args([
            "run",
            "--strict",
            "-i",
            "../data",
            "-i",
            "sub/../../data/f2.csv",
            "-o",
            "../out.txt",
            "--",
            "sh",
            "-c",
            "cat ../data/f1.csv sub/../../data/f2.csv > ../out.txt",
        ])
        .output()
        .expect("lineage");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("never opened"), "{}", stderr(&out));
    let run = env.show(None);
    let ins = edges(&run, "inputs");
    assert_eq!(ins.len(), 2, "{ins:?}");
    assert!(
        ins.iter()
            .all(|(_, declared, opened)| *declared && *opened == Some(true)),
        "{ins:?}"
    );
    assert_eq!(
        edges(&run, "outputs"),
        [("../out.txt".into(), true, Some(true))]
    );
}

#[test]
fn strict_fails_a_successful_run_with_undeclared_io_once_it_is_recorded() {
    let env = Env::local();
    repo_with(
        &env,
        "import sys\nopen('a.csv').read()\nsys.exit(int(sys.argv[1]))\n",
        &[("a.csv", "a")],
    );
    let out = env.cmd(["run", "--strict", "--", "python3", "job.py", "0"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(stderr(&out).contains("a.csv"), "{}", stderr(&out));
    assert_eq!(env.show(None)["status"], "succeeded", "recorded either way");

    let out = env.cmd([
        "run", "--strict", "-i", "a.csv", "--", "python3", "job.py", "0",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A failed job keeps its own exit code.
    let out = env.cmd(["run", "--strict", "--", "python3", "job.py", "3"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    // lineage.toml can ask for it.
    env.write("lineage.toml", "[run]\nstrict = true\n");
    let out = env.cmd(["run", "--", "python3", "job.py", "0"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
}

#[test]
fn observation_can_be_switched_off_by_flag_or_setting() {
    let env = Env::local();
    repo_with(&env, "open('a.csv').read()\n", &[("a.csv", "a")]);
    let run = run_ok(&env, &["--no-observe", "python3", "job.py"]);
    assert!(paths(&run, "inputs").is_empty());
    assert!(run["observed"].is_null(), "{}", run["observed"]);
    env.write("lineage.toml", "[run]\nobserve = false\n");
    let run = run_ok(&env, &["python3", "job.py"]);
    assert!(paths(&run, "inputs").is_empty());
    let out = env.cmd(["run", "--no-observe", "--strict", "--", "true"]);
    assert_eq!(
        code(&out),
        2,
        "--strict needs observation: {}",
        stderr(&out)
    );
    // The setting off and --strict asked: refused before launch, naming the setting.
    let out = env.cmd(["run", "--strict", "--", "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("observe = false"), "{}", stderr(&out));
}

#[test]
fn a_database_read_in_place_is_an_input_and_home_settings_are_environment() {
    let env = Env::local();
    repo_with(
        &env,
        r#"import sqlite3, subprocess
db = sqlite3.connect('features.sqlite')
print(db.execute('select count(*) from t').fetchone()[0])
db.close()
open('notes.txt', 'r+').read()        # opened to read and write, left as it was
subprocess.run(['git', 'rev-parse', 'HEAD'], check=True, capture_output=True)  # reads ~/.gitconfig
"#,
        &[("notes.txt", "n")],
    );
    let db = rusqlite::Connection::open(env.path("features.sqlite")).expect("db");
    db.execute_batch("create table t (x); insert into t values (1), (2);")
        .expect("fill");
    drop(db);
    let out = env.cmd([
        "run",
        "--strict",
        "-i",
        "notes.txt",
        "--",
        "python3",
        "job.py",
    ]);
    let run = env.show(None);
    assert_eq!(
        code(&out),
        5,
        "the database is undeclared: {}",
        stderr(&out)
    );
    assert_eq!(
        paths(&run, "inputs"),
        ["notes.txt", "features.sqlite"],
        "{run}"
    );
    assert!(paths(&run, "outputs").is_empty(), "{run}");
    assert!(!stderr(&out).contains(".gitconfig"), "{}", stderr(&out));
    let out = env.cmd([
        "run",
        "--strict",
        "-i",
        "notes.txt",
        "-i",
        "features.sqlite",
        "--",
        "python3",
        "job.py",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn outputs_roll_up_only_into_a_directory_the_job_made_and_filled() {
    let env = Env::local();
    let raw: Vec<(String, String)> = (0..12)
        .map(|i| (format!("d/raw/{i}.txt"), format!("{i}\n")))
        .collect();
    let raw: Vec<(&str, &str)> = raw.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    repo_with(
        &env,
        "import glob, os\nos.makedirs('d/clean')\nos.makedirs('d/feat')\nfor p in sorted(glob.glob('d/raw/*.txt')):\n    open(p.replace('raw', 'clean'), 'w').write(open(p).read() * 2)\nopen('d/feat/all.txt', 'w').write('x')\n",
        &raw,
    );
    // `os.makedirs` asks for `d`, which existed: not the job's.
    let run = run_ok(&env, &["python3", "job.py"]);
    assert_eq!(paths(&run, "inputs"), ["d/raw"], "{run}");
    assert_eq!(
        paths(&run, "outputs"),
        ["d/clean", "d/feat/all.txt"],
        "{run}"
    );
    let out = env.cmd(["show", "d/raw"]);
    assert!(
        stdout(&out).contains("no recorded run produced it"),
        "the job is not its own input's producer: {}",
        stdout(&out)
    );
}

#[test]
fn every_process_of_the_job_is_observed() {
    let env = Env::local();
    let mut data: Vec<(String, String)> = (0..8)
        .map(|i| (format!("in/part-{i}.txt"), format!("part {i}\n")))
        .collect();
    data.push(("sub.txt".into(), "subprocess\n".into()));
    data.push(("thread.txt".into(), "thread\n".into()));
    data.push(("spawned.txt".into(), "spawn\n".into()));
    let data: Vec<(&str, &str)> = data.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    repo_with(
        &env,
        r#"import multiprocessing as mp, os, subprocess, threading

def shard(i):
    data = open(f'in/part-{i}.txt').read()
    open(f'shards/shard-{i}.bin', 'w').write(data * 2)

def spawned(_):
    return open('spawned.txt').read()

if __name__ == '__main__':
    os.makedirs('shards')
    with mp.get_context('fork').Pool(8) as pool:
        pool.map(shard, range(8))
    with mp.get_context('spawn').Pool(1) as pool:
        open('from-spawn.txt', 'w').write(pool.map(spawned, [0])[0])
    subprocess.run(['cp', 'sub.txt', 'from-sub.txt'], check=True)
    t = threading.Thread(target=lambda: open('from-thread.txt', 'w').write(open('thread.txt').read()))
    t.start(); t.join()
"#,
        &data,
    );
    let run = run_ok(&env, &["python3", "job.py"]);
    let ins = paths(&run, "inputs");
    for p in ["in", "spawned.txt", "sub.txt", "thread.txt"] {
        assert!(ins.contains(&p.to_string()), "{p} in {ins:?}");
    }
    let outs = run["outputs"].as_array().expect("outputs");
    let shards = outs.iter().find(|o| o["path"] == "shards").expect("shards");
    assert_eq!(shards["kind"], "dir");
    assert_eq!(shards["file_count"], 8, "one shard from each of 8 workers");
    let outs = paths(&run, "outputs");
    for p in ["from-spawn.txt", "from-sub.txt", "from-thread.txt"] {
        assert!(outs.contains(&p.to_string()), "{p} in {outs:?}");
    }
}

#[test]
fn shell_pipelines_and_parallel_make_are_observed() {
    let env = Env::local();
    env.init_repo();
    env.write("words.txt", "b\na\nc\n");
    for t in ["w", "x", "y", "z"] {
        env.write(&format!("src/{t}.in"), t);
    }
    env.write(
        "Makefile",
        "all: out/w.out out/x.out out/y.out out/z.out\nout/%.out: src/%.in\n\t@mkdir -p out\n\t@cat $< $< > $@\n",
    );
    let run = run_ok(&env, &["sh", "-c", "cat words.txt | sort > sorted.txt"]);
    assert_eq!(paths(&run, "inputs"), ["words.txt"]);
    assert_eq!(paths(&run, "outputs"), ["sorted.txt"]);
    assert_eq!(
        std::fs::read_to_string(env.path("sorted.txt")).expect("read"),
        "a\nb\nc\n"
    );

    let run = run_ok(&env, &["make", "-j4"]);
    let ins = paths(&run, "inputs");
    for t in ["w", "x", "y", "z"] {
        assert!(ins.contains(&format!("src/{t}.in")), "{ins:?}");
        assert!(
            paths(&run, "outputs").contains(&format!("out/{t}.out")),
            "{run}"
        );
    }
    assert!(
        ins.contains(&"Makefile".to_string()),
        "untracked, so data: {ins:?}"
    );
}

/// Compile `c` with the system's C compiler (`-static` when asked) into `name`.
fn compile(env: &Env, name: &str, c: &str, static_: bool) {
    env.write(&format!("{name}.c"), c);
    let mut cmd = Command::new("cc");
    if static_ {
        cmd.arg("-static");
    }
    cmd.arg("-o")
        .arg(env.path(name))
        .arg(env.path(&format!("{name}.c")));
    let out = cmd.output().expect("cc runs");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_static_binary_and_a_job_with_its_own_seccomp_filter_are_observed() {
    let env = Env::local();
    env.init_repo();
    env.write("in.txt", "static\n");
    compile(
        &env,
        "copy",
        r#"#include <stdio.h>
int main(void) {
    char buf[64] = {0};
    FILE *in = fopen("in.txt", "r"); fread(buf, 1, sizeof buf - 1, in); fclose(in);
    FILE *out = fopen("copied.txt", "w"); fputs(buf, out); fclose(out);
    return 7;
}"#,
        true,
    );
    let out = env.cmd(["run", "--", "./copy"]);
    assert_eq!(code(&out), 7, "the job's own exit code: {}", stderr(&out));
    let run = env.show(None);
    assert_eq!(paths(&run, "inputs"), ["in.txt"]);
    assert_eq!(paths(&run, "outputs"), ["copied.txt"]);

    // A job that installs a filter of its own (allow everything) before reading.
    compile(
        &env,
        "filtered",
        r#"#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <sys/prctl.h>
int main(void) {
    struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
    struct sock_fprog prog = { 1, allow };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("seccomp"); return 1;
    }
    FILE *in = fopen("in.txt", "r"); if (!in) return 2; fclose(in);
    FILE *out = fopen("filtered.txt", "w"); fputs("ok", out); fclose(out);
    return 0;
}"#,
        false,
    );
    let run = run_ok(&env, &["./filtered"]);
    assert_eq!(paths(&run, "inputs"), ["in.txt"]);
    assert_eq!(paths(&run, "outputs"), ["filtered.txt"]);
}

#[test]
fn a_job_under_ptrace_or_a_nested_lineage_works() {
    let env = Env::local();
    env.init_repo();
    env.write("in.txt", "traced\n");
    let run = run_ok(
        &env,
        &[
            "strace",
            "-f",
            "-o",
            "/dev/null",
            "cp",
            "in.txt",
            "traced.txt",
        ],
    );
    assert_eq!(paths(&run, "inputs"), ["in.txt"]);
    assert_eq!(paths(&run, "outputs"), ["traced.txt"]);
    let run = run_ok(
        &env,
        &[
            "gdb",
            "-q",
            "-batch",
            "-ex",
            "run",
            "--args",
            "cp",
            "in.txt",
            "debugged.txt",
        ],
    );
    assert!(
        paths(&run, "outputs").contains(&"debugged.txt".to_string()),
        "{run}"
    );

    // lineage inside lineage: the inner one cannot add a second supervisor, says so, and its
    // job runs; the outer one observes it all.
    let lineage = env!("CARGO_BIN_EXE_lineage");
    let out = env.cmd([
        "run",
        "--",
        lineage,
        "run",
        "--",
        "cp",
        "in.txt",
        "nested.txt",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already under a seccomp supervisor"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(env.path("nested.txt")).expect("nested"),
        "traced\n"
    );
}

#[test]
fn the_job_sees_the_same_calls_results_and_exit_status() {
    let env = Env::local();
    env.init_repo();
    env.write("in.txt", "same\n");
    // Results: a missing file, a directory, a permission error and a read are what they are.
    let probe = "import errno, os\nfor p in ['missing', '.', 'in.txt']:\n    try:\n        print(p, len(open(p).read()))\n    except OSError as e:\n        print(p, errno.errorcode[e.errno])\n";
    env.write("probe.py", probe);
    let observed = env.cmd(["run", "-q", "--", "python3", "probe.py"]);
    let direct = Command::new("python3")
        .arg("probe.py")
        .current_dir(env.path(""))
        .output()
        .expect("python3");
    assert_eq!(stdout(&observed), String::from_utf8_lossy(&direct.stdout));
    assert!(stdout(&observed).contains("missing ENOENT"));
    // Killed by a signal: 128 + N, as without lineage.
    let out = env.cmd(["run", "-q", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(code(&out), 143);
}

#[test]
fn no_new_privs_is_set_only_where_the_filter_needs_it() {
    let env = Env::local();
    env.init_repo();
    let out = env.cmd(["run", "-q", "--", "grep", "NoNewPrivs", "/proc/self/status"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // With CAP_SYS_ADMIN (root here) the filter needs no `no_new_privs`: setuid programs
    // in the job keep working. Without it, the job gets it (docs/recording.md).
    let root = nix::unistd::geteuid().is_root();
    let want = if root { "0" } else { "1" };
    assert!(
        stdout(&out).split_whitespace().last() == Some(want),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_job_outlives_a_killed_lineage_with_its_calls_answered() {
    let env = Env::local();
    env.init_repo();
    env.write("in.txt", "x");
    // The job ignores SIGTERM (what lineage's death sends it) and keeps opening a file,
    // logging each result to a file it opened before lineage died.
    let job = r#"import errno, os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
log = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
open('started', 'w').close()
for _ in range(60):
    try:
        open('in.txt').read(); os.write(log, b'ok\n')
    except OSError as e:
        os.write(log, (errno.errorcode[e.errno] + '\n').encode())
    time.sleep(0.02)
open('finished', 'w').close()
"#;
    env.write("job.py", job);
    let log = env.root().join("log.txt");
    // Where the in-job API's socket is made, to see what is left of it.
    let runtime = env.root().join("runtime");
    std::fs::create_dir(&runtime).expect("mkdir");
    let sockets = || -> Vec<String> {
        std::fs::read_dir(&runtime)
            .expect("runtime dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    };
    let mut cmd = env.lineage();
    cmd.env("XDG_RUNTIME_DIR", &runtime)
        .args(["run", "-q", "--", "python3", "job.py"])
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut lineage = cmd.spawn().expect("lineage");
    crate::util::wait_for(&env.path("started"));
    assert_eq!(
        sockets().len(),
        1,
        "the API's socket directory: {:?}",
        sockets()
    );
    std::thread::sleep(Duration::from_millis(200));
    lineage.kill().expect("SIGKILL");
    lineage.wait().expect("reaped");
    // Its heir answers the job's calls from now on: every open still works, none waits.
    let began = Instant::now();
    while !env.path("finished").exists() {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the job never finished: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&log).expect("log");
    assert_eq!(text.lines().count(), 60, "{text}");
    assert!(text.lines().all(|l| l == "ok"), "{text}");
    // The socket a killed lineage could not remove, the heir did.
    assert_eq!(sockets(), Vec::<String>::new(), "left behind");
}

#[test]
fn an_unobserved_jobs_api_socket_is_removed_when_lineage_is_killed() {
    // No observer, so no heir: the signal witness, which outlives a killed lineage, removes
    // the in-job API's socket and its directory.
    let env = Env::local();
    env.init_repo();
    let runtime = env.root().join("runtime");
    std::fs::create_dir(&runtime).expect("mkdir");
    let sockets = || -> Vec<String> {
        std::fs::read_dir(&runtime)
            .expect("runtime dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    };
    let mut cmd = env.lineage();
    cmd.env("XDG_RUNTIME_DIR", &runtime)
        .args(["run", "-q", "--no-observe", "--", "python3", "-c"])
        .arg("import time; open('started', 'w').close(); time.sleep(60)")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut lineage = cmd.spawn().expect("lineage");
    crate::util::wait_for(&env.path("started"));
    assert_eq!(
        sockets().len(),
        1,
        "the API's socket directory: {:?}",
        sockets()
    );
    lineage.kill().expect("SIGKILL");
    lineage.wait().expect("reaped");
    let began = Instant::now();
    while !sockets().is_empty() && began.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sockets(), Vec::<String>::new(), "left behind");
}

#[test]
#[ignore = "slow: 64 jobs at once on 2 cores"]
fn sixty_four_concurrent_observed_runs_are_all_recorded() {
    let env = Env::local();
    env.init_repo();
    for i in 0..64 {
        env.write(&format!("in/{i}.txt"), format!("{i}"));
    }
    let children: Vec<_> = (0..64)
        .map(|i| {
            let mut cmd = env.lineage();
            cmd.args(["run", "-q", "--", "cp"])
                .arg(format!("in/{i}.txt"))
                .arg(format!("out-{i}.txt"));
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            cmd.spawn().expect("spawn")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let conn = env.db();
    let observed: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM edges WHERE observed = 2 AND role = 'output' AND path LIKE 'out-%'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(observed, 64);
}

#[test]
fn observed_edges_survive_a_bundle_and_keep_the_signature_valid() {
    let env = Env::local();
    repo_with(
        &env,
        "open('out.txt', 'w').write(open('a.csv').read())\n",
        &[("a.csv", "a")],
    );
    run_ok(&env, &["python3", "job.py"]);
    let bundle = env.root().join("b.lineage");
    let out = env.cmd(
        ["bundle", "export", "out.txt", "-o"]
            .iter()
            .map(Path::new)
            .chain([bundle.as_path()]),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let other = Env::local();
    let out = other.cmd([Path::new("bundle"), Path::new("import"), bundle.as_path()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = other.show(None);
    assert_eq!(edges(&run, "inputs"), [("a.csv".into(), false, Some(true))]);
    let out = other.cmd(["verify", run["id"].as_str().expect("id")]);
    // Signed by a key the other store does not trust (3), never tampered (4).
    assert_eq!(code(&out), 3, "{}{}", stdout(&out), stderr(&out));
    let out = env.cmd(["verify", run["id"].as_str().expect("id")]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn hostile_observed_names_are_recorded_losslessly_and_shown_inert() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::local();
    env.init_repo();
    let input = std::ffi::OsStr::from_bytes(b"in\x1b[31mred\n\xff.csv");
    std::fs::write(env.path("").join(input), "a").expect("hostile input");
    env.write(
        "job.py",
        "import os\nfor n in os.listdir(b'.'):\n    if n.endswith(b'.csv'):\n        open(n, 'rb').read()\nopen(b'out\\xfe\\x1b]0;owned\\x07.bin', 'wb').write(b'x')\n",
    );
    let out = env.cmd(["run", "--", "python3", "job.py"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = env.show(None);
    assert_eq!(run["inputs"].as_array().expect("inputs").len(), 1, "{run}");
    assert_eq!(
        run["outputs"].as_array().expect("outputs").len(),
        1,
        "{run}"
    );
    for view in [
        env.cmd(["show", run["id"].as_str().expect("id")]),
        env.cmd([
            Path::new("show"),
            &env.path("")
                .join(std::ffi::OsStr::from_bytes(b"out\xfe\x1b]0;owned\x07.bin")),
        ]),
    ] {
        assert_eq!(code(&view), 0, "{}", stderr(&view));
        let text = stdout(&view);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(text.contains("red"), "{text}");
    }
    // Lossless: the recorded name is the file's, byte for byte.
    let abs = run["inputs"][0]["abs_path"].as_str().expect("abs");
    let back = lineage_path(abs);
    assert_eq!(back, env.path("").join(input), "{abs:?}");
}

/// A recorded path back to its bytes (the store's lossless text form).
fn lineage_path(text: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    const PATH_BYTE: u32 = 0x10_FF00; // as src/model/mod.rs
    let mut bytes = Vec::new();
    for c in text.chars() {
        let u = u32::from(c);
        if (PATH_BYTE..PATH_BYTE + 256).contains(&u) {
            bytes.push((u - PATH_BYTE) as u8);
        } else {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&bytes))
}

#[test]
fn code_read_through_python_bytecode_names_the_source_and_rerun_ignores_unread_code() {
    let env = Env::local();
    env.git(&["init", "-q"]);
    env.write("helpers.py", "def double(x):\n    return 2 * x\n");
    env.write(
        "job.py",
        "import helpers\nopen('out.txt', 'w').write(str(helpers.double(int(open('n.txt').read()))))\n",
    );
    env.write("NOTES.md", "notes\n");
    env.git(&["add", "helpers.py", "job.py", "NOTES.md"]);
    env.git(&["commit", "-q", "-m", "job"]);
    env.write("n.txt", "21");
    // With bytecode caching on: the first run writes __pycache__, the second reads only it.
    let cmd = ["env", "-u", "PYTHONDONTWRITEBYTECODE", "python3", "job.py"];
    run_ok(&env, &cmd);
    assert!(env.path("__pycache__").is_dir(), "python cached the module");
    let run = run_ok(&env, &cmd);
    let code_read = run["observed"]["code_read"].as_array().expect("code_read");
    assert!(code_read.contains(&"helpers.py".into()), "{code_read:?}");
    assert!(!code_read.contains(&"NOTES.md".into()), "{code_read:?}");

    // A tracked file the job never opened changes: not a difference in the code it used.
    env.write("NOTES.md", "more notes\n");
    env.git(&["commit", "-q", "-am", "notes"]);
    let id = run["id"].as_str().expect("id");
    let out = env.cmd(["rerun", id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("except files the job never opened (observed), which differ: NOTES.md"),
        "{}",
        stderr(&out)
    );
    // One it opened does.
    env.write("helpers.py", "def double(x):\n    return 3 * x\n");
    env.git(&["commit", "-q", "-am", "triple"]);
    let out = env.cmd(["rerun", id]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("helpers.py"), "{}", stderr(&out));
}

#[test]
fn links_into_proc_secret_names_and_reopened_descriptors() {
    let env = Env::local();
    repo_with(
        &env,
        r#"import os
open('status-link').read()                    # a link into /proc: ignored as /proc is
fd = os.open('data.csv', os.O_PATH)           # a path-only descriptor, reopened through /proc
open(f'/proc/self/fd/{fd}').read()
open('token=ghp_abcdefghijklmnopqrstuvwxyz0123456789.txt').read()
"#,
        &[
            ("data.csv", "1,2\n"),
            ("token=ghp_abcdefghijklmnopqrstuvwxyz0123456789.txt", "x"),
        ],
    );
    std::os::unix::fs::symlink("/proc/self/status", env.path("status-link")).expect("link");
    let out = env.cmd(["run", "--", "python3", "job.py"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("an observed path held a secret"),
        "{}",
        stderr(&out)
    );
    let run = env.show(None);
    assert_eq!(
        paths(&run, "inputs"),
        ["data.csv", "token=[REDACTED]"],
        "{run}"
    );
    let raw = std::fs::read(env.root().join("store/lineage.db")).expect("db");
    assert!(
        !crate::util::contains(&raw, b"ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        "the secret reached the store"
    );
}

#[test]
fn outputs_roll_up_into_a_directory_that_holds_only_what_the_job_wrote() {
    let env = Env::local();
    repo_with(
        &env,
        "for i in range(10):\n    open(f'out/part-{i}.bin', 'w').write(str(i))\n",
        &[],
    );
    std::fs::create_dir(env.path("out")).expect("out");
    let run = run_ok(&env, &["python3", "job.py"]);
    let outs = run["outputs"].as_array().expect("outputs");
    assert_eq!(outs.len(), 1, "{outs:?}");
    assert_eq!(
        (outs[0]["path"].as_str(), outs[0]["file_count"].as_u64()),
        (Some("out"), Some(10))
    );
}

#[test]
fn a_lineage_killed_at_any_moment_of_the_launch_leaves_no_process_behind() {
    let env = Env::local();
    env.init_repo();
    for i in 0..20u64 {
        let marker = format!("lineage-launch-marker-{}-{i}", std::process::id());
        let mut cmd = env.lineage();
        cmd.args([
            "run",
            "-q",
            "--",
            "sh",
            "-c",
            "cat train.py > /dev/null",
            &marker,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("lineage");
        std::thread::sleep(Duration::from_micros(500 * i));
        let _ = child.kill();
        let _ = child.wait();
        let began = Instant::now();
        loop {
            let left: Vec<String> = std::fs::read_dir("/proc")
                .expect("/proc")
                .flatten()
                .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .filter(|c| c.contains(&marker))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                began.elapsed() < Duration::from_secs(10),
                "killed after {} us, still there: {left:?}",
                500 * i
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_32_bit_system_call_is_let_through_and_said_so() {
    let env = Env::local();
    env.init_repo();
    compile(
        &env,
        "int80",
        r#"int main(void) {
    long pid;
    __asm__ volatile ("int $0x80" : "=a"(pid) : "a"(20));   /* getpid, i386 table */
    return pid > 0 ? 0 : 1;
}"#,
        false,
    );
    let bare = Command::new(env.path("int80")).status().expect("int80");
    if !bare.success() {
        eprintln!("this kernel runs no 32-bit system calls: nothing to observe");
        return;
    }
    let out = env.cmd(["run", "--strict", "--", "./int80"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a 32-bit system call"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_declared_config_tracked_by_git_is_opened_not_untouched() {
    let env = Env::local();
    env.git(&["init", "-q"]);
    env.write("cfg.yaml", "lr: 0.1\n");
    env.write("job.py", "open('cfg.yaml').read()\n");
    env.git(&["add", "cfg.yaml", "job.py"]);
    env.git(&["commit", "-q", "-m", "job"]);
    let out = env.cmd(["run", "-c", "cfg.yaml", "--", "python3", "job.py"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("never opened"), "{}", stderr(&out));
    let run = env.show(None);
    assert_eq!(run["configs"][0]["opened"], true, "{}", run["configs"]);
}

#[test]
fn reading_a_few_files_of_a_large_directory_records_those_files() {
    let env = Env::local();
    let files: Vec<(String, String)> = (0..30)
        .map(|i| (format!("pool/{i:02}.txt"), format!("{i}")))
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    repo_with(
        &env,
        "for i in range(10):\n    open(f'pool/{i:02}.txt').read()\n",
        &files,
    );
    let run = run_ok(&env, &["python3", "job.py"]);
    assert_eq!(paths(&run, "inputs").len(), 10, "{run}");
    assert!(
        paths(&run, "inputs").iter().all(|p| p.starts_with("pool/")),
        "{run}"
    );
}

#[test]
fn distinct_paths_are_kept_up_to_a_bound_in_bytes_with_a_warning() {
    // 40,000 failed opens of distinct paths of about 4 KB: 160 MB of paths, past the bytes
    // kept (1,100,000 of them held 4 GB in lineage, beside the job).
    let env = Env::local();
    env.init_repo();
    let job = r#"import os
part = 'p' * 200
for i in range(40000):
    try:
        open('/nonexistent-lineage/' + '/'.join([part] * 19) + '/' + str(i))
    except OSError:
        pass
"#;
    env.write("job.py", job);
    let out = env.cmd(["run", "--", "python3", "job.py"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("more distinct paths than lineage keeps"),
        "{}",
        stderr(&out)
    );
}

/// A job that leaves a writer running when it exits: its outputs are hashed as they are
/// then, and a warning and a note say processes were still running; a job that waits for
/// its processes gets neither.
#[test]
fn a_job_that_leaves_a_writer_running_is_told_so() {
    let env = Env::new();
    env.write(
        "leaves.sh",
        "( sleep 2; echo late >> out.txt ) &\necho early > out.txt\n",
    );
    env.write(
        "waits.sh",
        "( sleep 0.2; echo late >> out.txt ) &\necho early > out.txt\nwait\n",
    );
    let said = "processes the job started were still running after it ended";
    let out = env.cmd(["run", "-o", "out.txt", "--", "sh", "leaves.sh"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains(said), "{}", stderr(&out));
    let run = env.show(None);
    assert!(run["notes"].to_string().contains(said), "{run}");
    let out = env.cmd(["run", "-o", "out.txt", "--", "sh", "waits.sh"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains(said), "{}", stderr(&out));
    assert!(!env.show(None)["notes"].to_string().contains(said));
}

/// A module imported from a PYTHONPATH directory outside the project (lineage's own
/// `lineage_ml` from a checkout, a shared library of helpers) is the environment, not data:
/// a change to it does not make the run's inputs stale.
#[test]
fn modules_imported_from_pythonpath_are_not_data() {
    let env = Env::new();
    let lib = env.home.join("pylib");
    std::fs::create_dir_all(&lib).expect("mkdir");
    std::fs::write(lib.join("helper.py"), "VALUE = 1\n").expect("helper");
    env.write("data.csv", "1,2\n");
    env.write(
        "job.py",
        "import helper\nopen('out.txt', 'w').write(open('data.csv').read() * helper.VALUE)\n",
    );
    let mut cmd = env.lineage();
    cmd.args(["run", "--", "python3", "job.py"])
        .env("PYTHONPATH", &lib)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = cmd.output().expect("lineage");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = env.show(None);
    let inputs = paths(&run, "inputs");
    assert!(inputs.iter().any(|p| p.ends_with("data.csv")), "{inputs:?}");
    assert!(!inputs.iter().any(|p| p.contains("helper")), "{inputs:?}");
}

#[test]
fn in_a_large_repository_the_tracked_files_a_job_read_are_code_and_the_rest_data() {
    // Past 1 MiB of index, which of the files a job named git tracks is asked of `git
    // ls-files` with just those paths (reading the whole index through libgit2 took 40-60 ms
    // after every job in a repository of 50,000 files). A name that reads as a glob
    // (`m[0].py`, untracked) is asked about literally, and stays data.
    let env = Env::local();
    env.git(&["init", "-q"]);
    let long = "d".repeat(180);
    for i in 0..5000 {
        env.write(&format!("src/{long}/m{i}.py"), "x = 1\n");
    }
    env.write("job.py", "print(1)\n");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "many"]);
    let index = std::fs::metadata(env.path(".git/index"))
        .expect("index")
        .len();
    assert!(index > 1 << 20, "an index of {index} bytes");
    env.write("data.csv", "a,b\n");
    env.write(&format!("src/{long}/m[0].py"), "not code\n");
    let read = format!("cat job.py src/{long}/m7.py 'src/{long}/m[0].py' data.csv > /dev/null");
    let run = run_ok(&env, &["sh", "-c", &read]);
    let o = &run["observed"];
    assert_eq!(
        o["code_read"],
        serde_json::json!(["job.py", format!("src/{long}/m7.py")]),
        "{o}"
    );
    let mut inputs = paths(&run, "inputs");
    inputs.sort();
    assert_eq!(
        inputs,
        ["data.csv", &format!("src/{long}/m[0].py")],
        "{run:#}"
    );
}

/// A declared output whose `..` follows a name that is not there (`nd/../x`: the kernel
/// refuses it) is missing; the file the job wrote by its own name is still its output,
/// observed (it was once taken for the declared path, `..` dropped by name, and lost).
#[test]
fn a_declared_path_through_a_missing_name_does_not_hide_what_the_job_wrote() {
    let env = Env::new();
    env.git(&["init", "-q"]);
    let out = env.cmd([
        "run",
        "-o",
        "nd/../x.txt",
        "--",
        "sh",
        "-c",
        "echo o > x.txt",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nd/../x.txt does not exist"),
        "{}",
        stderr(&out)
    );
    let run = env.show(None);
    let outs = edges(&run, "outputs");
    assert!(
        outs.contains(&("nd/../x.txt".to_string(), true, Some(false))),
        "{outs:?}"
    );
    assert!(outs.iter().any(|o| o.0 == "x.txt" && !o.1), "{outs:?}");
}
