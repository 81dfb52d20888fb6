//! Launching the wrapped command untouched: same stdin/stdout/stderr and terminal, same
//! process group (so job control and Ctrl-C work as without lineage), argv passed raw and
//! never through a shell. SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, and the
//! signals whose default would kill lineage but not mean "stop" to a job (SIGALRM,
//! SIGXCPU from a scheduler's CPU limit, SIGVTALRM, SIGPROF, SIGPWR) sent to lineage alone
//! are forwarded to the child, unless lineage's parent left them ignored (`nohup`): then
//! lineage and the job ignore them, as the job would have alone; the same signals sent to the whole process
//! group (Ctrl-C at a terminal, `kill -TERM -PGID`, `timeout`) already reached the child, so
//! they are only noted, never delivered twice. Which is which: the kernel's own (a
//! terminal's) say so in their siginfo; for those a process sent, siginfo cannot tell
//! `kill(pid)` from `kill(-pgid)`, so a [`Witness`] process in the group, blocking them, says
//! whether the group got the signal too. If lineage itself is killed, the job receives
//! SIGTERM (PR_SET_PDEATHSIG) and the next lineage command marks the run `interrupted`.
//! A stopping signal that arrives once the job has ended raises the caller's `stop` flag;
//! one that arrived while it ran raises it [`STOP_GRACE`] after it has ended (lineage then
//! stops hashing and records what it has: a supervisor's SIGKILL follows its SIGTERM after a
//! grace time).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use signal_hook::consts::{
    SIGALRM, SIGHUP, SIGINT, SIGPROF, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGVTALRM, SIGXCPU,
};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;

/// Caught and forwarded: left to their default, the last five would kill lineage (and the
/// job with it, by PR_SET_PDEATHSIG) where the job alone would handle them.
const FORWARDED: &[i32] = &[
    SIGINT,
    SIGTERM,
    SIGHUP,
    SIGQUIT,
    SIGUSR1,
    SIGUSR2,
    SIGALRM,
    SIGXCPU,
    SIGVTALRM,
    SIGPROF,
    nix::libc::SIGPWR,
];

/// How long lineage waits for the rest of a burst of signals before forwarding (see `spawn`).
const BURST: Duration = Duration::from_millis(10);

/// Signals that ask the job to stop: receiving one makes the run `interrupted`.
pub const STOPPING: &[i32] = &[SIGINT, SIGTERM, SIGHUP, SIGQUIT];

pub struct Running {
    child: Child,
    started: Instant,
    received: Arc<AtomicI32>,
    /// Set once the child has been reaped: its pid may be reused, nothing is sent to it.
    reaped: Arc<AtomicBool>,
    signals: signal_hook::iterator::Handle,
    forwarder: Option<JoinHandle<()>>,
    /// The witness (see [`Witness`]): told to end as soon as the job is reaped, so that it is
    /// gone, not still tearing down its copy of lineage's memory, by the time the forwarder
    /// reaps it (half a millisecond of every run otherwise spent waiting for it).
    witness: Option<Pid>,
}

#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    /// The last stopping signal lineage received while the child ran.
    pub received: Option<i32>,
    pub wall: Duration,
    pub user_cpu: Duration,
    pub system_cpu: Duration,
    pub max_rss_bytes: u64,
    _listening: Listening,
}

/// What the child does between fork and exec besides lineage's own setup.
#[derive(Default)]
pub struct BeforeExec {
    /// Install the observer's seccomp filter (last: it sees the job's calls only).
    pub observe: Option<crate::observe::Hook>,
    /// Wait for a byte on this pipe, its read and write ends (see [`spawn`]).
    pub gate: Option<(RawFd, RawFd)>,
    /// The job's standard output, where not lineage's own (`rerun --json` gives it
    /// lineage's standard error).
    pub stdout: Option<std::os::fd::OwnedFd>,
}

