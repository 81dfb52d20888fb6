//! Syncing with a team store (PostgreSQL): `lineage push` / `pull`, and what every command
//! does when `LINEAGE_STORE` is a postgres:// URL (deliver the spooled runs and fetch the new
//! ones before reading; deliver after recording). A server that cannot be reached is a
//! warning: the command goes on with this machine's replica, and nothing is lost.

use std::path::Path;

use anyhow::{Result, anyhow};

use super::Context;
use crate::cli::SyncArgs;
use crate::store::Store;
use crate::store::pg::Remote;
use crate::ui;

/// Before a command that reads: deliver what waits, fetch what is new.
pub fn before(remote: &Remote, replica: &Path) {
    let Ok(mut store) = super::open_store(replica) else {
        return; // the command itself reports why the store cannot open
    };
    let done = remote.push(&store).and_then(|_| remote.pull(&mut store));
    if let Err(e) = done {
        warn_offline(&store, remote, &e);
    }
}

/// After a command that recorded runs: deliver them now, or leave them spooled.
pub fn deliver(remote: &Remote, replica: &Path) {
    let Ok(store) = super::open_store(replica) else {
        return;
    };
    if let Err(e) = remote.push(&store) {
        warn_offline(&store, remote, &e);
    }
}

fn warn_offline(store: &Store, remote: &Remote, e: &anyhow::Error) {
    let waiting = store.pending_push(&remote.name).map_or(0, |p| p.ids.len());
    ui::warn(format_args!("{e:#}"));
    if waiting > 0 {
        ui::warn(format_args!(
            "{waiting} run{} kept in {}: the next lineage command that can deliver them to \
             {} will",
            if waiting == 1 { "" } else { "s" },
            store.dir().display(),
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
fn target(args: SyncArgs, ctx: &Context) -> Result<Remote> {
    match args.url.or_else(|| ctx.settings.team_store.clone()) {
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
    let remote = target(args, ctx)?;
    let store = ctx.open_store()?;
    // Asked for explicitly: check the server even when nothing waits.
    remote.connect()?;
    let n = remote.push(&store)?;
    ui::info(format_args!(
        "delivered {n} run{} to {}",
        if n == 1 { "" } else { "s" },
        remote.name
    ));
    Ok(())
}

pub fn pull(args: SyncArgs, ctx: &Context) -> Result<()> {
    let remote = target(args, ctx)?;
    let mut store = ctx.open_store()?;
    let n = remote.pull(&mut store)?;
    ui::info(format_args!(
        "received {n} run{} from {}",
        if n == 1 { "" } else { "s" },
        remote.name
    ));
    Ok(())
}
