//! `lineage rerun RUN`: compare now with then (`checks`: code, inputs, configs, env,
//! packages, GPU), run the recorded argv again in the recorded cwd with the recorded
//! environment (or, with `--worktree`, in a temporary git worktree holding the exact recorded
//! code: `worktree`), record it as a new run linked to the original, and give a verdict
//! (`verdict`): reproduced bit for bit, or not. `--upstream` first reruns what produced
//! missing or changed inputs (`upstream`), every step planned before any runs, in the one
//! worktree with `--worktree`. `--dry-run` prints that plan (`plan`) and runs nothing.

mod checks;
pub mod moved;
mod plan;
pub mod stale;
mod upstream;
mod verdict;
mod worktree;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::Context;
use super::run::{self, Spec};
use crate::cli::RerunArgs;
use crate::error::{Error, code};
use crate::hash::StatCache;
use crate::model::{Role, RunRecord, Seal, Standing};
use crate::store::{ReadOnlyCache, Store};
use crate::ui;
use checks::Env;
use plan::{Plan, Planned};
use upstream::Step;
use verdict::{Outcome, Verdict};
use worktree::Worktree;

/// `lineage rerun`: the verdict's exit code, or the error that kept the job from starting.
/// Plan (the upstream steps too), refuse or go, run each step, judge.
pub fn rerun(args: RerunArgs, ctx: &Context) -> Result<u8> {
    if let Some(paths) = &args.stale {
        // `--stale --json out/`: clap takes the path after another option for RUN.
        let mut paths = paths.clone();
        if let Some(extra) = &args.run {
            if std::fs::symlink_metadata(extra).is_err() {
                anyhow::bail!(
                    "--stale takes paths, and {} is not one (`lineage rerun RUN` reruns one run)",
                    crate::model::text::escape(extra)
                );
            }
            paths.push(PathBuf::from(extra));
        }
        return rerun_stale(&paths, &args, ctx);
    }
    let store = ctx.open_store()?;
    let id = store.resolve(args.run.as_deref())?;
    let original = store.load_run(&id)?;
    // Its environment and code are in the capture: without it there is nothing to rerun.
    super::readable(&original)?;
    let short = store.short_id(&id)?;
    one_process(&original, &short)?;
    let own = super::verify::own_key();
    let standing = proof(&store, ctx, &id, &short, args.force, own.as_deref())?;
    // A run recorded in a temporary worktree removed since is rerun as its original was.
    let (original, mapped) = worktree::as_original(&store, original)?;
    // --dry-run writes nothing, not even the stat cache.
    let read_only = ReadOnlyCache(&store);
    let cache: &dyn StatCache = if args.dry_run { &read_only } else { &store };
    // One recorded in a repository moved since is rerun where that repository is now.
    let moves = match std::env::current_dir() {
        Ok(here) => moved::Moves::into_repo_of(&store, &here)?,
        Err(_) => moved::Moves::default(),
    };
    let now = checks::Current::default();
    let (original, mapped) = moves.relocate_unless(
        &store,
        original,
        mapped.map(moved::Mapped::Worktree),
        &mut moved::holds_now(&now, cache, &store),
    );
    // Recorded in another copy of the project here, and not read here (run there since this
    // copy was made, or no file of its here holds its bytes): it reruns there, as recorded;
    // said, since you are here.
    if mapped.is_none()
        && let Some(root) = original.capture.git.as_ref().map(|g| g.root.as_str())
        && moves.is_other_copy(root)
    {
        ui::warn(format_args!(
            "run {short} was recorded in {}, another copy of this project, {}: it reruns there, not here",
            crate::model::text::escape(root),
            moves.why_not_here(&original)
        ));
    }
    let (upstream, mut checked) = if args.upstream {
        upstream::plan(&store, ctx, &original, &args, cache, &moves)?
    } else {
        Default::default()
    };
    for step in &upstream {
        one_process(&step.record, &step.short)?;
    }
    if args.dry_run {
        let steps: Vec<Planned> = upstream.iter().map(Planned::upstream).collect();
        let run = Planned {
            record: &original,
            short: &short,
            standing,
            remakes: &[],
            mapped: mapped.as_ref(),
        };
        let plan = Plan::of(&store, &steps, run, &args, &read_only, &mut checked)?;
        if args.json {
            ui::data(&(serde_json::to_string_pretty(&plan)? + "\n"));
        } else {
            ui::data(&plan.text());
        }
        return Ok(code::SUCCESS);
    }
    // Bytes at its outputs that no recorded run wrote would be lost to a rerun in place.
    if !args.worktree && !args.force {
        let edited = checks::edited_outputs(&store, &original, &store)?;
        if !edited.is_empty() {
            return Err(Error::RerunRefused {
                run: short.to_string(),
                reasons: edited,
                worktree: false,
            }
            .into());
        }
    }
    // One worktree for the whole rerun: every upstream step runs in it, with its own
    // recorded code, and writes its outputs there for the steps after it.
    let worktree = if args.worktree {
        let mut runs: Vec<(&RunRecord, &str)> = upstream
            .iter()
            .map(|s| (&s.record, s.short.as_str()))
            .collect();
        runs.push((&original, &short));
        Some(Worktree::create(&store, &runs).context("while preparing the worktree")?)
    } else {
        None
    };
    let n = upstream.len();
    for (i, step) in upstream.iter().enumerate() {
        if !args.quiet {
            let paths: Vec<String> = step
                .remakes
                .iter()
                .map(|m| crate::model::text::escape(&m.path).into_owned())
                .collect();
            ui::info(format_args!(
                "upstream step {} of {n}: rerunning {}, which produced {}",
                i + 1,
                step.short,
                paths.join(", ")
            ));
        }
        let done = proof(
            &store,
            ctx,
            &step.record.id,
            &step.short,
            args.force,
            own.as_deref(),
        )
        .and_then(|_| {
            let remade = remade_for(&upstream, &step.record.id);
            rerun_step(&store, ctx, step, worktree.as_ref(), &remade, &args)
        });
        // Reported here, so that the line saying the chain stops follows it.
        let stopped = match done {
            Ok((verdict, rerun_short)) => {
                if !args.quiet {
                    ui::info_lines(&verdict.text(&rerun_short, &step.short));
                }
                match verdict.verdict {
                    Outcome::Failed => Some(format!("failed (exit {})", verdict.exit_code)),
                    Outcome::NotRun => Some(format!("did not run (exit {})", verdict.exit_code)),
                    _ => None,
                }
            }
            Err(e) => {
                // Refused (not run): said once, with why and the way past it.
                let refused = match e.downcast_ref::<Error>() {
                    Some(Error::RerunRefused { reasons, .. }) => Some(reasons.join("; ")),
                    Some(Error::TamperedRecord { reason, .. }) => Some(format!(
                        "its record was changed after it was signed ({reason})"
                    )),
                    _ => None,
                };
                if let Some(why) = refused {
                    ui::error_line(format_args!(
                        "upstream run {} was refused: {why}; not rerunning the rest",
                        step.short
                    ));
                    // Another run that made the same bytes may not be.
                    let others = upstream::alternatives(
                        &store,
                        &step.record.id,
                        &step.remakes,
                        args.worktree,
                        cache,
                    )
                    .unwrap_or_default();
                    for a in &others {
                        ui::hint(a.text());
                    }
                    if let Some(h) = e.downcast_ref::<Error>().and_then(Error::hint) {
                        ui::hint(h);
                    }
                    return Ok(code::CANNOT_LAUNCH);
                }
                ui::error(&e, Some(ctx.store_dir()));
                Some(format!(
                    "could not be rerun (exit {})",
                    crate::error::exit_code(&e, true)
                ))
            }
        };
        if let Some(what) = stopped {
            anyhow::bail!("upstream run {} {what}; not rerunning the rest", step.short);
        }
    }
    let run = Step {
        record: original,
        short: short.clone(),
        standing,
        remakes: Vec::new(),
        mapped,
    };
    let remade = remade_for(&upstream, &run.record.id);
    let (mut verdict, rerun_short) =
        rerun_step(&store, ctx, &run, worktree.as_ref(), &remade, &args)?;
    verdict.worktree = worktree.and_then(|w| w.finish(args.keep_worktree));
    if !args.quiet {
        ui::info_lines(&verdict.text(&rerun_short, &short));
    }
    if args.json {
        ui::data(&(serde_json::to_string_pretty(&verdict)? + "\n"));
    }
    Ok(verdict.exit_code)
}

