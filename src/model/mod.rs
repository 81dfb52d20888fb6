//! The domain types everything else shares: what a run captured, the artifacts it read and
//! wrote, and the edges between them. The captured snapshot (`Capture`) is stored as one JSON
//! document per run; runs, artifacts, directory manifests, edges, params and blobs are tables.

mod annotation;
pub mod graph;
mod seal;
pub mod text;
pub use annotation::{
    Annotation, AnnotationKind, MAX_NOTE, Note, RunAnnotations, TagRow, tag_name_problem,
};
pub use seal::{Seal, Standing};

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A moment, as the store writes times (UTC, microseconds: they sort as text).
pub fn stamp(at: std::time::SystemTime) -> String {
    jiff::Timestamp::try_from(at)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A recorded command line as one line a POSIX shell would read back into the same
/// arguments: each argument left bare when it needs no quoting, else in single quotes
/// (`'it'\''s'`). Arguments that are not UTF-8 are shown lossily.
pub fn command_line(argv: &[Vec<u8>]) -> String {
    argv.iter()
        .map(|a| shell_quote(&String::from_utf8_lossy(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One argument as [`command_line`] shows it.
fn shell_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Whether one of two paths is, holds or lies inside the other (an input a job was declared
/// to write: `-i ckpt.pt -o ckpt.pt`, `-i runs -o runs/log.txt`).
pub fn nested(a: &std::path::Path, b: &std::path::Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// The files a store directory holds, by name: its database, the database's WAL and shared
/// memory, the signing key, and the room kept for recording on a full disk (`store` names
/// each the same).
pub const STORE_FILES: [&str; 5] = [
    "lineage.db",
    "lineage.db-wal",
    "lineage.db-shm",
    "secret.key",
    "lineage.db-room",
];

/// First of the 256 code points (U+10FF00 to U+10FFFF, the end of a private-use plane) that
/// stand for raw bytes in a stored path: see [`path_text`].
const PATH_BYTE: u32 = 0x10_FF00;

/// A path's bytes as the store keeps them: text, losslessly. Valid UTF-8 is kept as it is;
/// each byte of an invalid sequence becomes the code point U+10FF00 + byte (as Python's
/// `surrogateescape` does with surrogates, which UTF-8 text cannot hold); so does each byte
/// of one of those 256 code points where a name really has it, so that every text decodes
/// to one byte string. A path that is valid UTF-8 without them (every path lineage stored
/// before) reads exactly as before, and the text travels wherever text does (PostgreSQL,
/// JSON). [`path_bytes`] is the inverse.
pub fn path_text(bytes: &[u8]) -> String {
    let escape = |out: &mut String, raw: &[u8]| {
        for b in raw {
            out.push(char::from_u32(PATH_BYTE + u32::from(*b)).unwrap_or('\u{fffd}'));
        }
    };
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if u32::from(c) >= PATH_BYTE {
                let mut buf = [0u8; 4];
                escape(&mut out, c.encode_utf8(&mut buf).as_bytes());
            } else {
                out.push(c);
            }
        }
        escape(&mut out, chunk.invalid());
    }
    out
}

/// The bytes of a path stored by [`path_text`].
pub fn path_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match u32::from(c).checked_sub(PATH_BYTE) {
            Some(b) => out.push(b as u8),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

/// The filesystem path of a path stored by [`path_text`].
pub fn path_of(text: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStringExt;
    std::path::PathBuf::from(std::ffi::OsString::from_vec(path_bytes(text)))
}

/// The first `n` characters of `s` (all of it when shorter): for ids and commits shown cut,
/// which may come from a store or an import that holds anything, so never cut mid-character.
pub fn prefix(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// A BLAKE3 digest, printed as `blake3:<64 lowercase hex>`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// What precedes the hex digits wherever a hash is printed.
    pub const PREFIX: &'static str = "blake3:";

    /// The BLAKE3 of bytes held in memory.
    pub fn of(bytes: &[u8]) -> Hash {
        Hash(*blake3::hash(bytes).as_bytes())
    }

    /// The 64 lowercase hex digits, without the prefix.
    pub fn to_hex(self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// Parse `blake3:<hex>` (or bare hex).
    pub fn parse(s: &str) -> Option<Hash> {
        let hex = s.strip_prefix(Self::PREFIX).unwrap_or(s);
        blake3::Hash::from_hex(hex)
            .ok()
            .map(|h| Hash(*h.as_bytes()))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(d)?;
        Hash::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("bad hash {s:?}")))
    }
}

/// How a run ended, or that it has not yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Still going (or lineage was killed and no command has looked since).
    Running,
    /// The job exited 0.
    Succeeded,
    /// The job exited with another code, or died of a signal other than a stopping one.
    Failed,
    /// The job was stopped: lineage received SIGINT, SIGTERM, SIGHUP or SIGQUIT, or the job died
    /// of one of those or of SIGKILL.
    Interrupted,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 4] = [
        Status::Running,
        Status::Succeeded,
        Status::Failed,
        Status::Interrupted,
    ];

    /// As stored and printed: `running`, `succeeded`, `failed`, `interrupted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        }
    }

    /// From the stored form; None for anything else.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// What an artifact is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// A regular file.
    File,
    /// A directory: its hash covers every file's name, content and executable bit.
    Dir,
}

impl ArtifactKind {
    /// As stored: `dir`, anything else a file.
    pub fn parse(s: &str) -> ArtifactKind {
        if s == "dir" {
            ArtifactKind::Dir
        } else {
            ArtifactKind::File
        }
    }

    /// As stored and printed: `file` or `dir`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::File => "file",
            ArtifactKind::Dir => "dir",
        }
    }
}

