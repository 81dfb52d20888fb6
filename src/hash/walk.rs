//! Walking a directory: regular files in walk order (depth first, names sorted bytewise
//! within each directory), with their stats; symlinks followed with loops detected, except
//! those into `/proc`, `/sys` or `/dev` (never followed: endless or host-specific) and, for
//! an output, those that leave the directory (a link to `/etc` in a model directory is not
//! the model): those are recorded as links, their target's text standing for their bytes,
//! as git records them; special files, dangling links and unreadable entries reported as
//! warnings, never opened.

use super::*;
use std::os::unix::ffi::OsStringExt;

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
    };
    match std::fs::metadata(root) {
        Ok(meta) => walk.enter(root.to_path_buf(), real, Vec::new(), &meta),
        Err(e) => walk
            .pending
            .push(format!("skipped {}: {e}", root.display())),
    }
    walk
}

pub(super) struct Walk<'w> {
    stack: Vec<Frame>,
    /// Warnings to hand out before walking on.
    pending: Vec<String>,
    /// Each directory is watched before it is listed.
    watch: Option<&'w mut Watch>,
    links: Links,
    /// The walked directory, symlinks resolved.
    root: PathBuf,
}

pub(super) struct Frame {
    rel: Vec<u8>,
    /// This directory's path, symlinks resolved.
    real: PathBuf,
    /// (device, inode) of this directory, to detect symlink loops.
    id: (u64, u64),
    /// Entries not yet visited, in name order.
    entries: std::vec::IntoIter<std::fs::DirEntry>,
}

/// What a directory entry is to the walk.
pub(super) enum Probed {
    /// A file or directory (symlinks followed), and its real path when it was a link.
    Entry(Metadata, Option<PathBuf>),
    /// A symlink not to follow: its own stat and its target's text.
    Link(Metadata, Vec<u8>),
}

/// An entry's metadata (symlinks followed unless `links` or a pseudo filesystem says not),
/// or why it is skipped. Stat-ing entries in parallel was measured slower on 2 cores: the
/// stats contend in the kernel.
pub(super) fn probe(
    entry: &std::fs::DirEntry,
    parent_real: &Path,
    links: Links,
    root: &Path,
) -> Result<Probed, String> {
    match entry.file_type() {
        Err(e) => Err(e.to_string()),
        Ok(t) if t.is_symlink() => {
            let path = entry.path();
            let real = resolve(parent_real, &entry.file_name()).map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    "dangling symlink".to_string()
                } else {
                    e.to_string()
                }
            })?;
            let follow = match &real {
                Some(real) => links == Links::Follow || real.starts_with(root),
                None => false,
            };
            if !follow {
                let own = std::fs::symlink_metadata(&path).map_err(|e| e.to_string())?;
                let target = std::fs::read_link(&path).map_err(|e| e.to_string())?;
                return Ok(Probed::Link(own, target.into_os_string().into_vec()));
            }
            let meta = std::fs::metadata(&path).map_err(|e| e.to_string())?;
            Ok(Probed::Entry(meta, real))
        }
        Ok(t) if t.is_dir() || t.is_file() => entry
            .metadata()
            .map(|m| Probed::Entry(m, None))
            .map_err(|e| e.to_string()),
        Ok(_) => Err(SPECIAL.to_string()),
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
    pub(super) fn enter(&mut self, path: PathBuf, real: PathBuf, rel: Vec<u8>, meta: &Metadata) {
        // Reached without a link (through a followed link to `/`, say): still never walked.
        if is_pseudo(&real) && !is_pseudo(&self.root) {
            self.pending.push(format!(
                "skipped {}: {} is never walked",
                path.display(),
                real.display()
            ));
            return;
        }
        let id = (meta.dev(), meta.ino());
        if self.stack.iter().any(|f| f.id == id) {
            self.pending
                .push(format!("skipped {}: symlink loop", path.display()));
            return;
        }
        if let Some(w) = self.watch.as_deref_mut() {
            w.add(&path);
        }
        let read = match std::fs::read_dir(&path) {
            Ok(read) => read,
            Err(e) => {
                self.pending
                    .push(format!("skipped {}: {e}", path.display()));
                return;
            }
        };
        let mut entries = Vec::new();
        for entry in read {
            match entry {
                Ok(entry) => entries.push(entry),
                Err(e) => self
                    .pending
                    .push(format!("skipped {}: {e}", path.display())),
            }
        }
        entries.sort_unstable_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
        self.stack.push(Frame {
            rel,
            real,
            id,
            entries: entries.into_iter(),
        });
    }
}

impl Iterator for Walk<'_> {
    type Item = Result<WalkedFile, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(warning) = self.pending.pop() {
                return Some(Err(warning));
            }
            let frame = self.stack.last_mut()?;
            let Some(entry) = frame.entries.next() else {
                self.stack.pop();
                continue;
            };
            let probed = probe(&entry, &frame.real, self.links, &self.root);
            let name = entry.file_name();
            let mut rel = Vec::with_capacity(frame.rel.len() + 1 + name.len());
            if !frame.rel.is_empty() {
                rel.extend_from_slice(&frame.rel);
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_bytes());
            let path = entry.path();
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
                Err(why) => return Some(Err(format!("skipped {}: {why}", path.display()))),
            };
            if meta.is_dir() {
                let real = real.unwrap_or_else(|| path.clone());
                self.enter(path, real, rel, &meta);
                continue;
            }
            if !meta.is_file() {
                return Some(Err(format!("skipped {}: {SPECIAL}", path.display())));
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
