//! The recording path of `lineage run`: the run written as `running` with its inputs,
//! configs, params and blobs before the job starts (`begin_run`), inputs hashed while it runs
//! filled in one by one (`complete_input`), and the outcome and outputs written after it ends
//! (`finish_run`). What is written of a job's own (its command, capture, params and blobs)
//! comes in as `Redacted` values, which only the redaction engine makes: nothing reaches the
//! store without passing it. Directory manifests are staged while their directory is hashed (in memory,
//! spilling to a temporary table) and written with their edge; the manifests of new input
//! directories are written while the job runs (`idle_work`).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use rusqlite::{TransactionBehavior, params};

use super::{Store, join_argv};
use crate::model::{Capture, DirEntry, Edge, Hash, Param, Resources, Status};
use crate::redact::{Blob, Redacted};

/// Manifest entries held in memory while a run is prepared; beyond this many, they spill to
/// a temporary table on disk, so memory stays bounded whatever the size of a directory.
const STAGE_IN_MEMORY: usize = 50_000;

/// Directory manifests hashed for the run being recorded, by token, until written with its
/// edges. Most are of directories already in the store and are then dropped unwritten.
#[derive(Default)]
struct Staged {
    memory: HashMap<String, Vec<DirEntry>>,
    in_memory: usize,
    /// Tokens with rows in `temp.staged_entries`.
    spilled: HashSet<String>,
    /// Why entries could not be spilled (SQLite's temporary storage full or unusable):
    /// they are then held in memory, and the user told once.
    unspillable: Option<(String, bool)>,
    /// Tokens whose manifests the transaction under way has written: forgotten once it
    /// commits, kept for another try if it fails (a store without room, given room back).
    written: Vec<String>,
}

impl Staged {
    /// After a transaction that wrote manifests: forget them when it committed; when it did
    /// not, keep them, for the same write tried again.
    fn settle(&mut self, committed: bool) {
        let written = std::mem::take(&mut self.written);
        if committed {
            for token in written {
                self.forget(&token);
            }
        }
    }

    /// Forget the entries staged under `token` held in memory; whether it had rows spilled
    /// (theirs to delete, where no transaction did).
    fn forget(&mut self, token: &str) -> bool {
        if let Some(entries) = self.memory.remove(token) {
            self.in_memory -= entries.len().min(self.in_memory);
        }
        self.spilled.remove(token)
    }
}

/// What the recording path holds between its steps.
#[derive(Default)]
pub(super) struct Buffers {
    staged: RefCell<Staged>,
    /// (token, directory hash) of new directories whose manifests are still to be written
    /// (`write_deferred`, while the job runs).
    deferred: RefCell<Vec<Deferred>>,
}

/// Everything written before the job starts.
pub struct NewRun<'a> {
    /// The new run's id (UUIDv7).
    pub id: &'a str,
    /// The command as recorded (secrets redacted), one entry per argument.
    pub argv: &'a Redacted<Vec<Vec<u8>>>,
    /// The working directory, raw bytes.
    pub cwd: &'a [u8],
    /// When the job starts (RFC 3339, UTC).
    pub started_at: &'a str,
    /// lineage's own pid, to tell a run left `running` by a killed lineage.
    pub pid: u32,
    /// The run this one reproduces (`lineage rerun`).
    pub rerun_of: Option<&'a str>,
    /// Everything captured before launch, sealed by the engine.
    pub capture: &'a Redacted<Capture>,
    /// The input edges, then the config edges.
    pub edges: &'a [Edge],
    /// The params, redacted.
    pub params: &'a Redacted<Vec<Param>>,
    /// (hash, bytes) of configs, patches, untracked files and package lists, as the engine
    /// kept them.
    pub blobs: &'a [Redacted<Blob>],
}

