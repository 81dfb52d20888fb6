//! Rendering an ancestry (or descendants) walk: an indented tree for people, JSON for
//! programs, and Graphviz dot and Mermaid for pictures. A sub-graph reached twice (a diamond)
//! is printed once and referenced afterwards, so output stays linear in the graph's size.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write;

use serde::Serialize;

use super::json::{self, RunJson};
use super::{bytes, command_line, short_hash};
use crate::model::graph::{Direction, Lineage, UNLIMITED, Via};
use crate::model::{ArtifactKind, ArtifactRef, Hash, Role, RunRecord};

struct Tree<'a> {
    lineage: &'a Lineage,
    out: String,
    shown: HashSet<String>,
    color: bool,
}

impl Tree<'_> {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn artifact_line(&self, label: &str, hash: &Hash, detail: Option<&ArtifactRef>) -> String {
        let what = match detail {
            Some(a) if a.kind == ArtifactKind::Dir => {
                format!("dir, {} files, {}", a.file_count, bytes(a.size))
            }
            Some(a) => bytes(a.size),
            None => String::new(),
        };
        let mut s = format!(
            "{}  {}",
            self.paint("1", label),
            self.paint("2", &short_hash(hash))
        );
        if !what.is_empty() {
            s += &format!("  ({what})");
        }
        s
    }

    fn run_lines(&self, run: &RunRecord, short: &str) -> Vec<String> {
        let c = &run.capture;
        let who = c
            .owner
            .user
            .clone()
            .unwrap_or_else(|| format!("uid {}", c.owner.uid));
        let when = run
            .started_at
            .get(..16)
            .unwrap_or(&run.started_at)
            .replace('T', " ");
        let mut lines = vec![format!(
            "run {}  {when}  {who}@{}  {}",
            self.paint("33", short),
            c.system.hostname.as_deref().unwrap_or("?"),
            run.status.as_str()
        )];
        lines.push(format!("$ {}", command_line(&run.argv)));
        match &c.git {
            Some(g) => lines.push(format!(
                "git {} @ {}{}",
                g.branch.as_deref().unwrap_or("(detached)"),
                g.commit
                    .as_deref()
                    .map_or("?", |c| crate::model::prefix(c, 12)),
                if g.dirty { " (dirty)" } else { "" }
            )),
            None => lines.push("git: none".to_string()),
        }
        lines
    }

    /// Print `hash` (as `label`) and what produced/consumed it, `level` runs deep.
    fn artifact(
        &mut self,
        label: &str,
        hash: &Hash,
        detail: Option<&ArtifactRef>,
        indent: &str,
        level: u32,
    ) {
        let lineage = self.lineage;
        let links = lineage
            .links
            .get(hash)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut line = self.artifact_line(label, hash, detail);
        if links.is_empty() {
            line += &if level >= lineage.depth {
                "  … (depth limit)".to_string()
            } else if lineage.direction == Direction::Ancestry {
                self.paint("2", "  source: no recorded run produced it")
            } else {
                self.paint("2", "  not read by any recorded run")
            };
        }
        let _ = writeln!(self.out, "{line}");
        for (i, link) in links.iter().enumerate() {
            let last = i + 1 == links.len();
            let (branch, cont) = if last {
                ("└─ ", "   ")
            } else {
                ("├─ ", "│  ")
            };
            let verb = match lineage.direction {
                Direction::Ancestry => "produced by",
                Direction::Descendants => "read by",
            };
            let via = match &link.via {
                Via::Direct => String::new(),
                Via::InsideDir { path, .. } => format!(" (as {path} inside a directory)"),
                Via::ContainsFile { path, .. } => format!(" (through {path} inside it)"),
            };
            let Some((run, short)) = lineage.runs.get(&link.run_id) else {
                continue;
            };
            let mut head = self.run_lines(run, short);
            if !self.shown.insert(run.id.clone()) {
                let _ = writeln!(
                    self.out,
                    "{indent}{branch}{verb} run {}{via} (shown above)",
                    self.paint("33", short)
                );
                continue;
            }
            head[0] = format!("{verb} {}{via}", head[0]);
            let _ = writeln!(self.out, "{indent}{branch}{}", head[0]);
            let inner = format!("{indent}{cont}");
            for l in &head[1..] {
                let _ = writeln!(self.out, "{inner}   {l}");
            }
            let next: Vec<_> = run
                .edges
                .iter()
                .filter(|e| match lineage.direction {
                    Direction::Ancestry => e.role != Role::Output,
                    Direction::Descendants => e.role == Role::Output,
                })
                .collect();
            for (j, e) in next.iter().enumerate() {
                let last = j + 1 == next.len();
                let (b, c) = if last {
                    ("└─ ", "   ")
                } else {
                    ("├─ ", "│  ")
                };
                let _ = write!(self.out, "{inner}{b}{} ", e.role.as_str());
                match &e.artifact {
                    Some(a) => {
                        let h = a.hash;
                        self.artifact(&e.path, &h, Some(a), &format!("{inner}{c}"), level + 1)
                    }
                    None => {
                        let _ = writeln!(self.out, "{}  (missing)", e.path);
                    }
                }
            }
        }
    }
}

