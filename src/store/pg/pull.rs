//! Fetching the team store's new runs into the replica.
//!
//! A pull reads the server's arrivals past the last one it took (`runs.seq`), checking first
//! that the server still has the run it took last (else its history changed: a restored
//! backup, deleted rows, and the replica reads it all again). The new runs come in a bundle
//! and pass `store::inbound` and their signatures; a run that cannot be accepted is
//! quarantined (kept out, named, listed by `lineage doctor`) and the rest are taken. The
//! server's tombstones delete runs here too.
//!
//! Then the annotations (tags and notes) past the last one taken, by their own `seq`: each
//! passes `store::inbound` (its signature verified: the server cannot) and is taken when its
//! run is here; one refused is said, by id, and the others are taken. The annotations of a
//! quarantined run come with it, when `lineage pull` takes it at last.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use postgres::types::ToSql;
use rusqlite::OpenFlags;
use rusqlite::types::Value;

use super::net::{self, Limits};
use super::{Remote, chain};
use crate::store::bundle;
use crate::store::schema::{self, Kind};
use crate::store::{Arrival, Store, Taken, Tombstone};

/// What a pull did.
#[derive(Debug, Default)]
pub struct Pulled {
    /// Runs new here.
    pub new: usize,
    /// Runs quarantined: (id, why).
    pub quarantined: Vec<(String, String)>,
    /// Runs deleted here because the server deleted them.
    pub deleted: usize,
    /// The server's history was not what this replica had fetched: read again.
    pub resynced: bool,
    /// Runs the server no longer has, to deliver again (after a resync).
    pub lost: usize,
    /// The automatic sync's time ran out with runs still to fetch: the next command goes on.
    pub unfinished: bool,
    /// Content rows the server holds damaged (a blob, a manifest), passed over: the runs
    /// that name them were taken without them.
    pub damaged: Vec<String>,
    /// Annotations (tags and notes) new here.
    pub annotations: usize,
    /// Annotations refused (id, run, why): a forged signature, an unsigned one, a bad value.
    pub refused_annotations: Vec<(String, String, String)>,
}

/// Arrivals (and annotations) read per round.
const PAGE: i64 = 2000;

/// Runs fetched and taken at a time (each batch's progress is kept).
const BATCH: usize = 100;

/// One round's listing of the server.
struct Listing {
    /// The checkpoint is gone: the history changed.
    changed: bool,
    arrivals: Vec<Arrival>,
    tombstones: Vec<Tombstone>,
    /// Whether the page was full (more to read).
    more: bool,
    /// How many runs the server has up to the checkpoint.
    upto_checkpoint: i64,
}

