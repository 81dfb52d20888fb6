//! What changed between two runs: code, params, configs, inputs (file by file inside
//! directories), env (secrets compared by their keyed fingerprints, never revealed), system,
//! Python packages, resources and outputs. Pure: the caller loads runs, blobs and manifests.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::model::{Hash, Role, RunRecord};
use crate::redact::REDACTED;

#[derive(Serialize, Default)]
pub struct RunDiff {
    pub a: String,
    pub b: String,
    pub status: Option<Change<String>>,
    pub code: Option<CodeDiff>,
    pub params: MapDiff,
    pub configs: Vec<ArtifactDiff>,
    pub inputs: Vec<ArtifactDiff>,
    pub outputs: Vec<ArtifactDiff>,
    pub env: MapDiff,
    pub system: BTreeMap<String, Change<Value>>,
    pub packages: MapDiff,
    pub resources: BTreeMap<String, Change<Value>>,
}

impl RunDiff {
    /// Whether nothing but resources differs.
    pub fn is_same_recipe(&self) -> bool {
        self.status.is_none()
            && self.code.is_none()
            && self.params.is_empty()
            && self.configs.is_empty()
            && self.inputs.is_empty()
            && self.outputs.is_empty()
            && self.env.is_empty()
            && self.system.is_empty()
            && self.packages.is_empty()
    }
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Change<T> {
    pub a: T,
    pub b: T,
}

#[derive(Serialize, Default, Debug)]
pub struct MapDiff {
    pub added: BTreeMap<String, Value>,
    pub removed: BTreeMap<String, Value>,
    pub changed: BTreeMap<String, Change<Value>>,
}

impl MapDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    fn of(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> MapDiff {
        let mut d = MapDiff::default();
        for (k, va) in a {
            match b.get(k) {
                None => {
                    d.removed.insert(k.clone(), va.clone());
                }
                Some(vb) if vb != va => {
                    d.changed.insert(
                        k.clone(),
                        Change {
                            a: va.clone(),
                            b: vb.clone(),
                        },
                    );
                }
                _ => {}
            }
        }
        for (k, vb) in b {
            if !a.contains_key(k) {
                d.added.insert(k.clone(), vb.clone());
            }
        }
        d
    }
}

#[derive(Serialize, Debug)]
pub struct CodeDiff {
    pub commit: Option<Change<Option<String>>>,
    pub patch_differs: bool,
    /// Files touched by either run's uncommitted patch.
    pub patched_files: Vec<String>,
    pub untracked: MapDiff,
}

#[derive(Serialize, Debug)]
pub struct ArtifactDiff {
    pub path: String,
    pub a: Option<Hash>,
    pub b: Option<Hash>,
    /// Inside a directory: which files were added, removed or changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FileChanges>,
}

#[derive(Serialize, Debug, Default)]
pub struct FileChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

/// The extra data a comparison needs besides the runs themselves.
pub trait Lookup {
    /// The `name==version` lines of a package-list blob.
    fn packages(&self, blob: &Hash) -> Vec<String>;
    /// The files of a directory: path -> hash.
    fn files(&self, dir: &Hash) -> BTreeMap<String, Hash>;
}

pub fn diff(a: &RunRecord, b: &RunRecord, lookup: &dyn Lookup) -> RunDiff {
    let mut d = RunDiff {
        a: a.id.clone(),
        b: b.id.clone(),
        ..RunDiff::default()
    };
    let outcome = |r: &RunRecord| match (r.exit_code, r.signal) {
        (_, Some(s)) => format!("{} (signal {s})", r.status.as_str()),
        (Some(c), _) => format!("{} (exit {c})", r.status.as_str()),
        _ => r.status.as_str().to_string(),
    };
    if outcome(a) != outcome(b) {
        d.status = Some(Change {
            a: outcome(a),
            b: outcome(b),
        });
    }
    d.code = code(a, b);
    let params = |r: &RunRecord| -> BTreeMap<String, Value> {
        r.params
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect()
    };
    d.params = MapDiff::of(&params(a), &params(b));
    d.configs = artifacts(a, b, Role::Config, lookup);
    d.inputs = artifacts(a, b, Role::Input, lookup);
    d.outputs = artifacts(a, b, Role::Output, lookup);
    d.env = env(a, b);
    d.system = system(a, b);
    d.packages = packages(a, b, lookup);
    d.resources = resources(a, b);
    d
}

fn code(a: &RunRecord, b: &RunRecord) -> Option<CodeDiff> {
    let (ga, gb) = (a.capture.git.as_ref(), b.capture.git.as_ref());
    let same = match (ga, gb) {
        (Some(x), Some(y)) => x.code == y.code,
        (None, None) => true,
        _ => false,
    };
    if same {
        return None;
    }
    let commit = |g: Option<&crate::model::GitState>| g.and_then(|g| g.commit.clone());
    let untracked = |g: Option<&crate::model::GitState>| -> BTreeMap<String, Value> {
        g.map(|g| {
            g.untracked
                .iter()
                .map(|u| (u.path.clone(), Value::String(u.hash.to_string())))
                .collect()
        })
        .unwrap_or_default()
    };
    let patch = |g: Option<&crate::model::GitState>| g.and_then(|g| g.patch);
    let mut files: BTreeSet<String> = BTreeSet::new();
    if patch(ga) != patch(gb) {
        for g in [ga, gb].into_iter().flatten() {
            files.extend(g.changed_files.iter().cloned());
        }
    }
    Some(CodeDiff {
        commit: (commit(ga) != commit(gb)).then(|| Change {
            a: commit(ga),
            b: commit(gb),
        }),
        patch_differs: patch(ga) != patch(gb),
        patched_files: files.into_iter().collect(),
        untracked: MapDiff::of(&untracked(ga), &untracked(gb)),
    })
}

fn artifacts(a: &RunRecord, b: &RunRecord, role: Role, lookup: &dyn Lookup) -> Vec<ArtifactDiff> {
    let edges = |r: &RunRecord| -> BTreeMap<String, Option<crate::model::ArtifactRef>> {
        r.edges
            .iter()
            .filter(|e| e.role == role)
            .map(|e| (e.path.clone(), e.artifact.clone()))
            .collect()
    };
    let (ea, eb) = (edges(a), edges(b));
    let paths: BTreeSet<&String> = ea.keys().chain(eb.keys()).collect();
    let mut out = Vec::new();
    for path in paths {
        let x = ea.get(path).cloned().flatten();
        let y = eb.get(path).cloned().flatten();
        let (hx, hy) = (x.as_ref().map(|a| a.hash), y.as_ref().map(|a| a.hash));
        if hx == hy && ea.contains_key(path) == eb.contains_key(path) {
            continue;
        }
        let is_dir = |v: &Option<crate::model::ArtifactRef>| {
            v.as_ref()
                .is_some_and(|a| a.kind == crate::model::ArtifactKind::Dir)
        };
        let files = (is_dir(&x) && is_dir(&y)).then(|| {
            let fa = hx.map(|h| lookup.files(&h)).unwrap_or_default();
            let fb = hy.map(|h| lookup.files(&h)).unwrap_or_default();
            let mut c = FileChanges::default();
            for (p, h) in &fa {
                match fb.get(p) {
                    None => c.removed.push(p.clone()),
                    Some(h2) if h2 != h => c.changed.push(p.clone()),
                    _ => {}
                }
            }
            c.added = fb
                .keys()
                .filter(|p| !fa.contains_key(*p))
                .cloned()
                .collect();
            c
        });
        out.push(ArtifactDiff {
            path: path.clone(),
            a: hx,
            b: hy,
            files,
        });
    }
    out
}

/// Env differences. A redacted value is compared through its keyed fingerprint and shown as
/// `[REDACTED]` on both sides.
fn env(a: &RunRecord, b: &RunRecord) -> MapDiff {
    let view = |r: &RunRecord| -> BTreeMap<String, Value> {
        r.capture
            .env
            .iter()
            .filter(|(k, _)| k.as_str() != "_")
            .map(|(k, v)| {
                // Comparable form: the fingerprint when the policy changed the value.
                let cmp = r
                    .capture
                    .env_redacted
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| v.clone());
                (k.clone(), Value::String(cmp))
            })
            .collect()
    };
    let mut d = MapDiff::of(&view(a), &view(b));
    // Show stored values, never fingerprints.
    let shown = |r: &RunRecord, k: &str| {
        Value::String(
            r.capture
                .env
                .get(k)
                .cloned()
                .unwrap_or_else(|| REDACTED.into()),
        )
    };
    for (k, v) in d.added.iter_mut() {
        *v = shown(b, k);
    }
    for (k, v) in d.removed.iter_mut() {
        *v = shown(a, k);
    }
    for (k, c) in d.changed.iter_mut() {
        c.a = shown(a, k);
        c.b = shown(b, k);
    }
    d
}