/// Everything written after the job ends.
pub struct Finish<'a> {
    /// How the run ended.
    pub status: Status,
    /// When it ended (RFC 3339, UTC).
    pub ended_at: &'a str,
    /// The job's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// The capture again, with the notes taken since launch, sealed by the engine.
    pub capture: &'a Redacted<Capture>,
    /// What the job used.
    pub resources: &'a Resources,
    /// Output edges and observed inputs (appended after the declared input and config
    /// edges).
    pub outputs: &'a [Edge],
    /// What observing the job said of each declared input and config, by position.
    pub seen: &'a [(usize, crate::model::Seen)],
    /// Positions (among input edges) of inputs modified while the job ran.
    pub changed_inputs: &'a [usize],
    /// The numbers read from the metrics files after the job, and the last value of each
    /// metric the job sent (keys unique).
    pub metrics: &'a [crate::model::Metric],
    /// Params the job sent through the in-job API (keys new to the run).
    pub params: Option<&'a Redacted<Vec<crate::model::Param>>>,
    /// Blobs the capture names that were made after launch (the metrics' series).
    pub blobs: &'a [Redacted<Blob>],
    /// The user's key, which signs the finished record (none: the run stays unsigned).
    pub signer: Option<&'a crate::sign::Signer>,
}

impl Store {
    /// Stage a chunk of a directory's manifest while it is being hashed, before the run is
    /// written: in memory, spilling to a TEMP table (private to this connection, no lock on
    /// the store) past STAGE_IN_MEMORY entries.
    pub fn stage(&self, token: &str, entries: &[DirEntry]) -> std::io::Result<()> {
        let mut staged = self.recording.staged.borrow_mut();
        staged
            .memory
            .entry(token.to_string())
            .or_default()
            .extend_from_slice(entries);
        staged.in_memory += entries.len();
        if staged.in_memory <= STAGE_IN_MEMORY || staged.unspillable.is_some() {
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
        // A failed spill is rolled back: its entries are still in memory, where the rest go
        // (a manifest is never lost for want of room in TMPDIR).
        if let Err(e) = spill() {
            staged.unspillable = Some((e.to_string(), false));
            return Ok(());
        }
        let staged = &mut *staged;
        staged.spilled.extend(staged.memory.drain().map(|(t, _)| t));
        staged.in_memory = 0;
        Ok(())
    }

    /// Once, if manifests being recorded could not be spilled to SQLite's temporary storage
    /// and are held in memory: what to tell the user.
    pub fn staging_note(&self) -> Option<String> {
        let mut staged = self.recording.staged.borrow_mut();
        let (why, told) = staged.unspillable.as_mut()?;
        if std::mem::replace(told, true) {
            return None;
        }
        Some(format!(
            "manifests past {STAGE_IN_MEMORY} entries are held in memory: SQLite's temporary \
             storage (in TMPDIR, else /var/tmp or /tmp) could not take them ({why}); a TMPDIR \
             with room keeps lineage's memory bounded"
        ))
    }

    /// Whether [`Store::idle_work`] has anything to write.
    pub fn has_idle_work(&self) -> bool {
        !self.recording.deferred.borrow().is_empty() || !self.learned.borrow().is_empty()
    }

    /// Bookkeeping that need not delay the job, done while it runs: the manifests of new
    /// directory inputs, the stat-cache rows learned before launch, then, when asked (the job
    /// still runs), a checkpoint if the WAL has grown, so that the one on close is short.
    pub fn idle_work(&self, checkpoint: bool) {
        self.write_deferred();
        crate::timing::mark("manifests written");
        self.write_learned();
        crate::timing::mark("stat cache written");
        if checkpoint && self.wal_pages() > super::CHECKPOINT_PAGES {
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            crate::timing::mark("checkpointed");
        }
    }

    /// Forget every staged manifest (before preparing a new run).
    pub fn discard_staged(&self) {
        self.write_deferred();
        let mut staged = self.recording.staged.borrow_mut();
        if !staged.spilled.is_empty() {
            let _ = self.conn.execute("DELETE FROM temp.staged_entries", []);
        }
        *staged = Staged::default();
    }

    /// Phase one: the run as `running`, with its inputs, configs, params and blobs.
    pub fn begin_run(&mut self, run: &NewRun) -> Result<()> {
        self.recording.staged.borrow_mut().settle(false);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let capture: &Capture = run.capture.get();
        let git = capture.git.as_ref();
        tx.execute(
            "INSERT INTO runs (id, status, argv, cwd, started_at, hostname, pid, boot_id,
                               git_commit, git_dirty, code_hash, capture, rerun_of, pid_start)
             VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                run.id,
                join_argv(run.argv.get()),
                run.cwd,
                run.started_at,
                capture.system.hostname,
                run.pid,
                capture.system.boot_id,
                git.and_then(|g| g.commit.as_deref()),
                git.map(|g| g.dirty),
                git.map(|g| g.code.to_hex()),
                serde_json::to_string(capture)?,
                run.rerun_of,
                crate::host::process_start(run.pid).map(|s| s as i64),
            ],
        )?;
        let deferred = insert_edges(
            &tx,
            &mut self.recording.staged.borrow_mut(),
            run.id,
            run.edges,
            0,
            true,
        )?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO params (run_id, key, value, source) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for p in run.params.get() {
                stmt.execute(params![run.id, p.key, p.value.to_string(), p.source])?;
            }
            let mut stmt = tx.prepare(
                "INSERT INTO blobs (hash, size, data) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?;
            for (hash, data) in run.blobs.iter().map(Redacted::get) {
                stmt.execute(params![hash.to_hex(), data.len() as i64, data])?;
            }
        }
        tx.commit()?;
        self.recording.staged.borrow_mut().settle(true);
        self.recording.deferred.borrow_mut().extend(deferred);
        Ok(())
    }

    /// Write the manifests of the new directories the last `begin_run` recorded, each in a
    /// transaction of its own that also clears its `pending_manifests` row. Best effort: a
    /// manifest not written is written by the next run that hashes the directory.
    pub fn write_deferred(&self) {
        let deferred = std::mem::take(&mut *self.recording.deferred.borrow_mut());
        for (token, hash) in deferred {
            let mut staged = self.recording.staged.borrow_mut();
            staged.settle(false);
            let mut write = || -> Result<()> {
                let tx = self.conn.unchecked_transaction()?;
                write_manifest(&tx, &mut staged, &token, &hash, true)?;
                tx.execute("DELETE FROM pending_manifests WHERE dir_hash = ?1", [&hash])?;
                tx.commit()?;
                Ok(())
            };
            let _ = write();
            // Written or not, forgotten: the next run that hashes it writes it.
            staged.settle(false);
            staged.forget(&token);
        }
    }

    /// An input hashed after launch (`hash::prepare`): its artifact, and its manifest when
    /// it is a new directory, written in one transaction that also fills in its edge.
    pub fn complete_input(&self, run_id: &str, position: usize, edge: &Edge) -> Result<()> {
        self.recording.staged.borrow_mut().settle(false);
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let hash = insert_artifact(
            &tx,
            &mut self.recording.staged.borrow_mut(),
            run_id,
            edge,
            false,
        )?
        .0;
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
        self.recording.staged.borrow_mut().settle(true);
        Ok(())
    }

    /// Forget the manifest entries staged under `token` (a directory left unhashed).
    pub fn unstage(&self, token: &str) {
        if self.recording.staged.borrow_mut().forget(token) {
            let _ = self
                .conn
                .execute("DELETE FROM temp.staged_entries WHERE token = ?1", [token]);
        }
    }

    /// Phase two: status, times, resources and outputs.
    pub fn finish_run(&mut self, id: &str, fin: &Finish) -> Result<()> {
        self.recording.staged.borrow_mut().settle(false);
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
                serde_json::to_string(fin.capture.get())?,
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
            &mut self.recording.staged.borrow_mut(),
            id,
            fin.outputs,
            first as usize,
            false,
        )?;
        for (pos, seen) in fin.seen {
            tx.execute(
                "UPDATE edges SET observed = ?3 WHERE run_id = ?1 AND position = ?2",
                params![id, *pos as i64, seen.to_column()],
            )?;
        }
        for pos in fin.changed_inputs {
            tx.execute(
                "UPDATE edges SET changed = 1 WHERE run_id = ?1 AND role = 'input' AND position = ?2",
                params![id, *pos as i64],
            )?;
        }
        let mut metric = tx.prepare_cached(
            "INSERT INTO metrics (run_id, key, value, source) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for m in fin.metrics {
            metric.execute(params![id, m.key, m.value, m.source])?;
        }
        drop(metric);
        if let Some(ps) = fin.params {
            let mut param = tx.prepare_cached(
                "INSERT INTO params (run_id, key, value, source) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for p in ps.get() {
                param.execute(params![id, p.key, p.value.to_string(), p.source])?;
            }
        }
        let mut blob = tx.prepare_cached(
            "INSERT INTO blobs (hash, size, data) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?;
        for (hash, data) in fin.blobs.iter().map(Redacted::get) {
            blob.execute(params![hash.to_hex(), data.len() as i64, data])?;
        }
        drop(blob);
        if let Some(signer) = fin.signer {
            super::signature::sign(&tx, id, signer)?;
        }
        tx.commit()?;
        self.recording.staged.borrow_mut().settle(true);
        Ok(())
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
        "INSERT INTO edges (run_id, role, position, artifact, path, abs_path, missing, changed,
                            written, kept, observed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for (i, e) in edges.iter().enumerate() {
        let (hash, later) = insert_artifact(tx, staged, run_id, e, defer)?;
        deferred.extend(later);
        let (written, kept) = match &e.written {
            Some(w) => {
                let (n, kept) = w.to_columns();
                (Some(n), kept)
            }
            None => (None, None),
        };
        edge.execute(params![
            run_id,
            e.role.as_str(),
            (first + i) as i64,
            hash,
            e.path,
            e.abs_path,
            e.artifact.is_none(),
            e.changed,
            written,
            kept,
            e.observed.map(crate::model::Seen::to_column),
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
    let row = params![hash, a.kind.as_str(), a.size as i64, a.file_count as i64];
    let inserted = tx
        .prepare_cached(
            "INSERT INTO artifacts (hash, kind, size, file_count) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
        )?
        .execute(row)?
        == 1;
    // What this machine measured wins over a row that came from elsewhere (an import), and
    // a directory whose manifest never arrived gets one now.
    let new = inserted || {
        tx.prepare_cached(
            "UPDATE artifacts SET kind = ?2, size = ?3, file_count = ?4
             WHERE hash = ?1 AND (kind, size, file_count) IS NOT (?2, ?3, ?4)",
        )?
        .execute(row)?;
        a.kind == crate::model::ArtifactKind::Dir
            && !tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM dir_manifest WHERE dir_hash = unhex(?1))
                         OR EXISTS (SELECT 1 FROM pending_manifests WHERE dir_hash = ?1)",
                )?
                .query_row([&hash], |r| r.get::<_, bool>(0))?
    };
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

/// Manifests of this many files or more get a larger page cache.
const LARGE_MANIFEST: usize = 2048;

/// Write (when `write`) and forget the manifest staged under `token` as that of `hash`.
fn write_manifest(
    tx: &rusqlite::Transaction,
    staged: &mut Staged,
    token: &str,
    hash: &str,
    write: bool,
) -> Result<()> {
    // Read, not taken: forgotten once the transaction commits (`Staged::settle`).
    staged.written.push(token.to_string());
    let entries: &[DirEntry] = staged.memory.get(token).map_or(&[], Vec::as_slice);
    let spilled = staged.spilled.contains(token);
    if write && !spilled && entries.len() >= LARGE_MANIFEST {
        // A page cache that holds a manifest of up to 50,000 files (the most held in
        // memory) and its stat-cache rows: with SQLite's 2 MB, the pages of a fresh
        // 20,000-file input's (about 9 MB) spilled to the WAL mid-transaction, were read back
        // (8,000 reads) and written again (12,900 writes for 2,350 pages): 8% of that run's
        // whole time. Not for a spilled manifest (a million files: lineage's memory stays
        // bounded) nor a small one. Memory only as pages are used.
        let _ = tx.pragma_update(Some("main"), "cache_size", -8192);
    }
    if write {
        // Into the table itself, hashes as blobs (`dir_entries` is its view in hex).
        let dir = Hash::parse(hash).with_context(|| format!("not a hash: {hash}"))?;
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO dir_manifest (dir_hash, path, file_hash, size, executable)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for f in entries {
            stmt.execute(params![
                &dir.0[..],
                f.path,
                &f.hash.0[..],
                f.size as i64,
                f.executable
            ])?;
        }
        if spilled {
            tx.execute(
                "INSERT OR IGNORE INTO dir_manifest (dir_hash, path, file_hash, size, executable)
                 SELECT unhex(?1), path, unhex(file_hash), size, executable
                 FROM temp.staged_entries WHERE token = ?2",
                params![hash, token],
            )?;
        }
    }
    if write {
        crate::timing::mark("manifest rows inserted");
        // The entries in the order they were hashed (the walk's): the rows spilled, then
        // those still in memory. Indexed as they go by, in bounded memory; all at once from
        // the stored manifest if they turn out not to be in that order.
        let tail = || {
            entries
                .iter()
                .map(|f| Ok((f.path.clone(), f.hash, f.size, f.executable)))
        };
        let streamed = if spilled {
            let mut stmt = tx.prepare_cached(
                "SELECT path, file_hash, size, executable FROM temp.staged_entries
                 WHERE token = ?1 ORDER BY rowid",
            )?;
            let rows = stmt.query_map([token], super::graph::manifest_row)?;
            let rows = rows.map(|row| {
                let (path, hash, size, exec) = row?;
                let hash = Hash::parse(&hash).context("a staged entry's hash")?;
                Ok((path, hash, size.max(0) as u64, exec))
            });
            super::graph::index_subdirs_streamed(tx, hash, rows.chain(tail()))?
        } else {
            super::graph::index_subdirs_streamed(tx, hash, tail())?
        };
        match (streamed, spilled) {
            (true, _) => {}
            (false, true) => super::graph::index_subdirs(tx, hash)?,
            (false, false) => {
                let rows = entries
                    .iter()
                    .map(|f| (f.path.as_str(), f.hash, f.size, f.executable));
                super::graph::index_subdirs_of(tx, hash, rows)?;
            }
        }
        crate::timing::mark("subdirectories indexed");
    }
    if spilled {
        tx.execute("DELETE FROM temp.staged_entries WHERE token = ?1", [token])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries that SQLite's temporary storage cannot take (TMPDIR full: here the TEMP
    /// database held to a few pages) stay in memory, every one, and the user is told once.
    #[test]
    fn entries_that_cannot_be_spilled_are_kept_in_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store
            .conn
            .execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS staged_entries (
                     token TEXT NOT NULL, path TEXT NOT NULL, file_hash TEXT NOT NULL,
                     size INTEGER NOT NULL, executable INTEGER NOT NULL);
                 PRAGMA temp.max_page_count = 3;",
            )
            .expect("a small TEMP database");
        let chunk: Vec<DirEntry> = (0..2048u32)
            .map(|i| DirEntry {
                path: format!("d/{i:05}"),
                hash: Hash(*blake3::hash(&i.to_le_bytes()).as_bytes()),
                size: 1,
                executable: false,
            })
            .collect();
        let chunks = STAGE_IN_MEMORY / chunk.len() + 3;
        for _ in 0..chunks {
            store
                .stage("input-0", &chunk)
                .expect("staged whatever the TEMP room");
        }
        let staged = store.recording.staged.borrow();
        assert!(staged.spilled.is_empty(), "nothing half spilled");
        assert_eq!(staged.memory["input-0"].len(), chunks * chunk.len());
        drop(staged);
        let note = store.staging_note().expect("told");
        assert!(note.contains("TMPDIR") && note.contains("full"), "{note}");
        assert_eq!(store.staging_note(), None, "told once");
    }
}
