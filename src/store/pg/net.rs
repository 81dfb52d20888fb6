//! Every exchange with the server under a deadline.
//!
//! The PostgreSQL client blocks: a server that accepts the connection and never answers (a
//! stopped postmaster, a stuck proxy) would hold lineage forever, after its job has ended.
//! So the network work runs on a thread of its own and the caller waits for it under
//! [`Limits`]: each step (connecting with TLS and the startup exchange, each query, each run
//! delivered) must finish within `step`, and the whole within `total` when there is one (the
//! automatic syncs). A thread given up on is left to the process's exit; it holds nothing of
//! the local store, only its own connection and scratch files, so nothing is half-written.
//!
//! After a job (`Limits::after_job`), SIGINT, SIGTERM, SIGHUP and SIGQUIT end the wait at once
//! and the caller exits with the job's code; outside such a wait they end lineage with
//! 128 + N, as their default would. Other waits leave the signals' dispositions alone.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::Result;

/// How long the network may take.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Each step: connecting (TCP, TLS, startup, the schema check), each query, each run.
    pub step: Duration,
    /// Everything, when bounded (the syncs a command does on its own).
    pub total: Option<Instant>,
    /// Whether stopping signals end the wait (after a job: its signal handlers, which stay,
    /// would swallow them). Otherwise they keep their dispositions (by default, they end
    /// lineage at once).
    pub catch_signals: bool,
}

impl Limits {
    /// Each step within `step`; no bound on the whole (`push`, `pull`: asked for).
    pub fn steps(step: Duration) -> Limits {
        Limits {
            step,
            total: None,
            catch_signals: false,
        }
    }

    /// Everything within `step` from now (the automatic syncs).
    pub fn all(step: Duration) -> Limits {
        Limits {
            step,
            total: Some(Instant::now() + step),
            catch_signals: false,
        }
    }

    /// [`Limits::all`], after a job: a stopping signal ends the wait.
    pub fn after_job(step: Duration) -> Limits {
        Limits {
            catch_signals: true,
            ..Limits::all(step)
        }
    }
}

/// The server did not answer in time, or could not be reached: the run is kept for later.
#[derive(Debug)]
pub struct Offline(pub String);

/// A stopping signal ended the wait (its number).
#[derive(Debug)]
pub struct Interrupted(pub i32);

impl std::fmt::Display for Offline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Offline {}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by signal {}", self.0)
    }
}
impl std::error::Error for Interrupted {}

/// What the worker tells the waiting caller.
enum Msg<T> {
    /// A step is done: the step's clock starts again.
    Tick,
    Done(Result<T>),
}

/// The worker's way to say a step is done.
pub struct Tick<'a>(&'a dyn Fn());

impl Tick<'_> {
    pub fn tick(&self) {
        (self.0)()
    }
}

/// Run `work` on its own thread and wait for it under `limits`. `name` is the team store's
/// printable name, for the message when it does not answer.
pub fn within<T: Send + 'static>(
    name: &str,
    limits: Limits,
    work: impl FnOnce(&Tick) -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = mpsc::channel::<Msg<T>>();
    let ticks = tx.clone();
    std::thread::Builder::new()
        .name("lineage-team-store".into())
        .spawn(move || {
            let tick = move || {
                let _ = ticks.send(Msg::Tick);
            };
            let r = work(&Tick(&tick));
            let _ = tx.send(Msg::Done(r));
        })?;
    let waiting = limits.catch_signals.then(Waiting::start);
    let mut step_end = Instant::now() + limits.step;
    loop {
        let end = limits.total.map_or(step_end, |t| t.min(step_end));
        let now = Instant::now();
        if now >= end {
            return Err(Offline(format!(
                "the team store {name} did not answer in time (each step within {} s: LINEAGE_PG_TIMEOUT)",
                secs(limits.step)
            ))
            .into());
        }
        match rx.recv_timeout((end - now).min(Duration::from_millis(50))) {
            Ok(Msg::Done(r)) => return r,
            Ok(Msg::Tick) => step_end = Instant::now() + limits.step,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if waiting.is_some()
                    && let Some(sig) = Waiting::signal()
                {
                    return Err(Interrupted(sig).into());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the connection to the team store {name} ended abruptly")
            }
        }
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

const STOPPING: [i32; 4] = [
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGQUIT,
];

/// The stopping signals' handlers while lineage waits on the server (installed at the first
/// wait; signal dispositions are the process's): during a wait a signal is noted and ends
/// it; outside one it exits with 128 + N.
struct Handlers {
    /// The last stopping signal during a wait (0: none).
    seen: Arc<AtomicUsize>,
    /// Whether a signal now exits (not waiting).
    exits: Arc<AtomicBool>,
}

fn handlers() -> &'static Option<Handlers> {
    static H: OnceLock<Option<Handlers>> = OnceLock::new();
    H.get_or_init(|| {
        let h = Handlers {
            seen: Arc::new(AtomicUsize::new(0)),
            exits: Arc::new(AtomicBool::new(false)),
        };
        for sig in STOPPING {
            signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&h.exits))
                .ok()?;
            signal_hook::flag::register_usize(sig, Arc::clone(&h.seen), sig as usize).ok()?;
        }
        Some(h)
    })
}

/// A wait in progress: signals are noted, not fatal, until dropped.
struct Waiting;

impl Waiting {
    fn start() -> Waiting {
        if let Some(h) = handlers() {
            h.exits.store(false, Ordering::SeqCst);
            h.seen.store(0, Ordering::SeqCst);
        }
        Waiting
    }

    fn signal() -> Option<i32> {
        let h = handlers().as_ref()?;
        match h.seen.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s as i32),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(h) = handlers() {
            h.exits.store(true, Ordering::SeqCst);
        }
    }
}

/// A PostgreSQL error as lineage's: a server that cannot be reached or drops the connection
/// is [`Offline`] (the run is kept for later); a server that answers "no" (a password, a
/// grant, a missing database, function or table) is a [`super::Setup`] problem for a person
/// to fix, named with the fix.
pub fn classify(name: &str, doing: &str, e: &postgres::Error) -> anyhow::Error {
    let Some(db) = e.as_db_error() else {
        return Offline(format!(
            "cannot reach the team store {name}: {}",
            super::describe(e)
        ))
        .into();
    };
    let code = db.code().code();
    let fix = match code {
        "28P01" | "28000" => {
            Some("check the user and password (~/.pgpass, PGPASSWORD) and the server's pg_hba.conf")
        }
        "3D000" => Some("check the database name in the URL, or ask the admin to create it"),
        "42501" => Some(
            "ask the team store's admin to make your role a member of lineage_writer (to record) \
             or lineage_reader (to read), then to run `lineage team migrate` as its owner",
        ),
        "42883" | "42P01" => Some(
            "the team store's schema is older than this lineage: its owner runs `lineage team \
             migrate`",
        ),
        _ => None,
    };
    match fix {
        Some(fix) => super::Setup(format!(
            "the team store {name} refused {doing}: {}: {fix}",
            db.message()
        ))
        .into(),
        None => anyhow::anyhow!("{doing} on the team store {name}: {}", db.message()),
    }
}

/// A connection the caller holds between steps. Dropping a `postgres::Client` waits for the
/// server to answer its goodbye: never on the caller's thread (a server that stops answering
/// then would hold lineage past its deadline), always on a thread of its own, left to the
/// process's exit.
#[derive(Default)]
pub struct Conn(pub Option<postgres::Client>);

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            let _ = std::thread::Builder::new()
                .name("lineage-team-store-close".into())
                .spawn(move || drop(c));
        }
    }
}
