//! Graph walks over the lineage, as recursive CTEs over the indexed `edges` and `dir_manifest`
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
use crate::model::graph::{Direction, Link, UNLIMITED, Via};
use crate::model::{ArtifactKind, Hash};

/// How a run is linked to an artifact reached by a walk (`w.artifact`): SQL joins from the
/// walk to the run's edge `e`, the `Via` kind (0 direct, 1 inside a directory the edge
/// names, 2 containing what the edge names), and the other artifact and path of that link.
/// `{ROLE}` is the edge's role condition; `{PRODUCT}` adds, for outputs, that the job wrote
/// the bytes (docs/lineage-model.md).
struct Hop {
    joins: &'static str,
    kind: u8,
    other: &'static str,
    path: &'static str,
}

const HOPS: &[Hop] = &[
    // The run's edge names the artifact itself.
    Hop {
        joins: "CROSS JOIN edges e ON e.artifact = w.artifact AND {ROLE}{PRODUCT}",
        kind: 0,
        other: "NULL",
        path: "NULL",
    },
    // The artifact is a file inside a directory the edge names (and, for an output, one of
    // the files the job wrote).
    Hop {
        joins: "CROSS JOIN dir_manifest d ON d.file_hash = unhex(w.artifact) AND d.size > 0
                CROSS JOIN edges e ON e.artifact = lower(hex(d.dir_hash)) AND {ROLE}{PRODUCT}
                  AND (e.kept IS NULL OR d.path NOT IN (SELECT value FROM json_each(e.kept)))",
        kind: 1,
        other: "lower(hex(d.dir_hash))",
        path: "d.path",
    },
    // The artifact is a directory holding a file the edge names. Upstream, only a file big
    // enough to be told apart (`{MIN}`): a 1-byte `.gitkeep` matches every `echo > flag` of
    // the store, and would make its run the producer of every directory holding one.
    Hop {
        joins: "CROSS JOIN dir_manifest d ON d.dir_hash = unhex(w.artifact) AND d.size >= {MIN}
                CROSS JOIN edges e ON e.artifact = lower(hex(d.file_hash)) AND {ROLE}{PRODUCT}",
        kind: 2,
        other: "lower(hex(d.file_hash))",
        path: "d.path",
    },
    // The artifact is a directory inside a directory the edge names (and, for an output,
    // one in which the job wrote a file).
    Hop {
        joins: "CROSS JOIN dir_subdirs d ON d.sub_hash = w.artifact
                CROSS JOIN edges e ON e.artifact = d.dir_hash AND {ROLE}{PRODUCT}
                  AND (e.kept IS NULL OR EXISTS (
                    SELECT 1 FROM dir_manifest f WHERE f.dir_hash = unhex(d.dir_hash)
                      AND substr(f.path, 1, length(d.path) + 1) = d.path || '/'
                      AND f.path NOT IN (SELECT value FROM json_each(e.kept))))",
        kind: 1,
        other: "d.dir_hash",
        path: "d.path",
    },
    // The artifact is a directory holding a directory the edge names.
    Hop {
        joins: "CROSS JOIN dir_subdirs d ON d.dir_hash = w.artifact
                CROSS JOIN edges e ON e.artifact = d.sub_hash AND {ROLE}{PRODUCT}",
        kind: 2,
        other: "d.sub_hash",
        path: "d.path",
    },
];

/// An output edge is a product only where its job wrote it.
const PRODUCT: &str = " AND e.written IS NOT 0";
const OUTPUT: &str = "e.role = 'output'";
const READ: &str = "e.role IN ('input', 'config')";
/// The runs a walk goes through: succeeded ones (?3 = 0), or every finished one (?3 = 1).
/// A run whose end is before its start (a clock stepped back) is no one's cause.
const FINISHED: &str = "r.id = e.run_id AND r.ended_at IS NOT NULL
    AND r.ended_at >= r.started_at AND (r.status = 'succeeded' OR ?3 = 1)";

/// [`walk_sql`], built once per process for each of its four forms (a command that looks up
/// ten thousand files by their bytes walks ten thousand times).
fn walk_sql_for(direction: crate::model::graph::Direction, limited: bool) -> &'static str {
    use crate::model::graph::Direction;
    static SQL: [std::sync::OnceLock<String>; 4] = [const { std::sync::OnceLock::new() }; 4];
    let i = match direction {
        Direction::Ancestry => 0,
        Direction::Descendants => 2,
    } + usize::from(limited);
    SQL[i].get_or_init(|| walk_sql(direction, limited))
}

