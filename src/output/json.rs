//! JSON output is an API (docs/json.md): its own structs, built from the domain types, never
//! database rows. Adding fields is fine; renaming or removing one needs a version bump.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::model::{
    Container, FileRef, Gpu, Hash, ObservedIo, Owner, Resources, Role, RunRecord, RunSummary,
    Scheduler, Seen, Software, UntrackedFile,
};

/// One run. Borrows from the record: an ancestry can hold thousands of runs.
#[derive(Serialize)]
pub struct RunJson<'a> {
    pub id: &'a str,
    pub short_id: String,
    pub status: &'static str,
    pub command: Vec<String>,
    pub cwd: String,
    pub started_at: &'a str,
    pub ended_at: Option<&'a str>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub rerun_of: Option<&'a str>,
    pub git: Option<GitJson<'a>>,
    pub git_absent: Option<&'a str>,
    pub code_hash: Option<Hash>,
    pub script: Option<&'a FileRef>,
    pub env: &'a BTreeMap<String, String>,
    pub env_redacted: Vec<&'a str>,
    /// Positions in `command` of arguments whose secrets were redacted.
    pub command_redacted: Vec<usize>,
    pub params: BTreeMap<&'a str, &'a Value>,
    pub param_sources: BTreeMap<&'a str, &'a str>,
    /// The numbers read from its metrics files (`-m`), by flattened key.
    pub metrics: BTreeMap<&'a str, f64>,
    pub metric_sources: BTreeMap<&'a str, &'a str>,
    /// Each metric the job logged through the in-job API more than once or with a step: its
    /// points in the order they arrived (`{"step": 10, "value": 0.5}`, `step` null when none
    /// was given), the last being `metrics`' value; `show RUN --json` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_series: Option<BTreeMap<String, Vec<PointJson>>>,
    /// For each param whose value the job's command line (`argv`) or `-p` (`cli`) set over
    /// another: the values it replaced, latest first (`[{"source": "params.yaml", "value":
    /// 0.001}]`). Absent when nothing was replaced.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub param_overrides: BTreeMap<&'a str, Vec<OverrideJson<'a>>>,
    pub configs: Vec<ConfigJson<'a>>,
    pub inputs: Vec<ArtifactJson<'a>>,
    pub outputs: Vec<ArtifactJson<'a>>,
    pub system: SystemJson<'a>,
    pub owner: &'a Owner,
    pub container: Option<&'a Container>,
    pub scheduler: Option<&'a Scheduler>,
    pub software: &'a Software,
    pub resources: Option<&'a Resources>,
    pub notes: &'a [String],
    /// What observing the job's file calls found beyond its edges (code read, files deleted,
    /// environment files counted); `off` says why a job ran unobserved. Null for a run
    /// recorded with observation switched off, or before lineage observed.
    pub observed: Option<&'a ObservedIo>,
    /// The team store's word on who delivered it (its database role), beside the `owner`
    /// the record claims; absent for a run this store did not fetch from a team store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    /// The tags that name this run now (`lineage tag`), sorted; `show RUN --json` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// What users wrote about the run after it ran (`lineage note`), oldest first; `show RUN
    /// --json` only (`notes` are lineage's own, about its recording).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_notes: Option<Vec<crate::model::Note>>,
    /// The launch this run is one rank of (`srun lineage run ...`): its ranks recorded here and
    /// what they used together; absent for a run that is a launch of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<super::group::GroupJson>,
}

/// One point of a metric's series.
#[derive(Serialize, serde::Deserialize)]
pub struct PointJson {
    pub step: Option<i64>,
    pub value: f64,
}

/// A series' blob (`model::Series`) read back: None when it is not a list of `[step, value]`.
pub fn series_points(bytes: &[u8]) -> Option<Vec<PointJson>> {
    let points: Vec<(Option<i64>, f64)> = serde_json::from_slice(bytes).ok()?;
    Some(
        points
            .into_iter()
            .map(|(step, value)| PointJson { step, value })
            .collect(),
    )
}

