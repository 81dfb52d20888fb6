//! `lineage show [TARGET]`: a run (summary or JSON), or the ancestry or descendants of an
//! artifact identified by its bytes (a path, hashed now, or a `blake3:` hash).

use anyhow::Result;

use super::Context;
use super::target::{self, Reading, Target};
use crate::cli::{ShowArgs, ShowFormat};
use crate::error::Error;
use crate::model::Seal;
use crate::model::graph::Direction;
use crate::output::{self, graph};
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
                    let json = output::json::run(&run, short);
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
                    ui::data(&(output::table::run(&run, &short, &record, color) + "\n"));
                }
                Some(ShowFormat::Dot) => return Err(Error::GraphOptionOnRun("--format dot").into()),
                Some(ShowFormat::Mermaid) => {
                    return Err(Error::GraphOptionOnRun("--format mermaid").into());
                }
                Some(ShowFormat::Html) => {
                    return Err(Error::GraphOptionOnRun("--format html").into());
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
            let own = super::verify::own_key();
            for id in lineage.runs.keys() {
                let (_, standing, _) =
                    super::verify::check(&store, id, false, own.as_deref(), ctx)?;
                if let Some(mark) = super::verify::mark(standing) {
                    lineage.marks.insert(id.clone(), mark);
                }
            }
            let text = match format.unwrap_or(ShowFormat::Tree) {
                ShowFormat::Tree => graph::tree(&lineage, color),
                ShowFormat::Json => graph::to_json(&lineage, path.is_some())? + "\n",
                ShowFormat::Dot => graph::dot(&lineage),
                ShowFormat::Mermaid => graph::mermaid(&lineage),
                ShowFormat::Html => graph::html(&lineage, path.is_some())?,
            };
            ui::data(&text);
        }
    }
    Ok(())
}