/// The walk's SQL: rows (artifact, run, via kind, other artifact, path).
///
/// Causes come first: upstream, each artifact is walked with the start of the run that read
/// it (`bound`), and only a run that ended by then produced it for that reader; downstream,
/// with the end of the run that wrote it, and only a run that started after read it. A run
/// is never its own ancestor, and no walk closes a loop.
fn walk_sql(direction: crate::model::graph::Direction, limited: bool) -> String {
    use crate::model::graph::Direction;
    let (near, far, bound_ok, next_bound) = match direction {
        Direction::Ancestry => (OUTPUT, READ, "r.ended_at <= w.bound", "r.started_at"),
        Direction::Descendants => (READ, OUTPUT, "r.started_at >= w.bound", "r.ended_at"),
    };
    let near_product = if near == OUTPUT { PRODUCT } else { "" };
    let min = match direction {
        Direction::Ancestry => "64",
        Direction::Descendants => "1",
    };
    let far_product = if far == OUTPUT { PRODUCT } else { "" };
    let (d, d0, d1, cond) = if limited {
        (", depth", ", 0", ", w.depth + 1", "w.depth + 1 < ?2")
    } else {
        ("", "", "", "?2 > 0")
    };
    let mut sql = format!("WITH RECURSIVE\n  walk(artifact, bound{d}) AS (\n    SELECT ?1, ?4{d0}");
    for hop in HOPS {
        let joins = hop
            .joins
            .replace("{ROLE}", near)
            .replace("{PRODUCT}", near_product)
            .replace("{MIN}", min);
        sql += &format!(
            "\n    UNION\n    SELECT x.artifact, {next_bound}{d1} FROM walk w
      {joins}
      CROSS JOIN runs r ON {FINISHED} AND {bound_ok}
      CROSS JOIN edges x ON x.run_id = e.run_id AND {far_x} AND x.artifact IS NOT NULL{far_px}
      WHERE {cond}",
            far_x = far.replace("e.", "x."),
            far_px = far_product.replace("e.", "x."),
        );
    }
    sql += "\n  ),\n  seen AS (SELECT DISTINCT artifact, bound FROM walk)";
    let mut first = true;
    for hop in HOPS {
        let joins = hop
            .joins
            .replace("{ROLE}", near)
            .replace("{PRODUCT}", near_product)
            .replace("{MIN}", min);
        sql += if first { "\n" } else { "\nUNION\n" };
        first = false;
        sql += &format!(
            "SELECT w.artifact, e.run_id, {kind}, {other}, {path} FROM seen w
  {joins}
  CROSS JOIN runs r ON {FINISHED} AND {bound_ok}",
            kind = hop.kind,
            other = hop.other,
            path = hop.path,
        );
    }
    sql
}

/// Derive the directories inside stored directory `dir_hash` from its manifest and keep
/// them in `dir_subdirs` (each a Merkle hash over its own files, as if hashed on its own),
/// so that a directory inside an output directory is traced like a file inside it.
/// Directories of empty files only are left out, as empty files are.
pub(crate) fn index_subdirs(conn: &rusqlite::Connection, dir_hash: &str) -> Result<()> {
    index_subdirs_from(
        conn,
        dir_hash,
        "SELECT path, lower(hex(file_hash)), size, executable FROM dir_manifest
         WHERE dir_hash = unhex(?1)",
    )
}

/// [`index_subdirs`] reading the manifest with `select` (the schema before version 18 kept
/// it as hex text in the table `dir_entries`).
fn index_subdirs_from(conn: &rusqlite::Connection, dir_hash: &str, select: &str) -> Result<()> {
    let mut stmt = conn.prepare_cached(select)?;
    let mut groups = Subdirs::new();
    let rows = stmt.query_map([dir_hash], manifest_row)?;
    for row in rows {
        let (path, hash, size, exec) = row?;
        let Some(hash) = Hash::parse(&hash) else {
            continue;
        };
        add_to_subdirs(&mut groups, &path, hash, size.max(0) as u64, exec);
    }
    insert_subdirs(conn, dir_hash, groups)
}

