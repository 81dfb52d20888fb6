//! `lineage run`: a pipeline of named steps, each in its own module.
//!
//! 1. `plan`: resolve the arguments into a plan (paths checked, command found, store open);
//! 2. `capture`: capture everything before launch, in parallel;
//! 3. [`begin`]: write the run as `running`, its argv redacted;
//! 4. launch the command untouched (`child`);
//! 5. `inputs`: while it runs, hash the inputs' bytes and do the bookkeeping;
//! 6. `finish`: once it has ended, hash the outputs and finish the record.
//!
//! Exit status: the child's; lineage's own codes only before launch (docs/exit-codes.md).

mod api;
mod capture;
mod finish;
mod inputs;
mod metrics;
mod observed;
mod plan;
mod rss;
mod told;

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

use anyhow::Result;

pub use plan::{Plan, Spec, plan};

use super::Context;
use crate::child;
use crate::cli::RunArgs;
use crate::error::code;
use crate::export::digests;
use crate::model::{ArtifactRef, Edge, Status};
use crate::store::{NewRun, Store};
use crate::ui;
use capture::PreLaunch;

/// What happened, for callers that go on after the child (rerun).
pub struct Executed {
    pub id: String,
    pub exit: u8,
    /// None when the command could not be started.
    pub status: Option<Status>,
    pub outputs: Vec<Edge>,
    /// Whether the run is in the store, finished (a store without room may have kept it
    /// out: the job ran all the same).
    pub recorded: bool,
}

/// `lineage run`: the job's exit code, or the error that kept it from starting.
pub fn run(args: RunArgs, ctx: &Context) -> Result<u8> {
    let spec = plan::resolve(args)?;
    let store = match ctx.open_store() {
        Ok(store) => store,
        Err(e) => {
            let e = anyhow::Error::from(e);
            if spec.strict || ctx.settings.strict || !crate::error::is_store_unwritable(&e) {
                return Err(e);
            }
            return Ok(unrecorded(&spec, &e));
        }
    };
    crate::timing::mark("store opened");
    let plan = plan::plan(spec, store, &ctx.settings)?;
    Ok(execute(plan).exit)
}

impl Executed {
    /// The job never started: lineage's own error stopped it (said already).
    pub(super) fn not_launched(id: String) -> Executed {
        Executed {
            id,
            exit: code::CANNOT_LAUNCH,
            status: None,
            outputs: Vec::new(),
            recorded: false,
        }
    }
}

/// The job, run without a record: the store cannot be opened for want of room or a writable
/// disk (see [`begin`]). Its exit code is lineage's, as always.
fn unrecorded(spec: &plan::Spec, e: &anyhow::Error) -> u8 {
    ui::warn(format_args!(
        "THE RUN IS NOT RECORDED: {e:#}; the job runs all the same (free space where the \
         store is, or set LINEAGE_STORE; --strict refuses to run a job it cannot record)"
    ));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A team store's password stays with lineage here too.
    let stores = crate::location::store_vars_without_password(spec.env.as_deref());
    let extra_env: Vec<(&str, &str)> = stores.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let spawned = child::spawn(
        &spec.argv,
        None,
        &spec.cwd,
        spec.env.as_deref(),
        &extra_env,
        stop,
        child::BeforeExec::default(),
    );
    let outcome = spawned.and_then(child::Running::wait);
    match outcome {
        Ok(o) => {
            // Said again at the end, where a long job's log is read.
            ui::warn(format_args!(
                "THE RUN WAS NOT RECORDED: the store could not be opened ({})",
                e.root_cause()
            ));
            finish::Ending::of(&o).exit
        }
        Err(e) => {
            let program = spec.argv[0].to_string_lossy();
            let (exit, msg) = match e.kind() {
                std::io::ErrorKind::NotFound => (code::NOT_FOUND, "command not found"),
                _ => (code::NOT_EXECUTABLE, "command could not be executed"),
            };
            ui::error_line(format_args!("{msg}: {program}: {e}"));
            exit
        }
    }
}