/// What a declared path was to a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read (`-i`).
    Input,
    /// Written (`-o`).
    Output,
    /// A config read and parsed into params (`-c`).
    Config,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Input, Role::Output, Role::Config];

    /// From the stored form; None for anything else.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// As stored and printed: `input`, `output`, `config`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Input => "input",
            Role::Output => "output",
            Role::Config => "config",
        }
    }
}

/// One file inside a directory artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Relative path with `/` separators (lossy UTF-8 for display; the hash uses raw bytes).
    pub path: String,
    /// The file's content hash.
    pub hash: Hash,
    /// Its size in bytes.
    pub size: u64,
    /// Whether any execute bit is set (part of the directory hash).
    pub executable: bool,
}

/// A hashed file or directory. A directory's manifest (its files) is not held here: it is
/// streamed to the store while hashing (see `hash::Sink`).
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The content hash: BLAKE3 of the bytes, or the directory hash (docs/hashing.md).
    pub hash: Hash,
    /// A file or a directory.
    pub kind: ArtifactKind,
    /// Bytes: the file's size, or the sum of the sizes of the files in the directory.
    pub size: u64,
    /// 1 for a file; the files hashed for a directory.
    pub file_count: u64,
}

/// Everything captured about a run apart from its command, times and edges.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Capture {
    /// The git state of the repository the run started in; None outside one (`git_absent` says why).
    pub git: Option<GitState>,
    /// Why `git` is absent (not a repository, bare, unborn HEAD, ...).
    pub git_absent: Option<String>,
    /// The script the command runs, when argv names an existing file.
    pub script: Option<FileRef>,
    /// Environment, secrets replaced by `[REDACTED]`.
    pub env: BTreeMap<String, String>,
    /// Redacted variables: name -> keyed BLAKE3 of the value (per-store key), never the value.
    pub env_redacted: BTreeMap<String, String>,
    /// Redacted arguments: position in argv -> keyed BLAKE3 of the original argument.
    #[serde(default)]
    pub argv_redacted: BTreeMap<usize, String>,
    /// Configs that held secrets: path as given -> blob of the copy stored with them redacted
    /// (the config's own hash stays that of its real bytes).
    #[serde(default)]
    pub config_redacted: BTreeMap<String, Hash>,
    /// Host, OS, CPU, memory and GPUs.
    pub system: SystemInfo,
    /// Who ran it.
    pub owner: Owner,
    /// The container it ran in, if any.
    pub container: Option<Container>,
    /// The scheduler job it ran under (Slurm, Kubernetes, CI), if any.
    pub scheduler: Option<Scheduler>,
    /// The Python interpreter and packages, and the lock files.
    pub software: Software,
    /// Warnings recorded while capturing (also printed on stderr).
    pub notes: Vec<String>,
    /// What observing the job's file calls found beyond its edges; None for a run recorded
    /// before lineage observed, or with observation switched off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedIo>,
    /// The keys a stage depends on, by config path as given (`-c params.yaml:train`): only
    /// those became its params, and only they are compared by `rerun` and `status`. A config
    /// absent here was taken whole.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_keys: BTreeMap<String, Vec<String>>,
    /// The metrics files declared with `-m` (as given), read after the job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics_files: Vec<String>,
    /// The values the job's command line (`argv`) or `-p` (`cli`) replaced: a config's value
    /// of the same key (or the command line's, under a `-p`), as stored, in the order replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub param_overrides: Vec<ParamOverride>,
    /// The launch this run was one rank of (`srun lineage run ...`, `torchrun --no-python
    /// lineage run ...`); None for a run that is a launch of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Group>,
    /// What the job told lineage itself through the in-job API (docs/python.md); None when it
    /// said nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<FromJob>,
}

