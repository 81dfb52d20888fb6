//! Dynamic shell completion (clap_complete's `COMPLETE=<shell> lineage` protocol): the
//! scripts `lineage completions SHELL` prints call lineage back while you type, so run ids
//! complete from the store. The store is found as every command finds it, minus `--store`
//! (not parsed yet): `LINEAGE_STORE`, the settings files, the default.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use clap_complete::engine::{CompletionCandidate, PathCompleter, ValueCompleter};

/// The most recent runs whose id starts with what was typed, newest first; each with its
/// command as help.
pub fn run_ids(current: &OsStr) -> Vec<CompletionCandidate> {
    let prefix = current.to_string_lossy();
    if !prefix.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Vec::new();
    }
    let Some(dir) = std::env::var_os("LINEAGE_STORE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let cwd = std::env::current_dir().ok()?;
            crate::settings::init(&cwd).ok()?.store.clone()
        })
        .or_else(|| crate::store::default_dir().ok())
    else {
        return Vec::new();
    };
    let db = dir.join(crate::store::DB_FILE);
    if !db.exists() {
        return Vec::new();
    }
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let _ = conn.busy_timeout(std::time::Duration::from_millis(200));
    let Ok(mut stmt) = conn.prepare(
        "SELECT id, argv FROM runs WHERE id LIKE ?1 || '%' ORDER BY started_at DESC LIMIT 100",
    ) else {
        return Vec::new();
    };
    let rows = stmt.query_map([prefix.to_lowercase()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    });
    let Ok(rows) = rows else {
        return Vec::new();
    };
    rows.filter_map(Result::ok)
        .map(|(id, argv)| {
            let argv: Vec<Vec<u8>> = argv.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
            let mut help = crate::output::command_line(&argv);
            if help.chars().count() > 60 {
                help = help.chars().take(59).collect::<String>() + "…";
            }
            CompletionCandidate::new(id).help(Some(help.into()))
        })
        .collect()
}

/// A path, or a run id (`show`, `export`, `diff` take either).
pub fn run_or_path(current: &OsStr) -> Vec<CompletionCandidate> {
    let mut out = PathCompleter::any().complete(current);
    if !current.as_bytes().contains(&b'/') {
        out.extend(run_ids(current));
    }
    out
}
