//! Best-effort capture of everything a run depends on. Each module returns a serde struct
//! (or notes saying why it could not); none prints, and none can fail the job.

pub mod config;
pub mod context;
pub mod git;
pub mod gpu;
pub mod software;
pub mod system;
