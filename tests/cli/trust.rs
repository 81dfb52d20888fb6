//! The trust boundary (docs/security.md): a bundle and a team store's rows are not trusted.
//! Each crafted bundle below is a real export edited with rusqlite the way an attacker
//! would, then imported into a real store, which must refuse it whole, naming the table and
//! the row, and stay exactly as it was.

use std::path::PathBuf;

use crate::util::*;

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
            "is not a UTC time as lineage writes it",
        ),
        (
            // Another spelling of a real instant: times are compared as text, so one
            // spelling only (issue 16: a `+14:00` start sorted after every real run).
            "time-with-offset",
            "UPDATE runs SET ended_at = replace(ended_at, 'Z', '+00:00');".into(),
            "ended_at: ",
        ),
        (
            // A patch that is not the code the record claims: the rerun would say "code:
            // same as recorded" and apply it.
            "code-hash-claim",
            "UPDATE runs SET capture = json_set(capture, '$.git.code', 'blake3:' || lower(hex(randomblob(32)))) WHERE json_extract(capture, '$.git') IS NOT NULL;".into(),
            "git.code is not the hash of the record's commit, patch and untracked files",
        ),
        (
            "code-hash-column",
            "UPDATE runs SET code_hash = lower(hex(randomblob(32))) WHERE code_hash IS NOT NULL;".into(),
            "code_hash: not the code hash of the record's git state",
        ),
        (
            "ended-before-started",
            "UPDATE runs SET ended_at = '2000-01-01T00:00:00.000000Z';".into(),
            "is before the run started",
        ),
        (
            "ended-in-future",
            "UPDATE runs SET ended_at = '2999-01-01T00:00:00.000000Z';".into(),
            "is in the future",
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
            "id-max",
            "UPDATE runs SET id = 'ffffffff-ffff-7fff-bfff-ffffffffffff' WHERE rowid = (SELECT min(rowid) FROM runs);"
                .into(),
            "id: its time is not the run's start",
        ),
        (
            "id-not-v7",
            "UPDATE runs SET id = '6f1c2a3e-1111-4111-8111-111111111111' WHERE rowid = (SELECT min(rowid) FROM runs);"
                .into(),
            "is not a UUIDv7",
        ),
        (
            "started-in-future",
            "UPDATE runs SET started_at = '2999-01-01T00:00:00.000000Z';".into(),
            "id: its time is not the run's start",
        ),
        (
            "exit-code-range",
            "UPDATE runs SET exit_code = 9999999999;".into(),
            "does not fit 32 bits",
        ),
        (
            "resources-garbage",
            "UPDATE runs SET resources = '[1, 2]';".into(),
            "is not a run's resources",
        ),
        (
            "env-name-with-equals",
            "UPDATE runs SET capture = json_set(capture, '$.env.\"PATH=/evil:/usr/bin\"', 'x');"
                .into(),
            "is not one an environment can hold",
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
    // And the user is told that the bundle carried another record of it (a squatted id).
    let short = before["short_id"].as_str().expect("short");
    assert!(
        stderr(&out).contains(&format!("run {short} is already here with another record")),
        "{}",
        stderr(&out)
    );
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

/// `lineage verify PATH` with its exit code and its JSON, parsed: run id -> (record, key).
fn verify(env: &Env, target: &str) -> (i32, Vec<(String, String, Option<String>)>) {
    let out = env.cmd(["verify", "--json", target]);
    assert!(
        [0, 3, 4].contains(&code(&out)),
        "verify {target}: {}",
        stderr(&out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify --json");
    let runs = v["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            (
                r["run"].as_str().expect("run").to_string(),
                r["record"].as_str().expect("record").to_string(),
                r["key"].as_str().map(str::to_string),
            )
        })
        .collect();
    (code(&out), runs)
}

fn standing_of(runs: &[(String, String, Option<String>)], id: &str) -> String {
    runs.iter()
        .find(|(r, _, _)| r == id)
        .unwrap_or_else(|| panic!("{id} not in {runs:?}"))
        .1
        .clone()
}

/// Every run is signed when it finishes; verify walks the ancestry and tells a verified, an
/// unsigned, a tampered and a forged run apart, with exit codes 0, 3 and 4.
#[test]
fn verify_tells_signed_unsigned_tampered_and_forged_runs_apart() {
    let (env, runs) = source();
    let (prep, train) = (&runs[0], &runs[1]);
    let key_file = env.root().join("home/.config/lineage/signing.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file)
            .expect("a key made on first use")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let (rc, all) = verify(&env, "model.pt");
    assert_eq!(rc, 0, "{all:?}");
    assert_eq!(all.len(), 2, "the whole ancestry: {all:?}");
    assert!(all.iter().all(|(_, s, _)| s == "verified"), "{all:?}");
    let out = env.cmd(["verify", "--key"]);
    let mine = stdout(&out).trim().to_string();
    assert!(
        mine.starts_with("ed25519:") && mine.len() == 8 + 64,
        "{mine}"
    );
    assert_eq!(all[0].2.as_deref(), Some(mine.as_str()));

    // Tampered: one param changed in the store by hand.
    let db = env.db();
    db.execute("UPDATE params SET value = '0.5' WHERE run_id = ?1", [prep])
        .expect("update");
    let (rc, all) = verify(&env, "model.pt");
    assert_eq!((rc, standing_of(&all, prep).as_str()), (4, "tampered"));
    assert_eq!(standing_of(&all, train), "verified");
    db.execute("UPDATE params SET value = '0.1' WHERE run_id = ?1", [prep])
        .expect("restore");
    assert_eq!(verify(&env, "model.pt").0, 0, "restored bytes verify again");

    // Tampered: the kept config's bytes changed (the record names them by hash).
    db.execute(
        "UPDATE blobs SET data = CAST('lr: 9' AS BLOB) WHERE hash = (
             SELECT artifact FROM edges WHERE run_id = ?1 AND role = 'config')",
        [prep],
    )
    .expect("update");
    let out = env.cmd(["verify", prep]);
    assert_eq!(code(&out), 4, "{}", stdout(&out));
    assert!(stdout(&out).contains("TAMPERED"), "{}", stdout(&out));
    let original = std::fs::read(env.path("cfg.yaml")).expect("cfg");
    db.execute(
        "UPDATE blobs SET data = ?2 WHERE hash = (
             SELECT artifact FROM edges WHERE run_id = ?1 AND role = 'config')",
        rusqlite::params![prep, original],
    )
    .expect("restore");

    // Unsigned: the signature removed.
    db.execute("DELETE FROM signatures WHERE run_id = ?1", [train])
        .expect("delete");
    let (rc, all) = verify(&env, "model.pt");
    assert_eq!((rc, standing_of(&all, train).as_str()), (3, "unsigned"));
    drop(db);

    // Forged: another user's run, imported, is signed by a key nobody trusts; with its
    // signature claimed for this user's key, it is tampered.
    let other = Env::local();
    other.init_repo();
    std::fs::copy(env.path("model.pt"), other.path("model.pt")).expect("copy");
    let theirs = other.record(&[
        "-i",
        "model.pt",
        "-o",
        "eval.txt",
        "--",
        "sh",
        "-c",
        "wc -c < model.pt > eval.txt",
    ]);
    let bundle = other.root().join("theirs.lineage");
    let out = other.cmd(["bundle", "export", "-o", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env.cmd(["bundle", "import", &bundle.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::fs::copy(other.path("eval.txt"), env.path("eval.txt")).expect("copy");
    let (rc, all) = verify(&env, "eval.txt");
    assert_eq!(rc, 3, "{all:?}");
    assert_eq!(standing_of(&all, &theirs), "unknown_key");
    let their_key = other.cmd(["verify", "--key"]);
    let their_key = stdout(&their_key).trim().to_string();
    // Trusted once lineage.toml lists their key.
    env.write(
        "lineage.toml",
        format!("[trust]\nkeys = [\"{their_key}\"]\n"),
    );
    let (_, all) = verify(&env, "eval.txt");
    assert_eq!(standing_of(&all, &theirs), "verified");
    let db = env.db();
    db.execute(
        "UPDATE signatures SET public_key = ?2 WHERE run_id = ?1",
        [&theirs, &mine],
    )
    .expect("claim");
    let (rc, all) = verify(&env, "eval.txt");
    assert_eq!((rc, standing_of(&all, &theirs).as_str()), (4, "tampered"));
}

/// A key file others can read, or one that is damaged, never signs; the job runs anyway.
#[test]
fn a_key_that_cannot_be_used_is_a_warning_and_the_run_unsigned() {
    let env = Env::local();
    env.init_repo();
    let key = env.root().join("home/.config/lineage/signing.key");
    std::fs::create_dir_all(key.parent().expect("dir")).expect("mkdir");
    std::fs::write(&key, "not a key").expect("write");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let out = env.cmd(["run", "-o", "o.txt", "--", "sh", "-c", "echo x > o.txt"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("will not be signed")
            && stderr(&out).contains("not a lineage signing key"),
        "{}",
        stderr(&out)
    );
    let (rc, all) = verify(&env, "o.txt");
    assert_eq!((rc, all[0].1.as_str()), (3, "unsigned"));
}

/// `show` marks what does not verify: in a run's summary and on each run of the tree.
#[test]
fn show_marks_runs_whose_record_does_not_verify() {
    let (env, runs) = source();
    let (prep, train) = (&runs[0], &runs[1]);
    let tree = stdout(&env.cmd(["show", "model.pt"]));
    assert!(!tree.contains('['), "verified runs carry no mark: {tree}");
    let db = env.db();
    db.execute("DELETE FROM signatures WHERE run_id = ?1", [prep])
        .expect("delete");
    db.execute("UPDATE runs SET exit_code = 9 WHERE id = ?1", [train])
        .expect("update");
    let tree = stdout(&env.cmd(["show", "model.pt"]));
    // A run's line is the one above its command's.
    let line = |command: &str| {
        let lines: Vec<&str> = tree.lines().collect();
        let i = lines
            .iter()
            .position(|l| l.contains(command))
            .unwrap_or_else(|| panic!("{command} in {tree}"));
        lines[i - 1].to_string()
    };
    assert!(
        line("$ sh -c 'cat data/a.csv > out.txt'").contains("[unsigned]"),
        "{tree}"
    );
    assert!(
        line("$ sh -c 'cp out.txt model.pt'").contains("[TAMPERED"),
        "{tree}"
    );
    let summary = stdout(&env.cmd(["show", train]));
    let row = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert_eq!(
        row(&summary, "record"),
        "TAMPERED: its record is not what was signed",
        "{summary}"
    );
    let summary = stdout(&env.cmd(["show", prep]));
    assert_eq!(row(&summary, "record"), "unsigned", "{summary}");
}

/// A record changed after it was signed is not rerun (its command could be anyone's) unless
/// forced; an unsigned one is rerun with a warning saying so.
#[test]
fn a_tampered_record_is_not_rerun_and_an_unsigned_one_is_said_so() {
    let (env, runs) = source();
    let train = &runs[1];
    let db = env.db();
    db.execute(
        "UPDATE runs SET argv = CAST('sh' || char(0) || '-c' || char(0) || 'touch pwned' AS BLOB) WHERE id = ?1",
        [train],
    )
    .expect("forge");
    let out = env.cmd(["rerun", train]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("its record was changed after it was signed")
            && stderr(&out).contains("lineage verify"),
        "{}",
        stderr(&out)
    );
    assert!(!env.path("pwned").exists(), "the forged command ran");
    let out = env.cmd(["rerun", "--dry-run", train]);
    assert_eq!(code(&out), 125, "a dry run refuses too: {}", stderr(&out));
    let out = env.cmd(["rerun", "--force", train]);
    assert!(
        env.path("pwned").exists(),
        "--force runs it: {}",
        stderr(&out)
    );
    // Unsigned: rerun, with a warning.
    db.execute("DELETE FROM signatures", []).expect("delete");
    let out = env.cmd(["rerun", &runs[0]]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("record is unsigned: nothing proves who recorded this command"),
        "{}",
        stderr(&out)
    );
}

/// `--sign` attests: it refuses a run that does not verify, naming it.
#[test]
fn export_sign_refuses_runs_that_do_not_verify() {
    let (env, runs) = source();
    let out = env.cmd(["export", "model.pt", "--format", "in-toto", "--sign"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    env.db()
        .execute(
            "UPDATE params SET value = '0.9' WHERE run_id = ?1",
            [&runs[0]],
        )
        .expect("tamper");
    let out = env.cmd(["export", "model.pt", "--format", "in-toto", "--sign"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not signing: run") && stderr(&out).contains("TAMPERED"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty(), "nothing signed");
}

/// A key named by LINEAGE_SIGNING_KEY is never made: the run is unsigned, with a warning.
#[test]
fn a_signing_key_named_but_missing_is_not_made() {
    let env = Env::local();
    env.init_repo();
    let named = env.root().join("mnt/keys/k");
    let mut cmd = env.lineage();
    cmd.env("LINEAGE_SIGNING_KEY", &named).args([
        "run",
        "-o",
        "o.txt",
        "--",
        "sh",
        "-c",
        "echo x > o.txt",
    ]);
    let out = output_within(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("LINEAGE_SIGNING_KEY names")
            && stderr(&out).contains("does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(!named.exists() && !env.root().join("mnt").exists());
    let (_, all) = verify(&env, "o.txt");
    assert_eq!(all[0].1, "unsigned");
}

/// A kept blob of the wrong type is a tampered record, not an error.
#[test]
fn a_blob_of_the_wrong_type_is_tampered_not_an_error() {
    let (env, runs) = source();
    env.db()
        .execute(
            "UPDATE blobs SET data = CAST(data AS TEXT) WHERE hash = (
                 SELECT artifact FROM edges WHERE run_id = ?1 AND role = 'config')",
            [&runs[0]],
        )
        .expect("retype");
    let (rc, all) = verify(&env, "model.pt");
    assert_eq!((rc, standing_of(&all, &runs[0]).as_str()), (4, "tampered"));
}

/// Kept bytes the record names that are gone from the store: tampered too.
#[test]
fn a_kept_blob_that_is_gone_is_tampered() {
    let (env, runs) = source();
    assert_eq!(verify(&env, "model.pt").0, 0);
    env.db().execute("DELETE FROM blobs", []).expect("delete");
    let (rc, all) = verify(&env, "model.pt");
    assert_eq!((rc, standing_of(&all, &runs[0]).as_str()), (4, "tampered"));
}

/// The kernel's files are not content: a declared input under /proc is refused before the
/// job starts (reading /proc/self would never end); a FIFO in place of the store's
/// database hangs no command.
#[test]
fn kernel_files_as_inputs_and_special_files_in_the_store_are_refused() {
    let env = Env::local();
    env.init_repo();
    std::os::unix::fs::symlink("/proc/self", env.path("self")).expect("link");
    for input in ["/proc/self", "self", "/sys/kernel"] {
        let out = env.cmd(["run", "-i", input, "--", "true"]);
        assert_eq!(code(&out), 125, "{input}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("inside /proc, /sys or /dev"),
            "{}",
            stderr(&out)
        );
    }
    env.record(&["--", "true"]);
    let wal = env.store.join("lineage.db-wal");
    let _ = std::fs::remove_file(&wal);
    let st = std::process::Command::new("mkfifo")
        .arg(&wal)
        .status()
        .expect("mkfifo");
    assert!(st.success());
    for args in [vec!["list"], vec!["doctor"]] {
        let out = env.cmd(&args);
        assert_ne!(code(&out), 0, "{args:?}");
        assert!(
            stderr(&out).contains("not a regular file")
                || stdout(&out).contains("not a regular file"),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

/// `-o` onto a device or a FIFO (`-o /dev/null`, `-o /dev/stdout`) writes through it; it never
/// replaces the special file with a regular one (as root, `-o /dev/null` did).
#[test]
fn output_to_a_special_file_writes_through_it_and_never_replaces_it() {
    use std::os::unix::fs::FileTypeExt;
    let (env, _) = source();
    for (name, args) in [
        (
            "export",
            vec!["export", "model.pt", "--format", "prov-json", "-o"],
        ),
        ("bundle", vec!["bundle", "export", "-o"]),
    ] {
        let fifo = env.root().join(format!("{name}.fifo"));
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(st.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(&fifo).expect("read fifo"))
        };
        let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        full.push(fifo.display().to_string());
        let out = env.cmd(&full);
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
        let got = reader.join().expect("reader");
        assert!(!got.is_empty(), "{name}: nothing came through the FIFO");
        let kind = std::fs::symlink_metadata(&fifo)
            .expect("still there")
            .file_type();
        assert!(kind.is_fifo(), "{name}: the FIFO was replaced");
    }
}

/// What a bundle says about artifacts is taken only for the new runs that name them, never
/// replaces what this machine measures, and carries no sha256: a bundle of bare artifact rows
/// and planted digests changes nothing a later run of this user records or signs.
#[test]
fn planted_artifacts_and_digests_never_reach_what_this_user_records() {
    let (env, _) = source();
    // The attacker knows the bytes this user will record (a public dataset, say).
    let victim = Env::local();
    victim.init_repo();
    victim.write("ds/a.csv", "x\n1\n");
    victim.write("ds/sub/b.csv", "y\n2\n");
    victim.write("f.txt", "hello\n");
    let dir_hash = {
        let out = env.cmd(["run", "-q", "-i", "data", "--", "true"]);
        assert_eq!(code(&out), 0);
        env.show(None)["inputs"][0]["hash"]
            .as_str()
            .expect("hash")
            .trim_start_matches("blake3:")
            .to_string()
    };
    let f = hex(b"hello\n");
    let bare = crafted(
        &env,
        "bare",
        &format!(
            "DELETE FROM signatures; DELETE FROM params; DELETE FROM edges; DELETE FROM runs;
             DELETE FROM dir_entries; DELETE FROM artifacts; DELETE FROM blobs;
             INSERT INTO artifacts VALUES ('{f}', 'dir', 999, 42);
             INSERT INTO artifacts VALUES ('{dir_hash}', 'file', 7, 1);
             INSERT INTO extra_digests VALUES ('{f}', 'sha256', '{}');",
            "f".repeat(64)
        ),
    );
    let out = victim.cmd(["bundle", "import", &bare.display().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let count = |sql: &str| -> i64 { victim.db().query_row(sql, [], |r| r.get(0)).expect("count") };
    assert_eq!(
        count("SELECT COUNT(*) FROM artifacts"),
        0,
        "orphan artifacts kept"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM extra_digests"),
        0,
        "a digest was taken"
    );
    // The victim records the same bytes: their own measurements, their own manifest.
    victim.write("ds/a.csv", "x\n1\n");
    let run = victim.record(&[
        "--sha256",
        "-i",
        "ds",
        "-i",
        "f.txt",
        "-o",
        "o.txt",
        "--",
        "sh",
        "-c",
        "cat f.txt > o.txt",
    ]);
    let shown = victim.show(Some(&run));
    let inputs = shown["inputs"].as_array().expect("inputs");
    assert_eq!(inputs[0]["kind"], "dir", "{shown}");
    assert_eq!(inputs[1]["kind"], "file", "{shown}");
    assert_eq!(inputs[1]["size"], 6, "{shown}");
    assert_eq!(count("SELECT COUNT(*) FROM dir_entries"), 2);
    let out = victim.cmd(["show", "ds/sub/b.csv"]);
    assert_eq!(code(&out), 0, "the manifest was stored: {}", stderr(&out));
    let statements = stdout(&victim.cmd(["export", &run, "--format", "in-toto", "--no-sha256"]));
    assert!(
        !statements.contains(&"f".repeat(64)),
        "the planted sha256 was used"
    );
}

/// `--upstream` runs another run's command for you only when that run's record is proven.
#[test]
fn upstream_never_runs_an_unproven_run_for_you() {
    let env = Env::local();
    env.init_repo();
    let step1 = env.record(&["-o", "mid.txt", "--", "sh", "-c", "echo one > mid.txt"]);
    let step2 = env.record(&[
        "-i", "mid.txt", "-o", "end.txt", "--", "cp", "mid.txt", "end.txt",
    ]);
    std::fs::remove_file(env.path("mid.txt")).expect("rm");
    env.db()
        .execute("DELETE FROM signatures WHERE run_id = ?1", [&step1])
        .expect("unsign");
    for dry in [true, false] {
        let mut args = vec!["rerun", step2.as_str(), "--upstream"];
        if dry {
            args.push("--dry-run");
        }
        let out = env.cmd(&args);
        assert_ne!(code(&out), 0, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("is unsigned: not running its command for you"),
            "{}",
            stderr(&out)
        );
        assert!(!env.path("mid.txt").exists());
    }
    let out = env.cmd(["rerun", step2.as_str(), "--upstream", "--force"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.path("mid.txt").exists());
}

/// A recorded bash function (`BASH_FUNC_name%%`) replaces a command in every bash the job
/// starts: the plan names it when it differs from now.
#[test]
fn the_plan_names_a_recorded_bash_function() {
    let env = Env::local();
    env.init_repo();
    let mut cmd = env.lineage();
    cmd.env("BASH_FUNC_python3%%", "() { touch pwned; }").args([
        "run",
        "-q",
        "-o",
        "o.txt",
        "--",
        "sh",
        "-c",
        "echo x > o.txt",
    ]);
    let out = output_within(cmd, std::time::Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = env.show(None)["id"].as_str().expect("id").to_string();
    let out = env.cmd(["rerun", "--dry-run", &id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("BASH_FUNC_python3%%"),
        "{}",
        stdout(&out)
    );
}

/// doctor reports a signing key open to others (runs are not signed with it) and --repair
/// makes it user-only.
#[test]
fn doctor_reports_and_repairs_a_signing_key_open_to_others() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::local();
    env.init_repo();
    env.record(&["--", "true"]);
    let key = env.root().join("home/.config/lineage/signing.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = env.cmd(["doctor"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("can be read or written by others"),
        "{}",
        stdout(&out)
    );
    let out = env.cmd(["doctor", "--repair"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
