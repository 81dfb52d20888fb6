//! lineage records the lineage of machine-learning jobs: `lineage run` wraps a command and
//! stores its code, configuration, environment (secrets redacted), hardware and the BLAKE3
//! hashes of its inputs and outputs in a per-user SQLite store; `show`, `list`, `diff`,
//! `rerun` and `export` read it back.
//!
//! ARCHITECTURE.md at the root of the repository is the map: the layers, what each module
//! owns and must never do, and the invariants. In short: [`main`] parses the command line
//! (`cli`), resolves the settings and the store (`location`) and hands a context to one
//! command (`commands`); commands use the engines (`capture`, `hash`, `redact`, `store`,
//! `compare`, `export`, `output`), which share the types of [`model`], and print only
//! through `ui`. The library is public only as far as the binary, the benchmarks and the
//! property tests need it.

#![warn(missing_docs)]

// What the binary, the benchmarks and the property tests use is public; the rest is the
// crate's own.
pub(crate) mod api;
pub mod capture;
pub(crate) mod child;
pub(crate) mod cli;
pub(crate) mod commands;
pub(crate) mod compare;
pub(crate) mod complete;
pub(crate) mod error;
pub(crate) mod export;
pub(crate) mod hash;
pub(crate) mod host;
pub(crate) mod location;
pub mod model;
pub(crate) mod observe;
pub(crate) mod output;
pub(crate) mod progress;
pub mod redact;
pub(crate) mod settings;
pub mod sign;
pub mod store;
pub(crate) mod timing;
pub(crate) mod ui;
pub(crate) mod watch;

use anyhow::Result;

use cli::{BundleCommand, Cli, Command};
use commands::Context;
use location::StoreLocation;

/// The whole program: answer the shell's completion requests, parse the command line, run
/// the command; returns the process exit code (docs/exit-codes.md).
pub fn main() -> u8 {
    timing::init();
    // `COMPLETE=bash lineage ...`: the shell asking for completions (see `lineage completions`).
    clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command)
        .completer("lineage")
        .complete();
    let cli = match parse_command_line() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    timing::mark("arguments parsed");
    let code = run(cli);
    timing::mark("done");
    code
}

/// Parse the command line. Err: the exit code after clap printed its help, version or usage
/// error (2, `code::USAGE`, for a command line that cannot be parsed).
fn parse_command_line() -> Result<Cli, u8> {
    use clap::Parser;
    Cli::try_parse().map_err(|e| {
        if e.use_stderr() {
            // A usage error quotes what was typed: through ui, control characters escaped.
            ui::usage(&e.render().to_string());
            return error::code::USAGE;
        }
        // Help and version on stdout; a closed pipe (`lineage --help | head -1`) is fine.
        match e.print() {
            Err(io) if io.kind() != std::io::ErrorKind::BrokenPipe => error::code::FAILURE,
            _ => error::code::SUCCESS,
        }
    })
}

/// Run the parsed command line; returns the process exit code (docs/exit-codes.md).
fn run(cli: Cli) -> u8 {
    child::settle_signals();
    let launches = matches!(cli.command, Command::Run(_) | Command::Rerun(_));
    // Generated from the command line's definition: no settings, no store.
    let docs = match &cli.command {
        Command::Completions(args) => Some(commands::docs::completions(args.shell)),
        Command::Man(args) => Some(commands::docs::man(args.command.as_deref())),
        _ => None,
    };
    if let Some(result) = docs {
        return finish(result.map(|()| error::code::SUCCESS), None, false);
    }
    let ctx = match context(&cli) {
        Ok(ctx) => ctx,
        Err(e) => return finish(Err(e), None, launches),
    };
    #[cfg(feature = "team-store")]
    if let Some(remote) = ctx.store.team()
        && reads(&cli.command)
        && let Err(e) = commands::sync::before(remote, ctx.store.dir())
    {
        return finish(Err(e), Some(ctx.store.dir()), launches);
    }
    let writes = writes(&cli.command);
    let result = dispatch(cli.command, &ctx);
    // A job's run is delivered whatever its outcome; an import only once it succeeded.
    #[cfg(feature = "team-store")]
    if let Some(remote) = ctx.store.team()
        && writes
        && (launches || result.is_ok())
    {
        commands::sync::deliver(remote, ctx.store.dir());
    }
    #[cfg(not(feature = "team-store"))]
    let _ = writes;
    finish(result, Some(ctx.store.dir()), launches)
}

