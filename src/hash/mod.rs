//! BLAKE3 content hashes of files and directories.
//!
//! A file's hash is the plain BLAKE3 of its bytes (what `b3sum` prints). A directory's hash is
//! a Merkle construction over its files in walk order (depth first, the entries of each
//! directory sorted bytewise by name; docs/hashing.md): BLAKE3 in derive-key mode with context
//! [`DIR_CONTEXT`], fed for every file with
//! `u64-le(len(path)) || path || exec-bit byte || file hash (32 bytes)`. It covers names as
//! well as contents, so a rename, an added, removed or modified file all change it.
//! Directories are hashed as a stream, in chunks hashed in parallel: memory does not grow with
//! the number of files; each chunk's manifest entries go to a caller's sink.
//! Symlinks are followed (loops detected); FIFOs, sockets and devices are skipped with a
//! warning and never opened.

mod dir;
mod file;
mod mapped;
mod spill;
mod walk;

pub use file::{open_regular, read_opened, read_regular};

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use crate::model::{Artifact, ArtifactKind, DirEntry, Hash};
use crate::watch::Watch;
use dir::*;
use file::*;
use spill::*;
use walk::*;

/// The derive-key context of directory hashes. Changing it changes every directory hash.
pub const DIR_CONTEXT: &str = "lineage 2026-11 directory manifest v2";

/// What hashing shares with the rest of a command, handed to it rather than kept in
/// globals: the progress it reports (which `progress` draws), whether the job is still
/// running (set by `lineage run`, which knows), and the lower-priority threads that hash
/// beside a running job. Cloning shares the same state.
#[derive(Clone, Default)]
pub struct Hashing(Arc<Shared>);

#[derive(Default)]
struct Shared {
    progress: Progress,
    job_running: AtomicBool,
    alongside: OnceLock<Option<rayon::ThreadPool>>,
    /// The threads that hash at lineage's own priority what is left once the job has ended,
    /// started with `alongside` (by a thread of that priority: a thread's nice value is
    /// inherited, and cannot be lowered back without privileges).
    full: OnceLock<Option<rayon::ThreadPool>>,
    /// Raised when lineage is asked to stop (SIGINT, SIGTERM once the job has ended): hashing
    /// then ends with [`stopped`] at the next window, file or chunk.
    stop: Arc<AtomicBool>,
}

/// The error of hashing that was asked to stop.
pub fn stopped() -> io::Error {
    io::Error::other("not hashed: lineage was asked to stop")
}

impl Hashing {
    /// What hashing has done so far.
    pub fn progress(&self) -> &Progress {
        &self.0.progress
    }

    /// Whether the job is running: hashing beside it yields to it (see [`Hashing::alongside`]).
    pub fn set_job_running(&self, running: bool) {
        self.0.job_running.store(running, Ordering::Relaxed);
    }

    /// The flag that stops hashing when raised (the signal handling of `child` holds it).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0.stop)
    }

    /// Whether hashing was asked to stop.
    pub fn is_stopped(&self) -> bool {
        self.0.stop.load(Ordering::Relaxed)
    }

    fn check_stop(&self) -> io::Result<()> {
        if self.is_stopped() {
            return Err(stopped());
        }
        Ok(())
    }

    fn job_running(&self) -> bool {
        self.0.job_running.load(Ordering::Relaxed)
    }

    /// The threads that hash while the job runs: one per core, at a lower priority (nice
    /// 10), so that on a core the job wants they get about a tenth of it. Work started after
    /// the job has ended goes to rayon's global pool, at lineage's own priority. None if
    /// they cannot be started (the global pool then serves).
    fn alongside(&self) -> Option<&rayon::ThreadPool> {
        self.0
            .alongside
            .get_or_init(|| {
                self.0.full.get_or_init(|| {
                    rayon::ThreadPoolBuilder::new()
                        .thread_name(|i| format!("lineage-hash-full-{i}"))
                        .build()
                        .ok()
                });
                rayon::ThreadPoolBuilder::new()
                    .thread_name(|i| format!("lineage-hash-{i}"))
                    .start_handler(|_| {
                        // On Linux a thread id names just that thread. Best effort.
                        let me = rustix::thread::gettid();
                        let _ = rustix::process::setpriority_process(Some(me), NICEST);
                    })
                    .build()
                    .ok()
            })
            .as_ref()
    }

    /// The pool at lineage's own priority, for what is left once the job has ended, when
    /// the lower-priority one was started (None: the caller's pool, which is then not a
    /// lower-priority one).
    fn full_pool(&self) -> Option<&rayon::ThreadPool> {
        self.0.full.get().and_then(Option::as_ref)
    }

    /// The pool to hash in now: the lower-priority one while the job runs.
    fn yielding_pool(&self) -> Option<&rayon::ThreadPool> {
        self.job_running().then(|| self.alongside()).flatten()
    }

    /// Hash a file or a directory. Errors only when `path` itself cannot be read. A
    /// directory's manifest entries go to `sink`, chunk by chunk; the artifact keeps only
    /// their count. With a `cache`, files whose stat is unchanged since they were hashed are
    /// not read again.
    ///
    /// With a `watch`, the path and each directory under it are watched from before their
    /// stats are taken (see `watch`).
    pub fn hash_path(
        &self,
        path: &Path,
        sink: Sink,
        cache: Option<&dyn StatCache>,
        watch: Option<&mut Watch>,
    ) -> io::Result<Hashed> {
        hash_now(path, sink, self.how(cache, Read::Parallel), watch)
    }

    /// Hash regular files by the stats taken of them (in order), through `cache`: what it
    /// knows is not read again (one lookup for all), what is read is recorded when stable.
    /// For many files that are not a directory: a repository's untracked files.
    pub fn hash_files(
        &self,
        files: &[(PathBuf, StatKey)],
        cache: Option<&dyn StatCache>,
    ) -> Vec<io::Result<(Hash, u64)>> {
        file::hash_with_cache(files, self.how(cache, Read::Parallel))
            .into_iter()
            .map(|(r, _)| r)
            .collect()
    }

    /// [`Hashing::hash_path`] for an output: symlinks that leave the directory are recorded
    /// as links (their target's text), never followed.
    pub fn hash_output(
        &self,
        path: &Path,
        sink: Sink,
        cache: Option<&dyn StatCache>,
    ) -> io::Result<Hashed> {
        let how = How {
            links: Links::Within,
            ..self.how(cache, Read::Parallel)
        };
        hash_now(path, sink, how, None)
    }

    /// Like [`Hashing::hash_path`], but the bytes may be left to read later, while the job
    /// runs: the walk and its stats happen now (so the fingerprint and the cache lookups are
    /// those of this moment), and [`Later::finish`] hashes only bytes whose file still has
    /// the stats taken now. Hashed now instead: anything the cache knows, a file modified in
    /// the last second (whose later change could leave its stats as they are), directories
    /// of more than `DIR_CACHE_FILES` files (held in memory until hashed otherwise), and
    /// paths that cannot be read.
    pub fn prepare(
        &self,
        path: &Path,
        sink: Sink,
        cache: Option<&dyn StatCache>,
        watch: Option<&mut Watch>,
    ) -> io::Result<Prepared> {
        hash_or_prepare(path, sink, self.how(cache, Read::Parallel), watch, true)
    }

    /// [`Hashing::hash_path`] while the job runs: large files window by window (see [`Read`]).
    pub fn hash_path_while_running(
        &self,
        path: &Path,
        sink: Sink,
        cache: Option<&dyn StatCache>,
    ) -> io::Result<Hashed> {
        hash_now(path, sink, self.how(cache, Read::Copy), None)
    }

    fn how<'a>(&'a self, cache: Option<&'a dyn StatCache>, read: Read) -> How<'a> {
        How {
            hashing: self,
            cache,
            read,
            links: Links::Follow,
        }
    }
}

