//! Best-effort capture of everything a run depends on. Each module returns a serde struct
//! (or notes saying why it could not); none prints, and none can fail the job.

pub mod argv_params;
pub mod config;
pub(crate) mod context;
pub(crate) mod git;
pub(crate) mod gpu;
pub(crate) mod software;
pub(crate) mod system;
