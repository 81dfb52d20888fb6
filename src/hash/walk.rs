//! Walking a directory: regular files in walk order (depth first, names sorted bytewise
//! within each directory), with their stats; symlinks followed with loops detected, except
//! those into `/proc`, `/sys` or `/dev` (never followed: endless or host-specific) and, for
//! an output, those that leave the directory (a link to `/etc` in a model directory is not
//! the model): those are recorded as links, their target's text standing for their bytes,
//! as git records them; special files, dangling links and unreadable entries reported as
//! warnings, never opened. Directories are listed and stat'ed ahead of the walk on helper
//! threads; what the walk hands out, and in which order, is what one thread would.

use super::*;
use std::os::unix::ffi::OsStringExt;

/// Why an entry was not walked: one warning line. `lost` when the cause was the machine's,
/// not the entry's (no descriptor or memory left, an I/O error): the entry is there, and a
/// hash without it would be that of a tree that never existed, so the whole path goes
/// without a hash instead of the entry being skipped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Skip {
    pub(super) line: String,
    pub(super) lost: bool,
}

impl Skip {
    /// A skip for a property of the entry (a special file, a loop, a dangling link).
    fn entry(line: String) -> Skip {
        Skip { line, lost: false }
    }

    /// `path` could not be read: `why`.
    fn at(path: &Path, why: Why) -> Skip {
        Skip {
            line: format!("skipped {}: {}", path.display(), why.text),
            lost: why.lost,
        }
    }

    /// The error to give for the whole path when this skip was the machine's doing.
    pub(super) fn error(&self) -> io::Error {
        io::Error::other(self.line.trim_start_matches("skipped ").to_string())
    }
}

/// Why an entry cannot be read (without its path): see [`Skip`].
#[derive(Debug)]
pub(super) struct Why {
    text: String,
    lost: bool,
}

impl From<io::Error> for Why {
    fn from(e: io::Error) -> Why {
        Why {
            lost: lost(&e),
            text: e.to_string(),
        }
    }
}

impl From<&str> for Why {
    fn from(text: &str) -> Why {
        Why {
            text: text.to_string(),
            lost: false,
        }
    }
}

/// Whether `e` says the machine failed (out of descriptors or memory, an I/O or network
/// filesystem error), not that the entry cannot be read (permission, gone, a loop).
pub(super) fn lost(e: &io::Error) -> bool {
    use nix::libc;
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE
                | libc::ENFILE
                | libc::ENOMEM
                | libc::ENOBUFS
                | libc::EIO
                | libc::EAGAIN
                | libc::ESTALE
                | libc::ETIMEDOUT
        )
    )
}

pub(super) struct WalkedFile {
    pub(super) path: PathBuf,
    pub(super) rel: Vec<u8>,
    pub(super) executable: bool,
    pub(super) key: StatKey,
    /// A symlink recorded as a link, not followed: its target's text (which is hashed as
    /// its bytes; the key is the link's own stat).
    pub(super) link: Option<Vec<u8>>,
}

/// Which symlinks a walk follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Links {
    /// All but those into a pseudo filesystem (an input's links to shared data are its data).
    Follow,
    /// Only those that stay inside the walked directory (an output's).
    Within,
}

/// Pseudo filesystems a walk never enters: their files are endless (`/proc/kcore`, `/dev/zero`)
/// or describe the host, not the data.
const PSEUDO: &[&str] = &["/proc", "/sys", "/dev"];

fn is_pseudo(real: &Path) -> bool {
    PSEUDO.iter().any(|p| real.starts_with(p))
}