/// What a job sent over the in-job API beyond its metrics, params and paths (which are
/// rows of their own): the series of each metric logged more than once or with a step, and
/// what was lost on the way.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FromJob {
    /// Messages lineage took.
    pub messages: u64,
    /// Messages the job's processes dropped because lineage had not caught up (never
    /// blocking the job); the last value of each metric is still sent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
    /// Each series, by metric key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Series>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A metric's points, kept as a blob: a JSON list of `[step, value]` (`step` null when the job
/// gave none), in the order they arrived; its last point is the metric's value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The metric's key, as in `metrics`.
    pub key: String,
    /// The blob that holds its points.
    pub blob: Hash,
    /// How many points it holds.
    pub points: u64,
    /// The step of the last point, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_step: Option<i64>,
}

/// One rank of a launch that started several processes (Slurm's `srun`, `torchrun`,
/// `mpirun`), each recorded by a `lineage run` of its own: the runs of one launch share `id`
/// (docs/recording.md, "Distributed jobs").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The launch's identity: 32 hex digits of a BLAKE3 over what the launcher told every
    /// rank (job and step ids, rendezvous address and id), so each rank, on any node, finds
    /// the same id without asking the others.
    pub id: String,
    /// The launcher whose variables said so: `slurm`, `torch`, `mpi` (Open MPI, PMIx) or `pmi`
    /// (MPICH, Intel MPI).
    pub launcher: String,
    /// The launch as people name it: `slurm job 4242 step 0`, `torchrun 10.0.0.1:29500`.
    pub launch: String,
    /// This run's rank in the launch, from 0.
    pub rank: u32,
    /// How many ranks the launch started.
    pub world_size: u32,
    /// Its rank on its node, when the launcher says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_rank: Option<u32>,
}

/// A recorded rank of a launch, as `show` and `list` present the launch.
#[derive(Clone, Debug)]
pub struct GroupMember {
    /// The run's id.
    pub id: String,
    /// Its rank (`Group::rank`).
    pub rank: u32,
    /// Its rank on its node.
    pub local_rank: Option<u32>,
    /// The host it ran on.
    pub hostname: Option<String>,
    /// How it ended.
    pub status: Status,
    /// The job's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// When it started.
    pub started_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
    /// What it used (None while it runs).
    pub resources: Option<Resources>,
}

/// The ranks of one launch recorded in this store, as `list` shows them: one row.
#[derive(Clone, Debug)]
pub struct GroupRow {
    /// What every member's capture says of the launch (that of the lowest rank).
    pub group: Group,
    /// The recorded ranks, by rank.
    pub members: Vec<GroupMember>,
}

impl GroupRow {
    /// The launch's status: running while a rank runs, else failed when one failed, else
    /// interrupted when one was, else succeeded (all ranks recorded or not).
    pub fn status(&self) -> Status {
        let any = |s: Status| self.members.iter().any(|m| m.status == s);
        [Status::Running, Status::Failed, Status::Interrupted]
            .into_iter()
            .find(|s| any(*s))
            .unwrap_or(Status::Succeeded)
    }
}

/// A param's value that another source replaced (docs/recording.md, "Parameters").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamOverride {
    /// The flattened key.
    pub key: String,
    /// Where the replaced value came from: a config's path as given, or `argv`.
    pub source: String,
    /// The replaced value, as stored (secrets replaced by `[REDACTED]`).
    pub value: serde_json::Value,
}

