//! The in-job API (docs/python.md): the `lineage_ml` module in python/, used by real Python
//! jobs under the real binary: metrics and their series, params, tags, notes and paths from
//! the job; threads and `multiprocessing` (fork and spawn); the module outside `lineage
//! run`; a flood that never blocks; and what a hostile job can send.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::*;

/// The module's source directory, for PYTHONPATH (the wheel installs the same files).
fn python_path() -> String {
    format!("{}/python", env!("CARGO_MANIFEST_DIR"))
}

/// `lineage run ARGS...` with the module importable; must succeed; the run's id.
fn record(env: &Env, args: &[&str]) -> (String, String) {
    let mut cmd = env.lineage();
    cmd.arg("run")
        .args(args)
        .env("PYTHONPATH", python_path())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = output_within(cmd, Duration::from_secs(120));
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    let id = env.show(None)["id"].as_str().expect("id").to_string();
    (id, stderr(&out))
}

/// The points of `key`'s series in `show --json`.
fn series(run: &Value, key: &str) -> Vec<Value> {
    run["metric_series"][key]
        .as_array()
        .unwrap_or_else(|| panic!("no series {key}: {}", run["metric_series"]))
        .clone()
}

#[test]
fn what_the_job_logs_is_recorded_shown_and_compared() {
    let env = Env::new();
    env.write("data.csv", "x,y\n1,2\n");
    env.write(
        "train.py",
        r#"
import lineage_ml as lineage
assert lineage.active() and lineage.run_id()
lineage.param("model", "mlp")
lineage.param("layers", [64, 32])
lineage.param("lr", 0.5)               # the command line's -p lr wins
lineage.input("data.csv")
for step in range(10):
    lineage.metric("loss", 1.0 / (step + 1), step=step)
lineage.metric("acc", 0.875)
with open("model.bin", "w") as f:
    f.write("weights")
lineage.output("model.bin")
lineage.tag("best-mlp")
lineage.note("trained on the small set")
print("run", lineage.run_id())
"#,
    );
    let (id, _) = record(&env, &["-p", "lr=0.01", "--", "python3", "train.py"]);
    let run = env.show(Some(&id));
    assert_eq!(run["metrics"], json!({"acc": 0.875, "loss": 0.1}));
    assert_eq!(run["metric_sources"]["loss"], "api");
    // A series keeps every point, in order; one value without a step is just a metric.
    let loss = series(&run, "loss");
    assert_eq!(loss.len(), 10);
    assert_eq!(loss[0], json!({"step": 0, "value": 1.0}));
    assert_eq!(loss[9], json!({"step": 9, "value": 0.1}));
    assert!(run["metric_series"].get("acc").is_none(), "{run}");
    assert_eq!(run["params"]["model"], "mlp");
    assert_eq!(run["params"]["layers"], json!([64, 32]));
    assert_eq!(run["param_sources"]["model"], "api");
    assert_eq!(run["params"]["lr"], json!(0.01), "the command line's value");
    assert!(
        run["notes"]
            .to_string()
            .contains("param lr from the job not recorded")
    );
    // Paths declared from inside: hashed like -i and -o, marked as the job's.
    let input = artifact(&run, "inputs", "data.csv");
    assert_eq!(input["hash"], blake3_hex(b"x,y\n1,2\n"));
    assert_eq!(input["declared_by_job"], true);
    let output = artifact(&run, "outputs", "model.bin");
    assert_eq!(output["hash"], blake3_hex(b"weights"));
    assert_eq!(output["declared_by_job"], true);
    assert_eq!(output["written"], "all");
    // Observation does not list them again as undeclared.
    let listed = run["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .chain(run["outputs"].as_array().expect("outputs"))
        .filter(|e| e["path"] == "data.csv" || e["path"] == "model.bin")
        .count();
    assert_eq!(listed, 2, "{run}");
    // Tags and notes are annotations of the run.
    assert_eq!(run["tags"], json!(["best-mlp"]));
    assert_eq!(run["user_notes"][0]["text"], "trained on the small set");
    // The model is found by its bytes, and its run by the tag.
    let shown = stdout(&env.cmd(["show", "model.bin"]));
    assert!(shown.contains(&id[id.len() - 8..]), "{shown}");
    let table = stdout(&env.cmd(["show", "best-mlp"]));
    assert!(
        table.lines().any(|l| l.contains("loss")
            && l.contains("0.1")
            && l.contains("10 points, last at step 9")),
        "{table}"
    );
    assert!(table.contains("output (declared by the job)"), "{table}");
    // compare puts the logged metrics beside another run's.
    env.write(
        "train.py",
        "import lineage_ml as l\nl.metric('acc', 0.5)\nl.metric('loss', 0.3, step=1)\n",
    );
    let (other, _) = record(&env, &["--", "python3", "train.py"]);
    let compared = stdout(&env.cmd(["compare", &id, &other]));
    assert!(compared.contains("metrics.acc"), "{compared}");
    assert!(
        compared.contains("0.875") && compared.contains("0.5"),
        "{compared}"
    );
    // The series is in the signed record: verify checks its blob too.
    let verified = env.cmd(["verify", &id]);
    assert_eq!(code(&verified), 0, "{}", stderr(&verified));
}

#[test]
fn a_series_altered_in_the_store_fails_verification() {
    let env = Env::local();
    env.write(
        "s.py",
        "import lineage_ml as l\nfor i in range(5): l.metric('loss', 1 / (i + 1), step=i)\n",
    );
    let (id, _) = record(&env, &["--", "python3", "s.py"]);
    let ok = env.cmd(["verify", &id]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    let db = env.db();
    let changed = db
        .execute(
            "UPDATE blobs SET data = CAST('[[0,0.0],[4,0.0]]' AS BLOB) WHERE CAST(data AS TEXT) LIKE '[[0,1.0]%'",
            [],
        )
        .expect("update");
    assert_eq!(changed, 1);
    let bad = env.cmd(["verify", &id]);
    assert_ne!(code(&bad), 0, "{}", stdout(&bad));
}

/// Each of `n` workers (threads, forked or spawned processes) logs `points` values of its own
/// metric; every value sent is either kept in its series or counted as dropped, and each
/// series ends with the worker's last value.
#[test]
fn threads_and_forked_and_spawned_processes_all_reach_the_run() {
    let env = Env::new();
    env.write(
        "workers.py",
        r#"
import multiprocessing as mp, threading
import lineage_ml as lineage

POINTS = 3000

def work(name):
    for step in range(POINTS):
        lineage.metric(name, step, step=step)

if __name__ == "__main__":
    lineage.metric("main", 1)
    threads = [threading.Thread(target=work, args=(f"thread{i}",)) for i in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    for method in ("fork", "spawn"):
        ctx = mp.get_context(method)
        procs = [ctx.Process(target=work, args=(f"{method}{i}",)) for i in range(2)]
        for p in procs: p.start()
        for p in procs: p.join()
        assert all(p.exitcode == 0 for p in procs)
    # close and join: the workers exit (leaving `with` alone terminates them, SIGTERM, and
    # what they still held is lost: docs/python.md)
    with ctx.Pool(2) as pool:
        pool.map(work, ["pool0", "pool1"])
        pool.close()
        pool.join()
"#,
    );
    let (id, _) = record(&env, &["--", "python3", "workers.py"]);
    let run = env.show(Some(&id));
    let names = [
        "thread0", "thread1", "thread2", "thread3", "fork0", "fork1", "spawn0", "spawn1", "pool0",
        "pool1",
    ];
    let mut kept = 0u64;
    for name in names {
        assert_eq!(
            run["metrics"][name],
            json!(2999.0),
            "{name}: {}",
            run["metrics"]
        );
        let points = series(&run, name);
        assert_eq!(
            points.last(),
            Some(&json!({"step": 2999, "value": 2999.0})),
            "{name}"
        );
        kept += points.len() as u64;
    }
    let dropped = run["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|n| {
            n.as_str()?
                .strip_prefix("the job dropped ")?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum::<u64>();
    assert_eq!(
        kept + dropped,
        3000 * names.len() as u64,
        "{}",
        run["notes"]
    );
    assert_eq!(run["metrics"]["main"], json!(1.0));
}

#[test]
fn a_flood_of_100000_metrics_keeps_the_last_value_and_counts_what_it_dropped() {
    let env = Env::new();
    env.write(
        "flood.py",
        "import lineage_ml as lineage\nfor i in range(100000):\n    lineage.metric('flood', i, step=i)\n",
    );
    let (id, _) = record(&env, &["--", "python3", "flood.py"]);
    let run = env.show(Some(&id));
    assert_eq!(run["metrics"]["flood"], json!(99999.0));
    let points = series(&run, "flood");
    assert_eq!(
        points.last(),
        Some(&json!({"step": 99999, "value": 99999.0}))
    );
    let notes = run["notes"].to_string();
    let dropped = 100_000 - points.len();
    if dropped > 0 {
        assert!(
            notes.contains(&format!("the job dropped {dropped} message")),
            "{notes}"
        );
    }
}

/// Nobody reading: a listener that accepts and never reads. The calls still return (the job
/// ends), drop what does not fit, and at exit give up after a bounded wait.
#[test]
fn a_lineage_that_never_reads_never_blocks_the_job() {
    let env = Env::new();
    env.write(
        "deaf.py",
        r#"
import os, socket, subprocess, sys, tempfile
d = tempfile.mkdtemp()
path = os.path.join(d, "api")
server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
server.bind(path)
server.listen(8)
child = subprocess.run(
    [sys.executable, "-c",
     "import lineage_ml as l\n"
     "for i in range(100000): l.metric('m', i, step=i)\n"
     "l._channel.finish()\n"
     "print(len(l._channel.items), l._channel.dropped, l._channel.sock.getblocking(),\n"
     "      l._channel.items[-1][1].decode())\n"],
    env=dict(os.environ, LINEAGE_API=path, LINEAGE_RUN_ID="x"), capture_output=True, text=True)
print(child.stdout.strip())
sys.exit(child.returncode)
"#,
    );
    let out = Command::new("python3")
        .arg("deaf.py")
        .current_dir(env.path(""))
        .env("PYTHONPATH", python_path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("LINEAGE_API")
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    let fields: Vec<&str> = said.split_whitespace().collect();
    // At most 10,000 held, the latest point last; the rest dropped and counted; the socket
    // never blocks.
    assert_eq!(fields.len(), 4, "{said}");
    assert!(
        fields[0].parse::<u64>().expect("a count") <= 10_001,
        "{said}"
    );
    assert!(
        fields[1].parse::<u64>().expect("a count") > 80_000,
        "{said}"
    );
    assert_eq!(fields[2], "False", "{said}");
    assert_eq!(
        fields[3], r#"{"op":"metric","name":"m","value":99999.0,"step":99999}"#,
        "{said}"
    );
}

#[test]
fn outside_lineage_run_every_call_does_nothing_and_warns_once() {
    let env = Env::new();
    env.write(
        "plain.py",
        r#"
import lineage_ml as lineage
assert lineage.run_id() is None
assert not lineage.active()
for i in range(3):
    lineage.metric("loss", 0.5, step=i)
    lineage.param("lr", 0.1)
    lineage.tag("t")
    lineage.note("n")
    lineage.input("a")
    lineage.output("b")
print("done")
"#,
    );
    let out = Command::new("python3")
        .arg("plain.py")
        .current_dir(env.path(""))
        .env("PYTHONPATH", python_path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("LINEAGE_API")
        .env_remove("LINEAGE_RUN_ID")
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "done");
    let err = stderr(&out);
    assert_eq!(err.matches("lineage_ml:").count(), 1, "{err}");
    assert!(err.contains("not running under `lineage run`"), "{err}");
}

/// A hostile job: secrets in what it sends, garbage on the socket, a tag another run holds,
/// a huge message. Secrets are redacted, garbage refused and counted, the other run keeps
/// its tag, and the job's own exit code wins.
#[test]
fn what_a_hostile_job_sends_stays_inside_its_own_redacted_record() {
    let env = Env::new();
    env.write("first.py", "import lineage_ml as l\nl.tag('prod')\n");
    let (first, _) = record(&env, &["--", "python3", "first.py"]);
    let token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    env.write(
        "hostile.py",
        format!(
            r#"
import os, socket, sys
import lineage_ml as lineage
lineage.tag("prod")                                    # another run's tag
lineage.tag("{token}")                                 # a secret as a tag
lineage.input("/proc")                                 # would never end
lineage.output("/")                                    # the whole disk
for i in range(100):                                   # 5 MB of params: over the byte cap
    lineage.param(f"big{{i}}", "y" * 50000)
lineage.param("api_key", "s3cr3t-value-123456")        # a secret by its name
lineage.param("url", "https://user:hunter2@example.com/x")
lineage.note("token {token}")
lineage.metric("loss {token}", 1.0)
lineage.metric("nan", float("nan"))                    # refused by the module, warned
lineage.param("huge", "x" * 100000)                    # too long: warned, not sent
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(os.environ["LINEAGE_API"])
s.send(b"not json")
s.send(b'{{"op": "metric", "name": "x", "value": 1e999}}')
s.send(b'{{"op": "output", "path": "relative/path"}}')
s.send(b'{{"op": "metric", "name": "", "value": 1}}')
s.send(b'{{"op": "note", "text": "nul \\u0000 here"}}')
s.send(b'{{"op": "metric", "name": "forged", "value": 1, "run_id": "{first}"}}')
sys.exit(3)
"#
        ),
    );
    let mut cmd = env.lineage();
    cmd.args(["run", "--", "python3", "hostile.py"])
        .env("PYTHONPATH", python_path())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = output_within(cmd, Duration::from_secs(120));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let run = env.show(None);
    let id = run["id"].as_str().expect("id");
    assert_ne!(id, first);
    let all = run.to_string();
    assert!(!all.contains("ghp_abcdef"), "{all}");
    assert!(!all.contains("s3cr3t"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
    // The other run keeps its tag; this one has none.
    assert_eq!(env.show(Some("prod"))["id"], first);
    assert_eq!(run["tags"], json!([]));
    let notes = run["notes"].to_string();
    assert!(notes.contains("refused"), "{notes}");
    assert!(notes.contains("a path is not absolute"), "{notes}");
    assert!(notes.contains("NUL"), "{notes}");
    assert!(
        notes.contains("a tag from the job held a secret"),
        "{notes}"
    );
    assert!(
        notes.contains("path /proc declared by the job not recorded"),
        "{notes}"
    );
    assert!(
        notes.contains("path / declared by the job not recorded"),
        "{notes}"
    );
    assert!(notes.contains("over 4 MiB of params"), "{notes}");
    let big = run["params"]
        .as_object()
        .expect("params")
        .keys()
        .filter(|k| k.starts_with("big"))
        .count();
    assert!((50..100).contains(&big), "{big} big params kept");
    // A message carries no run: "forged" lands in this run's record, nowhere else.
    assert_eq!(run["metrics"]["forged"], json!(1.0));
    assert!(env.show(Some(&first))["metrics"].get("forged").is_none());
    let err = stderr(&out);
    assert!(err.contains("not finite"), "{err}");
    assert!(err.contains("over 60000 bytes"), "{err}");
    // Nothing of it is stored in plaintext anywhere in the store.
    for (path, bytes) in env.store_files() {
        assert!(!contains(&bytes, token.as_bytes()), "{}", path.display());
        assert!(!contains(&bytes, b"hunter2"), "{}", path.display());
    }
}

#[test]
fn a_bundle_carries_the_series_params_and_paths_the_job_sent() {
    let a = Env::local();
    a.write(
        "t.py",
        "import lineage_ml as l\n\
         for i in range(3): l.metric('loss', 3 - i, step=i)\n\
         l.param('model', 'mlp')\n\
         open('m.bin', 'w').write('m')\n\
         l.output('m.bin')\n",
    );
    let (id, _) = record(&a, &["--", "python3", "t.py"]);
    let bundle = a.root().join("runs.bundle");
    let out = a.cmd(["bundle", "export", "-o", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let b = Env::local();
    let out = b.cmd(["bundle", "import", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = b.show(Some(&id));
    assert_eq!(
        series(&run, "loss"),
        [
            json!({"step": 0, "value": 3.0}),
            json!({"step": 1, "value": 2.0}),
            json!({"step": 2, "value": 1.0})
        ]
    );
    assert_eq!(run["params"]["model"], "mlp");
    assert_eq!(artifact(&run, "outputs", "m.bin")["declared_by_job"], true);
    // Signed by a key this store does not know, and not tampered with.
    let verified = stderr(&b.cmd(["verify", &id]));
    assert!(
        verified.contains("1 signed by an unknown key") && verified.contains("0 tampered"),
        "{verified}"
    );
}

/// examples/python/train_loop.py, as docs/python.md runs it.
#[test]
fn the_training_loop_example_records_its_loss_and_checkpoints() {
    let env = Env::new();
    let script = format!(
        "{}/examples/python/train_loop.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let (id, _) = record(
        &env,
        &[
            "--", "python3", &script, "--epochs", "2", "--out", "out/loop",
        ],
    );
    let run = env.show(Some(&id));
    // 512 rows in batches of 16: 32 steps an epoch.
    let loss = series(&run, "train.loss");
    assert_eq!(loss.len(), 64);
    assert_eq!(loss[63]["step"], 63);
    let val = series(&run, "val.mse");
    assert_eq!(val.len(), 2);
    assert!(
        val[1]["value"].as_f64() < val[0]["value"].as_f64(),
        "it learns: {val:?}"
    );
    assert_eq!(run["metrics"]["val.mse"], val[1]["value"]);
    assert_eq!(run["params"]["data.rows"], 512);
    for path in [
        "out/loop/checkpoint-0.json",
        "out/loop/checkpoint-1.json",
        "out/loop/model.json",
    ] {
        let o = artifact(&run, "outputs", path);
        assert_eq!(o["declared_by_job"], true, "{path}");
        let bytes = std::fs::read(env.path(path)).expect("written");
        assert_eq!(o["hash"], blake3_hex(&bytes), "{path}");
    }
    let shown = stdout(&env.cmd(["show", "out/loop/model.json"]));
    assert!(shown.contains(&id[id.len() - 8..]), "{shown}");
}

/// A directory the job declares holds its product only where it wrote: as with `-o`, files
/// that were there before it are kept, nobody's product.
#[test]
fn a_directory_the_job_declares_is_its_product_only_where_it_wrote() {
    let env = Env::new();
    env.write("out/keep/a.txt", "old\n");
    std::thread::sleep(Duration::from_millis(200));
    env.write("none.py", "import lineage_ml as l\nl.output('out/keep')\n");
    let (id, _) = record(&env, &["--", "python3", "none.py"]);
    let o = artifact(&env.show(Some(&id)), "outputs", "out/keep").clone();
    assert_eq!(o["written"], "none", "{o}");
    env.write(
        "some.py",
        "import lineage_ml as l\nopen('out/keep/b.txt', 'w').write('new')\nl.output('out/keep')\n",
    );
    let (id, _) = record(&env, &["--", "python3", "some.py"]);
    let o = artifact(&env.show(Some(&id)), "outputs", "out/keep").clone();
    assert_eq!(o["written"], "some", "{o}");
    assert_eq!(o["kept"], json!(["a.txt"]), "{o}");
}

/// The socket's directory is the user's alone whatever the umask: a job started under
/// `umask 000` finds it 0700.
#[test]
fn the_socket_is_the_users_alone_whatever_the_umask() {
    let env = Env::new();
    env.write(
        "mode.py",
        "import os, stat\n\
         d = os.path.dirname(os.environ['LINEAGE_API'])\n\
         open('mode', 'w').write(oct(stat.S_IMODE(os.stat(d).st_mode)))\n",
    );
    let base = env.lineage();
    let mut sh = Command::new("sh");
    sh.args([
        "-c",
        "umask 000; exec \"$@\"",
        "sh",
        env!("CARGO_BIN_EXE_lineage"),
    ])
    .args(["run", "-q", "--", "python3", "mode.py"]);
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.current_dir(env.path(""));
    let out = output_within(sh, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mode = std::fs::read_to_string(env.path("mode")).expect("the job wrote it");
    assert_eq!(mode, "0o700");
}

/// A job that declares a thousand outputs it never writes: twenty warnings and one that
/// counts the rest, a hundred notes in the record and one that counts the rest; a warning
/// about a secret after them is still said and kept.
#[test]
fn a_thousand_warnings_about_what_the_job_sent_are_said_as_twenty_and_a_count() {
    let env = Env::new();
    env.write(
        "many.py",
        "import lineage_ml as lineage\nfor i in range(1000):\n    lineage.output(f\"never/{i}.bin\")\n\
         lineage.tag(\"ghp_abcdefghijklmnopqrstuvwxyz0123456789\")\n",
    );
    let mut cmd = env.lineage();
    cmd.args(["run", "--", "python3", "many.py"])
        .env("PYTHONPATH", python_path())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = output_within(cmd, Duration::from_secs(120));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let said = err
        .lines()
        .filter(|l| l.contains("declared by the job does not exist after the run"))
        .count();
    assert_eq!(said, 20, "{err}");
    // A warning about a secret is never pushed out of sight by the others.
    assert!(err.contains("a tag from the job held a secret"), "{err}");
    assert!(
        err.contains("980 more warnings about what the job sent to lineage (1000 in all"),
        "{err}"
    );
    let run = env.show(None);
    let notes: Vec<&str> = run["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let kept = notes
        .iter()
        .filter(|n| n.contains("declared by the job does not exist"))
        .count();
    assert_eq!(kept, 100, "{notes:?}");
    // Never written: no bytes of the job's, as for a missing `-o`.
    let outputs = run["outputs"].as_array().expect("outputs");
    assert_eq!(outputs.len(), 1000);
    assert!(
        outputs
            .iter()
            .all(|o| o["missing"] == json!(true) && o["written"] == json!("none")),
        "{}",
        outputs[0]
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("a tag from the job held a secret")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("900 more warnings about what the job sent to lineage, not kept")),
        "{notes:?}"
    );
}
