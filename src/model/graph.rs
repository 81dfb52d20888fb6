//! The lineage graph as the walks find it and the printers draw it: which run produced
//! (ancestry) or consumed (descendants) which artifact, directly or through a directory's
//! contents, and the runs involved, loaded whole.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{ArtifactRef, Hash, RunRecord};

/// How an artifact relates to a run in a walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// The run's own edge names the artifact.
    Direct,
    /// The artifact is a file at `path` inside directory `dir`, which the run's edge names.
    InsideDir {
        /// The directory the run's edge names.
        dir: Hash,
        /// Where the artifact is inside it.
        path: String,
    },
    /// The artifact is a directory holding the file `file` (at `path`) the run's edge names.
    ContainsFile {
        /// The file the run's edge names.
        file: Hash,
        /// Where it is inside the artifact.
        path: String,
    },
}

/// One step of a walk: `artifact` was produced by (ancestry) or consumed by (descendants) `run`.
#[derive(Clone, Debug)]
pub struct Link {
    /// The artifact the walk reached.
    pub artifact: Hash,
    /// The run that produced or consumed it.
    pub run_id: String,
    /// Through which of the run's edges.
    pub via: Via,
}

/// No depth limit: deeper than any real pipeline.
pub const UNLIMITED: u32 = 1_000_000;

/// Which way a walk goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Upstream: the runs that produced the bytes, what they read, and on.
    Ancestry,
    /// Downstream: the runs that read the bytes, what they wrote, and on.
    Descendants,
}

/// What the walk starts from.
#[derive(Clone, Debug)]
pub struct Root {
    /// The path as the user gave it, when the target is a path.
    pub label: String,
    /// Its content hash.
    pub hash: Hash,
    /// Kind, size and file count, when known (hashed now, or recorded by a run).
    pub detail: Option<ArtifactRef>,
}

/// A walk's result: the runs involved (loaded whole) and who produced or consumed what.
pub struct Lineage {
    /// Which way the walk went.
    pub direction: Direction,
    /// Where it started.
    pub root: Root,
    /// How many runs deep it went at most (`UNLIMITED`: all the way).
    pub depth: u32,
    /// Run id -> (run, its short id).
    pub runs: BTreeMap<String, (RunRecord, String)>,
    /// Artifact -> the runs that produced (ancestry) or consumed (descendants) it.
    pub links: HashMap<Hash, Vec<Link>>,
    /// Run id -> why its record does not verify (unsigned, an unknown key, tampered), for
    /// the runs that do not; filled by the command that shows it.
    pub marks: BTreeMap<String, &'static str>,
    /// Bytes no succeeded run produced but a failed or interrupted one wrote: (its short id,
    /// its status); filled by the walk when it leaves those runs out.
    pub failed_makers: HashMap<Hash, (String, super::Status)>,
    /// Of a path: the runs that wrote these bytes at that path. Downstream, they are not its
    /// readers (a copy stage read the same bytes elsewhere; a resumed training read a file
    /// inside the directory it then wrote); upstream, a copy stage among them is its maker.
    pub root_writers: BTreeSet<String>,
}

/// Rank runs that made (or read) the same bytes (`hash`), best first (docs/lineage-model.md,
/// "Which producer"): runs whose record verifies (`verified`) before the others (an imported
/// run never outranks one of yours by claiming to be newer); succeeded before failed or
/// interrupted; runs that made the bytes before those that read them and copied them
/// (`copied`: `cp model.txt deploy/`, unless it wrote them at the path asked about);
/// originals before the reruns among them that reproduced them (from the same inputs:
/// [`reproduces`]); runs that pass `usable` (for `rerun --upstream`:
/// its recorded directory still exists) before those that do not; then the newest. One
/// rule, for show, diff, export and rerun.
pub fn rank(
    runs: &mut [&RunRecord],
    verified: impl Fn(&RunRecord) -> bool,
    copied: impl Fn(&RunRecord) -> bool,
    usable: impl Fn(&RunRecord) -> bool,
) {
    // A rerun from other inputs that made the same bytes is a derivation of its own.
    let reproductions: BTreeSet<String> = runs
        .iter()
        .filter(|r| {
            r.rerun_of.as_deref().is_some_and(|of| {
                runs.iter()
                    .any(|o| o.id == of && o.id != r.id && reproduces(r, o))
            })
        })
        .map(|r| r.id.clone())
        .collect();
    runs.sort_by(|a, b| {
        let key = |r: &RunRecord| {
            (
                !verified(r),
                r.status != super::Status::Succeeded,
                copied(r),
                reproductions.contains(&r.id),
                !usable(r),
            )
        };
        key(a)
            .cmp(&key(b))
            .then_with(|| b.started_at.cmp(&a.started_at))
            .then_with(|| b.id.cmp(&a.id))
    });
}

