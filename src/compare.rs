//! What changed between two runs: the command line (token by token), code, params, configs,
//! inputs (file by file inside directories), env (secrets compared by their keyed
//! fingerprints, never revealed), system, Python packages, resources and outputs; and, for
//! `diff --ancestry`, what one level of two ancestries says (`Level`). Pure: the caller loads
//! runs, blobs and manifests, and walks the store.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::model::{Hash, Role, RunRecord};
use crate::redact::REDACTED;

#[derive(Serialize, Default, Debug)]
pub struct RunDiff {
    pub a: String,
    pub b: String,
    pub status: Option<Change<String>>,
    pub command: Option<CommandDiff>,
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
            && self.command.is_none()
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

/// One argument of a recorded command line (secrets already redacted): its bytes, shown in
/// JSON as text (U+FFFD for bytes that are not UTF-8, as `show --json` shows argv).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg(pub Vec<u8>);

impl Serialize for Arg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(&self.0))
    }
}

/// Two command lines, whole, and token by token what changed from a to b.
#[derive(Serialize, Debug)]
pub struct CommandDiff {
    pub a: Vec<Arg>,
    pub b: Vec<Arg>,
    pub tokens: Vec<TokenChange>,
}

/// One token of a command line that differs; indexes are positions in argv (0: the program).
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum TokenChange {
    Changed {
        a_index: usize,
        b_index: usize,
        a: Arg,
        b: Arg,
    },
    Added {
        b_index: usize,
        b: Arg,
    },
    Removed {
        a_index: usize,
        a: Arg,
    },
}

/// Beyond this many token pairs (argv lengths multiplied), command lines are compared
/// position by position instead of aligned.
const ALIGN_LIMIT: usize = 1 << 20;

/// The command lines of two runs, as recorded (secrets redacted): None when they are the
/// same. A redacted argument is compared through its keyed fingerprint, so a changed secret
/// shows as a changed token without being revealed. Tokens are aligned (longest common
/// subsequence), so an inserted flag shows as added, not as every later token changed.
pub fn command(a: &RunRecord, b: &RunRecord) -> Option<CommandDiff> {
    fn key(r: &RunRecord, i: usize) -> (&[u8], Option<&String>) {
        (r.argv[i].as_slice(), r.capture.argv_redacted.get(&i))
    }
    let (n, m) = (a.argv.len(), b.argv.len());
    let same = |i: usize, j: usize| key(a, i) == key(b, j);
    if n == m && (0..n).all(|i| same(i, i)) {
        return None;
    }
    // The edit script: pairs of indexes kept in both.
    let kept: Vec<(usize, usize)> = if n.saturating_mul(m) <= ALIGN_LIMIT {
        let mut lcs = vec![vec![0u32; m + 1]; n + 1];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i][j] = if same(i, j) {
                    lcs[i + 1][j + 1] + 1
                } else {
                    lcs[i + 1][j].max(lcs[i][j + 1])
                };
            }
        }
        let (mut i, mut j, mut kept) = (0, 0, Vec::new());
        while i < n && j < m {
            if same(i, j) {
                kept.push((i, j));
                (i, j) = (i + 1, j + 1);
            } else if lcs[i + 1][j] >= lcs[i][j + 1] {
                i += 1;
            } else {
                j += 1;
            }
        }
        kept
    } else {
        (0..n.min(m))
            .filter(|&i| same(i, i))
            .map(|i| (i, i))
            .collect()
    };
    // Between two kept tokens, what a lost and b gained: paired up as changed, the rest
    // removed or added.
    let mut tokens = Vec::new();
    let (mut i, mut j) = (0, 0);
    for (ki, kj) in kept.into_iter().chain([(n, m)]) {
        let (lost, gained) = (ki - i, kj - j);
        for k in 0..lost.min(gained) {
            tokens.push(TokenChange::Changed {
                a_index: i + k,
                b_index: j + k,
                a: Arg(a.argv[i + k].clone()),
                b: Arg(b.argv[j + k].clone()),
            });
        }
        for k in gained.min(lost)..lost {
            tokens.push(TokenChange::Removed {
                a_index: i + k,
                a: Arg(a.argv[i + k].clone()),
            });
        }
        for k in lost.min(gained)..gained {
            tokens.push(TokenChange::Added {
                b_index: j + k,
                b: Arg(b.argv[j + k].clone()),
            });
        }
        (i, j) = (ki + 1, kj + 1);
    }
    let args = |r: &RunRecord| r.argv.iter().cloned().map(Arg).collect();
    Some(CommandDiff {
        a: args(a),
        b: args(b),
        tokens,
    })
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
    /// The bytes of a stored blob (a patch), if kept.
    fn blob(&self, hash: &Hash) -> Option<Vec<u8>>;
    /// Whether a recorded run read or wrote these bytes.
    fn is_recorded(&self, hash: &Hash) -> bool;
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
    d.command = command(a, b);
    d.code = code(a, b, lookup);
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

