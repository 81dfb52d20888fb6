//! What differs now from a run's record, checked before it is run again: the code (commit,
//! uncommitted changes, untracked files), each input and config (by its bytes), the
//! environment (redacted values taken from the current one), the Python packages and the
//! GPUs. Also the plan printed before the rerun, and the differences that could explain
//! outputs that differ after it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::capture::{git, gpu, software};
use crate::commands::target;
use crate::compare;
use crate::hash;
use crate::model::path_of;
use crate::model::{GitState, Hash, Role, RunRecord, prefix};
use crate::store::Store;

/// A declared input or config, now against then.
#[derive(Serialize, Clone, Debug)]
pub struct PathCheck {
    /// `input` or `config`.
    pub role: Role,
    pub path: String,
    pub recorded: Option<Hash>,
    pub now: Option<Hash>,
    /// Short ids of the runs that produced the recorded bytes.
    pub produced_by: Vec<String>,
    /// Their full ids, oldest first.
    #[serde(skip)]
    pub producer_ids: Vec<String>,
}

impl PathCheck {
    /// Whether the bytes there now are not the recorded ones (or are gone).
    pub fn differs(&self) -> bool {
        self.recorded != self.now
    }
}

/// Everything compared before running.
#[derive(Serialize, Default)]
pub struct Checks {
    /// Code differences (empty when the code hash matches).
    pub code: Vec<String>,
    /// Untracked files that appeared since the run (not blocking).
    pub new_untracked: Vec<String>,
    pub inputs: Vec<PathCheck>,
    pub configs: Vec<PathCheck>,
    /// Redacted variables taken from the current environment.
    pub env_from_current: Vec<String>,
    /// Redacted variables not set now: the job runs without them.
    pub env_missing: Vec<String>,
    pub packages: Vec<String>,
    pub system: Vec<String>,
}

/// The environment a rerun runs with.
pub type Env = Vec<(OsString, OsString)>;

/// What differs now from the record, and the environment to run with. With `worktree`,
/// configs count as the recorded ones (the worktree restores their stored bytes).
pub fn check(
    store: &Store,
    r: &RunRecord,
    worktree: bool,
    cache: &dyn hash::StatCache,
) -> Result<(Checks, Env)> {
    let mut checks = Checks::default();
    if let Some(then) = &r.capture.git {
        code(r, then, &mut checks);
    }
    paths(store, r, cache, &mut checks)?;
    if worktree {
        for c in &mut checks.configs {
            c.now = c.recorded;
        }
    }
    let env = environment(r, &mut checks);
    if let Some(py) = &r.capture.software.python {
        checks.packages = packages(store, py);
    }
    checks.system = gpus(r);
    Ok((checks, env))
}

/// The code now against the recorded code: only hashes are compared (nothing is stored, so
/// nothing needs redacting). Untracked files that appeared since are reported, not counted
/// as a difference in the code used.
fn code(r: &RunRecord, then: &GitState, checks: &mut Checks) {
    let cwd = PathBuf::from(OsString::from_vec(r.cwd.clone()));
    let data: Vec<PathBuf> = r.edges.iter().map(|e| path_of(&e.abs_path)).collect();
    let now = git::capture(&cwd, git::Caps::default(), &data, &|_| None);
    let Some(now) = now.state else {
        checks.code.push(format!(
            "the recorded repository is gone ({})",
            now.absent.unwrap_or_default()
        ));
        return;
    };
    if now.code == then.code {
        return;
    }
    let kept_untracked = then.untracked.iter().all(|u| {
        now.untracked
            .iter()
            .any(|n| n.path == u.path && n.hash == u.hash)
    });
    let mut appeared: Vec<String> = now
        .untracked
        .iter()
        .filter(|n| !then.untracked.iter().any(|u| u.path == n.path))
        .map(|n| n.path.clone())
        .collect();
    if now.commit == then.commit && now.patch == then.patch && kept_untracked {
        // Only files that appeared since: reported, not a difference in the code used.
        checks.new_untracked = appeared;
        return;
    }
    if now.commit != then.commit {
        checks.code.push(format!(
            "commit was {}, now {}",
            short_commit(then.commit.as_deref()),
            short_commit(now.commit.as_deref())
        ));
    }
    if now.patch != then.patch {
        let mut files: Vec<String> = then
            .changed_files
            .iter()
            .chain(&now.changed_files)
            .cloned()
            .collect();
        files.sort();
        files.dedup();
        checks
            .code
            .push(format!("uncommitted changes differ ({})", files.join(", ")));
    }
    // Recorded untracked files are code the job may have used: one that changed or went
    // missing blocks; a file that appeared since is only reported.
    let now_files: BTreeMap<_, _> = now.untracked.iter().map(|u| (&u.path, u.hash)).collect();
    for u in &then.untracked {
        match now_files.get(&u.path) {
            None => checks
                .code
                .push(format!("untracked file {} is gone", u.path)),
            Some(h) if *h != u.hash => checks
                .code
                .push(format!("untracked file {} changed", u.path)),
            _ => {}
        }
    }
    appeared.sort();
    appeared.dedup();
    checks.new_untracked = appeared;
}

