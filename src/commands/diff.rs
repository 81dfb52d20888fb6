//! `lineage diff A B`: what changed between two runs. A and B are run id prefixes, or paths
//! standing for the latest run that produced their bytes.

use std::collections::BTreeMap;
use std::ffi::OsString;

use anyhow::Result;

use super::Context;
use super::target::{self, Reading, Target};
use crate::cli::DiffArgs;
use crate::compare::{self, Lookup};
use crate::model::Hash;
use crate::output;
use crate::store::Store;
use crate::ui;

/// What a comparison needs from the store besides the runs: package lists and manifests.
pub struct StoreLookup<'a>(pub &'a Store);

impl Lookup for StoreLookup<'_> {
    fn packages(&self, blob: &Hash) -> Vec<String> {
        self.0
            .blob(blob)
            .ok()
            .flatten()
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn files(&self, dir: &Hash) -> BTreeMap<String, Hash> {
        self.0
            .dir_entries(dir)
            .unwrap_or_default()
            .into_iter()
            .map(|(p, h, _)| (p, h))
            .collect()
    }
}

pub fn diff(args: DiffArgs, ctx: &Context) -> Result<()> {
    let store = ctx.open_store()?;
    let a = run_of(&store, &args.a)?;
    let b = run_of(&store, &args.b)?;
    let (ra, rb) = (store.load_run(&a)?, store.load_run(&b)?);
    super::readable(&ra)?;
    super::readable(&rb)?;
    let d = compare::diff(&ra, &rb, &StoreLookup(&store));
    if args.json {
        ui::data(&(serde_json::to_string_pretty(&d)? + "\n"));
    } else {
        let (sa, sb) = (store.short_id(&a)?, store.short_id(&b)?);
        ui::data(&output::diff::text(&d, &sa, &sb, ctx.color));
    }
    Ok(())
}

/// A run id, or the latest run that produced a path's (or hash's) bytes directly.
fn run_of(store: &Store, target: &OsString) -> Result<String> {
    match target::resolve(store, Some(target), Reading::Guess)? {
        Target::Run(id) => Ok(id),
        Target::Artifact { root, .. } => target::producer(store, root),
    }
}