impl Capture {
    /// The blobs this capture names: the uncommitted patch, the untracked files kept (their
    /// bytes, or the copy with secrets redacted), the configs kept redacted and the package
    /// list. (A config kept as it is is named by its edge.)
    pub fn blob_refs(&self) -> Vec<Hash> {
        let mut refs = Vec::new();
        if let Some(g) = &self.git {
            refs.extend(g.patch);
            refs.extend(g.patch_redacted);
            for u in &g.untracked {
                refs.push(u.hash);
                refs.extend(u.redacted_blob);
            }
        }
        refs.extend(self.config_redacted.values().copied());
        if let Some(py) = &self.software.python {
            refs.extend(py.packages);
        }
        if let Some(api) = &self.api {
            refs.extend(api.series.iter().map(|s| s.blob));
        }
        refs
    }
}

/// A repository's state when a run started.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GitState {
    /// The repository's work tree root.
    pub root: String,
    /// When its `.git` was made (its birth time, as the store writes times), where the file
    /// system keeps it: a repository moved since keeps it, a copy (`cp -r`, `git clone`)
    /// has its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub born: Option<String>,
    /// HEAD's commit (40 hex digits).
    pub commit: Option<String>,
    /// Branch name, or null when HEAD is detached.
    pub branch: Option<String>,
    /// Whether HEAD is detached.
    pub detached: bool,
    /// Whether there were uncommitted changes or untracked files.
    pub dirty: bool,
    /// The `origin` remote (or the first one), credentials stripped.
    pub remote: Option<String>,
    /// Every remote: name -> URL, credentials stripped.
    pub remotes: BTreeMap<String, String>,
    /// The hash of `git diff HEAD` of tracked files, when dirty: the blob holding it, unless
    /// it held secrets (then `patch_redacted` names the blob stored instead).
    pub patch: Option<Hash>,
    /// The patch held secrets: the store keeps, in this blob, a copy with them redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_redacted: Option<Hash>,
    /// Files touched by the patch.
    pub changed_files: Vec<String>,
    /// Untracked, not ignored files (the first `Caps::files` of them, sorted by path).
    pub untracked: Vec<UntrackedFile>,
    /// The untracked files past those listed, as one: a repository with tens of thousands
    /// of files missing from .gitignore would otherwise list each in every run's record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untracked_rest: Option<UntrackedRest>,
    /// One hash over commit + patch + untracked contents: equal code gives equal hashes.
    pub code: Hash,
}

/// Untracked files recorded as one (`GitState::untracked_rest`): how many, their bytes, and
/// one hash over their paths and content hashes, in path order ([`UntrackedRest::hash_of`]).
/// Their contents are not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UntrackedRest {
    /// How many files.
    pub files: u64,
    /// Their bytes, all together.
    pub bytes: u64,
    /// One hash over their paths and content hashes.
    pub hash: Hash,
}

/// The BLAKE3 key context of [`UntrackedRest::hash`].
const UNTRACKED_REST_CONTEXT: &str = "lineage 2026-12 untracked files v1";

impl UntrackedRest {
    /// The hash of untracked files by path (sorted) and content hash.
    pub fn hash_of<'a>(files: impl IntoIterator<Item = (&'a str, &'a Hash)>) -> Hash {
        let mut h = blake3::Hasher::new_derive_key(UNTRACKED_REST_CONTEXT);
        for (path, hash) in files {
            h.update(&(path.len() as u64).to_le_bytes());
            h.update(path.as_bytes());
            h.update(&hash.0);
        }
        Hash(*h.finalize().as_bytes())
    }
}

/// The BLAKE3 key context of [`GitState::code`].
const CODE_CONTEXT: &str = "lineage 2026-11 code v1";