/// A param's value that another source replaced.
#[derive(Serialize)]
pub struct OverrideJson<'a> {
    pub source: &'a str,
    pub value: &'a Value,
}

#[derive(Serialize)]
pub struct GitJson<'a> {
    pub root: &'a str,
    pub commit: Option<&'a str>,
    pub branch: Option<&'a str>,
    pub detached: bool,
    pub dirty: bool,
    pub remote: Option<&'a str>,
    pub remotes: &'a BTreeMap<String, String>,
    pub patch: Option<Hash>,
    pub changed_files: &'a [String],
    pub untracked: &'a [UntrackedFile],
    /// The untracked files past those listed, as one (absent when all are listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untracked_rest: Option<&'a crate::model::UntrackedRest>,
}

#[derive(Serialize)]
pub struct ConfigJson<'a> {
    pub path: &'a str,
    pub hash: Hash,
    /// The config held secrets: the store keeps a copy with them redacted.
    pub redacted: bool,
    /// Whether the job opened it (null: the job ran unobserved).
    pub opened: Option<bool>,
    /// The keys the run depends on (`-c params.yaml:train`); absent: the whole file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<&'a [String]>,
}

#[derive(Serialize)]
pub struct ArtifactJson<'a> {
    pub path: &'a str,
    pub abs_path: &'a str,
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
    /// Outputs only: which of its bytes the job wrote: `all`, `none` (declared, not
    /// written: nobody's product) or `some` (a directory: see `kept`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written: Option<&'static str>,
    /// With `written: some`: the files inside the directory the job left as they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<&'a [String]>,
    /// Declared with -i or -o, or by the job itself (false: only observed).
    pub declared: bool,
    /// Declared by the job itself, through the in-job API (docs/python.md); absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub declared_by_job: bool,
    /// Whether the job opened it (null: the job ran unobserved, or declared it itself).
    pub opened: Option<bool>,
}

/// The captured system info minus the boot id (an internal detail).
#[derive(Serialize)]
pub struct SystemJson<'a> {
    pub hostname: Option<&'a str>,
    pub os: Option<&'a str>,
    pub os_version: Option<&'a str>,
    pub kernel: Option<&'a str>,
    pub arch: &'a str,
    pub cpu_model: Option<&'a str>,
    pub cpu_cores: usize,
    pub cpu_physical_cores: Option<usize>,
    pub memory_bytes: u64,
    pub gpus: &'a [Gpu],
    pub gpu_note: Option<&'a str>,
}

pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn run(r: &RunRecord, short_id: String) -> RunJson<'_> {
    let c = &r.capture;
    let edges = |role: Role| {
        r.edges
            .iter()
            .filter(move |e| e.role == role)
            .map(move |e| ArtifactJson {
                path: &e.path,
                abs_path: &e.abs_path,
                hash: e.artifact.as_ref().map(|a| a.hash),
                size: e.artifact.as_ref().map(|a| a.size),
                kind: e.artifact.as_ref().map(|a| a.kind.as_str()),
                file_count: e.artifact.as_ref().map(|a| a.file_count),
                missing: (role == Role::Output).then_some(e.artifact.is_none()),
                changed_during_run: (role == Role::Input).then_some(e.changed),
                written: e.written.as_ref().map(|w| match w {
                    crate::model::Written::All => "all",
                    crate::model::Written::Nothing => "none",
                    crate::model::Written::Partly(_) => "some",
                }),
                kept: match &e.written {
                    Some(crate::model::Written::Partly(k)) => Some(k.as_slice()),
                    _ => None,
                },
                declared: e.observed != Some(Seen::Undeclared),
                declared_by_job: e.observed == Some(Seen::Job),
                opened: e
                    .observed
                    .filter(|s| *s != Seen::Job)
                    .map(|s| s != Seen::Untouched),
            })
    };
    let s = &c.system;
    RunJson {
        id: &r.id,
        short_id,
        status: r.status.as_str(),
        command: r.argv.iter().map(|a| lossy(a)).collect(),
        cwd: lossy(&r.cwd),
        started_at: &r.started_at,
        ended_at: r.ended_at.as_deref(),
        exit_code: r.exit_code,
        signal: r.signal,
        rerun_of: r.rerun_of.as_deref(),
        git: c.git.as_ref().map(|g| GitJson {
            root: &g.root,
            commit: g.commit.as_deref(),
            branch: g.branch.as_deref(),
            detached: g.detached,
            dirty: g.dirty,
            remote: g.remote.as_deref(),
            remotes: &g.remotes,
            patch: g.patch,
            changed_files: &g.changed_files,
            untracked: &g.untracked,
            untracked_rest: g.untracked_rest.as_ref(),
        }),
        git_absent: c.git_absent.as_deref(),
        code_hash: c.git.as_ref().map(|g| g.code),
        script: c.script.as_ref(),
        env: &c.env,
        env_redacted: c.env_redacted.keys().map(String::as_str).collect(),
        command_redacted: c.argv_redacted.keys().copied().collect(),
        params: r
            .params
            .iter()
            .map(|p| (p.key.as_str(), &p.value))
            .collect(),
        param_sources: r
            .params
            .iter()
            .map(|p| (p.key.as_str(), p.source.as_str()))
            .collect(),
        metrics: r
            .metrics
            .iter()
            .map(|m| (m.key.as_str(), m.value))
            .collect(),
        metric_series: None,
        metric_sources: r
            .metrics
            .iter()
            .map(|m| (m.key.as_str(), m.source.as_str()))
            .collect(),
        param_overrides: {
            let mut by_key: BTreeMap<&str, Vec<OverrideJson>> = BTreeMap::new();
            for o in c.param_overrides.iter().rev() {
                by_key
                    .entry(o.key.as_str())
                    .or_default()
                    .push(OverrideJson {
                        source: &o.source,
                        value: &o.value,
                    });
            }
            by_key
        },
        configs: r
            .edges
            .iter()
            .filter(|e| e.role == Role::Config)
            .filter_map(|e| {
                Some(ConfigJson {
                    path: &e.path,
                    hash: e.artifact.as_ref()?.hash,
                    redacted: c.config_redacted.contains_key(&e.path),
                    opened: e.observed.map(|s| s != Seen::Untouched),
                    keys: c.config_keys.get(&e.path).map(Vec::as_slice),
                })
            })
            .collect(),
        inputs: edges(Role::Input).collect(),
        outputs: edges(Role::Output).collect(),
        system: SystemJson {
            hostname: s.hostname.as_deref(),
            os: s.os.as_deref(),
            os_version: s.os_version.as_deref(),
            kernel: s.kernel.as_deref(),
            arch: &s.arch,
            cpu_model: s.cpu_model.as_deref(),
            cpu_cores: s.cpu_cores,
            cpu_physical_cores: s.cpu_physical_cores,
            memory_bytes: s.memory_bytes,
            gpus: &s.gpus,
            gpu_note: s.gpu_note.as_deref(),
        },
        owner: &c.owner,
        container: c.container.as_ref(),
        scheduler: c.scheduler.as_ref(),
        software: &c.software,
        resources: r.resources.as_ref(),
        notes: &c.notes,
        observed: c.observed.as_ref(),
        submitted_by: None,
        tags: None,
        user_notes: None,
        group: None,
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
    pub rerun_of: Option<String>,
    /// `list --columns`: the params asked for (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, Value>>,
    /// `list --columns`: the metrics asked for (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<BTreeMap<String, f64>>,
    /// For the one item standing for the ranks of a launch (`id` is its lowest rank's): the
    /// launch and its ranks. Absent for a run that is a launch of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<super::group::GroupJson>,
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
        rerun_of: r.rerun_of.clone(),
        params: None,
        metrics: None,
        group: r
            .group
            .as_ref()
            .map(|g| super::group::GroupJson::of(g, None)),
    }
}

/// An item of a JSON array, as `serde_json::to_string_pretty` writes it inside the array
/// (indented by two spaces): `list --json` prints its array an item at a time.
pub fn array_item(item: &impl Serialize) -> serde_json::Result<String> {
    let text = serde_json::to_string_pretty(item)?;
    Ok(text
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n"))
}
