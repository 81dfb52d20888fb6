//! The lineage store: one SQLite file, `lineage.db`, in a user-only directory. All SQL lives
//! in this module. Runs are written in two short transactions, `running` before the job starts
//! and finalized after it ends; no transaction is held while the job runs. Artifacts, directory
//! manifests and blobs are content-addressed and inserted idempotently.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

pub mod bundle;
pub mod doctor;
pub mod graph;
pub mod pg;

use crate::error::Error;
use crate::model::{
    ArtifactKind, ArtifactRef, Capture, Edge, EdgeRecord, Hash, Param, Resources, Role, RunRecord,
    RunSummary, Status,
};

/// Numbered migrations; the schema version is the number applied (`PRAGMA user_version`).
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_pid_start.sql"),
    include_str!("migrations/0003_stat_cache.sql"),
    include_str!("migrations/0004_dir_cache.sql"),
    include_str!("migrations/0005_input_sizes.sql"),
    include_str!("migrations/0006_pending_manifests.sql"),
    include_str!("migrations/0007_extra_digests.sql"),
    include_str!("migrations/0008_sync.sql"),
];

/// Manifest entries held in memory while a run is prepared; beyond this many, they spill to
/// a temporary table on disk, so memory stays bounded whatever the size of a directory.
const STAGE_IN_MEMORY: usize = 50_000;

/// Directory manifests hashed for the run being recorded, by token, until written with its
/// edges. Most are of directories already in the store and are then dropped unwritten.
#[derive(Default)]
struct Staged {
    memory: std::collections::HashMap<String, Vec<crate::model::DirEntry>>,
    in_memory: usize,
    /// Tokens with rows in `temp.staged_entries`.
    spilled: std::collections::HashSet<String>,
}

pub const DB_FILE: &str = "lineage.db";
const KEY_FILE: &str = "secret.key";

/// Shortest run-id prefix ever printed.
const MIN_SHORT_ID: usize = 8;

/// What a store has to deliver to a team store (`Store::pending_push`).
#[derive(Debug, Default)]
pub struct PendingPush {
    /// Finished runs the team store does not have, in the order they were recorded.
    pub ids: Vec<String>,
    /// The highest rowid looked at.
    upto: i64,
    /// Runs still going: looked at again next time.
    running: Vec<String>,
}

pub struct Store {
    conn: Connection,
    dir: PathBuf,
    /// Set when the store runs in its network-filesystem mode (the caller warns).
    pub notice: Option<String>,
    staged: std::cell::RefCell<Staged>,
    /// Stat-cache rows learned but not yet written: written while the job runs
    /// (`idle_work`), so a first run does not wait for them before launch.
    learned: std::cell::RefCell<Vec<(crate::hash::StatKey, Hash)>>,
    /// (token, directory hash) of new directories whose manifests are still to be written
    /// (`write_deferred`, while the job runs).
    deferred: std::cell::RefCell<Vec<(String, String)>>,
    /// Pages in the WAL after this connection's last commit (SQLite's WAL hook reports it).
    wal_pages: std::sync::Arc<std::sync::atomic::AtomicI32>,
}

/// Learned stat-cache rows held in memory at most (about 7 MB); more are written at once.
const LEARNED_IN_MEMORY: usize = 100_000;

/// A WAL longer than this is checkpointed when the store is closed.
const CHECKPOINT_PAGES: i32 = 128;

impl Drop for Store {
    fn drop(&mut self) {
        self.write_deferred();
        self.write_learned();
        // The first connection to open the store reads the whole WAL to rebuild its index,
        // and a checkpoint alone does not shorten it for the next process: let this close
        // checkpoint and remove the WAL (when no other connection has the store open).
        if self.wal_pages() > CHECKPOINT_PAGES {
            let _ = self
                .conn
                .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false);
        }
    }
}

/// How the store journals its writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Journal {
    /// Write-ahead log: fast, readers never block writers; needs shared memory, so local disks only.
    Wal,
    /// Rollback journal with POSIX locks: safe on NFS, CIFS and cluster filesystems.
    Delete,
}

/// The journal mode for a store directory: `LINEAGE_STORE_JOURNAL` (wal or delete) when set,
/// otherwise WAL unless the directory is on a network or cluster filesystem.
pub fn journal_for(dir: &Path) -> (Journal, Option<String>) {
    match std::env::var("LINEAGE_STORE_JOURNAL").ok().as_deref() {
        Some("wal") => return (Journal::Wal, None),
        Some("delete") => return (Journal::Delete, None),
        _ => {}
    }
    match crate::host::network_filesystem(dir) {
        Some(name) => (
            Journal::Delete,
            Some(format!(
                "store {} is on {name}: using a rollback journal instead of WAL (slower, safe across hosts)",
                dir.display()
            )),
        ),
        None => (Journal::Wal, None),
    }
}

