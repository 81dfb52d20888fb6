//! The team store: a real PostgreSQL server (started per test by `PgServer`), many writers,
//! a server that goes away mid-run, credentials, push/pull and bundles into PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::fixture::Pipeline;
use crate::util::*;

/// `lineage ARGS` recording into the team store at `url`, through the replica `replica`.
fn team(env: &Env, url: &str, replica: &Path, args: &[&str]) -> Output {
    let mut cmd = env.lineage();
    cmd.env("LINEAGE_STORE", url)
        .env("LINEAGE_REPLICA", replica)
        .env("LINEAGE_PG_TIMEOUT", "3")
        .args(args);
    output_within(cmd, Duration::from_secs(120))
}

fn replica(env: &Env, name: &str) -> PathBuf {
    env.work.parent().expect("root").join(name)
}

#[test]
fn sixty_four_jobs_from_four_hosts_arrive_exactly_once() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let url = pg.url(&db);
    let env = Env::new();
    env.init_repo();
    env.write("shared.csv", "one input every host reads\n");
    // Four processes at once, each a host with its own replica, 16 jobs each.
    std::thread::scope(|s| {
        for host in 0..4 {
            let (env, url) = (&env, &url);
            s.spawn(move || {
                let rep = replica(env, &format!("host-{host}"));
                for job in 0..16 {
                    let out_file = format!("out/h{host}-j{job}.txt");
                    let script =
                        format!("mkdir -p out && (cat shared.csv; echo {host} {job}) > {out_file}");
                    let out = team(
                        env,
                        url,
                        &rep,
                        &[
                            "run",
                            "-q",
                            "-i",
                            "shared.csv",
                            "-o",
                            &out_file,
                            "--",
                            "sh",
                            "-c",
                            &script,
                        ],
                    );
                    assert_eq!(code(&out), 0, "host {host} job {job}: {}", stderr(&out));
                    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
                }
            });
        }
    });
    let one = |sql: &str| pg.sql(&db, sql)[0][0].clone();
    assert_eq!(one("SELECT COUNT(*) FROM runs"), "64");
    assert_eq!(one("SELECT COUNT(DISTINCT id) FROM runs"), "64");
    assert_eq!(one("SELECT COUNT(DISTINCT seq) FROM runs"), "64");
    assert_eq!(
        one("SELECT COUNT(*) FROM edges"),
        "128",
        "one input and one output each"
    );
    assert_eq!(one("SELECT COUNT(*) FROM edges WHERE role = 'input'"), "64");
    // The shared input is one artifact, whoever recorded it; 64 distinct outputs.
    assert_eq!(one("SELECT COUNT(*) FROM artifacts"), "65");
    // A fifth machine sees every run, and the shared input's 64 readers.
    let fifth = replica(&env, "host-5");
    let out = team(&env, &url, &fifth, &["list", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let runs: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(runs.as_array().expect("runs").len(), 64);
    let out = team(
        &env,
        &url,
        &fifth,
        &["show", "shared.csv", "--descendants", "--format", "json"],
    );
    let graph: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(graph["runs"].as_array().expect("runs").len(), 64);
}

#[test]
fn a_run_recorded_while_the_server_is_down_arrives_after_it_restarts() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let url = pg.url(&db);
    let env = Env::new();
    env.init_repo();
    let rep = replica(&env, "laptop");
    assert_eq!(
        code(&team(&env, &url, &rep, &["run", "-q", "--", "true"])),
        0
    );

    // The job starts with the server up; the server dies while it runs.
    let mut cmd = env.lineage();
    cmd.env("LINEAGE_STORE", &url)
        .env("LINEAGE_REPLICA", &rep)
        .env("LINEAGE_PG_TIMEOUT", "2")
        .args([
            "run",
            "-q",
            "-o",
            "result.txt",
            "--",
            "sh",
            "-c",
            "while [ ! -e go ]; do sleep 0.05; done; echo done > result.txt; exit 3",
        ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(300));
    pg.stop();
    std::fs::write(env.path("go"), "").expect("go");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 3, "the job's exit code wins: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot reach the team store"), "{err}");
    assert!(err.contains("1 run kept in"), "{err}");
    assert!(
        !err.contains(&pg.password),
        "the password reached a message: {err}"
    );
    assert_eq!(pg.sql_if_up(&db), None, "the server is down");

    pg.start_again();
    // Any command that reaches the server delivers what waited.
    let out = team(&env, &url, &rep, &["list", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let rows = pg.sql(&db, "SELECT status, exit_code FROM runs ORDER BY seq");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1], ["failed", "3"]);
    assert_eq!(
        pg.sql(&db, "SELECT COUNT(*) FROM edges WHERE role = 'output'")[0][0],
        "1"
    );
    // Nothing arrives twice.
    let out = team(&env, &url, &rep, &["list"]);
    assert_eq!(code(&out), 0);
    assert_eq!(pg.sql(&db, "SELECT COUNT(*) FROM runs")[0][0], "2");

    // The password is in no record: not in the server's rows, not in the replica's files.
    let dump = pg.sql(&db, "SELECT capture || coalesce(resources, '') FROM runs");
    assert!(
        !dump.iter().flatten().any(|c| c.contains(&pg.password)),
        "a record holds the password"
    );
    assert!(
        !dump.iter().flatten().any(|c| c.contains("LINEAGE_STORE")),
        "lineage's own variables are never recorded"
    );
    for entry in walkdir::WalkDir::new(&rep)
        .into_iter()
        .filter_map(Result::ok)
    {
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).expect("read");
            assert!(
                !contains(&bytes, pg.password.as_bytes()),
                "{} holds the password",
                entry.path().display()
            );
        }
    }
}

