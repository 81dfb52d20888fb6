//! Delivering runs to the team store: each run, whole, to the server's `lineage_submit`,
//! which checks it, numbers it and credits it to the role that submitted it; then each signed
//! annotation (tag, note) of a run it has to `lineage_annotate` (server migration 0008).
//! Writers insert nothing themselves (server migration 0005).

use std::collections::{BTreeSet, HashSet};

use anyhow::{Result, anyhow};
use rusqlite::OpenFlags;
use rusqlite::types::Value;
use serde_json::{Map, Value as Json};

use super::net::{self, Limits};
use super::{Remote, Setup};
use crate::store::Store;
use crate::store::bundle::{self, Selection};
use crate::store::schema::{self, Kind};

/// What a push did.
#[derive(Debug, Default)]
pub struct Pushed {
    /// Runs the server did not have.
    pub new: usize,
    /// Runs it had already (delivered from another machine, or before).
    pub present: usize,
    /// Runs it had deleted (a tombstone names them): never sent again.
    pub deleted: usize,
    /// Runs it refused, with its reason: held back (`lineage doctor` lists them).
    pub refused: Vec<(String, String)>,
    /// Annotations (tags and notes) it did not have.
    pub annotations: usize,
    /// Annotations it refused (id, why): they stay here, not offered again.
    pub refused_annotations: Vec<(String, String)>,
    /// Annotations this role may not submit (a reader): they stay here, not offered again.
    pub kept_annotations: usize,
}

/// This role may not submit runs (a reader): its runs stay here.
#[derive(Debug)]
pub struct NotAWriter(pub String);

impl std::fmt::Display for NotAWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the role {} may not submit runs to this team store (not a member of lineage_writer)",
            self.0
        )
    }
}

impl std::error::Error for NotAWriter {}

/// Runs per bundle exported for delivery.
const CHUNK: usize = 200;

impl Remote {
    /// Deliver this store's finished runs the server does not have yet, then the tags and
    /// notes it does not have (of runs it has), each step within `limits`.
    pub fn push(&self, store: &Store, limits: Limits) -> Result<Pushed> {
        let pending = store.pending_push(&self.name)?;
        crate::timing::mark("team store: runs to deliver listed");
        let mut done = Pushed::default();
        let mut client = net::Conn::default();
        for chunk in pending.ids.chunks(CHUNK) {
            let tmp = bundle::scratch(&std::env::temp_dir(), "push")?;
            store.export_bundle(
                tmp.path(),
                &Selection {
                    since: None,
                    runs: Some(chunk.to_vec()),
                },
            )?;
            crate::timing::mark("team store: bundle written");
            let docs = submissions(tmp.path(), chunk)?;
            let me = self.clone();
            let held = client.0.take();
            let (c, outcomes) = net::within(&self.name, limits, move |tick| {
                let mut c = match held {
                    Some(c) => c,
                    None => writer(&me, tick, "lineage_submit(jsonb)")?,
                };
                let outcomes = submit(&me.name, &mut c, docs, tick)?;
                Ok((c, outcomes))
            })?;
            client.0 = Some(c);
            let mut delivered = Vec::new();
            for (id, outcome) in outcomes {
                match outcome {
                    Outcome::New => done.new += 1,
                    Outcome::Present => done.present += 1,
                    Outcome::Deleted => done.deleted += 1,
                    Outcome::Refused(why) => {
                        store.hold_back(&self.name, &id, "refused", None, &why)?;
                        done.refused.push((id, why));
                        continue;
                    }
                }
                delivered.push(id);
            }
            store.mark_pushed(&self.name, &delivered)?;
            crate::timing::mark("team store: runs delivered");
        }
        store.push_done(&self.name, &pending)?;
        self.push_annotations(store, limits, &mut client, &mut done)?;
        Ok(done)
    }

