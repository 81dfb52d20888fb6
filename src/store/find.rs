//! Finding runs by what they recorded, for `lineage list` and `lineage compare`: the filters
//! (`--where` on params and metrics, `--command`, `--status`, `--since`/`--until`,
//! `--produced`, `--read`) become one SQL statement whose rows are streamed, newest first,
//! never all runs loaded to be filtered. A condition on a param or a metric is a lookup in
//! `params_by_key` or `metrics_by_key` (the key, then its values); times use `runs_by_start`;
//! artifacts `edges_by_artifact`.
//!
//! **`--where KEY OP VALUE`.** OP is one of `=`, `!=`, `<`, `<=`, `>`, `>=`. A VALUE that is a
//! number compares as a number with params whose value is a JSON number and with metrics; any
//! other VALUE (or one in quotes, `name="100"`) compares as text with a param's text (a
//! string's characters; `true`, `false`, `null` and numbers as written), and matches no
//! metric. `params.KEY` and `metrics.KEY` name the table; a bare KEY is the run's param of
//! that name when it has one, else its metric. A run without KEY matches no condition on it,
//! `!=` included.

use std::collections::BTreeMap;

use anyhow::Result;
use rusqlite::types::Value as Sql;

use super::{Store, split_argv};
use crate::error::Error;
use crate::model::{Hash, RunSummary, Status};

/// Where a `--where` key is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Params,
    Metrics,
    /// A bare key: the run's param, or else its metric.
    Either,
}

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// What a key is compared with.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Number(f64),
    Text(String),
}

/// One `--where KEY OP VALUE`.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub table: Table,
    pub key: String,
    pub op: Op,
    pub value: Literal,
}

impl Condition {
    /// Parse `KEY OP VALUE` (see the module's documentation); a malformed one is a usage
    /// error naming it.
    pub fn parse(expr: &str) -> Result<Condition, Error> {
        let bad = |why: &str| Error::BadFilter {
            flag: "--where",
            value: expr.to_string(),
            why: why.to_string(),
        };
        let at = expr
            .find(['=', '!', '<', '>'])
            .ok_or_else(|| bad("it has no operator"))?;
        let (key, rest) = expr.split_at(at);
        let (op, value) = [
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (op, v)))
        .ok_or_else(|| bad("`!` is not an operator"))?;
        let key = key.trim();
        let value = value.trim();
        if key.is_empty() {
            return Err(bad("it names no key"));
        }
        if value.is_empty() {
            return Err(bad("it has no value"));
        }
        if value.starts_with(['=', '<', '>', '!']) {
            return Err(bad("it has two operators"));
        }
        let (table, key) = if let Some(k) = key.strip_prefix("params.") {
            (Table::Params, k)
        } else if let Some(k) = key.strip_prefix("metrics.") {
            (Table::Metrics, k)
        } else {
            (Table::Either, key)
        };
        if key.is_empty() {
            return Err(bad("it names no key after the table"));
        }
        let quoted = [('"', '"'), ('\'', '\'')].iter().find_map(|(open, close)| {
            value
                .strip_prefix(*open)
                .and_then(|v| v.strip_suffix(*close))
                .filter(|_| value.len() >= 2)
        });
        let value = match quoted {
            Some(text) => Literal::Text(text.to_string()),
            None => match value.parse::<f64>() {
                Ok(n) if n.is_finite() && !value.starts_with(['i', 'I', 'n', 'N', '+']) => {
                    Literal::Number(n)
                }
                _ => Literal::Text(value.to_string()),
            },
        };
        Ok(Condition {
            table,
            key: key.to_string(),
            op,
            value,
        })
    }
}

