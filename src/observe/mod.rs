//! Observing the files a job names: Linux seccomp user notification. A BPF filter
//! (`filter`), installed in the job between fork and exec, hands only the file-naming system
//! calls (open and its kin, rename, link, unlink, truncate, exec) of every thread and
//! process of the job to a supervisor thread here, which reads the path from the job's
//! memory, notes what the call does to it, and lets the call continue
//! (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`): the job sees the same call, the same result. The
//! supervisor never waits on anything but the kernel while a call is held: no store, no
//! hashing, no lock another thread holds for long.
//!
//! Where the kernel does not offer it (no user notification, seccomp forbidden, a
//! supervisor already in place), [`Observer::start`] or the installation in the child fails
//! and the job runs unobserved; the reason is kept for the run's note.
//!
//! What the filter implies for the job: to install it without `CAP_SYS_ADMIN`, the job gets
//! `no_new_privs` (a setuid program inside it runs without its privilege). If lineage ends
//! (killed, or a process of the job outlives it), its heir (`supervisor::Heir`) answers the
//! job's calls, the one lineage held included: nothing waits forever on a supervisor that
//! is gone. Only if the heir is killed too do the job's calls fail (ENOSYS).

mod filter;
mod supervisor;

pub use supervisor::{
    clean, leave_socket_to_heir, leave_to_heir, resolve_dots, take_back_from_heir,
};

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, mpsc};

use nix::libc;

/// What the job did to one path, in the order it did it (see `Access::apply`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Opened for reading (or executed) before the job wrote it.
    pub read: bool,
    /// Executed.
    pub exec: bool,
    /// Opened for writing, created, truncated, or the new name of a rename or link.
    pub written: bool,
    /// Unlinked or renamed away, and not made again since.
    pub deleted: bool,
}

/// One thing a call does to a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    Exec,
    Write,
    /// Opened to read and write (`O_RDWR`, or `O_CREAT` without truncating): the bytes there
    /// are read if they were not the job's own.
    ReadWrite,
    Delete,
}

impl Access {
    pub fn apply(&mut self, op: Op) {
        match op {
            Op::Read => self.read |= !self.written || self.deleted,
            Op::Exec => {
                self.exec = true;
                self.read |= !self.written;
            }
            Op::Write => {
                self.written = true;
                self.deleted = false;
            }
            Op::ReadWrite => {
                self.read |= !self.written || self.deleted;
                self.written = true;
                self.deleted = false;
            }
            Op::Delete => self.deleted = true,
        }
    }
}

/// What the supervisor saw: every path the job named (absolute, as named, not resolved
/// through links), and how many calls it held.
#[derive(Debug, Default)]
pub struct Observed {
    pub paths: HashMap<OsString, Access>,
    pub calls: u64,
    /// Calls whose path could not be read (a process gone, a bad pointer): not recorded.
    pub unreadable: u64,
    /// What the job did that observation cannot see through, each said once: `io_uring`
    /// (files opened through it), a 32-bit system call, more paths than are kept.
    pub blind: std::collections::BTreeSet<&'static str>,
    /// The bytes of the distinct paths kept.
    pub path_bytes: usize,
    /// A copy of the listener: it hangs up once no process of the job is left.
    listener: Option<std::os::fd::OwnedFd>,
}

impl Observed {
    fn set_listener(&mut self, copy: std::os::fd::OwnedFd) {
        self.listener = Some(copy);
    }

    /// What tells, later, whether processes the job started are still running.
    pub fn leftovers(&mut self) -> Option<Leftovers> {
        self.listener.take().map(Leftovers)
    }
}

/// Whether processes the job started outlive it (a server it left in the background, a
/// writer it did not wait for): what they write after the job has ended is not recorded.
#[derive(Debug)]
pub struct Leftovers(std::os::fd::OwnedFd);

impl Leftovers {
    /// Whether a process of the job is still running (or a call of one is held), after
    /// waiting up to `grace` for the last to go. The filter's listener hangs up once no
    /// process uses the filter: the job's processes, and none of lineage's.
    pub fn any(&self, grace: std::time::Duration) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let end = std::time::Instant::now() + grace;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::ZERO);
            let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return false,
                Ok(_) => {
                    let r = fds[0].revents().unwrap_or(PollFlags::empty());
                    return !r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR);
                }
            }
        }
    }
}

/// At most this many distinct paths are kept (about 130 bytes each beside the path); past
/// it, a note.
pub const MAX_PATHS: usize = 1_000_000;

/// At most this many bytes of distinct paths are kept; past it, a note. A job that named
/// 1,100,000 distinct paths of 3.9 KB each (failed opens) held 4 GB in lineage, memory a
/// job may share with it (a cgroup's limit).
pub const MAX_PATH_BYTES: usize = 128 << 20;

/// Why a job runs unobserved.
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the child needs between fork and exec: the program, and the socket on which it
/// sends its listener back. Used only through [`Hook::install`].
pub struct Hook {
    program: Vec<libc::sock_filter>,
    child_end: OwnedFd,
    /// The supervisor's end of the socket, as numbered in lineage: the child closes its copy
    /// first, so that the listener in flight is never kept alive by the very process whose
    /// calls it holds (should lineage die before receiving it).
    parent_end: RawFd,
}

/// The running supervisor of one job.
pub struct Observer {
    /// Whether the supervisor got the listener (sent once, before the job's first call).
    ready: mpsc::Receiver<Result<(), Unavailable>>,
    /// What it has seen so far.
    seen: Arc<Mutex<Observed>>,
}

