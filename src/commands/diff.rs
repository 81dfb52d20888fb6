//! `lineage diff A B`: what changed between two runs. A and B are run id prefixes, or paths
//! standing for the latest run that produced their bytes.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use anyhow::Result;

use crate::cli::DiffArgs;
use crate::commands::show::{Target, resolve};
use crate::compare::{self, Lookup};
use crate::error::Error;
use crate::model::Hash;
use crate::output;
use crate::store::Store;
use crate::store::graph::Via;

struct StoreLookup<'a>(&'a Store);

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

pub fn diff(args: DiffArgs, store_dir: &Path, color: bool) -> Result<()> {
    let store = super::open_store(store_dir)?;
    let a = run_of(&store, &args.a)?;
    let b = run_of(&store, &args.b)?;
    let (ra, rb) = (store.load_run(&a)?, store.load_run(&b)?);
    let d = compare::diff(&ra, &rb, &StoreLookup(&store));
    if args.json {
        crate::print_stdout(&(serde_json::to_string_pretty(&d)? + "\n"));
    } else {
        let (sa, sb) = (store.short_id(&a)?, store.short_id(&b)?);
        crate::print_stdout(&output::diff::text(&d, &sa, &sb, color));
    }
    Ok(())
}

/// A run id, or the latest run that produced a path's (or hash's) bytes directly.
fn run_of(store: &Store, target: &OsString) -> Result<String> {
    match resolve(store, Some(target), false, false)? {
        Target::Run(id) => Ok(id),
        Target::Artifact { root, .. } => {
            let links = store.ancestry(&root.hash, 1)?;
            let mut producers: Vec<String> = links
                .into_iter()
                .filter(|l| {
                    l.artifact == root.hash && matches!(l.via, Via::Direct | Via::InsideDir { .. })
                })
                .map(|l| l.run_id)
                .collect();
            // UUIDv7 ids sort by time: the last is the latest.
            producers.sort();
            producers
                .pop()
                .ok_or_else(|| Error::NoProducer(root.label).into())
        }
    }
}
