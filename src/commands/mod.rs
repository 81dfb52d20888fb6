//! One module per subcommand, each with one entry point that takes resolved arguments and
//! returns the exit code.

pub mod bundle;
pub mod diff;
pub mod docs;
pub mod doctor;
pub mod export;
pub mod list;
pub mod rerun;
pub mod run;
pub mod show;
pub mod sync;

use std::path::Path;

use crate::error::Error;
use crate::store::Store;

/// Open the store, warning once when it runs in its network-filesystem mode.
pub fn open_store(dir: &Path) -> Result<Store, Error> {
    let store = Store::open(dir)?;
    if let Some(notice) = &store.notice {
        eprintln!("lineage: warning: {notice}");
    }
    Ok(store)
}
