//! `lineage list` (alias `log`): recorded runs, newest first.

use std::path::Path;

use anyhow::Result;

use crate::cli::ListArgs;
use crate::output;

pub fn list(args: ListArgs, store_dir: &Path, color: bool) -> Result<()> {
    let store = super::open_store(store_dir)?;
    let runs = store.list(args.limit)?;
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let mut shorts = store.short_ids(&ids)?;
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
        crate::print_stdout(&(serde_json::to_string_pretty(&items)? + "\n"));
    } else if runs.is_empty() {
        eprintln!("lineage: no runs recorded yet in {}", store_dir.display());
    } else {
        crate::print_stdout(&(output::table::list(&runs, color) + "\n"));
    }
    Ok(())
}
