//! What this store has delivered to and fetched from each team store: the runs a team store
//! holds (`pushed`), how far the scan for new runs has gone (`push_mark`, with the runs that
//! were still going then in `held`), and the last server arrival fetched (`pulled`).
//!
//! A team store's annotations (tags and notes) are kept apart from its runs, under the key
//! [`annotations_key`] in place of the team store's name: `pushed` lists the annotations it
//! holds (their ids in `run_id`), `pulled` the last one fetched (its `annotations.seq` on the
//! server, and its id). They are few, and need no table of their own.

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::Store;
use crate::model::{Annotation, AnnotationKind};

/// The key `pushed` and `pulled` keep a team store's annotations under (a URL holds no space,
/// so it is never a team store's own).
pub fn annotations_key(remote: &str) -> String {
    format!("{remote} annotations")
}

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

impl Store {
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
               AND NOT EXISTS (SELECT 1 FROM held_back b WHERE b.remote = ?2 AND b.run_id = runs.id)
             UNION
             SELECT r.rowid, r.id, r.status = 'running',
                    EXISTS (SELECT 1 FROM pushed p WHERE p.remote = ?2 AND p.run_id = r.id)
             FROM held h JOIN runs r ON r.id = h.run_id WHERE h.remote = ?2
               AND NOT EXISTS (SELECT 1 FROM held_back b WHERE b.remote = ?2 AND b.run_id = r.id)
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

