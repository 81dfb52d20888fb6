//! Resolving `lineage run`'s arguments (or a rerun's record) into a validated plan before
//! anything is captured: params parsed, declared inputs and configs present and readable,
//! the command found and executable, the redaction policy built from the flags and the
//! settings files. A plan that cannot be made is an error, and the job never starts.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use nix::unistd::{AccessFlags, access};

use crate::capture::{config, software};
use crate::cli::RunArgs;
use crate::error::Error;
use crate::hash::{self, PathKind};
use crate::model::{Artifact, ArtifactKind, Edge, Role};
use crate::redact::Policy;
use crate::settings::Settings;
use crate::sign::{self, Signer};
use crate::store::Store;
use crate::ui;

/// A declared path: as given, and absolute.
pub(super) struct Declared {
    pub(super) given: PathBuf,
    pub(super) abs: PathBuf,
}

impl Declared {
    pub(super) fn new(given: &Path, cwd: &Path) -> Declared {
        Declared {
            given: given.to_path_buf(),
            abs: crate::commands::absolute(&cwd.join(given)),
        }
    }

    pub(super) fn edge(
        &self,
        role: Role,
        artifact: Option<Artifact>,
        manifest: Option<String>,
    ) -> Edge {
        // Only a directory's hashing staged a manifest.
        let is_dir = artifact
            .as_ref()
            .is_some_and(|a| a.kind == ArtifactKind::Dir);
        let manifest = manifest.filter(|_| is_dir);
        Edge {
            role,
            // Losslessly: a name that is not UTF-8 is found again by rerun.
            path: crate::model::path_text(self.given.as_os_str().as_bytes()),
            abs_path: crate::model::path_text(self.abs.as_os_str().as_bytes()),
            artifact,
            manifest,
            changed: false,
            written: None,
            observed: None,
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
    /// The keys a stage depends on, by config (`-c params.yaml:train`): only those become
    /// its params. A config absent here is taken whole.
    pub config_keys: BTreeMap<PathBuf, Vec<String>>,
    /// Metrics files (`-m`): read after the job; each is an output too.
    pub metrics: Vec<PathBuf>,
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
    /// Observe the files the job opens: Some(false) is `--no-observe`; None: the settings.
    pub observe: Option<bool>,
    /// Undeclared I/O fails the run once it has ended (or the settings say so).
    pub strict: bool,
    /// The job's standard output goes to lineage's standard error (`rerun --json`, whose
    /// standard output is the JSON).
    pub stdout_to_stderr: bool,
}

/// What `run` will do, validated before anything is captured.
pub struct Plan {
    pub(super) argv: Vec<OsString>,
    /// What the plan decided that the record keeps (an input that does not exist yet).
    pub(super) notes: Vec<String>,
    /// Where the program of `argv` was found on the job's PATH, when it was searched for
    /// there: the job is started from it (`argv[0]` as given), in one exec, not one per
    /// PATH entry before it (each a call held for the observer).
    pub(super) program: Option<PathBuf>,
    pub(super) cwd: PathBuf,
    pub(super) env: Option<Vec<(OsString, OsString)>>,
    pub(super) rerun_of: Option<String>,
    pub(super) inputs: Vec<Declared>,
    pub(super) outputs: Vec<Declared>,
    pub(super) configs: Vec<Declared>,
    /// The keys each config was declared for (`-c FILE:KEYS`), by its path as given.
    pub(super) config_keys: BTreeMap<PathBuf, Vec<String>>,
    /// Metrics files declared with `-m`, as given, and the settings' patterns.
    pub(super) metrics: Vec<PathBuf>,
    pub(super) metrics_patterns: Vec<String>,
    pub(super) params: Vec<(String, serde_json::Value)>,
    pub(super) sample_interval: Duration,
    pub(super) quiet: bool,
    pub(super) sha256: bool,
    pub(super) hash_before_launch: bool,
    /// Observe the files the job opens (docs/recording.md, "Observed I/O").
    pub(super) observe: bool,
    /// Undeclared I/O makes `lineage run` exit 5 once the job has ended successfully.
    pub(super) strict: bool,
    /// The job's standard output goes to lineage's standard error.
    pub(super) stdout_to_stderr: bool,
    pub(super) store: Store,
    pub(super) policy: Policy,
    /// Record the Python interpreter and packages (`[capture] python` in the settings).
    pub(super) capture_python: bool,
    /// Hashing's progress and whether the job runs, shared with the progress bar.
    pub(super) hashing: hash::Hashing,
    /// The user's key, which signs the finished record; None (and a warning) when it
    /// cannot be read or made: the job still runs, its record unsigned.
    pub(super) signer: Option<Signer>,
    /// Set when the store could not take the run before launch: it is written after.
    pub(super) late: Option<super::Late>,
}

/// The spec of `lineage run RunArgs`, in the current directory.
pub(super) fn resolve(args: RunArgs) -> Result<Spec> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let (configs, config_keys) = config_selections(&cwd, &args.configs)?;
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
        configs,
        config_keys,
        metrics: args.metrics,
        params,
        env_allow: args.env_allow,
        env_deny: args.env_deny,
        sample_interval: args.sample_interval,
        quiet: args.quiet,
        env: None,
        rerun_of: None,
        sha256: args.sha256,
        hash_before_launch: args.hash_before_launch,
        observe: args.no_observe.then_some(false),
        strict: args.strict,
        stdout_to_stderr: false,
    })
}

