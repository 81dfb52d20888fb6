//! Distributed jobs (docs/recording.md, "Distributed jobs"): the runs that are ranks of one
//! launch share `capture.group.id`. Found through the two partial indexes of schema 16, which
//! hold only such runs: the ranks among the runs `list` shows, and the ranks of one launch.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use rusqlite::params;

use super::Store;
use crate::model::{Group, GroupMember, GroupRow, Resources, Status};

impl Store {
    /// Of the runs whose ids lie between `first` and `last` (both included), those that are
    /// ranks of a launch: run id -> group id. Reads no other run's capture.
    pub fn ranks_between(&self, first: &str, last: &str) -> Result<HashMap<String, String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, json_extract(capture, '$.group.id') FROM runs
             WHERE id BETWEEN ?1 AND ?2 AND json_extract(capture, '$.group.id') IS NOT NULL",
        )?;
        let rows = stmt.query_map(params![first, last], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, rusqlite::types::Value>(1)?))
        })?;
        let mut ranks = HashMap::new();
        for row in rows {
            // A group id is text; anything else was written by hand and groups nothing.
            if let (id, rusqlite::types::Value::Text(group)) = row? {
                ranks.insert(id, group);
            }
        }
        Ok(ranks)
    }

    /// The recorded ranks of launch `group`, by rank (then id), with what the lowest rank's
    /// capture says of the launch; None when no run of this store is one of its ranks.
    pub fn group(&self, group: &str) -> Result<Option<GroupRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, status, exit_code, signal, started_at, ended_at, hostname,
                    json_extract(capture, '$.group'), resources
             FROM runs
             WHERE json_extract(capture, '$.group.id') = ?1
               AND json_extract(capture, '$.group.id') IS NOT NULL",
        )?;
        let rows = stmt
            .query_map([group], |r| {
                Ok((
                    GroupMember {
                        id: r.get(0)?,
                        rank: 0,
                        local_rank: None,
                        hostname: r.get(6)?,
                        status: Status::Running,
                        exit_code: r.get(2)?,
                        signal: r.get(3)?,
                        started_at: r.get(4)?,
                        ended_at: r.get(5)?,
                        resources: None,
                    },
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut launch: Option<Group> = None;
        let mut members = Vec::with_capacity(rows.len());
        for (mut m, status, group, resources) in rows {
            m.status = Status::parse(&status).with_context(|| {
                format!(
                    "run {} has the status {status:?}, which this lineage does not know: upgrade lineage",
                    m.id
                )
            })?;
            let g: Group = serde_json::from_str(&group)
                .with_context(|| format!("run {}: its launch cannot be read", m.id))?;
            m.rank = g.rank;
            m.local_rank = g.local_rank;
            m.resources = resources.and_then(|r| serde_json::from_str::<Resources>(&r).ok());
            if launch.as_ref().is_none_or(|l| g.rank < l.rank) {
                launch = Some(g);
            }
            members.push(m);
        }
        members.sort_by(|a, b| (a.rank, &a.id).cmp(&(b.rank, &b.id)));
        Ok(launch.map(|group| GroupRow { group, members }))
    }
}