fn system(a: &RunRecord, b: &RunRecord) -> BTreeMap<String, Change<Value>> {
    let fields = |r: &RunRecord| -> BTreeMap<String, Value> {
        let s = &r.capture.system;
        let mut m = BTreeMap::new();
        m.insert("hostname".into(), serde_json::json!(s.hostname));
        m.insert(
            "os".into(),
            serde_json::json!(format!(
                "{} {}",
                s.os.as_deref().unwrap_or(""),
                s.os_version.as_deref().unwrap_or("")
            )),
        );
        m.insert("kernel".into(), serde_json::json!(s.kernel));
        m.insert("cpu_model".into(), serde_json::json!(s.cpu_model));
        m.insert("cpu_cores".into(), serde_json::json!(s.cpu_cores));
        m.insert("memory_bytes".into(), serde_json::json!(s.memory_bytes));
        m.insert(
            "gpus".into(),
            serde_json::json!(s.gpus.iter().map(|g| g.name.clone()).collect::<Vec<_>>()),
        );
        m.insert(
            "gpu_driver".into(),
            serde_json::json!(s.gpus.first().map(|g| g.driver_version.clone())),
        );
        m.insert(
            "python".into(),
            serde_json::json!(
                r.capture
                    .software
                    .python
                    .as_ref()
                    .and_then(|p| p.version.clone())
            ),
        );
        m
    };
    let (fa, fb) = (fields(a), fields(b));
    fa.into_iter()
        .filter_map(|(k, va)| {
            let vb = fb.get(&k).cloned().unwrap_or(Value::Null);
            (va != vb).then_some((k, Change { a: va, b: vb }))
        })
        .collect()
}

