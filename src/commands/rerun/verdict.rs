//! A rerun's verdict: each recorded output against what the rerun wrote, and whether the run
//! reproduced bit for bit, with the exit code each verdict means (docs/exit-codes.md).

use serde::Serialize;

use super::checks::{Checks, explain};
use crate::commands::run::Executed;
use crate::error::code;
use crate::model::text::escape;
use crate::model::{Hash, Role, RunRecord, Status};

/// One recorded output, then against now.
#[derive(Serialize)]
pub struct OutputCheck {
    pub path: String,
    pub recorded: Option<Hash>,
    pub now: Option<Hash>,
    pub result: Comparison,
}

/// How an output compares with the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Comparison {
    /// The same bytes.
    Identical,
    /// Other bytes.
    Differs,
    /// Not written by the rerun.
    Missing,
}

/// What a rerun came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The command succeeded and every output is identical: exit 0.
    Reproduced,
    /// The command succeeded and some output differs or is missing: exit 100.
    OutputsDiffer,
    /// The command failed: its own exit code.
    Failed,
    /// The command did not run: lineage's code (125, 126, 127).
    NotRun,
}

/// The verdict of a rerun, as `rerun --json` prints it.
#[derive(Serialize)]
pub struct Verdict {
    pub original: String,
    pub rerun: Option<String>,
    pub verdict: Outcome,
    pub exit_code: u8,
    pub outputs: Vec<OutputCheck>,
    pub checks: Checks,
    pub worktree: Option<String>,
}

impl Verdict {
    /// Compare what the rerun (`executed`) wrote with what `original` recorded.
    pub fn of(original: &RunRecord, executed: &Executed, checks: Checks) -> Verdict {
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
                    (_, None) => Comparison::Missing,
                    (Some(r), Some(n)) if r == n => Comparison::Identical,
                    _ => Comparison::Differs,
                };
                OutputCheck {
                    path: e.path.clone(),
                    recorded,
                    now,
                    result,
                }
            })
            .collect();
        let identical = outputs.iter().all(|o| o.result == Comparison::Identical);
        let (verdict, exit_code) = match executed.status {
            None => (Outcome::NotRun, executed.exit),
            Some(Status::Succeeded) if identical => (Outcome::Reproduced, code::SUCCESS),
            Some(Status::Succeeded) => (Outcome::OutputsDiffer, code::OUTPUTS_DIFFER),
            Some(_) => (Outcome::Failed, executed.exit),
        };
        Verdict {
            original: original.id.clone(),
            rerun: executed.status.map(|_| executed.id.clone()),
            verdict,
            exit_code,
            outputs,
            checks,
            worktree: None,
        }
    }

    /// The verdict for people: `rerun R of O: ...`, what differs and why it might.
    pub fn text(&self, rerun: &str, original: &str) -> String {
        let (rerun, original) = (escape(rerun), escape(original));
        let n = self.outputs.len();
        let mut t = match self.verdict {
            Outcome::Reproduced => format!(
                "rerun {rerun} of {original}: reproduced bit for bit ({n} output{} identical)\n",
                if n == 1 { "" } else { "s" }
            ),
            Outcome::OutputsDiffer => {
                let mut t = format!("rerun {rerun} of {original}: outputs differ\n");
                for o in self
                    .outputs
                    .iter()
                    .filter(|o| o.result != Comparison::Identical)
                {
                    let result = if o.result == Comparison::Missing {
                        "missing"
                    } else {
                        "differs"
                    };
                    t += &format!("  {result} {}\n", escape(&o.path));
                }
                t += "  recorded differences that could explain it:\n";
                for c in explain(&self.checks) {
                    t += &format!("    {}\n", escape(&c));
                }
                t
            }
            Outcome::Failed => format!(
                "rerun {rerun} of {original}: the command failed (exit {})\n",
                self.exit_code
            ),
            Outcome::NotRun => format!("rerun of {original}: the command did not run\n"),
        };
        if let Some(path) = &self.worktree {
            t += &format!("worktree kept at {}\n", escape(path));
        }
        t
    }
}