/// The keys each config was declared for, by path as given.
type ConfigKeys = BTreeMap<PathBuf, Vec<String>>;

/// `-c FILE` and `-c FILE:KEY[,KEY...]` (the keys a stage depends on, DVC's per-stage
/// `params:`): each config once, in the order first given, with the keys asked for (none:
/// the whole file). A path that exists as given is a path, colon or not; otherwise the part
/// after the last colon names the keys.
fn config_selections(cwd: &Path, given: &[PathBuf]) -> Result<(Vec<PathBuf>, ConfigKeys), Error> {
    let mut configs: Vec<PathBuf> = Vec::new();
    // None: the whole file (some -c named it without keys).
    let mut keys: BTreeMap<PathBuf, Option<Vec<String>>> = BTreeMap::new();
    for g in given {
        let (path, selected) = match split_selection(cwd, g) {
            Some((path, list)) => {
                let list: Vec<String> = list.split(',').map(|k| k.trim().to_string()).collect();
                if list.iter().any(|k| !is_key(k)) {
                    return Err(Error::BadConfigKeys(g.clone()));
                }
                (path, Some(list))
            }
            None => (g.clone(), None),
        };
        if !configs.contains(&path) {
            configs.push(path.clone());
            keys.insert(path.clone(), selected);
        } else {
            let entry = keys.entry(path).or_default();
            match (entry.as_mut(), selected) {
                (Some(have), Some(more)) => {
                    for k in more {
                        if !have.contains(&k) {
                            have.push(k);
                        }
                    }
                }
                _ => *entry = None,
            }
        }
    }
    let keys = keys
        .into_iter()
        .filter_map(|(p, k)| k.map(|k| (p, k)))
        .collect();
    Ok((configs, keys))
}

/// `params.yaml:train,eval` -> (`params.yaml`, `train,eval`) when `params.yaml:train,eval`
/// is not itself a file and `params.yaml` is.
fn split_selection(cwd: &Path, given: &Path) -> Option<(PathBuf, String)> {
    let text = given.to_str()?;
    if cwd.join(given).exists() {
        return None;
    }
    let (path, list) = text.rsplit_once(':')?;
    let path = PathBuf::from(path);
    cwd.join(&path).is_file().then(|| (path, list.to_string()))
}

/// A flattened key, as configs are flattened: dotted names, no spaces or colons.
fn is_key(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with('.')
        && !k.ends_with('.')
        && !k.contains("..")
        && k.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != ':' && c != ',')
}

