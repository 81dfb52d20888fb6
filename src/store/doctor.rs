//! Checking a store and rebuilding a damaged one. Works on the database file directly, since a
//! corrupt store may not open the normal way.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags, types::Value};

use super::{DB_FILE, Store};
use crate::model::{Role, Status};

/// What `lineage doctor` found.
#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub path: String,
    pub schema_version: Option<i64>,
    pub runs: Option<i64>,
    pub running: Option<i64>,
    /// Damage, or anything else a rebuild is for. Empty when healthy.
    pub problems: Vec<String>,
    /// Modes that are wrong and that chmod fixes (no rebuild).
    pub permissions: Vec<Permission>,
    /// What is wrong with `secret.key` (the next run sets it aside and makes a new one).
    pub key: Option<String>,
    /// Bytes in `lineage.db-wal`: writes not yet copied into the database (lineage copies
    /// them on every close that wrote; left there by a failed copy, or a reader in the way).
    pub wal_bytes: u64,
    /// Runs being recorded now, by a lineage process alive on this host: a rebuild would
    /// lose what they write next, so it waits for them.
    pub live: Vec<String>,
}

impl Report {
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty() && self.permissions.is_empty() && self.key.is_none()
    }
}

/// A store file or directory whose mode is wrong: readable or writable by others, or
/// denying its own user.
#[derive(Debug, serde::Serialize)]
pub struct Permission {
    pub path: PathBuf,
    pub mode: u32,
    pub want: u32,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let (path, mode, want) = (self.path.display(), self.mode, self.want);
        if mode & want != want {
            write!(
                f,
                "{path} is mode {mode:o}: permission denied to its own user"
            )?;
        } else {
            write!(f, "{path} is mode {mode:o}, open to other users")?;
        }
        write!(f, " (want {want:o}): chmod {want:o} {path}")
    }
}

impl Permission {
    /// Set the wanted mode.
    pub fn fix(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(self.want))
    }
}

/// The permission problem of `path` (want: its mode), if any; Err when it cannot be stat-ed.
fn permission(path: &Path, want: u32) -> std::io::Result<Option<Permission>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::symlink_metadata(path)?.permissions().mode() & 0o777;
    Ok(
        (mode & 0o077 != 0 || mode & want != want).then(|| Permission {
            path: path.to_path_buf(),
            mode,
            want,
        }),
    )
}

/// Tables in the order a rebuild copies them (parents before children).
const TABLES: &[&str] = &[
    "runs",
    "artifacts",
    "dir_entries",
    "pending_manifests",
    "edges",
    "params",
    "metrics",
    "annotations",
    "blobs",
    "extra_digests",
    "pushed",
    "pulled",
];

pub fn check(dir: &Path) -> Report {
    let db = dir.join(DB_FILE);
    let mut report = Report {
        path: db.display().to_string(),
        ..Report::default()
    };
    let say_stat = |path: &Path, e: &std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
        std::io::ErrorKind::PermissionDenied => {
            format!("{}: permission denied ({e})", path.display())
        }
        _ => format!("{}: {e}", path.display()),
    };
    match permission(dir, 0o700) {
        Ok(p) => report.permissions.extend(p),
        Err(e) => {
            report.problems.push(say_stat(dir, &e));
            return report;
        }
    }
    // The database, its WAL and shared memory, as far as the directory lets us look.
    let mut readable = report.permissions.is_empty();
    for (path, required) in [
        (db.clone(), true),
        (PathBuf::from(format!("{}-wal", db.display())), false),
        (PathBuf::from(format!("{}-shm", db.display())), false),
    ] {
        if let Ok(meta) = std::fs::metadata(&path)
            && !meta.is_file()
        {
            // A FIFO or a device would hang SQLite and every command: never opened.
            report.problems.push(format!(
                "{} is not a regular file: move it away (lineage never opens it)",
                path.display()
            ));
            return report;
        }
        match permission(&path, 0o600) {
            Ok(Some(p)) => {
                readable = false;
                report.permissions.push(p);
            }
            Ok(None) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
            // Not known until the directory's mode is fixed.
            Err(_) if !report.permissions.is_empty() => readable = false,
            Err(e) => {
                report.problems.push(say_stat(&path, &e));
                return report;
            }
        }
    }
    // Behind a directory its user cannot enter, the key is checked once that is fixed.
    if report.permissions.iter().all(|p| p.path != dir) {
        report.key = super::key_problem(dir);
    }
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    report.wal_bytes = std::fs::metadata(&wal)
        .ok()
        .filter(|m| m.is_file())
        .map_or(0, |m| m.len());
    if let Some(lost) = wal_frames_lost(&wal) {
        report.problems.push(lost);
    }
    if !readable && nix::unistd::access(&db, nix::unistd::AccessFlags::R_OK).is_err() {
        // Fix the modes first; the rest is checked then.
        return report;
    }
    let conn = match Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(c) => c,
        Err(e) => {
            report.problems.push(format!("cannot open: {e}"));
            return report;
        }
    };
    report.schema_version = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| {
            report
                .problems
                .push(format!("cannot read the schema version: {e}"))
        })
        .ok();
    match conn.prepare("PRAGMA integrity_check").and_then(|mut s| {
        s.query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()
    }) {
        Ok(lines) if lines == ["ok"] => {}
        Ok(lines) => report.problems.extend(
            lines
                .into_iter()
                .take(20)
                .map(|l| format!("integrity: {l}")),
        ),
        Err(e) => report.problems.push(format!("integrity check failed: {e}")),
    }
    match conn.prepare("PRAGMA foreign_key_check").and_then(|mut s| {
        s.query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()
    }) {
        Ok(rows) if rows.is_empty() => {}
        Ok(rows) => report
            .problems
            .push(format!("{} rows point at missing parents", rows.len())),
        Err(e) => report
            .problems
            .push(format!("foreign key check failed: {e}")),
    }
    report.problems.extend(unreadable_records(&conn));
    report.live = live_runs(&conn);
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).ok();
    report.runs = count("SELECT count(*) FROM runs");
    report.running = count("SELECT count(*) FROM runs WHERE status = 'running'");
    report
}

