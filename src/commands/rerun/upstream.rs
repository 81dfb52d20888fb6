//! `rerun --upstream`: the runs to rerun before the run itself, deepest dependency first: for
//! each input or config whose recorded bytes are missing or changed, the run that made those
//! bytes (as `target::upstream_producer` chooses it), and what that run needs first. Planned
//! whole before anything runs, so a dry run prints it and a real one refuses before starting.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::checks;
use super::moved::{Mapped, Moves};
use crate::cli::RerunArgs;
use crate::commands::Context;
use crate::hash::StatCache;
use crate::model::{Hash, RunRecord, Standing};
use crate::store::Store;

/// A run to rerun before the run itself.
pub struct Step {
    /// Its record (a run recorded in a removed temporary worktree mapped back to its
    /// repository: `mapped`).
    pub record: RunRecord,
    pub short: String,
    /// Who recorded it, as far as its signature proves.
    pub standing: Standing,
    /// The inputs of later steps whose recorded bytes it made: why it is rerun.
    pub remakes: Vec<Remade>,
    /// Where a run recorded where it is no longer (a removed temporary worktree, a
    /// repository moved since) is rerun.
    pub mapped: Option<Mapped>,
}

/// An input of a later step that an upstream step makes again.
#[derive(Serialize, Clone, Debug)]
pub struct Remade {
    /// The path as the later step names it.
    pub path: String,
    /// The later step's full run id.
    #[serde(rename = "for")]
    pub for_run: String,
    /// Its short id, for people.
    #[serde(skip)]
    pub for_short: String,
    /// The recorded bytes it is remade for.
    #[serde(skip)]
    pub hash: Hash,
}

/// Another recorded run that made the bytes an upstream step is rerun for, whose own rerun
/// would not be refused now: named when the step's would be.
#[derive(Serialize, Clone, Debug)]
pub struct Alternative {
    /// Its full id.
    pub run: String,
    /// The path it made the bytes of, as the later step names it.
    pub path: String,
    /// Its short id, for people.
    #[serde(skip)]
    pub short: String,
}

impl Alternative {
    /// `run 5d2c91f0 also produced these bytes (mid.txt): lineage rerun 5d2c91f0`
    pub fn text(&self) -> String {
        format!(
            "run {short} also produced these bytes ({}): lineage rerun {short}",
            crate::model::text::escape(&self.path),
            short = crate::model::text::escape(&self.short)
        )
    }
}

/// Producers of one artifact looked at for an alternative: the first few, best first.
const ALTERNATIVES_CHECKED: usize = 3;

/// For an upstream step (run `step`, rerun for `remakes`) whose rerun would be refused: the
/// other recorded runs that produced the same bytes (`target::producers`, best first, the
/// first few), less the step and the runs it is rerun for, whose own rerun would not be
/// refused now (their checks find nothing that blocks, their record is not tampered, no
/// argument is missing). At most one per path.
pub fn alternatives(
    store: &Store,
    step: &str,
    remakes: &[Remade],
    worktree: bool,
    cache: &dyn StatCache,
) -> Result<Vec<Alternative>> {
    let mut out: Vec<Alternative> = Vec::new();
    for m in remakes {
        if out.iter().any(|a| a.path == m.path) {
            continue;
        }
        let candidates = crate::commands::target::producers(store, &m.hash)?
            .into_iter()
            .filter(|id| id != step && !remakes.iter().any(|r| r.for_run == *id))
            .take(ALTERNATIVES_CHECKED);
        for id in candidates {
            if matches!(
                store.check_run(&id, true)?,
                crate::model::Seal::Tampered { .. }
            ) {
                continue;
            }
            let Some(record) = store.load_runs(&[id.as_str()])?.pop() else {
                continue;
            };
            if crate::commands::readable(&record).is_err() || checks::restore_argv(&record).is_err()
            {
                continue;
            }
            let (record, _) = super::worktree::as_original(store, record)?;
            let (c, _) = checks::check(store, &record, worktree, cache)?;
            if checks::blockers(&c, worktree, false).is_empty() {
                out.push(Alternative {
                    short: store.short_id(&id).unwrap_or_else(|_| id.clone()),
                    run: id,
                    path: m.path.clone(),
                });
                break;
            }
        }
    }
    Ok(out)
}

/// What each run planned was found to differ from its record, and the environment it would
/// run with, by run id: what was checked while planning, for a dry run to print (the bytes of
/// the inputs are not read twice).
pub type Checked = BTreeMap<String, (checks::Checks, checks::Env)>;