/// Regular files under `root` in walk order (depth first, names sorted bytewise within each
/// directory); Err items are warnings (special files, loops, dangling links, unreadable).
///
/// Written on `std::fs::read_dir` rather than walkdir: a directory entry's type comes from
/// the directory listing and its metadata from `statx` relative to the open directory, so a
/// regular file costs one short stat instead of two full path lookups (the walk is most of
/// what a re-run with every file cached costs). Symlinks are followed, with loops detected
/// against the directories being walked.
pub(super) fn walk_dir<'w>(root: &Path, watch: Option<&'w mut Watch>, links: Links) -> Walk<'w> {
    // Where the walk really is: links are judged by where they lead.
    let real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut walk = Walk {
        stack: Vec::new(),
        pending: Vec::new(),
        watch,
        links,
        root: real.clone(),
        ahead: Ahead::new(links, real.clone()),
        entered: std::collections::HashMap::new(),
    };
    match std::fs::metadata(root) {
        Ok(meta) => walk.enter(root.to_path_buf(), real, Vec::new(), &meta, None),
        Err(e) => walk.pending.push(Skip::at(root, e.into())),
    }
    walk
}

pub(super) struct Walk<'w> {
    stack: Vec<Frame>,
    /// Warnings to hand out before walking on.
    pending: Vec<Skip>,
    /// Each directory is watched before it is listed.
    watch: Option<&'w mut Watch>,
    links: Links,
    /// The walked directory, symlinks resolved.
    root: PathBuf,
    /// Directories listed and stat'ed ahead of the walk, on other threads.
    ahead: Ahead,
    /// How many times each directory (device, inode) was entered: links can reach one many
    /// times, and links to links as many times as there are ways through them.
    entered: std::collections::HashMap<(u64, u64), u32>,
}

/// A directory is entered at most this many times in one walk; links that would enter it
/// again are skipped with a warning. Two links in each of 30 nested directories to the
/// next one make 2^30 ways down (a walk of hours, a manifest of 10^9 rows); capped, the
/// walk grows with the directories, not the ways. A checkpoint's `latest` link, or a
/// dataset linked from a few places, is far below it.
const MOST_ENTERED: u32 = 16;

pub(super) struct Frame {
    /// This directory's path as walked.
    path: PathBuf,
    rel: Vec<u8>,
    /// This directory's path, symlinks resolved.
    real: PathBuf,
    /// (device, inode) of this directory, to detect symlink loops.
    id: (u64, u64),
    /// Entries not yet visited, in name order.
    entries: std::vec::IntoIter<Scanned>,
}

/// A directory entry: stat'ed when scanned (the first `PROBED` of a directory), or by the
/// walk when it gets there (a directory of 100,000 files held as stats took 28 MB more than
/// as entries: boxed, one is as small as an entry).
enum Scanned {
    Taken(Box<Taken>),
    /// Holds its directory open, as a walk on one thread did.
    Later(std::fs::DirEntry),
}

struct Taken {
    name: std::ffi::OsString,
    probed: Result<Probed, Why>,
    /// For a directory the walk enters, its ticket with [`Ahead`] (or why it is skipped).
    dir: Option<Result<u64, Skip>>,
}

/// The entries of a directory stat'ed when it is scanned; the rest when the walk reaches them.
const PROBED: usize = 2048;

/// A directory listed, sorted and its entries stat'ed.
#[derive(Default)]
struct Scan {
    entries: Vec<Scanned>,
    warnings: Vec<Skip>,
}

/// List `path` (whose real path is `real`) and stat each entry, in name order.
fn scan(path: &Path, real: &Path, links: Links, root: &Path) -> Scan {
    let mut warnings = Vec::new();
    let read = match std::fs::read_dir(path) {
        Ok(read) => read,
        Err(e) => {
            warnings.push(Skip::at(path, e.into()));
            return Scan {
                entries: Vec::new(),
                warnings,
            };
        }
    };
    let mut entries = Vec::new();
    for entry in read {
        match entry {
            Ok(entry) => entries.push(entry),
            Err(e) => warnings.push(Skip::at(path, e.into())),
        }
    }
    entries.sort_unstable_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
    let entries = entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| match i < PROBED {
            true => Scanned::Taken(Box::new(Taken {
                name: entry.file_name(),
                probed: probe(&entry, real, links, root),
                dir: None,
            })),
            false => Scanned::Later(entry),
        })
        .collect();
    Scan { entries, warnings }
}

