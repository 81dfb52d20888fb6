//! The team store: a PostgreSQL database many users and hosts record into.
//!
//! Each client keeps a local SQLite store (its replica): `lineage run` records there as
//! always, then delivers the finished run to the server (`push`); commands that read first
//! fetch the runs that arrived since they last looked (`pull`) and then query the replica
//! with the same SQL as any store. So the job never waits on the network and never fails
//! because of it: a run that cannot be delivered stays in the replica (spooled) and the next
//! command that reaches the server delivers it.
//!
//! Rows move as bundles (`store::bundle`): a push exports the undelivered runs to a bundle
//! and inserts its rows on the server, a pull writes the new rows into a bundle and imports
//! it. Every insert on the server is `ON CONFLICT DO NOTHING` (run ids are UUIDv7, artifacts
//! content hashes), and pushes take a transaction-scoped advisory lock, so `runs.seq` grows in
//! commit order and a pull that resumes after the last seq it saw misses nothing.
//!
//! Credentials: the URL's password, `PGPASSWORD` or `~/.pgpass` (`PGPASSFILE`); the `PG*`
//! variables fill in what the URL leaves out. The password is never printed: `Remote::name`
//! is the URL without it.

mod net;
mod pull;
mod push;
mod server;
mod tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, anyhow};

pub use net::{Interrupted, Limits};
pub use pull::Pulled;
pub use push::{NotAWriter, Pushed};
pub use server::Setup;

/// The server as `lineage doctor` reports it.
#[derive(Debug)]
pub struct ServerStatus {
    /// Its schema version.
    pub version: i64,
    /// The version this lineage writes.
    pub known: i64,
    /// The role this machine logs in as.
    pub role: String,
    /// Whether that role may submit runs (a member of lineage_writer).
    pub may_submit: bool,
    /// Whether it may read them.
    pub may_read: bool,
}

/// A team store: where it is and how to log in.
#[derive(Clone)]
pub struct Remote {
    /// `postgres://user@host:port/db`: the URL without its password, safe to print.
    pub name: String,
    config: postgres::Config,
    tls: tls::Tls,
    /// What the caller should warn about (a pgpass file others can read, ignored).
    pub warnings: Vec<String>,
    /// `LINEAGE_PG_TIMEOUT`: how long one step of the exchange may take (see `net`).
    pub timeout: Duration,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl Remote {
    pub fn parse(url: &str) -> Result<Remote> {
        // rust-postgres knows only three of libpq's sslmodes, and no sslrootcert: they are
        // taken out of the URL and handled here (`tls`).
        let (rest, url_mode, url_root) = take_tls_params(url)?;
        // Like libpq, PGPORT gives the port a URL leaves out (rust-postgres would take 5432).
        let rest = with_default_port(&rest, std::env::var("PGPORT").ok().as_deref());
        // The parser's messages may quote the URL, password included: not repeated here.
        let mut config: postgres::Config = rest.parse().map_err(|_| {
            anyhow!("the team store is not a valid postgres://USER@HOST[:PORT]/DATABASE URL")
        })?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let tls = tls::Tls::decide(url_mode.as_deref(), url_root.as_deref(), &env)?;
        config.ssl_mode(tls.ssl_mode());
        if config.get_hosts().is_empty() {
            config.host(&env("PGHOST").unwrap_or_else(|| "localhost".into()));
        }
        if config.get_ports().is_empty() {
            let port = env("PGPORT").and_then(|p| p.parse().ok()).unwrap_or(5432);
            config.port(port);
        }
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "lineage".into());
            config.user(&user);
        }
        if config.get_dbname().is_none() {
            let db = env("PGDATABASE").unwrap_or_else(|| config.get_user().unwrap_or("").into());
            config.dbname(&db);
        }
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => String::new(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("").to_string();
        let db = config.get_dbname().unwrap_or("").to_string();
        let mut warnings = Vec::new();
        if config.get_password().is_some() && on_command_line(url) {
            warnings.push(
                "the team store's password is on the command line, where other users can \
                 read it (ps): put it in ~/.pgpass (chmod 600) or PGPASSWORD instead"
                    .to_string(),
            );
        }
        if config.get_password().is_none() {
            if let Some(p) = env("PGPASSWORD") {
                config.password(p);
            } else if let Some(p) = pgpass(&host, port, &db, &user, &mut warnings) {
                config.password(p);
            }
        }
        // A value that is not a positive number of seconds is said, and 5 s used.
        let raw = env("LINEAGE_PG_TIMEOUT");
        let parsed = raw
            .as_deref()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .filter(|d| !d.is_zero());
        if let (Some(raw), None) = (&raw, parsed) {
            warnings.push(format!(
                "LINEAGE_PG_TIMEOUT={} is not a positive number of seconds: 5 used",
                crate::model::text::escape(raw)
            ));
        }
        let timeout = parsed.unwrap_or(Duration::from_secs(5));
        config.connect_timeout(timeout);
        Ok(Remote {
            name: format!("postgres://{user}@{host}:{port}/{db}"),
            config,
            tls,
            warnings,
            timeout,
        })
    }