/// Run a plan: capture, record, launch, wait, finish.
pub fn execute(mut plan: Plan) -> Executed {
    crate::timing::mark("planned");
    // The in-job API's socket (docs/python.md), made while the capture runs.
    let opening = std::thread::Builder::new()
        .name("lineage-api-open".into())
        .spawn(crate::api::Channel::open);
    let mut pre = capture::before_launch(&plan);
    crate::timing::mark("captured");
    for note in &pre.warnings {
        ui::warn(note);
    }
    for note in &pre.said {
        ui::info(note);
    }
    let id = uuid::Uuid::now_v7().to_string();
    // Told only when not quiet (a query over the runs, before launch). The run is not in the
    // store yet: its short id is the shortest that no other run shares, as it will be.
    let short = match plan.quiet {
        true => String::new(),
        false => plan.store.short_id(&id).unwrap_or_else(|_| id.clone()),
    };
    // The job is forked while the run is written, and execs once it is (`child::spawn`'s
    // gate): the commit (its syncs) and the fork, the signal witness and the observer's
    // start happen together, and the job still never runs before its record exists. With
    // `--strict`, or without a pipe for the gate, the run is written first, then the job
    // forked.
    let gate = match plan.strict {
        true => None,
        false => nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok(),
    };
    if gate.is_none() {
        let begun = begin(
            &mut plan.store,
            &plan.policy,
            &plan.argv,
            &plan.cwd,
            plan.rerun_of.as_deref(),
            &id,
            pre.to_begin(),
        );
        let refused = tell(&begun, plan.strict, plan.quiet, &short);
        if let Err(e) = settle_begun(&mut plan, &mut pre, begun, refused) {
            ui::error(&e, Some(plan.store.dir()));
            return Executed::not_launched(id);
        }
        crate::timing::mark("run begun");
    }
    let (gate_r, gate_w) = gate.unzip();
    let (quiet, strict) = (plan.quiet, plan.strict);
    // What writing the run takes, for the thread that writes it (or this one, should no
    // thread start); taken once. The gate's write end stays here, open, until the job is
    // forked: the child and the witness close their copies of it by its number.
    let writes = std::sync::Mutex::new(gate_w.is_some().then(|| (&mut plan.store, pre.to_begin())));
    let (policy, argv, cwd) = (&plan.policy, &plan.argv, &plan.cwd);
    let (rerun_of, id_ref, short_ref, writes_ref, gate_ref) =
        (plan.rerun_of.as_deref(), &id, &short, &writes, &gate_w);
    let (spawned, begun) = std::thread::scope(|s| {
        let (id, short, writes) = (id_ref, short_ref, writes_ref);
        let write = move || {
            let (store, captured) = writes.lock().ok()?.take()?;
            let gate = Gate(gate_ref.as_ref()?, false);
            let begun = begin(store, policy, argv, cwd, rerun_of, id, captured);
            gate.open(!tell(&begun, strict, quiet, short));
            Some(begun)
        };
        let (writing, written_here) = match std::thread::Builder::new()
            .name("lineage-begin".into())
            .spawn_scoped(s, write)
        {
            Ok(t) => (Some(t), None),
            // No thread: written here, before the job is forked.
            Err(_) => (None, write()),
        };
        // What is at each output now: afterwards, what the job wrote is told from it.
        let before: Vec<_> = plan
            .outputs
            .iter()
            .map(|d| crate::hash::snapshot(&d.abs))
            .collect();
        // A team store's password stays with lineage: the job gets the URL without it.
        let stores = crate::location::store_vars_without_password(plan.env.as_deref());
        let mut extra_env = vec![("LINEAGE_RUN_ID", id.as_str())];
        extra_env.extend(stores.iter().map(|(k, v)| (*k, v.as_str())));
        // The in-job API's channel: its socket's path for the job.
        let opened = match opening {
            Ok(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("its thread panicked"))),
            Err(e) => Err(e),
        };
        let mut notes = Vec::new();
        let channel = match opened {
            Ok(c) => Some(c),
            Err(e) => {
                notes.push(format!(
                    "the in-job API was not offered to the job: no socket for it ({e})"
                ));
                None
            }
        };
        let api_path = channel
            .as_ref()
            .map(|c| c.path().to_string_lossy().into_owned());
        if let Some(p) = &api_path {
            extra_env.push((crate::api::ENV, p.as_str()));
        }
        // Removed by the observer's heir should lineage be killed (SIGKILL) before it can.
        if let Some(c) = &channel
            && let Some(dir) = c.path().parent()
        {
            crate::observe::leave_socket_to_heir(c.path(), dir);
        }
        crate::timing::mark("in-job API listening");
        let stop = plan.hashing.stop_flag();
        let (observer, hook, off) = observe(plan.observe, plan.quiet);
        // Without an observer there is no heir: the signal witness removes them instead.
        if observer.is_none()
            && let Some(c) = &channel
            && let Some(dir) = c.path().parent()
        {
            child::leave_socket_to_witness(c.path(), dir);
        }
        crate::timing::mark("observer started");
        let start = crate::observe::coarse_now();
        let spawned = child::spawn(
            &plan.argv,
            plan.program.as_deref(),
            &plan.cwd,
            plan.env.as_deref(),
            &extra_env,
            stop,
            child::BeforeExec {
                observe: hook,
                gate: gate_r
                    .as_ref()
                    .zip(gate_w.as_ref())
                    .map(|(r, w)| (r.as_raw_fd(), w.as_raw_fd())),
                stdout: match plan.stdout_to_stderr {
                    true => ui::stderr_for_job().ok(),
                    false => None,
                },
            },
        );
        drop(gate_r);
        crate::timing::mark("job started");
        let begun = match writing {
            Some(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            None => written_here,
        };
        (
            (spawned, before, channel, observer, off, start, notes),
            begun,
        )
    });
    drop(writes);
    drop(gate_w);
    if let Some(begun) = begun {
        // Told already, by the thread that wrote it.
        let refused = refuses(&begun, strict);
        if let Err(e) = settle_begun(&mut plan, &mut pre, begun, refused) {
            ui::error(&e, Some(plan.store.dir()));
            return Executed::not_launched(id);
        }
        crate::timing::mark("run begun");
    }
    let (spawned, before, channel, observer, off, start, notes) = spawned;
    pre.capture.notes.extend(notes);
    if let Some(why) = off {
        pre.capture.observed = Some(crate::model::ObservedIo {
            off: Some(why),
            ..Default::default()
        });
    }
    let running = match spawned {
        Ok(r) => r,
        Err(e) => {
            drop(channel);
            return finish::not_started(plan, id, pre, &e);
        }
    };
    let mut during = inputs::while_running(&plan, &id, &running, &mut pre);
    let outcome = running.wait();
    crate::timing::mark("job ended");
    during.api = channel.map(crate::api::Channel::close);
    crate::timing::mark("in-job API closed");
    during.observed = observer.map(|o| (o.finish(), start));
    during.started = start;
    let ended = finish::after(plan, id, &short, pre, during, outcome, &before);
    crate::timing::peak_memory();
    ended
}

