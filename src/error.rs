//! Errors a user causes or can act on, and the exit codes they map to. The table of exit
//! codes is public API: docs/exit-codes.md documents it.

use std::path::PathBuf;

/// Exit codes lineage itself uses (the child's own codes pass through `run`).
pub mod code {
    /// A command other than `run` failed (unknown run id, store problem, ...).
    pub const FAILURE: u8 = 1;
    /// The command line could not be parsed (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// lineage failed before launching the command.
    pub const CANNOT_LAUNCH: u8 = 125;
    /// The command was found but could not be executed.
    pub const NOT_EXECUTABLE: u8 = 126;
    /// The command was not found.
    pub const NOT_FOUND: u8 = 127;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("input {path:?} does not exist")]
    MissingInput { path: PathBuf },

    #[error("config {path:?} does not exist")]
    MissingConfig { path: PathBuf },

    #[error("cannot read {what} {path:?}: {cause}")]
    Unreadable {
        what: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("--param {0:?} is not KEY=VALUE")]
    BadParam(String),

    #[error("invalid glob {glob:?} for {flag}: {reason}")]
    BadGlob {
        flag: &'static str,
        glob: String,
        reason: String,
    },

    #[error("--sample-interval must be a positive number of seconds, got {0}")]
    BadSampleInterval(f64),

    #[error("command not found: {0}")]
    CommandNotFound(String),

    #[error("command is not executable: {0}")]
    CommandNotExecutable(String),

    #[error("no run matches {0:?}")]
    RunNotFound(String),

    #[error("run prefix {prefix:?} is ambiguous: it matches {}", candidates.join(", "))]
    AmbiguousRun {
        prefix: String,
        candidates: Vec<String>,
    },

    #[error("nothing is known about {0}: no recorded run read or wrote these bytes")]
    UnknownArtifact(String),

    #[error("{path} was modified after run {run} produced it: recorded {recorded}, now {now}")]
    ModifiedAfter {
        path: String,
        run: String,
        recorded: String,
        now: String,
    },

    #[error("{0:?} is neither an existing path nor a recorded run id")]
    NeitherPathNorRun(String),

    #[error("no recorded run produced {0}")]
    NoProducer(String),

    #[error("{0} applies to a file, a directory or a hash, not to a run")]
    GraphOptionOnRun(&'static str),

    #[error("{0:?} is not a valid hash (expected blake3: and 64 hex digits)")]
    BadHash(String),

    #[error("no runs recorded yet in {0}")]
    NoRuns(String),

    #[error(
        "store {path} was written by a newer lineage (schema version {found}, this lineage knows up to {known})"
    )]
    StoreTooNew {
        path: String,
        found: i64,
        known: i64,
    },

    #[error(
        "store {path} is owned by uid {owner}, not by you (uid {me}): refusing to read or write it"
    )]
    StoreNotOwned { path: String, owner: u32, me: u32 },

    #[error("cannot open store {path}: {reason}")]
    StoreOpen { path: String, reason: String },
}

impl Error {
    /// A line of advice printed under the error, when there is an obvious fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::MissingInput { .. } | Error::MissingConfig { .. } => {
                Some("check the path, or drop the flag if the job creates it".into())
            }
            Error::BadParam(_) => Some("write it as --param lr=0.01".into()),
            Error::AmbiguousRun { .. } => Some("type more characters of the run id".into()),
            Error::RunNotFound(_) | Error::NeitherPathNorRun(_) => {
                Some("`lineage list` shows the recorded runs".into())
            }
            Error::ModifiedAfter { run, .. } => Some(format!(
                "`lineage show {run}` shows the run that wrote the recorded bytes"
            )),
            Error::GraphOptionOnRun(_) => {
                Some("pass one of the run's outputs, e.g. `lineage show out/model.pt`".into())
            }
            Error::StoreTooNew { .. } => {
                Some("upgrade lineage, or point LINEAGE_STORE at another directory".into())
            }
            Error::StoreNotOwned { .. } => Some(
                "point LINEAGE_STORE at a directory of your own (a symlink may lead elsewhere)"
                    .into(),
            ),
            Error::StoreOpen { .. } => Some(
                "check the directory's permissions and free space, or set LINEAGE_STORE".into(),
            ),
            _ => None,
        }
    }

    /// The exit code this error means when `run` fails before launch.
    pub fn launch_code(&self) -> u8 {
        match self {
            Error::CommandNotFound(_) => code::NOT_FOUND,
            Error::CommandNotExecutable(_) => code::NOT_EXECUTABLE,
            _ => code::CANNOT_LAUNCH,
        }
    }
}
