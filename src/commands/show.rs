//! `lineage show [TARGET]`: a run (summary, JSON, or drawn with its files and the runs that
//! made its inputs), or the ancestry or descendants of an artifact identified by its bytes
//! (a path, hashed now, or a `blake3:` hash).

use std::borrow::Cow;
use std::io::IsTerminal;

use anyhow::{Result, bail};

use super::Context;
use super::target::{self, Reading, Target};
use crate::cli::{ShowArgs, ShowFormat};
use crate::error::Error;
use crate::model::graph::{Direction, Lineage, Link, Root, Via};
use crate::model::text::is_unsafe;
use crate::model::{Role, RunRecord, Seal};
use crate::output::{self, graph};
use crate::store::Store;
use crate::ui;

pub fn show(args: ShowArgs, ctx: &Context) -> Result<()> {
    let color = ctx.color;
    let store = ctx.open_store()?;
    let format = if args.json {
        Some(ShowFormat::Json)
    } else {
        args.format
    };
    let kept = Kept::of(&args);
    // What a run had is asked of a run: TARGET is a run id, never a path.
    let reading = Reading::from_flags(args.run || kept.is_some(), args.path);
    let target = target::resolve(&store, args.target.as_ref(), reading)?;
    if let (Some(kept), Target::Run(id)) = (kept, &target) {
        let run = store.load_run(id)?;
        let short = store.short_id(id)?;
        let bytes = kept.bytes(&store, &run, &short)?;
        ui::data_bytes(&for_stdout(&bytes));
        return Ok(());
    }
    match target {
        Target::Run(id) => {
            if args.descendants {
                return Err(Error::GraphOptionOnRun("--descendants").into());
            }
            if args.depth.is_some() {
                return Err(Error::GraphOptionOnRun("--depth").into());
            }
            let run = store.load_run(&id)?;
            let short = store.short_id(&id)?;
            match format {
                Some(ShowFormat::Json) => {
                    let mut json = output::json::run(&run, short);
                    json.submitted_by = store.submitted_by(&id)?;
                    let annotations = store.annotations_of(&[&id])?.remove(&id);
                    let annotations = annotations.unwrap_or_default();
                    json.tags = Some(annotations.tags);
                    if let Some(api) = &run.capture.api {
                        let mut series = std::collections::BTreeMap::new();
                        for s in &api.series {
                            let points = store.blob(&s.blob)?;
                            if let Some(points) =
                                points.as_deref().and_then(output::json::series_points)
                            {
                                series.insert(s.key.clone(), points);
                            }
                        }
                        json.metric_series = Some(series);
                    }
                    json.user_notes = Some(annotations.notes);
                    if let Some(g) = &run.capture.group {
                        json.group = store
                            .group(&g.id)?
                            .map(|row| output::group::GroupJson::of(&row, Some(g)));
                    }
                    ui::data(&(serde_json::to_string_pretty(&json)? + "\n"));
                }
                None | Some(ShowFormat::Tree) => {
                    let own = super::verify::own_key();
                    let (seal, standing, who) =
                        super::verify::check(&store, &id, false, own.as_deref(), ctx)?;
                    let record = match (&seal, who) {
                        (_, Some(who)) => format!("signed by {who}"),
                        (Seal::Tampered { reason }, _) => format!("TAMPERED: {reason}"),
                        _ => super::verify::mark(standing)
                            .unwrap_or_default()
                            .to_string(),
                    };
                    let of = match &run.rerun_of {
                        Some(of) => Some(store.short_id(of)?),
                        None => None,
                    };
                    let by = store.submitted_by(&id)?;
                    let table = output::table::run(
                        &run,
                        &short,
                        of.as_deref(),
                        &record,
                        by.as_deref(),
                        color,
                    );
                    let annotations = store.annotations_of(&[&id])?.remove(&id);
                    let annotations = annotations.unwrap_or_default();
                    let notes = output::table::annotations(&annotations);
                    let launch = launch(&store, &run, color)?;
                    ui::data(&(table + &launch + &notes + "\n"));
                }
                Some(f @ (ShowFormat::Dot | ShowFormat::Mermaid | ShowFormat::Html)) => {
                    let mut lineage = run_graph(&store, run, short)?;
                    mark(&store, &mut lineage, ctx)?;
                    ui::data(&picture(f, &lineage, true)?);
                }
            }
        }
        Target::Artifact { root, path } => {
            let direction = if args.descendants {
                Direction::Descendants
            } else {
                Direction::Ancestry
            };
            let mut lineage = target::walk_with(
                &store,
                root,
                path.as_deref(),
                direction,
                args.depth,
                args.all,
            )?;
            mark(&store, &mut lineage, ctx)?;
            let text = match format.unwrap_or(ShowFormat::Tree) {
                ShowFormat::Tree => graph::tree(&lineage, color),
                ShowFormat::Json => graph::to_json(&lineage, path.is_some())? + "\n",
                f => picture(f, &lineage, path.is_some())?,
            };
            ui::data(&text);
        }
    }
    Ok(())
}

