//! Errors a user causes or can act on, and the exit codes they map to. The table of exit
//! codes is public API: docs/exit-codes.md documents it, and every code lineage itself
//! exits with is defined here.

use std::path::PathBuf;

/// Exit codes lineage itself uses (the child's own codes pass through `run` and `rerun`).
pub mod code {
    /// Success; also a closed stdout pipe (`lineage list | head`).
    pub const SUCCESS: u8 = 0;
    /// A command other than `run` failed (unknown run id, store problem, ...).
    pub const FAILURE: u8 = 1;
    /// The command line could not be parsed.
    pub const USAGE: u8 = 2;
    /// `rerun`: the command succeeded but its outputs differ from the record.
    pub const OUTPUTS_DIFFER: u8 = 100;
    /// `verify`: some run is unsigned or signed by a key nobody trusts (none tampered).
    pub const UNVERIFIED: u8 = 3;
    /// `verify`: some run's record or bytes changed after it was signed.
    pub const TAMPERED: u8 = 4;
    /// `lineage run --strict`: the job succeeded but read or wrote files nobody declared
    /// (the run is recorded).
    pub const UNDECLARED_IO: u8 = 5;
    /// `lineage status`: something under the paths is stale.
    pub const STALE: u8 = 6;
    /// `run`/`rerun`: lineage failed before launching the command, or refused to.
    pub const CANNOT_LAUNCH: u8 = 125;
    /// The command was found but could not be executed.
    pub const NOT_EXECUTABLE: u8 = 126;
    /// The command was not found.
    pub const NOT_FOUND: u8 = 127;
    /// The job was killed by signal N: 128 + N (as a shell reports it).
    pub fn killed_by(signal: i32) -> u8 {
        (128 + signal).clamp(0, 255) as u8
    }
}

/// The exit code for an error that ended a command: for a command that launches a job
/// (`run`, `rerun`), 125 or, when the command itself is at fault, 126 or 127; otherwise 1.
pub fn exit_code(e: &anyhow::Error, launches: bool) -> u8 {
    if matches!(e.downcast_ref::<Error>(), Some(Error::BadFilter { .. })) {
        return code::USAGE;
    }
    if !launches {
        return code::FAILURE;
    }
    e.downcast_ref::<Error>()
        .map_or(code::CANNOT_LAUNCH, Error::launch_code)
}

/// Whether SQLite said the database file is damaged or not a database at all, anywhere in
/// the chain of causes (by SQLite's result code, never by the text of a message).
pub fn is_corruption(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<rusqlite::Error>()
            .and_then(rusqlite::Error::sqlite_error_code)
            .is_some_and(|c| {
                matches!(
                    c,
                    rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
                )
            })
    })
}

/// Whether a write failed for want of room: SQLite's full or I/O result (a quota's EDQUOT
/// and a file-size limit's EFBIG are I/O errors to it), or ENOSPC, EDQUOT or EFBIG.
pub fn is_no_room(e: &anyhow::Error) -> bool {
    e.chain().any(is_no_room_itself)
}

/// [`is_no_room`] for an error and its sources.
pub fn causes_no_room(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |e| e.source()).any(is_no_room_itself)
}

