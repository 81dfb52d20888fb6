//! The test builder: a temporary work directory, a temporary store and a private HOME with
//! its own git identity, so tests never touch the developer's store or git config.
// Built without the team store, the PostgreSQL server harness has no test to serve.
#![cfg_attr(not(feature = "team-store"), allow(dead_code))]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Env {
    _root: tempfile::TempDir,
    pub work: PathBuf,
    /// The store directory (with the PostgreSQL backend: the replica of the team store).
    pub store: PathBuf,
    pub home: PathBuf,
    /// With LINEAGE_TEST_BACKEND=postgres: the team store every command records into.
    pub team: Option<String>,
    /// Run lineage with an environment holding only what `isolate` sets (a fixed PATH, no
    /// variable of the developer's or CI's): records whose `env` is the same on any machine.
    pub clean_env: bool,
}

/// The whole suite runs against PostgreSQL when LINEAGE_TEST_BACKEND=postgres, on the server
/// LINEAGE_TEST_POSTGRES names (scripts/with-postgres.sh starts one): one database per test.
pub fn postgres_backend() -> Option<String> {
    if std::env::var("LINEAGE_TEST_BACKEND").ok().as_deref() != Some("postgres") {
        return None;
    }
    let admin = std::env::var("LINEAGE_TEST_POSTGRES").expect(
        "LINEAGE_TEST_BACKEND=postgres needs LINEAGE_TEST_POSTGRES (scripts/with-postgres.sh)",
    );
    let name = format!("t_{}", uuid_like());
    let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("connect as admin");
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let base = admin.rsplit_once('/').expect("a database in the URL").0;
    Some(format!("{base}/{name}"))
}

/// Give the signals lineage forwards their default dispositions in the test process, and so
/// in every lineage it starts. A shell without job control starts a command run with `&`
/// with SIGINT and SIGQUIT ignored, `nohup` ignores SIGHUP, and an ignored disposition is
/// inherited: lineage then leaves it ignored (as it should: the job's dispositions are left
/// as they were given), and a test that signals lineage would wait for ever.
fn default_interrupts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use nix::sys::signal::{SigHandler, Signal, signal};
        for sig in [
            Signal::SIGINT,
            Signal::SIGQUIT,
            Signal::SIGHUP,
            Signal::SIGTERM,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
            Signal::SIGALRM,
            Signal::SIGXCPU,
            Signal::SIGVTALRM,
            Signal::SIGPROF,
            Signal::SIGPWR,
            Signal::SIGCHLD,
        ] {
            // SAFETY: installs no handler (SIG_DFL), so nothing runs in signal context.
            #[allow(unsafe_code)]
            let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        }
    });
}

