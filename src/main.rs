use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    lineage::timing::init();
    // `COMPLETE=bash lineage ...`: the shell asking for completions (see `lineage completions`).
    clap_complete::CompleteEnv::with_factory(lineage::cli::Cli::command)
        .completer("lineage")
        .complete();
    let cli = lineage::cli::Cli::parse();
    lineage::timing::mark("arguments parsed");
    let code = lineage::run(cli);
    lineage::timing::mark("done");
    ExitCode::from(code)
}