/// [`is_no_room`] for one cause.
fn is_no_room_itself(cause: &(dyn std::error::Error + 'static)) -> bool {
    use nix::libc::{EDQUOT, EFBIG, ENOSPC};
    use rusqlite::ErrorCode as C;
    cause_is(
        cause,
        &[C::DiskFull, C::SystemIoFailure],
        &[ENOSPC, EDQUOT, EFBIG],
    )
}

/// Whether `cause` is SQLite's error with one of `codes`, or an OS error with one of
/// `errnos`.
fn cause_is(
    cause: &(dyn std::error::Error + 'static),
    codes: &[rusqlite::ErrorCode],
    errnos: &[i32],
) -> bool {
    let sqlite = cause
        .downcast_ref::<rusqlite::Error>()
        .and_then(rusqlite::Error::sqlite_error_code)
        .is_some_and(|c| codes.contains(&c));
    let os = cause
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::raw_os_error)
        .is_some_and(|n| errnos.contains(&n));
    sqlite || os
}

/// Whether the store could not be written for want of room ([`is_no_room`]) or of a
/// writable disk (SQLite's read-only result; EROFS or EIO), anywhere in the chain of causes:
/// `lineage run` then runs the job anyway and records it if it can. Not a lock held too long
/// or locks that do not work (a network filesystem): that store would keep every job
/// unrecorded, so it is refused as before.
pub fn is_store_unwritable(e: &anyhow::Error) -> bool {
    use nix::libc::{EIO, EROFS};
    e.chain().any(|cause| {
        is_no_room_itself(cause) || cause_is(cause, &[rusqlite::ErrorCode::ReadOnly], &[EROFS, EIO])
    })
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("input {path:?} does not exist")]
    MissingInput { path: PathBuf },

    #[error("config {path:?} does not exist")]
    MissingConfig { path: PathBuf },

    #[error("output {path:?} ends in / (a directory), but it is a file")]
    OutputNotADirectory { path: PathBuf },

    #[error("-c {0:?}: the keys after the colon are not flattened keys")]
    BadConfigKeys(PathBuf),

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

    /// A `list`/`compare` filter or column that cannot be read (exit 2, a usage error).
    #[error("{flag} {value:?} is not understood: {why}")]
    BadFilter {
        flag: &'static str,
        value: String,
        why: String,
    },

    #[error("--sample-interval must be a positive number of seconds, got {0}")]
    BadSampleInterval(f64),

    #[error("strict runs need observation, which {0} switches off")]
    StrictUnobserved(String),

    #[error("command not found: {0}")]
    CommandNotFound(String),

    #[error("command is not executable: {0}")]
    CommandNotExecutable(String),

    #[error("no run matches {0:?}")]
    RunNotFound(String),

    #[error("{name:?} cannot be a tag: {why}")]
    BadTagName { name: String, why: &'static str },

    #[error("tag {name:?} already names run {run}")]
    TagTaken { name: String, run: String },

    #[error("no run is tagged {0:?}")]
    UnknownTag(String),

    #[error("run {prefix:?} is ambiguous: it matches {}", candidates.join(", "))]
    AmbiguousRun {
        prefix: String,
        candidates: Vec<String>,
    },

    #[error("nothing is known about {0}: no recorded run read or wrote these bytes")]
    UnknownArtifact(String),

    #[error(
        "nothing is known about {path} as a whole (no recorded run read or wrote this directory), but {count} file{} inside hold{} bytes recorded runs made: {}{}",
        if *count == 1 { "" } else { "s" },
        if *count == 1 { "s" } else { "" },
        named.join(", "),
        if *count > named.len() { format!(" and {} more", count - named.len()) } else { String::new() }
    )]
    UnknownDirectory {
        /// As the user gave it (escaped where shown).
        path: String,
        /// How many files inside hold bytes a recorded run made.
        count: usize,
        /// The first of them, as the user would name them (escaped when printed).
        named: Vec<String>,
    },

    #[error(
        "{path} was modified after run {run} produced it{within}: recorded {recorded}, now {now}"
    )]
    ModifiedAfter {
        path: String,
        /// ` (as metrics.json inside eval)` when the run's output was a directory around it.
        within: String,
        run: String,
        recorded: String,
        now: String,
    },

    #[error("\"{0}\" is neither an existing path nor a recorded run id")]
    NeitherPathNorRun(String),

    #[error("no recorded run produced {0}")]
    NoProducer(String),

    #[error("no run that succeeded produced {path}: only {status} run {run} wrote it")]
    OnlyFailedProducer {
        path: String,
        run: String,
        status: &'static str,
    },

    #[error("{0} applies to a file, a directory or a hash, not to a run")]
    GraphOptionOnRun(&'static str),

    #[error("{0:?} is not a valid hash (expected blake3: and 8 to 64 hex digits)")]
    BadHash(String),

    #[error("{prefix} is ambiguous: {count} recorded artifacts have a hash that starts with it")]
    AmbiguousHash { prefix: String, count: usize },

    #[error("run {run}: {why}")]
    UnreadableRun { run: String, why: String },

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

    #[error("cannot open store {path}")]
    StoreOpen {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("this lineage was built without the team-store feature, which {0} needs")]
    NoTeamStore(&'static str),

    #[error("not rerunning {run}: its record was changed after it was signed ({reason})")]
    TamperedRecord { run: String, reason: String },

    #[error("not signing: run {run} does not verify ({standing})")]
    UnverifiedForSigning { run: String, standing: String },

    #[error("not rerunning {run}: now differs from the record: {}", reasons.join("; "))]
    RerunRefused {
        run: String,
        reasons: Vec<String>,
        /// Whether the rerun was to use a worktree (then the hint does not suggest one).
        worktree: bool,
    },

    #[error(
        "not rerunning {run}: it is rank {rank} of a {world_size}-rank launch ({launch}), and one rank alone would wait for its peers"
    )]
    RankOfLaunch {
        run: String,
        rank: u32,
        world_size: u32,
        launch: String,
        launcher: String,
    },

    #[error("not rerunning {run}: {} redacted when recorded", args.iter().map(|(i, shown)| format!("argument {i} ({shown:?})")).collect::<Vec<_>>().join(", "))]
    RedactedArguments {
        run: String,
        /// (position, what the record shows).
        args: Vec<(usize, String)>,
    },
}

