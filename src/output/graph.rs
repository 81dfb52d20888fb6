//! Rendering an ancestry (or descendants) walk: an indented tree for people, JSON for
//! programs, and Graphviz dot and Mermaid for pictures. A sub-graph reached twice (a diamond)
//! is printed once and referenced afterwards, so output stays linear in the graph's size.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write;

use serde::Serialize;

use super::json::{self, RunJson};
use super::{bytes, short_hash};
use crate::model::graph::{Arc, Direction, Lineage, Node, UNLIMITED, Via};
use crate::model::text::{escape, terminal_command_line};
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
                let s = if a.file_count == 1 { "" } else { "s" };
                format!("dir, {} file{s}, {}", a.file_count, bytes(a.size))
            }
            Some(a) => bytes(a.size),
            None => String::new(),
        };
        let mut s = format!(
            "{}  {}",
            self.paint("1", &escape(label)),
            self.paint("2", &short_hash(hash))
        );
        if !what.is_empty() {
            s += &format!("  ({what})");
        }
        s
    }

    fn run_lines(&self, run: &RunRecord, short: &str) -> Vec<String> {
        let c = &run.capture;
        let who = c.owner.user.as_deref().map_or_else(
            || format!("uid {}", c.owner.uid),
            |u| escape(u).into_owned(),
        );
        let when = escape(crate::model::prefix(&run.started_at, 16)).replace('T', " ");
        let mut lines = vec![format!(
            "run {}  {when}  {who}@{}  {}",
            self.paint("33", &escape(short)),
            escape(c.system.hostname.as_deref().unwrap_or("?")),
            run.status.as_str()
        )];
        if let Some(mark) = self.lineage.marks.get(&run.id) {
            lines[0] += &format!("  {}", self.paint("31", &format!("[{mark}]")));
        }
        lines.push(format!("$ {}", terminal_command_line(&run.argv)));
        match &c.git {
            Some(g) => lines.push(format!(
                "git {} @ {}{}",
                escape(g.branch.as_deref().unwrap_or("(detached)")),
                escape(
                    g.commit
                        .as_deref()
                        .map_or("?", |c| crate::model::prefix(c, 12))
                ),
                if g.dirty { " (dirty)" } else { "" }
            )),
            None => lines.push("git: none".to_string()),
        }
        lines
    }

    /// Print `hash` (as `label`) and what produced/consumed it, `level` runs deep; `reader`
    /// is the run it was reached from (None at the root): only links that hold for it
    /// (causes before effects) are followed, reproductions grouped under their original.
    fn artifact(
        &mut self,
        label: &str,
        hash: &Hash,
        detail: Option<&ArtifactRef>,
        indent: &str,
        level: u32,
        reader: Option<&RunRecord>,
    ) {
        let lineage = self.lineage;
        let linked = lineage.grouped(hash, reader);
        let mut line = self.artifact_line(label, hash, detail);
        if linked.main.is_empty() {
            line += &if level >= lineage.depth {
                "  … (depth limit)".to_string()
            } else if let Some((run, status)) = lineage.failed_makers.get(hash)
                && lineage.direction == Direction::Ancestry
            {
                self.paint(
                    "2",
                    &format!(
                        "  made only by a run that did not succeed: {} run {} (--all shows it)",
                        status.as_str(),
                        escape(run)
                    ),
                )
            } else if lineage.direction == Direction::Ancestry {
                self.paint("2", "  source: no recorded run produced it")
            } else {
                self.paint("2", "  not read by any recorded run")
            };
        }
        let _ = writeln!(self.out, "{line}");
        // Other originals that made the same bytes: a few, then how many more (a file copied
        // daily has hundreds; each would be a line under every reader). Downstream, every
        // reader is a branch of its own: the tree is everything built from these bytes.
        const OTHERS: usize = 3;
        let more = match lineage.direction {
            Direction::Ancestry => linked.main.len().saturating_sub(1 + OTHERS),
            Direction::Descendants => 0,
        };
        let n = linked.main.len() - more;
        for (i, (run, link, reruns)) in linked.main.into_iter().take(n).enumerate() {
            let last = i + 1 == n;
            let (branch, cont) = if last {
                ("└─ ", "   ")
            } else {
                ("├─ ", "│  ")
            };
            let verb = match (lineage.direction, i) {
                (Direction::Ancestry, 0) => "produced by",
                (Direction::Ancestry, _) => "also produced by",
                (Direction::Descendants, _) => "read by",
            };
            let via = match &link.via {
                Via::Direct => String::new(),
                Via::InsideDir { path, dir } => {
                    // The directory as the run named it.
                    let outer = run
                        .edges
                        .iter()
                        .find(|e| e.artifact.as_ref().is_some_and(|a| a.hash == *dir))
                        .map_or_else(
                            || "a directory".to_string(),
                            |e| escape(&e.path).into_owned(),
                        );
                    format!(" (as {} inside {outer})", escape(path))
                }
                Via::ContainsFile { path, .. } => format!(" (through {} inside it)", escape(path)),
            };
            let Some((_, short)) = lineage.runs.get(&run.id) else {
                continue;
            };
            let reproduced = match reruns.len() {
                0 => String::new(),
                k => {
                    let shorts: Vec<String> = reruns
                        .iter()
                        .take(3)
                        .filter_map(|r| {
                            lineage.runs.get(&r.id).map(|(_, s)| escape(s).into_owned())
                        })
                        .collect();
                    let more = if k > 3 { ", …" } else { "" };
                    format!(
                        "; reproduced by {k} rerun{} ({}{more})",
                        if k == 1 { "" } else { "s" },
                        shorts.join(", ")
                    )
                }
            };
            let mut head = self.run_lines(run, short);
            // Another original that made the same bytes: one line, not a second tree.
            if i > 0 && lineage.direction == Direction::Ancestry {
                let status = if run.status == crate::model::Status::Succeeded {
                    String::new()
                } else {
                    format!(" ({})", run.status.as_str())
                };
                let and_more = if last && more > 0 {
                    format!("; and {more} more runs (lineage show --format json lists them)")
                } else {
                    String::new()
                };
                let _ = writeln!(
                    self.out,
                    "{indent}{branch}{verb} run {}{status}{via}{reproduced}{and_more}",
                    self.paint("33", &escape(short))
                );
                continue;
            }
            if !self.shown.insert(run.id.clone()) {
                let _ = writeln!(
                    self.out,
                    "{indent}{branch}{verb} run {}{via} (shown above){reproduced}",
                    self.paint("33", &escape(short))
                );
                continue;
            }
            head[0] = format!("{verb} {}{via}{reproduced}", head[0]);
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
                let seen = match e.observed {
                    Some(crate::model::Seen::Undeclared) => "observed ",
                    Some(crate::model::Seen::Job) => "job-declared ",
                    _ => "",
                };
                let _ = write!(self.out, "{inner}{b}{seen}{} ", e.role.as_str());
                match (&e.artifact, &e.written) {
                    (Some(_), Some(crate::model::Written::Nothing)) => {
                        let _ = writeln!(self.out, "{}  (declared, not written)", escape(&e.path));
                    }
                    (Some(a), _) => {
                        let h = a.hash;
                        self.artifact(
                            &e.path,
                            &h,
                            Some(a),
                            &format!("{inner}{c}"),
                            level + 1,
                            Some(run),
                        )
                    }
                    (None, _) => {
                        let _ = writeln!(self.out, "{}  (missing)", escape(&e.path));
                    }
                }
            }
        }
    }
}