/// Start the command in `cwd` (from `found`, where its program was found on PATH), with
/// `env` (None: lineage's own environment) plus `extra_env`. With a gate
/// (`before_exec.gate`: a pipe's read and write ends), the child is forked at once but
/// execs the command only once a 1 arrives on it: what lineage must do before the job runs
/// (write the run) is done meanwhile. The gate shut (a 0) makes the spawn fail
/// (`ECANCELED`), and its end without a byte (lineage gone) ends the child: either way the
/// command never ran.
/// A stopping signal received once the command has ended sets `stop`, and so does one
/// received while it ran, once it has ended (heard until the returned [`Running`]'s outcome
/// is dropped: the handlers stay, so lineage is never left deaf).
pub fn spawn(
    argv: &[OsString],
    found: Option<&std::path::Path>,
    cwd: &std::path::Path,
    env: Option<&[(OsString, OsString)]>,
    extra_env: &[(&str, &str)],
    stop: Arc<AtomicBool>,
    before_exec: BeforeExec,
) -> io::Result<Running> {
    let BeforeExec {
        observe,
        gate,
        stdout,
    } = before_exec;
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    // Handlers first, so a signal arriving during the spawn is queued, not fatal. Not for
    // those lineage's parent ignored (`nohup`, a script's background job): lineage ignores
    // them too, and the job inherits them ignored, as it would have without lineage.
    let inherited = inherited_ignored();
    let mut signals = SignalsInfo::<WithOrigin>::new(
        FORWARDED
            .iter()
            .copied()
            .filter(|s| inherited & (1 << s) == 0),
    )?;
    // Found on PATH already: executed from there, under the name it was given.
    let mut command = match found {
        Some(path) => {
            let mut c = Command::new(path);
            std::os::unix::process::CommandExt::arg0(&mut c, program);
            c
        }
        None => Command::new(program),
    };
    command.args(args).current_dir(cwd);
    if let Some(fd) = stdout {
        command.stdout(fd);
    }
    if let Some(env) = env {
        command.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    }
    // Tie the job to lineage's lifetime: if lineage is killed (SIGKILL cannot be caught or
    // forwarded), the kernel sends the job SIGTERM instead of leaving it running unrecorded.
    let parent = nix::unistd::getpid();
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the child between fork and exec, where another thread of
    // lineage's (rayon's, the signal forwarder) may have held the allocator's lock: it calls
    // only sigaction(2), prctl(2) and getppid(2), all async-signal-safe, and allocates
    // nothing, its errors included (OS error codes: `io::Error::from_raw_os_error` needs no
    // heap, unlike `io::Error::other`).
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
            use nix::sys::signal::SigHandler;
            // lineage ignores SIGXFSZ and takes SIGCHLD back to its default (see
            // `settle_signals`); ignored signals stay ignored across exec, so give the job
            // what lineage's parent gave lineage.
            let was = |s: Signal| match inherited & (1 << s as i32) {
                0 => SigHandler::SigDfl,
                _ => SigHandler::SigIgn,
            };
            nix::sys::signal::signal(Signal::SIGXFSZ, was(Signal::SIGXFSZ))?;
            nix::sys::signal::signal(Signal::SIGCHLD, was(Signal::SIGCHLD))?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            // lineage may have died before prctl took effect: no such process to record it.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            if let Some((read, write)) = gate {
                // Its own copy of the write end closed first (lineage keeps the gate open
                // across the fork): should lineage die, the gate ends, and so does the
                // wait (the witness closes its copy at once).
                nix::libc::close(write);
                wait_at_gate(read)?;
            }
            Ok(())
        });
    }
    if let Some(hook) = observe {
        #[allow(unsafe_code)]
        // SAFETY: `Hook::install` is async-signal-safe and allocates nothing (see there).
        // Last, so that the filter sees the job's own calls only.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                hook.install();
                Ok(())
            });
        }
    }
    for (k, v) in extra_env {
        command.env(k, v);
    }
    // Before the job: a signal sent to the group from now on is seen by the witness.
    let mut witness = Witness::start(gate);
    let witness_pid = witness.as_ref().map(|w| w.pid);
    let child = command.spawn();
    // From its exec: not the wait at the gate.
    let started = Instant::now();
    // The hook's socket end goes with the command: the supervisor hears a child that never
    // sent its listener as the end of the socket.
    drop(command);
    let child = child?;
    let pid = Pid::from_raw(child.id() as i32);
    let received = Arc::new(AtomicI32::new(0));
    let reaped = Arc::new(AtomicBool::new(false));
    let handle = signals.handle();
    let forwarder = {
        let (received, reaped) = (received.clone(), reaped.clone());
        std::thread::Builder::new()
            .name("lineage-signals".into())
            .spawn(move || {
                let mut stop_watch = None;
                while !signals.is_closed() {
                    let mut batch: Vec<_> = signals.wait().collect();
                    if batch.is_empty() {
                        continue;
                    }
                    // A process that signals lineage and then its group (`timeout` does)
                    // sends twice within microseconds, which a job alone would have merged
                    // while pending: take both in one batch.
                    if batch.iter().any(|o| !matches!(o.cause, Cause::Kernel)) {
                        std::thread::sleep(BURST);
                        batch.extend(signals.pending());
                    }
                    // Asked on every batch, so that the witness never keeps a stale one.
                    let to_group = witness.as_mut().and_then(Witness::group_signals);
                    let ended = reaped.load(Ordering::SeqCst) || has_exited(pid);
                    let mut forwarded = 0u64;
                    for origin in batch {
                        if STOPPING.contains(&origin.signal) {
                            if ended {
                                stop.store(true, Ordering::SeqCst);
                                continue;
                            }
                            received.store(origin.signal, Ordering::SeqCst);
                            // Asked to stop: once the job has ended, so does hashing (a
                            // supervisor's SIGKILL follows its SIGTERM after a grace time).
                            if stop_watch.is_none() {
                                stop_watch = stop_when_ended(pid, Arc::clone(&stop));
                            }
                        }
                        let bit = 1u64.checked_shl(origin.signal as u32).unwrap_or(0);
                        if ended
                            || forwarded & bit != 0
                            || !should_forward(&origin.cause, to_group, origin.signal)
                        {
                            continue;
                        }
                        forwarded |= bit;
                        if let Ok(sig) = Signal::try_from(origin.signal) {
                            let _ = kill(pid, sig);
                        }
                    }
                }
                drop(witness);
            })?
    };
    Ok(Running {
        child,
        started,
        received,
        reaped,
        signals: handle,
        forwarder: Some(forwarder),
        witness: witness_pid,
    })
}

