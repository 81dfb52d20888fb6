//! `lineage bundle export` / `import`: runs carried between real SQLite stores as a file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::fixture::{Pipeline, SECRET};
use crate::util::*;

/// `lineage --store STORE ARGS...` in the env's work directory.
fn at(env: &Env, store: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = env.lineage();
    cmd.arg("--store").arg(store).args(args);
    output_within(cmd, Duration::from_secs(60))
}

fn ok(out: std::process::Output) -> String {
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
}

/// The shared pipeline (`fixture`), train with `--sha256`, and a rerun of train: six runs.
fn pipeline() -> Pipeline {
    let p = Pipeline::record_with(Env::new(), &["--sha256"]);
    let out = p.env.cmd(["rerun", "-q", &p.train]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    p
}

#[test]
fn a_bundle_carries_a_pipeline_to_another_store_whole_and_twice_changes_nothing() {
    let p = pipeline();
    let (env, train) = (&p.env, &p.train);
    let bundle = env.path("runs.lineage");
    let out = env.cmd(["bundle", "export", "-o", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("bundled 6 runs"), "{}", stderr(&out));
    let bytes = std::fs::read(&bundle).expect("bundle written");
    assert!(
        !contains(&bytes, SECRET.as_bytes()),
        "a secret reached the bundle"
    );
    let key = std::fs::read(env.store.join("secret.key")).expect("key");
    assert!(
        !contains(&bytes, &key),
        "the store's key reached the bundle"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&bundle)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    let other: PathBuf = env.work.parent().expect("root").join("other-store");
    let out = at(
        env,
        &other,
        &["bundle", "import", &bundle.display().to_string()],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("imported 6 runs"), "{}", stderr(&out));
    for args in [
        vec!["show", "model.bin", "--format", "json"],
        vec!["show", "prepared/train.csv", "--format", "json"],
        vec!["show", "--json", train.as_str()],
        vec!["list", "--json"],
    ] {
        // The team store's word on who submitted a run is its own (a team-store backend):
        // a bundle does not carry it.
        let strip = |json: String| {
            json.lines()
                .filter(|l| !l.trim_start().starts_with("\"submitted_by\""))
                .map(|l| l.trim_end_matches(',').to_string())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mine = strip(ok(env.cmd(&args)));
        let theirs = strip(ok(at(env, &other, &args)));
        assert_eq!(mine, theirs, "{args:?} differs after the trip");
    }
    // The sha256 recorded with --sha256 did not travel: a bundle's digests cannot be checked
    // without the files' bytes (docs/security.md). Computed here from bytes that match: with
    // --no-sha256 only from the exact bytes the store keeps (a config, an untracked file),
    // never for the directory, whose files the store does not keep.
    let db = rusqlite::Connection::open(other.join("lineage.db")).expect("open");
    let travelled: i64 = db
        .query_row("SELECT COUNT(*) FROM extra_digests", [], |r| r.get(0))
        .expect("count");
    assert_eq!(travelled, 0, "digests travelled in the bundle");
    let export = ok(at(
        env,
        &other,
        &["export", "--no-sha256", "--format", "in-toto", train],
    ));
    assert!(!export.contains("\"dirHash\""), "{export}");
    let export = ok(at(env, &other, &["export", "--format", "in-toto", train]));
    assert!(
        export.contains("\"sha256\"") && export.contains("\"dirHash\""),
        "{export}"
    );

    let before = counts(&other);
    let out = at(
        env,
        &other,
        &["bundle", "import", &bundle.display().to_string()],
    );
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains("nothing new"), "{}", stderr(&out));
    assert_eq!(counts(&other), before, "a second import changed the store");
    // And back again: the source store is not changed by its own runs either.
    let mine = counts(&env.store);
    ok(env.cmd(["bundle", "import", &bundle.display().to_string()]));
    assert_eq!(counts(&env.store), mine);
}

#[test]
fn importing_joins_two_stores_that_share_bytes_into_one_graph() {
    // Machine A prepares the data; machine B trains on a copy of it.
    let a = Env::new();
    a.init_repo();
    a.write("raw.csv", "x\n1\n");
    let prepare = a.record(&[
        "-i",
        "raw.csv",
        "-o",
        "prepared.csv",
        "--",
        "sh",
        "-c",
        "sort raw.csv > prepared.csv",
    ]);
    let b = Env::new();
    b.init_repo();
    std::fs::copy(a.path("prepared.csv"), b.path("data.csv")).expect("copy");
    b.record(&[
        "-i",
        "data.csv",
        "-o",
        "model.bin",
        "--",
        "sh",
        "-c",
        "cat data.csv > model.bin; echo m >> model.bin",
    ]);
    let before = ok(b.cmd(["show", "model.bin", "--format", "json"]));
    assert!(!before.contains(&prepare));

    let bundle = a.path("a.lineage");
    let mut cmd = a.lineage();
    cmd.args(["bundle", "export"])
        .stdout(std::fs::File::create(&bundle).expect("create"));
    assert!(
        cmd.status().expect("runs").success(),
        "export to a redirected stdout"
    );
    ok(b.cmd(["bundle", "import", &bundle.display().to_string()]));
    let graph: Value =
        serde_json::from_str(&ok(b.cmd(["show", "model.bin", "--format", "json"]))).expect("json");
    let runs: Vec<&str> = graph["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert!(
        runs.contains(&prepare.as_str()),
        "A's run joined B's graph: {runs:?}"
    );
    assert_eq!(runs.len(), 2);
}

#[test]
fn export_selects_by_target_and_date_and_leaves_running_runs_out() {
    let p = pipeline();
    let (env, prepare, train) = (&p.env, &p.prepare, &p.train);
    env.write("other.txt", "unrelated\n");
    let unrelated = env.record(&[
        "-i",
        "other.txt",
        "-o",
        "o2.txt",
        "--",
        "cp",
        "other.txt",
        "o2.txt",
    ]);
    // A job still running.
    let mut job = env.lineage();
    job.args([
        "run",
        "-q",
        "--",
        "sh",
        "-c",
        "while [ ! -e go ]; do sleep 0.05; done",
    ]);
    let mut job = job.spawn().expect("spawn");
    let db = env.store.join("lineage.db");
    let start = std::time::Instant::now();
    loop {
        let c = rusqlite::Connection::open(&db).expect("db");
        let n: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM runs WHERE status = 'running'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        if n == 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the job never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let file = env.path("sel.lineage");
    let out = env.cmd([
        "bundle",
        "export",
        "model.bin",
        "-o",
        &file.display().to_string(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 run still running left out"),
        "{}",
        stderr(&out)
    );
    let store = env.work.parent().expect("root").join("sel-store");
    ok(at(
        env,
        &store,
        &["bundle", "import", &file.display().to_string()],
    ));
    let list: Value =
        serde_json::from_str(&ok(at(env, &store, &["list", "--json"]))).expect("json");
    let ids: Vec<&str> = list
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert!(
        ids.contains(&prepare.as_str()) && ids.contains(&train.as_str()),
        "{ids:?}"
    );
    assert!(
        !ids.contains(&unrelated.as_str()),
        "not in model.bin's ancestry"
    );

    let out = env.cmd([
        "bundle",
        "export",
        "--since",
        "2999-01-01",
        "-o",
        &env.path("none.lineage").display().to_string(),
    ]);
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains("bundled 0 runs"), "{}", stderr(&out));
    let out = env.cmd([
        "bundle",
        "export",
        "--since",
        "last tuesday",
        "-o",
        "x.lineage",
    ]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("is not a date"), "{}", stderr(&out));
    std::fs::write(env.path("go"), "").expect("go");
    assert!(job.wait().expect("wait").success());
}

#[test]
fn a_bad_bundle_is_refused_and_the_store_is_untouched() {
    let p = pipeline();
    let env = &p.env;
    let before = counts(&env.store);
    let junk = env.write("junk.lineage", "not a bundle at all");
    let out = env.cmd(["bundle", "import", &junk.display().to_string()]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("is not a lineage bundle"),
        "{}",
        stderr(&out)
    );
    let out = env.cmd(["bundle", "import", "missing.lineage"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));

    // A bundle from a newer lineage.
    let other = Env::new();
    other.init_repo();
    other.record(&["--", "true"]);
    let newer = other.path("newer.lineage");
    ok(other.cmd(["bundle", "export", "-o", &newer.display().to_string()]));
    let c = rusqlite::Connection::open(&newer).expect("open");
    c.pragma_update(None, "user_version", 999).expect("bump");
    drop(c);
    let out = env.cmd(["bundle", "import", &newer.display().to_string()]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("newer lineage"), "{}", stderr(&out));

    // A bundle whose rows do not fit together (an edge of a run it lacks): nothing lands.
    let broken = other.path("broken.lineage");
    ok(other.cmd(["bundle", "export", "-o", &broken.display().to_string()]));
    let c = rusqlite::Connection::open(&broken).expect("open");
    c.pragma_update(None, "foreign_keys", "OFF")
        .expect("pragma");
    c.execute(
        "INSERT INTO edges (run_id, role, position, artifact, path, abs_path) \
         VALUES ('no-such-run', 'input', 0, NULL, 'x', '/x')",
        [],
    )
    .expect("insert");
    drop(c);
    let out = env.cmd(["bundle", "import", &broken.display().to_string()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let refused_whole = stderr(&out);

    // A bundle with a column this lineage does not know: refused, naming it.
    let extra = other.path("extra.lineage");
    ok(other.cmd(["bundle", "export", "-o", &extra.display().to_string()]));
    let c = rusqlite::Connection::open(&extra).expect("open");
    c.execute_batch("ALTER TABLE params ADD COLUMN unit TEXT")
        .expect("alter");
    drop(c);
    let out = env.cmd(["bundle", "import", &extra.display().to_string()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("table params has a column \"unit\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        refused_whole
            .lines()
            .filter(|l| l.contains("error"))
            .count(),
        1,
        "{refused_whole}"
    );
    assert_eq!(
        counts(&env.store),
        before,
        "a refused import left rows behind"
    );
}
