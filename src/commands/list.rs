//! `lineage list` (alias `log`): recorded runs, newest first.

use anyhow::Result;

use super::Context;
use crate::cli::ListArgs;
use crate::model::RunSummary;
use crate::store::Store;
use crate::{output, ui};

pub fn list(args: ListArgs, ctx: &Context) -> Result<()> {
    let store = ctx.open_store()?;
    let runs = collapse_groups(&store, args.limit)?;
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let mut shorts = store.short_ids(&ids)?;
    // The runs they reran, by the prefix that names them now (8 characters can be ambiguous).
    let of: Vec<&str> = runs.iter().filter_map(|r| r.rerun_of.as_deref()).collect();
    let rerun_shorts = store.short_ids(&of)?;
    let runs: Vec<_> = runs
        .into_iter()
        .map(|r| {
            let short = shorts.remove(&r.id).unwrap_or_else(|| r.id.clone());
            (r, short)
        })
        .collect();
    if args.json {
        let items: Vec<_> = runs
            .iter()
            .map(|(r, s)| output::json::list_item(r, s.clone()))
            .collect();
        ui::data(&(serde_json::to_string_pretty(&items)? + "\n"));
    } else if runs.is_empty() {
        // `-n 0` asked for nothing; only an empty store is worth a word.
        if args.limit != Some(0) {
            ui::info(format_args!(
                "no runs recorded yet in {}",
                ctx.store_dir().display()
            ));
        }
    } else {
        ui::data(&(output::table::list(&runs, &rerun_shorts, ctx.color) + "\n"));
    }
    Ok(())
}

/// The newest `limit` rows, the ranks of each launch one row ([`Launches`]). Runs are fetched
/// again, twice as many, while collapsing left fewer than `limit` rows.
fn collapse_groups(store: &Store, limit: Option<usize>) -> Result<Vec<RunSummary>> {
    let mut want = limit;
    loop {
        let runs = store.list(want)?;
        let fetched = runs.len();
        let mut launches = Launches::new(store);
        let mut rows = Vec::with_capacity(runs.len());
        for mut r in runs {
            if launches.admit(&mut r)? {
                rows.push(r);
            }
        }
        match (limit, want) {
            (Some(n), Some(w)) if rows.len() < n && fetched == w => {
                want = Some(w.saturating_mul(2));
            }
            _ => {
                rows.truncate(limit.unwrap_or(usize::MAX));
                return Ok(rows);
            }
        }
    }
}

/// The ranks of each launch as one row (docs/recording.md, "Distributed jobs"), for runs
/// listed newest first, one at a time (a streamed list calls `admit` on each): a launch's
/// row stands where its newest rank would, named by its lowest rank's id (`show` it for the
/// launch), with the launch's span, status and every rank in `group`; its other ranks are left
/// out. A run that is no rank costs one probe of an index that holds only ranks.
struct Launches<'s> {
    store: &'s Store,
    /// The launches listed so far.
    seen: std::collections::HashSet<String>,
}

impl<'s> Launches<'s> {
    fn new(store: &'s Store) -> Launches<'s> {
        Launches {
            store,
            seen: Default::default(),
        }
    }

    /// Whether `r` is listed, made the row of its launch when it is a rank.
    fn admit(&mut self, r: &mut RunSummary) -> Result<bool> {
        let Some(group) = self.store.launch_of(&r.id)? else {
            return Ok(true);
        };
        if !self.seen.insert(group.clone()) {
            return Ok(false);
        }
        let Some(row) = self.store.group(&group)? else {
            return Ok(true);
        };
        if let Some(lowest) = row.members.first() {
            r.id = lowest.id.clone();
        }
        (r.started_at, r.ended_at) = crate::output::group::span(&row);
        r.status = row.status();
        if let Some(m) = row.members.iter().find(|m| m.status == r.status) {
            r.exit_code = m.exit_code;
        }
        r.group = Some(row);
        Ok(true)
    }
}