/// The supervisor that observes the job's file calls, when the plan asks for it and the
/// kernel offers it; else why not (said once unless quiet, kept with the run): the job runs
/// unobserved, as with `--no-observe`.
fn observe(
    wanted: bool,
    quiet: bool,
) -> (
    Option<crate::observe::Observer>,
    Option<crate::observe::Hook>,
    Option<String>,
) {
    if !wanted {
        return (None, None, None);
    }
    match crate::observe::Observer::start() {
        Ok((observer, hook)) => (Some(observer), Some(hook), None),
        Err(why) => {
            if !quiet {
                ui::info(format_args!(
                    "the job's files are not observed: {}; only declared paths are recorded",
                    why.0
                ));
            }
            (None, None, Some(why.0))
        }
    }
}

/// Phase one: the run as `running`, before launch (`--strict`) or while the job starts.
/// The job gets its real arguments; the store gets them with secrets redacted. A store that
/// cannot be written now (a full disk or quota, a read-only or failing disk) does not stop
/// the job: it runs, and the run is recorded whole when it ends if the store can take it
/// then ([`Late`]); `--strict` refuses instead ([`settle_begun`]).
fn begin(
    store: &mut Store,
    policy: &crate::redact::Policy,
    argv: &[std::ffi::OsString],
    cwd: &std::path::Path,
    rerun_of: Option<&str>,
    id: &str,
    (mut capture, pre): (crate::model::Capture, Recorded),
) -> Begun {
    let raw_argv: Vec<Vec<u8>> = argv.iter().map(|a| a.as_bytes().to_vec()).collect();
    let redacted = policy.redact_argv(&raw_argv);
    capture.argv_redacted = redacted.fingerprints.clone();
    let capture = policy.seal(capture);
    crate::timing::mark("capture sealed");
    let started_at = now();
    let run = NewRun {
        id,
        argv: &redacted.argv,
        cwd: cwd.as_os_str().as_bytes(),
        started_at: &started_at,
        pid: std::process::id(),
        rerun_of,
        capture: &capture,
        edges: pre.edges,
        params: pre.params,
        blobs: pre.blobs,
    };
    // Not with the store's room: given back now, the job could fill it; it is kept for
    // writing the run once the job has ended (`begin_late`, `finish::record`).
    let written = store.begin_run(&run).map_err(|e| {
        e.context(format!(
            "could not record the run in {} before launch",
            store.dir().display()
        ))
    });
    Begun {
        written,
        fingerprints: redacted.fingerprints,
        late: Late {
            argv: redacted.argv,
            started_at,
        },
    }
}