/// Whether run `rerun` reproduced run `of`: the same command, from the same inputs, by
/// content, and the same configs (by content, or by the params read from them: an edit to a
/// section `-c params.yaml:train` does not read changes nothing the run used). A rerun
/// after its inputs changed that happened to make the same bytes did not: its own inputs
/// are its ancestry.
pub fn reproduces(rerun: &RunRecord, of: &RunRecord) -> bool {
    let read = |r: &RunRecord, role: super::Role| {
        let mut v: Vec<Option<Hash>> = r
            .edges
            .iter()
            .filter(|e| e.role == role)
            .map(|e| e.artifact.as_ref().map(|a| a.hash))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let configs = |r: &RunRecord| read(r, super::Role::Config);
    rerun.argv == of.argv
        && read(rerun, super::Role::Input) == read(of, super::Role::Input)
        && (configs(rerun) == configs(of)
            || (configs(rerun).len() == configs(of).len() && rerun.params == of.params))
}

/// Whether run `r` read bytes `hash` itself (as an input or a config): had it written them
/// too, it copied them.
pub fn read_these(r: &RunRecord, hash: &Hash) -> bool {
    r.edges.iter().any(|e| {
        e.role != super::Role::Output && e.artifact.as_ref().is_some_and(|a| a.hash == *hash)
    })
}

/// Whether `before` ended by the time `after` started: the only way one run's output can be
/// another's input (docs/lineage-model.md, "Causes come first").
pub fn came_before(before: &RunRecord, after: &RunRecord) -> bool {
    // A run whose end is before its start (its clock stepped back) proves nothing.
    before.id != after.id
        && before
            .ended_at
            .as_deref()
            .is_some_and(|e| e <= after.started_at.as_str() && e >= before.started_at.as_str())
}

/// The runs linked to one artifact, as a tree shows them: the first in rank with the runs
/// that reproduced it grouped under it, then the others.
pub struct Linked<'a> {
    /// The runs to draw in full, best first, each with its reruns among the links.
    pub main: Vec<(&'a RunRecord, &'a Link, Vec<&'a RunRecord>)>,
}

impl Lineage {
    /// Whether run `r` copied bytes `hash` (read them itself), as `reader` met them: at the
    /// root (no reader), a run that wrote them at the path asked about is where they are
    /// from there (`show out.txt` of `cp mid.txt out.txt` shows the copy, then mid.txt's
    /// maker; `show mid.txt`, mid.txt's maker).
    fn copied(&self, r: &RunRecord, hash: &Hash, reader: Option<&RunRecord>) -> bool {
        read_these(r, hash) && (reader.is_some() || !self.root_writers.contains(&r.id))
    }

    /// The links to `hash` that hold for `reader` (upstream: the run that read it; downstream:
    /// the run that wrote it; None at the root): upstream, runs that ended before the reader
    /// started; downstream, runs that started after the writer ended. Ranked (upstream) or
    /// oldest first (downstream); one link per run.
    pub fn links_for(&self, hash: &Hash, reader: Option<&RunRecord>) -> Vec<&Link> {
        let Some(links) = self.links.get(hash) else {
            return Vec::new();
        };
        let mut out: Vec<&Link> = Vec::new();
        for l in links {
            let Some((run, _)) = self.runs.get(&l.run_id) else {
                continue;
            };
            let causal = match (reader, self.direction) {
                (None, Direction::Ancestry) => true,
                (Some(r), Direction::Ancestry) => came_before(run, r),
                // A run does not read what it wrote: downstream of the path it wrote (a
                // copy of its input, a directory holding what it read), it is no reader.
                (None, Direction::Descendants) => !self.root_writers.contains(&run.id),
                (Some(w), Direction::Descendants) => came_before(w, run),
            };
            if causal && !out.iter().any(|o| o.run_id == l.run_id) {
                out.push(l);
            }
        }
        if self.direction == Direction::Ancestry {
            let mut runs: Vec<&RunRecord> = out
                .iter()
                .filter_map(|l| self.runs.get(&l.run_id).map(|(r, _)| r))
                .collect();
            rank(
                &mut runs,
                |r| !self.marks.contains_key(&r.id),
                |r| self.copied(r, hash, reader),
                |_| true,
            );
            out.sort_by_key(|l| runs.iter().position(|r| r.id == l.run_id));
        }
        out
    }

    /// The links to `hash` for `reader` (see [`Lineage::links_for`]), reruns grouped under
    /// the run they reproduced when it is among them.
    pub fn grouped(&self, hash: &Hash, reader: Option<&RunRecord>) -> Linked<'_> {
        let links = self.links_for(hash, reader);
        let ids: BTreeSet<&str> = links.iter().map(|l| l.run_id.as_str()).collect();
        // The original a run reproduces, through reruns of reruns, among these links (itself
        // when it reproduces none of them).
        let origin = |run: &'_ RunRecord| -> String {
            let mut at = run.id.clone();
            let mut seen = BTreeSet::new();
            while let Some((r, _)) = self.runs.get(&at) {
                match r.rerun_of.as_deref() {
                    Some(of)
                        if ids.contains(of)
                            && self.runs.get(of).is_some_and(|(o, _)| reproduces(r, o))
                            && seen.insert(of.to_string()) =>
                    {
                        at = of.to_string();
                    }
                    _ => break,
                }
            }
            at
        };
        let mut main = Vec::new();
        for l in &links {
            let Some((run, _)) = self.runs.get(&l.run_id) else {
                continue;
            };
            if origin(run) != run.id {
                continue;
            }
            let reruns: Vec<&RunRecord> = links
                .iter()
                .filter_map(|k| self.runs.get(&k.run_id).map(|(r, _)| r))
                .filter(|r| r.id != run.id && origin(r) == run.id)
                .collect();
            main.push((run, *l, reruns));
        }
        Linked { main }
    }

    /// The lineage of `root` from a walk's links and the runs they name, each artifact's
    /// links oldest run first.
    pub fn new(
        direction: Direction,
        root: Root,
        depth: u32,
        runs: Vec<(RunRecord, String)>,
        links: Vec<Link>,
    ) -> Lineage {
        let mut by_artifact: HashMap<Hash, Vec<Link>> = HashMap::new();
        for l in links {
            by_artifact.entry(l.artifact).or_default().push(l);
        }
        let runs: BTreeMap<_, _> = runs
            .into_iter()
            .map(|(r, s)| (r.id.clone(), (r, s)))
            .collect();
        // Oldest run first wherever several link to the same artifact.
        for list in by_artifact.values_mut() {
            list.sort_by(|a, b| {
                let t = |l: &Link| runs.get(&l.run_id).map(|(r, _)| r.started_at.clone());
                t(a).cmp(&t(b)).then(a.run_id.cmp(&b.run_id))
            });
            list.dedup_by(|a, b| a.run_id == b.run_id && a.via == b.via);
        }
        Lineage {
            direction,
            root,
            depth,
            runs,
            links: by_artifact,
            marks: BTreeMap::new(),
            failed_makers: HashMap::new(),
            root_writers: BTreeSet::new(),
        }
    }

    /// Every artifact the runs touched: hash -> (stored identity, paths it had).
    pub fn artifacts(&self) -> BTreeMap<Hash, (Option<ArtifactRef>, BTreeSet<String>)> {
        let mut out: BTreeMap<Hash, (Option<ArtifactRef>, BTreeSet<String>)> = BTreeMap::new();
        for (run, _) in self.runs.values() {
            for e in &run.edges {
                if let Some(a) = &e.artifact {
                    let entry = out.entry(a.hash).or_default();
                    entry.0 = Some(a.clone());
                    entry.1.insert(e.path.clone());
                }
            }
        }
        let root = out.entry(self.root.hash).or_default();
        if root.0.is_none() {
            root.0 = self.root.detail.clone();
        }
        root.1.insert(self.root.label.clone());
        out
    }
}

