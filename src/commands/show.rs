//! `lineage show [TARGET]`: a run (summary or JSON), or the ancestry or descendants of an
//! artifact identified by its bytes (a path, hashed now, or a `blake3:` hash).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::{ShowArgs, ShowFormat};
use crate::error::Error;
use crate::hash;
use crate::model::{ArtifactRef, Hash, RunRecord};
use crate::output;
use crate::output::graph::{self, Direction, Lineage, Root};
use crate::store::Store;
use crate::store::graph::UNLIMITED;

/// What `show` was asked about.
pub enum Target {
    Run(String),
    /// Content: by path (hashed now) or by hash.
    Artifact {
        root: Root,
        path: Option<PathBuf>,
    },
}

pub fn show(args: ShowArgs, store_dir: &Path, color: bool) -> Result<()> {
    let store = super::open_store(store_dir)?;
    let format = if args.json {
        Some(ShowFormat::Json)
    } else {
        args.format
    };
    match resolve(&store, args.target.as_ref(), args.run, args.path)? {
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
                    crate::print_stdout(&(serde_json::to_string_pretty(&json)? + "\n"));
                }
                None | Some(ShowFormat::Tree) => {
                    crate::print_stdout(&(output::table::run(&run, &short, color) + "\n"));
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
            let lineage = walk(&store, root, path.as_deref(), direction, args.depth)?;
            let text = match format.unwrap_or(ShowFormat::Tree) {
                ShowFormat::Tree => graph::tree(&lineage, color),
                ShowFormat::Json => graph::to_json(&lineage, path.is_some())? + "\n",
                ShowFormat::Dot => graph::dot(&lineage),
                ShowFormat::Mermaid => graph::mermaid(&lineage),
                ShowFormat::Html => graph::html(&lineage, path.is_some())?,
            };
            crate::print_stdout(&text);
        }
    }
    Ok(())
}

/// Decide what TARGET means: a `blake3:` hash, an existing path, or a run id prefix.
pub fn resolve(
    store: &Store,
    target: Option<&OsString>,
    force_run: bool,
    force_path: bool,
) -> Result<Target> {
    let Some(target) = target else {
        return Ok(Target::Run(store.resolve(None)?));
    };
    let text = target.to_string_lossy().into_owned();
    if !force_path && !force_run && text.starts_with(Hash::PREFIX) {
        let hash = Hash::parse(&text).ok_or_else(|| Error::BadHash(text.clone()))?;
        let stored = store.artifact(&hash)?;
        return Ok(Target::Artifact {
            root: Root {
                label: text,
                hash,
                detail: stored,
            },
            path: None,
        });
    }
    let path = PathBuf::from(target);
    if force_path || (!force_run && path.exists()) {
        let hashed =
            hash::hash_path(&path, &mut hash::discard, Some(store), None).map_err(|source| {
                Error::Unreadable {
                    what: "path",
                    path: path.clone(),
                    cause: source,
                }
            })?;
        for w in &hashed.warnings {
            eprintln!("lineage: warning: {w}");
        }
        let a = hashed.artifact;
        return Ok(Target::Artifact {
            root: Root {
                label: text,
                hash: a.hash,
                detail: Some(ArtifactRef {
                    hash: a.hash,
                    kind: a.kind,
                    size: a.size,
                    file_count: a.file_count,
                }),
            },
            path: Some(path),
        });
    }
    match store.resolve(Some(&text)) {
        Ok(id) => Ok(Target::Run(id)),
        // Hex digits and hyphens read as a run id; anything else may have been a path.
        Err(e)
            if !force_run
                && !text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
                && matches!(e.downcast_ref(), Some(Error::RunNotFound(_))) =>
        {
            Err(Error::NeitherPathNorRun(text).into())
        }
        Err(e) => Err(e),
    }
}

/// Walk the lineage of an artifact, or explain why there is none.
pub fn walk(
    store: &Store,
    root: Root,
    path: Option<&Path>,
    direction: Direction,
    depth: Option<u32>,
) -> Result<Lineage> {
    let depth = depth.unwrap_or(UNLIMITED);
    let links = match direction {
        Direction::Ancestry => store.ancestry(&root.hash, depth)?,
        Direction::Descendants => store.descendants(&root.hash, depth)?,
    };
    if links.is_empty() && !store.knows_artifact(&root.hash)? {
        if let Some(path) = path {
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            if let Some((run, recorded)) = store.last_output_at(&abs.to_string_lossy())? {
                return Err(Error::ModifiedAfter {
                    path: root.label.clone(),
                    run: store.short_id(&run)?,
                    recorded: recorded
                        .map_or_else(|| "nothing (missing)".into(), |h| h.to_string()),
                    now: root.hash.to_string(),
                }
                .into());
            }
        }
        return Err(Error::UnknownArtifact(root.label).into());
    }
    let mut ids: Vec<&str> = links.iter().map(|l| l.run_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut shorts = store.short_ids(&ids)?;
    let runs: Vec<(RunRecord, String)> = store
        .load_runs(&ids)?
        .into_iter()
        .map(|r| {
            let short = shorts.remove(&r.id).unwrap_or_else(|| r.id.clone());
            (r, short)
        })
        .collect();
    Ok(Lineage::new(direction, root, depth, runs, links))
}
