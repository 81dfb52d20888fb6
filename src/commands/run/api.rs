//! What the job told lineage through the in-job API (`crate::api`, docs/python.md), made into
//! the run's record once it has ended: each metric's last value as a metric (`source` "api")
//! and its series as a blob, params (`source` "api"), paths hashed as declared inputs and
//! outputs (`observed` = 3: declared by the job), and tags and notes as annotations after the
//! record is finished. Everything here is a string from the job: redacted like argv, names
//! checked, and only ever about this run. A problem is a note, never a failed job.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::observed;
use super::plan::{Declared, Plan};
use super::told::Told;
use crate::api::{Inbox, Point, Sent};
use crate::model::{Capture, Edge, FromJob, Metric, Param, Role, Seen, Series};
use crate::redact::{Blob, Redacted};
use crate::store::Author;
use crate::ui;

/// The source of what came through the API.
pub(super) const SOURCE: &str = "api";

/// What the job sent, ready for the record.
#[derive(Default)]
pub(super) struct Taken {
    /// The last value of each metric.
    pub(super) metrics: Vec<Metric>,
    /// Params (none: the job sent none).
    pub(super) params: Option<Redacted<Vec<Param>>>,
    /// The series' blobs.
    pub(super) blobs: Vec<Redacted<Blob>>,
    /// Inputs, then outputs, hashed.
    pub(super) edges: Vec<Edge>,
    /// Their absolute paths, which observation leaves to them.
    pub(super) paths: Vec<PathBuf>,
    tags: Vec<String>,
    notes: Vec<Redacted<String>>,
}

/// Make what the job sent into rows; notes go to `capture`. `declared`: the absolute paths
/// of the edges already declared with `-i`, `-c` and `-o` (a path declared both ways is
/// left to its flag); `existing`: the params already recorded.
pub(super) fn take(
    plan: &Plan,
    inbox: Inbox,
    start: SystemTime,
    declared: &[PathBuf],
    existing: &[Param],
    capture: &mut Capture,
) -> Taken {
    let mut out = Taken::default();
    let mut told = Told::new("what the job sent to lineage");
    let mut record = FromJob {
        messages: inbox.messages,
        dropped: inbox.dropped,
        series: Vec::new(),
    };
    if inbox.dropped > 0 {
        told.note(
            capture,
            format!(
                "the job dropped {} message(s) to lineage rather than wait (lineage had not caught up); each metric's last value was still sent",
                inbox.dropped
            ),
        );
    }
    for (why, n) in &inbox.refused {
        told.note(
            capture,
            format!("{n} message(s) from the job refused: {why}"),
        );
    }
    if inbox.points_over > 0 {
        told.note(
            capture,
            format!(
                "{} metric point(s) from the job not kept (over {} points for a metric, or {} in all); each series still ends with its last value",
                inbox.points_over,
                crate::api::MAX_POINTS,
                crate::api::MAX_ALL_POINTS
            ),
        );
    }
    for (name, points) in inbox.metrics {
        let key = plan.policy.redact_text(&name);
        let Some(last) = value_of(&points) else {
            continue;
        };
        if key != name {
            told.secret(
                capture,
                format!(
                    "a metric's name held a secret, so it is recorded as {}",
                    ui::escape(&key)
                ),
            );
        }
        if out.metrics.iter().any(|m| m.key == key) {
            continue; // two names that redact alike: the first keeps the key
        }
        out.metrics.push(Metric {
            key: key.clone(),
            value: last.value,
            source: SOURCE.into(),
        });
        if points.len() > 1 || last.step.is_some() {
            let blob = plan
                .policy
                .numbers(points.iter().map(|p: &Point| (p.step, p.value)));
            record.series.push(Series {
                key,
                blob: blob.get().0,
                points: points.len() as u64,
                last_step: last.step,
            });
            out.blobs.push(blob);
        }
    }
    let mut params = Vec::new();
    for (name, value) in inbox.params {
        let key = plan.policy.redact_text(&name);
        if existing.iter().any(|p| p.key == key) {
            told.note(
                capture,
                format!(
                    "param {} from the job not recorded: the run already has it from its configs or command line",
                    ui::escape(&key)
                ),
            );
            continue;
        }
        // The last value sent for a key is the one kept.
        params.retain(|p: &Param| p.key != key);
        params.push(Param {
            key,
            value,
            source: SOURCE.into(),
        });
    }
    if !params.is_empty() {
        out.params = Some(plan.policy.redact_params(params));
    }
    for name in inbox.tags {
        if plan.policy.redact_text(&name) != name {
            told.secret(
                capture,
                "a tag from the job held a secret, so it is not given".to_string(),
            );
            continue;
        }
        match crate::model::tag_name_problem(&name) {
            Some(why) => told.note(
                capture,
                format!("tag {} from the job not given: {why}", ui::escape(&name)),
            ),
            None => out.tags.push(name),
        }
    }
    out.notes = inbox
        .notes
        .iter()
        .map(|t| plan.policy.redact_note(t))
        .collect();

    let already = |p: &Path| declared.iter().any(|d| d == p);
    // A system directory is no job's input or output, and hashing it would never end
    // (`/proc`) or take the whole disk (`/`): refused, with a note.
    let mut system = |capture: &mut Capture, s: &Sent| {
        let real = std::fs::canonicalize(&s.path).unwrap_or_else(|_| s.path.clone());
        let refused = real == Path::new("/")
            || ["/proc", "/sys", "/dev"]
                .iter()
                .any(|d| real.starts_with(d));
        if refused {
            told.note(
                capture,
                format!(
                    "path {} declared by the job not recorded: a system directory (the root, /proc, /sys or /dev) is no job's input or output",
                    ui::escape(&plan.policy.redact_text(&s.path.to_string_lossy()))
                ),
            );
        }
        !refused
    };
    let mut allowed = |sent: Vec<Sent>, capture: &mut Capture| -> Vec<Sent> {
        sent.into_iter()
            .filter(|s| !already(&s.path) && system(capture, s))
            .collect()
    };
    let inputs = allowed(inbox.inputs, capture);
    let outputs = allowed(inbox.outputs, capture);
    for (n, sent) in inputs.iter().enumerate() {
        let d = declared_at(plan, &sent.path);
        let now = std::fs::metadata(&d.abs).ok();
        let stat_now = now
            .as_ref()
            .filter(|m| m.is_file())
            .and_then(|m| Some((m.len(), m.modified().ok()?)));
        let mut edge = if now.is_none() {
            told.note(
                capture,
                format!(
                    "input {} declared by the job is not there after the run: recorded without a hash",
                    ui::escape(&d.given.to_string_lossy())
                ),
            );
            d.edge(Role::Input, None, None)
        } else if sent.stat.is_some() && stat_now != sent.stat {
            told.note(
                capture,
                format!(
                    "input {} declared by the job changed after it said so: recorded without a hash",
                    ui::escape(&d.given.to_string_lossy())
                ),
            );
            let mut e = d.edge(Role::Input, None, None);
            e.changed = true;
            e
        } else {
            observed::hash_edge(
                plan,
                &d,
                Role::Input,
                &format!("api-in-{n}"),
                capture,
                &mut told,
            )
        };
        edge.observed = Some(Seen::Job);
        out.paths.push(d.abs.clone());
        out.edges.push(edge);
    }
    for (n, sent) in outputs.iter().enumerate() {
        let d = declared_at(plan, &sent.path);
        let mut edge = match std::fs::metadata(&d.abs) {
            Err(_) => {
                told.note(
                    capture,
                    format!(
                        "output {} declared by the job does not exist after the run",
                        ui::escape(&d.given.to_string_lossy())
                    ),
                );
                let mut e = d.edge(Role::Output, None, None);
                e.written = Some(crate::model::Written::Nothing);
                e
            }
            Ok(_) => {
                let mut e = observed::hash_edge(
                    plan,
                    &d,
                    Role::Output,
                    &format!("api-out-{n}"),
                    capture,
                    &mut told,
                );
                // What was there before the job is not its product: file by file, by when
                // each last changed; with nothing there to hash, no bytes are (as for `-o`).
                e.written = Some(match e.artifact {
                    Some(_) => crate::hash::written(&d.abs, &crate::hash::since(start)),
                    None => crate::model::Written::Nothing,
                });
                e
            }
        };
        edge.observed = Some(Seen::Job);
        out.paths.push(d.abs.clone());
        out.edges.push(edge);
    }
    observed::redact_paths(
        plan,
        &mut out.edges,
        "a path declared by the job",
        capture,
        &mut told,
    );
    told.finish(capture);
    if record.messages > 0 || record.dropped > 0 {
        capture.api = Some(record);
    }
    out
}

