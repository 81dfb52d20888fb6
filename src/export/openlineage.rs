//! OpenLineage RunEvents (<https://openlineage.io/spec/2-0-2/OpenLineage.json>): a START and a
//! COMPLETE, FAIL or ABORT per run (a run still going has only its START), with the standard
//! facets (processing_engine, environmentVariables, executionParameters, errorMessage;
//! sourceCodeLocation, jobType, ownership) and three of ours (`lineage_run`, `lineage_rerun`
//! for a rerun, `lineage_digest`, schemas under docs/spec/facets/). Datasets are files in the
//! `file` namespace named by absolute path, versioned by their BLAKE3 digest. A rerun is not
//! its original's child (`parent` means the run that orchestrated this one): it says which
//! run it reproduced in `lineage_rerun`; a worktree rerun keeps its original's job and
//! dataset names (its paths under the temporary worktree mapped back to the repository).

use serde_json::{Map, Value, json};

use super::{BASE, Export, VERSION};
use crate::model::{ArtifactKind, ArtifactRef, EdgeRecord, Role, RunRecord, Status};

pub const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const FACETS: &str = "https://openlineage.io/spec/facets/";
/// The namespace of local files in OpenLineage's naming conventions.
pub const FILE_NAMESPACE: &str = "file";

pub fn run_facet_schema() -> String {
    format!("{BASE}spec/facets/1-0-0/LineageRunFacet.json#/$defs/LineageRunFacet")
}

pub fn metrics_facet_schema() -> String {
    format!("{BASE}spec/facets/1-0-0/LineageMetricsRunFacet.json#/$defs/LineageMetricsRunFacet")
}

pub fn rerun_facet_schema() -> String {
    format!("{BASE}spec/facets/1-0-0/LineageRerunRunFacet.json#/$defs/LineageRerunRunFacet")
}

pub fn annotations_facet_schema() -> String {
    format!(
        "{BASE}spec/facets/1-0-0/LineageAnnotationsRunFacet.json#/$defs/LineageAnnotationsRunFacet"
    )
}

pub fn digest_facet_schema() -> String {
    format!(
        "{BASE}spec/facets/1-0-0/LineageDigestDatasetFacet.json#/$defs/LineageDigestDatasetFacet"
    )
}

/// Every event of every run, in time order (each run's START before its end).
pub fn events(export: &Export, namespace: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for run in &export.runs {
        out.push(event(export, namespace, run, false));
        if run.status != Status::Running {
            out.push(event(export, namespace, run, true));
        }
    }
    out.sort_by(|a, b| a["eventTime"].as_str().cmp(&b["eventTime"].as_str()));
    out
}

fn facet(schema: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("_producer".into(), json!(super::producer()));
    m.insert("_schemaURL".into(), json!(schema));
    m
}

fn standard(file: &str, name: &str) -> Map<String, Value> {
    facet(&format!("{FACETS}{file}#/$defs/{name}"))
}

/// A run's START event, or (`end`) its COMPLETE, FAIL or ABORT.
fn event(export: &Export, namespace: &str, run: &RunRecord, end: bool) -> Value {
    let inputs: Vec<Value> = super::edges(run, &[Role::Input, Role::Config])
        .map(|(e, a)| dataset(export, run, e, a))
        .collect();
    let outputs: Vec<Value> = if end {
        super::edges(run, &[Role::Output])
            .map(|(e, a)| dataset(export, run, e, a))
            .collect()
    } else {
        Vec::new()
    };
    let (kind, time) = if end {
        let kind = match run.status {
            Status::Succeeded => "COMPLETE",
            Status::Failed => "FAIL",
            Status::Interrupted | Status::Running => "ABORT",
        };
        (kind, run.ended_at.as_deref().unwrap_or(&run.started_at))
    } else {
        ("START", run.started_at.as_str())
    };
    json!({
        "eventType": kind,
        "eventTime": time,
        "producer": super::producer(),
        "schemaURL": SCHEMA_URL,
        "run": {"runId": run.id, "facets": run_facets(export, namespace, run, end)},
        "job": {"namespace": namespace, "name": export.job_name(run), "facets": job_facets(export, run)},
        "inputs": inputs,
        "outputs": outputs,
    })
}

