//! One module per subcommand, each with one entry point that takes its clap arguments and a
//! [`Context`], resolves them into a plan, acts, and returns a result: `Ok` with the exit
//! code, or the error `lib::run` reports (once, through `ui`) and maps to an exit code.

pub mod bundle;
pub mod compare_runs;
pub mod diff;
pub mod docs;
pub mod doctor;
pub mod export;
pub mod list;
pub mod rerun;
pub mod run;
pub mod show;
pub mod status;
#[cfg(feature = "team-store")]
pub mod sync;
pub mod tag;
pub mod target;
pub mod verify;

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::location::StoreLocation;
use crate::settings::Settings;
use crate::store::Store;

/// What every command is given: where the store is, what the settings files say, and
/// whether to colour stdout.
pub struct Context {
    pub store: StoreLocation,
    pub settings: Settings,
    pub color: bool,
}

impl Context {
    /// The SQLite store this command reads and writes (a team store's replica included).
    pub fn store_dir(&self) -> &Path {
        self.store.dir()
    }

    /// Open the store, warning once when it runs in its network-filesystem mode.
    pub fn open_store(&self) -> Result<Store, Error> {
        open_store(self.store_dir())
    }
}

/// A run whose capture could not be read back, refused by what would otherwise use its
/// blank capture as if it were the record (diff, export, rerun).
pub fn readable(run: &crate::model::RunRecord) -> Result<(), Error> {
    match &run.unreadable {
        None => Ok(()),
        Some(why) => Err(Error::UnreadableRun {
            run: run.id.clone(),
            why: why.clone(),
        }),
    }
}

/// Open the store in `dir`, warning once when it runs in its network-filesystem mode.
pub fn open_store(dir: &Path) -> Result<Store, Error> {
    let store = Store::open(dir)?;
    if let Some(notice) = &store.notice {
        crate::ui::warn(notice);
    }
    Ok(store)
}

/// `path` made absolute against the working directory, `.` left out and each `..` taken as
/// the kernel takes it ([`crate::observe::resolve_dots`]): a file declared two ways
/// (`m.txt`, `sub/../m.txt`) is one path in the store, the path the observer sees the job
/// open.
pub fn absolute(path: &Path) -> PathBuf {
    match std::path::absolute(path) {
        Ok(abs) => crate::observe::resolve_dots(&abs),
        // An empty path, or no working directory: as given, for the caller's error.
        Err(_) => path.to_path_buf(),
    }
}

/// Whether `path` is something other than a regular file or a directory (a device such as
/// `/dev/null` or `/dev/stdout`, a FIFO, a socket): written through, never replaced by a
/// rename, which would swap the device for a regular file.
pub fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Copy `from` into the special file `to` (see [`is_special`]).
pub fn write_through(from: &mut dyn std::io::Read, to: &Path) -> std::io::Result<()> {
    let mut out = std::fs::OpenOptions::new().write(true).open(to)?;
    std::io::copy(from, &mut out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_takes_dots_as_the_kernel_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(dir.path()).expect("real");
        std::fs::create_dir_all(root.join("sub/deep")).expect("mkdir");
        std::os::unix::fs::symlink(root.join("sub/deep"), root.join("lnk")).expect("ln");
        let at = |p: &str| absolute(&root.join(p));
        assert_eq!(at("sub/../m.txt"), root.join("m.txt"));
        assert_eq!(at("sub/./deep/../../m.txt"), root.join("m.txt"));
        // After a link: the parent of where it leads.
        assert_eq!(at("lnk/../m.txt"), root.join("sub/m.txt"));
        // A link without `..` after it is kept by name.
        assert_eq!(at("lnk/m.txt"), root.join("lnk/m.txt"));
        // Not there (yet): as given from there on.
        assert_eq!(at("new/../m.txt"), root.join("new/../m.txt"));
        assert_eq!(absolute(Path::new("/../etc")), PathBuf::from("/etc"));
    }
}
