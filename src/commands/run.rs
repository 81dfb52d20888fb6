//! `lineage run`: resolve the arguments into a plan (paths checked, command found, store
//! open), capture everything in parallel, write the run as `running`, launch the command
//! untouched, then hash the outputs and finalize the record. Exit status: the child's.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use nix::unistd::{AccessFlags, access};

use super::Context;
use crate::capture::{config, context, git, gpu, software, system};
use crate::child;
use crate::cli::RunArgs;
use crate::error::{Error, code};
use crate::hash::{self, Fingerprint, PathKind, Prepared};
use crate::model::{Capture, Edge, FileRef, Hash, Param, Resources, Role, Status};
use crate::redact::Policy;
use crate::settings::Settings;
use crate::store::{Finish, NewRun, Store};
use crate::ui;
use crate::watch::Watch;

/// A declared path: as given, and absolute.
struct Declared {
    given: PathBuf,
    abs: PathBuf,
}

impl Declared {
    fn new(given: &Path, cwd: &Path) -> Declared {
        Declared {
            given: given.to_path_buf(),
            abs: std::path::absolute(cwd.join(given)).unwrap_or_else(|_| cwd.join(given)),
        }
    }

    fn edge(
        &self,
        role: Role,
        artifact: Option<crate::model::Artifact>,
        manifest: Option<String>,
    ) -> Edge {
        // Only a directory's hashing staged a manifest.
        let is_dir = artifact
            .as_ref()
            .is_some_and(|a| a.kind == crate::model::ArtifactKind::Dir);
        let manifest = manifest.filter(|_| is_dir);
        Edge {
            role,
            path: self.given.to_string_lossy().into_owned(),
            abs_path: self.abs.to_string_lossy().into_owned(),
            artifact,
            manifest,
            changed: false,
        }
    }
}

/// A run to launch, free of clap types: built by `lineage run` from its arguments and by
/// `lineage rerun` from a record.
pub struct Spec {
    pub argv: Vec<OsString>,
    pub cwd: PathBuf,
    pub inputs: Vec<PathBuf>,
    pub outputs: Vec<PathBuf>,
    pub configs: Vec<PathBuf>,
    pub params: Vec<(String, serde_json::Value)>,
    pub env_allow: Vec<String>,
    pub env_deny: Vec<String>,
    pub sample_interval: f64,
    pub quiet: bool,
    /// The child's whole environment; None: lineage's own.
    pub env: Option<Vec<(OsString, OsString)>>,
    pub rerun_of: Option<String>,
    /// Also record SHA-256 digests (for exports), read while the job runs and after.
    pub sha256: bool,
    /// Hash every input before launch (else bytes not cached are hashed while the job runs).
    pub hash_before_launch: bool,
}

/// What happened, for callers that go on after the child (rerun).
pub struct Executed {
    pub id: String,
    pub exit: u8,
    /// None when the command could not be started.
    pub status: Option<Status>,
    pub outputs: Vec<Edge>,
}

/// What `run` will do, validated before anything is captured.
pub struct Plan {
    argv: Vec<OsString>,
    cwd: PathBuf,
    env: Option<Vec<(OsString, OsString)>>,
    rerun_of: Option<String>,
    inputs: Vec<Declared>,
    outputs: Vec<Declared>,
    configs: Vec<Declared>,
    params: Vec<(String, serde_json::Value)>,
    sample_interval: Duration,
    quiet: bool,
    sha256: bool,
    hash_before_launch: bool,
    store: Store,
    policy: Policy,
    /// Record the Python interpreter and packages (`[capture] python` in the settings).
    capture_python: bool,
    /// Hashing's progress and whether the job runs, shared with the progress bar.
    hashing: hash::Hashing,
}

/// `lineage run`: the job's exit code, or the error that kept it from starting.
pub fn run(args: RunArgs, ctx: &Context) -> Result<u8> {
    let spec = resolve(args)?;
    let store = ctx.open_store()?;
    crate::timing::mark("store opened");
    let plan = plan(spec, store, &ctx.settings)?;
    Ok(execute(plan).exit)
}

