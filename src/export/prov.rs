//! W3C PROV-JSON (<https://www.w3.org/submissions/prov-json/>): runs as Activities, artifacts
//! as Entities named by their BLAKE3 digest, the user and the host as Agents; `used`,
//! `wasGeneratedBy`, `wasAssociatedWith`, `wasDerivedFrom`, and `hadMember` for a file the
//! ancestry reached through the directory holding it.

use serde_json::{Map, Value, json};

use super::{BASE, Export};
use crate::model::{ArtifactKind, Role, RunRecord};

/// The PROV-JSON document of an export.
pub fn document(export: &Export) -> Value {
    let mut doc = Document::default();
    doc.entities(export);
    for run in &export.runs {
        doc.run(run, export.annotations(run));
    }
    doc.finish()
}

/// A document in the making: its sections, and the counter that names its relations
/// (`_:u1`, `_:g2`, ... in the order they are made).
#[derive(Default)]
struct Document {
    activity: Map<String, Value>,
    entity: Map<String, Value>,
    agent: Map<String, Value>,
    used: Map<String, Value>,
    generated: Map<String, Value>,
    associated: Map<String, Value>,
    derived: Map<String, Value>,
    member: Map<String, Value>,
    n: usize,
}

impl Document {
    fn next(&mut self, kind: &str) -> String {
        self.n += 1;
        format!("_:{kind}{}", self.n)
    }

    /// Every artifact, and the directories the walk went through with their members.
    fn entities(&mut self, export: &Export) {
        for (hash, (a, edges)) in export.artifacts() {
            let mut e = Map::new();
            let kind = match a.kind {
                ArtifactKind::File => "lineage:File",
                ArtifactKind::Dir => "prov:Collection",
            };
            e.insert("prov:type".into(), qname(kind));
            if let Some(first) = edges.first() {
                e.insert("prov:label".into(), json!(first.path));
            }
            e.insert("lineage:blake3".into(), json!(hash.to_hex()));
            if let Some((alg, d)) = export.extra(&a) {
                e.insert(format!("lineage:{alg}"), json!(d));
            }
            e.insert("lineage:sizeBytes".into(), typed(a.size, "xsd:long"));
            if a.kind == ArtifactKind::Dir {
                e.insert("lineage:fileCount".into(), typed(a.file_count, "xsd:long"));
            }
            self.entity
                .insert(entity_id(&hash.to_hex()), Value::Object(e));
        }
        for (dir, file, path) in &export.members {
            let file_id = entity_id(&file.to_hex());
            self.entity.entry(file_id.clone()).or_insert_with(|| {
                json!({"prov:type": qname("lineage:File"), "prov:label": path,
                    "lineage:blake3": file.to_hex()})
            });
            self.entity
                .entry(entity_id(&dir.to_hex()))
                .or_insert_with(|| {
                    json!({"prov:type": qname("prov:Collection"),
                        "lineage:blake3": dir.to_hex()})
                });
            let m = self.next("m");
            self.member.insert(
                m,
                json!({"prov:collection": entity_id(&dir.to_hex()), "prov:entity": file_id}),
            );
        }
    }

    /// A run: its activity, its agents, and what it used and generated.
    fn run(&mut self, run: &RunRecord, annotations: Option<&crate::model::RunAnnotations>) {
        let id = format!("run:{}", run.id);
        let mut act = activity(run);
        if let (Some(a), Value::Object(act)) = (annotations, &mut act) {
            annotate(act, a);
        }
        self.activity.insert(id.clone(), act);
        self.agents(run, &id);
        let reads: Vec<_> = super::edges(run, &[Role::Input, Role::Config]).collect();
        for (e, a) in &reads {
            let mut u = Map::new();
            u.insert("prov:activity".into(), json!(id));
            u.insert("prov:entity".into(), json!(entity_id(&a.hash.to_hex())));
            u.insert("prov:time".into(), json!(run.started_at));
            u.insert("prov:role".into(), json!(e.role.as_str()));
            u.insert("lineage:path".into(), json!(e.path));
            if e.changed {
                u.insert(
                    "lineage:changedDuringRun".into(),
                    typed(true, "xsd:boolean"),
                );
            }
            let key = self.next("u");
            self.used.insert(key, Value::Object(u));
        }
        for (e, a) in super::edges(run, &[Role::Output]) {
            // Bytes the run read and wrote back (a copy, a pass-through) existed before it:
            // it used them, it did not generate them, and nothing derives from itself
            // (docs/lineage-model.md: a run is never its own ancestor).
            if reads.iter().any(|(_, input)| input.hash == a.hash) {
                continue;
            }
            let out_id = entity_id(&a.hash.to_hex());
            let mut g = Map::new();
            g.insert("prov:entity".into(), json!(out_id));
            g.insert("prov:activity".into(), json!(id));
            if let Some(end) = &run.ended_at {
                g.insert("prov:time".into(), json!(end));
            }
            g.insert("lineage:path".into(), json!(e.path));
            let key = self.next("g");
            self.generated.insert(key, Value::Object(g));
            for (_, input) in &reads {
                let key = self.next("d");
                self.derived.insert(
                    key,
                    json!({"prov:generatedEntity": out_id,
                           "prov:usedEntity": entity_id(&input.hash.to_hex()),
                           "prov:activity": id}),
                );
            }
        }
    }

