//! The server's schema: migrations, and the check that its tables are the ones lineage syncs.

use anyhow::{Context, Result, bail};

use crate::store::schema::{self, Kind, SERVER_ONLY, SYNCED};

const PG_MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_signatures.sql"),
    include_str!("migrations/0003_row_security.sql"),
    include_str!("migrations/0004_written.sql"),
    include_str!("migrations/0005_submit.sql"),
    include_str!("migrations/0006_observed.sql"),
    include_str!("migrations/0007_metrics.sql"),
    include_str!("migrations/0008_annotations.sql"),
];

/// Serializes pushes (and schema changes) on the server, so `runs.seq` is in commit order.
pub const PUSH_LOCK: i64 = 0x006c_696e_6561_6765; // "lineage"

/// What a version of the schema added, to tell the schema's real version when
/// `lineage_schema` does not (rows a writer added before version 5 made it the owner's).
const MARKERS: &[(&str, Option<&str>)] = &[
    ("runs", None),
    ("signatures", None),
    ("runs", Some("recorded_by")),
    ("edges", Some("written")),
    ("lineage_tombstones", None),
    ("edges", Some("observed")),
    ("metrics", None),
    ("annotations", None),
];

/// Grants, applied after every migration and by every `lineage team migrate`: nobody but the
/// owner writes a table or draws from the sequence; the conventional group roles, where they
/// exist, read everything, and writers submit runs through `lineage_submit` and annotations
/// through `lineage_annotate`.
const GRANTS: &str = r#"
DO $grants$
DECLARE
    g record;
    r text;
    tables text[] := ARRAY['runs', 'artifacts', 'dir_entries', 'edges', 'params', 'blobs',
                           'extra_digests', 'signatures', 'metrics', 'annotations', 'lineage_schema',
                           'lineage_tombstones'];
BEGIN
    FOR g IN
        SELECT c.relname::text AS rel, c.relkind, a.grantee, a.privilege_type
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
        LATERAL aclexplode(c.relacl) a
        WHERE n.nspname = current_schema()
          AND (c.relname::text = ANY (tables) OR c.relname IN ('runs_seq_seq', 'annotations_seq_seq'))
          AND a.grantee <> c.relowner AND a.privilege_type <> 'SELECT'
    LOOP
        EXECUTE format('REVOKE %s ON %s %I FROM %s', g.privilege_type,
                       CASE WHEN g.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, g.rel,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC'
                            ELSE quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END);
    END LOOP;
    FOREACH r IN ARRAY ARRAY['lineage_writer', 'lineage_reader'] LOOP
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('GRANT SELECT ON %s TO %I', array_to_string(tables, ', '), r);
            BEGIN
                EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), r);
            EXCEPTION WHEN insufficient_privilege THEN NULL;
            END;
        END IF;
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'lineage_writer') THEN
        GRANT EXECUTE ON FUNCTION lineage_submit(jsonb) TO lineage_writer;
        GRANT EXECUTE ON FUNCTION lineage_annotate(jsonb) TO lineage_writer;
    END IF;
END
$grants$;
"#;

/// How many migrations this lineage knows.
pub fn known_version() -> i64 {
    PG_MIGRATIONS.len() as i64
}

