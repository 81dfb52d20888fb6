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
    /// The metrics each run reported (results, not part of the recipe).
    pub metrics: MetricsDiff,
}

/// Metrics of two runs: those only one has, and each that changed, with its change.
#[derive(Serialize, Default, Debug)]
pub struct MetricsDiff {
    pub added: BTreeMap<String, f64>,
    pub removed: BTreeMap<String, f64>,
    pub changed: BTreeMap<String, MetricChange>,
}

/// A metric in both runs, with different values.
#[derive(Serialize, Debug, PartialEq)]
pub struct MetricChange {
    pub a: f64,
    pub b: f64,
    /// `b - a`.
    pub delta: f64,
    /// `(b - a) / |a|`; None when `a` is 0.
    pub relative: Option<f64>,
}

impl MetricsDiff {
    pub fn of(a: &[crate::model::Metric], b: &[crate::model::Metric]) -> MetricsDiff {
        let a: BTreeMap<&str, f64> = a.iter().map(|m| (m.key.as_str(), m.value)).collect();
        let b: BTreeMap<&str, f64> = b.iter().map(|m| (m.key.as_str(), m.value)).collect();
        let mut d = MetricsDiff::default();
        for (k, va) in &a {
            match b.get(k) {
                None => {
                    d.removed.insert((*k).to_string(), *va);
                }
                Some(vb) if vb != va => {
                    d.changed.insert(
                        (*k).to_string(),
                        MetricChange {
                            a: *va,
                            b: *vb,
                            delta: vb - va,
                            relative: (*va != 0.0).then(|| (vb - va) / va.abs()),
                        },
                    );
                }
                Some(_) => {}
            }
        }
        for (k, vb) in &b {
            if !a.contains_key(k) {
                d.added.insert((*k).to_string(), *vb);
            }
        }
        d
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
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
    /// The tracked files whose content differs: each run's commit tree with its uncommitted
    /// changes, compared file by file (so a new commit that changed no file changes none
    /// here). None when a commit's tree could not be read (the repository or a commit gone).
    pub files: Option<Vec<String>>,
    pub patch_differs: bool,
    /// Files touched by either run's uncommitted patch.
    pub patched_files: Vec<String>,
    pub untracked: MapDiff,
    /// The untracked files past those listed, as one, when that differs (absent when not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untracked_rest: Option<Change<Option<crate::model::UntrackedRest>>>,
    /// What each file of `files` is in a and in b, to tell data from code.
    #[serde(skip)]
    pub contents: BTreeMap<String, Change<Content>>,
}

/// A file of a run's code as far as its record tells: absent, or present with its git blob
/// id (from the commit's tree, or abbreviated from a patch's `index` line) and the BLAKE3
/// hash of its bytes, where known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Absent,
    Present {
        git: Option<String>,
        bytes: Option<Hash>,
    },
}

impl Content {
    const UNKNOWN: Content = Content::Present {
        git: None,
        bytes: None,
    };

    /// Whether the two are known to be the same bytes (an abbreviated id matches its full
    /// form; what is not known differs).
    fn same(&self, other: &Content) -> bool {
        match (self, other) {
            (Content::Absent, Content::Absent) => true,
            (Content::Present { git: Some(x), .. }, Content::Present { git: Some(y), .. }) => {
                let n = x.len().min(y.len());
                n >= 4 && x[..n] == y[..n]
            }
            (Content::Present { bytes: Some(x), .. }, Content::Present { bytes: Some(y), .. }) => {
                x == y
            }
            _ => false,
        }
    }
}

/// The files that differ between two commits' trees: path -> the file in each (None: absent).
pub type TreeChanges = BTreeMap<String, Change<Option<TreeFile>>>;

/// A file in a commit's tree: its git blob id (hex) and the BLAKE3 hash of its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeFile {
    pub id: String,
    pub hash: Hash,
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
    /// The files that differ between commits `a` and `b` of the repository whose work tree
    /// is `root`: path (relative to the root) -> the file in a's tree and in b's (None:
    /// absent). None when the repository or either commit cannot be read.
    fn tree_changes(&self, root: &str, a: &str, b: &str) -> Option<TreeChanges>;
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
    d.metrics = MetricsDiff::of(&a.metrics, &b.metrics);
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