/// An artifact as drawn (dot, Mermaid, the HTML page): its bytes and the run in the drawing
/// that made them (None: a source, or bytes no run drawn made before they were read). The
/// same bytes made by two runs are two nodes, so a drawing is acyclic: every arrow goes from
/// a run to what it wrote, or from what a run read to that run, and what it read was made by
/// a run that ended before it started.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Node {
    /// The bytes.
    pub hash: Hash,
    /// The run that made them, in this drawing.
    pub made_by: Option<String>,
}

/// An arrow of a drawing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arc {
    /// A run read an artifact (`role`: input or config) or wrote one (output).
    Edge {
        /// The run.
        run: String,
        /// The artifact.
        node: Node,
        /// input, config or output.
        role: super::Role,
    },
    /// `inner` is at `path` inside the directory `outer` (both made by the same run).
    Inside {
        /// The directory.
        outer: Node,
        /// What is inside it.
        inner: Node,
        /// Where.
        path: String,
    },
}

/// A lineage as nodes and arrows (see [`Node`]).
#[derive(Debug, Default)]
pub struct Drawing {
    /// Every artifact node, with the paths it had.
    pub nodes: BTreeMap<Node, BTreeSet<String>>,
    /// The arrows, runs in start order.
    pub arcs: Vec<Arc>,
    /// Where the walk started.
    pub root: Option<Node>,
}

