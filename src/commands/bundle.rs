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

fn export(mut args: BundleExportArgs, ctx: &Context) -> Result<()> {
    // `-o -` is stdout, as `bundle import -` is stdin.
    if args.output.as_ref().is_some_and(|p| p.as_os_str() == "-") {
        args.output = None;
    }
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
            private_stdout().context("making the bundle on stdout readable by you only")?;
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

/// A bundle is readable by its owner only, like the store, also when the shell created the
/// file it goes to (`> runs.lineage`, with the umask's mode): stdout, when it is a regular
/// file of the user's, is made 0600 before a byte is written. A pipe, a terminal or another
/// user's file is left as it is.
fn private_stdout() -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    // No stdout to look at (closed): nothing written there either.
    let Ok(fd) = ui::stdout_fd() else {
        return Ok(());
    };
    let out = std::fs::File::from(fd);
    let Ok(meta) = out.metadata() else {
        return Ok(());
    };
    if meta.is_file() && meta.uid() == nix::unistd::getuid().as_raw() && meta.mode() & 0o077 != 0 {
        out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
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
    } else if added > counts.of("annotations") {
        ui::info(format_args!(
            "imported {} runs, {} artifacts, {} directory entries, {} blobs",
            counts.of("runs"),
            counts.of("artifacts"),
            counts.of("dir_entries"),
            counts.of("blobs")
        ));
    }
    if counts.of("annotations") > 0 {
        ui::info(format_args!(
            "imported {} annotations (tags and notes)",
            counts.of("annotations")
        ));
    }
    // Each thing passed over, said once (unsigned annotations of runs already here, a tag
    // from elsewhere that would move this store's, a damaged blob).
    const SHOWN: usize = 10;
    for s in counts.skipped.iter().take(SHOWN) {
        ui::warn(format_args!("passed over {}", ui::escape(s)));
    }
    if counts.skipped.len() > SHOWN {
        ui::warn(format_args!(
            "passed over {} more",
            counts.skipped.len() - SHOWN
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
