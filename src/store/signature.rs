//! Signed records (docs/security.md). A finished run's canonical record is one stable
//! serialisation of everything recorded for it: its `runs` row, its edges (the artifact
//! each names by hash) and its params, as JSON with keys in a fixed order and NULLs left out
//! (so a column added later does not change old records).
//! The capture it holds names the blobs (configs, patch, untracked files) by hash, and each
//! directory's hash covers its manifest, so those are covered too: `check_run` re-hashes
//! them. Extra digests (sha256) are not covered: `lineage export` may add them later.

use anyhow::Result;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value as Json};

use super::Store;
use super::inbound;
use super::schema;
use crate::model::{Capture, Hash, Seal};
use crate::sign::{self, Signer};

/// Names the serialisation inside the record itself, so a signature over one format can
/// never be read as one over another.
pub const FORMAT: &str = "lineage-run-record/1";

fn json(v: Value) -> Option<Json> {
    match v {
        Value::Null => None,
        Value::Integer(n) => Some(Json::from(n)),
        Value::Real(f) => Some(Json::from(f)),
        Value::Text(s) => Some(Json::from(s)),
        Value::Blob(b) => Some(Json::from(
            b.iter().map(|x| format!("{x:02x}")).collect::<String>(),
        )),
    }
}

/// Rows of `sql` (one `?1` parameter) as JSON objects with the columns in sorted order.
fn rows(conn: &Connection, sql: &str, id: &str) -> Result<Vec<Json>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|a, b| names[*a].cmp(&names[*b]));
    let mut out = Vec::new();
    let mut q = stmt.query([id])?;
    while let Some(r) = q.next()? {
        let mut obj = Map::new();
        for &i in &order {
            if let Some(v) = json(r.get::<_, Value>(i)?) {
                obj.insert(names[i].clone(), v);
            }
        }
        out.push(Json::Object(obj));
    }
    Ok(out)
}

/// The canonical record of run `id`, or None if there is no such run.
pub(crate) fn canonical(conn: &Connection, id: &str) -> Result<Option<Vec<u8>>> {
    let cols = |t: &str| {
        schema::table(t)
            .map(|t| t.column_list())
            .unwrap_or_default()
    };
    let run = rows(
        conn,
        &format!("SELECT {} FROM runs WHERE id = ?1", cols("runs")),
        id,
    )?;
    let Some(run) = run.into_iter().next() else {
        return Ok(None);
    };
    // Artifacts by hash only: their kind and size are rows any store shares, and the hash
    // already says everything (a directory's covers its manifest).
    let edges = rows(
        conn,
        &format!(
            "SELECT {} FROM edges WHERE run_id = ?1 ORDER BY role, position",
            cols("edges")
        ),
        id,
    )?;
    let params = rows(
        conn,
        &format!(
            "SELECT {} FROM params WHERE run_id = ?1 ORDER BY key",
            cols("params")
        ),
        id,
    )?;
    // Metrics (schema 14) only where a run has some, so that records signed before keep
    // their signatures.
    let metrics = rows(
        conn,
        &format!(
            "SELECT {} FROM metrics WHERE run_id = ?1 ORDER BY key",
            cols("metrics")
        ),
        id,
    )?;
    let mut record = Map::new();
    record.insert("edges".into(), Json::Array(edges));
    record.insert("format".into(), Json::from(FORMAT));
    if !metrics.is_empty() {
        record.insert("metrics".into(), Json::Array(metrics));
    }
    record.insert("params".into(), Json::Array(params));
    record.insert("run".into(), run);
    Ok(Some(serde_json::to_vec(&Json::Object(record))?))
}

/// Sign run `id`'s record as it stands in `conn` (inside the transaction that finishes it).
pub(crate) fn sign(conn: &Connection, id: &str, signer: &Signer) -> Result<()> {
    let Some(record) = canonical(conn, id)? else {
        anyhow::bail!("run {id} is not in the store");
    };
    conn.execute(
        "INSERT OR REPLACE INTO signatures (run_id, public_key, signature) VALUES (?1, ?2, ?3)",
        params![id, signer.public_key(), signer.sign(&record)],
    )?;
    Ok(())
}

