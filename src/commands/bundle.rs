//! `lineage bundle export` and `lineage bundle import`: lineage carried between stores as a
//! file (see `store::bundle`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use super::Context;
use super::target::{self, Reading};
use crate::cli::{BundleArgs, BundleCommand, BundleExportArgs, BundleImportArgs};
use crate::store::bundle::{self, Counts, Selection};
use crate::ui;

pub fn bundle(args: BundleArgs, ctx: &Context) -> Result<()> {
    match args.command {
        BundleCommand::Export(a) => export(a, ctx),
        BundleCommand::Import(a) => import(a, ctx),
    }
}

fn export(args: BundleExportArgs, ctx: &Context) -> Result<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("a bundle is a binary file: redirect it (`> runs.lineage`) or pass -o FILE");
    }
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let store = ctx.open_store()?;
    let runs = if args.targets.is_empty() {
        None
    } else {
        let mut ids = Vec::new();
        for t in &args.targets {
            let found = target::resolve(&store, Some(t), Reading::Guess)?;
            ids.extend(target::runs(&store, found)?);
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
    // Removed on every path out unless renamed into place.
    let scratch = bundle::scratch(&dir, "bundle")?;
    let counts = store.export_bundle(scratch.path(), &sel)?;
    match &final_path {
        Some(p) => {
            let fail = || format!("writing {}", p.display());
            if super::is_special(p) {
                let mut f = std::fs::File::open(scratch.path())?;
                super::write_through(&mut f, p).with_context(fail)?;
            } else {
                scratch.as_file().sync_all().with_context(fail)?;
                scratch.persist(p).map_err(|e| e.error).with_context(fail)?;
            }
        }
        None => {
            let mut f = std::fs::File::open(scratch.path())?;
            ui::data_from(&mut f).context("writing the bundle to stdout")?;
        }
    }
    ui::info(format_args!(
        "bundled {} runs, {} artifacts, {} directory entries, {} blobs",
        counts.of("runs"),
        counts.of("artifacts"),
        counts.of("dir_entries"),
        counts.of("blobs")
    ));
    if counts.running > 0 {
        ui::info(format_args!(
            "{} run{} still running left out: bundle them once they end",
            counts.running,
            if counts.running == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

fn import(args: BundleImportArgs, ctx: &Context) -> Result<()> {
    let mut store = ctx.open_store()?;
    let stdin_copy;
    let path: &Path = if args.file.as_os_str() == "-" {
        stdin_copy = bundle::scratch(&std::env::temp_dir(), "bundle")?;
        std::io::copy(&mut std::io::stdin().lock(), &mut stdin_copy.as_file())
            .context("reading the bundle from stdin")?;
        stdin_copy.path()
    } else {
        if !args.file.is_file() {
            bail!("bundle {} does not exist", args.file.display());
        }
        &args.file
    };
    let counts: Counts = store.import_bundle(path)?;
    let added: usize = counts.rows.iter().map(|(_, n)| n).sum();
    for id in &counts.differing {
        let short = store.short_id(id).unwrap_or_else(|_| id.clone());
        ui::warn(format_args!(
            "run {short} is already here with another record than the bundle's: the one here is kept (`lineage verify {short}` says who signed it)"
        ));
    }
    if added == 0 {
        ui::info("nothing new: every run in the bundle was already here");
    } else {
        ui::info(format_args!(
            "imported {} runs, {} artifacts, {} directory entries, {} blobs",
            counts.of("runs"),
            counts.of("artifacts"),
            counts.of("dir_entries"),
            counts.of("blobs")
        ));
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