/// A manifest row as selected here and by the recording path: path, file hash in hex,
/// size, executable bit.
pub(crate) fn manifest_row(r: &rusqlite::Row) -> rusqlite::Result<(String, String, i64, bool)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

/// [`index_subdirs`] from the directory's manifest entries (path, file hash, size,
/// executable) at hand, as a new manifest is written.
pub(crate) fn index_subdirs_of<'a>(
    conn: &rusqlite::Connection,
    dir_hash: &str,
    entries: impl Iterator<Item = (&'a str, Hash, u64, bool)>,
) -> Result<()> {
    let mut groups = Subdirs::new();
    for (path, hash, size, exec) in entries {
        add_to_subdirs(&mut groups, path, hash, size, exec);
    }
    insert_subdirs(conn, dir_hash, groups)
}

/// Each directory inside a stored directory, with the entries below it (paths inside it).
type Subdirs = std::collections::BTreeMap<String, Vec<super::inbound::Entry>>;

/// Add a manifest entry to every directory around it.
fn add_to_subdirs(groups: &mut Subdirs, path: &str, hash: Hash, size: u64, exec: bool) {
    let mut at = 0;
    while let Some(slash) = path[at..].find('/') {
        let end = at + slash;
        groups.entry(path[..end].to_string()).or_default().push((
            path[end + 1..].to_string(),
            hash,
            size,
            exec,
        ));
        at = end + 1;
    }
}

/// [`index_subdirs_of`] in memory bounded by the tree's depth, not its size, for entries in
/// the walk's order (the order they were hashed in): each directory's Merkle hash is fed as
/// its entries go by and kept once the walk has left it. False, and nothing written, where
/// the entries are not in that order (a manifest from elsewhere): index it in memory then.
pub(crate) fn index_subdirs_streamed(
    conn: &rusqlite::Connection,
    dir_hash: &str,
    entries: impl Iterator<Item = Result<(String, Hash, u64, bool)>>,
) -> Result<bool> {
    let mut stream = SubdirStream::default();
    for e in entries {
        let (path, hash, size, exec) = e?;
        if !stream.add(&path, hash, size, exec) {
            return Ok(false);
        }
    }
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO dir_subdirs (dir_hash, path, sub_hash) VALUES (?1, ?2, ?3)",
    )?;
    for (path, sub) in stream.finish() {
        insert.execute(params![dir_hash, path, sub.to_hex()])?;
    }
    Ok(true)
}

/// The directories a walk is in, each with its Merkle hash so far, and those it has left.
#[derive(Default)]
struct SubdirStream {
    open: Vec<OpenSubdir>,
    /// The last entry's path as bytes (`model::path_bytes`), which the next must follow.
    last: Option<Vec<u8>>,
    /// The directories left, with their hashes (of empty files only: left out).
    done: Vec<(String, Hash)>,
}

struct OpenSubdir {
    /// Its path inside the directory, as stored.
    path: String,
    /// Where, in an entry's path as bytes, its entries' own paths begin.
    rel_at: usize,
    merkle: blake3::Hasher,
    size: u64,
}

impl SubdirStream {
    /// Feed one entry; false when it does not come after the last in the walk's order (the
    /// components of its path as bytes compared in turn, as `inbound::dir_hash` sorts), or
    /// its path as bytes splits otherwise than as stored.
    fn add(&mut self, path: &str, hash: Hash, size: u64, exec: bool) -> bool {
        let raw = crate::model::path_bytes(path);
        let slash = |c: &u8| *c == b'/';
        if let Some(last) = &self.last
            && raw.split(slash).cmp(last.split(slash)) != std::cmp::Ordering::Greater
        {
            return false;
        }
        let text: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
        let bytes: Vec<usize> = (0..raw.len()).filter(|i| raw[*i] == b'/').collect();
        if text.len() != bytes.len() {
            return false;
        }
        // Leave the directories this entry is not in.
        let mut keep = 0;
        while keep < self.open.len().min(text.len()) && self.open[keep].path == path[..text[keep]] {
            keep += 1;
        }
        while self.open.len() > keep {
            self.close();
        }
        for (t, b) in text.iter().zip(&bytes).skip(keep) {
            self.open.push(OpenSubdir {
                path: path[..*t].to_string(),
                rel_at: b + 1,
                merkle: blake3::Hasher::new_derive_key(crate::hash::DIR_CONTEXT),
                size: 0,
            });
        }
        for dir in &mut self.open {
            let rel = &raw[dir.rel_at..];
            dir.merkle.update(&(rel.len() as u64).to_le_bytes());
            dir.merkle.update(rel);
            dir.merkle.update(&[u8::from(exec)]);
            dir.merkle.update(&hash.0);
            dir.size = dir.size.saturating_add(size);
        }
        self.last = Some(raw);
        true
    }