    /// Deliver the signed annotations of runs the server has that it has not been given,
    /// each to `lineage_annotate`. One it refuses is said, and not offered again; a reader's
    /// are not offered at all.
    fn push_annotations(
        &self,
        store: &Store,
        limits: Limits,
        client: &mut net::Conn,
        done: &mut Pushed,
    ) -> Result<()> {
        let pending = store.pending_annotations(&self.name)?;
        for chunk in pending.chunks(CHUNK) {
            let docs: Vec<(String, String)> = chunk
                .iter()
                .map(|a| {
                    let doc = serde_json::json!({
                        "id": a.id,
                        "run_id": a.run_id,
                        "kind": a.kind.as_str(),
                        "text": a.text,
                        "created_at": a.created_at,
                        "author": a.author,
                        "public_key": a.public_key,
                        "signature": a.signature,
                    });
                    (a.id.clone(), doc.to_string())
                })
                .collect();
            let me = self.clone();
            let held = client.0.take();
            let result = net::within(&self.name, limits, move |tick| {
                let mut c = match held {
                    Some(c) => c,
                    None => writer(&me, tick, "lineage_annotate(jsonb)")?,
                };
                let mut out = Vec::with_capacity(docs.len());
                for (id, doc) in docs {
                    let result = c.query_one("SELECT lineage_annotate($1::text::jsonb)", &[&doc]);
                    tick.tick();
                    out.push((id, outcome(&me.name, result)?));
                }
                Ok((c, out))
            });
            let (c, outcomes) = match result {
                // A reader's tags and notes stay in its replica, said once.
                Err(e) if e.is::<NotAWriter>() => {
                    let ids: Vec<String> = pending.iter().map(|a| a.id.clone()).collect();
                    store.mark_annotations_pushed(&self.name, &ids)?;
                    done.kept_annotations = ids.len();
                    return Ok(());
                }
                other => other?,
            };
            client.0 = Some(c);
            let mut settled = Vec::new();
            for (id, outcome) in outcomes {
                match outcome {
                    Outcome::New => done.annotations += 1,
                    Outcome::Present | Outcome::Deleted => {}
                    Outcome::Refused(why) => done.refused_annotations.push((id.clone(), why)),
                }
                settled.push(id);
            }
            store.mark_annotations_pushed(&self.name, &settled)?;
        }
        Ok(())
    }
}

/// A connection as a writer: one whose role may execute `function` (else [`NotAWriter`]).
fn writer(me: &Remote, tick: &net::Tick, function: &str) -> Result<postgres::Client> {
    let mut c = me.connect_now(false)?;
    tick.tick();
    crate::timing::mark("team store: connected");
    let row = c
        .query_one(
            "SELECT current_user::text, has_function_privilege($1, 'EXECUTE')",
            &[&function],
        )
        .map_err(|e| net::classify(&me.name, "reading", &e))?;
    if !row.get::<_, bool>(1) {
        return Err(NotAWriter(row.get(0)).into());
    }
    Ok(c)
}

/// What the server answered to one submission: the item's outcome, or, when the refusal is
/// not the item's (no grant, a lost connection), everyone's error.
fn outcome(name: &str, result: Result<postgres::Row, postgres::Error>) -> Result<Outcome> {
    Ok(match result {
        Ok(row) => match row.get::<_, String>(0).as_str() {
            "new" => Outcome::New,
            "present" => Outcome::Present,
            "deleted" => Outcome::Deleted,
            other => Outcome::Refused(format!("the server answered {other:?}")),
        },
        Err(e) => match e.as_db_error() {
            // The item's own rows: refused, that item only.
            Some(db) if matches!(&db.code().code()[..2], "22" | "23" | "54") => {
                Outcome::Refused(db.message().to_string())
            }
            _ => {
                let err = net::classify(name, "the delivery", &e);
                if err.is::<Setup>() {
                    return Err(err);
                }
                return Err(anyhow!("{err:#}"));
            }
        },
    })
}

enum Outcome {
    New,
    Present,
    Deleted,
    Refused(String),
}