/// How a hashing operation goes: its context, its cache, and how it reads large files.
#[derive(Clone, Copy)]
struct How<'a> {
    hashing: &'a Hashing,
    cache: Option<&'a dyn StatCache>,
    read: Read,
    links: Links,
}

/// What hashing has done so far, for the progress bar: bytes and files hashed or found in a
/// cache, and the bytes walked so far (the total, as far as it is known).
#[derive(Default)]
pub struct Progress {
    done_bytes: AtomicU64,
    done_files: AtomicU64,
    total_bytes: AtomicU64,
}

impl Progress {
    pub fn reset(&self) {
        for n in [&self.done_bytes, &self.done_files, &self.total_bytes] {
            n.store(0, Ordering::Relaxed);
        }
    }

    /// (bytes done, bytes known, files done).
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.done_bytes.load(Ordering::Relaxed),
            self.total_bytes.load(Ordering::Relaxed),
            self.done_files.load(Ordering::Relaxed),
        )
    }

    fn found(&self, bytes: u64) {
        self.total_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn done(&self, bytes: u64, files: u64) {
        self.done_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.done_files.fetch_add(files, Ordering::Relaxed);
    }

    /// Bytes counted as done that are to be hashed again.
    fn undo(&self, bytes: u64) {
        let _ = self
            .done_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                Some(d.saturating_sub(bytes))
            });
    }
}

/// Receives a directory's manifest entries, chunk by chunk, in walk order.
pub type Sink<'a> = &'a mut dyn FnMut(&[DirEntry]) -> io::Result<()>;

/// What stat says about a file's bytes. Equal keys mean unchanged bytes, provided the file
/// was not modified within the timestamp granularity of when it was hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StatKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl StatKey {
    /// The key of a `stat` taken without std (`fstatat` relative to a directory).
    pub fn of_stat(st: &nix::sys::stat::FileStat) -> StatKey {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        StatKey {
            dev: st.st_dev,
            ino: st.st_ino,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime_ns: ns(st.st_mtime, st.st_mtime_nsec),
            ctime_ns: ns(st.st_ctime, st.st_ctime_nsec),
        }
    }

    pub fn of(meta: &Metadata) -> StatKey {
        StatKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: mtime_ns(meta),
            ctime_ns: meta
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.ctime_nsec()),
        }
    }
}

/// A persistent map from stat keys to content hashes (the store keeps one).
pub trait StatCache {
    /// The hashes known for these keys, in order; None where unknown or stale.
    fn lookup(&self, keys: &[StatKey]) -> Vec<Option<Hash>>;
    /// Remember hashes just computed (best effort).
    fn record(&self, entries: &[(StatKey, Hash)]);
    /// The directory artifact recorded for a walk with this stat digest, if its manifest is
    /// stored.
    fn lookup_dir(&self, _digest: &Hash) -> Option<Artifact> {
        None
    }
    /// Remember that a walk with this stat digest gave this directory hash (best effort).
    fn record_dir(&self, _digest: &Hash, _dir: &Hash) {}
    /// Whether the directory at `path` was hashed before (so is likely unchanged).
    fn seen_dir(&self, _path: &Path) -> bool {
        false
    }
}

/// A sink that keeps nothing (when only the hash is wanted).
pub fn discard(_: &[DirEntry]) -> io::Result<()> {
    Ok(())
}