#[test]
fn credentials_come_from_pgpassword_or_a_private_pgpass_and_never_show() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let bare = pg.url_without_password(&db);
    let env = Env::new();
    env.init_repo();
    let rep = replica(&env, "r");
    // No password anywhere: refused, one error line, exit 125 only for run? `list` exits 0
    // from the local copy with a warning; `push` fails with exit 1.
    let mut cmd = env.lineage();
    cmd.args(["push", &bare])
        .env("PGPASSFILE", env.home.join("none"));
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("cannot reach the team store {bare}")),
        "{}",
        stderr(&out)
    );

    let mut cmd = env.lineage();
    cmd.env("LINEAGE_STORE", &bare)
        .env("LINEAGE_REPLICA", &rep)
        .env("PGPASSWORD", &pg.password)
        .args(["run", "-q", "--", "true"]);
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(pg.sql(&db, "SELECT COUNT(*) FROM runs")[0][0], "1");

    let pgpass = env.home.join(".pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:*:{db}:lineage_admin:{}\n", pg.password),
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = team(&env, &bare, &rep, &["run", "-q", "--", "true"]);
    assert_eq!(code(&out), 0, "the job runs whatever the store does");
    assert!(
        stderr(&out).contains(".pgpass ignored: it must be readable by you only"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("1 run kept in"), "{}", stderr(&out));
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = team(&env, &bare, &rep, &["run", "-q", "--", "true"]);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(
        pg.sql(&db, "SELECT COUNT(*) FROM runs")[0][0],
        "3",
        "the spooled run came along"
    );
    let dump = pg.sql(&db, "SELECT capture FROM runs");
    assert!(!dump.iter().flatten().any(|c| c.contains(&pg.password)));
}

#[test]
fn push_and_pull_sync_local_stores_through_the_team_store() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let url = pg.url(&db);
    let a = Env::new();
    a.init_repo();
    a.write("data.csv", "x\n");
    let run = a.record(&[
        "-i",
        "data.csv",
        "-o",
        "model.bin",
        "--",
        "sh",
        "-c",
        "cat data.csv > model.bin",
    ]);
    let out = a.cmd(["push", &url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("delivered 1 new run to postgres://lineage_admin@127.0.0.1"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(&pg.password));
    assert!(stderr(&a.cmd(["push", &url])).contains("delivered 0 new runs"));

    let b = Env::new();
    b.init_repo();
    let mut cmd = b.lineage();
    cmd.env("LINEAGE_TEAM_STORE", &url).arg("pull");
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("received 1 new run"),
        "{}",
        stderr(&out)
    );
    assert_eq!(b.show(Some(&run))["id"], run.as_str());
    std::fs::write(b.path("model.bin"), "x\n").expect("same bytes");
    let graph: Value =
        serde_json::from_str(&stdout(&b.cmd(["show", "model.bin", "--format", "json"])))
            .expect("json");
    assert_eq!(graph["runs"][0]["id"], run.as_str());
    // B's own runs go up; A pulls them; nothing bounces back.
    let back = b.record(&["--", "true"]);
    assert_eq!(code(&b.cmd(["push", &url])), 0);
    assert!(stderr(&a.cmd(["pull", &url])).contains("received 1 new run"));
    assert_eq!(a.show(Some(&back))["id"], back.as_str());
    assert!(stderr(&a.cmd(["push", &url])).contains("delivered 0 new runs"));
    assert_eq!(pg.sql(&db, "SELECT COUNT(*) FROM runs")[0][0], "2");
}