/// The indented tree.
pub fn tree(l: &Lineage, color: bool) -> String {
    let mut t = Tree {
        lineage: l,
        out: String::new(),
        shown: HashSet::new(),
        color,
    };
    t.artifact(&l.root.label, &l.root.hash, l.root.detail.as_ref(), "", 0);
    t.out
}

#[derive(Serialize)]
struct GraphJson<'a> {
    target: TargetJson,
    direction: &'static str,
    depth: Option<u32>,
    runs: Vec<RunJson<'a>>,
    artifacts: Vec<ArtifactNode>,
    edges: Vec<EdgeJson<'a>>,
    links: Vec<LinkJson>,
}

#[derive(Serialize)]
struct TargetJson {
    path: Option<String>,
    hash: Hash,
    kind: Option<&'static str>,
    size: Option<u64>,
}

#[derive(Serialize)]
struct ArtifactNode {
    hash: Hash,
    kind: Option<&'static str>,
    size: Option<u64>,
    file_count: Option<u64>,
    paths: Vec<String>,
}

#[derive(Serialize)]
struct EdgeJson<'a> {
    run: &'a str,
    artifact: Option<Hash>,
    role: &'static str,
    path: &'a str,
}

#[derive(Serialize)]
struct LinkJson {
    artifact: Hash,
    run: String,
    via: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    through: Option<Hash>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
}

/// `--format json` (docs/json.md).
pub fn to_json(l: &Lineage, is_path: bool) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&graph_doc(l, is_path))
}

/// `--format html`: one self-contained page (styles, script and the `--format json` document
/// inline; a Content-Security-Policy forbids any fetch) drawing the graph left to right.
pub fn html(l: &Lineage, is_path: bool) -> serde_json::Result<String> {
    const PAGE: &str = include_str!("graph.html");
    // `<` escaped in the data, so no string in it can close the script element.
    let data = serde_json::to_string(&graph_doc(l, is_path))?.replace('<', "\\u003c");
    let title = l
        .root
        .label
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    Ok(PAGE
        .replacen("{{TITLE}}", &title, 1)
        .replacen("{{DATA}}", &data, 1))
}

