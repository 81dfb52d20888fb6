//! Hashing regular files: the plain BLAKE3 of their bytes, read through a reused buffer (small
//! files) or in windows that are BLAKE3 subtrees, hashed on rayon's threads (large files:
//! read with `pread`, never mapped, so that a file truncated while it is read is an error,
//! not SIGBUS; window by window while the job runs); and many files at once, in parallel,
//! with what a stat cache knows.

use super::*;
use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
};

/// The nice value of the threads that hash while the job runs. 19 (a 1.4% share of a busy
/// core) starved them for minutes on a machine kept busy by other work, work already begun
/// in them included; 10 gets about 10%.
pub(super) const NICEST: i32 = 10;

/// Files at least this large are hashed in windows, in parallel (BLAKE3 subtrees).
pub(super) const MMAP_THRESHOLD: u64 = 128 * 1024;

thread_local! {
    /// One read buffer per hashing thread, reused for every small file (a fresh zeroed
    /// buffer per file cost more than hashing 4 KiB files).
    static READ_BUF: std::cell::RefCell<Aligned> =
        std::cell::RefCell::new(Aligned::new(MMAP_THRESHOLD as usize));
    /// One buffer per hashing thread for the windows of a large file read in parallel.
    static COPY: std::cell::RefCell<Aligned> = std::cell::RefCell::new(Aligned::new(COPY_BUF));
}

/// A read buffer that starts at a page boundary. The kernel copies file pages into it
/// (`read`, `pread`), and where the buffer sat a few bytes past a page boundary (as the
/// allocator returns it) that copy cost up to five times as much in some runs on this
/// AMD EPYC VM: `--hash-before-launch` of a 1 GiB file took 370-720 ms of CPU, 8 runs of 12
/// over 490 ms; page-aligned, 380-395 ms in all 12 (`perf stat`, the same sitting).
pub(super) struct Aligned {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
}

const PAGE: usize = 4096;

impl Aligned {
    pub(super) fn new(len: usize) -> Aligned {
        let bytes = vec![0; len + PAGE];
        let start = bytes.as_ptr().align_offset(PAGE).min(PAGE);
        Aligned { bytes, start, len }
    }

    pub(super) fn get(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.start + self.len]
    }
}

/// How a large file's bytes are read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// Every window at once, in parallel (no job to yield to).
    Parallel,
    /// Window by window while the job runs, at the priority its state calls for; the rest
    /// in parallel once it has ended.
    Copy,
}

/// Large files read with [`Read::Copy`] go through a buffer of this size: small enough to
/// stay in the CPU's cache between the copy and the hashing (4 MiB measured slower).
pub(super) const COPY_BUF: usize = 256 << 10;

/// Open a file to read, without blocking, refused unless it is a regular file: a FIFO put
/// where a regular file was stat'ed (a job's doing, between that stat and this open) would
/// otherwise hold lineage, and the job's launch, forever. Its stats through the open file.
pub fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok((file, meta))
}

/// The bytes of a regular file ([`open_regular`]).
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let (file, meta) = open_regular(path)?;
    read_sized(file, meta.len())
}

/// The bytes of a file opened already (without blocking, as [`open_regular`] does), refused
/// unless it is a regular file.
pub fn read_opened(file: File) -> io::Result<Vec<u8>> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    read_sized(file, meta.len())
}