impl Lineage {
    /// The lineage as a drawing: artifact nodes told apart by the run that made them.
    pub fn drawing(&self) -> Drawing {
        let mut d = Drawing::default();
        let mut runs: Vec<&RunRecord> = self.runs.values().map(|(r, _)| r).collect();
        runs.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        let root = self.made(&self.root.hash, None, &mut d);
        d.nodes
            .entry(root.clone())
            .or_default()
            .insert(self.root.label.clone());
        d.root = Some(root);
        for r in runs {
            for e in &r.edges {
                let Some(a) = &e.artifact else { continue };
                let node = if e.role == super::Role::Output {
                    if e.written == Some(super::Written::Nothing) {
                        continue;
                    }
                    Node {
                        hash: a.hash,
                        made_by: Some(r.id.clone()),
                    }
                } else {
                    self.made(&a.hash, Some(r), &mut d)
                };
                d.nodes
                    .entry(node.clone())
                    .or_default()
                    .insert(e.path.clone());
                d.arcs.push(Arc::Edge {
                    run: r.id.clone(),
                    node,
                    role: e.role,
                });
            }
        }
        d
    }

    /// The node for `hash` as `reader` read it (None: the root): made by the best-ranked
    /// run in the drawing that wrote those bytes (or a directory holding them) before.
    fn made(&self, hash: &Hash, reader: Option<&RunRecord>, d: &mut Drawing) -> Node {
        let before = |p: &RunRecord| reader.is_none_or(|r| came_before(p, r));
        let mut direct: Vec<&RunRecord> = self
            .runs
            .values()
            .map(|(r, _)| r)
            .filter(|p| before(p))
            .filter(|p| {
                p.edges.iter().any(|e| {
                    e.role == super::Role::Output
                        && e.written != Some(super::Written::Nothing)
                        && e.artifact.as_ref().is_some_and(|a| a.hash == *hash)
                })
            })
            .collect();
        // Upstream, the walk's links also say which runs made it inside a directory.
        let mut inside: Vec<(&RunRecord, Hash, String)> = Vec::new();
        if self.direction == Direction::Ancestry {
            for l in self.links.get(hash).map(Vec::as_slice).unwrap_or_default() {
                if let (Via::InsideDir { dir, path }, Some((p, _))) =
                    (&l.via, self.runs.get(&l.run_id))
                    && before(p)
                {
                    inside.push((p, *dir, path.clone()));
                }
            }
        }
        let mut all: Vec<&RunRecord> = direct
            .iter()
            .copied()
            .chain(inside.iter().map(|i| i.0))
            .collect();
        rank(
            &mut all,
            |r| !self.marks.contains_key(&r.id),
            |r| self.copied(r, hash, reader),
            |_| true,
        );
        let Some(best) = all.first() else {
            return Node {
                hash: *hash,
                made_by: None,
            };
        };
        let node = Node {
            hash: *hash,
            made_by: Some(best.id.clone()),
        };
        direct.retain(|p| p.id == best.id);
        if direct.is_empty()
            && let Some((_, dir, path)) = inside.iter().find(|i| i.0.id == best.id)
        {
            let outer = Node {
                hash: *dir,
                made_by: Some(best.id.clone()),
            };
            let arc = Arc::Inside {
                outer,
                inner: node.clone(),
                path: path.clone(),
            };
            if !d.arcs.contains(&arc) {
                d.arcs.push(arc);
            }
        }
        node
    }
}