/// Entries scanned ahead of the walk and not yet taken, at most: bounds memory when the walk
/// is consumed slowly (a 1,000,000-file input stays in a few MiB).
const AHEAD_ENTRIES: usize = 2048;

/// Directories scanned ahead of the walk. The stats of a tree of small files are most of
/// what walking it costs, and they scale with cores across directories (measured on 2
/// cores: 56 ms on one thread, 30 ms on two for 20,000 files in 100 directories; within one
/// directory they contend in the kernel). A directory is queued when its parent is
/// scanned, children before their parent's later siblings (the walk's order); helper
/// threads, started once two directories wait, take the queue's front, and the walk takes
/// a directory still queued itself, or scans the next queued one while a helper finishes
/// the one it needs. The walk's order, its warnings and its decisions are those of a walk
/// on one thread.
struct Ahead {
    shared: std::sync::Arc<Shared>,
    helpers: Vec<std::thread::JoinHandle<()>>,
    tickets: u64,
}

struct Shared {
    state: std::sync::Mutex<State>,
    changed: std::sync::Condvar,
    links: Links,
    root: PathBuf,
}

#[derive(Default)]
struct State {
    queue: std::collections::VecDeque<Job>,
    slots: std::collections::HashMap<u64, Slot>,
    /// Entries in `Done` slots.
    held: usize,
    stop: bool,
}

struct Job {
    ticket: u64,
    path: PathBuf,
    real: PathBuf,
}

enum Slot {
    Queued,
    Taken,
    Done(Scan),
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self, job: &Job) -> Scan {
        scan(&job.path, &job.real, self.links, &self.root)
    }

    /// Scan the queue's front if memory allows, or wait for a change.
    fn help_or_wait<'s>(
        &'s self,
        mut state: std::sync::MutexGuard<'s, State>,
    ) -> std::sync::MutexGuard<'s, State> {
        let job = match state.held < AHEAD_ENTRIES {
            true => state.queue.pop_front(),
            false => None,
        };
        let Some(job) = job else {
            return self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        };
        state.slots.insert(job.ticket, Slot::Taken);
        drop(state);
        let done = self.run(&job);
        let mut state = self.lock();
        state.held += done.entries.len();
        state.slots.insert(job.ticket, Slot::Done(done));
        self.changed.notify_all();
        state
    }
}

impl Ahead {
    fn new(links: Links, root: PathBuf) -> Ahead {
        Ahead {
            shared: std::sync::Arc::new(Shared {
                state: Default::default(),
                changed: Default::default(),
                links,
                root,
            }),
            helpers: Vec::new(),
            tickets: 0,
        }
    }

    /// Queue directories, in walk order, before those already queued; their tickets.
    fn queue(&mut self, dirs: Vec<(PathBuf, PathBuf)>) -> Vec<u64> {
        let first = self.tickets;
        self.tickets += dirs.len() as u64;
        let waiting = {
            let mut state = self.shared.lock();
            for (i, (path, real)) in dirs.into_iter().enumerate().rev() {
                let ticket = first + i as u64;
                state.slots.insert(ticket, Slot::Queued);
                state.queue.push_front(Job { ticket, path, real });
            }
            state.queue.len()
        };
        if waiting >= 2 && self.helpers.is_empty() {
            self.start_helpers();
        }
        self.shared.changed.notify_all();
        (first..self.tickets).collect()
    }