/// What the record of run `id` proves. A record changed since it was signed is not rerun as
/// if it were the one recorded (its command could be anyone's) unless forced, dry run or not;
/// one that is unsigned or signed by a key nobody trusts is said so.
fn proof(
    store: &Store,
    ctx: &Context,
    id: &str,
    short: &str,
    force: bool,
    own: Option<&str>,
) -> Result<Standing> {
    let (seal, standing, _) = super::verify::check(store, id, true, own, ctx)?;
    match (&seal, super::verify::mark(standing)) {
        (Seal::Tampered { reason }, _) if !force => {
            return Err(Error::TamperedRecord {
                run: short.to_string(),
                reason: reason.clone(),
            }
            .into());
        }
        (_, Some(mark)) => ui::warn(format_args!(
            "run {short}'s record is {mark}: nothing proves who recorded this command (lineage verify {short})"
        )),
        _ => {}
    }
    Ok(standing)
}

/// The inputs of run `id` that an upstream step makes again: path -> which step.
fn remade_for(upstream: &[Step], id: &str) -> BTreeMap<String, String> {
    upstream
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.remakes
                .iter()
                .filter(|m| m.for_run == id)
                .map(move |m| (m.path.clone(), format!("upstream step {}", i + 1)))
        })
        .collect()
}

