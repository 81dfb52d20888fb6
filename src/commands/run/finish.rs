//! What `lineage run` does once the job has ended (or could not start): its outcome read as
//! a status and an exit code, the outputs hashed, the inputs checked for changes made while
//! it ran, and the record finished. A recording problem here is a loud warning, never a
//! changed exit code.

use std::os::unix::process::ExitStatusExt;

use super::capture::PreLaunch;
use super::inputs::{During, hash_later};
use super::plan::Plan;
use super::{Executed, api, now, observed, record_sha256};
use crate::capture::gpu;
use crate::child::{self, Outcome};
use crate::error::code;
use crate::hash::{self, PathKind};
use crate::model::{Capture, Edge, Resources, Role, Status, stamp};
use crate::store::{Finish, Store};
use crate::ui;

/// How the job ended: its exit code or signal, lineage's exit code, and the run's status.
pub(super) struct Ending {
    exit_code: Option<i32>,
    signal: Option<i32>,
    /// What `lineage run` exits with: the job's code, or 128 + its signal.
    pub(super) exit: u8,
    status: Status,
}

impl Ending {
    pub(super) fn of(outcome: &Outcome) -> Ending {
        let (exit_code, signal) = match outcome.status.code() {
            Some(c) => (Some(c), None),
            None => (None, outcome.status.signal()),
        };
        let exit: u8 = match (exit_code, signal) {
            (Some(c), _) => (c & 0xff) as u8,
            (None, Some(s)) => code::killed_by(s),
            (None, None) => code::FAILURE,
        };
        let killed_by_stop = signal.is_some_and(|s| {
            child::STOPPING.contains(&s) || s == nix::sys::signal::Signal::SIGKILL as i32
        });
        let status = if outcome.received.is_some() || killed_by_stop {
            Status::Interrupted
        } else if exit == 0 {
            Status::Succeeded
        } else {
            Status::Failed
        };
        Ending {
            exit_code,
            signal,
            exit,
            status,
        }
    }

    /// `exit 3`, `killed by signal 9`.
    fn how(&self) -> String {
        match (self.exit_code, self.signal) {
            (_, Some(s)) => format!("killed by signal {s}"),
            (Some(c), None) => format!("exit {c}"),
            _ => String::new(),
        }
    }
}

/// The command could not be started (it vanished or lost its permission after the plan
/// checked it): recorded as failed, with 127 or 126.
pub(super) fn not_started(
    mut plan: Plan,
    id: String,
    mut pre: PreLaunch,
    e: &std::io::Error,
) -> Executed {
    let later = std::mem::take(&mut pre.later);
    let mut capture = pre.capture;
    // The job never ran: the GPUs are read all the same, as for any run.
    if let Some(gpus) = pre.gpus.take() {
        let gpus = gpus.finish();
        capture.system.gpus = gpus.gpus;
        capture.system.gpu_note = gpus.note;
    }
    let changed = hash_later(&plan, &id, later, &mut pre.inputs, &mut capture.notes);
    let (exit, msg) = match e.kind() {
        std::io::ErrorKind::NotFound => (code::NOT_FOUND, "command not found"),
        _ => (code::NOT_EXECUTABLE, "command could not be executed"),
    };
    let program = plan.argv[0].to_string_lossy().into_owned();
    ui::error_line(format_args!("{msg}: {program}: {e}"));
    capture.notes.push(format!("{msg}: {e}"));
    let sealed = plan.policy.seal(capture);
    let begun = super::begin_late(
        &mut plan,
        &id,
        &pre.inputs.edges,
        &pre.params,
        &pre.blobs,
        &sealed,
    );
    let recorded = begun
        && record(
            &mut plan.store,
            &id,
            Finish {
                status: Status::Failed,
                ended_at: &now(),
                exit_code: Some(i32::from(exit)),
                signal: None,
                capture: &sealed,
                resources: &Resources::default(),
                outputs: &[],
                changed_inputs: &changed,
                seen: &[],
                metrics: &[],
                params: None,
                blobs: &[],
                signer: plan.signer.as_ref(),
            },
        );
    Executed {
        id,
        exit,
        status: None,
        outputs: Vec::new(),
        recorded,
    }
}