/// The indented tree. Drawn on a thread with a large stack: each level of runs is a level of
/// recursion, and a chain of thousands of runs is a real store.
pub fn tree(l: &Lineage, color: bool) -> String {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("tree".into())
            .stack_size(1 << 30)
            .spawn_scoped(s, || tree_on_this_stack(l, color))
            .map_or_else(
                |_| tree_on_this_stack(l, color),
                |t| t.join().unwrap_or_default(),
            )
    })
}

fn tree_on_this_stack(l: &Lineage, color: bool) -> String {
    let mut t = Tree {
        lineage: l,
        out: String::new(),
        shown: HashSet::new(),
        color,
    };
    t.artifact(
        &l.root.label,
        &l.root.hash,
        l.root.detail.as_ref(),
        "",
        0,
        None,
    );
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
///
/// Data goes in one place only: the JSON block, substituted once into a template split at its
/// one marker (so text in the data that looks like a marker is never substituted), with `<`,
/// `>`, `&` and the JavaScript line separators written as `\u` escapes, so that nothing in it
/// can close the script element, open a comment or be read as markup. The page's title and
/// heading are set from that JSON by the script, as text.
pub fn html(l: &Lineage, is_path: bool) -> serde_json::Result<String> {
    let page = HtmlDoc {
        graph: graph_doc(l, is_path),
        drawing: drawing_json(l),
    };
    let data = html_json(&serde_json::to_string(&page)?);
    let (head, tail) = HTML_PAGE
        .split_once(HTML_DATA_MARKER)
        .unwrap_or((HTML_PAGE, ""));
    Ok([head, data.as_str(), tail].concat())
}

/// What the page draws: the graph document, and its nodes and arrows as [`Lineage::drawing`]
/// tells them apart (the same bytes made by two runs are two nodes: no cycle).
#[derive(Serialize)]
struct HtmlDoc<'a> {
    #[serde(flatten)]
    graph: GraphJson<'a>,
    drawing: DrawingJson,
}

