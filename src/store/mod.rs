//! The lineage store: one SQLite file, `lineage.db`, in a user-only directory, and all the
//! SQL of lineage (with `pg`, the team store's). Split by concern:
//!
//! - this file: the [`Store`] handle, opening it, its key, and closing it;
//! - `migrate`: pragmas, the numbered migrations, and marking dead runs interrupted;
//! - `record`: the recording path of `lineage run` (runs are written in two short
//!   transactions, `running` before the job starts and finalized after it ends; no
//!   transaction is held while the job runs);
//! - `query`: reading runs back (ids, whole runs, lists, blobs);
//! - `cache`: the stat cache that spares re-reading unchanged files;
//! - `graph`: the ancestry and descendant walks, as recursive CTEs;
//! - `sync`: what has been delivered to and fetched from team stores;
//! - `schema`: the tables and columns that travel between stores (bundles, team stores);
//! - `annotations`: tags and notes, append-only rows beside the runs, signed;
//! - `bundle`, `doctor`, `pg`: bundles, checks and repairs, the PostgreSQL team store.
//!
//! Artifacts, directory manifests and blobs are content-addressed and inserted idempotently.
//! Nothing here prints: problems are returned as errors or as notes for the caller.

use std::cell::RefCell;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result};
use rusqlite::Connection;
use rusqlite::config::DbConfig;

mod annotations;
pub(crate) mod bundle;
mod cache;
pub(crate) mod doctor;
pub(crate) mod find;
mod graph;
mod groups;
mod inbound;
mod migrate;
#[cfg(feature = "team-store")]
pub(crate) mod pg;
mod query;
mod record;
pub(crate) mod schema;
mod signature;
mod sync;

pub use annotations::{Author, Tagged, Taken};
pub use cache::ReadOnlyCache;
pub use inbound::dir_hash;
pub use query::{LatestOutput, recent_runs};
pub use record::{Finish, NewRun};
pub use sync::{Arrival, HeldBack, PendingPush, Tombstone};

use crate::error::Error;
use crate::model::Hash;

/// The database file in a store directory.
pub const DB_FILE: &str = crate::model::STORE_FILES[0];
/// Its write-ahead log.
const WAL_FILE: &str = crate::model::STORE_FILES[1];
const KEY_FILE: &str = crate::model::STORE_FILES[3];
/// Room kept for recording: a file allocated (never written) in the store's directory and
/// given back when a write finds no room, so that a job that fills the disk or the quota it
/// shares with the store (a checkpoint in a full home) is still recorded.
const ROOM_FILE: &str = crate::model::STORE_FILES[4];
/// How much: a run's record with the manifest of a new 20,000-file directory fits (about
/// 190 bytes a file).
pub const ROOM_BYTES: i64 = 8 << 20;

