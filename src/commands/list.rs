//! `lineage list` (alias `log`): recorded runs, newest first, found by the filters `list`
//! and `compare` share (`--where`, `--command`, `--status`, `--since`, `--until`,
//! `--produced`, `--read`: `store::find`).
//!
//! Into a pipe or a file every run is printed, streamed from the store in constant memory:
//! JSON an item at a time; the table in two passes over one read snapshot, the first
//! measuring the columns, the second printing. On a terminal, the newest [`SCREENFUL`] (a
//! line on stderr says how many there are), as a table wrapped to the terminal's width.

use std::collections::BTreeSet;
use std::ffi::OsString;

use anyhow::Result;

use super::Context;
use super::target::{self, Reading, Target};
use crate::cli::{FindArgs, ListArgs, StatusArg};
use crate::error::Error;
use crate::model::Status;
use crate::output::table::{ListColumns, ListEntry, ListStream};
use crate::store::Store;
use crate::store::find::{Condition, Extra, Filter, Found, ShortIds};
use crate::{output, ui};

/// How many runs `list` shows on a terminal without `-n` or `--all`.
pub const SCREENFUL: usize = 20;

/// Up to this many runs on a terminal are drawn as one table wrapped to its width; more are
/// streamed.
const GATHERED: usize = 1000;

/// Stdout is written in pieces of about this many bytes.
const CHUNK: usize = 64 * 1024;

pub fn list(args: ListArgs, ctx: &Context) -> Result<()> {
    let store = ctx.open_store()?;
    let filter = filter(&store, &args.find)?;
    let (extra, named) = columns(args.columns.as_deref())?;
    let terminal = ui::stdout_is_terminal();
    let limit = match (args.limit, args.all) {
        (Some(n), _) => Some(n),
        (None, true) => None,
        (None, false) if terminal && !args.json => Some(SCREENFUL),
        (None, false) => None,
    };
    let shown = if args.json {
        json(&store, &filter, limit, &extra)?
    } else if terminal && limit.is_some_and(|n| n <= GATHERED) {
        gathered(&store, &filter, limit, &extra, &named, ctx.color)?
    } else {
        store.snapshot(|store| streamed(store, &filter, limit, &extra, &named, ctx.color))?
    };
    if shown == 0 && !args.json && limit != Some(0) {
        if filter_is_empty(&args.find) {
            ui::info(format_args!(
                "no runs recorded yet in {}",
                ctx.store_dir().display()
            ));
        } else {
            ui::info("no run matches these filters");
        }
    }
    if terminal && !args.json && args.limit.is_none() && !args.all && shown == SCREENFUL {
        let total = store.count(&filter)?;
        if total > shown as u64 {
            let runs = if filter_is_empty(&args.find) {
                "runs"
            } else {
                "matching runs"
            };
            ui::info(format_args!(
                "{shown} of {total} {runs} shown; -n N or --all for more"
            ));
        }
    }
    Ok(())
}

/// The ranks of each launch as one row (docs/recording.md, "Distributed jobs"), for runs
/// listed newest first, one at a time: a launch's row stands where its newest rank would,
/// named by its lowest rank's id (`show` it for the launch), with the launch's span, status
/// and every rank in `group`; its other ranks are left out. A run that is no rank costs one
/// probe of an index that holds only ranks.
struct Launches<'s> {
    store: &'s Store,
    /// The launches listed so far.
    seen: std::collections::HashSet<String>,
    /// Rows admitted so far, and how many to admit (`-n`).
    rows: usize,
    limit: Option<usize>,
}

impl<'s> Launches<'s> {
    fn new(store: &'s Store, limit: Option<usize>) -> Launches<'s> {
        Launches {
            store,
            seen: Default::default(),
            rows: 0,
            limit,
        }
    }

    /// Whether `f` is listed, made the row of its launch when it is a rank (its short id
    /// then its lowest rank's).
    fn admit(&mut self, f: &mut Found) -> Result<bool> {
        if self.limit.is_some_and(|n| self.rows >= n) {
            return Ok(false);
        }
        let r = &mut f.run;
        let Some(group) = self.store.launch_of(&r.id)? else {
            self.rows += 1;
            return Ok(true);
        };
        if !self.seen.insert(group.clone()) {
            return Ok(false);
        }
        self.rows += 1;
        let Some(row) = self.store.group(&group)? else {
            return Ok(true);
        };
        if let Some(lowest) = row.members.first()
            && lowest.id != r.id
        {
            r.id = lowest.id.clone();
            f.short = self.store.short_id(&r.id)?;
        }
        (r.started_at, r.ended_at) = crate::output::group::span(&row);
        r.status = row.status();
        if let Some(m) = row.members.iter().find(|m| m.status == r.status) {
            r.exit_code = m.exit_code;
        }
        r.group = Some(row);
        Ok(true)
    }

    /// Whether the rows asked for are all in.
    fn full(&self) -> bool {
        self.limit.is_some_and(|n| self.rows >= n)
    }
}

/// Whether no filter was given.
pub fn filter_is_empty(f: &FindArgs) -> bool {
    f.conditions.is_empty()
        && f.command.is_none()
        && f.status.is_none()
        && f.since.is_none()
        && f.until.is_none()
        && f.produced.is_none()
        && f.read.is_none()
        && f.tag.is_none()
}

fn entry(f: &Found) -> ListEntry<'_> {
    ListEntry {
        run: &f.run,
        short: &f.short,
        rerun_of: f.rerun_short.as_deref(),
        params: &f.params,
        metrics: &f.metrics,
    }
}

