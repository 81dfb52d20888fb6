//! JSON output is an API (docs/json.md): its own structs, built from the domain types, never
//! database rows. Adding fields is fine; renaming or removing one needs a version bump.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::model::{
    Container, Gpu, Hash, MigDevice, Owner, Resources, Role, RunRecord, RunSummary, Scheduler,
    Software,
};

#[derive(Serialize)]
pub struct RunJson {
    pub id: String,
    pub short_id: String,
    pub status: &'static str,
    pub command: Vec<String>,
    pub cwd: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub rerun_of: Option<String>,
    pub git: Option<GitJson>,
    pub git_absent: Option<String>,
    pub code_hash: Option<Hash>,
    pub script: Option<PathHash>,
    pub env: BTreeMap<String, String>,
    pub env_redacted: Vec<String>,
    pub params: BTreeMap<String, Value>,
    pub param_sources: BTreeMap<String, String>,
    pub configs: Vec<PathHash>,
    pub inputs: Vec<ArtifactJson>,
    pub outputs: Vec<ArtifactJson>,
    pub system: SystemJson,
    pub owner: Owner,
    pub container: Option<Container>,
    pub scheduler: Option<Scheduler>,
    pub software: Software,
    pub resources: Option<Resources>,
    pub notes: Vec<String>,
}

#[derive(Serialize)]
pub struct GitJson {
    pub root: String,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub detached: bool,
    pub dirty: bool,
    pub remote: Option<String>,
    pub remotes: BTreeMap<String, String>,
    pub patch: Option<Hash>,
    pub changed_files: Vec<String>,
    pub untracked: Vec<UntrackedJson>,
}

#[derive(Serialize)]
pub struct UntrackedJson {
    pub path: String,
    pub hash: Hash,
    pub size: u64,
    pub stored: bool,
}

#[derive(Serialize)]
pub struct PathHash {
    pub path: String,
    pub hash: Hash,
}

#[derive(Serialize)]
pub struct ArtifactJson {
    pub path: String,
    pub abs_path: String,
    pub hash: Option<Hash>,
    pub size: Option<u64>,
    pub kind: Option<&'static str>,
    pub file_count: Option<u64>,
    /// Outputs only: declared but absent after the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<bool>,
    /// Inputs only: modified while the job ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_during_run: Option<bool>,
}

#[derive(Serialize)]
pub struct SystemJson {
    pub hostname: Option<String>,
    pub os: Option<String>,
    pub os_version: Option<String>,
    pub kernel: Option<String>,
    pub arch: String,
    pub cpu_model: Option<String>,
    pub cpu_cores: usize,
    pub cpu_physical_cores: Option<usize>,
    pub memory_bytes: u64,
    pub gpus: Vec<GpuJson>,
    pub gpu_note: Option<String>,
}

#[derive(Serialize)]
pub struct GpuJson {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub memory_bytes: u64,
    pub driver_version: String,
    pub cuda_driver_version: Option<String>,
    pub visible: bool,
    pub mig_devices: Vec<MigDevice>,
}

impl From<&Gpu> for GpuJson {
    fn from(g: &Gpu) -> GpuJson {
        GpuJson {
            index: g.index,
            name: g.name.clone(),
            uuid: g.uuid.clone(),
            memory_bytes: g.memory_bytes,
            driver_version: g.driver_version.clone(),
            cuda_driver_version: g.cuda_driver_version.clone(),
            visible: g.visible,
            mig_devices: g.mig_devices.clone(),
        }
    }
}

pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn run(r: &RunRecord, short_id: String) -> RunJson {
    let c = &r.capture;
    let edges = |role: Role| {
        r.edges
            .iter()
            .filter(move |e| e.role == role)
            .map(move |e| ArtifactJson {
                path: e.path.clone(),
                abs_path: e.abs_path.clone(),
                hash: e.artifact.as_ref().map(|a| a.hash),
                size: e.artifact.as_ref().map(|a| a.size),
                kind: e.artifact.as_ref().map(|a| a.kind.as_str()),
                file_count: e.artifact.as_ref().map(|a| a.file_count),
                missing: (role == Role::Output).then_some(e.artifact.is_none()),
                changed_during_run: (role == Role::Input).then_some(e.changed),
            })
    };
    RunJson {
        id: r.id.clone(),
        short_id,
        status: r.status.as_str(),
        command: r.argv.iter().map(|a| lossy(a)).collect(),
        cwd: lossy(&r.cwd),
        started_at: r.started_at.clone(),
        ended_at: r.ended_at.clone(),
        exit_code: r.exit_code,
        signal: r.signal,
        rerun_of: r.rerun_of.clone(),
        git: c.git.as_ref().map(|g| GitJson {
            root: g.root.clone(),
            commit: g.commit.clone(),
            branch: g.branch.clone(),
            detached: g.detached,
            dirty: g.dirty,
            remote: g.remote.clone(),
            remotes: g.remotes.clone(),
            patch: g.patch,
            changed_files: g.changed_files.clone(),
            untracked: g
                .untracked
                .iter()
                .map(|u| UntrackedJson {
                    path: u.path.clone(),
                    hash: u.hash,
                    size: u.size,
                    stored: u.stored,
                })
                .collect(),
        }),
        git_absent: c.git_absent.clone(),
        code_hash: c.git.as_ref().map(|g| g.code),
        script: c.script.as_ref().map(|s| PathHash {
            path: s.path.clone(),
            hash: s.hash,
        }),
        env: c.env.clone(),
        env_redacted: c.env_redacted.keys().cloned().collect(),
        params: r
            .params
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect(),
        param_sources: r
            .params
            .iter()
            .map(|p| (p.key.clone(), p.source.clone()))
            .collect(),
        configs: r
            .edges
            .iter()
            .filter(|e| e.role == Role::Config)
            .filter_map(|e| {
                Some(PathHash {
                    path: e.path.clone(),
                    hash: e.artifact.as_ref()?.hash,
                })
            })
            .collect(),
        inputs: edges(Role::Input).collect(),
        outputs: edges(Role::Output).collect(),
        system: SystemJson {
            hostname: c.system.hostname.clone(),
            os: c.system.os.clone(),
            os_version: c.system.os_version.clone(),
            kernel: c.system.kernel.clone(),
            arch: c.system.arch.clone(),
            cpu_model: c.system.cpu_model.clone(),
            cpu_cores: c.system.cpu_cores,
            cpu_physical_cores: c.system.cpu_physical_cores,
            memory_bytes: c.system.memory_bytes,
            gpus: c.system.gpus.iter().map(GpuJson::from).collect(),
            gpu_note: c.system.gpu_note.clone(),
        },
        owner: c.owner.clone(),
        container: c.container.clone(),
        scheduler: c.scheduler.clone(),
        software: c.software.clone(),
        resources: r.resources.clone(),
        notes: c.notes.clone(),
    }
}

#[derive(Serialize)]
pub struct ListItem {
    pub id: String,
    pub short_id: String,
    pub status: &'static str,
    pub command: Vec<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub exit_code: Option<i32>,
    pub outputs: Vec<String>,
}

pub fn list_item(r: &RunSummary, short_id: String) -> ListItem {
    ListItem {
        id: r.id.clone(),
        short_id,
        status: r.status.as_str(),
        command: r.argv.iter().map(|a| lossy(a)).collect(),
        started_at: r.started_at.clone(),
        ended_at: r.ended_at.clone(),
        exit_code: r.exit_code,
        outputs: r.outputs.clone(),
    }
}
