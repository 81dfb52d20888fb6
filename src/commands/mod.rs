//! One module per subcommand, each with one entry point that takes resolved arguments and
//! returns the exit code.

pub mod diff;
pub mod doctor;
pub mod list;
pub mod rerun;
pub mod run;
pub mod show;