impl Remote {
    /// Fetch the runs that reached the server since the last pull, each step within
    /// `limits`.
    pub fn pull(&self, store: &mut Store, limits: Limits) -> Result<Pulled> {
        let mut done = Pulled::default();
        let mut client = net::Conn::default();
        let db = store.dir().join(crate::store::DB_FILE);
        loop {
            let (since, at) = store.pulled(&self.name)?;
            let me = self.clone();
            let held = client.0.take();
            let (c, listing) = net::within(&self.name, limits, move |tick| {
                let mut c = match held {
                    Some(c) => c,
                    None => {
                        let c = me.connect_now(false)?;
                        tick.tick();
                        c
                    }
                };
                let listing = list(&mut c, since, at.as_deref())
                    .map_err(|e| anyhow!("reading {}: {}", me.name, chain(&e)))?;
                Ok((c, listing))
            })?;
            client.0 = Some(c);
            // Deletions first (the server's word, whatever else changed): a run deleted with
            // a tombstone is not a run missing from the history.
            for t in &listing.tombstones {
                if store.apply_tombstone(&self.name, t)? {
                    done.deleted += 1;
                }
            }
            // Runs gone from before the checkpoint (deleted behind lineage's back, a backup
            // restored): the counts differ.
            let changed = listing.changed
                || (since > 0
                    && store.arrivals_upto(&self.name, since)? != listing.upto_checkpoint);
            if changed {
                if done.resynced {
                    anyhow::bail!(
                        "reading {}: its history changed twice while reading it",
                        self.name
                    );
                }
                store.restart_pull(&self.name)?;
                done.resynced = true;
                continue;
            }
            // Runs here already (delivered from here, fetched before) are only noted; the
            // others are fetched and taken a batch at a time, each batch's progress kept (the
            // checkpoint moves past it), so that a large backlog or a slow server costs each
            // command at most its time and the next goes on from there.
            let deleted: HashSet<&str> = listing
                .tombstones
                .iter()
                .map(|t| t.run_id.as_str())
                .collect();
            for batch in listing.arrivals.chunks(BATCH) {
                if limits.total.is_some_and(|t| Instant::now() >= t) {
                    done.unfinished = true;
                    return Ok(done);
                }
                let ids: Vec<String> = batch.iter().map(|a| a.run_id.clone()).collect();
                let here = store.runs_here(&ids)?;
                let wanted: Vec<String> = ids
                    .iter()
                    .filter(|i| !here.contains(*i) && !deleted.contains(i.as_str()))
                    .cloned()
                    .collect();
                let mut taken: Vec<Arrival> = batch
                    .iter()
                    .filter(|a| here.contains(&a.run_id))
                    .cloned()
                    .collect();
                if !wanted.is_empty() {
                    let c = client.0.take().expect("connected");
                    let (c, refused) = self.fetch(c, store, &db, &wanted, limits, &mut done)?;
                    client.0 = Some(c);
                    for a in batch {
                        if let Some((_, why)) = refused.iter().find(|(id, _)| *id == a.run_id) {
                            store.hold_back(
                                &self.name,
                                &a.run_id,
                                "quarantined",
                                Some(a.seq),
                                why,
                            )?;
                            done.quarantined.push((a.run_id.clone(), why.clone()));
                        } else if wanted.contains(&a.run_id) {
                            taken.push(a.clone());
                        }
                    }
                }
                store.record_arrivals(&self.name, &taken)?;
                if let Some(last) = batch.last() {
                    store.set_pulled(&self.name, last.seq, Some(&last.run_id))?;
                }
            }
            // A tombstone after the round's last run is the next checkpoint.
            let last_run = listing.arrivals.last().map(|a| (a.seq, a.run_id.clone()));
            let last_tomb = listing.tombstones.last().map(|t| (t.seq, t.run_id.clone()));
            if let Some((seq, id)) = last_tomb
                && last_run.as_ref().is_none_or(|(s, _)| seq > *s)
            {
                store.set_pulled(&self.name, seq, Some(&id))?;
            }
            if !listing.more {
                let me = self.config.get_user().unwrap_or_default();
                done.lost = store.resynced(&self.name, me)?;
                self.pull_annotations(store, &mut client, limits, &mut done)?;
                return Ok(done);
            }
        }
    }
}

impl Remote {
    /// Download the runs `ids` (within `limits`) and take them: returns the connection back
    /// and the runs refused, with why.
    fn fetch(
        &self,
        c: postgres::Client,
        store: &mut Store,
        db: &Path,
        ids: &[String],
        limits: Limits,
        done: &mut Pulled,
    ) -> Result<(postgres::Client, Vec<(String, String)>)> {
        let tmp = bundle::scratch(&std::env::temp_dir(), "pull")?;
        let path = tmp.path().to_path_buf();
        let (me, db, fetch) = (self.clone(), db.to_path_buf(), ids.to_vec());
        let c = net::within(&self.name, limits, move |tick| {
            let mut c = c;
            download(&mut c, &db, &fetch, &path, tick)
                .map_err(|e| anyhow!("reading {}: {}", me.name, chain(&e)))?;
            Ok(c)
        })?;
        // A local failure drops the connection on a thread of its own (`Conn`).
        let mut held = net::Conn(Some(c));
        let refused = take(store, tmp.path(), ids, done)?;
        Ok((held.0.take().expect("held"), refused))
    }