/// How long lineage goes on hashing after a job it was asked to stop has ended: the
/// checkpoints a job saves when told to stop are recorded (16 MB hash in milliseconds),
/// and a huge output cannot hold lineage past a scheduler's grace time (Slurm's and
/// Kubernetes' default to 30 s before SIGKILL). A second stopping signal stops it at once.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// Raise `stop` [`STOP_GRACE`] after the child has ended (without reaping it: `wait` does
/// that).
fn stop_when_ended(pid: Pid, stop: Arc<AtomicBool>) -> Option<JoinHandle<()>> {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    std::thread::Builder::new()
        .name("lineage-stop".into())
        .spawn(move || {
            while let Err(nix::errno::Errno::EINTR) =
                waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
            {}
            std::thread::sleep(STOP_GRACE);
            stop.store(true, Ordering::SeqCst);
        })
        .ok()
}

/// Whether the child has ended (a zombie not yet reaped, or reaped), without reaping it.
fn has_exited(pid: Pid) -> bool {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    !matches!(
        waitid(Id::Pid(pid), flags),
        Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR)
    )
}

/// A process in lineage's process group that does nothing but block the forwarded signals:
/// a signal sent to the whole group stays pending in it, so lineage can tell a signal sent
/// to the group (which the job, in the same group, received too) from one sent to lineage
/// alone (which it forwards). Forked, not executed: it costs one fork per run.
struct Witness {
    pid: Pid,
    /// A byte here asks the witness for its pending signals (and clears them).
    ask: OwnedFd,
    /// Its answer: a u64 mask of signal numbers.
    answer: OwnedFd,
}