/// The run facets of an event: the engine, ours, and on START the environment and params;
/// the run a rerun reproduced; on FAIL the error.
fn run_facets(export: &Export, namespace: &str, run: &RunRecord, end: bool) -> Map<String, Value> {
    let mut facets = Map::new();
    let mut engine = standard(
        "1-1-1/ProcessingEngineRunFacet.json",
        "ProcessingEngineRunFacet",
    );
    engine.insert("version".into(), json!(VERSION));
    engine.insert("name".into(), json!("lineage"));
    engine.insert("openlineageAdapterVersion".into(), json!(VERSION));
    facets.insert("processing_engine".into(), Value::Object(engine));
    facets.insert("lineage_run".into(), Value::Object(lineage_run(run, end)));
    if !end {
        facets.insert("environmentVariables".into(), environment(run));
        if !run.params.is_empty() {
            facets.insert("executionParameters".into(), parameters(run));
        }
    }
    if end && !run.metrics.is_empty() {
        let mut m = facet(&metrics_facet_schema());
        let list: Vec<Value> = run
            .metrics
            .iter()
            .map(|m| json!({"key": m.key, "value": m.value, "source": m.source}))
            .collect();
        m.insert("metrics".into(), json!(list));
        facets.insert("lineage_metrics".into(), Value::Object(m));
    }
    if let Some(rerun) = rerun(export, namespace, run) {
        facets.insert("lineage_rerun".into(), rerun);
    }
    if let Some(a) = export.annotations(run) {
        let mut facet = facet(&annotations_facet_schema());
        facet.insert("tags".into(), json!(a.tags));
        facet.insert("notes".into(), json!(super::notes_json(a)));
        facets.insert("lineage_annotations".into(), Value::Object(facet));
    }
    if end && run.status == Status::Failed {
        let mut err = standard("1-0-1/ErrorMessageRunFacet.json", "ErrorMessageRunFacet");
        let message = match (run.exit_code, run.signal) {
            (_, Some(s)) => format!("{} was killed by signal {s}", super::command_line(run)),
            (Some(code), None) => format!("{} exited with code {code}", super::command_line(run)),
            _ => format!("{} failed", super::command_line(run)),
        };
        err.insert("message".into(), json!(message));
        err.insert("programmingLanguage".into(), json!(language(run)));
        facets.insert("errorMessage".into(), Value::Object(err));
    }
    facets
}

/// Our run facet (`LineageRunFacet`): the command, where and by whom it ran, its code and
/// hardware; at the end, its outcome.
fn lineage_run(run: &RunRecord, end: bool) -> Map<String, Value> {
    let c = &run.capture;
    let mut ours = facet(&run_facet_schema());
    ours.insert("argv".into(), json!(super::argv(run)));
    ours.insert("cwd".into(), json!(String::from_utf8_lossy(&run.cwd)));
    ours.insert("startedAt".into(), json!(run.started_at));
    if let Some(h) = &c.system.hostname {
        ours.insert("host".into(), json!(h));
    }
    if let Some(u) = c.owner.lineage_owner.as_ref().or(c.owner.user.as_ref()) {
        ours.insert("user".into(), json!(u));
    }
    if let Some(os) = &c.system.os {
        ours.insert("os".into(), json!(os));
    }
    if let Some(g) = &c.git {
        ours.insert("gitDirty".into(), json!(g.dirty));
        ours.insert("codeHash".into(), json!(g.code.to_string()));
    }
    ours.insert(
        "hardware".into(),
        json!({
            "cpuModel": c.system.cpu_model,
            "cpuCores": c.system.cpu_cores,
            "memoryBytes": c.system.memory_bytes,
            "gpus": c.system.gpus.iter().map(|g| g.name.clone()).collect::<Vec<_>>(),
        }),
    );
    if end {
        ours.insert("status".into(), json!(run.status.as_str()));
        if let Some(code) = run.exit_code {
            ours.insert("exitCode".into(), json!(code));
        }
        if let Some(sig) = run.signal {
            ours.insert("signal".into(), json!(sig));
        }
    }
    ours
}

/// The recorded environment (secrets already redacted).
fn environment(run: &RunRecord) -> Value {
    let mut env = standard(
        "1-0-0/EnvironmentVariablesRunFacet.json",
        "EnvironmentVariablesRunFacet",
    );
    let vars: Vec<Value> = run
        .capture
        .env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    env.insert("environmentVariables".into(), json!(vars));
    Value::Object(env)
}