    fn start_helpers(&mut self) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        for i in 0..cores.clamp(1, 4) - 1 {
            let shared = std::sync::Arc::clone(&self.shared);
            let helper = std::thread::Builder::new()
                .name(format!("lineage-walk-{i}"))
                .spawn(move || {
                    let mut state = shared.lock();
                    while !state.stop {
                        state = shared.help_or_wait(state);
                    }
                });
            // Without a helper the walk scans every directory itself.
            match helper {
                Ok(h) => self.helpers.push(h),
                Err(_) => break,
            }
        }
    }

    /// The scan of the directory queued under `ticket`.
    fn take(&mut self, ticket: u64) -> Scan {
        let shared = &*self.shared;
        let mut state = shared.lock();
        loop {
            match state.slots.get(&ticket) {
                // A helper scans it: scan the next one meanwhile, or wait.
                Some(Slot::Taken) => state = shared.help_or_wait(state),
                Some(Slot::Queued) => {
                    state.slots.remove(&ticket);
                    let at = state.queue.iter().position(|j| j.ticket == ticket);
                    let Some(job) = at.and_then(|at| state.queue.remove(at)) else {
                        return Scan::default();
                    };
                    drop(state);
                    return shared.run(&job);
                }
                Some(Slot::Done(_)) => {
                    let Some(Slot::Done(done)) = state.slots.remove(&ticket) else {
                        return Scan::default();
                    };
                    state.held -= done.entries.len();
                    shared.changed.notify_all();
                    return done;
                }
                None => return Scan::default(),
            }
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        for helper in self.helpers.drain(..) {
            let _ = helper.join();
        }
    }
}

/// What a directory entry is to the walk.
pub(super) enum Probed {
    /// A file or directory (symlinks followed), and its real path when it was a link.
    Entry(Metadata, Option<PathBuf>),
    /// A symlink not to follow: its own stat and its target's text.
    Link(Metadata, Vec<u8>),
}

/// An entry's metadata (symlinks followed unless `links` or a pseudo filesystem says not),
/// or why it is skipped. Stat-ing the entries of one directory in parallel was measured
/// slower on 2 cores (the stats contend in the kernel); different directories are stat'ed
/// in parallel ([`Ahead`]).
pub(super) fn probe(
    entry: &std::fs::DirEntry,
    parent_real: &Path,
    links: Links,
    root: &Path,
) -> Result<Probed, Why> {
    match entry.file_type() {
        Err(e) => Err(e.into()),
        Ok(t) if t.is_symlink() => {
            let path = entry.path();
            let real = resolve(parent_real, &entry.file_name()).map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    "dangling symlink".into()
                } else {
                    Why::from(e)
                }
            })?;
            let follow = match &real {
                Some(real) => links == Links::Follow || real.starts_with(root),
                None => false,
            };
            if !follow {
                let own = std::fs::symlink_metadata(&path)?;
                let target = std::fs::read_link(&path)?;
                return Ok(Probed::Link(own, target.into_os_string().into_vec()));
            }
            let meta = std::fs::metadata(&path)?;
            Ok(Probed::Entry(meta, real))
        }
        Ok(t) if t.is_dir() || t.is_file() => entry
            .metadata()
            .map(|m| Probed::Entry(m, None))
            .map_err(Why::from),
        Ok(_) => Err(SPECIAL.into()),
    }
}

/// Where `name` in the directory `parent` (a path with no symlinks in it) leads, resolved one
/// component at a time as the kernel does; None when the way passes through `/proc`, `/sys`
/// or `/dev`: their magic links lead out again (`/proc/self/root` is `/`), so where the way
/// ends cannot tell.
fn resolve(parent: &Path, name: &std::ffi::OsStr) -> io::Result<Option<PathBuf>> {
    use std::path::Component;
    let mut real = parent.to_path_buf();
    let mut todo: Vec<std::ffi::OsString> = vec![name.to_os_string()];
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c == "." || c.is_empty() {
            continue;
        }
        if c == ".." {
            real.pop();
            continue;
        }
        real.push(&c);
        if is_pseudo(&real) {
            return Ok(None);
        }
        if !std::fs::symlink_metadata(&real)?.file_type().is_symlink() {
            continue;
        }
        hops += 1;
        if hops > 40 {
            return Err(io::Error::from_raw_os_error(nix::libc::ELOOP));
        }
        let target = std::fs::read_link(&real)?;
        real.pop();
        for part in target.components().rev() {
            match part {
                Component::Normal(n) => todo.push(n.to_os_string()),
                Component::ParentDir => todo.push("..".into()),
                Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            }
        }
        if target.is_absolute() {
            real = PathBuf::from("/");
        }
    }
    Ok(Some(real))
}

pub(super) const SPECIAL: &str = "not a regular file (FIFO, socket or device)";