fn graph_doc(l: &Lineage, is_path: bool) -> GraphJson<'_> {
    let artifacts = l.artifacts();
    let mut links: Vec<LinkJson> = l
        .links
        .values()
        .flatten()
        .map(|k| {
            let (via, through, path) = match &k.via {
                Via::Direct => ("direct", None, None),
                Via::InsideDir { dir, path } => ("inside_dir", Some(*dir), Some(path.clone())),
                Via::ContainsFile { file, path } => {
                    ("contains_file", Some(*file), Some(path.clone()))
                }
            };
            LinkJson {
                artifact: k.artifact,
                run: k.run_id.clone(),
                via,
                through,
                path,
            }
        })
        .collect();
    links.sort_by(|a, b| (a.artifact, &a.run).cmp(&(b.artifact, &b.run)));
    GraphJson {
        target: TargetJson {
            path: is_path.then(|| l.root.label.clone()),
            hash: l.root.hash,
            kind: l.root.detail.as_ref().map(|d| d.kind.as_str()),
            size: l.root.detail.as_ref().map(|d| d.size),
        },
        direction: match l.direction {
            Direction::Ancestry => "ancestry",
            Direction::Descendants => "descendants",
        },
        depth: (l.depth < UNLIMITED).then_some(l.depth),
        runs: l
            .runs
            .values()
            .map(|(r, s)| json::run(r, s.clone()))
            .collect(),
        artifacts: artifacts
            .iter()
            .map(|(h, (a, paths))| ArtifactNode {
                hash: *h,
                kind: a.as_ref().map(|a| a.kind.as_str()),
                size: a.as_ref().map(|a| a.size),
                file_count: a.as_ref().map(|a| a.file_count),
                paths: paths.iter().cloned().collect(),
            })
            .collect(),
        edges: l
            .runs
            .values()
            .flat_map(|(r, _)| {
                r.edges.iter().map(move |e| EdgeJson {
                    run: &r.id,
                    artifact: e.artifact.as_ref().map(|a| a.hash),
                    role: e.role.as_str(),
                    path: &e.path,
                })
            })
            .collect(),
        links,
    }
}

fn artifact_label(l: &Lineage, hash: &Hash, paths: &BTreeSet<String>) -> String {
    let name = if *hash == l.root.hash {
        l.root.label.clone()
    } else {
        paths.iter().next().cloned().unwrap_or_default()
    };
    format!("{name}\n{}", short_hash(hash))
}