/// Each input and config: the bytes there now against the recorded ones, and which runs
/// produced the recorded ones when they differ.
fn paths(
    store: &Store,
    r: &RunRecord,
    cache: &dyn hash::StatCache,
    checks: &mut Checks,
) -> Result<()> {
    let hashing = hash::Hashing::default();
    for e in r.edges.iter().filter(|e| e.role != Role::Output) {
        let recorded = e.artifact.as_ref().map(|a| a.hash);
        let path = &path_of(&e.abs_path);
        let now = match hash::path_kind(path) {
            Ok(hash::PathKind::File | hash::PathKind::Dir) => hashing
                .hash_path(path, &mut hash::discard, Some(cache), None)
                .ok()
                .map(|h| h.artifact.hash),
            _ => None,
        };
        let producer_ids = match recorded {
            Some(h) if recorded != now => target::producers(store, &h)?,
            _ => Vec::new(),
        };
        let check = PathCheck {
            role: e.role,
            path: e.path.clone(),
            recorded,
            now,
            produced_by: producer_ids
                .iter()
                .map(|id| store.short_id(id).unwrap_or_else(|_| id.clone()))
                .collect(),
            producer_ids,
        };
        match e.role {
            Role::Config => checks.configs.push(check),
            _ => checks.inputs.push(check),
        }
    }
    Ok(())
}

/// The recorded environment; redacted values come from the current one.
fn environment(r: &RunRecord, checks: &mut Checks) -> Env {
    let mut env = Vec::new();
    for (name, value) in &r.capture.env {
        if r.capture.env_redacted.contains_key(name) {
            match std::env::var_os(name) {
                Some(v) => {
                    checks.env_from_current.push(name.clone());
                    env.push((OsString::from(name), v));
                }
                None => checks.env_missing.push(name.clone()),
            }
        } else {
            env.push((OsString::from(name), OsString::from(value)));
        }
    }
    env
}

/// The packages installed now in the recorded interpreter against the recorded list.
fn packages(store: &Store, then: &crate::model::Python) -> Vec<String> {
    let (now, blob) = software::python(Path::new(&then.executable));
    if now.packages == then.packages {
        return Vec::new();
    }
    let lines = |bytes: Option<Vec<u8>>| -> Vec<String> {
        String::from_utf8_lossy(&bytes.unwrap_or_default())
            .lines()
            .map(str::to_string)
            .collect()
    };
    let recorded = lines(then.packages.and_then(|h| store.blob(&h).ok().flatten()));
    let d = compare::package_lists(&recorded, &lines(blob.map(|(_, b)| b)));
    let version = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    // In name order, what went or changed, then what is new.
    let mut gone_or_changed: BTreeMap<&String, String> = BTreeMap::new();
    for (name, v) in &d.removed {
        gone_or_changed.insert(
            name,
            format!("{name} {} is no longer installed", version(v)),
        );
    }
    for (name, c) in &d.changed {
        gone_or_changed.insert(
            name,
            format!("{name} {} -> {}", version(&c.a), version(&c.b)),
        );
    }
    let mut out: Vec<String> = gone_or_changed.into_values().collect();
    out.extend(
        d.added
            .iter()
            .map(|(name, v)| format!("{name} {} is new", version(v))),
    );
    out
}

