//! Bundles: lineage moved between stores with no shared server. A bundle is a SQLite file
//! with the store's own schema (created by the same migrations), holding the chosen runs and
//! everything they refer to: their edges and params, the artifacts those edges name, the
//! manifests of those directories, the blobs the runs' captures name (configs, patches,
//! untracked files, package lists) and the artifacts' extra digests. It never holds the
//! store's secret key, the stat and directory caches, or runs still going.
//!
//! Import is one transaction of `INSERT OR IGNORE`s keyed by content hashes and run ids
//! (UUIDv7, unique across machines): importing twice changes nothing, and two stores that
//! share artifacts join into one graph. What is copied is `schema::SYNCED`, column by
//! column: a bundle with a column this lineage does not know is refused whole.

use std::collections::{BTreeSet, HashSet};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::Store;
use super::inbound;
use super::migrate::MIGRATIONS;
use super::schema::{self, SYNCED, Table};
use crate::model::{Capture, Hash};

/// The table a bundle has beyond the store's: what it is, who wrote it, when.
const BUNDLE_META: &str =
    "CREATE TABLE bundle_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)";

/// `bundle_meta.format`: what marks a SQLite file as a lineage bundle.
pub const FORMAT: &str = "lineage-bundle";

/// A new, empty, user-only file in `dir` for a bundle in the making: removed when dropped,
/// unless persisted (renamed into place) first.
pub fn scratch(dir: &Path, what: &str) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!(".lineage-{what}-"))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

/// Which runs go into a bundle.
#[derive(Debug, Default)]
pub struct Selection {
    /// Only runs started at or after this RFC 3339 UTC time (`YYYY-MM-DDTHH:MM:SS.ffffffZ`).
    pub since: Option<String>,
    /// Only these runs (with the originals of reruns among them); all when None.
    pub runs: Option<Vec<String>>,
}

/// Rows per table a bundle export wrote or an import added.
#[derive(Debug, Default)]
pub struct Counts {
    pub rows: Vec<(String, usize)>,
    /// Runs left out because they are still running.
    pub running: usize,
    /// Runs already here whose record in the bundle is not the one here: the one here is
    /// kept (a run in the store never changes), and the user is told.
    pub differing: Vec<String>,
    /// Content rows (a blob, a manifest) whose bytes are not what their hash says, passed
    /// over (a team store's pull: the run that names them is taken without them).
    pub skipped: Vec<String>,
}

impl Counts {
    pub fn of(&self, table: &str) -> usize {
        self.rows
            .iter()
            .find(|(t, _)| t == table)
            .map_or(0, |(_, n)| *n)
    }
}

/// Fill `temp.sel` with the ids of the runs `sel` selects (finished ones, with the
/// original of every rerun among them, so the rerun's link survives the trip) and create
/// an empty `temp.refs`; returns how many runs were left out because they are running.
fn select(tx: &rusqlite::Transaction, sel: &Selection) -> Result<usize> {
    tx.execute_batch(
        "DROP TABLE IF EXISTS temp.sel; CREATE TEMP TABLE sel (id TEXT PRIMARY KEY);
         DROP TABLE IF EXISTS temp.refs; CREATE TEMP TABLE refs (hash TEXT PRIMARY KEY);",
    )?;
    let since = sel.since.clone().unwrap_or_default();
    match &sel.runs {
        None => {
            tx.execute(
                "INSERT INTO sel SELECT id FROM runs
                 WHERE status != 'running' AND started_at >= ?1",
                [&since],
            )?;
        }
        Some(ids) => {
            let mut stmt = tx.prepare(
                "INSERT OR IGNORE INTO sel SELECT id FROM runs
                 WHERE id = ?1 AND status != 'running' AND started_at >= ?2",
            )?;
            for id in ids {
                stmt.execute(params![id, since])?;
            }
        }
    }
    loop {
        let added = tx.execute(
            "INSERT OR IGNORE INTO sel SELECT r.rerun_of FROM runs r
             WHERE r.id IN (SELECT id FROM sel) AND r.rerun_of IS NOT NULL",
            [],
        )?;
        if added == 0 {
            break;
        }
    }
    let running: i64 = tx.query_row(
        "SELECT COUNT(*) FROM runs WHERE status = 'running' AND started_at >= ?1",
        [&since],
        |r| r.get(0),
    )?;
    Ok(running as usize)
}