impl GitState {
    /// The code hash of a commit, the patch on it (the hash of its real bytes) and the
    /// untracked files: what `code` holds, recomputed (a record from outside must agree).
    /// The rest of the untracked files (`rest`), when some were recorded as one, follow
    /// the listed ones (a record without them hashes as before).
    pub fn code_of(
        commit: Option<&str>,
        patch: Option<&Hash>,
        untracked: &[UntrackedFile],
        rest: Option<&UntrackedRest>,
    ) -> Hash {
        let mut h = blake3::Hasher::new_derive_key(CODE_CONTEXT);
        h.update(commit.unwrap_or("").as_bytes());
        h.update(&[0]);
        h.update(&patch.map_or([0; 32], |p| p.0));
        for f in untracked {
            // A link's length has the top bit set: a link and a file holding its target's
            // path are different code (no path is 2^63 bytes long).
            let len = f.path.len() as u64 | if f.link { 1 << 63 } else { 0 };
            h.update(&len.to_le_bytes());
            h.update(f.path.as_bytes());
            h.update(&f.hash.0);
        }
        if let Some(rest) = rest {
            // Not a path's length: no path is 2^64 - 1 bytes long.
            h.update(&u64::MAX.to_le_bytes());
            h.update(&rest.files.to_le_bytes());
            h.update(&rest.bytes.to_le_bytes());
            h.update(&rest.hash.0);
        }
        Hash(*h.finalize().as_bytes())
    }
}

/// An untracked file of the repository, part of the code the run used.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UntrackedFile {
    /// Its path relative to the repository root.
    pub path: String,
    /// The hash of its real bytes.
    pub hash: Hash,
    /// Its size in bytes.
    pub size: u64,
    /// Whether the bytes are kept in the store (false over the size caps).
    pub stored: bool,
    /// The file held secrets: the store keeps, in this blob, a copy with them redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_blob: Option<Hash>,
    /// A symbolic link: its bytes are the path it holds, as git records a link, never those
    /// of the file it points to.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link: bool,
}

/// The hash a symbolic link past the listed untracked files counts with in
/// [`UntrackedRest::hash`]: of the path it holds, apart from any file's bytes.
pub fn untracked_link_hash(target: &[u8]) -> Hash {
    Hash(blake3::derive_key(UNTRACKED_LINK_CONTEXT, target))
}

/// The BLAKE3 key context of [`untracked_link_hash`].
const UNTRACKED_LINK_CONTEXT: &str = "lineage 2026-12 untracked link v1";

/// A file named by its path and content hash.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileRef {
    /// As given, or relative to the repository root.
    pub path: String,
    /// Its content hash.
    pub hash: Hash,
}

/// The machine a run ran on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SystemInfo {
    /// Its host name.
    pub hostname: Option<String>,
    /// The OS name (`Debian GNU/Linux`).
    pub os: Option<String>,
    /// The OS version (`12`).
    pub os_version: Option<String>,
    /// The kernel version.
    pub kernel: Option<String>,
    /// The CPU architecture (`x86_64`).
    pub arch: String,
    /// The CPU's brand string.
    pub cpu_model: Option<String>,
    /// Logical cores.
    pub cpu_cores: usize,
    /// Physical cores, when known.
    pub cpu_physical_cores: Option<usize>,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// The kernel's boot id: a run still `running` from another boot is interrupted.
    pub boot_id: Option<String>,
    /// The NVIDIA GPUs NVML reports.
    pub gpus: Vec<Gpu>,
    /// Why the GPU list is empty or incomplete (no driver, NVML timed out, ...).
    pub gpu_note: Option<String>,
}

/// An NVIDIA GPU, as NVML describes it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Gpu {
    /// NVML index (PCI bus order).
    pub index: u32,
    /// The product name (`NVIDIA H100 80GB HBM3`).
    pub name: String,
    /// The GPU's UUID (`GPU-...`).
    pub uuid: String,
    /// Its memory in bytes.
    pub memory_bytes: u64,
    /// The driver's version.
    pub driver_version: String,
    /// The CUDA version the driver supports.
    pub cuda_driver_version: Option<String>,
    /// Whether CUDA_VISIBLE_DEVICES lets the job see this GPU.
    pub visible: bool,
    /// Its MIG instances, when MIG is on.
    pub mig_devices: Vec<MigDevice>,
}

/// A MIG instance of a GPU.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MigDevice {
    /// Its UUID (`MIG-...`).
    pub uuid: String,
    /// Its memory in bytes.
    pub memory_bytes: u64,
    /// Whether CUDA_VISIBLE_DEVICES lets the job see it.
    pub visible: bool,
}

/// Who ran a job.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Owner {
    /// The login name.
    pub user: Option<String>,
    /// The numeric user id.
    pub uid: u32,
    /// `user.name` in git's config.
    pub git_name: Option<String>,
    /// `user.email` in git's config.
    pub git_email: Option<String>,
    /// `LINEAGE_OWNER` when set (a team or service account).
    pub lineage_owner: Option<String>,
}

