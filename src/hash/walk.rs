//! Walking a directory: regular files in walk order (depth first, names sorted bytewise
//! within each directory), with their stats; symlinks followed with loops detected; special
//! files, dangling links and unreadable entries reported as warnings, never opened.

use super::*;

pub(super) struct WalkedFile {
    pub(super) path: PathBuf,
    pub(super) rel: Vec<u8>,
    pub(super) executable: bool,
    pub(super) key: StatKey,
}

/// Regular files under `root` in walk order (depth first, names sorted bytewise within each
/// directory); Err items are warnings (special files, loops, dangling links, unreadable).
///
/// Written on `std::fs::read_dir` rather than walkdir: a directory entry's type comes from
/// the directory listing and its metadata from `statx` relative to the open directory, so a
/// regular file costs one short stat instead of two full path lookups (the walk is most of
/// what a re-run with every file cached costs). Symlinks are followed, with loops detected
/// against the directories being walked.
pub(super) fn walk_dir<'w>(root: &Path, watch: Option<&'w mut Watch>) -> Walk<'w> {
    let mut walk = Walk {
        stack: Vec::new(),
        pending: Vec::new(),
        watch,
    };
    match std::fs::metadata(root) {
        Ok(meta) => walk.enter(root.to_path_buf(), Vec::new(), &meta),
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
}

pub(super) struct Frame {
    rel: Vec<u8>,
    /// (device, inode) of this directory, to detect symlink loops.
    id: (u64, u64),
    /// Entries not yet visited, in name order.
    entries: std::vec::IntoIter<std::fs::DirEntry>,
}

/// An entry's metadata (symlinks followed), or why it is skipped. Stat-ing entries in
/// parallel was measured slower on 2 cores: the stats contend in the kernel.
pub(super) fn probe(entry: &std::fs::DirEntry) -> Result<Metadata, String> {
    match entry.file_type() {
        Err(e) => Err(e.to_string()),
        Ok(t) if t.is_symlink() => std::fs::metadata(entry.path()).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                "dangling symlink".to_string()
            } else {
                e.to_string()
            }
        }),
        Ok(t) if t.is_dir() || t.is_file() => entry.metadata().map_err(|e| e.to_string()),
        Ok(_) => Err(SPECIAL.to_string()),
    }
}

pub(super) const SPECIAL: &str = "not a regular file (FIFO, socket or device)";

impl Walk<'_> {
    pub(super) fn enter(&mut self, path: PathBuf, rel: Vec<u8>, meta: &Metadata) {
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
            let meta = probe(&entry);
            let name = entry.file_name();
            let mut rel = Vec::with_capacity(frame.rel.len() + 1 + name.len());
            if !frame.rel.is_empty() {
                rel.extend_from_slice(&frame.rel);
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_bytes());
            let path = entry.path();
            let meta = match meta {
                Ok(m) => m,
                Err(why) => return Some(Err(format!("skipped {}: {why}", path.display()))),
            };
            if meta.is_dir() {
                self.enter(path, rel, &meta);
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
            }));
        }
    }
}

pub(super) fn mtime_ns(meta: &Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}