impl Error {
    /// A line of advice printed under the error, when there is an obvious fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::MissingInput { .. } | Error::MissingConfig { .. } => {
                Some("check the path, or drop the flag if the job creates it".into())
            }
            Error::OutputNotADirectory { path } => Some(format!(
                "drop the trailing / to declare the file: -o {}",
                path.to_string_lossy().trim_end_matches('/')
            )),
            Error::BadParam(_) => Some("write it as --param lr=0.01".into()),
            Error::BadConfigKeys(_) => Some(
                "name the keys the stage depends on as they flatten, comma-separated: -c params.yaml:train,eval.threshold".into(),
            ),
            Error::BadFilter { flag, .. } => Some(match *flag {
                "--where" => "write it as KEY OP VALUE, OP one of = != < <= > >=: \
                              --where train.lr=0.01, --where 'metrics.acc>=0.9'"
                    .into(),
                "--since" | "--until" => format!(
                    "write a date (2026-11-01), an RFC 3339 time (2026-11-01T09:30:00Z) \
                     or an age (30m, 12h, 2d, 1w): {flag} 2d"
                ),
                "--sort" => "sort by a param or a metric: --sort metrics.acc".into(),
                _ => "write params.KEY or metrics.KEY, globs allowed: --columns 'metrics.*,params.train.*'".into(),
            }),
            Error::StrictUnobserved(_) => Some(
                "drop `[run] observe = false` (or `strict`) from lineage.toml, or `--no-observe` from the command".into(),
            ),
            Error::AmbiguousRun { .. } => Some("type more characters of the run id".into()),
            Error::AmbiguousHash { .. } => Some("type more hex digits of the hash".into()),
            Error::RunNotFound(id) | Error::NeitherPathNorRun(id)
                if id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Some(format!(
                    "for content, say `blake3:{id}`; `lineage list` shows the recorded runs"
                ))
            }
            Error::RunNotFound(id) if id.len() < 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some("give a short id as printed (8 hex digits or more) or a prefix of the full id; `lineage list` shows the recorded runs".into())
            }
            Error::RunNotFound(id) | Error::NeitherPathNorRun(id)
                if !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') =>
            {
                Some("`lineage list` shows the recorded runs, `lineage tag` the tags".into())
            }
            Error::RunNotFound(_) | Error::NeitherPathNorRun(_) => {
                Some("`lineage list` shows the recorded runs".into())
            }
            Error::BadTagName { .. } => Some(
                "use letters (beyond a-f), digits and . _ - / + @, starting with a letter or digit: `best`, `v1.2`, `baseline/nov`".into(),
            ),
            Error::TagTaken { name, .. } => Some(format!(
                "`lineage tag --force RUN {name}` moves it (recorded, the old run keeps its history); or pick another name"
            )),
            Error::UnknownTag(_) => Some("`lineage tag` lists the tags".into()),
            Error::UnknownDirectory { named, .. } => named.first().map(|f| {
                format!("ask about a file: `lineage show {f}` shows where its bytes came from")
            }),
            Error::ModifiedAfter { run, .. } => Some(format!(
                "`lineage show {run}` shows the run that wrote the recorded bytes"
            )),
            Error::UnreadableRun { run, .. } => Some(format!(
                "`lineage show {run}` shows what is left of it; `lineage doctor` lists every such run"
            )),
            Error::OnlyFailedProducer { path, .. } => Some(format!(
                "`lineage show {path} --all` shows it; rerun it, or compare runs by id"
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
            Error::NoTeamStore(_) => {
                Some("install with the default features (`cargo install --locked --path .`)".into())
            }
            Error::TamperedRecord { run, .. } => Some(format!(
                "`lineage verify {run}` says what changed; --force reruns it anyway"
            )),
            Error::UnverifiedForSigning { run, .. } => Some(format!(
                "--sign attests only runs that verify: `lineage verify {run}`, and trust their \
                 signer under [trust] keys in lineage.toml"
            )),
            Error::RerunRefused { worktree, .. } => Some(format!(
                "--force reruns anyway{}",
                if *worktree {
                    ""
                } else {
                    ", --worktree restores the recorded code"
                }
            )),
            Error::RankOfLaunch { launcher, .. } => Some(format!(
                "run the launch again, every rank: {}",
                match launcher.as_str() {
                    "slurm" => "`srun lineage run -- ...` in a job step of the same size",
                    "torch" => {
                        "`lineage run -- torchrun ...` (one run), or `torchrun --no-python lineage run -- ...`"
                    }
                    _ => "`mpirun lineage run -- ...`, or `lineage run -- mpirun ...` (one run)",
                }
            )),
            Error::RedactedArguments { args, .. } => Some(format!(
                "set {} to the whole original argument and rerun",
                args.iter()
                    .map(|(i, _)| format!("LINEAGE_ARG_{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
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
