//! BLAKE3 content hashes of files and directories.
//!
//! A file's hash is the plain BLAKE3 of its bytes (what `b3sum` prints). A directory's hash is
//! a Merkle construction over its files, sorted by relative path (docs/hashing.md):
//! BLAKE3 in derive-key mode with context [`DIR_CONTEXT`], fed for every file with
//! `u64-le(len(path)) || path || exec-bit byte || file hash (32 bytes)`. It covers names as
//! well as contents, so a rename, an added, removed or modified file all change it.
//! Symlinks are followed (loops detected); FIFOs, sockets and devices are skipped with a
//! warning and never opened.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::model::{Artifact, ArtifactKind, DirEntry, Hash};

/// The derive-key context of directory hashes. Changing it changes every directory hash.
pub const DIR_CONTEXT: &str = "lineage 2026-11 directory manifest v1";

/// Files at least this large are hashed through mmap with BLAKE3's multi-threaded mode.
const MMAP_THRESHOLD: u64 = 128 * 1024;

/// A hashed path plus what is needed to tell, later, whether it changed.
#[derive(Debug)]
pub struct Hashed {
    pub artifact: Artifact,
    pub fingerprint: Fingerprint,
    /// Entries skipped (special files, dangling links, loops, unreadable), one line each.
    pub warnings: Vec<String>,
}

/// (relative path bytes, size, mtime in ns) of every file, sorted: cheap to recompute with
/// stat alone, so inputs can be re-checked after the job without hashing them again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(Vec<u8>, u64, i64)>);

/// What a path is, without opening it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    File,
    Dir,
    Missing,
    /// A FIFO, socket or device: never opened.
    Special,
}

pub fn path_kind(path: &Path) -> io::Result<PathKind> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(PathKind::File),
        Ok(m) if m.is_dir() => Ok(PathKind::Dir),
        Ok(_) => Ok(PathKind::Special),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(PathKind::Missing),
        Err(e) => Err(e),
    }
}

/// Hash one regular file: the plain BLAKE3 of its bytes, and its size.
pub fn hash_file(path: &Path) -> io::Result<(Hash, u64)> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut hasher = blake3::Hasher::new();
    if len >= MMAP_THRESHOLD {
        hasher.update_mmap_rayon(path)?;
    } else {
        hasher.update_reader(file)?;
    }
    Ok((Hash(*hasher.finalize().as_bytes()), len))
}

/// Hash a file or a directory. Errors only when `path` itself cannot be read.
pub fn hash_path(path: &Path) -> io::Result<Hashed> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        let (hash, size) = hash_file(path)?;
        return Ok(Hashed {
            artifact: Artifact {
                hash,
                kind: ArtifactKind::File,
                size,
                entries: Vec::new(),
            },
            fingerprint: Fingerprint(vec![(Vec::new(), meta.len(), mtime_ns(&meta))]),
            warnings: Vec::new(),
        });
    }
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file or directory (FIFOs, sockets and devices are never opened)",
        ));
    }
    let (files, mut warnings) = walk_dir(path);
    let results: Vec<_> = files
        .par_iter()
        .map(|f| hash_file(&f.path).map(|(hash, size)| (f, hash, size)))
        .collect();
    let mut entries = Vec::with_capacity(results.len());
    // Every walked file is in the fingerprint, hashed or not, as in `fingerprint`.
    let mut prints: Vec<_> = files
        .iter()
        .map(|f| (f.rel.clone(), f.size, f.mtime_ns))
        .collect();
    for result in results.into_iter().zip(&files) {
        match result {
            (Ok((f, hash, size)), _) => {
                entries.push((
                    f.rel.clone(),
                    DirEntry {
                        path: String::from_utf8_lossy(&f.rel).into_owned(),
                        hash,
                        size,
                        executable: f.executable,
                    },
                ));
            }
            (Err(e), f) => warnings.push(format!("skipped {}: {e}", f.path.display())),
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    prints.sort();
    let hash = dir_hash(entries.iter().map(|(raw, e)| (raw.as_slice(), e)));
    let size = entries.iter().map(|(_, e)| e.size).sum();
    Ok(Hashed {
        artifact: Artifact {
            hash,
            kind: ArtifactKind::Dir,
            size,
            entries: entries.into_iter().map(|(_, e)| e).collect(),
        },
        fingerprint: Fingerprint(prints),
        warnings,
    })
}

/// The directory hash of entries already sorted by raw relative path.
pub fn dir_hash<'a>(entries: impl Iterator<Item = (&'a [u8], &'a DirEntry)>) -> Hash {
    let mut hasher = blake3::Hasher::new_derive_key(DIR_CONTEXT);
    for (raw, e) in entries {
        hasher.update(&(raw.len() as u64).to_le_bytes());
        hasher.update(raw);
        hasher.update(&[u8::from(e.executable)]);
        hasher.update(&e.hash.0);
    }
    Hash(*hasher.finalize().as_bytes())
}