/// Under a rank of a launch: the launch, its ranks and what they used together (nothing for
/// a run that is a launch of its own).
fn launch(store: &Store, run: &RunRecord, color: bool) -> Result<String> {
    let Some(g) = &run.capture.group else {
        return Ok(String::new());
    };
    let Some(row) = store.group(&g.id)? else {
        return Ok(String::new());
    };
    let ids: Vec<&str> = row.members.iter().map(|m| m.id.as_str()).collect();
    let shorts = store.short_ids(&ids)?;
    Ok(output::group::table(&row, &run.id, &shorts, color))
}

/// Mark the runs whose records do not verify.
fn mark(store: &Store, lineage: &mut Lineage, ctx: &Context) -> Result<()> {
    let own = super::verify::own_key();
    for id in lineage.runs.keys() {
        let (_, standing, _) = super::verify::check(store, id, false, own.as_deref(), ctx)?;
        if let Some(mark) = super::verify::mark(standing) {
            lineage.marks.insert(id.clone(), mark);
        }
    }
    Ok(())
}

/// A graph drawn: dot, Mermaid or the HTML page.
fn picture(format: ShowFormat, lineage: &Lineage, is_path: bool) -> Result<String> {
    Ok(match format {
        ShowFormat::Dot => graph::dot(lineage),
        ShowFormat::Mermaid => graph::mermaid(lineage),
        _ => graph::html(lineage, is_path)?,
    })
}

/// A run as a graph: its inputs, configs and outputs, and for each input the run that
/// produced it one level up (the producer the rules choose for it: `target::upstream_producer`,
/// one that finished before this run started). Drawn as the ancestry of its first output, or
/// (a run that wrote nothing) from its first input on.
fn run_graph(store: &Store, run: RunRecord, short: String) -> Result<Lineage> {
    let first = |roles: &[Role]| {
        run.edges
            .iter()
            .filter(|e| roles.contains(&e.role))
            .find_map(|e| e.artifact.as_ref().map(|a| (e.path.clone(), a.clone())))
    };
    let (direction, (label, artifact)) = match first(&[Role::Output]) {
        Some(output) => (Direction::Ancestry, output),
        None => match first(&[Role::Input, Role::Config]) {
            Some(input) => (Direction::Descendants, input),
            None => bail!(
                "run {short} recorded no file to draw: `lineage show {short}` (or --json) shows \
                 the run"
            ),
        },
    };
    let own = |roles: &[Role]| {
        run.edges
            .iter()
            .filter(|e| roles.contains(&e.role))
            .filter_map(|e| e.artifact.as_ref())
            .map(|a| Link {
                artifact: a.hash,
                run_id: run.id.clone(),
                via: Via::Direct,
            })
            .collect::<Vec<_>>()
    };
    let mut links = match direction {
        Direction::Ancestry => own(&[Role::Output]),
        Direction::Descendants => own(&[Role::Input, Role::Config]),
    };
    let mut producers = Vec::new();
    for e in run.edges.iter().filter(|e| e.role == Role::Input) {
        let Some(a) = &e.artifact else { continue };
        let Some(p) = target::upstream_producer(store, &a.hash, &run)? else {
            continue;
        };
        // Through a directory it wrote, when that is how it made these bytes.
        let via = store
            .ancestry(&a.hash, 1, false)?
            .into_iter()
            .find(|l| l.artifact == a.hash && l.run_id == p)
            .map_or(Via::Direct, |l| l.via);
        if direction == Direction::Ancestry {
            links.push(Link {
                artifact: a.hash,
                run_id: p.clone(),
                via,
            });
        }
        producers.push(p);
    }
    producers.sort();
    producers.dedup();
    producers.retain(|p| *p != run.id);
    let ids: Vec<&str> = producers.iter().map(String::as_str).collect();
    let mut shorts = store.short_ids(&ids)?;
    let mut runs: Vec<(RunRecord, String)> = store
        .load_runs(&ids)?
        .into_iter()
        .map(|r| {
            let s = shorts.remove(&r.id).unwrap_or_else(|| r.id.clone());
            (r, s)
        })
        .collect();
    runs.push((run, short));
    let root = Root {
        label,
        hash: artifact.hash,
        detail: Some(artifact),
    };
    let depth = if direction == Direction::Ancestry {
        2
    } else {
        1
    };
    Ok(Lineage::new(direction, root, depth, runs, links))
}

