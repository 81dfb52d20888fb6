//! Where the store is: decided once, here, for every command and for shell completion.
//!
//! A store is named by `--store`, `LINEAGE_STORE`, or `store =` in a settings file (in that
//! order), else it is the default directory. The name is either a directory, holding
//! `lineage.db`, or a `postgres://` URL naming a team store, which this machine works with
//! through a local replica (see `store::pg`).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// A store as named on the command line, in `LINEAGE_STORE` or in a settings file, before it
/// is resolved: telling the two forms apart cannot fail, so clap parses it with
/// [`StoreArg::from_os`] (a directory's name need not be UTF-8); a URL is checked when it is
/// resolved ([`StoreLocation::resolve`]), with an error that never repeats it (it may hold a
/// password).
#[derive(Clone, PartialEq, Eq)]
pub enum StoreArg {
    /// A store directory.
    Dir(PathBuf),
    /// A team store's URL (`postgres://` or `postgresql://`).
    Url(String),
}

impl StoreArg {
    /// Tell a URL from a directory.
    pub fn parse(value: &str) -> StoreArg {
        if is_url(value) {
            StoreArg::Url(value.to_string())
        } else {
            StoreArg::Dir(PathBuf::from(value))
        }
    }

    /// [`StoreArg::parse`] for a value that may not be UTF-8 (then a directory).
    pub fn from_os(value: std::ffi::OsString) -> StoreArg {
        match value.into_string() {
            Ok(s) => StoreArg::parse(&s),
            Err(raw) => StoreArg::Dir(PathBuf::from(raw)),
        }
    }
}

/// A URL's password never reaches a debug print.
impl fmt::Debug for StoreArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreArg::Dir(d) => f.debug_tuple("Dir").field(d).finish(),
            StoreArg::Url(_) => f.write_str("Url(..)"),
        }
    }
}

/// Whether a store name is a team store's URL.
pub fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// `url` without its password, when it has one (`postgres://USER:PASSWORD@...`, or a
/// `password=` parameter): the user, the host, the database and the other parameters stay.
/// The credentials end at the first `@`, as the URL parser reads them.
pub fn without_password(url: &str) -> Option<String> {
    let scheme = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|s| url.starts_with(s))?;
    let rest = &url[scheme.len()..];
    let (creds, after) = match rest.split_once('@') {
        Some((creds, after)) => (Some(creds), after),
        None => (None, rest),
    };
    let user = creds.map(|c| c.split_once(':').map_or(c, |(user, _)| user));
    let (base, query) = after.split_once('?').unwrap_or((after, ""));
    let params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("password="))
        .collect();
    let mut out = scheme.to_string();
    if let Some(user) = user {
        out.push_str(user);
        out.push('@');
    }
    out.push_str(base);
    if !params.is_empty() {
        out.push('?');
        out.push_str(&params.join("&"));
    }
    (user != creds || params.len() != query.split('&').filter(|p| !p.is_empty()).count())
        .then_some(out)
}

/// The variables naming a team store that hold a password, each with the password removed:
/// what a job gets instead (`env`: the job's environment when not lineage's own), so that the
/// password is not handed to everything it runs. A lineage inside the job finds the password
/// where the user keeps it (`PGPASSWORD`, `~/.pgpass`).
pub fn store_vars_without_password(
    env: Option<&[(std::ffi::OsString, std::ffi::OsString)]>,
) -> Vec<(&'static str, String)> {
    ["LINEAGE_STORE", "LINEAGE_TEAM_STORE"]
        .into_iter()
        .filter_map(|name| {
            let value = match env {
                Some(env) => env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
                None => std::env::var_os(name),
            }?;
            Some((name, without_password(value.to_str()?)?))
        })
        .collect()
}

/// A store, resolved.
#[derive(Debug)]
pub enum StoreLocation {
    /// A store of this machine's: the directory holding `lineage.db`.
    Dir(PathBuf),
    /// A team store, and the directory of this machine's replica of it.
    #[cfg(feature = "team-store")]
    Team {
        remote: Box<crate::store::pg::Remote>,
        replica: PathBuf,
    },
}

impl StoreLocation {
    /// The store named by `arg` (`--store` or `LINEAGE_STORE`), else by the settings files,
    /// else the default directory.
    pub fn resolve(arg: Option<&StoreArg>, from_settings: Option<&StoreArg>) -> Result<Self> {
        match arg.or(from_settings) {
            None => Ok(StoreLocation::Dir(default_dir()?)),
            Some(StoreArg::Dir(dir)) => Ok(StoreLocation::Dir(dir.clone())),
            Some(StoreArg::Url(url)) => team(url),
        }
    }

    /// The SQLite store this machine reads and writes: the directory, or the team store's
    /// replica.
    pub fn dir(&self) -> &Path {
        match self {
            StoreLocation::Dir(dir) => dir,
            #[cfg(feature = "team-store")]
            StoreLocation::Team { replica, .. } => replica,
        }
    }

    /// The team store, when this is one.
    #[cfg(feature = "team-store")]
    pub fn team(&self) -> Option<&crate::store::pg::Remote> {
        match self {
            StoreLocation::Dir(_) => None,
            StoreLocation::Team { remote, .. } => Some(remote),
        }
    }
}

