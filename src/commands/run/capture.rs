//! Everything `lineage run` captures before launch, in parallel where it can be: git, the
//! system, the Python environment and the redacted environment on threads of their own
//! while this thread walks the inputs; then the configs (hashed as they are, parsed into
//! params) and the command line's params. Everything bound for the store goes through the
//! redaction engine here or in `begin`: the params and every blob (configs, untracked files,
//! the patch, the package list) become `Redacted` values, the only kind the store accepts.
//! Best effort: what cannot be captured becomes a note, never a failed job.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::inputs::{Inputs, Pending, WATCH_FILES};
use super::plan::{Declared, Plan};
use crate::capture::{argv_params, config, context, git, gpu, software, system};
use crate::hash::{self, Fingerprint, Prepared};
use crate::model::{
    Artifact, ArtifactKind, Capture, DirEntry, Edge, FileRef, Hash, Param, Role, Software,
    SystemInfo,
};
use crate::redact::{Blob, Redacted, RedactedEnv, What};
use crate::watch::Watch;

/// Everything captured before launch.
pub(super) struct PreLaunch {
    pub(super) capture: Capture,
    /// The input edges then the config edges, and what tells whether each input changed.
    pub(super) inputs: Inputs,
    /// Inputs walked before launch whose bytes are hashed while the job runs, by position.
    pub(super) later: Vec<(usize, Pending)>,
    pub(super) params: Redacted<Vec<Param>>,
    pub(super) blobs: Vec<Redacted<Blob>>,
    /// NVML listing the GPUs, on its own thread: taken by the sampler once the job runs.
    pub(super) gpus: Option<gpu::Pending>,
    /// The notes to print as warnings before launch (all are in the record).
    pub(super) warnings: Vec<String>,
    /// Notes to print as status lines before launch: not problems, said once (`told`).
    pub(super) said: Vec<String>,
}

/// A running run's GPU note: they are read while the job runs and recorded when it ends.
const GPUS_PENDING: &str = "read while the job runs, recorded when it ends";

/// What the threads beside the input walk captured.
struct Context {
    git: git::GitCapture,
    system: SystemInfo,
    /// The interpreter and its package list (the blob holding it).
    python: Option<(crate::model::Python, Option<Blob>)>,
    /// None: redaction failed, and no environment is recorded.
    env: Option<RedactedEnv>,
}

/// An input as walked before launch: hashed, left for later (`Prepared::Later`), not walked
/// yet (None: watched, walked once the job has started), or unreadable; and its watch.
type Walked = (Option<io::Result<Prepared>>, Watch);