/// The params, each with the config it came from.
fn parameters(run: &RunRecord) -> Value {
    let mut params = standard(
        "1-0-0/ExecutionParametersRunFacet.json",
        "ExecutionParametersRunFacet",
    );
    let list: Vec<Value> = run
        .params
        .iter()
        .map(|p| {
            let value = match &p.value {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            json!({"key": p.key, "value": value, "description": format!("from {}", p.source)})
        })
        .collect();
    params.insert("parameters".into(), json!(list));
    Value::Object(params)
}

/// A rerun's facet (`LineageRerunRunFacet`): the run it reproduced (and that run's job when
/// known), and for a worktree rerun the temporary directory it ran in and the one that stands
/// for. Not OpenLineage's `parent`, which names the run that started this one.
fn rerun(export: &Export, namespace: &str, run: &RunRecord) -> Option<Value> {
    let of = run.rerun_of.as_ref()?;
    let mut facet = facet(&rerun_facet_schema());
    let mut original = Map::new();
    original.insert("runId".into(), json!(of));
    let job = export
        .runs
        .iter()
        .find(|r| &r.id == of)
        .map(|r| export.job_name(r))
        .or_else(|| export.rerun_jobs.get(of).cloned());
    if let Some(job) = job {
        original.insert("job".into(), json!({"namespace": namespace, "name": job}));
    }
    facet.insert("rerunOf".into(), Value::Object(original));
    if let Some(w) = export.worktrees.get(&run.id) {
        facet.insert(
            "worktree".into(),
            json!({
                "directory": w.from.to_string_lossy(),
                "standsFor": w.to.to_string_lossy(),
            }),
        );
    }
    Some(Value::Object(facet))
}

/// The job facets: its type, its source code's location, its owner.
fn job_facets(export: &Export, run: &RunRecord) -> Map<String, Value> {
    let c = &run.capture;
    let mut job_facets = Map::new();
    let mut kind = standard("2-0-4/JobTypeJobFacet.json", "JobTypeJobFacet");
    kind.insert("processingType".into(), json!("BATCH"));
    kind.insert("integration".into(), json!("LINEAGE"));
    kind.insert("jobType".into(), json!("COMMAND"));
    job_facets.insert("jobType".into(), Value::Object(kind));
    if let Some(g) = &c.git {
        let mut src = standard(
            "1-1-0/SourceCodeLocationJobFacet.json",
            "SourceCodeLocationJobFacet",
        );
        src.insert("type".into(), json!("git"));
        let repo = g.remote.as_deref().map_or_else(
            || format!("file://{}", export.path(run, &g.root)),
            super::remote_uri,
        );
        src.insert("url".into(), json!(repo));
        src.insert("repoUrl".into(), json!(g.remote.clone().unwrap_or(repo)));
        if let Some(s) = &c.script {
            src.insert("path".into(), json!(s.path));
        }
        if let Some(commit) = &g.commit {
            src.insert("version".into(), json!(commit));
        }
        if let Some(b) = &g.branch {
            src.insert("branch".into(), json!(b));
        }
        job_facets.insert("sourceCodeLocation".into(), Value::Object(src));
    }
    if let Some(u) = c.owner.lineage_owner.as_ref().or(c.owner.user.as_ref()) {
        let mut own = standard("1-0-1/OwnershipJobFacet.json", "OwnershipJobFacet");
        own.insert("owners".into(), json!([{"name": format!("user:{u}")}]));
        job_facets.insert("ownership".into(), Value::Object(own));
    }
    job_facets
}

/// A file a run read or wrote, named by its absolute path (its original's, for a worktree
/// rerun: the same file of the same job, in a copy).
fn dataset(export: &Export, run: &RunRecord, e: &EdgeRecord, a: &ArtifactRef) -> Value {
    let mut facets = Map::new();
    let mut version = standard(
        "1-0-1/DatasetVersionDatasetFacet.json",
        "DatasetVersionDatasetFacet",
    );
    version.insert("datasetVersion".into(), json!(a.hash.to_string()));
    facets.insert("version".into(), Value::Object(version));
    let mut digest = facet(&digest_facet_schema());
    digest.insert("blake3".into(), json!(a.hash.to_hex()));
    if let Some((alg, d)) = export.extra(a) {
        digest.insert(alg.into(), json!(d));
    }
    digest.insert("sizeBytes".into(), json!(a.size));
    digest.insert("kind".into(), json!(a.kind.as_str()));
    if a.kind == ArtifactKind::Dir {
        digest.insert("fileCount".into(), json!(a.file_count));
    }
    digest.insert("relativePath".into(), json!(e.path));
    digest.insert("role".into(), json!(e.role.as_str()));
    if e.changed {
        digest.insert("changedDuringRun".into(), json!(true));
    }
    facets.insert("lineage_digest".into(), Value::Object(digest));
    json!({"namespace": FILE_NAMESPACE, "name": export.path(run, &e.abs_path), "facets": facets})
}

/// The language of the job, for errorMessage: from the interpreter or the script's suffix.
fn language(run: &RunRecord) -> &'static str {
    let prog = run
        .argv
        .first()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_default();
    let script = run.capture.script.as_ref().map_or("", |s| s.path.as_str());
    let base = prog.rsplit('/').next().unwrap_or("");
    if base.starts_with("python") || script.ends_with(".py") {
        "python"
    } else if base == "Rscript" || script.ends_with(".R") {
        "R"
    } else if base == "julia" || script.ends_with(".jl") {
        "julia"
    } else if ["bash", "sh", "zsh"].contains(&base) || script.ends_with(".sh") {
        "shell"
    } else {
        "unknown"
    }
}
