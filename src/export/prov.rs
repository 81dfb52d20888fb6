//! W3C PROV-JSON (<https://www.w3.org/submissions/prov-json/>): runs as Activities, artifacts
//! as Entities named by their BLAKE3 digest, the user and the host as Agents; `used`,
//! `wasGeneratedBy`, `wasAssociatedWith`, `wasDerivedFrom`, and `hadMember` for a file the
//! ancestry reached through the directory holding it.

use serde_json::{Map, Value, json};

use super::{BASE, Export};
use crate::model::{ArtifactKind, Role};

pub fn document(export: &Export) -> Value {
    let mut activity = Map::new();
    let mut entity = Map::new();
    let mut agent = Map::new();
    let mut used = Map::new();
    let mut generated = Map::new();
    let mut associated = Map::new();
    let mut derived = Map::new();
    let mut member = Map::new();
    let mut n = 0usize;
    let mut next = |kind: &str| {
        n += 1;
        format!("_:{kind}{n}")
    };

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
        entity.insert(entity_id(&hash.to_hex()), Value::Object(e));
    }
    for (dir, file, path) in &export.members {
        let file_id = entity_id(&file.to_hex());
        entity.entry(file_id.clone()).or_insert_with(|| {
            json!({"prov:type": qname("lineage:File"), "prov:label": path,
                "lineage:blake3": file.to_hex()})
        });
        entity.entry(entity_id(&dir.to_hex())).or_insert_with(|| {
            json!({"prov:type": qname("prov:Collection"),
                "lineage:blake3": dir.to_hex()})
        });
        member.insert(
            next("m"),
            json!({"prov:collection": entity_id(&dir.to_hex()), "prov:entity": file_id}),
        );
    }

    for run in &export.runs {
        let id = format!("run:{}", run.id);
        let c = &run.capture;
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
        if let Some(g) = &c.git {
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
        if let Some(of) = &run.rerun_of {
            act.insert("lineage:rerunOf".into(), json!(format!("urn:uuid:{of}")));
        }
        activity.insert(id.clone(), Value::Object(act));

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
        agent.insert(user_id.clone(), Value::Object(person));
        associated.insert(
            next("a"),
            json!({"prov:activity": id, "prov:agent": user_id}),
        );
        if let Some(host) = &c.system.hostname {
            let host_id = format!("host:{}", local(host));
            let mut h = Map::new();
            h.insert("prov:type".into(), qname("lineage:Host"));
            h.insert("prov:label".into(), json!(host));
            if let Some(os) = &c.system.os {
                h.insert("lineage:os".into(), json!(os));
            }
            h.insert("lineage:arch".into(), json!(c.system.arch));
            agent.insert(host_id.clone(), Value::Object(h));
            associated.insert(
                next("a"),
                json!({"prov:activity": id, "prov:agent": host_id}),
            );
        }

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
            used.insert(next("u"), Value::Object(u));
        }
        for (e, a) in super::edges(run, &[Role::Output]) {
            let out_id = entity_id(&a.hash.to_hex());
            let mut g = Map::new();
            g.insert("prov:entity".into(), json!(out_id));
            g.insert("prov:activity".into(), json!(id));
            if let Some(end) = &run.ended_at {
                g.insert("prov:time".into(), json!(end));
            }
            g.insert("lineage:path".into(), json!(e.path));
            generated.insert(next("g"), Value::Object(g));
            for (_, input) in &reads {
                derived.insert(
                    next("d"),
                    json!({"prov:generatedEntity": out_id,
                           "prov:usedEntity": entity_id(&input.hash.to_hex()),
                           "prov:activity": id}),
                );
            }
        }
    }

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
        ("entity", entity),
        ("activity", activity),
        ("agent", agent),
        ("used", used),
        ("wasGeneratedBy", generated),
        ("wasAssociatedWith", associated),
        ("wasDerivedFrom", derived),
        ("hadMember", member),
    ] {
        if !map.is_empty() {
            doc.insert(key.into(), Value::Object(map));
        }
    }
    Value::Object(doc)
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
