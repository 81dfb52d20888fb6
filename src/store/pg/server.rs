//! The server's schema: migrations, and the check that its tables are the ones lineage syncs.

use anyhow::{Result, bail};

use crate::store::schema::{self, Kind, SERVER_ONLY, SYNCED};

const PG_MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_signatures.sql"),
    include_str!("migrations/0003_row_security.sql"),
    include_str!("migrations/0004_written.sql"),
];

/// Serializes pushes (and schema changes) on the server, so `runs.seq` is in commit order.
pub const PUSH_LOCK: i64 = 0x006c_696e_6561_6765; // "lineage"

pub(super) fn migrate(client: &mut postgres::Client) -> Result<()> {
    let known = PG_MIGRATIONS.len() as i64;
    let now = schema_version(client)?;
    if now == known {
        return Ok(());
    }
    if now > known {
        bail!(
            "its schema (version {now}) is newer than this lineage knows ({known}): upgrade lineage"
        );
    }
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PUSH_LOCK])?;
    let now = schema_version(&mut tx)?;
    if now == 0 {
        tx.batch_execute("CREATE TABLE IF NOT EXISTS lineage_schema (version BIGINT NOT NULL); INSERT INTO lineage_schema VALUES (0);")?;
    }
    for (i, sql) in PG_MIGRATIONS.iter().enumerate().skip(now as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "UPDATE lineage_schema SET version = $1",
            &[&((i + 1) as i64)],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn schema_version(c: &mut impl postgres::GenericClient) -> Result<i64> {
    // A query on pg_class (this statement's snapshot), not to_regclass (the catalog cache,
    // which may not yet see a schema another client created while we waited for the lock).
    let exists: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relname = 'lineage_schema' AND n.nspname = current_schema())",
            &[],
        )?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(c.query_one("SELECT version FROM lineage_schema", &[])?
        .get(0))
}

/// Check the server's tables against the synced list (`schema`): every column known (or the
/// server's own), none missing, each of the expected type. A team store written by a newer
/// lineage, or altered by hand, is refused before any row moves either way.
pub(super) fn check_server(client: &mut impl postgres::GenericClient, name: &str) -> Result<()> {
    let rows = client.query(
        "SELECT table_name::text, column_name::text, data_type::text
         FROM information_schema.columns
         WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
        &[],
    )?;
    let what = format!("team store {name}");
    for table in SYNCED {
        let theirs: Vec<(String, String)> = rows
            .iter()
            .filter(|r| r.get::<_, String>(0) == table.name)
            .map(|r| (r.get(1), r.get(2)))
            .collect();
        let names: Vec<String> = theirs.iter().map(|(n, _)| n.clone()).collect();
        schema::check_columns(table, &names, None, SERVER_ONLY, &what)
            .map_err(anyhow::Error::msg)?;
        for (column, ty) in &theirs {
            let Some(c) = table.column(column) else {
                continue; // the server's own
            };
            // Exactly the types lineage creates and reads (an `integer` column does not
            // read as the 64-bit integer lineage expects).
            let fits = match c.kind {
                Kind::Int => ty == "bigint",
                Kind::Bytes => ty == "bytea",
                Kind::Text => ty == "text",
            };
            if !fits {
                bail!(
                    "{what}: column {}.{column} is of type {ty}, not the one lineage writes: \
                     it was altered by hand; nothing was copied",
                    table.name
                );
            }
        }
    }
    Ok(())
}
