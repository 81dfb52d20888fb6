//! `lineage bundle export` and `lineage bundle import`: lineage carried between stores as a
//! file (see `store::bundle`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cli::{BundleArgs, BundleCommand, BundleExportArgs, BundleImportArgs};
use crate::output::graph::Direction;
use crate::store::bundle::{Counts, Scratch, Selection};

pub fn bundle(args: BundleArgs, store_dir: &Path) -> Result<()> {
    match args.command {
        BundleCommand::Export(a) => export(a, store_dir),
        BundleCommand::Import(a) => import(a, store_dir),
    }
}

fn export(args: BundleExportArgs, store_dir: &Path) -> Result<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("a bundle is a binary file: redirect it (`> runs.lineage`) or pass -o FILE");
    }
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let store = super::open_store(store_dir)?;
    let runs = if args.targets.is_empty() {
        None
    } else {
        let mut ids = Vec::new();
        for t in &args.targets {
            match super::show::resolve(&store, Some(t), false, false)? {
                super::show::Target::Run(id) => ids.push(id),
                super::show::Target::Artifact { root, path } => {
                    let l = super::show::walk(
                        &store,
                        root,
                        path.as_deref(),
                        Direction::Ancestry,
                        None,
                    )?;
                    ids.extend(l.runs.into_keys());
                }
            }
        }
        Some(ids)
    };
    let sel = Selection { since, runs };
    let (dir, final_path) = match &args.output {
        Some(p) => (
            p.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            Some(p.clone()),
        ),
        None => (std::env::temp_dir(), None),
    };
    let scratch = Scratch::new(&dir, "bundle");
    let tmp = &scratch.0;
    let result = store.export_bundle(tmp, &sel).and_then(|counts| {
        match &final_path {
            Some(p) => {
                std::fs::File::open(tmp)
                    .and_then(|f| f.sync_all())
                    .with_context(|| format!("writing {}", p.display()))?;
                std::fs::rename(tmp, p).with_context(|| format!("writing {}", p.display()))?
            }
            None => {
                let mut f = std::fs::File::open(tmp)?;
                let mut out = std::io::stdout().lock();
                std::io::copy(&mut f, &mut out).context("writing the bundle to stdout")?;
                out.flush()?;
            }
        }
        Ok(counts)
    });
    let counts = result?;
    eprintln!(
        "lineage: bundled {} runs, {} artifacts, {} directory entries, {} blobs",
        counts.of("runs"),
        counts.of("artifacts"),
        counts.of("dir_entries"),
        counts.of("blobs")
    );
    if counts.running > 0 {
        eprintln!(
            "lineage: {} run{} still running left out: bundle them once they end",
            counts.running,
            if counts.running == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

fn import(args: BundleImportArgs, store_dir: &Path) -> Result<()> {
    let mut store = super::open_store(store_dir)?;
    let stdin_copy;
    let path: &Path = if args.file.as_os_str() == "-" {
        stdin_copy = Scratch::new(&std::env::temp_dir(), "bundle");
        let mut f = std::fs::File::create(&stdin_copy.0)?;
        std::io::copy(&mut std::io::stdin().lock(), &mut f)
            .context("reading the bundle from stdin")?;
        &stdin_copy.0
    } else {
        if !args.file.is_file() {
            bail!("bundle {} does not exist", args.file.display());
        }
        &args.file
    };
    let counts: Counts = store.import_bundle(path)?;
    let added: usize = counts.rows.iter().map(|(_, n)| n).sum();
    if added == 0 {
        eprintln!("lineage: nothing new: every run in the bundle was already here");
    } else {
        eprintln!(
            "lineage: imported {} runs, {} artifacts, {} directory entries, {} blobs",
            counts.of("runs"),
            counts.of("artifacts"),
            counts.of("dir_entries"),
            counts.of("blobs")
        );
    }
    Ok(())
}

/// `2026-11-01` (midnight UTC) or an RFC 3339 time, as the store writes times.
fn parse_since(s: &str) -> Result<String> {
    let ts: jiff::Timestamp = if let Ok(t) = s.parse::<jiff::Timestamp>() {
        t
    } else if let Ok(d) = s.parse::<jiff::civil::Date>() {
        d.to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .context("a date out of range")?
            .timestamp()
    } else {
        bail!("--since {s:?} is not a date: write 2026-11-01 or 2026-11-01T09:30:00Z");
    };
    Ok(ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}
