//! Launching the wrapped command untouched: same stdin/stdout/stderr and terminal, same
//! process group (so job control and Ctrl-C work as without lineage), argv passed raw and
//! never through a shell. SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to
//! lineage by another process are forwarded to the child; the same signals sent by the
//! kernel to the whole foreground process group (Ctrl-C at a terminal) already reached the
//! child, so they are only noted, never delivered twice. If lineage itself is killed, the
//! job receives SIGTERM (PR_SET_PDEATHSIG) and the next lineage command marks the run
//! `interrupted`.

use std::ffi::OsString;
use std::io;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;

const FORWARDED: &[i32] = &[SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// Signals that ask the job to stop: receiving one makes the run `interrupted`.
pub const STOPPING: &[i32] = &[SIGINT, SIGTERM, SIGHUP, SIGQUIT];

pub struct Running {
    child: Child,
    started: Instant,
    received: Arc<AtomicI32>,
    signals: signal_hook::iterator::Handle,
    forwarder: Option<JoinHandle<()>>,
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
}

/// Start the command in `cwd`, with `env` (None: lineage's own environment) plus `extra_env`.
pub fn spawn(
    argv: &[OsString],
    cwd: &std::path::Path,
    env: Option<&[(OsString, OsString)]>,
    extra_env: &[(&str, &str)],
) -> io::Result<Running> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    // Handlers first, so a signal arriving during the spawn is queued, not fatal.
    let mut signals = SignalsInfo::<WithOrigin>::new(FORWARDED)?;
    let mut command = Command::new(program);
    command.args(args).current_dir(cwd);
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
            // lineage ignores SIGXFSZ (see `ignore_file_size_signal`); ignored signals stay
            // ignored across exec, so give the job the default back.
            nix::sys::signal::signal(Signal::SIGXFSZ, nix::sys::signal::SigHandler::SigDfl)?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            // lineage may have died before prctl took effect: no such process to record it.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let started = Instant::now();
    let child = command.spawn()?;
    let pid = Pid::from_raw(child.id() as i32);
    let received = Arc::new(AtomicI32::new(0));
    let handle = signals.handle();
    let forwarder = {
        let received = received.clone();
        std::thread::Builder::new()
            .name("lineage-signals".into())
            .spawn(move || {
                for origin in signals.forever() {
                    if STOPPING.contains(&origin.signal) {
                        received.store(origin.signal, Ordering::SeqCst);
                    }
                    if !should_forward(&origin.cause) {
                        continue;
                    }
                    if let Ok(sig) = Signal::try_from(origin.signal) {
                        let _ = kill(pid, sig);
                    }
                }
            })?
    };
    Ok(Running {
        child,
        started,
        received,
        signals: handle,
        forwarder: Some(forwarder),
    })
}

/// Under a file-size limit (`ulimit -f`), a store write past it would kill lineage with
/// SIGXFSZ, and the job with it. Ignored, the write fails with EFBIG instead: a recording
/// problem, reported as a warning while the job's exit code wins.
pub fn ignore_file_size_signal() {
    #[allow(unsafe_code)]
    // SAFETY: setting a signal to SIG_IGN installs no handler code, so nothing can run in
    // signal context.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGXFSZ, nix::sys::signal::SigHandler::SigIgn);
    }
}

/// Signals the kernel sent (a terminal's Ctrl-C goes to the whole foreground process group)
/// already reached the job; only those sent to lineage alone by a process are forwarded.
fn should_forward(cause: &Cause) -> bool {
    !matches!(cause, Cause::Kernel)
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the child; resources cover it and every descendant it waited for.
    pub fn wait(mut self) -> io::Result<Outcome> {
        let status = loop {
            match self.child.wait() {
                Ok(s) => break s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        let wall = self.started.elapsed();
        self.signals.close();
        if let Some(f) = self.forwarder.take() {
            let _ = f.join();
        }
        let received = match self.received.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        };
        let (user_cpu, system_cpu, max_rss_bytes) = match getrusage(UsageWho::RUSAGE_CHILDREN) {
            Ok(u) => {
                let d = |t: nix::sys::time::TimeVal| {
                    Duration::new(t.tv_sec().max(0) as u64, (t.tv_usec().max(0) as u32) * 1000)
                };
                // Linux reports ru_maxrss in KiB.
                (
                    d(u.user_time()),
                    d(u.system_time()),
                    (u.max_rss().max(0) as u64) * 1024,
                )
            }
            Err(_) => Default::default(),
        };
        Ok(Outcome {
            status,
            received,
            wall,
            user_cpu,
            system_cpu,
            max_rss_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signal_hook::low_level::siginfo::Sent;

    #[test]
    fn terminal_signals_are_not_sent_twice() {
        assert!(!should_forward(&Cause::Kernel));
        assert!(should_forward(&Cause::Sent(Sent::User)));
        assert!(should_forward(&Cause::Sent(Sent::TKill)));
        assert!(should_forward(&Cause::Unknown));
    }
}
