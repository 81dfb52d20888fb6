//! `lineage compare`: runs side by side, a row a run and a column a param or metric, as a
//! table for people (every text escaped for the terminal), CSV (RFC 4180, with text a
//! spreadsheet would run as a formula defused), Markdown, or JSON. Which columns differ
//! between the runs is decided here too ([`columns`]).

use std::collections::{BTreeMap, BTreeSet};

use comfy_table::presets::UTF8_HORIZONTAL_ONLY;
use comfy_table::{Cell, ContentArrangement, Table};
use serde::Serialize;
use serde_json::Value;

use super::ago;
use super::table::{metric_text, param_text};
use crate::model::RunSummary;
use crate::model::text::escape;

/// Which table a column's key is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Param,
    Metric,
}

/// A column: a param or a metric, by key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Column {
    pub kind: Kind,
    pub key: String,
}

impl Column {
    /// `params.KEY` or `metrics.KEY`.
    pub fn name(&self) -> String {
        match self.kind {
            Kind::Param => format!("params.{}", self.key),
            Kind::Metric => format!("metrics.{}", self.key),
        }
    }
}

/// One run compared.
pub struct Compared<'a> {
    pub run: &'a RunSummary,
    pub short: &'a str,
    pub params: &'a BTreeMap<String, Value>,
    pub metrics: &'a BTreeMap<String, f64>,
}

/// A cell's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Cellv<'a> {
    Param(&'a Value),
    Metric(f64),
}

impl Compared<'_> {
    /// The run's value in a column, if it has one.
    pub fn value(&self, c: &Column) -> Option<Cellv<'_>> {
        match c.kind {
            Kind::Param => self.params.get(&c.key).map(Cellv::Param),
            Kind::Metric => self.metrics.get(&c.key).map(|v| Cellv::Metric(*v)),
        }
    }

    fn text(&self, c: &Column) -> Option<String> {
        self.value(c).map(|v| match v {
            Cellv::Param(v) => param_text(v),
            Cellv::Metric(v) => metric_text(v),
        })
    }
}

/// The columns to show: every param and metric the runs have (params first, each by key),
/// and, unless `all`, only those whose values are not the same in every run (a run without
/// one differs from a run with it). `named` columns are shown whatever their values.
pub fn columns(runs: &[Compared], all: bool, named: &[Column]) -> Vec<Column> {
    let mut every: BTreeSet<Column> = named.iter().cloned().collect();
    for r in runs {
        every.extend(r.params.keys().map(|k| Column {
            kind: Kind::Param,
            key: k.clone(),
        }));
        every.extend(r.metrics.keys().map(|k| Column {
            kind: Kind::Metric,
            key: k.clone(),
        }));
    }
    every
        .into_iter()
        .filter(|c| {
            all || named.contains(c) || {
                let first = runs.first().map(|r| r.value(c));
                runs.iter().any(|r| Some(r.value(c)) != first)
            }
        })
        .collect()
}

const FIXED: [&str; 3] = ["run", "when", "status"];

