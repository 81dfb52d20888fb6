//! What this store has delivered to and fetched from each team store: the runs a team store
//! holds (`pushed`), how far the scan for new runs has gone (`push_mark`, with the runs that
//! were still going then in `held`), and the last server arrival fetched (`pulled`).

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::Store;

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

    /// Remember the last server arrival received from a team store.
    pub fn set_pulled_seq(&self, remote: &str, seq: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO pulled VALUES (?1, ?2) ON CONFLICT (remote) DO UPDATE SET seq = excluded.seq",
            params![remote, seq],
        )?;
        Ok(())
    }
}
