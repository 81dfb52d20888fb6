//! Reading runs back: resolving ids (a prefix of the UUID, or its short form), the short
//! form every command prints, whole runs (capture, edges, params) for any number of ids in
//! three queries, the list, blobs, `blake3:` prefixes and the extra digests of artifacts. A
//! record that cannot be read is an error or a visible note, never silently blank.
//!
//! **Short ids.** A run's short id is the last 8 hex digits of its UUIDv7, random bits (its
//! first digits are the time, shared by every run of the same minute), lengthened to 9, 10,
//! 11 or 12 digits while another run's id ends the same way or starts with those 8 digits;
//! the whole id when even 12 are not enough (an id that is no UUID, which only a store edited
//! by hand holds, prints as its shortest unique prefix). It is made here only
//! (`Store::short_ids`), and `Store::resolve` takes it back beside any prefix of the UUID.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use rusqlite::{Connection, OptionalExtension, params};

use super::{DB_FILE, Store, split_argv};
use crate::error::Error;
use crate::model::{
    ArtifactKind, ArtifactRef, Capture, EdgeRecord, Hash, Param, Resources, Role, RunRecord,
    RunSummary, Status, Written,
};

/// Hex digits of a short id: at least the last 8 of the UUID, at most its last group (12).
const SHORT_ID_DIGITS: std::ops::RangeInclusive<usize> = 8..=12;

/// At most this many candidates are named when an id is ambiguous.
const CANDIDATES_SHOWN: usize = 5;

