//! in-toto Statement v1 (<https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md>)
//! with a SLSA Provenance v1 predicate (<https://slsa.dev/spec/v1.0/provenance>), one per run:
//! the outputs as subjects; the inputs, configs and the git commit (and uncommitted changes)
//! as resolvedDependencies; argv, cwd, params and the redacted environment as
//! externalParameters; host, hardware, owner and outcome as internalParameters. Every digest
//! set carries `blake3` and, when known, `sha256` (files) or `dirHash` (directories).

use serde_json::{Map, Value, json};

/// The DSSE payload type of an in-toto statement (`export --format in-toto --sign`).
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

use super::{BASE, Export, Records, VERSION};
use crate::model::{ArtifactKind, ArtifactRef, EdgeRecord, Role, RunRecord};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";

pub fn build_type() -> String {
    format!("{BASE}buildtypes/run/v1")
}

pub fn builder_id() -> String {
    format!("{BASE}builder/v1")
}

/// One Statement per run that recorded at least one output (a Statement needs a subject).
pub fn statements(export: &Export, store: &dyn Records) -> Vec<Value> {
    export
        .runs
        .iter()
        .filter_map(|run| statement(export, store, run))
        .collect()
}

/// A run's statement: its outputs as subjects, SLSA Provenance v1 as the predicate. None
/// for a run without outputs (a statement needs a subject).
pub fn statement(export: &Export, store: &dyn Records, run: &RunRecord) -> Option<Value> {
    let subjects: Vec<Value> = super::edges(run, &[Role::Output])
        .map(|(e, a)| descriptor(export, e, a))
        .collect();
    if subjects.is_empty() {
        return None;
    }
    let mut metadata = Map::new();
    metadata.insert("invocationId".into(), json!(format!("urn:uuid:{}", run.id)));
    metadata.insert("startedOn".into(), json!(run.started_at));
    if let Some(end) = &run.ended_at {
        metadata.insert("finishedOn".into(), json!(end));
    }
    Some(json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": build_type(),
                "externalParameters": external(run),
                "internalParameters": internal(run),
                "resolvedDependencies": dependencies(export, store, run),
            },
            "runDetails": run_details(export, run, metadata),
        },
    }))
}

/// The builder, the run's metadata, and its tags and notes as a byproduct (`lineage
/// annotations`: what users said about the run after it ran, in the descriptor's
/// `annotations`; its sha256 is that of the `annotations` object as compact JSON).
fn run_details(export: &Export, run: &RunRecord, metadata: Map<String, Value>) -> Value {
    let mut details = json!({
        "builder": {"id": builder_id(), "version": {"lineage": VERSION}},
        "metadata": metadata,
    });
    if let Some(a) = export.annotations(run) {
        #[derive(serde::Serialize)]
        struct Doc {
            notes: Vec<Value>,
            tags: Vec<String>,
        }
        let doc = Doc {
            notes: super::notes_json(a),
            tags: a.tags.clone(),
        };
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        use sha2::Digest as _;
        let sha: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        details["byproducts"] = json!([{
            "name": "lineage annotations",
            "digest": {"sha256": sha},
            "mediaType": "application/json",
            "annotations": doc_value(&doc),
        }]);
    }
    details
}

fn doc_value(doc: &impl serde::Serialize) -> Value {
    serde_json::to_value(doc).unwrap_or_default()
}

/// What the run depended on: the commit, the uncommitted changes, configs and inputs.
fn dependencies(export: &Export, store: &dyn Records, run: &RunRecord) -> Vec<Value> {
    let mut deps = Vec::new();
    if let Some(g) = &run.capture.git {
        if let Some(commit) = &g.commit {
            let repo = g
                .remote
                .as_deref()
                .map_or_else(|| format!("file://{}", g.root), super::remote_uri);
            let uri = match &g.branch {
                Some(b) => format!("git+{repo}@refs/heads/{b}"),
                None => format!("git+{repo}"),
            };
            deps.push(json!({"uri": uri, "digest": {"gitCommit": commit}}));
        }
        if let Some(patch) = g.patch {
            let mut digest = Map::new();
            digest.insert("blake3".into(), json!(patch.to_hex()));
            if let Some(sha) = super::digests::from_blob(store, &patch) {
                digest.insert("sha256".into(), json!(sha));
            }
            deps.push(json!({
                "name": "uncommitted changes (git diff HEAD)",
                "digest": digest,
                "mediaType": "text/x-diff",
            }));
        }
    }
    for (e, a) in super::edges(run, &[Role::Config, Role::Input]) {
        deps.push(descriptor(export, e, a));
    }
    deps
}

