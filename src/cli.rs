//! Every clap type of the command line. No logic lives here: `commands/` resolves these
//! into validated plans before anything runs.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Record the lineage of any machine-learning job.
///
/// Prefix a command with `lineage run` to record its code, configuration, environment
/// (secrets redacted), hardware and the BLAKE3 content hashes of its inputs and outputs.
#[derive(Debug, Parser)]
#[command(name = "lineage", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Store directory (SQLite `lineage.db` inside). Defaults to $XDG_DATA_HOME/lineage.
    #[arg(long, global = true, env = "LINEAGE_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// When to use colour on stdout.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command and record its lineage.
    Run(RunArgs),
    /// Show one recorded run (the most recent without RUN).
    Show(ShowArgs),
    /// List recorded runs, newest first.
    #[command(visible_alias = "log")]
    List(ListArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: the command's own exit code; 128+N when signal N killed it; \
125 when lineage fails before launch; 126 when the command is not executable; 127 when it is not found."
)]
pub struct RunArgs {
    /// A file or directory the job reads; hashed before launch (repeatable).
    #[arg(short = 'i', long = "input", value_name = "PATH")]
    pub inputs: Vec<PathBuf>,

    /// A file or directory the job writes; hashed after it exits (repeatable).
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub outputs: Vec<PathBuf>,

    /// A config file (YAML, JSON or TOML): kept byte for byte and parsed into parameters.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub configs: Vec<PathBuf>,

    /// An explicit parameter, KEY=VALUE (repeatable; overrides config values).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,

    /// Keep variables whose names match GLOB in clear, even when the name looks secret.
    #[arg(long = "env-allow", value_name = "GLOB")]
    pub env_allow: Vec<String>,

    /// Redact variables whose names match GLOB.
    #[arg(long = "env-deny", value_name = "GLOB")]
    pub env_deny: Vec<String>,

    /// Seconds between GPU memory samples while the job runs.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub sample_interval: f64,

    /// Silence lineage's start line and summary (warnings still print).
    #[arg(short, long)]
    pub quiet: bool,

    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A run id or any unique prefix of one; the most recent run when omitted.
    pub run: Option<String>,

    /// Print one JSON object (see docs/json.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a JSON array (see docs/json.md).
    #[arg(long)]
    pub json: bool,

    /// Show at most N runs.
    #[arg(short = 'n', long, value_name = "N")]
    pub limit: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_the_command_raw_after_double_dash() {
        let cli = Cli::try_parse_from([
            "lineage", "run", "-i", "data", "--", "python", "train.py", "--lr", "0.1",
        ])
        .expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(args.inputs, [PathBuf::from("data")]);
        assert_eq!(args.command, ["python", "train.py", "--lr", "0.1"]);
    }

    #[test]
    fn run_without_double_dash_is_a_usage_error() {
        let err = Cli::try_parse_from(["lineage", "run", "-i", "data"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
