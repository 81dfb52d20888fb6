//! Fetching the team store's new runs into the replica.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use postgres::types::ToSql;
use rusqlite::types::Value;

use super::{Remote, chain, describe};
use crate::store::Store;
use crate::store::bundle;
use crate::store::schema::{self, Kind};

impl Remote {
    /// Fetch the runs that reached the server since the last pull. Returns how many were new
    /// here (the server also sends back runs this store delivered itself).
    pub fn pull(&self, store: &mut Store) -> Result<usize> {
        let mut client = self.connect()?;
        let mut got = 0;
        loop {
            let since = store.pulled_seq(&self.name)?;
            let rows = client
                .query(
                    "SELECT seq, id FROM runs WHERE seq > $1 ORDER BY seq LIMIT 2000",
                    &[&since],
                )
                .map_err(|e| anyhow!("reading {}: {}", self.name, describe(&e)))?;
            if rows.is_empty() {
                return Ok(got);
            }
            let last: i64 = rows.last().map_or(since, |r| r.get(0));
            let ids: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
            let tmp = bundle::scratch(&std::env::temp_dir(), "pull")?;
            download(&mut client, store, &ids, tmp.path())
                .map_err(|e| anyhow!("reading {}: {}", self.name, chain(&e)))?;
            let added = store.import_bundle(tmp.path())?;
            store.mark_pushed(&self.name, &ids)?;
            store.set_pulled_seq(&self.name, last)?;
            got += added.of("runs");
        }
    }
}

/// Write the server's rows for `ids` (and what they refer to, minus manifests and blobs the
/// local store has) into a new bundle at `path`.
fn download(
    client: &mut postgres::Client,
    store: &Store,
    ids: &[String],
    path: &Path,
) -> Result<()> {
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
            // try_get: a value of another type is an error naming the column, not a panic.
            let values = cols
                .iter()
                .enumerate()
                .map(|(i, (name, kind))| {
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
                    };
                    value.with_context(|| format!("reading {table}.{name}"))
                })
                .collect::<Result<Vec<Value>>>()?;
            insert.execute(rusqlite::params_from_iter(values))?;
        }
        Ok(rows.len())
    };
    let ids: Vec<String> = ids.to_vec();
    copy(client, "runs", "id = ANY($1)", &ids)?;
    copy(client, "edges", "run_id = ANY($1)", &ids)?;
    copy(client, "params", "run_id = ANY($1)", &ids)?;
    copy(client, "signatures", "run_id = ANY($1)", &ids)?;
    let artifacts: Vec<String> = {
        let mut s = tx.prepare("SELECT DISTINCT artifact FROM edges WHERE artifact IS NOT NULL")?;
        s.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    copy(client, "artifacts", "hash = ANY($1)", &artifacts)?;
    copy(client, "extra_digests", "artifact = ANY($1)", &artifacts)?;
    // Manifests and blobs this store already has are not fetched again.
    let dirs: Vec<String> = {
        let mut s = tx.prepare("SELECT hash FROM artifacts WHERE kind = 'dir'")?;
        s.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    let missing_dirs: Vec<String> = dirs
        .into_iter()
        .filter(|d| !store.has_manifest(d))
        .collect();
    copy(client, "dir_entries", "dir_hash = ANY($1)", &missing_dirs)?;
    let refs = bundle::blob_refs(
        &tx,
        "SELECT id, capture FROM runs",
        "SELECT artifact FROM edges WHERE role = 'config' AND artifact IS NOT NULL",
    )?;
    let wanted: Vec<String> = refs.into_iter().filter(|h| !store.has_blob(h)).collect();
    copy(client, "blobs", "hash = ANY($1)", &wanted)?;
    tx.commit()?;
    Ok(())
}