    fn close(&mut self) {
        if let Some(dir) = self.open.pop()
            && dir.size > 0
        {
            self.done
                .push((dir.path, Hash(*dir.merkle.finalize().as_bytes())));
        }
    }

    fn finish(mut self) -> Vec<(String, Hash)> {
        while !self.open.is_empty() {
            self.close();
        }
        self.done
    }
}

/// Keep each directory's Merkle hash in `dir_subdirs` (those of empty files only left out).
fn insert_subdirs(conn: &rusqlite::Connection, dir_hash: &str, groups: Subdirs) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO dir_subdirs (dir_hash, path, sub_hash) VALUES (?1, ?2, ?3)",
    )?;
    for (path, mut entries) in groups {
        let (sub, size, _) = super::inbound::dir_hash(&mut entries);
        if size > 0 {
            insert.execute(params![dir_hash, path, sub.to_hex()])?;
        }
    }
    Ok(())
}

/// Index the directories inside every stored directory (once, when the store learns to:
/// the migration to schema version 10, when manifests were hex text in `dir_entries`).
pub(crate) fn index_all_subdirs(conn: &rusqlite::Connection) -> Result<()> {
    let dirs: Vec<String> = conn
        .prepare("SELECT DISTINCT dir_hash FROM dir_entries WHERE instr(path, '/') > 0")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for d in dirs {
        index_subdirs_from(
            conn,
            &d,
            "SELECT path, file_hash, size, executable FROM dir_entries WHERE dir_hash = ?1",
        )?;
    }
    Ok(())
}

/// The run that last wrote an output at a path or around it, the hash it recorded for the
/// path, and, when the output was a directory around it, (the path inside, the directory).
pub type OutputAround = (String, Option<Hash>, Option<(String, String)>);

impl Store {
    /// Every (artifact, producing run) pair in the ancestry of `root`, `depth` runs deep.
    pub fn ancestry(&self, root: &Hash, depth: u32, all: bool) -> Result<Vec<Link>> {
        self.walk(Direction::Ancestry, root, depth, all)
    }

    /// Every (artifact, consuming run) pair downstream of `root`, `depth` runs deep.
    pub fn descendants(&self, root: &Hash, depth: u32, all: bool) -> Result<Vec<Link>> {
        self.walk(Direction::Descendants, root, depth, all)
    }