/// Recompute the fingerprint of a path with stat alone (None when it is gone).
pub fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return Some(Fingerprint(vec![(Vec::new(), meta.len(), mtime_ns(&meta))]));
    }
    let (files, _) = walk_dir(path);
    let mut prints: Vec<_> = files
        .into_iter()
        .map(|f| (f.rel, f.size, f.mtime_ns))
        .collect();
    prints.sort();
    Some(Fingerprint(prints))
}

struct WalkedFile {
    path: PathBuf,
    rel: Vec<u8>,
    size: u64,
    mtime_ns: i64,
    executable: bool,
}

fn walk_dir(root: &Path) -> (Vec<WalkedFile>, Vec<String>) {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(true) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let what = e
                    .path()
                    .map_or_else(|| root.display().to_string(), |p| p.display().to_string());
                let why = if e.loop_ancestor().is_some() {
                    "symlink loop".to_string()
                } else if let Some(io) = e.io_error() {
                    if io.kind() == io::ErrorKind::NotFound {
                        "dangling symlink".to_string()
                    } else {
                        io.to_string()
                    }
                } else {
                    e.to_string()
                };
                warnings.push(format!("skipped {what}: {why}"));
                continue;
            }
        };
        let file_type = entry.file_type();
        if file_type.is_dir() {
            continue;
        }
        if !file_type.is_file() {
            warnings.push(format!(
                "skipped {}: not a regular file (FIFO, socket or device)",
                entry.path().display()
            ));
            continue;
        }
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                warnings.push(format!("skipped {}: {e}", entry.path().display()));
                continue;
            }
        };
        let rel = relative_bytes(root, entry.path());
        files.push(WalkedFile {
            rel,
            size: meta.len(),
            mtime_ns: mtime_ns(&meta),
            executable: meta.permissions().mode() & 0o111 != 0,
            path: entry.into_path(),
        });
    }
    (files, warnings)
}

/// `path` relative to `root`, components joined with `/`, as raw bytes.
fn relative_bytes(root: &Path, path: &Path) -> Vec<u8> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut out = Vec::new();
    for (i, c) in rel.components().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_os_str().as_bytes());
    }
    out
}

fn mtime_ns(meta: &Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_hash_is_plain_blake3() {
        let dir = tempfile::tempdir().expect("tempdir");
        let small = dir.path().join("small");
        std::fs::write(&small, b"abc").expect("write");
        let big = dir.path().join("big");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&big, &data).expect("write");
        assert_eq!(
            hash_file(&small).expect("hash").0.to_hex(),
            // The BLAKE3 test vector for "abc".
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        assert_eq!(hash_file(&big).expect("hash").0, Hash::of(&data));
    }

    #[test]
    fn dir_hash_changes_with_names_and_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("a"), b"1").expect("write");
        std::fs::write(root.join("sub/b"), b"2").expect("write");
        let h0 = hash_path(root).expect("hash").artifact;
        assert_eq!(h0.entries.len(), 2);
        assert_eq!(h0.entries[1].path, "sub/b");
        std::fs::rename(root.join("a"), root.join("c")).expect("rename");
        let h1 = hash_path(root).expect("hash").artifact.hash;
        assert_ne!(h0.hash, h1);
        std::fs::rename(root.join("c"), root.join("a")).expect("rename");
        assert_eq!(h0.hash, hash_path(root).expect("hash").artifact.hash);
    }
}
