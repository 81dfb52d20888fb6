//! `rerun --upstream`: the runs to rerun before the run itself, deepest dependency first: for
//! each input or config whose recorded bytes are missing or changed, the run that made those
//! bytes (as `target::upstream_producer` chooses it), and what that run needs first. Planned
//! whole before anything runs, so a dry run prints it and a real one refuses before starting.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::checks;
use crate::cli::RerunArgs;
use crate::commands::Context;
use crate::hash::StatCache;
use crate::model::RunRecord;
use crate::model::Standing;
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
    /// The repository a run recorded in a removed temporary worktree is rerun in.
    pub mapped: Option<String>,
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
    checked: &'a mut Checked,
}

impl Walk<'_> {
    /// Plan what `r` needs, deepest first.
    fn needs(&mut self, r: &RunRecord, depth: usize) -> Result<()> {
        if depth > 1000 {
            anyhow::bail!("the upstream chain of run {} is over 1000 runs deep", r.id);
        }
        let (checks, env) = checks::check(self.store, r, self.args.worktree, self.cache)?;
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
            let Some(producer) =
                crate::commands::target::upstream_producer(self.store, &recorded, r)?
            else {
                continue;
            };
            let remade = Remade {
                path: input.path.clone(),
                for_run: r.id.clone(),
                for_short: r_short.clone(),
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