/// Everything written before the job starts.
pub struct NewRun<'a> {
    pub id: &'a str,
    pub argv: &'a [Vec<u8>],
    pub cwd: &'a [u8],
    pub started_at: &'a str,
    pub pid: u32,
    /// The run this one reproduces (`lineage rerun`).
    pub rerun_of: Option<&'a str>,
    pub capture: &'a Capture,
    pub edges: &'a [Edge],
    pub params: &'a [Param],
    /// (hash, bytes) of configs, patches, untracked files and package lists.
    pub blobs: &'a [(Hash, Vec<u8>)],
}

/// Everything written after the job ends.
pub struct Finish<'a> {
    pub status: Status,
    pub ended_at: &'a str,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub capture: &'a Capture,
    pub resources: &'a Resources,
    /// Output edges (appended after the input and config edges).
    pub outputs: &'a [Edge],
    /// Positions (among input edges) of inputs modified while the job ran.
    pub changed_inputs: &'a [usize],
}

/// The most recent runs of the store in `dir` whose id starts with `prefix`, newest first,
/// with their argv (for shell completion): read without creating, migrating or waiting long
/// on the store; nothing when it cannot be read.
pub fn recent_runs(dir: &Path, prefix: &str, limit: usize) -> Vec<(String, Vec<Vec<u8>>)> {
    let db = dir.join(DB_FILE);
    if !db.exists() {
        return Vec::new();
    }
    let Ok(conn) = Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let _ = conn.busy_timeout(Duration::from_millis(200));
    let rows = conn
        .prepare(
            "SELECT id, argv FROM runs WHERE id LIKE ?1 || '%' ORDER BY started_at DESC LIMIT ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![prefix, limit as i64], |r| {
                Ok((r.get::<_, String>(0)?, split_argv(&r.get::<_, Vec<u8>>(1)?)))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        });
    rows.unwrap_or_default()
}