/// What completes a RUN being typed in the store in `dir`, newest first, with the run's argv
/// (for the shell's help): the ids that start with `typed`, and the short ids that do. Read
/// without creating, migrating or waiting long on the store; nothing when it cannot be read.
pub fn recent_runs(dir: &Path, typed: &str, limit: usize) -> Vec<(String, Vec<Vec<u8>>)> {
    let db = dir.join(DB_FILE);
    if !db.exists() {
        return Vec::new();
    }
    let Ok(conn) = Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let _ = conn.busy_timeout(Duration::from_millis(200));
    let by_id = conn
        .prepare(
            "SELECT id, argv FROM runs WHERE id LIKE ?1 || '%' ORDER BY started_at DESC LIMIT ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![typed, limit as i64], |r| {
                Ok((r.get::<_, String>(0)?, split_argv(&r.get::<_, Vec<u8>>(1)?)))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .unwrap_or_default();
    let mut out = by_id;
    if !typed.is_empty() && typed.len() <= 8 && typed.bytes().all(|b| b.is_ascii_hexdigit()) {
        // Short ids whose last 8 digits start with what was typed (the index on them, a range).
        let by_tail = conn
            .prepare(BY_TAIL_START)
            .and_then(|mut stmt| {
                stmt.query_map(params![typed, limit as i64], |r| {
                    Ok((r.get::<_, String>(0)?, split_argv(&r.get::<_, Vec<u8>>(1)?)))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .unwrap_or_default();
        let ids: Vec<&str> = by_tail.iter().map(|(id, _)| id.as_str()).collect();
        let shorts = short_ids(&conn, &ids).unwrap_or_default();
        out.extend(by_tail.iter().filter_map(|(id, argv)| {
            let short = shorts.get(id)?;
            (short != id && short.starts_with(typed)).then(|| (short.clone(), argv.clone()))
        }));
    }
    out.truncate(limit);
    out
}

/// Whether `s` has the shape of a short id: 8 to 12 hex digits.
fn is_short_shape(s: &str) -> bool {
    SHORT_ID_DIGITS.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `id` is a UUID as lineage writes them (8-4-4-4-12 lowercase hex digits): only
/// those have a short form.
pub(super) fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// The short id of a UUID (see the module's documentation), given the other runs whose last
/// 8 digits are the same and whether another run's id starts with those 8 digits. Longer
/// tails cannot be mistaken for a prefix: a UUID's ninth character is a hyphen.
fn short_form(id: &str, same_tail: &[String], prefixes_another: bool) -> String {
    SHORT_ID_DIGITS
        .map(|n| &id[id.len() - n..])
        .find(|tail| {
            let shared = same_tail.iter().any(|o| o != id && o.ends_with(tail));
            // Only 8 digits can be another UUID's prefix.
            let a_prefix = tail.len() == 8 && prefixes_another;
            !(shared || a_prefix)
        })
        .unwrap_or(id)
        .to_string()
}

/// For each id of a JSON array: the other runs ending in its last 8 digits, whether another
/// run starts with them, and the ids just before and after it (for an id that is no UUID).
/// Every subquery is a lookup (the index on the last 8 digits, the primary key), never a
/// scan.
const SHORT_IDS: &str = "SELECT j.value,
        (SELECT json_group_array(id) FROM runs
         WHERE substr(id, -8) = substr(j.value, -8) AND id <> j.value),
        EXISTS (SELECT 1 FROM runs
                WHERE id >= substr(j.value, -8) AND id < substr(j.value, -8) || x'ff'
                  AND id <> j.value),
        (SELECT max(id) FROM runs WHERE id < j.value),
        (SELECT min(id) FROM runs WHERE id > j.value)
 FROM json_each(?1) j";

/// The runs a short id (8 to 12 digits, ?1) names, at most ?2.
const BY_SHORT_ID: &str = "SELECT id FROM runs
 WHERE substr(id, -8) = substr(?1, -8) AND substr(id, -length(?1)) = ?1
 ORDER BY id LIMIT ?2";

/// The newest runs whose last 8 digits start with ?1, at most ?2, with their argv.
const BY_TAIL_START: &str = "SELECT id, argv FROM runs
 WHERE substr(id, -8) >= ?1 AND substr(id, -8) < ?1 || x'ff'
 ORDER BY started_at DESC LIMIT ?2";

/// Short ids of many runs (in the store or not) in one query: id -> short id.
fn short_ids(conn: &Connection, ids: &[&str]) -> Result<HashMap<String, String>> {
    let mut stmt = conn.prepare_cached(SHORT_IDS)?;
    let rows = stmt.query_map([serde_json::to_string(ids)?], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, bool>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    let mut out = HashMap::new();
    for row in rows {
        let (id, same_tail, prefixes_another, before, after) = row?;
        let short = if is_uuid(&id) {
            // SQLite's json_group_array of text: always a JSON array of strings.
            let same_tail: Vec<String> = serde_json::from_str(&same_tail)?;
            short_form(&id, &same_tail, prefixes_another)
        } else {
            shortest_prefix(&id, before.as_deref(), after.as_deref())
        };
        out.insert(id, short);
    }
    Ok(out)
}

/// An output path and the run that last wrote it: (abs_path, path as given, run id,
/// recorded hash).
pub type LatestOutput = (String, String, String, Option<Hash>);

impl Store {
    /// Resolve a RUN (None: the most recent run) to a full id. RUN is a tag, a prefix of the
    /// id or a short id (its last 8 to 12 digits, see the module's documentation); a string that
    /// names one run either way names it, one that names different runs (a short id that is
    /// also another run's prefix, or digits two runs end with) is ambiguous, never guessed.
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
        // A tag (`lineage tag`): its name never reads as an id (`model::tag_name_problem`
        // refuses hex digits and hyphens alone), so the two never compete.
        if crate::model::tag_name_problem(prefix).is_none() {
            return self
                .tagged(prefix)?
                .ok_or_else(|| Error::RunNotFound(prefix.to_string()).into());
        }
        let prefix = prefix.to_ascii_lowercase();
        let limit = CANDIDATES_SHOWN as i64 + 1;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM runs WHERE id >= ?1 AND id < ?1 || x'ff' ORDER BY id LIMIT ?2",
        )?;
        let mut ids = stmt
            .query_map(params![&prefix, limit], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if is_short_shape(&prefix) {
            let mut stmt = self.conn.prepare_cached(BY_SHORT_ID)?;
            let by_tail = stmt
                .query_map(params![&prefix, limit], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            ids.extend(by_tail);
            ids.sort();
            ids.dedup();
        }
        match ids.len() {
            0 => Err(Error::RunNotFound(prefix).into()),
            1 => Ok(ids.into_iter().next().unwrap_or_default()),
            _ => Err(Error::AmbiguousRun {
                candidates: ids
                    .iter()
                    .take(CANDIDATES_SHOWN)
                    .map(|id| id.to_string())
                    .chain((ids.len() > CANDIDATES_SHOWN).then(|| "...".to_string()))
                    .collect(),
                prefix,
            }
            .into()),
        }
    }

    /// The short id of a run: what every command prints for it (see the module's
    /// documentation), and what `resolve` takes back.
    pub fn short_id(&self, id: &str) -> Result<String> {
        Ok(self
            .short_ids(&[id])?
            .remove(id)
            .unwrap_or_else(|| id.to_string()))
    }

    /// A whole run by its full id.
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
        let rows = stmt
            .query_map([&ids_json], |r| {
                let record = RunRecord {
                    id: r.get(0)?,
                    status: Status::Running,
                    argv: split_argv(&r.get::<_, Vec<u8>>(2)?),
                    cwd: r.get(3)?,
                    started_at: r.get(4)?,
                    ended_at: r.get(5)?,
                    exit_code: r.get(6)?,
                    signal: r.get(7)?,
                    capture: Capture::default(),
                    resources: None,
                    rerun_of: r.get(10)?,
                    edges: Vec::new(),
                    params: Vec::new(),
                    metrics: Vec::new(),
                    unreadable: None,
                };
                let raw: (String, String, Option<String>) = (r.get(1)?, r.get(8)?, r.get(9)?);
                Ok((record, raw))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut runs = HashMap::new();
        for (mut run, (status, capture, resources)) in rows {
            run.status = parse_status(&run.id, &status)?;
            (run.capture, run.resources, run.unreadable) =
                read_capture(&capture, resources.as_deref());
            runs.insert(run.id.clone(), run);
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.run_id, e.role, e.path, e.abs_path, e.changed, a.hash, a.kind, a.size,
                    a.file_count, e.written, e.kept, e.observed
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
                role: Role::Input,
                path: r.get(2)?,
                abs_path: r.get(3)?,
                changed: r.get(4)?,
                artifact,
                written: None,
                observed: crate::model::Seen::from_column(r.get(11)?),
            };
            let written = (r.get::<_, Option<i64>>(9)?, r.get::<_, Option<String>>(10)?);
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                edge,
                written,
            ))
        })?;
        for row in edges {
            let (id, role, mut edge, (written, kept)) = row?;
            edge.role = Role::parse(&role).with_context(|| {
                format!("run {id}: an edge has the unknown role {role:?} in the store")
            })?;
            if edge.role == Role::Output {
                edge.written = Some(Written::from_columns(written, kept.as_deref()));
            }
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
        let mut stmt = self.conn.prepare_cached(
            "SELECT run_id, key, value, source FROM metrics
             WHERE run_id IN (SELECT value FROM json_each(?1)) ORDER BY run_id, key",
        )?;
        let metrics = stmt.query_map([&ids_json], |r| {
            Ok((
                r.get::<_, String>(0)?,
                crate::model::Metric {
                    key: r.get(1)?,
                    value: r.get(2)?,
                    source: r.get(3)?,
                },
            ))
        })?;
        for row in metrics {
            let (id, metric) = row?;
            if let Some(run) = runs.get_mut(&id) {
                run.metrics.push(metric);
            }
        }
        Ok(ids.iter().filter_map(|id| runs.remove(*id)).collect())
    }

    /// The outputs recorded under each of `roots` (absolute paths as the store writes them;
    /// a root is itself included), each with the run that last wrote it among the runs that
    /// succeeded: (abs_path, path as given, run id, recorded hash), by path.
    pub fn latest_outputs_under(&self, roots: &[String]) -> Result<Vec<LatestOutput>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.abs_path, e.path, e.run_id, e.artifact, MAX(r.started_at)
             FROM edges e JOIN runs r ON r.id = e.run_id
             WHERE e.role = 'output' AND r.status = 'succeeded'
               AND (e.written IS NULL OR e.written <> 0)
               AND e.abs_path >= ?1 AND e.abs_path < ?1 || '0'
               AND (e.abs_path = ?1 OR substr(e.abs_path, 1, length(?1) + 1) = ?1 || '/')
             GROUP BY e.abs_path ORDER BY e.abs_path",
        )?;
        let mut out: Vec<LatestOutput> = Vec::new();
        for root in roots {
            let root = root.trim_end_matches('/');
            let rows = stmt.query_map([root], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?;
            for row in rows {
                let (abs, path, run, hash) = row?;
                if out.iter().any(|o| o.0 == abs) {
                    continue;
                }
                let hash = hash.and_then(|h| Hash::parse(&h));
                out.push((abs, path, run, hash));
            }
        }
        Ok(out)
    }

    /// The run that last wrote the output recorded at exactly `abs` (an absolute path as the
    /// store writes it) among the runs that succeeded, and the bytes it wrote there.
    pub fn latest_output_at(&self, abs: &str) -> Result<Option<(String, Option<Hash>)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.run_id, e.artifact, MAX(r.started_at)
             FROM edges e JOIN runs r ON r.id = e.run_id
             WHERE e.role = 'output' AND r.status = 'succeeded'
               AND (e.written IS NULL OR e.written <> 0)
               AND e.abs_path = ?1
             GROUP BY e.abs_path",
        )?;
        let found = stmt
            .query_map([abs], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?
            .next()
            .transpose()?;
        Ok(found.map(|(run, hash)| (run, hash.and_then(|h| Hash::parse(&h)))))
    }

    /// The latest run that succeeded and wrote exactly `bytes` at `abs` (an absolute path as
    /// the store writes it): its id and the output's path as it named it. An earlier writer
    /// of a path whose later writers made other bytes (a copy of a project made before its
    /// original ran again holds the earlier run's output).
    pub fn output_with_bytes_at(
        &self,
        abs: &str,
        bytes: &Hash,
    ) -> Result<Option<(String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.run_id, e.path
             FROM edges e JOIN runs r ON r.id = e.run_id
             WHERE e.role = 'output' AND r.status = 'succeeded'
               AND (e.written IS NULL OR e.written <> 0)
               AND e.abs_path = ?1 AND e.artifact = ?2
             ORDER BY r.started_at DESC, r.id DESC LIMIT 1",
        )?;
        Ok(stmt
            .query_map(params![abs, bytes.to_hex()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .next()
            .transpose()?)
    }

    /// The runs that succeeded and wrote at exactly `abs`, latest first, at most `limit`:
    /// each id, the output's path as it named it, and the bytes it wrote.
    pub fn outputs_at(
        &self,
        abs: &str,
        limit: usize,
    ) -> Result<Vec<(String, String, Option<Hash>)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.run_id, e.path, e.artifact
             FROM edges e JOIN runs r ON r.id = e.run_id
             WHERE e.role = 'output' AND r.status = 'succeeded'
               AND (e.written IS NULL OR e.written <> 0)
               AND e.abs_path = ?1
             ORDER BY r.started_at DESC, r.id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![abs, limit as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (run, path, hash) = row?;
            out.push((run, path, hash.and_then(|h| Hash::parse(&h))));
        }
        Ok(out)
    }

    /// Each distinct (commit, working directory) runs were recorded at, from the index
    /// alone (a store of many runs reads no run's row).
    pub fn recorded_places(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT git_commit, cwd FROM runs INDEXED BY runs_by_commit
             WHERE git_commit IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| {
            let cwd = match r.get_ref(1)? {
                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                    t.to_vec()
                }
                _ => Vec::new(),
            };
            Ok((r.get::<_, String>(0)?, cwd))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The repository root recorded by a run of `commit` in working directory `cwd`.
    pub fn recorded_root(&self, commit: &str, cwd: &[u8]) -> Result<Option<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT json_extract(capture, '$.git.root') FROM runs
             WHERE id = (SELECT id FROM runs INDEXED BY runs_by_commit
                         WHERE git_commit = ?1 AND cwd = ?2 LIMIT 1)",
        )?;
        let root = stmt
            .query_row(rusqlite::params![commit, cwd], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()?;
        Ok(root.flatten())
    }

    /// Whether the manifest of directory `dir` holds bytes `file` at `rel` (its path inside).
    pub fn manifest_holds(&self, dir: &Hash, rel: &str, file: &Hash) -> bool {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM dir_manifest
                 WHERE dir_hash = ?1 AND path = ?2 AND file_hash = ?3)",
            )
            .and_then(|mut s| {
                s.query_row(rusqlite::params![&dir.0[..], rel, &file.0[..]], |r| {
                    r.get(0)
                })
            })
            .unwrap_or(false)
    }

    /// Short ids of many runs in one query (see `short_id`): id -> short id.
    pub fn short_ids(&self, ids: &[&str]) -> Result<HashMap<String, String>> {
        short_ids(&self.conn, ids)
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
                let summary = RunSummary {
                    id: r.get(0)?,
                    status: Status::Running,
                    argv: split_argv(&r.get::<_, Vec<u8>>(2)?),
                    started_at: r.get(3)?,
                    ended_at: r.get(4)?,
                    exit_code: r.get(5)?,
                    rerun_of: r.get(6)?,
                    outputs: Vec::new(),
                    group: None,
                };
                Ok((summary, r.get::<_, String>(1)?, r.get::<_, String>(7)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(mut run, status, outputs)| {
                run.status = parse_status(&run.id, &status)?;
                // SQLite's json_group_array of text: always a JSON array of strings.
                run.outputs = serde_json::from_str(&outputs)?;
                Ok(run)
            })
            .collect()
    }

    /// The hashes known to the store that start with `hex` (lowercase hex digits, any
    /// number): recorded artifacts and the files inside recorded directories, in order.
    pub fn hashes_starting_with(&self, hex: &str) -> Result<Vec<Hash>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT hash FROM artifacts WHERE hash >= ?1 AND hash < ?1 || x'ff'
             UNION
             SELECT lower(hex(file_hash)) FROM dir_manifest WHERE file_hash >= ?2 AND file_hash < ?3
             ORDER BY 1",
        )?;
        let (from, to) = blob_range(hex);
        let hashes = stmt
            .query_map(rusqlite::params![hex, from, to], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(hashes.iter().filter_map(|h| Hash::parse(h)).collect())
    }

    /// Whether the manifest of a directory (by hex hash) is here.
    pub fn has_manifest(&self, dir_hex: &str) -> bool {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM dir_manifest WHERE dir_hash = unhex(?1))",
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
            "INSERT OR REPLACE INTO extra_digests (artifact, algorithm, digest) VALUES (?1, ?2, ?3)",
            params![hash.to_hex(), algorithm, digest],
        )?;
        Ok(())
    }

    /// Whether one of the `recent` latest runs recorded the untracked file `path` with these
    /// bytes (`hash`) without keeping them (over the size cap): `run` said so then.
    pub fn untracked_over_cap_recorded(
        &self,
        path: &str,
        hash: &Hash,
        recent: usize,
    ) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM (SELECT capture FROM runs WHERE json_valid(capture)
                 ORDER BY started_at DESC LIMIT ?3) r, json_each(r.capture, '$.git.untracked') u
             WHERE json_extract(u.value, '$.path') = ?1 AND json_extract(u.value, '$.hash') = ?2
               AND json_extract(u.value, '$.stored') = 0)",
            params![
                path,
                hash.to_string(),
                i64::try_from(recent).unwrap_or(i64::MAX)
            ],
            |r| r.get(0),
        )?)
    }

    /// Whether one of the `recent` latest runs recorded the untracked files past those
    /// listed with this hash (`git.untracked_rest`): `run` said so then.
    pub fn untracked_rest_recorded(&self, hash: &Hash, recent: usize) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM (SELECT capture FROM runs WHERE json_valid(capture)
                 ORDER BY started_at DESC LIMIT ?2) r
             WHERE json_extract(r.capture, '$.git.untracked_rest.hash') = ?1)",
            params![hash.to_string(), i64::try_from(recent).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?)
    }

    /// The bytes of a blob, if stored.
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