/// A metric's value: of its points with a step, the one with the highest step (the last to
/// arrive of those), as workers' points arrive in any order; without steps, the last to arrive.
fn value_of(points: &[Point]) -> Option<Point> {
    let stepped = points
        .iter()
        .filter(|p| p.step.is_some())
        .max_by_key(|p| p.step)
        .copied();
    // max_by_key returns the last of equal maxima: the latest of that step.
    stepped.or_else(|| points.last().copied())
}

/// A path the job sent (absolute), as shown: relative to the run's directory when under it.
fn declared_at(plan: &Plan, path: &Path) -> Declared {
    let abs = crate::commands::absolute(path);
    let given = match abs.strip_prefix(&plan.cwd) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_path_buf(),
        _ => abs.clone(),
    };
    Declared { given, abs }
}

impl Taken {
    /// Once the run is recorded: its tags and notes, as annotations signed by the user. A tag
    /// another run holds stays there (a job only ever writes about its own run).
    pub(super) fn annotate(self, store: &mut crate::store::Store, id: &str, who: &Author) {
        // As many tags as the job sent could each fail: said as `Told` says warnings (the
        // record is finished by now: nothing more is kept in it), the rest counted.
        let said = super::told::WARNINGS_SAID;
        let mut failed = 0usize;
        for name in self.tags {
            match store.tag(id, &name, false, who) {
                Ok(_) => {}
                Err(_) if failed >= said => failed += 1,
                Err(e) => {
                    failed += 1;
                    let why = match e.downcast_ref::<crate::error::Error>() {
                        Some(crate::error::Error::TagTaken { run, .. }) => format!(
                            "it names run {} (`lineage tag --force {} {}` moves it)",
                            store.short_id(run).unwrap_or_else(|_| run.clone()),
                            store.short_id(id).unwrap_or_else(|_| id.to_string()),
                            ui::escape(&name)
                        ),
                        _ => ui::escape(&format!("{e:#}")).into_owned(),
                    };
                    ui::warn(format_args!(
                        "tag {} from the job not given: {why}",
                        ui::escape(&name)
                    ));
                }
            }
        }
        if failed > said {
            ui::warn(format_args!(
                "{} more tags from the job not given ({failed} in all)",
                failed - said
            ));
        }
        for text in self.notes {
            if let Err(e) = store.note(id, text, who) {
                ui::warn(format_args!("a note from the job not recorded: {e:#}"));
            }
        }
    }
}