/// A hashed path plus what is needed to tell, later, whether it changed.
#[derive(Debug)]
pub struct Hashed {
    pub artifact: Artifact,
    pub fingerprint: Fingerprint,
    /// Entries skipped (special files, dangling links, loops, unreadable), one line each.
    pub warnings: Vec<String>,
}

/// A digest of (relative path, size, mtime, ctime) of every file in walk order: cheap to recompute
/// with stat alone, so inputs can be re-checked after the job without hashing them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fingerprint(Hash);

#[derive(Default)]
struct FingerprintBuilder(blake3::Hasher);

impl FingerprintBuilder {
    fn add(&mut self, rel: &[u8], key: &StatKey) {
        self.0.update(&(rel.len() as u64).to_le_bytes());
        self.0.update(rel);
        // ctime too: bytes rewritten with the mtime put back (`touch -d`) still move it.
        let mut stats = [0u8; 24];
        stats[..8].copy_from_slice(&key.size.to_le_bytes());
        stats[8..16].copy_from_slice(&key.mtime_ns.to_le_bytes());
        stats[16..].copy_from_slice(&key.ctime_ns.to_le_bytes());
        self.0.update(&stats);
    }

    fn finish(&self) -> Fingerprint {
        Fingerprint(Hash(*self.0.finalize().as_bytes()))
    }
}

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
    hash_file_stat(path, None, Read::Parallel).map(|(hash, size, _)| (hash, size))
}

/// [`hash_or_prepare`] asked to leave nothing for later.
fn hash_now(path: &Path, sink: Sink, how: How, watch: Option<&mut Watch>) -> io::Result<Hashed> {
    match hash_or_prepare(path, sink, how, watch, false)? {
        Prepared::Done(hashed) => Ok(hashed),
        Prepared::Later(_) => unreachable!("hashing is never left for later unless asked"),
    }
}

/// What [`Hashing::prepare`] did with a path: hashed it, or took its stats and left the reading for
/// later.
pub enum Prepared {
    Done(Hashed),
    Later(Later),
}

/// Watch `root` and every directory under it with `watch`, each before it is listed, without
/// a stat of any file (entry types come from the listing): from then on, any change to the
/// tree is an event. False when that cannot vouch for the whole tree: a symlink (walks follow
/// them), a special file, a directory that cannot be listed, or a watch refused (too many, a
/// network filesystem).
pub fn watch_dirs(root: &Path, watch: &mut Watch) -> bool {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        watch.add(&dir);
        if !watch.active() {
            return false;
        }
        let Ok(read) = std::fs::read_dir(&dir) else {
            return false;
        };
        for entry in read {
            match entry.and_then(|e| e.file_type().map(|t| (e, t))) {
                Ok((e, t)) if t.is_dir() => stack.push(e.path()),
                Ok((_, t)) if t.is_file() => {}
                _ => return false,
            }
        }
    }
    true
}

fn hash_or_prepare(
    path: &Path,
    sink: Sink,
    how: How,
    mut watch: Option<&mut Watch>,
    defer: bool,
) -> io::Result<Prepared> {
    if let Some(w) = watch.as_deref_mut() {
        w.add(path);
    }
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        return prepare_file(path, &meta, how, defer);
    }
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file or directory (FIFOs, sockets and devices are never opened)",
        ));
    }
    // A directory never seen before is hashed while it is walked; one seen before is walked
    // first, so that if nothing changed one lookup of its digest stands for every file.
    let seen = how.cache.is_some_and(|c| c.seen_dir(path));
    if !seen && !defer {
        return hash_dir_pipelined(path, sink, how, watch).map(Prepared::Done);
    }
    prepare_dir(path, sink, how, watch, defer, seen)
}

/// [`hash_or_prepare`] for a regular file: left for later unless the cache knows it or it
/// changed within the racy window.
fn prepare_file(path: &Path, meta: &Metadata, how: How, defer: bool) -> io::Result<Prepared> {
    let key = StatKey::of(meta);
    let mut print = FingerprintBuilder::default();
    print.add(b"", &key);
    let known = |c: &dyn StatCache| c.lookup(&[key]).pop().flatten().is_some();
    if defer && !racy(&key, now_ns()) && !how.cache.is_some_and(known) {
        return Ok(Prepared::Later(Later {
            dir: false,
            files: vec![WalkedFile {
                path: path.to_path_buf(),
                rel: Vec::new(),
                executable: false,
                key,
                link: None,
            }],
            spilled: None,
            digest: None,
            fingerprint: print.finish(),
            warnings: Vec::new(),
        }));
    }
    how.hashing.progress().found(meta.len());
    let (hash, size) = hash_with_cache(&[(path.to_path_buf(), key)], how)
        .pop()
        .map_or_else(|| Err(io::Error::other("nothing hashed")), |(r, _)| r)?;
    // Changed since its stats were taken (written, truncated and written back, replaced):
    // the bytes read may be no state the file ever had. An attacking trial recorded a hash
    // of an output cut 3 bytes short and written back meanwhile, zeros for its last bytes.
    if std::fs::metadata(path).map(|m| StatKey::of(&m)).ok() != Some(key) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "it changed while it was read",
        ));
    }
    Ok(Prepared::Done(Hashed {
        artifact: Artifact {
            hash,
            kind: ArtifactKind::File,
            size,
            file_count: 1,
        },
        fingerprint: print.finish(),
        warnings: Vec::new(),
    }))
}