/// The table for people: every text escaped for the terminal; `-` where a run has no value.
pub fn table(runs: &[Compared], columns: &[Column], color: bool) -> String {
    let now = jiff::Timestamp::now();
    let mut t = Table::new();
    t.load_style(UTF8_HORIZONTAL_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_header(
        FIXED
            .iter()
            .map(|h| h.to_string())
            .chain(columns.iter().map(|c| escape(&c.name()).into_owned())),
    );
    for r in runs {
        let mut row = vec![
            Cell::new(escape(r.short)),
            Cell::new(escape(&ago(&r.run.started_at, now))),
            Cell::new(r.run.status.as_str()),
        ];
        row.extend(columns.iter().map(|c| {
            Cell::new(
                r.text(c)
                    .map_or_else(|| "-".to_string(), |t| escape(&t).into_owned()),
            )
        }));
        t.add_row(row);
    }
    t.to_string() + "\n"
}

/// A CSV field: quoted when it holds a comma, a quote or a line break (quotes doubled); a
/// text a spreadsheet would take for a formula (starting with = + - @, a tab or a carriage
/// return) is prefixed with `'` (OWASP's advice), unless it is a plain number.
fn csv_field(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err();
    let s = if formula {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// CSV (RFC 4180, CRLF line ends): run, started_at, status, then the columns; empty where a
/// run has no value.
pub fn csv(runs: &[Compared], columns: &[Column]) -> String {
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        out += &cells
            .iter()
            .map(|c| csv_field(c))
            .collect::<Vec<_>>()
            .join(",");
        out += "\r\n";
    };
    line(
        ["run", "started_at", "status"]
            .iter()
            .map(|h| h.to_string())
            .chain(columns.iter().map(Column::name))
            .collect(),
    );
    for r in runs {
        line(
            [
                r.short.to_string(),
                r.run.started_at.clone(),
                r.run.status.as_str().to_string(),
            ]
            .into_iter()
            .chain(columns.iter().map(|c| r.text(c).unwrap_or_default()))
            .collect(),
        );
    }
    out
}

/// A Markdown table cell: `|` and `\` escaped, line breaks as spaces, control characters
/// made visible.
fn md_cell(s: &str) -> String {
    // HTML is inert too: a renderer that allows it would run `<img onerror=...>`.
    escape(&s.replace(['\n', '\r'], " "))
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Markdown (GitHub) table: run, started_at, status, then the columns; `-` where a run
/// has no value.
pub fn markdown(runs: &[Compared], columns: &[Column]) -> String {
    let header: Vec<String> = ["run", "started_at", "status"]
        .iter()
        .map(|h| h.to_string())
        .chain(columns.iter().map(Column::name))
        .collect();
    let mut out = format!(
        "| {} |\n|{}|\n",
        header
            .iter()
            .map(|h| md_cell(h))
            .collect::<Vec<_>>()
            .join(" | "),
        vec!["---"; header.len()].join("|")
    );
    for r in runs {
        let cells: Vec<String> = [
            r.short.to_string(),
            r.run.started_at.clone(),
            r.run.status.as_str().to_string(),
        ]
        .into_iter()
        .chain(
            columns
                .iter()
                .map(|c| r.text(c).unwrap_or_else(|| "-".into())),
        )
        .map(|c| md_cell(&c))
        .collect();
        out += &format!("| {} |\n", cells.join(" | "));
    }
    out
}

#[derive(Serialize)]
struct CompareJson<'a> {
    columns: Vec<String>,
    runs: Vec<RunJson<'a>>,
}

#[derive(Serialize)]
struct RunJson<'a> {
    id: &'a str,
    short_id: &'a str,
    status: &'static str,
    started_at: &'a str,
    command: Vec<String>,
    params: BTreeMap<&'a str, Option<&'a Value>>,
    metrics: BTreeMap<&'a str, Option<f64>>,
}

/// One JSON object: the columns shown, and each run with its values in them (null where it
/// has none).
pub fn json(runs: &[Compared], columns: &[Column]) -> serde_json::Result<String> {
    let doc = CompareJson {
        columns: columns.iter().map(Column::name).collect(),
        runs: runs
            .iter()
            .map(|r| RunJson {
                id: &r.run.id,
                short_id: r.short,
                status: r.run.status.as_str(),
                started_at: &r.run.started_at,
                command: r
                    .run
                    .argv
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
                params: columns
                    .iter()
                    .filter(|c| c.kind == Kind::Param)
                    .map(|c| (c.key.as_str(), r.params.get(&c.key)))
                    .collect(),
                metrics: columns
                    .iter()
                    .filter(|c| c.kind == Kind::Metric)
                    .map(|c| (c.key.as_str(), r.metrics.get(&c.key).copied()))
                    .collect(),
            })
            .collect(),
    };
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    fn summary(id: &str) -> RunSummary {
        RunSummary {
            id: id.into(),
            status: Status::Succeeded,
            argv: vec![b"train".to_vec()],
            started_at: "2026-11-01T00:00:00.000000Z".into(),
            ended_at: None,
            exit_code: Some(0),
            outputs: vec![],
            rerun_of: None,
            group: None,
        }
    }

    #[test]
    fn only_columns_that_differ_unless_all() {
        let (a, b) = (summary("a"), summary("b"));
        let pa = BTreeMap::from([
            ("lr".to_string(), serde_json::json!(0.1)),
            ("seed".to_string(), serde_json::json!(1)),
        ]);
        let pb = BTreeMap::from([
            ("lr".to_string(), serde_json::json!(0.2)),
            ("seed".to_string(), serde_json::json!(1)),
        ]);
        let ma = BTreeMap::from([("acc".to_string(), 0.9)]);
        let mb = BTreeMap::new();
        let runs = [
            Compared {
                run: &a,
                short: "a",
                params: &pa,
                metrics: &ma,
            },
            Compared {
                run: &b,
                short: "b",
                params: &pb,
                metrics: &mb,
            },
        ];
        let names = |cs: Vec<Column>| cs.iter().map(Column::name).collect::<Vec<_>>();
        assert_eq!(
            names(columns(&runs, false, &[])),
            ["params.lr", "metrics.acc"]
        );
        assert_eq!(
            names(columns(&runs, true, &[])),
            ["params.lr", "params.seed", "metrics.acc"]
        );
        let seed = Column {
            kind: Kind::Param,
            key: "seed".into(),
        };
        assert_eq!(
            names(columns(&runs, false, std::slice::from_ref(&seed))),
            ["params.lr", "params.seed", "metrics.acc"]
        );
        let csv = csv(&runs, &columns(&runs, false, &[]));
        assert_eq!(
            csv.lines().nth(2),
            Some("b,2026-11-01T00:00:00.000000Z,succeeded,0.2,")
        );
    }

    #[test]
    fn csv_quotes_and_defuses_formulas_and_markdown_escapes_pipes() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("+1+cmd"), "'+1+cmd");
        assert_eq!(csv_field("-0.5"), "-0.5", "a number is no formula");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(md_cell("a|b"), "a\\|b");
        assert_eq!(md_cell("two\nlines"), "two lines");
        assert_eq!(md_cell("\u{1b}[31m"), "\\\\x1b[31m");
    }
}