/// What the store keeps of a run, asked with `--packages`, `--patch`, `--env` or
/// `--untracked FILE` (clap lets one through at most).
#[derive(Clone, Copy)]
enum Kept<'a> {
    Packages,
    Patch,
    Env,
    Untracked(&'a str),
}

impl<'a> Kept<'a> {
    fn of(args: &'a ShowArgs) -> Option<Kept<'a>> {
        if args.packages {
            Some(Kept::Packages)
        } else if args.patch {
            Some(Kept::Patch)
        } else if args.env {
            Some(Kept::Env)
        } else {
            args.untracked.as_deref().map(Kept::Untracked)
        }
    }

    /// The bytes as stored (secrets redacted as they were when recorded), or an error naming
    /// what the run did not record and why.
    fn bytes(self, store: &Store, run: &RunRecord, short: &str) -> Result<Vec<u8>> {
        let c = &run.capture;
        if let Some(why) = &run.unreadable {
            bail!("run {short}'s capture cannot be read back ({why}): nothing of it to print");
        }
        let blob = |what: &str, hash: &crate::model::Hash| -> Result<Vec<u8>> {
            match store.blob(hash)? {
                Some(bytes) => Ok(bytes),
                None => bail!(
                    "run {short}'s {what} ({}) is not in this store: `lineage doctor` checks it",
                    hash
                ),
            }
        };
        let outside_git = || {
            let why = c.git_absent.as_deref().unwrap_or("no git state recorded");
            anyhow::anyhow!("run {short} recorded no uncommitted changes or untracked files: {why}")
        };
        match self {
            Kept::Packages => {
                let Some(py) = &c.software.python else {
                    bail!(
                        "run {short} recorded no Python packages: its command ran no Python \
                         interpreter lineage recognized (or [capture] python = false)"
                    );
                };
                let Some(hash) = &py.packages else {
                    bail!(
                        "run {short} recorded Python {} but no package list: the interpreter \
                         could not list its packages",
                        &py.executable
                    );
                };
                blob("package list", hash)
            }
            Kept::Patch => {
                let git = c.git.as_ref().ok_or_else(outside_git)?;
                let Some(hash) = git.patch_redacted.as_ref().or(git.patch.as_ref()) else {
                    let untracked = if git.untracked.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (it had {} untracked file(s): --untracked FILE prints one)",
                            git.untracked.len()
                        )
                    };
                    bail!("run {short} recorded no uncommitted changes{untracked}");
                };
                blob("patch", hash)
            }
            Kept::Env => {
                if c.env.is_empty() {
                    bail!(
                        "run {short} recorded no environment (its notes say why: `lineage show \
                         {short}`)"
                    );
                }
                let terminal = stdout_is_terminal();
                let mut out = Vec::new();
                for (name, value) in &c.env {
                    // One variable a line: on a terminal, a newline in a value is escaped too.
                    if terminal {
                        out.extend_from_slice(ui::escape(name).as_bytes());
                        out.push(b'=');
                        out.extend_from_slice(ui::escape(value).as_bytes());
                    } else {
                        out.extend_from_slice(name.as_bytes());
                        out.push(b'=');
                        out.extend_from_slice(value.as_bytes());
                    }
                    out.push(b'\n');
                }
                Ok(out)
            }
            Kept::Untracked(path) => {
                let git = c.git.as_ref().ok_or_else(outside_git)?;
                let wanted = in_repository(path, &git.root);
                let Some(u) = git.untracked.iter().find(|u| u.path == wanted) else {
                    let recorded: Vec<&str> = git
                        .untracked
                        .iter()
                        .take(5)
                        .map(|u| u.path.as_str())
                        .collect();
                    let listed = match git.untracked.len() {
                        0 => "it recorded none".to_string(),
                        n if n <= 5 => format!("it recorded {}", recorded.join(", ")),
                        n => format!("it recorded {} and {} more", recorded.join(", "), n - 5),
                    };
                    let listed = match git.untracked_rest {
                        Some(rest) => {
                            format!("{listed}, and {} more as one hash, not kept", rest.files)
                        }
                        None => listed,
                    };
                    bail!(
                        "run {short} recorded no untracked file {} ({listed}; paths are \
                         relative to the repository root)",
                        path
                    );
                };
                if !u.stored {
                    bail!(
                        "run {short} recorded untracked file {} by its hash only ({} bytes, over \
                         the size cap): its bytes are not kept",
                        &u.path,
                        u.size
                    );
                }
                blob(
                    &format!("untracked file {}", &u.path),
                    u.redacted_blob.as_ref().unwrap_or(&u.hash),
                )
            }
        }
    }
}