/// The GPUs now against the recorded ones (name and driver).
fn gpus(r: &RunRecord) -> Vec<String> {
    let gpus = gpu::start(std::env::var("CUDA_VISIBLE_DEVICES").ok())
        .finish()
        .gpus;
    let describe = |g: &[crate::model::Gpu]| {
        g.iter()
            .map(|g| format!("{} (driver {})", g.name, g.driver_version))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if describe(&gpus) == describe(&r.capture.system.gpus) {
        return Vec::new();
    }
    vec![format!(
        "GPUs were [{}], now [{}]",
        describe(&r.capture.system.gpus),
        describe(&gpus)
    )]
}

fn short_commit(c: Option<&str>) -> String {
    c.map_or("(none)".to_string(), |c| prefix(c, 12).to_string())
}

/// Why a rerun would not be faithful, as the lines of its refusal: the code and configs
/// (unless a worktree restores them), inputs missing or changed.
pub fn blockers(checks: &Checks, worktree: bool) -> Vec<String> {
    let mut blockers = Vec::new();
    if !worktree {
        blockers.extend(checks.code.iter().map(|c| format!("code: {c}")));
        blockers.extend(
            checks
                .configs
                .iter()
                .filter(|c| c.differs())
                .map(|c| format!("config {} differs from the record", c.path)),
        );
    }
    for i in checks.inputs.iter().filter(|i| i.differs()) {
        let what = if i.now.is_none() {
            "is missing"
        } else {
            "differs from the record"
        };
        let mut line = format!("input {} {what}", i.path);
        if !i.produced_by.is_empty() {
            line += &format!(
                " (produced by run {}; --upstream reruns it)",
                i.produced_by.join(", ")
            );
        }
        blockers.push(line);
    }
    blockers
}

/// The recorded differences that could explain outputs that differ.
pub fn explain(c: &Checks) -> Vec<String> {
    let mut out: Vec<String> = c.code.iter().map(|x| format!("code: {x}")).collect();
    out.extend(
        c.inputs
            .iter()
            .chain(&c.configs)
            .filter(|i| i.differs())
            .map(|i| format!("{} {} differs", i.role.as_str(), i.path)),
    );
    out.extend(
        c.env_from_current
            .iter()
            .map(|n| format!("env {n} taken from the current environment")),
    );
    out.extend(c.env_missing.iter().map(|n| format!("env {n} not set now")));
    out.extend(c.packages.iter().map(|p| format!("package {p}")));
    out.extend(c.system.iter().cloned());
    if out.is_empty() {
        out.push("none recorded: the job itself is not deterministic (seeds, time, threads, GPU kernels)".into());
    }
    out
}

/// The plan printed before a rerun (on stdout with `--dry-run`).
pub fn plan_text(r: &RunRecord, short: &str, c: &Checks, worktree: bool) -> String {
    let mut t = format!(
        "plan: rerun {short} `{}` in {}{}\n",
        crate::output::command_line(&r.argv),
        String::from_utf8_lossy(&r.cwd),
        if worktree {
            " (mapped into a temporary worktree at the recorded commit)"
        } else {
            ""
        }
    );
    if c.code.is_empty() {
        t += "  code: same as recorded\n";
    }
    if !c.new_untracked.is_empty() {
        t += &format!(
            "  code: untracked files new since the run (not used then): {}\n",
            c.new_untracked.join(", ")
        );
    }
    for x in &c.code {
        let restored = if worktree {
            " (the worktree restores the recorded code)"
        } else {
            ""
        };
        t += &format!("  code: {x}{restored}\n");
    }
    for i in c.inputs.iter().chain(&c.configs) {
        let state = match (i.recorded, i.now) {
            (a, b) if a == b => "same as recorded",
            (_, None) => "missing",
            _ => "differs from the record",
        };
        let by = if i.differs() && !i.produced_by.is_empty() {
            format!(
                " (recorded bytes produced by run {})",
                i.produced_by.join(", ")
            )
        } else {
            String::new()
        };
        t += &format!("  {} {}: {state}{by}\n", i.role.as_str(), i.path);
    }
    t += &environment_lines(r, c);
    for p in &c.packages {
        t += &format!("  package: {p}\n");
    }
    for s in &c.system {
        t += &format!("  system: {s}\n");
    }
    t
}

/// The plan's lines about the environment and the redacted arguments.
fn environment_lines(r: &RunRecord, c: &Checks) -> String {
    let mut t = format!(
        "  env: {} variables restored from the record\n",
        r.capture.env.len() - c.env_missing.len() - c.env_from_current.len()
    );
    if !c.env_from_current.is_empty() {
        t += &format!(
            "  env: redacted, taken from the current environment: {}\n",
            c.env_from_current.join(", ")
        );
    }
    if !c.env_missing.is_empty() {
        t += &format!(
            "  env: redacted and not set now (the job runs without them): {}\n",
            c.env_missing.join(", ")
        );
    }
    for i in r.capture.argv_redacted.keys() {
        let set = if std::env::var_os(format!("LINEAGE_ARG_{i}")).is_some() {
            "set"
        } else {
            "not set: required"
        };
        t += &format!("  argv: argument {i} was redacted; taken from LINEAGE_ARG_{i} ({set})\n");
    }
    t
}

/// The recorded argv with each redacted argument taken from `LINEAGE_ARG_<position>`; the
/// job never receives `[REDACTED]`. Err: the positions still to set, with what was recorded.
pub fn restore_argv(r: &RunRecord) -> Result<Vec<OsString>, Vec<(usize, String)>> {
    let mut missing = Vec::new();
    let mut argv = Vec::with_capacity(r.argv.len());
    for (i, arg) in r.argv.iter().enumerate() {
        if r.capture.argv_redacted.contains_key(&i) {
            let var = format!("LINEAGE_ARG_{i}");
            match std::env::var_os(&var) {
                Some(v) => argv.push(v),
                None => missing.push((i, String::from_utf8_lossy(arg).into_owned())),
            }
        } else {
            argv.push(OsString::from_vec(arg.clone()));
        }
    }
    if missing.is_empty() {
        Ok(argv)
    } else {
        Err(missing)
    }
}