    /// The local store that mirrors this team store on this machine: `LINEAGE_REPLICA`, or
    /// `remotes/<digest of the name>` in the default store directory `default_store`.
    pub fn replica_dir(&self, default_store: &Path) -> PathBuf {
        if let Some(dir) = std::env::var_os("LINEAGE_REPLICA").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let key = blake3::hash(self.name.as_bytes()).to_hex();
        default_store.join("remotes").join(&key[..16])
    }

    /// Connect (on the calling thread: a worker of `net::within`), check the schema, and
    /// bring it up to date when this role may (`explicit`: as `lineage team migrate` asks).
    fn connect_now(&self, explicit: bool) -> Result<postgres::Client> {
        Ok(self.connect_and_prepare(explicit)?.0)
    }

    fn connect_and_prepare(&self, explicit: bool) -> Result<(postgres::Client, Option<String>)> {
        let mut client = self
            .config
            .connect(self.tls.connector()?)
            .map_err(|e| net::classify(&self.name, "the connection", &e))?;
        let (_, repaired) =
            server::prepare(&mut client, &self.name, explicit).map_err(|e| self.setup(e))?;
        server::check_server(&mut client, &self.name).map_err(|e| self.setup(e))?;
        Ok((client, repaired))
    }

    /// An error preparing the schema, as a setup problem when the server said no.
    fn setup(&self, e: anyhow::Error) -> anyhow::Error {
        if let Some(pg) = e.downcast_ref::<postgres::Error>() {
            return net::classify(&self.name, "preparing its schema", pg);
        }
        if e.is::<Setup>() {
            return e;
        }
        Setup(format!("the team store {}: {e:#}", self.name)).into()
    }

    /// Connect and check the server, within one step.
    pub fn check(&self) -> Result<()> {
        let me = self.clone();
        net::within(&self.name, Limits::steps(self.timeout), move |_| {
            me.connect_now(false).map(drop)
        })
    }

    /// What `lineage doctor` says of the server: its schema version, the role this machine
    /// logs in as, and whether it may submit runs.
    pub fn status(&self) -> Result<ServerStatus> {
        let me = self.clone();
        net::within(&self.name, Limits::steps(self.timeout), move |_| {
            let mut c = me.connect_now(false)?;
            let row = c
                .query_one(
                    "SELECT (SELECT version FROM lineage_schema), current_user::text,
                            has_function_privilege('lineage_submit(jsonb)', 'EXECUTE'),
                            has_table_privilege('runs', 'SELECT')",
                    &[],
                )
                .map_err(|e| net::classify(&me.name, "reading", &e))?;
            Ok(ServerStatus {
                version: row.get(0),
                known: server::known_version(),
                role: row.get(1),
                may_submit: row.get(2),
                may_read: row.get(3),
            })
        })
    }

    /// Create or upgrade the schema and (re)apply lineage's grants: `lineage team migrate`.
    /// Returns the schema version, and what was repaired.
    pub fn migrate(&self) -> Result<(i64, Option<String>)> {
        let me = self.clone();
        net::within(
            &self.name,
            Limits::steps(self.timeout.max(Duration::from_secs(60))),
            move |_| {
                let (_, repaired) = me.connect_and_prepare(true)?;
                Ok((server::known_version(), repaired))
            },
        )
    }
}

/// `url` with `:PORT` after its host when it names a host and no port, and `port` is one.
fn with_default_port(url: &str, port: Option<&str>) -> String {
    let Some(port) = port.filter(|p| p.parse::<u16>().is_ok()) else {
        return url.to_string();
    };
    let Some((scheme, after)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let authority = &after[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let has_port = if host.starts_with('[') {
        host.contains("]:")
    } else {
        host.contains(':')
    };
    if host.is_empty() || has_port || host.contains(',') {
        return url.to_string();
    }
    format!("{scheme}://{authority}:{port}{}", &after[end..])
}

/// The URL without its `sslmode` and `sslrootcert` parameters, and their values
/// (percent-decoded). The query starts at the first `?` after the first `@`, as
/// rust-postgres reads it.
fn take_tls_params(url: &str) -> Result<(String, Option<String>, Option<String>)> {
    let after_creds = url.find('@').map_or(0, |i| i + 1);
    let Some(q) = url[after_creds..].find('?').map(|i| i + after_creds) else {
        return Ok((url.to_string(), None, None));
    };
    let (mut mode, mut root) = (None, None);
    let mut kept = Vec::new();
    for param in url[q + 1..].split('&') {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let (slot, name) = match percent_decode(key).as_deref() {
            Ok("sslmode") => (&mut mode, "sslmode"),
            Ok("sslrootcert") => (&mut root, "sslrootcert"),
            _ => {
                kept.push(param);
                continue;
            }
        };
        let value = percent_decode(value).map_err(|()| {
            anyhow!("the team store URL's {name} is not valid UTF-8 once percent-decoded")
        })?;
        *slot = Some(value);
    }
    let mut rest = url[..q].to_string();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok((rest, mode, root))
}

fn percent_decode(s: &str) -> std::result::Result<String, ()> {
    let hex = |c: &u8| (*c as char).to_digit(16);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).and_then(hex), b.get(i + 2).and_then(hex))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(drop)
}

