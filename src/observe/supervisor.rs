//! The supervisor thread: receives the listener from the child, then answers every held
//! call with "continue" once it has noted the paths the call names. While a call is held it
//! does only this: read the path from the caller's memory, resolve it against the caller's
//! working directory or directory fd (`/proc/TID/cwd`, `/proc/TID/fd/N`), and note it in a
//! map of its own.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use nix::libc;

use super::filter::Call;
use super::{Observed, Op, Unavailable};

/// The supervisor's whole life (see the module): receive the listener (saying on `ready`
/// whether there is one), then wait in the kernel for each held call, note it in `seen`,
/// and let it continue, for as long as lineage lives. It is never joined: once the job has
/// ended it waits on a listener nobody will use, or answers a process the job left behind.
pub(super) fn run(
    sock: OwnedFd,
    seen: Arc<Mutex<Observed>>,
    ready: mpsc::Sender<Result<(), Unavailable>>,
) {
    let listener = match receive(&sock) {
        Ok(l) => l,
        Err(why) => {
            let _ = ready.send(Err(why));
            return;
        }
    };
    drop(sock);
    // A copy for lineage to tell, once the job has ended, whether processes of it are left:
    // in place before `ready` says the listener is here, so that `Observer::finish` always
    // takes it (the heir forked below holds one more copy, which keeps nothing alive: the
    // listener hangs up when no task uses the filter, whoever holds it).
    if let (Ok(copy), Ok(mut seen)) = (listener.try_clone(), seen.lock()) {
        seen.set_listener(copy);
    }
    let _ = ready.send(Ok(()));
    // What the thread holds now, for the heir to answer should lineage die holding it.
    let heir = Heir::start(&listener);
    let mut own: libc::seccomp_notif = {
        #[allow(unsafe_code)]
        // SAFETY: plain data, zero is valid.
        unsafe {
            std::mem::zeroed()
        }
    };
    // Where each call is received: the page shared with the heir, or this thread's own.
    let buf: *mut libc::seccomp_notif = heir.as_ref().map_or(&mut own as *mut _, |h| h.req);
    // Wake this thread on the caller's CPU, and the caller on this one (Linux 6.6 and later;
    // ignored before): a held call is a hand-over, not two cross-CPU wake-ups.
    #[allow(unsafe_code)]
    // SAFETY: the ioctl takes its flags by value.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            SYNC_WAKE_UP,
        );
    }
    let mut cwds = Cwds::default();
    let mut noted = Vec::with_capacity(2);
    loop {
        #[allow(unsafe_code)]
        // SAFETY: `buf` is valid for one seccomp_notif (a live mapping or `own`), written
        // only by this thread and the kernel; it is zeroed before each receive, as the kernel
        // requires, and the ioctl blocks until a call is held.
        let (r, req) = unsafe {
            std::ptr::write_bytes(buf, 0, 1);
            let r = libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, buf);
            (r, std::ptr::read_volatile(buf))
        };
        if r != 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                // The caller died before it was received, or no process of the job is left
                // (then the kernel says so at once, every time): wait for a call or the end.
                Some(libc::ENOENT) if still_used(&listener) => continue,
                _ => return,
            }
        }
        noted.clear();
        let blind = if req.data.arch != super::filter::NATIVE_ARCH {
            Some("a 32-bit system call")
        } else if Call::of(req.data.nr) == Some(Call::IoUring) {
            Some("io_uring")
        } else {
            None
        };
        let ok = blind.is_some() || describe(&req, &mut cwds, &mut noted);
        // The memory read belongs to the caller only while the call is still held.
        let ok = ok && still_held(&listener, req.id);
        if let Ok(mut seen) = seen.lock() {
            seen.calls += 1;
            if let Some(what) = blind {
                seen.blind.insert(what);
            } else if ok {
                for (path, op) in noted.drain(..) {
                    let full = seen.paths.len() >= super::MAX_PATHS
                        || seen.path_bytes + path.len() > super::MAX_PATH_BYTES;
                    match seen.paths.get_mut(&path) {
                        Some(access) => access.apply(op),
                        None if full => {
                            seen.blind.insert("more distinct paths than lineage keeps");
                        }
                        None => {
                            seen.path_bytes += path.len();
                            seen.paths.entry(path).or_default().apply(op);
                        }
                    }
                }
            } else {
                seen.unreadable += 1;
            }
        }
        let mut resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: 0,
            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        };
        #[allow(unsafe_code)]
        // SAFETY: the ioctl reads one seccomp_notif_resp.
        unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp as *mut libc::seccomp_notif_resp,
            );
        }
        #[allow(unsafe_code)]
        // SAFETY: as above; the heir reads the id as zero: nothing held.
        unsafe {
            std::ptr::write_volatile(std::ptr::addr_of_mut!((*buf).id), 0);
        }
    }
}

