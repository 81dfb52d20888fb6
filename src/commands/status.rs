//! `lineage status [PATH...]`: which recorded outputs under the paths are out of date, and
//! why (`rerun::stale`: an input's bytes, a depended-on parameter, the code or the packages
//! changed since the run that made them; an output modified or gone; a stale maker upstream).
//! Exit 6 when something is stale, for scripts and CI.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::Context;
use super::rerun::stale::{self, Stage};
use crate::cli::StatusArgs;
use crate::error::code;
use crate::model::text::escape;
use crate::ui;

#[derive(Serialize)]
struct StatusJson<'a> {
    /// Whether every stage is current.
    up_to_date: bool,
    stale: usize,
    stages: &'a [Stage],
}

pub fn status(args: StatusArgs, ctx: &Context) -> Result<u8> {
    let roots = roots(&args.paths)?;
    let store = ctx.open_store()?;
    let moves = super::rerun::moved::Moves::into_repos_of(&store, &roots)?;
    let stages = stale::find(&store, &roots, &moves)?;
    let n = stages.iter().filter(|s| s.stale).count();
    if args.json {
        let out = StatusJson {
            up_to_date: n == 0,
            stale: n,
            stages: &stages,
        };
        ui::data(&(serde_json::to_string_pretty(&out)? + "\n"));
    } else if stages.is_empty() {
        ui::info(format_args!(
            "no recorded outputs under {}",
            roots
                .iter()
                .map(|r| escape(&r.display().to_string()).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    } else {
        ui::data(&text(&stages));
        if n == 0 {
            ui::info(format_args!(
                "everything is up to date ({} run{})",
                stages.len(),
                if stages.len() == 1 { "" } else { "s" }
            ));
        } else {
            ui::info(format_args!(
                "{n} of {} run{} {} stale: `lineage rerun --stale` reruns {}",
                stages.len(),
                if stages.len() == 1 { "" } else { "s" },
                if n == 1 { "is" } else { "are" },
                if n == 1 { "it" } else { "them, makers first" }
            ));
        }
    }
    Ok(if n == 0 { code::SUCCESS } else { code::STALE })
}

/// The paths asked about, absolute as the store records them (not resolving links: a path
/// is recorded as the job named it); the current directory when none.
pub fn roots(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    if paths.is_empty() {
        return Ok(vec![cwd]);
    }
    paths
        .iter()
        .map(|p| {
            // `model.txt/` names a directory: the kernel refuses it for a file (ENOTDIR), and
            // so does the command (it was read as `model.txt`).
            if std::fs::symlink_metadata(cwd.join(p))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotADirectory)
            {
                anyhow::bail!(
                    "{} is not a directory: drop the trailing / to ask about the file",
                    escape(&p.display().to_string())
                );
            }
            // `..` as the kernel takes it, as runs record their paths: `lineage status ..`
            // from inside out/ asks about the project, whose outputs are recorded without
            // the `out/..` (each was listed twice, once as a copy of itself). A path without
            // `..` is kept as given (a link to an output directory, `data -> /scratch/data`,
            // names the outputs recorded through it).
            Ok(crate::observe::resolve_dots(&cwd.join(p)))
        })
        .collect()
}

/// At most this many outputs are listed on a stage's line: an observed job that wrote 400
/// folders, or a moved project whose 10,000 files are copies, made one line of 500 KB.
const OUTPUTS_LISTED: usize = 20;

/// Each stage, makers first: `stale` or `ok`, its short id and command, why, and its outputs
/// with their state. Every recorded string is escaped.
fn text(stages: &[Stage]) -> String {
    let mut t = String::new();
    for s in stages {
        let mark = if s.stale { "stale" } else { "ok   " };
        t += &format!("{mark}  {}  {}\n", s.short, s.command);
        if let Some(from) = &s.moved_from {
            t += &format!("         recorded in {}, moved here since\n", escape(from));
        }
        if let Some(from) = &s.copied_from {
            t += &format!(
                "         recorded in {}, another copy of this project\n",
                escape(from)
            );
        }
        for r in &s.reasons {
            t += &format!("         because {}\n", escape(r));
        }
        // A stage reached through copies here was recorded elsewhere: its own outputs are
        // named by where they are (`../proj/model.txt`, else absolute), not as it named them,
        // which would read as the copies' own paths.
        let via_copies = s.outputs.iter().any(|o| o.state == "copy");
        let name = |o: &stale::Output| -> String {
            if via_copies && o.state != "copy" {
                let abs = crate::model::path_of(&o.abs_path);
                escape(&super::target::shown_from_here(&abs).display().to_string()).into_owned()
            } else {
                escape(&o.path).into_owned()
            }
        };
        let outputs: Vec<String> = s
            .outputs
            .iter()
            .map(|o| {
                if o.state == "current" {
                    name(o)
                } else if o.state == "copy" {
                    format!("{} (a copy of what it made)", name(o))
                } else {
                    format!("{} ({})", name(o), o.state)
                }
            })
            .collect();
        if outputs.len() > OUTPUTS_LISTED {
            t += &format!(
                "         -> {}, and {} more (`lineage status --json` lists them all)\n",
                outputs[..OUTPUTS_LISTED].join(", "),
                outputs.len() - OUTPUTS_LISTED
            );
        } else if !outputs.is_empty() {
            t += &format!("         -> {}\n", outputs.join(", "));
        }
    }
    t
}