/// Which runs to find. Every field set must hold (AND).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// `--where` conditions on params and metrics.
    pub conditions: Vec<Condition>,
    /// `--command`: a substring of the recorded command line.
    pub command: Option<String>,
    /// `--status`.
    pub status: Option<Status>,
    /// `--since`: started at or after this time, as the store writes times.
    pub since: Option<String>,
    /// `--until`: started at or before this time, as the store writes times.
    pub until: Option<String>,
    /// `--produced`: wrote these bytes (or a directory holding them).
    pub produced: Option<Hash>,
    /// `--read`: read these bytes (or a directory holding them).
    pub read: Option<Hash>,
    /// Only these runs (full ids): `compare RUN...`.
    pub ids: Option<Vec<String>>,
    /// `--tag NAME`: the run the tag names now (None inside: the tag names no run).
    pub tagged: Option<Option<String>>,
}

/// A condition's SQL on one param row `p` (its `value` a JSON scalar): the value as a number
/// (NULL for anything else), and as text.
const PARAM_NUMBER: &str = "CASE WHEN json_valid(value) THEN CASE WHEN json_type(value) IN \
    ('integer', 'real') THEN CAST(value AS REAL) END END";
const PARAM_TEXT: &str = "CASE WHEN json_valid(value) THEN CASE WHEN json_type(value) = 'text' \
    THEN json_extract(value, '$') ELSE value END ELSE value END";

/// The runs that wrote (`role`: outputs, only where the job wrote them) or read (inputs,
/// configs) the artifact `?1`: by its own edge, by a directory holding it (a file the
/// run kept as it was excepted), or by a directory holding the directory it is.
fn touching(role: &str) -> String {
    format!(
        "r.id IN (SELECT e.run_id FROM edges e WHERE e.artifact = ?1 AND {role}
         UNION SELECT e.run_id FROM dir_manifest d
           CROSS JOIN edges e ON e.artifact = lower(hex(d.dir_hash)) AND {role}
             AND (e.kept IS NULL OR d.path NOT IN (SELECT value FROM json_each(e.kept)))
           WHERE d.file_hash = unhex(?1) AND d.size > 0
         UNION SELECT e.run_id FROM dir_subdirs d
           CROSS JOIN edges e ON e.artifact = d.dir_hash AND {role}
           WHERE d.sub_hash = ?1)"
    )
}

/// `touching`'s roles.
const WROTE: &str = "e.role = 'output' AND e.written IS NOT 0";
const READ: &str = "e.role IN ('input', 'config')";

impl Filter {
    /// The SQL condition on `runs r` (or `1` for none) and its arguments, in order: each `?N`
    /// in a part numbered from 1 is renumbered as the arguments accumulate.
    fn sql(&self) -> (String, Vec<Sql>) {
        let mut parts: Vec<String> = Vec::new();
        let mut args: Vec<Sql> = Vec::new();
        let mut push = |sql: String, mut part_args: Vec<Sql>| {
            parts.push(renumber(&sql, args.len()));
            args.append(&mut part_args);
        };
        for c in &self.conditions {
            let (sql, value) = condition_sql(c);
            push(sql, vec![Sql::Text(c.key.clone()), value]);
        }
        if let Some(sub) = &self.command {
            let joined = sub.replace(' ', "\0");
            push(
                "(instr(r.argv, CAST(?1 AS BLOB)) > 0 OR instr(r.argv, ?2) > 0)".into(),
                vec![Sql::Text(sub.clone()), Sql::Blob(joined.into_bytes())],
            );
        }
        if let Some(status) = self.status {
            push(
                "r.status = ?1".into(),
                vec![Sql::Text(status.as_str().into())],
            );
        }
        if let Some(since) = &self.since {
            push("r.started_at >= ?1".into(), vec![Sql::Text(since.clone())]);
        }
        if let Some(until) = &self.until {
            push("r.started_at <= ?1".into(), vec![Sql::Text(until.clone())]);
        }
        if let Some(hash) = &self.produced {
            push(touching(WROTE), vec![Sql::Text(hash.to_hex())]);
        }
        if let Some(hash) = &self.read {
            push(touching(READ), vec![Sql::Text(hash.to_hex())]);
        }
        if let Some(tagged) = &self.tagged {
            match tagged {
                Some(id) => push("r.id = ?1".into(), vec![Sql::Text(id.clone())]),
                None => push("0".into(), Vec::new()),
            }
        }
        if let Some(ids) = &self.ids {
            push(
                "r.id IN (SELECT value FROM json_each(?1))".into(),
                vec![Sql::Text(
                    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()),
                )],
            );
        }
        if parts.is_empty() {
            return ("1".into(), args);
        }
        (parts.join("\n   AND "), args)
    }
}