#[derive(Serialize)]
struct DrawingJson {
    root: String,
    nodes: Vec<DrawnNode>,
    arcs: Vec<DrawnArc>,
}

#[derive(Serialize)]
struct DrawnNode {
    id: String,
    hash: Hash,
    paths: Vec<String>,
}

#[derive(Serialize)]
struct DrawnArc {
    from: String,
    to: String,
    kind: &'static str,
}

fn drawing_json(l: &Lineage) -> DrawingJson {
    let d = l.drawing();
    // The target is its hash (`#select=blake3:…` finds it); other bytes made by a run are
    // `blake3:…@RUN`, a source that is not the target `blake3:…@source` when the target
    // has the same bytes.
    let id = |n: &Node| {
        if Some(n) == d.root.as_ref() {
            return n.hash.to_string();
        }
        match &n.made_by {
            Some(r) => format!("{}@{r}", n.hash),
            None if n.hash == l.root.hash => format!("{}@source", n.hash),
            None => n.hash.to_string(),
        }
    };
    DrawingJson {
        root: d.root.as_ref().map(id).unwrap_or_default(),
        nodes: d
            .nodes
            .iter()
            .map(|(n, paths)| DrawnNode {
                id: id(n),
                hash: n.hash,
                paths: paths.iter().cloned().collect(),
            })
            .collect(),
        arcs: d
            .arcs
            .iter()
            .map(|a| match a {
                Arc::Edge { run, node, role } => {
                    let run = format!("run:{run}");
                    match role {
                        Role::Output => DrawnArc {
                            from: run,
                            to: id(node),
                            kind: "output",
                        },
                        role => DrawnArc {
                            from: id(node),
                            to: run,
                            kind: role.as_str(),
                        },
                    }
                }
                Arc::Inside { outer, inner, .. } => DrawnArc {
                    from: id(outer),
                    to: id(inner),
                    kind: "contains",
                },
            })
            .collect(),
    }
}

/// The page, with one [`HTML_DATA_MARKER`] where the JSON goes.
const HTML_PAGE: &str = include_str!("graph.html");
const HTML_DATA_MARKER: &str = "{{DATA}}";

/// JSON made safe inside a `<script>` element: the same JSON to a parser, with no `<`, `>`,
/// `&`, U+2028 or U+2029 in it (each written as a `\u` escape; they can only occur inside
/// strings, where the escape means the same character).
fn html_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
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

/// An artifact's label, its lines already inert (data escaped): the path (the root's as the
/// user gave it), the short hash.
fn artifact_label(l: &Lineage, hash: &Hash, paths: &BTreeSet<String>, root: bool) -> Vec<String> {
    let name = if root {
        l.root.label.as_str()
    } else {
        paths.iter().next().map_or("", String::as_str)
    };
    vec![escape(name).into_owned(), short_hash(hash)]
}

/// A run's label, its lines already inert (data escaped): id, command, status.
fn run_label(run: &RunRecord, short: &str) -> Vec<String> {
    let mut cmd = terminal_command_line(&run.argv);
    if cmd.chars().count() > 48 {
        cmd = cmd.chars().take(47).collect::<String>() + "…";
    }
    vec![
        format!("run {}", escape(short)),
        cmd,
        run.status.as_str().to_string(),
    ]
}