    /// `all`: failed and interrupted runs too (`--all`), not only succeeded ones.
    fn walk(&self, direction: Direction, root: &Hash, depth: u32, all: bool) -> Result<Vec<Link>> {
        // Identical bytes can meet again (a run that copies its input): without a depth
        // limit the walk keeps one row per (artifact, bound), so UNION ends it; with a limit,
        // rows are (artifact, bound, depth), at most depth x that.
        let mut stmt = self
            .conn
            .prepare_cached(walk_sql_for(direction, depth < UNLIMITED))?;
        // The root is read (or written) now: every finished run may have made it.
        let bound = match direction {
            Direction::Ancestry => "9999-12-31T23:59:59Z",
            Direction::Descendants => "",
        };
        let rows = stmt.query_map(params![root.to_hex(), i64::from(depth), all, bound], |r| {
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
                 OR EXISTS (SELECT 1 FROM dir_manifest WHERE file_hash = unhex(?1))
                 OR EXISTS (SELECT 1 FROM dir_subdirs WHERE sub_hash = ?1)",
            [&hex],
            |r| r.get(0),
        )?;
        Ok(known)
    }

    /// Whether some recorded run declared `abs_path`, or a directory around it, as an output:
    /// such a file is a pipeline's data, not its code.
    pub fn declared_output_at(&self, abs_path: &str) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM edges WHERE abs_path = ?1 AND role = 'output')",
        )?;
        let mut at = abs_path.len();
        loop {
            if stmt.query_row([&abs_path[..at]], |r| r.get::<_, bool>(0))? {
                return Ok(true);
            }
            match abs_path[..at].rfind('/') {
                Some(0) | None => return Ok(false),
                Some(slash) => at = slash,
            }
        }
    }

    /// The latest failed or interrupted run that wrote these bytes as an output (no walk
    /// goes through it without `--all`): its id and status.
    pub fn failed_maker(&self, hash: &Hash) -> Result<Option<(String, crate::model::Status)>> {
        use rusqlite::OptionalExtension;
        let row = self
            .conn
            .query_row(
                "SELECT r.id, r.status FROM edges e CROSS JOIN runs r ON r.id = e.run_id
                 WHERE e.artifact = ?1 AND e.role = 'output' AND e.written IS NOT 0
                   AND r.status IN ('failed', 'interrupted') AND r.ended_at IS NOT NULL
                 ORDER BY r.started_at DESC LIMIT 1",
                [hash.to_hex()],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(id, s)| crate::model::Status::parse(&s).map(|s| (id, s))))
    }

    /// The latest run that wrote an output at `abs_path` or at a directory around it: the
    /// run, the hash it recorded for the path, and, for a directory around it, (the path
    /// inside it, the directory's path as given).
    pub fn last_output_around(&self, abs_path: &str) -> Result<Option<OutputAround>> {
        use rusqlite::OptionalExtension;
        // (started_at, what is returned)
        let mut best: Option<(String, OutputAround)> = None;
        let mut at = abs_path.len();
        loop {
            let candidate = &abs_path[..at];
            let inner = abs_path.get(at + 1..).unwrap_or_default();
            let row = self
                .conn
                .query_row(
                    "SELECT e.run_id, e.artifact, e.path, r.started_at FROM edges e
                     JOIN runs r ON r.id = e.run_id
                     WHERE e.abs_path = ?1 AND e.role = 'output'
                     ORDER BY r.started_at DESC LIMIT 1",
                    [candidate],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    },
                )
                .optional()?;
            if let Some((run, artifact, given, started)) = row {
                let artifact = artifact.as_deref().and_then(Hash::parse);
                let (recorded, within) = if inner.is_empty() {
                    (artifact, None)
                } else {
                    // A file inside the directory, or a directory inside it.
                    let file = match artifact {
                        Some(dir) => self
                            .conn
                            .query_row(
                                "SELECT lower(hex(file_hash)) FROM dir_manifest
                                 WHERE dir_hash = unhex(?1) AND path = ?2
                                 UNION ALL
                                 SELECT sub_hash FROM dir_subdirs WHERE dir_hash = ?1 AND path = ?2",
                                params![dir.to_hex(), inner],
                                |r| r.get::<_, String>(0),
                            )
                            .optional()?
                            .as_deref()
                            .and_then(Hash::parse),
                        None => None,
                    };
                    (file, Some((inner.to_string(), given)))
                };
                if best.as_ref().is_none_or(|b| started > b.0) {
                    best = Some((started, (run, recorded, within)));
                }
            }
            match abs_path[..at].rfind('/') {
                Some(0) | None => break,
                Some(slash) => at = slash,
            }
        }
        Ok(best.map(|(_, found)| found))
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

    /// At most `n` of the non-empty files recorded in directory `dir`: each path inside it
    /// and its hash.
    pub fn some_dir_files(&self, dir: &Hash, n: usize) -> Result<Vec<(String, Hash)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, lower(hex(file_hash)) FROM dir_manifest
             WHERE dir_hash = unhex(?1) AND size > 0 ORDER BY path LIMIT ?2",
        )?;
        let rows = stmt.query_map(rusqlite::params![dir.to_hex(), n as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (path, hash) = row?;
            if let Some(hash) = Hash::parse(&hash) {
                out.push((path, hash));
            }
        }
        Ok(out)
    }

    /// The bytes of file `path` (inside it, as the manifest names it) in stored directory
    /// `dir`, if it holds one by that name.
    pub fn dir_file(&self, dir: &Hash, path: &str) -> Result<Option<Hash>> {
        use rusqlite::OptionalExtension;
        let mut stmt = self.conn.prepare_cached(
            "SELECT lower(hex(file_hash)) FROM dir_manifest WHERE dir_hash = unhex(?1) AND path = ?2",
        )?;
        Ok(stmt
            .query_row(rusqlite::params![dir.to_hex(), path], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .and_then(|h| Hash::parse(&h)))
    }

    /// The files of a stored directory: (path, hash, size), sorted by path.
    pub fn dir_entries(&self, dir: &Hash) -> Result<Vec<(String, Hash, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, lower(hex(file_hash)), size FROM dir_manifest WHERE dir_hash = unhex(?1)
             ORDER BY path",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Subdirectories indexed as the entries go by (in the walk's order) get the hashes the
    /// whole manifest in memory gives, names that sort between `a` and `a/...` and names that
    /// are not UTF-8 included; entries out of that order are refused, not indexed wrong.
    #[test]
    fn subdirectories_streamed_are_those_indexed_in_memory() {
        let names: Vec<Vec<u8>> = [
            &b"a/b/c"[..],
            b"a/b/d",
            b"a.txt",
            b"a b/x",
            b"a/b.c/e",
            b"a/bc",
            b"z/\xff\xfe/q",
            b"z/\xff/r",
            b"z/plain",
            b"empty/only",
            b"deep/1/2/3/4/5/f",
            b"deep/1/2/g",
            b"top",
        ]
        .iter()
        .map(|n| n.to_vec())
        .collect();
        let mut entries: Vec<(Vec<u8>, super::super::inbound::Entry)> = names
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                let size = if raw.starts_with(b"empty/") {
                    0
                } else {
                    i as u64 + 1
                };
                let hash = Hash(*blake3::hash(raw).as_bytes());
                let entry = (crate::model::path_text(raw), hash, size, i % 3 == 0);
                (raw.clone(), entry)
            })
            .collect();
        // The walk's order: the components of the paths as bytes, compared in turn.
        entries.sort_by(|a, b| a.0.split(|c| *c == b'/').cmp(b.0.split(|c| *c == b'/')));

        let mut groups = Subdirs::new();
        for (_, (path, hash, size, exec)) in &entries {
            add_to_subdirs(&mut groups, path, *hash, *size, *exec);
        }
        let mut expected: Vec<(String, Hash)> = groups
            .into_iter()
            .filter_map(|(path, mut members)| {
                let (sub, size, _) = super::super::inbound::dir_hash(&mut members);
                (size > 0).then_some((path, sub))
            })
            .collect();
        let mut stream = SubdirStream::default();
        for (_, (path, hash, size, exec)) in &entries {
            assert!(stream.add(path, *hash, *size, *exec), "{path} refused");
        }
        let mut streamed = stream.finish();
        expected.sort();
        streamed.sort();
        assert_eq!(streamed.len(), 13, "{streamed:?}");
        assert_eq!(streamed, expected);
        assert!(
            !streamed.iter().any(|(p, _)| p == "empty"),
            "empty files only: left out"
        );

        // Out of the walk's order (as a manifest sorted as text is: `a.txt` before `a/b`).
        let mut stream = SubdirStream::default();
        let mut by_text: Vec<&super::super::inbound::Entry> =
            entries.iter().map(|e| &e.1).collect();
        by_text.sort_by(|a, b| a.0.cmp(&b.0));
        let accepted = by_text
            .iter()
            .all(|(path, hash, size, exec)| stream.add(path, *hash, *size, *exec));
        assert!(!accepted, "an order other than the walk's is refused");
    }

    /// Every step of every walk looks its rows up through an index (the manifests' by their
    /// blobs, since schema 18): none scans a table, which on a large store would make each
    /// step cost the store's size.
    #[test]
    fn every_step_of_a_walk_is_an_index_lookup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        for direction in [Direction::Ancestry, Direction::Descendants] {
            for limited in [false, true] {
                let sql = walk_sql(direction, limited);
                let mut stmt = store
                    .conn
                    .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .expect("prepare");
                let plan: Vec<String> = stmt
                    .query_map(params!["00", 1, false, ""], |r| r.get::<_, String>(3))
                    .expect("plan")
                    .collect::<rusqlite::Result<_>>()
                    .expect("rows");
                let scans: Vec<&String> = plan
                    .iter()
                    .filter(|p| p.starts_with("SCAN ") && !p.starts_with("SCAN w"))
                    .filter(|p| !p.contains("json_each") && !p.contains("CONSTANT ROW"))
                    .collect();
                assert!(
                    scans.is_empty(),
                    "{direction:?}, limited {limited}: {scans:?} in {plan:#?}"
                );
                assert!(
                    plan.iter().any(|p| p.contains("dir_manifest_by_file")),
                    "{plan:#?}"
                );
            }
        }
    }
}
