//! Dynamic shell completion (clap_complete's `COMPLETE=<shell> lineage` protocol): the
//! scripts `lineage completions SHELL` prints call lineage back while you type, so run ids
//! complete from the store. The store is found as every command finds it (`location`),
//! minus `--store` (not parsed yet): `LINEAGE_STORE`, the settings files, the default; a
//! team store completes from this machine's replica (no network while you type).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use clap_complete::engine::{CompletionCandidate, PathCompleter, ValueCompleter};

use crate::location::{StoreArg, StoreLocation};

/// The most recent runs whose id or short id starts with what was typed, newest first; each
/// with its command as help.
pub fn run_ids(current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    if !prefix.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Vec::new();
    }
    let Some(dir) = store_dir() else {
        return Vec::new();
    };
    crate::store::recent_runs(&dir, &prefix.to_lowercase(), 100)
        .into_iter()
        .map(|(id, argv)| {
            // Shown by the shell: inert, like every terminal output.
            let mut help = crate::output::terminal_command_line(&argv);
            if help.chars().count() > 60 {
                help = help.chars().take(59).collect::<String>() + "…";
            }
            CompletionCandidate::new(crate::output::escape(&id).into_owned())
                .help(Some(help.into()))
        })
        .collect()
}

/// The store directory the command being typed would use, if it can be found.
fn store_dir() -> Option<std::path::PathBuf> {
    let arg = std::env::var_os("LINEAGE_STORE")
        .filter(|s| !s.is_empty())
        .map(StoreArg::from_os);
    let settings = std::env::current_dir()
        .ok()
        .and_then(|cwd| crate::settings::for_dir(&cwd).ok());
    let from_settings = settings.as_ref().and_then(|s| s.store.as_ref());
    StoreLocation::resolve(arg.as_ref(), from_settings)
        .ok()
        .map(|l| l.dir().to_path_buf())
}

/// A path, or a run id (`show`, `export`, `diff` take either).
pub fn run_or_path(current: &OsStr) -> Vec<CompletionCandidate> {
    let mut out = PathCompleter::any().complete(current);
    if !current.as_bytes().contains(&b'/') {
        out.extend(run_ids(current));
    }
    out
}