/// A container a job ran in.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Container {
    /// docker, podman, kubernetes, containerd, lxc or unknown.
    pub runtime: String,
    /// The image, when the runtime says.
    pub image: Option<String>,
    /// The container's id, when known.
    pub id: Option<String>,
}

/// A scheduler job a run was part of.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Scheduler {
    /// slurm, kubernetes, github-actions or gitlab-ci.
    pub kind: String,
    /// The scheduler's identifiers (job id, array ids, partition, pod, namespace, ...).
    pub ids: BTreeMap<String, String>,
}

/// The software a run used besides its code.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Software {
    /// The Python interpreter the command runs, and its packages.
    pub python: Option<Python>,
    /// Lock files at the repository root (or the cwd outside git).
    pub lockfiles: Vec<FileRef>,
}

/// A Python interpreter and what it had installed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Python {
    /// The interpreter's path.
    pub executable: String,
    /// Its version (`3.11.7`).
    pub version: Option<String>,
    /// Its site-packages directories.
    pub site_packages: Vec<String>,
    /// Blob listing `name==version`, one a line, sorted.
    pub packages: Option<Hash>,
    /// How many packages the list holds.
    pub package_count: usize,
}

/// What a job used, measured by lineage.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Resources {
    /// Wall-clock time from launch to exit.
    pub wall_seconds: f64,
    /// CPU time in user mode, the job and the children it waited for.
    pub user_cpu_seconds: f64,
    /// CPU time in the kernel, the same.
    pub system_cpu_seconds: f64,
    /// Peak resident set of the largest process among the child and its descendants.
    pub max_rss_bytes: u64,
    /// Peak of the resident sets of all the job's processes added up, sampled (at least
    /// `max_rss_bytes`): what a launcher and its workers held together. None for a run
    /// recorded before lineage sampled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_total_rss_bytes: Option<u64>,
    /// GPU index -> peak memory used by the job's processes; null without NVML.
    pub gpu_peak_memory_bytes: Option<BTreeMap<String, u64>>,
}

/// A declared path as the run saw it; `artifact` is None for an output that was missing.
#[derive(Clone, Debug)]
pub struct Edge {
    /// What the path was to the run.
    pub role: Role,
    /// The path as given on the command line.
    pub path: String,
    /// The path made absolute.
    pub abs_path: String,
    /// What it held: None for an output missing after the run or an input not hashed.
    pub artifact: Option<Artifact>,
    /// For a directory: the token its manifest was staged under (`Store::stage`).
    pub manifest: Option<String>,
    /// An input modified while the job ran.
    pub changed: bool,
    /// For an output: which of its bytes the job wrote (None for inputs and configs).
    pub written: Option<Written>,
    /// What observing the job said of it (None: the job ran unobserved).
    pub observed: Option<Seen>,
}

/// What observing the job's file calls (docs/recording.md, "Observed I/O") said of an edge:
/// `edges.observed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seen {
    /// Declared, and the job never opened it (0).
    Untouched,
    /// Declared, and the job opened it (1).
    Touched,
    /// Not declared: the job opened it (2).
    Undeclared,
    /// Declared by the job itself, through the in-job API (3).
    Job,
}

impl Seen {
    /// As stored in `edges.observed`.
    pub fn to_column(self) -> i64 {
        match self {
            Seen::Untouched => 0,
            Seen::Touched => 1,
            Seen::Undeclared => 2,
            Seen::Job => 3,
        }
    }

    /// From `edges.observed` (NULL or unknown: not observed).
    pub fn from_column(v: Option<i64>) -> Option<Seen> {
        match v? {
            0 => Some(Seen::Untouched),
            1 => Some(Seen::Touched),
            2 => Some(Seen::Undeclared),
            3 => Some(Seen::Job),
            _ => None,
        }
    }

    /// `declared`, `observed` or `declared, never opened`, for people.
    pub fn describe(observed: Option<Seen>) -> &'static str {
        match observed {
            None | Some(Seen::Touched) => "declared",
            Some(Seen::Untouched) => "declared, never opened",
            Some(Seen::Undeclared) => "observed",
            Some(Seen::Job) => "declared by the job",
        }
    }
}

