//! The team store's connection options and credentials against real PostgreSQL servers:
//! libpq's `sslmode` values and `sslrootcert` (in the URL, or `PGSSLMODE`/`PGSSLROOTCERT`),
//! a password on the command line or in `LINEAGE_STORE`, a replica bound to its store; and a
//! bundle written through a shell's `>` kept user-only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::util::*;

/// `lineage ARGS` with `LINEAGE_STORE=url`, the replica `replica` and the variables `vars`.
fn team(env: &Env, url: &str, replica: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = env.lineage();
    cmd.env("LINEAGE_STORE", url)
        .env("LINEAGE_REPLICA", replica)
        .env("LINEAGE_PG_TIMEOUT", "5")
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .env_remove("PGPASSWORD")
        .envs(vars.iter().copied())
        .args(args);
    output_within(cmd, Duration::from_secs(120))
}

fn replica(env: &Env, name: &str) -> PathBuf {
    env.root().join(name)
}

/// How many runs the server holds (0 before its schema exists), over the unix socket.
fn runs_on(pg: &PgServer, db: &str) -> i64 {
    if pg.sql_tls(db, "SELECT to_regclass('runs') IS NULL") == "t" {
        return 0;
    }
    pg.sql_tls(db, "SELECT COUNT(*) FROM runs")
        .parse()
        .expect("a count")
}

/// Not connected: unreachable (TLS refused, a certificate not verified) or refused by the
/// server (pg_hba.conf: no encryption), with the run kept.
fn unreachable(out: &Output) -> bool {
    let err = stderr(out);
    (err.contains("cannot reach the team store") || err.contains("refused the connection"))
        && err.contains("kept")
}