fn resolve(args: RunArgs) -> Result<Spec> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let params = args
        .params
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), config::param_value(v)))
            }
            _ => Err(Error::BadParam(p.clone())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Spec {
        argv: args.command,
        cwd,
        inputs: args.inputs,
        outputs: args.outputs,
        configs: args.configs,
        params,
        env_allow: args.env_allow,
        env_deny: args.env_deny,
        sample_interval: args.sample_interval,
        quiet: args.quiet,
        env: None,
        rerun_of: None,
        sha256: args.sha256,
        hash_before_launch: args.hash_before_launch,
    })
}

/// Validate a spec: paths checked, command found, redaction policy ready.
pub fn plan(spec: Spec, store: Store, settings: &Settings) -> Result<Plan> {
    let cwd = spec.cwd;
    if !(spec.sample_interval.is_finite() && spec.sample_interval > 0.0) {
        return Err(Error::BadSampleInterval(spec.sample_interval).into());
    }
    for path in &spec.inputs {
        check_declared(&cwd, path, false)?;
    }
    for path in &spec.configs {
        check_declared(&cwd, path, true)?;
    }
    let path_var = match &spec.env {
        Some(env) => env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone()),
        None => std::env::var_os("PATH"),
    };
    check_command(&spec.argv, &cwd, path_var.as_deref())?;
    let key = store.secret_key()?;
    // Settings files add their globs and patterns to the flags'.
    let allow: Vec<String> = settings
        .env_allow
        .iter()
        .chain(&spec.env_allow)
        .cloned()
        .collect();
    let deny: Vec<String> = settings
        .env_deny
        .iter()
        .chain(&spec.env_deny)
        .cloned()
        .collect();
    let policy = Policy::new(&allow, &deny, &settings.redact_values, key)?;
    let declare = |paths: &[PathBuf]| paths.iter().map(|p| Declared::new(p, &cwd)).collect();
    Ok(Plan {
        inputs: declare(&spec.inputs),
        outputs: declare(&spec.outputs),
        configs: declare(&spec.configs),
        argv: spec.argv,
        env: spec.env,
        rerun_of: spec.rerun_of,
        params: spec.params,
        sample_interval: Duration::from_secs_f64(spec.sample_interval),
        quiet: spec.quiet,
        sha256: spec.sha256,
        hash_before_launch: spec.hash_before_launch,
        store,
        policy,
        capture_python: settings.capture_python,
        hashing: hash::Hashing::default(),
        cwd,
    })
}

/// A declared input (a file or a directory) or config (a file) must exist and be readable
/// before launch; FIFOs, sockets and devices are refused without being opened.
fn check_declared(cwd: &Path, path: &Path, is_config: bool) -> Result<(), Error> {
    let what = if is_config { "config" } else { "input" };
    let unreadable = |source| Error::Unreadable {
        what,
        path: path.to_path_buf(),
        cause: source,
    };
    let full = cwd.join(path);
    // Readable now, or the job would run with an input lineage cannot identify.
    let readable = |kind: &PathKind| match kind {
        PathKind::File => std::fs::File::open(&full).map(drop),
        PathKind::Dir => std::fs::read_dir(&full).map(drop),
        _ => Ok(()),
    };
    match hash::path_kind(&full) {
        Ok(PathKind::File) => readable(&PathKind::File).map_err(unreadable),
        Ok(PathKind::Dir) if !is_config => readable(&PathKind::Dir).map_err(unreadable),
        Ok(PathKind::Missing) if is_config => Err(Error::MissingConfig {
            path: path.to_path_buf(),
        }),
        Ok(PathKind::Missing) => Err(Error::MissingInput {
            path: path.to_path_buf(),
        }),
        Ok(PathKind::Dir) => Err(unreadable(std::io::Error::other("not a regular file"))),
        Ok(PathKind::Special) => Err(unreadable(std::io::Error::other(
            "not a regular file or directory (FIFOs, sockets and devices are never opened)",
        ))),
        Err(source) => Err(unreadable(source)),
    }
}