impl Env {
    pub fn new() -> Env {
        default_interrupts();
        let root = tempfile::tempdir().expect("tempdir");
        let work = root.path().join("work");
        let home = root.path().join("home");
        std::fs::create_dir_all(&work).expect("mkdir work");
        std::fs::create_dir_all(&home).expect("mkdir home");
        std::fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n",
        )
        .expect("gitconfig");
        Env {
            store: root.path().join("store"),
            _root: root,
            work,
            home,
            team: postgres_backend(),
            clean_env: false,
        }
    }

    /// An environment that records into a local SQLite store whatever the backend.
    pub fn local() -> Env {
        let mut env = Env::new();
        env.team = None;
        env
    }

    /// An environment that records into a local SQLite store whatever the backend, with a
    /// clean environment (see `clean_env`): for outputs compared byte for byte.
    pub fn deterministic() -> Env {
        let mut env = Env::local();
        env.clean_env = true;
        env
    }

    /// The temporary directory holding the work directory, the store and HOME.
    pub fn root(&self) -> &Path {
        self._root.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.work.join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, contents).expect("write");
        p
    }

    fn isolate(&self, cmd: &mut Command) {
        if self.clean_env {
            cmd.env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .env("LANG", "C.UTF-8");
        }
        cmd.current_dir(&self.work)
            .env("HOME", &self.home)
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.home.join(".gitconfig"))
            .env(
                "LINEAGE_STORE",
                self.team
                    .as_deref()
                    .map_or(self.store.as_os_str(), std::ffi::OsStr::new),
            )
            .env("LINEAGE_REPLICA", &self.store)
            .env_remove("LINEAGE_OWNER")
            .env_remove("CUDA_VISIBLE_DEVICES")
            .env_remove("SLURM_JOB_ID")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .env_remove("KUBERNETES_SERVICE_HOST");
    }

    /// Run git in the work directory; panics when it fails. Commits carry a fixed date, so
    /// the same tree gives the same commit id on any machine.
    pub fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        cmd.args(args);
        self.isolate(&mut cmd);
        cmd.env("GIT_AUTHOR_DATE", "2026-11-01T12:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-11-01T12:00:00Z");
        let out = cmd.output().expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A repository with one commit holding `train.py`.
    pub fn init_repo(&self) {
        self.git(&["init", "-q"]);
        self.write("train.py", "echo training\n");
        self.git(&["add", "train.py"]);
        self.git(&["commit", "-q", "-m", "first"]);
    }

    /// `lineage` with the isolated environment, not yet run.
    pub fn lineage(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lineage"));
        self.isolate(&mut cmd);
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn cmd<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.lineage();
        cmd.args(args);
        output_within(cmd, Duration::from_secs(60))
    }

    /// `lineage run -q ARGS...`, which must succeed; returns the new run's id.
    pub fn record(&self, args: &[&str]) -> String {
        let mut full = vec!["run", "-q"];
        full.extend_from_slice(args);
        let out = self.cmd(&full);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        self.show(None)["id"].as_str().expect("id").to_string()
    }

    /// `lineage show [RUN] --json`, parsed; panics unless it succeeds.
    pub fn show(&self, run: Option<&str>) -> Value {
        let mut args = vec!["show", "--json"];
        args.extend(run);
        let out = self.cmd(&args);
        assert!(out.status.success(), "show failed: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("show --json is JSON")
    }

    /// Every file under the store directory, with its raw bytes.
    pub fn store_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        walkdir::WalkDir::new(&self.store)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                (
                    e.path().to_path_buf(),
                    std::fs::read(e.path()).expect("read"),
                )
            })
            .collect()
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.store.join("lineage.db")).expect("open db")
    }
}

/// Run a command, killing it (and failing the test) if it outlives `limit`.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < limit {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            true
        })
    };
    let out = child.wait_with_output().expect("wait");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        !watchdog.join().expect("watchdog"),
        "command hung and was killed after {limit:?}"
    );
    out
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// lineage's own peak resident memory, in KiB, from the last line `LINEAGE_TIMINGS=1` prints.
pub fn peak_kib(out: &Output) -> u64 {
    let err = stderr(out);
    err.lines()
        .find_map(|l| l.strip_prefix("lineage: timing: peak resident memory "))
        .and_then(|l| l.strip_suffix(" KiB"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory line in {err}"))
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

pub fn blake3_hex(bytes: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(bytes).to_hex())
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The single input (or output) of a run's JSON at `role` ("inputs"/"outputs").
pub fn artifact<'a>(run: &'a Value, role: &str, path: &str) -> &'a Value {
    run[role]
        .as_array()
        .expect("array")
        .iter()
        .find(|a| a["path"] == path)
        .unwrap_or_else(|| panic!("no {role} {path} in {run}"))
}

pub fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A throwaway PostgreSQL server for one test: Debian's binaries, initdb into a temporary
/// directory (as the `postgres` user when the tests run as root), 127.0.0.1 only, password
/// authentication over TCP. None, with a note, when the binaries are missing, unless
/// LINEAGE_REQUIRE_POSTGRES is set (.ci/run sets it), which makes that a failure.
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    pub password: String,
    as_postgres: bool,
}

