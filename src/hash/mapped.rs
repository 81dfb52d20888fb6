//! Large files hashed from a read-only mapping, on hosts where that is faster than reading
//! them: where BLAKE3 runs on AVX-512, hashing outpaces the copy `pread` makes, and a mapped
//! 1 GiB file was hashed in 128 ms against 162 ms read (docs/performance.md). Elsewhere the
//! copy measured as fast or faster, and large files are read ([`super::file::read_subtree`]).
//!
//! Each window's pages are let go once it is hashed (`Mapped::release`): mapped pages count
//! as lineage's resident memory, and a batch system's accounting charges that to the job.
//!
//! A mapped page past a file's end raises SIGBUS: a process the job left running may
//! truncate the file while it is hashed, and SIGBUS would stop lineage, losing the job's exit
//! code. So each mapping is guarded: a process-wide SIGBUS handler, installed once, looks the
//! faulting address up among the guarded mappings (fixed slots of atomics, nothing else read
//! in the handler), lays anonymous zero pages over the whole mapping and marks it faulted;
//! the hashing threads then read zeros, and the caller throws the result away and reads the
//! file instead, which says what happened (it ended early, or an I/O error). A SIGBUS outside
//! every guarded mapping goes to the handler that was there before (std's, which tells a
//! stack overflow), or to the default action.

use super::*;
use blake3::hazmat::{ChainingValue, HasherExt};
use nix::libc;
use std::sync::atomic::AtomicUsize;

/// Whether large files are mapped rather than read: where BLAKE3 hashes with AVX-512
/// (the same test it makes to choose that code).
pub(super) fn pays() -> bool {
    static PAYS: OnceLock<bool> = OnceLock::new();
    *PAYS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// A guarded mapping's place: taken, its address range, and whether a SIGBUS hit it.
struct Slot {
    taken: AtomicBool,
    start: AtomicUsize,
    end: AtomicUsize,
    faulted: AtomicBool,
}

/// How many mappings can be guarded at once; a file finding none free is read.
const SLOTS: usize = 32;

static GUARDED: [Slot; SLOTS] = [const {
    Slot {
        taken: AtomicBool::new(false),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        faulted: AtomicBool::new(false),
    }
}; SLOTS];

/// The SIGBUS action there before lineage's, once that is installed (None if it could not be).
static PREVIOUS: OnceLock<Option<Previous>> = OnceLock::new();

/// A `sigaction` kept to be called from the handler.
struct Previous(libc::sigaction);
// SAFETY: a plain C struct (a handler's address, flags, a mask), read only, never freed.
#[allow(unsafe_code)]
unsafe impl Sync for Previous {}
#[allow(unsafe_code)]
unsafe impl Send for Previous {}

/// Install the SIGBUS handler, once; whether it is installed.
fn guard_installed() -> bool {
    PREVIOUS
        .get_or_init(|| {
            #[allow(unsafe_code)]
            // SAFETY: sigaction(2) with zeroed (valid) structs; the handler is
            // async-signal-safe (see `on_sigbus`).
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                    return None;
                }
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = on_sigbus as *const () as usize;
                new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut new.sa_mask);
                // Stored before the handler can run, so that it can always chain.
                let kept = Previous(old);
                if libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut()) != 0 {
                    return None;
                }
                Some(kept)
            }
        })
        .is_some()
}

/// The SIGBUS handler. Async-signal-safe: it reads atomics and calls mmap(2) and
/// sigaction(2) only, allocates nothing, takes no lock.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    #[allow(unsafe_code)]
    // SAFETY: the kernel hands a valid siginfo_t to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    for slot in &GUARDED {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || addr < start || addr >= slot.end.load(Ordering::Acquire) {
            continue;
        }
        let end = slot.end.load(Ordering::Acquire);
        #[allow(unsafe_code)]
        // SAFETY: the range is a mapping of lineage's own (a `Mapped`'s, alive while its
        // slot is set), read only as bytes: zero pages laid over it change no invariant.
        let zeros = unsafe {
            libc::mmap(
                start as *mut libc::c_void,
                end - start,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zeros != libc::MAP_FAILED {
            slot.faulted.store(true, Ordering::Release);
            return;
        }
        break;
    }
    // Not a guarded mapping's: what was there before.
    let previous = PREVIOUS.get().and_then(Option::as_ref);
    match previous {
        Some(Previous(old))
            if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN =>
        {
            #[allow(unsafe_code)]
            // SAFETY: the address of a handler installed before ours, called as its flags say.
            unsafe {
                if old.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(old.sa_sigaction);
                    f(sig, info, ctx);
                } else {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(old.sa_sigaction);
                    f(sig);
                }
            }
        }
        _ => {
            // The default action: once this returns, the fault recurs and ends the process.
            #[allow(unsafe_code)]
            // SAFETY: sigaction(2) with a zeroed struct, SIG_DFL.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
            }
        }
    }
}