/// Rows SQLite reads but this lineage cannot: an unknown status or edge role (which every
/// command that lists or walks runs then refuses, naming the run), or a capture or
/// resources that are not JSON (shown empty, with a note). A newer lineage, another writer
/// or a damaged file wrote them; a rebuild would copy them as they are.
fn unreadable_records(conn: &Connection) -> Vec<String> {
    // The known values come from the model's enums (constants, not job strings).
    let known = |values: &[&str]| {
        let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
        quoted.join(", ")
    };
    let statuses = known(&Status::ALL.map(Status::as_str));
    let roles = known(&Role::ALL.map(Role::as_str));
    let checks = [
        (
            format!("SELECT id FROM runs WHERE status NOT IN ({statuses})"),
            "an unknown status",
        ),
        (
            format!("SELECT DISTINCT run_id FROM edges WHERE role NOT IN ({roles})"),
            "an edge of an unknown role",
        ),
        (
            "SELECT id FROM runs
             WHERE json_valid(capture) = 0 OR (resources IS NOT NULL AND json_valid(resources) = 0)"
                .to_string(),
            "a capture or resources that are not JSON",
        ),
        (
            // A UUID is 36 lowercase hex digits and hyphens: anything else (written by
            // hand, or by an old import) is no id lineage made.
            "SELECT id FROM runs WHERE length(CAST(id AS BLOB)) != 36 OR id GLOB '*[^0-9a-f-]*'"
                .to_string(),
            "an id that is not a UUID",
        ),
    ];
    let mut problems = Vec::new();
    for (sql, what) in checks {
        let ids = conn.prepare(&sql).and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        });
        match ids {
            Ok(ids) if ids.is_empty() => {}
            Ok(ids) => {
                let shown: Vec<&str> = ids.iter().take(5).map(String::as_str).collect();
                let more = if ids.len() > 5 { ", ..." } else { "" };
                problems.push(format!(
                    "{} run{} with {what}, which this lineage cannot read (written by a newer \
                     lineage?): {}{more}",
                    ids.len(),
                    if ids.len() == 1 { "" } else { "s" },
                    shown.join(", ")
                ));
            }
            Err(e) => problems.push(format!("checking records: {e}")),
        }
    }
    problems
}

/// A WAL whose damaged frame is followed by valid ones: SQLite stops reading a WAL at its
/// first bad frame, so every commit after it is silently ignored (a flipped bit there lost
/// the runs recorded after it). Read the way SQLite checks it (`wal.c`): a frame is valid
/// when its salts are the header's and its checksum continues the one before it; the frames
/// after a bad one are checked against the checksum their predecessor claims. Only frames
/// not yet copied into the database can be lost: lineage checkpoints after every write.
fn wal_frames_lost(wal: &Path) -> Option<String> {
    // Never opened unless a regular file (a FIFO would hang the read).
    if !std::fs::metadata(wal).ok()?.is_file() {
        return None;
    }
    wal_damage(wal, &std::fs::read(wal).ok()?)
}