    /// Try the runs quarantined from this team store again (`lineage pull`: a fix of
    /// lineage's, or the owner's repair of a row, may let them in now).
    pub fn retry_quarantined(&self, store: &mut Store, limits: Limits) -> Result<Pulled> {
        let mut done = Pulled::default();
        let held: Vec<(String, Option<i64>)> = store
            .held_back(Some(&self.name))?
            .into_iter()
            .filter(|h| h.why == "quarantined")
            .map(|h| (h.run_id, h.seq))
            .collect();
        if held.is_empty() {
            return Ok(done);
        }
        let db = store.dir().join(crate::store::DB_FILE);
        let me = self.clone();
        let ids: Vec<String> = held.iter().map(|(id, _)| id.clone()).collect();
        let asked = ids.clone();
        let (c, there) = net::within(&self.name, limits, move |tick| {
            let mut c = me.connect_now(false)?;
            tick.tick();
            let rows = c
                .query(
                    "SELECT seq, id, recorded_by FROM runs WHERE id = ANY($1) ORDER BY seq",
                    &[&asked],
                )
                .map_err(|e| anyhow!("reading {}: {}", me.name, chain(&e.into())))?;
            let there: Vec<Arrival> = rows.iter().map(arrival).collect();
            Ok((c, there))
        })?;
        let mut client = net::Conn(Some(c));
        for batch in there.chunks(BATCH) {
            let wanted: Vec<String> = batch.iter().map(|a| a.run_id.clone()).collect();
            let c = client.0.take().expect("connected");
            let (back, refused) = self.fetch(c, store, &db, &wanted, limits, &mut done)?;
            client.0 = Some(back);
            let taken: Vec<Arrival> = batch
                .iter()
                .filter(|a| !refused.iter().any(|(id, _)| *id == a.run_id))
                .cloned()
                .collect();
            for a in &taken {
                store.release(&self.name, &a.run_id)?;
            }
            store.record_arrivals(&self.name, &taken)?;
            let ids: Vec<String> = taken.iter().map(|a| a.run_id.clone()).collect();
            self.annotations_of(store, &mut client, &ids, limits, &mut done)?;
            for (id, why) in refused {
                let seq = batch.iter().find(|a| a.run_id == id).map(|a| a.seq);
                store.hold_back(&self.name, &id, "quarantined", seq, &why)?;
                done.quarantined.push((id, why));
            }
        }
        // Quarantined runs the server no longer has: nothing to wait for.
        for (id, _) in &held {
            if !there.iter().any(|a| &a.run_id == id) {
                store.release(&self.name, id)?;
            }
        }
        Ok(done)
    }
}

/// An annotation as a team store lists it: its `seq` there, its run's (None: no such run),
/// and its synced columns.
struct ServerAnnotation {
    seq: i64,
    run_seq: Option<i64>,
    values: Vec<Value>,
}

impl ServerAnnotation {
    fn id(&self) -> String {
        text_of(self.values.first())
    }

    fn run_id(&self) -> String {
        text_of(self.values.get(1))
    }
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::Text(s)) => s.clone(),
        _ => String::new(),
    }
}

impl Remote {
    /// Fetch the annotations that reached the server since the last one taken (by their
    /// `seq`) and take each whose run is here. One whose run reached the server after this
    /// pull listed its runs waits for the next pull (which fetches that run first); one of a
    /// run not here otherwise (quarantined) is passed over, to come with its run.
    fn pull_annotations(
        &self,
        store: &Store,
        client: &mut net::Conn,
        limits: Limits,
        done: &mut Pulled,
    ) -> Result<()> {
        let runs_upto = store.pulled(&self.name)?.0;
        let mut reread = false;
        loop {
            if limits.total.is_some_and(|t| Instant::now() >= t) {
                done.unfinished = true;
                return Ok(());
            }
            let (since, at) = store.annotations_pulled(&self.name)?;
            let me = self.clone();
            let held = client.0.take();
            let (c, page) = net::within(&self.name, limits, move |tick| {
                let mut c = match held {
                    Some(c) => c,
                    None => {
                        let c = me.connect_now(false)?;
                        tick.tick();
                        c
                    }
                };
                let page = list_annotations(&mut c, since, at.as_deref())
                    .map_err(|e| anyhow!("reading {}: {}", me.name, chain(&e)))?;
                Ok((c, page))
            })?;
            client.0 = Some(c);
            let Some(rows) = page else {
                // The last one taken is gone (its run deleted there, a backup restored): read
                // them all again; each is taken once.
                if reread {
                    anyhow::bail!(
                        "reading {}: its annotations changed twice while reading them",
                        self.name
                    );
                }
                reread = true;
                store.set_annotations_pulled(&self.name, 0, None)?;
                continue;
            };
            let full = rows.len() as i64 == PAGE;
            let mut last: Option<(i64, String)> = None;
            let mut wait = false;
            let mut settled = Vec::new();
            for row in &rows {
                match take_one(store, row, done)? {
                    Some(Taken::NoRun) if row.run_seq.is_some_and(|s| s > runs_upto) => {
                        wait = true;
                        break;
                    }
                    Some(_) => settled.push(row.id()),
                    None => {}
                }
                last = Some((row.seq, row.id()));
            }
            store.mark_annotations_pushed(&self.name, &settled)?;
            if let Some((seq, id)) = last {
                store.set_annotations_pulled(&self.name, seq, Some(&id))?;
            }
            if wait || !full {
                return Ok(());
            }
        }
    }