impl Walk<'_> {
    /// Why the directory at `path` (really at `real`, whose stat is `meta`) is not walked,
    /// with the walk's stack as it is when its parent is on top.
    fn refused(&self, path: &Path, real: &Path, meta: &Metadata) -> Option<Skip> {
        // Reached without a link (through a followed link to `/`, say): still never walked.
        if is_pseudo(real) && !is_pseudo(&self.root) {
            return Some(Skip::entry(format!(
                "skipped {}: {} is never walked",
                path.display(),
                real.display()
            )));
        }
        let id = (meta.dev(), meta.ino());
        if self.stack.iter().any(|f| f.id == id) {
            return Some(Skip::entry(format!(
                "skipped {}: symlink loop",
                path.display()
            )));
        }
        if self.entered.get(&id).is_some_and(|n| *n >= MOST_ENTERED) {
            return Some(Skip::entry(format!(
                "skipped {}: a directory reached through links more than {MOST_ENTERED} \
                 times in one walk",
                path.display()
            )));
        }
        None
    }

    /// Count an entry into the directory whose stat is `meta` ([`MOST_ENTERED`]).
    fn count_entry(&mut self, meta: &Metadata) {
        *self.entered.entry((meta.dev(), meta.ino())).or_default() += 1;
    }

    /// Enter a directory: the root (no ticket: watched and scanned here) or one queued when
    /// its parent was entered (watched then, before any thread lists it).
    fn enter(
        &mut self,
        path: PathBuf,
        real: PathBuf,
        rel: Vec<u8>,
        meta: &Metadata,
        ticket: Option<u64>,
    ) {
        let mut scanned = match ticket {
            Some(ticket) => self.ahead.take(ticket),
            None => {
                if let Some(why) = self.refused(&path, &real, meta) {
                    self.pending.push(why);
                    return;
                }
                self.count_entry(meta);
                if let Some(w) = self.watch.as_deref_mut() {
                    w.add(&path);
                }
                scan(&path, &real, self.links, &self.root)
            }
        };
        self.pending.append(&mut scanned.warnings);
        self.stack.push(Frame {
            path: path.clone(),
            rel,
            real: real.clone(),
            id: (meta.dev(), meta.ino()),
            entries: Vec::new().into_iter(),
        });
        // Its directories: refused now (the stack is as it will be when each is reached),
        // or watched and queued to be scanned ahead.
        let mut queued = Vec::new();
        for (i, s) in scanned.entries.iter_mut().enumerate() {
            let Scanned::Taken(s) = s else {
                continue;
            };
            let Ok(Probed::Entry(m, link)) = &s.probed else {
                continue;
            };
            if !m.is_dir() {
                continue;
            }
            let real = match link {
                Some(r) => r.clone(),
                None => real.join(&s.name),
            };
            let path = path.join(&s.name);
            match self.refused(&path, &real, m) {
                Some(why) => s.dir = Some(Err(why)),
                None => {
                    *self.entered.entry((m.dev(), m.ino())).or_default() += 1;
                    if let Some(w) = self.watch.as_deref_mut() {
                        w.add(&path);
                    }
                    queued.push((i, (path, real)));
                }
            }
        }
        if !queued.is_empty() {
            let (at, dirs): (Vec<usize>, Vec<_>) = queued.into_iter().unzip();
            for (i, ticket) in at.into_iter().zip(self.ahead.queue(dirs)) {
                if let Scanned::Taken(s) = &mut scanned.entries[i] {
                    s.dir = Some(Ok(ticket));
                }
            }
        }
        if let Some(frame) = self.stack.last_mut() {
            frame.entries = scanned.entries.into_iter();
        }
    }
}