/// [`wal_frames_lost`] of a WAL's bytes, read already (`wal` names it in the message).
pub(crate) fn wal_damage(wal: &Path, bytes: &[u8]) -> Option<String> {
    if bytes.len() < 32 {
        return None;
    }
    let word = |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let magic = word(bytes, 0);
    let unreadable = || {
        Some(format!(
            "{}: the WAL header is damaged, so SQLite ignores the whole WAL ({} bytes)",
            wal.display(),
            bytes.len()
        ))
    };
    if magic & !1 != 0x377f_0682 {
        return unreadable();
    }
    // The checksums' byte order: big-endian words when the magic's low bit is set.
    let big = magic & 1 == 1;
    let checksum = |seed: (u32, u32), data: &[u8]| {
        let (mut s1, mut s2) = seed;
        for pair in data.chunks_exact(8) {
            let w = |b: &[u8]| {
                let a = [b[0], b[1], b[2], b[3]];
                if big {
                    u32::from_be_bytes(a)
                } else {
                    u32::from_le_bytes(a)
                }
            };
            s1 = s1.wrapping_add(w(&pair[..4])).wrapping_add(s2);
            s2 = s2.wrapping_add(w(&pair[4..])).wrapping_add(s1);
        }
        (s1, s2)
    };
    let page = word(bytes, 8) as usize;
    let page = if page == 1 { 65536 } else { page };
    if !page.is_power_of_two() || !(512..=65536).contains(&page) {
        return unreadable();
    }
    let salts = (word(bytes, 16), word(bytes, 20));
    let header_sum = (word(bytes, 24), word(bytes, 28));
    if checksum((0, 0), &bytes[..24]) != header_sum {
        return Some(format!(
            "{}: the WAL header is damaged, so SQLite ignores the whole WAL",
            wal.display()
        ));
    }
    let frame = 24 + page;
    let frames = (bytes.len() - 32) / frame;
    let mut previous = header_sum;
    let mut first_bad = None;
    let (mut valid_after, mut commits_after) = (0usize, 0usize);
    for i in 0..frames {
        let f = &bytes[32 + i * frame..32 + (i + 1) * frame];
        let claimed = (word(f, 16), word(f, 20));
        let ours = (word(f, 8), word(f, 12)) == salts;
        let sum = checksum(checksum(previous, &f[..8]), &f[24..]);
        let valid = ours && sum == claimed;
        match first_bad {
            // Frames after the end of the current generation (older salts) are normal; a
            // damaged one is found by the valid frames of this generation after it.
            None if !valid => first_bad = Some(i),
            Some(_) if valid => {
                valid_after += 1;
                if word(f, 4) != 0 {
                    commits_after += 1;
                }
            }
            _ => {}
        }
        previous = claimed;
    }
    let bad = first_bad?;
    (commits_after > 0).then(|| {
        format!(
            "{}: frame {} is damaged and {valid_after} valid frames after it ({commits_after} \
             commits) are ignored by SQLite: what was recorded after it is lost until the \
             frame is mended; the WAL is kept by `lineage doctor --repair` in its backup",
            wal.display(),
            bad + 1
        )
    })
}

