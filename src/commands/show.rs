//! `lineage show [TARGET]`: a run (summary, JSON, or drawn with its files and the runs that
//! made its inputs), or the ancestry or descendants of an artifact identified by its bytes
//! (a path, hashed now, or a `blake3:` hash).

use anyhow::{Result, bail};

use super::Context;
use super::target::{self, Reading, Target};
use crate::cli::{ShowArgs, ShowFormat};
use crate::error::Error;
use crate::model::graph::{Direction, Lineage, Link, Root, Via};
use crate::model::{Role, RunRecord, Seal};
use crate::output::{self, graph};
use crate::store::Store;
use crate::ui;

pub fn show(args: ShowArgs, ctx: &Context) -> Result<()> {
    let color = ctx.color;
    let store = ctx.open_store()?;
    let format = if args.json {
        Some(ShowFormat::Json)
    } else {
        args.format
    };
    let reading = Reading::from_flags(args.run, args.path);
    match target::resolve(&store, args.target.as_ref(), reading)? {
        Target::Run(id) => {
            if args.descendants {
                return Err(Error::GraphOptionOnRun("--descendants").into());
            }
            if args.depth.is_some() {
                return Err(Error::GraphOptionOnRun("--depth").into());
            }
            let run = store.load_run(&id)?;
            let short = store.short_id(&id)?;
            match format {
                Some(ShowFormat::Json) => {
                    let mut json = output::json::run(&run, short);
                    json.submitted_by = store.submitted_by(&id)?;
                    let annotations = store.annotations_of(&[&id])?.remove(&id);
                    let annotations = annotations.unwrap_or_default();
                    json.tags = Some(annotations.tags);
                    json.user_notes = Some(annotations.notes);
                    ui::data(&(serde_json::to_string_pretty(&json)? + "\n"));
                }
                None | Some(ShowFormat::Tree) => {
                    let own = super::verify::own_key();
                    let (seal, standing, who) =
                        super::verify::check(&store, &id, false, own.as_deref(), ctx)?;
                    let record = match (&seal, who) {
                        (_, Some(who)) => format!("signed by {who}"),
                        (Seal::Tampered { reason }, _) => format!("TAMPERED: {reason}"),
                        _ => super::verify::mark(standing)
                            .unwrap_or_default()
                            .to_string(),
                    };
                    let of = match &run.rerun_of {
                        Some(of) => Some(store.short_id(of)?),
                        None => None,
                    };
                    let by = store.submitted_by(&id)?;
                    let table = output::table::run(
                        &run,
                        &short,
                        of.as_deref(),
                        &record,
                        by.as_deref(),
                        color,
                    );
                    let annotations = store.annotations_of(&[&id])?.remove(&id);
                    let annotations = annotations.unwrap_or_default();
                    let notes = output::table::annotations(&annotations);
                    ui::data(&(table + &notes + "\n"));
                }
                Some(f @ (ShowFormat::Dot | ShowFormat::Mermaid | ShowFormat::Html)) => {
                    let mut lineage = run_graph(&store, run, short)?;
                    mark(&store, &mut lineage, ctx)?;
                    ui::data(&picture(f, &lineage, true)?);
                }
            }
        }
        Target::Artifact { root, path } => {
            let direction = if args.descendants {
                Direction::Descendants
            } else {
                Direction::Ancestry
            };
            let mut lineage = target::walk_with(
                &store,
                root,
                path.as_deref(),
                direction,
                args.depth,
                args.all,
            )?;
            mark(&store, &mut lineage, ctx)?;
            let text = match format.unwrap_or(ShowFormat::Tree) {
                ShowFormat::Tree => graph::tree(&lineage, color),
                ShowFormat::Json => graph::to_json(&lineage, path.is_some())? + "\n",
                f => picture(f, &lineage, path.is_some())?,
            };
            ui::data(&text);
        }
    }
    Ok(())
}

/// Mark the runs whose records do not verify.
fn mark(store: &Store, lineage: &mut Lineage, ctx: &Context) -> Result<()> {
    let own = super::verify::own_key();
    for id in lineage.runs.keys() {
        let (_, standing, _) = super::verify::check(store, id, false, own.as_deref(), ctx)?;
        if let Some(mark) = super::verify::mark(standing) {
            lineage.marks.insert(id.clone(), mark);
        }
    }
    Ok(())
}

/// A graph drawn: dot, Mermaid or the HTML page.
fn picture(format: ShowFormat, lineage: &Lineage, is_path: bool) -> Result<String> {
    Ok(match format {
        ShowFormat::Dot => graph::dot(lineage),
        ShowFormat::Mermaid => graph::mermaid(lineage),
        _ => graph::html(lineage, is_path)?,
    })
}

/// A run as a graph: its inputs, configs and outputs, and for each input the run that
/// produced it one level up (the producer the rules choose for it: `target::upstream_producer`,
/// one that finished before this run started). Drawn as the ancestry of its first output, or
/// (a run that wrote nothing) from its first input on.
fn run_graph(store: &Store, run: RunRecord, short: String) -> Result<Lineage> {
    let first = |roles: &[Role]| {
        run.edges
            .iter()
            .filter(|e| roles.contains(&e.role))
            .find_map(|e| e.artifact.as_ref().map(|a| (e.path.clone(), a.clone())))
    };
    let (direction, (label, artifact)) = match first(&[Role::Output]) {
        Some(output) => (Direction::Ancestry, output),
        None => match first(&[Role::Input, Role::Config]) {
            Some(input) => (Direction::Descendants, input),
            None => bail!(
                "run {short} recorded no file to draw: `lineage show {short}` (or --json) shows \
                 the run"
            ),
        },
    };
    let own = |roles: &[Role]| {
        run.edges
            .iter()
            .filter(|e| roles.contains(&e.role))
            .filter_map(|e| e.artifact.as_ref())
            .map(|a| Link {
                artifact: a.hash,
                run_id: run.id.clone(),
                via: Via::Direct,
            })
            .collect::<Vec<_>>()
    };
    let mut links = match direction {
        Direction::Ancestry => own(&[Role::Output]),
        Direction::Descendants => own(&[Role::Input, Role::Config]),
    };
    let mut producers = Vec::new();
    for e in run.edges.iter().filter(|e| e.role == Role::Input) {
        let Some(a) = &e.artifact else { continue };
        let Some(p) = target::upstream_producer(store, &a.hash, &run)? else {
            continue;
        };
        // Through a directory it wrote, when that is how it made these bytes.
        let via = store
            .ancestry(&a.hash, 1, false)?
            .into_iter()
            .find(|l| l.artifact == a.hash && l.run_id == p)
            .map_or(Via::Direct, |l| l.via);
        if direction == Direction::Ancestry {
            links.push(Link {
                artifact: a.hash,
                run_id: p.clone(),
                via,
            });
        }
        producers.push(p);
    }
    producers.sort();
    producers.dedup();
    producers.retain(|p| *p != run.id);
    let ids: Vec<&str> = producers.iter().map(String::as_str).collect();
    let mut shorts = store.short_ids(&ids)?;
    let mut runs: Vec<(RunRecord, String)> = store
        .load_runs(&ids)?
        .into_iter()
        .map(|r| {
            let s = shorts.remove(&r.id).unwrap_or_else(|| r.id.clone());
            (r, s)
        })
        .collect();
    runs.push((run, short));
    let root = Root {
        label,
        hash: artifact.hash,
        detail: Some(artifact),
    };
    let depth = if direction == Direction::Ancestry {
        2
    } else {
        1
    };
    Ok(Lineage::new(direction, root, depth, runs, links))
}