/// Create the store schema in a database file that is new or empty (a [`scratch`] file).
pub(crate) fn create(path: &Path) -> Result<Connection> {
    // User-only, like the store: who gets a copy is the user's choice.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    if file.metadata()?.len() != 0 {
        bail!("{} is not empty", path.display());
    }
    let mut conn = Connection::open(path)?;
    // A file nobody reads until it is complete (callers rename it into place after syncing
    // it, or throw it away): no journal, no syncs while it fills.
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let tx = conn.transaction()?;
    for sql in MIGRATIONS {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    tx.execute_batch(BUNDLE_META)?;
    tx.commit()?;
    Ok(conn)
}

impl Store {
    /// Write the selected runs and what they refer to into a new bundle file at `path`.
    pub fn export_bundle(&self, path: &Path, sel: &Selection) -> Result<Counts> {
        // A column this store has and the list does not (a newer lineage's, or added by
        // hand) would not travel: refused, never dropped without a word.
        let what = format!("the store {}", self.dir.display());
        for table in SYNCED {
            let mine = columns(&self.conn, "main", table.name)?;
            schema::check_columns(table, &mine, None, &[], &what).map_err(anyhow::Error::msg)?;
        }
        let bundle = create(path).with_context(|| format!("creating {}", path.display()))?;
        let meta = [
            ("format", FORMAT.to_string()),
            ("schema_version", MIGRATIONS.len().to_string()),
            ("lineage_version", env!("CARGO_PKG_VERSION").to_string()),
            ("created_at", jiff::Timestamp::now().to_string()),
            ("host", crate::host::hostname().unwrap_or_default()),
        ];
        for (k, v) in &meta {
            bundle.execute("INSERT INTO bundle_meta VALUES (?1, ?2)", params![k, v])?;
        }
        drop(bundle);

        let conn = &self.conn;
        conn.execute("ATTACH DATABASE ?1 AS bundle", [utf8(path)?])?;
        conn.execute_batch("PRAGMA bundle.journal_mode = OFF; PRAGMA bundle.synchronous = OFF;")?;
        let result = (|| -> Result<Counts> {
            let tx = conn.unchecked_transaction()?;
            tx.pragma_update(None, "defer_foreign_keys", "ON")?;
            let running = select(&tx, sel)?;
            // Blobs: every blob a selected run's capture names, and its configs' bytes.
            let refs = blob_refs(
                &tx,
                "SELECT id, capture FROM runs WHERE id IN (SELECT id FROM sel)",
                "SELECT artifact FROM edges WHERE run_id IN (SELECT id FROM sel)
                 AND role = 'config' AND artifact IS NOT NULL",
            )?;
            {
                let mut insert = tx.prepare("INSERT OR IGNORE INTO refs VALUES (?1)")?;
                for h in &refs {
                    insert.execute([h])?;
                }
            }
            // Which rows of each synced table go: those the selected runs name.
            // The manifests of the directories taken, from the table itself, through its
            // index on the blobs (its view in hex, `dir_entries`, has none).
            const MANIFESTS: &str = "(SELECT lower(hex(dir_hash)) AS dir_hash, path,
                                 lower(hex(file_hash)) AS file_hash, size, executable
                          FROM main.dir_manifest WHERE dir_hash IN
                            (SELECT unhex(hash) FROM bundle.artifacts WHERE kind = 'dir'))";
            let filters: [(&str, &str); 9] = [
                (
                    "artifacts",
                    "WHERE hash IN (SELECT artifact FROM main.edges
                                    WHERE run_id IN (SELECT id FROM sel))",
                ),
                (
                    "runs",
                    "WHERE id IN (SELECT id FROM sel) ORDER BY started_at",
                ),
                ("edges", "WHERE run_id IN (SELECT id FROM sel)"),
                ("params", "WHERE run_id IN (SELECT id FROM sel)"),
                ("metrics", "WHERE run_id IN (SELECT id FROM sel)"),
                ("signatures", "WHERE run_id IN (SELECT id FROM sel)"),
                ("blobs", "WHERE hash IN (SELECT hash FROM refs)"),
                (
                    "extra_digests",
                    "WHERE artifact IN (SELECT hash FROM bundle.artifacts)",
                ),
                ("annotations", "WHERE run_id IN (SELECT id FROM sel)"),
            ];
            let mut counts = Counts {
                running,
                ..Counts::default()
            };
            // Parents before children, as the bundle's foreign keys want.
            for table in SYNCED {
                let (name, cols) = (table.name, table.column_list());
                let source = match name {
                    "dir_entries" => MANIFESTS.to_string(),
                    _ => {
                        let filter = filters
                            .iter()
                            .find(|(n, _)| *n == name)
                            .map(|(_, f)| *f)
                            .with_context(|| format!("no selection for table {name}"))?;
                        format!("main.{name} {filter}")
                    }
                };
                let n = tx.execute(
                    &format!(
                        "INSERT OR IGNORE INTO bundle.{name} ({cols})
                         SELECT {cols} FROM {source}"
                    ),
                    [],
                )?;
                counts.rows.push((name.to_string(), n));
            }
            tx.execute_batch("DROP TABLE temp.sel; DROP TABLE temp.refs;")?;
            tx.commit()?;
            Ok(counts)
        })();
        let _ = conn.execute("DETACH DATABASE bundle", []);
        result
    }

    /// Add a bundle's rows to this store, in one transaction, after checking every one of
    /// them (`inbound`): a bundle is not trusted. Runs already here never change (their
    /// rows in the bundle are left out); any row that fails a check refuses the whole
    /// import with one line naming the table and the row.
    pub fn import_bundle(&mut self, path: &Path) -> Result<Counts> {
        self.import_runs(path, None, false)
    }

    /// [`Store::import_bundle`], taking only the runs in `only` (when given: the bundle's
    /// other runs and their rows are passed over), and, with `signed`, refusing a run whose
    /// signature does not match its record (a team store's pull: an unsigned run is taken,
    /// as `lineage verify` will say). With `signed` too, a blob or a manifest whose bytes are
    /// not what its hash says is passed over, not refused: on a team store the first copy of
    /// a content row stays, and a writer who knew a hash in advance must not be able to
    /// block every run that names it.
    pub fn import_runs(
        &mut self,
        path: &Path,
        only: Option<&HashSet<String>>,
        signed: bool,
    ) -> Result<Counts> {
        let (bundle, columns) = open_checked(path, !signed)?;
        let what = format!("bundle {}", path.display());
        let tx = self.conn.transaction()?;
        // A rerun may arrive before its original: check references at commit.
        tx.pragma_update(None, "defer_foreign_keys", "ON")?;
        let mut import = Import {
            bundle: &bundle,
            tx: &tx,
            what: &what,
            bundle_runs: HashSet::new(),
            new_runs: HashSet::new(),
            named: HashSet::new(),
            blobs: HashSet::new(),
            differing: Vec::new(),
            only,
            lenient: signed,
            skipped: Vec::new(),
        };
        let mut counts = Counts::default();
        // Runs and their rows first, then only what the new runs name: artifacts their edges
        // name, manifests of those, blobs their captures and configs name. Extra digests
        // (sha256) cannot be checked without the files' bytes: never taken from a bundle;
        // `export` and `run --sha256` compute them here from bytes that match.
        const ORDER: [&str; 10] = [
            "runs",
            "edges",
            "params",
            "metrics",
            "signatures",
            "annotations",
            "artifacts",
            "dir_entries",
            "blobs",
            "extra_digests",
        ];
        let mut ordered: Vec<&(&Table, Vec<String>)> = columns.iter().collect();
        ordered.sort_by_key(|(t, _)| ORDER.iter().position(|n| *n == t.name));
        for (table, cols) in ordered {
            if cols.is_empty() || table.name == "extra_digests" {
                // A bundle from before the table existed, or rows never taken.
                counts.rows.push((table.name.to_string(), 0));
                continue;
            }
            let n = if table.name == "dir_entries" {
                import.manifests(table, cols)?
            } else {
                import.table(table, cols)?
            };
            counts.rows.push((table.name.to_string(), n));
        }
        counts.differing = std::mem::take(&mut import.differing);
        counts.skipped = std::mem::take(&mut import.skipped);
        if signed {
            for id in &import.new_runs {
                let record = super::signature::canonical(&tx, id)?.unwrap_or_default();
                let sig: Option<(String, String)> = tx
                    .query_row(
                        "SELECT public_key, signature FROM signatures WHERE run_id = ?1",
                        [id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                if let Some((key, sig)) = sig
                    && !crate::sign::verify(&key, &record, &sig)
                {
                    bail!(
                        "{what}: run {id}: its record is not what was signed; nothing was imported"
                    );
                }
            }
        }
        drop(import);
        tx.commit().with_context(|| {
            format!("{what}: its rows do not fit together (a reference to a run or an artifact it does not carry); nothing was imported")
        })?;
        Ok(counts)
    }
}

/// One import under way: the bundle, the store's transaction, and what it has seen.
struct Import<'a> {
    bundle: &'a Connection,
    tx: &'a rusqlite::Transaction<'a>,
    what: &'a str,
    /// The runs the bundle carries.
    bundle_runs: HashSet<String>,
    /// Those of them this store did not have: only their rows are added.
    new_runs: HashSet<String>,
    /// The artifacts the new runs' edges name: only their rows and manifests are added.
    named: HashSet<String>,
    /// The blobs the new runs' captures and configs name: only those are added.
    blobs: HashSet<String>,
    /// Runs already here that the bundle carries with another record.
    differing: Vec<String>,
    /// When given, the only runs taken.
    only: Option<&'a HashSet<String>>,
    /// Pass over a damaged blob or manifest rather than refuse the import.
    lenient: bool,
    /// What was passed over.
    skipped: Vec<String>,
}