/// A patch as `git diff` writes it, by file: the path each `diff --git a/P b/P` section is
/// about -> the section's bytes (its `index` line names the blobs, so the same change to a
/// file gives the same section).
fn patch_sections(patch: &[u8]) -> BTreeMap<String, &[u8]> {
    const HEADER: &[u8] = b"diff --git ";
    let mut out = BTreeMap::new();
    let mut starts: Vec<usize> = patch
        .split_inclusive(|&c| c == b'\n')
        .scan(0, |at, line| {
            let start = *at;
            *at += line.len();
            Some((start, line))
        })
        .filter(|(_, line)| line.starts_with(HEADER))
        .map(|(start, _)| start)
        .collect();
    starts.push(patch.len());
    for w in starts.windows(2) {
        let section = &patch[w[0]..w[1]];
        let header = section.split(|&c| c == b'\n').next().unwrap_or_default();
        let names = String::from_utf8_lossy(&header[HEADER.len()..]).into_owned();
        // `a/P b/P`: the path is P, the two halves' common form.
        let path = names
            .strip_prefix("a/")
            .and_then(|rest| {
                let half = rest.len().checked_sub(3)? / 2;
                let (p, q) = (rest.get(..half)?, rest.get(half..)?);
                (q.strip_prefix(" b/") == Some(p)).then(|| p.to_string())
            })
            .unwrap_or(names);
        out.insert(path, section);
    }
    out
}

/// The files whose uncommitted changes differ between two runs: section by section when
/// both patches can be read (a file changed the same way in both is not listed), else every
/// file either patch touches.
fn patched_files(
    ga: Option<&crate::model::GitState>,
    gb: Option<&crate::model::GitState>,
    lookup: &dyn Lookup,
) -> BTreeSet<String> {
    // The stored copy: the redacted one when the patch held secrets, the same on both sides.
    let text = |g: Option<&crate::model::GitState>| -> Option<Vec<u8>> {
        match g.and_then(|g| g.patch_redacted.or(g.patch)) {
            None => Some(Vec::new()),
            Some(h) => lookup.blob(&h),
        }
    };
    if let (Some(pa), Some(pb)) = (text(ga), text(gb)) {
        let (sa, sb) = (patch_sections(&pa), patch_sections(&pb));
        let mut files: BTreeSet<String> = BTreeSet::new();
        for (path, section) in &sa {
            if sb.get(path) != Some(section) {
                files.insert(path.clone());
            }
        }
        files.extend(sb.keys().filter(|p| !sa.contains_key(*p)).cloned());
        return files;
    }
    [ga, gb]
        .into_iter()
        .flatten()
        .flat_map(|g| g.changed_files.iter().cloned())
        .collect()
}

