//! What differs now from a run's record, checked before it is run again: the code (commit,
//! uncommitted changes, untracked files), each input and config (by its bytes), the
//! environment (redacted values taken from the current one), the Python packages and the
//! GPUs. Also the plan printed before the rerun, and the differences that could explain
//! outputs that differ after it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use nix::unistd::{AccessFlags, access};
use serde::Serialize;

use crate::capture::{git, gpu, software};
use crate::commands::target;
use crate::compare;
use crate::hash;
use crate::model::text::{escape, escape_bytes, terminal_command_line};
use crate::model::{EdgeRecord, GitState, Hash, Role, RunRecord, path_of, prefix};
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
}

impl PathCheck {
    /// Whether the bytes there now are not the recorded ones (or are gone).
    pub fn differs(&self) -> bool {
        self.recorded != self.now
    }
}

/// Everything compared before running.
#[derive(Serialize, Default, Clone)]
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
        // The configs the worktree restores from their stored bytes (those inside the
        // repository) count as the recorded ones; the others are read where they are.
        let restored = r
            .edges
            .iter()
            .filter(|e| e.role == Role::Config)
            .map(|e| super::worktree::restores_config(r, e));
        for (c, restored) in checks.configs.iter_mut().zip(restored) {
            if restored {
                c.now = c.recorded;
            }
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
    let now = git::capture(&cwd, git::Caps::default(), &data);
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

/// Each input and config: the bytes the job will read (the path as given, from the recorded
/// cwd) against the recorded ones, and which runs produced the recorded ones when they
/// differ.
fn paths(
    store: &Store,
    r: &RunRecord,
    cache: &dyn hash::StatCache,
    checks: &mut Checks,
) -> Result<()> {
    let cwd = PathBuf::from(OsString::from_vec(r.cwd.clone()));
    let hashing = hash::Hashing::default();
    for e in r.edges.iter().filter(|e| e.role != Role::Output) {
        let check = path_check(store, e, &cwd.join(path_of(&e.path)), &hashing, cache)?;
        match e.role {
            Role::Config => checks.configs.push(check),
            _ => checks.inputs.push(check),
        }
    }
    Ok(())
}

/// One input or config: the bytes at `now_at` against the recorded ones.
fn path_check(
    store: &Store,
    e: &EdgeRecord,
    now_at: &Path,
    hashing: &hash::Hashing,
    cache: &dyn hash::StatCache,
) -> Result<PathCheck> {
    let recorded = e.artifact.as_ref().map(|a| a.hash);
    // The file itself, wherever links lead (the stat cache knows it by that name).
    let path = std::fs::canonicalize(now_at).unwrap_or_else(|_| now_at.to_path_buf());
    let now = match hash::path_kind(&path) {
        Ok(hash::PathKind::File | hash::PathKind::Dir) => hashing
            .hash_path(&path, &mut hash::discard, Some(cache), None)
            .ok()
            .map(|h| h.artifact.hash),
        _ => None,
    };
    let producer_ids = match recorded {
        Some(h) if recorded != now => target::producers(store, &h)?,
        _ => Vec::new(),
    };
    Ok(PathCheck {
        role: e.role,
        path: e.path.clone(),
        recorded,
        now,
        produced_by: producer_ids
            .iter()
            .map(|id| store.short_id(id).unwrap_or_else(|_| id.clone()))
            .collect(),
    })
}

/// After a worktree is prepared, each input and config again, as the job will read it from
/// `job_cwd`: what was restored, linked, or is read where it is.
pub fn recheck(
    store: &Store,
    r: &RunRecord,
    job_cwd: &Path,
    cache: &dyn hash::StatCache,
    checks: &mut Checks,
) -> Result<()> {
    let hashing = hash::Hashing::default();
    checks.inputs.clear();
    checks.configs.clear();
    for e in r.edges.iter().filter(|e| e.role != Role::Output) {
        let check = path_check(store, e, &job_cwd.join(path_of(&e.path)), &hashing, cache)?;
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
        // A name no environment can hold (from a store edited by hand; imports refuse it)
        // would set another variable than the plan shows: left out.
        if name.is_empty() || name.contains(['=', '\0']) {
            continue;
        }
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
    // lineage's own variables are never recorded: a job that runs lineage itself gets this
    // session's (the store, say), never the arguments a rerun is given (`LINEAGE_ARG_<i>`).
    for (name, value) in std::env::vars_os() {
        let own = name.as_encoded_bytes().starts_with(b"LINEAGE_");
        if own && !name.as_encoded_bytes().starts_with(b"LINEAGE_ARG_") {
            env.push((name, value));
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

/// Why a rerun would not be faithful, as the lines of its refusal: the code (unless a
/// worktree restores it), configs (those a worktree restores count as the recorded ones),
/// inputs missing or changed. With `upstream`, what made an input was already rerun (or
/// cannot be): the line does not suggest `--upstream`.
pub fn blockers(checks: &Checks, worktree: bool, upstream: bool) -> Vec<String> {
    let mut blockers = Vec::new();
    if !worktree {
        blockers.extend(checks.code.iter().map(|c| format!("code: {c}")));
    }
    blockers.extend(
        checks
            .configs
            .iter()
            .filter(|c| c.differs())
            .map(|c| format!("config {} differs from the record", c.path)),
    );
    for i in checks.inputs.iter().filter(|i| i.differs()) {
        let what = if i.now.is_none() {
            "is missing"
        } else {
            "differs from the record"
        };
        let mut line = format!("input {} {what}", i.path);
        if !i.produced_by.is_empty() {
            line += &format!(
                " (produced by run {}{})",
                i.produced_by.join(", "),
                if upstream {
                    ""
                } else {
                    "; --upstream reruns it"
                }
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

/// The plan printed before a rerun (on stdout with `--dry-run`): what will run (the exact
/// argv, and the program it resolves to under the environment it will run with), what differs
/// from the record, and the variables that change how programs and modules are found where
/// they differ from now. Every recorded string in it is escaped: it is shown on a terminal.
///
/// `remade`: inputs an earlier step of the plan makes again (path -> which step).
pub fn plan_text(
    r: &RunRecord,
    short: &str,
    c: &Checks,
    env: &Env,
    worktree: bool,
    remade: &BTreeMap<String, String>,
) -> String {
    let mut t = format!(
        "plan: rerun {} `{}` in {}{}\n",
        escape(short),
        terminal_command_line(&r.argv),
        escape_bytes(&r.cwd),
        if worktree {
            " (mapped into a temporary worktree at the recorded commit)"
        } else {
            ""
        }
    );
    t += &program_line(r, env, worktree);
    if c.code.is_empty() {
        t += "  code: same as recorded\n";
    }
    if !c.new_untracked.is_empty() {
        t += &format!(
            "  code: untracked files new since the run (not used then): {}\n",
            c.new_untracked
                .iter()
                .map(|p| escape(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for x in &c.code {
        let restored = if worktree {
            " (the worktree restores the recorded code)"
        } else {
            ""
        };
        t += &format!("  code: {}{restored}\n", escape(x));
    }
    for i in c.inputs.iter().chain(&c.configs) {
        let state = match (i.recorded, i.now) {
            (a, b) if a == b => "same as recorded",
            (_, None) => "missing",
            _ => "differs from the record",
        };
        let by = if let Some(step) = remade.get(&i.path).filter(|_| i.differs()) {
            format!(" ({} remakes it)", escape(step))
        } else if i.differs() && !i.produced_by.is_empty() {
            format!(
                " (recorded bytes produced by run {})",
                escape(&i.produced_by.join(", "))
            )
        } else {
            String::new()
        };
        t += &format!("  {} {}: {state}{by}\n", i.role.as_str(), escape(&i.path));
    }
    t += &environment_lines(r, c, env);
    for p in &c.packages {
        t += &format!("  package: {}\n", escape(p));
    }
    for s in &c.system {
        t += &format!("  system: {}\n", escape(s));
    }
    t
}

/// `  program: /usr/bin/python3 (python3, found on the job's PATH)`: what the recorded
/// argv[0] resolves to under the environment the job will get, as execvp would find it.
fn program_line(r: &RunRecord, env: &Env, worktree: bool) -> String {
    let Some(program) = r.argv.first() else {
        return "  program: none recorded\n".to_string();
    };
    let shown = terminal_command_line(std::slice::from_ref(program));
    let program = OsString::from_vec(program.clone());
    if program.as_bytes().contains(&b'/') {
        if Path::new(&program).is_relative() {
            if worktree {
                return format!("  program: {shown}, relative to the job's cwd in the worktree\n");
            }
            let at = PathBuf::from(OsString::from_vec(r.cwd.clone())).join(&program);
            return format!("  program: {}\n", resolved(&at));
        }
        return format!("  program: {}\n", resolved(Path::new(&program)));
    }
    let path_var = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v);
    let Some(path_var) = path_var else {
        return format!("  program: {shown} not found: the job's environment has no PATH\n");
    };
    let found = std::env::split_paths(path_var)
        .map(|dir| dir.join(&program))
        .find(|p| p.is_file() && access(p, AccessFlags::X_OK).is_ok());
    match found {
        Some(p) => format!(
            "  program: {} ({shown}, found on the job's PATH)\n",
            resolved(&p)
        ),
        None => format!("  program: {shown} not found on the job's PATH\n"),
    }
}

/// A program's path, and where its links lead when it is one.
fn resolved(p: &Path) -> String {
    let shown = escape_bytes(p.as_os_str().as_bytes()).into_owned();
    match std::fs::canonicalize(p) {
        Ok(real) if real != p => {
            format!("{shown} -> {}", escape_bytes(real.as_os_str().as_bytes()))
        }
        Ok(_) => shown,
        Err(_) => format!("{shown} (not found)"),
    }
}

/// Variables that change which program, library or module a job gets: shown in the plan
/// when the job's value differs from the current one. Also any `LD_*`, `DYLD_*`, `PYTHON*`
/// and `CONDA_*` variable, bash's exported functions (`BASH_FUNC_*`, which replace a command
/// by a function in every bash the job starts), and any whose name ends in `PATH`.
const LOOKUP_VARIABLES: &[&str] = &[
    "VIRTUAL_ENV",
    "HOME",
    "BASH_ENV",
    "ENV",
    "ZDOTDIR",
    "JAVA_HOME",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    "OPENSSL_MODULES",
    "GIT_SSH_COMMAND",
    "GIT_SSH",
    "GIT_EXEC_PATH",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "PERL5DB",
    "GLIBC_TUNABLES",
    "MALLOC_CONF",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "PERL5LIB",
    "PERLLIB",
    "PERL5OPT",
    "RUBYLIB",
    "RUBYOPT",
    "GEM_HOME",
    "NODE_OPTIONS",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "R_LIBS",
    "R_LIBS_USER",
    "R_LIBS_SITE",
    "JULIA_DEPOT_PATH",
];

/// Whether a variable changes how programs, libraries or modules are found.
pub fn is_lookup_variable(name: &str) -> bool {
    LOOKUP_VARIABLES.contains(&name)
        || ["LD_", "DYLD_", "PYTHON", "CONDA_", "BASH_FUNC_", "LUA_INIT"]
            .iter()
            .any(|p| name.starts_with(p))
        || name.ends_with("PATH")
}

/// The plan's lines about the environment and the redacted arguments.
fn environment_lines(r: &RunRecord, c: &Checks, env: &Env) -> String {
    let mut t = format!(
        "  env: {} variables restored from the record\n",
        r.capture
            .env
            .len()
            .saturating_sub(c.env_missing.len() + c.env_from_current.len())
    );
    let quote = |v: &OsString| terminal_command_line(&[v.as_bytes().to_vec()]);
    let job: BTreeMap<&OsString, &OsString> = env.iter().map(|(k, v)| (k, v)).collect();
    let now: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    let names: std::collections::BTreeSet<&OsString> =
        job.keys().copied().chain(now.keys()).collect();
    for name in names {
        if !is_lookup_variable(&name.to_string_lossy()) {
            continue;
        }
        let shown = escape_bytes(name.as_bytes());
        match (job.get(name), now.get(name)) {
            (Some(a), Some(b)) if *a != b => {
                t += &format!(
                    "  env: {shown} for the job is {} (now {})\n",
                    quote(a),
                    quote(b)
                );
            }
            (Some(a), None) => {
                t += &format!("  env: {shown} for the job is {} (not set now)\n", quote(a));
            }
            (None, Some(b)) => {
                t += &format!("  env: {shown} is not set for the job (now {})\n", quote(b));
            }
            _ => {}
        }
    }
    if !c.env_from_current.is_empty() {
        t += &format!(
            "  env: redacted, taken from the current environment: {}\n",
            escape(&c.env_from_current.join(", "))
        );
    }
    if !c.env_missing.is_empty() {
        t += &format!(
            "  env: redacted and not set now (the job runs without them): {}\n",
            escape(&c.env_missing.join(", "))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::hostile::{bytes, config, is_inert, text};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config(200))]

        /// The plan of a record holding arbitrary argv, cwd, paths, names and environment:
        /// inert, and one line per thing planned (a recorded newline starts no line).
        #[test]
        fn a_plan_of_arbitrary_text_is_inert_and_forges_no_line(
            argv in prop::collection::vec(bytes(), 1..4),
            cwd in bytes(),
            t in prop::collection::vec(text(), 6..7),
            value in bytes(),
        ) {
            let mut r = RunRecord::example("id", "x");
            r.argv = argv;
            r.cwd = cwd;
            let check = |role, path: &str| PathCheck {
                role,
                path: path.to_string(),
                recorded: Some(Hash::of(b"a")),
                now: None,
                produced_by: vec![t[5].clone()],
            };
            let c = Checks {
                code: vec![t[0].clone()],
                new_untracked: vec![t[1].clone()],
                inputs: vec![check(Role::Input, &t[2])],
                configs: vec![check(Role::Config, &t[3])],
                env_from_current: vec![t[4].clone()],
                env_missing: Vec::new(),
                packages: vec![t[5].clone()],
                system: Vec::new(),
            };
            let env: Env = vec![
                (OsString::from("PATH"), OsString::from_vec(value.clone())),
                (OsString::from("LD_PRELOAD"), OsString::from_vec(value)),
            ];
            let plan = plan_text(&r, &t[5], &c, &env, false, &BTreeMap::new());
            is_inert(&plan).map_err(TestCaseError::fail)?;
            prop_assert_eq!(plan.lines().filter(|l| !l.starts_with("  ")).count(), 1, "{}", plan);
            prop_assert!(plan.lines().any(|l| l.starts_with("  program: ")), "{}", plan);
        }
    }
}