/// Run a write to the store in `dir`; where it fails for want of room and the store's room
/// is there, give the room back and run it once more.
pub fn with_room<T>(dir: &Path, mut write: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<T> {
    match write() {
        Err(e) if crate::error::is_no_room(&e) && give_room(dir) => write(),
        done => done,
    }
}

/// For `doctor`: when the store's disk has less free than the room and no room is kept, a
/// line saying so (a run may then not be recorded).
pub fn room_note(dir: &Path) -> Option<String> {
    if std::fs::symlink_metadata(dir.join(ROOM_FILE)).is_ok() {
        return None;
    }
    let fs = nix::sys::statvfs::statvfs(dir).ok()?;
    let free = fs.blocks_available().saturating_mul(fs.fragment_size());
    (free < ROOM_BYTES as u64).then(|| {
        format!(
            "{free} bytes free where the store is, and no room kept for recording \
             ({ROOM_FILE}): a run may not be recorded until there is space again"
        )
    })
}

/// Give the store's room back (remove its file): whether there was one.
fn give_room(dir: &Path) -> bool {
    std::fs::remove_file(dir.join(ROOM_FILE)).is_ok()
}

/// Keep the store's room: made when it is missing and the disk has room for it (allocated,
/// not written: instant where the filesystem allocates; not made where it cannot).
fn keep_room(dir: &Path) {
    let path = dir.join(ROOM_FILE);
    if std::fs::symlink_metadata(&path).is_ok() {
        return;
    }
    let Ok(file) = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    else {
        return;
    };
    let made = nix::fcntl::fallocate(&file, nix::fcntl::FallocateFlags::empty(), 0, ROOM_BYTES);
    if made.is_err() {
        let _ = std::fs::remove_file(&path);
    }
}

/// An open store. Reading and recording go through its methods, grouped by concern in the
/// submodules; it is used by one thread at a time (SQLite's connection may move between
/// threads, as `lineage run` moves it to write the run while the job starts, but is not
/// shared).
pub struct Store {
    conn: Connection,
    dir: PathBuf,
    /// Set when the store runs in its network-filesystem mode (the caller warns).
    pub notice: Option<String>,
    /// The recording path's staged manifests and deferred writes (`record`).
    recording: record::Buffers,
    /// Stat-cache rows learned but not yet written: written while the job runs
    /// (`idle_work`), so a first run does not wait for them before launch.
    learned: RefCell<Vec<(crate::hash::StatKey, Hash)>>,
    /// Pages in the WAL after this connection's last commit (SQLite's WAL hook reports it).
    wal_pages: Arc<AtomicI32>,
    /// Runs that opening the store marked `interrupted` ([`Store::reap_stale`]).
    reaped: usize,
}

/// How long closing the store waits for readers to move on before emptying the WAL.
const CHECKPOINT_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// A WAL longer than this is checkpointed when the store is closed.
const CHECKPOINT_PAGES: i32 = 128;

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.close_writes();
    }
}

impl Store {
    /// What closing the store does, now (again on drop only if there is more to do): the
    /// deferred and learned rows written, then what this process wrote (a finished run, an
    /// import) copied into the database file and the WAL emptied, so that no finished run
    /// depends on the WAL: SQLite stops reading a WAL at a damaged frame, and the frames
    /// before it, replayed over a database that already holds newer pages, would even bring
    /// older ones back. Waits a moment for readers at most; if they stay, the next close
    /// does it. Returns why the copy failed (a full disk), for the caller to tell: the
    /// writes are safe in the WAL meanwhile, and the next close that writes copies them.
    pub fn close_writes(&mut self) -> Option<String> {
        self.write_deferred();
        self.write_learned();
        if self.wal_pages() <= 0 {
            return None;
        }
        // No room for the copy: the store's room, given back, may make it.
        if let Some(problem) = self.room_for_the_copy()
            && (!give_room(&self.dir) || self.room_for_the_copy().is_some())
        {
            return Some(problem);
        }
        let _ = self.conn.busy_timeout(CHECKPOINT_WAIT);
        let checkpoint = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            });
        let _ = self.conn.busy_timeout(std::time::Duration::from_secs(30));
        let busy = |e: &rusqlite::Error| {
            matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            )
        };
        let problem = match checkpoint {
            // Copied, and the WAL emptied: nothing left for the drop.
            Ok(0) => {
                self.wal_pages.store(0, Ordering::Relaxed);
                None
            }
            Ok(_) => {
                self.delete_long_wal();
                None
            }
            Err(e) if busy(&e) => {
                self.delete_long_wal();
                None
            }
            Err(e) => Some(format!(
                "{} could not be copied into {DB_FILE} ({e})",
                self.dir.join(WAL_FILE).display()
            )),
        };
        // Written: room kept for the next write that finds the disk full.
        if problem.is_none() {
            keep_room(&self.dir);
        }
        problem
    }

    /// Room in the database file for what the WAL holds, made before the copy: a copy that
    /// fails half-way (a full disk) has overwritten pages of the database that only the WAL
    /// then completes, so that a damaged WAL would cost the runs finished before it too.
    /// Reserved with fallocate(2), which takes all of it or nothing; where the filesystem
    /// cannot reserve, the copy goes ahead. Returns why there is no room.
    fn room_for_the_copy(&self) -> Option<String> {
        let pages: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .ok()?;
        let page: i64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .ok()?;
        let need = pages.checked_mul(page)?;
        let db = self.dir.join(DB_FILE);
        let file = OpenOptions::new().write(true).open(&db).ok()?;
        let have = i64::try_from(file.metadata().ok()?.len()).ok()?;
        if need <= have {
            return None;
        }
        use nix::errno::Errno;
        let flags = nix::fcntl::FallocateFlags::empty();
        match nix::fcntl::fallocate(&file, flags, have, need - have) {
            Ok(()) => None,
            Err(Errno::EOPNOTSUPP | Errno::ENOSYS | Errno::EINVAL) => None,
            Err(e) => Some(format!(
                "{} could not be copied into {DB_FILE}, which cannot grow by {} bytes ({e}); \
                 {DB_FILE} itself is untouched",
                self.dir.join(WAL_FILE).display(),
                need - have
            )),
        }
    }

    /// The first connection to open the store reads the whole WAL to rebuild its index, and
    /// a checkpoint alone does not shorten it for the next process: let the last close
    /// checkpoint and remove a long WAL (when no other connection has the store open).
    fn delete_long_wal(&self) {
        if self.wal_pages() > CHECKPOINT_PAGES {
            let _ = self
                .conn
                .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false);
        }
    }
}