/// A file's first `len` bytes mapped read-only, guarded against SIGBUS; unmapped when
/// dropped.
pub(super) struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
    slot: &'static Slot,
    /// Bytes hashed so far (and counted in the progress).
    hashed: AtomicU64,
}

// SAFETY: the mapping is read only, by many threads at once, and unmapped once, on drop.
#[allow(unsafe_code)]
unsafe impl Sync for Mapped {}
#[allow(unsafe_code)]
unsafe impl Send for Mapped {}

impl Mapped {
    /// Map `len` (more than zero) bytes of `file`, guarded; None where that cannot be done
    /// (no guard, no free slot, mmap refused): the file is then read.
    pub(super) fn new(file: &File, len: u64) -> Option<Mapped> {
        use std::os::fd::AsRawFd;
        let len = usize::try_from(len).ok().filter(|&l| l > 0)?;
        if !guard_installed() {
            return None;
        }
        let slot = GUARDED.iter().find(|s| {
            s.taken
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        #[allow(unsafe_code)]
        // SAFETY: a new read-only private mapping of an open file; nothing else is at the
        // address the kernel picks.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            slot.taken.store(false, Ordering::Release);
            return None;
        }
        slot.faulted.store(false, Ordering::Release);
        slot.end.store(ptr as usize + len, Ordering::Release);
        slot.start.store(ptr as usize, Ordering::Release);
        Some(Mapped {
            ptr,
            len,
            slot,
            hashed: AtomicU64::new(0),
        })
    }

    /// Whether a SIGBUS hit the mapping: its bytes since are zeros, and what was hashed
    /// from it is not the file's.
    pub(super) fn faulted(&self) -> bool {
        self.slot.faulted.load(Ordering::Acquire)
    }

    /// How many bytes were hashed from it (and counted in the progress).
    pub(super) fn hashed(&self) -> u64 {
        self.hashed.load(Ordering::Relaxed)
    }

    fn bytes(&self) -> &[u8] {
        #[allow(unsafe_code)]
        // SAFETY: `len` readable bytes at `ptr` while `self` lives (a SIGBUS inside them
        // is caught and lays zeros over them). Another process may change the file's bytes
        // meanwhile, as it may between two reads; a stat after hashing tells.
        unsafe {
            std::slice::from_raw_parts(self.ptr as *const u8, self.len)
        }
    }

    /// Let go of the pages of `len` bytes at `offset` (a multiple of the page size), hashed:
    /// mapped pages count as lineage's resident memory until then, and a 1 GiB file held
    /// whole made lineage's peak 1 GiB (a batch system's RSS accounting charges it to the
    /// job's step). The bytes stay in the page cache; only this mapping's hold on them goes.
    fn release(&self, offset: u64, len: u64) {
        #[allow(unsafe_code)]
        // SAFETY: a range inside this read-only mapping, which no one reads any more (each
        // window is hashed by one thread, once); MADV_DONTNEED on a file mapping only drops
        // this process's page table entries.
        unsafe {
            libc::madvise(
                (self.ptr as *mut u8).add(offset as usize) as *mut libc::c_void,
                len as usize,
                libc::MADV_DONTNEED,
            );
        }
    }

    /// The chaining value of the subtree of `len` bytes at `offset`, window by window
    /// ([`super::file::split_subtree`]), as [`super::file::read_subtree`] reads it. A fault
    /// stops it early (an error the caller replaces by reading).
    pub(super) fn subtree(
        &self,
        offset: u64,
        len: u64,
        window: u64,
        progress: Option<&Progress>,
        stop: Option<&AtomicBool>,
    ) -> io::Result<ChainingValue> {
        let leaf = |offset: u64, len: u64| -> io::Result<ChainingValue> {
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Err(stopped());
            }
            if self.faulted() {
                return Err(io::Error::other("the mapping faulted"));
            }
            let mut hasher = blake3::Hasher::new();
            hasher.set_input_offset(offset);
            hasher.update(&self.bytes()[offset as usize..(offset + len) as usize]);
            self.release(offset, len);
            self.hashed.fetch_add(len, Ordering::Relaxed);
            progress.inspect(|p| p.done(len, 0));
            Ok(hasher.finalize_non_root())
        };
        super::file::split_subtree(offset, len, window, &leaf)
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // Unguarded first: no thread reads the mapping any more (rayon's joins have returned).
        self.slot.start.store(0, Ordering::Release);
        self.slot.end.store(0, Ordering::Release);
        #[allow(unsafe_code)]
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
        self.slot.taken.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// A mapped file hashes to its plain BLAKE3, split in windows as the reader splits it.
    #[test]
    fn a_mapped_file_hashes_to_its_blake3() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data = bytes(5 << 20 | 12345);
        std::fs::write(&path, &data).expect("write");
        let file = File::open(&path).expect("open");
        let mapped = Mapped::new(&file, data.len() as u64).expect("mapped");
        let window = 1 << 20;
        let rest = |start, n| mapped.subtree(start, n, window, None, None);
        let hash = tree_root(&[], data.len() as u64, window, &rest).expect("hash");
        assert_eq!(hash.0, *blake3::hash(&data).as_bytes());
        assert!(!mapped.faulted());
    }