/// Whether `url` is one of lineage's own arguments, which every user of the machine can read
/// (`ps`, /proc/PID/cmdline), unlike its environment.
fn on_command_line(url: &str) -> bool {
    !url.is_empty()
        && std::env::args_os().any(|a| {
            let a = a.as_encoded_bytes();
            a.windows(url.len()).any(|w| w == url.as_bytes())
        })
}

fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let s = e.to_string();
            match std::error::Error::source(e) {
                Some(src) => format!("{s}: {src}"),
                None => s,
            }
        }
    }
}

fn chain(e: &anyhow::Error) -> String {
    match e.downcast_ref::<postgres::Error>() {
        Some(pg) => describe(pg),
        None => format!("{e:#}"),
    }
}

/// The password for a connection from the pgpass file (`PGPASSFILE` or `~/.pgpass`), which
/// libpq ignores unless it is private to its owner; so does this.
fn pgpass(
    host: &str,
    port: u16,
    db: &str,
    user: &str,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(&path).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        warnings.push(format!(
            "{} ignored: it must be readable by you only (chmod 600)",
            path.display()
        ));
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let port = port.to_string();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() != 5 {
            continue;
        }
        let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        let host_ok = matches(&fields[0], host)
            || (fields[0] == "localhost" && (host == "127.0.0.1" || host.starts_with('/')));
        if host_ok
            && matches(&fields[1], &port)
            && matches(&fields[2], db)
            && matches(&fields[3], user)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

/// `host:port:db:user:password`, with `\:` and `\\` escapes.
fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().expect("one field").push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_lines_split_on_unescaped_colons() {
        assert_eq!(
            split_pgpass(r"db.internal:5432:*:ada:pa\:ss\\word"),
            ["db.internal", "5432", "*", "ada", r"pa:ss\word"]
        );
    }

    #[test]
    fn libpq_tls_parameters_are_taken_out_of_the_url() {
        let (rest, mode, root) = take_tls_params(
            "postgres://ada:p?w@db/lineage?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca%20x.pem",
        )
        .expect("parses");
        assert_eq!(rest, "postgres://ada:p?w@db/lineage?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/etc/ca x.pem"));
        let (rest, mode, root) =
            take_tls_params("postgres://db/lineage?sslmode=allow").expect("parses");
        assert_eq!(rest, "postgres://db/lineage");
        assert_eq!((mode.as_deref(), root), (Some("allow"), None));
        let (rest, mode, _) = take_tls_params("postgres://db/lineage").expect("parses");
        assert_eq!((rest.as_str(), mode), ("postgres://db/lineage", None));
    }

    #[test]
    fn every_libpq_sslmode_parses_and_a_bad_one_is_named_without_the_url() {
        for mode in tls::MODES {
            let r = Remote::parse(&format!(
                "postgres://ada:hunter2@db.internal/lineage?sslmode={mode}&sslrootcert=/ca.pem"
            ))
            .expect("a libpq sslmode");
            assert_eq!(r.tls.mode, *mode);
            assert_eq!(r.name, "postgres://ada@db.internal:5432/lineage");
        }
        let e = Remote::parse("postgres://ada:hunter2@db.internal/lineage?sslmode=verify")
            .expect_err("not a mode")
            .to_string();
        assert!(!e.contains("hunter2") && !e.contains("db.internal"), "{e}");
        assert!(e.contains("\"verify\"") && e.contains("verify-full"), "{e}");
    }

    #[test]
    fn pgport_gives_the_port_a_url_leaves_out() {
        let p = |u: &str| with_default_port(u, Some("6543"));
        assert_eq!(p("postgres://ada@db/lin"), "postgres://ada@db:6543/lin");
        assert_eq!(p("postgres://ada:pw@db"), "postgres://ada:pw@db:6543");
        assert_eq!(
            p("postgres://ada@db:5433/lin"),
            "postgres://ada@db:5433/lin"
        );
        assert_eq!(
            p("postgres://ada@[::1]/lin"),
            "postgres://ada@[::1]:6543/lin"
        );
        assert_eq!(
            p("postgres://ada@[::1]:5/lin"),
            "postgres://ada@[::1]:5/lin"
        );
        assert_eq!(p("postgres:///lin"), "postgres:///lin");
        assert_eq!(
            with_default_port("postgres://db/x", Some("no")),
            "postgres://db/x"
        );
    }

    #[test]
    fn the_name_never_holds_the_password() {
        let r = Remote::parse("postgres://ada:hunter2@db.internal:6543/lineage").expect("parses");
        assert_eq!(r.name, "postgres://ada@db.internal:6543/lineage");
        assert!(!format!("{r:?}").contains("hunter2"));
        let e = Remote::parse("postgres://ada:hunter2@db.internal:notaport/x")
            .expect_err("bad port")
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