/// The listener from the child, or why there is none.
fn receive(sock: &OwnedFd) -> Result<OwnedFd, Unavailable> {
    let mut payload = [0u8; 4];
    let mut control = [0u64; 8];
    #[allow(unsafe_code)]
    // SAFETY: recvmsg into buffers on this stack frame; the control message is read only
    // when the kernel says it holds one SCM_RIGHTS fd, which we then own.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: payload.as_mut_ptr().cast(),
            iov_len: payload.len(),
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        let n = loop {
            let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break n;
        };
        if n != 4 {
            return Err(Unavailable("the job did not start".into()));
        }
        let errno = i32::from_ne_bytes(payload);
        if errno != 0 {
            let e = std::io::Error::from_raw_os_error(errno);
            let why = match errno {
                libc::EBUSY => "the job is already under a seccomp supervisor".to_string(),
                libc::EINVAL | libc::ENOSYS => {
                    format!("this kernel refused the seccomp filter ({e})")
                }
                _ => format!("seccomp is not allowed here ({e})"),
            };
            return Err(Unavailable(why));
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(Unavailable("the job sent no seccomp listener".into()));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Descriptors whose last close is slow and that nothing needs once lineage has ended
/// (inotify instances: closing one with watches waits out the kernel's SRCU grace period,
/// 15-20 ms). The heir keeps its copies and closes them after lineage has gone, so the
/// last close, and its wait, is the heir's and not the user's. -1: a free slot.
static LEFT_TO_HEIR: [AtomicI32; 16] = [const { AtomicI32::new(-1) }; 16];

/// Let the heir (if one is forked from now on) close `fd` after lineage ends, in place of
/// lineage's own process exit. When every slot is taken nothing changes for `fd`.
pub fn leave_to_heir(fd: RawFd) {
    let _ = LEFT_TO_HEIR.iter().any(|slot| {
        slot.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    });
}

/// A socket and the directory made for it (the in-job API's), which the heir removes once
/// lineage has ended: a lineage killed by SIGKILL cannot. Set before the heir is forked.
static LEFT_SOCKET: std::sync::OnceLock<(std::ffi::CString, std::ffi::CString)> =
    std::sync::OnceLock::new();

/// Let the heir (if one is forked from now on) remove `socket` and then its directory `dir`
/// once lineage has ended, whether or not lineage removed them itself (removing what is
/// gone is nothing). Only the first call counts.
pub fn leave_socket_to_heir(socket: &Path, dir: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).ok();
    if let (Some(socket), Some(dir)) = (c(socket), c(dir)) {
        let _ = LEFT_SOCKET.set((socket, dir));
    }
}

/// Take `fd` back before closing it: a number closed and reused must not be kept by an
/// heir forked later. (An heir forked before has its own copy of the real thing.)
pub fn take_back_from_heir(fd: RawFd) {
    for slot in &LEFT_TO_HEIR {
        let _ = slot.compare_exchange(fd, -1, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// The heir: a process forked once the listener is here, which holds a copy of it and does
/// nothing while lineage lives. When lineage ends (its pipe closes: lineage exited, or was
/// killed), it answers "continue" to every call still held, the one lineage may have been
/// holding included, and to every call after, until no process of the job is left. So a job
/// that outlives lineage, or whose lineage was killed (SIGKILL), sees its calls go on as
/// without lineage; they are only no longer recorded.
struct Heir {
    /// The request buffer the supervisor receives each call into, in memory shared with the
    /// heir: the kernel writes a call's id there before the supervisor can die holding it.
    req: *mut libc::seccomp_notif,
    /// Closed when lineage ends (the write end of the heir's pipe): when this thread returns
    /// (the job gone), or, when the heir was left descriptors to close (`LEFT_TO_HEIR`), only
    /// with lineage's process, so that the heir's close of them is the last one and comes
    /// after the user has stopped waiting.
    alive: Option<OwnedFd>,
    holds_left: bool,
}

impl Drop for Heir {
    fn drop(&mut self) {
        if self.holds_left {
            // Left open until lineage's process ends (see `alive`).
            std::mem::forget(self.alive.take());
        }
    }
}

impl Heir {
    fn start(listener: &OwnedFd) -> Option<Heir> {
        #[allow(unsafe_code)]
        // SAFETY: a fresh anonymous shared mapping of one page, never unmapped (it lives as
        // long as lineage), zero-filled; a seccomp_notif at its start is aligned.
        let req: *mut libc::seccomp_notif = unsafe {
            let page = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if page == libc::MAP_FAILED {
                return None;
            }
            page.cast()
        };
        let (alive_r, alive_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        // What the heir will hold (it reads the same slots after the fork).
        let holds_left = LEFT_TO_HEIR.iter().any(|s| s.load(Ordering::Acquire) >= 0);
        #[allow(unsafe_code)]
        // SAFETY: the child calls only async-signal-safe functions (setsid, close_range,
        // read, close, unlink, rmdir, poll, ioctl, _exit) on values made before the fork (a
        // set `OnceLock` is read without a lock), and allocates nothing:
        // another thread of lineage's may have held the allocator's lock at the fork.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                heir_main(listener.as_raw_fd(), alive_r.as_raw_fd(), req)
            }
            Ok(nix::unistd::ForkResult::Parent { .. }) => Some(Heir {
                req,
                alive: Some(alive_w),
                holds_left,
            }),
            Err(_) => None,
        }
    }
}

/// The heir's whole life (see [`Heir`]). Its own session, so that a Ctrl-C or a hang-up
/// meant for the job's terminal does not end it; every other descriptor closed, so that
/// nobody waits on a pipe it would hold.
fn heir_main(listener: RawFd, alive: RawFd, held: *const libc::seccomp_notif) -> ! {
    // The descriptors to keep, sorted, on the stack (nothing is allocated after the fork).
    let mut keep = [-1 as RawFd; 18];
    keep[0] = listener;
    keep[1] = alive;
    let mut kept = 2;
    for slot in &LEFT_TO_HEIR {
        let fd = slot.load(Ordering::Acquire);
        if fd >= 0 && !keep[..kept].contains(&fd) {
            keep[kept] = fd;
            kept += 1;
        }
    }
    keep[..kept].sort_unstable();
    #[allow(unsafe_code)]
    // SAFETY: async-signal-safe calls on plain values (see `Heir::start`).
    unsafe {
        libc::setsid();
        // Not `lineage`: `pkill lineage` is meant for lineage, and the job needs its heir.
        libc::prctl(libc::PR_SET_NAME, c"lnobs-heir".as_ptr(), 0, 0, 0);
        // Every descriptor but those kept: the gaps between them.
        let mut from: u32 = 0;
        for &fd in &keep[..kept] {
            let fd = fd as u32;
            if fd > from {
                libc::syscall(libc::SYS_close_range, from, fd - 1, 0);
            }
            from = fd + 1;
        }
        libc::syscall(libc::SYS_close_range, from, u32::MAX, 0);
        let mut byte = 0u8;
        loop {
            let n = libc::read(alive, (&mut byte as *mut u8).cast(), 1);
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            break; // lineage has ended (EOF)
        }
        let answer = |id: u64| {
            let mut resp = libc::seccomp_notif_resp {
                id,
                val: 0,
                error: 0,
                flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
            };
            libc::ioctl(
                listener,
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp as *mut _,
            );
        };
        // The call lineage received last, if it did not answer it (0: none held).
        let id = std::ptr::read_volatile(std::ptr::addr_of!((*held).id));
        if id != 0 {
            answer(id);
        }
        // The in-job API's socket, which a killed lineage left (see `LEFT_SOCKET`).
        if let Some((socket, dir)) = LEFT_SOCKET.get() {
            libc::unlink(socket.as_ptr());
            libc::rmdir(dir.as_ptr());
        }
        // Now the slow last closes lineage left here (see `LEFT_TO_HEIR`).
        for &fd in &keep[..kept] {
            if fd != listener && fd != alive {
                libc::close(fd);
            }
        }
        loop {
            let mut fd = libc::pollfd {
                fd: listener,
                events: libc::POLLIN,
                revents: 0,
            };
            let n = libc::poll(&mut fd, 1, -1);
            if n < 0 {
                if *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                libc::_exit(0);
            }
            if fd.revents & libc::POLLIN != 0 {
                let mut req: libc::seccomp_notif = std::mem::zeroed();
                if libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req as *mut _) == 0 {
                    answer(req.id);
                }
            } else if fd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                libc::_exit(0); // no process of the job is left
            }
        }
    }
}

fn still_held(listener: &OwnedFd, id: u64) -> bool {
    let mut id = id;
    #[allow(unsafe_code)]
    // SAFETY: the ioctl reads one u64.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &mut id as *mut u64,
        )
    };
    r == 0
}

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (linux/seccomp.h; not in the libc crate).
const SYNC_WAKE_UP: libc::c_ulong = 1;