/// How long the outputs' hashing waits, at most, for the last processes of a job that has
/// ended to go before it says some are still running (an orphan is reaped by init soon after
/// it exits; until then it still counts).
const LEFTOVER_GRACE: std::time::Duration = std::time::Duration::from_millis(50);

/// The job has ended: finish its record and say how it went.
pub(super) fn after(
    mut plan: Plan,
    id: String,
    short: &str,
    pre: PreLaunch,
    mut during: During,
    outcome: std::io::Result<Outcome>,
    before: &[hash::Snapshot],
) -> Executed {
    let gpus = during.sampler.map(gpu::Sampler::finish);
    crate::timing::mark("gpus read");
    let total_rss = during.rss.finish();
    // The job's own end, when a thread saw it before lineage reaped it (inputs left to hash
    // were hashed in between): its wall time and end are the job's, not lineage's.
    let seen_end = during.ended.as_ref().and_then(|e| e.get().copied());
    let ended_at = seen_end.map_or_else(now, |(_, at)| stamp(at));
    let outcome = match outcome {
        Ok(mut o) => {
            if let Some((at, _)) = seen_end {
                o.wall = o.wall.min(at.saturating_duration_since(during.launched));
            }
            o
        }
        Err(e) => {
            ui::error_line(format_args!("lost track of the command: {e}"));
            return Executed::not_launched(id);
        }
    };
    let ending = Ending::of(&outcome);
    let mut capture = pre.capture;
    let gpu_peaks = gpus.and_then(|g| {
        capture.system.gpus = g.gpus;
        capture.system.gpu_note = g.note;
        g.peaks
    });
    let mut outputs = hash_outputs(&plan, &mut capture);
    for ((o, d), before) in outputs.iter_mut().zip(&plan.outputs).zip(before) {
        o.written = Some(match o.artifact {
            Some(_) => hash::written(&d.abs, before),
            None => crate::model::Written::Nothing,
        });
    }
    let mut changed = during.changed;
    // Asked to stop: record what is known now rather than walk the inputs again.
    if !plan.hashing.is_stopped() {
        recheck_inputs(&plan, &pre.inputs, &mut changed, &mut capture);
    }
    // What the job declared itself, through the in-job API.
    let taken = match during.api {
        Some(inbox) if !plan.hashing.is_stopped() => {
            let declared: Vec<std::path::PathBuf> = pre
                .inputs
                .edges
                .iter()
                .map(|e| crate::model::path_of(&e.abs_path))
                .chain(plan.outputs.iter().map(|d| d.abs.clone()))
                .collect();
            api::take(
                &plan,
                inbox,
                during.started,
                &declared,
                pre.params.get(),
                &mut capture,
            )
        }
        _ => api::Taken::default(),
    };
    let leftovers = match &mut during.observed {
        Some((Ok(seen), _)) => seen.leftovers(),
        _ => None,
    };
    let mut found = match during.observed {
        Some((Ok(seen), start)) if !plan.hashing.is_stopped() => {
            let succeeded = ending.status == Status::Succeeded;
            observed::found(
                &plan,
                seen,
                start,
                &pre.inputs.edges,
                &taken.paths,
                succeeded,
                &mut capture,
            )
        }
        Some((Ok(_), _)) => {
            capture
                .notes
                .push("observed I/O not recorded: lineage was asked to stop".to_string());
            observed::Found::default()
        }
        Some((Err(why), _)) => {
            if !plan.quiet {
                ui::info(format_args!(
                    "the job's files were not observed: {why}; only declared paths are recorded"
                ));
            }
            capture.observed = Some(crate::model::ObservedIo {
                off: Some(why.0),
                ..Default::default()
            });
            observed::Found::default()
        }
        None => observed::Found::default(),
    };
    for (o, seen) in outputs.iter_mut().zip(&found.outputs_seen) {
        o.observed = Some(*seen);
    }
    if capture.group.is_some() && found.blind.is_empty() {
        peers_wrote(&mut outputs, &mut capture.notes);
    }
    outputs.extend(std::mem::take(&mut found.edges));
    outputs.extend(taken.edges.iter().cloned());
    // Outputs hashed while a process the job started still runs may not be what it leaves
    // (a writer it did not wait for). Not where lineage is the init of a container: orphans
    // are its children then, and it does not reap them.
    if !outputs.is_empty()
        && std::process::id() != 1
        && leftovers.is_some_and(|l| l.any(LEFTOVER_GRACE))
    {
        let note = "processes the job started were still running after it ended: what they \
                    write after its outputs were hashed is not recorded (a job that waits \
                    for its processes before it exits is recorded whole)";
        ui::warn(note);
        capture.notes.push(note.to_string());
    }
    if let Some(note) = plan.store.staging_note() {
        ui::warn(&note);
        capture.notes.push(note);
    }
    let observed_off = capture.observed.as_ref().is_none_or(|o| o.off.is_some());
    let mut metrics = if plan.hashing.is_stopped() {
        Vec::new()
    } else {
        super::metrics::read(
            &plan.cwd,
            &plan.metrics,
            &plan.metrics_patterns,
            during.started,
            &mut capture.notes,
        )
    };
    for m in &taken.metrics {
        if metrics.iter().any(|f| f.key == m.key) {
            capture.notes.push(format!(
                "metric {} from the job not recorded: a metrics file has it too",
                m.key
            ));
        } else {
            metrics.push(m.clone());
        }
    }
    metrics.sort_by(|a, b| a.key.cmp(&b.key));
    let resources = Resources {
        wall_seconds: outcome.wall.as_secs_f64(),
        user_cpu_seconds: outcome.user_cpu.as_secs_f64(),
        system_cpu_seconds: outcome.system_cpu.as_secs_f64(),
        max_rss_bytes: outcome.max_rss_bytes,
        // Samples can miss the moment: never below the largest process's own peak.
        peak_total_rss_bytes: total_rss.map(|t| t.max(outcome.max_rss_bytes)),
        gpu_peak_memory_bytes: gpu_peaks,
    };
    let sealed = plan.policy.seal(capture);
    crate::timing::mark("capture sealed again");
    let begun = super::begin_late(
        &mut plan,
        &id,
        &pre.inputs.edges,
        &pre.params,
        &pre.blobs,
        &sealed,
    );
    let recorded = begun
        && record(
            &mut plan.store,
            &id,
            Finish {
                status: ending.status,
                ended_at: &ended_at,
                exit_code: ending.exit_code,
                signal: ending.signal,
                capture: &sealed,
                resources: &resources,
                outputs: &outputs,
                changed_inputs: &changed,
                seen: &found.seen,
                metrics: &metrics,
                params: taken.params.as_ref(),
                blobs: &taken.blobs,
                signer: plan.signer.as_ref(),
            },
        );
    if recorded {
        let who = crate::store::Author {
            name: sealed
                .get()
                .owner
                .user
                .clone()
                .unwrap_or_else(|| format!("uid {}", sealed.get().owner.uid)),
            signer: plan.signer.take(),
        };
        taken.annotate(&mut plan.store, &id, &who);
    }
    if plan.sha256 && recorded && !plan.hashing.is_stopped() {
        let mut notes = Vec::new();
        record_sha256(&plan.store, &outputs, &mut notes);
    }
    crate::timing::mark("run finished");
    // Observed inputs went in with the outputs; what follows is about outputs.
    let (observed_inputs, outputs): (Vec<Edge>, Vec<Edge>) =
        outputs.into_iter().partition(|e| e.role == Role::Input);
    if !plan.quiet && recorded {
        let untouched = |o: &crate::model::Edge| o.written == Some(crate::model::Written::Nothing);
        let n = outputs
            .iter()
            .filter(|o| o.artifact.is_some() && !untouched(o))
            .count();
        let left: Vec<&str> = outputs
            .iter()
            .filter(|o| o.artifact.is_some() && untouched(o))
            .map(|o| o.path.as_str())
            .collect();
        let left = match left.as_slice() {
            [] => String::new(),
            paths => format!(
                "; declared but not written (nobody's product): {}",
                paths
                    .iter()
                    .map(|p| ui::escape(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let seen_out = outputs
            .iter()
            .filter(|o| o.observed == Some(crate::model::Seen::Undeclared))
            .count();
        let seen_in = observed_inputs
            .iter()
            .filter(|o| o.observed == Some(crate::model::Seen::Undeclared))
            .count();
        let seen = match (seen_in, seen_out) {
            (0, 0) => String::new(),
            (i, o) => format!(
                " (observed, not declared: {i} input{}, {o} output{})",
                if i == 1 { "" } else { "s" },
                if o == 1 { "" } else { "s" }
            ),
        };
        ui::info(format_args!(
            "run {short} {} ({}) in {}; {n} output{} recorded{seen}{left}",
            ending.status.as_str(),
            ending.how(),
            crate::output::seconds(resources.wall_seconds),
            if n == 1 { "" } else { "s" }
        ));
    }
    let exit = strict(&plan, ending.exit, observed_off, &found);
    if let Some(problem) = plan.store.close_writes() {
        let what = match recorded {
            true => "the run is recorded, but only in the store's WAL",
            false => "what was written to the store waits in its WAL",
        };
        ui::warn(format_args!(
            "{what}: {problem}; once there is room again (a full disk?), the next lineage \
             command that writes copies it"
        ));
    }
    Executed {
        id,
        exit,
        status: Some(ending.status),
        outputs,
        recorded,
    }
}

/// `--strict`: a job that succeeded but read or wrote paths nobody declared, or that could
/// not be observed, makes lineage exit with `UNDECLARED_IO`, once the run is recorded; a
/// failed job keeps its own code.
fn strict(plan: &Plan, exit: u8, unobserved: bool, found: &observed::Found) -> u8 {
    let undeclared = &found.undeclared;
    if !plan.strict || exit != code::SUCCESS {
        return exit;
    }
    if unobserved {
        ui::error_line(
            "strict: the job ran unobserved (see the note above), so nothing proves it read and wrote only what was declared",
        );
        return code::UNDECLARED_IO;
    }
    if !found.blind.is_empty() {
        ui::error_line(format_args!(
            "strict: the job used {}, which observation cannot see through (see the warning above)",
            found.blind.join(" and ")
        ));
        return code::UNDECLARED_IO;
    }
    if undeclared.is_empty() {
        return exit;
    }
    const SHOWN: usize = 10;
    let mut list: Vec<String> = undeclared
        .iter()
        .take(SHOWN)
        .map(|p| ui::escape(p).into_owned())
        .collect();
    if undeclared.len() > SHOWN {
        list.push(format!("and {} more", undeclared.len() - SHOWN));
    }
    ui::error_line(format_args!(
        "strict: the job read or wrote {} path{} nobody declared: {} (declare each with -i, -c or -o, or run without --strict)",
        undeclared.len(),
        if undeclared.len() == 1 { "" } else { "s" },
        list.join(", ")
    ));
    code::UNDECLARED_IO
}

/// A rank of a launch (docs/recording.md, "Distributed jobs") shares its declared outputs with
/// its peers: one that changed while it ran but that it never opened to write was written by
/// another rank (rank 0 saving the model), and is not its product.
fn peers_wrote(outputs: &mut [Edge], notes: &mut Vec<String>) {
    for o in outputs {
        let wrote = matches!(
            o.written,
            Some(crate::model::Written::All | crate::model::Written::Partly(_))
        );
        if o.observed == Some(crate::model::Seen::Untouched) && wrote {
            o.written = Some(crate::model::Written::Nothing);
            notes.push(format!(
                "output {} changed while the job ran, but the job never wrote it: another rank of \
                 the launch did (not this run's product)",
                o.path
            ));
        }
    }
}

/// Hash each declared output (a missing one is recorded without a hash, with a note).
fn hash_outputs(plan: &Plan, capture: &mut Capture) -> Vec<Edge> {
    let mut note = |msg: String| {
        ui::warn(&msg);
        capture.notes.push(msg);
    };
    let mut outputs = Vec::new();
    let ticker = crate::progress::start("outputs", plan.quiet, &plan.hashing);
    for (i, d) in plan.outputs.iter().enumerate() {
        let token = format!("output-{i}");
        if plan.hashing.is_stopped() {
            note(format!(
                "output {} not recorded: lineage was asked to stop, and had no time left to hash it; the record is incomplete",
                d.given.display()
            ));
            outputs.push(d.edge(Role::Output, None, None));
            continue;
        }
        if let Ok(PathKind::Missing) = hash::path_kind(&d.abs) {
            note(format!(
                "output {} does not exist after the run",
                d.given.display()
            ));
            outputs.push(d.edge(Role::Output, None, None));
            continue;
        }
        let sink = &mut |e: &[crate::model::DirEntry]| plan.store.stage(&token, e);
        match plan.hashing.hash_output(&d.abs, sink, Some(&plan.store)) {
            Ok(h) => {
                for w in h.warnings {
                    note(format!("output {}: {w}", d.given.display()));
                }
                outputs.push(d.edge(Role::Output, Some(h.artifact), Some(token.clone())));
            }
            Err(_) if plan.hashing.is_stopped() => {
                note(format!(
                    "output {} not recorded: lineage was asked to stop while hashing it; the record is incomplete",
                    d.given.display()
                ));
                outputs.push(d.edge(Role::Output, None, None));
            }
            Err(e) => {
                note(format!(
                    "output {} could not be hashed: {e}",
                    d.given.display()
                ));
                outputs.push(d.edge(Role::Output, None, None));
            }
        }
    }
    ticker.finish();
    crate::timing::mark("outputs hashed");
    outputs
}

/// Flag the inputs that changed while the job ran (their recorded hash is from before).
fn recheck_inputs(
    plan: &Plan,
    inputs: &super::inputs::Inputs,
    changed: &mut Vec<usize>,
    capture: &mut Capture,
) {
    for (i, ((d, before), watch)) in plan
        .inputs
        .iter()
        .zip(&inputs.fingerprints)
        .zip(&inputs.watches)
        .enumerate()
    {
        // Nothing seen by the watches: unchanged without walking it again.
        if !changed.contains(&i)
            && !watch.quiet()
            && hash::fingerprint(&d.abs).as_ref() != Some(before)
        {
            let msg = format!(
                "input {} changed while the job ran: its recorded hash is from before launch",
                d.given.display()
            );
            // Expected of an input the job is declared to write (`-i ckpt -o ckpt`): kept
            // in the record, not printed.
            if !super::capture::written_by_the_job(plan, d) {
                ui::warn(&msg);
            }
            capture.notes.push(msg);
            changed.push(i);
        }
    }
    crate::timing::mark("inputs rechecked");
}

/// Phase two; a failure is a loud warning, never a changed exit code.
fn record(store: &mut Store, id: &str, fin: Finish) -> bool {
    let dir = store.dir().to_path_buf();
    match crate::store::with_room(&dir, || store.finish_run(id, &fin)) {
        Ok(()) => true,
        Err(e) => {
            ui::warn(format_args!(
                "THE RUN WAS NOT FULLY RECORDED: {e:#}; run {id} stays 'running' in {}",
                store.dir().display()
            ));
            false
        }
    }
}