/// One step: check, refuse or go, run (in the worktree, when there is one), judge. Returns
/// the verdict and the new run's short id.
fn rerun_step(
    store: &Store,
    ctx: &Context,
    step: &Step,
    worktree: Option<&Worktree>,
    remade: &BTreeMap<String, String>,
    args: &RerunArgs,
) -> Result<(Verdict, String)> {
    let (r, short) = (&step.record, step.short.as_str());
    let (mut checks, env) = checks::check(store, r, worktree.is_some(), store)?;
    let mut plan = checks::plan_text(r, short, &checks, &env, worktree.is_some(), remade);
    if let Some(m) = &step.mapped {
        plan += &m.line();
    }
    if !args.quiet {
        ui::info_lines(&plan);
    }
    // In a worktree, what an upstream step made is there, not here: it is checked there.
    let mut then = checks.clone();
    if worktree.is_some() {
        for c in then.inputs.iter_mut().chain(then.configs.iter_mut()) {
            if remade.contains_key(&c.path) {
                c.now = c.recorded;
            }
        }
    }
    let blockers = checks::blockers(&then, worktree.is_some(), args.upstream);
    if !blockers.is_empty() && !args.force {
        return Err(Error::RerunRefused {
            run: short.to_string(),
            reasons: blockers,
            worktree: worktree.is_some(),
        }
        .into());
    }
    let cwd = match worktree {
        Some(w) => {
            w.prepare(store, r)
                .context("while preparing the worktree")?;
            let cwd = w.cwd(r)?;
            // What the job will read there (restored, linked, written by an upstream step,
            // or read where it is), hashed again: the verdict is about those bytes, whatever
            // the record claimed. The stat cache is only read: files of a temporary worktree
            // are not worth remembering.
            checks::recheck(store, r, &cwd, &ReadOnlyCache(store), &mut checks)?;
            let blockers = checks::blockers(&checks, true, args.upstream);
            if !blockers.is_empty() && !args.force {
                return Err(Error::RerunRefused {
                    run: short.to_string(),
                    reasons: blockers,
                    worktree: true,
                }
                .into());
            }
            cwd
        }
        None => PathBuf::from(OsString::from_vec(r.cwd.clone())),
    };
    // A run read in another copy of its project is rerun here; a path it names by its old
    // place (in a config, its code) still leads there. Its outputs as they were recorded
    // there are watched: a change there is the job writing into the other copy.
    let elsewhere = outputs_where_recorded(step);
    make_output_dirs(r, &cwd);
    let spec = spec(r, short, cwd, env, args)?;
    let executed = run::execute(run::plan(
        spec,
        Store::open(ctx.store_dir())?,
        &ctx.settings,
    )?);
    let touched: Vec<String> = elsewhere
        .iter()
        .filter(|(p, before)| changed_since(p, *before))
        .map(|(p, _)| crate::model::text::escape(&p.display().to_string()).into_owned())
        .collect();
    if let (false, Some(moved::Mapped::Moved { from, to, .. })) = (touched.is_empty(), &step.mapped)
    {
        ui::warn(format_args!(
            "the rerun wrote {}, in {} where run {short} was recorded, not in {}: a path in its \
             config, code or arguments, or a symbolic link, leads there",
            touched.join(", "),
            crate::model::text::escape(from),
            crate::model::text::escape(to)
        ));
    }
    let verdict = Verdict::of(store, r, &executed, checks);
    let rerun_short = match executed.recorded {
        true => store
            .short_id(&executed.id)
            .unwrap_or_else(|_| executed.id.clone()),
        false => "(not recorded)".to_string(),
    };
    Ok((verdict, rerun_short))
}

