//! `lineage compare RUN... | --where ...`: runs side by side, a row a run and a column a
//! param or metric whose values differ (`--all`: every one), like `dvc exp show`. Not to be
//! confused with `crate::compare`, the engine of `lineage diff` (two runs, everything).

use std::cmp::Ordering;

use anyhow::Result;

use super::Context;
use super::list::{columns, filter, filter_is_empty};
use crate::cli::{CompareArgs, CompareFormat};
use crate::error::Error;
use crate::output::compare_runs::{self, Cellv, Column, Compared, Kind};
use crate::store::find::{Condition, Found, Literal, ShortIds, Table};
use crate::ui;

pub fn compare(args: CompareArgs, ctx: &Context) -> Result<()> {
    let store = ctx.open_store()?;
    let mut filter = filter(&store, &args.find)?;
    let mut order = Vec::new();
    if !args.runs.is_empty() {
        for run in &args.runs {
            let id = store.resolve(Some(run))?;
            if !order.contains(&id) {
                order.push(id);
            }
        }
        filter.ids = Some(order.clone());
    }
    let sort = args.sort.as_deref().map(sort_key).transpose()?;
    let (mut extra, named) = columns(args.columns.as_deref())?;
    if args.columns.is_none() {
        extra.params.push("*".into());
        extra.metrics.push("*".into());
    }
    let mut found: Vec<Found> = Vec::new();
    // Sorted, `-n N` keeps the first N by the key (the best N), not the newest N.
    let limit = if sort.is_some() { None } else { args.limit };
    store.find_each(&filter, limit, &extra, &ShortIds::Exact, |f| {
        found.push(f);
        Ok(true)
    })?;
    if found.is_empty() {
        if filter_is_empty(&args.find) && args.runs.is_empty() {
            ui::info(format_args!(
                "no runs recorded yet in {}",
                ctx.store_dir().display()
            ));
        } else {
            ui::info("no run matches these filters");
        }
        return Ok(());
    }
    // Runs named on the command line keep their order; found ones are newest first.
    if !order.is_empty() {
        found.sort_by_key(|f| order.iter().position(|id| *id == f.run.id));
    }
    let mut runs: Vec<Compared> = found
        .iter()
        .map(|f| Compared {
            run: &f.run,
            short: &f.short,
            params: &f.params,
            metrics: &f.metrics,
        })
        .collect();
    if let Some(key) = &sort {
        // Stable: runs with equal values keep their order; runs without one come last.
        runs.sort_by(|a, b| match (sort_value(a, key), sort_value(b, key)) {
            (Some(x), Some(y)) => {
                let o = cmp_values(&x, &y);
                if args.desc { o.reverse() } else { o }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        });
        if !runs.iter().any(|r| sort_value(r, key).is_some()) {
            ui::warn(format_args!(
                "no run here has {}: nothing to sort by (`lineage compare --all` lists the keys)",
                ui::escape(args.sort.as_deref().unwrap_or_default())
            ));
        }
        if let Some(n) = args.limit {
            runs.truncate(n);
        }
    }
    let mut named: Vec<Column> = named
        .params
        .iter()
        .map(|k| Column {
            kind: Kind::Param,
            key: k.clone(),
        })
        .chain(named.metrics.iter().map(|k| Column {
            kind: Kind::Metric,
            key: k.clone(),
        }))
        .collect();
    // The sort key is always shown, differing or not.
    if let Some(key) = &sort {
        let kind = match key.table {
            crate::store::find::Table::Params => Kind::Param,
            crate::store::find::Table::Metrics => Kind::Metric,
            crate::store::find::Table::Either => {
                if runs.iter().any(|r| r.params.contains_key(&key.key)) {
                    Kind::Param
                } else {
                    Kind::Metric
                }
            }
        };
        if !named.iter().any(|c| c.kind == kind && c.key == key.key) {
            named.push(Column {
                kind,
                key: key.key.clone(),
            });
        }
    }
    // With --columns, the columns asked for are shown whether they differ or not.
    let all = args.all || args.columns.is_some();
    let cols = compare_runs::columns(&runs, all, &named);
    let format = if args.json {
        CompareFormat::Json
    } else {
        args.format
    };
    let text = match format {
        CompareFormat::Table => compare_runs::table(&runs, &cols, ctx.color),
        // CSV is for files and programs; on a terminal its text is made inert as every
        // table's is (a line at a time, so that the rows stay rows).
        CompareFormat::Csv if ui::stdout_is_terminal() => compare_runs::csv(&runs, &cols)
            .lines()
            .map(|l| crate::model::text::escape(l).into_owned() + "\n")
            .collect(),
        CompareFormat::Csv => compare_runs::csv(&runs, &cols),
        CompareFormat::Markdown => compare_runs::markdown(&runs, &cols),
        CompareFormat::Json => compare_runs::json(&runs, &cols)?,
    };
    ui::data(&text);
    if cols.is_empty() && format == CompareFormat::Table && runs.len() > 1 && !all {
        ui::info("these runs have the same params and metrics (--all shows them)");
    }
    Ok(())
}

/// `--sort KEY`: `params.KEY`, `metrics.KEY`, or a bare KEY (the run's param, else its
/// metric); parsed as a `--where` key is.
fn sort_key(key: &str) -> Result<Condition, Error> {
    let bad = || Error::BadFilter {
        flag: "--sort",
        value: key.to_string(),
        why: "it is not a param or metric key".into(),
    };
    if key.contains(['=', '!', '<', '>']) {
        return Err(bad());
    }
    Condition::parse(&format!("{key}=0")).map_err(|_| bad())
}

/// A run's value of the sort key.
fn sort_value<'a>(r: &'a Compared, key: &Condition) -> Option<Cellv<'a>> {
    let param = || r.params.get(&key.key).map(Cellv::Param);
    let metric = || r.metrics.get(&key.key).map(|v| Cellv::Metric(*v));
    match key.table {
        Table::Params => param(),
        Table::Metrics => metric(),
        Table::Either => param().or_else(metric),
    }
}

/// A value as a number where it is one, else as text.
fn literal(v: &Cellv) -> Literal {
    match v {
        Cellv::Metric(n) => Literal::Number(*n),
        Cellv::Param(serde_json::Value::Number(n)) => {
            Literal::Number(n.as_f64().unwrap_or(f64::NAN))
        }
        Cellv::Param(serde_json::Value::String(s)) => Literal::Text(s.clone()),
        Cellv::Param(other) => Literal::Text(other.to_string()),
    }
}

/// Numbers by value, before texts, which compare by their characters.
fn cmp_values(a: &Cellv, b: &Cellv) -> Ordering {
    match (literal(a), literal(b)) {
        (Literal::Number(x), Literal::Number(y)) => x.total_cmp(&y),
        (Literal::Number(_), Literal::Text(_)) => Ordering::Less,
        (Literal::Text(_), Literal::Number(_)) => Ordering::Greater,
        (Literal::Text(x), Literal::Text(y)) => x.cmp(&y),
    }
}
