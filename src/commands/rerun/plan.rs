//! `rerun --dry-run`: the whole plan, every upstream step in the order it would run, then the
//! run itself, each with what differs from its record and what would refuse it; as text or
//! as JSON (`--json`, docs/json.md). Nothing runs, nothing is written: the checks read the
//! stat cache without adding to it, and the blockers are reported, never acted on.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::checks::{self, Checks};
use super::moved::Mapped;
use super::upstream::{self, Alternative, Checked, Remade, Step};
use crate::cli::RerunArgs;
use crate::hash::StatCache;
use crate::model::text::escape;
use crate::model::{RunRecord, Standing};
use crate::output::json::lossy;
use crate::store::Store;

/// The plan of a rerun, as `rerun --dry-run --json` prints it.
#[derive(Serialize)]
pub struct Plan {
    /// The run asked for (full id).
    pub run: String,
    pub worktree: bool,
    pub force: bool,
    /// Whether a rerun with these flags would be refused now (some step's `blockers`,
    /// without `--force`).
    pub refused: bool,
    /// Upstream steps in the order they would run, then the run itself.
    pub steps: Vec<PlanStep>,
}

/// Which part of the plan a step is.
#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A run rerun first, for bytes a later step needs.
    Upstream,
    /// The run asked for.
    Run,
}

/// One run of the plan.
#[derive(Serialize)]
pub struct PlanStep {
    pub step: StepKind,
    /// Its full id.
    pub run: String,
    /// The recorded argv (secrets redacted) and working directory.
    pub command: Vec<String>,
    pub cwd: String,
    /// For a run recorded in a temporary worktree removed since: the repository it is rerun
    /// in, as the run it reproduced was; for one recorded in a repository moved since: where
    /// that repository is now.
    pub mapped_to: Option<String>,
    /// Who recorded it, as far as its signature proves.
    pub record: Standing,
    /// For an upstream step: the inputs of later steps it makes again.
    pub remakes: Vec<Remade>,
    /// Its inputs an earlier step makes again (not counted as blockers).
    pub remade: Vec<String>,
    /// What differs from its record now.
    pub checks: Checks,
    /// What would refuse it without `--force`.
    pub blockers: Vec<String>,
    /// For an upstream step that would be refused: other recorded runs that made the same
    /// bytes and whose rerun would not be (`lineage rerun` one of them instead).
    pub also_produced_by: Vec<Alternative>,
    #[serde(skip)]
    text: String,
}

/// One run to plan: its record and what is known of it.
pub struct Planned<'a> {
    pub record: &'a RunRecord,
    pub short: &'a str,
    pub standing: Standing,
    pub remakes: &'a [Remade],
    pub mapped: Option<&'a Mapped>,
}

impl<'a> Planned<'a> {
    pub fn upstream(s: &'a Step) -> Planned<'a> {
        Planned {
            record: &s.record,
            short: &s.short,
            standing: s.standing,
            remakes: &s.remakes,
            mapped: s.mapped.as_ref(),
        }
    }
}

impl Plan {
    /// The plan of `upstream` then `run`: what was `checked` while planning them, or checked
    /// now with `cache` (read only).
    pub fn of(
        store: &Store,
        upstream: &[Planned],
        run: Planned,
        args: &RerunArgs,
        cache: &dyn StatCache,
        checked: &mut Checked,
    ) -> Result<Plan> {
        let all: Vec<(StepKind, &Planned)> = upstream
            .iter()
            .map(|p| (StepKind::Upstream, p))
            .chain(std::iter::once((StepKind::Run, &run)))
            .collect();
        let mut steps = Vec::new();
        for (i, (kind, p)) in all.iter().enumerate() {
            let r = p.record;
            let (checks, env) = match checked.remove(&r.id) {
                Some(c) => c,
                None => checks::check(store, r, args.worktree, cache)?,
            };
            // Its inputs that an earlier step makes again: by then they are the recorded ones.
            let remade: BTreeMap<String, String> = all[..i]
                .iter()
                .enumerate()
                .flat_map(|(j, (_, earlier))| {
                    earlier
                        .remakes
                        .iter()
                        .filter(|m| m.for_run == r.id)
                        .map(move |m| (m.path.clone(), format!("upstream step {}", j + 1)))
                })
                .collect();
            let mut then = checks.clone();
            for c in then.inputs.iter_mut().chain(then.configs.iter_mut()) {
                if remade.contains_key(&c.path) {
                    c.now = c.recorded;
                }
            }
            let mut blockers = checks::blockers(&then, args.worktree, args.upstream);
            if *kind == StepKind::Run && !args.worktree {
                blockers.extend(checks::edited_outputs(store, r, cache)?);
            }
            if let Err(missing) = checks::restore_argv(r) {
                blockers.extend(missing.iter().map(|(i, _)| {
                    format!("argument {i} was redacted when recorded: set LINEAGE_ARG_{i}")
                }));
            }
            if p.standing == Standing::Tampered {
                blockers.push(format!(
                    "its record was changed after it was signed (lineage verify {})",
                    p.short
                ));
            }
            let mut text = String::new();
            if *kind == StepKind::Upstream {
                let why: Vec<String> = p
                    .remakes
                    .iter()
                    .map(|m| format!("{} for run {}", escape(&m.path), escape(&m.for_short)))
                    .collect();
                text += &format!(
                    "upstream step {} of {}: remakes {}\n",
                    i + 1,
                    upstream.len(),
                    why.join(", ")
                );
            } else if !upstream.is_empty() {
                text += "then the run itself:\n";
            }
            text += &checks::plan_text(r, p.short, &checks, &env, args.worktree, &remade);
            if let Some(m) = p.mapped {
                text += &m.line();
            }
            for b in &blockers {
                if args.force {
                    text += &format!("  --force: runs although {}\n", escape(b));
                } else {
                    text += &format!("  would refuse: {}\n", escape(b));
                }
            }
            let also_produced_by =
                if *kind == StepKind::Upstream && !blockers.is_empty() && !args.force {
                    upstream::alternatives(store, &r.id, p.remakes, args.worktree, cache)?
                } else {
                    Vec::new()
                };
            for a in &also_produced_by {
                text += &format!("  {}\n", a.text());
            }
            steps.push(PlanStep {
                step: *kind,
                run: r.id.clone(),
                command: r.argv.iter().map(|a| lossy(a)).collect(),
                cwd: lossy(&r.cwd),
                mapped_to: p.mapped.map(|m| m.root().to_string()),
                record: p.standing,
                remakes: p.remakes.to_vec(),
                remade: remade.into_keys().collect(),
                checks,
                blockers,
                also_produced_by,
                text,
            });
        }
        let refused = !args.force && steps.iter().any(|s| !s.blockers.is_empty());
        Ok(Plan {
            run: run.record.id.clone(),
            worktree: args.worktree,
            force: args.force,
            refused,
            steps,
        })
    }

    /// The plan for people, on stdout: each step's plan, then what a rerun would do.
    pub fn text(&self) -> String {
        let mut t: String = self.steps.iter().map(|s| s.text.as_str()).collect();
        t += if self.refused {
            "dry run: nothing ran; a rerun now would be refused (--force reruns anyway)\n"
        } else {
            "dry run: nothing ran\n"
        };
        t
    }
}
