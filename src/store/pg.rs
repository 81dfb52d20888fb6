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

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use postgres::types::ToSql;
use rusqlite::OpenFlags;
use rusqlite::types::Value;

use super::Store;
use super::bundle::{self, Selection};
use super::schema::{self, Kind, SERVER_ONLY, SYNCED, Table};

const PG_MIGRATIONS: &[&str] = &[
    include_str!("pg_migrations/0001_init.sql"),
    include_str!("pg_migrations/0002_signatures.sql"),
    include_str!("pg_migrations/0003_row_security.sql"),
    include_str!("pg_migrations/0004_written.sql"),
];

/// Serializes pushes (and schema changes) on the server, so `runs.seq` is in commit order.
const PUSH_LOCK: i64 = 0x006c_696e_6561_6765; // "lineage"

/// A team store: where it is and how to log in.
#[derive(Clone)]
pub struct Remote {
    /// `postgres://user@host:port/db`: the URL without its password, safe to print.
    pub name: String,
    config: postgres::Config,
    /// What the caller should warn about (a pgpass file others can read, ignored).
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl Remote {
    pub fn parse(url: &str) -> Result<Remote> {
        // The parser's messages may quote the URL, password included: not repeated here.
        let mut config: postgres::Config = url.parse().map_err(|_| {
            anyhow!("the team store is not a valid postgres://USER@HOST[:PORT]/DATABASE URL")
        })?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
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
        if config.get_password().is_none() {
            if let Some(p) = env("PGPASSWORD") {
                config.password(p);
            } else if let Some(p) = pgpass(&host, port, &db, &user, &mut warnings) {
                config.password(p);
            }
        }
        // A value that is not a positive number of seconds (a Duration) is ignored.
        let timeout = env("LINEAGE_PG_TIMEOUT")
            .and_then(|s| s.parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(5));
        config.connect_timeout(timeout);
        Ok(Remote {
            name: format!("postgres://{user}@{host}:{port}/{db}"),
            config,
            warnings,
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

    /// Connect, creating or upgrading the schema when it is behind.
    pub fn connect(&self) -> Result<postgres::Client> {
        let mut client = self.config.connect(tls()?).map_err(|e| {
            anyhow!(
                "cannot reach the team store {}: {}",
                self.name,
                describe(&e)
            )
        })?;
        migrate(&mut client).with_context(|| format!("preparing the team store {}", self.name))?;
        check_server(&mut client, &self.name)?;
        Ok(client)
    }

    /// Deliver this store's finished runs the server does not have yet. Returns how many.
    pub fn push(&self, store: &Store) -> Result<usize> {
        let pending = store.pending_push(&self.name)?;
        crate::timing::mark("team store: runs to deliver listed");
        if pending.ids.is_empty() {
            store.push_done(&self.name, &pending)?;
            return Ok(0);
        }
        let ids = &pending.ids;
        let mut client = self.connect()?;
        crate::timing::mark("team store: connected");
        let mut sent = 0;
        for chunk in ids.chunks(500) {
            let tmp = bundle::scratch(&std::env::temp_dir(), "push")?;
            let result = (|| -> Result<()> {
                store.export_bundle(
                    tmp.path(),
                    &Selection {
                        since: None,
                        runs: Some(chunk.to_vec()),
                    },
                )?;
                crate::timing::mark("team store: bundle written");
                let bundle = rusqlite::Connection::open_with_flags(
                    tmp.path(),
                    OpenFlags::SQLITE_OPEN_READ_ONLY,
                )?;
                let mut tx = client.transaction()?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PUSH_LOCK])?;
                crate::timing::mark("team store: lock taken");
                // A run the server has already (delivered from another machine that held
                // it too) never changes: its rows are not sent again.
                let here: BTreeSet<String> = tx
                    .query("SELECT id FROM runs WHERE id = ANY($1)", &[&chunk.to_vec()])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                for table in SYNCED {
                    upload(&bundle, &mut tx, table, &here)?;
                }
                crate::timing::mark("team store: rows sent");
                tx.commit()?;
                crate::timing::mark("team store: committed");
                Ok(())
            })();
            result.map_err(|e| anyhow!("delivering runs to {}: {}", self.name, chain(&e)))?;
            store.mark_pushed(&self.name, chunk)?;
            sent += chunk.len();
        }
        store.push_done(&self.name, &pending)?;
        Ok(sent)
    }

    /// Fetch the runs that reached the server since the last pull. Returns how many were new
    /// here (the server also sends back runs this store delivered itself).
    pub fn pull(&self, store: &mut Store) -> Result<usize> {
        let mut client = self.connect()?;
        let mut got = 0;
        loop {
            let since = store.pulled_seq(&self.name)?;
            let rows = client
                .query(
                    "SELECT seq, id FROM runs WHERE seq > $1 ORDER BY seq LIMIT 2000",
                    &[&since],
                )
                .map_err(|e| anyhow!("reading {}: {}", self.name, describe(&e)))?;
            if rows.is_empty() {
                return Ok(got);
            }
            let last: i64 = rows.last().map_or(since, |r| r.get(0));
            let ids: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
            let tmp = bundle::scratch(&std::env::temp_dir(), "pull")?;
            download(&mut client, store, &ids, tmp.path())
                .map_err(|e| anyhow!("reading {}: {}", self.name, chain(&e)))?;
            let added = store.import_bundle(tmp.path())?;
            store.mark_pushed(&self.name, &ids)?;
            store.set_pulled_seq(&self.name, last)?;
            got += added.of("runs");
        }
    }
}

/// TLS as libpq's `sslmode` asks (the URL's `?sslmode=`, default `prefer`: encrypted when
/// the server offers it), always verifying the server's certificate: against the public web
/// roots (Mozilla's), and like libpq against `PGSSLROOTCERT` or `~/.postgresql/root.crt` for a
/// private CA.
fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let private = std::env::var_os("PGSSLROOTCERT")
        .map(PathBuf::from)
        .or_else(|| {
            let p = PathBuf::from(std::env::var_os("HOME")?).join(".postgresql/root.crt");
            p.exists().then_some(p)
        });
    if let Some(path) = private {
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| anyhow!("reading the CA certificates in {}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| anyhow!("a certificate in {}: {e}", path.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("setting up TLS")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
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

fn migrate(client: &mut postgres::Client) -> Result<()> {
    let known = PG_MIGRATIONS.len() as i64;
    let now = schema_version(client)?;
    if now == known {
        return Ok(());
    }
    if now > known {
        bail!(
            "its schema (version {now}) is newer than this lineage knows ({known}): upgrade lineage"
        );
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PUSH_LOCK])?;
    let now = schema_version(&mut tx)?;
    if now == 0 {
        tx.batch_execute("CREATE TABLE IF NOT EXISTS lineage_schema (version BIGINT NOT NULL); INSERT INTO lineage_schema VALUES (0);")?;
    }
    for (i, sql) in PG_MIGRATIONS.iter().enumerate().skip(now as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "UPDATE lineage_schema SET version = $1",
            &[&((i + 1) as i64)],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn schema_version(c: &mut impl postgres::GenericClient) -> Result<i64> {
    // A query on pg_class (this statement's snapshot), not to_regclass (the catalog cache,
    // which may not yet see a schema another client created while we waited for the lock).
    let exists: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relname = 'lineage_schema' AND n.nspname = current_schema())",
            &[],
        )?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(c.query_one("SELECT version FROM lineage_schema", &[])?
        .get(0))
}

/// Check the server's tables against the synced list (`schema`): every column known (or the
/// server's own), none missing, each of the expected type. A team store written by a newer
/// lineage, or altered by hand, is refused before any row moves either way.
fn check_server(client: &mut impl postgres::GenericClient, name: &str) -> Result<()> {
    let rows = client.query(
        "SELECT table_name::text, column_name::text, data_type::text
         FROM information_schema.columns
         WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
        &[],
    )?;
    let what = format!("team store {name}");
    for table in SYNCED {
        let theirs: Vec<(String, String)> = rows
            .iter()
            .filter(|r| r.get::<_, String>(0) == table.name)
            .map(|r| (r.get(1), r.get(2)))
            .collect();
        let names: Vec<String> = theirs.iter().map(|(n, _)| n.clone()).collect();
        schema::check_columns(table, &names, None, SERVER_ONLY, &what)
            .map_err(anyhow::Error::msg)?;
        for (column, ty) in &theirs {
            let Some(c) = table.column(column) else {
                continue; // the server's own
            };
            // Exactly the types lineage creates and reads (an `integer` column does not
            // read as the 64-bit integer lineage expects).
            let fits = match c.kind {
                Kind::Int => ty == "bigint",
                Kind::Bytes => ty == "bytea",
                Kind::Text => ty == "text",
            };
            if !fits {
                bail!(
                    "{what}: column {}.{column} is of type {ty}, not the one lineage writes: \
                     it was altered by hand; nothing was copied",
                    table.name
                );
            }
        }
    }
    Ok(())
}

/// One SQLite value as a parameter of the column's PostgreSQL type.
fn param(v: Value, kind: Kind) -> Box<dyn ToSql + Sync> {
    match (kind, v) {
        (Kind::Int, Value::Integer(i)) => Box::new(Some(i)),
        (Kind::Int, Value::Real(f)) => Box::new(Some(f as i64)),
        (Kind::Int, Value::Text(t)) => Box::new(t.parse::<i64>().ok()),
        (Kind::Int, _) => Box::new(None::<i64>),
        (Kind::Bytes, Value::Blob(b)) => Box::new(Some(b)),
        (Kind::Bytes, Value::Text(t)) => Box::new(Some(t.into_bytes())),
        (Kind::Bytes, _) => Box::new(None::<Vec<u8>>),
        (Kind::Text, Value::Text(t)) => Box::new(Some(t)),
        (Kind::Text, Value::Integer(i)) => Box::new(Some(i.to_string())),
        (Kind::Text, Value::Real(f)) => Box::new(Some(f.to_string())),
        (Kind::Text, Value::Blob(b)) => Box::new(Some(String::from_utf8_lossy(&b).into_owned())),
        (Kind::Text, Value::Null) => Box::new(None::<String>),
    }
}

/// Insert a bundle table's rows on the server, skipping manifests and blobs it has, and the
/// rows of the runs in `here` (which it had before this push).
fn upload(
    bundle: &rusqlite::Connection,
    tx: &mut postgres::Transaction,
    t: &Table,
    here: &BTreeSet<String>,
) -> Result<()> {
    let table = t.name;
    let mut stmt = bundle.prepare(&format!("SELECT {} FROM {table}", t.column_list()))?;
    let cols: Vec<(usize, &str, Kind)> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.name, c.kind))
        .collect();
    let skip: BTreeSet<String> = match table {
        "dir_entries" => {
            let dirs: Vec<String> = bundle
                .prepare("SELECT DISTINCT dir_hash FROM dir_entries")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            tx.query(
                "SELECT DISTINCT dir_hash FROM dir_entries WHERE dir_hash = ANY($1)",
                &[&dirs],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect()
        }
        "blobs" => {
            let hashes: Vec<String> = bundle
                .prepare("SELECT hash FROM blobs")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            tx.query("SELECT hash FROM blobs WHERE hash = ANY($1)", &[&hashes])?
                .iter()
                .map(|r| r.get(0))
                .collect()
        }
        "runs" | "edges" | "params" | "signatures" => here.clone(),
        _ => BTreeSet::new(),
    };
    let per_statement = (30_000 / cols.len().max(1)).clamp(1, 1000);
    let mut batch: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    let mut rows_in_batch = 0;
    let flush = |tx: &mut postgres::Transaction,
                 batch: &mut Vec<Box<dyn ToSql + Sync>>,
                 rows: &mut usize|
     -> Result<()> {
        if *rows == 0 {
            return Ok(());
        }
        let width = cols.len();
        let values: Vec<String> = (0..*rows)
            .map(|r| {
                let ps: Vec<String> = (0..width)
                    .map(|c| format!("${}", r * width + c + 1))
                    .collect();
                format!("({})", ps.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {} ON CONFLICT DO NOTHING",
            cols.iter()
                .map(|(_, n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
            values.join(", ")
        );
        let refs: Vec<&(dyn ToSql + Sync)> = batch.iter().map(|b| b.as_ref()).collect();
        tx.execute(sql.as_str(), &refs)?;
        batch.clear();
        *rows = 0;
        Ok(())
    };
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if !skip.is_empty() {
            let key: String = row.get(0)?; // dir_hash / hash / id / run_id come first
            if skip.contains(&key) {
                continue;
            }
        }
        for (i, _, kind) in &cols {
            batch.push(param(row.get::<_, Value>(*i)?, *kind));
        }
        rows_in_batch += 1;
        if rows_in_batch == per_statement {
            flush(tx, &mut batch, &mut rows_in_batch)?;
        }
    }
    flush(tx, &mut batch, &mut rows_in_batch)?;
    Ok(())
}

/// Write the server's rows for `ids` (and what they refer to, minus manifests and blobs the
/// local store has) into a new bundle at `path`.
fn download(
    client: &mut postgres::Client,
    store: &Store,
    ids: &[String],
    path: &Path,
) -> Result<()> {
    let bundle = bundle::create(path)?;
    bundle.execute(
        "INSERT INTO bundle_meta VALUES ('format', ?1)",
        [bundle::FORMAT],
    )?;
    bundle.pragma_update(None, "foreign_keys", "OFF")?;
    let tx = bundle.unchecked_transaction()?;
    let copy = |client: &mut postgres::Client,
                table: &str,
                filter: &str,
                arg: &(dyn ToSql + Sync)|
     -> Result<usize> {
        let t = schema::table(table).with_context(|| format!("{table} is not synced"))?;
        let cols: Vec<(&str, Kind)> = t.columns.iter().map(|c| (c.name, c.kind)).collect();
        let list = t.column_list();
        let rows = client.query(
            format!("SELECT {list} FROM {table} WHERE {filter}").as_str(),
            &[arg],
        )?;
        let marks = (1..=cols.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut insert = tx.prepare(&format!(
            "INSERT OR IGNORE INTO {table} ({list}) VALUES ({marks})"
        ))?;
        for row in &rows {
            // try_get: a value of another type is an error naming the column, not a panic.
            let values = cols
                .iter()
                .enumerate()
                .map(|(i, (name, kind))| {
                    let value = match kind {
                        Kind::Int => row
                            .try_get::<_, Option<i64>>(i)
                            .map(|v| v.map_or(Value::Null, Value::Integer)),
                        Kind::Bytes => row
                            .try_get::<_, Option<Vec<u8>>>(i)
                            .map(|v| v.map_or(Value::Null, Value::Blob)),
                        Kind::Text => row
                            .try_get::<_, Option<String>>(i)
                            .map(|v| v.map_or(Value::Null, Value::Text)),
                    };
                    value.with_context(|| format!("reading {table}.{name}"))
                })
                .collect::<Result<Vec<Value>>>()?;
            insert.execute(rusqlite::params_from_iter(values))?;
        }
        Ok(rows.len())
    };
    let ids: Vec<String> = ids.to_vec();
    copy(client, "runs", "id = ANY($1)", &ids)?;
    copy(client, "edges", "run_id = ANY($1)", &ids)?;
    copy(client, "params", "run_id = ANY($1)", &ids)?;
    copy(client, "signatures", "run_id = ANY($1)", &ids)?;
    let artifacts: Vec<String> = {
        let mut s = tx.prepare("SELECT DISTINCT artifact FROM edges WHERE artifact IS NOT NULL")?;
        s.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    copy(client, "artifacts", "hash = ANY($1)", &artifacts)?;
    copy(client, "extra_digests", "artifact = ANY($1)", &artifacts)?;
    // Manifests and blobs this store already has are not fetched again.
    let dirs: Vec<String> = {
        let mut s = tx.prepare("SELECT hash FROM artifacts WHERE kind = 'dir'")?;
        s.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    let missing_dirs: Vec<String> = dirs
        .into_iter()
        .filter(|d| !store.has_manifest(d))
        .collect();
    copy(client, "dir_entries", "dir_hash = ANY($1)", &missing_dirs)?;
    let refs = bundle::blob_refs(
        &tx,
        "SELECT id, capture FROM runs",
        "SELECT artifact FROM edges WHERE role = 'config' AND artifact IS NOT NULL",
    )?;
    let wanted: Vec<String> = refs.into_iter().filter(|h| !store.has_blob(h)).collect();
    copy(client, "blobs", "hash = ANY($1)", &wanted)?;
    tx.commit()?;
    Ok(())
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