    /// A file truncated after it was mapped: the pages past its new end raise SIGBUS, which
    /// is caught (the test process lives on), the mapping marked faulted and its hash an
    /// error; the slot is free again once it is dropped.
    #[test]
    fn a_file_truncated_while_mapped_is_a_fault_not_a_crash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data = bytes(4 << 20);
        std::fs::write(&path, &data).expect("write");
        let file = File::open(&path).expect("open");
        let mapped = Mapped::new(&file, data.len() as u64).expect("mapped");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open to write")
            .set_len(4096)
            .expect("truncate");
        let window = 1 << 20;
        let rest = |start, n| mapped.subtree(start, n, window, None, None);
        let hashed = tree_root(&[], data.len() as u64, window, &rest);
        assert!(mapped.faulted(), "no fault seen: {hashed:?}");
        let slot = mapped.slot;
        drop(mapped);
        assert!(!slot.taken.load(Ordering::Acquire));
    }

    /// A SIGBUS outside every guarded mapping still ends the process, as it would without
    /// lineage's handler: run in a child of the test binary, which maps a file unguarded
    /// and truncates it.
    #[test]
    fn a_sigbus_elsewhere_still_ends_the_process() {
        use std::os::unix::process::ExitStatusExt;
        const CHILD: &str = "LINEAGE_TEST_UNGUARDED_SIGBUS";
        if let Some(path) = std::env::var_os(CHILD) {
            assert!(guard_installed());
            let path = PathBuf::from(path);
            std::fs::write(&path, bytes(1 << 16)).expect("write");
            let file = File::open(&path).expect("open");
            #[allow(unsafe_code)]
            // SAFETY: the test's own mapping, read past the file's new end on purpose.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    1 << 16,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE,
                    std::os::fd::AsRawFd::as_raw_fd(&file),
                    0,
                );
                assert_ne!(p, libc::MAP_FAILED);
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .expect("open to write")
                    .set_len(0)
                    .expect("truncate");
                let byte = std::ptr::read_volatile((p as *const u8).add(8192));
                println!("read {byte} past the end");
            }
            std::process::exit(0);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "hash::mapped::tests::a_sigbus_elsewhere_still_ends_the_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, dir.path().join("f"))
            .output()
            .expect("run the test binary");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGBUS),
            "{:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