/// [`hash_or_prepare`] for a directory walked before it is hashed: walked in full first (the
/// first `DIR_CACHE_FILES` files held in memory, the rest spilled to a temporary file), so
/// that an unchanged directory (`seen` before) costs one lookup of the walk's stat digest;
/// then the bytes are left for later (`defer`, nothing racy) or hashed now. Where the spill
/// cannot be written (no room in `TMPDIR`), the rest of the walk is hashed now, as it goes.
fn prepare_dir(
    path: &Path,
    sink: Sink,
    how: How,
    watch: Option<&mut Watch>,
    defer: bool,
    seen: bool,
) -> io::Result<Prepared> {
    let progress = how.hashing.progress();
    let now = now_ns();
    let mut warnings = Vec::new();
    let mut walk = walk_dir(path, watch, how.links).inspect(|item| {
        if let Ok(f) = item {
            progress.found(f.key.size);
        }
    });
    let mut head: Vec<WalkedFile> = Vec::new();
    let mut spill: Option<Spill> = None;
    // A file walked but kept nowhere (no spill could be made), and why the walk stopped
    // being kept.
    let (mut pending, mut unkept): (Option<WalkedFile>, Option<io::Error>) = (None, None);
    // The walk's stat digest, its fingerprint and whether any file is racy, over the files
    // in walk order: the head's once the walk is past it (summing each file as it came
    // slowed the walk's consumer enough to cost 2 ms on 20,000 files), then each spilled one.
    let (mut digest, mut print, mut any_racy) =
        (StatDigest::default(), FingerprintBuilder::default(), false);
    let mut sum = |f: &WalkedFile| {
        digest.add(f);
        print.add(&f.rel, &f.key);
        any_racy |= racy(&f.key, now);
    };
    let mut head_summed = false;
    for item in walk.by_ref() {
        let f = match item {
            Ok(f) => f,
            Err(w) if w.lost => return Err(w.error()),
            Err(w) => {
                warnings.push(w.line);
                continue;
            }
        };
        if head.len() < DIR_CACHE_FILES {
            head.push(f);
            continue;
        }
        if !head_summed {
            head.iter().for_each(&mut sum);
            head_summed = true;
        }
        sum(&f);
        let kept = match &mut spill {
            Some(s) => s.push(&f),
            None => match Spill::new() {
                Ok(s) => spill.insert(s).push(&f),
                Err(e) => {
                    pending = Some(f);
                    Err(e)
                }
            },
        };
        // On a failed write the file is still held, in the spill's memory.
        if let Err(e) = kept {
            unkept = Some(e);
            break;
        }
    }
    if !head_summed {
        head.iter().for_each(&mut sum);
    }
    if let Some(e) = &unkept {
        warnings.push(format!(
            "more than {DIR_CACHE_FILES} files, whose list could not be kept in a temporary \
             file in {} ({e}): hashed at once, before launch (a TMPDIR with room lets the job \
             start first)",
            std::env::temp_dir().display()
        ));
    }
    let digest = (unkept.is_none() && warnings.is_empty()).then(|| digest.finish());
    if let Some(d) = &digest
        && let Some(artifact) = how.cache.filter(|_| seen).and_then(|c| c.lookup_dir(d))
    {
        progress.done(artifact.size, artifact.file_count);
        return Ok(Prepared::Done(Hashed {
            artifact,
            fingerprint: print.finish(),
            warnings,
        }));
    }
    if defer && unkept.is_none() && !any_racy {
        return Ok(Prepared::Later(Later {
            dir: true,
            fingerprint: print.finish(),
            files: head,
            spilled: spill.map(|s| s.files(path)).transpose()?,
            digest,
            warnings,
        }));
    }
    let mut hashing = DirHashing::new(how);
    hashing.warnings = warnings;
    let mut chunk: Vec<WalkedFile> = Vec::with_capacity(CHUNK);
    for f in head {
        hashing.feed(&mut chunk, f, sink)?;
    }
    if let Some(s) = spill {
        for f in s.files(path)? {
            hashing.feed(&mut chunk, f?, sink)?;
        }
    }
    if let Some(f) = pending {
        hashing.feed(&mut chunk, f, sink)?;
    }
    for item in walk {
        match item {
            Ok(f) => hashing.feed(&mut chunk, f, sink)?,
            Err(w) if w.lost => return Err(w.error()),
            Err(w) => hashing.warnings.push(w.line),
        }
    }
    hashing.chunk(&mut chunk, sink)?;
    let (hashed, cacheable) = hashing.finish();
    if let (Some(cache), Some(digest)) = (how.cache, digest)
        && cacheable
    {
        cache.record_dir(&digest, &hashed.artifact.hash);
    }
    Ok(Prepared::Done(hashed))
}

/// A path walked and stat-ed, its bytes still to hash (see [`Hashing::prepare`]).
pub struct Later {
    dir: bool,
    files: Vec<WalkedFile>,
    /// The files of a directory's walk after `files`, spilled to a temporary file.
    spilled: Option<SpillReader>,
    /// The walk's stat digest, for the directory cache (None: not cacheable).
    digest: Option<Hash>,
    fingerprint: Fingerprint,
    warnings: Vec<String>,
}

/// Why [`Later::finish`] gave no hash.
#[derive(Debug)]
pub enum LaterError {
    /// A file changed (or went) between the walk and its reading: the bytes that were there
    /// when the stats were taken are gone. The file named.
    Changed(PathBuf),
    Io(io::Error),
}

impl Later {
    /// The fingerprint of the walk (its moment, not the hashing's).
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    pub fn is_dir(&self) -> bool {
        self.dir
    }

    /// A file's stats at the walk (None for a directory): with the hash `finish` returns,
    /// what a stat cache may remember, since `finish` succeeds only if they still held.
    pub fn file_key(&self) -> Option<StatKey> {
        (!self.dir).then(|| self.files[0].key)
    }

