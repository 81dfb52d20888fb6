//! Syncing with a team store (PostgreSQL): `lineage push` / `pull`, and what every command
//! does when `LINEAGE_STORE` is a postgres:// URL (deliver the spooled runs and fetch the new
//! ones before reading; deliver after recording runs, tags and notes). A server that cannot be reached is a
//! warning: the command goes on with this machine's replica, and nothing is lost.

use std::path::Path;

use anyhow::{Result, anyhow};

use super::Context;
use crate::cli::{SyncArgs, TeamArgs, TeamCommand};
use crate::store::Store;
use crate::store::pg::{Interrupted, Limits, NotAWriter, Pulled, Pushed, Remote, Setup};
use crate::ui;

/// Before a command that reads: deliver what waits, fetch what is new, all within
/// `LINEAGE_PG_TIMEOUT`. A server that cannot be reached is a warning (the command reads this
/// machine's copy); one that refuses (setup: grants, schema, password) is an error.
pub fn before(remote: &Remote, replica: &Path) -> Result<()> {
    let Ok(mut store) = super::open_store(replica) else {
        return Ok(()); // the command itself reports why the store cannot open
    };
    crate::location::bind_replica(replica, &remote.name)?;
    let limits = Limits::all(remote.timeout);
    let result = match remote.push(&store, limits) {
        Ok(pushed) => {
            report_refused(remote, &pushed);
            remote.pull(&mut store, limits)
        }
        Err(e) if e.is::<NotAWriter>() => {
            warn_undeliverable(&store, remote, &e);
            remote.pull(&mut store, limits)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(pulled) => {
            report_pulled(remote, &pulled);
            Ok(())
        }
        Err(e) => {
            if let Some(Interrupted(sig)) = e.downcast_ref::<Interrupted>() {
                std::process::exit(128 + sig);
            }
            if e.is::<Setup>() {
                return Err(e);
            }
            warn_offline(&store, remote, &e);
            Ok(())
        }
    }
}

/// After a command that recorded runs: deliver them now (within `LINEAGE_PG_TIMEOUT`), or
/// leave them spooled. Never an error: the job's exit code wins.
pub fn deliver(remote: &Remote, replica: &Path) {
    let Ok(store) = super::open_store(replica) else {
        return;
    };
    if let Err(e) = crate::location::bind_replica(replica, &remote.name) {
        ui::warn(format_args!("{e:#}"));
        return;
    }
    match remote.push(&store, Limits::after_job(remote.timeout)) {
        Ok(pushed) => report_refused(remote, &pushed),
        Err(e) if e.is::<NotAWriter>() => warn_undeliverable(&store, remote, &e),
        Err(e) if e.is::<Interrupted>() => {
            let waiting = store.pending_push(&remote.name).map_or(0, |p| p.ids.len());
            ui::warn(format_args!(
                "delivery to {} interrupted: {waiting} run{} kept in {} for the next lineage \
                 command",
                remote.name,
                plural(waiting),
                store.dir().display()
            ));
        }
        Err(e) if e.is::<Setup>() => {
            ui::warn(format_args!("{e:#}"));
            let waiting = store.pending_push(&remote.name).map_or(0, |p| p.ids.len());
            ui::warn(format_args!(
                "{waiting} run{} kept in {} until that is fixed",
                plural(waiting),
                store.dir().display()
            ));
        }
        Err(e) => warn_offline(&store, remote, &e),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn report_refused(remote: &Remote, pushed: &Pushed) {
    for (id, why) in &pushed.refused {
        ui::warn(format_args!(
            "the team store {} refused run {}: {}; it stays here, held back (`lineage doctor` \
             lists it)",
            remote.name,
            ui::escape(id),
            ui::escape(why)
        ));
    }
    if pushed.kept_annotations > 0 {
        ui::warn(format_args!(
            "{} stay{} in this replica: this role may not submit to {} (not a member of \
             lineage_writer)",
            annotations(pushed.kept_annotations, false),
            if pushed.kept_annotations == 1 {
                "s"
            } else {
                ""
            },
            remote.name
        ));
    }
    for (id, why) in &pushed.refused_annotations {
        ui::warn(format_args!(
            "the team store {} refused the tag or note {}: {}; it stays in this store",
            remote.name,
            ui::escape(id),
            ui::escape(why)
        ));
    }
}

/// "N tags and notes" (`new`: "N new tags and notes").
fn annotations(n: usize, new: bool) -> String {
    let new = if new { "new " } else { "" };
    if n == 1 {
        format!("1 {new}tag or note")
    } else {
        format!("{n} {new}tags and notes")
    }
}

fn report_pulled(remote: &Remote, pulled: &Pulled) {
    if pulled.resynced {
        ui::warn(format_args!(
            "the team store {} no longer has runs this replica fetched (restored from a \
             backup, or rows deleted): its history was read again",
            remote.name
        ));
    }
    for (id, why) in &pulled.quarantined {
        ui::warn(format_args!(
            "run {} from {} quarantined (not taken here): {}",
            ui::escape(id),
            remote.name,
            ui::escape(why)
        ));
    }
    for (id, run, why) in &pulled.refused_annotations {
        ui::warn(format_args!(
            "the tag or note {} of run {} from {} was not taken: {}",
            ui::escape(id),
            ui::escape(run),
            remote.name,
            ui::escape(why)
        ));
    }
    for what in &pulled.damaged {
        ui::warn(format_args!(
            "{} holds a damaged copy of {}: not taken (the runs naming it were); its owner can \
             delete that row so the next delivery brings a good one",
            remote.name,
            ui::escape(what)
        ));
    }
    if pulled.unfinished {
        ui::warn(format_args!(
            "more runs wait on {}: the next command fetches them (or `lineage pull`, unhurried)",
            remote.name
        ));
    }
    if pulled.lost > 0 {
        ui::warn(format_args!(
            "{} run{} here that {} no longer has will be delivered again",
            pulled.lost,
            plural(pulled.lost),
            remote.name
        ));
    }
}

fn warn_undeliverable(store: &Store, remote: &Remote, e: &anyhow::Error) {
    let waiting = store.pending_push(&remote.name).map_or(0, |p| p.ids.len());
    ui::warn(format_args!(
        "{e:#}: {waiting} run{} of this machine cannot be delivered; `lineage team forget --all` \
         stops trying (they stay here)",
        plural(waiting)
    ));
}

fn warn_offline(store: &Store, remote: &Remote, e: &anyhow::Error) {
    let waiting = store.pending_push(&remote.name).map_or(0, |p| p.ids.len());
    let notes = store.annotations_waiting(&remote.name).unwrap_or(0);
    ui::warn(format_args!("{e:#}"));
    if notes > 0 {
        ui::warn(format_args!(
            "{} kept in {} for the next lineage command that reaches {}",
            annotations(notes, false),
            store.dir().display(),
            remote.name
        ));
    }
    if waiting > 0 {
        ui::warn(format_args!(
            "{waiting} run{} kept in {}: the next lineage command that can deliver {} to \
             {} will; what this command reads may lack recent runs",
            plural(waiting),
            store.dir().display(),
            if waiting == 1 { "it" } else { "them" },
            remote.name
        ));
    } else {
        ui::warn(format_args!(
            "working from this machine's copy of {}, which may lack recent runs",
            remote.name
        ));
    }
}

/// The team store to push to or pull from: the URL given, `team_store` in the settings
/// files, or the store in use when it is a team store.
fn target(url: Option<String>, ctx: &Context) -> Result<Remote> {
    match url.or_else(|| ctx.settings.team_store.clone()) {
        Some(url) => {
            let remote = Remote::parse(&url)?;
            for w in &remote.warnings {
                ui::warn(w);
            }
            Ok(remote)
        }
        None => match ctx.store.team() {
            Some(r) => Ok(r.clone()),
            None => Err(anyhow!(
                "no team store given: pass postgres://USER@HOST/DATABASE, or set \
                 LINEAGE_TEAM_STORE or team_store in lineage.toml"
            )),
        },
    }
}

pub fn push(args: SyncArgs, ctx: &Context) -> Result<()> {
    let remote = target(args.url, ctx)?;
    let store = ctx.open_store()?;
    // Asked for explicitly: check the server even when nothing waits.
    remote.check()?;
    let pushed = remote.push(&store, Limits::steps(remote.timeout))?;
    report_refused(&remote, &pushed);
    let mut said = format!(
        "delivered {} new run{} to {}",
        pushed.new,
        plural(pushed.new),
        remote.name
    );
    if pushed.present > 0 {
        said.push_str(&format!("; {} it had already", pushed.present));
    }
    if pushed.deleted > 0 {
        said.push_str(&format!("; {} it had deleted", pushed.deleted));
    }
    if !pushed.refused.is_empty() {
        said.push_str(&format!("; {} refused", pushed.refused.len()));
    }
    if pushed.annotations > 0 {
        said.push_str(&format!("; {}", annotations(pushed.annotations, true)));
    }
    ui::info(said);
    Ok(())
}

pub fn pull(args: SyncArgs, ctx: &Context) -> Result<()> {
    let remote = target(args.url, ctx)?;
    let mut store = ctx.open_store()?;
    let limits = Limits::steps(remote.timeout);
    // Asked for explicitly: runs quarantined before are tried again first.
    let retried = remote.retry_quarantined(&mut store, limits)?;
    report_pulled(&remote, &retried);
    let mut pulled = remote.pull(&mut store, limits)?;
    pulled.new += retried.new;
    pulled.annotations += retried.annotations;
    report_pulled(&remote, &pulled);
    let mut said = format!(
        "received {} new run{} from {}",
        pulled.new,
        plural(pulled.new),
        remote.name
    );
    if pulled.deleted > 0 {
        said.push_str(&format!("; {} deleted there, deleted here", pulled.deleted));
    }
    if !pulled.quarantined.is_empty() {
        said.push_str(&format!("; {} quarantined", pulled.quarantined.len()));
    }
    if pulled.annotations > 0 {
        said.push_str(&format!("; {}", annotations(pulled.annotations, true)));
    }
    ui::info(said);
    Ok(())
}

/// `lineage team ...`.
pub fn team(args: TeamArgs, ctx: &Context) -> Result<()> {
    match args.command {
        TeamCommand::Migrate(a) => {
            let remote = target(a.url, ctx)?;
            let (v, repaired) = remote.migrate()?;
            if let Some(r) = repaired {
                ui::warn(r);
            }
            ui::info(format_args!(
                "the team store {} is at schema version {v}; lineage_writer and lineage_reader \
                 (where they exist) have lineage's grants",
                remote.name
            ));
            Ok(())
        }
        TeamCommand::Forget(a) => {
            let remote = target(a.url, ctx)?;
            let store = ctx.open_store()?;
            let ids = if a.all {
                None
            } else {
                let mut ids = Vec::new();
                for r in &a.runs {
                    ids.push(store.resolve(Some(r))?);
                }
                Some(ids)
            };
            let forgotten = store.forget(&remote.name, ids.as_deref())?;
            if let Some(asked) = &ids {
                for id in asked.iter().filter(|i| !forgotten.contains(i)) {
                    ui::warn(format_args!(
                        "run {id} is not waiting for delivery to {}",
                        remote.name
                    ));
                }
            }
            ui::info(format_args!(
                "{} run{} will not be delivered to {} (they stay in {})",
                forgotten.len(),
                plural(forgotten.len()),
                remote.name,
                store.dir().display()
            ));
            Ok(())
        }
    }
}