/// `--json`: an array, an item at a time. Returns how many runs were printed.
fn json(store: &Store, filter: &Filter, limit: Option<usize>, extra: &Extra) -> Result<usize> {
    let mut out = String::from("[");
    let mut n = 0;
    let mut launches = Launches::new(store, limit);
    let sql_limit = if store.any_ranks()? { None } else { limit };
    store.find_each(filter, sql_limit, extra, &ShortIds::Auto, |mut f| {
        if !launches.admit(&mut f)? {
            return Ok(!launches.full());
        }
        let mut item = output::json::list_item(&f.run, f.short);
        if !extra.is_empty() {
            item.params = Some(f.params);
            item.metrics = Some(f.metrics);
        }
        out += if n == 0 { "\n" } else { ",\n" };
        out += &output::json::array_item(&item)?;
        n += 1;
        Ok(flush(&mut out, false) && !launches.full())
    })?;
    out += if n == 0 { "]\n" } else { "\n]\n" };
    flush(&mut out, true);
    Ok(n)
}

/// Hand `out` to stdout once it is big enough (or `all`); false once stdout has closed.
fn flush(out: &mut String, all: bool) -> bool {
    if all || out.len() >= CHUNK {
        ui::data(out);
        out.clear();
    }
    !ui::stdout_closed()
}

/// The extra columns: those named, and those the runs have.
fn gathered(
    store: &Store,
    filter: &Filter,
    limit: Option<usize>,
    extra: &Extra,
    named: &ListColumns,
    color: bool,
) -> Result<usize> {
    let mut found = Vec::new();
    let mut launches = Launches::new(store, limit);
    let sql_limit = if store.any_ranks()? { None } else { limit };
    store.find_each(filter, sql_limit, extra, &ShortIds::Exact, |mut f| {
        if launches.admit(&mut f)? {
            found.push(f);
        }
        Ok(!launches.full())
    })?;
    if found.is_empty() {
        return Ok(0);
    }
    let mut params: BTreeSet<String> = named.params.iter().cloned().collect();
    let mut metrics: BTreeSet<String> = named.metrics.iter().cloned().collect();
    for f in &found {
        params.extend(f.params.keys().cloned());
        metrics.extend(f.metrics.keys().cloned());
    }
    let cols = ListColumns {
        params: params.into_iter().collect(),
        metrics: metrics.into_iter().collect(),
    };
    let entries: Vec<ListEntry> = found.iter().map(entry).collect();
    ui::data(&(output::table::list(&entries, &cols, color) + "\n"));
    Ok(found.len())
}

/// The table in two passes over the same runs: widths, then rows.
fn streamed(
    store: &Store,
    filter: &Filter,
    limit: Option<usize>,
    extra: &Extra,
    named: &ListColumns,
    color: bool,
) -> Result<usize> {
    let mut table = ListStream::new(named, color);
    let mut n = 0;
    let mut launches = Launches::new(store, limit);
    let sql_limit = if store.any_ranks()? { None } else { limit };
    let shorts = store.find_each(filter, sql_limit, extra, &ShortIds::Auto, |mut f| {
        if launches.admit(&mut f)? {
            table.measure(&entry(&f));
            n += 1;
        }
        Ok(!launches.full())
    })?;
    if n == 0 {
        return Ok(0);
    }
    let mut out = table.header();
    let mut launches = Launches::new(store, limit);
    store.find_each(filter, sql_limit, extra, &shorts, |mut f| {
        if launches.admit(&mut f)? {
            out += &table.row(&entry(&f));
        }
        Ok(flush(&mut out, false) && !launches.full())
    })?;
    out += &table.end();
    flush(&mut out, true);
    Ok(n)
}

/// The filters, resolved: conditions parsed, times made the store's, paths hashed.
pub fn filter(store: &Store, args: &FindArgs) -> Result<Filter> {
    Ok(Filter {
        conditions: args
            .conditions
            .iter()
            .map(|c| Condition::parse(c))
            .collect::<Result<_, _>>()?,
        command: args.command.clone(),
        status: args.status.map(|s| match s {
            StatusArg::Succeeded => Status::Succeeded,
            StatusArg::Failed => Status::Failed,
            StatusArg::Interrupted => Status::Interrupted,
            StatusArg::Running => Status::Running,
        }),
        since: args
            .since
            .as_deref()
            .map(|s| when("--since", s, jiff::Timestamp::now()))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|s| when("--until", s, jiff::Timestamp::now()))
            .transpose()?,
        produced: args
            .produced
            .as_ref()
            .map(|p| artifact(store, p))
            .transpose()?,
        read: args.read.as_ref().map(|p| artifact(store, p)).transpose()?,
        tagged: args.tag.as_ref().map(|t| store.tagged(t)).transpose()?,
        ids: None,
    })
}