/// The settings files, the store and the colour decision every command works with.
fn context(cli: &Cli) -> Result<Context> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
    let settings = settings::for_dir(&cwd)?;
    let store = StoreLocation::resolve(cli.store.as_ref(), settings.store.as_ref())?;
    #[cfg(feature = "team-store")]
    for w in store.team().map_or(&[][..], |r| &r.warnings) {
        ui::warn(w);
    }
    Ok(Context {
        store,
        settings,
        color: ui::use_color(cli.color),
    })
}

fn dispatch(command: Command, ctx: &Context) -> Result<u8> {
    let done = |r: Result<()>| r.map(|()| error::code::SUCCESS);
    match command {
        Command::Run(args) => commands::run::run(args, ctx),
        Command::Rerun(args) => commands::rerun::rerun(args, ctx),
        Command::Status(args) => commands::status::status(args, ctx),
        Command::Show(args) => done(commands::show::show(args, ctx)),
        Command::List(args) => done(commands::list::list(args, ctx)),
        Command::Tag(args) => done(commands::tag::tag(args, ctx)),
        Command::Note(args) => done(commands::tag::note(args, ctx)),
        Command::Compare(args) => done(commands::compare_runs::compare(args, ctx)),
        Command::Diff(args) => done(commands::diff::diff(args, ctx)),
        Command::Doctor(args) => commands::doctor::doctor(args, ctx),
        Command::Verify(args) => commands::verify::verify(args, ctx),
        Command::Export(args) => done(commands::export::export(args, ctx)),
        Command::Bundle(args) => done(commands::bundle::bundle(args, ctx)),
        #[cfg(feature = "team-store")]
        Command::Push(args) => done(commands::sync::push(args, ctx)),
        #[cfg(feature = "team-store")]
        Command::Pull(args) => done(commands::sync::pull(args, ctx)),
        #[cfg(feature = "team-store")]
        Command::Team(args) => done(commands::sync::team(args, ctx)),
        #[cfg(not(feature = "team-store"))]
        Command::Push(_) => Err(error::Error::NoTeamStore("`lineage push`").into()),
        #[cfg(not(feature = "team-store"))]
        Command::Pull(_) => Err(error::Error::NoTeamStore("`lineage pull`").into()),
        #[cfg(not(feature = "team-store"))]
        Command::Team(_) => Err(error::Error::NoTeamStore("`lineage team`").into()),
        Command::Completions(_) | Command::Man(_) => unreachable!("answered before the store"),
    }
}

/// The exit code of a command's result, its error (if any) reported once.
fn finish(result: Result<u8>, store: Option<&std::path::Path>, launches: bool) -> u8 {
    match result {
        Ok(code) => code,
        Err(e) => {
            ui::error(&e, store);
            error::exit_code(&e, launches)
        }
    }
}

/// Commands that read the store: with a team store they first deliver this machine's runs
/// and fetch the new ones.
#[cfg(feature = "team-store")]
fn reads(command: &Command) -> bool {
    !matches!(
        command,
        Command::Run(_)
            | Command::Completions(_)
            | Command::Man(_)
            | Command::Push(_)
            | Command::Pull(_)
            | Command::Team(_)
            | Command::Doctor(_)
            | Command::Bundle(cli::BundleArgs {
                command: BundleCommand::Import(_)
            })
    )
}

/// Commands that record runs or annotations: with a team store they deliver them when done.
fn writes(command: &Command) -> bool {
    matches!(
        command,
        Command::Run(_)
            | Command::Rerun(_)
            | Command::Tag(_)
            | Command::Note(_)
            | Command::Bundle(cli::BundleArgs {
                command: BundleCommand::Import(_)
            })
    )
}