/// How the store journals its writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Journal {
    /// Write-ahead log: fast, readers never block writers; needs shared memory, so local disks only.
    Wal,
    /// Rollback journal with POSIX locks: safe on NFS, CIFS and cluster filesystems.
    Delete,
}

/// Make the store directory the user's alone: one made beforehand with the umask's mode
/// (`mkdir` gives 0755) let every user list it, and a group-writable one let others replace
/// its files. Where it holds only the store's own files, its group and other bits are taken
/// away (said once: the next open finds it 0700); where it holds anything else (a project
/// directory given as the store), it is left as it is and said on every open. None when it
/// is the user's alone, or cannot be listed.
/// `meta`: the directory's, as just taken; `me`: the user's id.
fn user_only(dir: &Path, meta: &std::fs::Metadata, me: u32) -> Option<String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return None;
    }
    let shown = crate::model::text::escape(&dir.display().to_string()).into_owned();
    // The store's own files only, each a regular file of the user's (not a link, nor a name
    // that merely starts like one), and its `remotes` directory (replicas); and no setgid or sticky
    // bit, which mark a directory meant to be shared.
    let only_the_stores = mode & 0o7000 == 0
        && std::fs::read_dir(dir).ok()?.all(|e| {
            e.is_ok_and(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                // `team-store`: in a replica, the name of the team store it mirrors.
                let file = crate::model::STORE_FILES.contains(&name.as_ref())
                    || name == "team-store"
                    || name.starts_with("lineage.db-wal.damaged-")
                    || name.starts_with("lineage.db.broken-");
                // `remotes/`: the replicas of team stores, kept in the default store.
                let replicas = name == "remotes";
                (file || replicas)
                    && std::fs::symlink_metadata(e.path()).is_ok_and(|m| {
                        m.uid() == me
                            && if file {
                                m.file_type().is_file()
                            } else {
                                m.file_type().is_dir()
                            }
                    })
            })
        });
    if only_the_stores
        && std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).is_ok()
    {
        return Some(format!(
            "store directory {shown} was mode {mode:o}, open to other users: made 700"
        ));
    }
    Some(format!(
        "store directory {shown} is mode {mode:o}, open to other users: chmod 700 {shown}"
    ))
}