/// The job's gate, as the thread writing the run holds it: opened (a 1) when the job may
/// run, shut (a 0) when it must not, and shut should the thread end without a word (a
/// panic), so that the job never waits for ever (`child::spawn`).
struct Gate<'a>(&'a std::os::fd::OwnedFd, bool);

impl Gate<'_> {
    fn open(mut self, run: bool) {
        let _ = nix::unistd::write(self.0, &[u8::from(run)]);
        self.1 = true;
    }
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        if !self.1 {
            let _ = nix::unistd::write(self.0, &[0]);
        }
    }
}

/// What [`begin`] records of what was captured before launch.
struct Recorded<'a> {
    edges: &'a [Edge],
    params: &'a crate::redact::Redacted<Vec<crate::model::Param>>,
    blobs: &'a [crate::redact::Redacted<crate::redact::Blob>],
}

impl PreLaunch {
    /// The capture as it is now, and what [`begin`] records beside it.
    fn to_begin(&self) -> (crate::model::Capture, Recorded<'_>) {
        let recorded = Recorded {
            edges: &self.inputs.edges,
            params: &self.params,
            blobs: &self.blobs,
        };
        (self.capture.clone(), recorded)
    }
}

/// What [`begin`] did: the run written or why not, and what writing it later needs.
struct Begun {
    written: Result<()>,
    fingerprints: BTreeMap<usize, String>,
    late: Late,
}

/// Whether what [`begin`] did keeps the job from running: `strict`, or a failure other than
/// a store without room or a writable disk.
fn refuses(begun: &Begun, strict: bool) -> bool {
    matches!(&begun.written, Err(e) if strict || !crate::error::is_store_unwritable(e))
}

/// Say what [`begin`] did, before the job runs: `run ID recording`, or, where the store
/// could not take the run but the job runs all the same (it is written once the job has
/// ended), a warning and that. True when the job must not run: `strict`, or a failure
/// other than a store without room or a writable disk (another user's lock held past the
/// busy timeout, locks that do not work), which the caller reports as the error it is.
fn tell(begun: &Begun, strict: bool, quiet: bool, short: &str) -> bool {
    match &begun.written {
        Ok(()) => {
            if !quiet {
                ui::info(format_args!("run {short} recording"));
            }
            false
        }
        Err(_) if refuses(begun, strict) => true,
        Err(e) => {
            ui::warn(format_args!(
                "{e:#}; the job runs all the same, and is recorded when it ends if the store \
                 has room by then (free space where the store is, or set LINEAGE_STORE; \
                 --strict refuses to run a job it cannot record)"
            ));
            if !quiet {
                ui::info(format_args!(
                    "run {short} is recorded once the job has ended, if the store has room then"
                ));
            }
            false
        }
    }
}

