//! Phase timings for diagnosing overhead: with `LINEAGE_TIMINGS=1` in the environment, each
//! phase of a run prints one line on stderr, `lineage: timing: PHASE at T ms`, measured from
//! process start. Off (one relaxed atomic load per mark) otherwise. `lineage run` ends with
//! `lineage: timing: peak resident memory N KiB`, lineage's own (not the job's).

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Option<Instant>> = OnceLock::new();

/// Call first thing in `main`.
pub fn init() {
    START.get_or_init(|| std::env::var_os("LINEAGE_TIMINGS").map(|_| Instant::now()));
}

/// Report that `phase` just ended.
pub fn mark(phase: &str) {
    if let Some(Some(start)) = START.get() {
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        // A diagnostic: a stderr that cannot be written is no reason to fail.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "lineage: timing: {phase} at {ms:.2} ms");
    }
}

/// Report lineage's own peak resident memory so far (the job's is not counted), in KiB:
/// the kernel's high-water mark of this program's memory (`VmHWM`), not `getrusage`'s
/// `ru_maxrss`, which keeps the peak of the process before its `exec` (a large parent's,
/// copied by its fork).
pub fn peak_memory() {
    if let Some(Some(_)) = START.get() {
        use std::io::Write;
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(kib) = kib {
            let _ = writeln!(
                std::io::stderr(),
                "lineage: timing: peak resident memory {kib} KiB"
            );
        }
    }
}
