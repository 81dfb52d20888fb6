//! Graph walks over the lineage, as recursive CTEs over the indexed `edges` and `dir_entries`
//! tables: one statement per walk, whatever the depth, never the whole store in memory.
//!
//! An artifact is linked to a run not only through the run's own edges but also through
//! directory contents: a file inside a directory a run produced was produced by that run, and
//! a directory containing a file a run produced descends from that run. Empty files are left
//! out of those containment links: identical empty files are everywhere and would tie
//! unrelated runs together.
//!
//! Every join is a CROSS JOIN, SQLite's way of fixing the join order: start from the walk
//! (small) and follow indexes. Left to itself, the planner (which has no statistics here) may
//! scan every edge of the store and probe the walk, 20x slower on a 100,000-run store.

use anyhow::Result;
use rusqlite::params;

use super::Store;
use crate::model::graph::{Link, UNLIMITED, Via};
use crate::model::{ArtifactKind, Hash};

const ANCESTRY: &str = "
WITH RECURSIVE
  walk(artifact{D}) AS (
    SELECT ?1{D0}
    UNION
    SELECT i.artifact{D1} FROM walk w
      CROSS JOIN edges o ON o.artifact = w.artifact AND o.role = 'output'
      CROSS JOIN edges i ON i.run_id = o.run_id AND i.role IN ('input', 'config') AND i.artifact IS NOT NULL
      WHERE {W}
    UNION
    SELECT i.artifact{D1} FROM walk w
      CROSS JOIN dir_entries d ON d.file_hash = w.artifact AND d.size > 0
      CROSS JOIN edges o ON o.artifact = d.dir_hash AND o.role = 'output'
      CROSS JOIN edges i ON i.run_id = o.run_id AND i.role IN ('input', 'config') AND i.artifact IS NOT NULL
      WHERE {W}
    UNION
    SELECT i.artifact{D1} FROM walk w
      CROSS JOIN dir_entries d ON d.dir_hash = w.artifact AND d.size > 0
      CROSS JOIN edges o ON o.artifact = d.file_hash AND o.role = 'output'
      CROSS JOIN edges i ON i.run_id = o.run_id AND i.role IN ('input', 'config') AND i.artifact IS NOT NULL
      WHERE {W}
  ),
  seen AS (SELECT DISTINCT artifact FROM walk)
SELECT s.artifact, o.run_id, 0, NULL, NULL FROM seen s
  CROSS JOIN edges o ON o.artifact = s.artifact AND o.role = 'output'
UNION
SELECT s.artifact, o.run_id, 1, d.dir_hash, d.path FROM seen s
  CROSS JOIN dir_entries d ON d.file_hash = s.artifact AND d.size > 0
  CROSS JOIN edges o ON o.artifact = d.dir_hash AND o.role = 'output'
UNION
SELECT s.artifact, o.run_id, 2, d.file_hash, d.path FROM seen s
  CROSS JOIN dir_entries d ON d.dir_hash = s.artifact AND d.size > 0
  CROSS JOIN edges o ON o.artifact = d.file_hash AND o.role = 'output'
";

const DESCENDANTS: &str = "
WITH RECURSIVE
  walk(artifact{D}) AS (
    SELECT ?1{D0}
    UNION
    SELECT o.artifact{D1} FROM walk w
      CROSS JOIN edges i ON i.artifact = w.artifact AND i.role IN ('input', 'config')
      CROSS JOIN edges o ON o.run_id = i.run_id AND o.role = 'output' AND o.artifact IS NOT NULL
      WHERE {W}
    UNION
    SELECT o.artifact{D1} FROM walk w
      CROSS JOIN dir_entries d ON d.file_hash = w.artifact AND d.size > 0
      CROSS JOIN edges i ON i.artifact = d.dir_hash AND i.role IN ('input', 'config')
      CROSS JOIN edges o ON o.run_id = i.run_id AND o.role = 'output' AND o.artifact IS NOT NULL
      WHERE {W}
    UNION
    SELECT o.artifact{D1} FROM walk w
      CROSS JOIN dir_entries d ON d.dir_hash = w.artifact AND d.size > 0
      CROSS JOIN edges i ON i.artifact = d.file_hash AND i.role IN ('input', 'config')
      CROSS JOIN edges o ON o.run_id = i.run_id AND o.role = 'output' AND o.artifact IS NOT NULL
      WHERE {W}
  ),
  seen AS (SELECT DISTINCT artifact FROM walk)
SELECT s.artifact, i.run_id, 0, NULL, NULL FROM seen s
  CROSS JOIN edges i ON i.artifact = s.artifact AND i.role IN ('input', 'config')
UNION
SELECT s.artifact, i.run_id, 1, d.dir_hash, d.path FROM seen s
  CROSS JOIN dir_entries d ON d.file_hash = s.artifact AND d.size > 0
  CROSS JOIN edges i ON i.artifact = d.dir_hash AND i.role IN ('input', 'config')
