//! `lineage doctor`: check the store (integrity, foreign keys, permissions, stale runs), repair
//! a damaged one with `--repair`, and preview the redaction policy with `--secrets`.

use anyhow::{Context as _, Result};

use super::Context;
use crate::cli::DoctorArgs;
use crate::error::code;
use crate::redact::Policy;
use crate::store::{self, Store, doctor};
use crate::ui;

/// Print a line of the report (stdout: the report is the command's output), escaped: it
/// names paths, tables and rows of a store that may hold anything.
macro_rules! say {
    ($($arg:tt)*) => {
        ui::data(&format!("{}\n", ui::escape(&format!($($arg)*))))
    };
}

pub fn doctor(args: DoctorArgs, ctx: &Context) -> Result<u8> {
    if args.secrets {
        return secrets(&args, ctx);
    }
    let key_ok = signing_key(args.repair);
    let code = store_doctor(&args, ctx)?;
    #[cfg(feature = "team-store")]
    let key_ok = team_doctor(ctx) && key_ok;
    Ok(if code == code::SUCCESS && !key_ok {
        code::FAILURE
    } else {
        code
    })
}

/// The user's signing key: a key others can read or write is reported (and made user-only
/// by `--repair`); one that cannot be used is reported with what to do (never removed here:
/// it is an identity). Whether it is fine now.
fn signing_key(repair: bool) -> bool {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(key) = crate::sign::key_path() else {
        return true;
    };
    let Ok(meta) = std::fs::symlink_metadata(&key.path) else {
        return true; // made on first use
    };
    let shown = key.path.display();
    if meta.is_file() && meta.uid() == nix::unistd::getuid().as_raw() && meta.mode() & 0o077 != 0 {
        say!(
            "problem: signing key {shown} can be read or written by others (mode {:o}): runs are not signed",
            meta.mode() & 0o777
        );
        if !repair {
            return false;
        }
        match std::fs::set_permissions(&key.path, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => say!("fixed: chmod 600 {shown}"),
            Err(e) => {
                say!("problem: chmod 600 {shown}: {e}");
                return false;
            }
        }
    }
    match crate::sign::Signer::load_or_create(&key.path) {
        Ok(_) => true,
        Err(e) => {
            say!("problem: signing key: {e}: runs are not signed");
            false
        }
    }
}

/// The team store, when the store in use is one: reachable, its schema, this role's grants,
/// runs waiting for delivery and runs held back. Whether all is well.
#[cfg(feature = "team-store")]
fn team_doctor(ctx: &Context) -> bool {
    let Some(remote) = ctx.store.team() else {
        return true;
    };
    let mut ok = true;
    match remote.status() {
        Ok(s) => {
            say!(
                "team store: {} reachable, schema version {} (this lineage: {})",
                remote.name,
                s.version,
                s.known
            );
            match (s.may_submit, s.may_read) {
                (true, _) => say!(
                    "team store: role {} records and reads (lineage_writer)",
                    s.role
                ),
                (false, true) => say!(
                    "team store: role {} reads only: runs recorded here are not delivered (`lineage team forget --all`)",
                    s.role
                ),
                (false, false) => {
                    ok = false;
                    say!(
                        "problem: team store: role {} may neither read nor record: its admin makes it a member of lineage_writer or lineage_reader and runs `lineage team migrate`",
                        s.role
                    );
                }
            }
        }
        Err(e) => {
            ok = false;
            say!("problem: {e:#}");
        }
    }
    let Ok(store) = ctx.open_store() else {
        return ok;
    };
    let waiting = store.pending_push(&remote.name).map_or(0, |p| p.ids.len());
    say!("team store: {waiting} run(s) waiting for delivery");
    for h in store.held_back(Some(&remote.name)).unwrap_or_default() {
        match h.why.as_str() {
            "quarantined" => {
                ok = false;
                say!(
                    "problem: team store: run {} (arrival {}) quarantined, not taken here: {}",
                    h.run_id,
                    h.seq.unwrap_or(0),
                    h.reason
                );
            }
            "refused" => {
                ok = false;
                say!(
                    "problem: team store: run {} refused by the server: {} (`lineage team forget {}` stops trying)",
                    h.run_id,
                    h.reason,
                    h.run_id
                );
            }
            _ => say!("team store: run {} forgotten: never delivered", h.run_id),
        }
    }
    ok
}