/// 127 when the command is not found, 126 when it cannot be executed, before recording.
fn check_command(
    argv: &[OsString],
    cwd: &Path,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<(), Error> {
    let program = argv.first().map(OsString::as_os_str).unwrap_or_default();
    let shown = program.to_string_lossy().into_owned();
    if program.is_empty() {
        return Err(Error::CommandNotFound(shown));
    }
    // A relative path is relative to the job's cwd.
    let located = if program.as_bytes().contains(&b'/') {
        cwd.join(program).into_os_string()
    } else {
        program.to_os_string()
    };
    let Some(path) = software::resolve_program(&located, path_var) else {
        return Err(if cwd.join(program).is_dir() {
            Error::CommandNotExecutable(shown)
        } else {
            Error::CommandNotFound(shown)
        });
    };
    if access(&path, AccessFlags::X_OK).is_err() {
        return Err(Error::CommandNotExecutable(shown));
    }
    Ok(())
}

fn warn(msg: &str) {
    ui::warn(msg);
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Directory inputs that held at least this many files when last recorded, or never recorded
/// yet, are watched with inotify while the job runs instead of being walked again after it
/// (see `watch`); those recorded before are walked only once the job has started.
const WATCH_FILES: u64 = 5_000;

/// The edges (inputs first, then configs), and for each input what tells whether it changed
/// during the job.
struct Inputs {
    edges: Vec<Edge>,
    fingerprints: Vec<Fingerprint>,
    /// inotify watches on each input, set before its stats were taken.
    watches: Vec<Watch>,
}

/// Everything captured before launch.
struct PreLaunch {
    capture: Capture,
    after: Inputs,
    /// Inputs walked before launch whose bytes are hashed while the job runs, by position.
    later: Vec<(usize, Pending)>,
    params: Vec<Param>,
    blobs: Vec<(Hash, Vec<u8>)>,
    nvml: Option<std::sync::Arc<nvml_wrapper::Nvml>>,
}

fn capture_all(plan: &Plan) -> PreLaunch {
    plan.store.discard_staged();
    let env_get = |k: &str| std::env::var(k).ok();
    let gpus = gpu::start(env_get("CUDA_VISIBLE_DEVICES"));
    let path_var = std::env::var_os("PATH");
    let (cwd, program, store) = (&plan.cwd, plan.argv.first(), &plan.store);
    let hashing = &plan.hashing;
    // Declared paths are data (configs are stored as configs), not untracked code.
    let data: Vec<PathBuf> = plan
        .inputs
        .iter()
        .chain(&plan.outputs)
        .chain(&plan.configs)
        .map(|d| d.abs.clone())
        .collect();
    let policy = &plan.policy;
    let redact_text = move |text: &str| policy.redact_text(text, &[]);
    let child_env = plan.env.as_deref();
    let (git, sys, python, env, hashed) = std::thread::scope(|s| {
        let git = s.spawn(|| {
            let git = git::capture(cwd, git::Caps::default(), &data, &redact_text);
            crate::timing::mark("git captured");
            git
        });
        let sys = s.spawn(|| {
            let sys = system::capture();
            crate::timing::mark("system captured");
            sys
        });
        let capture_python = plan.capture_python;
        let python = s.spawn(move || {
            if !capture_python {
                return None;
            }
            let program = program?;
            let interp = software::python_interpreter(program, path_var.as_deref(), cwd, &env_get)?;
            Some(software::python(&interp))
        });
        let env = s.spawn(|| {
            let env = match child_env {
                Some(env) => policy.redact_env(env.iter().cloned()),
                None => policy.redact_env(std::env::vars_os()),
            };
            crate::timing::mark("environment redacted");
            env
        });
        let ticker = crate::progress::start("inputs", plan.quiet, hashing);
        let hashed: Vec<_> = plan
            .inputs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let token = format!("input-{i}");
                // Directories known to be small are not watched: closing an inotify instance
                // costs several milliseconds, walking a small tree far less. One never
                // recorded may be large: watched, it is not walked a third time after the job.
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
                // A large directory recorded before, most likely unchanged: once each of its
                // directories is watched, its walk can wait until the job has started.
                if large
                    && known.is_some()
                    && !plan.hash_before_launch
                    && hash::watch_dirs(&d.abs, &mut watch)
                {
                    return (None, watch);
                }
                let sink = &mut |e: &[crate::model::DirEntry]| store.stage(&token, e);
                let hashed = if plan.hash_before_launch {
                    hashing
                        .hash_path(&d.abs, sink, Some(store), Some(&mut watch))
                        .map(Prepared::Done)
                } else {
                    hashing.prepare(&d.abs, sink, Some(store), Some(&mut watch))
                };
                (Some(hashed), watch)
            })
            .collect();
        // Cleared here, before the job can write to the terminal.
        ticker.finish();
        crate::timing::mark("inputs walked");
        (
            git.join().unwrap_or_default(),
            sys.join().unwrap_or_default(),
            python.join().ok().flatten(),
            env.join().ok(),
            hashed,
        )
    });

    let mut notes = git.notes.clone();
    // A failed redaction records no environment at all, never an unredacted one.
    let env = env.unwrap_or_else(|| {
        notes.push("environment not recorded: redaction failed".to_string());
        Default::default()
    });
    let mut blobs = git.blobs;
    let mut edges = Vec::new();
    let mut fingerprints = Vec::new();
    let mut watches = Vec::new();
    let mut later = Vec::new();
    for (i, (d, (result, watch))) in plan.inputs.iter().zip(hashed).enumerate() {
        watches.push(watch);
        match result {
            None => {
                // Recorded without a hash until it is walked and hashed, the job started.
                fingerprints.push(Fingerprint::default());
                edges.push(d.edge(Role::Input, None, None));
                later.push((i, Pending::Walk));
            }
            Some(Ok(Prepared::Later(l))) => {
                // Recorded without a hash until it is hashed, once the job has started.
                fingerprints.push(l.fingerprint());
                edges.push(d.edge(Role::Input, None, None));
                later.push((i, Pending::Bytes(l)));
            }
            Some(Ok(Prepared::Done(h))) => {
                notes.extend(
                    h.warnings
                        .iter()
                        .map(|w| format!("input {}: {w}", d.given.display())),
                );
                edges.push(d.edge(Role::Input, Some(h.artifact), Some(format!("input-{i}"))));
                fingerprints.push(h.fingerprint);
            }
            Some(Err(e)) => {
                notes.push(format!(
                    "input {} could not be hashed: {e}",
                    d.given.display()
                ));
                edges.push(d.edge(Role::Input, None, None));
                fingerprints.push(Fingerprint::default());
            }
        }
    }

    let mut params: BTreeMap<String, Param> = BTreeMap::new();
    let mut config_redacted = BTreeMap::new();
    for d in &plan.configs {
        let bytes = match std::fs::read(&d.abs) {
            Ok(b) => b,
            Err(e) => {
                notes.push(format!(
                    "config {} could not be read: {e}",
                    d.given.display()
                ));
                continue;
            }
        };
        let hash = Hash::of(&bytes);
        let mut secrets = Vec::new();
        match config::parse(&d.given, &bytes) {
            Ok(parsed) => {
                for (key, value) in parsed {
                    let original = value.clone();
                    let value = redact_param(&plan.policy, &key, value);
                    if value != original {
                        secrets.push(match original {
                            serde_json::Value::String(s) => s,
                            v => v.to_string(),
                        });
                    }
                    params.insert(
                        key.clone(),
                        Param {
                            key,
                            value,
                            source: d.given.display().to_string(),
                        },
                    );
                }
            }
            Err(e) => notes.push(format!(
                "config {}: {e}; kept as bytes, no parameters read from it",
                d.given.display()
            )),
        }
        edges.push(d.edge(
            Role::Config,
            Some(crate::model::Artifact {
                hash,
                kind: crate::model::ArtifactKind::File,
                size: bytes.len() as u64,
                file_count: 1,
            }),
            None,
        ));
        // The stored copy never holds a secret; the config keeps the hash of its real bytes.
        let redacted = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| plan.policy.redact_text(text, &secrets));
        match redacted {
            Some(text) => {
                let blob = Hash::of(text.as_bytes());
                config_redacted.insert(d.given.display().to_string(), blob);
                blobs.push((blob, text.into_bytes()));
            }
            None => blobs.push((hash, bytes)),
        }
    }
    for (key, value) in &plan.params {
        let value = redact_param(&plan.policy, key, value.clone());
        params.insert(
            key.clone(),
            Param {
                key: key.clone(),
                value,
                source: "cli".into(),
            },
        );
    }

    let root = git
        .state
        .as_ref()
        .map_or_else(|| plan.cwd.clone(), |g| PathBuf::from(&g.root));
    let mut sw = crate::model::Software {
        python: None,
        lockfiles: software::lockfiles(&root),
    };
    if let Some((py, blob)) = python {
        sw.python = Some(py);
        blobs.extend(blob);
    }
    let mut system = sys;
    let gpus = gpus.finish();
    crate::timing::mark("gpus captured");
    system.gpus = gpus.gpus;
    system.gpu_note = gpus.note;

    let capture = Capture {
        owner: context::owner(&env_get, git.user_name, git.user_email),
        git: git.state,
        git_absent: git.absent,
        script: script(&plan.argv, &plan.cwd),
        env: env.vars,
        env_redacted: env.fingerprints,
        argv_redacted: BTreeMap::new(),
        config_redacted,
        system,
        container: context::container(&env_get),
        scheduler: context::scheduler(&env_get),
        software: sw,
        notes,
    };
    PreLaunch {
        capture,
        after: Inputs {
            edges,
            fingerprints,
            watches,
        },
        later,
        params: params.into_values().collect(),
        blobs,
        nvml: gpus.nvml,
    }
}

