//! The stat cache: what each file's (device, inode, size, mtime, ctime) hashed to, and
//! what each directory walk's stat digest hashed to, so that unchanged inputs are not read
//! again. Lookups take one query per chunk of files; learned rows are buffered and written
//! while the job runs. Best effort throughout: a cache that cannot be read or written only
//! costs a re-hash.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rusqlite::{OptionalExtension, params};

use super::Store;
use crate::hash::{StatCache, StatKey};
use crate::model::{Artifact, ArtifactKind, Hash};

/// Learned stat-cache rows held in memory at most (about 4 MB, the most a directory input
/// holds in memory); more are written at once.
const LEARNED_IN_MEMORY: usize = 50_000;

impl Store {
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
                        &h.0[..]
                    ])?;
                }
            }
            tx.commit()
        };
        let _ = write();
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
}

/// The stat cache lives in the store: one query per chunk of files, either way.
impl StatCache for Store {
    fn lookup(&self, keys: &[StatKey]) -> Vec<Option<Hash>> {
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
                            r.get::<_, [u8; 32]>(4)?,
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
                    out[i] = Some(Hash(hash));
                }
            }
        }
        out
    }

    fn record(&self, entries: &[(StatKey, Hash)]) {
        let full = {
            let mut learned = self.learned.borrow_mut();
            learned.extend_from_slice(entries);
            learned.len() >= LEARNED_IN_MEMORY
        };
        if full {
            self.write_learned();
        }
    }

    fn lookup_dir(&self, digest: &Hash) -> Option<Artifact> {
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
                Some(Artifact {
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

impl StatCache for ReadOnlyCache<'_> {
    fn lookup(&self, keys: &[StatKey]) -> Vec<Option<Hash>> {
        self.0.lookup(keys)
    }

    fn record(&self, _: &[(StatKey, Hash)]) {}

    fn lookup_dir(&self, digest: &Hash) -> Option<Artifact> {
        self.0.lookup_dir(digest)
    }

    fn seen_dir(&self, path: &Path) -> bool {
        self.0.seen_dir(path)
    }
}
