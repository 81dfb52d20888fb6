//! Delivering runs to the team store.

use std::collections::BTreeSet;

use anyhow::{Result, anyhow};
use postgres::types::ToSql;
use rusqlite::OpenFlags;
use rusqlite::types::Value;

use super::{PUSH_LOCK, Remote, chain};
use crate::store::Store;
use crate::store::bundle::{self, Selection};
use crate::store::schema::{Kind, SYNCED, Table};

impl Remote {
    /// Deliver this store's finished runs the server does not have yet. Returns how many.
    pub fn push(&self, store: &Store) -> Result<usize> {
        let pending = store.pending_push(&self.name)?;
        crate::timing::mark("team store: runs to deliver listed");
        if pending.ids.is_empty() {
            store.push_done(&self.name, &pending)?;
            return Ok(0);
        }
        let ids = &pending.ids;
        let mut client = self.connect()?;
        crate::timing::mark("team store: connected");
        let mut sent = 0;
        for chunk in ids.chunks(500) {
            let tmp = bundle::scratch(&std::env::temp_dir(), "push")?;
            let result = (|| -> Result<()> {
                store.export_bundle(
                    tmp.path(),
                    &Selection {
                        since: None,
                        runs: Some(chunk.to_vec()),
                    },
                )?;
                crate::timing::mark("team store: bundle written");
                let bundle = rusqlite::Connection::open_with_flags(
                    tmp.path(),
                    OpenFlags::SQLITE_OPEN_READ_ONLY,
                )?;
                let mut tx = client.transaction()?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PUSH_LOCK])?;
                crate::timing::mark("team store: lock taken");
                // A run the server has already (delivered from another machine that held
                // it too) never changes: its rows are not sent again.
                let here: BTreeSet<String> = tx
                    .query("SELECT id FROM runs WHERE id = ANY($1)", &[&chunk.to_vec()])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                for table in SYNCED {
                    upload(&bundle, &mut tx, table, &here)?;
                }
                crate::timing::mark("team store: rows sent");
                tx.commit()?;
                crate::timing::mark("team store: committed");
                Ok(())
            })();
            result.map_err(|e| anyhow!("delivering runs to {}: {}", self.name, chain(&e)))?;
            store.mark_pushed(&self.name, chunk)?;
            sent += chunk.len();
        }
        store.push_done(&self.name, &pending)?;
        Ok(sent)
    }
}

/// One SQLite value as a parameter of the column's PostgreSQL type.
fn param(v: Value, kind: Kind) -> Box<dyn ToSql + Sync> {
    match (kind, v) {
        (Kind::Int, Value::Integer(i)) => Box::new(Some(i)),
        (Kind::Int, Value::Real(f)) => Box::new(Some(f as i64)),
        (Kind::Int, Value::Text(t)) => Box::new(t.parse::<i64>().ok()),
        (Kind::Int, _) => Box::new(None::<i64>),
        (Kind::Bytes, Value::Blob(b)) => Box::new(Some(b)),
        (Kind::Bytes, Value::Text(t)) => Box::new(Some(t.into_bytes())),
        (Kind::Bytes, _) => Box::new(None::<Vec<u8>>),
        (Kind::Text, Value::Text(t)) => Box::new(Some(t)),
        (Kind::Text, Value::Integer(i)) => Box::new(Some(i.to_string())),
        (Kind::Text, Value::Real(f)) => Box::new(Some(f.to_string())),
        (Kind::Text, Value::Blob(b)) => Box::new(Some(String::from_utf8_lossy(&b).into_owned())),
        (Kind::Text, Value::Null) => Box::new(None::<String>),
    }
}

/// Insert a bundle table's rows on the server, skipping manifests and blobs it has, and the
/// rows of the runs in `here` (which it had before this push).
fn upload(
    bundle: &rusqlite::Connection,
    tx: &mut postgres::Transaction,
    t: &Table,
    here: &BTreeSet<String>,
) -> Result<()> {
    let table = t.name;
    let mut stmt = bundle.prepare(&format!("SELECT {} FROM {table}", t.column_list()))?;
    let cols: Vec<(usize, &str, Kind)> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.name, c.kind))
        .collect();
    let skip: BTreeSet<String> = match table {
        "dir_entries" => {
            let dirs: Vec<String> = bundle
                .prepare("SELECT DISTINCT dir_hash FROM dir_entries")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            tx.query(
                "SELECT DISTINCT dir_hash FROM dir_entries WHERE dir_hash = ANY($1)",
                &[&dirs],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect()
        }
        "blobs" => {
            let hashes: Vec<String> = bundle
                .prepare("SELECT hash FROM blobs")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            tx.query("SELECT hash FROM blobs WHERE hash = ANY($1)", &[&hashes])?
                .iter()
                .map(|r| r.get(0))
                .collect()
        }
        "runs" | "edges" | "params" | "signatures" => here.clone(),
        _ => BTreeSet::new(),
    };
    let per_statement = (30_000 / cols.len().max(1)).clamp(1, 1000);
    let mut batch: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    let mut rows_in_batch = 0;
    let flush = |tx: &mut postgres::Transaction,
                 batch: &mut Vec<Box<dyn ToSql + Sync>>,
                 rows: &mut usize|
     -> Result<()> {
        if *rows == 0 {
            return Ok(());
        }
        let width = cols.len();
        let values: Vec<String> = (0..*rows)
            .map(|r| {
                let ps: Vec<String> = (0..width)
                    .map(|c| format!("${}", r * width + c + 1))
                    .collect();
                format!("({})", ps.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {} ON CONFLICT DO NOTHING",
            cols.iter()
                .map(|(_, n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
            values.join(", ")
        );
        let refs: Vec<&(dyn ToSql + Sync)> = batch.iter().map(|b| b.as_ref()).collect();
        tx.execute(sql.as_str(), &refs)?;
        batch.clear();
        *rows = 0;
        Ok(())
    };
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if !skip.is_empty() {
            let key: String = row.get(0)?; // dir_hash / hash / id / run_id come first
            if skip.contains(&key) {
                continue;
            }
        }
        for (i, _, kind) in &cols {
            batch.push(param(row.get::<_, Value>(*i)?, *kind));
        }
        rows_in_batch += 1;
        if rows_in_batch == per_statement {
            flush(tx, &mut batch, &mut rows_in_batch)?;
        }
    }
    flush(tx, &mut batch, &mut rows_in_batch)?;
    Ok(())
}
