use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = lineage::cli::Cli::parse();
    ExitCode::from(lineage::run(cli))
}