#[test]
fn a_bundle_imported_into_postgres_shows_the_same_ancestry() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let url = pg.url(&db);
    let p = Pipeline::record(Env::local());
    let env = &p.env;
    let bundle = env.path("runs.lineage");
    assert_eq!(
        code(&env.cmd(["bundle", "export", "-o", &bundle.display().to_string()])),
        0
    );
    let out = team(
        env,
        &url,
        &replica(env, "importer"),
        &["bundle", "import", &bundle.display().to_string()],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(pg.sql(&db, "SELECT COUNT(*) FROM runs")[0][0], "5");
    assert_eq!(pg.sql(&db, "SELECT COUNT(*) FROM dir_entries")[0][0], "2");
    // Another machine, reading only from the server.
    let viewer = replica(env, "viewer");
    for args in [
        &["show", "model.bin", "--format", "json"][..],
        &["show", "prepared/train.csv", "--format", "json"],
        &["show", "raw/data.csv", "--descendants", "--format", "json"],
    ] {
        let theirs = team(env, &url, &viewer, args);
        assert_eq!(code(&theirs), 0, "{}", stderr(&theirs));
        assert_eq!(stdout(&env.cmd(args)), stdout(&theirs), "{args:?}");
    }
}

#[test]
fn a_server_that_requires_tls_is_reached_over_verified_tls() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let ca = pg.require_tls();
    let env = Env::new();
    env.init_repo();
    let rep = replica(&env, "tls");
    let url = format!("{}?sslmode=require", pg.url(&db));
    // Without the private CA the certificate cannot be verified: refused, one line.
    let out = team(&env, &url, &rep, &["run", "-q", "--", "true"]);
    assert_eq!(code(&out), 0, "the job runs regardless");
    assert!(
        stderr(&out).contains("cannot reach the team store"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(&pg.password));
    // With it (PGSSLROOTCERT, as libpq), the spooled run and a new one arrive encrypted.
    let mut cmd = env.lineage();
    cmd.env("LINEAGE_STORE", &url)
        .env("LINEAGE_REPLICA", &rep)
        .env("PGSSLROOTCERT", &ca)
        .args(["run", "-q", "--", "true"]);
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    // The server refuses plaintext (hostnossl ... reject), so arriving proves TLS.
    assert_eq!(pg.sql_tls(&db, "SELECT COUNT(*) FROM runs"), "2");
}

/// The tables that travel between stores (docs/team-store.md), as both sides hold them.
const SYNCED: &[&str] = &[
    "artifacts",
    "dir_entries",
    "runs",
    "edges",
    "params",
    "metrics",
    "signatures",
    "blobs",
    "extra_digests",
    "annotations",
];

#[test]
fn the_team_store_has_the_local_stores_columns_and_a_column_it_does_not_know_stops_the_sync() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let url = pg.url(&db);
    let env = Env::local();
    env.init_repo();
    env.record(&["--", "true"]);
    let out = env.cmd(["push", &url]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let local = env.db();
    for table in SYNCED {
        let mut stmt = local
            .prepare(&format!("PRAGMA table_info({table})"))
            .expect("pragma");
        let mine: Vec<String> = stmt
            .query_map([], |r| r.get(1))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        let theirs: Vec<String> = pg
            .sql(
                &db,
                &format!(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = \
                     '{table}' AND column_name NOT IN ('seq', 'recorded_by') ORDER BY ordinal_position"
                ),
            )
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        assert_eq!(mine, theirs, "table {table}");
    }
    // A column some other writer added: no lineage of this version copies rows either way.
    pg.sql(&db, "ALTER TABLE runs ADD COLUMN unit TEXT");
    env.record(&["--", "true"]);
    for args in [["push", &url], ["pull", &url]] {
        let out = env.cmd(args);
        assert_eq!(code(&out), 1, "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("table runs has a column \"unit\"") && err.contains("upgrade"),
            "{err}"
        );
    }
    assert_eq!(pg.sql(&db, "SELECT COUNT(*) FROM runs")[0][0], "1");
}

#[test]
fn a_tag_made_while_the_server_is_down_reaches_it_with_the_next_command_after_its_run() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let url = pg.url(&db);
    let env = Env::local();
    env.init_repo();
    let (a, b) = (replica(&env, "a"), replica(&env, "b"));
    pg.stop();
    // The run and its tag both wait in the replica.
    let out = team(&env, &url, &a, &["run", "-q", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = team(&env, &url, &a, &["list", "--json"]);
    let runs: Value = serde_json::from_slice(&out.stdout).expect("json");
    let id = runs[0]["id"].as_str().expect("id").to_string();
    let out = team(&env, &url, &a, &["tag", &id, "baseline"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 tag or note kept in"),
        "{}",
        stderr(&out)
    );
    let out = team(&env, &url, &a, &["note", &id, "before the fix"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    pg.start_again();
    let out = team(&env, &url, &a, &["list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(
        pg.sql(&db, "SELECT kind, text FROM annotations ORDER BY seq"),
        [["tag", "baseline"], ["note", "before the fix"]]
    );
    let out = team(&env, &url, &b, &["show", "baseline", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["user_notes"][0]["text"], "before the fix");
    // Nothing is offered twice.
    let out = team(&env, &url, &a, &["push"]);
    assert!(
        stderr(&out).contains("delivered 0 new runs") && !stderr(&out).contains("tag"),
        "{}",
        stderr(&out)
    );
}