/// A dot quoted string's contents: quotes and backslashes escaped, so that nothing in it
/// can end the string or start an escape of dot's (`\l`, `\N`, `\G`, ...). The text has
/// no newline (data is escaped before it gets here).
fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A dot label: each line escaped, joined with dot's own line break.
fn dot_label(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| dot_escape(l))
        .collect::<Vec<_>>()
        .join("\\n")
}

/// Node ids lineage makes: `a_<hash hex>` (dot) or `a<16 hex>` (Mermaid) for artifacts, `r<n>` for runs (in id order). No
/// text from a record (a run id came from an import, perhaps) is ever an id or an attribute
/// other than a quoted, escaped label.
fn run_ids(l: &Lineage) -> std::collections::HashMap<&str, String> {
    l.runs
        .keys()
        .enumerate()
        .map(|(i, id)| (id.as_str(), format!("r{i}")))
        .collect()
}

/// A drawn artifact's node id: `a_<hash hex>` for a source, `a_<hash hex>_r<n>` for bytes
/// run `r<n>` made (`short`: the first 16 hex digits, for Mermaid).
fn node_id(node: &Node, ids: &std::collections::HashMap<&str, String>, short: bool) -> String {
    let hex = node.hash.to_hex();
    let hex = if short { &hex[..16] } else { &hex[..] };
    let sep = if short { "" } else { "_" };
    match node.made_by.as_deref().and_then(|r| ids.get(r)) {
        Some(run) => format!("a{sep}{hex}_{run}"),
        None => format!("a{sep}{hex}"),
    }
}

/// Graphviz dot: artifacts as notes, runs as rounded boxes, left to right; the same bytes
/// made by two runs are two notes, so the graph has no cycle.
pub fn dot(l: &Lineage) -> String {
    let mut out = String::from(
        "digraph lineage {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n",
    );
    let d = l.drawing();
    let ids = run_ids(l);
    for (node, paths) in &d.nodes {
        let style = if Some(node) == d.root.as_ref() {
            ", penwidth=2"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  \"{}\" [shape=note, label=\"{}\"{style}];",
            node_id(node, &ids, false),
            dot_label(&artifact_label(
                l,
                &node.hash,
                paths,
                Some(node) == d.root.as_ref()
            ))
        );
    }
    for (run, short) in l.runs.values() {
        let _ = writeln!(
            out,
            "  \"{}\" [shape=box, style=rounded, label=\"{}\"];",
            ids[run.id.as_str()],
            dot_label(&run_label(run, short))
        );
    }
    for arc in &d.arcs {
        match arc {
            Arc::Edge { run, node, role } => {
                let (run, node) = (&ids[run.as_str()], node_id(node, &ids, false));
                let (from, to) = match role {
                    Role::Output => (run.clone(), node),
                    _ => (node, run.clone()),
                };
                let _ = writeln!(
                    out,
                    "  \"{from}\" -> \"{to}\" [label=\"{}\"];",
                    role.as_str()
                );
            }
            Arc::Inside { outer, inner, path } => {
                let _ = writeln!(
                    out,
                    "  \"{}\" -> \"{}\" [style=dashed, arrowhead=none, label=\"{}\"];",
                    node_id(outer, &ids, false),
                    node_id(inner, &ids, false),
                    dot_escape(&escape(path))
                );
            }
        }
    }
    out.push_str("}\n");
    out
}

/// A Mermaid label's text inside its double quotes: what Mermaid would read as markup or an
/// entity written as an entity code (`#quot;`, `#35;`, `#lt;`, ...), so the text is shown as
/// it is and cannot end the label, the node or the line.
fn mermaid_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            // `%%{init: …}%%` is a directive wherever it appears: never let one start.
            '%' => out.push_str("#37;"),
            '{' => out.push_str("#123;"),
            '}' => out.push_str("#125;"),
            c => out.push(c),
        }
    }
    out
}

/// A Mermaid label: each line escaped, joined with Mermaid's own line break.
fn mermaid_label(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| mermaid_escape(l))
        .collect::<Vec<_>>()
        .join("<br/>")
}