impl Store {
    /// Open (creating user-only if needed) and migrate the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| Error::StoreOpen {
            path: dir.display().to_string(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail(e.into()))?;
        // The store must be the user's own, wherever a symlink leads: another user's
        // directory could read the records or feed forged ones.
        let me = nix::unistd::getuid().as_raw();
        let owner = std::os::unix::fs::MetadataExt::uid(
            &std::fs::metadata(dir).map_err(|e| fail(e.into()))?,
        );
        if owner != me {
            return Err(Error::StoreNotOwned {
                path: dir.display().to_string(),
                owner,
                me,
            });
        }
        let db = dir.join(DB_FILE);
        // Create the database file 0600 first: SQLite gives its WAL and shm files the
        // database file's permissions.
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&db)
            .map_err(|e| fail(e.into()))?;
        let conn = Connection::open(&db).map_err(|e| fail(e.into()))?;
        let (journal, notice) = journal_for(dir);
        let mut store = Store {
            conn,
            dir: dir.to_path_buf(),
            notice,
            staged: Default::default(),
            learned: Default::default(),
            deferred: Default::default(),
            wal_pages: Default::default(),
        };
        store.configure(journal).map_err(|e| fail(e.into()))?;
        store.migrate(&db)?;
        // Best effort: a failure here must not stop the command that opened the store.
        let _ = store.reap_stale();
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn wal_pages(&self) -> i32 {
        self.wal_pages.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn configure(&mut self, journal: Journal) -> Result<()> {
        self.conn.busy_timeout(Duration::from_secs(30))?;
        match journal {
            Journal::Wal => {
                self.conn
                    .pragma_update(None, "journal_mode", "WAL")
                    .context("enabling WAL")?;
                self.conn.pragma_update(None, "synchronous", "NORMAL")?;
            }
            Journal::Delete => {
                self.conn
                    .pragma_update(None, "journal_mode", "DELETE")
                    .context("choosing the rollback journal")?;
                self.conn.pragma_update(None, "synchronous", "FULL")?;
            }
        }
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        // Staged manifests can hold millions of rows: keep temporary tables on disk.
        self.conn.pragma_update(None, "temp_store", "FILE")?;
        // Checkpoint when this process closes the store (see `Drop`), and only once the WAL
        // has grown past CHECKPOINT_PAGES: never in a commit before the job starts, and not
        // with an fsync at every close. A short WAL keeps the next open fast.
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        let pages = std::sync::Arc::clone(&self.wal_pages);
        self.conn.wal_hook(Some(
            move |_: &mut rusqlite::hooks::Wal, n: std::ffi::c_int| {
                pages.store(n, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            },
        ))?;
        Ok(())
    }

    fn migrate(&mut self, db: &Path) -> Result<(), Error> {
        let known = MIGRATIONS.len() as i64;
        let fail = |e: rusqlite::Error| Error::StoreOpen {
            path: db.display().to_string(),
            source: e.into(),
        };
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(fail)?;
        if version > known {
            return Err(Error::StoreTooNew {
                path: db.display().to_string(),
                found: version,
                known,
            });
        }
        if version == known {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Another process may have migrated while we waited for the lock.
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(fail)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(fail)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(fail)?;
        }
        tx.commit().map_err(fail)
    }

    /// Mark `interrupted` the runs of this host still `running` whose lineage process is gone
    /// (killed, or the host rebooted). Returns how many. Runs of other hosts are left alone:
    /// they cannot be checked from here.
    pub fn reap_stale(&mut self) -> Result<usize> {
        let host = crate::host::hostname();
        let boot = crate::host::boot_id();
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, hostname, pid, boot_id, pid_start FROM runs WHERE status = 'running'",
        )?;
        let running = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<u32>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        let mut stale = Vec::new();
        for (id, hostname, pid, boot_id, pid_start) in running {
            if hostname.is_none() || hostname != host {
                continue;
            }
            let gone = boot_id != boot
                || match (pid, pid_start) {
                    (Some(pid), Some(start)) => {
                        crate::host::process_start(pid).map(|s| s as i64) != Some(start)
                    }
                    (Some(pid), None) => crate::host::process_start(pid).is_none(),
                    _ => false,
                };
            if gone {
                stale.push(id);
            }
        }
        if stale.is_empty() {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for id in &stale {
            tx.execute(
                "UPDATE runs SET status = 'interrupted' WHERE id = ?1 AND status = 'running'",
                [id],
            )?;
        }
        tx.commit()?;
        Ok(stale.len())
    }

    /// The per-store key for fingerprints of redacted secrets (created on first use, 0600).
    pub fn secret_key(&self) -> Result<[u8; 32]> {
        let path = self.dir.join(KEY_FILE);
        let mut key = [0u8; 32];
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                getrandom::fill(&mut key)
                    .map_err(|e| anyhow::anyhow!("generating the store key: {e}"))?;
                f.write_all(&key)
                    .with_context(|| format!("writing {}", path.display()))?;
                f.sync_all()?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let mut f = std::fs::File::open(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let mut buf = Vec::with_capacity(32);
                f.read_to_end(&mut buf)?;
                if buf.len() != 32 {
                    // A concurrent creator may still be writing it: try once more.
                    std::thread::sleep(Duration::from_millis(50));
                    buf = std::fs::read(&path)?;
                }
                key = buf
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("{} is not a 32-byte key", path.display()))?;
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
        Ok(key)
    }

    /// Stage a chunk of a directory's manifest while it is being hashed, before the run is
    /// written: in memory, spilling to a TEMP table (private to this connection, no lock on
    /// the store) past STAGE_IN_MEMORY entries.
    pub fn stage(&self, token: &str, entries: &[crate::model::DirEntry]) -> std::io::Result<()> {
        let mut staged = self.staged.borrow_mut();
        staged
            .memory
            .entry(token.to_string())
            .or_default()
            .extend_from_slice(entries);
        staged.in_memory += entries.len();
        if staged.in_memory <= STAGE_IN_MEMORY {
            return Ok(());
        }
        let spill = || -> rusqlite::Result<()> {
            self.conn.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS staged_entries (
                     token TEXT NOT NULL, path TEXT NOT NULL, file_hash TEXT NOT NULL,
                     size INTEGER NOT NULL, executable INTEGER NOT NULL)",
            )?;
            let tx = self.conn.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO temp.staged_entries (token, path, file_hash, size, executable)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for (token, entries) in &staged.memory {
                    for e in entries {
                        stmt.execute(params![
                            token,
                            e.path,
                            e.hash.to_hex(),
                            e.size as i64,
                            e.executable
                        ])?;
                    }
                }
            }
            tx.commit()
        };
        spill().map_err(std::io::Error::other)?;
        let staged = &mut *staged;
        staged.spilled.extend(staged.memory.drain().map(|(t, _)| t));
        staged.in_memory = 0;
        Ok(())
    }

    /// Write the stat-cache rows learned so far (best effort: a cache that cannot be written
    /// only costs a re-hash next time).
    pub fn write_learned(&self) {
        let learned = std::mem::take(&mut *self.learned.borrow_mut());
        if learned.is_empty() {
            return;
        }
        let write = || -> rusqlite::Result<()> {
            let tx = self.conn.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR REPLACE INTO stat_cache (dev, ino, size, mtime_ns, ctime_ns, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for (k, h) in &learned {
                    stmt.execute(params![
                        k.dev as i64,
                        k.ino as i64,
                        k.size as i64,
                        k.mtime_ns,
                        k.ctime_ns,
                        h.to_hex()
                    ])?;
                }
            }
            tx.commit()
        };
        let _ = write();
    }

    /// Bookkeeping that need not delay the job, done while it runs: the manifests of new
    /// directory inputs, the stat-cache rows learned before launch, then a checkpoint if the
    /// WAL has grown (so the one on close is short).
    pub fn idle_work(&self) {
        self.write_deferred();
        crate::timing::mark("manifests written");
        self.write_learned();
        crate::timing::mark("stat cache written");
        if self.wal_pages() > CHECKPOINT_PAGES {
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            crate::timing::mark("checkpointed");
        }
    }

    /// How many files the directory input at `abs_path` held when last recorded.
    pub fn input_size(&self, abs_path: &[u8]) -> Option<u64> {
        self.conn
            .prepare_cached("SELECT file_count FROM input_sizes WHERE abs_path = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([abs_path], |r| r.get::<_, i64>(0))
                    .optional()
            })
            .ok()
            .flatten()
            .map(|n| n as u64)
    }

    /// Remember how many files directory inputs held (best effort).
    pub fn note_input_sizes(&self, sizes: &[(Vec<u8>, u64)]) {
        for (path, count) in sizes {
            let _ = self.conn.execute(
                "INSERT OR REPLACE INTO input_sizes (abs_path, file_count) VALUES (?1, ?2)",
                params![path, *count as i64],
            );
        }
    }

    /// Forget every staged manifest (before preparing a new run).
    pub fn discard_staged(&self) {
        self.write_deferred();
        let mut staged = self.staged.borrow_mut();
        if !staged.spilled.is_empty() {
            let _ = self.conn.execute("DELETE FROM temp.staged_entries", []);
        }
        *staged = Staged::default();
    }

    /// Phase one: the run as `running`, with its inputs, configs, params and blobs.
    pub fn begin_run(&mut self, run: &NewRun) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let git = run.capture.git.as_ref();
        tx.execute(
            "INSERT INTO runs (id, status, argv, cwd, started_at, hostname, pid, boot_id,
                               git_commit, git_dirty, code_hash, capture, rerun_of, pid_start)
             VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                run.id,
                join_argv(run.argv),
                run.cwd,
                run.started_at,
                run.capture.system.hostname,
                run.pid,
                run.capture.system.boot_id,
                git.and_then(|g| g.commit.as_deref()),
                git.map(|g| g.dirty),
                git.map(|g| g.code.to_hex()),
                serde_json::to_string(run.capture)?,
                run.rerun_of,
                crate::host::process_start(run.pid).map(|s| s as i64),
            ],
        )?;
        let deferred = insert_edges(
            &tx,
            &mut self.staged.borrow_mut(),
            run.id,
            run.edges,
            0,
            true,
        )?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO params (run_id, key, value, source) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for p in run.params {
                stmt.execute(params![run.id, p.key, p.value.to_string(), p.source])?;
            }
            let mut stmt = tx.prepare(
                "INSERT INTO blobs (hash, size, data) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?;
            for (hash, data) in run.blobs {
                stmt.execute(params![hash.to_hex(), data.len() as i64, data])?;
            }
        }
        tx.commit()?;
        self.deferred.borrow_mut().extend(deferred);
        Ok(())
    }

    /// Write the manifests of the new directories the last `begin_run` recorded, each in a
    /// transaction of its own that also clears its `pending_manifests` row. Best effort: a
    /// manifest not written is written by the next run that hashes the directory.
    pub fn write_deferred(&self) {
        let deferred = std::mem::take(&mut *self.deferred.borrow_mut());
        for (token, hash) in deferred {
            let mut staged = self.staged.borrow_mut();
            let mut write = || -> Result<()> {
                let tx = self.conn.unchecked_transaction()?;
                write_manifest(&tx, &mut staged, &token, &hash, true)?;
                tx.execute("DELETE FROM pending_manifests WHERE dir_hash = ?1", [&hash])?;
                tx.commit()?;
                Ok(())
            };
            let _ = write();
        }
    }

    /// An input hashed after launch (`hash::prepare`): its artifact, and its manifest when
    /// it is a new directory, written in one transaction that also fills in its edge.
    pub fn complete_input(&self, run_id: &str, position: usize, edge: &Edge) -> Result<()> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let hash = insert_artifact(&tx, &mut self.staged.borrow_mut(), run_id, edge, false)?.0;
        let updated = tx.execute(
            "UPDATE edges SET artifact = ?3, missing = 0
             WHERE run_id = ?1 AND role = 'input' AND position = ?2",
            params![run_id, position as i64, hash],
        )?;
        anyhow::ensure!(
            updated == 1,
            "input {position} of run {run_id} is not in the store"
        );
        tx.commit()?;
        Ok(())
    }

    /// Forget the manifest entries staged under `token` (a directory left unhashed).
    pub fn unstage(&self, token: &str) {
        let mut staged = self.staged.borrow_mut();
        if let Some(entries) = staged.memory.remove(token) {
            staged.in_memory -= entries.len().min(staged.in_memory);
        }
        if staged.spilled.remove(token) {
            let _ = self
                .conn
                .execute("DELETE FROM temp.staged_entries WHERE token = ?1", [token]);
        }
    }

    /// Phase two: status, times, resources and outputs.
    pub fn finish_run(&mut self, id: &str, fin: &Finish) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let updated = tx.execute(
            "UPDATE runs SET status = ?2, ended_at = ?3, exit_code = ?4, signal = ?5,
                             capture = ?6, resources = ?7
             WHERE id = ?1",
            params![
                id,
                fin.status.as_str(),
                fin.ended_at,
                fin.exit_code,
                fin.signal,
                serde_json::to_string(fin.capture)?,
                serde_json::to_string(fin.resources)?,
            ],
        )?;
        anyhow::ensure!(updated == 1, "run {id} is not in the store");
        let first: i64 = tx.query_row(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM edges WHERE run_id = ?1",
            [id],
            |r| r.get(0),
        )?;
        insert_edges(
            &tx,
            &mut self.staged.borrow_mut(),
            id,
            fin.outputs,
            first as usize,
            false,
        )?;
        for pos in fin.changed_inputs {
            tx.execute(
                "UPDATE edges SET changed = 1 WHERE run_id = ?1 AND role = 'input' AND position = ?2",
                params![id, *pos as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Resolve a run id prefix (None: the most recent run) to a full id.
    pub fn resolve(&self, prefix: Option<&str>) -> Result<String> {
        let Some(prefix) = prefix else {
            return self
                .conn
                .query_row(
                    // UUIDv7 ids are time-ordered: the primary key gives the latest run.
                    "SELECT id FROM runs ORDER BY id DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| Error::NoRuns(self.dir.display().to_string()).into());
        };
        let prefix = prefix.to_ascii_lowercase();
        let mut stmt = self.conn.prepare(
            "SELECT id FROM runs WHERE id >= ?1 AND id < ?1 || x'ff' ORDER BY id LIMIT 6",
        )?;
        let ids = stmt
            .query_map([&prefix], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        match ids.len() {
            0 => Err(Error::RunNotFound(prefix).into()),
            1 => Ok(ids.into_iter().next().unwrap_or_default()),
            _ => Err(Error::AmbiguousRun {
                candidates: ids
                    .iter()
                    .take(5)
                    .map(|id| id.to_string())
                    .chain((ids.len() > 5).then(|| "...".to_string()))
                    .collect(),
                prefix,
            }
            .into()),
        }
    }

    /// The shortest prefix of `id` (at least 8 characters) that no other run shares.
    pub fn short_id(&self, id: &str) -> Result<String> {
        Ok(self
            .short_ids(&[id])?
            .remove(id)
            .unwrap_or_else(|| id.to_string()))
    }

    pub fn load_run(&self, id: &str) -> Result<RunRecord> {
        self.load_runs(&[id])?
            .pop()
            .ok_or_else(|| Error::RunNotFound(id.to_string()).into())
    }

    /// Whole runs, in three queries whatever their number (ids as a JSON array through
    /// `json_each`); in the order of `ids`, unknown ids left out.
    pub fn load_runs(&self, ids: &[&str]) -> Result<Vec<RunRecord>> {
        let ids_json = serde_json::to_string(ids)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, status, argv, cwd, started_at, ended_at, exit_code, signal, capture,
                    resources, rerun_of
             FROM runs WHERE id IN (SELECT value FROM json_each(?1))",
        )?;
        let mut runs: std::collections::HashMap<String, RunRecord> = stmt
            .query_map([&ids_json], |r| {
                Ok(RunRecord {
                    id: r.get(0)?,
                    status: parse_status(r.get_ref(1)?.as_str()?),
                    argv: split_argv(&r.get::<_, Vec<u8>>(2)?),
                    cwd: r.get(3)?,
                    started_at: r.get(4)?,
                    ended_at: r.get(5)?,
                    exit_code: r.get(6)?,
                    signal: r.get(7)?,
                    capture: serde_json::from_str(r.get_ref(8)?.as_str()?).unwrap_or_default(),
                    resources: r
                        .get::<_, Option<String>>(9)?
                        .and_then(|s| serde_json::from_str(&s).ok()),
                    rerun_of: r.get(10)?,
                    edges: Vec::new(),
                    params: Vec::new(),
                })
            })?
            .map(|r| r.map(|run| (run.id.clone(), run)))
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.run_id, e.role, e.path, e.abs_path, e.changed, a.hash, a.kind, a.size,
                    a.file_count
             FROM edges e LEFT JOIN artifacts a ON a.hash = e.artifact
             WHERE e.run_id IN (SELECT value FROM json_each(?1))
             ORDER BY e.run_id, e.position",
        )?;
        let edges = stmt.query_map([&ids_json], |r| {
            let hash: Option<String> = r.get(5)?;
            let artifact = match hash.as_deref().and_then(Hash::parse) {
                Some(hash) => Some(ArtifactRef {
                    hash,
                    kind: ArtifactKind::parse(r.get_ref(6)?.as_str()?),
                    size: r.get::<_, i64>(7)? as u64,
                    file_count: r.get::<_, i64>(8)? as u64,
                }),
                None => None,
            };
            let edge = EdgeRecord {
                role: match r.get_ref(1)?.as_str()? {
                    "output" => Role::Output,
                    "config" => Role::Config,
                    _ => Role::Input,
                },
                path: r.get(2)?,
                abs_path: r.get(3)?,
                changed: r.get(4)?,
                artifact,
            };
            Ok((r.get::<_, String>(0)?, edge))
        })?;
        for row in edges {
            let (id, edge) = row?;
            if let Some(run) = runs.get_mut(&id) {
                run.edges.push(edge);
            }
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT run_id, key, value, source FROM params
             WHERE run_id IN (SELECT value FROM json_each(?1)) ORDER BY run_id, key",
        )?;
        let params = stmt.query_map([&ids_json], |r| {
            let value: String = r.get(2)?;
            Ok((
                r.get::<_, String>(0)?,
                Param {
                    key: r.get(1)?,
                    value: serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value)),
                    source: r.get(3)?,
                },
            ))
        })?;
        for row in params {
            let (id, param) = row?;
            if let Some(run) = runs.get_mut(&id) {
                run.params.push(param);
            }
        }
        Ok(ids.iter().filter_map(|id| runs.remove(*id)).collect())
    }

    /// Short ids of many runs in one query (see `short_id`).
    pub fn short_ids(&self, ids: &[&str]) -> Result<std::collections::HashMap<String, String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT j.value,
                    (SELECT max(id) FROM runs WHERE id < j.value),
                    (SELECT min(id) FROM runs WHERE id > j.value)
             FROM json_each(?1) j",
        )?;
        let rows = stmt.query_map([serde_json::to_string(ids)?], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        let mut out = std::collections::HashMap::new();
        for row in rows {
            let (id, before, after) = row?;
            let short = shortest_prefix(&id, before.as_deref(), after.as_deref());
            out.insert(id, short);
        }
        Ok(out)
    }

    /// Runs newest first, with the paths of their outputs.
    pub fn list(&self, limit: Option<usize>) -> Result<Vec<RunSummary>> {
        let limit = limit.map_or(-1, |n| n as i64);
        let mut stmt = self.conn.prepare(
            "SELECT r.id, r.status, r.argv, r.started_at, r.ended_at, r.exit_code, r.rerun_of,
                    (SELECT json_group_array(path) FROM
                        (SELECT path FROM edges WHERE run_id = r.id AND role = 'output'
                         ORDER BY position))
             FROM runs r ORDER BY r.id DESC LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok(RunSummary {
                    id: r.get(0)?,
                    status: parse_status(r.get_ref(1)?.as_str()?),
                    argv: split_argv(&r.get::<_, Vec<u8>>(2)?),
                    started_at: r.get(3)?,
                    ended_at: r.get(4)?,
                    exit_code: r.get(5)?,
                    rerun_of: r.get(6)?,
                    outputs: serde_json::from_str(r.get_ref(7)?.as_str()?).unwrap_or_default(),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The bytes of a blob, if stored.
    /// Finished runs a team store does not have yet, in the order they were recorded: the
    /// rows added since the last scan and the runs that were still going then.
    pub fn pending_push(&self, remote: &str) -> Result<PendingPush> {
        let mark: i64 = self
            .conn
            .query_row(
                "SELECT upto FROM push_mark WHERE remote = ?1",
                [remote],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let mut stmt = self.conn.prepare_cached(
            "SELECT rowid, id, status = 'running',
                    EXISTS (SELECT 1 FROM pushed p WHERE p.remote = ?2 AND p.run_id = runs.id)
             FROM runs WHERE rowid > ?1
             UNION
             SELECT r.rowid, r.id, r.status = 'running',
                    EXISTS (SELECT 1 FROM pushed p WHERE p.remote = ?2 AND p.run_id = r.id)
             FROM held h JOIN runs r ON r.id = h.run_id WHERE h.remote = ?2
             ORDER BY 1",
        )?;
        let mut pending = PendingPush {
            upto: mark,
            ..PendingPush::default()
        };
        let rows = stmt.query_map(params![mark, remote], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })?;
        for row in rows {
            let (rowid, id, running, pushed) = row?;
            pending.upto = pending.upto.max(rowid);
            if running {
                pending.running.push(id);
            } else if !pushed {
                pending.ids.push(id);
            }
        }
        Ok(pending)
    }

    /// Everything `pending_push` listed was delivered: move the scan mark past it.
    pub fn push_done(&self, remote: &str, pending: &PendingPush) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO push_mark VALUES (?1, ?2)
             ON CONFLICT (remote) DO UPDATE SET upto = excluded.upto",
            params![remote, pending.upto],
        )?;
        tx.execute("DELETE FROM held WHERE remote = ?1", [remote])?;
        {
            let mut stmt = tx.prepare_cached("INSERT OR IGNORE INTO held VALUES (?1, ?2)")?;
            for id in &pending.running {
                stmt.execute(params![remote, id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Remember that a team store holds these runs.
    pub fn mark_pushed(&self, remote: &str, ids: &[String]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT OR IGNORE INTO pushed VALUES (?1, ?2)")?;
            for id in ids {
                stmt.execute(params![remote, id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The last server arrival (`runs.seq`) received from a team store.
    pub fn pulled_seq(&self, remote: &str) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT seq FROM pulled WHERE remote = ?1", [remote], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(0))
    }

    pub fn set_pulled_seq(&self, remote: &str, seq: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO pulled VALUES (?1, ?2) ON CONFLICT (remote) DO UPDATE SET seq = excluded.seq",
            params![remote, seq],
        )?;
        Ok(())
    }

    /// Whether the manifest of a directory (by hex hash) is here.
    pub fn has_manifest(&self, dir_hex: &str) -> bool {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM dir_entries WHERE dir_hash = ?1)",
                [dir_hex],
                |r| r.get(0),
            )
            .unwrap_or(false)
    }

    /// Whether a blob (by hex hash) is here.
    pub fn has_blob(&self, hex: &str) -> bool {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM blobs WHERE hash = ?1)",
                [hex],
                |r| r.get(0),
            )
            .unwrap_or(false)
    }

    /// A digest other than BLAKE3 (`sha256`, `dirHash`) known for an artifact.
    pub fn extra_digest(&self, hash: &Hash, algorithm: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT digest FROM extra_digests WHERE artifact = ?1 AND algorithm = ?2",
                params![hash.to_hex(), algorithm],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Remember a digest computed from bytes that matched `hash`.
    pub fn put_extra_digest(&self, hash: &Hash, algorithm: &str, digest: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO extra_digests (artifact, algorithm, digest) VALUES (?1, ?2, ?3)",
            params![hash.to_hex(), algorithm, digest],
        )?;
        Ok(())
    }

    pub fn blob(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT data FROM blobs WHERE hash = ?1",
                [hash.to_hex()],
                |r| r.get(0),
            )
            .optional()?)
    }
}

/// The stat cache lives in the store: one query per chunk of files, either way.
impl crate::hash::StatCache for Store {
    fn lookup(&self, keys: &[crate::hash::StatKey]) -> Vec<Option<Hash>> {
        let mut out = vec![None; keys.len()];
        // One query per device (a tree rarely spans two), the inodes as a JSON array of
        // integers: no JSON parsing per row.
        let mut devs: Vec<u64> = keys.iter().map(|k| k.dev).collect();
        devs.sort_unstable();
        devs.dedup();
        for dev in devs {
            let at: Vec<usize> = (0..keys.len()).filter(|&i| keys[i].dev == dev).collect();
            let inos: Vec<i64> = at.iter().map(|&i| keys[i].ino as i64).collect();
            let Ok(inos) = serde_json::to_string(&inos) else {
                continue;
            };
            let rows = self
                .conn
                .prepare_cached(
                    "SELECT j.key, c.size, c.mtime_ns, c.ctime_ns, c.hash FROM json_each(?2) j
                     CROSS JOIN stat_cache c ON c.dev = ?1 AND c.ino = j.value",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![dev as i64, inos], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, String>(4)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                });
            for (j, size, mtime, ctime, hash) in rows.unwrap_or_default() {
                let Some(&i) = at.get(j as usize) else {
                    continue;
                };
                let key = &keys[i];
                // Stale unless size, mtime and ctime all still match.
                if key.size as i64 == size && key.mtime_ns == mtime && key.ctime_ns == ctime {
                    out[i] = Hash::parse(&hash);
                }
            }
        }
        out
    }

    fn record(&self, entries: &[(crate::hash::StatKey, Hash)]) {
        let full = {
            let mut learned = self.learned.borrow_mut();
            learned.extend_from_slice(entries);
            learned.len() >= LEARNED_IN_MEMORY
        };
        if full {
            self.write_learned();
        }
    }

    fn lookup_dir(&self, digest: &Hash) -> Option<crate::model::Artifact> {
        // Through `artifacts`: a digest recorded for a run that was never written names no
        // stored manifest and is not a hit.
        self.conn
            .prepare_cached(
                "SELECT a.hash, a.size, a.file_count FROM dir_cache d
                 CROSS JOIN artifacts a ON a.hash = d.dir_hash
                 WHERE d.digest = ?1 AND a.kind = 'dir'
                   AND NOT EXISTS (SELECT 1 FROM pending_manifests p WHERE p.dir_hash = a.hash)",
            )
            .and_then(|mut stmt| {
                stmt.query_row([digest.to_hex()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .optional()
            })
            .ok()
            .flatten()
            .and_then(|(hash, size, count)| {
                Some(crate::model::Artifact {
                    hash: Hash::parse(&hash)?,
                    kind: ArtifactKind::Dir,
                    size: size as u64,
                    file_count: count as u64,
                })
            })
    }

    fn seen_dir(&self, path: &Path) -> bool {
        self.input_size(path.as_os_str().as_bytes()).is_some()
    }

    fn record_dir(&self, digest: &Hash, dir: &Hash) {
        let _ = self.conn.execute(
            "INSERT OR REPLACE INTO dir_cache (digest, dir_hash) VALUES (?1, ?2)",
            params![digest.to_hex(), dir.to_hex()],
        );
    }
}

/// The stat cache for a command that must not write (`rerun --dry-run`): lookups only.
pub struct ReadOnlyCache<'a>(pub &'a Store);

impl crate::hash::StatCache for ReadOnlyCache<'_> {
    fn lookup(&self, keys: &[crate::hash::StatKey]) -> Vec<Option<Hash>> {
        self.0.lookup(keys)
    }

    fn record(&self, _: &[(crate::hash::StatKey, Hash)]) {}

    fn lookup_dir(&self, digest: &Hash) -> Option<crate::model::Artifact> {
        self.0.lookup_dir(digest)
    }

    fn seen_dir(&self, path: &Path) -> bool {
        self.0.seen_dir(path)
    }
}

/// Insert edges and their artifacts. A new directory's manifest is written here, or, with
/// `defer`, left staged with a `pending_manifests` row: the returned (token, hash) pairs are
/// for `write_deferred`.
fn insert_edges(
    tx: &rusqlite::Transaction,
    staged: &mut Staged,
    run_id: &str,
    edges: &[Edge],
    first: usize,
    defer: bool,
) -> Result<Vec<(String, String)>> {
    let mut deferred = Vec::new();
    let mut edge = tx.prepare_cached(
        "INSERT INTO edges (run_id, role, position, artifact, path, abs_path, missing, changed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (i, e) in edges.iter().enumerate() {
        let (hash, later) = insert_artifact(tx, staged, run_id, e, defer)?;
        deferred.extend(later);
        edge.execute(params![
            run_id,
            e.role.as_str(),
            (first + i) as i64,
            hash,
            e.path,
            e.abs_path,
            e.artifact.is_none(),
            e.changed,
        ])?;
    }
    Ok(deferred)
}

/// A new directory's manifest left staged for `write_deferred`: (token, directory hash).
type Deferred = (String, String);

/// Insert an edge's artifact (if it has one) and, for a directory, its manifest (or, with
/// `defer` and a new directory, a `pending_manifests` row, and the (token, hash) pair for
/// `write_deferred`). Returns the artifact's hash.
fn insert_artifact(
    tx: &rusqlite::Transaction,
    staged: &mut Staged,
    run_id: &str,
    e: &Edge,
    defer: bool,
) -> Result<(Option<String>, Option<Deferred>)> {
    let Some(a) = &e.artifact else {
        return Ok((None, None));
    };
    let hash = a.hash.to_hex();
    let new =
        tx.prepare_cached(
            "INSERT INTO artifacts (hash, kind, size, file_count) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            hash,
            a.kind.as_str(),
            a.size as i64,
            a.file_count as i64
        ])? == 1;
    let mut deferred = None;
    if let Some(token) = &e.manifest {
        if new && defer {
            tx.execute(
                "INSERT INTO pending_manifests (dir_hash, run_id) VALUES (?1, ?2)",
                params![hash, run_id],
            )?;
            deferred = Some((token.clone(), hash.clone()));
        } else if new {
            write_manifest(tx, staged, token, &hash, true)?;
        } else {
            // Known: its manifest is stored, unless the run that recorded it died before
            // writing it, which this run's staged entries now repair.
            let pending =
                tx.execute("DELETE FROM pending_manifests WHERE dir_hash = ?1", [&hash])? == 1;
            write_manifest(tx, staged, token, &hash, pending)?;
        }
    }
    Ok((Some(hash), deferred))
}

/// Write (when `write`) and forget the manifest staged under `token` as that of `hash`.
fn write_manifest(
    tx: &rusqlite::Transaction,
    staged: &mut Staged,
    token: &str,
    hash: &str,
    write: bool,
) -> Result<()> {
    let entries = staged.memory.remove(token).unwrap_or_default();
    staged.in_memory -= entries.len().min(staged.in_memory);
    let spilled = staged.spilled.remove(token);
    if write {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO dir_entries (dir_hash, path, file_hash, size, executable)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for f in &entries {
            stmt.execute(params![
                hash,
                f.path,
                f.hash.to_hex(),
                f.size as i64,
                f.executable
            ])?;
        }
        if spilled {
            tx.execute(
                "INSERT OR IGNORE INTO dir_entries (dir_hash, path, file_hash, size, executable)
                 SELECT ?1, path, file_hash, size, executable
                 FROM temp.staged_entries WHERE token = ?2",
                params![hash, token],
            )?;
        }
    }
    if spilled {
        tx.execute("DELETE FROM temp.staged_entries WHERE token = ?1", [token])?;
    }
    Ok(())
}

/// The shortest prefix of `id`, at least `MIN_SHORT_ID` long, that neither neighbour shares.
fn shortest_prefix(id: &str, before: Option<&str>, after: Option<&str>) -> String {
    let shared = |other: Option<&str>| {
        other.map_or(0, |o| {
            id.bytes()
                .zip(o.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        })
    };
    let len = (shared(before).max(shared(after)) + 1)
        .max(MIN_SHORT_ID)
        .min(id.len());
    id[..len].to_string()
}

fn parse_status(s: &str) -> Status {
    Status::parse(s).unwrap_or(Status::Failed)
}

/// Arguments cannot contain NUL on Unix, so NUL separates them losslessly.
fn join_argv(argv: &[Vec<u8>]) -> Vec<u8> {
    argv.join(&0u8)
}

fn split_argv(raw: &[u8]) -> Vec<Vec<u8>> {
    raw.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_round_trips_through_nul_separation() {
        let argv = vec![
            b"python".to_vec(),
            vec![0xff, 0xfe],
            Vec::new(),
            b"x y".to_vec(),
        ];
        assert_eq!(split_argv(&join_argv(&argv)), argv);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(Store::open(dir.path()).expect("open"));
        let conn = Connection::open(dir.path().join(DB_FILE)).expect("sqlite");
        conn.pragma_update(None, "user_version", 99)
            .expect("pragma");
        drop(conn);
        let err = Store::open(dir.path()).err().expect("refused");
        assert!(matches!(err, Error::StoreTooNew { found: 99, .. }), "{err}");
    }
}