/// A parameter whose key looks secret, or whose value does, is stored redacted.
fn redact_param(policy: &Policy, key: &str, value: serde_json::Value) -> serde_json::Value {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let text = match &value {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    match policy.redact(leaf, &text) {
        Some(stored) => serde_json::Value::String(stored),
        None => value,
    }
}

/// The script a command runs: argv[0] when it is a path (`./train.sh`), otherwise the first
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

pub fn execute(mut plan: Plan) -> Executed {
    crate::timing::mark("planned");
    let pre = capture_all(&plan);
    crate::timing::mark("captured");
    for note in &pre.capture.notes {
        warn(note);
    }
    let id = uuid::Uuid::now_v7().to_string();
    // The job gets its real arguments; the store gets them with secrets redacted.
    let raw_argv: Vec<Vec<u8>> = plan.argv.iter().map(|a| a.as_bytes().to_vec()).collect();
    let redacted = plan.policy.redact_argv(&raw_argv);
    let argv = redacted.argv;
    let mut pre = pre;
    pre.capture.argv_redacted = redacted.fingerprints;
    let started_at = now();
    let begun = plan.store.begin_run(&NewRun {
        id: &id,
        argv: &argv,
        cwd: plan.cwd.as_os_str().as_bytes(),
        started_at: &started_at,
        pid: std::process::id(),
        rerun_of: plan.rerun_of.as_deref(),
        capture: &pre.capture,
        edges: &pre.after.edges,
        params: &pre.params,
        blobs: &pre.blobs,
    });
    if let Err(e) = begun {
        let e = e.context(format!(
            "could not record the run in {} before launch",
            plan.store.dir().display()
        ));
        ui::error(&e, Some(plan.store.dir()));
        return Executed {
            id,
            exit: code::CANNOT_LAUNCH,
            status: None,
            outputs: Vec::new(),
        };
    }
    crate::timing::mark("run begun");
    let short = plan.store.short_id(&id).unwrap_or_else(|_| id.clone());
    if !plan.quiet {
        ui::info(format_args!("run {short} recording"));
    }

    let running = child::spawn(
        &plan.argv,
        &plan.cwd,
        plan.env.as_deref(),
        &[("LINEAGE_RUN_ID", &id)],
    );
    let mut capture = pre.capture;
    let later = std::mem::take(&mut pre.later);
    let running = match running {
        Ok(r) => r,
        Err(e) => {
            let changed = hash_later(&plan, &id, later, &mut pre.after, &mut capture.notes);
            let (exit, msg) = match e.kind() {
                std::io::ErrorKind::NotFound => (code::NOT_FOUND, "command not found"),
                _ => (code::NOT_EXECUTABLE, "command could not be executed"),
            };
            let program = plan.argv[0].to_string_lossy().into_owned();
            ui::error_line(format_args!("{msg}: {program}: {e}"));
            capture.notes.push(format!("{msg}: {e}"));
            finish(
                &mut plan.store,
                &id,
                Finish {
                    status: Status::Failed,
                    ended_at: &now(),
                    exit_code: Some(i32::from(exit)),
                    signal: None,
                    capture: &capture,
                    resources: &Resources::default(),
                    outputs: &[],
                    changed_inputs: &changed,
                },
            );
            return Executed {
                id,
                exit,
                status: None,
                outputs: Vec::new(),
            };
        }
    };
    let sampler = pre.nvml.map(|nvml| {
        gpu::Sampler::start(
            nvml,
            &capture.system.gpus,
            running.pid(),
            plan.sample_interval,
        )
    });
    crate::timing::mark("spawned");
    if !later.is_empty() {
        watch_job(running.pid(), &plan.hashing);
    }
    let mut changed = hash_later(&plan, &id, later, &mut pre.after, &mut capture.notes);
    crate::timing::mark("inputs hashed");
    let sizes: Vec<(Vec<u8>, u64)> = plan
        .inputs
        .iter()
        .zip(&pre.after.edges)
        .filter_map(|(d, e)| {
            let a = e.artifact.as_ref()?;
            (a.kind == crate::model::ArtifactKind::Dir)
                .then(|| (d.abs.as_os_str().as_bytes().to_vec(), a.file_count))
        })
        .collect();
    plan.store.note_input_sizes(&sizes);
    plan.store.idle_work();
    if plan.sha256 {
        record_sha256(&plan.store, &pre.after.edges, &mut capture.notes);
    }
    crate::timing::mark("bookkeeping done while the job runs");
    let outcome = running.wait();
    crate::timing::mark("job ended");
    let gpu_peaks = sampler.map(gpu::Sampler::finish);
    let ended_at = now();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            ui::error_line(format_args!("lost track of the command: {e}"));
            return Executed {
                id,
                exit: code::CANNOT_LAUNCH,
                status: None,
                outputs: Vec::new(),
            };
        }
    };

    let (exit_code, signal) = match outcome.status.code() {
        Some(c) => (Some(c), None),
        None => (None, outcome.status.signal()),
    };
    let exit: u8 = match (exit_code, signal) {
        (Some(c), _) => (c & 0xff) as u8,
        (None, Some(s)) => (128 + s).clamp(0, 255) as u8,
        (None, None) => 1,
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

    let mut outputs = Vec::new();
    let ticker = crate::progress::start("outputs", plan.quiet, &plan.hashing);
    for (i, d) in plan.outputs.iter().enumerate() {
        let token = format!("output-{i}");
        match hash::path_kind(&d.abs) {
            Ok(PathKind::Missing) => {
                let msg = format!("output {} does not exist after the run", d.given.display());
                warn(&msg);
                capture.notes.push(msg);
                outputs.push(d.edge(Role::Output, None, None));
            }
            _ => match plan.hashing.hash_path(
                &d.abs,
                &mut |e| plan.store.stage(&token, e),
                Some(&plan.store),
                None,
            ) {
                Ok(h) => {
                    for w in h.warnings {
                        let msg = format!("output {}: {w}", d.given.display());
                        warn(&msg);
                        capture.notes.push(msg);
                    }
                    outputs.push(d.edge(Role::Output, Some(h.artifact), Some(token.clone())));
                }
                Err(e) => {
                    let msg = format!("output {} could not be hashed: {e}", d.given.display());
                    warn(&msg);
                    capture.notes.push(msg);
                    outputs.push(d.edge(Role::Output, None, None));
                }
            },
        }
    }
    ticker.finish();
    crate::timing::mark("outputs hashed");
    for (i, ((d, before), watch)) in plan
        .inputs
        .iter()
        .zip(&pre.after.fingerprints)
        .zip(&pre.after.watches)
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
            warn(&msg);
            capture.notes.push(msg);
            changed.push(i);
        }
    }
    crate::timing::mark("inputs rechecked");
    let resources = Resources {
        wall_seconds: outcome.wall.as_secs_f64(),
        user_cpu_seconds: outcome.user_cpu.as_secs_f64(),
        system_cpu_seconds: outcome.system_cpu.as_secs_f64(),
        max_rss_bytes: outcome.max_rss_bytes,
        gpu_peak_memory_bytes: gpu_peaks,
    };
    let recorded = finish(
        &mut plan.store,
        &id,
        Finish {
            status,
            ended_at: &ended_at,
            exit_code,
            signal,
            capture: &capture,
            resources: &resources,
            outputs: &outputs,
            changed_inputs: &changed,
        },
    );
    if plan.sha256 && recorded {
        let mut notes = Vec::new();
        record_sha256(&plan.store, &outputs, &mut notes);
    }
    crate::timing::mark("run finished");
    if !plan.quiet && recorded {
        let how = match (exit_code, signal) {
            (_, Some(s)) => format!("killed by signal {s}"),
            (Some(c), None) => format!("exit {c}"),
            _ => String::new(),
        };
        let n = outputs.iter().filter(|o| o.artifact.is_some()).count();
        ui::info(format_args!(
            "run {short} {} ({how}) in {}; {n} output{} recorded",
            status.as_str(),
            crate::output::seconds(resources.wall_seconds),
            if n == 1 { "" } else { "s" }
        ));
    }
    Executed {
        id,
        exit,
        status: Some(status),
        outputs,
    }
}