/// Whether this kernel offers user notification at all.
pub fn available() -> Result<(), Unavailable> {
    match std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail") {
        Ok(s) if s.split_whitespace().any(|a| a == "user_notif") => Ok(()),
        Ok(_) => Err(Unavailable(
            "this kernel has no seccomp user notification (Linux 5.5 or later has it)".into(),
        )),
        Err(e) => Err(Unavailable(format!(
            "seccomp is not available here (/proc/sys/kernel/seccomp/actions_avail: {e})"
        ))),
    }
}

impl Observer {
    /// Start a supervisor, waiting for the listener the child will send; the hook goes to
    /// the child (`child::spawn`), and is dropped by the parent once the child is spawned.
    pub fn start() -> Result<(Observer, Hook), Unavailable> {
        available()?;
        let program = filter::program()
            .map_err(|e| Unavailable(format!("no filter: {e}")))?
            .into_iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        let unavailable = |what: &str, e: nix::Error| Unavailable(format!("{what}: {e}"));
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        let (parent_end, child_end) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| unavailable("no socket for the supervisor", e))?;
        let parent_raw = parent_end.as_raw_fd();
        let (tx, rx) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Observed::default()));
        let shared = Arc::clone(&seen);
        std::thread::Builder::new()
            .name("lineage-observe".into())
            .spawn(move || supervisor::run(parent_end, shared, tx))
            .map_err(|e| Unavailable(format!("no supervisor thread: {e}")))?;
        Ok((
            Observer { ready: rx, seen },
            Hook {
                program,
                child_end,
                parent_end: parent_raw,
            },
        ))
    }

    /// What the job named, once its process has ended (every call it made was answered, so
    /// noted). The supervisor goes on answering the calls of any process the job left
    /// behind; they are not recorded.
    pub fn finish(self) -> Result<Observed, Unavailable> {
        self.ready
            .recv()
            .unwrap_or_else(|_| Err(Unavailable("the supervisor stopped".into())))?;
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| Unavailable("the supervisor stopped".into()))?;
        Ok(std::mem::take(&mut *seen))
    }
}

impl Hook {
    /// In the child, between fork and exec: install the filter with a new listener and send
    /// the listener to the supervisor; on failure, send the errno instead (the job then runs
    /// unobserved). Never fails the spawn.
    ///
    /// Async-signal-safe: seccomp(2), prctl(2), sendmsg(2) and close(2) on values prepared
    /// before the fork; nothing is allocated.
    pub fn install(&self) {
        #[allow(unsafe_code)]
        // SAFETY: closing this process's copy of a descriptor lineage keeps (see the field).
        unsafe {
            libc::close(self.parent_end);
        }
        let fprog = libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        let listener = seccomp_listener(&fprog);
        let sock = self.child_end.as_raw_fd();
        match listener {
            Ok(fd) => {
                send(sock, 0, Some(fd));
                #[allow(unsafe_code)]
                // SAFETY: closing the fd seccomp just returned, which nothing else holds.
                unsafe {
                    libc::close(fd);
                }
            }
            Err(errno) => send(sock, errno, None),
        }
    }
}

/// seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER): first as is (a
/// process with CAP_SYS_ADMIN needs no `no_new_privs`), then with `no_new_privs`.
fn seccomp_listener(fprog: &libc::sock_fprog) -> Result<RawFd, i32> {
    // Once the supervisor has a call, the caller waits for the answer killable only: a
    // signal then does not interrupt the call (Linux 5.19 and later; without it before).
    let install = |flags: libc::c_ulong| {
        #[allow(unsafe_code)]
        // SAFETY: a raw system call on a program that outlives it; the kernel copies it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                fprog as *const libc::sock_fprog,
            )
        };
        if r < 0 { Err(errno()) } else { Ok(r as RawFd) }
    };
    // SPEC_ALLOW: the filter observes, it is no sandbox, so the job keeps the speculative
    // store bypass setting it would have without it (a seccomp filter otherwise turns the
    // mitigation on, which costs compute-bound code a good share of its speed on CPUs that
    // have it).
    let base = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    let try_once = || match install(base | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) {
        Err(libc::EINVAL) => install(base),
        other => other,
    };
    match try_once() {
        Err(libc::EACCES) => {
            #[allow(unsafe_code)]
            // SAFETY: prctl with integer arguments.
            let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            if r != 0 {
                return Err(errno());
            }
            try_once()
        }
        other => other,
    }
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Send a 4-byte errno (0: success) and, with it, the listener, with a control buffer on
/// the stack.
fn send(sock: RawFd, errno: i32, fd: Option<RawFd>) {
    let mut payload = errno.to_ne_bytes();
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    // Room for one fd's control message, aligned for cmsghdr.
    let mut control = [0u64; 8];
    #[allow(unsafe_code)]
    // SAFETY: the message points at buffers on this stack frame, valid for the call; the
    // CMSG macros stay within `control`, which is larger than CMSG_SPACE(sizeof(int)).
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if let Some(fd) = fd {
            let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        }
        libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL);
    }
}

/// Now, by the clock the kernel stamps files with (coarse: a file written after this moment
/// never has an earlier time than it).
pub fn coarse_now() -> std::time::SystemTime {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: clock_gettime writes one timespec.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if r != 0 {
        return std::time::SystemTime::now() - std::time::Duration::from_millis(20);
    }
    std::time::SystemTime::UNIX_EPOCH
        + std::time::Duration::new(
            ts.tv_sec.max(0) as u64,
            ts.tv_nsec.clamp(0, 999_999_999) as u32,
        )
}
