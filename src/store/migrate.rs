//! Opening a store the way it must be: pragmas (journal, synchronous, foreign keys, busy
//! timeout, when to checkpoint), the numbered migrations (tracked by `PRAGMA user_version`,
//! applied in one IMMEDIATE transaction that looks at the version again once it holds the
//! lock, so two first commands cannot both apply them; a store newer than this lineage is
//! refused), and marking interrupted the runs whose lineage process is gone.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::TransactionBehavior;
use rusqlite::config::DbConfig;

use super::{Journal, Store};
use crate::error::Error;

/// Numbered migrations; the schema version is the number applied (`PRAGMA user_version`).
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_pid_start.sql"),
    include_str!("migrations/0003_stat_cache.sql"),
    include_str!("migrations/0004_dir_cache.sql"),
    include_str!("migrations/0005_input_sizes.sql"),
    include_str!("migrations/0006_pending_manifests.sql"),
    include_str!("migrations/0007_extra_digests.sql"),
    include_str!("migrations/0008_sync.sql"),
    include_str!("migrations/0009_signatures.sql"),
    include_str!("migrations/0010_written.sql"),
    include_str!("migrations/0011_run_id_tails.sql"),
    include_str!("migrations/0012_team_arrivals.sql"),
    include_str!("migrations/0013_observed.sql"),
    include_str!("migrations/0014_metrics.sql"),
    include_str!("migrations/0015_annotations.sql"),
    include_str!("migrations/0016_groups.sql"),
    include_str!("migrations/0017_stat_cache_blobs.sql"),
    include_str!("migrations/0018_manifest_blobs.sql"),
    include_str!("migrations/0019_runs_by_commit.sql"),
];

impl Store {
    pub(super) fn configure(&mut self, journal: Journal) -> Result<()> {
        self.conn.busy_timeout(Duration::from_secs(30))?;
        match journal {
            Journal::Wal => {
                // Once a store is in WAL mode it stays so: nothing to change, no lock taken.
                // On a new store many first jobs may switch it at once, and the switch can
                // fail busy without waiting on the busy handler: retried for the same 30 s.
                let mode: String = self
                    .conn
                    .pragma_query_value(None, "journal_mode", |r| r.get(0))
                    .unwrap_or_default();
                if !mode.eq_ignore_ascii_case("wal") {
                    let deadline = std::time::Instant::now() + Duration::from_secs(30);
                    loop {
                        match self.conn.pragma_update(None, "journal_mode", "WAL") {
                            Ok(()) => break,
                            Err(e)
                                if e.sqlite_error_code()
                                    == Some(rusqlite::ErrorCode::DatabaseBusy)
                                    && std::time::Instant::now() < deadline =>
                            {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            Err(e) => return Err(anyhow::Error::new(e).context("enabling WAL")),
                        }
                    }
                }
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
        let pages = Arc::clone(&self.wal_pages);
        self.conn.wal_hook(Some(
            move |_: &mut rusqlite::hooks::Wal, n: std::ffi::c_int| {
                pages.store(n, Ordering::Relaxed);
                Ok(())
            },
        ))?;
        Ok(())
    }

    pub(super) fn migrate(&mut self, db: &Path) -> Result<(), Error> {
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
            // Version 10 derives the directories inside stored directories.
            if i + 1 == 10 {
                super::graph::index_all_subdirs(&tx).map_err(|e| Error::StoreOpen {
                    path: db.display().to_string(),
                    source: e.into(),
                })?;
            }
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
            if is_gone(&boot, boot_id.as_deref(), pid, pid_start) {
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
}

/// Whether the lineage process that recorded a run of this host is gone (`boot`: this
/// host's boot id now).
pub(super) fn is_gone(
    boot: &Option<String>,
    boot_id: Option<&str>,
    pid: Option<u32>,
    pid_start: Option<i64>,
) -> bool {
    boot.as_deref() != boot_id
        || match (pid, pid_start) {
            (Some(pid), Some(start)) => {
                crate::host::process_start(pid).map(|s| s as i64) != Some(start)
            }
            (Some(pid), None) => crate::host::process_start(pid).is_none(),
            _ => false,
        }
}
