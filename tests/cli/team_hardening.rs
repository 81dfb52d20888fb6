//! The team store as its admin sets it up (roles, `lineage team migrate`) and as a writer
//! attacks it (issue 21): writers only submit, the server decides; replicas cannot be
//! blinded or blocked; no job waits on an unresponsive server; setup mistakes are errors.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// A server with the documented roles: lineage_owner owns the database and migrated it;
/// alice and mallory write, rita reads.
struct Team {
    pg: PgServer,
    env: Env,
}

impl Team {
    fn start() -> Option<Team> {
        let pg = PgServer::start()?;
        for statement in [
            "CREATE ROLE lineage_owner LOGIN PASSWORD 'owner-pw'",
            "CREATE ROLE lineage_writer",
            "CREATE ROLE lineage_reader",
            "CREATE ROLE alice LOGIN PASSWORD 'alice-pw' IN ROLE lineage_writer",
            "CREATE ROLE mallory LOGIN PASSWORD 'mallory-pw' IN ROLE lineage_writer",
            "CREATE ROLE rita LOGIN PASSWORD 'rita-pw' IN ROLE lineage_reader",
            "CREATE DATABASE lineage OWNER lineage_owner",
        ] {
            pg.sql("postgres", statement);
        }
        let env = Env::new();
        env.init_repo();
        let team = Team { pg, env };
        let out = team.lineage("lineage_owner", "owner", &["team", "migrate"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        Some(team)
    }

    fn url(&self, role: &str) -> String {
        let pw = format!("{}-pw", role.trim_start_matches("lineage_"));
        format!(
            "postgres://{role}:{pw}@127.0.0.1:{}/lineage",
            self.pg.port()
        )
    }

    fn replica(&self, name: &str) -> PathBuf {
        self.env.work.parent().expect("root").join(name)
    }

    /// `lineage ARGS` as `role`, through the replica `replica`.
    fn lineage(&self, role: &str, replica: &str, args: &[&str]) -> Output {
        let mut cmd = self.env.lineage();
        cmd.env("LINEAGE_STORE", self.url(role))
            .env("LINEAGE_REPLICA", self.replica(replica))
            .env("LINEAGE_PG_TIMEOUT", "5")
            .args(args);
        output_within(cmd, Duration::from_secs(120))
    }

    /// Record a job as `role` that copies `input` to `output`; returns the run id.
    fn record(&self, role: &str, replica: &str, input: &str, output: &str) -> String {
        let script = format!("cat {input} > {output}");
        let out = self.lineage(
            role,
            replica,
            &[
                "run", "-q", "-i", input, "-o", output, "--", "sh", "-c", &script,
            ],
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
        let rows = self
            .pg
            .sql("lineage", "SELECT id FROM runs ORDER BY seq DESC LIMIT 1");
        rows[0][0].clone()
    }

    fn client(&self, role: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(role), postgres::NoTls).expect("connect")
    }

    fn ids(&self, role: &str, replica: &str) -> Vec<String> {
        let out = self.lineage(role, replica, &["list", "--json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let runs: Value = serde_json::from_slice(&out.stdout).expect("json");
        runs.as_array()
            .expect("runs")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_string())
            .collect()
    }
}

fn denied(r: Result<u64, postgres::Error>) -> bool {
    match r {
        Err(e) => e.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
        Ok(_) => false,
    }
}

#[test]
fn a_writer_cannot_insert_only_submit_and_is_credited_with_what_it_submits() {
    let Some(t) = Team::start() else { return };
    t.env.write("in.txt", "alice's data\n");
    let victim = t.record("alice", "alice", "in.txt", "out.txt");
    let mut m = t.client("mallory");
    let evil = "e".repeat(64);
    // No table takes a row from a writer: not the schema table, not a run with a huge seq,
    // not an edge on alice's run.
    for sql in [
        "INSERT INTO lineage_schema VALUES (99)".to_string(),
        "UPDATE lineage_schema SET version = 99".to_string(),
        "INSERT INTO runs (seq, id, status, argv, cwd, started_at, capture) VALUES \
         (9000000000000000000, '01900000-0000-7000-8000-000000000000', 'succeeded', '', '', \
         '2026-01-01T00:00:00.000000Z', '{}')"
            .to_string(),
        format!("INSERT INTO artifacts VALUES ('{evil}', 'file', 4, 1)"),
        format!(
            "INSERT INTO edges (run_id, role, position, artifact, path, abs_path) VALUES \
             ('{victim}', 'output', 9, NULL, 'evil', '/evil')"
        ),
        format!("INSERT INTO params VALUES ('{victim}', 'lr', '9', 'forged')"),
        format!("DELETE FROM runs WHERE id = '{victim}'"),
        "SELECT setval('runs_seq_seq', 9000000000000000000)".to_string(),
    ] {
        let r = m.execute(sql.as_str(), &[]);
        assert!(denied(r), "a writer ran: {sql}");
    }
    // Through the function: rows for alice's run are refused, a run already here is left
    // as it is, and a writer cannot pick its seq or its recorder.
    let doc =
        |run: Value, edges: Value| serde_json::json!({"run": run, "edges": edges}).to_string();
    let submit = |m: &mut postgres::Client, d: String| {
        m.query_one("SELECT lineage_submit($1::text::jsonb)", &[&d])
            .map(|r| r.get::<_, String>(0))
    };
    let forged_edge = serde_json::json!([{"run_id": victim, "role": "output", "position": 9,
        "artifact": null, "path": "evil", "abs_path": "/evil", "missing": 0, "changed": 0}]);
    let mine = "01900000-0000-7000-8000-0000000000aa";
    let run = serde_json::json!({"id": mine, "status": "succeeded", "argv": "\\x", "cwd": "\\x",
        "started_at": "2024-06-10T02:35:18.400000Z", "capture": "{}"});
    let e = submit(&mut m, doc(run.clone(), forged_edge.clone())).expect_err("another's run");
    let said = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(said.contains("another run"), "{e:?}");
    let mut with_seq = run.clone();
    with_seq["seq"] = 9_000_000_000_000_000_000i64.into();
    assert!(submit(&mut m, doc(with_seq, serde_json::json!([]))).is_err());
    // A run every replica would refuse (its id is not of its start): refused here.
    let mut late = run.clone();
    late["started_at"] = "2025-01-01T00:00:00.000000Z".into();
    let e = submit(&mut m, doc(late, serde_json::json!([]))).expect_err("id time");
    let said = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(said.contains("not its start"), "{e:?}");
    let mut again = run.clone();
    again["id"] = victim.clone().into();
    assert_eq!(
        submit(&mut m, doc(again, serde_json::json!([]))).expect("present"),
        "present"
    );
    assert_eq!(
        t.pg.sql(
            "lineage",
            &format!("SELECT COUNT(*) FROM edges WHERE run_id = '{victim}'")
        )[0][0],
        "2",
        "alice's run has its own two edges only"
    );
    // An edge naming an artifact that does not exist: the server's foreign key refuses it.
    let dangling = serde_json::json!([{"run_id": mine, "role": "output", "position": 0,
        "artifact": evil, "path": "x", "abs_path": "/x", "missing": 0, "changed": 0}]);
    assert!(submit(&mut m, doc(run, dangling)).is_err());
    assert_eq!(t.pg.sql("lineage", "SELECT COUNT(*) FROM runs")[0][0], "1");

    // mallory claims to be alice: the record says alice, the server says who submitted it.
    t.env.write("m.txt", "mallory's data\n");
    let mut cmd = t.env.lineage();
    cmd.env("LINEAGE_STORE", t.url("mallory"))
        .env("LINEAGE_REPLICA", t.replica("mallory"))
        .env("LINEAGE_OWNER", "alice")
        .args(["run", "-q", "-o", "m2.txt", "--", "cp", "m.txt", "m2.txt"]);
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows =
        t.pg.sql("lineage", "SELECT id, recorded_by FROM runs ORDER BY seq");
    assert_eq!(rows[0][1], "alice");
    assert_eq!(rows[1][1], "mallory");
    let forged = rows[1][0].clone();
    // A third machine shows who submitted each run beside its claimed owner.
    let out = t.lineage("rita", "rita", &["show", &forged, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(shown["submitted_by"], "mallory", "{shown}");
    let out = t.lineage("rita", "rita", &["show", &forged]);
    assert!(
        stdout(&out).contains("submitted by mallory"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_reader_reads_its_own_runs_stay_and_can_be_forgotten() {
    let Some(t) = Team::start() else { return };
    t.env.write("in.txt", "x\n");
    t.record("alice", "alice", "in.txt", "out.txt");
    let out = t.lineage("rita", "rita", &["run", "-q", "--", "sh", "-c", "exit 7"]);
    assert_eq!(code(&out), 7, "the job's own exit code");
    assert!(
        stderr(&out).contains("may not submit runs") && stderr(&out).contains("team forget"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("rita-pw"));
    // Reading still works, with the same warning, until the run is forgotten.
    assert_eq!(t.ids("rita", "rita").len(), 2);
    let out = t.lineage("rita", "rita", &["team", "forget", "--all"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 run will not be delivered"),
        "{}",
        stderr(&out)
    );
    let out = t.lineage("rita", "rita", &["list"]);
    assert_eq!(code(&out), 0);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(t.pg.sql("lineage", "SELECT COUNT(*) FROM runs")[0][0], "1");
}

#[test]
fn setup_mistakes_are_errors_not_outages() {
    let Some(pg) = PgServer::start() else { return };
    for statement in [
        "CREATE ROLE lineage_owner LOGIN PASSWORD 'owner-pw'",
        "CREATE ROLE lineage_writer",
        "CREATE ROLE alice LOGIN PASSWORD 'alice-pw' IN ROLE lineage_writer",
        "CREATE DATABASE lineage OWNER lineage_owner",
    ] {
        pg.sql("postgres", statement);
    }
    let env = Env::new();
    env.init_repo();
    let url = |role: &str| {
        let pw = role.trim_start_matches("lineage_");
        format!("postgres://{role}:{pw}-pw@127.0.0.1:{}/lineage", pg.port())
    };
    let lineage = |role: &str, args: &[&str]| {
        let mut cmd = env.lineage();
        cmd.env("LINEAGE_STORE", url(role))
            .env(
                "LINEAGE_REPLICA",
                env.work.parent().expect("root").join(role),
            )
            .env("LINEAGE_PG_TIMEOUT", "5")
            .args(args);
        output_within(cmd, Duration::from_secs(60))
    };
    // A writer before the owner migrated: reading fails, naming the fix; a job still runs.
    let out = lineage("alice", &["list"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has no lineage schema yet")
            && stderr(&out).contains("lineage team migrate"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("can be reached"), "{}", stderr(&out));
    let out = lineage("alice", &["run", "-q", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("lineage team migrate")
            && stderr(&out).contains("until that is fixed"),
        "{}",
        stderr(&out)
    );
    // A wrong password is a setup error too, with its fix.
    let mut cmd = env.lineage();
    cmd.env(
        "LINEAGE_STORE",
        format!("postgres://alice:wrong@127.0.0.1:{}/lineage", pg.port()),
    )
    .env(
        "LINEAGE_REPLICA",
        env.work.parent().expect("root").join("wrong"),
    )
    .arg("list");
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("pgpass"), "{}", stderr(&out));
    // The owner migrates; the writer's kept run is delivered by its next command.
    assert_eq!(code(&lineage("lineage_owner", &["team", "migrate"])), 0);
    let out = lineage("alice", &["list", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        pg.sql("lineage", "SELECT recorded_by FROM runs")[0][0],
        "alice"
    );
    let out = lineage("alice", &["doctor"]);
    assert!(stdout(&out).contains("team store"), "{}", stdout(&out));
}

#[test]
fn a_run_a_replica_cannot_accept_is_quarantined_and_the_rest_arrive() {
    let Some(t) = Team::start() else { return };
    t.env.write("a.txt", "a\n");
    let first = t.record("alice", "alice", "a.txt", "b.txt");
    // A row written behind lineage's back (before the server had its constraints): an edge
    // naming an artifact that does not exist.
    // Another run id of the same moment (a UUIDv7's time is its run's start).
    let broken = format!("{}bbbbbbbbbbbb", &first[..24]);
    t.pg.sql(
        "lineage",
        &format!(
            "SET session_replication_role = replica;
             INSERT INTO runs (id, status, argv, cwd, started_at, ended_at, capture)
               SELECT '{broken}', status, argv, cwd, started_at, ended_at, capture FROM runs
               WHERE id = '{first}';
             INSERT INTO edges (run_id, role, position, artifact, path, abs_path)
               VALUES ('{broken}', 'output', 0, '{}', 'x', '/x');",
            "f".repeat(64)
        ),
    );
    t.env.write("c.txt", "c\n");
    let later = t.record("alice", "alice", "c.txt", "d.txt");
    let out = t.lineage("rita", "rita", &["list", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("run {broken} from"))
            && stderr(&out).contains("FOREIGN KEY"),
        "{}",
        stderr(&out)
    );
    let ids = t.ids("rita", "rita");
    assert!(ids.contains(&first) && ids.contains(&later) && !ids.contains(&broken));
    let out = t.lineage("rita", "rita", &["doctor"]);
    assert!(stdout(&out).contains(&broken), "{}", stdout(&out));
}

#[test]
fn a_replica_resynchronises_when_the_servers_history_changes() {
    let Some(t) = Team::start() else { return };
    t.env.write("a.txt", "a\n");
    let first = t.record("alice", "alice", "a.txt", "b.txt");
    // A run with a huge seq, written behind lineage's back, fetched by rita...
    let huge = format!("{}cccccccccccc", &first[..24]);
    t.pg.sql(
        "lineage",
        &format!(
            "INSERT INTO runs (seq, id, status, argv, cwd, started_at, ended_at, capture)
               SELECT 9000000000000000000, '{huge}', status, argv, cwd, started_at, ended_at,
                      capture FROM runs WHERE id = '{first}'"
        ),
    );
    assert!(t.ids("rita", "rita").contains(&huge));
    // ...then deleted, as a restored backup would: rita notices and reads again.
    t.pg.sql("lineage", &format!("DELETE FROM runs WHERE id = '{huge}'"));
    t.env.write("c.txt", "c\n");
    let later = t.record("alice", "alice", "c.txt", "d.txt");
    let out = t.lineage("rita", "rita", &["list", "--json"]);
    assert!(
        stderr(&out).contains("its history was read again"),
        "{}",
        stderr(&out)
    );
    assert!(t.ids("rita", "rita").contains(&later));
    // alice's own run, lost by the server, is delivered again.
    assert!(t.ids("alice", "alice").contains(&first));
    t.pg.sql("lineage", &format!("DELETE FROM edges WHERE run_id = '{first}'; DELETE FROM signatures WHERE run_id = '{first}'; DELETE FROM runs WHERE id = '{first}'"));
    let out = t.lineage("alice", "alice", &["list"]);
    assert!(
        stderr(&out).contains("will be delivered again"),
        "{}",
        stderr(&out)
    );
    let out = t.lineage("alice", "alice", &["list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        t.pg.sql(
            "lineage",
            &format!("SELECT COUNT(*) FROM runs WHERE id = '{first}'")
        )[0][0],
        "1"
    );
}

#[test]
fn a_deleted_run_leaves_a_tombstone_every_replica_applies() {
    let Some(t) = Team::start() else { return };
    t.env.write("a.txt", "a\n");
    let gone = t.record("alice", "alice", "a.txt", "b.txt");
    assert!(t.ids("rita", "rita").contains(&gone));
    // A writer cannot delete; the owner can.
    let mut m = t.client("mallory");
    assert!(
        m.query_one("SELECT lineage_delete_run($1, 'x')", &[&gone])
            .is_err()
    );
    let mut owner = t.client("lineage_owner");
    owner
        .query_one("SELECT lineage_delete_run($1, 'retention')", &[&gone])
        .expect("owner deletes");
    for who in ["rita", "alice"] {
        let out = t.lineage(who, who, &["list", "--json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(
            !stderr(&out).contains("read again"),
            "a deletion is not a restore: {}",
            stderr(&out)
        );
        assert!(!t.ids(who, who).contains(&gone));
    }
    // And it is never delivered again.
    assert_eq!(t.pg.sql("lineage", "SELECT COUNT(*) FROM runs")[0][0], "0");
    // alice's next run (which SQLite gives the deleted run's rowid) is delivered.
    t.env.write("c.txt", "c\n");
    let next = t.record("alice", "alice", "c.txt", "d.txt");
    assert_ne!(next, gone);
    assert!(t.ids("rita", "rita").contains(&next));
}

/// A listener that accepts connections and never answers (a stopped postmaster, a stuck
/// proxy); counts the connections it accepted.
fn silent_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(s);
        }
    });
    (port, accepted)
}

#[test]
fn an_unresponsive_server_never_holds_a_job_or_a_command() {
    let (port, accepted) = silent_server();
    let env = Env::new();
    env.init_repo();
    let url = format!("postgres://alice:pw@127.0.0.1:{port}/lineage");
    let rep = env.work.parent().expect("root").join("silent");
    let lineage = |args: &[&str], timeout: &str| {
        let mut cmd = env.lineage();
        cmd.env("LINEAGE_STORE", &url)
            .env("LINEAGE_REPLICA", &rep)
            .env("LINEAGE_PG_TIMEOUT", timeout)
            .args(args);
        cmd
    };
    let out = output_within(
        lineage(&["run", "-q", "--", "sh", "-c", "exit 5"], "1"),
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), 5);
    assert!(
        stderr(&out).contains("did not answer in time (each step within 1 s")
            && stderr(&out).contains("1 run kept"),
        "{}",
        stderr(&out)
    );
    let out = output_within(lineage(&["list"], "1"), Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("did not answer"), "{}", stderr(&out));

    // SIGTERM while lineage waits on the server after the job: it ends at once, with the
    // job's exit code, the run kept.
    let before = accepted.load(std::sync::atomic::Ordering::SeqCst);
    let mut cmd = lineage(&["run", "-q", "--", "sh", "-c", "exit 3"], "600");
    cmd.stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let start = Instant::now();
    while accepted.load(std::sync::atomic::Ordering::SeqCst) == before {
        assert!(start.elapsed() < Duration::from_secs(60), "never connected");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "lineage ignored SIGTERM while waiting on the server"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3));
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert!(err.contains("interrupted") && err.contains("kept"), "{err}");
    let pending: Vec<Vec<String>> = {
        let db = rusqlite::Connection::open(Path::new(&rep).join("lineage.db")).expect("replica");
        let n: i64 = db
            .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
            .expect("count");
        vec![vec![n.to_string()]]
    };
    assert_eq!(pending[0][0], "2", "both jobs' runs kept in the replica");

    // Ctrl-C while a reading command waits on the server: it ends at once.
    let before = accepted.load(std::sync::atomic::Ordering::SeqCst);
    let mut child = lineage(&["list"], "600")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while accepted.load(std::sync::atomic::Ordering::SeqCst) == before {
        assert!(start.elapsed() < Duration::from_secs(60), "never connected");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "lineage list ignored SIGINT while waiting on the server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn push_counts_runs_the_server_had_already_apart() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let url = pg.url(&db);
    let a = Env::new();
    a.init_repo();
    a.record(&["--", "true"]);
    a.record(&["--", "true"]);
    let bundle = a.work.parent().expect("root").join("runs.lineage");
    let out = a.cmd(["bundle", "export", "-o", bundle.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let b = Env::new();
    b.init_repo();
    assert_eq!(
        code(&b.cmd(["bundle", "import", bundle.to_str().expect("utf-8")])),
        0
    );
    let out = a.cmd(["push", &url]);
    assert!(
        stderr(&out).contains("delivered 2 new runs"),
        "{}",
        stderr(&out)
    );
    let out = b.cmd(["push", &url]);
    assert!(
        stderr(&out).contains("delivered 0 new runs") && stderr(&out).contains("2 it had already"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn team_migrate_repairs_an_old_setups_grants_and_a_tampered_schema_table() {
    let Some(t) = Team::start() else { return };
    // The grants the documentation once gave writers, and a second row in the schema table
    // (as a writer could add before schema version 5).
    t.pg.sql(
        "lineage",
        "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO lineage_writer;
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO lineage_writer;
         DROP INDEX lineage_schema_one_row;
         INSERT INTO lineage_schema VALUES (99);",
    );
    let out = t.lineage("alice", "alice", &["list"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 rows") && stderr(&out).contains("lineage team migrate"),
        "{}",
        stderr(&out)
    );
    let out = t.lineage("lineage_owner", "owner", &["team", "migrate"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("repaired"), "{}", stderr(&out));
    assert_eq!(
        t.pg.sql("lineage", "SELECT version FROM lineage_schema"),
        vec![vec!["8".to_string()]]
    );
    let mut m = t.client("mallory");
    assert!(denied(
        m.execute("INSERT INTO lineage_schema VALUES (7)", &[])
    ));
    assert!(denied(
        m.execute("INSERT INTO params VALUES ('x', 'k', 'v', 's')", &[])
    ));
    assert!(denied(m.execute(
        "INSERT INTO metrics VALUES ('x', 'k', 1.0, 's')",
        &[]
    )));
    assert!(denied(
        m.execute("SELECT lineage_submit_v5('{}'::jsonb)", &[])
    ));
    assert!(denied(m.execute("SELECT nextval('runs_seq_seq')", &[])));
    assert!(denied(
        m.execute("SELECT nextval('annotations_seq_seq')", &[])
    ));
    assert!(denied(
        m.execute("SELECT lineage_delete_run_v7('x', 'y')", &[])
    ));
    t.env.write("in.txt", "x\n");
    t.record("alice", "alice", "in.txt", "out.txt");
}

#[test]
fn a_content_row_poisoned_in_advance_does_not_block_the_runs_that_name_it() {
    let Some(t) = Team::start() else { return };
    // mallory knows the bytes of the team's shared config, so its hash: she submits a run
    // that "keeps" a blob under that hash with other bytes, before anyone uses the config.
    let config = "lr: 0.01\nepochs: 3\n";
    let hash = blake3::hash(config.as_bytes()).to_hex().to_string();
    let mut m = t.client("mallory");
    let doc = serde_json::json!({
        "run": {"id": "01900000-0000-7000-8000-0000000000dd", "status": "succeeded",
                "argv": "\\x", "cwd": "\\x", "started_at": "2024-06-10T02:35:18.400000Z",
                "capture": "{}"},
        "blobs": [{"hash": hash, "size": 3, "data": "\\x657669"}],
        // A directory of hers whose manifest does not hash to it: on a pull that takes runs
        // one by one, it may count against her run only.
        "artifacts": [{"hash": "d".repeat(64), "kind": "dir", "size": 1, "file_count": 1}],
        "dir_entries": [{"dir_hash": "d".repeat(64), "path": "x", "file_hash": "0".repeat(64),
                         "size": 1, "executable": 0}],
        "edges": [{"run_id": "01900000-0000-7000-8000-0000000000dd", "role": "output",
                   "position": 0, "artifact": "d".repeat(64), "path": "out", "abs_path": "/out",
                   "missing": 0, "changed": 0}],
    });
    let _ = m.query_one(
        "SELECT lineage_submit($1::text::jsonb)",
        &[&doc.to_string()],
    );
    assert_eq!(
        t.pg.sql(
            "lineage",
            &format!("SELECT COUNT(*) FROM blobs WHERE hash = '{hash}'")
        )[0][0],
        "1",
        "the poisoned copy is on the server"
    );
    // alice trains with the config; rita still gets her run, without the damaged blob.
    t.env.write("base.yaml", config);
    t.env.write("in.txt", "x\n");
    let out = t.lineage(
        "alice",
        "alice",
        &[
            "run",
            "-q",
            "-c",
            "base.yaml",
            "-i",
            "in.txt",
            "-o",
            "out.txt",
            "--",
            "cp",
            "in.txt",
            "out.txt",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let alice_run =
        t.pg.sql("lineage", "SELECT id FROM runs WHERE recorded_by = 'alice'")[0][0].clone();
    let out = t.lineage("rita", "rita", &["list", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("damaged copy of blob"),
        "{}",
        stderr(&out)
    );
    assert!(t.ids("rita", "rita").contains(&alice_run));
}

#[test]
fn tags_and_notes_travel_through_a_team_store_and_a_forged_one_is_refused_by_name() {
    let Some(t) = Team::start() else { return };
    t.env.write("in.txt", "alice's data\n");
    let run = t.record("alice", "alice", "in.txt", "out.txt");
    let ok = |out: Output| {
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
        out
    };
    // alice tags and notes her run: delivered at once, credited to her role.
    let out = ok(t.lineage("alice", "alice", &["tag", &run, "best"]));
    assert!(!stderr(&out).contains("stay"), "{}", stderr(&out));
    ok(t.lineage("alice", "alice", &["note", &run, "trained on the full set"]));
    assert_eq!(
        t.pg.sql(
            "lineage",
            "SELECT kind, text, recorded_by FROM annotations ORDER BY seq"
        ),
        [
            ["tag", "best", "alice"],
            ["note", "trained on the full set", "alice"]
        ]
    );
    // rita, on another machine, sees them; the tag names the run for her.
    let out = ok(t.lineage("rita", "rita", &["show", "best", "--json"]));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(shown["id"], run.as_str());
    assert_eq!(shown["tags"], serde_json::json!(["best"]));
    assert_eq!(shown["user_notes"][0]["text"], "trained on the full set");
    // A writer inserts nothing herself, and the server takes only signed annotations of its
    // runs, with a tag name lineage accepts.
    let mut m = t.client("mallory");
    assert!(denied(
        m.execute(
            format!(
                "INSERT INTO annotations (id, run_id, kind, text, created_at, author, public_key, \
             signature, recorded_by) SELECT '01900000-0000-7000-8000-0000000000aa', id, 'tag', \
             'prod', started_at, 'alice', 'k', 's', 'alice' FROM runs WHERE id = '{run}'"
            )
            .as_str(),
            &[]
        )
    ));
    let original: Vec<Vec<String>> = t.pg.sql(
        "lineage",
        "SELECT id, created_at, public_key, signature FROM annotations WHERE text = 'best'",
    );
    let [id, created, key, sig] = &original[0][..] else {
        panic!("{original:?}")
    };
    let annotate = |m: &mut postgres::Client, doc: Value| {
        m.query_one(
            "SELECT lineage_annotate($1::text::jsonb)",
            &[&doc.to_string()],
        )
        .map(|r| r.get::<_, String>(0))
        .map_err(|e| {
            e.as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_default()
        })
    };
    let forged_id = format!("{}{}", &id[..35], if id.ends_with('0') { '1' } else { '0' });
    let doc = |text: &str, run: &str, signed: bool| {
        let mut d = serde_json::json!({"id": forged_id, "run_id": run, "kind": "tag",
            "text": text, "created_at": created, "author": "alice"});
        if signed {
            d["public_key"] = key.as_str().into();
            d["signature"] = sig.as_str().into();
        }
        d
    };
    let e = annotate(&mut m, doc("prod", &run, false)).expect_err("unsigned");
    assert!(e.contains("unsigned"), "{e}");
    let e = annotate(&mut m, doc("cafe", &run, true)).expect_err("reads as a run id");
    assert!(e.contains("not a tag name"), "{e}");
    let e = annotate(&mut m, doc("prod", &uuid_v7_like(), true)).expect_err("no such run");
    assert!(e.contains("no run"), "{e}");
    assert_eq!(
        annotate(
            &mut m,
            serde_json::json!({"id": id, "run_id": run, "kind": "tag",
            "text": "best", "created_at": created, "author": "alice",
            "public_key": key, "signature": sig})
        ),
        Ok("present".to_string())
    );
    // alice's signature over another text (as the owner, or a writer with a forged key,
    // could put on the server): rita's pull refuses it by name and takes the rest.
    t.pg.sql(
        "lineage",
        &format!(
            "INSERT INTO annotations (id, run_id, kind, text, created_at, author, public_key, \
             signature, recorded_by) VALUES ('{forged_id}', '{run}', 'tag', 'prod', '{created}', \
             'alice', '{key}', '{sig}', 'lineage_owner')"
        ),
    );
    // alice's replica refuses it too (she reads before she tags), and her next tag lands.
    let out = t.lineage("alice", "alice", &["tag", &run, "v2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains(&forged_id), "{}", stderr(&out));
    let out = t.lineage("rita", "rita", &["pull"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("tag or note {forged_id}"))
            && err.contains("not taken")
            && err.contains("signature"),
        "{err}"
    );
    assert!(err.contains("1 new tag or note"), "{err}");
    let out = ok(t.lineage("rita", "rita", &["tag", "--json"]));
    let tags: Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = tags
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["best", "v2"]);
    assert_ne!(code(&t.lineage("rita", "rita", &["show", "prod"])), 0);
    // A reader's tag stays in her replica, said once.
    let out = t.lineage("rita", "rita", &["tag", &run, "mine"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 tag or note stays in this replica"),
        "{}",
        stderr(&out)
    );
    ok(t.lineage("rita", "rita", &["list"]));
    assert_eq!(
        t.pg.sql(
            "lineage",
            "SELECT COUNT(*) FROM annotations WHERE text = 'mine'"
        )[0][0],
        "0"
    );
    // The owner deletes the run: its annotations go with it, there and in every replica.
    t.pg.sql(
        "lineage",
        &format!("SELECT lineage_delete_run('{run}', 'retention')"),
    );
    assert_eq!(
        t.pg.sql("lineage", "SELECT COUNT(*) FROM annotations")[0][0],
        "0"
    );
    ok(t.lineage("rita", "rita", &["list"]));
    let out = t.lineage("rita", "rita", &["show", "best"]);
    assert_ne!(code(&out), 0, "{}", stderr(&out));
}

/// A UUIDv7 of now, of no run.
fn uuid_v7_like() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as u64;
    let hex = format!("{ms:012x}");
    format!("{}-{}-7000-8000-000000000001", &hex[..8], &hex[8..])
}
