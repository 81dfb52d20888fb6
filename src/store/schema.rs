//! What travels between stores, typed: the tables and columns a bundle carries and a team
//! store holds, parents before children. Every copy between stores (bundle export and
//! import, team-store push and pull) goes by this list, so a column is either synced or
//! refused with an error naming it, never dropped without a word; tests hold the SQLite
//! schema and the PostgreSQL schema to it.

/// How a column's values are typed on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SQLite INTEGER, PostgreSQL BIGINT.
    Int,
    /// TEXT on both.
    Text,
    /// SQLite BLOB, PostgreSQL BYTEA.
    Bytes,
    /// SQLite REAL, PostgreSQL DOUBLE PRECISION (a metric's value).
    Real,
}

/// A synced column.
#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    /// Checked against a team store's column types (a bundle's values are not yet).
    #[cfg_attr(not(feature = "team-store"), allow(dead_code))]
    pub kind: Kind,
    /// The store schema version that added it: bundles written before lack it.
    pub since: i64,
}

/// A synced table.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// The store schema version that added it.
    pub since: i64,
}

impl Table {
    /// The column names, comma-separated, for SQL.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        since: 1,
    }
}

const fn since(name: &'static str, kind: Kind, since: i64) -> Column {
    Column { name, kind, since }
}

/// The synced tables, parents before children (as foreign keys want them inserted).
pub const SYNCED: &[Table] = &[
    Table {
        name: "artifacts",
        since: 1,
        columns: &[
            col("hash", Kind::Text),
            col("kind", Kind::Text),
            col("size", Kind::Int),
            col("file_count", Kind::Int),
        ],
    },
    Table {
        name: "dir_entries",
        since: 1,
        columns: &[
            col("dir_hash", Kind::Text),
            col("path", Kind::Text),
            col("file_hash", Kind::Text),
            col("size", Kind::Int),
            col("executable", Kind::Int),
        ],
    },
    Table {
        name: "runs",
        since: 1,
        columns: &[
            col("id", Kind::Text),
            col("status", Kind::Text),
            col("argv", Kind::Bytes),
            col("cwd", Kind::Bytes),
            col("started_at", Kind::Text),
            col("ended_at", Kind::Text),
            col("exit_code", Kind::Int),
            col("signal", Kind::Int),
            col("hostname", Kind::Text),
            col("pid", Kind::Int),
            col("boot_id", Kind::Text),
            col("git_commit", Kind::Text),
            col("git_dirty", Kind::Int),
            col("code_hash", Kind::Text),
            col("capture", Kind::Text),
            col("resources", Kind::Text),
            col("rerun_of", Kind::Text),
            Column {
                name: "pid_start",
                kind: Kind::Int,
                since: 2,
            },
        ],
    },
    Table {
        name: "edges",
        since: 1,
        columns: &[
            col("run_id", Kind::Text),
            col("role", Kind::Text),
            col("position", Kind::Int),
            col("artifact", Kind::Text),
            col("path", Kind::Text),
            col("abs_path", Kind::Text),
            col("missing", Kind::Int),
            col("changed", Kind::Int),
            Column {
                name: "written",
                kind: Kind::Int,
                since: 10,
            },
            Column {
                name: "kept",
                kind: Kind::Text,
                since: 10,
            },
            Column {
                name: "observed",
                kind: Kind::Int,
                since: 13,
            },
        ],
    },
    Table {
        name: "params",
        since: 1,
        columns: &[
            col("run_id", Kind::Text),
            col("key", Kind::Text),
            col("value", Kind::Text),
            col("source", Kind::Text),
        ],
    },
    Table {
        name: "metrics",
        since: 14,
        columns: &[
            Column {
                name: "run_id",
                kind: Kind::Text,
                since: 14,
            },
            Column {
                name: "key",
                kind: Kind::Text,
                since: 14,
            },
            Column {
                name: "value",
                kind: Kind::Real,
                since: 14,
            },
            Column {
                name: "source",
                kind: Kind::Text,
                since: 14,
            },
        ],
    },
    Table {
        name: "signatures",
        since: 9,
        columns: &[
            Column {
                name: "run_id",
                kind: Kind::Text,
                since: 9,
            },
            Column {
                name: "public_key",
                kind: Kind::Text,
                since: 9,
            },
            Column {
                name: "signature",
                kind: Kind::Text,
                since: 9,
            },
        ],
    },
    Table {
        name: "blobs",
        since: 1,
        columns: &[
            col("hash", Kind::Text),
            col("size", Kind::Int),
            col("data", Kind::Bytes),
        ],
    },
    Table {
        name: "extra_digests",
        since: 7,
        columns: &[
            col("artifact", Kind::Text),
            col("algorithm", Kind::Text),
            col("digest", Kind::Text),
        ],
    },
    Table {
        name: "annotations",
        since: 15,
        columns: &[
            since("id", Kind::Text, 15),
            since("run_id", Kind::Text, 15),
            since("kind", Kind::Text, 15),
            since("text", Kind::Text, 15),
            since("created_at", Kind::Text, 15),
            since("author", Kind::Text, 15),
            since("public_key", Kind::Text, 15),
            since("signature", Kind::Text, 15),
        ],
    },
];

