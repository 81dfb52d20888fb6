//! What `lineage run` does while the job runs: the inputs' bytes hashed (at a lower priority
//! while it runs, at full speed once it has ended), each recorded as soon as it is known, and
//! only if it is still the bytes the job started with; then the bookkeeping that need not
//! delay the job (manifests, cache rows, sha256 digests).

use std::os::unix::ffi::OsStrExt;

use super::capture::PreLaunch;
use super::plan::Plan;
use super::record_sha256;
use crate::capture::gpu;
use crate::child::Running;
use crate::hash::{self, Fingerprint, Hashed, LaterError};
use crate::model::{ArtifactKind, DirEntry, Edge, Role};
use crate::ui;
use crate::watch::Watch;

/// Directory inputs that held at least this many files when last recorded, or never recorded
/// yet, are watched with inotify while the job runs instead of being walked again after it
/// (see `watch`); those recorded before are walked only once the job has started.
pub(super) const WATCH_FILES: u64 = 5_000;

/// The edges (inputs first, then configs), and for each input what tells whether it changed
/// during the job.
#[derive(Default)]
pub(super) struct Inputs {
    pub(super) edges: Vec<Edge>,
    pub(super) fingerprints: Vec<Fingerprint>,
    /// inotify watches on each input, set before its stats were taken.
    pub(super) watches: Vec<Watch>,
}

/// An input whose recording goes on once the job has started.
pub(super) enum Pending {
    /// Walked before launch; its bytes are still to hash.
    Bytes(hash::Later),
    /// Watched before launch (every directory in it); to walk and hash.
    Walk,
}

/// What the job's run left for its end: the GPU sampler, and the inputs that changed before
/// lineage could read them.
pub(super) struct During {
    pub(super) sampler: Option<gpu::Sampler>,
    /// The job's processes' resident sets, added up.
    pub(super) rss: super::rss::Sampler,
    pub(super) changed: Vec<usize>,
    /// What the supervisor saw (None: the job ran unobserved), and when the job started by
    /// the clock files are stamped with.
    pub(super) observed: Option<(
        Result<crate::observe::Observed, crate::observe::Unavailable>,
        std::time::SystemTime,
    )>,
    /// When the job started, by the clock files are stamped with (a coarse one, so that a
    /// file written in the same tick counts as written after).
    pub(super) started: std::time::SystemTime,
    /// When the job was launched, and when a thread saw it end (before lineage reaped it:
    /// inputs left to hash are hashed first), so that its wall time and end are the job's.
    pub(super) launched: std::time::Instant,
    pub(super) ended: Option<JobEnd>,
    /// What the job sent through the in-job API (None: it was not offered).
    pub(super) api: Option<crate::api::Inbox>,
}

/// When the job ended, by a monotonic clock and by the wall clock, once a thread saw it.
pub(super) type JobEnd =
    std::sync::Arc<std::sync::OnceLock<(std::time::Instant, std::time::SystemTime)>>;

/// Everything done between the launch and the job's end.
pub(super) fn while_running(
    plan: &Plan,
    id: &str,
    running: &Running,
    pre: &mut PreLaunch,
) -> During {
    let sampler = pre
        .gpus
        .take()
        .map(|gpus| gpu::Sampler::start(gpus, running.pid(), plan.sample_interval));
    let rss = super::rss::Sampler::start(running.pid(), plan.sample_interval);
    crate::timing::mark("spawned");
    let later = std::mem::take(&mut pre.later);
    // What is done while the job runs may outlast it: its end is then seen by a thread of its
    // own, so that its wall time is its own, not that of lineage's bookkeeping.
    let busy = !later.is_empty() || plan.store.has_idle_work() || plan.sha256;
    let ended = busy.then(|| watch_job(running.pid(), &plan.hashing));
    let changed = hash_later(plan, id, later, &mut pre.inputs, &mut pre.capture.notes);
    crate::timing::mark("inputs hashed");
    if let Some(note) = plan.store.staging_note() {
        ui::warn(&note);
        pre.capture.notes.push(note);
    }
    let sizes: Vec<(Vec<u8>, u64)> = plan
        .inputs
        .iter()
        .zip(&pre.inputs.edges)
        .filter_map(|(d, e)| {
            let a = e.artifact.as_ref()?;
            (a.kind == ArtifactKind::Dir)
                .then(|| (d.abs.as_os_str().as_bytes().to_vec(), a.file_count))
        })
        .collect();
    plan.store.note_input_sizes(&sizes);
    // A checkpoint now costs the job nothing while it runs; once it has ended, closing the
    // store does the one checkpoint a run needs.
    plan.store.idle_work(!running.has_ended());
    if plan.sha256 {
        record_sha256(&plan.store, &pre.inputs.edges, &mut pre.capture.notes);
    }
    crate::timing::mark("bookkeeping done while the job runs");
    During {
        sampler,
        rss,
        changed,
        observed: None,
        started: std::time::SystemTime::UNIX_EPOCH,
        launched: running.started(),
        ended,
        api: None,
    }
}