impl Import<'_> {
    /// The refusal for row `n` (1-based) of `table`, identified by its first column.
    fn refuse(&self, table: &Table, n: usize, row: &[Value], why: &str) -> anyhow::Error {
        let key = match row.first() {
            Some(Value::Text(s)) => format!(" ({} {:?})", table.columns[0].name, shorten(s)),
            _ => String::new(),
        };
        anyhow::anyhow!(
            "{}: table {}, row {n}{key}: {why}; nothing was imported (the bundle is damaged or was crafted)",
            self.what,
            table.name
        )
    }

    /// Copy one table's checked rows; returns how many were added.
    fn table(&mut self, table: &Table, cols: &[String]) -> Result<usize> {
        let list = cols.join(", ");
        let marks = vec!["?"; cols.len()].join(", ");
        let mut select = self
            .bundle
            .prepare(&format!("SELECT {list} FROM main.{}", table.name))?;
        let mut insert = self.tx.prepare(&format!(
            "INSERT OR IGNORE INTO main.{} ({list}) VALUES ({marks})",
            table.name
        ))?;
        let mut exists = self.tx.prepare("SELECT 1 FROM main.runs WHERE id = ?1")?;
        // The run a tag names here now (the latest tag or untag of that name).
        let mut tagged = self.tx.prepare(super::annotations::LATEST_OF_TAG)?;
        let own_key = crate::sign::own_public_key();
        let run_col = cols.iter().position(|c| c == "run_id");
        let (mut rows, mut added, mut n) = (select.query([])?, 0, 0);
        while let Some(row) = rows.next()? {
            n += 1;
            let values = (0..cols.len())
                .map(|i| row.get::<_, Value>(i))
                .collect::<rusqlite::Result<Vec<Value>>>()?;
            // A run not asked for, its rows and what only it names are passed over unchecked.
            if let Some(only) = self.only {
                let key = match table.name {
                    "runs" => values.first(),
                    "edges" | "params" | "metrics" | "signatures" | "annotations" => {
                        run_col.map(|i| &values[i])
                    }
                    _ => None,
                };
                let skip = match (table.name, key, values.first()) {
                    (_, Some(Value::Text(id)), _) => !only.contains(id),
                    ("artifacts", _, Some(Value::Text(h))) => !self.named.contains(h),
                    ("blobs", _, Some(Value::Text(h))) => !self.blobs.contains(h),
                    _ => false,
                };
                if skip {
                    continue;
                }
            }
            if let Err(e) = inbound::check_row(table, cols, &values) {
                if self.lenient
                    && table.name == "blobs"
                    && let Some(Value::Text(h)) = values.first()
                {
                    self.skipped.push(format!("blob {}: {e}", shorten(h)));
                    continue;
                }
                return Err(self.refuse(table, n, &values, &e));
            }
            let first = match &values[0] {
                Value::Text(s) => s.clone(),
                _ => String::new(),
            };
            match table.name {
                "runs" => {
                    if self.only.is_some_and(|o| !o.contains(&first)) {
                        continue;
                    }
                    if !self.bundle_runs.insert(first.clone()) {
                        return Err(self.refuse(
                            table,
                            n,
                            &values,
                            "a run the bundle carries twice",
                        ));
                    }
                    if exists.exists([&first])? {
                        // An existing run never changes; one carried with another record
                        // (a copy edited, a squatted id) is said, not taken.
                        let here: Vec<Value> = self.tx.query_row(
                            &format!("SELECT {list} FROM main.runs WHERE id = ?1"),
                            [&first],
                            |r| (0..cols.len()).map(|i| r.get::<_, Value>(i)).collect(),
                        )?;
                        if here != values {
                            self.differing.push(first.clone());
                        }
                        continue;
                    }
                    if let Some(Value::Text(c)) =
                        cols.iter().position(|c| c == "capture").map(|i| &values[i])
                        && let Ok(capture) = serde_json::from_str::<Capture>(c)
                    {
                        self.blobs
                            .extend(capture.blob_refs().iter().map(|h| h.to_hex()));
                    }
                    self.new_runs.insert(first.clone());
                }
                "edges" | "params" | "metrics" | "signatures" => {
                    let run = match run_col.map(|i| &values[i]) {
                        Some(Value::Text(s)) => s.as_str(),
                        _ => "",
                    };
                    if self.only.is_some_and(|o| !o.contains(run)) {
                        continue;
                    }
                    if !self.bundle_runs.contains(run) {
                        return Err(self.refuse(
                            table,
                            n,
                            &values,
                            "a row for a run the bundle does not carry (rows travel only with their run)",
                        ));
                    }
                    if !self.new_runs.contains(run) {
                        continue;
                    }
                    if table.name == "edges"
                        && let Some(Value::Text(a)) = cols
                            .iter()
                            .position(|c| c == "artifact")
                            .map(|i| &values[i])
                    {
                        self.named.insert(a.clone());
                        let config = cols
                            .iter()
                            .position(|c| c == "role")
                            .is_some_and(|i| values[i] == Value::Text("config".into()));
                        if config {
                            self.blobs.insert(a.clone());
                        }
                    }
                }
                // Annotations are said about a run after it ran: taken with their new run, or
                // for a run already here when signed (its signature checked by `inbound`),
                // never for a run neither has.
                "annotations" => {
                    let run = match run_col.map(|i| &values[i]) {
                        Some(Value::Text(s)) => s.as_str(),
                        _ => "",
                    };
                    // A tag this store already has is moved only by this user's own key:
                    // a bundle from anyone could otherwise point `best` at its own run,
                    // and `rerun best` would run its command.
                    let text_of = |name: &str| match cols
                        .iter()
                        .position(|c| c == name)
                        .map(|i| &values[i])
                    {
                        Some(Value::Text(s)) => s.clone(),
                        _ => String::new(),
                    };
                    let kind = text_of("kind");
                    if kind == "tag" || kind == "untag" {
                        let name = text_of("text");
                        let here: Option<(String, String)> = tagged
                            .query_row([&name], |r| Ok((r.get(0)?, r.get(1)?)))
                            .optional()?;
                        let moves = match &here {
                            Some((k, at)) if k == "tag" => kind == "untag" || at != run,
                            _ => false,
                        };
                        if moves && own_key.as_deref() != Some(text_of("public_key").as_str()) {
                            self.skipped.push(format!(
                                "a {kind} of {:?} from elsewhere that would move this store's tag (`lineage tag --force` moves it here)",
                                name
                            ));
                            continue;
                        }
                    }
                    if !self.new_runs.contains(run) {
                        if !exists.exists([run])? {
                            return Err(self.refuse(
                                table,
                                n,
                                &values,
                                "an annotation of a run neither the bundle nor this store has",
                            ));
                        }
                        let signed = cols
                            .iter()
                            .position(|c| c == "signature")
                            .is_some_and(|i| values[i] != Value::Null);
                        if !signed {
                            self.skipped.push(format!(
                                "an unsigned annotation ({}) of run {run}, already here",
                                shorten(&first)
                            ));
                            continue;
                        }
                    }
                }
                "artifacts" if !self.named.contains(&first) => continue,
                "blobs" if !self.blobs.contains(&first) => continue,
                _ => {}
            }
            added += insert.execute(rusqlite::params_from_iter(values.iter()))?;
        }
        Ok(added)
    }

    /// Copy the directory manifests, each folded back into its Merkle hash and compared
    /// with its directory's hash, size and file count first.
    fn manifests(&mut self, table: &Table, cols: &[String]) -> Result<usize> {
        let list = cols.join(", ");
        let mut select = self.bundle.prepare(&format!(
            "SELECT {list} FROM main.dir_entries ORDER BY dir_hash"
        ))?;
        // Into the table itself, its hashes as blobs (`dir_entries` is its view in hex).
        let mut insert = self.tx.prepare(
            "INSERT OR IGNORE INTO main.dir_manifest (dir_hash, path, file_hash, size, executable)
             VALUES (unhex(?1), ?2, unhex(?3), ?4, ?5)",
        )?;
        let pos = |name: &str| cols.iter().position(|c| c == name);
        let (Some(dir), Some(path), Some(file), Some(size), Some(exec)) = (
            pos("dir_hash"),
            pos("path"),
            pos("file_hash"),
            pos("size"),
            pos("executable"),
        ) else {
            bail!("{}: table dir_entries lacks a column", self.what);
        };
        let mut group: Vec<Vec<Value>> = Vec::new();
        let (mut rows, mut added, mut n) = (select.query([])?, 0, 0);
        loop {
            let row = rows.next()?;
            let values = match row {
                Some(row) => Some(
                    (0..cols.len())
                        .map(|i| row.get::<_, Value>(i))
                        .collect::<rusqlite::Result<Vec<Value>>>()?,
                ),
                None => None,
            };
            let ends_group = match (&values, group.first()) {
                (Some(v), Some(g)) => v[dir] != g[dir],
                (None, Some(_)) => true,
                _ => false,
            };
            if ends_group {
                let first = n - group.len() + usize::from(values.is_none());
                let mut named = match &group[0][dir] {
                    Value::Text(d) if self.named.contains(d) => Some(d.clone()),
                    _ => None,
                };
                if let Err(e) =
                    self.check_manifest(table, first, &group, [dir, path, file, size, exec])
                {
                    match &named {
                        Some(d) if self.lenient => {
                            self.skipped
                                .push(format!("the manifest of directory {}", shorten(d)));
                            named = None;
                        }
                        _ => return Err(e),
                    }
                }
                for v in group.drain(..) {
                    if named.is_some() {
                        added += insert.execute(rusqlite::params_from_iter(
                            [dir, path, file, size, exec].map(|i| &v[i]),
                        ))?;
                    }
                }
                // The directories inside it are derived here, never taken from outside.
                if let Some(d) = named {
                    super::graph::index_subdirs(self.tx, &d)?;
                }
            }
            let Some(values) = values else { break };
            n += 1;
            // Taking some runs only: the manifests they do not name are passed over unchecked.
            if self.only.is_some()
                && !matches!(&values[dir], Value::Text(d) if self.named.contains(d))
            {
                continue;
            }
            inbound::check_row(table, cols, &values)
                .map_err(|e| self.refuse(table, n, &values, &e))?;
            group.push(values);
        }
        Ok(added)
    }

    /// One directory's manifest (rows `first..`), against the bundle's row for the directory.
    fn check_manifest(
        &self,
        table: &Table,
        first: usize,
        group: &[Vec<Value>],
        [dir, path, file, size, exec]: [usize; 5],
    ) -> Result<()> {
        let text = |v: &Value| match v {
            Value::Text(s) => s.clone(),
            _ => String::new(),
        };
        let int = |v: &Value| match v {
            Value::Integer(n) => *n,
            _ => 0,
        };
        let dir_hash = text(&group[0][dir]);
        let mut entries = Vec::with_capacity(group.len());
        for v in group {
            let hash = Hash::parse(&text(&v[file])).unwrap_or_default();
            entries.push((
                text(&v[path]),
                hash,
                int(&v[size]) as u64,
                int(&v[exec]) == 1,
            ));
        }
        let (hash, total, count) = inbound::dir_hash(&mut entries);
        let listed: Option<(String, i64, i64)> = self
            .bundle
            .query_row(
                "SELECT kind, size, file_count FROM artifacts WHERE hash = ?1",
                [&dir_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .ok()
            .flatten();
        let why = if hash.to_hex() != dir_hash {
            Some("the manifest does not hash to its directory's hash".to_string())
        } else {
            match listed {
                None => Some("the manifest of a directory the bundle does not list".into()),
                Some((kind, s, c)) if kind != "dir" || s != total as i64 || c != count as i64 => {
                    Some(format!(
                        "the manifest ({count} files, {total} bytes) is not its directory's ({kind}, {c} files, {s} bytes)"
                    ))
                }
                Some(_) => None,
            }
        };
        match why {
            Some(why) => Err(self.refuse(table, first, &group[0], &why)),
            None => Ok(()),
        }
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(72).collect()
}

/// A path SQLite can be given (ATTACH takes a text file name): a path that is not UTF-8 is
/// refused rather than attached under a lossy name, which could be another file.
fn utf8(path: &Path) -> Result<&str> {
    path.to_str().with_context(|| {
        format!(
            "{} is not a UTF-8 path, which SQLite cannot open: rename it",
            path.display()
        )
    })
}

/// The schema a bundle of schema `version` has: the store's first `version` migrations and
/// `bundle_meta`, as `(type, name, table, sql)` rows of `sqlite_schema`.
fn expected_schema(version: i64) -> Result<BTreeSet<SchemaRow>> {
    let conn = Connection::open_in_memory()?;
    for sql in MIGRATIONS.iter().take(version.max(0) as usize) {
        conn.execute_batch(sql)?;
    }
    conn.execute_batch(BUNDLE_META)?;
    schema_rows(&conn)
}

/// For each synced table, the columns a bundle has to copy.
type Copied = Vec<(&'static Table, Vec<String>)>;

type SchemaRow = (String, String, String, Option<String>);

fn schema_rows(conn: &Connection) -> Result<BTreeSet<SchemaRow>> {
    let mut stmt = conn.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// A lineage bundle this lineage can read, opened read-only with the schema's own code
/// (views, triggers, functions in defaults) distrusted, or a one-line reason; for each synced
/// table, the columns to copy (none: a bundle from before the table existed).
fn open_checked(path: &Path, integrity: bool) -> Result<(Connection, Copied)> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", path.display()))?;
    conn.pragma_update(None, "trusted_schema", "OFF")?;
    conn.pragma_update(None, "query_only", "ON")?;
    let format: Option<String> = conn
        .query_row(
            "SELECT value FROM bundle_meta WHERE key = 'format'",
            [],
            |r| r.get(0),
        )
        .optional()
        .ok()
        .flatten();
    if format.as_deref() != Some(FORMAT) {
        bail!(
            "{} is not a lineage bundle (make one with `lineage bundle export`)",
            path.display()
        );
    }
    // A damaged bundle is the bundle's problem, named as such: checked here, any damage met
    // later is the store's.
    // (Not for a pull's bundle: this process wrote it, and takes its runs one by one when
    // one of them fails.)
    let check: String = if integrity {
        conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .unwrap_or_else(|e| e.to_string())
    } else {
        "ok".into()
    };
    if check != "ok" {
        bail!(
            "bundle {} is damaged ({check}): export it again",
            path.display()
        );
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > MIGRATIONS.len() as i64 {
        bail!(
            "{} was written by a newer lineage (schema version {version}, this lineage knows up to {}): upgrade lineage",
            path.display(),
            MIGRATIONS.len()
        );
    }
    let what = format!("bundle {}", path.display());
    let mut found = Vec::new();
    for table in SYNCED {
        let theirs = columns(&conn, "main", table.name)?;
        if theirs.is_empty() && table.since > version {
            found.push((table, theirs));
            continue;
        }
        schema::check_columns(table, &theirs, Some(version), &[], &what)
            .map_err(anyhow::Error::msg)?;
        found.push((table, theirs));
    }
    // The schema is compared, not assumed: exactly the tables and indexes a bundle of that
    // version has, so no view, trigger or altered table runs code or hides rows.
    let theirs = schema_rows(&conn)?;
    let expected = expected_schema(version)?;
    if let Some((kind, name, _, _)) = theirs.difference(&expected).next() {
        bail!(
            "bundle {}: {kind} {:?} is not part of a lineage bundle's schema (version {version}); nothing was imported (the bundle is damaged or was crafted)",
            path.display(),
            shorten(name)
        );
    }
    if let Some((kind, name, _, _)) = expected.difference(&theirs).next() {
        bail!(
            "bundle {}: its {kind} {name:?} is missing; nothing was imported (the bundle is damaged or was crafted)",
            path.display()
        );
    }
    Ok((conn, found))
}

/// The column names of a table of the database `schema` (`main`, `bundle`).
fn columns(conn: &Connection, schema: &str, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA {schema}.table_info({table})"))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(names)
}

/// The blobs the runs `captures_sql` selects name (`SELECT id, capture`), and the configs
/// `configs_sql` selects (`SELECT artifact`), as hex hashes.
pub(crate) fn blob_refs(
    conn: &Connection,
    captures_sql: &str,
    configs_sql: &str,
) -> Result<BTreeSet<String>> {
    let mut refs = BTreeSet::new();
    let mut stmt = conn.prepare(captures_sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (id, capture) = row?;
        let capture: Capture = serde_json::from_str(&capture)
            .with_context(|| format!("run {id}: its recorded capture cannot be read"))?;
        refs.extend(capture.blob_refs().iter().map(|h| h.to_hex()));
    }
    let mut stmt = conn.prepare(configs_sql)?;
    for h in stmt.query_map([], |r| r.get::<_, String>(0))? {
        refs.insert(h?);
    }
    Ok(refs)
}