/// Runs still `running` whose lineage process is alive on this host. Read as loosely as
/// possible: a damaged row is skipped, never a panic.
fn live_runs(conn: &Connection) -> Vec<String> {
    let host = crate::host::hostname();
    let boot = crate::host::boot_id();
    let Ok(mut stmt) = conn.prepare(
        "SELECT CAST(id AS BLOB), CAST(hostname AS BLOB), pid, CAST(boot_id AS BLOB), pid_start
         FROM runs WHERE status = 'running'",
    ) else {
        return Vec::new();
    };
    let text = |v: Value| match v {
        Value::Blob(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::Text(t) => Some(t),
        _ => None,
    };
    let int = |v: Value| match v {
        Value::Integer(i) => Some(i),
        _ => None,
    };
    let Ok(rows) = stmt.query_map([], |r| {
        Ok((
            r.get::<_, Value>(0)?,
            r.get::<_, Value>(1)?,
            r.get::<_, Value>(2)?,
            r.get::<_, Value>(3)?,
            r.get::<_, Value>(4)?,
        ))
    }) else {
        return Vec::new();
    };
    rows.filter_map(Result::ok)
        .filter_map(|(id, hostname, pid, boot_id, pid_start)| {
            let id = text(id)?;
            if text(hostname) != host {
                return None;
            }
            let pid = int(pid).and_then(|p| u32::try_from(p).ok());
            let gone =
                super::migrate::is_gone(&boot, text(boot_id).as_deref(), pid, int(pid_start));
            (!gone && pid.is_some()).then_some(id)
        })
        .collect()
}

/// What a rebuild recovered.
#[derive(Debug, Default, serde::Serialize)]
pub struct Repair {
    pub backup: String,
    /// table -> rows recovered.
    pub recovered: Vec<(String, usize)>,
    /// Tables that could not be read to the end.
    pub lost: Vec<String>,
}

/// Copy the damaged store aside, then rebuild it from every row that can still be read.
pub fn repair(dir: &Path) -> Result<Repair> {
    let db = dir.join(DB_FILE);
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let backup = dir.join(format!("{DB_FILE}.broken-{stamp}"));
    std::fs::copy(&db, &backup).with_context(|| format!("backing up {}", db.display()))?;
    for ext in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{ext}", db.display()));
        if side.exists() {
            std::fs::copy(&side, format!("{}{ext}", backup.display()))?;
        }
    }
    let scratch = dir.join(format!("rebuild-{stamp}"));
    let _ = std::fs::remove_dir_all(&scratch);
    let fresh = Store::open(&scratch).context("creating the rebuilt store")?;
    drop(fresh);
    let mut out = Repair {
        backup: backup.display().to_string(),
        ..Repair::default()
    };
    {
        let old = Connection::open_with_flags(&backup, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut new = Connection::open(scratch.join(DB_FILE))?;
        new.pragma_update(None, "foreign_keys", "OFF")?;
        let tx = new.transaction()?;
        for table in TABLES {
            let (n, complete) = copy_table(&old, &tx, table);
            out.recovered.push((table.to_string(), n));
            if !complete {
                out.lost.push(table.to_string());
            }
        }
        // Rows whose parents were lost.
        tx.execute_batch(
            "DELETE FROM edges WHERE run_id NOT IN (SELECT id FROM runs);
             DELETE FROM params WHERE run_id NOT IN (SELECT id FROM runs);
             DELETE FROM metrics WHERE run_id NOT IN (SELECT id FROM runs);
             DELETE FROM annotations WHERE run_id NOT IN (SELECT id FROM runs);
             DELETE FROM edges WHERE artifact IS NOT NULL AND artifact NOT IN (SELECT hash FROM artifacts);
             DELETE FROM dir_manifest WHERE lower(hex(dir_hash)) NOT IN (SELECT hash FROM artifacts);
             DELETE FROM pending_manifests WHERE dir_hash NOT IN (SELECT hash FROM artifacts);
             UPDATE runs SET rerun_of = NULL WHERE rerun_of NOT IN (SELECT id FROM runs);",
        )?;
        tx.commit()?;
    }
    // Copy the rebuilt database into the store's own file, in one write transaction through
    // SQLite, so that a command that has the store open (a job that started meanwhile)
    // writes to the rebuilt one, never to a file swapped away. A file too damaged for that
    // (not a database at all) is replaced instead; the damaged one is kept as the backup.
    if restore_in_place(&scratch.join(DB_FILE), &db).is_err() {
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
        std::fs::rename(scratch.join(DB_FILE), &db)?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(out)
}

/// Replace the content of the database `live` with that of `rebuilt`, all pages in one step
/// (one write transaction: no reader sees half of it).
fn restore_in_place(rebuilt: &Path, live: &Path) -> Result<()> {
    use rusqlite::backup::{Backup, StepResult};
    let src = Connection::open_with_flags(rebuilt, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut dst = Connection::open(live)?;
    dst.busy_timeout(std::time::Duration::from_secs(30))?;
    let backup = Backup::new(&src, &mut dst)?;
    for _ in 0..50 {
        match backup.step(-1)? {
            StepResult::Done => {
                drop(backup);
                // Leave nothing of it in the WAL (see `Store`'s close).
                let _ = dst.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                return Ok(());
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
    anyhow::bail!("the store stayed busy")
}

/// Copy every readable row; stops at the first unreadable page. (rows, read to the end?)
fn copy_table(old: &Connection, new: &rusqlite::Transaction, table: &str) -> (usize, bool) {
    let Ok(mut select) = old.prepare(&format!("SELECT * FROM {table}")) else {
        return (0, false);
    };
    let columns = select.column_count();
    let names: Vec<String> = select.column_names().map(|s| s.to_string()).collect();
    let placeholders = vec!["?"; columns].join(", ");
    let Ok(mut insert) = new.prepare(&format!(
        "INSERT OR IGNORE INTO {table} ({}) VALUES ({placeholders})",
        names.join(", ")
    )) else {
        return (0, false);
    };
    let Ok(mut rows) = select.query([]) else {
        return (0, false);
    };
    let mut n = 0;
    loop {
        match rows.next() {
            Ok(Some(row)) => {
                let values: Vec<Value> = (0..columns)
                    .map(|i| row.get::<_, Value>(i).unwrap_or(Value::Null))
                    .collect();
                if insert.execute(rusqlite::params_from_iter(values)).is_ok() {
                    n += 1;
                }
            }
            Ok(None) => return (n, true),
            Err(_) => return (n, false),
        }
    }
}
