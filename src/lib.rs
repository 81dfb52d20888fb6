//! lineage records the lineage of machine-learning jobs: `lineage run` wraps a command and
//! stores its code, configuration, environment (secrets redacted), hardware and the BLAKE3
//! hashes of its inputs and outputs in a per-user SQLite store; `show` and `list` read it.
//!
//! Dependencies point one way: cli -> commands -> {capture, hash, store, output} -> model.

pub mod capture;
pub mod child;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod error;
pub mod hash;
pub mod host;
pub mod model;
pub mod output;
pub mod redact;
pub mod store;

use std::io::Write;

use cli::{Cli, Command};
use error::{Error, code};

/// Run the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    let store_dir = match cli.store.clone().map_or_else(store::default_dir, Ok) {
        Ok(dir) => dir,
        Err(e) => {
            report_error(&e);
            return match cli.command {
                Command::Run(_) | Command::Rerun(_) => code::CANNOT_LAUNCH,
                _ => code::FAILURE,
            };
        }
    };
    let color = output::use_color(cli.color);
    let result = match cli.command {
        Command::Run(args) => return commands::run::run(args, &store_dir),
        Command::Rerun(args) => return commands::rerun::rerun(args, &store_dir),
        Command::Show(args) => commands::show::show(args, &store_dir, color),
        Command::List(args) => commands::list::list(args, &store_dir, color),
        Command::Diff(args) => commands::diff::diff(args, &store_dir, color),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            report_error(&e);
            code::FAILURE
        }
    }
}

/// Print an error once, on stderr, with a hint line when there is an obvious fix.
pub fn report_error(e: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "lineage: error: {e:#}");
    if let Some(hint) = e.downcast_ref::<Error>().and_then(Error::hint) {
        let _ = writeln!(stderr, "lineage: hint: {hint}");
    }
}

/// Write data to stdout; a closed pipe (`lineage list | head`) ends the process quietly.
pub fn print_stdout(s: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("lineage: error: writing to stdout: {e}");
        std::process::exit(i32::from(code::FAILURE));
    }
}