/// Wait until a call is held (true) or no process of the job is left (false).
fn still_used(listener: &OwnedFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
            Ok(_) => {
                let r = fds[0].revents().unwrap_or(PollFlags::empty());
                return r.contains(PollFlags::POLLIN)
                    || !r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR);
            }
        }
    }
}

/// Each thread's working directory, read once from `/proc/TID/cwd` (a read of procfs costs
/// as much as the rest of a held call), for a job that never changes directory; once any
/// thread of it does (`chdir` and `fchdir` are held too), read at every call. A thread that
/// runs a new program is read again.
#[derive(Default)]
struct Cwds {
    dirs: std::collections::HashMap<u32, PathBuf>,
    off: bool,
}

/// The paths a call names and what it does to each; false when one could not be read.
fn describe(req: &libc::seccomp_notif, cwds: &mut Cwds, out: &mut Vec<(OsString, Op)>) -> bool {
    let Some(call) = Call::of(req.data.nr) else {
        return true;
    };
    if call == Call::Chdir {
        // When the change takes effect is the kernel's business, after this answer: from
        // now on each relative path is resolved against what procfs says at its call.
        cwds.dirs.clear();
        cwds.off = true;
        return true;
    }
    let a = req.data.args;
    let tid = req.pid;
    let cwd = libc::AT_FDCWD as u64;
    let open = |flags: u64| -> Option<Op> {
        let flags = flags as i32;
        if flags & (libc::O_DIRECTORY | libc::O_PATH) != 0 {
            return None;
        }
        let mode = flags & libc::O_ACCMODE;
        Some(if flags & libc::O_TRUNC != 0 || mode == libc::O_WRONLY {
            Op::Write
        } else if mode == libc::O_RDWR || flags & libc::O_CREAT != 0 {
            // A database opened to query it, or to update it in place.
            Op::ReadWrite
        } else {
            Op::Read
        })
    };
    // (dirfd, pointer to the path, what the call does to it)
    let mut named: [(u64, u64, Option<Op>); 2] = [(cwd, 0, None); 2];
    match call {
        Call::Open => named[0] = (cwd, a[0], open(a[1])),
        Call::OpenAt => named[0] = (a[0], a[1], open(a[2])),
        Call::OpenAt2 => {
            let mut how = [0u8; 8];
            if !read_memory(tid, a[2], &mut how) {
                return false;
            }
            named[0] = (a[0], a[1], open(u64::from_ne_bytes(how)));
        }
        Call::Creat | Call::Truncate => named[0] = (cwd, a[0], Some(Op::Write)),
        Call::Rename => {
            named = [(cwd, a[0], Some(Op::Delete)), (cwd, a[1], Some(Op::Write))];
        }
        Call::RenameAt => {
            named = [
                (a[0], a[1], Some(Op::Delete)),
                (a[2], a[3], Some(Op::Write)),
            ];
        }
        Call::Link | Call::Symlink => named[0] = (cwd, a[1], Some(Op::Write)),
        Call::LinkAt => named[0] = (a[2], a[3], Some(Op::Write)),
        Call::SymlinkAt => named[0] = (a[1], a[2], Some(Op::Write)),
        Call::Unlink | Call::Rmdir => named[0] = (cwd, a[0], Some(Op::Delete)),
        Call::UnlinkAt => named[0] = (a[0], a[1], Some(Op::Delete)),
        Call::Execve => named[0] = (cwd, a[0], Some(Op::Exec)),
        Call::ExecveAt => named[0] = (a[0], a[1], Some(Op::Exec)),
        Call::Chdir | Call::IoUring => {}
    }
    if matches!(call, Call::Execve | Call::ExecveAt) {
        // A new program: if this thread id is a new process, its directory is its own.
        cwds.dirs.remove(&tid);
    }
    for (dirfd, ptr, op) in named {
        let Some(op) = op else { continue };
        let Some(raw) = read_path(tid, ptr) else {
            return false;
        };
        if raw.is_empty() {
            continue; // AT_EMPTY_PATH: the fd itself, already named when it was opened
        }
        let Some(path) = absolute(tid, dirfd as i32, raw, cwds) else {
            continue;
        };
        out.push((path.into_os_string(), op));
    }
    true
}

