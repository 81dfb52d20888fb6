//! What a TARGET on the command line means, decided in one place for `show`, `diff`,
//! `export` and `bundle export`: a `blake3:` hash, an existing path (identified by its bytes,
//! hashed now), or a run id prefix; and the walk from an artifact to its ancestry or
//! descendants, or the reason there is none.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::Error;
use crate::hash;
use crate::model::graph::{Direction, Lineage, Root, UNLIMITED, Via};
use crate::model::{ArtifactRef, Hash, RunRecord};
use crate::store::Store;

/// What a TARGET names.
pub enum Target {
    /// A run, by its full id.
    Run(String),
    /// Content: by path (hashed now) or by hash.
    Artifact {
        root: Root,
        /// The path, when the target was one.
        path: Option<PathBuf>,
    },
}

/// How to read a TARGET: as the user left it, or forced by `--run` / `--path`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reading {
    /// A `blake3:` hash, then an existing path, then a run id prefix.
    #[default]
    Guess,
    Run,
    Path,
}

impl Reading {
    /// From the `--run` and `--path` flags (clap keeps them exclusive).
    pub fn from_flags(run: bool, path: bool) -> Reading {
        match (run, path) {
            (true, _) => Reading::Run,
            (_, true) => Reading::Path,
            _ => Reading::Guess,
        }
    }
}

/// Decide what TARGET means; no TARGET is the most recent run.
pub fn resolve(store: &Store, target: Option<&OsString>, reading: Reading) -> Result<Target> {
    let Some(target) = target else {
        return Ok(Target::Run(store.resolve(None)?));
    };
    let text = target.to_string_lossy().into_owned();
    if reading == Reading::Guess && text.starts_with(Hash::PREFIX) {
        let hash = by_hash(store, &text)?;
        let stored = store.artifact(&hash)?;
        return Ok(Target::Artifact {
            root: Root {
                label: text,
                hash,
                detail: stored,
            },
            path: None,
        });
    }
    let path = PathBuf::from(target);
    if reading == Reading::Path || (reading == Reading::Guess && path.exists()) {
        return by_bytes(store, text, path);
    }
    match store.resolve(Some(&text)) {
        Ok(id) => Ok(Target::Run(id)),
        // Hex digits and hyphens read as a run id; anything else may have been a path.
        Err(e)
            if reading == Reading::Guess
                && !text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
                && matches!(e.downcast_ref(), Some(Error::RunNotFound(_))) =>
        {
            Err(Error::NeitherPathNorRun(text).into())
        }
        Err(e) => Err(e),
    }
}

/// Fewest hex digits a `blake3:` prefix may have (tables print 12).
const MIN_HASH_DIGITS: usize = 8;

/// A `blake3:` hash, whole or as a prefix of at least 8 hex digits of one the store knows
/// (an artifact, or a file inside a recorded directory).
fn by_hash(store: &Store, text: &str) -> Result<Hash> {
    if let Some(hash) = Hash::parse(text) {
        return Ok(hash);
    }
    let hex = text[Hash::PREFIX.len()..].to_ascii_lowercase();
    if hex.len() < MIN_HASH_DIGITS || hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(Error::BadHash(text.to_string()).into());
    }
    let found = store.hashes_starting_with(&hex)?;
    match found[..] {
        [hash] => Ok(hash),
        [] => Err(Error::UnknownArtifact(text.to_string()).into()),
        _ => Err(Error::AmbiguousHash {
            prefix: text.to_string(),
            count: found.len(),
        }
        .into()),
    }
}