/// The directories the run's outputs were written in, and its directory outputs, made where
/// they are missing, as a rerun in place finds them: a fresh clone holds no `out/` when git
/// ignores it. Only inside the repository the rerun runs in (else its working directory),
/// never through a link that leads out of it, nor by a `..`; what cannot be made is left to
/// the job to find.
fn make_output_dirs(r: &RunRecord, cwd: &Path) {
    let root = git2::Repository::discover(cwd)
        .ok()
        .and_then(|repo| repo.workdir().map(Path::to_path_buf))
        .unwrap_or_else(|| cwd.to_path_buf());
    let Ok(root) = root.canonicalize() else {
        return;
    };
    for e in r.edges.iter().filter(|e| e.role == Role::Output) {
        let path = cwd.join(crate::model::path_of(&e.path));
        // A directory output is made too (its job may write inside it without making it).
        let dir = e
            .artifact
            .as_ref()
            .is_some_and(|a| a.kind == crate::model::ArtifactKind::Dir);
        let Some(parent) = (if dir {
            Some(path.as_path())
        } else {
            path.parent()
        }) else {
            continue;
        };
        // The deepest part of it that is there (a link there counts: it is not replaced).
        let mut there = parent;
        while there.symlink_metadata().is_err() {
            match there.parent() {
                Some(up) => there = up,
                None => break,
            }
        }
        if there == parent {
            continue;
        }
        let Ok(rest) = parent.strip_prefix(there) else {
            continue;
        };
        let plain = rest
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        let Ok(real) = there.canonicalize() else {
            continue;
        };
        if plain && real.starts_with(&root) {
            let _ = std::fs::create_dir_all(real.join(rest));
        }
    }
}

/// When `path` last changed (its ctime), if it exists.
type Changed = Option<(i64, i64)>;

fn ctime(path: &Path) -> Changed {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.ctime(), m.ctime_nsec()))
}

fn changed_since(path: &Path, before: Changed) -> bool {
    let now = ctime(path);
    now.is_some() && now != before
}

