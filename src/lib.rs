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
pub mod complete;
pub mod error;
pub mod export;
pub mod hash;
pub mod host;
pub mod model;
pub mod output;
pub mod progress;
pub mod redact;
pub mod settings;
pub mod store;
pub mod timing;
pub mod watch;

use std::io::Write;

use cli::{Cli, Command};
use error::{Error, code};

/// Run the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    child::ignore_file_size_signal();
    let launches = matches!(cli.command, Command::Run(_) | Command::Rerun(_));
    let mut from_settings = None;
    let mut team_store = None;
    if !matches!(cli.command, Command::Completions(_) | Command::Man(_)) {
        let cwd = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
        match settings::init(&cwd) {
            Ok(s) => {
                from_settings = s.store.clone();
                team_store = s.team_store.clone();
            }
            Err(e) => {
                report_error(&anyhow::Error::new(e));
                return if launches {
                    code::CANNOT_LAUNCH
                } else {
                    code::FAILURE
                };
            }
        }
    }
    // --store and LINEAGE_STORE, then the settings files, then the default. A postgres://
    // URL names a team store: this machine works in its replica and syncs with it.
    let chosen = cli.store.clone().or(from_settings);
    let remote = match chosen
        .as_ref()
        .and_then(|p| p.to_str())
        .filter(|s| store::pg::is_url(s))
    {
        None => None,
        Some(url) => match store::pg::Remote::parse(url) {
            Ok(r) => Some(r),
            Err(e) => {
                report_error(&e);
                return if launches {
                    code::CANNOT_LAUNCH
                } else {
                    code::FAILURE
                };
            }
        },
    };
    let store_dir = match remote.as_ref().map_or_else(
        || chosen.map_or_else(store::default_dir, Ok),
        store::pg::Remote::replica_dir,
    ) {
        Ok(dir) => dir,
        Err(e) => {
            report_error(&e);
            return match cli.command {
                Command::Run(_) | Command::Rerun(_) => code::CANNOT_LAUNCH,
                _ => code::FAILURE,
            };
        }
    };
    let _ = STORE_DIR.set(store_dir.clone());
    let color = output::use_color(cli.color);
    if let Some(r) = &remote {
        let reads = !matches!(
            cli.command,
            Command::Run(_)
                | Command::Completions(_)
                | Command::Man(_)
                | Command::Push(_)
                | Command::Pull(_)
                | Command::Doctor(cli::DoctorArgs { secrets: true, .. })
                | Command::Bundle(cli::BundleArgs {
                    command: cli::BundleCommand::Import(_)
                })
        );
        if reads {
            commands::sync::before(r, &store_dir);
        }
    }
    let writes = matches!(
        cli.command,
        Command::Run(_)
            | Command::Rerun(_)
            | Command::Bundle(cli::BundleArgs {
                command: cli::BundleCommand::Import(_)
            })
    );
    let result = match cli.command {
        Command::Run(args) => {
            let code = commands::run::run(args, &store_dir);
            if let Some(r) = remote.as_ref().filter(|_| writes) {
                commands::sync::deliver(r, &store_dir);
            }
            return code;
        }
        Command::Rerun(args) => {
            let code = commands::rerun::rerun(args, &store_dir);
            if let Some(r) = remote.as_ref().filter(|_| writes) {
                commands::sync::deliver(r, &store_dir);
            }
            return code;
        }
        Command::Push(args) => commands::sync::push(args, &store_dir, remote.as_ref(), team_store),
        Command::Pull(args) => commands::sync::pull(args, &store_dir, remote.as_ref(), team_store),
        Command::Show(args) => commands::show::show(args, &store_dir, color),
        Command::List(args) => commands::list::list(args, &store_dir, color),
        Command::Diff(args) => commands::diff::diff(args, &store_dir, color),
        Command::Doctor(args) => return commands::doctor::doctor(args, &store_dir),
        Command::Export(args) => commands::export::export(args, &store_dir),
        Command::Bundle(args) => commands::bundle::bundle(args, &store_dir),
        Command::Completions(args) => commands::docs::completions(args.shell),
        Command::Man(args) => commands::docs::man(args.command.as_deref()),
    };
    if result.is_ok()
        && writes
        && let Some(r) = &remote
    {
        commands::sync::deliver(r, &store_dir);
    }
    match result {
        Ok(()) => 0,
        Err(e) => {
            report_error(&e);
            code::FAILURE
        }
    }
}

/// The store this invocation uses, for error messages that must name its file.
static STORE_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Print an error once, on stderr, with a hint line when there is an obvious fix.
pub fn report_error(e: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    if is_corruption(e) {
        let db = STORE_DIR.get().map_or_else(
            || store::DB_FILE.to_string(),
            |d| d.join(store::DB_FILE).display().to_string(),
        );
        let _ = writeln!(stderr, "lineage: error: the store {db} is damaged: {e:#}");
    } else {
        let _ = writeln!(stderr, "lineage: error: {e:#}");
    }
    let hint = if is_corruption(e) {
        Some(
            "the store file is damaged: `lineage doctor` checks it, `lineage doctor --repair` \
             keeps a backup and rebuilds what can still be read"
                .to_string(),
        )
    } else {
        e.downcast_ref::<Error>().and_then(Error::hint)
    };
    if let Some(hint) = hint {
        let _ = writeln!(stderr, "lineage: hint: {hint}");
    }
}

/// Whether SQLite said the database file is damaged or not a database at all.
fn is_corruption(e: &anyhow::Error) -> bool {
    let corrupt = |code: rusqlite::ErrorCode| {
        matches!(
            code,
            rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
        )
    };
    e.chain().any(|cause| {
        cause
            .downcast_ref::<rusqlite::Error>()
            .and_then(rusqlite::Error::sqlite_error_code)
            .is_some_and(corrupt)
            || cause.to_string().contains("malformed")
            || cause.to_string().contains("file is not a database")
    })
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