fn store_doctor(args: &DoctorArgs, ctx: &Context) -> Result<u8> {
    let store_dir = ctx.store_dir();
    let report = doctor::check(store_dir);
    say!("store: {}", report.path);
    if let Some(v) = report.schema_version {
        say!("schema version: {v}");
    }
    if let (Some(runs), Some(running)) = (report.runs, report.running) {
        say!("runs: {runs} ({running} marked running)");
        if running == 0 && report.wal_bytes > 0 {
            say!(
                "note: {}-wal holds {} bytes not yet copied into the database (a copy that failed, a full disk?, or a reader in its way); the next lineage command that records copies them",
                report.path,
                report.wal_bytes
            );
        }
    }
    if report.is_healthy() {
        return healthy(store_dir);
    }
    report_problems(&report);
    if !args.repair {
        ui::hint(
            "`lineage doctor --repair` fixes modes with chmod, replaces an unusable key, and keeps a backup and rebuilds a damaged store from what can still be read",
        );
        return Ok(code::FAILURE);
    }
    // Modes and the key first: a store that is only that needs no rebuild.
    for p in &report.permissions {
        match p.fix() {
            Ok(()) => say!("fixed: chmod {:o} {}", p.want, p.path.display()),
            Err(e) => say!("problem: chmod {:o} {}: {e}", p.want, p.path.display()),
        }
    }
    if report.key.is_some() {
        let (_, what) = store::key_in(store_dir);
        if let Some(what) = what {
            say!("fixed: {what}");
        }
    }
    let report = if report.permissions.is_empty() && report.key.is_none() {
        report
    } else {
        let again = doctor::check(store_dir);
        if again.is_healthy() {
            return healthy(store_dir);
        }
        report_problems(&again);
        again
    };
    if report.problems.is_empty() {
        return Ok(code::FAILURE);
    }
    // A rebuild swaps the database file: what a job recording now writes next would go to
    // the old one. Wait for it instead.
    if !report.live.is_empty() {
        say!(
            "not rebuilt: {} run{} still being recorded ({}); run `lineage doctor --repair` again once {} finished",
            report.live.len(),
            if report.live.len() == 1 {
                " is"
            } else {
                "s are"
            },
            report.live.join(", "),
            if report.live.len() == 1 {
                "it has"
            } else {
                "they have"
            },
        );
        return Ok(code::FAILURE);
    }
    let r = doctor::repair(store_dir).context("repairing the store")?;
    say!("backup of the damaged file: {}", r.backup);
    for (table, n) in &r.recovered {
        say!("recovered {n} rows of {table}");
    }
    if !r.lost.is_empty() {
        say!("could not be read to the end: {}", r.lost.join(", "));
    }
    let after = doctor::check(store_dir);
    if after.is_healthy() {
        say!("ok: the rebuilt store is healthy");
        Ok(code::SUCCESS)
    } else {
        report_problems(&after);
        Ok(code::FAILURE)
    }
}

fn report_problems(report: &doctor::Report) {
    for p in &report.problems {
        say!("problem: {p}");
    }
    for p in &report.permissions {
        say!("problem: {p}");
    }
    if let Some(k) = &report.key {
        say!("problem: {k}: the next run sets it aside and makes a new key");
    }
}

/// A store with no problem: opening it marks runs whose lineage process is gone as
/// interrupted.
fn healthy(store_dir: &std::path::Path) -> Result<u8> {
    let reaped = Store::open(store_dir)
        .map_err(anyhow::Error::from)
        .and_then(|mut s| Ok(s.reaped_on_open() + s.reap_stale()?));
    match reaped {
        Ok(0) => {}
        Ok(1) => say!("marked 1 run interrupted: its lineage process is gone"),
        Ok(n) => say!("marked {n} runs interrupted: their lineage process is gone"),
        Err(e) => {
            // A store this lineage cannot use (too new, a full disk) is not healthy.
            say!("problem: {e:#}");
            if crate::error::is_no_room(&e) {
                say!(
                    "hint: free space where the store is; meanwhile jobs run all the same and \
                     are recorded after they end if there is room by then"
                );
            }
            return Ok(code::FAILURE);
        }
    }
    if let Some(note) = crate::store::room_note(store_dir) {
        say!("note: {note}");
    }
    say!("ok: no problems found");
    Ok(code::SUCCESS)
}

/// What the policy would store: names of redacted variables and the command line as stored.
/// A throwaway key is used: nothing here is written anywhere.
fn secrets(args: &DoctorArgs, ctx: &Context) -> Result<u8> {
    let s = &ctx.settings;
    let policy = Policy::new(&s.env_allow, &s.env_deny, &s.redact_values, [0; 32])?;
    let env = policy.redact_env(std::env::vars_os());
    for note in &env.notes {
        say!("note: {}", note);
    }
    say!(
        "environment: {} variables, {} redacted",
        env.vars.len(),
        env.fingerprints.len()
    );
    for name in env.fingerprints.keys() {
        let how = if env.vars.get(name).is_some_and(|v| v.contains("***")) {
            "password in a URL masked"
        } else if policy.is_secret_name(name) {
            "by name"
        } else {
            "value looks like a credential"
        };
        say!("  {name}: {how}");
    }
    if !args.command.is_empty() {
        use std::os::unix::ffi::OsStrExt;
        let argv: Vec<Vec<u8>> = args.command.iter().map(|a| a.as_bytes().to_vec()).collect();
        let stored = policy.redact_argv(&argv);
        say!(
            "command as stored: {}",
            crate::model::text::terminal_command_line(stored.argv.get())
        );
        for i in stored.fingerprints.keys() {
            say!("  argument {i} redacted (a rerun asks for it as LINEAGE_ARG_{i})");
        }
    }
    Ok(code::SUCCESS)
}