fn code(a: &RunRecord, b: &RunRecord, lookup: &dyn Lookup) -> Option<CodeDiff> {
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
    let files = if patch(ga) != patch(gb) {
        patched_files(ga, gb, lookup)
    } else {
        BTreeSet::new()
    };
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

/// `diff --ancestry`: two artifacts' ancestries compared level by level, from the runs that
/// produced them up through the inputs whose bytes differ, to the levels that explain the
/// difference.
#[derive(Serialize, Debug)]
pub struct AncestryDiff {
    pub a: Side,
    pub b: Side,
    /// Every pair of runs compared, level by level (depth 0 first).
    pub levels: Vec<Level>,
}

impl AncestryDiff {
    /// The levels that explain the difference: a recipe that differs, sources that differ,
    /// or the same recipe on the same inputs making different bytes; shallowest first.
    pub fn explanations(&self) -> impl Iterator<Item = &Level> {
        self.levels.iter().filter(|l| l.finding.explains())
    }
}

/// One of the two artifacts compared.
#[derive(Serialize, Debug)]
pub struct Side {
    /// As given on the command line.
    pub target: String,
    pub hash: Hash,
    /// The run that produced it; None when no recorded run did.
    pub run: Option<String>,
}

/// A pair of runs (or of sources) at one level of the two ancestries.
#[derive(Serialize, Debug)]
pub struct Level {
    /// 0: the runs that produced A and B; 1: the runs that produced their inputs; and on.
    pub depth: usize,
    /// The input of the level below that these bytes are (its path in a's run and in b's
    /// run); None at depth 0.
    pub through: Option<Change<String>>,
    /// The bytes compared: what the runs below read (A and B themselves at depth 0).
    pub artifact: Change<Option<Hash>>,
    /// The runs that produced them; None for bytes no recorded run produced.
    pub a: Option<String>,
    pub b: Option<String>,
    pub finding: Finding,
    /// Whether the bytes of paired inputs differ here (matched by path, then position): the
    /// walk goes on above; when not, nothing above this level differs.
    pub inputs_differ: bool,
    /// The parts of the recipe that differ here (`command`, `code`, `params`, `configs`;
    /// see [`recipe`]).
    pub recipe: Vec<&'static str>,
    /// The two runs compared, when there are two different runs.
    pub diff: Option<RunDiff>,
}

/// What a level says about the difference.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// The command, code, params or configs differ here: this level explains (part of) the
    /// difference; inputs may differ too, and are followed up.
    Recipe,
    /// Only the bytes of inputs differ: the cause is above, followed up.
    Inputs,
    /// One side (or both) has no recorded producer: the bytes differ at the source.
    Source,
    /// The same recipe on the same input bytes made different bytes: the cause is not above
    /// (a job that is not deterministic, or what the recipe does not hold: env, packages,
    /// system, which `diff` shows).
    NotAbove,
    /// One run produced both (two of its outputs).
    SameRun,
}

impl Finding {
    /// Whether the level explains the difference rather than pointing above.
    pub fn explains(self) -> bool {
        self != Finding::Inputs
    }

    /// What a comparison of two different runs says, given the parts of the recipe that
    /// differ ([`recipe`]) and whether the bytes of paired inputs differ
    /// ([`differing_inputs`]).
    pub fn of(recipe: &[&str], inputs_differ: bool) -> Finding {
        if !recipe.is_empty() {
            Finding::Recipe
        } else if inputs_differ {
            Finding::Inputs
        } else {
            Finding::NotAbove
        }
    }
}

/// Which parts of the recipe differ between two runs, for `diff --ancestry`: `command`,
/// `code`, `params`, `configs`. Code that differs only in files that are data does not
/// count, since the walk follows data through the graph instead: a file (tracked with
/// uncommitted changes, or untracked) at a path in `data` (the absolute paths the runs of
/// both ancestries declared), or an untracked file whose bytes a recorded run read or wrote.
pub fn recipe(
    d: &RunDiff,
    a: &RunRecord,
    b: &RunRecord,
    data: &BTreeSet<String>,
    lookup: &dyn Lookup,
) -> Vec<&'static str> {
    let mut parts = Vec::new();
    if d.command.is_some() {
        parts.push("command");
    }
    if d.code
        .as_ref()
        .is_some_and(|c| is_code(c, a, b, data, lookup))
    {
        parts.push("code");
    }
    if !d.params.is_empty() {
        parts.push("params");
    }
    if !d.configs.is_empty() {
        parts.push("configs");
    }
    parts
}

/// Whether a code difference is more than data (see [`recipe`]).
fn is_code(
    c: &CodeDiff,
    a: &RunRecord,
    b: &RunRecord,
    data: &BTreeSet<String>,
    lookup: &dyn Lookup,
) -> bool {
    let roots: Vec<&str> = [a, b]
        .iter()
        .filter_map(|r| r.capture.git.as_ref().map(|g| g.root.as_str()))
        .collect();
    let declared = |p: &str| {
        roots
            .iter()
            .any(|root| data.contains(&format!("{}/{p}", root.trim_end_matches('/'))))
    };
    let recorded = |v: &Value| {
        v.as_str()
            .and_then(Hash::parse)
            .is_some_and(|h| lookup.is_recorded(&h))
    };
    if c.commit.is_some() {
        return true;
    }
    if c.patched_files.iter().any(|p| !declared(p)) {
        return true;
    }
    let u = &c.untracked;
    u.added
        .iter()
        .chain(&u.removed)
        .any(|(p, h)| !declared(p) && !recorded(h))
        || u.changed
            .iter()
            .any(|(p, h)| !(declared(p) || (recorded(&h.a) && recorded(&h.b))))
}