/// The journal mode for a store directory: `LINEAGE_STORE_JOURNAL` (wal or delete) when set,
/// otherwise WAL unless the directory is on a network or cluster filesystem.
pub fn journal_for(dir: &Path) -> (Journal, Option<String>) {
    match std::env::var("LINEAGE_STORE_JOURNAL").ok().as_deref() {
        Some("wal") => return (Journal::Wal, None),
        Some("delete") => return (Journal::Delete, None),
        _ => {}
    }
    match crate::host::network_filesystem(dir) {
        Some(name) => (
            Journal::Delete,
            Some(format!(
                "store {} is on {name}: using a rollback journal instead of WAL (slower, safe across hosts)",
                dir.display()
            )),
        ),
        None => (Journal::Wal, None),
    }
}

impl Store {
    /// Open (creating user-only if needed) and migrate the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| Error::StoreOpen {
            path: dir.display().to_string(),
            source,
        };
        // By its components: std's recursive create fails on a path ending in `/.`
        // (`LINEAGE_STORE=.lineage/./`), which the components leave out.
        let clean: std::path::PathBuf = dir.components().collect();
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&clean)
            .map_err(|e| match e.kind() {
                // Only a path that exists and is not a directory fails so.
                std::io::ErrorKind::AlreadyExists => {
                    fail("it exists and is not a directory".into())
                }
                _ => fail(e.into()),
            })?;
        // The store must be the user's own, wherever a symlink leads: another user's
        // directory could read the records or feed forged ones.
        let me = nix::unistd::getuid().as_raw();
        let meta = std::fs::metadata(dir).map_err(|e| fail(e.into()))?;
        let owner = std::os::unix::fs::MetadataExt::uid(&meta);
        if owner != me {
            return Err(Error::StoreNotOwned {
                path: dir.display().to_string(),
                owner,
                me,
            });
        }
        let open_to_others = user_only(dir, &meta, me);
        let db = dir.join(DB_FILE);
        // A FIFO, a device or a directory in place of the database or its WAL or shm file
        // would hang or mislead every command: refused, named.
        // A link, or a file of another user's, is refused too: where others could write the
        // directory, one of them could have planted it to have lineage read and write their
        // database.
        for name in [DB_FILE, WAL_FILE, crate::model::STORE_FILES[2]] {
            let Ok(meta) = std::fs::symlink_metadata(dir.join(name)) else {
                continue;
            };
            let why = if meta.file_type().is_symlink() {
                Some("is a symbolic link, not the store's own file")
            } else if !meta.is_file() {
                Some("is not a regular file")
            } else if std::os::unix::fs::MetadataExt::uid(&meta) != me {
                Some("belongs to another user")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(fail(format!("{name} in it {why}: move it away").into()));
            }
        }
        // Made here, by this command (not by another one meanwhile): then it is this
        // command's to remove should it not be made whole.
        let fresh = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&db)
            .is_ok();
        let opened = Store::open_db(dir, &db, open_to_others);
        // A new store that could not be made for want of room is not left half-made (an
        // empty database that `doctor` would call damaged): the next try starts afresh.
        if fresh
            && let Err(e) = &opened
            && crate::error::causes_no_room(e)
        {
            for name in [DB_FILE, WAL_FILE, crate::model::STORE_FILES[2]] {
                let _ = std::fs::remove_file(dir.join(name));
            }
        }
        opened
    }

    /// [`Store::open`] once the directory is checked: the database made (if new), opened,
    /// configured and migrated.
    fn open_db(dir: &Path, db: &Path, open_to_others: Option<String>) -> Result<Store, Error> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| Error::StoreOpen {
            path: dir.display().to_string(),
            source,
        };
        // Create the database file 0600 first: SQLite gives its WAL and shm files the
        // database file's permissions.
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(db)
            .map_err(|e| fail(e.into()))?;
        // A damaged WAL loses what was written after the damage, and the next write would
        // overwrite the evidence: a copy is set aside first (only a WAL with frames is read;
        // lineage empties it after every write).
        let damage = keep_damaged_wal(dir);
        let conn = Connection::open(db).map_err(|e| fail(e.into()))?;
        let (journal, notice) = journal_for(dir);
        let notices: Vec<String> = [open_to_others, notice, damage]
            .into_iter()
            .flatten()
            .collect();
        let notice = (!notices.is_empty()).then(|| notices.join("; "));
        let mut store = Store {
            conn,
            dir: dir.to_path_buf(),
            notice,
            recording: Default::default(),
            learned: Default::default(),
            wal_pages: Default::default(),
            reaped: 0,
        };
        store.configure(journal).map_err(|e| fail(e.into()))?;
        store.migrate(db)?;
        // Best effort: a failure here must not stop the command that opened the store.
        store.reaped = store.reap_stale().unwrap_or(0);
        Ok(store)
    }

    /// How many runs opening the store marked `interrupted`: their lineage process was gone.
    pub fn reaped_on_open(&self) -> usize {
        self.reaped
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn wal_pages(&self) -> i32 {
        self.wal_pages.load(Ordering::Relaxed)
    }

    /// The per-store key for fingerprints of redacted secrets (created on first use, 0600),
    /// and a warning when the one there could not be used. Never fails: a key file that is
    /// damaged (not 32 bytes), not a regular file, not the user's own, or readable or
    /// writable by others (another user could know or choose it) is set aside as
    /// `secret.key.bad-<time>` and a new key made; if even that fails, a key for this
    /// command only. Either way the job runs; fingerprints of secrets redacted before then
    /// no longer match (`diff` calls those secrets changed).
    pub fn secret_key(&self) -> ([u8; 32], Option<String>) {
        key_in(&self.dir)
    }
}

