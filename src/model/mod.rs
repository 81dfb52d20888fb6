//! The domain types everything else shares: what a run captured, the artifacts it read and
//! wrote, and the edges between them. The captured snapshot (`Capture`) is stored as one JSON
//! document per run; runs, artifacts, directory manifests, edges, params and blobs are tables.

pub mod graph;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The first `n` characters of `s` (all of it when shorter): for ids and commits shown cut,
/// which may come from a store or an import that holds anything, so never cut mid-character.
pub fn prefix(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// A BLAKE3 digest, printed as `blake3:<64 lowercase hex>`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub const PREFIX: &'static str = "blake3:";

    pub fn of(bytes: &[u8]) -> Hash {
        Hash(*blake3::hash(bytes).as_bytes())
    }

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "running" => Status::Running,
            "succeeded" => Status::Succeeded,
            "failed" => Status::Failed,
            "interrupted" => Status::Interrupted,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    File,
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

    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::File => "file",
            ArtifactKind::Dir => "dir",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Input,
    Output,
    Config,
}

impl Role {
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
    pub hash: Hash,
    pub size: u64,
    pub executable: bool,
}

/// A hashed file or directory. A directory's manifest (its files) is not held here: it is
/// streamed to the store while hashing (see `hash::Sink`).
#[derive(Clone, Debug)]
pub struct Artifact {
    pub hash: Hash,
    pub kind: ArtifactKind,
    /// Bytes: the file's size, or the sum of the sizes of the files in the directory.
    pub size: u64,
    /// 1 for a file; the files hashed for a directory.
    pub file_count: u64,
}

/// Everything captured about a run apart from its command, times and edges.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Capture {
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
    pub system: SystemInfo,
    pub owner: Owner,
    pub container: Option<Container>,
    pub scheduler: Option<Scheduler>,
    pub software: Software,
    /// Warnings recorded while capturing (also printed on stderr).
    pub notes: Vec<String>,
}

impl Capture {
    /// The blobs this capture names: the uncommitted patch, the untracked files kept (their
    /// bytes, or the copy with secrets redacted), the configs kept redacted and the package
    /// list. (A config kept as it is is named by its edge.)
    pub fn blob_refs(&self) -> Vec<Hash> {
        let mut refs = Vec::new();
        if let Some(g) = &self.git {
            refs.extend(g.patch);
            for u in &g.untracked {
                refs.push(u.hash);
                refs.extend(u.redacted_blob);
            }
        }
        refs.extend(self.config_redacted.values().copied());
        if let Some(py) = &self.software.python {
            refs.extend(py.packages);
        }
        refs
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GitState {
    /// The repository's work tree root.
    pub root: String,
    pub commit: Option<String>,
    /// Branch name, or null when HEAD is detached.
    pub branch: Option<String>,
    pub detached: bool,
    pub dirty: bool,
    /// The `origin` remote (or the first one), credentials stripped.
    pub remote: Option<String>,
    pub remotes: BTreeMap<String, String>,
    /// Blob holding `git diff HEAD` of tracked files, when dirty.
    pub patch: Option<Hash>,
    /// Files touched by the patch.
    pub changed_files: Vec<String>,
    /// Untracked, not ignored files.
    pub untracked: Vec<UntrackedFile>,
    /// One hash over commit + patch + untracked contents: equal code gives equal hashes.
    pub code: Hash,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UntrackedFile {
    pub path: String,
    pub hash: Hash,
    pub size: u64,
    /// Whether the bytes are kept in the store (false over the size caps).
    pub stored: bool,
    /// The file held secrets: the store keeps, in this blob, a copy with them redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_blob: Option<Hash>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileRef {
    pub path: String,
    pub hash: Hash,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SystemInfo {
    pub hostname: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    pub kernel: Option<String>,
    pub arch: String,
    pub cpu_model: Option<String>,
    /// Logical cores.
    pub cpu_cores: usize,
    pub cpu_physical_cores: Option<usize>,
    pub memory_bytes: u64,
    pub boot_id: Option<String>,
    pub gpus: Vec<Gpu>,
    /// Why the GPU list is empty or incomplete (no driver, NVML timed out, ...).
    pub gpu_note: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Gpu {
    /// NVML index (PCI bus order).
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub memory_bytes: u64,
    pub driver_version: String,
    pub cuda_driver_version: Option<String>,
    /// Whether CUDA_VISIBLE_DEVICES lets the job see this GPU.
    pub visible: bool,
    pub mig_devices: Vec<MigDevice>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MigDevice {
    pub uuid: String,
    pub memory_bytes: u64,
    pub visible: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Owner {
    pub user: Option<String>,
    pub uid: u32,
    pub git_name: Option<String>,
    pub git_email: Option<String>,
    /// `LINEAGE_OWNER` when set (a team or service account).
    pub lineage_owner: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Container {
    /// docker, podman, kubernetes, containerd, lxc or unknown.
    pub runtime: String,
    pub image: Option<String>,
    pub id: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Scheduler {
    /// slurm, kubernetes, github-actions or gitlab-ci.
    pub kind: String,
    /// The scheduler's identifiers (job id, array ids, partition, pod, namespace, ...).
    pub ids: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Software {
    pub python: Option<Python>,
    /// Lock files at the repository root (or the cwd outside git).
    pub lockfiles: Vec<FileRef>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Python {
    pub executable: String,
    pub version: Option<String>,
    pub site_packages: Vec<String>,
    /// Blob listing `name==version`, one a line, sorted.
    pub packages: Option<Hash>,
    pub package_count: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Resources {
    pub wall_seconds: f64,
    pub user_cpu_seconds: f64,
    pub system_cpu_seconds: f64,
    /// Peak resident set of the largest process among the child and its descendants.
    pub max_rss_bytes: u64,
    /// GPU index -> peak memory used by the job's processes; null without NVML.
    pub gpu_peak_memory_bytes: Option<BTreeMap<String, u64>>,
}

/// A declared path as the run saw it; `artifact` is None for an output that was missing.
#[derive(Clone, Debug)]
pub struct Edge {
    pub role: Role,
    pub path: String,
    pub abs_path: String,
    pub artifact: Option<Artifact>,
    /// For a directory: the token its manifest was staged under (`Store::stage`).
    pub manifest: Option<String>,
    /// An input modified while the job ran.
    pub changed: bool,
}

/// An artifact as stored: its identity without the directory manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactRef {
    pub hash: Hash,
    pub kind: ArtifactKind,
    pub size: u64,
    pub file_count: u64,
}

#[derive(Clone, Debug)]
pub struct EdgeRecord {
    pub role: Role,
    pub path: String,
    pub abs_path: String,
    pub artifact: Option<ArtifactRef>,
    pub changed: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub key: String,
    pub value: serde_json::Value,
    /// The config file it came from, or `cli` for `--param`.
    pub source: String,
}

/// A run as read back from the store.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub id: String,
    pub status: Status,
    pub argv: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub capture: Capture,
    pub resources: Option<Resources>,
    pub rerun_of: Option<String>,
    pub edges: Vec<EdgeRecord>,
    pub params: Vec<Param>,
}

/// One line of `lineage list`.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub id: String,
    pub status: Status,
    pub argv: Vec<Vec<u8>>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub exit_code: Option<i32>,
    pub outputs: Vec<String>,
    pub rerun_of: Option<String>,
}