fn packages(a: &RunRecord, b: &RunRecord, lookup: &dyn Lookup) -> MapDiff {
    let list = |r: &RunRecord| -> Vec<String> {
        r.capture
            .software
            .python
            .as_ref()
            .and_then(|p| p.packages)
            .map(|h| lookup.packages(&h))
            .unwrap_or_default()
    };
    package_lists(&list(a), &list(b))
}

/// Two package lists (`name==version` lines, as `pip freeze` writes them) compared: name ->
/// version added, removed or changed.
pub fn package_lists(a: &[String], b: &[String]) -> MapDiff {
    let versions = |lines: &[String]| -> BTreeMap<String, Value> {
        lines
            .iter()
            .filter_map(|line| {
                let (name, version) = line.split_once("==")?;
                Some((name.to_string(), Value::String(version.to_string())))
            })
            .collect()
    };
    MapDiff::of(&versions(a), &versions(b))
}

fn resources(a: &RunRecord, b: &RunRecord) -> BTreeMap<String, Change<Value>> {
    let (Some(ra), Some(rb)) = (&a.resources, &b.resources) else {
        return BTreeMap::new();
    };
    let (Value::Object(ma), Value::Object(mb)) = (
        serde_json::to_value(ra).unwrap_or_default(),
        serde_json::to_value(rb).unwrap_or_default(),
    ) else {
        return BTreeMap::new();
    };
    ma.into_iter()
        .filter_map(|(k, va)| {
            let vb = mb.get(&k).cloned().unwrap_or(Value::Null);
            (va != vb).then_some((k, Change { a: va, b: vb }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArtifactKind, ArtifactRef, EdgeRecord, Param, Status};

    /// The store's side of a comparison, held in memory: package lists and manifests.
    #[derive(Default)]
    struct Held {
        packages: BTreeMap<Hash, Vec<String>>,
        files: BTreeMap<Hash, BTreeMap<String, Hash>>,
    }

    impl Lookup for Held {
        fn packages(&self, blob: &Hash) -> Vec<String> {
            self.packages.get(blob).cloned().unwrap_or_default()
        }

        fn files(&self, dir: &Hash) -> BTreeMap<String, Hash> {
            self.files.get(dir).cloned().unwrap_or_default()
        }
    }

    fn h(s: &str) -> Hash {
        Hash::of(s.as_bytes())
    }

    fn run(id: &str) -> RunRecord {
        RunRecord::example(id, "train")
    }

    fn param(key: &str, value: Value) -> Param {
        Param {
            key: key.into(),
            value,
            source: "cli".into(),
        }
    }

    fn dir_input(path: &str, hash: Hash) -> EdgeRecord {
        EdgeRecord {
            role: Role::Input,
            path: path.into(),
            abs_path: format!("/w/{path}"),
            artifact: Some(ArtifactRef {
                hash,
                kind: ArtifactKind::Dir,
                size: 1,
                file_count: 2,
            }),
            changed: false,
            written: None,
        }
    }

    #[test]
    fn the_same_recipe_differs_in_nothing_but_resources() {
        let (a, b) = (run("a"), run("b"));
        let d = diff(&a, &b, &Held::default());
        assert!(d.is_same_recipe());
        assert!(d.params.is_empty() && d.code.is_none() && d.status.is_none());
    }

    #[test]
    fn params_status_and_directory_contents_show_what_changed() {
        let (mut a, mut b) = (run("a"), run("b"));
        a.params = vec![param("lr", json(0.1)), param("seed", json(1))];
        b.params = vec![param("lr", json(0.2)), param("epochs", json(3))];
        b.status = Status::Failed;
        b.exit_code = Some(2);
        a.edges = vec![dir_input("data", h("v1"))];
        b.edges = vec![dir_input("data", h("v2"))];
        let mut held = Held::default();
        held.files.insert(
            h("v1"),
            [("a.csv", h("1")), ("b.csv", h("2"))]
                .map(|(p, x)| (p.to_string(), x))
                .into(),
        );
        held.files.insert(
            h("v2"),
            [("b.csv", h("2'")), ("c.csv", h("3"))]
                .map(|(p, x)| (p.to_string(), x))
                .into(),
        );
        let d = diff(&a, &b, &held);
        assert_eq!(
            d.params.changed["lr"],
            Change {
                a: json(0.1),
                b: json(0.2)
            }
        );
        assert_eq!(d.params.removed["seed"], json(1));
        assert_eq!(d.params.added["epochs"], json(3));
        let status = d.status.as_ref().expect("status differs");
        assert_eq!(
            (status.a.as_str(), status.b.as_str()),
            ("succeeded (exit 0)", "failed (exit 2)")
        );
        let files = d.inputs[0].files.as_ref().expect("file by file");
        assert_eq!(
            (&files.removed[..], &files.changed[..], &files.added[..]),
            (
                &["a.csv".to_string()][..],
                &["b.csv".to_string()][..],
                &["c.csv".to_string()][..]
            )
        );
        assert!(!d.is_same_recipe());
    }

    #[test]
    fn a_redacted_value_is_compared_by_fingerprint_and_never_shown() {
        let (mut a, mut b) = (run("a"), run("b"));
        for (r, print) in [(&mut a, "fp-1"), (&mut b, "fp-2")] {
            r.capture.env.insert("API_TOKEN".into(), REDACTED.into());
            r.capture
                .env_redacted
                .insert("API_TOKEN".into(), print.into());
        }
        let d = diff(&a, &b, &Held::default());
        let c = &d.env.changed["API_TOKEN"];
        assert_eq!(
            (c.a.as_str(), c.b.as_str()),
            (Some(REDACTED), Some(REDACTED))
        );
        b.capture
            .env_redacted
            .insert("API_TOKEN".into(), "fp-1".into());
        assert!(
            diff(&a, &b, &Held::default()).env.is_empty(),
            "the same secret"
        );
    }

    #[test]
    fn package_lists_compare_by_name() {
        let lines = |s: &[&str]| s.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        let d = package_lists(
            &lines(&["numpy==1.26.0", "torch==2.3.0", "tqdm==4.0"]),
            &lines(&[
                "numpy==2.0.0",
                "torch==2.3.0",
                "rich==13.0",
                "not a package line",
            ]),
        );
        assert_eq!(d.changed["numpy"].b, json("2.0.0"));
        assert_eq!(d.removed.keys().collect::<Vec<_>>(), ["tqdm"]);
        assert_eq!(d.added.keys().collect::<Vec<_>>(), ["rich"]);
    }

    fn json(v: impl Serialize) -> Value {
        serde_json::to_value(v).expect("json")
    }
}