/// Take what [`begin`] did into the plan (said already: [`tell`]): the error when the job
/// was `refused`; otherwise a run the store could not take is written once the job has
/// ended, and its record says so.
fn settle_begun(plan: &mut Plan, pre: &mut PreLaunch, begun: Begun, refused: bool) -> Result<()> {
    pre.capture.argv_redacted = begun.fingerprints;
    let Err(e) = begun.written else {
        return Ok(());
    };
    if refused {
        return Err(e);
    }
    pre.capture.notes.push(format!(
        "the store could not take the run before launch ({}): it was written after the job \
         ended, and nothing was recorded while it ran",
        e.root_cause()
    ));
    plan.late = Some(begun.late);
    Ok(())
}

/// A run the store could not take before launch: written, begun and finished, after the job.
pub(super) struct Late {
    argv: crate::redact::Redacted<Vec<Vec<u8>>>,
    started_at: String,
}

/// Write the run begun late (see [`begin`]) with what is known once the job has ended: true
/// when there was nothing to write or it was written. Else a loud warning: the job ran
/// unrecorded.
pub(super) fn begin_late(
    plan: &mut Plan,
    id: &str,
    pre_inputs: &[crate::model::Edge],
    params: &crate::redact::Redacted<Vec<crate::model::Param>>,
    blobs: &[crate::redact::Redacted<crate::redact::Blob>],
    capture: &crate::redact::Redacted<crate::model::Capture>,
) -> bool {
    let Some(late) = plan.late.take() else {
        return true;
    };
    let run = NewRun {
        id,
        argv: &late.argv,
        cwd: plan.cwd.as_os_str().as_bytes(),
        started_at: &late.started_at,
        pid: std::process::id(),
        rerun_of: plan.rerun_of.as_deref(),
        capture,
        edges: pre_inputs,
        params,
        blobs,
    };
    let dir = plan.store.dir().to_path_buf();
    let begun = crate::store::with_room(&dir, || plan.store.begin_run(&run));
    match begun {
        Ok(()) => true,
        Err(e) => {
            ui::warn(format_args!(
                "THE RUN WAS NOT RECORDED: the store in {} could not take it before the job \
                 nor after it: {e:#}",
                plan.store.dir().display()
            ));
            false
        }
    }
}

/// Now, as the store writes times.
fn now() -> String {
    crate::model::stamp(std::time::SystemTime::now())
}

/// `--sha256`: remember each artifact's SHA-256 (a directory's dirHash) beside its BLAKE3,
/// read from the bytes again and checked against the BLAKE3 just recorded. A failure is a
/// warning: the run is recorded either way.
fn record_sha256(store: &Store, edges: &[Edge], notes: &mut Vec<String>) {
    for e in edges {
        let Some(a) = &e.artifact else { continue };
        let artifact = ArtifactRef {
            hash: a.hash,
            kind: a.kind,
            size: a.size,
            file_count: a.file_count,
        };
        if digests::known(store, &artifact).is_some() {
            continue;
        }
        let got = digests::compute(store, &artifact, &crate::model::path_of(&e.abs_path));
        let saved = got.map_err(|why| why.to_string()).and_then(|d| {
            store
                .put_extra_digest(&a.hash, digests::algorithm(a.kind), &d)
                .map_err(|e| e.to_string())
        });
        if let Err(why) = saved {
            let msg = format!("no sha256 recorded for {}: {why}", e.path);
            ui::warn(&msg);
            notes.push(msg);
        }
    }
}
