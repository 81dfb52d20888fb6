//! `lineage doctor`: check the store (integrity, foreign keys, permissions, stale runs), repair
//! a damaged one with `--repair`, and preview the redaction policy with `--secrets`.

use anyhow::{Context as _, Result};

use super::Context;
use crate::cli::DoctorArgs;
use crate::error::code;
use crate::redact::Policy;
use crate::store::{Store, doctor};
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
    let store_dir = ctx.store_dir();
    let report = doctor::check(store_dir);
    say!("store: {}", report.path);
    if let Some(v) = report.schema_version {
        say!("schema version: {v}");
    }
    if let (Some(runs), Some(running)) = (report.runs, report.running) {
        say!("runs: {runs} ({running} marked running)");
    }
    if report.problems.is_empty() {
        // Opening the store marks runs whose lineage process is gone as interrupted.
        let reaped = Store::open(store_dir)
            .map_err(anyhow::Error::from)
            .and_then(|mut s| s.reap_stale());
        match reaped {
            Ok(0) => {}
            Ok(n) => say!("marked {n} runs interrupted: their lineage process is gone"),
            Err(e) => {
                // A store this lineage cannot use (too new, a full disk) is not healthy.
                say!("problem: {e:#}");
                return Ok(code::FAILURE);
            }
        }
        say!("ok: no problems found");
        return Ok(code::SUCCESS);
    }
    for p in &report.problems {
        say!("problem: {p}");
    }
    if !args.repair {
        ui::hint("`lineage doctor --repair` keeps a backup and rebuilds what can still be read");
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
    if after.problems.is_empty() {
        say!("ok: the rebuilt store is healthy");
        Ok(code::SUCCESS)
    } else {
        for p in &after.problems {
            say!("problem: {p}");
        }
        Ok(code::FAILURE)
    }
}

/// What the policy would store: names of redacted variables and the command line as stored.
/// A throwaway key is used: nothing here is written anywhere.
fn secrets(args: &DoctorArgs, ctx: &Context) -> Result<u8> {
    let s = &ctx.settings;
    let policy = Policy::new(&s.env_allow, &s.env_deny, &s.redact_values, [0; 32])?;
    let env = policy.redact_env(std::env::vars_os());
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