/// Hash the inputs `prepare` left for later, the job running, each recorded in the store as
/// it is done; returns the positions of those that changed before they could be read (they
/// stay without a hash). Files are hashed on a thread of their own (they need nothing from
/// the store), so that writing the directories' manifests and cache rows overlaps with it.
pub(super) fn hash_later(
    plan: &Plan,
    id: &str,
    later: Vec<(usize, Pending)>,
    inputs: &mut Inputs,
    notes: &mut Vec<String>,
) -> Vec<usize> {
    let (store, hashing) = (&plan.store, &plan.hashing);
    let mut changed = Vec::new();
    if later.is_empty() {
        return changed;
    }
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for (i, p) in later {
        match p {
            Pending::Bytes(l) if !l.is_dir() => files.push((i, l)),
            p => dirs.push((i, p)),
        }
    }
    std::thread::scope(|scope| {
        let files = scope.spawn(move || {
            files
                .into_iter()
                .map(|(i, l)| (i, l.file_key(), l.finish(hashing, &mut hash::discard, None)))
                .collect::<Vec<_>>()
        });
        for (i, p) in dirs {
            let result = hash_dir_input(plan, i, p, &inputs.watches[i]);
            if let Ok(h) = &result {
                inputs.fingerprints[i] = h.fingerprint;
            }
            settle(plan, id, i, result, inputs, &mut changed, notes);
        }
        // The directories' cache rows, while the files are still being hashed.
        store.write_learned();
        match files.join() {
            Ok(files) => {
                for (i, key, result) in files {
                    if let (Some(key), Ok(h)) = (key, &result) {
                        hash::StatCache::record(store, &[(key, h.artifact.hash)]);
                    }
                    settle(plan, id, i, result, inputs, &mut changed, notes);
                }
            }
            Err(_) => ui::warn("input files could not be hashed: the hashing thread failed"),
        }
    });
    changed
}

/// Hash a directory input left for later: its bytes, or (watched before launch) its walk
/// and bytes, which stand for the tree the job started with only if the watches saw nothing.
fn hash_dir_input(plan: &Plan, i: usize, p: Pending, watch: &Watch) -> Result<Hashed, LaterError> {
    let (store, hashing) = (&plan.store, &plan.hashing);
    let token = format!("input-{i}");
    let sink = &mut |e: &[DirEntry]| store.stage(&token, e);
    match p {
        Pending::Bytes(l) => l.finish(hashing, sink, Some(store)),
        Pending::Walk => {
            let abs = &plan.inputs[i].abs;
            match hashing.hash_path_while_running(abs, sink, Some(store)) {
                Ok(h) if watch.quiet() => Ok(h),
                Ok(_) => Err(LaterError::Changed(abs.clone())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(LaterError::Changed(abs.clone()))
                }
                Err(e) => Err(LaterError::Io(e)),
            }
        }
    }
}

/// Record input `i`'s hash (its edge in the store and in `inputs`), or say why there is none.
fn settle(
    plan: &Plan,
    id: &str,
    i: usize,
    result: Result<Hashed, LaterError>,
    inputs: &mut Inputs,
    changed: &mut Vec<usize>,
    notes: &mut Vec<String>,
) {
    let d = &plan.inputs[i];
    let token = format!("input-{i}");
    let msg = match result {
        Ok(h) => {
            for w in &h.warnings {
                let msg = format!("input {}: {w}", d.given.display());
                ui::warn(&msg);
                notes.push(msg);
            }
            let edge = d.edge(Role::Input, Some(h.artifact), Some(token.clone()));
            crate::timing::mark("an input hashed");
            // Not in the store yet (`Late`): written with the run, its manifest still staged.
            if plan.late.is_some() {
                inputs.edges[i] = edge;
                return;
            }
            // (Not with the store's room: the job, still running, could fill it.)
            match plan.store.complete_input(id, i, &edge) {
                Ok(()) => {
                    inputs.edges[i] = edge;
                    return;
                }
                Err(e) => format!(
                    "input {}: its hash could not be recorded: {e:#}",
                    d.given.display()
                ),
            }
        }
        Err(LaterError::Changed(path)) => {
            changed.push(i);
            let which = match path.strip_prefix(&d.abs) {
                Ok(rel) if !rel.as_os_str().is_empty() => format!(" ({})", rel.display()),
                _ => String::new(),
            };
            format!(
                "input {}{which} changed after the job started, before lineage had read \
                 it: no hash recorded (--hash-before-launch hashes inputs first)",
                d.given.display(),
            )
        }
        Err(LaterError::Io(e)) => {
            format!("input {} could not be hashed: {e}", d.given.display())
        }
    };
    plan.store.unstage(&token);
    ui::warn(&msg);
    notes.push(msg);
}

/// Mark the job running for the hashing beside it until a thread sees it end (without
/// reaping it: `wait` does that); returns when that thread saw it end.
fn watch_job(pid: u32, hashing: &hash::Hashing) -> JobEnd {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    hashing.set_job_running(true);
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    let ended = hashing.clone();
    let end = JobEnd::default();
    let seen = std::sync::Arc::clone(&end);
    let watcher = std::thread::Builder::new()
        .name("lineage-job-end".into())
        .spawn(move || {
            let gone = loop {
                match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    result => break result.is_ok(),
                }
            };
            if gone {
                let _ = seen.set((std::time::Instant::now(), std::time::SystemTime::now()));
            }
            ended.set_job_running(false);
        });
    if watcher.is_err() {
        hashing.set_job_running(false);
    }
    end
}