impl Iterator for Walk<'_> {
    type Item = Result<WalkedFile, Skip>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(warning) = self.pending.pop() {
                return Some(Err(warning));
            }
            let frame = self.stack.last_mut()?;
            let Some(scanned) = frame.entries.next() else {
                self.stack.pop();
                continue;
            };
            let (name, probed, dir) = match scanned {
                Scanned::Taken(t) => (t.name, t.probed, t.dir),
                Scanned::Later(entry) => (
                    entry.file_name(),
                    probe(&entry, &frame.real, self.links, &self.root),
                    None,
                ),
            };
            let mut rel = Vec::with_capacity(frame.rel.len() + 1 + name.len());
            if !frame.rel.is_empty() {
                rel.extend_from_slice(&frame.rel);
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_bytes());
            let path = frame.path.join(&name);
            let (meta, real) = match probed {
                Ok(Probed::Entry(m, real)) => {
                    // A directory's real path, for the links under it (cloned only then).
                    let real = match real {
                        Some(r) => Some(r),
                        None if m.is_dir() => Some(frame.real.join(&name)),
                        None => None,
                    };
                    (m, real)
                }
                Ok(Probed::Link(own, target)) => {
                    return Some(Ok(WalkedFile {
                        key: StatKey::of(&own),
                        rel,
                        executable: false,
                        path,
                        link: Some(target),
                    }));
                }
                Err(why) => return Some(Err(Skip::at(&path, why))),
            };
            if meta.is_dir() {
                match dir {
                    Some(Ok(ticket)) => {
                        let real = real.unwrap_or_else(|| path.clone());
                        self.enter(path, real, rel, &meta, Some(ticket));
                    }
                    Some(Err(why)) => self.pending.push(why),
                    // Stat'ed by the walk: entered here.
                    None => {
                        let real = real.unwrap_or_else(|| path.clone());
                        self.enter(path, real, rel, &meta, None);
                    }
                }
                continue;
            }
            if !meta.is_file() {
                return Some(Err(Skip::at(&path, SPECIAL.into())));
            }
            return Some(Ok(WalkedFile {
                key: StatKey::of(&meta),
                rel,
                executable: meta.permissions().mode() & 0o111 != 0,
                path,
                link: None,
            }));
        }
    }
}