/// The inputs of two runs paired up, matched by the path given on the command line, then the
/// rest by position: (path in a, hash in a, path in b, hash in b) for each pair whose bytes
/// differ. An input only one run has is no pair (`diff` lists it).
pub fn differing_inputs(
    a: &RunRecord,
    b: &RunRecord,
) -> Vec<(String, Option<Hash>, String, Option<Hash>)> {
    let inputs = |r: &RunRecord| -> Vec<(String, Option<Hash>)> {
        r.edges
            .iter()
            .filter(|e| e.role == Role::Input)
            .map(|e| (e.path.clone(), e.artifact.as_ref().map(|x| x.hash)))
            .collect()
    };
    let (ia, ib) = (inputs(a), inputs(b));
    let mut taken_b = vec![false; ib.len()];
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut left_a = Vec::new();
    for (i, (path, _)) in ia.iter().enumerate() {
        match ib
            .iter()
            .enumerate()
            .position(|(j, (p, _))| !taken_b[j] && p == path)
        {
            Some(j) => {
                taken_b[j] = true;
                pairs.push((i, j));
            }
            None => left_a.push(i),
        }
    }
    let left_b = (0..ib.len()).filter(|&j| !taken_b[j]);
    pairs.extend(left_a.into_iter().zip(left_b));
    pairs.sort_unstable();
    pairs
        .into_iter()
        .filter(|&(i, j)| ia[i].1 != ib[j].1)
        .map(|(i, j)| (ia[i].0.clone(), ia[i].1, ib[j].0.clone(), ib[j].1))
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
        blobs: BTreeMap<Hash, Vec<u8>>,
        recorded: BTreeSet<Hash>,
    }

    impl Lookup for Held {
        fn packages(&self, blob: &Hash) -> Vec<String> {
            self.packages.get(blob).cloned().unwrap_or_default()
        }

        fn files(&self, dir: &Hash) -> BTreeMap<String, Hash> {
            self.files.get(dir).cloned().unwrap_or_default()
        }

        fn blob(&self, hash: &Hash) -> Option<Vec<u8>> {
            self.blobs.get(hash).cloned()
        }

        fn is_recorded(&self, hash: &Hash) -> bool {
            self.recorded.contains(hash)
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

    fn arg(s: &str) -> Arg {
        Arg(s.as_bytes().to_vec())
    }

    #[test]
    fn command_lines_differ_token_by_token() {
        let (a, b) = (
            RunRecord::example("a", "python train.py --lr 0.01 --seed 1"),
            RunRecord::example("b", "python train.py --fast --lr 0.02"),
        );
        let c = command(&a, &b).expect("differs");
        assert_eq!(
            c.tokens,
            [
                TokenChange::Added {
                    b_index: 2,
                    b: arg("--fast")
                },
                TokenChange::Changed {
                    a_index: 3,
                    b_index: 4,
                    a: arg("0.01"),
                    b: arg("0.02")
                },
                TokenChange::Removed {
                    a_index: 4,
                    a: arg("--seed")
                },
                TokenChange::Removed {
                    a_index: 5,
                    a: arg("1")
                },
            ]
        );
        assert_eq!(
            json(&c.tokens[1]),
            serde_json::json!({"change": "changed", "a_index": 3, "b_index": 4, "a": "0.01", "b": "0.02"})
        );
        assert!(command(&a, &a).is_none());
        let d = diff(&a, &b, &Held::default());
        assert!(
            !d.is_same_recipe(),
            "a command that differs is another recipe"
        );
    }

    #[test]
    fn a_redacted_argument_is_compared_by_fingerprint() {
        let (mut a, mut b) = (
            RunRecord::example("a", "train --key=[REDACTED]"),
            RunRecord::example("b", "train --key=[REDACTED]"),
        );
        a.capture.argv_redacted.insert(1, "fp-1".into());
        b.capture.argv_redacted.insert(1, "fp-1".into());
        assert!(command(&a, &b).is_none(), "the same secret");
        b.capture.argv_redacted.insert(1, "fp-2".into());
        let c = command(&a, &b).expect("another secret");
        assert_eq!(
            c.tokens,
            [TokenChange::Changed {
                a_index: 1,
                b_index: 1,
                a: arg("--key=[REDACTED]"),
                b: arg("--key=[REDACTED]")
            }]
        );
    }

    #[test]
    fn a_patch_is_compared_file_by_file() {
        let section = |path: &str, index: &str| {
            format!(
                "diff --git a/{path} b/{path}\nindex {index}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-x\n+y\n"
            )
        };
        let pa = section("params.yaml", "1..2") + &section("train.py", "3..4");
        let pb = section("params.yaml", "1..5") + &section("train.py", "3..4");
        let sections = patch_sections(pa.as_bytes());
        assert_eq!(
            sections.keys().collect::<Vec<_>>(),
            ["params.yaml", "train.py"]
        );
        let (mut a, mut b) = (run("a"), run("b"));
        let mut held = Held::default();
        for (r, patch) in [(&mut a, &pa), (&mut b, &pb)] {
            let h = Hash::of(patch.as_bytes());
            held.blobs.insert(h, patch.as_bytes().to_vec());
            r.capture.git = Some(crate::model::GitState {
                root: "/w".into(),
                commit: Some("c".repeat(40)),
                patch: Some(h),
                changed_files: vec!["params.yaml".into(), "train.py".into()],
                code: Hash::of(patch.as_bytes()),
                ..crate::model::GitState::default()
            });
        }
        let code = diff(&a, &b, &held).code.expect("code differs");
        assert_eq!(
            code.patched_files,
            ["params.yaml"],
            "train.py changed alike"
        );
        // Without the patches' bytes: every file either touches.
        let code = diff(&a, &b, &Held::default()).code.expect("code differs");
        assert_eq!(code.patched_files, ["params.yaml", "train.py"]);
        // For an ancestry, a file a run declared is data, not code.
        let d = diff(&a, &b, &held);
        let data = BTreeSet::from(["/w/params.yaml".to_string()]);
        assert!(recipe(&d, &a, &b, &data, &held).is_empty());
        assert_eq!(recipe(&d, &a, &b, &BTreeSet::new(), &held), ["code"]);
    }

    #[test]
    fn untracked_files_that_runs_wrote_are_data_in_an_ancestry() {
        let (mut a, mut b) = (run("a"), run("b"));
        let untracked = |path: &str, content: &str| crate::model::UntrackedFile {
            path: path.into(),
            hash: h(content),
            size: 1,
            stored: true,
            redacted_blob: None,
        };
        a.capture.git = Some(crate::model::GitState {
            root: "/w".into(),
            untracked: vec![untracked("model.bin", "m1")],
            code: h("a"),
            ..crate::model::GitState::default()
        });
        b.capture.git = Some(crate::model::GitState {
            root: "/w".into(),
            untracked: vec![untracked("model.bin", "m2"), untracked("helper.py", "h")],
            code: h("b"),
            ..crate::model::GitState::default()
        });
        let mut held = Held::default();
        held.recorded.extend([h("m1"), h("m2")]);
        let d = diff(&a, &b, &held);
        assert_eq!(
            recipe(&d, &a, &b, &BTreeSet::new(), &held),
            ["code"],
            "helper.py"
        );
        b.capture.git.as_mut().expect("git").untracked.pop();
        let d = diff(&a, &b, &held);
        assert!(recipe(&d, &a, &b, &BTreeSet::new(), &held).is_empty());
    }

    #[test]
    fn inputs_pair_by_path_then_by_position() {
        let file = |path: &str, content: &str| EdgeRecord {
            role: Role::Input,
            path: path.into(),
            abs_path: format!("/w/{path}"),
            artifact: Some(ArtifactRef {
                hash: h(content),
                kind: ArtifactKind::File,
                size: 1,
                file_count: 1,
            }),
            changed: false,
            written: None,
        };
        let (mut a, mut b) = (run("a"), run("b"));
        a.edges = vec![file("old/data.csv", "1"), file("cfg", "c"), file("x", "x1")];
        b.edges = vec![file("x", "x2"), file("cfg", "c"), file("new/data.csv", "2")];
        let pairs: Vec<(String, String)> = differing_inputs(&a, &b)
            .into_iter()
            .map(|(pa, _, pb, _)| (pa, pb))
            .collect();
        assert_eq!(
            pairs,
            [
                ("old/data.csv".to_string(), "new/data.csv".to_string()),
                ("x".to_string(), "x".to_string())
            ]
        );
    }

    #[test]
    fn a_level_explains_unless_only_its_inputs_differ() {
        assert_eq!(Finding::of(&["params"], true), Finding::Recipe);
        assert_eq!(Finding::of(&[], true), Finding::Inputs);
        assert_eq!(Finding::of(&[], false), Finding::NotAbove);
        assert!(!Finding::Inputs.explains());
        for f in [
            Finding::Recipe,
            Finding::NotAbove,
            Finding::Source,
            Finding::SameRun,
        ] {
            assert!(f.explains());
        }
    }
}