fn run_label(run: &RunRecord, short: &str) -> String {
    let mut cmd = command_line(&run.argv);
    if cmd.chars().count() > 48 {
        cmd = cmd.chars().take(47).collect::<String>() + "…";
    }
    format!("run {short}\n{cmd}\n{}", run.status.as_str())
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Graphviz dot: artifacts as notes, runs as rounded boxes, left to right.
pub fn dot(l: &Lineage) -> String {
    let mut out = String::from(
        "digraph lineage {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n",
    );
    for (hash, (_, paths)) in l.artifacts() {
        let style = if hash == l.root.hash {
            ", penwidth=2"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  \"a_{}\" [shape=note, label=\"{}\"{style}];",
            hash.to_hex(),
            dot_escape(&artifact_label(l, &hash, &paths))
        );
    }
    for (run, short) in l.runs.values() {
        let id = dot_escape(&run.id);
        let _ = writeln!(
            out,
            "  \"r_{id}\" [shape=box, style=rounded, label=\"{}\"];",
            dot_escape(&run_label(run, short))
        );
        for e in &run.edges {
            let Some(a) = &e.artifact else { continue };
            let (from, to) = match e.role {
                Role::Output => (format!("r_{id}"), format!("a_{}", a.hash.to_hex())),
                _ => (format!("a_{}", a.hash.to_hex()), format!("r_{id}")),
            };
            let _ = writeln!(
                out,
                "  \"{from}\" -> \"{to}\" [label=\"{}\"];",
                e.role.as_str()
            );
        }
    }
    for link in l.links.values().flatten() {
        if let Via::InsideDir { dir, path } | Via::ContainsFile { file: dir, path } = &link.via {
            let _ = writeln!(
                out,
                "  \"a_{}\" -> \"a_{}\" [style=dashed, arrowhead=none, label=\"{}\"];",
                dir.to_hex(),
                link.artifact.to_hex(),
                dot_escape(path)
            );
        }
    }
    out.push_str("}\n");
    out
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;").replace('\n', "<br/>")
}

/// A Mermaid flowchart, left to right.
pub fn mermaid(l: &Lineage) -> String {
    let mut out = String::from("flowchart LR\n");
    for (hash, (_, paths)) in l.artifacts() {
        let _ = writeln!(
            out,
            "  a{}[\"{}\"]",
            &hash.to_hex()[..16],
            mermaid_escape(&artifact_label(l, &hash, &paths))
        );
    }
    for (run, short) in l.runs.values() {
        let id = run.id.replace('-', "");
        let _ = writeln!(
            out,
            "  r{id}(\"{}\")",
            mermaid_escape(&run_label(run, short))
        );
        for e in &run.edges {
            let Some(a) = &e.artifact else { continue };
            let a = &a.hash.to_hex()[..16];
            match e.role {
                Role::Output => {
                    let _ = writeln!(out, "  r{id} -->|output| a{a}");
                }
                role => {
                    let _ = writeln!(out, "  a{a} -->|{}| r{id}", role.as_str());
                }
            }
        }
    }
    for link in l.links.values().flatten() {
        if let Via::InsideDir { dir, .. } | Via::ContainsFile { file: dir, .. } = &link.via {
            let _ = writeln!(
                out,
                "  a{} -.- a{}",
                &dir.to_hex()[..16],
                &link.artifact.to_hex()[..16]
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::{Link, Root};
    use crate::model::{Artifact, EdgeRecord};

    fn file(name: &str) -> ArtifactRef {
        let a = Artifact {
            hash: Hash::of(name.as_bytes()),
            kind: ArtifactKind::File,
            size: name.len() as u64,
            file_count: 1,
        };
        ArtifactRef {
            hash: a.hash,
            kind: a.kind,
            size: a.size,
            file_count: a.file_count,
        }
    }

    fn edge(role: Role, path: &str) -> EdgeRecord {
        EdgeRecord {
            role,
            path: path.into(),
            abs_path: format!("/w/{path}"),
            artifact: Some(file(path)),
            changed: false,
        }
    }

    fn run(id: &str, argv: &str, edges: Vec<EdgeRecord>) -> (RunRecord, String) {
        let mut r = RunRecord::example(id, argv);
        r.edges = edges;
        (r, id.to_string())
    }

    /// raw.csv -> prepare -> a "quoted"\nname.csv -> train -> model.bin, and train also
    /// reads raw.csv: a diamond, and a path that could break a dot or mermaid label.
    fn lineage() -> Lineage {
        let odd = "a \"quoted\"\nname.csv";
        let prepare = run(
            "p",
            "prep raw.csv",
            vec![edge(Role::Input, "raw.csv"), edge(Role::Output, odd)],
        );
        let train = run(
            "tt",
            "train",
            vec![
                edge(Role::Input, odd),
                edge(Role::Input, "raw.csv"),
                edge(Role::Output, "model.bin"),
            ],
        );
        let link = |name: &str, run: &str| Link {
            artifact: Hash::of(name.as_bytes()),
            run_id: run.into(),
            via: Via::Direct,
        };
        Lineage::new(
            Direction::Ancestry,
            Root {
                label: "model.bin".into(),
                hash: Hash::of(b"model.bin"),
                detail: Some(file("model.bin")),
            },
            UNLIMITED,
            vec![prepare, train],
            vec![link("model.bin", "tt"), link(odd, "p")],
        )
    }

    #[test]
    fn a_tree_shows_each_run_once_and_sources_as_such() {
        let t = tree(&lineage(), false);
        assert!(t.starts_with("model.bin  "), "{t}");
        assert_eq!(t.matches("produced by run tt").count(), 1, "{t}");
        assert_eq!(t.matches("produced by run p ").count(), 1, "{t}");
        assert_eq!(
            t.matches("source: no recorded run produced it").count(),
            2,
            "raw.csv, reached twice: {t}"
        );
    }

    #[test]
    fn labels_cannot_break_out_of_dot_or_mermaid() {
        let d = dot(&lineage());
        assert!(d.contains(r#"label="a \"quoted\"\nname.csv\n"#), "{d}");
        // A raw newline in a label would start a line that is not a statement.
        for line in d.lines().skip(3).filter(|l| *l != "}") {
            assert!(line.starts_with("  \""), "{line:?} in {d}");
        }
        let m = mermaid(&lineage());
        assert!(m.contains("a #quot;quoted#quot;<br/>name.csv"), "{m}");
        assert_eq!(
            m.lines().filter(|l| l.contains("-->|output|")).count(),
            2,
            "{m}"
        );
    }
}
