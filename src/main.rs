//! The `lineage` binary: everything is in the library (`lineage::main`).

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(lineage::main())
}