/// For a step read in another copy of its project (moved from a place still there, or
/// copied), its outputs at the place it was recorded, each with when it last changed.
fn outputs_where_recorded(step: &Step) -> Vec<(PathBuf, Changed)> {
    let Some(moved::Mapped::Moved { from, to, .. }) = &step.mapped else {
        return Vec::new();
    };
    step.record
        .edges
        .iter()
        .filter(|e| e.role == crate::model::Role::Output)
        .filter_map(|e| {
            let rest = moved::under(&e.abs_path, to)?;
            Some(crate::model::path_of(&format!("{from}{rest}")))
        })
        .filter(|p| p.exists())
        .map(|p| {
            let at = ctime(&p);
            (p, at)
        })
        .collect()
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
    // The inputs and configs declared; the outputs declared and observed (the verdict
    // compares each of them, observed or not this time). An input only observed is left to
    // be observed again: the job may no longer read it.
    let edges = |role: Role| -> Vec<PathBuf> {
        original
            .edges
            .iter()
            .filter(|e| e.role == role)
            .filter(|e| {
                role == Role::Output
                    || !matches!(
                        e.observed,
                        Some(crate::model::Seen::Undeclared | crate::model::Seen::Job)
                    )
            })
            .map(|e| crate::model::path_of(&e.path))
            .collect()
    };
    Ok(Spec {
        argv,
        cwd,
        inputs: edges(Role::Input),
        outputs: edges(Role::Output),
        configs: edges(Role::Config),
        config_keys: original
            .capture
            .config_keys
            .iter()
            .map(|(p, k)| (crate::model::path_of(p), k.clone()))
            .collect(),
        metrics: original
            .capture
            .metrics_files
            .iter()
            .map(|m| crate::model::path_of(m))
            .collect(),
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
        observe: None,
        strict: false,
        stdout_to_stderr: args.json,
        rerun_of: Some(original.id.clone()),
    })
}

