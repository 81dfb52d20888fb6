//! The trust boundary (docs/security.md): a bundle and a team store's rows are not trusted.
//! Each crafted bundle below is a real export edited with rusqlite the way an attacker
//! would, then imported into a real store, which must refuse it whole, naming the table and
//! the row, and stay exactly as it was.

use std::path::{Path, PathBuf};

use crate::util::*;

/// Rows per table of a store, to show nothing landed.
fn counts(store: &Path) -> Vec<i64> {
    let db = rusqlite::Connection::open(store.join("lineage.db")).expect("db");
    [
        "runs",
        "artifacts",
        "dir_entries",
        "edges",
        "params",
        "blobs",
        "extra_digests",
    ]
    .iter()
    .map(|t| {
        db.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
            .expect("count")
    })
    .collect()
}

/// The 64 hex digits of the BLAKE3 of `bytes`, as the store keeps hashes.
fn hex(bytes: &[u8]) -> String {
    blake3_hex(bytes).trim_start_matches("blake3:").to_string()
}

/// A store with a small pipeline of its own: a directory input, a config, an untracked
/// file and an output. Returns the env and its runs.
fn source() -> (Env, Vec<String>) {
    let env = Env::local();
    env.init_repo();
    env.write("data/a.csv", "x\n1\n");
    env.write("data/sub/b.csv", "y\n2\n");
    env.write("cfg.yaml", "lr: 0.1\n");
    env.write("notes.txt", "untracked\n");
    let prep = env.record(&[
        "-i",
        "data",
        "-c",
        "cfg.yaml",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cat data/a.csv > out.txt",
    ]);
    let train = env.record(&[
        "-i",
        "out.txt",
        "-o",
        "model.pt",
        "--",
        "sh",
        "-c",
        "cp out.txt model.pt",
    ]);
    (env, vec![prep, train])
}