/// An id that is no UUID (none lineage writes; a store edited by hand may hold one): its
/// shortest prefix, at least 8 characters, that neither neighbour shares.
fn shortest_prefix(id: &str, before: Option<&str>, after: Option<&str>) -> String {
    let shared = |other: Option<&str>| {
        other.map_or(0, |o| {
            id.chars()
                .zip(o.chars())
                .take_while(|(a, b)| a == b)
                .count()
        })
    };
    let len = (shared(before).max(shared(after)) + 1)
        .max(8)
        .min(id.chars().count());
    crate::model::prefix(id, len).to_string()
}

/// A run's status as stored; one this lineage does not know is an error naming the run,
/// never shown as another status.
pub(super) fn parse_status(id: &str, s: &str) -> Result<Status> {
    Status::parse(s).with_context(|| {
        format!("run {id} has the status {s:?}, which this lineage does not know: upgrade lineage")
    })
}

/// A run's captured snapshot and resources as stored. One that cannot be read is shown as
/// empty with a note saying so (the rest of the run, its edges included, is still true),
/// and the reason is returned for what must not use the blank.
fn read_capture(
    capture: &str,
    resources: Option<&str>,
) -> (Capture, Option<Resources>, Option<String>) {
    let mut unreadable = None;
    let mut capture: Capture = serde_json::from_str(capture).unwrap_or_else(|e| {
        let why = format!("the recorded capture cannot be read ({e})");
        let note = format!("{why}: git, environment, system and software are not shown");
        unreadable = Some(why);
        Capture {
            notes: vec![note],
            ..Capture::default()
        }
    });
    let resources = resources.and_then(|r| match serde_json::from_str(r) {
        Ok(r) => Some(r),
        Err(e) => {
            let why = format!("the recorded resources cannot be read ({e})");
            capture.notes.push(why.clone());
            unreadable.get_or_insert(why);
            None
        }
    });
    (capture, resources, unreadable)
}

