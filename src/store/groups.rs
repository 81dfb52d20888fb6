//! Distributed jobs (docs/recording.md, "Distributed jobs"): the runs that are ranks of one
//! launch share `capture.group.id`. Found through the two partial indexes of schema 16, which
//! hold only such runs: the ranks among the runs `list` shows, and the ranks of one launch.

use anyhow::{Context as _, Result};
use rusqlite::OptionalExtension;

use super::Store;
use crate::model::{Group, GroupMember, GroupRow, Resources, Status};

/// A run's launch id as the indexes of schema 16 hold it (migrations/0016_groups.sql): the
/// same expression, so that SQLite uses them; NULL for a capture that is not JSON.
macro_rules! group_id {
    () => {
        "(CASE WHEN json_valid(capture) THEN json_extract(capture, '$.group.id') END)"
    };
}

impl Store {
    /// Whether any run of this store is a rank of a launch (one probe of an index that holds
    /// only ranks): `list` collapses launches only then.
    pub fn any_ranks(&self) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT EXISTS (SELECT 1 FROM runs INDEXED BY runs_ranked WHERE ",
            group_id!(),
            " IS NOT NULL)"
        ))?;
        Ok(stmt.query_row([], |r| r.get(0))?)
    }

    /// The launch run `id` is a rank of, if it is one: one probe of the index that holds only
    /// ranks, never reading the capture of a run that is none (for `list`, a row at a time).
    pub fn launch_of(&self, id: &str) -> Result<Option<String>> {
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT ",
            group_id!(),
            " FROM runs INDEXED BY runs_ranked WHERE id = ?1 AND ",
            group_id!(),
            " IS NOT NULL"
        ))?;
        let group = stmt
            .query_row([id], |r| r.get::<_, rusqlite::types::Value>(0))
            .optional()?;
        // A group id is text; anything else was written by hand and groups nothing.
        Ok(match group {
            Some(rusqlite::types::Value::Text(g)) => Some(g),
            _ => None,
        })
    }

    /// The recorded ranks of launch `group`, by rank (then id), with what the lowest rank's
    /// capture says of the launch; None when no run of this store is one of its ranks.
    pub fn group(&self, group: &str) -> Result<Option<GroupRow>> {
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT id, status, exit_code, signal, started_at, ended_at, hostname,
                    json_extract(capture, '$.group'), resources
             FROM runs WHERE ",
            group_id!(),
            " = ?1 AND ",
            group_id!(),
            " IS NOT NULL"
        ))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    /// A store holding runs with these captures, inserted as rows (ids in order).
    fn store_with(captures: &[&str]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        for (i, capture) in captures.iter().enumerate() {
            store
                .conn
                .execute(
                    "INSERT INTO runs (id, status, argv, cwd, started_at, ended_at, exit_code,
                                       hostname, capture)
                     VALUES (?1, 'succeeded', x'00', x'2f', ?2, ?2, 0, 'node', ?3)",
                    params![
                        format!("run-{i}"),
                        format!("2026-11-26T00:00:0{i}.000000Z"),
                        capture
                    ],
                )
                .expect("insert");
        }
        (dir, store)
    }

    fn rank(group: &str, rank: u32) -> String {
        format!(
            r#"{{"notes": [], "group": {{"id": "{group}", "launcher": "slurm",
                "launch": "slurm job 1 step 0", "rank": {rank}, "world_size": 2}}}}"#
        )
    }

    #[test]
    fn ranks_are_found_through_their_indexes_and_a_broken_capture_is_none() {
        let (a1, a0, b0) = (rank("a", 1), rank("a", 0), rank("b", 0));
        let (_dir, store) = store_with(&["{broken", "{}", &a1, &a0, &b0]);
        let launches: Vec<Option<String>> = (0..5)
            .map(|i| store.launch_of(&format!("run-{i}")).expect("launch_of"))
            .collect();
        let a = Some("a".to_string());
        assert_eq!(launches, [None, None, a.clone(), a, Some("b".into())]);
        let row = store.group("a").expect("group").expect("a launch");
        let ids: Vec<(u32, &str)> = row
            .members
            .iter()
            .map(|m| (m.rank, m.id.as_str()))
            .collect();
        assert_eq!(ids, [(0, "run-3"), (1, "run-2")]);
        assert_eq!(row.group.rank, 0, "the lowest rank's word");
        assert!(store.group("c").expect("group").is_none());
        // Neither query reads a capture the indexes do not name.
        for (sql, index) in [
            (
                concat!(
                    "SELECT id FROM runs WHERE id BETWEEN 'a' AND 'b' AND ",
                    group_id!(),
                    " IS NOT NULL"
                ),
                "runs_ranked",
            ),
            (
                concat!(
                    "SELECT id FROM runs WHERE ",
                    group_id!(),
                    " = 'a' AND ",
                    group_id!(),
                    " IS NOT NULL"
                ),
                "runs_by_group",
            ),
        ] {
            let plan: String = store
                .conn
                .query_row(&format!("EXPLAIN QUERY PLAN {sql}"), [], |r| r.get(3))
                .expect("plan");
            assert!(plan.contains(index), "{plan}");
        }
    }
}