/// Hash the inputs `prepare` left for later, the job running, each recorded in the store as
/// it is done; returns the positions of those that changed before they could be read (they
/// stay without a hash). Files are hashed on a thread of their own (they need nothing from
/// the store), so that writing the directories' manifests and cache rows overlaps with it.
fn hash_later(
    plan: &Plan,
    id: &str,
    later: Vec<(usize, Pending)>,
    inputs: &mut Inputs,
    notes: &mut Vec<String>,
) -> Vec<usize> {
    let (store, hashing) = (&plan.store, &plan.hashing);
    let Inputs {
        edges,
        fingerprints,
        watches,
    } = inputs;
    let mut changed = Vec::new();
    let mut settle = |i: usize, result: Result<hash::Hashed, hash::LaterError>| {
        let d = &plan.inputs[i];
        let token = format!("input-{i}");
        let msg = match result {
            Ok(h) => {
                for w in &h.warnings {
                    let msg = format!("input {}: {w}", d.given.display());
                    warn(&msg);
                    notes.push(msg);
                }
                let edge = d.edge(Role::Input, Some(h.artifact), Some(token.clone()));
                crate::timing::mark("an input hashed");
                match store.complete_input(id, i, &edge) {
                    Ok(()) => {
                        edges[i] = edge;
                        return;
                    }
                    Err(e) => format!(
                        "input {}: its hash could not be recorded: {e:#}",
                        d.given.display()
                    ),
                }
            }
            Err(hash::LaterError::Changed(path)) => {
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
            Err(hash::LaterError::Io(e)) => {
                format!("input {} could not be hashed: {e}", d.given.display())
            }
        };
        store.unstage(&token);
        warn(&msg);
        notes.push(msg);
    };
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
            let token = format!("input-{i}");
            let sink = &mut |e: &[crate::model::DirEntry]| store.stage(&token, e);
            let result = match p {
                Pending::Bytes(l) => l.finish(hashing, sink, Some(store)),
                Pending::Walk => {
                    let abs = &plan.inputs[i].abs;
                    match plan.hashing.hash_path_while_running(abs, sink, Some(store)) {
                        // Nothing changed since the watches were set before launch: the
                        // walk is that of the tree the job started with.
                        Ok(h) if watches[i].quiet() => {
                            fingerprints[i] = h.fingerprint;
                            Ok(h)
                        }
                        Ok(_) => Err(hash::LaterError::Changed(abs.clone())),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            Err(hash::LaterError::Changed(abs.clone()))
                        }
                        Err(e) => Err(hash::LaterError::Io(e)),
                    }
                }
            };
            settle(i, result);
        }
        // The directories' cache rows, while the files are still being hashed.
        store.write_learned();
        match files.join() {
            Ok(files) => {
                for (i, key, result) in files {
                    if let (Some(key), Ok(h)) = (key, &result) {
                        hash::StatCache::record(store, &[(key, h.artifact.hash)]);
                    }
                    settle(i, result);
                }
            }
            Err(_) => warn("input files could not be hashed: the hashing thread failed"),
        }
    });
    changed
}