/// The 32-byte blobs whose hex starts with `hex` (lowercase hex digits, any number) are
/// those from the first blob to the second (excluded): the prefix padded with `0`, and the
/// prefix plus one padded so (past every hash when the prefix is all `f`).
fn blob_range(hex: &str) -> (Vec<u8>, Vec<u8>) {
    let digits: Vec<u8> = hex
        .bytes()
        .take(64)
        .filter_map(|c| (c as char).to_digit(16).map(|d| d as u8))
        .collect();
    let pack = |d: &[u8]| -> Vec<u8> {
        d.chunks(2)
            .map(|p| (p[0] << 4) | p.get(1).copied().unwrap_or(0))
            .collect()
    };
    let from = pack(&digits);
    let mut next = digits;
    while let Some(last) = next.pop() {
        if last < 15 {
            next.push(last + 1);
            return (from, pack(&next));
        }
    }
    (from, vec![0xff; 33])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Artifact, Edge};
    use crate::store::{Finish, NewRun};

    #[test]
    fn a_hex_prefix_is_a_range_of_blobs() {
        let within = |hex: &str, blob: &[u8]| {
            let (from, to) = blob_range(hex);
            from.as_slice() <= blob && blob < to.as_slice()
        };
        let hash = |first: &[u8]| {
            let mut h = [0u8; 32];
            h[..first.len()].copy_from_slice(first);
            h
        };
        assert!(within("", &hash(&[])));
        assert!(within("", &[0xff; 32]));
        assert!(within("ab", &hash(&[0xab, 0x00])));
        assert!(within("ab", &hash(&[0xab, 0xff])));
        assert!(!within("ab", &hash(&[0xac])));
        assert!(!within("ab", &hash(&[0xaa, 0xff])));
        assert!(within("abc", &hash(&[0xab, 0xc0])));
        assert!(within("abc", &hash(&[0xab, 0xcf, 0xff])));
        assert!(!within("abc", &hash(&[0xab, 0xd0])));
        assert!(!within("abc", &hash(&[0xab, 0xbf])));
        assert!(within("fff", &[0xff; 32]));
        assert!(!within("fff", &hash(&[0xff, 0xef])));
        assert!(within("0f", &hash(&[0x0f, 0x12])));
        assert!(!within("0f", &hash(&[0x10])));
    }

    /// A store with runs recorded through the recording path, as `lineage run` records them:
    /// (id, argv, input file name, output file name, status).
    fn store_with(runs: &[(&str, &str, &str, &str, Status)]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let file = |name: &str| Artifact {
            hash: Hash::of(name.as_bytes()),
            kind: ArtifactKind::File,
            size: name.len() as u64,
            file_count: 1,
        };
        let edge = |role, name: &str| Edge {
            role,
            path: name.to_string(),
            abs_path: format!("/w/{name}"),
            artifact: Some(file(name)),
            manifest: None,
            changed: false,
            written: None,
            observed: None,
        };
        for (i, (id, argv, input, output, status)) in runs.iter().enumerate() {
            let policy = crate::redact::Policy::new(&[], &[], &[], [0; 32]).expect("policy");
            let capture = policy.seal(Capture::default());
            let started = format!("2026-11-01T00:00:0{i}.000000Z");
            store
                .begin_run(&NewRun {
                    id,
                    argv: &policy.redact_argv(&[argv.as_bytes().to_vec()]).argv,
                    cwd: b"/w",
                    started_at: &started,
                    pid: std::process::id(),
                    rerun_of: None,
                    capture: &capture,
                    edges: &[edge(Role::Input, input)],
                    params: &policy.redact_params(vec![Param {
                        key: "lr".into(),
                        value: serde_json::json!(0.1),
                        source: "cli".into(),
                    }]),
                    blobs: &[],
                })
                .expect("begin");
            store
                .finish_run(
                    id,
                    &Finish {
                        status: *status,
                        ended_at: &started,
                        exit_code: Some(0),
                        signal: None,
                        capture: &capture,
                        resources: &Resources::default(),
                        outputs: &[edge(Role::Output, output)],
                        changed_inputs: &[],
                        seen: &[],
                        metrics: &[],
                        params: None,
                        blobs: &[],
                        signer: None,
                    },
                )
                .expect("finish");
        }
        (dir, store)
    }

    const A: &str = "01a20000-0000-7000-8000-00000000000a";
    const B: &str = "01a20000-0000-7000-8000-00000000000b";
    const C: &str = "01a2ffff-0000-7000-8000-00000000000c";

    fn three() -> (tempfile::TempDir, Store) {
        store_with(&[
            (A, "prepare", "raw.csv", "clean.csv", Status::Succeeded),
            (B, "train", "clean.csv", "model.bin", Status::Failed),
            (
                C,
                "evaluate",
                "model.bin",
                "metrics.json",
                Status::Succeeded,
            ),
        ])
    }

    #[test]
    fn prefixes_resolve_when_unique_and_list_candidates_when_not() {
        let (_dir, store) = three();
        assert_eq!(store.resolve(None).expect("latest"), C);
        assert_eq!(store.resolve(Some("01A2F")).expect("case"), C);
        let err = store.resolve(Some("01a20000")).expect_err("ambiguous");
        assert!(
            matches!(err.downcast_ref(), Some(Error::AmbiguousRun { candidates, .. }) if candidates == &[A, B]),
            "{err}"
        );
        let err = store.resolve(Some("ffff")).expect_err("unknown");
        assert!(matches!(err.downcast_ref(), Some(Error::RunNotFound(_))));
    }

    #[test]
    fn short_ids_are_the_ids_last_eight_digits_lengthened_on_a_collision() {
        let (_dir, store) = three();
        let shorts = store.short_ids(&[A, B, C]).expect("short ids");
        assert_eq!(
            (&shorts[A][..], &shorts[B][..], &shorts[C][..]),
            ("0000000a", "0000000b", "0000000c"),
            "not the time bits every run of the minute shares"
        );
        // Another run ending in the same 8 digits: both lengthen until they differ.
        const D: &str = "01a30000-0000-7000-8000-00050000000a";
        // A run whose id starts with C's 8 digits: C's short id lengthens, so that it is never
        // taken for that run's prefix.
        const E: &str = "0000000c-0000-7000-8000-0000000000ee";
        let (_dir, store) = store_with(&[
            (A, "prepare", "raw.csv", "clean.csv", Status::Succeeded),
            (C, "train", "clean.csv", "model.bin", Status::Succeeded),
            (D, "train", "clean.csv", "model.bin", Status::Succeeded),
            (E, "train", "clean.csv", "model.bin", Status::Succeeded),
        ]);
        let shorts = store.short_ids(&[A, C, D, E]).expect("short ids");
        assert_eq!(
            [A, C, D, E].map(|id| shorts[id].as_str()),
            ["00000000a", "00000000c", "50000000a", "000000ee"]
        );
        assert_eq!(store.short_id(D).expect("one"), "50000000a");
        for id in [A, C, D, E] {
            assert_eq!(store.resolve(Some(&shorts[id])).expect("resolves"), id);
        }
        // Ids that are not UUIDs (none lineage writes) print as their shortest unique prefix.
        assert_eq!(
            shortest_prefix("abcdefghij", Some("abcdefgzzz"), None),
            "abcdefgh"
        );
        assert_eq!(
            shortest_prefix("abcdefghij", Some("abcdefghiz"), None),
            "abcdefghij"
        );
        // Two ids the same in all 12 digits: the whole id.
        let twin = "01a40000-0000-7000-8000-00000000000a".to_string();
        assert_eq!(short_form(A, &[twin], false), A);
    }

    #[test]
    fn a_short_id_resolves_and_one_that_names_two_runs_is_ambiguous() {
        const D: &str = "01a30000-0000-7000-8000-00050000000a";
        const E: &str = "0000000c-0000-7000-8000-0000000000ee";
        let (_dir, store) = store_with(&[
            (A, "prepare", "raw.csv", "clean.csv", Status::Succeeded),
            (C, "train", "clean.csv", "model.bin", Status::Succeeded),
            (D, "train", "clean.csv", "model.bin", Status::Succeeded),
            (E, "train", "clean.csv", "model.bin", Status::Succeeded),
        ]);
        assert_eq!(store.resolve(Some("000000EE")).expect("case"), E);
        assert_eq!(store.resolve(Some("01a3")).expect("a prefix still"), D);
        // The last 8 digits of C are also the first 8 of E: both named, neither guessed.
        let err = store.resolve(Some("0000000c")).expect_err("ambiguous");
        assert!(
            matches!(err.downcast_ref(), Some(Error::AmbiguousRun { candidates, .. }) if candidates == &[E, C]),
            "{err}"
        );
        // The 8 digits A and D both end with.
        let err = store.resolve(Some("0000000a")).expect_err("ambiguous");
        assert!(
            matches!(err.downcast_ref(), Some(Error::AmbiguousRun { candidates, .. }) if candidates == &[A, D]),
            "{err}"
        );
        // Fewer than 8 digits are a prefix only.
        let err = store.resolve(Some("000000e")).expect_err("no such prefix");
        assert!(matches!(err.downcast_ref(), Some(Error::RunNotFound(_))));
    }

    #[test]
    fn short_ids_are_found_by_the_index_not_a_scan() {
        let (_dir, store) = three();
        for (sql, arg) in [
            (SHORT_IDS, serde_json::json!([A, B]).to_string()),
            (BY_SHORT_ID, "0000000a".into()),
            (BY_TAIL_START, "0000".into()),
        ] {
            let mut stmt = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("prepare");
            let args = [arg, "5".to_string()];
            let args = &args[..stmt.parameter_count()];
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .expect("plan")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
            assert!(
                plan.iter().any(|p| p.contains("runs_by_id_tail"))
                    && !plan.iter().any(|p| p.starts_with("SCAN runs")),
                "{sql}: {plan:?}"
            );
        }
    }

    #[test]
    fn hashes_are_found_by_any_prefix_of_their_hex_digits() {
        let (_dir, store) = three();
        let clean = Hash::of(b"clean.csv");
        let hex = clean.to_hex();
        for n in [1, 8, 12, 64] {
            assert_eq!(
                store.hashes_starting_with(&hex[..n]).expect("query"),
                [clean],
                "{n}"
            );
        }
        assert_eq!(
            store.hashes_starting_with("").expect("query").len(),
            4,
            "raw.csv, clean.csv, model.bin, metrics.json"
        );
        let other = Hash::of(b"never recorded").to_hex();
        assert!(
            store
                .hashes_starting_with(&other[..12])
                .expect("query")
                .is_empty()
        );
    }

    #[test]
    fn whole_runs_load_in_the_order_asked_with_their_edges_and_params() {
        let (_dir, store) = three();
        let runs = store.load_runs(&[C, "no-such-run", A]).expect("load");
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, [C, A]);
        let a = &runs[1];
        assert_eq!(a.status, Status::Succeeded);
        assert_eq!(a.argv, [b"prepare".to_vec()]);
        let edges: Vec<(Role, &str)> = a.edges.iter().map(|e| (e.role, e.path.as_str())).collect();
        assert_eq!(
            edges,
            [(Role::Input, "raw.csv"), (Role::Output, "clean.csv")]
        );
        assert_eq!(a.params[0].value, serde_json::json!(0.1));
        let list = store.list(Some(2)).expect("list");
        let listed: Vec<(&str, Status, &[String])> = list
            .iter()
            .map(|r| (r.id.as_str(), r.status, r.outputs.as_slice()))
            .collect();
        assert_eq!(
            listed,
            [
                (C, Status::Succeeded, &["metrics.json".to_string()][..]),
                (B, Status::Failed, &["model.bin".to_string()][..])
            ]
        );
    }

    #[test]
    fn an_unreadable_record_is_an_error_or_a_note_never_a_blank_or_another_status() {
        let (_dir, store) = three();
        store
            .conn
            .execute(
                "UPDATE runs SET capture = '{broken', resources = '[' WHERE id = ?1",
                [A],
            )
            .expect("update");
        let a = store.load_run(A).expect("still shown");
        assert!(
            a.capture
                .notes
                .iter()
                .any(|n| n.contains("capture cannot be read"))
                && a.capture
                    .notes
                    .iter()
                    .any(|n| n.contains("resources cannot be read")),
            "{:?}",
            a.capture.notes
        );
        assert_eq!(a.edges.len(), 2, "the rest of the record is there");
        // The schema's CHECK keeps such a status out; a damaged file or another writer
        // need not honour it.
        store
            .conn
            .execute_batch("PRAGMA ignore_check_constraints = ON")
            .expect("pragma");
        store
            .conn
            .execute("UPDATE runs SET status = 'paused' WHERE id = ?1", [B])
            .expect("update");
        for err in [
            store.load_run(B).expect_err("unknown status"),
            store.list(None).expect_err("unknown status"),
        ] {
            assert!(err.to_string().contains("\"paused\""), "{err}");
        }
    }
}