/// The bytes a `--produced`/`--read` PATH holds now (or a `blake3:` hash), as `show` finds
/// them.
fn artifact(store: &Store, path: &OsString) -> Result<crate::model::Hash> {
    let reading = if path
        .to_string_lossy()
        .starts_with(crate::model::Hash::PREFIX)
    {
        Reading::Guess
    } else {
        Reading::Path
    };
    match target::resolve(store, Some(path), reading)? {
        Target::Artifact { root, .. } => Ok(root.hash),
        Target::Run(_) => unreachable!("a path or a hash is never read as a run"),
    }
}

/// A `--since`/`--until` WHEN as the store writes times: a date (its start for `--since`,
/// its end for `--until`), an RFC 3339 time, or an age before `now` (`30m`, `12h`, `2d`,
/// `1w`, also `s`).
fn when(flag: &'static str, s: &str, now: jiff::Timestamp) -> Result<String, Error> {
    let bad = |why: &str| Error::BadFilter {
        flag,
        value: s.to_string(),
        why: why.to_string(),
    };
    const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.strftime(FORMAT).to_string());
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        let day = d
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .map_err(|_| bad("the date is out of range"))?;
        let t = if flag == "--until" {
            day.timestamp()
                .checked_add(jiff::SignedDuration::from_micros(86_400_000_000 - 1))
                .map_err(|_| bad("the date is out of range"))?
        } else {
            day.timestamp()
        };
        return Ok(t.strftime(FORMAT).to_string());
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let unit = match &s[digits..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad("it is neither a date, an RFC 3339 time nor an age")),
    };
    let n: i64 = s[..digits]
        .parse()
        .map_err(|_| bad("an age needs a number before its unit"))?;
    let secs = n
        .checked_mul(unit)
        .ok_or_else(|| bad("the age is too large"))?;
    let t = jiff::SignedDuration::from_secs(secs)
        .checked_neg()
        .and_then(|d| now.checked_add(d).ok())
        .ok_or_else(|| bad("the age is too large"))?;
    Ok(t.strftime(FORMAT).to_string())
}

/// `--columns LIST`: GLOB patterns for the params and metrics to bring, and the columns
/// named without a glob (shown whether a run has them or not). A bare KEY is looked for in
/// both.
pub fn columns(list: Option<&str>) -> Result<(Extra, ListColumns), Error> {
    let mut extra = Extra::default();
    let mut named = ListColumns::default();
    let Some(list) = list else {
        return Ok((extra, named));
    };
    for item in list.split(',').map(str::trim) {
        let bad = |why: &str| Error::BadFilter {
            flag: "--columns",
            value: list.to_string(),
            why: why.to_string(),
        };
        if item.is_empty() {
            return Err(bad("it has an empty column"));
        }
        let (params, metrics, key) = if let Some(k) = item.strip_prefix("params.") {
            (true, false, k)
        } else if let Some(k) = item.strip_prefix("metrics.") {
            (false, true, k)
        } else {
            (true, true, item)
        };
        if key.is_empty() {
            return Err(bad("a column names no key"));
        }
        let glob = key.contains(['*', '?', '[']);
        if params {
            extra.params.push(key.to_string());
            if !glob && !metrics {
                named.params.push(key.to_string());
            }
        }
        if metrics {
            extra.metrics.push(key.to_string());
            if !glob && !params {
                named.metrics.push(key.to_string());
            }
        }
    }
    Ok((extra, named))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_takes_dates_times_and_ages() {
        let now: jiff::Timestamp = "2026-11-10T12:00:00Z".parse().expect("now");
        assert_eq!(
            when("--since", "2026-11-01", now).expect("date"),
            "2026-11-01T00:00:00.000000Z"
        );
        assert_eq!(
            when("--until", "2026-11-01", now).expect("date"),
            "2026-11-01T23:59:59.999999Z"
        );
        assert_eq!(
            when("--since", "2026-11-01T09:30:00+01:00", now).expect("time"),
            "2026-11-01T08:30:00.000000Z"
        );
        assert_eq!(
            when("--since", "2d", now).expect("age"),
            "2026-11-08T12:00:00.000000Z"
        );
        assert_eq!(
            when("--since", "3h", now).expect("age"),
            "2026-11-10T09:00:00.000000Z"
        );
        for bad in ["yesterday", "2x", "d", "99999999999999999999w"] {
            assert!(
                matches!(when("--since", bad, now), Err(Error::BadFilter { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn columns_split_by_table_and_keep_the_named_ones() {
        let (extra, named) = columns(Some("metrics.*, params.train.lr,lr")).expect("columns");
        assert_eq!(extra.params, ["train.lr", "lr"]);
        assert_eq!(extra.metrics, ["*", "lr"]);
        assert_eq!(named.params, ["train.lr"]);
        assert!(named.metrics.is_empty());
        for bad in ["", "a,,b", "params."] {
            assert!(columns(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