fn read_sized(mut file: File, len: u64) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Hash one regular file; also its stat taken through the open file once it is read, to tell
/// whether it changed while it was read. Bytes hashed go to `hashing`'s progress as they are
/// (a large file window by window); copies made while the job runs yield to it.
pub(super) fn hash_file_stat(
    path: &Path,
    hashing: Option<&Hashing>,
    how: Read,
) -> io::Result<(Hash, u64, StatKey)> {
    use std::io::Read as _;
    let progress = hashing.map(Hashing::progress);
    let (mut file, meta) = open_regular(path)?;
    let mut hasher = blake3::Hasher::new();
    let len = meta.len();
    let mut read = 0u64;
    if len >= MMAP_THRESHOLD && how == Read::Copy {
        let hash = hash_copied(&mut file, len, hashing)?;
        let after = StatKey::of(&file.metadata()?);
        return Ok((hash, len, after));
    } else if len >= MMAP_THRESHOLD {
        // No job to yield to: every window read in parallel at once.
        let hash = hash_copied_in(&mut file, len, hashing, copy_window_len(len), &|_| true)?;
        let after = StatKey::of(&file.metadata()?);
        return Ok((hash, len, after));
    } else {
        READ_BUF.with_borrow_mut(|buf| -> io::Result<()> {
            let buf = buf.get();
            loop {
                match file.read(buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => {
                        hasher.update(&buf[..n]);
                        read += n as u64;
                        progress.inspect(|p| p.done(n as u64, 0));
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        })?;
    }
    let after = StatKey::of(&file.metadata()?);
    Ok((Hash(*hasher.finalize().as_bytes()), read, after))
}

/// A large file copied through a buffer while the job may run: read window by window, each
/// window a whole BLAKE3 subtree (see [`copy_window_len`]), the next buffer read while the
/// current one is hashed, at the priority the job's state calls for. Once the job has ended
/// (at a window's end, or before the first), the windows left are read and hashed in
/// parallel at full priority, each thread through its own buffer (measured as fast as
/// mapping them, and a truncation is then an error, not SIGBUS): what is left after a short
/// job costs what hashing before launch costs. The windows' chaining values are merged as
/// BLAKE3's tree says, so the hash is the plain BLAKE3 of the file's first `len` bytes. A file that ends before `len` bytes
/// changed while it was read: an `UnexpectedEof` error.
pub(super) fn hash_copied(
    file: &mut File,
    len: u64,
    hashing: Option<&Hashing>,
) -> io::Result<Hash> {
    let ended = |_| hashing.is_some_and(|h| !h.job_running());
    hash_copied_in(file, len, hashing, copy_window_len(len), &ended)
}

/// [`hash_copied`] in windows of `window` bytes, `ended(n)` saying, after `n` windows, whether
/// the job has ended.
pub(super) fn hash_copied_in(
    file: &mut File,
    len: u64,
    hashing: Option<&Hashing>,
    window: u64,
    ended: &dyn Fn(u64) -> bool,
) -> io::Result<Hash> {
    use std::io::Read as _;
    let progress = hashing.map(Hashing::progress);
    let windows = len.div_ceil(window);
    // Fill `buf` with the next bytes up to `end` (short reads happen); how many.
    let fill = |file: &mut File, buf: &mut Aligned, at: u64, end: u64| -> io::Result<usize> {
        let want = (end - at).min(COPY_BUF as u64) as usize;
        let buf = &mut buf.get()[..want];
        let mut filled = 0;
        while filled < want {
            match file.read(&mut buf[filled..]) {
                Ok(0) => return Err(ended_early()),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(want)
    };
    // Copy bytes `start..end` into `hasher`, the next buffer read while the current one is
    // hashed, at the priority the job's state calls for.
    let (mut current, mut next) = (Aligned::new(COPY_BUF), Aligned::new(COPY_BUF));
    let mut copy = |hasher: &mut blake3::Hasher, start: u64, end: u64| -> io::Result<()> {
        let mut at = start;
        let mut have = fill(file, &mut current, at, end)?;
        let mut steps = || -> io::Result<()> {
            while have > 0 {
                if let Some(h) = hashing {
                    h.check_stop()?;
                }
                let after = at + have as u64;
                let (more, ()) = rayon::join(
                    || fill(file, &mut next, after, end),
                    || {
                        hasher.update(&current.get()[..have]);
                    },
                );
                let more = more?;
                progress.inspect(|p| p.done(have as u64, 0));
                at = after;
                have = more;
                std::mem::swap(&mut current, &mut next);
            }
            Ok(())
        };
        match hashing.and_then(Hashing::yielding_pool) {
            Some(pool) => pool.install(steps),
            None => steps(),
        }
    };
    if len <= window {
        // One window: the root itself, hashed in one pass.
        let mut hasher = blake3::Hasher::new();
        copy(&mut hasher, 0, len)?;
        return Ok(Hash(*hasher.finalize().as_bytes()));
    }
    // Copied, window by window, while the job runs.
    let mut cvs: Vec<ChainingValue> = Vec::with_capacity(windows as usize);
    while (cvs.len() as u64) < windows && !ended(cvs.len() as u64) {
        let start = cvs.len() as u64 * window;
        let mut hasher = blake3::Hasher::new();
        hasher.set_input_offset(start);
        copy(&mut hasher, start, (start + window).min(len))?;
        cvs.push(hasher.finalize_non_root());
    }
    // The job has ended: the rest hashed in parallel, at full priority, as whole subtrees,
    // mapped where that pays (guarded: a process the job left running may still truncate
    // the file, see `mapped`), else read.
    let stop = hashing.map(|h| h.0.stop.as_ref());
    let root = || rest_root(file, &cvs, len, window, progress, stop, mapped::pays());
    match hashing.and_then(Hashing::full_pool) {
        Some(pool) => pool.install(root),
        None => root(),
    }
}

/// The BLAKE3 root of `file`'s first `len` bytes from the chaining values of its first
/// windows (`cvs`) and the rest hashed in parallel: mapped if `map` (and a guarded mapping
/// can be made), else read. A mapping that faulted is thrown away and the file read: the
/// read says what happened (it ended early, an I/O error); so is one shorter, once hashed,
/// than `len`.
fn rest_root(
    file: &File,
    cvs: &[ChainingValue],
    len: u64,
    window: u64,
    progress: Option<&Progress>,
    stop: Option<&AtomicBool>,
    map: bool,
) -> io::Result<Hash> {
    if let Some(mapped) = map.then(|| mapped::Mapped::new(file, len)).flatten() {
        let rest = |start: u64, n: u64| mapped.subtree(start, n, window, progress, stop);
        let hashed = tree_root(cvs, len, window, &rest);
        // A file cut short inside its last page raises no fault: the rest of that page reads
        // as zeros. Its length now tells.
        if !mapped.faulted() && file.metadata().is_ok_and(|m| m.len() >= len) {
            return hashed;
        }
        // What was counted from the mapping is counted again as it is read.
        progress.inspect(|p| p.undo(mapped.hashed()));
    }
    let read = |start: u64, n: u64| read_subtree(file, start, n, window, progress, stop);
    tree_root(cvs, len, window, &read)
}

/// A file that ended before the length its stat gave: it changed while it was read.
fn ended_early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "it changed while it was read (it ended early)",
    )
}

/// The BLAKE3 root of `len` bytes (more than one `window`, a power of two of at least one
/// chunk) from the chaining values of its first windows (`copied`) and, for the subtrees
/// after them, `rest(offset, length)`, hashed in parallel. Each window is a leaf of the tree
/// BLAKE3 builds (every left subtree of more than a window is a power of two windows long),
/// so every subtree past the copied windows is hashed whole, in one call.
pub(super) fn tree_root(
    copied: &[ChainingValue],
    len: u64,
    window: u64,
    rest: &(dyn Fn(u64, u64) -> io::Result<ChainingValue> + Sync),
) -> io::Result<Hash> {
    let copied_end = copied.len() as u64 * window;
    let node = |start: u64, n: u64| -> io::Result<ChainingValue> {
        tree_node(copied, copied_end, start, n, window, rest)
    };
    let left = left_subtree_len(len);
    let (l, r) = rayon::join(|| node(0, left), || node(left, len - left));
    Ok(Hash(*merge_subtrees_root(&l?, &r?, Mode::Hash).as_bytes()))
}

fn tree_node(
    copied: &[ChainingValue],
    copied_end: u64,
    start: u64,
    n: u64,
    window: u64,
    rest: &(dyn Fn(u64, u64) -> io::Result<ChainingValue> + Sync),
) -> io::Result<ChainingValue> {
    if start >= copied_end {
        return rest(start, n);
    }
    if n <= window {
        return Ok(copied[(start / window) as usize]);
    }
    let left = left_subtree_len(n);
    let (l, r) = rayon::join(
        || tree_node(copied, copied_end, start, left, window, rest),
        || tree_node(copied, copied_end, start + left, n - left, window, rest),
    );
    Ok(merge_subtrees_non_root(&l?, &r?, Mode::Hash))
}

/// The windows a copied file is read in: 2 MiB (eight buffers: the job's end is noticed
/// within one), larger for files of more than 65,536 windows so that their chaining values
/// stay under 2 MiB; a power of two.
pub(super) fn copy_window_len(len: u64) -> u64 {
    (len / 65_536).max(2 << 20).next_power_of_two()
}

/// The chaining value of the subtree of `len` bytes at `offset`, split as BLAKE3's tree
/// splits down to `window` bytes, the halves on rayon's threads; `leaf(offset, len)` hashes
/// one window. Shared by the read and the mapped large file.
pub(super) fn split_subtree(
    offset: u64,
    len: u64,
    window: u64,
    leaf: &(dyn Fn(u64, u64) -> io::Result<ChainingValue> + Sync),
) -> io::Result<ChainingValue> {
    if len <= window {
        return leaf(offset, len);
    }
    let left = left_subtree_len(len);
    let (l, r) = rayon::join(
        || split_subtree(offset, left, window, leaf),
        || split_subtree(offset + left, len - left, window, leaf),
    );
    Ok(merge_subtrees_non_root(&l?, &r?, Mode::Hash))
}

/// The chaining value of the subtree of `len` bytes of `file` at `offset`, read (not
/// mapped) through each thread's buffer, window by window ([`split_subtree`]). A file that
/// ends early changed while it was read: `UnexpectedEof`.
pub(super) fn read_subtree(
    file: &File,
    offset: u64,
    len: u64,
    window: u64,
    progress: Option<&Progress>,
    stop: Option<&AtomicBool>,
) -> io::Result<ChainingValue> {
    use std::os::unix::fs::FileExt;
    let leaf = |offset: u64, len: u64| -> io::Result<ChainingValue> {
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            return Err(stopped());
        }
        let mut hasher = blake3::Hasher::new();
        hasher.set_input_offset(offset);
        COPY.with_borrow_mut(|buf| -> io::Result<()> {
            let buf = buf.get();
            let mut at = offset;
            let end = offset + len;
            while at < end {
                let want = (end - at).min(buf.len() as u64) as usize;
                match file.read_at(&mut buf[..want], at) {
                    Ok(0) => return Err(ended_early()),
                    Ok(n) => {
                        hasher.update(&buf[..n]);
                        progress.inspect(|p| p.done(n as u64, 0));
                        at += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })?;
        Ok(hasher.finalize_non_root())
    };
    split_subtree(offset, len, window, &leaf)
}

/// Whether reading a walked file failed because it changed since its walk: gone, shorter
/// than its stats said, or no longer what had the walk's stats `key` at `path` (links
/// followed, as walks follow them: a file made a directory, a FIFO, a link loop, or
/// unreadable since). A file already unreadable at the walk still has its stats: not changed.
pub(super) fn changed_since_walk(e: &io::Error, path: &Path, key: &StatKey) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof
    ) || !std::fs::metadata(path).is_ok_and(|m| StatKey::of(&m) == *key)
}

/// A file changed less than this before it was hashed is not cached: a later change within
/// the same timestamp tick would leave its stat unchanged.
pub(super) const RACY_NS: i64 = 1_000_000_000;

pub(super) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Whether a file's stats are too recent to prove, later, that its bytes did not change: a
/// change within the timestamp granularity can leave mtime and ctime as they are.
pub(super) fn racy(key: &StatKey, now: i64) -> bool {
    key.mtime_ns >= now - RACY_NS || key.ctime_ns >= now - RACY_NS
}

/// Hash `files` (in order), taking what the cache knows and recording what it learns. Each
/// result says whether the hash may be cached: its file was outside the racy window and did
/// not change while it was read (a cache hit was, when it was recorded).
pub(super) fn hash_with_cache(
    files: &[(PathBuf, StatKey)],
    how: How,
) -> Vec<(io::Result<(Hash, u64)>, bool)> {
    let How {
        hashing,
        cache,
        read,
        ..
    } = how;
    let progress = hashing.progress();
    let keys: Vec<StatKey> = files.iter().map(|(_, k)| *k).collect();
    let known = cache.map_or_else(|| vec![None; files.len()], |c| c.lookup(&keys));
    let known_now: Vec<bool> = known.iter().map(Option::is_some).collect();
    let started = now_ns();
    let compute = || -> Vec<(io::Result<(Hash, u64)>, bool)> {
        files
            .par_iter()
            .zip(known)
            .map(|((path, key), known)| match known {
                Some(hash) => {
                    progress.done(key.size, 1);
                    (Ok((hash, key.size)), true)
                }
                None => match hash_file_stat(path, Some(hashing), read) {
                    // Cache only bytes that were stable while read and are not racy.
                    Ok((hash, size, after)) => {
                        progress.done(0, 1);
                        (Ok((hash, size)), after == *key && !racy(key, started))
                    }
                    Err(e) => (Err(e), false),
                },
            })
            .collect()
    };
    // While the job runs, at a lower priority; once it has ended, at lineage's own.
    let results = match (read, hashing.yielding_pool()) {
        (Read::Copy, Some(pool)) => pool.install(compute),
        _ => compute(),
    };
    if let Some(cache) = cache {
        let learned: Vec<(StatKey, Hash)> = results
            .iter()
            .zip(&keys)
            .zip(&known_now)
            .filter_map(|(((r, stable), k), was_known)| match r {
                Ok((h, _)) if *stable && !was_known => Some((*k, *h)),
                _ => None,
            })
            .collect();
        if !learned.is_empty() {
            cache.record(&learned);
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether mapped or read, the rest of a large file hashes to its plain BLAKE3, after
    /// any number of windows copied first; and a file truncated once mapped (a fault, caught)
    /// is read again, which says it ended early.
    #[test]
    fn the_rest_mapped_or_read_is_the_files_blake3_and_a_fault_is_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(9usize << 20) + 777).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let len = data.len() as u64;
        let window = 1 << 20;
        let want = *blake3::hash(&data).as_bytes();
        for copied in [0u64, 1, 3] {
            let cvs: Vec<ChainingValue> = (0..copied)
                .map(|w| {
                    let mut h = blake3::Hasher::new();
                    h.set_input_offset(w * window);
                    h.update(&data[(w * window) as usize..((w + 1) * window) as usize]);
                    h.finalize_non_root()
                })
                .collect();
            for map in [true, false] {
                let file = File::open(&path).expect("open");
                let hash = rest_root(&file, &cvs, len, window, None, None, map).expect("hash");
                assert_eq!(hash.0, want, "{copied} windows copied, mapped: {map}");
            }
        }
        // Truncated after its stat: the mapping is made (mmap does not look at the length),
        // faults, and the file is read instead.
        let file = File::open(&path).expect("open");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open to write")
            .set_len((3 << 20) + 100)
            .expect("truncate");
        let err = rest_root(&file, &[], len, window, None, None, true).expect_err("truncated");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        // Cut short inside its last page: no fault (the page's rest reads as zeros), but
        // its length tells.
        let err = rest_root(&file, &[], (3 << 20) + 101, window, None, None, true)
            .expect_err("one byte short");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    }

    /// A FIFO where a regular file was (put there after its stat) is refused at once, never
    /// waited on: opened without blocking, no writer needed.
    #[test]
    fn a_fifo_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let err = hash_file_stat(&fifo, None, Read::Parallel).expect_err("a FIFO");
        assert!(err.to_string().contains("not a regular file"), "{err}");
        // As the readability check before launch, and the configs and metrics read, do.
        assert!(open_regular(&fifo).is_err());
        assert!(read_regular(&fifo).is_err());
        let file = dir.path().join("f");
        std::fs::write(&file, b"bytes").expect("write");
        assert_eq!(read_regular(&file).expect("a regular file"), b"bytes");
    }
}
