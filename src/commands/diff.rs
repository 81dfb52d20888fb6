//! `lineage diff A B`: what changed between two runs. A and B are runs (short ids or id
//! prefixes), or paths standing for the latest run that produced their bytes. With
//! `--ancestry`, two artifacts' ancestries compared level by level (`compare::AncestryDiff`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ffi::OsString;

use anyhow::Result;

use super::Context;
use super::target::{self, Reading, Target};
use crate::cli::DiffArgs;
use crate::compare::{
    self, AncestryDiff, Change, Finding, Level, Lookup, Side, TreeChanges, TreeFile,
};
use crate::error::Error;
use crate::model::Hash;
use crate::model::graph::Root;
use crate::output;
use crate::store::Store;
use crate::ui;

/// At most this many pairs of runs are compared by `--ancestry` (a guard: each step goes to
/// strictly older runs, so the walk ends anyway).
const MAX_LEVELS: usize = 10_000;

/// What a comparison needs besides the runs: package lists, manifests and blobs from the
/// store, and the files two commits' trees differ in, from the repository (each pair of
/// commits read once).
pub struct StoreLookup<'a> {
    store: &'a Store,
    trees: RefCell<HashMap<TreeKey, Option<TreeChanges>>>,
}

type TreeKey = (String, String, String);

impl<'a> StoreLookup<'a> {
    pub fn new(store: &'a Store) -> StoreLookup<'a> {
        StoreLookup {
            store,
            trees: RefCell::new(HashMap::new()),
        }
    }
}

/// The files that differ between two commits' trees, with their blob ids and the BLAKE3 hash
/// of their bytes; None when the repository or a commit cannot be read. Submodules are left
/// out (their code is their own repository's).
fn tree_changes(root: &str, a: &str, b: &str) -> Option<TreeChanges> {
    let repo = git2::Repository::open(root).ok()?;
    let tree = |c: &str| -> Option<git2::Tree<'_>> {
        repo.find_commit(git2::Oid::from_str(c).ok()?)
            .ok()?
            .tree()
            .ok()
    };
    let (ta, tb) = (tree(a)?, tree(b)?);
    let mut opts = git2::DiffOptions::new();
    opts.ignore_submodules(true);
    let diff = repo
        .diff_tree_to_tree(Some(&ta), Some(&tb), Some(&mut opts))
        .ok()?;
    let file = |f: git2::DiffFile<'_>| -> Option<Option<TreeFile>> {
        if f.id().is_zero() {
            return Some(None);
        }
        if f.mode() == git2::FileMode::Commit {
            return None;
        }
        let blob = repo.find_blob(f.id()).ok()?;
        Some(Some(TreeFile {
            id: f.id().to_string(),
            hash: Hash::of(blob.content()),
        }))
    };
    let mut out = BTreeMap::new();
    for d in diff.deltas() {
        let Some(path) = d.new_file().path().or_else(|| d.old_file().path()) else {
            continue;
        };
        let (Some(x), Some(y)) = (file(d.old_file()), file(d.new_file())) else {
            continue;
        };
        out.insert(path.to_string_lossy().into_owned(), Change { a: x, b: y });
    }
    Some(out)
}