/// The NUL-terminated path at `addr` in the caller's memory (at most PATH_MAX bytes), read
/// a page at a time so that a path ending before an unmapped page is still read.
fn read_path(tid: u32, addr: u64) -> Option<Vec<u8>> {
    const PAGE: u64 = 4096;
    const MAX: usize = libc::PATH_MAX as usize;
    if addr == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(128);
    let mut at = addr;
    while out.len() < MAX {
        let room = (PAGE - at % PAGE) as usize;
        let want = room.min(MAX - out.len());
        let mut buf = [0u8; PAGE as usize];
        if !read_memory(tid, at, &mut buf[..want]) {
            return None;
        }
        if let Some(end) = buf[..want].iter().position(|b| *b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Some(out);
        }
        out.extend_from_slice(&buf[..want]);
        at += want as u64;
    }
    None
}

fn read_memory(tid: u32, addr: u64, buf: &mut [u8]) -> bool {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    #[allow(unsafe_code)]
    // SAFETY: the kernel writes at most buf.len() bytes into `buf`; the remote address is
    // only read, by the kernel, with the caller's permission checks.
    let n = unsafe { libc::process_vm_readv(tid as libc::pid_t, &local, 1, &remote, 1, 0) };
    n == buf.len() as isize
}

/// The path made absolute against the caller's working directory or the directory `dirfd`
/// names, `.` left out and `..` taken as the kernel takes it ([`resolve_dots`]).
fn absolute(tid: u32, dirfd: i32, raw: Vec<u8>, cwds: &mut Cwds) -> Option<PathBuf> {
    let path = PathBuf::from(OsString::from_vec(raw));
    let joined = if path.is_absolute() {
        path
    } else {
        let base = if dirfd == libc::AT_FDCWD {
            match cwds.dirs.get(&tid) {
                Some(known) => known.clone(),
                None => {
                    let read = std::fs::read_link(format!("/proc/{tid}/cwd")).ok()?;
                    if !cwds.off {
                        cwds.dirs.insert(tid, read.clone());
                    }
                    read
                }
            }
        } else {
            std::fs::read_link(format!("/proc/{tid}/fd/{dirfd}")).ok()?
        };
        if !base.is_absolute() {
            return None; // a pipe or a socket: no directory
        }
        base.join(path)
    };
    let cleaned = resolve_dots(&joined);
    Some(through_proc_fd(tid, &cleaned).unwrap_or(cleaned))
}