pub(super) fn before_launch(plan: &Plan) -> PreLaunch {
    plan.store.discard_staged();
    let env_get = |k: &str| std::env::var(k).ok();
    let gpus = gpu::start(env_get("CUDA_VISIBLE_DEVICES"));
    let (context, walked) = std::thread::scope(|s| {
        let context = spawn_context(s, plan);
        let ticker = crate::progress::start("inputs", plan.quiet, &plan.hashing);
        let walked: Vec<Walked> = plan
            .inputs
            .iter()
            .enumerate()
            .map(|(i, d)| walk_input(plan, i, d))
            .collect();
        // Cleared here, before the job can write to the terminal.
        ticker.finish();
        crate::timing::mark("inputs walked");
        (context(), walked)
    });
    let Context {
        git,
        mut system,
        python,
        env,
    } = context;
    // Untracked files over the size caps, through the stat cache (this thread has the store).
    let git = git.finish(Some(&plan.store));
    let mut notes = plan.notes.clone();
    notes.extend(git.notes.iter().cloned());
    // A failed redaction records no environment at all, never an unredacted one.
    let env = env.unwrap_or_else(|| {
        notes.push("environment not recorded: redaction failed".to_string());
        RedactedEnv::default()
    });
    // What the allow rules did with secret names: shown now and kept in the record.
    notes.extend(env.notes.iter().cloned());
    let (mut inputs, later) = settle_walks(plan, walked, &mut notes);
    let mut git_state = git.state;
    let mut blobs = keep_code(plan, &mut git_state, git.patch_bytes, git.untracked_bytes);
    let configs = read_configs(plan, &mut notes);
    inputs.edges.extend(configs.edges);
    blobs.extend(configs.blobs);
    let overridden = overridden(plan, &configs.params);
    // The job's own arguments win over a config's value of the same key, and a `-p` over
    // both, in the record; read from the argv as stored, so no param holds more than it.
    let (params, param_overrides) = argv_params::merge(
        configs.params,
        argv_params::parse(&stored_argv(plan)),
        &plan.params,
        |all| plan.policy.redact_params(all).into_inner(),
    );
    let root = git_state
        .as_ref()
        .map_or_else(|| plan.cwd.clone(), |g| PathBuf::from(&g.root));
    let mut software = Software {
        python: None,
        lockfiles: software::lockfiles(&root),
    };
    if let Some((mut py, blob)) = python {
        if let Some((_, bytes)) = blob {
            // Through the engine like every blob: a line that is not `name==version` is searched.
            let kept = plan.policy.keep(What::Packages, bytes, &[]);
            py.packages = Some(kept.redacted.unwrap_or(kept.hash));
            blobs.push(kept.blob);
        }
        software.python = Some(py);
    }
    let (mut warnings, mut said) = told(plan, &notes, git_state.as_ref());
    warnings.extend(overridden);
    // Read while the job runs (`gpu::Sampler`); until it ends, the record says so.
    system.gpu_note = Some(GPUS_PENDING.to_string());
    let mut capture = Capture {
        owner: context::owner(&env_get, git.user_name, git.user_email),
        git: git_state,
        git_absent: git.absent,
        script: script(&plan.argv, &plan.cwd),
        env: env.vars,
        env_redacted: env.fingerprints,
        argv_redacted: BTreeMap::new(),
        config_redacted: configs.redacted,
        system,
        container: context::container(&env_get),
        scheduler: context::scheduler(&env_get),
        software,
        notes,
        observed: None,
        config_keys: plan
            .config_keys
            .iter()
            .map(|(p, k)| (p.display().to_string(), k.clone()))
            .collect(),
        metrics_files: plan
            .metrics
            .iter()
            .map(|m| crate::model::path_text(std::os::unix::ffi::OsStrExt::as_bytes(m.as_os_str())))
            .collect(),
        param_overrides,
        group: context::group(&env_get, &context::parent_process),
        api: None,
    };
    // At most `MAX_CONFIG_PARAMS` a config, each redacted beside all the others (a value's
    // siblings decide).
    let params: Vec<Param> = params.into_values().collect();
    let said_too = (!plan.quiet).then_some(&mut said);
    let kept = cap_config_params(
        &params,
        &configs.unparsed,
        &mut capture.notes,
        &mut warnings,
        said_too,
    );
    let params = plan.policy.redact_params_kept(params, &kept);
    PreLaunch {
        capture,
        inputs,
        later,
        params,
        blobs,
        gpus: Some(gpus),
        warnings,
        said,
    }
}

/// The most params kept from one config. A 50 MB YAML (a vocabulary, a file list) made
/// 3.6 million param rows a run: half a gigabyte of store each time, for values nobody
/// compares one by one. The file itself is kept whole (its copy, deduplicated by hash), and
/// every value was redacted beside all the others before any is left out.
const MAX_CONFIG_PARAMS: usize = 10_000;

/// The most values of one config parsed into params before they are capped (the first in
/// key order): room for those left out as too long or overridden, while a vocabulary of
/// millions of values is never held whole (`config::parse_bounded`).
const PARSED_MOST: usize = 10 * MAX_CONFIG_PARAMS;

/// The longest config value kept as a param, in bytes of its JSON. A plain text file given
/// as a config (a prompt, a README) parses as one YAML string: 2 MB of text became a 2 MB
/// param, kept three times (the file, the param, the param's index). The file keeps it.
const MAX_PARAM_BYTES: usize = 4096;