/// Export `env`'s store to a bundle and apply `sql` to it (foreign keys off, as an attacker
/// would write it).
fn crafted(env: &Env, name: &str, sql: &str) -> PathBuf {
    let path = env.root().join(format!("{name}.lineage"));
    let out = env.cmd(["bundle", "export", "-o", &path.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let c = rusqlite::Connection::open(&path).expect("open bundle");
    c.pragma_update(None, "foreign_keys", "OFF").expect("fk");
    c.execute_batch(sql)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    drop(c);
    path
}

fn untracked_row(path: &str) -> String {
    format!(
        "UPDATE runs SET capture = json_set(capture, '$.git.untracked', \
         json('[{{\"path\": \"{path}\", \"hash\": \"blake3:{}\", \"size\": 4, \"stored\": true}}]'));",
        hex(b"evil")
    )
}

#[test]
fn crafted_bundles_are_refused_whole_naming_the_table_and_row() {
    let (src, _) = source();
    let victim = Env::local();
    victim.init_repo();
    victim.record(&["--", "true"]);
    let before = counts(&victim.store);
    let other = hex(b"other bytes");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "untracked-abs",
            untracked_row("/tmp/x"),
            "untracked file \"/tmp/x\" is not a relative path",
        ),
        (
            "untracked-up",
            untracked_row("../../../x"),
            "is not a relative path",
        ),
        (
            "blob-poison",
            "UPDATE blobs SET data = CAST('evil: true' AS BLOB), size = 10;".into(),
            "its bytes do not hash to the row's hash",
        ),
        (
            "manifest-forged",
            format!("UPDATE dir_entries SET file_hash = '{other}' WHERE path = 'a.csv';"),
            "does not hash to its directory's hash",
        ),
        (
            "manifest-escape",
            "UPDATE dir_entries SET path = '../../etc/x' WHERE path = 'a.csv';".into(),
            "is not a relative path",
        ),
        (
            "id-not-ascii",
            "UPDATE runs SET id = 'éééééééé-éééé' WHERE rowid = (SELECT min(rowid) FROM runs);"
                .into(),
            "is not a UUID",
        ),
        (
            "id-quote",
            "UPDATE runs SET id = 'x'' OR ''1''=''1' WHERE rowid = (SELECT min(rowid) FROM runs);"
                .into(),
            "is not a UUID",
        ),
        (
            "status-running",
            "UPDATE runs SET status = 'running', ended_at = NULL;".into(),
            "a run still going never travels",
        ),
        (
            "type-mismatch",
            "UPDATE runs SET exit_code = 'zero';".into(),
            "exit_code: holds text where an integer belongs",
        ),
        (
            "hash-upper",
            "UPDATE edges SET artifact = upper(artifact) WHERE artifact IS NOT NULL;".into(),
            "is not 64 lowercase hex digits",
        ),
        (
            "nul-in-path",
            "UPDATE edges SET path = 'a' || char(0) || 'b';".into(),
            "holds a NUL",
        ),
        (
            "bad-time",
            "UPDATE runs SET started_at = 'yesterday';".into(),
            "is not an RFC 3339 time",
        ),
        (
            "param-not-scalar",
            "INSERT INTO params SELECT id, 'evil', '{\"a\": 1}', 'cli' FROM runs;".into(),
            "is not a JSON scalar",
        ),
        (
            "view-bomb",
            "DROP TABLE params; CREATE VIEW params (run_id, key, value, source) AS \
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
             SELECT 'r', 'k', x, 's' FROM c;"
                .into(),
            "view \"params\" is not part of a lineage bundle's schema",
        ),
        (
            "trigger",
            "CREATE TRIGGER t AFTER INSERT ON bundle_meta BEGIN SELECT 1; END;".into(),
            "trigger \"t\" is not part of a lineage bundle's schema",
        ),
        (
            "capture-garbage",
            "UPDATE runs SET capture = '{\"git\": 7}';".into(),
            "capture: cannot be read as a capture",
        ),
    ];
    for (name, sql, expected) in &cases {
        let bundle = crafted(&src, name, sql);
        let out = victim.cmd(["bundle", "import", &bundle.display().to_string()]);
        let err = stderr(&out);
        assert_eq!(code(&out), 1, "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
        assert!(err.contains("nothing was imported"), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        assert_eq!(counts(&victim.store), before, "{name}: rows landed");
    }
    // The untouched bundle imports: the checks refuse what was crafted, not bundles.
    let good = crafted(&src, "good", "");
    let out = victim.cmd(["bundle", "import", &good.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(counts(&victim.store)[0] > before[0]);
}

/// A bundle cannot attach rows to a run the store has: edges and params travel only with
/// their run, and a run already here never changes.
#[test]
fn a_bundle_cannot_add_to_or_change_a_run_already_here() {
    let (env, runs) = source();
    let train = &runs[1];
    let before = env.show(Some(train));
    let evil = hex(b"evil model");
    // No runs at all, only an edge naming the victim's run as evil.pt's producer.
    let orphan = crafted(
        &env,
        "orphan",
        &format!(
            "DELETE FROM params; DELETE FROM edges; DELETE FROM runs;
             INSERT INTO artifacts VALUES ('{evil}', 'file', 4, 1);
             INSERT INTO edges (run_id, role, position, artifact, path, abs_path)
                 VALUES ('{train}', 'output', 7, '{evil}', 'evil.pt', '/evil.pt');
             INSERT INTO params VALUES ('{train}', 'evil', '1', 'cli');"
        ),
    );
    let out = env.cmd(["bundle", "import", &orphan.display().to_string()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("table edges, row 1")
            && stderr(&out).contains("a row for a run the bundle does not carry"),
        "{}",
        stderr(&out)
    );
    // The run itself, altered: imported, but the run here keeps what it recorded.
    let altered = crafted(
        &env,
        "altered",
        &format!(
            "INSERT INTO artifacts VALUES ('{evil}', 'file', 4, 1);
             UPDATE edges SET artifact = '{evil}', path = 'evil.pt' WHERE run_id = '{train}' AND role = 'output';
             UPDATE runs SET exit_code = 3, status = 'failed' WHERE id = '{train}';"
        ),
    );
    let out = env.cmd(["bundle", "import", &altered.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(env.show(Some(train)), before, "an existing run changed");
    std::fs::write(env.path("evil.pt"), "evil").expect("write");
    let out = env.cmd(["show", "evil.pt"]);
    assert_ne!(
        code(&out),
        0,
        "evil.pt was given a producer: {}",
        stdout(&out)
    );
}

/// A run id that is not ASCII (from an old import, or written by hand) is shown, never a
/// panic, in every command that lists or loads runs.
#[test]
fn a_run_id_that_is_not_ascii_never_panics_a_command() {
    let (env, runs) = source();
    let db = env.db();
    db.pragma_update(None, "foreign_keys", "OFF").expect("fk");
    for t in ["edges", "params"] {
        db.execute(
            &format!("UPDATE {t} SET run_id = 'éééééééé-é' WHERE run_id = ?1"),
            [&runs[0]],
        )
        .expect("update");
    }
    db.execute(
        "UPDATE runs SET id = 'éééééééé-é' WHERE id = ?1",
        [&runs[0]],
    )
    .expect("update");
    drop(db);
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["show", "out.txt"],
        vec!["show", "model.pt"],
        vec!["show", "éééééééé"],
        vec!["rerun", "--dry-run", "éééééééé"],
    ] {
        let out = env.cmd(&args);
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            code(&out) == 0 || code(&out) == 1 || code(&out) == 2,
            "{args:?}"
        );
    }
}
