//! `lineage rerun RUN`: compare now with then (`checks`: code, inputs, configs, env,
//! packages, GPU), run the recorded argv again in the recorded cwd with the recorded
//! environment (or, with `--worktree`, in a temporary git worktree holding the exact recorded
//! code: `worktree`), record it as a new run linked to the original, and give a verdict
//! (`verdict`): reproduced bit for bit, or not. `--upstream` first reruns what produced
//! missing or changed inputs (`upstream`).

mod checks;
mod upstream;
mod verdict;
mod worktree;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use anyhow::{Context as _, Result};

use super::Context;
use super::run::{self, Spec};
use crate::cli::RerunArgs;
use crate::error::{Error, code};
use crate::hash::StatCache;
use crate::model::Seal;
use crate::model::{Role, RunRecord};
use crate::store::{ReadOnlyCache, Store};
use crate::ui;
use checks::Env;
use verdict::Verdict;
use worktree::Worktree;

/// `lineage rerun`: the verdict's exit code, or the error that kept the job from starting.
pub fn rerun(args: RerunArgs, ctx: &Context) -> Result<u8> {
    rerun_one(&args, ctx)
}

/// Plan, check, refuse or go, run, judge.
fn rerun_one(args: &RerunArgs, ctx: &Context) -> Result<u8> {
    let store = ctx.open_store()?;
    let id = store.resolve(Some(&args.run))?;
    let original = store.load_run(&id)?;
    // Its environment and code are in the capture: without it there is nothing to rerun.
    super::readable(&original)?;
    let short = store.short_id(&id)?;
    // A record changed since it was signed is not rerun as if it were the one recorded: its
    // command could be anyone's. One that is unsigned or signed by a key nobody trusts is
    // said so.
    let own = super::verify::own_key();
    let (seal, standing, _) = super::verify::check(&store, &id, true, own.as_deref(), ctx)?;
    match (&seal, super::verify::mark(standing)) {
        (Seal::Tampered { reason }, _) if !args.force => {
            return Err(Error::TamperedRecord {
                run: short,
                reason: reason.clone(),
            }
            .into());
        }
        (_, Some(mark)) => ui::warn(format_args!(
            "run {short}'s record is {mark}: nothing proves who recorded this command (lineage verify {short})"
        )),
        _ => {}
    }
    if args.upstream {
        upstream::rerun(&store, ctx, &original, args, &mut Vec::new())?;
    }
    // --dry-run writes nothing, not even the stat cache.
    let read_only = ReadOnlyCache(&store);
    let cache: &dyn StatCache = if args.dry_run { &read_only } else { &store };
    let (mut checks, env) = checks::check(&store, &original, args.worktree, cache)?;
    let plan = checks::plan_text(&original, &short, &checks, &env, args.worktree);
    if args.dry_run {
        ui::data(&plan);
        return Ok(code::SUCCESS);
    }
    if !args.quiet {
        ui::info_lines(&plan);
    }
    let blockers = checks::blockers(&checks, args.worktree);
    if !blockers.is_empty() && !args.force {
        return Err(Error::RerunRefused {
            run: short,
            reasons: blockers,
            worktree: args.worktree,
        }
        .into());
    }
    let worktree = if args.worktree {
        Some(Worktree::create(&store, &original).context("while preparing the worktree")?)
    } else {
        None
    };
    let cwd = worktree.as_ref().map_or_else(
        || PathBuf::from(OsString::from_vec(original.cwd.clone())),
        |w| w.cwd.clone(),
    );
    if let Some(w) = &worktree {
        w.restore_inputs_and_configs(&store, &original)
            .context("while preparing the worktree")?;
        // What the job will read there (restored, linked, or read where it is), hashed
        // again: the verdict is about those bytes, whatever the record claimed. The stat
        // cache is only read: files of a temporary worktree are not worth remembering.
        checks::recheck(&store, &original, &cwd, &read_only, &mut checks)?;
        let blockers = checks::blockers(&checks, true);
        if !blockers.is_empty() && !args.force {
            return Err(Error::RerunRefused {
                run: short,
                reasons: blockers,
                worktree: true,
            }
            .into());
        }
    }
    let spec = spec(&original, &short, cwd, env, args)?;
    let executed = run::execute(run::plan(
        spec,
        Store::open(ctx.store_dir())?,
        &ctx.settings,
    )?);
    let mut verdict = Verdict::of(&original, &executed, checks);
    verdict.worktree = worktree.and_then(|w| w.finish(args.keep_worktree));
    if !args.quiet {
        let rerun_short = store
            .short_id(&executed.id)
            .unwrap_or_else(|_| executed.id.clone());
        ui::info_lines(&verdict.text(&rerun_short, &short));
    }
    if args.json {
        ui::data(&(serde_json::to_string_pretty(&verdict)? + "\n"));
    }
    Ok(verdict.exit_code)
}

/// The run to launch: the recorded argv (redacted arguments from `LINEAGE_ARG_<i>`), paths,
/// command-line params and environment, in `cwd`, linked to the original.
fn spec(
    original: &RunRecord,
    short: &str,
    cwd: PathBuf,
    env: Env,
    args: &RerunArgs,
) -> Result<Spec> {
    let argv = checks::restore_argv(original).map_err(|args| Error::RedactedArguments {
        run: short.to_string(),
        args,
    })?;
    let edges = |role: Role| -> Vec<PathBuf> {
        original
            .edges
            .iter()
            .filter(|e| e.role == role)
            .map(|e| crate::model::path_of(&e.path))
            .collect()
    };
    Ok(Spec {
        argv,
        cwd,
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
    })
}