/// Which params to keep (in order): of each config's, those no longer than
/// `MAX_PARAM_BYTES` as given (before redaction, which is left for the kept ones), and of
/// those the first `MAX_CONFIG_PARAMS` (in key order); say so for each config cut, in the
/// record and before launch. `unparsed`: how many values of each config were past the first
/// `PARSED_MOST`, never made params.
fn cap_config_params(
    params: &[Param],
    unparsed: &BTreeMap<String, usize>,
    notes: &mut Vec<String>,
    warnings: &mut Vec<String>,
    mut said: Option<&mut Vec<String>>,
) -> Vec<bool> {
    let from_config = |p: &Param| p.source != "cli" && p.source != argv_params::SOURCE;
    let mut long: BTreeMap<String, usize> = BTreeMap::new();
    let mut kept: Vec<bool> = params
        .iter()
        .map(|p| {
            let keep = !from_config(p) || json_len(&p.value) <= MAX_PARAM_BYTES;
            if !keep {
                *long.entry(p.source.clone()).or_default() += 1;
            }
            keep
        })
        .collect();
    for (source, n) in long {
        let note = format!(
            "config {source} holds {n} value{} longer than {} KiB, not recorded as params; \
             the whole file is kept",
            if n == 1 { "" } else { "s" },
            MAX_PARAM_BYTES / 1024,
        );
        // Not a problem: said as a status line (None: -q).
        if let Some(said) = said.as_deref_mut() {
            said.push(format!("note: {note}"));
        }
        notes.push(note);
    }
    let mut count: BTreeMap<&str, usize> = unparsed.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    // The job's command line too: 100,000 `k=v` arguments made as many rows. Its params are
    // still judged beside all the others (`redact_params_kept`), so a value whose sibling
    // marks it secret stays redacted however the keys sort.
    for (p, _) in params.iter().zip(&kept).filter(|(_, k)| **k) {
        if from_config(p) || p.source == argv_params::SOURCE {
            *count.entry(p.source.as_str()).or_default() += 1;
        }
    }
    let over: BTreeMap<&str, usize> = count
        .into_iter()
        .filter(|(_, n)| *n > MAX_CONFIG_PARAMS)
        .collect();
    if over.is_empty() {
        return kept;
    }
    let mut so_far: BTreeMap<&str, usize> = BTreeMap::new();
    for (p, keep) in params.iter().zip(kept.iter_mut()).filter(|(_, k)| **k) {
        if over.contains_key(p.source.as_str()) {
            let n = so_far.entry(p.source.as_str()).or_default();
            *n += 1;
            *keep = *n <= MAX_CONFIG_PARAMS;
        }
    }
    for (source, n) in over {
        let note = if source == argv_params::SOURCE {
            format!(
                "the command line gives {n} keys: the first {MAX_CONFIG_PARAMS} (in key order) \
                 are recorded as params; the whole command is kept"
            )
        } else {
            format!(
                "config {source} holds {n} values: the first {MAX_CONFIG_PARAMS} (in key order) \
                 are recorded as params; the whole file is kept"
            )
        };
        warnings.push(note.clone());
        notes.push(note);
    }
    kept
}