/// What the run was asked to do: argv, cwd, params, environment (secrets redacted).
fn external(run: &RunRecord) -> Map<String, Value> {
    let c = &run.capture;
    let params: Map<String, Value> = run
        .params
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    let mut external = Map::new();
    external.insert("argv".into(), json!(super::argv(run)));
    external.insert("cwd".into(), json!(String::from_utf8_lossy(&run.cwd)));
    if !params.is_empty() {
        external.insert("params".into(), Value::Object(params));
    }
    external.insert("environment".into(), json!(c.env));
    if !c.env_redacted.is_empty() {
        external.insert(
            "environmentRedacted".into(),
            json!(c.env_redacted.keys().collect::<Vec<_>>()),
        );
    }
    external
}

/// Where and how it ran: host, hardware, owner, container, scheduler, Python, outcome.
fn internal(run: &RunRecord) -> Map<String, Value> {
    let c = &run.capture;
    let s = &c.system;
    let mut internal = Map::new();
    internal.insert(
        "host".into(),
        json!({
            "hostname": s.hostname, "os": s.os, "osVersion": s.os_version,
            "kernel": s.kernel, "arch": s.arch,
        }),
    );
    internal.insert(
        "hardware".into(),
        json!({
            "cpuModel": s.cpu_model, "cpuCores": s.cpu_cores,
            "memoryBytes": s.memory_bytes,
            "gpus": s.gpus.iter().map(|g| json!({
                "name": g.name, "uuid": g.uuid, "memoryBytes": g.memory_bytes,
                "driverVersion": g.driver_version, "visible": g.visible,
            })).collect::<Vec<_>>(),
        }),
    );
    internal.insert(
        "owner".into(),
        json!({"user": c.owner.user, "uid": c.owner.uid, "lineageOwner": c.owner.lineage_owner}),
    );
    if let Some(k) = &c.container {
        internal.insert("container".into(), json!(k));
    }
    if let Some(k) = &c.scheduler {
        internal.insert("scheduler".into(), json!(k));
    }
    if let Some(py) = &c.software.python {
        internal.insert(
            "python".into(),
            json!({"version": py.version, "packageCount": py.package_count}),
        );
    }
    internal.insert(
        "outcome".into(),
        json!({"status": run.status.as_str(), "exitCode": run.exit_code, "signal": run.signal}),
    );
    if let Some(of) = &run.rerun_of {
        internal.insert("rerunOf".into(), json!(format!("urn:uuid:{of}")));
    }
    internal
}

/// A ResourceDescriptor: the path as the run gave it, the digests, and what kind it was.
fn descriptor(export: &Export, e: &EdgeRecord, a: &ArtifactRef) -> Value {
    let mut digest = Map::new();
    digest.insert("blake3".into(), json!(a.hash.to_hex()));
    if let Some((alg, d)) = export.extra(a) {
        digest.insert(alg.into(), json!(d));
    }
    let mut annotations = Map::new();
    annotations.insert("role".into(), json!(e.role.as_str()));
    annotations.insert("absolutePath".into(), json!(e.abs_path));
    annotations.insert("sizeBytes".into(), json!(a.size));
    if a.kind == ArtifactKind::Dir {
        annotations.insert("kind".into(), json!("dir"));
        annotations.insert("fileCount".into(), json!(a.file_count));
    }
    if e.changed {
        annotations.insert("changedDuringRun".into(), json!(true));
    }
    json!({"name": e.path, "digest": digest, "annotations": annotations})
}