impl Store {
    /// Check run `id`: its signature against its record and, when `deep`, the blobs and
    /// manifests the record names by hash against their bytes (what `verify` does; `show`
    /// checks only the signature, which costs no reading of manifests).
    pub fn check_run(&self, id: &str, deep: bool) -> Result<Seal> {
        let Some(record) = canonical(&self.conn, id)? else {
            return Err(crate::error::Error::RunNotFound(id.to_string()).into());
        };
        if deep && let Some(reason) = self.damaged_contents(id)? {
            return Ok(Seal::Tampered { reason });
        }
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT public_key, signature FROM signatures WHERE run_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            None => Seal::Unsigned,
            Some((key, sig)) if sign::verify(&key, &record, &sig) => Seal::Signed { key },
            Some(_) => Seal::Tampered {
                reason: "its record is not what was signed".into(),
            },
        })
    }

    /// A blob or a manifest run `id` names whose bytes are not what its hash says.
    fn damaged_contents(&self, id: &str) -> Result<Option<String>> {
        // The blobs the record says were kept (patch, untracked files kept, configs,
        // package list): each must be there and be its bytes.
        let capture: Option<String> = self
            .conn
            .query_row("SELECT capture FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .ok()
            .flatten();
        let Some(capture) = capture.and_then(|c| serde_json::from_str::<Capture>(&c).ok()) else {
            return Ok(Some("its capture cannot be read".into()));
        };
        let mut kept: Vec<Hash> = Vec::new();
        if let Some(g) = &capture.git {
            if let Some(p) = g.patch {
                kept.push(g.patch_redacted.unwrap_or(p));
            }
            for u in g.untracked.iter().filter(|u| u.stored) {
                kept.push(u.redacted_blob.unwrap_or(u.hash));
            }
        }
        if let Some(p) = capture.software.python.as_ref().and_then(|p| p.packages) {
            kept.push(p);
        }
        if let Some(api) = &capture.api {
            kept.extend(api.series.iter().map(|s| s.blob));
        }
        let mut configs = self.conn.prepare_cached(
            "SELECT path, artifact FROM edges WHERE run_id = ?1 AND role = 'config' AND artifact IS NOT NULL",
        )?;
        let configs: Vec<(String, String)> = configs
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()
            .unwrap_or_default();
        for (path, artifact) in configs {
            match capture.config_redacted.get(&path) {
                Some(redacted) => kept.push(*redacted),
                None => kept.extend(Hash::parse(&artifact)),
            }
        }
        let mut blob = self
            .conn
            .prepare_cached("SELECT data FROM blobs WHERE hash = ?1")?;
        for h in kept {
            let hex = h.to_hex();
            let data: Option<Value> = blob.query_row([&hex], |r| r.get(0)).optional()?;
            let why = match &data {
                None => Some("are missing"),
                Some(Value::Blob(b)) if Hash::of(b) == h => None,
                Some(_) => Some("are not those bytes"),
            };
            if let Some(why) = why {
                return Ok(Some(format!("the kept bytes of blake3:{hex} {why}")));
            }
        }
        let mut dirs = self.conn.prepare_cached(
            "SELECT DISTINCT a.hash, a.size, a.file_count FROM edges e
             JOIN artifacts a ON a.hash = e.artifact
             WHERE e.run_id = ?1 AND a.kind = 'dir'",
        )?;
        let dirs: Vec<(String, i64, i64)> = dirs
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut entries = self.conn.prepare_cached(
            "SELECT path, lower(hex(file_hash)), size, executable FROM dir_manifest
             WHERE dir_hash = unhex(?1)",
        )?;
        for (dir, size, count) in dirs {
            // Any value of the wrong type is a manifest that does not hash to its name.
            let rows: rusqlite::Result<Vec<(String, Hash, u64, bool)>> = entries
                .query_map([&dir], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        Hash::parse(&r.get::<_, String>(1)?).unwrap_or_default(),
                        r.get::<_, i64>(2)? as u64,
                        r.get::<_, i64>(3)? == 1,
                    ))
                })?
                .collect();
            let Ok(mut list) = rows else {
                return Ok(Some(format!(
                    "the manifest of directory blake3:{dir} does not hash to it"
                )));
            };
            if list.is_empty() {
                continue; // no manifest kept: nothing to check
            }
            let (hash, total, n) = inbound::dir_hash(&mut list);
            if hash.to_hex() != dir || total as i64 != size || n as i64 != count {
                return Ok(Some(format!(
                    "the manifest of directory blake3:{dir} does not hash to it"
                )));
            }
        }
        Ok(None)
    }
}