/// The upstream steps of `target`, in the order they run, and what was checked. An upstream
/// run whose record is not proven (signed by a trusted key) is refused, naming it, unless
/// `--force`: its command is run for you, dry run or not, only when proven. `cache` is only
/// read in a dry run.
pub fn plan(
    store: &Store,
    ctx: &Context,
    target: &RunRecord,
    args: &RerunArgs,
    cache: &dyn StatCache,
    moves: &Moves,
) -> Result<(Vec<Step>, Checked)> {
    let own = crate::commands::verify::own_key();
    let mut steps = Vec::new();
    let mut seen = vec![target.id.clone()];
    let mut checked = Checked::new();
    let mut walk = Walk {
        store,
        ctx,
        args,
        cache,
        own: own.as_deref(),
        steps: &mut steps,
        seen: &mut seen,
        checked: &mut checked,
        moves,
        now: checks::Current::default(),
    };
    walk.needs(target, 0)?;
    Ok((steps, checked))
}

struct Walk<'a> {
    store: &'a Store,
    ctx: &'a Context,
    args: &'a RerunArgs,
    cache: &'a dyn StatCache,
    own: Option<&'a str>,
    steps: &'a mut Vec<Step>,
    /// Runs planned or being planned (a run is never its own ancestor; this makes sure).
    seen: &'a mut Vec<String>,
    moves: &'a Moves,
    checked: &'a mut Checked,
    /// The paths and repositories as they are while the plan is made, each hashed once.
    now: checks::Current,
}

impl Walk<'_> {
    /// Plan what `r` needs, deepest first.
    fn needs(&mut self, r: &RunRecord, depth: usize) -> Result<()> {
        // Each level is a frame of this recursion (a checks pass each): deeper than any
        // real pipeline, and well within the main thread's stack.
        if depth > 256 {
            anyhow::bail!(
                "the upstream chain of run {} is over 256 runs deep: rerun a run part of the way up first",
                r.id
            );
        }
        let (checks, env) =
            checks::check_now(self.store, r, self.args.worktree, self.cache, &self.now)?;
        let r_short = self.store.short_id(&r.id).unwrap_or_else(|_| r.id.clone());
        for input in checks
            .inputs
            .iter()
            .chain(&checks.configs)
            .filter(|i| i.differs())
        {
            let Some(recorded) = input.recorded else {
                continue;
            };
            let Some(producer) = crate::commands::target::upstream_producer_at(
                self.store,
                &recorded,
                r,
                Some(&input.path),
            )?
            else {
                continue;
            };
            let remade = Remade {
                path: input.path.clone(),
                for_run: r.id.clone(),
                for_short: r_short.clone(),
                hash: recorded,
            };
            if let Some(planned) = self.steps.iter_mut().find(|s| s.record.id == producer) {
                planned.remakes.push(remade);
                continue;
            }
            if self.seen.contains(&producer) {
                continue;
            }
            self.seen.push(producer.clone());
            let short = self.store.short_id(&producer)?;
            // Another run's command is run for you only when its record is proven: signed
            // by a trusted key (an imported run claiming to have written these bytes could
            // hold any command). --force runs an unproven one. The signature suffices here:
            // the rerun of the producer re-hashes what its record names and refuses it if
            // tampered.
            let (_, standing, _) =
                crate::commands::verify::check(self.store, &producer, false, self.own, self.ctx)?;
            if let Some(mark) = crate::commands::verify::mark(standing)
                && !self.args.force
            {
                anyhow::bail!(
                    "upstream run {short}, which produced {}, is {mark}: not running its command for you (rerun it yourself, or --force)",
                    input.path
                );
            }
            let record = self.store.load_run(&producer)?;
            crate::commands::readable(&record)?;
            let (record, mapped) = super::worktree::as_original(self.store, record)?;
            let (record, mapped) = {
                let mut holds = super::moved::holds_now(&self.now, self.cache, self.store);
                self.moves.relocate_unless(
                    self.store,
                    record,
                    mapped.map(Mapped::Worktree),
                    &mut holds,
                )
            };
            self.needs(&record, depth + 1)?;
            self.steps.push(Step {
                record,
                short,
                standing,
                remakes: vec![remade],
                mapped,
            });
        }
        self.checked.insert(r.id.clone(), (checks, env));
        Ok(())
    }
}