/// `lineage rerun --stale [PATH...]`: what is stale under the paths, rerun in order, makers
/// first, each with the code, configs and inputs there now (differences from its record are
/// why it is stale: not a refusal). After each, what is stale is found again: a run whose
/// makers remade the very bytes it read is current, and skipped. Stops at the first stage
/// that fails, with its exit code.
fn rerun_stale(paths: &[PathBuf], args: &RerunArgs, ctx: &Context) -> Result<u8> {
    let roots = super::status::roots(paths)?;
    let store = ctx.open_store()?;
    let moves = moved::Moves::into_repos_of(&store, &roots)?;
    let own = super::verify::own_key();
    let step_args = RerunArgs {
        run: None,
        stale: None,
        dry_run: false,
        worktree: false,
        keep_worktree: false,
        upstream: false,
        force: true,
        // Each step's job prints to stderr where the chain's JSON is on stdout.
        json: args.json,
        hash_before_launch: args.hash_before_launch,
        quiet: true,
    };
    let mut rerun: Vec<String> = Vec::new();
    let mut made: Vec<(String, String)> = Vec::new();
    let mut new_ids: Vec<String> = Vec::new();
    // With --json: each step's verdict, printed as one object however the chain ends (done,
    // a failed step, a signal, or an error after some steps ran: printed on drop).
    let mut verdicts = Verdicts {
        json: args.json && !args.dry_run,
        list: Vec::new(),
    };
    // Every command rerun for you must be proven (signed by you or a trusted key, its record
    // intact), as with --upstream: an imported run that last wrote a file here could hold any
    // command. Checked for all of them before any runs; --force runs unproven ones.
    let unproven = |stages: &[stale::Stage]| -> Result<()> {
        if args.force {
            return Ok(());
        }
        for s in stages.iter().filter(|s| s.stale) {
            let (seal, standing, _) =
                super::verify::check(&store, &s.id, false, own.as_deref(), ctx)?;
            let mark = match seal {
                Seal::Tampered { .. } => Some("tampered"),
                _ => super::verify::mark(standing),
            };
            if let Some(mark) = mark {
                anyhow::bail!(
                    "stale run {} (`{}`) is {mark}: not running its command for you (rerun it yourself after `lineage verify {}`, or --force)",
                    s.short,
                    s.command,
                    s.short
                );
            }
        }
        Ok(())
    };
    // Bytes at a stage's outputs that no recorded run wrote (edited by hand, or made by
    // something unrecorded) would be lost for good to its rerun: refused, named (a dry run
    // names it under its plan); --force reruns anyway. A missing output is simply made again;
    // bytes another recorded run wrote there (a later stage writing into its directory, a
    // failed run's partial output) are recorded, and no reason to stop.
    let refusal = |stages: &[&stale::Stage]| -> Result<Option<String>> {
        for s in stages {
            // One file two stages write (under two names, or one inside the other's
            // directory): each rerun would undo the other's.
            if let Some(same) = &s.two_names {
                return Ok(Some(format!(
                    "stale run {} (`{}`): {}, so that rerunning one makes the other stale: not rerunning it (let one run write each file, declared by one name: lineage records a path through a link by its name)",
                    s.short,
                    s.command,
                    crate::model::text::escape(same)
                )));
            }
            let now = checks::Current::default();
            let (record, mapped) = moves.relocate(
                &store,
                store.load_run(&s.id)?,
                &mut moved::holds_now(&now, &store, &store),
            );
            // Recorded in another copy of this project, and not read here (since this copy
            // was made, or no file of its here with its bytes): rerunning it would write
            // there, even with --force.
            if mapped.is_none()
                && let Some(root) = record.capture.git.as_ref().map(|g| g.root.as_str())
                && moves.is_other_copy(root)
            {
                return Ok(Some(format!(
                    "stale run {} (`{}`) was recorded in {}, another copy of this project, {}: rerunning it would write there, not here (rerun it there, or rerun its stage here with `lineage run`)",
                    s.short,
                    s.command,
                    crate::model::text::escape(root),
                    moves.why_not_here(&record)
                )));
            }
            if args.force {
                continue;
            }
            let planted = stale::planted_outputs(&record);
            if !planted.is_empty() {
                let shown: Vec<_> = planted
                    .iter()
                    .map(|p| crate::model::text::escape(p))
                    .collect();
                return Ok(Some(format!(
                    "stale run {} (`{}`) would write out of the project through a symbolic link made since it ran: {}: not rerunning it (remove the link, or --force to write there)",
                    s.short,
                    s.command,
                    shown.join(", ")
                )));
            }
            let paths = stale::unrecorded_outputs(&store, &record, &store)?;
            if paths.is_empty() {
                continue;
            }
            let shown: Vec<_> = paths
                .iter()
                .take(5)
                .map(|p| crate::model::text::escape(p))
                .collect();
            let more = match paths.len() {
                n if n > 5 => format!(" and {} more", n - 5),
                _ => String::new(),
            };
            let them = if paths.len() == 1 { "it" } else { "them" };
            return Ok(Some(format!(
                "stale run {} (`{}`) would overwrite {}{more}, which no recorded run wrote (edited by hand, or written by a run lineage could not record?): not rerunning it (move {them} away to keep {them}, or --force to overwrite {them})",
                s.short,
                s.command,
                shown.join(", ")
            )));
        }
        Ok(None)
    };
    let first = stale::find(&store, &roots, &moves)?;
    unproven(&first)?;
    if !args.dry_run
        && let Some(why) = refusal(&first.iter().filter(|s| s.stale).collect::<Vec<_>>())?
    {
        anyhow::bail!(why);
    }
    let stale_at_first: Vec<String> = first
        .iter()
        .filter(|s| s.stale)
        .map(|s| s.short.clone())
        .collect();
    // A stopping signal between two steps (or during one: the job gets it too) ends the
    // chain after the step.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for &sig in crate::child::STOPPING {
        let _ = signal_hook::flag::register_usize(sig, std::sync::Arc::clone(&stop), sig as usize);
    }
    loop {
        let got = stop.load(std::sync::atomic::Ordering::SeqCst);
        if got != 0 {
            ui::error_line(format_args!(
                "interrupted by signal {got}; not rerunning the rest"
            ));
            return Ok(code::killed_by(got as i32));
        }
        reap_finished_children();
        let stages = stale::find(&store, &roots, &moves)?;
        unproven(&stages)?;
        let Some(next) = stages.into_iter().find(|s| s.stale) else {
            if args.dry_run && args.json {
                let plan = StalePlan {
                    refused: false,
                    refusal: None,
                    stages: Vec::new(),
                };
                ui::data(&(serde_json::to_string_pretty(&plan)? + "\n"));
                return Ok(code::SUCCESS);
            }
            break;
        };
        // A rerun made here that is stale again: the stages read each other's outputs (a
        // cycle), and would run for ever.
        let of_ours = store
            .load_run(&next.id)?
            .rerun_of
            .is_some_and(|o| new_ids.contains(&o) || new_ids.contains(&next.id));
        if of_ours || new_ids.contains(&next.id) {
            anyhow::bail!(
                "run {} is stale again after this rerun made it ({}): its stages read what each other write (a cycle); not rerunning the rest",
                next.short,
                next.reasons.join("; ")
            );
        }
        if rerun.contains(&next.id) {
            // Rerun once already and still stale (it changed what it reads, or its outputs
            // were touched meanwhile): not again.
            anyhow::bail!(
                "run {} is still stale after it was rerun ({}); not rerunning the rest",
                next.short,
                next.reasons.join("; ")
            );
        }
        // Checked again for the stage about to run once a step has: what ran before it may
        // have changed what lies at its outputs.
        if !rerun.is_empty()
            && let Some(why) = refusal(&[&next])?
        {
            anyhow::bail!(why);
        }
        if args.dry_run {
            // Without running, what comes after cannot be found again: every stale stage.
            let stages = stale::find(&store, &roots, &moves)?;
            let list: Vec<&stale::Stage> = stages.iter().filter(|s| s.stale).collect();
            let mut t = format!("would rerun {} stale run(s), in this order:\n", list.len());
            for s in &list {
                t += &format!(
                    "  {}  {}\n      because {}\n",
                    s.short,
                    s.command,
                    crate::model::text::escape(&s.reasons.join("; "))
                );
                if let Some(from) = &s.moved_from {
                    t += &format!(
                        "      recorded in {}, moved since: rerun here\n",
                        crate::model::text::escape(from)
                    );
                }
                if let Some(from) = &s.copied_from {
                    t += &format!(
                        "      recorded in {}, another copy of this project: rerun here\n",
                        crate::model::text::escape(from)
                    );
                }
            }
            let why = refusal(&list)?;
            if args.json {
                let plan = StalePlan {
                    refused: why.is_some(),
                    refusal: why,
                    stages: list,
                };
                ui::data(&(serde_json::to_string_pretty(&plan)? + "\n"));
                return Ok(code::SUCCESS);
            }
            if let Some(why) = why {
                t += &format!("would refuse: {why}\n");
            }
            ui::data(&t);
            return Ok(code::SUCCESS);
        }
        if !args.quiet {
            ui::info(format_args!(
                "rerunning {} `{}`: {}",
                next.short,
                next.command,
                crate::model::text::escape(&next.reasons.join("; "))
            ));
        }
        let record = store.load_run(&next.id)?;
        super::readable(&record)?;
        one_process(&record, &next.short)?;
        let standing = proof(&store, ctx, &next.id, &next.short, false, own.as_deref())?;
        // Recorded in a repository moved here since: rerun here.
        let now = checks::Current::default();
        let (record, mapped) =
            moves.relocate(&store, record, &mut moved::holds_now(&now, &store, &store));
        if let Some(m) = mapped.as_ref().filter(|_| !args.quiet) {
            ui::info_lines(&m.line());
        }
        let step = Step {
            record,
            short: next.short.clone(),
            standing,
            remakes: Vec::new(),
            mapped,
        };
        let (verdict, new_short) =
            rerun_step(&store, ctx, &step, None, &BTreeMap::new(), &step_args)?;
        rerun.push(next.id.clone());
        if let Some(id) = &verdict.rerun {
            new_ids.push(id.clone());
        }
        let verdict = {
            verdicts.list.push(verdict);
            verdicts.list.last().expect("just pushed")
        };
        // Ran, but kept out of the store (no room): what it wrote is no recorded run's, and
        // the stages after it would be judged against bytes nobody recorded.
        if verdict.rerun.is_none() && verdict.verdict != Outcome::NotRun {
            ui::error_line(format_args!(
                "the rerun of {} ran but could not be recorded (see the warning above); not \
                 rerunning the rest",
                next.short
            ));
            let exit = match verdict.verdict {
                Outcome::Failed => verdict.exit_code,
                _ => code::CANNOT_LAUNCH,
            };
            return Ok(exit);
        }
        match verdict.verdict {
            Outcome::Failed | Outcome::NotRun => {
                ui::error_line(format_args!(
                    "run {new_short} (rerun of {}) failed with exit {}; not rerunning the rest",
                    next.short, verdict.exit_code
                ));
                let exit = verdict.exit_code;
                return Ok(exit);
            }
            _ => {
                let changed = verdict
                    .outputs
                    .iter()
                    .filter(|o| o.result != verdict::Comparison::Identical)
                    .count();
                if !args.quiet {
                    ui::info(format_args!(
                        "run {new_short} made {} output(s): {changed} with new bytes",
                        verdict.outputs.len()
                    ));
                }
                made.push((next.short, new_short));
            }
        }
    }
    if !args.quiet {
        let skipped: Vec<&String> = stale_at_first
            .iter()
            .filter(|s| !made.iter().any(|(a, _)| a == *s))
            .collect();
        if !skipped.is_empty() && !made.is_empty() {
            ui::info(format_args!(
                "{} stale at first, current once their makers ran again (nothing they read changed): {}",
                skipped.len(),
                skipped
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if made.is_empty() {
            ui::info(format_args!("nothing is stale: nothing rerun"));
        } else {
            ui::info(format_args!(
                "{} stale run(s) rerun: {}",
                made.len(),
                made.iter()
                    .map(|(a, b)| format!("{a} -> {b}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(code::SUCCESS)
}

/// `lineage rerun --stale --dry-run --json`: the stale stages in the order they would run
/// (as `status --json` gives each), and whether the chain would be refused now, and why.
#[derive(serde::Serialize)]
struct StalePlan<'a> {
    refused: bool,
    refusal: Option<String>,
    stages: Vec<&'a stale::Stage>,
}

/// `lineage rerun --stale --json`: the verdict of each rerun, in the order they ran (the
/// last one the failure that stopped the chain, if one did), printed when the chain ends
/// however it ends.
struct Verdicts {
    json: bool,
    list: Vec<verdict::Verdict>,
}

#[derive(serde::Serialize)]
struct StaleReruns<'a> {
    reruns: &'a [verdict::Verdict],
}

impl Drop for Verdicts {
    fn drop(&mut self) {
        if self.json
            && let Ok(text) = serde_json::to_string_pretty(&StaleReruns { reruns: &self.list })
        {
            ui::data(&(text + "\n"));
        }
    }
}

/// Reap the children of earlier steps that have ended (the process that answers a job's
/// file calls once lineage is done with it outlives its step): a long chain leaves no
/// zombies.
fn reap_finished_children() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    while let Ok(status) = waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// A rank of a launch (`srun lineage run ...`) is not rerun alone: its recorded environment
/// names peers that will not come, and it would wait for them. Refused before anything runs
/// (docs/recording.md, "Distributed jobs").
fn one_process(run: &RunRecord, short: &str) -> Result<()> {
    match &run.capture.group {
        Some(g) => Err(Error::RankOfLaunch {
            run: short.to_string(),
            rank: g.rank,
            world_size: g.world_size,
            launch: crate::model::text::escape(&g.launch).into_owned(),
            launcher: g.launcher.clone(),
        }
        .into()),
        None => Ok(()),
    }
}
