//! `lineage diff A B`: what changed between two runs. A and B are runs (short ids or id
//! prefixes), or paths standing for the latest run that produced their bytes. With
//! `--ancestry`, two artifacts' ancestries compared level by level (`compare::AncestryDiff`).

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::ffi::OsString;

use anyhow::Result;

use super::Context;
use super::target::{self, Reading, Target};
use crate::cli::DiffArgs;
use crate::compare::{self, AncestryDiff, Change, Finding, Level, Lookup, Side};
use crate::error::Error;
use crate::model::Hash;
use crate::model::graph::Root;
use crate::output;
use crate::store::Store;
use crate::ui;

/// At most this many pairs of runs are compared by `--ancestry` (a guard: each step goes to
/// strictly older runs, so the walk ends anyway).
const MAX_LEVELS: usize = 10_000;

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

    fn blob(&self, hash: &Hash) -> Option<Vec<u8>> {
        self.0.blob(hash).ok().flatten()
    }

    fn is_recorded(&self, hash: &Hash) -> bool {
        self.0.knows_artifact(hash).unwrap_or(false)
    }
}

pub fn diff(args: DiffArgs, ctx: &Context) -> Result<()> {
    let store = ctx.open_store()?;
    if args.ancestry {
        return ancestry(&store, &args, ctx);
    }
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

/// `diff --ancestry`: walk both ancestries from the runs that produced A and B, following
/// the inputs whose bytes differ, and print or return the levels.
fn ancestry(store: &Store, args: &DiffArgs, ctx: &Context) -> Result<()> {
    let (a, b) = (side(store, &args.a)?, side(store, &args.b)?);
    let d = walk(store, a, b)?;
    if args.json {
        ui::data(&(serde_json::to_string_pretty(&d)? + "\n"));
    } else {
        let mut ids: Vec<&str> = d
            .levels
            .iter()
            .flat_map(|l| [l.a.as_deref(), l.b.as_deref()])
            .chain([d.a.run.as_deref(), d.b.run.as_deref()])
            .flatten()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let shorts = store.short_ids(&ids)?;
        ui::data(&output::diff::ancestry_text(&d, &shorts, ctx.color));
    }
    Ok(())
}

/// One of the two artifacts: a path or a `blake3:` hash (a run has no ancestry to compare),
/// and the run that produced it, if one did.
fn side(store: &Store, target: &OsString) -> Result<Side> {
    let Target::Artifact { root, .. } = target::resolve(store, Some(target), Reading::Guess)?
    else {
        return Err(Error::GraphOptionOnRun("--ancestry").into());
    };
    let Root { label, hash, .. } = root.clone();
    Ok(Side {
        run: no_producer_is_none(target::producer(store, root))?,
        target: label,
        hash,
    })
}

/// `Ok(None)` for "no recorded run produced it", every other error kept.
fn no_producer_is_none(found: Result<String>) -> Result<Option<String>> {
    match found {
        Ok(id) => Ok(Some(id)),
        Err(e)
            if matches!(
                e.downcast_ref(),
                Some(Error::NoProducer(_) | Error::OnlyFailedProducer { .. })
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A pair of artifacts still to compare.
struct Pending {
    depth: usize,
    through: Option<Change<String>>,
    artifact: Change<Option<Hash>>,
    a: Option<String>,
    b: Option<String>,
}

/// Breadth first: each level's pairs before the next level's, so the shallowest
/// explanation comes first. A pair already compared (a diamond) is not compared again.
/// Every pair is walked first, then judged: whether a file is data (declared by a run of
/// either ancestry) or code is known only once both ancestries are.
fn walk(store: &Store, a: Side, b: Side) -> Result<AncestryDiff> {
    let lookup = StoreLookup(store);
    let mut walked = Vec::new();
    let mut data: BTreeSet<String> = BTreeSet::new();
    for side in [&a, &b] {
        let path = std::path::Path::new(&side.target);
        if path.exists() {
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            data.insert(crate::model::path_text(abs.as_os_str().as_encoded_bytes()));
        }
    }
    let mut queue = VecDeque::new();
    if a.hash != b.hash {
        queue.push_back(Pending {
            depth: 0,
            through: None,
            artifact: Change {
                a: Some(a.hash),
                b: Some(b.hash),
            },
            a: a.run.clone(),
            b: b.run.clone(),
        });
    }
    let mut seen = HashSet::new();
    while let Some(p) = queue.pop_front() {
        if walked.len() >= MAX_LEVELS {
            break;
        }
        if !seen.insert((p.artifact.a, p.artifact.b, p.a.clone(), p.b.clone())) {
            continue;
        }
        let runs = match (&p.a, &p.b) {
            (Some(x), Some(y)) if x != y => {
                let (rx, ry) = (store.load_run(x)?, store.load_run(y)?);
                super::readable(&rx)?;
                super::readable(&ry)?;
                for r in [&rx, &ry] {
                    data.extend(r.edges.iter().map(|e| e.abs_path.clone()));
                }
                let pairs = compare::differing_inputs(&rx, &ry);
                for (pa, ha, pb, hb) in &pairs {
                    // An input recorded without a hash cannot be followed.
                    let (Some(ha), Some(hb)) = (ha, hb) else {
                        continue;
                    };
                    queue.push_back(Pending {
                        depth: p.depth + 1,
                        through: Some(Change {
                            a: pa.clone(),
                            b: pb.clone(),
                        }),
                        artifact: Change {
                            a: Some(*ha),
                            b: Some(*hb),
                        },
                        a: target::upstream_producer(store, ha, &rx)?,
                        b: target::upstream_producer(store, hb, &ry)?,
                    });
                }
                Some((rx, ry, !pairs.is_empty()))
            }
            _ => None,
        };
        walked.push((p, runs));
    }
    let levels = walked
        .into_iter()
        .map(|(p, runs)| {
            let (finding, inputs_differ, recipe, diff) = match runs {
                Some((rx, ry, inputs_differ)) => {
                    let d = compare::diff(&rx, &ry, &lookup);
                    let recipe = compare::recipe(&d, &rx, &ry, &data, &lookup);
                    let finding = Finding::of(&recipe, inputs_differ);
                    (finding, inputs_differ, recipe, Some(d))
                }
                None if p.a.is_some() && p.a == p.b => (Finding::SameRun, false, Vec::new(), None),
                None => (Finding::Source, false, Vec::new(), None),
            };
            Level {
                depth: p.depth,
                through: p.through,
                artifact: p.artifact,
                a: p.a,
                b: p.b,
                finding,
                inputs_differ,
                recipe,
                diff,
            }
        })
        .collect();
    Ok(AncestryDiff { a, b, levels })
}