#[test]
fn verify_full_with_sslrootcert_in_the_url_reaches_a_tls_server() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let ca = pg.require_tls();
    let env = Env::new();
    env.init_repo();
    let rep = replica(&env, "full");
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url(&db),
        ca.display()
    );
    let out = team(&env, &url, &rep, &[], &["run", "-q", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    // The server refuses plaintext (hostnossl ... reject): arriving proves TLS.
    assert_eq!(runs_on(&pg, &db), 1);
    // The same from the environment, as libpq reads it.
    let vars = [
        ("PGSSLMODE", "verify-full"),
        ("PGSSLROOTCERT", ca.to_str().expect("utf-8")),
    ];
    let out = team(
        &env,
        &pg.url(&db),
        &rep,
        &vars,
        &["run", "-q", "--", "true"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(runs_on(&pg, &db), 2);
}

#[test]
fn verify_ca_accepts_a_certificate_for_another_name_which_verify_full_refuses() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    // The certificate names db.example.org; clients connect to 127.0.0.1.
    let ca = pg.require_tls_for("DNS:db.example.org");
    let env = Env::new();
    env.init_repo();
    let rep = replica(&env, "ca");
    let with = |mode: &str| {
        format!(
            "{}?sslmode={mode}&sslrootcert={}",
            pg.url(&db),
            ca.display()
        )
    };
    for mode in ["verify-full", "require", "prefer"] {
        let out = team(&env, &with(mode), &rep, &[], &["run", "-q", "--", "true"]);
        assert_eq!(code(&out), 0, "the job runs regardless");
        assert!(unreachable(&out), "{mode}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("not valid for name"),
            "{mode}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains(&pg.password));
    }
    assert_eq!(runs_on(&pg, &db), 0);
    // verify-ca checks the chain only: the three runs kept and a new one arrive.
    let out = team(
        &env,
        &with("verify-ca"),
        &rep,
        &[],
        &["run", "-q", "--", "true"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(runs_on(&pg, &db), 4);
    // A certificate from another CA is refused by verify-ca too.
    let other = pg_other_ca(&env);
    let url = format!(
        "{}?sslmode=verify-ca&sslrootcert={}",
        pg.url(&db),
        other.display()
    );
    let out = team(&env, &url, &rep, &[], &["run", "-q", "--", "true"]);
    assert!(unreachable(&out), "{}", stderr(&out));
    assert_eq!(runs_on(&pg, &db), 4);
}

/// A CA certificate that signed nothing the server has.
fn pg_other_ca(env: &Env) -> PathBuf {
    let dir = env.root().join("other-ca");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=another CA",
        ])
        .current_dir(&dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("ca.crt")
}

#[test]
fn pgsslmode_is_honoured_when_the_url_does_not_say() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let env = Env::new();
    env.init_repo();
    let rep = replica(&env, "plain");
    // A server without TLS: PGSSLMODE=require refuses it; the URL's sslmode wins over it.
    let require = [("PGSSLMODE", "require")];
    let out = team(
        &env,
        &pg.url(&db),
        &rep,
        &require,
        &["run", "-q", "--", "true"],
    );
    assert_eq!(code(&out), 0, "the job runs regardless");
    assert!(unreachable(&out), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("server does not support TLS"),
        "{}",
        stderr(&out)
    );
    assert_eq!(runs_on(&pg, &db), 0);
    let url = format!("{}?sslmode=disable", pg.url(&db));
    let out = team(&env, &url, &rep, &require, &["run", "-q", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(runs_on(&pg, &db), 2);
    // A server that only takes TLS: PGSSLMODE=disable does not use it, and is refused.
    let ca = pg.require_tls();
    let ca = ca.to_str().expect("utf-8");
    let vars = [("PGSSLMODE", "disable"), ("PGSSLROOTCERT", ca)];
    let out = team(
        &env,
        &pg.url(&db),
        &rep,
        &vars,
        &["run", "-q", "--", "true"],
    );
    assert!(unreachable(&out), "{}", stderr(&out));
    assert!(stderr(&out).contains("no encryption"), "{}", stderr(&out));
    assert_eq!(runs_on(&pg, &db), 2);
    let vars = [("PGSSLMODE", "require"), ("PGSSLROOTCERT", ca)];
    let out = team(
        &env,
        &pg.url(&db),
        &rep,
        &vars,
        &["run", "-q", "--", "true"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(runs_on(&pg, &db), 4);
}

#[test]
fn a_bad_sslmode_is_one_line_naming_it_and_the_valid_ones_never_the_url() {
    let env = Env::new();
    let rep = replica(&env, "bad");
    let url = "postgres://ada:hunter2@127.0.0.1:1/lineage?sslmode=verify";
    let out = team(&env, url, &rep, &[], &["run", "--", "touch", "ran"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "lineage: error: sslmode \"verify\" is not one of disable, allow, prefer, require, \
         verify-ca, verify-full\n"
    );
    assert!(!env.path("ran").exists(), "the job never starts");
    let url = "postgres://ada:hunter2@127.0.0.1:1/lineage";
    let out = team(&env, url, &rep, &[("PGSSLMODE", "strict")], &["list"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "lineage: error: PGSSLMODE \"strict\" is not one of disable, allow, prefer, require, \
         verify-ca, verify-full\n"
    );
    // verify-ca with no CA of one's own would take any public certificate: refused.
    let url = "postgres://ada:hunter2@127.0.0.1:1/lineage?sslmode=verify-ca";
    let out = team(&env, url, &rep, &[], &["list"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sslrootcert=PATH"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("hunter2"));
}

#[test]
fn a_password_on_the_command_line_is_warned_about_once_and_never_printed() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let url = pg.url(&db);
    let env = Env::local();
    env.init_repo();
    env.record(&["--", "true"]);
    let warned = |out: &Output| {
        assert!(!stderr(out).contains(&pg.password), "{}", stderr(out));
        stderr(out)
            .matches("password is on the command line")
            .count()
    };
    // --store URL: visible in ps, warned about once.
    let rep = replica(&env, "cli");
    let mut cmd = env.lineage();
    cmd.env("LINEAGE_REPLICA", &rep)
        .args(["--store", &url, "list"]);
    let out = output_within(cmd, Duration::from_secs(120));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(warned(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("~/.pgpass"), "{}", stderr(&out));
    // The same URL in LINEAGE_STORE is not on the command line: no warning.
    let out = team(&env, &url, &rep, &[], &["list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(warned(&out), 0, "{}", stderr(&out));
    // push URL and pull URL from a local store: once each; LINEAGE_TEAM_STORE: none.
    for verb in ["push", "pull"] {
        let out = env.cmd([verb, url.as_str()]);
        assert_eq!(code(&out), 0, "{verb}: {}", stderr(&out));
        assert_eq!(warned(&out), 1, "{verb}: {}", stderr(&out));
        let mut cmd = env.lineage();
        cmd.env("LINEAGE_TEAM_STORE", &url).arg(verb);
        let out = output_within(cmd, Duration::from_secs(120));
        assert_eq!(code(&out), 0, "{verb}: {}", stderr(&out));
        assert_eq!(warned(&out), 0, "{verb}: {}", stderr(&out));
    }
    // Without a password in the URL there is nothing to warn about.
    let mut cmd = env.lineage();
    cmd.env("LINEAGE_REPLICA", &rep)
        .env("PGPASSWORD", &pg.password)
        .args(["--store", &pg.url_without_password(&db), "list"]);
    let out = output_within(cmd, Duration::from_secs(120));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(warned(&out), 0, "{}", stderr(&out));
}

#[test]
fn the_job_gets_the_team_stores_url_without_its_password() {
    let Some(pg) = PgServer::start() else { return };
    let db = pg.database();
    let url = format!("{}?sslmode=prefer", pg.url(&db));
    let bare = format!("{}?sslmode=prefer", pg.url_without_password(&db));
    let env = Env::new();
    env.init_repo();
    let rep = replica(&env, "job");
    let lineage = env!("CARGO_BIN_EXE_lineage");
    // The job prints what it was given, and a lineage inside it, with PGPASSWORD as the
    // docs say, reads the same team store.
    let script = format!(
        "env > seen.txt; PGPASSWORD={} {lineage} list > nested.txt",
        pg.password
    );
    let out = team(
        &env,
        &url,
        &rep,
        &[("LINEAGE_TEAM_STORE", &url)],
        &["run", "-q", "--", "sh", "-c", &script],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let seen = std::fs::read_to_string(env.path("seen.txt")).expect("the job ran");
    assert!(!seen.contains(&pg.password), "{seen}");
    assert!(seen.contains(&format!("LINEAGE_STORE={bare}\n")), "{seen}");
    assert!(
        seen.contains(&format!("LINEAGE_TEAM_STORE={bare}\n")),
        "{seen}"
    );
    let nested = std::fs::read_to_string(env.path("nested.txt")).expect("nested lineage");
    assert!(!nested.is_empty(), "the nested lineage lists runs");
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(runs_on(&pg, &db), 1);
}

#[test]
fn a_replica_is_bound_to_the_team_store_it_was_made_for() {
    let Some(pg) = PgServer::start() else { return };
    let (first, second) = (pg.database(), pg.database());
    let env = Env::new();
    env.init_repo();
    let rep = replica(&env, "bound");
    let out = team(
        &env,
        &pg.url(&first),
        &rep,
        &[],
        &["run", "-q", "--", "true"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(runs_on(&pg, &first), 1);
    let binding = rep.join("team-store");
    let name = pg.url_without_password(&first);
    assert_eq!(
        std::fs::read_to_string(&binding).expect("bound"),
        format!("{name}\n")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&binding)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Another store through the same replica: refused before the job, in one line that names
    // the replica, the store it belongs to and the fix; nothing reaches the other server.
    let refused = |out: &Output| {
        let err = stderr(out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&rep.display().to_string()), "{err}");
        assert!(err.contains(&name), "{err}");
        assert!(err.contains("LINEAGE_REPLICA"), "{err}");
        assert!(!err.contains(&pg.password), "{err}");
    };
    let out = team(
        &env,
        &pg.url(&second),
        &rep,
        &[],
        &["run", "--", "touch", "ran"],
    );
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    refused(&out);
    assert!(!env.path("ran").exists(), "the job never starts");
    let out = team(&env, &pg.url(&second), &rep, &[], &["list"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    refused(&out);
    assert_eq!(runs_on(&pg, &second), 0);
    // The same store named otherwise (sslmode, password from PGPASSWORD) is the same store.
    let out = team(
        &env,
        &format!("{}?sslmode=prefer", pg.url_without_password(&first)),
        &rep,
        &[("PGPASSWORD", &pg.password)],
        &["list"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A replica made before bindings existed is bound by its next use.
    std::fs::remove_file(&binding).expect("rm");
    let out = team(&env, &pg.url(&first), &rep, &[], &["list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(binding.exists());
    let out = team(&env, &pg.url(&second), &rep, &[], &["list"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    refused(&out);
    assert_eq!(runs_on(&pg, &second), 0);
}

#[test]
fn a_bundle_written_to_a_redirected_stdout_is_readable_by_its_owner_only() {
    let env = Env::local();
    env.init_repo();
    env.record(&["--", "true"]);
    // A shell with umask 022 creates `> FILE` as 0644 before lineage starts.
    let shell = |script: &str| {
        let lineage = env.lineage();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("umask 022; {script}"))
            .arg(env!("CARGO_BIN_EXE_lineage"))
            .current_dir(&env.work);
        for (k, v) in lineage.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = output_within(cmd, Duration::from_secs(60));
        assert_eq!(code(&out), 0, "{script}: {}", stderr(&out));
    };
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    shell("\"$0\" bundle export > runs.lineage");
    assert_eq!(mode(&env.path("runs.lineage")), 0o600);
    // `-o -` is stdout too (not a file named `-`).
    shell("\"$0\" bundle export -o - > dash.lineage");
    assert_eq!(mode(&env.path("dash.lineage")), 0o600);
    assert!(!env.path("-").exists());
    // What was written is a whole bundle.
    let other = env.root().join("other-store");
    let mut cmd = env.lineage();
    cmd.env("LINEAGE_STORE", &other)
        .args(["bundle", "import"])
        .arg(env.path("runs.lineage"));
    let out = output_within(cmd, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("imported 1 runs"), "{}", stderr(&out));
    // A pipe is left alone (the file `cat` makes is the shell's business).
    shell("\"$0\" bundle export | cat > piped.lineage");
    assert_eq!(mode(&env.path("piped.lineage")), 0o644);
}