impl PgServer {
    pub fn start() -> Option<PgServer> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| {
                let mut v: Vec<PathBuf> = d
                    .filter_map(Result::ok)
                    .map(|e| e.path().join("bin"))
                    .collect();
                v.sort();
                v.pop()
            })
            .filter(|b| b.join("initdb").exists());
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("LINEAGE_REQUIRE_POSTGRES").is_none(),
                "LINEAGE_REQUIRE_POSTGRES is set but no PostgreSQL server is installed"
            );
            eprintln!("note: PostgreSQL tests skipped: apt-get install postgresql");
            return None;
        };
        let dir = PathBuf::from(format!("/tmp/lineage-pgtest-{}", uuid_like()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let as_postgres = nix_is_root();
        if as_postgres {
            let status = Command::new("chown")
                .arg("postgres")
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let password = format!("pw-{}", uuid_like());
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n")).expect("pwfile");
        std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let server = PgServer {
            dir,
            bin,
            port,
            password,
            as_postgres,
        };
        let out = server
            .tool("initdb")
            .arg("-D")
            .arg(server.dir.join("data"))
            .args([
                "-U",
                "lineage_admin",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(&pwfile);
        server.start_again();
        Some(server)
    }

    fn tool(&self, name: &str) -> Command {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(name));
            c
        } else {
            Command::new(self.bin.join(name))
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Start (again, after `stop`), on the same port and data.
    pub fn start_again(&self) {
        let out = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200",
                self.port,
                self.dir.display()
            ))
            .arg("start")
            .output()
            .expect("pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Turn TLS on and refuse connections without it: a CA and a server certificate for
    /// 127.0.0.1 made with `openssl`. Returns the CA certificate's path.
    pub fn require_tls(&self) -> PathBuf {
        self.require_tls_for("IP:127.0.0.1")
    }

    /// [`PgServer::require_tls`] with a certificate for `san` (`IP:127.0.0.1`,
    /// `DNS:db.example.org`), which need not be the address clients connect to.
    pub fn require_tls_for(&self, san: &str) -> PathBuf {
        let tls = self.dir.join("tls");
        std::fs::create_dir_all(&tls).expect("mkdir");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&tls)
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
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
            "/CN=lineage test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &format!("/CN={}", san.split_once(':').map_or(san, |(_, name)| name)),
        ]);
        std::fs::write(tls.join("ext.cnf"), format!("subjectAltName={san}\n")).expect("ext");
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            tls.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        std::fs::set_permissions(&tls, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        if self.as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&tls)
                .status()
                .expect("chown");
            assert!(ok.success());
        }
        let data = self.dir.join("data");
        let conf = format!(
            "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            tls.join("server.crt").display(),
            tls.join("server.key").display()
        );
        let mut pgconf = std::fs::read_to_string(data.join("postgresql.conf")).expect("conf");
        pgconf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pgconf).expect("conf");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .expect("hba");
        self.stop();
        self.start_again();
        tls.join("ca.crt")
    }

    /// Stop the server at once, as a crash or a network cut would look to clients.
    pub fn stop(&self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }

    /// The server's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A superuser URL for a database (`postgres`, or one made by `database`).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://lineage_admin:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// The URL without the password, as the tests' users would write it with ~/.pgpass.
    pub fn url_without_password(&self, db: &str) -> String {
        format!("postgres://lineage_admin@127.0.0.1:{}/{db}", self.port)
    }

    /// None when the server answers a query, Some(()) never: Some would mean up.
    pub fn sql_if_up(&self, db: &str) -> Option<()> {
        postgres::Client::connect(&self.url(db), postgres::NoTls)
            .ok()
            .map(|_| ())
    }

    /// One value, over the unix socket (allowed without TLS by the test's pg_hba).
    pub fn sql_tls(&self, db: &str, sql: &str) -> String {
        let out = self
            .tool("psql")
            .args(["-h"])
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "lineage_admin",
                "-d",
                db,
                "-Atc",
                sql,
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A new, empty database; returns its name.
    pub fn database(&self) -> String {
        let name = format!("t_{}", uuid_like());
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    /// Run SQL as the superuser; rows as text.
    pub fn sql(&self, db: &str, sql: &str) -> Vec<Vec<String>> {
        let mut client =
            postgres::Client::connect(&self.url(db), postgres::NoTls).expect("connect as admin");
        client
            .simple_query(sql)
            .expect("sql")
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("").to_string())
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fail unless the tests run as root: a test that needs root is `#[ignore]`d, and asked for
/// explicitly (`--include-ignored`, as .ci/run does) it must not pass without doing its work.
pub fn require_root(why: &str) {
    assert!(
        nix::unistd::getuid().is_root(),
        "this test needs root {why}: run it as root, or leave it ignored"
    );
}

fn nix_is_root() -> bool {
    nix::unistd::getuid().is_root()
}

/// 16 random hex digits.
pub fn uuid_like() -> String {
    let mut bytes = [0u8; 8];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut bytes)
    });
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rows per synced table of a store, to show an import left nothing behind.
pub fn counts(store: &Path) -> Vec<i64> {
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