/// Make the server's schema usable by this lineage: check its version, and bring it up to
/// date when it is behind and this role may (it owns the database, or is a superuser), or
/// when asked to (`explicit`: `lineage team migrate`, which also repairs `lineage_schema` and
/// reapplies the grants). Returns the version it is at, and what was repaired.
pub(super) fn prepare(
    client: &mut postgres::Client,
    name: &str,
    explicit: bool,
) -> Result<(i64, Option<String>)> {
    let mut repaired = None;
    let known = known_version();
    let now = match schema_version(client)? {
        Version::At(v) => v,
        Version::Rows(n) if explicit => {
            let v = real_version(client)?;
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PUSH_LOCK])?;
            tx.execute("DELETE FROM lineage_schema", &[])?;
            tx.execute("INSERT INTO lineage_schema VALUES ($1)", &[&v])?;
            if v >= 5 {
                tx.batch_execute(
                    "CREATE UNIQUE INDEX IF NOT EXISTS lineage_schema_one_row
                     ON lineage_schema ((true))",
                )?;
            }
            tx.commit()?;
            repaired = Some(format!(
                "lineage_schema on {name} had {n} rows (written by someone other than its \
                 owner): repaired to the one row of version {v}"
            ));
            v
        }
        Version::Rows(n) => bail!(Setup(format!(
            "the team store {name}: its lineage_schema table has {n} rows, not one (someone \
             wrote to it): its owner runs `lineage team migrate {name}` to repair it"
        ))),
    };
    if now > known {
        bail!(Setup(format!(
            "the team store {name} has schema version {now}, newer than this lineage knows \
             ({known}): upgrade lineage"
        )));
    }
    if now < known || explicit {
        if !explicit && !may_migrate(client, now)? {
            let what = if now == 0 {
                "has no lineage schema yet".to_string()
            } else {
                format!("has schema version {now} and this lineage needs {known}")
            };
            // The command to give its owner: this URL with the database owner's role.
            let owner: Option<String> = client
                .query_opt(
                    "SELECT pg_catalog.pg_get_userbyid(datdba)::text FROM pg_catalog.pg_database
                     WHERE datname = current_database()",
                    &[],
                )?
                .map(|r| r.get(0));
            let url = match (
                owner,
                name.split_once("://").and_then(|(_, r)| r.split_once('@')),
            ) {
                (Some(o), Some((_, rest))) => format!("postgres://{o}@{rest}"),
                _ => name.to_string(),
            };
            bail!(Setup(format!(
                "the team store {name} {what}: its owner runs `lineage team migrate {url}`"
            )));
        }
        migrate(client, explicit)?;
    }
    Ok((known, repaired))
}

/// A setup problem on the server (schema, grants): an error the user must fix, never taken
/// for an unreachable server.
#[derive(Debug)]
pub struct Setup(pub String);

impl std::fmt::Display for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Setup {}

/// Whether this role may change the schema: a superuser, or a member of the role that owns
/// the database (no schema yet) or lineage's tables.
fn may_migrate(client: &mut postgres::Client, now: i64) -> Result<bool> {
    let sql = if now == 0 {
        "SELECT r.rolsuper OR pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER')
         FROM pg_catalog.pg_roles r, pg_catalog.pg_database d
         WHERE r.rolname = current_user AND d.datname = current_database()"
    } else {
        "SELECT r.rolsuper OR pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER')
         FROM pg_catalog.pg_roles r, pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE r.rolname = current_user AND c.relname = 'lineage_schema'
           AND n.nspname = current_schema()"
    };
    Ok(client
        .query_opt(sql, &[])?
        .map(|r| r.get::<_, bool>(0))
        .unwrap_or(false))
}

fn migrate(client: &mut postgres::Client, grants: bool) -> Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PUSH_LOCK])?;
    let now = match schema_version(&mut tx)? {
        Version::At(v) => v,
        Version::Rows(n) => bail!("lineage_schema has {n} rows"),
    };
    if now == 0 {
        tx.batch_execute("CREATE TABLE IF NOT EXISTS lineage_schema (version BIGINT NOT NULL); INSERT INTO lineage_schema VALUES (0);")?;
    }
    let ran = (now as usize) < PG_MIGRATIONS.len();
    for (i, sql) in PG_MIGRATIONS.iter().enumerate().skip(now as usize) {
        tx.batch_execute(sql)
            .with_context(|| format!("migrating the schema to version {}", i + 1))?;
        tx.execute(
            "UPDATE lineage_schema SET version = $1",
            &[&((i + 1) as i64)],
        )?;
    }
    if ran || grants {
        tx.batch_execute(GRANTS)
            .context("granting lineage's roles")?;
    }
    tx.commit()?;
    Ok(())
}

enum Version {
    At(i64),
    /// `lineage_schema` has this many rows, not one.
    Rows(i64),
}

fn schema_version(c: &mut impl postgres::GenericClient) -> Result<Version> {
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
        return Ok(Version::At(0));
    }
    let row = c.query_one(
        "SELECT COUNT(*), COALESCE(MAX(version), 0) FROM lineage_schema",
        &[],
    )?;
    let (n, v): (i64, i64) = (row.get(0), row.get(1));
    Ok(if n == 1 {
        Version::At(v)
    } else {
        Version::Rows(n)
    })
}

/// The schema's version by what exists: the last of `MARKERS` present, all before it too.
fn real_version(c: &mut postgres::Client) -> Result<i64> {
    let mut v = 0;
    for (table, column) in MARKERS {
        let present: bool = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = $1
                     AND ($2::text IS NULL OR column_name = $2))",
                &[table, column],
            )?
            .get(0);
        if !present {
            break;
        }
        v += 1;
    }
    Ok(v)
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
                Kind::Real => ty == "double precision",
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
