//! `lineage rerun RUN`: compare now with then (code, inputs, configs, env, packages, GPU),
//! run the recorded argv again in the recorded cwd with the recorded environment (or, with
//! `--worktree`, in a temporary git worktree holding the exact recorded code), record it as a
//! new run linked to the original, and give a verdict: reproduced bit for bit, or not.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::Context;
use crate::capture::{git, gpu, software};
use crate::cli::RerunArgs;
use crate::commands::run::{self, Spec};
use crate::error::{Error, code};
use crate::hash;
use crate::model::graph::Via;
use crate::model::{Hash, Role, RunRecord, Status};
use crate::store::Store;
use crate::ui;

/// A declared input or config, now against then.
#[derive(Serialize, Clone, Debug)]
pub struct PathCheck {
    pub role: &'static str,
    pub path: String,
    pub recorded: Option<Hash>,
    pub now: Option<Hash>,
    /// Short ids of the runs that produced the recorded bytes.
    pub produced_by: Vec<String>,
    #[serde(skip)]
    producer_ids: Vec<String>,
}

impl PathCheck {
    fn differs(&self) -> bool {
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

#[derive(Serialize)]
pub struct OutputCheck {
    pub path: String,
    pub recorded: Option<Hash>,
    pub now: Option<Hash>,
    /// identical, differs or missing.
    pub result: &'static str,
}

#[derive(Serialize)]
pub struct Verdict {
    pub original: String,
    pub rerun: Option<String>,
    /// reproduced, outputs_differ, failed or not_run.
    pub verdict: &'static str,
    pub exit_code: u8,
    pub outputs: Vec<OutputCheck>,
    pub checks: Checks,
    pub worktree: Option<String>,
}

/// `lineage rerun`: the verdict's exit code, or the error that kept the job from starting.
pub fn rerun(args: RerunArgs, ctx: &Context) -> Result<u8> {
    rerun_inner(&args, ctx)
}

fn rerun_inner(args: &RerunArgs, ctx: &Context) -> Result<u8> {
    let store = ctx.open_store()?;
    let id = store.resolve(Some(&args.run))?;
    let original = store.load_run(&id)?;
    let short = store.short_id(&id)?;
    if args.upstream {
        upstream(&store, ctx, &original, args, &mut Vec::new())?;
    }
    // --dry-run writes nothing, not even the stat cache.
    let read_only = crate::store::ReadOnlyCache(&store);
    let cache: &dyn hash::StatCache = if args.dry_run { &read_only } else { &store };
    let (checks, env) = check(&store, &original, args.worktree, cache)?;
    let report = plan_text(&original, &short, &checks, args.worktree);
    if args.dry_run {
        ui::data(&report);
        return Ok(code::SUCCESS);
    }
    if !args.quiet {
        ui::info_lines(&report);
    }
    let mut blockers = Vec::new();
    if !args.worktree {
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
    if !blockers.is_empty() && !args.force {
        return Err(Error::RerunRefused {
            run: short,
            reasons: blockers,
            worktree: args.worktree,
        }
        .into());
    }

    let cwd = PathBuf::from(OsString::from_vec(original.cwd.clone()));
    let worktree = if args.worktree {
        Some(Worktree::create(&store, &original).context("while preparing the worktree")?)
    } else {
        None
    };
    let run_cwd = worktree.as_ref().map_or(cwd.clone(), |w| w.cwd.clone());
    if let Some(w) = &worktree {
        w.restore_inputs_and_configs(&store, &original, &run_cwd)?;
    }
    let edges = |role: Role| -> Vec<PathBuf> {
        original
            .edges
            .iter()
            .filter(|e| e.role == role)
            .map(|e| PathBuf::from(&e.path))
            .collect()
    };
    let argv = restore_argv(&original).map_err(|args| Error::RedactedArguments {
        run: short.clone(),
        args,
    })?;
    let spec = Spec {
        argv,
        cwd: run_cwd.clone(),
        inputs: edges(Role::Input),
        outputs: edges(Role::Output),
        configs: edges(Role::Config),
        params: original
            .params
            .iter()
            .filter(|p| p.source == "cli")
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect(),
        env_allow: Vec::new(),
        env_deny: Vec::new(),
        sample_interval: 1.0,
        quiet: args.quiet,
        env: Some(env),
        sha256: false,
        hash_before_launch: args.hash_before_launch,
        rerun_of: Some(original.id.clone()),
    };
    let executed = run::execute(run::plan(
        spec,
        Store::open(ctx.store_dir())?,
        &ctx.settings,
    )?);

    let outputs: Vec<OutputCheck> = original
        .edges
        .iter()
        .filter(|e| e.role == Role::Output)
        .map(|e| {
            let recorded = e.artifact.as_ref().map(|a| a.hash);
            let now = executed
                .outputs
                .iter()
                .find(|o| o.path == e.path)
                .and_then(|o| o.artifact.as_ref().map(|a| a.hash));
            let result = match (recorded, now) {
                (_, None) => "missing",
                (Some(r), Some(n)) if r == n => "identical",
                _ => "differs",
            };
            OutputCheck {
                path: e.path.clone(),
                recorded,
                now,
                result,
            }
        })
        .collect();
    let succeeded = executed.status == Some(Status::Succeeded);
    let reproduced = succeeded && outputs.iter().all(|o| o.result == "identical");
    let (verdict, exit) = match executed.status {
        None => ("not_run", executed.exit),
        Some(_) if !succeeded => ("failed", executed.exit),
        _ if reproduced => ("reproduced", 0),
        _ => ("outputs_differ", code::OUTPUTS_DIFFER),
    };
    let kept = worktree.and_then(|w| w.finish(args.keep_worktree));
    let rerun_short = store
        .short_id(&executed.id)
        .unwrap_or_else(|_| executed.id.clone());
    if !args.quiet || args.json {
        let mut text = match verdict {
            "reproduced" => format!(
                "rerun {rerun_short} of {short}: reproduced bit for bit ({} output{} identical)\n",
                outputs.len(),
                if outputs.len() == 1 { "" } else { "s" }
            ),
            "outputs_differ" => {
                let mut t = format!("rerun {rerun_short} of {short}: outputs differ\n");
                for o in outputs.iter().filter(|o| o.result != "identical") {
                    t += &format!("  {} {}\n", o.result, o.path);
                }
                let causes = explain(&checks);
                if !causes.is_empty() {
                    t += "  recorded differences that could explain it:\n";
                    for c in causes {
                        t += &format!("    {c}\n");
                    }
                }
                t
            }
            "failed" => {
                format!("rerun {rerun_short} of {short}: the command failed (exit {exit})\n")
            }
            _ => format!("rerun of {short}: the command did not run\n"),
        };
        if let Some(path) = &kept {
            text += &format!("worktree kept at {path}\n");
        }
        if !args.quiet {
            ui::info_lines(&text);
        }
    }
    if args.json {
        let v = Verdict {
            original: original.id.clone(),
            rerun: executed.status.map(|_| executed.id.clone()),
            verdict,
            exit_code: exit,
            outputs,
            checks,
            worktree: kept,
        };
        ui::data(&(serde_json::to_string_pretty(&v)? + "\n"));
    }
    Ok(exit)
}

/// The recorded argv with each redacted argument taken from `LINEAGE_ARG_<position>`; the
/// job never receives `[REDACTED]`. Err: the positions still to set, with what was recorded.
fn restore_argv(r: &RunRecord) -> Result<Vec<OsString>, Vec<(usize, String)>> {
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

/// What differs now from the record, and the environment to run with.
fn check(
    store: &Store,
    r: &RunRecord,
    worktree: bool,
    cache: &dyn hash::StatCache,
) -> Result<(Checks, Vec<(OsString, OsString)>)> {
    let mut checks = Checks::default();
    let cwd = PathBuf::from(OsString::from_vec(r.cwd.clone()));
    if let Some(then) = &r.capture.git {
        let data: Vec<PathBuf> = r.edges.iter().map(|e| PathBuf::from(&e.abs_path)).collect();
        // Only hashes are compared here: nothing is stored, so nothing needs redacting.
        let now = git::capture(&cwd, git::Caps::default(), &data, &|_| None);
        match now.state {
            Some(now) if now.code == then.code => {}
            // Only files that appeared since: reported, not a difference in the code used.
            Some(now)
                if now.commit == then.commit
                    && now.patch == then.patch
                    && then.untracked.iter().all(|u| {
                        now.untracked
                            .iter()
                            .any(|n| n.path == u.path && n.hash == u.hash)
                    }) =>
            {
                for n in &now.untracked {
                    if !then.untracked.iter().any(|u| u.path == n.path) {
                        checks.new_untracked.push(n.path.clone());
                    }
                }
            }
            Some(now) => {
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
                // Recorded untracked files are code the job may have used: one that changed or
                // went missing blocks; a file that appeared since is only reported.
                let now_files: BTreeMap<_, _> = now
                    .untracked
                    .iter()
                    .map(|u| (u.path.clone(), u.hash))
                    .collect();
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
                for path in now_files.keys() {
                    if !then.untracked.iter().any(|u| &u.path == path) {
                        checks.new_untracked.push(path.clone());
                    }
                }
            }
            None => checks.code.push(format!(
                "the recorded repository is gone ({})",
                now.absent.unwrap_or_default()
            )),
        }
    }
    for e in &r.edges {
        if e.role == Role::Output {
            continue;
        }
        let recorded = e.artifact.as_ref().map(|a| a.hash);
        let now = match hash::path_kind(Path::new(&e.abs_path)) {
            Ok(hash::PathKind::File | hash::PathKind::Dir) => hash::Hashing::default()
                .hash_path(
                    Path::new(&e.abs_path),
                    &mut hash::discard,
                    Some(cache),
                    None,
                )
                .ok()
                .map(|h| h.artifact.hash),
            _ => None,
        };
        let mut producer_ids = Vec::new();
        if recorded != now
            && let Some(h) = recorded
        {
            producer_ids = store
                .ancestry(&h, 1)?
                .into_iter()
                .filter(|l| l.artifact == h && matches!(l.via, Via::Direct | Via::InsideDir { .. }))
                .map(|l| l.run_id)
                .collect();
            producer_ids.sort();
            producer_ids.dedup();
        }
        let check = PathCheck {
            role: e.role.as_str(),
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
    // Worktree mode restores configs from their stored bytes.
    if worktree {
        for c in &mut checks.configs {
            c.now = c.recorded;
        }
    }

    // The recorded environment; redacted values come from the current one.
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

    if let Some(py) = &r.capture.software.python {
        let (now, blob) = software::python(Path::new(&py.executable));
        if now.packages != py.packages {
            let list = |text: Option<Vec<u8>>| -> BTreeMap<String, String> {
                String::from_utf8_lossy(&text.unwrap_or_default())
                    .lines()
                    .filter_map(|l| {
                        l.split_once("==")
                            .map(|(n, v)| (n.to_string(), v.to_string()))
                    })
                    .collect()
            };
            let then = list(py.packages.and_then(|h| store.blob(&h).ok().flatten()));
            let now = list(blob.map(|(_, b)| b));
            for (name, v) in &then {
                match now.get(name) {
                    None => checks
                        .packages
                        .push(format!("{name} {v} is no longer installed")),
                    Some(n) if n != v => checks.packages.push(format!("{name} {v} -> {n}")),
                    _ => {}
                }
            }
            for (name, v) in &now {
                if !then.contains_key(name) {
                    checks.packages.push(format!("{name} {v} is new"));
                }
            }
        }
    }
    let gpus = gpu::start(std::env::var("CUDA_VISIBLE_DEVICES").ok())
        .finish()
        .gpus;
    let describe = |g: &[crate::model::Gpu]| {
        g.iter()
            .map(|g| format!("{} (driver {})", g.name, g.driver_version))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if describe(&gpus) != describe(&r.capture.system.gpus) {
        checks.system.push(format!(
            "GPUs were [{}], now [{}]",
            describe(&r.capture.system.gpus),
            describe(&gpus)
        ));
    }
    Ok((checks, env))
}

fn short_commit(c: Option<&str>) -> String {
    c.map_or("(none)".to_string(), |c| c[..c.len().min(12)].to_string())
}

/// The recorded differences that could explain outputs that differ.
fn explain(c: &Checks) -> Vec<String> {
    let mut out: Vec<String> = c.code.iter().map(|x| format!("code: {x}")).collect();
    out.extend(
        c.inputs
            .iter()
            .chain(&c.configs)
            .filter(|i| i.differs())
            .map(|i| format!("{} {} differs", i.role, i.path)),
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

fn plan_text(r: &RunRecord, short: &str, c: &Checks, worktree: bool) -> String {
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
        t += &format!(
            "  code: {x}{}\n",
            if worktree {
                " (the worktree restores the recorded code)"
            } else {
                ""
            }
        );
    }
    for i in c.inputs.iter().chain(&c.configs) {
        let state = match (i.recorded, i.now) {
            (a, b) if a == b => "same as recorded".to_string(),
            (_, None) => "missing".to_string(),
            _ => "differs from the record".to_string(),
        };
        let by = if i.differs() && !i.produced_by.is_empty() {
            format!(
                " (recorded bytes produced by run {})",
                i.produced_by.join(", ")
            )
        } else {
            String::new()
        };
        t += &format!("  {} {}: {state}{by}\n", i.role, i.path);
    }
    t += &format!(
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
    for p in &c.packages {
        t += &format!("  package: {p}\n");
    }
    for s in &c.system {
        t += &format!("  system: {s}\n");
    }
    t
}

/// `--upstream`: first rerun, oldest dependency first, the runs that produced inputs whose
/// recorded bytes are missing or changed, skipping those whose outputs already match.
fn upstream(
    store: &Store,
    ctx: &Context,
    r: &RunRecord,
    args: &RerunArgs,
    done: &mut Vec<String>,
) -> Result<()> {
    let (checks, _) = check(store, r, false, store)?;
    for input in checks
        .inputs
        .iter()
        .chain(&checks.configs)
        .filter(|i| i.differs())
    {
        // The latest run that produced the recorded bytes.
        let Some(producer) = input.producer_ids.iter().max() else {
            continue;
        };
        if done.contains(producer) {
            continue;
        }
        done.push(producer.clone());
        let parent = store.load_run(producer)?;
        upstream(store, ctx, &parent, args, done)?;
        let short = store.short_id(producer)?;
        if !args.quiet {
            ui::info(format_args!(
                "upstream: rerunning {short}, which produced {}",
                input.path
            ));
        }
        let sub = RerunArgs {
            run: producer.clone(),
            dry_run: false,
            worktree: args.worktree,
            keep_worktree: false,
            upstream: false,
            force: args.force,
            json: false,
            hash_before_launch: args.hash_before_launch,
            quiet: args.quiet,
        };
        // Reported here, so that the line saying the chain stops follows it.
        let code = rerun_inner(&sub, ctx).unwrap_or_else(|e| {
            ui::error(&e, Some(ctx.store_dir()));
            crate::error::exit_code(&e, true)
        });
        if code != code::SUCCESS && code != code::OUTPUTS_DIFFER {
            anyhow::bail!("upstream run {short} failed (exit {code}); not rerunning the rest");
        }
    }
    Ok(())
}

/// The bytes to restore for a recorded file: its stored blob; or, when it held secrets (the
/// store keeps `redacted`, a copy with them redacted), the real file at `real` if it still has
/// the recorded hash, else the redacted copy, with a warning.
fn restore_bytes(
    store: &Store,
    what: &str,
    real: &Path,
    recorded: Hash,
    redacted: Option<Hash>,
) -> Result<Option<Vec<u8>>> {
    let Some(blob) = redacted else {
        return store.blob(&recorded);
    };
    match std::fs::read(real) {
        Ok(bytes) if Hash::of(&bytes) == recorded => Ok(Some(bytes)),
        _ => {
            ui::warn(format_args!(
                "{what} held secrets and has changed since: restored with them redacted"
            ));
            store.blob(&blob)
        }
    }
}

fn write_restored(target: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(target, bytes).with_context(|| format!("restoring {}", target.display()))
}

/// A temporary git worktree at the recorded commit, with the recorded changes applied.
struct Worktree {
    path: PathBuf,
    cwd: PathBuf,
    name: String,
    recorded_root: PathBuf,
    /// Kept on purpose (--keep-worktree); otherwise removed when dropped, on every path out.
    keep: bool,
}

impl Drop for Worktree {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
        if let Ok(repo) = git2::Repository::open(&self.recorded_root)
            && let Ok(wt) = repo.find_worktree(&self.name)
        {
            let mut opts = git2::WorktreePruneOptions::new();
            opts.valid(true).working_tree(true);
            let _ = wt.prune(Some(&mut opts));
        }
    }
}

impl Worktree {
    fn create(store: &Store, r: &RunRecord) -> Result<Worktree> {
        let g = r
            .capture
            .git
            .as_ref()
            .context("the run was not recorded in a git repository: --worktree needs one")?;
        let commit = g
            .commit
            .as_deref()
            .context("the run has no recorded commit")?;
        let repo = git2::Repository::open(&g.root)
            .with_context(|| format!("opening the repository {}", g.root))?;
        let oid = git2::Oid::from_str(commit)?;
        let commit_obj = repo
            .find_commit(oid)
            .with_context(|| format!("commit {commit} is not in {}", g.root))?;
        let name = format!("lineage-rerun-{}-{}", &r.id[..8], std::process::id());
        let path = std::env::temp_dir().join(&name);
        // git2 adds worktrees on a branch: make a temporary one, then detach the worktree's
        // HEAD at the commit and delete the branch, so none is ever left behind.
        let mut branch = repo.branch(&name, &commit_obj, false)?;
        let mut opts = git2::WorktreeAddOptions::new();
        let reference = repo.find_reference(&format!("refs/heads/{name}"))?;
        opts.reference(Some(&reference));
        repo.worktree(&name, &path, Some(&opts))?;
        // From here on, the guard removes the worktree on any error.
        let recorded_root = PathBuf::from(&g.root);
        let cwd_then = PathBuf::from(OsString::from_vec(r.cwd.clone()));
        let rel = cwd_then
            .strip_prefix(&recorded_root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let guard = Worktree {
            cwd: path.join(rel),
            path: path.clone(),
            name,
            recorded_root,
            keep: false,
        };
        let wt = git2::Repository::open(&path)?;
        wt.set_head_detached(oid)?;
        branch.delete()?;
        if let Some(patch) = g.patch {
            let bytes = store
                .blob(&patch)?
                .context("the recorded patch is not in the store")?;
            let diff = git2::Diff::from_buffer(&bytes)?;
            wt.apply(&diff, git2::ApplyLocation::WorkDir, None)
                .context("applying the recorded uncommitted changes")?;
        }
        for u in &g.untracked {
            if !u.stored {
                ui::warn(format_args!(
                    "untracked file {} was over the size cap when recorded: not restored",
                    u.path
                ));
                continue;
            }
            let bytes = restore_bytes(
                store,
                &format!("untracked file {}", u.path),
                &guard.recorded_root.join(&u.path),
                u.hash,
                u.redacted_blob,
            )?;
            if let Some(bytes) = bytes {
                write_restored(&path.join(&u.path), &bytes)?;
            }
        }
        Ok(guard)
    }

    /// Configs from their stored bytes; inputs the worktree lacks (data is rarely in git)
    /// linked to where they were read from.
    fn restore_inputs_and_configs(&self, store: &Store, r: &RunRecord, cwd: &Path) -> Result<()> {
        for e in &r.edges {
            let target = self.map(&cwd.join(&e.path), &e.abs_path);
            match e.role {
                Role::Config => {
                    let Some(recorded) = e.artifact.as_ref().map(|a| a.hash) else {
                        continue;
                    };
                    let bytes = restore_bytes(
                        store,
                        &format!("config {}", e.path),
                        Path::new(&e.abs_path),
                        recorded,
                        r.capture.config_redacted.get(&e.path).copied(),
                    )?;
                    if let Some(bytes) = bytes {
                        write_restored(&target, &bytes)?;
                    }
                }
                Role::Input if !target.exists() => {
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::os::unix::fs::symlink(&e.abs_path, &target)
                        .with_context(|| format!("linking input {} into the worktree", e.path))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// An absolute path recorded inside the repository maps into the worktree.
    fn map(&self, relative_to_cwd: &Path, abs: &str) -> PathBuf {
        if Path::new(abs).is_absolute()
            && let Ok(rel) = Path::new(abs).strip_prefix(&self.recorded_root)
            && !relative_to_cwd.starts_with(&self.path)
        {
            return self.path.join(rel);
        }
        relative_to_cwd.to_path_buf()
    }

    /// Keep the worktree and return its path, or let it be removed.
    fn finish(mut self, keep: bool) -> Option<String> {
        self.keep = keep;
        keep.then(|| self.path.display().to_string())
    }
}