    /// Fetch and take the annotations of runs just taken (after a quarantine).
    fn annotations_of(
        &self,
        store: &Store,
        client: &mut net::Conn,
        runs: &[String],
        limits: Limits,
        done: &mut Pulled,
    ) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        let me = self.clone();
        let held = client.0.take();
        let ids = runs.to_vec();
        let (c, rows) = net::within(&self.name, limits, move |tick| {
            let mut c = match held {
                Some(c) => c,
                None => {
                    let c = me.connect_now(false)?;
                    tick.tick();
                    c
                }
            };
            let rows = annotation_rows(&mut c, "a.run_id = ANY($1)", &ids)
                .map_err(|e| anyhow!("reading {}: {}", me.name, chain(&e)))?;
            Ok((c, rows))
        })?;
        client.0 = Some(c);
        let mut settled = Vec::new();
        for row in &rows {
            if take_one(store, row, done)?.is_some_and(|t| t != Taken::NoRun) {
                settled.push(row.id());
            }
        }
        store.mark_annotations_pushed(&self.name, &settled)
    }
}

/// Take one annotation from the server, counting it in `done`: what became of it (None: its
/// run is not here and never will be from this server: passed over).
fn take_one(store: &Store, row: &ServerAnnotation, done: &mut Pulled) -> Result<Option<Taken>> {
    let taken = store.take_annotation(&row.values)?;
    match &taken {
        Taken::New => done.annotations += 1,
        Taken::Here => {}
        Taken::Refused(why) => {
            done.refused_annotations
                .push((row.id(), row.run_id(), one_line(why)));
        }
        Taken::NoRun if row.run_seq.is_none() => return Ok(None),
        Taken::NoRun => {}
    }
    Ok(Some(taken))
}

/// The server's annotations after `since` (a page, by `seq`); None when it no longer has the
/// annotation `at` at `since` (its history changed).
fn list_annotations(
    c: &mut postgres::Client,
    since: i64,
    at: Option<&str>,
) -> Result<Option<Vec<ServerAnnotation>>> {
    if since > 0 {
        let still: bool = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM annotations WHERE seq = $1 AND id = $2)",
                &[&since, &at.unwrap_or_default()],
            )?
            .get(0);
        if !still {
            return Ok(None);
        }
    }
    let filter = format!("a.seq > $1 ORDER BY a.seq LIMIT {PAGE}");
    Ok(Some(annotation_rows(c, &filter, &since)?))
}

/// The server's annotations that `filter` (on `annotations a`, with one argument) selects.
fn annotation_rows(
    c: &mut postgres::Client,
    filter: &str,
    arg: &(dyn ToSql + Sync),
) -> Result<Vec<ServerAnnotation>> {
    let t = schema::table("annotations").context("annotations are not synced")?;
    let list: Vec<String> = t.columns.iter().map(|c| format!("a.{}", c.name)).collect();
    let rows = c.query(
        format!(
            "SELECT a.seq, r.seq, {} FROM annotations a LEFT JOIN runs r ON r.id = a.run_id
             WHERE {filter}",
            list.join(", ")
        )
        .as_str(),
        &[arg],
    )?;
    rows.iter()
        .map(|r| {
            let values = t
                .columns
                .iter()
                .enumerate()
                .map(|(i, col)| value(r, i + 2, col.kind, "annotations", col.name))
                .collect::<Result<Vec<Value>>>()?;
            Ok(ServerAnnotation {
                seq: r.try_get(0)?,
                run_seq: r.try_get(1)?,
                values,
            })
        })
        .collect()
}

/// Column `i` of a server row as the SQLite value of a synced column of `kind` (try_get: a
/// value of another type is an error naming the column, not a panic).
fn value(row: &postgres::Row, i: usize, kind: Kind, table: &str, name: &str) -> Result<Value> {
    let value = match kind {
        Kind::Int => row
            .try_get::<_, Option<i64>>(i)
            .map(|v| v.map_or(Value::Null, Value::Integer)),
        Kind::Bytes => row
            .try_get::<_, Option<Vec<u8>>>(i)
            .map(|v| v.map_or(Value::Null, Value::Blob)),
        Kind::Text => row
            .try_get::<_, Option<String>>(i)
            .map(|v| v.map_or(Value::Null, Value::Text)),
        Kind::Real => row
            .try_get::<_, Option<f64>>(i)
            .map(|v| v.map_or(Value::Null, Value::Real)),
    };
    value.with_context(|| format!("reading {table}.{name}"))
}