/// `/proc/self/fd/N` (or `thread-self`, or a pid): the file the descriptor names, as the
/// kernel will open it (a job reopening a descriptor it opened `O_PATH`).
fn through_proc_fd(tid: u32, path: &Path) -> Option<PathBuf> {
    let mut parts = path.strip_prefix("/proc").ok()?.components();
    let (who, fd, n) = (parts.next()?, parts.next()?, parts.next()?);
    if fd.as_os_str() != "fd" || parts.next().is_some() {
        return None;
    }
    let n: u32 = n.as_os_str().to_str()?.parse().ok()?;
    let link = match who.as_os_str().to_str()? {
        "self" | "thread-self" => format!("/proc/{tid}/fd/{n}"),
        pid if pid.bytes().all(|b| b.is_ascii_digit()) => format!("/proc/{pid}/fd/{n}"),
        _ => return None,
    };
    std::fs::read_link(link).ok().filter(|p| p.is_absolute())
}

/// `path` (absolute) with `.` left out and each `..` taken as the kernel takes it: with the
/// name before it where that name is a directory (`sub/../m.txt` is `m.txt`), and after a
/// link, at the parent of where the link leads (`lnk/..`). Links elsewhere in the path are
/// kept by name (a linked data directory's files are named through the link). A name that
/// does not exist (yet) keeps its `..` and the rest after it as given.
pub fn resolve_dots(path: &Path) -> PathBuf {
    if !path.components().any(|c| c == Component::ParentDir) {
        return clean(path);
    }
    let mut out = PathBuf::new();
    let mut literal = false;
    for c in path.components() {
        match c {
            Component::ParentDir if !literal => {
                if out.parent().is_none() {
                    // `/..` is `/`.
                } else if std::fs::symlink_metadata(&out).is_ok_and(|m| m.is_dir()) {
                    out.pop();
                } else if let Ok(real) = std::fs::canonicalize(&out)
                    && real.is_dir()
                {
                    out = real;
                    out.pop();
                } else {
                    literal = true;
                    out.push(c);
                }
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// `/a/./b/../c` → `/a/c`, by name.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn clean_removes_dots_by_name() {
        assert_eq!(clean(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(clean(Path::new("/../x")), PathBuf::from("/x"));
        let odd = OsString::from_vec(b"/d/\xffname".to_vec());
        assert_eq!(
            clean(Path::new(&odd)).as_os_str().as_bytes(),
            b"/d/\xffname"
        );
    }
}