/// Validate a spec: paths checked, command found, redaction policy ready.
pub fn plan(spec: Spec, store: Store, settings: &Settings) -> Result<Plan> {
    let cwd = spec.cwd;
    let sample_interval = Duration::try_from_secs_f64(spec.sample_interval)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or(Error::BadSampleInterval(spec.sample_interval))?;
    let declare = |paths: &[PathBuf]| -> Vec<Declared> {
        paths.iter().map(|p| Declared::new(p, &cwd)).collect()
    };
    // `-o m.txt/` declares a directory: not a file that is there (the kernel opens no file
    // by that name; the record would name it with its slash).
    for given in &spec.outputs {
        let bytes = given.as_os_str().as_bytes();
        let mut bare = bytes;
        while let Some(b) = bare.strip_suffix(b"/") {
            bare = b;
        }
        let bare = Path::new(std::ffi::OsStr::from_bytes(bare));
        if bytes.ends_with(b"/")
            && !bare.as_os_str().is_empty()
            && std::fs::metadata(cwd.join(bare)).is_ok_and(|m| !m.is_dir())
        {
            return Err(Error::OutputNotADirectory {
                path: given.clone(),
            }
            .into());
        }
    }
    // A metrics file is an output of the job too (once, however often declared).
    let mut outputs: Vec<Declared> = declare(&spec.outputs);
    for m in &spec.metrics {
        let d = Declared::new(m, &cwd);
        if !outputs.iter().any(|o| o.abs == d.abs) {
            outputs.push(d);
        }
    }
    // An input the job also writes (`-i ckpt -o ckpt`, a checkpoint it resumes from) may
    // not exist on its first run: that run starts without it, said and recorded.
    let mut inputs = Vec::new();
    let mut notes = Vec::new();
    for (path, d) in spec.inputs.iter().zip(declare(&spec.inputs)) {
        match check_declared(&cwd, path, false) {
            Err(Error::MissingInput { .. })
                if outputs.iter().any(|o| crate::model::nested(&o.abs, &d.abs)) =>
            {
                let note = format!(
                    "input {} does not exist yet: the job writes it (a declared output), so \
                     this run starts without it",
                    path.display()
                );
                notes.push(note);
            }
            result => {
                result?;
                inputs.push(d);
            }
        }
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
    let program = check_command(&spec.argv, &cwd, path_var.as_deref())?;
    let observe = spec.observe.unwrap_or(settings.observe);
    let strict = spec.strict || settings.strict;
    if strict && !observe {
        let by = if spec.observe == Some(false) {
            "--no-observe"
        } else {
            "`[run] observe = false` in the settings"
        };
        return Err(Error::StrictUnobserved(by.into()).into());
    }
    // A key file that cannot be used never stops the job: a new one, and a warning.
    let (key, key_warning) = store.secret_key();
    if let Some(w) = key_warning {
        crate::ui::warn(&w);
    }
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
    Ok(Plan {
        inputs,
        notes,
        outputs,
        metrics: spec.metrics,
        metrics_patterns: settings.metrics.clone(),
        configs: declare(&spec.configs),
        config_keys: spec.config_keys,
        argv: spec.argv,
        program,
        env: spec.env,
        rerun_of: spec.rerun_of,
        params: spec.params,
        sample_interval,
        quiet: spec.quiet,
        sha256: spec.sha256,
        hash_before_launch: spec.hash_before_launch,
        observe,
        strict,
        stdout_to_stderr: spec.stdout_to_stderr,
        store,
        policy,
        capture_python: settings.capture_python,
        hashing: hash::Hashing::default(),
        signer: signer(spec.quiet),
        late: None,
        cwd,
    })
}

/// The user's signing key, made on first use; a key that cannot be used is a warning.
fn signer(quiet: bool) -> Option<Signer> {
    let Some(path) = sign::key_path() else {
        if !quiet {
            ui::warn("this run will not be signed: no home directory for a signing key");
        }
        return None;
    };
    match path.load() {
        Ok(s) => Some(s),
        Err(e) => {
            ui::warn(format_args!("this run will not be signed: {e}"));
            None
        }
    }
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
    // The kernel's files (/proc, /sys, /dev) are not content: /proc/self alone leads to the
    // whole filesystem and to files that never end.
    // (/dev/shm is memory-backed storage many jobs keep data in: it is content.)
    if let Ok(real) = std::fs::canonicalize(&full)
        && ["/proc", "/sys", "/dev"]
            .iter()
            .any(|k| real.starts_with(k))
        && !real.starts_with("/dev/shm")
    {
        return Err(unreadable(std::io::Error::other(
            "inside /proc, /sys or /dev: kernel files are not content lineage can identify",
        )));
    }
    // Readable now, or the job would run with an input lineage cannot identify.
    let readable = |kind: &PathKind| match kind {
        // Without blocking: a FIFO swapped in since the stat is refused, not waited on.
        PathKind::File => hash::open_regular(&full).map(drop),
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
/// Ok(Some): the program found on PATH (an absolute path), to be executed from there;
/// Ok(None): the job's exec looks for it itself (a path given, a PATH entry relative to the
/// job's directory).
fn check_command(
    argv: &[OsString],
    cwd: &Path,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<Option<PathBuf>, Error> {
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
    // Its path goes to execvp all the same, which runs a file without `#!` with /bin/sh.
    let searched = !program.as_bytes().contains(&b'/');
    Ok((searched && path.is_absolute()).then_some(path))
}