/// Submit each run; a run the server refuses (its rows do not hold) is that run's outcome,
/// a refusal of the role (no grant) or a lost connection is everyone's.
fn submit(
    name: &str,
    client: &mut postgres::Client,
    mut docs: Vec<(String, Json)>,
    tick: &net::Tick,
) -> Result<Vec<(String, Outcome)>> {
    // Manifests and blobs the server has are not sent again.
    let dirs: Vec<String> = docs
        .iter()
        .flat_map(|(_, d)| rows_of(d, "dir_entries", "dir_hash"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let blobs: Vec<String> = docs
        .iter()
        .flat_map(|(_, d)| rows_of(d, "blobs", "hash"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let has =
        |client: &mut postgres::Client, sql: &str, keys: &[String]| -> Result<HashSet<String>> {
            if keys.is_empty() {
                return Ok(HashSet::new());
            }
            Ok(client
                .query(sql, &[&keys])
                .map_err(|e| net::classify(name, "reading", &e))?
                .iter()
                .map(|r| r.get(0))
                .collect())
        };
    let dirs_there = has(
        client,
        "SELECT DISTINCT dir_hash FROM dir_entries WHERE dir_hash = ANY($1)",
        &dirs,
    )?;
    let blobs_there = has(
        client,
        "SELECT hash FROM blobs WHERE hash = ANY($1)",
        &blobs,
    )?;
    tick.tick();
    let mut out = Vec::with_capacity(docs.len());
    for (id, doc) in &mut docs {
        drop_rows(doc, "dir_entries", "dir_hash", &dirs_there);
        drop_rows(doc, "blobs", "hash", &blobs_there);
        let text = serde_json::to_string(doc)?;
        let result = client.query_one("SELECT lineage_submit($1::text::jsonb)", &[&text]);
        tick.tick();
        let outcome = outcome(name, result)?;
        out.push((std::mem::take(id), outcome));
    }
    Ok(out)
}

/// The values of `key` in a submission's `table` rows.
fn rows_of(doc: &Json, table: &str, key: &str) -> Vec<String> {
    doc[table]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r[key].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn drop_rows(doc: &mut Json, table: &str, key: &str, there: &HashSet<String>) {
    if let Some(rows) = doc[table].as_array_mut() {
        rows.retain(|r| r[key].as_str().is_none_or(|k| !there.contains(k)));
    }
}

/// Each run of the bundle at `path` as one submission: its row, edges, params and
/// signature, and the artifacts, manifests, blobs and digests it names.
fn submissions(path: &std::path::Path, ids: &[String]) -> Result<Vec<(String, Json)>> {
    let b = rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let rows = |table: &str, filter: &str, arg: &dyn rusqlite::ToSql| -> Result<Vec<Json>> {
        let t = schema::table(table).ok_or_else(|| anyhow!("{table} is not synced"))?;
        let mut stmt = b.prepare(&format!(
            "SELECT {} FROM {table} WHERE {filter}",
            t.column_list()
        ))?;
        let mut q = stmt.query([arg])?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            let mut obj = Map::new();
            for (i, c) in t.columns.iter().enumerate() {
                obj.insert(c.name.to_string(), json_of(r.get::<_, Value>(i)?, c.kind));
            }
            out.push(Json::Object(obj));
        }
        Ok(out)
    };
    let mut docs = Vec::with_capacity(ids.len());
    for id in ids {
        let run = rows("runs", "id = ?1", id)?;
        let Some(run) = run.into_iter().next() else {
            continue; // deleted here since it was listed
        };
        let edges = rows("edges", "run_id = ?1", id)?;
        let artifacts: BTreeSet<String> = edges
            .iter()
            .filter_map(|e| e["artifact"].as_str().map(str::to_string))
            .collect();
        let mut arts = Vec::new();
        let mut entries = Vec::new();
        let mut digests = Vec::new();
        for a in &artifacts {
            arts.extend(rows("artifacts", "hash = ?1", a)?);
            entries.extend(rows("dir_entries", "dir_hash = ?1", a)?);
            digests.extend(rows("extra_digests", "artifact = ?1", a)?);
        }
        let refs = bundle::blob_refs(
            &b,
            &format!("SELECT id, capture FROM runs WHERE id = '{}'", sql_str(id)),
            &format!(
                "SELECT artifact FROM edges WHERE run_id = '{}' AND role = 'config' AND artifact IS NOT NULL",
                sql_str(id)
            ),
        )?;
        let mut blobs = Vec::new();
        for h in &refs {
            blobs.extend(rows("blobs", "hash = ?1", h)?);
        }
        let doc = serde_json::json!({
            "run": run,
            "edges": edges,
            "params": rows("params", "run_id = ?1", id)?,
            "metrics": rows("metrics", "run_id = ?1", id)?,
            "signatures": rows("signatures", "run_id = ?1", id)?,
            "artifacts": arts,
            "dir_entries": entries,
            "blobs": blobs,
            "extra_digests": digests,
        });
        docs.push((id.clone(), doc));
    }
    Ok(docs)
}

fn sql_str(s: &str) -> String {
    s.replace('\'', "''")
}

/// A SQLite value as the JSON the server's `jsonb_populate_record` reads into the column's
/// type (bytes as `\x` hex, bytea's text form).
fn json_of(v: Value, kind: Kind) -> Json {
    match (kind, v) {
        (_, Value::Null) => Json::Null,
        (Kind::Bytes, Value::Blob(b)) => Json::String(format!("\\x{}", hex(&b))),
        (Kind::Bytes, Value::Text(t)) => Json::String(format!("\\x{}", hex(t.as_bytes()))),
        (Kind::Int, Value::Integer(i)) => Json::from(i),
        (Kind::Int, Value::Real(f)) => Json::from(f as i64),
        (Kind::Int, Value::Text(t)) => t.parse::<i64>().map_or(Json::Null, Json::from),
        (Kind::Text, Value::Text(t)) => Json::String(t),
        (Kind::Text, Value::Integer(i)) => Json::String(i.to_string()),
        (Kind::Text, Value::Real(f)) => Json::String(f.to_string()),
        (Kind::Text, Value::Blob(b)) => Json::String(String::from_utf8_lossy(&b).into_owned()),
        (Kind::Real, Value::Real(f)) => Json::from(f),
        (Kind::Real, Value::Integer(i)) => Json::from(i as f64),
        (_, other) => Json::String(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