/// A Mermaid flowchart, left to right (artifact nodes as in [`dot`]).
pub fn mermaid(l: &Lineage) -> String {
    let mut out = String::from("flowchart LR\n");
    let d = l.drawing();
    let ids = run_ids(l);
    for (node, paths) in &d.nodes {
        let _ = writeln!(
            out,
            "  {}[\"{}\"]",
            node_id(node, &ids, true),
            mermaid_label(&artifact_label(
                l,
                &node.hash,
                paths,
                Some(node) == d.root.as_ref()
            ))
        );
    }
    for (run, short) in l.runs.values() {
        let id = &ids[run.id.as_str()];
        let _ = writeln!(out, "  {id}(\"{}\")", mermaid_label(&run_label(run, short)));
    }
    for arc in &d.arcs {
        match arc {
            Arc::Edge { run, node, role } => {
                let (run, node) = (&ids[run.as_str()], node_id(node, &ids, true));
                match role {
                    Role::Output => {
                        let _ = writeln!(out, "  {run} -->|output| {node}");
                    }
                    role => {
                        let _ = writeln!(out, "  {node} -->|{}| {run}", role.as_str());
                    }
                }
            }
            Arc::Inside { outer, inner, .. } => {
                let _ = writeln!(
                    out,
                    "  {} -.- {}",
                    node_id(outer, &ids, true),
                    node_id(inner, &ids, true)
                );
            }
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
            written: None,
            observed: None,
        }
    }

    /// A run that started at minute `at` and took half a minute.
    fn run(id: &str, argv: &str, edges: Vec<EdgeRecord>, at: u32) -> (RunRecord, String) {
        let mut r = RunRecord::example(id, argv);
        r.started_at = format!("2026-11-01T00:{at:02}:00.000000Z");
        r.ended_at = Some(format!("2026-11-01T00:{at:02}:30.000000Z"));
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
            1,
        );
        let train = run(
            "tt",
            "train",
            vec![
                edge(Role::Input, odd),
                edge(Role::Input, "raw.csv"),
                edge(Role::Output, "model.bin"),
            ],
            2,
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
        // The newline in the data is shown as `\n` (an escaped backslash to dot); the one
        // between the path and the hash is dot's line break.
        assert!(d.contains(r#"label="a \"quoted\"\\nname.csv\n"#), "{d}");
        // A raw newline in a label would start a line that is not a statement.
        for line in d.lines().skip(3).filter(|l| *l != "}") {
            assert!(line.starts_with("  \""), "{line:?} in {d}");
        }
        let m = mermaid(&lineage());
        assert!(m.contains("a #quot;quoted#quot;\\nname.csv<br/>"), "{m}");
        assert_eq!(
            m.lines().filter(|l| l.contains("-->|output|")).count(),
            2,
            "{m}"
        );
    }

    /// Whether a dot graph's solid arrows close a cycle.
    fn has_cycle(dot: &str) -> bool {
        let arrow = regex::Regex::new(r#"^  "([^"]+)" -> "([^"]+)" \[label"#).expect("regex");
        let mut next: std::collections::HashMap<String, Vec<String>> = Default::default();
        for l in dot.lines() {
            if let Some(c) = arrow.captures(l) {
                next.entry(c[1].to_string())
                    .or_default()
                    .push(c[2].to_string());
            }
        }
        fn visit(
            n: &str,
            next: &std::collections::HashMap<String, Vec<String>>,
            state: &mut std::collections::HashMap<String, u8>,
        ) -> bool {
            match state.get(n) {
                Some(1) => return true,
                Some(_) => return false,
                None => {}
            }
            state.insert(n.to_string(), 1);
            let cyc = next
                .get(n)
                .is_some_and(|ns| ns.iter().any(|m| visit(m, next, state)));
            state.insert(n.to_string(), 2);
            cyc
        }
        let mut state = Default::default();
        next.keys().any(|n| visit(n, &next, &mut state))
    }

    /// A stage that copies its input writes the bytes it read: drawn as two notes, never a
    /// loop (issue 16, item 6).
    #[test]
    fn a_copy_stage_draws_no_cycle() {
        let mid = "mid.txt";
        let prep = run(
            "p",
            "prep",
            vec![edge(Role::Input, "raw.csv"), edge(Role::Output, mid)],
            1,
        );
        let mut out = edge(Role::Output, mid);
        out.path = "out.txt".into();
        let copy = run(
            "c",
            "cp mid.txt out.txt",
            vec![edge(Role::Input, mid), out],
            2,
        );
        let link = |run: &str| Link {
            artifact: Hash::of(mid.as_bytes()),
            run_id: run.into(),
            via: Via::Direct,
        };
        let l = Lineage::new(
            Direction::Ancestry,
            Root {
                label: "out.txt".into(),
                hash: Hash::of(mid.as_bytes()),
                detail: Some(file(mid)),
            },
            UNLIMITED,
            vec![prep, copy],
            vec![link("p"), link("c")],
        );
        let d = dot(&l);
        assert!(!has_cycle(&d), "{d}");
        assert_eq!(
            d.matches("shape=note").count(),
            3,
            "raw, mid by p, out by c: {d}"
        );
        let m = mermaid(&l);
        assert_eq!(m.matches("-->|output|").count(), 2, "{m}");
        let t = tree(&l, false);
        assert!(!t.contains("shown above"), "{t}");
    }

    /// A run of [`hostile_lineage`]: id, short id, argv, input path, output path.
    type HostileRun = (String, String, Vec<Vec<u8>>, String, String);

    /// A chain of runs whose ids, short ids, argv and paths are arbitrary: run i reads what
    /// run i-1 wrote (the first reads a source) and writes a file found inside a directory.
    fn hostile_lineage(root: String, runs: Vec<HostileRun>) -> Lineage {
        let hash = |i: usize| Hash::of(format!("artifact {i}").as_bytes());
        let detail = |i: usize| ArtifactRef {
            hash: hash(i),
            kind: ArtifactKind::File,
            size: i as u64,
            file_count: 1,
        };
        let mut records = Vec::new();
        let mut links = Vec::new();
        for (i, (id, short, argv, input, output)) in runs.into_iter().enumerate() {
            let id = format!("{id}{i}");
            let mut r = RunRecord::example(&id, "x");
            // Run i starts after run i-1 ended.
            r.started_at = format!("2026-11-01T{:02}:{:02}:00.000000Z", i / 60, i % 60);
            r.ended_at = Some(format!("2026-11-01T{:02}:{:02}:30.000000Z", i / 60, i % 60));
            r.argv = argv;
            r.capture.system.hostname = Some(short.clone());
            r.capture.owner.user = Some(input.clone());
            r.edges = vec![
                EdgeRecord {
                    role: Role::Input,
                    path: input,
                    abs_path: String::new(),
                    artifact: Some(detail(i)),
                    changed: false,
                    written: None,
                    observed: None,
                },
                EdgeRecord {
                    role: Role::Output,
                    path: output.clone(),
                    abs_path: String::new(),
                    artifact: Some(detail(i + 1)),
                    changed: false,
                    written: None,
                    observed: None,
                },
            ];
            links.push(Link {
                artifact: hash(i + 1),
                run_id: id.clone(),
                via: if i % 2 == 0 {
                    Via::Direct
                } else {
                    Via::InsideDir {
                        dir: hash(i + 100),
                        path: output,
                    }
                },
            });
            records.push((r, short));
        }
        let last = records.len();
        Lineage::new(
            Direction::Ancestry,
            Root {
                label: root,
                hash: hash(last),
                detail: Some(detail(last)),
            },
            UNLIMITED,
            records,
            links,
        )
    }

    fn runs() -> impl proptest::strategy::Strategy<Value = Vec<HostileRun>> {
        use crate::output::hostile::{bytes, text};
        use proptest::prelude::*;
        prop::collection::vec(
            (
                text(),
                text(),
                prop::collection::vec(bytes(), 1..4),
                text(),
                text(),
            ),
            1..4,
        )
    }

    /// A dot quoted string: `"`, then anything but `"` and `\`, or `\` and any character.
    const DOT_STRING: &str = r#""(?:[^"\\]|\\.)*""#;

    proptest::proptest! {
        #![proptest_config(crate::output::hostile::config(300))]

        /// The tree: inert, and one line per node whatever the names hold.
        #[test]
        fn a_tree_of_arbitrary_names_is_inert_and_forges_no_line(
            root in crate::output::hostile::text(),
            runs in runs(),
        ) {
            let x = || "x".to_string();
            let plain: Vec<_> = runs
                .iter()
                .map(|(_, _, argv, _, _)| (x(), x(), vec![b"x".to_vec(); argv.len()], x(), x()))
                .collect();
            let t = tree(&hostile_lineage(root, runs), false);
            crate::output::hostile::is_inert(&t).map_err(proptest::test_runner::TestCaseError::fail)?;
            // As many lines as the same graph with plain names: no name made one.
            let lines = tree(&hostile_lineage(x(), plain), false).lines().count();
            proptest::prop_assert_eq!(t.lines().count(), lines, "{}", t);
        }

        /// dot: every statement is node ids lineage made and quoted labels, nothing else.
        #[test]
        fn dot_of_arbitrary_names_is_one_graph_with_every_label_quoted(
            root in crate::output::hostile::text(),
            runs in runs(),
        ) {
            let d = dot(&hostile_lineage(root, runs));
            crate::output::hostile::is_inert(&d).map_err(proptest::test_runner::TestCaseError::fail)?;
            let id = r#""(?:a_[0-9a-f]{64}(?:_r[0-9]+)?|r[0-9]+)""#;
            let attrs = format!(r#"\[(?:[a-z]+=(?:{DOT_STRING}|[a-z0-9]+)(?:, )?)+\]"#);
            let statement = regex::Regex::new(&format!(
                r"^  {id}(?: -> {id})? {attrs};$"
            ))
            .expect("regex");
            let lines: Vec<&str> = d.lines().collect();
            proptest::prop_assert_eq!(lines[0], "digraph lineage {");
            proptest::prop_assert_eq!(lines[lines.len() - 1], "}");
            for line in &lines[3..lines.len() - 1] {
                proptest::prop_assert!(statement.is_match(line), "{:?} in {}", line, d);
            }
        }

        /// Mermaid: ids lineage made, labels in quotes holding only entity codes and text.
        #[test]
        fn mermaid_of_arbitrary_names_keeps_every_label_in_its_quotes(
            root in crate::output::hostile::text(),
            runs in runs(),
        ) {
            let m = mermaid(&hostile_lineage(root, runs));
            crate::output::hostile::is_inert(&m).map_err(proptest::test_runner::TestCaseError::fail)?;
            let id = "(?:a[0-9a-f]{16}(?:_r[0-9]+)?|r[0-9]+)";
            let line = regex::Regex::new(&format!(
                r#"^  (?:{id}(?:\["[^"]*"\]|\("[^"]*"\))|{id} -->\|(?:input|output|config)\| {id}|{id} -\.- {id})$"#
            ))
            .expect("regex");
            let entity = regex::Regex::new(r"<br/>|#(?:quot|35|lt|gt|amp|96|37|123|125);").expect("regex");
            let label = regex::Regex::new(r#""[^"]*""#).expect("regex");
            for l in m.lines().skip(1) {
                proptest::prop_assert!(line.is_match(l), "{:?} in {}", l, m);
                for text in label.find_iter(l) {
                    let bare = entity.replace_all(text.as_str(), "");
                    proptest::prop_assert!(
                        !bare.contains(['<', '>', '&', '#', '`', '%', '{', '}']),
                        "{:?} in {}", l, m
                    );
                }
            }
        }

        /// HTML: the page is the template, with data only inside the one JSON block, which
        /// holds nothing that could end it.
        #[test]
        fn html_of_arbitrary_names_holds_data_only_in_its_json_block(
            root in crate::output::hostile::text(),
            runs in runs(),
        ) {
            let page = html(&hostile_lineage(root, runs), true).expect("page");
            let (head, tail) = HTML_PAGE.split_once(HTML_DATA_MARKER).expect("one marker");
            proptest::prop_assert!(page.starts_with(head) && page.ends_with(tail), "{}", page);
            let block = &page[head.len()..page.len() - tail.len()];
            let unsafe_in_script = ['<', '>', '&', '\u{2028}', '\u{2029}'];
            proptest::prop_assert!(!block.contains(unsafe_in_script), "{}", block);
            proptest::prop_assert!(serde_json::from_str::<serde_json::Value>(block).is_ok(), "{}", block);
        }
    }

    #[test]
    fn the_html_template_has_one_data_marker_and_no_other() {
        assert_eq!(HTML_PAGE.matches(HTML_DATA_MARKER).count(), 1);
        assert!(!HTML_PAGE.contains("{{TITLE}}"));
        // A path holding the marker is data like any other.
        let mut l = lineage();
        l.root.label = "{{DATA}}</script><!--".into();
        let page = html(&l, true).expect("page");
        assert_eq!(
            page.matches("</script>").count(),
            HTML_PAGE.matches("</script>").count()
        );
        assert!(
            page.contains(r#"{{DATA}}\u003c/script\u003e\u003c!--"#),
            "{page}"
        );
    }
}