/// Mark the job running for the hashing beside it until a thread sees it end (without
/// reaping it: `wait` does that).
fn watch_job(pid: u32, hashing: &hash::Hashing) {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    hashing.set_job_running(true);
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    let ended = hashing.clone();
    let watcher = std::thread::Builder::new()
        .name("lineage-job-end".into())
        .spawn(move || {
            while let Err(nix::errno::Errno::EINTR) =
                waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
            {}
            ended.set_job_running(false);
        });
    if watcher.is_err() {
        hashing.set_job_running(false);
    }
}

/// An input whose recording goes on once the job has started.
enum Pending {
    /// Walked before launch; its bytes are still to hash.
    Bytes(hash::Later),
    /// Watched before launch (every directory in it); to walk and hash.
    Walk,
}

/// `--sha256`: remember each artifact's SHA-256 (a directory's dirHash) beside its BLAKE3,
/// read from the bytes again and checked against the BLAKE3 just recorded. A failure is a
/// warning: the run is recorded either way.
fn record_sha256(store: &Store, edges: &[Edge], notes: &mut Vec<String>) {
    for e in edges {
        let Some(a) = &e.artifact else { continue };
        let artifact = crate::model::ArtifactRef {
            hash: a.hash,
            kind: a.kind,
            size: a.size,
            file_count: a.file_count,
        };
        if crate::export::digests::known(store, &artifact).is_some() {
            continue;
        }
        let got = crate::export::digests::compute(store, &artifact, Path::new(&e.abs_path));
        let saved = got.map_err(|why| why.to_string()).and_then(|d| {
            store
                .put_extra_digest(&a.hash, crate::export::digests::algorithm(a.kind), &d)
                .map_err(|e| e.to_string())
        });
        if let Err(why) = saved {
            let msg = format!("no sha256 recorded for {}: {why}", e.path);
            warn(&msg);
            notes.push(msg);
        }
    }
}

/// Phase two; a failure is a loud warning, never a changed exit code.
fn finish(store: &mut Store, id: &str, fin: Finish) -> bool {
    match store.finish_run(id, &fin) {
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
