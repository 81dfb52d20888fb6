//! The hashing progress bar: on stderr, only when stderr is a terminal, only once hashing has
//! taken longer than a second, and cleared before the job starts, so the job's terminal
//! output is untouched. Hashing reports into its `hash::Hashing`'s progress; a ticker thread
//! draws it.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::hash::Hashing;

/// How long hashing runs before the bar appears (`LINEAGE_PROGRESS_DELAY_MS` overrides).
const DELAY: Duration = Duration::from_secs(1);
const REFRESH: Duration = Duration::from_millis(100);

/// A running progress display; `finish` (or drop) clears it.
pub struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// Start counting from zero, and draw a bar for `what` ("inputs", "outputs") if hashing
/// lasts. Inert when `quiet`, when stderr is not a terminal, or with LINEAGE_PROGRESS=never.
pub fn start(what: &'static str, quiet: bool, hashing: &Hashing) -> Ticker {
    hashing.progress().reset();
    let stop = Arc::new(AtomicBool::new(false));
    let wanted = !quiet
        && std::io::stderr().is_terminal()
        && std::env::var("LINEAGE_PROGRESS").as_deref() != Ok("never");
    let delay = std::env::var("LINEAGE_PROGRESS_DELAY_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(DELAY, Duration::from_millis);
    let handle = wanted
        .then(|| {
            let stop = Arc::clone(&stop);
            let hashing = hashing.clone();
            std::thread::Builder::new()
                .name("lineage-progress".into())
                .spawn(move || tick(what, delay, &stop, &hashing))
                .ok()
        })
        .flatten();
    Ticker { stop, handle }
}

impl Ticker {
    /// Stop and clear the bar (waits until it is cleared).
    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Sleep up to `d`, waking early when stopped; true when stopped.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10).min(until - Instant::now()));
    }
    stop.load(Ordering::Relaxed)
}

fn tick(what: &str, delay: Duration, stop: &AtomicBool, hashing: &Hashing) {
    // A zero delay (tests) draws at least once, however quick the hashing.
    if !delay.is_zero() && sleep_unless_stopped(delay, stop) {
        return;
    }
    let bar = ProgressBar::hidden();
    let style = ProgressStyle::with_template(
        "lineage: hashing {prefix}: {bytes}/{total_bytes}, {msg}, {bytes_per_sec}, ETA {eta} [{wide_bar}]",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    let mut shown = false;
    loop {
        let (done, total, files) = hashing.progress().snapshot();
        bar.set_length(total.max(done));
        bar.set_position(done);
        bar.set_message(format!("{files} files"));
        if !shown {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.tick();
            shown = true;
        }
        if sleep_unless_stopped(REFRESH, stop) {
            break;
        }
    }
    bar.finish_and_clear();
}