/// The blob ids a patch section's `index PRE..POST` line names (hex, abbreviated as the patch
/// has them; None for git's all-zero id: no file on that side). None when the section has no
/// such line (a change of mode only).
fn section_ids(section: &[u8]) -> Option<(Option<String>, Option<String>)> {
    for line in section.split(|&c| c == b'\n').skip(1) {
        if line.starts_with(b"--- ") || line.starts_with(b"@@") || line.starts_with(b"GIT binary") {
            break;
        }
        let Some(rest) = line.strip_prefix(b"index ") else {
            continue;
        };
        let ids = std::str::from_utf8(rest).ok()?.split(' ').next()?;
        let (pre, post) = ids.split_once("..")?;
        let id = |s: &str| -> Option<Option<String>> {
            (!s.is_empty() && s.bytes().all(|c| c.is_ascii_hexdigit()))
                .then(|| (!s.bytes().all(|c| c == b'0')).then(|| s.to_ascii_lowercase()))
        };
        return Some((id(pre)?, id(post)?));
    }
    None
}

type Git<'a> = Option<&'a crate::model::GitState>;

/// The stored copy of a run's patch (the redacted one when it held secrets): empty when the
/// run had no uncommitted changes; None when its blob cannot be read.
fn patch_text(g: Git, lookup: &dyn Lookup) -> Option<Vec<u8>> {
    match g.and_then(|g| g.patch_redacted.or(g.patch)) {
        None => Some(Vec::new()),
        Some(h) => lookup.blob(&h),
    }
}