/// The length of a value's JSON text, as the store keeps it (counted, not written).
fn json_len(value: &serde_json::Value) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// A `-p KEY=VALUE` whose key a declared config also sets, to another value, changes the
/// record (the `-p` value is the one recorded, source `cli`) but not what the job reads from
/// its config file: one warning each, before launch, values as the record would keep them
/// (secrets redacted). Not when the command line passes it to the job too (an argument holding
/// `KEY=`, as Hydra's `train.n_est=999`, or `--KEY`).
fn overridden(plan: &Plan, from_configs: &BTreeMap<String, Param>) -> Vec<String> {
    let passed = |key: &str| {
        plan.argv.iter().any(|a| {
            let a = a.to_string_lossy();
            a.contains(&format!("{key}=")) || a == format!("--{key}")
        })
    };
    let clashes: Vec<(&String, &serde_json::Value, &Param)> = plan
        .params
        .iter()
        .filter_map(|(k, v)| from_configs.get(k).map(|p| (k, v, p)))
        .filter(|(k, v, p)| p.value != **v && !passed(k))
        .collect();
    if clashes.is_empty() {
        return Vec::new();
    }
    // Shown as stored: through the engine, with each value's own siblings.
    let stored = plan
        .policy
        .redact_params(from_configs.values().cloned().collect())
        .into_inner();
    let given = plan
        .policy
        .redact_params(
            plan.params
                .iter()
                .map(|(key, value)| Param {
                    key: key.clone(),
                    value: value.clone(),
                    source: "cli".to_string(),
                })
                .collect(),
        )
        .into_inner();
    let shown = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let value_of = |params: &[Param], key: &str| {
        params
            .iter()
            .rev()
            .find(|p| p.key == key)
            .map_or_else(String::new, |p| shown(&p.value))
    };
    clashes
        .into_iter()
        .map(|(key, _, config)| {
            format!(
                "-p {key}={} overrides {}'s {} in the record only; the job reads the config \
                 file (pass it to the job too, or edit the file)",
                value_of(&given, key),
                config.source,
                value_of(&stored, key),
            )
        })
        .collect()
}