#[cfg(feature = "team-store")]
fn team(url: &str) -> Result<StoreLocation> {
    let remote = crate::store::pg::Remote::parse(url)?;
    let replica = remote.replica_dir(&default_dir()?);
    bind(&replica, &remote.name)?;
    Ok(StoreLocation::Team {
        remote: Box::new(remote),
        replica,
    })
}

/// Bind the replica (made by now) to its team store, or refuse another: the syncs call it
/// before a replica is written to the team store or from it.
#[cfg(feature = "team-store")]
pub fn bind_replica(replica: &Path, name: &str) -> Result<()> {
    bind(replica, name)
}

/// The file in a replica naming the team store it mirrors (`Remote::name`: no password).
#[cfg(feature = "team-store")]
const REPLICA_BINDING: &str = "team-store";

/// A replica holds one team store's runs and queues its own for delivery there: used for
/// another, it would deliver the first store's runs to the second. So the first use binds it
/// (a replica made before bindings existed is bound by its next use), and any other store is
/// refused.
#[cfg(feature = "team-store")]
fn bind(replica: &Path, name: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = replica.join(REPLICA_BINDING);
    let check = |bound: &str| {
        let bound = bound.trim_end_matches('\n');
        anyhow::ensure!(
            bound == name,
            "the replica {} belongs to the team store {}, not {name}: set LINEAGE_REPLICA to \
             another directory for it",
            replica.display(),
            bound.escape_debug()
        );
        Ok(())
    };
    match std::fs::read_to_string(&file) {
        Ok(bound) => return check(&bound),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("reading {}", file.display()));
        }
        Err(_) => {}
    }
    // No replica yet: bound when the command that makes it syncs (`bind_replica`), so that
    // a command that writes nothing (`doctor --secrets`) makes nothing.
    if !replica.is_dir() {
        return Ok(());
    }
    // Written whole under a name of its own, then linked into place: a concurrent first use
    // reads either no binding or a whole one. A directory that cannot be written is left to
    // the store to report when it opens it.
    let scratch = replica.join(format!(".{REPLICA_BINDING}.{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&scratch)
        .and_then(|mut f| f.write_all(format!("{name}\n").as_bytes()));
    let linked = written.and_then(|()| std::fs::hard_link(&scratch, &file));
    let _ = std::fs::remove_file(&scratch);
    match linked {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bound = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            check(&bound)
        }
        // A filesystem without hard links: written in place.
        Err(_) => {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&file)
                .and_then(|mut f| f.write_all(format!("{name}\n").as_bytes()));
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

#[cfg(not(feature = "team-store"))]
fn team(_url: &str) -> Result<StoreLocation> {
    Err(crate::error::Error::NoTeamStore("a postgres:// store").into())
}

/// The default store directory: `$XDG_DATA_HOME/lineage` (`~/.local/share/lineage`).
pub fn default_dir() -> Result<PathBuf> {
    use etcetera::BaseStrategy;
    let strategy = etcetera::choose_base_strategy().context("finding the data directory")?;
    Ok(strategy.data_dir().join("lineage"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_taken_out_of_a_url_and_the_rest_kept() {
        assert_eq!(
            without_password("postgres://ada:hun:ter2@db:6543/lineage?sslmode=verify-full")
                .as_deref(),
            Some("postgres://ada@db:6543/lineage?sslmode=verify-full")
        );
        assert_eq!(
            without_password("postgresql://:pw@db/x").as_deref(),
            Some("postgresql://@db/x")
        );
        assert_eq!(
            without_password("postgres://ada@db/l?password=pw&sslmode=require").as_deref(),
            Some("postgres://ada@db/l?sslmode=require")
        );
        assert_eq!(without_password("postgres://ada@db/lineage"), None);
        assert_eq!(
            without_password("postgres://ada@db/l?sslmode=disable"),
            None
        );
        assert_eq!(without_password("postgres://db:5432/lineage"), None);
        assert_eq!(without_password("/srv/store"), None);
        let env = [
            ("LINEAGE_STORE".into(), "postgres://ada:pw@db/l".into()),
            ("LINEAGE_TEAM_STORE".into(), "postgres://ada@db/l".into()),
        ];
        assert_eq!(
            store_vars_without_password(Some(&env)),
            [("LINEAGE_STORE", "postgres://ada@db/l".to_string())]
        );
    }

    #[test]
    fn a_url_is_told_from_a_directory_and_never_debug_printed() {
        let url = StoreArg::parse("postgres://ada:hunter2@db/lineage");
        assert_eq!(
            url,
            StoreArg::Url("postgres://ada:hunter2@db/lineage".into())
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(
            StoreArg::parse("postgres-data/store"),
            StoreArg::Dir("postgres-data/store".into())
        );
        use std::os::unix::ffi::OsStringExt;
        let raw = std::ffi::OsString::from_vec(b"st\xffore".to_vec());
        assert_eq!(StoreArg::from_os(raw.clone()), StoreArg::Dir(raw.into()));
        let arg = StoreArg::Dir("/tmp/s".into());
        let loc = StoreLocation::resolve(Some(&arg), None).expect("resolves");
        assert_eq!(loc.dir(), Path::new("/tmp/s"));
    }
}