    /// Hash the bytes, checking that each file still has the stats the walk saw (after it is
    /// read, on the open file): a change since then moves its ctime, since none of these
    /// files was modified within the racy window of the walk. Large files are read window
    /// by window, yielding to the job while it runs.
    pub fn finish(
        self,
        hashing: &Hashing,
        sink: Sink,
        cache: Option<&dyn StatCache>,
    ) -> Result<Hashed, LaterError> {
        let how = hashing.how(cache, Read::Copy);
        if !self.dir {
            let f = &self.files[0];
            let (result, stable) = hash_with_cache(&[(f.path.clone(), f.key)], how)
                .pop()
                .ok_or_else(|| LaterError::Io(io::Error::other("nothing hashed")))?;
            return match result {
                Ok((hash, size)) if stable => Ok(Hashed {
                    artifact: Artifact {
                        hash,
                        kind: ArtifactKind::File,
                        size,
                        file_count: 1,
                    },
                    fingerprint: self.fingerprint,
                    warnings: self.warnings,
                }),
                Ok(_) => Err(LaterError::Changed(f.path.clone())),
                // Gone, shorter than its stats said, or something else now: changed since
                // the walk.
                Err(e) if changed_since_walk(&e, &f.path, &f.key) => {
                    Err(LaterError::Changed(f.path.clone()))
                }
                Err(e) => Err(LaterError::Io(e)),
            };
        }
        let mut hashing = DirHashing::new(how);
        hashing.warnings = self.warnings;
        let mut files = self
            .files
            .into_iter()
            .map(Ok)
            .chain(self.spilled.into_iter().flatten());
        loop {
            let mut chunk: Vec<WalkedFile> = files
                .by_ref()
                .take(CHUNK)
                .collect::<io::Result<_>>()
                .map_err(LaterError::Io)?;
            if chunk.is_empty() {
                break;
            }
            hashing.chunk(&mut chunk, sink).map_err(LaterError::Io)?;
            if let Some(changed) = hashing.unstable.take() {
                return Err(LaterError::Changed(changed));
            }
        }
        let (mut hashed, cacheable) = hashing.finish();
        if let (Some(cache), Some(digest)) = (cache, self.digest)
            && cacheable
        {
            cache.record_dir(&digest, &hashed.artifact.hash);
        }
        hashed.fingerprint = self.fingerprint;
        Ok(hashed)
    }
}

/// What was at an output's path before the job started, by stat alone: a file's key (under
/// the empty path), or each file of a directory under its path inside it (as manifests name
/// them); nothing when nothing was there. After the job, [`written`] tells from it which of
/// the output's bytes the job wrote.
#[derive(Debug, Clone)]
pub struct Snapshot {
    files: Option<std::collections::HashMap<String, StatKey>>,
    /// When it was taken (ns since the epoch), just before launch.
    taken_ns: i64,
    /// A file whose inode last changed this long before `taken_ns` was not written by the job.
    margin_ns: i64,
}

/// Timestamps are kept at the kernel's tick (4 ms at 250 Hz): a file whose ctime is this
/// close to the snapshot may have been rewritten, same size, in the same tick.
const TICK_NS: i64 = 20_000_000;

/// A file whose inode last changed this long before launch was not written by the job,
/// wherever it now appears (a link retargeted to it, a directory moved in): the margin
/// covers a file server's clock a little behind this machine's.
const BEFORE_LAUNCH_NS: i64 = 2_000_000_000;

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The files at `path` now, by relative path (None: nothing there).
fn stat_files(path: &Path) -> Option<std::collections::HashMap<String, StatKey>> {
    let meta = std::fs::metadata(path).ok()?;
    let mut files = std::collections::HashMap::new();
    if meta.is_dir() {
        for f in walk_dir(path, None, Links::Within).flatten() {
            files.insert(crate::model::path_text(&f.rel), f.key);
        }
    } else {
        files.insert(String::new(), StatKey::of(&meta));
    }
    Some(files)
}

/// Take an output's snapshot just before launch.
pub fn snapshot(path: &Path) -> Snapshot {
    let taken_ns = now_ns();
    Snapshot {
        files: stat_files(path),
        taken_ns,
        margin_ns: BEFORE_LAUNCH_NS,
    }
}

/// No snapshot, only the moment the job started (by the clock files are stamped with): for
/// a path the job named itself while it ran (the in-job API), a file whose inode last changed
/// before then was not written by it.
pub fn since(start: std::time::SystemTime) -> Snapshot {
    let taken_ns = start
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    Snapshot {
        files: None,
        taken_ns,
        margin_ns: TICK_NS,
    }
}

/// Which of the bytes at an output's path the job wrote, from its snapshot before launch
/// (docs/lineage-model.md, "Produced means written"): a file is written when it is new at
/// its path or its identity (device, inode, size, mtime, ctime) changed, and its inode
/// changed while the job ran (its ctime is not from well before launch: a link retargeted
/// to an old file writes nothing). A file whose ctime is within a tick of the snapshot
/// counts as written: it may have been rewritten without a visible change. Of a
/// directory, file by file.
pub fn written(path: &Path, before: &Snapshot) -> crate::model::Written {
    use crate::model::Written;
    let Some(after) = stat_files(path) else {
        return Written::All;
    };
    let empty = std::collections::HashMap::new();
    let was = before.files.as_ref().unwrap_or(&empty);
    let untouched = |path: &String, key: &StatKey| {
        (was.get(path) == Some(key) && key.ctime_ns < before.taken_ns - TICK_NS)
            || key.ctime_ns < before.taken_ns - before.margin_ns
    };
    let mut kept: Vec<String> = after
        .iter()
        .filter(|(p, k)| untouched(p, k))
        .map(|(p, _)| p.clone())
        .collect();
    let is_file = after.len() == 1 && after.contains_key("");
    if is_file {
        return if kept.is_empty() {
            Written::All
        } else {
            Written::Nothing
        };
    }
    let removed = was.keys().any(|p| !after.contains_key(p));
    if after.is_empty() {
        // An empty directory: the job's if it made it or emptied it, else left as it was.
        return if before.files.is_some() && !removed {
            Written::Nothing
        } else {
            Written::All
        };
    }
    if kept.is_empty() {
        return Written::All;
    }
    // Every file left as it was, none removed (or a directory that appeared holding only
    // old files: moved in, linked): the job wrote nothing there.
    if kept.len() == after.len() && (!removed || before.files.is_none()) {
        return Written::Nothing;
    }
    kept.sort();
    Written::Partly(kept)
}