/// [`Store::secret_key`] for the store in `dir` (also for `doctor --repair`).
pub(crate) fn key_in(dir: &Path) -> ([u8; 32], Option<String>) {
    let path = dir.join(KEY_FILE);
    let mut warning = None;
    for _ in 0..3 {
        match read_key(&path) {
            Ok(Some(key)) => return (key, warning),
            Ok(None) => match create_key(&path) {
                Ok(Some(key)) => return (key, warning),
                // Another command made it first: read theirs.
                Ok(None) => continue,
                Err(e) => {
                    return (
                        ephemeral_key(),
                        Some(format!(
                            "could not create {}: {e}; secrets are fingerprinted with a key for this run only",
                            path.display()
                        )),
                    );
                }
            },
            Err(why) => {
                let aside = dir.join(format!(
                    "{KEY_FILE}.bad-{}",
                    jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.6fZ")
                ));
                match std::fs::rename(&path, &aside) {
                    // Gone meanwhile: another command set it aside.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return (
                            ephemeral_key(),
                            Some(format!(
                                "{} {why} and could not be set aside ({e}); secrets are fingerprinted with a key for this run only",
                                path.display()
                            )),
                        );
                    }
                    Ok(()) => {
                        // Set aside user-only: a key that was open to others stays no more
                        // open than the store (best effort; a link or another's file may
                        // refuse, and nothing is written through a link).
                        if std::fs::symlink_metadata(&aside).is_ok_and(|m| m.is_file()) {
                            let _ = std::fs::set_permissions(
                                &aside,
                                std::os::unix::fs::PermissionsExt::from_mode(0o600),
                            );
                        }
                        warning = Some(format!(
                            "{} {why}: set aside as {} and a new key made (secrets redacted before no longer compare equal in `lineage diff`)",
                            path.display(),
                            aside.display()
                        ));
                    }
                }
            }
        }
    }
    (
        ephemeral_key(),
        Some(format!(
            "{} keeps changing; secrets are fingerprinted with a key for this run only",
            path.display()
        )),
    )
}

/// What is wrong with the key file of the store in `dir`, if anything (None: fine or absent).
pub(crate) fn key_problem(dir: &Path) -> Option<String> {
    let path = dir.join(KEY_FILE);
    read_key(&path)
        .err()
        .map(|why| format!("{} {why}", path.display()))
}