    /// The last server arrival (`runs.seq`) received from a team store, and the run it was.
    pub fn pulled(&self, remote: &str) -> Result<(i64, Option<String>)> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq, run_id FROM pulled WHERE remote = ?1",
                [remote],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, None)))
    }

    /// The last server arrival received from a team store (a local store's push and pull).
    pub fn pulled_seq(&self, remote: &str) -> Result<i64> {
        Ok(self.pulled(remote)?.0)
    }

    /// Remember the last server arrival received from a team store, and the run it was.
    pub fn set_pulled(&self, remote: &str, seq: i64, run_id: Option<&str>) -> Result<()> {
        self.conn.execute(
            "INSERT INTO pulled (remote, seq, run_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (remote) DO UPDATE SET seq = excluded.seq, run_id = excluded.run_id",
            params![remote, seq, run_id],
        )?;
        Ok(())
    }

    /// Remember the last server arrival received from a team store.
    pub fn set_pulled_seq(&self, remote: &str, seq: i64) -> Result<()> {
        self.set_pulled(remote, seq, None)
    }

    /// Note where runs arrived on a team store and who submitted them (the runs are here,
    /// or the server holds them: either way it need not be sent them).
    pub fn record_arrivals(&self, remote: &str, arrivals: &[Arrival]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut add = tx.prepare_cached(
                "INSERT OR REPLACE INTO arrivals (remote, seq, run_id, submitted_by)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut pushed = tx.prepare_cached("INSERT OR IGNORE INTO pushed VALUES (?1, ?2)")?;
            for a in arrivals {
                add.execute(params![remote, a.seq, a.run_id, a.submitted_by])?;
                pushed.execute(params![remote, a.run_id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Which of `ids` this store has.
    pub fn runs_here(&self, ids: &[String]) -> Result<std::collections::HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?1)")?;
        let mut here = std::collections::HashSet::new();
        for id in ids {
            if stmt.query_row([id], |r| r.get::<_, bool>(0))? {
                here.insert(id.clone());
            }
        }
        Ok(here)
    }

    /// How many of a team store's runs up to arrival `seq` this store has seen there (taken
    /// or quarantined).
    pub fn arrivals_upto(&self, remote: &str, seq: i64) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM arrivals WHERE remote = ?1 AND seq > 0 AND seq <= ?2)
                  + (SELECT COUNT(*) FROM held_back
                     WHERE remote = ?1 AND why = 'quarantined' AND seq <= ?2)",
            params![remote, seq],
            |r| r.get(0),
        )?)
    }

    /// The database role that submitted a run to a team store, as that store said.
    pub fn submitted_by(&self, run_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT submitted_by FROM arrivals WHERE run_id = ?1 ORDER BY seq DESC LIMIT 1",
                [run_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// The team store's history is not what this store fetched (a restored backup, deleted
    /// rows): forget where it had got to, and read it all again.
    pub fn restart_pull(&self, remote: &str) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        // What it said before stays, negated, until the history is read again (`resynced`).
        tx.execute(
            "UPDATE arrivals SET seq = -seq WHERE remote = ?1 AND seq > 0",
            [remote],
        )?;
        tx.execute("DELETE FROM pulled WHERE remote = ?1", [remote])?;
        tx.execute(
            "DELETE FROM held_back WHERE remote = ?1 AND why = 'quarantined'",
            [remote],
        )?;
        // Its annotations are read again too, and this store's offered to it again.
        let key = annotations_key(remote);
        tx.execute("DELETE FROM pulled WHERE remote = ?1", [&key])?;
        tx.execute("DELETE FROM pushed WHERE remote = ?1", [&key])?;
        tx.commit()?;
        Ok(())
    }

    /// Signed annotations of the runs a team store holds that it has not been given yet,
    /// oldest first (an unsigned one stays here: team stores take only signed ones).
    pub fn pending_annotations(&self, remote: &str) -> Result<Vec<Annotation>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, run_id, kind, text, created_at, author, public_key, signature
             FROM annotations a
             WHERE a.signature IS NOT NULL AND a.public_key IS NOT NULL
               AND EXISTS (SELECT 1 FROM pushed p WHERE p.remote = ?1 AND p.run_id = a.run_id)
               AND NOT EXISTS (SELECT 1 FROM pushed p WHERE p.remote = ?2 AND p.run_id = a.id)
             ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map(params![remote, annotations_key(remote)], |r| {
            let kind: String = r.get(2)?;
            Ok(Annotation {
                id: r.get(0)?,
                run_id: r.get(1)?,
                kind: AnnotationKind::parse(&kind).unwrap_or(AnnotationKind::Note),
                text: r.get(3)?,
                created_at: r.get(4)?,
                author: r.get(5)?,
                public_key: r.get(6)?,
                signature: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many annotations wait for delivery to a team store (their runs' delivery first).
    pub fn annotations_waiting(&self, remote: &str) -> Result<usize> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM annotations a
             WHERE a.signature IS NOT NULL AND a.public_key IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM pushed p WHERE p.remote = ?1 AND p.run_id = a.id)
               AND NOT EXISTS (SELECT 1 FROM held_back b
                               WHERE b.remote = ?2 AND b.run_id = a.run_id)",
            params![annotations_key(remote), remote],
            |r| r.get::<_, i64>(0),
        )? as usize)
    }

    /// Remember that a team store holds these annotations (or is never to be given them).
    pub fn mark_annotations_pushed(&self, remote: &str, ids: &[String]) -> Result<()> {
        self.mark_pushed(&annotations_key(remote), ids)
    }

    /// The last annotation fetched from a team store: its `seq` there, and its id.
    pub fn annotations_pulled(&self, remote: &str) -> Result<(i64, Option<String>)> {
        self.pulled(&annotations_key(remote))
    }

    /// Remember the last annotation fetched from a team store (seq 0: none, read them all
    /// again).
    pub fn set_annotations_pulled(&self, remote: &str, seq: i64, id: Option<&str>) -> Result<()> {
        if seq == 0 {
            self.conn.execute(
                "DELETE FROM pulled WHERE remote = ?1",
                [annotations_key(remote)],
            )?;
            return Ok(());
        }
        self.set_pulled(&annotations_key(remote), seq, id)
    }

    /// After reading a team store's whole history again: the runs it no longer has that
    /// `me` (this machine's database role) submitted, or that it never had, are delivered
    /// again; those others submitted stay here (the server lost them, or they were deleted
    /// behind lineage's back). Returns how many will be delivered again.
    pub fn resynced(&self, remote: &str, me: &str) -> Result<usize> {
        let stale: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM arrivals WHERE remote = ?1 AND seq < 0)",
            [remote],
            |r| r.get(0),
        )?;
        if !stale {
            return Ok(0);
        }
        let tx = self.conn.unchecked_transaction()?;
        let lost = tx.execute(
            "DELETE FROM pushed WHERE remote = ?1
               AND run_id NOT IN (SELECT run_id FROM arrivals WHERE remote = ?1 AND seq > 0)
               AND run_id NOT IN (SELECT run_id FROM tombstones WHERE remote = ?1)
               AND (run_id NOT IN (SELECT run_id FROM arrivals WHERE remote = ?1 AND seq < 0)
                    OR run_id IN (SELECT run_id FROM arrivals
                                  WHERE remote = ?1 AND seq < 0 AND submitted_by = ?2))",
            params![remote, me],
        )?;
        tx.execute(
            "DELETE FROM arrivals WHERE remote = ?1 AND seq < 0",
            [remote],
        )?;
        tx.execute("DELETE FROM push_mark WHERE remote = ?1", [remote])?;
        tx.commit()?;
        Ok(lost)
    }

    /// Hold a run back from a team store: `why` is 'refused' (by the server, when
    /// delivered), 'forgotten' (never to be delivered) or 'quarantined' (fetched, and not
    /// taken here).
    pub fn hold_back(
        &self,
        remote: &str,
        run_id: &str,
        why: &str,
        seq: Option<i64>,
        reason: &str,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO held_back (remote, run_id, why, seq, reason, at)
             VALUES (?1, ?2, ?3, ?4, ?5, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            params![remote, run_id, why, seq, reason],
        )?;
        Ok(())
    }

    /// No longer hold a run back from a team store.
    pub fn release(&self, remote: &str, run_id: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM held_back WHERE remote = ?1 AND run_id = ?2",
            params![remote, run_id],
        )?;
        Ok(())
    }

    /// The runs held back from a team store (all team stores: `remote` None).
    pub fn held_back(&self, remote: Option<&str>) -> Result<Vec<HeldBack>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT remote, run_id, why, seq, reason, at FROM held_back
             WHERE ?1 IS NULL OR remote = ?1 ORDER BY at, run_id",
        )?;
        let rows = stmt.query_map([remote], |r| {
            Ok(HeldBack {
                remote: r.get(0)?,
                run_id: r.get(1)?,
                why: r.get(2)?,
                seq: r.get(3)?,
                reason: r.get(4)?,
                at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A team store deleted a run: delete it here too (unless a run of this store's reruns
    /// it: then it stays, and the caller says so). Returns whether it was deleted.
    pub fn apply_tombstone(&self, remote: &str, t: &Tombstone) -> Result<bool> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO tombstones VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                remote,
                t.run_id,
                t.seq,
                t.deleted_at,
                t.deleted_by,
                t.reason
            ],
        )?;
        let rerun: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE rerun_of = ?1)",
            [&t.run_id],
            |r| r.get(0),
        )?;
        let mut deleted = false;
        // Its arrival is forgotten with it: the server's history lost it on purpose.
        tx.execute(
            "DELETE FROM arrivals WHERE remote = ?1 AND run_id = ?2",
            params![remote, t.run_id],
        )?;
        tx.execute(
            "DELETE FROM held_back WHERE remote = ?1 AND run_id = ?2",
            params![remote, t.run_id],
        )?;
        if !rerun {
            // SQLite gives the next run the largest rowid + 1: were this run the last, the
            // next would take its rowid, which the scan for runs to deliver has passed.
            tx.execute(
                "UPDATE push_mark SET upto = MIN(upto,
                     COALESCE((SELECT rowid FROM runs WHERE id = ?1), upto + 1) - 1)",
                [&t.run_id],
            )?;
            for sql in [
                "DELETE FROM annotations WHERE run_id = ?1",
                "DELETE FROM signatures WHERE run_id = ?1",
                "DELETE FROM params WHERE run_id = ?1",
                "DELETE FROM metrics WHERE run_id = ?1",
                "DELETE FROM edges WHERE run_id = ?1",
            ] {
                tx.execute(sql, [&t.run_id])?;
            }
            deleted = tx.execute("DELETE FROM runs WHERE id = ?1", [&t.run_id])? > 0;
        }
        tx.commit()?;
        Ok(deleted)
    }

    /// Drop runs waiting for delivery to a team store from its queue (`lineage team
    /// forget`): all of them (`ids` None) or those named. They stay in this store.
    pub fn forget(&self, remote: &str, ids: Option<&[String]>) -> Result<Vec<String>> {
        let pending = self.pending_push(remote)?;
        let chosen: Vec<String> = match ids {
            None => pending.ids.clone(),
            Some(ids) => pending
                .ids
                .iter()
                .filter(|p| ids.contains(p))
                .cloned()
                .collect(),
        };
        for id in &chosen {
            self.hold_back(
                remote,
                id,
                "forgotten",
                None,
                "forgotten: never to be delivered",
            )?;
        }
        Ok(chosen)
    }
}

/// A run's arrival on a team store.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Its arrival number on the server (`runs.seq`).
    pub seq: i64,
    /// The run.
    pub run_id: String,
    /// The database role that submitted it (the server's `recorded_by`).
    pub submitted_by: Option<String>,
}

/// A run deleted on a team store.
#[derive(Debug, Clone)]
pub struct Tombstone {
    /// Its arrival number on the server.
    pub seq: i64,
    /// The run deleted.
    pub run_id: String,
    /// When (UTC).
    pub deleted_at: String,
    /// The role that deleted it.
    pub deleted_by: String,
    /// Why, as its deleter said.
    pub reason: String,
}

/// A run that does not move between this store and a team store (`Store::hold_back`).
#[derive(Debug, Clone)]
pub struct HeldBack {
    /// The team store.
    pub remote: String,
    /// The run.
    pub run_id: String,
    /// 'refused', 'forgotten' or 'quarantined'.
    pub why: String,
    /// Its arrival number, for a quarantined run.
    pub seq: Option<i64>,
    /// The reason, as said when it was held back.
    pub reason: String,
    /// When (UTC).
    pub at: String,
}