/// Recompute the fingerprint of a path with stat alone (None when it is gone).
pub fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let meta = std::fs::metadata(path).ok()?;
    let mut print = FingerprintBuilder::default();
    if meta.is_file() {
        print.add(b"", &StatKey::of(&meta));
    } else {
        for f in walk_dir(path, None, Links::Follow).flatten() {
            print.add(&f.rel, &f.key);
        }
    }
    Some(print.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn later(path: &Path) -> Later {
        match Hashing::default()
            .prepare(path, &mut discard, None, None)
            .expect("prepare")
        {
            Prepared::Later(l) => l,
            Prepared::Done(_) => panic!("{} was hashed at once", path.display()),
        }
    }

    /// Rewrite `path` with `bytes` and put its mtime back, as tar or `touch -d` would.
    fn rewrite_keeping_mtime(path: &Path, bytes: &[u8]) {
        let mtime = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .expect("mtime");
        std::fs::write(path, bytes).expect("write");
        File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(mtime))
            .expect("set mtime");
    }

    /// A file hashed at once (written in the last second, as a job's outputs are) that
    /// changed after its stats were taken is an error, not a hash of whatever was read:
    /// rewritten with its mtime put back, or written again with other bytes.
    #[test]
    fn a_file_changed_after_its_stats_were_taken_is_not_hashed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.bin");
        let bytes: Vec<u8> = (0..(5 << 20) + 3).map(|i| (i % 239) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        let hashing = Hashing::default();
        let meta = std::fs::metadata(&path).expect("stat");
        match prepare_file(&path, &meta, hashing.how(None, Read::Parallel), false) {
            Ok(Prepared::Done(h)) => assert_eq!(h.artifact.hash, Hash::of(&bytes)),
            other => panic!("unchanged: {:?}", other.map(|_| ())),
        }
        let mut other = bytes.clone();
        let n = other.len();
        other[n - 3..].copy_from_slice(&[0, 0, 0]);
        rewrite_keeping_mtime(&path, &other);
        let err = prepare_file(&path, &meta, hashing.how(None, Read::Parallel), false)
            .map(|_| ())
            .expect_err("changed after its stats");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    }

    /// `prepare` leaves settled bytes for later; `finish` hashes them as `hash_path` would,
    /// or refuses once any of them changed after the stats were taken, however the change
    /// hides (same size, mtime put back; truncated; gone). Bytes written in the last second
    /// are hashed at once.
    #[test]
    fn bytes_hashed_later_are_those_there_when_the_stats_were_taken() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let big: Vec<u8> = (0..(3 * COPY_BUF + 77)).map(|i| (i % 241) as u8).collect();
        for name in ["a", "b", "c", "d", "e", "f"] {
            std::fs::create_dir_all(root.join(name).join("sub")).expect("mkdir");
            std::fs::write(root.join(name).join("sub/x"), b"1111").expect("write");
            std::fs::write(root.join(name).join("y"), b"22").expect("write");
            std::fs::write(root.join(name).join("big"), &big).expect("write");
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));

        let expected = Hashing::default()
            .hash_path(&root.join("a"), &mut discard, None, None)
            .expect("hash");
        let hashed = later(&root.join("a"))
            .finish(&Hashing::default(), &mut discard, None)
            .expect("unchanged");
        assert_eq!(
            (
                hashed.artifact.hash,
                hashed.artifact.size,
                hashed.artifact.file_count
            ),
            (expected.artifact.hash, expected.artifact.size, 3)
        );
        assert_eq!(hashed.fingerprint, expected.fingerprint);
        let file = later(&root.join("a/big"))
            .finish(&Hashing::default(), &mut discard, None)
            .expect("unchanged");
        assert_eq!(file.artifact.hash, Hash::of(&big));

        let l = later(&root.join("b"));
        rewrite_keeping_mtime(&root.join("b/sub/x"), b"2222");
        match l.finish(&Hashing::default(), &mut discard, None) {
            Err(LaterError::Changed(p)) => assert_eq!(p, root.join("b/sub/x")),
            other => panic!("a rewrite with the mtime put back was not seen: {other:?}"),
        }

        let l = later(&root.join("c/big"));
        File::options()
            .write(true)
            .open(root.join("c/big"))
            .and_then(|f| f.set_len(5))
            .expect("truncate");
        assert!(matches!(
            l.finish(&Hashing::default(), &mut discard, None),
            Err(LaterError::Changed(_))
        ));

        let l = later(&root.join("d"));
        std::fs::remove_file(root.join("d/y")).expect("remove");
        assert!(matches!(
            l.finish(&Hashing::default(), &mut discard, None),
            Err(LaterError::Changed(_))
        ));

        // A file that is something else by the time it is read (a directory, a FIFO): a
        // read error, not a file to skip, since it was a file at the walk.
        let l = later(&root.join("e"));
        std::fs::remove_file(root.join("e/y")).expect("remove");
        std::fs::create_dir(root.join("e/y")).expect("mkdir");
        match l.finish(&Hashing::default(), &mut discard, None) {
            Err(LaterError::Changed(p)) => assert_eq!(p, root.join("e/y")),
            other => panic!("a file made a directory was not seen: {other:?}"),
        }
        let l = later(&root.join("f"));
        std::fs::remove_file(root.join("f/y")).expect("remove");
        nix::unistd::mkfifo(&root.join("f/y"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        match l.finish(&Hashing::default(), &mut discard, None) {
            Err(LaterError::Changed(p)) => assert_eq!(p, root.join("f/y")),
            other => panic!("a file made a FIFO was not seen: {other:?}"),
        }

        std::fs::write(root.join("a/new"), b"fresh").expect("write");
        for path in [root.join("a"), root.join("a/new")] {
            assert!(matches!(
                Hashing::default().prepare(&path, &mut discard, None, None),
                Ok(Prepared::Done(_))
            ));
        }
    }

    /// A large file reached through many links is read once, and hashes as copies of it do.
    /// (Bytes read, from /proc/self/io: 40 links to 8 MiB read 328 MiB before.)
    #[test]
    fn a_large_file_reached_through_many_links_is_read_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (linked, copied) = (dir.path().join("linked"), dir.path().join("copied"));
        let bytes: Vec<u8> = (0..8u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::create_dir_all(linked.join("blobs")).expect("mkdir");
        std::fs::write(linked.join("blobs/b"), &bytes).expect("write");
        std::fs::create_dir_all(copied.join("blobs")).expect("mkdir");
        std::fs::write(copied.join("blobs/b"), &bytes).expect("write");
        for i in 0..40 {
            let snap = format!("snapshots/{i:02}");
            std::fs::create_dir_all(linked.join(&snap)).expect("mkdir");
            std::os::unix::fs::symlink("../../blobs/b", linked.join(&snap).join("model"))
                .expect("link");
            std::fs::create_dir_all(copied.join(&snap)).expect("mkdir");
            std::fs::write(copied.join(&snap).join("model"), &bytes).expect("write");
        }
        let read_bytes = || -> u64 {
            std::fs::read_to_string("/proc/self/io")
                .ok()
                .and_then(|io| {
                    io.lines()
                        .find_map(|l| l.strip_prefix("rchar: ").map(str::to_string))
                })
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0)
        };
        let before = read_bytes();
        let via_links = Hashing::default()
            .hash_path(&linked, &mut discard, None, None)
            .expect("hash");
        let read = read_bytes() - before;
        let via_copies = Hashing::default()
            .hash_path(&copied, &mut discard, None, None)
            .expect("hash");
        assert_eq!(via_links.artifact.hash, via_copies.artifact.hash);
        assert_eq!(via_links.artifact.file_count, 41);
        // Once is 8 MiB; other tests of this process read beside it, far less than the
        // 328 MiB of reading it through every link.
        assert!(read < 120 << 20, "{} MiB read", read >> 20);
    }

    /// A directory of more files than are held in memory spills the rest of its walk, and
    /// hashes as `hash_path` does: left for later (a change to a spilled file is seen), or at
    /// once when a spilled file is racy.
    #[test]
    fn a_walk_past_the_files_held_in_memory_is_spilled_and_hashed_later() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let files = 3 * DIR_CACHE_FILES + 17;
        for n in 0..files {
            let d = root.join(format!("d{:02}", n % 13));
            std::fs::create_dir_all(&d).expect("mkdir");
            let f = d.join(format!("f{n:04}"));
            std::fs::write(&f, format!("file {n}").repeat(n % 5)).expect("write");
            if n % 7 == 0 {
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod");
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let now = || {
            Hashing::default()
                .hash_path(root, &mut discard, None, None)
                .expect("hash")
        };
        let expected = now();
        let l = later(root);
        assert!(l.spilled.is_some(), "the walk past the head was spilled");
        let hashed = l
            .finish(&Hashing::default(), &mut discard, None)
            .expect("unchanged");
        let sum = |h: &Hashed| (h.artifact.hash, h.artifact.size, h.artifact.file_count);
        assert_eq!(sum(&hashed), sum(&expected));
        assert_eq!(hashed.artifact.file_count, files as u64);
        assert_eq!(hashed.fingerprint, expected.fingerprint);

        // The last file walked is in the spill.
        let last = root.join("d12/f0311");
        assert!(last.exists(), "{}", last.display());
        let l = later(root);
        rewrite_keeping_mtime(&last, b"other bytes");
        match l.finish(&Hashing::default(), &mut discard, None) {
            Err(LaterError::Changed(p)) => assert_eq!(p, last),
            other => panic!("a change to a spilled file was not seen: {other:?}"),
        }

        // A racy file past the head: the whole directory is hashed at once, spill included.
        std::fs::write(root.join("d12/zz"), b"just written").expect("write");
        match Hashing::default().prepare(root, &mut discard, None, None) {
            Ok(Prepared::Done(h)) => {
                assert_eq!(sum(&h), sum(&now()));
                assert_eq!(h.artifact.file_count, files as u64 + 1);
            }
            Ok(Prepared::Later(_)) => panic!("a racy file was left for later"),
            Err(e) => panic!("{e}"),
        }
    }

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
    fn a_file_larger_than_a_window_hashes_as_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big");
        let len = 2 * copy_window_len(1) as usize + 12_345;
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let (hash, size) = hash_file(&path).expect("hash");
        assert_eq!((hash, size), (Hash::of(&data), len as u64));
    }

    /// Files read in windows hashed as separate subtrees give plain BLAKE3, whatever their
    /// length against the window: one byte, one chunk, one window, around powers of two.
    #[test]
    fn windows_hashed_as_subtrees_give_the_plain_blake3() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let window = 4 * blake3::CHUNK_LEN as u64;
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let c = blake3::CHUNK_LEN;
        for len in [
            1,
            c - 1,
            c,
            c + 1,
            4 * c,
            4 * c + 1,
            8 * c - 1,
            8 * c,
            9 * c + 7,
            16 * c,
            31 * c + 500,
            64 * c + 1,
            data.len(),
        ] {
            std::fs::write(&path, &data[..len]).expect("write");
            let mut file = File::open(&path).expect("open");
            let hash =
                hash_copied_in(&mut file, len as u64, None, window, &|_| true).expect("hash");
            assert_eq!(hash, Hash::of(&data[..len]), "length {len}");
        }
    }

    /// A large file copied window by window while the job runs, and read in parallel for
    /// what is left once it has ended, gives plain BLAKE3 wherever the job ends: before the
    /// first window, after any of them, or never; and a file shorter than its stat said is
    /// an error either way (never a SIGBUS: nothing is mapped).
    #[test]
    fn copied_windows_then_parallel_ones_give_the_plain_blake3() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let c = blake3::CHUNK_LEN;
        let window = 4 * c as u64;
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 37 % 253) as u8).collect();
        let hashing = Hashing::default();
        for len in [
            c + 1,
            4 * c,
            4 * c + 1,
            8 * c,
            9 * c + 7,
            31 * c + 500,
            data.len(),
        ] {
            std::fs::write(&path, &data[..len]).expect("write");
            let windows = (len as u64).div_ceil(window);
            for ends_after in 0..=windows + 1 {
                let mut file = File::open(&path).expect("open");
                let ended = |done: u64| done >= ends_after;
                let hash = hash_copied_in(&mut file, len as u64, Some(&hashing), window, &ended)
                    .expect("hash");
                assert_eq!(
                    hash,
                    Hash::of(&data[..len]),
                    "length {len}, ended after {ends_after}"
                );
            }
            for ended in [false, true] {
                let mut file = File::open(&path).expect("open");
                let err = hash_copied_in(&mut file, len as u64 + 1, None, window, &|_| ended)
                    .expect_err("a file shorter than its length");
                assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "ended: {ended}");
            }
        }
        // The real windows: 2 MiB, and a power of two bounding the chaining values kept.
        assert_eq!(copy_window_len(1 << 30), 2 << 20);
        assert_eq!(copy_window_len(1 << 40), 16 << 20);
        // Through the public path, with the job running then ended.
        let big: Vec<u8> = (0..(5u32 << 20)).map(|i| (i % 249) as u8).collect();
        std::fs::write(&path, &big).expect("write");
        for running in [true, false] {
            hashing.set_job_running(running);
            let (hash, size, _) = hash_file_stat(&path, Some(&hashing), Read::Copy).expect("hash");
            assert_eq!((hash, size), (Hash::of(&big), big.len() as u64));
        }
    }

    /// The walk's digests are the same byte streams whatever the updates: a directory
    /// cache written by an earlier lineage still answers.
    #[test]
    fn walk_digests_keep_their_byte_streams() {
        let key = StatKey {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: 4,
            ctime_ns: 5,
        };
        let file = WalkedFile {
            path: PathBuf::from("/x/a/b"),
            rel: b"a/b".to_vec(),
            executable: true,
            key,
            link: None,
        };
        let mut expected = blake3::Hasher::new();
        expected
            .update(&3u64.to_le_bytes())
            .update(b"a/b")
            .update(&[1]);
        for n in [1u64, 2, 3, 4, 5] {
            expected.update(&n.to_le_bytes());
        }
        let mut digest = StatDigest::default();
        digest.add(&file);
        assert_eq!(digest.finish(), Hash(*expected.finalize().as_bytes()));
        let mut expected = blake3::Hasher::new();
        expected.update(&3u64.to_le_bytes()).update(b"a/b");
        for n in [3u64, 4, 5] {
            expected.update(&n.to_le_bytes());
        }
        let mut print = FingerprintBuilder::default();
        print.add(b"a/b", &key);
        assert_eq!(
            print.finish(),
            Fingerprint(Hash(*expected.finalize().as_bytes()))
        );
    }

    #[test]
    fn dir_hash_changes_with_names_and_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("a"), b"1").expect("write");
        std::fs::write(root.join("sub/b"), b"2").expect("write");
        let mut seen = Vec::new();
        let mut sink = |e: &[DirEntry]| {
            seen.extend(e.iter().map(|e| e.path.clone()));
            Ok(())
        };
        let h0 = Hashing::default()
            .hash_path(root, &mut sink, None, None)
            .expect("hash")
            .artifact;
        assert_eq!(h0.file_count, 2);
        assert_eq!(seen, ["a", "sub/b"]);
        std::fs::rename(root.join("a"), root.join("c")).expect("rename");
        let h1 = Hashing::default()
            .hash_path(root, &mut discard, None, None)
            .expect("hash")
            .artifact
            .hash;
        assert_ne!(h0.hash, h1);
        std::fs::rename(root.join("c"), root.join("a")).expect("rename");
        let h2 = Hashing::default()
            .hash_path(root, &mut discard, None, None)
            .expect("hash")
            .artifact
            .hash;
        assert_eq!(h0.hash, h2);
    }
}
