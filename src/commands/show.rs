//! `lineage show [RUN]`: one recorded run, as a summary or as JSON (docs/json.md).

use std::path::Path;

use anyhow::Result;

use crate::cli::ShowArgs;
use crate::output;
use crate::store::Store;

pub fn show(args: ShowArgs, store_dir: &Path, color: bool) -> Result<()> {
    let store = Store::open(store_dir)?;
    let id = store.resolve(args.run.as_deref())?;
    let run = store.load_run(&id)?;
    let short = store.short_id(&id)?;
    if args.json {
        let json = output::json::run(&run, short);
        crate::print_stdout(&(serde_json::to_string_pretty(&json)? + "\n"));
    } else {
        crate::print_stdout(&(output::table::run(&run, &short, color) + "\n"));
    }
    Ok(())
}