/// Import the bundle's runs: all at once, or, when that fails, one by one, each run that
/// cannot be accepted refused with its reason. Returns how many were added and the refused.
fn take(
    store: &mut Store,
    bundle: &Path,
    ids: &[String],
    done: &mut Pulled,
) -> Result<Vec<(String, String)>> {
    let all: HashSet<String> = ids.iter().cloned().collect();
    if let Ok(counts) = store.import_runs(bundle, Some(&all), true) {
        done.new += counts.of("runs");
        done.damaged.extend(counts.skipped);
        return Ok(Vec::new());
    }
    let mut refused = Vec::new();
    for id in ids {
        let one: HashSet<String> = [id.clone()].into();
        match store.import_runs(bundle, Some(&one), true) {
            Ok(c) => {
                done.new += c.of("runs");
                done.damaged.extend(c.skipped);
            }
            Err(e) => refused.push((id.clone(), one_line(&format!("{e:#}")))),
        }
    }
    done.damaged.sort();
    done.damaged.dedup();
    Ok(refused)
}

/// A row of `SELECT seq, id, recorded_by FROM runs`.
fn arrival(r: &postgres::Row) -> Arrival {
    Arrival {
        seq: r.get(0),
        run_id: r.get(1),
        submitted_by: r.get(2),
    }
}

fn one_line(s: &str) -> String {
    crate::model::text::escape(s).into_owned()
}

/// The server's arrivals after `since` (a page), its tombstones up to the page's end, and
/// whether it still has the run `at` at `since`.
fn list(c: &mut postgres::Client, since: i64, at: Option<&str>) -> Result<Listing> {
    let tombstones_table = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables
               WHERE table_schema = current_schema() AND table_name = 'lineage_tombstones')",
            &[],
        )?
        .get::<_, bool>(0);
    if since > 0 {
        let still: bool = match at {
            Some(id) => {
                let tomb = if tombstones_table {
                    " OR EXISTS (SELECT 1 FROM lineage_tombstones WHERE run_id = $2)"
                } else {
                    ""
                };
                c.query_one(
                    format!("SELECT EXISTS (SELECT 1 FROM runs WHERE seq = $1 AND id = $2){tomb}")
                        .as_str(),
                    &[&since, &id],
                )?
                .get(0)
            }
            // From before checkpoints were kept: the server must at least reach that far.
            None => c
                .query_one("SELECT COALESCE(MAX(seq), 0) >= $1 FROM runs", &[&since])?
                .get(0),
        };
        if !still {
            return Ok(Listing {
                changed: true,
                arrivals: Vec::new(),
                tombstones: Vec::new(),
                more: false,
                upto_checkpoint: 0,
            });
        }
    }
    let upto_checkpoint: i64 = c
        .query_one("SELECT COUNT(*) FROM runs WHERE seq <= $1", &[&since])?
        .get(0);
    let rows = c.query(
        "SELECT seq, id, recorded_by FROM runs WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[&since, &PAGE],
    )?;
    let more = rows.len() as i64 == PAGE;
    let arrivals: Vec<Arrival> = rows.iter().map(arrival).collect();
    let upto = if more {
        arrivals.last().map_or(i64::MAX, |a| a.seq)
    } else {
        i64::MAX
    };
    let tombstones = if tombstones_table {
        c.query(
            "SELECT seq, run_id, deleted_at, deleted_by, reason FROM lineage_tombstones
             WHERE seq > $1 AND seq <= $2 ORDER BY seq",
            &[&since, &upto],
        )?
        .iter()
        .map(|r| Tombstone {
            seq: r.get(0),
            run_id: r.get(1),
            deleted_at: r.get(2),
            deleted_by: r.get(3),
            reason: r.get(4),
        })
        .collect()
    } else {
        Vec::new()
    };
    Ok(Listing {
        changed: false,
        arrivals,
        tombstones,
        more,
        upto_checkpoint,
    })
}

