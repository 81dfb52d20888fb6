//! `rerun --upstream`: before the run itself, rerun (oldest dependency first) the runs that
//! produced inputs whose recorded bytes are missing or changed, skipping those whose outputs
//! already match.

use anyhow::Result;

use super::checks;
use crate::cli::RerunArgs;
use crate::commands::Context;
use crate::error::code;
use crate::model::RunRecord;
use crate::store::Store;
use crate::ui;

/// Rerun what `r` needs, deepest first; `done` holds the runs already rerun.
pub fn rerun(
    store: &Store,
    ctx: &Context,
    r: &RunRecord,
    args: &RerunArgs,
    done: &mut Vec<String>,
) -> Result<()> {
    let (checks, _) = checks::check(store, r, false, store)?;
    let own = crate::commands::verify::own_key();
    for input in checks
        .inputs
        .iter()
        .chain(&checks.configs)
        .filter(|i| i.differs())
    {
        // The latest run before this one that produced the recorded bytes (a run that
        // wrote the same bytes later, this one included, is not its cause).
        let Some(recorded) = input.recorded else {
            continue;
        };
        let Some(producer) = &crate::commands::target::upstream_producer(store, &recorded, r)?
        else {
            continue;
        };
        if done.contains(producer) {
            continue;
        }
        done.push(producer.clone());
        let short = store.short_id(producer)?;
        // Another run's command is run for you only when its record is proven: signed by a
        // trusted key (an imported run claiming to have written these bytes could hold any
        // command). --force runs an unproven one. The signature suffices here: the rerun of
        // the producer re-hashes what its record names and refuses it if tampered.
        let (_, standing, _) =
            crate::commands::verify::check(store, producer, false, own.as_deref(), ctx)?;
        if let Some(mark) = crate::commands::verify::mark(standing)
            && !args.force
        {
            anyhow::bail!(
                "upstream run {short}, which produced {}, is {mark}: not running its command for you (rerun it yourself, or --force)",
                input.path
            );
        }
        let parent = store.load_run(producer)?;
        rerun(store, ctx, &parent, args, done)?;
        if args.dry_run {
            // The plan only: nothing runs, nothing is recorded.
            ui::info(format_args!(
                "upstream: would rerun {short}, which produced {}",
                input.path
            ));
            continue;
        }
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
        let code = super::rerun_one(&sub, ctx).unwrap_or_else(|e| {
            ui::error(&e, Some(ctx.store_dir()));
            crate::error::exit_code(&e, true)
        });
        if code != code::SUCCESS && code != code::OUTPUTS_DIFFER {
            anyhow::bail!("upstream run {short} failed (exit {code}); not rerunning the rest");
        }
    }
    Ok(())
}
