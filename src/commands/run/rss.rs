//! The memory a job holds with all its processes together (`Resources::peak_total_rss_bytes`):
//! every sample interval, the resident sets of the job's process and its descendants, read
//! from /proc, added up; the peak of that sum is kept. getrusage's `max_rss_bytes` is the
//! peak of the largest single process: a launcher and its workers (torchrun and N ranks) held
//! more. Pages two processes share count in both, as `ps` and `top` count them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Samples the job's total resident set until told to stop.
pub(super) struct Sampler {
    /// Dropped to stop the sampler: it wakes at once, not at its next sample.
    stop: Option<mpsc::Sender<()>>,
    peak: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Sample the processes descended from `child` (itself included) every `interval`, the
    /// first time one interval from now.
    pub(super) fn start(child: u32, interval: Duration) -> Sampler {
        let (stop, stopped) = mpsc::channel::<()>();
        let peak = Arc::new(AtomicU64::new(0));
        let handle = {
            let peak = peak.clone();
            std::thread::Builder::new()
                .name("lineage-rss-sampler".into())
                .spawn(move || {
                    let page = page_size();
                    // Not at launch: the job has only just been exec'd, and a short job would
                    // wait at its end for a walk of its family that tells nothing.
                    while matches!(
                        stopped.recv_timeout(interval),
                        Err(mpsc::RecvTimeoutError::Timeout)
                    ) {
                        peak.fetch_max(total_pages(child) * page, Ordering::Relaxed);
                    }
                })
                .ok()
        };
        Sampler {
            stop: Some(stop),
            peak,
            handle,
        }
    }

    /// The peak total seen, in bytes; None when the sampler could not be started.
    pub(super) fn finish(mut self) -> Option<u64> {
        drop(self.stop.take());
        let handle = self.handle.take()?;
        handle.join().ok()?;
        Some(self.peak.load(Ordering::Relaxed))
    }
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096)
}

/// The resident pages of `root` and every process descended from it, now.
fn total_pages(root: u32) -> u64 {
    crate::capture::gpu::family(root)
        .into_iter()
        .map(resident_pages)
        .sum()
}

/// Field 2 of /proc/PID/statm (resident pages: VmRSS); 0 for a process gone.
fn resident_pages(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two children that each hold 40 MB count together, above either one.
    #[test]
    fn the_total_adds_up_the_processes_of_the_job() {
        let script = "import sys,time; b = bytearray(40 << 20); b[::4096] = b'x' * len(b[::4096]); \
                      sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(30)";
        let Ok(mut parent) = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("python3 -c \"{script}\" & python3 -c \"{script}\" & wait"),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
        else {
            return; // no sh: nothing to measure
        };
        let mut out = std::io::BufReader::new(parent.stdout.take().expect("stdout"));
        let mut line = String::new();
        let mut ready = 0;
        while ready < 2 {
            line.clear();
            if std::io::BufRead::read_line(&mut out, &mut line).unwrap_or(0) == 0 {
                break;
            }
            ready += usize::from(line.trim() == "ready");
        }
        let total = total_pages(parent.id()) * page_size();
        let members = crate::capture::gpu::family(parent.id());
        for pid in &members {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = parent.wait();
        if ready < 2 {
            return; // no python3 here
        }
        assert_eq!(members.len(), 3, "sh and its two pythons: {members:?}");
        assert!(total > 80 << 20, "two 40 MB processes hold {total} bytes");
    }
}