/// Write the server's rows for `ids` (and what they refer to, minus manifests and blobs the
/// local store has) into a new bundle at `path`.
fn download(
    client: &mut postgres::Client,
    local: &Path,
    ids: &[String],
    path: &Path,
    tick: &net::Tick,
) -> Result<()> {
    // This store's own connection, read-only: the caller's stays on its thread.
    let local = rusqlite::Connection::open_with_flags(local, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let has = |sql: &str, key: &str| -> bool {
        local
            .query_row(sql, [key], |r| r.get::<_, bool>(0))
            .unwrap_or(false)
    };
    let bundle = bundle::create(path)?;
    bundle.execute(
        "INSERT INTO bundle_meta VALUES ('format', ?1)",
        [bundle::FORMAT],
    )?;
    bundle.pragma_update(None, "foreign_keys", "OFF")?;
    let tx = bundle.unchecked_transaction()?;
    let copy = |client: &mut postgres::Client,
                table: &str,
                filter: &str,
                arg: &(dyn ToSql + Sync)|
     -> Result<usize> {
        let t = schema::table(table).with_context(|| format!("{table} is not synced"))?;
        let cols: Vec<(&str, Kind)> = t.columns.iter().map(|c| (c.name, c.kind)).collect();
        let list = t.column_list();
        let rows = client.query(
            format!("SELECT {list} FROM {table} WHERE {filter}").as_str(),
            &[arg],
        )?;
        let marks = (1..=cols.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut insert = tx.prepare(&format!(
            "INSERT OR IGNORE INTO {table} ({list}) VALUES ({marks})"
        ))?;
        for row in &rows {
            let values = cols
                .iter()
                .enumerate()
                .map(|(i, (name, kind))| value(row, i, *kind, table, name))
                .collect::<Result<Vec<Value>>>()?;
            insert.execute(rusqlite::params_from_iter(values))?;
        }
        Ok(rows.len())
    };
    let ids: Vec<String> = ids.to_vec();
    copy(client, "runs", "id = ANY($1)", &ids)?;
    tick.tick();
    copy(client, "edges", "run_id = ANY($1)", &ids)?;
    tick.tick();
    copy(client, "params", "run_id = ANY($1)", &ids)?;
    tick.tick();
    copy(client, "metrics", "run_id = ANY($1)", &ids)?;
    tick.tick();
    copy(client, "signatures", "run_id = ANY($1)", &ids)?;
    tick.tick();
    let artifacts: Vec<String> = {
        let mut s = tx.prepare("SELECT DISTINCT artifact FROM edges WHERE artifact IS NOT NULL")?;
        s.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    copy(client, "artifacts", "hash = ANY($1)", &artifacts)?;
    tick.tick();
    copy(client, "extra_digests", "artifact = ANY($1)", &artifacts)?;
    tick.tick();
    // Manifests and blobs this store already has are not fetched again.
    let dirs: Vec<String> = {
        let mut s = tx.prepare("SELECT hash FROM artifacts WHERE kind = 'dir'")?;
        s.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    let missing_dirs: Vec<String> = dirs
        .into_iter()
        .filter(|d| {
            !has(
                "SELECT EXISTS (SELECT 1 FROM dir_manifest WHERE dir_hash = unhex(?1))",
                d,
            )
        })
        .collect();
    copy(client, "dir_entries", "dir_hash = ANY($1)", &missing_dirs)?;
    tick.tick();
    // Each run's blobs; a run whose capture cannot be read names none here (its import
    // refuses it, by name), so it cannot stop the others from being fetched.
    let mut refs = std::collections::BTreeSet::new();
    let runs: Vec<String> = {
        let mut s = tx.prepare("SELECT id FROM runs")?;
        s.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    for id in &runs {
        let quoted = id.replace('\'', "''");
        if let Ok(r) = bundle::blob_refs(
            &tx,
            &format!("SELECT id, capture FROM runs WHERE id = '{quoted}'"),
            &format!(
                "SELECT artifact FROM edges WHERE run_id = '{quoted}' AND role = 'config' \
                 AND artifact IS NOT NULL"
            ),
        ) {
            refs.extend(r);
        }
    }
    let wanted: Vec<String> = refs
        .into_iter()
        .filter(|h| !has("SELECT EXISTS (SELECT 1 FROM blobs WHERE hash = ?1)", h))
        .collect();
    copy(client, "blobs", "hash = ANY($1)", &wanted)?;
    tick.tick();
    tx.commit()?;
    Ok(())
}