UNION
SELECT s.artifact, i.run_id, 2, d.file_hash, d.path FROM seen s
  CROSS JOIN dir_entries d ON d.dir_hash = s.artifact AND d.size > 0
  CROSS JOIN edges i ON i.artifact = d.file_hash AND i.role IN ('input', 'config')
";

impl Store {
    /// Every (artifact, producing run) pair in the ancestry of `root`, `depth` runs deep.
    pub fn ancestry(&self, root: &Hash, depth: u32) -> Result<Vec<Link>> {
        self.walk(ANCESTRY, root, depth)
    }

    /// Every (artifact, consuming run) pair downstream of `root`, `depth` runs deep.
    pub fn descendants(&self, root: &Hash, depth: u32) -> Result<Vec<Link>> {
        self.walk(DESCENDANTS, root, depth)
    }

    fn walk(&self, template: &str, root: &Hash, depth: u32) -> Result<Vec<Link>> {
        // Identical bytes can close a loop (a run that copies an input into its output
        // directory): without a depth limit the walk keeps one row per artifact, so UNION
        // ends it; with a limit, rows are (artifact, depth) pairs, at most depth x artifacts.
        let sql = if depth >= UNLIMITED {
            template
                .replace("{D}", "")
                .replace("{D0}", "")
                .replace("{D1}", "")
                .replace("{W}", "?2 > 0")
        } else {
            template
                .replace("{D}", ", depth")
                .replace("{D0}", ", 0")
                .replace("{D1}", ", w.depth + 1")
                .replace("{W}", "w.depth + 1 < ?2")
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![root.to_hex(), i64::from(depth)], |r| {
            let artifact: String = r.get(0)?;
            let kind: i64 = r.get(2)?;
            let other: Option<String> = r.get(3)?;
            let path: Option<String> = r.get(4)?;
            Ok((artifact, r.get::<_, String>(1)?, kind, other, path))
        })?;
        let mut links = Vec::new();
        for row in rows {
            let (artifact, run_id, kind, other, path) = row?;
            let Some(artifact) = Hash::parse(&artifact) else {
                continue;
            };
            let other = other.as_deref().and_then(Hash::parse);
            let via = match (kind, other) {
                (1, Some(dir)) => Via::InsideDir {
                    dir,
                    path: path.unwrap_or_default(),
                },
                (2, Some(file)) => Via::ContainsFile {
                    file,
                    path: path.unwrap_or_default(),
                },
                _ => Via::Direct,
            };
            links.push(Link {
                artifact,
                run_id,
                via,
            });
        }
        Ok(links)
    }

    /// Whether any run read or wrote this content (directly or inside a directory).
    pub fn knows_artifact(&self, hash: &Hash) -> Result<bool> {
        let hex = hash.to_hex();
        let known: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM artifacts WHERE hash = ?1)
                 OR EXISTS (SELECT 1 FROM dir_entries WHERE file_hash = ?1)",
            [&hex],
            |r| r.get(0),
        )?;
        Ok(known)
    }

    /// The latest run that wrote an output at `abs_path`, with the hash it recorded there.
    pub fn last_output_at(&self, abs_path: &str) -> Result<Option<(String, Option<Hash>)>> {
        use rusqlite::OptionalExtension;
        let row = self
            .conn
            .query_row(
                "SELECT e.run_id, e.artifact FROM edges e JOIN runs r ON r.id = e.run_id
                 WHERE e.abs_path = ?1 AND e.role = 'output'
                 ORDER BY r.started_at DESC LIMIT 1",
                [abs_path],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()?;
        Ok(row.map(|(id, h)| (id, h.as_deref().and_then(Hash::parse))))
    }

    /// The stored kind and size of an artifact, if any run recorded it as a whole.
    pub fn artifact(&self, hash: &Hash) -> Result<Option<crate::model::ArtifactRef>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row(
                "SELECT kind, size, file_count FROM artifacts WHERE hash = ?1",
                [hash.to_hex()],
                |r| {
                    Ok(crate::model::ArtifactRef {
                        hash: *hash,
                        kind: ArtifactKind::parse(r.get_ref(0)?.as_str()?),
                        size: r.get::<_, i64>(1)? as u64,
                        file_count: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .optional()?)
    }

    /// The files of a stored directory: (path, hash, size), sorted by path.
    pub fn dir_entries(&self, dir: &Hash) -> Result<Vec<(String, Hash, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, file_hash, size FROM dir_entries WHERE dir_hash = ?1 ORDER BY path",
        )?;
        let rows = stmt.query_map([dir.to_hex()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (path, hash, size) = row?;
            if let Some(hash) = Hash::parse(&hash) {
                out.push((path, hash, size as u64));
            }
        }
        Ok(out)
    }
}