/// The files whose uncommitted changes differ between two runs: section by section when
/// both patches can be read (a file changed the same way in both is not listed), else every
/// file either patch touches.
fn patched_files(ga: Git, gb: Git, pa: Option<&[u8]>, pb: Option<&[u8]>) -> BTreeSet<String> {
    if let (Some(pa), Some(pb)) = (pa, pb) {
        let (sa, sb) = (patch_sections(pa), patch_sections(pb));
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

/// The files of two runs' code that differ, by content: each run's commit tree with its
/// uncommitted changes applied (blob ids from the trees and from the patches' `index` lines),
/// and, for a file that is not tracked on a side, the untracked file recorded there. A new
/// commit that changed no file changes nothing here. None when a commit's tree cannot be
/// read, or a run was not in a git repository.
fn tracked_changes(
    ga: Git,
    gb: Git,
    pa: Option<&[u8]>,
    pb: Option<&[u8]>,
    lookup: &dyn Lookup,
) -> Option<BTreeMap<String, Change<Content>>> {
    let (ga, gb) = (ga?, gb?);
    let tree: TreeChanges = match (&ga.commit, &gb.commit) {
        (x, y) if x == y => BTreeMap::new(),
        (Some(x), Some(y)) => [ga.root.as_str(), gb.root.as_str()]
            .into_iter()
            .find_map(|root| lookup.tree_changes(root, x, y))?,
        _ => return None,
    };
    let (sa, sb) = (pa.map(patch_sections), pb.map(patch_sections));
    let mut candidates: BTreeSet<&str> = tree.keys().map(String::as_str).collect();
    for (g, s) in [(ga, &sa), (gb, &sb)] {
        match s {
            Some(s) => candidates.extend(s.keys().map(String::as_str)),
            None => candidates.extend(g.changed_files.iter().map(String::as_str)),
        }
    }
    // What a file is on one side: its uncommitted change, else its commit's tree (the same
    // on both sides when the trees do not differ there: a patch's pre-image names it), else,
    // when not tracked, the untracked file recorded.
    type Sections<'s> = Option<BTreeMap<String, &'s [u8]>>;
    let content = |f: &str,
                   g: &crate::model::GitState,
                   own: &Sections,
                   other: &Sections,
                   side: fn(&Change<Option<TreeFile>>) -> &Option<TreeFile>|
     -> Content {
        let tracked = match own {
            Some(s) => s
                .get(f)
                .and_then(|sec| section_ids(sec))
                .map(|(_, post)| post),
            None if g.changed_files.iter().any(|c| c == f) => return Content::UNKNOWN,
            None => None,
        };
        let tracked = match tracked {
            Some(post) => post.map(|id| Content::Present {
                git: Some(id),
                bytes: None,
            }),
            None => match tree.get(f) {
                Some(t) => side(t).as_ref().map(|t| Content::Present {
                    git: Some(t.id.clone()),
                    bytes: Some(t.hash),
                }),
                None => match [own, other]
                    .into_iter()
                    .flatten()
                    .find_map(|s| s.get(f).and_then(|sec| section_ids(sec)))
                {
                    Some((pre, _)) => pre.map(|id| Content::Present {
                        git: Some(id),
                        bytes: None,
                    }),
                    None => Some(Content::UNKNOWN),
                },
            },
        };
        tracked.unwrap_or_else(|| {
            g.untracked
                .iter()
                .find(|u| u.path == f)
                .map_or(Content::Absent, |u| Content::Present {
                    git: None,
                    bytes: Some(u.hash),
                })
        })
    };
    let mut out = BTreeMap::new();
    for f in candidates {
        // The same uncommitted changes on the same file of the trees: the same bytes.
        if !tree.contains_key(f) && ga.patch == gb.patch {
            continue;
        }
        let a = content(f, ga, &sa, &sb, |t| &t.a);
        let b = content(f, gb, &sb, &sa, |t| &t.b);
        if !a.same(&b) {
            out.insert(f.to_string(), Change { a, b });
        }
    }
    Some(out)
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
    let commit = |g: Git| g.and_then(|g| g.commit.clone());
    let untracked = |g: Git| -> BTreeMap<String, Value> {
        g.map(|g| {
            g.untracked
                .iter()
                .map(|u| (u.path.clone(), Value::String(u.hash.to_string())))
                .collect()
        })
        .unwrap_or_default()
    };
    let patch = |g: Git| g.and_then(|g| g.patch);
    let (pa, pb) = (patch_text(ga, lookup), patch_text(gb, lookup));
    let files = if patch(ga) != patch(gb) {
        patched_files(ga, gb, pa.as_deref(), pb.as_deref())
    } else {
        BTreeSet::new()
    };
    let contents = tracked_changes(ga, gb, pa.as_deref(), pb.as_deref(), lookup);
    Some(CodeDiff {
        commit: (commit(ga) != commit(gb)).then(|| Change {
            a: commit(ga),
            b: commit(gb),
        }),
        files: contents.as_ref().map(|c| c.keys().cloned().collect()),
        patch_differs: patch(ga) != patch(gb),
        patched_files: files.into_iter().collect(),
        untracked: MapDiff::of(&untracked(ga), &untracked(gb)),
        untracked_rest: {
            let rest = |g: Git| g.and_then(|g| g.untracked_rest);
            (rest(ga) != rest(gb)).then(|| Change {
                a: rest(ga),
                b: rest(gb),
            })
        },
        contents: contents.unwrap_or_default(),
    })
}

/// The name two runs' edges are paired by: the path inside the run's repository (else its
/// working directory) where it was recorded, else as given. `sub/../in.txt` and `in.txt`
/// are one file; so are `data/x` in two clones of a project.
fn edge_name(r: &RunRecord, e: &crate::model::EdgeRecord) -> String {
    let cwd = crate::model::path_text(&r.cwd);
    let roots = r.capture.git.as_ref().map(|g| g.root.as_str()).into_iter();
    for root in roots.chain([cwd.as_str()]) {
        let root = root.trim_end_matches('/');
        if let Some(rel) = e
            .abs_path
            .strip_prefix(root)
            .and_then(|r| r.strip_prefix('/'))
            && !rel.is_empty()
            && !root.is_empty()
        {
            return rel.to_string();
        }
    }
    e.path.clone()
}

fn artifacts(a: &RunRecord, b: &RunRecord, role: Role, lookup: &dyn Lookup) -> Vec<ArtifactDiff> {
    let edges = |r: &RunRecord| -> BTreeMap<String, Option<crate::model::ArtifactRef>> {
        r.edges
            .iter()
            .filter(|e| e.role == role)
            .map(|e| (edge_name(r, e), e.artifact.clone()))
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
    /// Every pair of runs compared, level by level (depth 0 first), each pair once.
    pub levels: Vec<Level>,
}

impl AncestryDiff {
    /// The levels that explain the difference: a recipe that differs, sources that differ,
    /// an input only one side read, or the same recipe on the same inputs making different
    /// bytes; shallowest first.
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
    /// run; None on the side whose run did not read it); None at depth 0.
    pub through: Option<Change<Option<String>>>,
    /// The bytes compared: what the runs below read (A and B themselves at depth 0); None on
    /// the side whose run did not read the input.
    pub artifact: Change<Option<Hash>>,
    /// The runs that produced them; None for bytes no recorded run produced.
    pub a: Option<String>,
    pub b: Option<String>,
    pub finding: Finding,
    /// Whether the inputs differ here: paired inputs' bytes (matched by path, then
    /// position), or an input only one run read. The walk goes on above; when not, nothing
    /// above this level differs.
    pub inputs_differ: bool,
    /// The parts of the recipe that differ here (`command`, `code`, `params`, `configs`;
    /// see [`recipe`]).
    pub recipe: Vec<&'static str>,
    /// The files that make the code differ here, data left out (see [`recipe`]); empty
    /// when `code` is in `recipe` only because a commit's tree could not be read.
    pub code_files: Vec<String>,
    /// The configs that differ here beyond the params read from them (a config whose
    /// change shows as a param is told by the param): what a summary names.
    #[serde(skip)]
    pub configs_beyond_params: Vec<String>,
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
    /// An input only one of the two runs read (added or removed): a difference of its own,
    /// named with its producer, if any; nothing to compare it with above.
    Unpaired,
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
    /// differ ([`recipe`]) and whether their inputs differ ([`input_changes`]).
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

/// What of a recipe differs between two runs, for `diff --ancestry`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recipe {
    /// `command`, `code`, `params`, `configs`: the parts that differ.
    pub parts: Vec<&'static str>,
    /// The files that make the code differ (data left out).
    pub code_files: Vec<String>,
    /// The configs that differ beyond the params read from them.
    pub configs_beyond_params: Vec<String>,
}

/// Which parts of the recipe differ between two runs, for `diff --ancestry`: `command`,
/// `code`, `params`, `configs`. Code is compared by content (the files of each commit's tree
/// with its uncommitted changes, and the untracked files), not by commit id: a new commit
/// that changed no file of the code is no difference. A file that is data does not count,
/// since the walk follows data through the graph instead: a file at (or inside a directory
/// at) a path in `data` (the absolute paths the runs of both ancestries declared), or a file
/// whose bytes on each side are absent or were read or written by a recorded run, tracked,
/// untracked or committed between the two runs.
pub fn recipe(
    d: &RunDiff,
    a: &RunRecord,
    b: &RunRecord,
    data: &BTreeSet<String>,
    lookup: &dyn Lookup,
) -> Recipe {
    let mut r = Recipe::default();
    if d.command.is_some() {
        r.parts.push("command");
    }
    if let Some(c) = &d.code {
        let (differs, files) = code_files(c, a, b, data, lookup);
        if differs {
            r.parts.push("code");
            r.code_files = files;
        }
    }
    if !d.params.is_empty() {
        r.parts.push("params");
    }
    if !d.configs.is_empty() {
        r.parts.push("configs");
        let told: BTreeSet<&str> = [a, b]
            .iter()
            .flat_map(|run| &run.params)
            .filter(|p| {
                d.params.changed.contains_key(&p.key)
                    || d.params.added.contains_key(&p.key)
                    || d.params.removed.contains_key(&p.key)
            })
            .map(|p| p.source.as_str())
            .collect();
        r.configs_beyond_params = d
            .configs
            .iter()
            .filter(|c| !told.contains(c.path.as_str()))
            .map(|c| c.path.clone())
            .collect();
    }
    r
}

/// Whether `abs` is one of `data`'s paths or inside one.
fn within(abs: &str, data: &BTreeSet<String>) -> bool {
    data.contains(abs)
        || abs
            .match_indices('/')
            .any(|(i, _)| i > 0 && data.contains(&abs[..i]))
}

/// Whether two runs' code differs beyond data (see [`recipe`]), and the files that make it
/// differ. It differs with no file named when the trees could not be compared and the
/// commits differ.
fn code_files(
    c: &CodeDiff,
    a: &RunRecord,
    b: &RunRecord,
    data: &BTreeSet<String>,
    lookup: &dyn Lookup,
) -> (bool, Vec<String>) {
    let roots: Vec<&str> = [a, b]
        .iter()
        .filter_map(|r| r.capture.git.as_ref().map(|g| g.root.as_str()))
        .collect();
    let declared = |p: &str| {
        roots
            .iter()
            .any(|root| within(&format!("{}/{p}", root.trim_end_matches('/')), data))
    };
    let recorded = |h: &Hash| lookup.is_recorded(h);
    let recorded_value = |v: &Value| {
        v.as_str()
            .and_then(Hash::parse)
            .is_some_and(|h| recorded(&h))
    };
    let data_bytes = |c: &Content| match c {
        Content::Absent => true,
        Content::Present { bytes, .. } => bytes.as_ref().is_some_and(recorded),
    };
    let mut files = BTreeSet::new();
    match &c.files {
        Some(_) => files.extend(
            c.contents
                .iter()
                .filter(|(p, ch)| {
                    let data = declared(p) || (data_bytes(&ch.a) && data_bytes(&ch.b));
                    !data
                })
                .map(|(p, _)| p.clone()),
        ),
        None => files.extend(c.patched_files.iter().filter(|p| !declared(p)).cloned()),
    }
    // Untracked files, unless told as tracked on the other side above.
    let u = &c.untracked;
    let told = |p: &String| c.contents.contains_key(p);
    files.extend(
        u.added
            .iter()
            .chain(&u.removed)
            .filter(|(p, h)| !told(p) && !declared(p) && !recorded_value(h))
            .map(|(p, _)| p.clone()),
    );
    files.extend(
        u.changed
            .iter()
            .filter(|(p, h)| {
                let data = declared(p) || (recorded_value(&h.a) && recorded_value(&h.b));
                !told(p) && !data
            })
            .map(|(p, _)| p.clone()),
    );
    let unknown = c.files.is_none() && c.commit.is_some();
    (unknown || !files.is_empty(), files.into_iter().collect())
}

/// An input of two runs that differs: a pair whose bytes differ, or an input only one run
/// read (the other side None). Each side: the path as given, and the hash, if recorded.
#[derive(Debug, PartialEq, Eq)]
pub struct InputChange {
    pub a: Option<(String, Option<Hash>)>,
    pub b: Option<(String, Option<Hash>)>,
}

/// The inputs of two runs that differ: paired up by the path given on the command line, then
/// the rest by position, each pair whose bytes differ; then the inputs only a's run read, and
/// those only b's run read.
pub fn input_changes(a: &RunRecord, b: &RunRecord) -> Vec<InputChange> {
    let inputs = |r: &RunRecord| -> Vec<(String, Option<Hash>)> {
        r.edges
            .iter()
            .filter(|e| e.role == Role::Input)
            .map(|e| (edge_name(r, e), e.artifact.as_ref().map(|x| x.hash)))
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
    let left_b: Vec<usize> = (0..ib.len()).filter(|&j| !taken_b[j]).collect();
    let paired = left_a.len().min(left_b.len());
    pairs.extend(left_a.iter().copied().zip(left_b.iter().copied()));
    pairs.sort_unstable();
    let mut out: Vec<InputChange> = pairs
        .into_iter()
        .filter(|&(i, j)| ia[i].1 != ib[j].1)
        .map(|(i, j)| InputChange {
            a: Some(ia[i].clone()),
            b: Some(ib[j].clone()),
        })
        .collect();
    out.extend(left_a[paired..].iter().map(|&i| InputChange {
        a: Some(ia[i].clone()),
        b: None,
    }));
    out.extend(left_b[paired..].iter().map(|&j| InputChange {
        a: None,
        b: Some(ib[j].clone()),
    }));
    out
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
        trees: BTreeMap<(String, String), TreeChanges>,
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

        fn tree_changes(&self, _root: &str, a: &str, b: &str) -> Option<TreeChanges> {
            self.trees.get(&(a.to_string(), b.to_string())).cloned()
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
            observed: None,
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
        let pa =
            section("params.yaml", "1111111..2222222") + &section("train.py", "3333333..4444444");
        let pb =
            section("params.yaml", "1111111..5555555") + &section("train.py", "3333333..4444444");
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
        assert!(recipe(&d, &a, &b, &data, &held).parts.is_empty());
        let r = recipe(&d, &a, &b, &BTreeSet::new(), &held);
        assert_eq!(
            (r.parts, r.code_files),
            (vec!["code"], vec!["params.yaml".into()])
        );
    }

    #[test]
    fn code_is_compared_by_the_files_of_the_commits_not_by_their_ids() {
        let (c1, c2) = ("1".repeat(40), "2".repeat(40));
        let tree_file = |id: &str, bytes: &str| {
            Some(TreeFile {
                id: id.repeat(40 / id.len()),
                hash: h(bytes),
            })
        };
        let git = |commit: &str, patch: Option<Hash>| crate::model::GitState {
            root: "/w".into(),
            commit: Some(commit.into()),
            patch,
            changed_files: patch.map_or_else(Vec::new, |_| vec!["train.py".into()]),
            code: Hash::of(format!("{commit}{patch:?}").as_bytes()),
            ..crate::model::GitState::default()
        };
        let (mut a, mut b) = (run("a"), run("b"));
        a.capture.git = Some(git(&c1, None));
        b.capture.git = Some(git(&c2, None));
        let mut held = Held::default();
        let key = (c1.clone(), c2.clone());
        // The commit changed params.yaml only: a config, data.
        held.trees.insert(
            key.clone(),
            BTreeMap::from([(
                "params.yaml".to_string(),
                Change {
                    a: tree_file("aa", "k: 1"),
                    b: tree_file("bb", "k: 2"),
                },
            )]),
        );
        let data = BTreeSet::from(["/w/params.yaml".to_string()]);
        let d = diff(&a, &b, &held);
        let code = d.code.as_ref().expect("the commit differs");
        assert_eq!(
            code.files.as_deref(),
            Some(&["params.yaml".to_string()][..])
        );
        assert!(recipe(&d, &a, &b, &data, &held).parts.is_empty());
        // A file inside a declared directory is data too.
        let dir = BTreeSet::from(["/w".to_string()]);
        assert!(recipe(&d, &a, &b, &dir, &held).parts.is_empty());
        // The same commit change, where a's run had it as an uncommitted change to train.py
        // and b's run has it committed: the same bytes, no difference.
        let section = "diff --git a/train.py b/train.py\nindex 3333333..4444444 100644\n\
                       --- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-x\n+y\n";
        let patch = Hash::of(section.as_bytes());
        held.blobs.insert(patch, section.as_bytes().to_vec());
        a.capture.git = Some(git(&c1, Some(patch)));
        held.trees.get_mut(&key).expect("tree").insert(
            "train.py".into(),
            Change {
                a: tree_file("3", "x"),
                b: tree_file("4", "y"),
            },
        );
        let d = diff(&a, &b, &held);
        assert_eq!(
            d.code.as_ref().and_then(|c| c.files.clone()),
            Some(vec!["params.yaml".to_string()]),
            "train.py is the same bytes on both sides"
        );
        assert!(recipe(&d, &a, &b, &data, &held).parts.is_empty());
        // b's commit changed train.py again: code, named.
        held.trees.get_mut(&key).expect("tree").insert(
            "train.py".into(),
            Change {
                a: tree_file("3", "x"),
                b: tree_file("5", "z"),
            },
        );
        let d = diff(&a, &b, &held);
        let r = recipe(&d, &a, &b, &data, &held);
        assert_eq!(
            (r.parts, r.code_files),
            (vec!["code"], vec!["train.py".into()])
        );
        // Trees that cannot be read: the commits differ, no file can be named.
        held.trees.clear();
        let d = diff(&a, &b, &held);
        assert_eq!(d.code.as_ref().and_then(|c| c.files.clone()), None);
        let r = recipe(&d, &a, &b, &data, &held);
        assert_eq!(r.parts, ["code"]);
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
            link: false,
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
            recipe(&d, &a, &b, &BTreeSet::new(), &held).code_files,
            ["helper.py"]
        );
        b.capture.git.as_mut().expect("git").untracked.pop();
        let d = diff(&a, &b, &held);
        assert!(recipe(&d, &a, &b, &BTreeSet::new(), &held).parts.is_empty());
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
            observed: None,
        };
        let (mut a, mut b) = (run("a"), run("b"));
        a.edges = vec![file("old/data.csv", "1"), file("cfg", "c"), file("x", "x1")];
        b.edges = vec![file("x", "x2"), file("cfg", "c"), file("new/data.csv", "2")];
        let pairs = |a: &RunRecord, b: &RunRecord| -> Vec<(Option<String>, Option<String>)> {
            let path = |s: &Option<(String, Option<Hash>)>| s.as_ref().map(|(p, _)| p.clone());
            input_changes(a, b)
                .iter()
                .map(|c| (path(&c.a), path(&c.b)))
                .collect()
        };
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            pairs(&a, &b),
            [
                (some("old/data.csv"), some("new/data.csv")),
                (some("x"), some("x"))
            ]
        );
        // An input only one run read is a change of its own.
        b.edges.push(file("ckpt/epoch_020.json", "k"));
        assert_eq!(
            pairs(&a, &b).last(),
            Some(&(None, some("ckpt/epoch_020.json")))
        );
        assert_eq!(
            pairs(&b, &a).last(),
            Some(&(some("ckpt/epoch_020.json"), None))
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
            Finding::Unpaired,
            Finding::SameRun,
        ] {
            assert!(f.explains());
        }
    }
}