/// What observing a job's file calls found beyond its edges: kept in the capture.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedIo {
    /// Why the job ran unobserved (None: it was observed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off: Option<String>,
    /// Files tracked by git that the job opened, relative to the work tree ("code read").
    #[serde(default)]
    pub code_read: Vec<String>,
    /// Files that existed before the job and that it deleted (or renamed away).
    #[serde(default)]
    pub deleted: Vec<String>,
    /// Files of the environment the job opened (interpreter, packages, system): counted.
    #[serde(default)]
    pub environment: u64,
    /// File calls held and noted.
    #[serde(default)]
    pub calls: u64,
}

/// Which of an output's bytes its run wrote (docs/lineage-model.md, "Produced means
/// written"): only those are its product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// All of them: the path did not exist at launch, or changed while the job ran (and
    /// every output recorded before lineage told).
    All,
    /// None: a declared output left as it was. It is on record as present, nobody's product.
    Nothing,
    /// A directory some of whose files the job wrote: the paths inside it of those it did
    /// not (present, not produced).
    Partly(Vec<String>),
}

impl Written {
    /// As stored: `edges.written` and `edges.kept`.
    pub fn to_columns(&self) -> (i64, Option<String>) {
        match self {
            Written::All => (1, None),
            Written::Nothing => (0, None),
            Written::Partly(kept) => (
                2,
                Some(serde_json::to_string(kept).unwrap_or_else(|_| "[]".into())),
            ),
        }
    }

    /// From `edges.written` and `edges.kept` (NULL: recorded before lineage told, read as
    /// all).
    pub fn from_columns(written: Option<i64>, kept: Option<&str>) -> Written {
        match written {
            Some(0) => Written::Nothing,
            Some(2) => Written::Partly(
                kept.and_then(|k| serde_json::from_str(k).ok())
                    .unwrap_or_default(),
            ),
            _ => Written::All,
        }
    }

    /// Whether the file at `path` inside the output (`""`: the output itself) was written.
    pub fn wrote(&self, path: &str) -> bool {
        match self {
            Written::All => true,
            Written::Nothing => false,
            Written::Partly(kept) => path.is_empty() || !kept.iter().any(|k| k == path),
        }
    }
}

/// An artifact as stored: its identity without the directory manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactRef {
    /// The content hash.
    pub hash: Hash,
    /// A file or a directory.
    pub kind: ArtifactKind,
    /// Bytes: the file's size, or the sum of the sizes of the directory's files.
    pub size: u64,
    /// 1 for a file; the files hashed for a directory.
    pub file_count: u64,
}

/// A run's edge as read back from the store.
#[derive(Clone, Debug)]
pub struct EdgeRecord {
    /// What the path was to the run.
    pub role: Role,
    /// The path as given.
    pub path: String,
    /// The path made absolute.
    pub abs_path: String,
    /// The artifact, when it was hashed.
    pub artifact: Option<ArtifactRef>,
    /// An input modified while the job ran.
    pub changed: bool,
    /// For an output: which of its bytes the job wrote (None for inputs and configs).
    pub written: Option<Written>,
    /// What observing the job said of it (None: the job ran unobserved).
    pub observed: Option<Seen>,
}

/// A parameter of a run: from a config (flattened, `optimizer.lr`) or `--param`.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// The flattened key.
    pub key: String,
    /// The value, as JSON (secrets replaced by `[REDACTED]`).
    pub value: serde_json::Value,
    /// The config file it came from, `argv` for the job's own command line
    /// (`optimizer.lr=0.01`, `--lr 0.01`), or `cli` for `--param`.
    pub source: String,
}

/// A number a run reported in a metrics file (`lineage run -m FILE`), read after the job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// The flattened key (`eval.roc_auc`).
    pub key: String,
    /// The value: always a finite number.
    pub value: f64,
    /// The metrics file it came from, as given.
    pub source: String,
}

/// A run as read back from the store.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// The run's id (UUIDv7).
    pub id: String,
    /// How it ended.
    pub status: Status,
    /// The command as run (secrets redacted), one entry per argument, raw bytes.
    pub argv: Vec<Vec<u8>>,
    /// The working directory, raw bytes.
    pub cwd: Vec<u8>,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended; None while it runs.
    pub ended_at: Option<String>,
    /// The job's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// Everything captured about it.
    pub capture: Capture,
    /// What it used; None while it runs (or when lineage was killed).
    pub resources: Option<Resources>,
    /// The run it reproduced (`lineage rerun`).
    pub rerun_of: Option<String>,
    /// Its inputs, configs and outputs, in order.
    pub edges: Vec<EdgeRecord>,
    /// Its params, sorted by key.
    pub params: Vec<Param>,
    /// Its metrics, sorted by key.
    pub metrics: Vec<Metric>,
    /// Why its capture or resources could not be read back, when they could not: `capture`
    /// is then empty but for a note saying so, and what needs it (diff, export, rerun)
    /// refuses the run rather than use the blank.
    pub unreadable: Option<String>,
}