/// The job's arguments as the store keeps them (secrets redacted), as text.
fn stored_argv(plan: &Plan) -> Vec<String> {
    let raw: Vec<Vec<u8>> = plan.argv.iter().map(|a| a.as_bytes().to_vec()).collect();
    let stored = plan.policy.redact_argv(&raw).argv.into_inner();
    stored
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// How many of the latest runs `told` looks through for an untracked file over the cap.
const TOLD_WITHIN: usize = 200;

/// How many of the latest runs `told` looks through for the same untracked files past those
/// listed (each record lists 1,000: a few suffice).
const REST_TOLD_WITHIN: usize = 20;

/// The notes to print before launch: warnings, and the notes that are no problem and need
/// saying once. An untracked file over the size cap is recorded by its hash, as designed:
/// that is said (with how to stop it) by the run that first records those bytes there, not
/// by every run after it (one of the latest `TOLD_WITHIN` runs recorded the same), and not
/// under `-q`. Every note stays in the record either way.
fn told(
    plan: &Plan,
    notes: &[String],
    git: Option<&crate::model::GitState>,
) -> (Vec<String>, Vec<String>) {
    // The untracked files a note names (at most a few: those past the caps are counted
    // in one note), not a map of every file not kept.
    let noted: std::collections::HashSet<&str> = notes.iter().map(String::as_str).collect();
    let over_cap: BTreeMap<String, &crate::model::UntrackedFile> = git
        .map(|g| {
            g.untracked
                .iter()
                .filter(|u| !u.stored)
                .map(|u| (git::over_cap_note(&u.path, u.size), u))
                .filter(|(note, _)| noted.contains(note.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let rest = git.and_then(|g| g.untracked_rest);
    let (mut warnings, mut said) = (Vec::new(), Vec::new());
    for note in notes {
        // The plan's (an input that does not exist yet): no problem, said unless -q.
        if plan.notes.contains(note) {
            if !plan.quiet {
                said.push(format!("note: {note}"));
            }
            continue;
        }
        // The untracked files past those listed: said once for those files (one of the
        // latest runs recorded the same), as a file over the size cap is.
        if let Some(rest) = rest
            && git::is_rest_note(note)
        {
            let recorded = || {
                plan.store
                    .untracked_rest_recorded(&rest.hash, REST_TOLD_WITHIN)
                    .unwrap_or(false)
            };
            if !plan.quiet && !recorded() {
                said.push(format!("note: {note}; said once for these files"));
            }
            continue;
        }
        let Some(u) = over_cap.get(note) else {
            warnings.push(note.clone());
            continue;
        };
        let recorded = || {
            plan.store
                .untracked_over_cap_recorded(&u.path, &u.hash, TOLD_WITHIN)
                .unwrap_or(false)
        };
        if !plan.quiet && !recorded() {
            said.push(format!(
                "note: {note}; said once for these bytes: to leave it out, add {} to \
                 .gitignore (or declare it with -i if the job reads it)",
                u.path
            ));
        }
    }
    (warnings, said)
}

/// Start capturing git, the system, Python and the environment on threads of their own;
/// the returned function waits for them.
fn spawn_context<'s, 'p: 's>(
    s: &'s std::thread::Scope<'s, 'p>,
    plan: &'p Plan,
) -> impl FnOnce() -> Context + 's {
    let cwd = &plan.cwd;
    let policy = &plan.policy;
    // The threads that need nothing from the store start first, the longest (the
    // environment's redaction) first: the store's query below runs on this thread, beside
    // them.
    let child_env = plan.env.as_deref();
    let env = s.spawn(move || {
        let env = match child_env {
            Some(env) => policy.redact_env(env.iter().cloned()),
            None => policy.redact_env(std::env::vars_os()),
        };
        crate::timing::mark("environment redacted");
        env
    });
    let system = s.spawn(|| {
        let sys = system::capture();
        crate::timing::mark("system captured");
        sys
    });
    let (capture_python, program) = (plan.capture_python, plan.argv.first());
    let python = s.spawn(move || {
        if !capture_python {
            return None;
        }
        let env_get = |k: &str| std::env::var(k).ok();
        let path_var = std::env::var_os("PATH");
        let interp = software::python_interpreter(program?, path_var.as_deref(), cwd, &env_get)?;
        Some(software::python(&interp))
    });
    // Declared paths are data (configs are stored as configs), not untracked code; so are
    // the files recorded runs wrote here (another stage's outputs: a pipeline's data, which
    // would otherwise be kept with every later stage's code).
    let mut data: Vec<PathBuf> = plan
        .inputs
        .iter()
        .chain(&plan.outputs)
        .chain(&plan.configs)
        .map(|d| d.abs.clone())
        .collect();
    // The store itself, when it lies inside the repository (`LINEAGE_STORE=.lineage`): its
    // files are lineage's, not the job's code (they change with every run, and its signing
    // key is among them).
    let store = plan.store.dir();
    data.extend(std::fs::canonicalize(store));
    data.push(store.to_path_buf());
    const MAX_KNOWN_OUTPUTS: usize = 10_000;
    let here = crate::model::path_text(std::os::unix::ffi::OsStrExt::as_bytes(cwd.as_os_str()));
    if let Ok(known) = plan.store.latest_outputs_under(&[here])
        && known.len() <= MAX_KNOWN_OUTPUTS
    {
        data.extend(known.into_iter().map(|o| crate::model::path_of(&o.0)));
    }
    let git = s.spawn(move || {
        let git = git::capture(cwd, git::Caps::default(), &data);
        crate::timing::mark("git captured");
        git
    });
    move || Context {
        git: git.join().unwrap_or_default(),
        system: system.join().unwrap_or_default(),
        python: python.join().ok().flatten(),
        env: env.join().ok(),
    }
}

/// Walk input `i` before launch: hash it, or take its stats and leave its bytes for while
/// the job runs, or (a large directory recorded before) only watch it, to walk it then.
fn walk_input(plan: &Plan, i: usize, d: &Declared) -> Walked {
    let (store, hashing) = (&plan.store, &plan.hashing);
    let token = format!("input-{i}");
    // Directories known to be small are not watched: closing an inotify instance costs
    // several milliseconds, walking a small tree far less. One never recorded may be large:
    // watched, it is not walked a third time after the job.
    let known = store.input_size(d.abs.as_os_str().as_bytes());
    let large = match known {
        Some(n) => n >= WATCH_FILES,
        None => std::fs::metadata(&d.abs).is_ok_and(|m| m.is_dir()),
    };
    let mut watch = if large {
        Watch::new(&d.abs)
    } else {
        Watch::none()
    };
    // An input the job is declared to write (`-i ckpt -o ckpt`, or one inside the other)
    // is hashed first: left for while the job runs, its bytes would race the job's own
    // writes by design, and the input would often be recorded without a hash (a model
    // test's upstream rerun, under load, found a touched input with none).
    let first = plan.hash_before_launch || written_by_the_job(plan, d);
    // A large directory recorded before, most likely unchanged: once each of its
    // directories is watched, its walk can wait until the job has started.
    if large && known.is_some() && !first && hash::watch_dirs(&d.abs, &mut watch) {
        return (None, watch);
    }
    let sink = &mut |e: &[DirEntry]| store.stage(&token, e);
    let hashed = if first {
        hashing
            .hash_path(&d.abs, sink, Some(store), Some(&mut watch))
            .map(Prepared::Done)
    } else {
        hashing.prepare(&d.abs, sink, Some(store), Some(&mut watch))
    };
    (Some(hashed), watch)
}

/// Whether input `d` is, holds or lies inside a declared output.
pub(super) fn written_by_the_job(plan: &Plan, d: &Declared) -> bool {
    plan.outputs
        .iter()
        .any(|o| crate::model::nested(&o.abs, &d.abs))
}

/// The input edges as recorded before launch (with a hash where one is known), what tells
/// whether each input changed, and the inputs whose hashing goes on once the job runs.
fn settle_walks(
    plan: &Plan,
    walked: Vec<Walked>,
    notes: &mut Vec<String>,
) -> (Inputs, Vec<(usize, Pending)>) {
    let mut inputs = Inputs::default();
    let mut later = Vec::new();
    for (i, (d, (result, watch))) in plan.inputs.iter().zip(walked).enumerate() {
        inputs.watches.push(watch);
        let (edge, fingerprint) = match result {
            None => {
                // Recorded without a hash until it is walked and hashed, the job started.
                later.push((i, Pending::Walk));
                (d.edge(Role::Input, None, None), Fingerprint::default())
            }
            Some(Ok(Prepared::Later(l))) => {
                // Recorded without a hash until it is hashed, once the job has started.
                let print = l.fingerprint();
                later.push((i, Pending::Bytes(l)));
                (d.edge(Role::Input, None, None), print)
            }
            Some(Ok(Prepared::Done(h))) => {
                notes.extend(
                    h.warnings
                        .iter()
                        .map(|w| format!("input {}: {w}", d.given.display())),
                );
                let manifest = Some(format!("input-{i}"));
                (
                    d.edge(Role::Input, Some(h.artifact), manifest),
                    h.fingerprint,
                )
            }
            Some(Err(e)) => {
                notes.push(format!(
                    "input {} could not be hashed: {e}",
                    d.given.display()
                ));
                (d.edge(Role::Input, None, None), Fingerprint::default())
            }
        };
        inputs.edges.push(edge);
        inputs.fingerprints.push(fingerprint);
    }
    (inputs, later)
}

/// The uncommitted patch and the untracked files kept, through the engine: each keeps the
/// hash of its real bytes; a copy with its secrets redacted is stored when it held any.
fn keep_code(
    plan: &Plan,
    git: &mut Option<crate::model::GitState>,
    patch: Option<Vec<u8>>,
    untracked: Vec<(String, Vec<u8>)>,
) -> Vec<Redacted<Blob>> {
    let mut blobs = Vec::new();
    let Some(g) = git else {
        return blobs;
    };
    if let Some(bytes) = patch {
        let kept = plan.policy.keep(What::Patch, bytes, &[]);
        g.patch_redacted = kept.redacted;
        blobs.push(kept.blob);
    }
    // By path: a repository with tens of thousands of untracked files made a search of the
    // list per file quadratic (46,000 files: 3.3 s before launch).
    let at: std::collections::HashMap<String, usize> = g
        .untracked
        .iter()
        .enumerate()
        .map(|(i, u)| (u.path.clone(), i))
        .collect();
    for (path, bytes) in untracked {
        let kept = plan.policy.keep(What::File(&path), bytes, &[]);
        if let Some(&i) = at.get(&path) {
            g.untracked[i].redacted_blob = kept.redacted;
        }
        blobs.push(kept.blob);
    }
    blobs
}

/// The configs as recorded: their edges, the params read from them (redacted with the
/// others), the bytes to store (a copy with the secrets redacted where there were any) and
/// which configs were stored that way.
struct Configs {
    edges: Vec<Edge>,
    params: BTreeMap<String, Param>,
    /// Values of a config past the first `PARSED_MOST`, never made params, by config.
    unparsed: BTreeMap<String, usize>,
    blobs: Vec<Redacted<Blob>>,
    redacted: BTreeMap<String, Hash>,
}

fn read_configs(plan: &Plan, notes: &mut Vec<String>) -> Configs {
    let mut out = Configs {
        edges: Vec::new(),
        params: BTreeMap::new(),
        unparsed: BTreeMap::new(),
        blobs: Vec::new(),
        redacted: BTreeMap::new(),
    };
    for d in &plan.configs {
        let bytes = match hash::read_regular(&d.abs) {
            Ok(b) => b,
            Err(e) => {
                notes.push(format!(
                    "config {} could not be read: {e}",
                    d.given.display()
                ));
                continue;
            }
        };
        let source = d.given.display().to_string();
        // Secret values among those past the first `PARSED_MOST`, which are never held all
        // at once: their bytes are redacted in the kept copy all the same.
        let mut known = Vec::new();
        let parsed = config::parse_bounded(&d.given, &bytes, PARSED_MOST, &mut |batch| {
            known.extend(plan.policy.secret_values(&d.given, &batch));
        });
        let parsed: Vec<(String, serde_json::Value)> = match parsed {
            Ok((parsed, total)) => {
                if total > parsed.len() {
                    out.unparsed.insert(source.clone(), total - parsed.len());
                }
                parsed.into_iter().collect()
            }
            Err(e) => {
                notes.push(format!(
                    "config {source}: {e}; kept as bytes, no parameters read from it"
                ));
                Vec::new()
            }
        };
        known.extend(plan.policy.secret_values(&d.given, &parsed));
        let keys = plan.config_keys.get(&d.given);
        if let Some(keys) = keys {
            let missing: Vec<&str> = keys
                .iter()
                .filter(|k| {
                    !parsed
                        .iter()
                        .any(|(p, _)| config::selected(p, std::slice::from_ref(k)))
                })
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                notes.push(format!(
                    "config {source} has no key {}: the stage depends on nothing there",
                    missing.join(", ")
                ));
            }
        }
        for (key, value) in parsed {
            if keys.is_some_and(|k| !config::selected(&key, k)) {
                continue;
            }
            let source = source.clone();
            out.params.insert(key.clone(), Param { key, value, source });
        }
        // The stored copy never holds a secret; the config keeps the hash of its real bytes.
        let kept = plan.policy.keep(What::Config(&d.given), bytes, &known);
        let artifact = Artifact {
            hash: kept.hash,
            kind: ArtifactKind::File,
            size: kept.size,
            file_count: 1,
        };
        out.edges.push(d.edge(Role::Config, Some(artifact), None));
        if let Some(blob) = kept.redacted {
            out.redacted.insert(source, blob);
        }
        out.blobs.push(kept.blob);
    }
    out
}

/// The script a command runs: `argv[0]` when it is a path (`./train.sh`), otherwise the first
/// argument that names an existing file (`python train.py`).
fn script(argv: &[OsString], cwd: &Path) -> Option<FileRef> {
    let (program, rest) = argv.split_first()?;
    let candidate = if program.as_bytes().contains(&b'/') {
        Some(program)
    } else {
        rest.iter()
            .take_while(|a| a.as_bytes() != b"-m" && a.as_bytes() != b"-c")
            .find(|a| !a.as_bytes().starts_with(b"-") && cwd.join(a).is_file())
    }?;
    let (hash, _) = hash::hash_file(&cwd.join(candidate)).ok()?;
    Some(FileRef {
        path: candidate.to_string_lossy().into_owned(),
        hash,
    })
}
