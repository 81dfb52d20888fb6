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
    // Losslessly (a name that is not UTF-8 is printed escaped, as the store keeps it).
    let text = crate::model::path_text(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()));
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

/// The runs that produced an artifact's bytes directly (or as a file or directory inside
/// a directory they wrote), best first by the one rule (`model::graph::rank`).
pub fn producers(store: &Store, hash: &Hash) -> Result<Vec<String>> {
    // No run is one to use over the others here: a copying stage ranks after the makers.
    Ok(ranked_producers(store, hash, |_| false)?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

/// The producers of `hash` that ended before `consumer` started (its possible causes),
/// best first.
pub fn producers_before(store: &Store, hash: &Hash, consumer: &RunRecord) -> Result<Vec<String>> {
    Ok(ranked_producers(store, hash, |_| false)?
        .into_iter()
        .filter(|p| crate::model::graph::came_before(p, consumer))
        .map(|r| r.id)
        .collect())
}

/// [`producers_before`] that can be where those bytes came from: not a run that read the
/// very bytes itself (it copied them: `cp model.txt deploy/`), and none for no bytes at all
/// (every empty file would be every other's: an empty note read as made by a stage that
/// left an empty marker, stale with it for ever).
pub fn origins_before(store: &Store, hash: &Hash, consumer: &RunRecord) -> Result<Vec<String>> {
    if *hash == Hash(*blake3::hash(b"").as_bytes()) {
        return Ok(Vec::new());
    }
    Ok(ranked_producers(store, hash, |_| true)?
        .into_iter()
        .filter(|p| crate::model::graph::came_before(p, consumer))
        .filter(|p| !crate::model::graph::read_these(p, hash))
        .map(|r| r.id)
        .collect())
}

/// The producers of `hash` (succeeded runs that wrote those bytes), loaded and ranked.
pub fn ranked_producers(
    store: &Store,
    hash: &Hash,
    usable: impl Fn(&RunRecord) -> bool,
) -> Result<Vec<RunRecord>> {
    let mut ranker = Ranker::new(store);
    let order = ranker.order(hash, usable)?;
    Ok(order
        .iter()
        .filter_map(|id| ranker.runs.remove(id).map(|(r, _)| r))
        .collect())
}

/// The runs that wrote `hash` (directly, or as a file or directory inside a directory they
/// wrote), unranked, each once: succeeded ones, or (`all`) every finished one.
fn producer_ids(store: &Store, hash: &Hash, all: bool) -> Result<Vec<String>> {
    let mut ids: Vec<String> = store
        .ancestry(hash, 1, all)?
        .into_iter()
        .filter(|l| l.artifact == *hash && matches!(l.via, Via::Direct | Via::InsideDir { .. }))
        .map(|l| l.run_id)
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Whether some recorded run wrote these bytes (directly, or as a file inside a directory it
/// wrote), whatever its status: a failed run's partial output is recorded bytes too.
pub fn written_by_a_run(store: &Store, hash: &Hash) -> Result<bool> {
    Ok(!producer_ids(store, hash, true)?.is_empty())
}

/// Verified, for ranking: signed by your own key, the record intact (a teammate's trusted
/// key ranks with the rest: the settings are the command's, not the store's).
fn verified_by(store: &Store, id: &str, own: Option<&str>) -> bool {
    matches!(
        store.check_run(id, false),
        Ok(crate::model::Seal::Signed { key }) if Some(key.as_str()) == own
    )
}

/// At most this many files of a directory are looked up by their bytes.
const MAX_LOOKED_UP: usize = 10_000;

/// The files at or under `root` (`.git` left out; the first 10,000 met) that hold bytes a
/// recorded run wrote, sorted, each with the run that made them (ranked as `show` ranks).
/// None when `root` is not a file or a directory.
pub fn made_files_under(store: &Store, root: &Path) -> Result<Option<Vec<(PathBuf, String)>>> {
    let files: Vec<PathBuf> = match hash::path_kind(root) {
        Ok(hash::PathKind::File) => vec![root.to_path_buf()],
        Ok(hash::PathKind::Dir) => {
            let mut files = Vec::new();
            let mut dirs = vec![root.to_path_buf()];
            while let Some(d) = dirs.pop() {
                let Ok(entries) = std::fs::read_dir(&d) else {
                    continue;
                };
                for e in entries.filter_map(std::result::Result::ok) {
                    let Ok(t) = e.file_type() else { continue };
                    if t.is_dir() && e.file_name() != ".git" {
                        dirs.push(e.path());
                    } else if t.is_file() && files.len() < MAX_LOOKED_UP {
                        files.push(e.path());
                    }
                }
            }
            files.sort();
            files
        }
        _ => return Ok(None),
    };
    let hashing = hash::Hashing::default();
    let mut ranker = Ranker::new(store);
    let mut out = Vec::new();
    for f in files {
        let Ok(h) = hashing.hash_path(&f, &mut hash::discard, Some(store), None) else {
            continue;
        };
        if let Some(maker) = ranker.best(&h.artifact.hash, |_| true)? {
            out.push((f, maker));
        }
    }
    Ok(Some(out))
}

/// `path` as the user would name it from the working directory: relative when under it.
pub fn shown_from_here(path: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
}

/// [`ranked_producers`] for many hashes in one command (the files of a moved project, looked
/// up by their bytes): each run is loaded and its signature checked once, not once a file.
pub struct Ranker<'s> {
    store: &'s Store,
    own: Option<String>,
    /// Each run met so far, and whether it is verified.
    runs: std::collections::HashMap<String, (RunRecord, bool)>,
}

impl<'s> Ranker<'s> {
    pub fn new(store: &'s Store) -> Ranker<'s> {
        Ranker {
            store,
            own: crate::commands::verify::own_key(),
            runs: std::collections::HashMap::new(),
        }
    }

    /// The best producer of `hash` by the one rule, as [`ranked_producers`] ranks them.
    pub fn best(
        &mut self,
        hash: &Hash,
        usable: impl Fn(&RunRecord) -> bool,
    ) -> Result<Option<String>> {
        Ok(self.order(hash, usable)?.into_iter().next())
    }

    /// The producers of `hash`, best first, by id; the runs not met before are loaded and
    /// checked.
    fn order(&mut self, hash: &Hash, usable: impl Fn(&RunRecord) -> bool) -> Result<Vec<String>> {
        let ids = producer_ids(self.store, hash, false)?;
        let new: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| !self.runs.contains_key(*id))
            .collect();
        if !new.is_empty() {
            for r in self.store.load_runs(&new)? {
                let verified = verified_by(self.store, &r.id, self.own.as_deref());
                self.runs.insert(r.id.clone(), (r, verified));
            }
        }
        let runs = &self.runs;
        let mut ranked: Vec<&RunRecord> = ids
            .iter()
            .filter_map(|id| runs.get(id))
            .map(|r| &r.0)
            .collect();
        // A run that copied the bytes (read them itself) after those that made them, unless
        // it is one to use (`rerun --upstream`: it wrote them where the consumer reads them,
        // and a copy elsewhere would not remake that file).
        crate::model::graph::rank(
            &mut ranked,
            |r| runs.get(&r.id).is_some_and(|r| r.1),
            |r| crate::model::graph::read_these(r, hash) && !usable(r),
            &usable,
        );
        Ok(ranked.iter().map(|r| r.id.clone()).collect())
    }
}

/// The run that produced an artifact's bytes, by the one rule (see [`producers`]).
pub fn producer(store: &Store, root: Root) -> Result<String> {
    if let Some(p) = producers(store, &root.hash)?.into_iter().next() {
        return Ok(p);
    }
    Err(match store.failed_maker(&root.hash)? {
        Some((run, status)) => Error::OnlyFailedProducer {
            path: root.label,
            run: store.short_id(&run)?,
            status: status.as_str(),
        },
        None => Error::NoProducer(root.label),
    }
    .into())
}

/// The run `rerun --upstream` reruns to make `hash` again for `consumer`: by the one rule,
/// among the runs that produced those bytes and ended before the consumer started,
/// preferring one that wrote them where the consumer read them and whose recorded
/// directory still exists (docs/lineage-model.md).
pub fn upstream_producer(
    store: &Store,
    hash: &Hash,
    consumer: &RunRecord,
) -> Result<Option<String>> {
    upstream_producer_at(store, hash, consumer, None)
}

/// [`upstream_producer`] for the input the consumer read at `path` (its recorded path), when
/// given: the same bytes read at two places (a file and its copy) may come from two runs, and
/// the one that remakes this path is wanted.
pub fn upstream_producer_at(
    store: &Store,
    hash: &Hash,
    consumer: &RunRecord,
    path: Option<&str>,
) -> Result<Option<String>> {
    use std::os::unix::ffi::OsStrExt;
    // Where the consumer read these bytes: a run that wrote them there (or a directory
    // around it) remakes the file; one that wrote the same bytes elsewhere (a copy) does not.
    let read_at: Vec<&str> = consumer
        .edges
        .iter()
        .filter(|e| e.role != crate::model::Role::Output)
        .filter(|e| e.artifact.as_ref().is_some_and(|a| a.hash == *hash))
        .filter(|e| path.is_none_or(|p| e.path == p))
        .map(|e| e.abs_path.as_str())
        .collect();
    let usable = |r: &RunRecord| {
        let wrote_there = r.edges.iter().any(|e| {
            e.role == crate::model::Role::Output
                && read_at.iter().any(|at| {
                    *at == e.abs_path
                        || at
                            .strip_prefix(e.abs_path.as_str())
                            .is_some_and(|rest| rest.starts_with('/'))
                })
        });
        wrote_there && std::path::Path::new(std::ffi::OsStr::from_bytes(&r.cwd)).is_dir()
    };
    Ok(ranked_producers(store, hash, usable)?
        .into_iter()
        .find(|p| crate::model::graph::came_before(p, consumer))
        .map(|p| p.id))
}

/// At most this many files inside an unknown directory are named in its error.
const KNOWN_NAMED: usize = 5;

/// Walk the lineage of an artifact `depth` runs deep (all of it without), or explain why
/// there is none: bytes no run read or wrote, or a file changed since a run wrote it.
pub fn walk(
    store: &Store,
    root: Root,
    path: Option<&Path>,
    direction: Direction,
    depth: Option<u32>,
) -> Result<Lineage> {
    walk_with(store, root, path, direction, depth, false)
}

/// [`walk`], through failed and interrupted runs too when `all` (`show --all`).
pub fn walk_with(
    store: &Store,
    root: Root,
    path: Option<&Path>,
    direction: Direction,
    depth: Option<u32>,
    all: bool,
) -> Result<Lineage> {
    let depth = depth.unwrap_or(UNLIMITED);
    let links = match direction {
        Direction::Ancestry => store.ancestry(&root.hash, depth, all)?,
        Direction::Descendants => store.descendants(&root.hash, depth, all)?,
    };
    if links.is_empty() && !store.knows_artifact(&root.hash)? {
        if let Some(path) = path {
            let abs = crate::commands::absolute(path);
            use std::os::unix::ffi::OsStrExt;
            let stored = crate::model::path_text(abs.as_os_str().as_bytes());
            if let Some((run, recorded, within)) = store.last_output_around(&stored)? {
                return Err(Error::ModifiedAfter {
                    path: root.label.clone(),
                    within: within
                        .map(|(inner, dir)| {
                            format!(
                                " (as {} inside {})",
                                crate::ui::escape(&inner),
                                crate::ui::escape(&dir)
                            )
                        })
                        .unwrap_or_default(),
                    run: store.short_id(&run)?,
                    recorded: recorded
                        .map_or_else(|| "nothing (missing)".into(), |h| h.to_string()),
                    now: root.hash.to_string(),
                }
                .into());
            }
        }
        // A directory no run read or wrote whole (a deploy/ of copies): the files inside
        // whose bytes runs made are what can be asked about.
        if let Some(path) = path.filter(|p| p.is_dir())
            && let Some(found) = made_files_under(store, path)?
            && !found.is_empty()
        {
            let named: Vec<String> = found
                .iter()
                .take(KNOWN_NAMED)
                .map(|(f, _)| shown_from_here(f).display().to_string())
                .collect();
            return Err(Error::UnknownDirectory {
                path: root.label,
                count: found.len(),
                named,
            }
            .into());
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
    let mut lineage = Lineage::new(direction, root, depth, runs, links);
    // The runs that wrote these bytes at the path asked about: downstream, not its readers;
    // upstream, its makers there even when they copied the bytes from elsewhere.
    if let Some(path) = path {
        use std::os::unix::ffi::OsStrExt;
        let abs = crate::commands::absolute(path);
        let abs = crate::model::path_text(abs.as_os_str().as_bytes());
        let root = lineage.root.hash;
        lineage.root_writers = lineage
            .runs
            .values()
            .filter(|(r, _)| {
                r.edges.iter().any(|e| {
                    e.role == crate::model::Role::Output
                        && e.abs_path == abs
                        && e.written != Some(crate::model::Written::Nothing)
                        && e.artifact.as_ref().is_some_and(|a| a.hash == root)
                })
            })
            .map(|(r, _)| r.id.clone())
            .collect();
    }
    if !all && direction == Direction::Ancestry {
        // What the walk shows as a source although a run that did not succeed wrote it.
        let mut sources: Vec<Hash> = vec![lineage.root.hash];
        for (r, _) in lineage.runs.values() {
            sources.extend(
                r.edges
                    .iter()
                    .filter(|e| e.role != crate::model::Role::Output)
                    .filter_map(|e| e.artifact.as_ref().map(|a| a.hash)),
            );
        }
        sources.sort();
        sources.dedup();
        for h in sources {
            if lineage.links.contains_key(&h) {
                continue;
            }
            if let Some((run, status)) = store.failed_maker(&h)? {
                let short = store.short_id(&run)?;
                lineage.failed_makers.insert(h, (short, status));
            }
        }
    }
    Ok(lineage)
}