impl Lookup for StoreLookup<'_> {
    fn packages(&self, blob: &Hash) -> Vec<String> {
        self.store
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
        self.store
            .dir_entries(dir)
            .unwrap_or_default()
            .into_iter()
            .map(|(p, h, _)| (p, h))
            .collect()
    }

    fn blob(&self, hash: &Hash) -> Option<Vec<u8>> {
        self.store.blob(hash).ok().flatten()
    }

    fn is_recorded(&self, hash: &Hash) -> bool {
        self.store.knows_artifact(hash).unwrap_or(false)
    }

    fn tree_changes(&self, root: &str, a: &str, b: &str) -> Option<TreeChanges> {
        let key = (root.to_string(), a.to_string(), b.to_string());
        self.trees
            .borrow_mut()
            .entry(key)
            .or_insert_with(|| tree_changes(root, a, b))
            .clone()
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
    let d = compare::diff(&ra, &rb, &StoreLookup::new(&store));
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

/// A pair of artifacts still to compare (one side None: an input only one run read).
struct Pending {
    depth: usize,
    through: Option<Change<Option<String>>>,
    artifact: Change<Option<Hash>>,
    a: Option<String>,
    b: Option<String>,
}

type PairKey = (
    Option<String>,
    Option<String>,
    Option<(
        Option<Hash>,
        Option<Hash>,
        Option<(Option<String>, Option<String>)>,
    )>,
);

impl Pending {
    /// What makes a pair the same pair however it is reached: the two runs, when there are
    /// runs (they may be reached through different files: two outputs of one run); else
    /// the bytes and the paths.
    fn key(&self) -> PairKey {
        let bytes = (self.a.is_none() || self.b.is_none())
            .then(|| (self.artifact.a, self.artifact.b, self.through.clone()));
        (
            self.a.clone(),
            self.b.clone(),
            bytes.map(|(x, y, t)| (x, y, t.map(|t| (t.a, t.b)))),
        )
    }
}

/// Breadth first: each level's pairs before the next level's, so the shallowest
/// explanation comes first. A pair of runs already compared (a diamond, or two outputs of
/// the same runs) is not compared, nor listed, again. An input only one run read is listed
/// with its producer, and not followed further: there is nothing to compare it with.
/// Every pair is walked first, then judged: whether a file is data (declared by a run of
/// either ancestry) or code is known only once both ancestries are.
fn walk(store: &Store, a: Side, b: Side) -> Result<AncestryDiff> {
    let lookup = StoreLookup::new(store);
    let mut walked = Vec::new();
    let mut data: BTreeSet<String> = BTreeSet::new();
    for side in [&a, &b] {
        let path = std::path::Path::new(&side.target);
        if path.exists() {
            let abs = crate::commands::absolute(path);
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
        if !seen.insert(p.key()) {
            continue;
        }
        let paired = p.artifact.a.is_some() && p.artifact.b.is_some();
        let runs = match (&p.a, &p.b) {
            (Some(x), Some(y)) if x != y && paired => {
                let (rx, ry) = (store.load_run(x)?, store.load_run(y)?);
                super::readable(&rx)?;
                super::readable(&ry)?;
                for r in [&rx, &ry] {
                    data.extend(r.edges.iter().map(|e| e.abs_path.clone()));
                }
                let changes = compare::input_changes(&rx, &ry);
                for c in &changes {
                    let (ha, hb) = (
                        c.a.as_ref().and_then(|(_, h)| *h),
                        c.b.as_ref().and_then(|(_, h)| *h),
                    );
                    // A paired input recorded without a hash cannot be followed.
                    if c.a.is_some() && c.b.is_some() && (ha.is_none() || hb.is_none()) {
                        continue;
                    }
                    let producer = |h: Option<Hash>, r| match h {
                        Some(h) => target::upstream_producer(store, &h, r),
                        None => Ok(None),
                    };
                    queue.push_back(Pending {
                        depth: p.depth + 1,
                        through: Some(Change {
                            a: c.a.as_ref().map(|(path, _)| path.clone()),
                            b: c.b.as_ref().map(|(path, _)| path.clone()),
                        }),
                        artifact: Change { a: ha, b: hb },
                        a: producer(ha, &rx)?,
                        b: producer(hb, &ry)?,
                    });
                }
                Some((rx, ry, !changes.is_empty()))
            }
            _ => None,
        };
        walked.push((p, runs));
    }
    let levels = walked
        .into_iter()
        .map(|(p, runs)| {
            let unpaired = p
                .through
                .as_ref()
                .is_some_and(|t| t.a.is_none() || t.b.is_none());
            let (finding, inputs_differ, recipe, diff) = match runs {
                Some((rx, ry, inputs_differ)) => {
                    let d = compare::diff(&rx, &ry, &lookup);
                    let recipe = compare::recipe(&d, &rx, &ry, &data, &lookup);
                    let finding = Finding::of(&recipe.parts, inputs_differ);
                    (finding, inputs_differ, recipe, Some(d))
                }
                None if unpaired => (Finding::Unpaired, false, Default::default(), None),
                None if p.a.is_some() && p.a == p.b => {
                    (Finding::SameRun, false, Default::default(), None)
                }
                None => (Finding::Source, false, Default::default(), None),
            };
            let compare::Recipe {
                parts,
                code_files,
                configs_beyond_params,
            } = recipe;
            Level {
                depth: p.depth,
                through: p.through,
                artifact: p.artifact,
                a: p.a,
                b: p.b,
                finding,
                inputs_differ,
                recipe: parts,
                code_files,
                configs_beyond_params,
                diff,
            }
        })
        .collect();
    Ok(AncestryDiff { a, b, levels })
}