/// In the child, before exec: wait for the byte that opens the gate (a 1, see [`spawn`]); a
/// 0 is `ECANCELED`; the gate's end without a byte (lineage gone) ends the child. Async-
/// signal-safe: read(2) and _exit(2) only, no allocation.
fn wait_at_gate(fd: RawFd) -> io::Result<()> {
    let mut byte = [0u8; 1];
    loop {
        #[allow(unsafe_code)]
        // SAFETY: read(2) into a one-byte buffer on this stack frame.
        let n = unsafe { nix::libc::read(fd, byte.as_mut_ptr().cast(), 1) };
        match n {
            1 if byte[0] == 1 => return Ok(()),
            // Shut (a 0): lineage says why, once the spawn has failed.
            1 => return Err(io::Error::from_raw_os_error(nix::libc::ECANCELED)),
            // Ended without a word: lineage is gone, and nobody would hear the error.
            #[allow(unsafe_code)]
            // SAFETY: _exit(2) ends this child at once, as async-signal-safe as it gets.
            0 => unsafe { nix::libc::_exit(125) },
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

impl Witness {
    /// None when it cannot be started: every signal a process sent is then forwarded.
    /// `gate`: the job's gate (see [`spawn`]), whose ends the witness closes: a copy of its
    /// write end kept open would keep the job waiting for ever once lineage is gone.
    fn start(gate: Option<(RawFd, RawFd)>) -> Option<Witness> {
        use nix::fcntl::OFlag;
        use nix::sys::signal::{SigSet, SigmaskHow};
        let (ask_r, ask_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ok()?;
        let (answer_r, answer_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ok()?;
        let mut set = SigSet::empty();
        for s in FORWARDED {
            set.add(Signal::try_from(*s).ok()?);
        }
        let parent = nix::unistd::getpid();
        // Blocked across the fork, so the witness never runs a handler of lineage's.
        let old = set.thread_swap_mask(SigmaskHow::SIG_BLOCK).ok()?;
        let (gate_r, gate_w) = gate.unwrap_or((-1, -1));
        let theirs = [ask_w.as_raw_fd(), answer_r.as_raw_fd(), gate_r, gate_w];
        let forked = Self::fork(parent, &set, &ask_r, &answer_w, theirs);
        let _ = old.thread_set_mask();
        let child = forked?;
        Some(Witness {
            pid: child,
            ask: ask_w,
            answer: answer_r,
        })
    }

    /// Fork the witness (in the parent: its pid).
    fn fork(
        parent: Pid,
        set: &nix::sys::signal::SigSet,
        ask: &OwnedFd,
        answer: &OwnedFd,
        theirs: [RawFd; 4],
    ) -> Option<Pid> {
        #[allow(unsafe_code)]
        // SAFETY: between fork and _exit the witness calls only async-signal-safe functions
        // (prctl, getppid, close, read, write, sigtimedwait, unlink, rmdir, _exit) and
        // allocates nothing: another thread of lineage's may have held the allocator's lock
        // at the fork.
        let forked = unsafe { nix::unistd::fork() };
        match forked {
            // It keeps them blocked.
            Ok(nix::unistd::ForkResult::Child) => witness_main(parent, set, ask, answer, theirs),
            Ok(nix::unistd::ForkResult::Parent { child }) => Some(child),
            Err(_) => None,
        }
    }

    /// The signals sent to the group since the last call, as a mask of signal numbers; None
    /// when the witness does not answer within a second (gone, or stopped).
    fn group_signals(&mut self) -> Option<u64> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        nix::unistd::write(&self.ask, &[1]).ok()?;
        let mut fds = [PollFd::new(self.answer.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(1000u16)).ok()? != 1 {
            return None;
        }
        let mut buf = [0u8; 8];
        (nix::unistd::read(&self.answer, &mut buf).ok()? == 8).then(|| u64::from_ne_bytes(buf))
    }
}

impl Drop for Witness {
    /// It is gone, and reaped, on every path out (the job failing to start included).
    fn drop(&mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// A socket and its directory (the in-job API's) that the witness removes once lineage has
/// ended, when no observer's heir will (`--no-observe`, or no seccomp): a lineage killed
/// by SIGKILL cannot. Set before the witness is forked.
static LEFT_SOCKET: std::sync::OnceLock<(std::ffi::CString, std::ffi::CString)> =
    std::sync::OnceLock::new();

/// Let the witness (if one is forked from now on) remove `socket` and then its directory
/// `dir` should lineage end before it does; the witness then outlives lineage by as long as
/// that takes. Only the first call counts.
pub fn leave_socket_to_witness(socket: &std::path::Path, dir: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &std::path::Path| std::ffi::CString::new(p.as_os_str().as_bytes()).ok();
    if let (Some(socket), Some(dir)) = (c(socket), c(dir)) {
        let _ = LEFT_SOCKET.set((socket, dir));
    }
}

/// The witness's whole life, in the forked process: answer each question with the signals
/// pending since the last one, until lineage closes the pipe or dies. Left a socket to
/// remove ([`leave_socket_to_witness`]), it is not killed with lineage but hears its end as
/// the end of the pipe (no other process holds its write end: the witness closes its own
/// copy, the job's is closed at its exec), and removes the socket then; lineage kills it
/// on every other way out, having removed the socket itself.
fn witness_main(
    parent: Pid,
    set: &nix::sys::signal::SigSet,
    ask: &OwnedFd,
    answer: &OwnedFd,
    theirs: [RawFd; 4],
) -> ! {
    use nix::libc;
    let left = LEFT_SOCKET.get();
    #[allow(unsafe_code)]
    // SAFETY: async-signal-safe calls on plain values (see `Witness::start`), and C strings
    // made before the fork.
    let end = || unsafe {
        if let Some((socket, dir)) = left {
            libc::unlink(socket.as_ptr());
            libc::rmdir(dir.as_ptr());
        }
        libc::_exit(0)
    };
    if left.is_none() {
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    }
    #[allow(unsafe_code)]
    // SAFETY: async-signal-safe calls on plain values (see `Witness::start`).
    unsafe {
        for fd in theirs.into_iter().filter(|fd| *fd >= 0) {
            libc::close(fd);
        }
        if nix::unistd::getppid() != parent {
            end();
        }
        // Hold none of lineage's standard streams open: a reader waits for their end.
        for fd in 0..3 {
            libc::close(fd);
        }
        loop {
            let mut byte = [0u8; 1];
            match nix::unistd::read(ask, &mut byte) {
                Ok(1) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                _ => end(),
            }
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let mut mask = 0u64;
            loop {
                let sig = libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &zero);
                if sig <= 0 || sig >= 64 {
                    break;
                }
                mask |= 1 << sig;
            }
            if nix::unistd::write(answer, &mask.to_ne_bytes()).is_err() {
                end();
            }
        }
    }
}

/// Under a file-size limit (`ulimit -f`), a store write past it would kill lineage with
/// SIGXFSZ, and the job with it. Ignored, the write fails with EFBIG instead: a recording
/// problem, reported as a warning while the job's exit code wins.
///
/// First, the signals lineage's parent left ignored are noted, for the job to inherit them
/// ignored ([`spawn`]): `nohup` ignores SIGHUP, a non-interactive shell ignores SIGINT and
/// SIGQUIT in a background job. A parent that ignored SIGCHLD would have lineage's
/// children reaped by the kernel, lineage's wait for the job failing: lineage takes the
/// default back, and the job gets it ignored again. (SIGPIPE is not among them: Rust's
/// runtime ignores it before this runs, and gives every child the default.)
pub fn settle_signals() {
    use nix::sys::signal::SigHandler;
    let mut ignored = 0u64;
    for sig in FORWARDED
        .iter()
        .copied()
        .chain([nix::libc::SIGXFSZ, nix::libc::SIGCHLD])
    {
        #[allow(unsafe_code)]
        // SAFETY: a query: a null new action changes nothing.
        let was = unsafe {
            let mut old: nix::libc::sigaction = std::mem::zeroed();
            (nix::libc::sigaction(sig, std::ptr::null(), &mut old) == 0).then_some(old.sa_sigaction)
        };
        if was == Some(nix::libc::SIG_IGN) {
            ignored |= 1 << sig;
        }
    }
    INHERITED_IGNORED.store(ignored, Ordering::Relaxed);
    #[allow(unsafe_code)]
    // SAFETY: setting a signal to SIG_IGN or SIG_DFL installs no handler code, so nothing
    // can run in signal context.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGXFSZ, SigHandler::SigIgn);
        if ignored & (1 << nix::libc::SIGCHLD) != 0 {
            let _ = nix::sys::signal::signal(Signal::SIGCHLD, SigHandler::SigDfl);
        }
    }
}

/// The signals lineage's parent left ignored, as a mask of signal numbers ([`settle_signals`]).
static INHERITED_IGNORED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn inherited_ignored() -> u64 {
    INHERITED_IGNORED.load(Ordering::Relaxed)
}

/// Signals the kernel sent (a terminal's Ctrl-C goes to the whole foreground process group)
/// and those a process sent to the whole group (`to_group`: what the witness saw; None when
/// there is no witness) already reached the job; only those sent to lineage alone are
/// forwarded.
fn should_forward(cause: &Cause, to_group: Option<u64>, signal: i32) -> bool {
    let sent_to_group =
        to_group.is_some_and(|mask| (0..64).contains(&signal) && mask & (1 << signal) != 0);
    !matches!(cause, Cause::Kernel) && !sent_to_group
}

impl Running {
    /// When the job was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Whether the job has ended (without reaping it: `wait` does).
    pub fn has_ended(&self) -> bool {
        has_exited(Pid::from_raw(self.pid() as i32))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the child; resources cover it and every descendant it waited for.
    pub fn wait(mut self) -> io::Result<Outcome> {
        // wait4, not std's wait: its resources are this job's alone. lineage's own (all its
        // children so far) held the signal witness (a fork of lineage: its memory) and, in a
        // `rerun` chain, every job before this one (a 12 ms step recorded 16 s of CPU).
        let pid = self.child.id() as nix::libc::pid_t;
        let (raw, usage) = loop {
            let mut raw = 0;
            #[allow(unsafe_code)]
            // SAFETY: wait4 writes one int and one rusage, both owned here; zeroed rusage is
            // valid.
            let (r, usage) = unsafe {
                let mut usage: nix::libc::rusage = std::mem::zeroed();
                (nix::libc::wait4(pid, &mut raw, 0, &mut usage), usage)
            };
            if r == pid {
                break (raw, usage);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        let status = <ExitStatus as std::os::unix::process::ExitStatusExt>::from_raw(raw);
        let wall = self.started.elapsed();
        self.reaped.store(true, Ordering::SeqCst);
        // Once the job has ended the witness's answers are no longer asked for (every signal
        // then only stops hashing): it ends now, and is reaped, long dead, when the forwarder
        // ends. Not reaped yet (only the forwarder reaps it), its pid is still its own.
        if let Some(w) = self.witness {
            let _ = kill(w, Signal::SIGKILL);
        }
        let received = match self.received.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        };
        let d = |t: nix::libc::timeval| {
            Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000)
        };
        // Linux reports ru_maxrss in KiB.
        let (user_cpu, system_cpu, max_rss_bytes) = (
            d(usage.ru_utime),
            d(usage.ru_stime),
            (usage.ru_maxrss.max(0) as u64) * 1024,
        );
        Ok(Outcome {
            status,
            received,
            wall,
            user_cpu,
            system_cpu,
            max_rss_bytes,
            _listening: Listening {
                signals: self.signals.clone(),
                thread: self.forwarder.take(),
            },
        })
    }
}

/// Keeps listening for stopping signals after the job has ended, until dropped.
#[derive(Debug)]
struct Listening {
    signals: signal_hook::iterator::Handle,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.signals.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signal_hook::low_level::siginfo::Sent;

    #[test]
    fn terminal_signals_are_not_sent_twice() {
        assert!(!should_forward(&Cause::Kernel, None, SIGINT));
        assert!(should_forward(&Cause::Sent(Sent::User), None, SIGTERM));
        assert!(should_forward(&Cause::Sent(Sent::TKill), Some(0), SIGTERM));
        assert!(should_forward(&Cause::Unknown, None, SIGTERM));
        // The witness saw it: it was sent to the group, the job has it.
        let group = 1u64 << SIGTERM;
        assert!(!should_forward(
            &Cause::Sent(Sent::User),
            Some(group),
            SIGTERM
        ));
        assert!(should_forward(
            &Cause::Sent(Sent::User),
            Some(group),
            SIGUSR1
        ));
    }
}