/// Columns a team store keeps of its own, never synced: (table, column).
#[cfg_attr(not(feature = "team-store"), allow(dead_code))]
pub const SERVER_ONLY: &[(&str, &str)] = &[
    ("runs", "seq"),
    ("runs", "recorded_by"),
    ("annotations", "seq"),
    ("annotations", "recorded_by"),
];

/// A synced table by name.
#[cfg_attr(not(feature = "team-store"), allow(dead_code))]
pub fn table(name: &str) -> Option<&'static Table> {
    SYNCED.iter().find(|t| t.name == name)
}

/// Check the columns another database has for a synced table against the list: every
/// column it has must be known (or, on a team store, its own), and it must have every column
/// as old as its schema (`version`; None: the current one). Err: one line naming the
/// table and the column, and what to do.
pub fn check_columns(
    table: &Table,
    theirs: &[String],
    version: Option<i64>,
    own: &[(&str, &str)],
    what: &str,
) -> Result<(), String> {
    for name in theirs {
        let known =
            table.column(name).is_some() || own.iter().any(|(t, c)| *t == table.name && c == name);
        if !known {
            return Err(format!(
                "{what}: table {} has a column {name:?} this lineage does not know (written by a \
                 newer lineage?): upgrade lineage; nothing was copied",
                table.name
            ));
        }
    }
    for c in table.columns {
        let expected = version.is_none_or(|v| c.since <= v);
        if expected && !theirs.iter().any(|n| n == c.name) {
            return Err(format!(
                "{what}: table {} lacks its column {:?}: it is damaged or not a lineage store; \
                 nothing was copied",
                table.name, c.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's own schema (its migrations, applied to a new store) is the list's.
    #[test]
    fn the_sqlite_schema_has_exactly_the_synced_columns() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(super::super::Store::open(dir.path()).expect("open"));
        let conn = rusqlite::Connection::open(dir.path().join(super::super::DB_FILE)).expect("db");
        for t in SYNCED {
            let mut stmt = conn
                .prepare(&format!("PRAGMA table_info({})", t.name))
                .expect("pragma");
            let cols: Vec<(String, String)> = stmt
                .query_map([], |r| Ok((r.get(1)?, r.get(2)?)))
                .expect("query")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
            let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
            let listed: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
            assert_eq!(names, listed, "table {}", t.name);
            for (name, ty) in &cols {
                let kind = match ty.as_str() {
                    "INTEGER" => Kind::Int,
                    "BLOB" => Kind::Bytes,
                    "REAL" => Kind::Real,
                    _ => Kind::Text,
                };
                assert_eq!(
                    t.column(name).map(|c| c.kind),
                    Some(kind),
                    "{}.{name}",
                    t.name
                );
            }
        }
    }

    #[test]
    fn unknown_and_missing_columns_are_refused_by_name() {
        let runs = table("runs").expect("runs");
        let mut theirs: Vec<String> = runs.columns.iter().map(|c| c.name.to_string()).collect();
        assert!(check_columns(runs, &theirs, None, &[], "x").is_ok());
        // A bundle of schema 1 predates pid_start.
        theirs.retain(|c| c != "pid_start");
        assert!(check_columns(runs, &theirs, Some(1), &[], "x").is_ok());
        let e = check_columns(runs, &theirs, Some(2), &[], "x").expect_err("missing");
        assert!(e.contains("\"pid_start\""), "{e}");
        theirs.push("seq".into());
        assert!(check_columns(runs, &theirs, Some(1), SERVER_ONLY, "x").is_ok());
        theirs.push("signature".into());
        let e = check_columns(runs, &theirs, Some(1), SERVER_ONLY, "x").expect_err("unknown");
        assert!(
            e.contains("\"signature\"") && e.contains("table runs"),
            "{e}"
        );
    }
}