/// `sql` with each `?N` made `?(N + base)`: a part's own arguments numbered from 1, after
/// the `base` arguments of the parts before it.
fn renumber(sql: &str, base: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('?') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(n) = rest[..digits].parse::<usize>() {
            out.push_str(&(n + base).to_string());
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// One condition's SQL (`?1` the key, `?2` the value) and its value's argument.
fn condition_sql(c: &Condition) -> (String, Sql) {
    let op = c.op.sql();
    let (param, metric, value) = match &c.value {
        Literal::Number(n) => (
            format!("{PARAM_NUMBER} {op} ?2"),
            Some(format!("value {op} ?2")),
            Sql::Real(*n),
        ),
        // A metric is a number: no text is one.
        Literal::Text(t) => (format!("{PARAM_TEXT} {op} ?2"), None, Sql::Text(t.clone())),
    };
    let params = format!("r.id IN (SELECT run_id FROM params WHERE key = ?1 AND {param})");
    let metrics =
        metric.map(|m| format!("r.id IN (SELECT run_id FROM metrics WHERE key = ?1 AND {m})"));
    let sql = match (c.table, metrics) {
        (Table::Params, _) | (Table::Either, None) => params,
        (Table::Metrics, Some(metrics)) => metrics,
        // ?1 and ?2 stay numbered: the arguments are given either way.
        (Table::Metrics, None) => "(0 AND ?1 IS NULL AND ?2 IS NULL)".into(),
        (Table::Either, Some(metrics)) => format!(
            "({params} OR (r.id NOT IN (SELECT run_id FROM params WHERE key = ?1) AND {metrics}))"
        ),
    };
    (sql, value)
}

/// Which params and metrics to bring with each run found (`--columns`): SQLite GLOB patterns
/// over their keys (`train.*`); none: nothing.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    pub params: Vec<String>,
    pub metrics: Vec<String>,
}

impl Extra {
    pub fn is_empty(&self) -> bool {
        self.params.is_empty() && self.metrics.is_empty()
    }
}

/// A run found, with its short id, the short id of the run it reran, and the params and
/// metrics `Extra` asked for (key order).
#[derive(Clone, Debug)]
pub struct Found {
    pub run: RunSummary,
    pub short: String,
    pub rerun_short: Option<String>,
    pub params: BTreeMap<String, serde_json::Value>,
    pub metrics: BTreeMap<String, f64>,
}

/// How `find_each` makes short ids: by the exact query for each batch (few runs), or, for
/// many, from the tails that collide, found once for the whole store ([`Store::collisions`]):
/// a UUID whose last 8 digits collide with nothing is its last 8 digits; the rest are made
/// exactly.
#[derive(Clone, Debug, Default)]
pub enum ShortIds {
    #[default]
    Exact,
    /// Exact for the first [`MANY`] runs, then from the collisions (found once there).
    Auto,
    Collisions(std::collections::HashSet<String>),
}

/// With `ShortIds::Auto`, the collisions are looked for once this many runs were found.
pub const MANY: usize = 4096;

/// Runs found are handed on in batches of this many, with their short ids made in one query.
const BATCH: usize = 256;

/// The SQL of `key GLOB ? OR ...` over `n` patterns numbered from `first`, or `0` for none.
fn globs(first: usize, n: usize) -> String {
    if n == 0 {
        return "0".into();
    }
    (first..first + n)
        .map(|i| format!("key GLOB ?{i}"))
        .collect::<Vec<_>>()
        .join(" OR ")
}

impl Store {
    /// Hand each run that `filter` selects to `each`, newest first, at most `limit`, with its
    /// short id and the params and metrics `extra` asks for: streamed from the statement in
    /// batches, never every run in memory. `each` returns false to stop.
    pub fn find_each(
        &self,
        filter: &Filter,
        limit: Option<usize>,
        extra: &Extra,
        short_ids: &ShortIds,
        mut each: impl FnMut(Found) -> Result<bool>,
    ) -> Result<ShortIds> {
        let mut short_ids = short_ids.clone();
        let mut seen = 0;
        let (cond, mut args) = filter.sql();
        let n = args.len();
        let params_at = n + 2;
        let metrics_at = params_at + extra.params.len();
        let (params_col, metrics_col) = if extra.is_empty() {
            ("NULL".to_string(), "NULL".to_string())
        } else {
            (
                format!(
                    "(SELECT json_group_object(key, CASE WHEN json_valid(value) THEN json(value) \
                     ELSE value END) FROM (SELECT key, value FROM params WHERE run_id = r.id \
                     AND ({}) ORDER BY key))",
                    globs(params_at, extra.params.len())
                ),
                format!(
                    // 17 significant digits: every double read back exactly (SQLite's JSON
                    // writes fewer, and a metric shown one unit in the last place off would
                    // not find itself in `--where`).
                    "(SELECT json_group_object(key, json(printf('%!.17g', value))) FROM \
                     (SELECT key, value FROM metrics WHERE run_id = r.id AND ({}) ORDER BY key))",
                    globs(metrics_at, extra.metrics.len())
                ),
            )
        };
        let sql = format!(
            "SELECT r.id, r.status, r.argv, r.started_at, r.ended_at, r.exit_code, r.rerun_of,
                    (SELECT json_group_array(path) FROM
                        (SELECT path FROM edges WHERE run_id = r.id AND role = 'output'
                         ORDER BY position)),
                    {params_col}, {metrics_col}
             FROM runs r
             WHERE {cond}
             ORDER BY r.id DESC LIMIT ?{}",
            n + 1
        );
        args.push(Sql::Integer(limit.map_or(-1, |l| l as i64)));
        args.extend(extra.params.iter().cloned().map(Sql::Text));
        args.extend(extra.metrics.iter().cloned().map(Sql::Text));
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut batch: Vec<Found> = Vec::with_capacity(BATCH);
        let mut flush = |batch: &mut Vec<Found>| -> Result<bool> {
            seen += batch.len();
            if matches!(short_ids, ShortIds::Auto) && seen >= MANY {
                short_ids = self.collisions()?;
            }
            let ids: Vec<&str> = batch
                .iter()
                .flat_map(|f| std::iter::once(f.run.id.as_str()).chain(f.run.rerun_of.as_deref()))
                .collect();
            let shorts = match &short_ids {
                ShortIds::Exact | ShortIds::Auto => self.short_ids(&ids)?,
                ShortIds::Collisions(tails) => {
                    let plain = |id: &str| {
                        super::query::is_uuid(id) && !tails.contains(&id[id.len() - 8..])
                    };
                    let exact: Vec<&str> = ids.iter().copied().filter(|id| !plain(id)).collect();
                    let mut shorts = self.short_ids(&exact)?;
                    for id in ids.iter().filter(|id| plain(id)) {
                        shorts.insert(id.to_string(), id[id.len() - 8..].to_string());
                    }
                    shorts
                }
            };
            let short_of = |id: &str| shorts.get(id).cloned().unwrap_or_else(|| id.to_string());
            for mut found in batch.drain(..) {
                found.short = short_of(&found.run.id);
                found.rerun_short = found.run.rerun_of.as_deref().map(short_of);
                if !each(found)? {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let status: String = r.get(1)?;
            let outputs: String = r.get(7)?;
            let params: Option<String> = r.get(8)?;
            let metrics: Option<String> = r.get(9)?;
            let run = RunSummary {
                status: super::query::parse_status(&id, &status)?,
                id,
                argv: split_argv(&r.get::<_, Vec<u8>>(2)?),
                started_at: r.get(3)?,
                ended_at: r.get(4)?,
                exit_code: r.get(5)?,
                rerun_of: r.get(6)?,
                // SQLite's json_group_array of text: always a JSON array of strings.
                outputs: serde_json::from_str(&outputs)?,
                group: None,
            };
            batch.push(Found {
                run,
                short: String::new(),
                rerun_short: None,
                params: params
                    .map(|p| serde_json::from_str(&p))
                    .transpose()?
                    .unwrap_or_default(),
                metrics: metrics
                    .map(|m| serde_json::from_str(&m))
                    .transpose()?
                    .unwrap_or_default(),
            });
            if batch.len() == BATCH && !flush(&mut batch)? {
                break;
            }
        }
        if !batch.is_empty() {
            flush(&mut batch)?;
        }
        Ok(short_ids)
    }

    /// The last 8 digits that more than one run's id ends with, or that some run's id starts
    /// with: only ids ending with these have a short id longer than 8 digits. Two scans of
    /// the ids' index, for listing many runs (the exact query costs four lookups a run).
    pub fn collisions(&self) -> Result<ShortIds> {
        let mut stmt = self.conn.prepare(
            "SELECT t FROM (SELECT substr(id, -8) t FROM (SELECT id FROM runs ORDER BY id)
                            GROUP BY t HAVING count(*) > 1)
             UNION
             SELECT t FROM (SELECT substr(id, 1, 8) t FROM runs
                            INTERSECT SELECT substr(id, -8) FROM runs)",
        )?;
        let tails = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ShortIds::Collisions(tails))
    }

    /// How many runs `filter` selects.
    pub fn count(&self, filter: &Filter) -> Result<u64> {
        let (cond, args) = filter.sql();
        let n: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM runs r WHERE {cond}"),
            rusqlite::params_from_iter(args),
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// The metrics of runs by id (key order): id -> (key, value).
    pub fn metrics_of(&self, ids: &[&str]) -> Result<BTreeMap<String, Vec<(String, f64)>>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT run_id, key, value FROM metrics
             WHERE run_id IN (SELECT value FROM json_each(?1)) ORDER BY run_id, key",
        )?;
        let rows = stmt.query_map([serde_json::to_string(ids)?], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, f64>(2)?,
            ))
        })?;
        let mut out: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for row in rows {
            let (id, key, value) = row?;
            out.entry(id).or_default().push((key, value));
        }
        Ok(out)
    }

    /// Run `f` inside one read transaction: every statement in it sees the same runs, even
    /// while another lineage records one (`list` reads the runs twice: widths, then rows).
    pub fn snapshot<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN DEFERRED")?;
        let out = f(self);
        let _ = self.conn.execute_batch("COMMIT");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_expressions_parse_into_table_key_operator_and_value() {
        let c = |s: &str| Condition::parse(s).expect(s);
        assert_eq!(
            c("train.n_est=100"),
            Condition {
                table: Table::Either,
                key: "train.n_est".into(),
                op: Op::Eq,
                value: Literal::Number(100.0)
            }
        );
        assert_eq!(c("metrics.acc >= 0.9").table, Table::Metrics);
        assert_eq!(c("metrics.acc >= 0.9").op, Op::Ge);
        assert_eq!(c("params.opt!=adam").value, Literal::Text("adam".into()));
        assert_eq!(c("params.opt!=adam").op, Op::Ne);
        assert_eq!(c("n=\"100\"").value, Literal::Text("100".into()));
        assert_eq!(c("n<1e-3").value, Literal::Number(0.001));
        assert_eq!(c("n==-2").value, Literal::Number(-2.0));
        assert_eq!(c("n=nan").value, Literal::Text("nan".into()));
        assert_eq!(c("path=a=b").value, Literal::Text("a=b".into()));
        for bad in [
            "lr",
            "=3",
            "lr=",
            "lr=>3",
            "lr!3",
            "params.=1",
            "metrics.<2",
        ] {
            assert!(
                matches!(Condition::parse(bad), Err(Error::BadFilter { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn arguments_are_renumbered_after_those_before() {
        assert_eq!(
            renumber("a = ?1 AND b IN (?2, ?1)", 9),
            "a = ?10 AND b IN (?11, ?10)"
        );
        assert_eq!(renumber("?1 ?12", 0), "?1 ?12");
    }

    /// The plan of the SQL `find_each` runs for `filter`.
    fn plan(store: &Store, filter: &Filter) -> Vec<String> {
        let (cond, args) = filter.sql();
        let sql =
            format!("EXPLAIN QUERY PLAN SELECT r.id FROM runs r WHERE {cond} ORDER BY r.id DESC");
        let mut stmt = store.conn.prepare(&sql).expect("prepare");
        stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    }

    #[test]
    fn filters_look_params_metrics_and_artifacts_up_by_their_indexes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let where_ = |s: &str| Filter {
            conditions: vec![Condition::parse(s).expect(s)],
            ..Filter::default()
        };
        for (filter, index) in [
            (where_("params.lr>0.1"), "params_by_key"),
            (where_("metrics.acc>=0.9"), "metrics_by_key"),
            (where_("opt=adam"), "params_by_key"),
            (where_("acc>0.5"), "metrics_by_key"),
            (
                Filter {
                    produced: Some(Hash::of(b"x")),
                    ..Filter::default()
                },
                "edges_by_artifact",
            ),
            (
                Filter {
                    since: Some("2026-11-01T00:00:00.000000Z".into()),
                    ..Filter::default()
                },
                "",
            ),
        ] {
            let plan = plan(&store, &filter);
            assert!(
                plan.iter().any(|p| p.contains(index))
                    && !plan.iter().any(|p| p.starts_with("SCAN params")
                        || p.starts_with("SCAN metrics")
                        || p.starts_with("SCAN edges")),
                "{filter:?}: {plan:?}"
            );
        }
    }

    #[test]
    fn short_ids_from_collisions_are_the_exact_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        for id in [
            "01a20000-0000-7000-8000-00000000000a",
            "01a30000-0000-7000-8000-00050000000a",
            "01a2ffff-0000-7000-8000-00000000000c",
            "0000000c-0000-7000-8000-0000000000ee",
            "01a20000-0000-7000-8000-00000000000b",
            "not-a-uuid-at-all",
        ] {
            store
                .conn
                .execute(
                    "INSERT INTO runs (id, status, argv, cwd, started_at, capture)
                     VALUES (?1, 'succeeded', x'74727565', x'2f', '2026-11-01T00:00:00.000000Z', '{}')",
                    [id],
                )
                .expect("insert");
        }
        let shorts = |how: &ShortIds| {
            let mut out = Vec::new();
            store
                .find_each(&Filter::default(), None, &Extra::default(), how, |f| {
                    out.push((f.run.id, f.short));
                    Ok(true)
                })
                .expect("find");
            out
        };
        let exact = shorts(&ShortIds::Exact);
        assert_eq!(shorts(&store.collisions().expect("collisions")), exact);
        assert!(exact.iter().any(|(_, s)| s == "0000000b"), "{exact:?}");
        assert!(exact.iter().any(|(_, s)| s == "00000000a"), "{exact:?}");
    }

    #[test]
    fn a_filter_on_no_field_selects_every_run() {
        let (sql, args) = Filter::default().sql();
        assert_eq!((sql.as_str(), args.len()), ("1", 0));
    }
}
