//! `lineage doctor`: check the store (integrity, foreign keys, permissions, stale runs), repair
//! a damaged one with `--repair`, and preview the redaction policy with `--secrets`.

use std::path::Path;

use crate::cli::DoctorArgs;
use crate::error::code;
use crate::redact::Policy;
use crate::store::{Store, doctor};

pub fn doctor(args: DoctorArgs, store_dir: &Path) -> u8 {
    if args.secrets {
        return secrets(&args);
    }
    let report = doctor::check(store_dir);
    println!("store: {}", report.path);
    if let Some(v) = report.schema_version {
        println!("schema version: {v}");
    }
    if let (Some(runs), Some(running)) = (report.runs, report.running) {
        println!("runs: {runs} ({running} marked running)");
    }
    if report.problems.is_empty() {
        // Opening the store marks runs whose lineage process is gone as interrupted.
        let reaped = Store::open(store_dir)
            .map_err(anyhow::Error::from)
            .and_then(|mut s| s.reap_stale());
        match reaped {
            Ok(0) => {}
            Ok(n) => println!("marked {n} runs interrupted: their lineage process is gone"),
            Err(e) => println!("problem: {e:#}"),
        }
        println!("ok: no problems found");
        return 0;
    }
    for p in &report.problems {
        println!("problem: {p}");
    }
    if !args.repair {
        eprintln!(
            "lineage: hint: `lineage doctor --repair` keeps a backup and rebuilds what can still be read"
        );
        return code::FAILURE;
    }
    match doctor::repair(store_dir) {
        Ok(r) => {
            println!("backup of the damaged file: {}", r.backup);
            for (table, n) in &r.recovered {
                println!("recovered {n} rows of {table}");
            }
            if !r.lost.is_empty() {
                println!("could not be read to the end: {}", r.lost.join(", "));
            }
            let after = doctor::check(store_dir);
            if after.problems.is_empty() {
                println!("ok: the rebuilt store is healthy");
                0
            } else {
                for p in &after.problems {
                    println!("problem: {p}");
                }
                code::FAILURE
            }
        }
        Err(e) => {
            crate::report_error(&e.context("repairing the store"));
            code::FAILURE
        }
    }
}

/// What the policy would store: names of redacted variables and the command line as stored.
/// A throwaway key is used: nothing here is written anywhere.
fn secrets(args: &DoctorArgs) -> u8 {
    let s = crate::settings::get();
    let policy = match Policy::new(&s.env_allow, &s.env_deny, &s.redact_values, [0; 32]) {
        Ok(p) => p,
        Err(e) => {
            crate::report_error(&e.into());
            return code::FAILURE;
        }
    };
    let env = policy.redact_env(std::env::vars_os());
    println!(
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
        println!("  {name}: {how}");
    }
    if !args.command.is_empty() {
        use std::os::unix::ffi::OsStrExt;
        let argv: Vec<Vec<u8>> = args.command.iter().map(|a| a.as_bytes().to_vec()).collect();
        let stored = policy.redact_argv(&argv);
        println!(
            "command as stored: {}",
            crate::output::command_line(&stored.argv)
        );
        for i in stored.fingerprints.keys() {
            println!("  argument {i} redacted (a rerun asks for it as LINEAGE_ARG_{i})");
        }
    }
    0
}