    /// The run's user (or team) and host, associated with its activity.
    fn agents(&mut self, run: &RunRecord, id: &str) {
        let c = &run.capture;
        let user = c
            .owner
            .lineage_owner
            .clone()
            .or_else(|| c.owner.user.clone())
            .unwrap_or_else(|| format!("uid-{}", c.owner.uid));
        let user_id = format!("user:{}", local(&user));
        let mut person = Map::new();
        person.insert("prov:type".into(), qname("prov:Person"));
        person.insert("prov:label".into(), json!(user));
        if let Some(name) = &c.owner.git_name {
            person.insert("lineage:gitName".into(), json!(name));
        }
        self.agent.insert(user_id.clone(), Value::Object(person));
        let key = self.next("a");
        self.associated
            .insert(key, json!({"prov:activity": id, "prov:agent": user_id}));
        if let Some(host) = &c.system.hostname {
            let host_id = format!("host:{}", local(host));
            let mut h = Map::new();
            h.insert("prov:type".into(), qname("lineage:Host"));
            h.insert("prov:label".into(), json!(host));
            if let Some(os) = &c.system.os {
                h.insert("lineage:os".into(), json!(os));
            }
            h.insert("lineage:arch".into(), json!(c.system.arch));
            self.agent.insert(host_id.clone(), Value::Object(h));
            let key = self.next("a");
            self.associated
                .insert(key, json!({"prov:activity": id, "prov:agent": host_id}));
        }
    }

    fn finish(self) -> Value {
        let mut doc = Map::new();
        doc.insert(
            "prefix".into(),
            json!({
                "lineage": format!("{BASE}ns#"),
                "run": "urn:uuid:",
                "blake3": format!("{BASE}ns/blake3/"),
                "user": format!("{BASE}ns/user/"),
                "host": format!("{BASE}ns/host/"),
            }),
        );
        for (key, map) in [
            ("entity", self.entity),
            ("activity", self.activity),
            ("agent", self.agent),
            ("used", self.used),
            ("wasGeneratedBy", self.generated),
            ("wasAssociatedWith", self.associated),
            ("wasDerivedFrom", self.derived),
            ("hadMember", self.member),
        ] {
            if !map.is_empty() {
                doc.insert(key.into(), Value::Object(map));
            }
        }
        Value::Object(doc)
    }
}

/// A run as an Activity: its command, times, outcome, code and params.
fn activity(run: &RunRecord) -> Value {
    let mut act = Map::new();
    act.insert("prov:type".into(), qname("lineage:Run"));
    act.insert("prov:label".into(), json!(super::command_line(run)));
    act.insert("prov:startTime".into(), json!(run.started_at));
    if let Some(end) = &run.ended_at {
        act.insert("prov:endTime".into(), json!(end));
    }
    act.insert(
        "lineage:argv".into(),
        json!(serde_json::to_string(&super::argv(run)).unwrap_or_default()),
    );
    act.insert(
        "lineage:cwd".into(),
        json!(String::from_utf8_lossy(&run.cwd)),
    );
    act.insert("lineage:status".into(), json!(run.status.as_str()));
    if let Some(code) = run.exit_code {
        act.insert("lineage:exitCode".into(), typed(code, "xsd:int"));
    }
    if let Some(sig) = run.signal {
        act.insert("lineage:signal".into(), typed(sig, "xsd:int"));
    }
    if let Some(g) = &run.capture.git {
        if let Some(commit) = &g.commit {
            act.insert("lineage:gitCommit".into(), json!(commit));
        }
        if let Some(branch) = &g.branch {
            act.insert("lineage:gitBranch".into(), json!(branch));
        }
        if let Some(remote) = &g.remote {
            act.insert("lineage:gitRemote".into(), json!(remote));
        }
        act.insert("lineage:gitDirty".into(), typed(g.dirty, "xsd:boolean"));
        act.insert("lineage:codeHash".into(), json!(g.code.to_hex()));
    }
    if !run.params.is_empty() {
        let params: Map<String, Value> = run
            .params
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        act.insert(
            "lineage:params".into(),
            json!(Value::Object(params).to_string()),
        );
    }
    if !run.metrics.is_empty() {
        let metrics: Map<String, Value> = run
            .metrics
            .iter()
            .map(|m| (m.key.clone(), json!(m.value)))
            .collect();
        act.insert(
            "lineage:metrics".into(),
            json!(Value::Object(metrics).to_string()),
        );
    }
    if let Some(of) = &run.rerun_of {
        act.insert("lineage:rerunOf".into(), json!(format!("urn:uuid:{of}")));
    }
    Value::Object(act)
}

/// A run's tags (`lineage:tag`, one value each) and notes (`lineage:notes`, a JSON array of
/// `{text, author, createdAt}` as a string, like `lineage:params`): said about the run after it
/// ran (`lineage tag`, `lineage note`).
fn annotate(act: &mut Map<String, Value>, a: &crate::model::RunAnnotations) {
    if !a.tags.is_empty() {
        act.insert("lineage:tag".into(), json!(a.tags));
    }
    if !a.notes.is_empty() {
        act.insert(
            "lineage:notes".into(),
            json!(serde_json::to_string(&super::notes_json(a)).unwrap_or_default()),
        );
    }
}

fn entity_id(hex: &str) -> String {
    format!("blake3:{hex}")
}

fn qname(q: &str) -> Value {
    json!({"$": q, "type": "prov:QUALIFIED_NAME"})
}

fn typed(v: impl ToString, ty: &str) -> Value {
    json!({"$": v.to_string(), "type": ty})
}

/// A name usable as the local part of a qualified name: unusual bytes percent-encoded.
fn local(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
