use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    lineage::timing::init();
    let cli = lineage::cli::Cli::parse();
    lineage::timing::mark("arguments parsed");
    let code = lineage::run(cli);
    lineage::timing::mark("done");
    ExitCode::from(code)
}