#[cfg(test)]
impl RunRecord {
    /// A succeeded run of `argv` (space-separated) with nothing captured, for unit tests.
    pub(crate) fn example(id: &str, argv: &str) -> RunRecord {
        RunRecord {
            id: id.into(),
            status: Status::Succeeded,
            argv: argv.split(' ').map(|a| a.as_bytes().to_vec()).collect(),
            cwd: b"/w".to_vec(),
            started_at: "2026-11-01T00:00:00Z".into(),
            ended_at: None,
            exit_code: Some(0),
            signal: None,
            capture: Capture::default(),
            resources: None,
            rerun_of: None,
            edges: Vec::new(),
            params: Vec::new(),
            metrics: Vec::new(),
            unreadable: None,
        }
    }
}

/// One line of `lineage list`.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The run's id.
    pub id: String,
    /// How it ended.
    pub status: Status,
    /// The command (secrets redacted).
    pub argv: Vec<Vec<u8>>,
    /// When it started.
    pub started_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
    /// The job's exit code.
    pub exit_code: Option<i32>,
    /// Its outputs' paths as given.
    pub outputs: Vec<String>,
    /// The run it reproduced.
    pub rerun_of: Option<String>,
    /// For one row standing for the ranks of a launch (`list`): the launch and its ranks.
    pub group: Option<GroupRow>,
}

#[cfg(test)]
mod tests {

    #[test]
    fn paths_are_stored_as_text_losslessly() {
        let cases: &[&[u8]] = &[
            b"in.csv",
            "données/élan ✓.csv".as_bytes(),
            b"in\xff.csv",
            b"\xc3\x28\x80/\xed\xa0\x80",
            "has \u{10ff41} in it".as_bytes(),
            b"\xf4\x8f\xbc",
            b"",
        ];
        for bytes in cases {
            let text = path_text(bytes);
            assert_eq!(path_bytes(&text), *bytes, "{text:?}");
        }
        // UTF-8 paths read as before.
        assert_eq!(
            path_text("données/élan ✓.csv".as_bytes()),
            "données/élan ✓.csv"
        );
        assert_eq!(path_text(b"in\xff.csv"), "in\u{10ffff}.csv");
    }
    use super::*;

    /// Status and role read back as written; anything else is no status or role at all.
    #[test]
    fn statuses_and_roles_read_back_as_stored_and_nothing_else() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Status::parse("Succeeded"), None);
        assert_eq!(Role::parse("inputs"), None);
    }

    /// What `command_line` prints, read back by a real POSIX shell, is the same arguments.
    #[test]
    fn a_command_line_reads_back_through_sh_as_the_same_arguments() {
        let argv: Vec<Vec<u8>> = [
            "python",
            "train.py",
            "--lr=0.01",
            "a b",
            "it's",
            "",
            "$HOME",
            "`id`",
            "x^y",
            "*.csv",
            "tab\there",
            "two\nlines",
            "modèle",
            "a\\b",
        ]
        .iter()
        .map(|a| a.as_bytes().to_vec())
        .collect();
        let line = command_line(&argv);
        assert_eq!(
            line.split(' ').take(3).collect::<Vec<_>>(),
            ["python", "train.py", "--lr=0.01"],
            "plain arguments stay bare"
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf '%s\\0' {line}")])
            .output()
            .expect("sh");
        let back: Vec<Vec<u8>> = out.stdout.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
        assert_eq!(&back[..argv.len()], &argv[..], "{line}");
    }

    #[test]
    fn a_prefix_never_cuts_a_character() {
        assert_eq!(prefix("01a2b3c4-5d", 8), "01a2b3c4");
        assert_eq!(prefix("short", 8), "short");
        assert_eq!(prefix("ééééé", 2), "éé");
    }
}
