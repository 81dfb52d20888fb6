//! SHA-256 beside BLAKE3, for consumers that need it (in-toto's DigestSet registry has no
//! blake3). Computed only from bytes that still match the record, in one pass that hashes
//! both, and remembered in the store (`extra_digests`), so a file exported once can be
//! exported again after it is gone. `lineage run --sha256` computes them at run time.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::Records;
use crate::model::{ArtifactKind, ArtifactRef, Hash};

/// A file's SHA-256.
pub const SHA256: &str = "sha256";
/// A directory's digest in the in-toto registry: the SHA-256 of the lines
/// `<sha256 hex>  <path>\n` of its files, sorted by path bytes (what
/// `find . -type f | cut -c3- | LC_ALL=C sort | xargs -r sha256sum | sha256sum` prints).
pub const DIR_HASH: &str = "dirHash";

pub fn algorithm(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::File => SHA256,
        ArtifactKind::Dir => DIR_HASH,
    }
}

/// Why a digest could not be computed.
#[derive(Debug)]
pub enum Unavailable {
    /// The bytes at the path are no longer the recorded ones.
    Changed(String),
    /// The path cannot be read (gone, permissions).
    Unreadable(String),
    /// The store holds no manifest for the directory.
    NoManifest,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::Changed(what) => write!(f, "{what} changed since it was recorded"),
            Unavailable::Unreadable(why) => write!(f, "{why}"),
            Unavailable::NoManifest => write!(f, "the store holds no manifest of its files"),
        }
    }
}

/// The remembered digest, if any.
pub fn known(store: &dyn Records, artifact: &ArtifactRef) -> Option<String> {
    store.extra_digest(&artifact.hash, algorithm(artifact.kind))
}

/// The SHA-256 of the exact bytes of `hash` when the store keeps them as a blob (a config,
/// an untracked file, the patch). A blob is kept under the BLAKE3 of its own bytes, so a
/// redacted copy never answers for the real bytes; the bytes are hashed again all the same,
/// and a blob that does not match is never used.
pub fn from_blob(store: &dyn Records, hash: &Hash) -> Option<String> {
    let bytes = store.blob(hash)?;
    (Hash::of(&bytes) == *hash).then(|| sha256_of(&bytes))
}

/// The remembered digest, or one taken from the exact bytes the store keeps (and then
/// remembered): what an export has without reading any file.
pub fn stored(store: &dyn Records, artifact: &ArtifactRef) -> Option<String> {
    if let Some(d) = known(store, artifact) {
        return Some(d);
    }
    if artifact.kind != ArtifactKind::File {
        return None;
    }
    let d = from_blob(store, &artifact.hash)?;
    store.remember_digest(&artifact.hash, SHA256, &d);
    Some(d)
}

/// The digest the store has (`stored`), or one computed now from the first of `paths` whose
/// bytes still match the record (and then remembered).
pub fn get(
    store: &dyn Records,
    artifact: &ArtifactRef,
    paths: &[&Path],
) -> Result<String, Unavailable> {
    if let Some(d) = stored(store, artifact) {
        return Ok(d);
    }
    let mut why = Unavailable::Unreadable("no path recorded".into());
    for path in paths {
        match compute(store, artifact, path) {
            Ok(d) => {
                store.remember_digest(&artifact.hash, algorithm(artifact.kind), &d);
                return Ok(d);
            }
            Err(e) => why = e,
        }
    }
    Err(why)
}

/// Compute the digest of the bytes at `path`, checking them against the recorded BLAKE3.
pub fn compute(
    store: &dyn Records,
    artifact: &ArtifactRef,
    path: &Path,
) -> Result<String, Unavailable> {
    match artifact.kind {
        ArtifactKind::File => {
            let (b3, sha) = both(path)?;
            if b3 != artifact.hash {
                return Err(Unavailable::Changed(path.display().to_string()));
            }
            Ok(sha)
        }
        ArtifactKind::Dir => {
            let mut entries = store
                .dir_entries(&artifact.hash)
                .map_err(|e| Unavailable::Unreadable(e.to_string()))?;
            if entries.is_empty() && artifact.file_count > 0 {
                return Err(Unavailable::NoManifest);
            }
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let mut lines = Sha256::new();
            for (rel, hash, _) in &entries {
                let file = path.join(crate::model::path_of(rel));
                let (b3, sha) = entry(&file, hash)?;
                if b3 != *hash {
                    return Err(Unavailable::Changed(file.display().to_string()));
                }
                lines.update(format!("{sha}  {rel}\n").as_bytes());
            }
            Ok(hex(&lines.finalize()))
        }
    }
}

/// The SHA-256 of bytes held in memory (a stored blob).
pub fn sha256_of(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// BLAKE3 and SHA-256 of a directory entry: a symlink recorded as a link (its target's
/// text, see docs/hashing.md) by that text; otherwise the regular file it is or leads to,
/// never a device or FIFO (which could be endless).
fn entry(path: &Path, recorded: &Hash) -> Result<(Hash, String), Unavailable> {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(target) = std::fs::read_link(path) {
        let text = target.as_os_str().as_bytes();
        if Hash(*blake3::hash(text).as_bytes()) == *recorded {
            return Ok((*recorded, sha256_of(text)));
        }
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => both(path),
        Ok(_) => Err(Unavailable::Changed(path.display().to_string())),
        Err(e) => Err(Unavailable::Unreadable(format!("{}: {e}", path.display()))),
    }
}

/// BLAKE3 and SHA-256 of a file, in one read.
fn both(path: &Path) -> Result<(Hash, String), Unavailable> {
    let unreadable =
        |e: std::io::Error| Unavailable::Unreadable(format!("{}: {e}", path.display()));
    let mut file = File::open(path).map_err(unreadable)?;
    let mut b3 = blake3::Hasher::new();
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        b3.update(&buf[..n]);
        sha.update(&buf[..n]);
    }
    Ok((Hash(*b3.finalize().as_bytes()), hex(&sha.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