/// The key in `path`: None when there is none; Err(why) when the file cannot be trusted or
/// used. Opened without following a symlink, and judged by the open file's own stat.
fn read_key(path: &Path) -> std::result::Result<Option<[u8; 32]>, String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut f = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err("is a symlink".to_string());
        }
        Err(e) => return Err(format!("cannot be read ({e})")),
    };
    let meta = f.metadata().map_err(|e| format!("cannot be read ({e})"))?;
    let me = nix::unistd::getuid().as_raw();
    if !meta.is_file() {
        return Err("is not a regular file".to_string());
    }
    if meta.uid() != me {
        return Err(format!("belongs to uid {}, not to you", meta.uid()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!("is mode {mode:o}: others could read or replace it"));
    }
    let mut buf = Vec::with_capacity(33);
    Read::by_ref(&mut f)
        .take(33)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot be read ({e})"))?;
    let key: [u8; 32] = buf
        .try_into()
        .map_err(|b: Vec<u8>| format!("is damaged ({} bytes, not 32)", b.len()))?;
    Ok(Some(key))
}

/// Make a new key file whole, atomically: written user-only under a temporary name, then
/// linked into place (which fails if another command made one first: Ok(None)).
fn create_key(path: &Path) -> Result<Option<[u8; 32]>> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("generating the store key: {e}"))?;
    let tmp = path.with_file_name(format!(
        "{KEY_FILE}.new-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    ));
    let written = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&key)?;
        f.sync_all()?;
        Ok(())
    })();
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.into()),
    });
    let _ = std::fs::remove_file(&tmp);
    Ok(linked?.then_some(key))
}

/// A key for this command only, when no key file can be used.
fn ephemeral_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    // The fingerprints only need to be unguessable; a failing getrandom leaves them keyed
    // with zeros, which still never shows the secret.
    let _ = getrandom::fill(&mut key);
    key
}

/// Arguments cannot contain NUL on Unix, so NUL separates them losslessly.
fn join_argv(argv: &[Vec<u8>]) -> Vec<u8> {
    argv.join(&0u8)
}

fn split_argv(raw: &[u8]) -> Vec<Vec<u8>> {
    raw.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
}

/// If the store's WAL is damaged (`doctor::wal_frames_lost`), copy it aside, user-only, and
/// say so: the evidence outlives the next write.
fn keep_damaged_wal(dir: &Path) -> Option<String> {
    let wal = dir.join(WAL_FILE);
    let meta = std::fs::metadata(&wal).ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    let bytes = std::fs::read(&wal).ok()?;
    let why = doctor::wal_damage(&wal, &bytes)?;
    // Named by its content: the same damage is kept once, however many commands see it.
    let name = blake3::hash(&bytes).to_hex();
    let aside = dir.join(format!("lineage.db-wal.damaged-{}", &name[..16]));
    let copied = if aside.exists() {
        Ok(())
    } else {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&aside)
            .and_then(|mut out| std::io::Write::write_all(&mut out, &bytes))
    };
    Some(match copied {
        Ok(()) => format!(
            "{why}; a copy is kept as {}: run `lineage doctor`",
            aside.display()
        ),
        Err(e) => format!("{why}; it could not be copied aside ({e}): run `lineage doctor`"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_round_trips_through_nul_separation() {
        let argv = vec![
            b"python".to_vec(),
            vec![0xff, 0xfe],
            Vec::new(),
            b"x y".to_vec(),
        ];
        assert_eq!(split_argv(&join_argv(&argv)), argv);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(Store::open(dir.path()).expect("open"));
        let conn = Connection::open(dir.path().join(DB_FILE)).expect("sqlite");
        conn.pragma_update(None, "user_version", 99)
            .expect("pragma");
        drop(conn);
        let err = Store::open(dir.path()).err().expect("refused");
        assert!(matches!(err, Error::StoreTooNew { found: 99, .. }), "{err}");
    }
}