/// A path, identified by the bytes it holds now.
fn by_bytes(store: &Store, label: String, path: PathBuf) -> Result<Target> {
    let hashing = hash::Hashing::default();
    let mut hashed = hashing
        .hash_path(&path, &mut hash::discard, Some(store), None)
        .map_err(|cause| Error::Unreadable {
            what: "path",
            path: path.clone(),
            cause,
        })?;
    // A directory recorded as an output has its links that leave it as links: hashed as
    // an input (links followed) it may not be known, hashed as an output it may.
    if hashed.artifact.kind == crate::model::ArtifactKind::Dir
        && !store.knows_artifact(&hashed.artifact.hash)?
        && let Ok(as_output) = hashing.hash_output(&path, &mut hash::discard, Some(store))
        && as_output.artifact.hash != hashed.artifact.hash
        && store.knows_artifact(&as_output.artifact.hash)?
    {
        hashed = as_output;
    }
    for w in &hashed.warnings {
        crate::ui::warn(w);
    }
    let a = hashed.artifact;
    Ok(Target::Artifact {
        root: Root {
            label,
            hash: a.hash,
            detail: Some(ArtifactRef {
                hash: a.hash,
                kind: a.kind,
                size: a.size,
                file_count: a.file_count,
            }),
        },
        path: Some(path),
    })
}

/// The runs a target covers: the run, or every run in the ancestry of the artifact.
pub fn runs(store: &Store, target: Target) -> Result<Vec<String>> {
    match target {
        Target::Run(id) => Ok(vec![id]),
        Target::Artifact { root, path } => {
            let l = walk(store, root, path.as_deref(), Direction::Ancestry, None)?;
            Ok(l.runs.into_keys().collect())
        }
    }
}

/// The runs that produced an artifact's bytes directly (or as a file inside a directory
/// they wrote), oldest first.
pub fn producers(store: &Store, hash: &Hash) -> Result<Vec<String>> {
    let mut ids: Vec<String> = store
        .ancestry(hash, 1)?
        .into_iter()
        .filter(|l| l.artifact == *hash && matches!(l.via, Via::Direct | Via::InsideDir { .. }))
        .map(|l| l.run_id)
        .collect();
    // UUIDv7 ids sort by time.
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The latest run that produced an artifact's bytes (see [`producers`]).
pub fn producer(store: &Store, root: Root) -> Result<String> {
    producers(store, &root.hash)?
        .pop()
        .ok_or_else(|| Error::NoProducer(root.label).into())
}

/// The run `rerun --upstream` reruns to make `hash` again for `consumer`: one that produced
/// those bytes before the consumer started (docs/lineage-model.md, "Which producer").
pub fn upstream_producer(
    store: &Store,
    hash: &Hash,
    consumer: &RunRecord,
) -> Result<Option<String>> {
    Ok(producers(store, hash)?
        .into_iter()
        .filter(|p| *p < consumer.id)
        .max())
}

/// Walk the lineage of an artifact `depth` runs deep (all of it without), or explain why
/// there is none: bytes no run read or wrote, or a file changed since a run wrote it.
pub fn walk(
    store: &Store,
    root: Root,
    path: Option<&Path>,
    direction: Direction,
    depth: Option<u32>,
) -> Result<Lineage> {
    let depth = depth.unwrap_or(UNLIMITED);
    let links = match direction {
        Direction::Ancestry => store.ancestry(&root.hash, depth)?,
        Direction::Descendants => store.descendants(&root.hash, depth)?,
    };
    if links.is_empty() && !store.knows_artifact(&root.hash)? {
        if let Some(path) = path {
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            use std::os::unix::ffi::OsStrExt;
            let stored = crate::model::path_text(abs.as_os_str().as_bytes());
            if let Some((run, recorded)) = store.last_output_at(&stored)? {
                return Err(Error::ModifiedAfter {
                    path: root.label.clone(),
                    run: store.short_id(&run)?,
                    recorded: recorded
                        .map_or_else(|| "nothing (missing)".into(), |h| h.to_string()),
                    now: root.hash.to_string(),
                }
                .into());
            }
        }
        return Err(Error::UnknownArtifact(root.label).into());
    }
    let mut ids: Vec<&str> = links.iter().map(|l| l.run_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut shorts = store.short_ids(&ids)?;
    let runs: Vec<(RunRecord, String)> = store
        .load_runs(&ids)?
        .into_iter()
        .map(|r| {
            let short = shorts.remove(&r.id).unwrap_or_else(|| r.id.clone());
            (r, short)
        })
        .collect();
    Ok(Lineage::new(direction, root, depth, runs, links))
}