pub(super) fn mtime_ns(meta: &Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The walk as one thread would do it, recursively: the order and warnings expected.
    fn reference(
        path: &Path,
        rel: &[u8],
        ids: &mut Vec<(u64, u64)>,
        out: &mut Vec<Vec<u8>>,
        warnings: &mut HashSet<String>,
    ) {
        let Ok(read) = std::fs::read_dir(path) else {
            warnings.insert(format!("skipped {}: unreadable", path.display()));
            return;
        };
        let mut names: Vec<_> = read.flatten().map(|e| e.file_name()).collect();
        names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let mut r = rel.to_vec();
            if !r.is_empty() {
                r.push(b'/');
            }
            r.extend_from_slice(name.as_bytes());
            let p = path.join(&name);
            let Ok(meta) = std::fs::metadata(&p) else {
                warnings.insert(format!("skipped {}: dangling symlink", p.display()));
                continue;
            };
            if meta.is_dir() {
                let id = (meta.dev(), meta.ino());
                if ids.contains(&id) {
                    warnings.insert(format!("skipped {}: symlink loop", p.display()));
                    continue;
                }
                ids.push(id);
                reference(&p, &r, ids, out, warnings);
                ids.pop();
            } else if meta.is_file() {
                out.push(r);
            } else {
                warnings.insert(format!("skipped {}: {SPECIAL}", p.display()));
            }
        }
    }

    /// Directories scanned ahead on other threads (many of them, some deep, some empty, one
    /// wider than is stat'ed ahead, links to an ancestor, to a sibling and to nowhere, a
    /// FIFO, more entries than are held ahead, the walk consumed slowly) walk in the order and with the warnings of
    /// one thread walking alone; a walk dropped halfway stops its helpers.
    #[test]
    fn scanning_ahead_keeps_the_walks_order_and_warnings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("data");
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut dirs = vec![root.clone()];
        for i in 0..150 {
            let parent = dirs[next(dirs.len() as u64) as usize].clone();
            let d = parent.join(format!("d{i:03}"));
            std::fs::create_dir_all(&d).expect("mkdir");
            dirs.push(d);
        }
        for (i, d) in dirs.iter().enumerate() {
            for j in 0..next(120) {
                std::fs::write(d.join(format!("f{j}-{i}")), [j as u8]).expect("write");
            }
        }
        std::os::unix::fs::symlink(&root, dirs[40].join("up")).expect("link");
        std::os::unix::fs::symlink(&dirs[7], dirs[90].join("sibling")).expect("link");
        std::os::unix::fs::symlink(root.join("nowhere"), dirs[3].join("dangling")).expect("link");
        nix::unistd::mkfifo(&dirs[12].join("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("fifo");
        std::fs::create_dir(dirs[20].join("empty")).expect("mkdir");
        // Wider than the entries stat'ed when scanned: those after are stat'ed by the walk,
        // directories among them entered there.
        let wide = dirs[5].join("wide");
        std::fs::create_dir(&wide).expect("mkdir");
        for j in 0..PROBED + 50 {
            std::fs::write(wide.join(format!("w{j:05}")), [1]).expect("write");
        }
        for sub in ["zz0", "zz1/deeper"] {
            std::fs::create_dir_all(wide.join(sub)).expect("mkdir");
            std::fs::write(wide.join(sub).join("f"), [2]).expect("write");
        }
        std::os::unix::fs::symlink(&root, wide.join("zzloop")).expect("link");

        let (mut expected, mut expected_warnings) = (Vec::new(), HashSet::new());
        let meta = std::fs::metadata(&root).expect("stat");
        let mut ids = vec![(meta.dev(), meta.ino())];
        reference(&root, b"", &mut ids, &mut expected, &mut expected_warnings);
        assert!(expected.len() > AHEAD_ENTRIES, "{} files", expected.len());

        for slow in [false, true] {
            let (mut walked, mut warnings) = (Vec::new(), HashSet::new());
            for (i, item) in walk_dir(&root, None, Links::Follow).enumerate() {
                if slow && i % 1000 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                match item {
                    Ok(f) => {
                        assert_eq!(f.path, root.join(std::ffi::OsStr::from_bytes(&f.rel)));
                        walked.push(f.rel);
                    }
                    Err(w) => {
                        warnings.insert(w.line);
                    }
                }
            }
            assert_eq!(walked.len(), expected.len(), "slow: {slow}");
            assert!(walked == expected, "the order differs (slow: {slow})");
            assert_eq!(warnings, expected_warnings, "slow: {slow}");
        }
        // Dropped after a few files: its helpers stop (the test would hang otherwise).
        let some = walk_dir(&root, None, Links::Follow).take(10).count();
        assert_eq!(some, 10);
    }

    /// Two links in each of 14 nested directories to the next one make 2^14 ways down to the
    /// last: each directory is entered at most `MOST_ENTERED` times, the links beyond that
    /// skipped with a warning, so the walk grows with the directories, not the ways. The same
    /// for an output's walk, whose links stay inside it.
    #[test]
    fn links_that_multiply_the_ways_down_enter_each_directory_a_bounded_number_of_times() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("dag");
        let k = 14;
        for i in 0..=k {
            std::fs::create_dir_all(root.join(format!("n{i}"))).expect("mkdir");
            std::fs::write(root.join(format!("n{i}/f")), [i as u8]).expect("write");
        }
        for i in 0..k {
            for name in ["a", "b"] {
                let link = root.join(format!("n{i}/{name}"));
                std::os::unix::fs::symlink(format!("../n{}", i + 1), link).expect("link");
            }
        }
        for links in [Links::Follow, Links::Within] {
            let (mut files, mut capped) = (0, 0);
            for item in walk_dir(&root, None, links) {
                match item {
                    Ok(_) => files += 1,
                    Err(w) if w.line.contains("reached through links more than") => capped += 1,
                    Err(w) => panic!("{}", w.line),
                }
            }
            // Each n_i at most once directly and MOST_ENTERED times through links.
            let most = (k + 1) * (MOST_ENTERED as usize + 1);
            assert!(files <= most, "{files} files walked ({links:?})");
            assert!(capped > 0, "{links:?}");
        }
    }
}