/// A FILE given to `--untracked` as the record names it: relative to the repository root
/// (`./notes.txt` and an absolute path inside the root are accepted).
fn in_repository(path: &str, root: &str) -> String {
    let root = root.trim_end_matches('/');
    let rel = path
        .strip_prefix(root)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(path);
    let mut rel = rel;
    while let Some(r) = rel.strip_prefix("./") {
        rel = r;
    }
    rel.to_string()
}

fn stdout_is_terminal() -> bool {
    ui::stdout_fd().is_ok_and(|fd| fd.is_terminal())
}

/// Bytes for stdout: as they are into a file or a pipe (`> changes.patch`); on a terminal,
/// inert, since a recorded patch or file is text from outside and may carry escape
/// sequences (`--env` escapes its own lines).
fn for_stdout(bytes: &[u8]) -> Cow<'_, [u8]> {
    if stdout_is_terminal() {
        Cow::Owned(inert(bytes).into_bytes())
    } else {
        Cow::Borrowed(bytes)
    }
}

/// File contents made inert for a terminal, lines kept: each unsafe character
/// ([`is_unsafe`]) but newline and tab shown as `\xNN` or `\u{...}`, each byte that is not
/// UTF-8 as `\xNN`. A backslash is left as it is (the contents are shown, not quoted).
fn inert(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' | '\t' => out.push(c),
                c if (c as u32) < 0x80 && is_unsafe(c) => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_on_a_terminal_keep_their_lines_and_lose_their_escapes() {
        assert_eq!(inert(b"+x = 1\n\ty\n"), "+x = 1\n\ty\n");
        assert_eq!(
            inert(b"\x1b]0;owned\x07\x1b[2J\r\n"),
            "\\x1b]0;owned\\x07\\x1b[2J\\x0d\n"
        );
        assert_eq!(
            inert("rtl\u{202e}x\u{9b}".as_bytes()),
            "rtl\\u{202e}x\\u{9b}"
        );
        assert_eq!(inert(b"caf\xe9 \\n"), "caf\\xe9 \\n");
        assert_eq!(inert("modèle".as_bytes()), "modèle");
    }

    #[test]
    fn an_untracked_path_is_named_as_the_record_names_it() {
        assert_eq!(in_repository("notes.txt", "/w/repo"), "notes.txt");
        assert_eq!(in_repository("./sub/a.py", "/w/repo"), "sub/a.py");
        assert_eq!(in_repository("/w/repo/sub/a.py", "/w/repo/"), "sub/a.py");
        assert_eq!(
            in_repository("/w/repository/a.py", "/w/repo"),
            "/w/repository/a.py"
        );
    }
}
