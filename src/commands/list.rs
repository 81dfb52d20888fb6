//! `lineage list` (alias `log`): recorded runs, newest first.

use anyhow::Result;

use super::Context;
use crate::cli::ListArgs;
use crate::{output, ui};

pub fn list(args: ListArgs, ctx: &Context) -> Result<()> {
    let store = ctx.open_store()?;
    let runs = store.list(args.limit)?;
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let mut shorts = store.short_ids(&ids)?;
    // The runs they reran, by the prefix that names them now (8 characters can be ambiguous).
    let of: Vec<&str> = runs.iter().filter_map(|r| r.rerun_of.as_deref()).collect();
    let rerun_shorts = store.short_ids(&of)?;
    let runs: Vec<_> = runs
        .into_iter()
        .map(|r| {
            let short = shorts.remove(&r.id).unwrap_or_else(|| r.id.clone());
            (r, short)
        })
        .collect();
    if args.json {
        let items: Vec<_> = runs
            .iter()
            .map(|(r, s)| output::json::list_item(r, s.clone()))
            .collect();
        ui::data(&(serde_json::to_string_pretty(&items)? + "\n"));
    } else if runs.is_empty() {
        // `-n 0` asked for nothing; only an empty store is worth a word.
        if args.limit != Some(0) {
            ui::info(format_args!(
                "no runs recorded yet in {}",
                ctx.store_dir().display()
            ));
        }
    } else {
        ui::data(&(output::table::list(&runs, &rerun_shorts, ctx.color) + "\n"));
    }
    Ok(())
}
