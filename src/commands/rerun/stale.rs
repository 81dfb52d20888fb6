//! What is stale (`lineage status`, `lineage rerun --stale`): the recorded outputs under some
//! paths, each with the run that last wrote it, and whether that run would make something
//! else now. A run is stale when what it depends on differs from its record (an input's
//! bytes, the keys of a config it depends on, the code it read, its Python packages), when
//! one of its outputs was modified or removed since (for a directory, a file it wrote there:
//! files added beside them do not count), or when a run that made one of its
//! inputs is stale (what it read will change). The same checks `rerun` makes before running
//! (`checks`); the walk goes up through the runs that made each input, so that the stages
//! before the paths asked about are checked too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::checks;
use super::moved::{Moves, WRITERS_WEIGHED, holds_now};
use crate::commands::target;
use crate::hash;
use crate::model::text::terminal_command_line;
use crate::model::{Hash, Role, RunRecord, Written, path_of, path_text};
use crate::store::Store;

/// An output, now against its record.
#[derive(Serialize, Clone, Debug)]
pub struct Output {
    /// As the run named it.
    pub path: String,
    pub abs_path: String,
    /// `current`, `modified` or `missing`; `copy` for a file under the paths asked about
    /// that holds bytes this run wrote elsewhere.
    pub state: &'static str,
}

/// A run that last wrote some of the outputs asked about (or made an input of one that did).
#[derive(Serialize, Clone, Debug)]
pub struct Stage {
    pub id: String,
    pub short: String,
    pub command: String,
    pub started_at: String,
    pub stale: bool,
    /// Why, one line each (empty when it is current).
    pub reasons: Vec<String>,
    /// Short ids of the stale runs that made its inputs.
    pub upstream: Vec<String>,
    /// Its outputs that it was the last to write.
    pub outputs: Vec<Output>,
    /// Whether one of its outputs is under the paths asked about (else it was reached as a
    /// maker of an input).
    pub asked: bool,
    /// Recorded in a repository moved here since: where it was recorded (its paths are
    /// read under the repository here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
    /// Recorded in a repository still there, of which the one here is a copy: where it was
    /// recorded (its paths are read in the copy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copied_from: Option<String>,
    /// The runs that made its inputs (ids), stale or not: for the order.
    #[serde(skip)]
    makers: Vec<String>,
    /// An output of its that another stage writes too, under another name or inside it
    /// ([`written_twice`]): rerunning either makes the other stale.
    #[serde(skip)]
    pub two_names: Option<String>,
}

/// Every stage the outputs under `roots` depend on, makers before the runs that read what
/// they made (by start: a maker ended before its reader started). Runs recorded in a
/// repository moved since are read as if recorded where it is now (`moves`).
pub fn find(store: &Store, roots: &[PathBuf], moves: &Moves) -> Result<Vec<Stage>> {
    let roots: Vec<PathBuf> = roots
        .iter()
        .map(|r| where_recorded(store, r))
        .collect::<Result<_>>()?;
    let roots = roots.as_slice();
    let texts: Vec<String> = roots
        .iter()
        .map(|r| path_text(std::os::unix::ffi::OsStrExt::as_bytes(r.as_os_str())))
        .collect();
    let now = checks::Current::default();
    let (outputs, displaced) = outputs_and_copies_under(store, moves, &now, &texts)?;
    // The last writer of each path: only its outputs are its to answer for.
    let mut last: BTreeMap<String, Writer> = outputs
        .iter()
        .map(|(abs, _, run, hash)| (abs.clone(), (run.clone(), *hash)))
        .collect();
    let mut asked: BTreeSet<String> = outputs.iter().map(|o| o.2.clone()).collect();
    // A path under which no run wrote anything: its files by their bytes (a model copied
    // to deploy/ is checked through the run that made those bytes).
    let mut copies: Vec<(String, Output)> = Vec::new();
    for (at, maker) in displaced {
        let shown = target::shown_from_here(&path_of(&at));
        asked.insert(maker.clone());
        copies.push((
            maker,
            Output {
                path: path_text(std::os::unix::ffi::OsStrExt::as_bytes(shown.as_os_str())),
                abs_path: at,
                state: "copy",
            },
        ));
    }
    for (root, text) in roots.iter().zip(&texts) {
        let prefix = format!("{}/", text.trim_end_matches('/'));
        if outputs
            .iter()
            .any(|o| o.0 == *text || o.0.starts_with(&prefix))
        {
            continue;
        }
        let found = copies_under(store, root)?;
        if found.is_empty() {
            anyhow::bail!(
                "nothing under {} was written by a recorded run, nor holds bytes one wrote",
                crate::model::text::escape(&root.display().to_string())
            );
        }
        for (run, output) in found {
            asked.insert(run.clone());
            copies.push((run, output));
        }
    }
    let mut w = Walk {
        store,
        moves,
        done: BTreeMap::new(),
        last: &mut last,
        now,
    };
    for id in &asked {
        w.visit(id, 0)?;
    }
    for (run, output) in copies {
        // A run of a moved project names that very file as its output now.
        if let Some(s) = w.done.get_mut(&run)
            && !s.outputs.iter().any(|o| o.abs_path == output.abs_path)
        {
            s.outputs.push(output);
        }
    }
    // The stages asked about and their makers: not a stage visited only to know whether it
    // was up to date (`Walk::maker`).
    let mut reached: BTreeSet<String> = BTreeSet::new();
    let mut next: Vec<String> = asked.iter().cloned().collect();
    while let Some(id) = next.pop() {
        if let Some(s) = w.done.get(&id)
            && reached.insert(id)
        {
            next.extend(s.makers.iter().cloned());
        }
    }
    let mut stages: Vec<Stage> = w
        .done
        .into_values()
        .filter(|s| reached.contains(&s.id))
        .collect();
    for s in &mut stages {
        s.asked = asked.contains(&s.id);
    }
    // An output another stage writes too (under another name, or inside it): say so where it
    // reads as modified.
    let twice = written_twice(store, &stages)?;
    for (s, same) in stages.iter_mut().zip(twice) {
        if let Some(same) = same {
            s.reasons.push(same.clone());
            s.two_names = Some(same);
        }
    }
    // Makers first: by how many makers deep each is, then by start.
    let depth = depths(&stages);
    stages.sort_by(|a, b| {
        (depth.get(&a.id), &a.started_at, &a.id).cmp(&(depth.get(&b.id), &b.started_at, &b.id))
    });
    Ok(stages)
}

/// `root` as its outputs were recorded: itself, or where it really is when it is reached
/// through a symbolic link (`/home/ada/link-to-proj`) and nothing was recorded under the
/// link's name but something under the real place (runs record the real working
/// directory). Otherwise each output was listed again as a copy of itself.
fn where_recorded(store: &Store, root: &Path) -> Result<PathBuf> {
    let text = |p: &Path| path_text(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()));
    if !store.latest_outputs_under(&[text(root)])?.is_empty() {
        return Ok(root.to_path_buf());
    }
    match std::fs::canonicalize(root) {
        Ok(real) if real != root && !store.latest_outputs_under(&[text(&real)])?.is_empty() => {
            Ok(real)
        }
        _ => Ok(root.to_path_buf()),
    }
}

/// The project of `run` (its repository's root, else its cwd; canonical) and when it ended
/// (nanoseconds since the epoch).
fn project_and_end(run: &RunRecord) -> (PathBuf, Option<i128>) {
    let root = run
        .capture
        .git
        .as_ref()
        .map(|g| path_of(&g.root))
        .unwrap_or_else(|| path_of(&String::from_utf8_lossy(&run.cwd)));
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    let ended = run
        .ended_at
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_nanosecond());
    (root, ended)
}

/// The outputs of `run` a rerun in place would write out of the project through a symbolic
/// link made since it ended (at the output, on a directory above it or inside an output
/// directory; by ctime, which only root can set back: a link there before the run, such as
/// `data -> /scratch/data`, was its setup), each as `PATH (LINK -> TARGET)`.
pub fn planted_outputs(run: &RunRecord) -> Vec<String> {
    let (root, ended) = project_and_end(run);
    let mut found = Vec::new();
    for e in run.edges.iter().filter(|e| e.role == Role::Output) {
        let path = as_named(run, e);
        if let Some((link, to)) = planted_link(&path, &root, ended, true) {
            found.push(format!(
                "{} ({} -> {})",
                e.path,
                path_text(std::os::unix::ffi::OsStrExt::as_bytes(link.as_os_str())),
                path_text(std::os::unix::ffi::OsStrExt::as_bytes(to.as_os_str()))
            ));
        }
    }
    found
}

/// For each stage, an output of its that is not as it wrote it and that another stage's
/// output is too: one file under another name (a link to it: `lnk/f.txt` and `a/b/f.txt`,
/// the same device and inode), or a file both wrote inside one's directory output (`-o out`
/// writing `out/z.txt`, and `-o out/z.txt`, through a link or not), as "P is one file with
/// Q, which run R writes" ("holds", "lies inside"): each stage's rerun changes the other's,
/// so neither stays current. A file the directory's run kept (there before it, not written:
/// a later stage's `-o data` around an earlier stage's file) is no such pair. Each output is
/// resolved once; what lies inside a directory follows it in path order.
fn written_twice(store: &Store, stages: &[Stage]) -> Result<Vec<Option<String>>> {
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt;
    // (where it really is, stage, output, whether a directory), in path order.
    let mut all: Vec<(PathBuf, usize, &Output, bool)> = Vec::new();
    let mut files: HashMap<(u64, u64), Vec<(usize, &Output)>> = HashMap::new();
    for (i, s) in stages.iter().enumerate() {
        for o in s.outputs.iter().filter(|o| o.state != "copy") {
            let at = path_of(&o.abs_path);
            if let (Ok(real), Ok(m)) = (std::fs::canonicalize(&at), std::fs::metadata(&at)) {
                files.entry((m.dev(), m.ino())).or_default().push((i, o));
                all.push((real, i, o, m.is_dir()));
            }
        }
    }
    let mut found: Vec<Option<String>> = vec![None; stages.len()];
    for same in files.values().filter(|v| v.len() > 1) {
        for (i, o) in same.iter().filter(|(_, o)| o.state == "modified") {
            if found[*i].is_some() {
                continue;
            }
            found[*i] = same
                .iter()
                .find(|(j, other)| j != i && other.abs_path != o.abs_path)
                .map(|(j, other)| {
                    format!(
                        "{} is one file with {}, which run {} writes",
                        o.path, other.path, stages[*j].short
                    )
                });
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    // The files a directory output's run wrote in it, by (stage, its path), loaded once.
    let mut wrote: BTreeMap<(usize, String), BTreeSet<String>> = BTreeMap::new();
    for (at, (dir_real, i, dir, _)) in all.iter().enumerate().filter(|(_, a)| a.3) {
        for (file_real, j, file, _) in all[at + 1..]
            .iter()
            .take_while(|f| f.0.starts_with(dir_real))
        {
            if i == j {
                continue;
            }
            let Ok(rel) = file_real.strip_prefix(dir_real) else {
                continue;
            };
            if rel.as_os_str().is_empty() || (found[*i].is_some() && found[*j].is_some()) {
                continue;
            }
            let rel = path_text(std::os::unix::ffi::OsStrExt::as_bytes(rel.as_os_str()));
            let key = (*i, dir.abs_path.clone());
            if !wrote.contains_key(&key) {
                let run = store.load_run(&stages[*i].id)?;
                let mut files = BTreeSet::new();
                if let Some(e) = run
                    .edges
                    .iter()
                    .find(|e| e.role == Role::Output && e.abs_path == dir.abs_path)
                {
                    files.extend(files_written(store, e)?.into_keys());
                }
                wrote.insert(key.clone(), files);
            }
            if !wrote[&key].contains(&rel) {
                continue;
            }
            if dir.state == "modified" && found[*i].is_none() {
                found[*i] = Some(format!(
                    "{} holds {}, which run {} writes",
                    dir.path, file.path, stages[*j].short
                ));
            }
            if file.state == "modified" && found[*j].is_none() {
                found[*j] = Some(format!(
                    "{} lies inside {}, which run {} writes",
                    file.path, dir.path, stages[*i].short
                ));
            }
        }
    }
    Ok(found)
}

/// Output `e` of `run` as a rerun's job names it: the path as given, against the run's
/// directory (`-o d/../p.txt` follows a link made at `d` since, as the job's write would;
/// its recorded absolute path took `d/..` as it was then), without a trailing slash (`-o
/// out/` would follow a link at `out`).
fn as_named(run: &RunRecord, e: &crate::model::EdgeRecord) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let given = path_of(e.path.trim_end_matches('/'));
    if given.as_os_str().is_empty() {
        return path_of(e.abs_path.trim_end_matches('/'));
    }
    if given.is_absolute() {
        return given;
    }
    Path::new(std::ffi::OsStr::from_bytes(&run.cwd)).join(given)
}

/// What a rerun of `run` could overwrite that no recorded run wrote (edited by hand, or made
/// by something unrecorded): its output paths, and the files inside its output directories
/// (those it wrote and those added beside them: a job may clear its directory first), as
/// "path" or "path/file", whose bytes differ from its record and were written by no recorded
/// run, whatever its status. Empty files (nothing to lose) and paths that are gone (made
/// again) are not counted, nor outputs behind a link planted out of the project
/// ([`planted_outputs`] names those).
pub fn unrecorded_outputs(
    store: &Store,
    run: &RunRecord,
    cache: &dyn hash::StatCache,
) -> Result<Vec<String>> {
    let hashing = hash::Hashing::default();
    let mut found = Vec::new();
    let (root, ended) = project_and_end(run);
    for e in run.edges.iter().filter(|e| e.role == Role::Output) {
        let path = path_of(e.abs_path.trim_end_matches('/'));
        // Named by `planted_outputs` (the way to it; a link inside a directory output
        // leaves its other files to be checked here).
        if planted_link(&as_named(run, e), &root, ended, false).is_some() {
            continue;
        }
        if std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        let Some((now, files)) = files_now(&hashing, &path, cache) else {
            continue;
        };
        if e.artifact.as_ref().is_some_and(|a| a.hash == now.hash) || now.size == 0 {
            continue;
        }
        if now.kind != crate::model::ArtifactKind::Dir {
            if !target::written_by_a_run(store, &now.hash)? {
                found.push(e.path.clone());
            }
            continue;
        }
        // Each file against what the run recorded there first: its own bytes need no
        // lookup. A file added beside them is checked too: a job that clears its
        // directory first (`rm -rf out`) would delete it.
        let recorded = files_recorded(store, e)?;
        for f in files.iter().filter(|f| f.size > 0) {
            if recorded.get(&f.path) == Some(&f.hash) {
                continue;
            }
            if !target::written_by_a_run(store, &f.hash)? {
                found.push(format!("{}/{}", e.path.trim_end_matches('/'), f.path));
            }
        }
    }
    Ok(found)
}

/// A symbolic link made after `ended` (nanoseconds since the epoch; None: any) among those
/// met on the way to output `path` (hop by hop, the links inside links' targets too), or
/// (`inside`) on the way to a link inside it when it is a directory, when the way leads out
/// of `root` (canonical): a rerun would write through it. The link and its target.
fn planted_link(
    path: &Path,
    root: &Path,
    ended: Option<i128>,
    inside: bool,
) -> Option<(PathBuf, PathBuf)> {
    use std::os::unix::fs::MetadataExt;
    let new = |link: &Path| {
        std::fs::symlink_metadata(link).is_ok_and(|m| {
            let made = i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec());
            ended.is_none_or(|t| made > t)
        })
    };
    let planted = |p: &Path| -> Option<(PathBuf, PathBuf)> {
        let (met, dest) = links_met(p);
        if dest.starts_with(root) {
            return None;
        }
        let link = met.into_iter().find(|l| new(l))?;
        let to = std::fs::read_link(&link).unwrap_or_default();
        Some((link, to))
    };
    if let Some(found) = planted(path) {
        return Some(found);
    }
    // Inside a directory output (through a link to it, too): each link there.
    if inside && std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        let mut dirs = vec![path.to_path_buf()];
        while let Some(d) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.filter_map(std::result::Result::ok) {
                // The entry's type as the directory lists it: no `lstat` per file.
                let Ok(kind) = e.file_type() else {
                    continue;
                };
                if kind.is_symlink() {
                    if let Some(found) = planted(&e.path()) {
                        return Some(found);
                    }
                } else if kind.is_dir() {
                    dirs.push(e.path());
                }
            }
        }
    }
    None
}

/// At most this many links are followed on the way to one path (the kernel's own limit).
const MAX_HOPS: usize = 40;

/// The symbolic links met on the way to `path` (absolute), hop by hop as the kernel meets
/// them (a link inside a link's target included), and where the way ends: every link
/// resolved, what does not exist (yet) taken by name.
fn links_met(path: &Path) -> (Vec<PathBuf>, PathBuf) {
    use std::collections::VecDeque;
    use std::path::Component;
    let parts = |p: &Path| -> Vec<std::ffi::OsString> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect()
    };
    let mut rest: VecDeque<std::ffi::OsString> = parts(path).into();
    let mut at = PathBuf::from("/");
    let mut met = Vec::new();
    while let Some(c) = rest.pop_front() {
        if c == ".." {
            at.pop();
            continue;
        }
        let next = at.join(&c);
        let is_link = std::fs::symlink_metadata(&next).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link || met.len() >= MAX_HOPS {
            at = next;
            continue;
        }
        let Ok(to) = std::fs::read_link(&next) else {
            at = next;
            continue;
        };
        met.push(next);
        if to.is_absolute() {
            at = PathBuf::from("/");
        }
        for p in parts(&to).into_iter().rev() {
            rest.push_front(p);
        }
    }
    (met, at)
}

/// What is at `path` now, hashed (through `cache`), with the files of a directory.
fn files_now(
    hashing: &hash::Hashing,
    path: &Path,
    cache: &dyn hash::StatCache,
) -> Option<(crate::model::Artifact, Vec<crate::model::DirEntry>)> {
    let mut files: Vec<crate::model::DirEntry> = Vec::new();
    let mut sink = |entries: &[crate::model::DirEntry]| {
        files.extend_from_slice(entries);
        Ok(())
    };
    let hashed = hashing.hash_path(path, &mut sink, Some(cache), None).ok()?;
    Some((hashed.artifact, files))
}

/// The files output directory `e` held as its run recorded it, by path; empty for a file.
fn files_recorded(store: &Store, e: &crate::model::EdgeRecord) -> Result<BTreeMap<String, Hash>> {
    Ok(match &e.artifact {
        Some(a) if a.kind == crate::model::ArtifactKind::Dir => store
            .dir_entries(&a.hash)?
            .into_iter()
            .map(|(p, h, _)| (p, h))
            .collect(),
        _ => BTreeMap::new(),
    })
}

/// The files output directory `e`'s run wrote in it, with their bytes: those recorded, less
/// those it kept (there before it, not written).
fn files_written(store: &Store, e: &crate::model::EdgeRecord) -> Result<BTreeMap<String, Hash>> {
    let mut wrote = files_recorded(store, e)?;
    if let Some(Written::Partly(kept)) = &e.written {
        wrote.retain(|p, _| !kept.contains(p));
    }
    Ok(wrote)
}

/// Whether output directory `e`, now at `at`, still holds every file its run wrote, each
/// with the bytes it wrote (files added since, and those it did not write, do not count).
fn only_added(store: &Store, at: &Path, e: &crate::model::EdgeRecord) -> Result<bool> {
    let wrote = files_written(store, e)?;
    if wrote.is_empty() {
        return Ok(false);
    }
    let Some((_, files)) = files_now(&hash::Hashing::default(), at, store) else {
        return Ok(false);
    };
    let now: BTreeMap<&str, Hash> = files.iter().map(|f| (f.path.as_str(), f.hash)).collect();
    Ok(wrote.iter().all(|(p, h)| now.get(p.as_str()) == Some(h)))
}

/// The files at or under `root` that hold bytes a recorded run wrote (copies), each with the
/// run that made them (ranked as `show` ranks). An error when `root` does not exist.
fn copies_under(store: &Store, root: &Path) -> Result<Vec<(String, Output)>> {
    let found = target::made_files_under(store, root)?.ok_or_else(|| {
        let shown = crate::model::text::escape(&root.display().to_string()).into_owned();
        match std::fs::metadata(root) {
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => anyhow::anyhow!(
                "{shown} is a loop of symbolic links: point the link at a file or a directory"
            ),
            _ => anyhow::anyhow!("{shown} does not exist (or is not a file or a directory)"),
        }
    })?;
    Ok(found
        .into_iter()
        .map(|(f, maker)| {
            let text = path_text(std::os::unix::ffi::OsStrExt::as_bytes(f.as_os_str()));
            let shown = target::shown_from_here(&f);
            (
                maker,
                Output {
                    path: path_text(std::os::unix::ffi::OsStrExt::as_bytes(shown.as_os_str())),
                    abs_path: text,
                    state: "copy",
                },
            )
        })
        .collect())
}

/// Each stage's longest chain of makers among the stages.
fn depths(stages: &[Stage]) -> BTreeMap<String, usize> {
    let by_id: BTreeMap<&str, &Stage> = stages.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut depth: BTreeMap<String, usize> = BTreeMap::new();
    fn of(
        id: &str,
        by_id: &BTreeMap<&str, &Stage>,
        depth: &mut BTreeMap<String, usize>,
        guard: usize,
    ) -> usize {
        if let Some(d) = depth.get(id) {
            return *d;
        }
        let d = match by_id.get(id) {
            Some(s) if guard < MAX_DEPTH => s
                .makers
                .iter()
                .map(|m| of(m, by_id, depth, guard + 1) + 1)
                .max()
                .unwrap_or(0),
            _ => 0,
        };
        depth.insert(id.to_string(), d);
        d
    }
    for s in stages {
        of(&s.id, &by_id, &mut depth, 0);
    }
    depth
}

/// A path's last writer: its run id and the bytes it wrote there.
type Writer = (String, Option<Hash>);

struct Walk<'a> {
    store: &'a Store,
    /// Repositories moved since their runs were recorded: records and paths are read where
    /// they are now.
    moves: &'a Moves,
    done: BTreeMap<String, Stage>,
    /// Path -> the run that last wrote it, filled as paths are met.
    last: &'a mut BTreeMap<String, Writer>,
    /// The paths and repositories as they are now, each hashed once for every run.
    now: checks::Current,
}

/// How far up a walk goes: a pipeline deeper than this is cut (a guard, not a limit met).
const MAX_DEPTH: usize = 64;

impl Walk<'_> {
    fn visit(&mut self, id: &str, depth: usize) -> Result<bool> {
        if let Some(s) = self.done.get(id) {
            return Ok(s.stale);
        }
        let loaded = self.store.load_run(id)?;
        let (r, moved_from) = {
            let mut holds = holds_now(&self.now, self.store, self.store);
            self.moves.relocate(self.store, loaded, &mut holds)
        };
        let short = self.store.short_id(id).unwrap_or_else(|_| id.to_string());
        // A placeholder while its makers are visited (the graph is causal: no cycle, but a
        // record from elsewhere could claim one).
        let mut placeholder = stage(&r, &short);
        if let Some(super::moved::Mapped::Moved { from, copied, .. }) = moved_from {
            match copied {
                true => placeholder.copied_from = Some(from),
                false => placeholder.moved_from = Some(from),
            }
        }
        self.done.insert(id.to_string(), placeholder);
        let mut reasons = Vec::new();
        let mut upstream = Vec::new();
        let mut makers = Vec::new();
        if r.unreadable.is_some() {
            reasons.push("its record cannot be read back: it cannot be checked".to_string());
        } else {
            let (c, _) = checks::check_now(self.store, &r, false, self.store, &self.now)?;
            reasons.extend(own_reasons(self.store, &c, &r)?);
            // What made its inputs (the bytes it read, still there): stale makers make it
            // stale too.
            if depth < MAX_DEPTH {
                for i in c.inputs.iter().chain(&c.configs) {
                    let Some(h) = i.recorded else { continue };
                    let abs = r
                        .edges
                        .iter()
                        .find(|e| e.role == i.role && e.path == i.path)
                        .map(|e| e.abs_path.clone())
                        .unwrap_or_default();
                    // A directory read whole that holds what other runs wrote inside it
                    // (`-o d/a`, `-o d/b`, then `-i d`): each of those is a maker of it.
                    let found = self.maker(&h, &abs, &r, i.differs(), depth)?;
                    let inside = match found {
                        None if !abs.is_empty() => self.writers_inside(&abs, &r.id)?,
                        _ => Vec::new(),
                    };
                    for (maker, made) in inside {
                        if makers.contains(&maker) {
                            continue;
                        }
                        makers.push(maker.clone());
                        let stale = self.visit(&maker, depth + 1)?;
                        let maker_short = self
                            .store
                            .short_id(&maker)
                            .unwrap_or_else(|_| maker.clone());
                        if stale && !i.differs() && !upstream.contains(&maker_short) {
                            reasons.push(format!(
                                "run {maker_short}, which made {made} inside {}, is stale",
                                i.path
                            ));
                            upstream.push(maker_short);
                        }
                    }
                    if let Some(maker) = found {
                        makers.push(maker.clone());
                        if i.differs() {
                            // Stale already for it; the run that wrote what is there now
                            // comes first.
                            self.visit(&maker, depth + 1)?;
                            continue;
                        }
                        let maker_short = self
                            .store
                            .short_id(&maker)
                            .unwrap_or_else(|_| maker.clone());
                        if self.visit(&maker, depth + 1)? && !upstream.contains(&maker_short) {
                            reasons.push(format!(
                                "run {maker_short}, which made {}, is stale",
                                i.path
                            ));
                            upstream.push(maker_short);
                        }
                    }
                }
            }
        }
        let outputs = self.outputs(&r)?;
        for o in outputs.iter().filter(|o| o.state != "current") {
            reasons.push(format!("output {} is {}", o.path, o.state));
        }
        let s = self.done.get_mut(id).expect("inserted above");
        s.stale = !reasons.is_empty();
        s.reasons = reasons;
        s.upstream = upstream;
        s.makers = makers;
        s.outputs = outputs;
        Ok(s.stale)
    }

    /// The run that last wrote `abs_path` and the bytes it wrote there (the paths the store
    /// was asked about, or this one found now); an empty id when none.
    fn last_writer(&mut self, abs_path: &str) -> Result<Writer> {
        if let Some(l) = self.last.get(abs_path) {
            return Ok(l.clone());
        }
        let found =
            latest_outputs_under(self.store, self.moves, &self.now, &[abs_path.to_string()])?
                .into_iter()
                .find(|o| o.0 == abs_path)
                .map(|o| (o.2, o.3))
                .unwrap_or_default();
        self.last.insert(abs_path.to_string(), found.clone());
        Ok(found)
    }

    /// The runs that last wrote outputs recorded inside directory `abs_path` (not `run`
    /// itself), each once with the first such output's path as it named it.
    fn writers_inside(&self, abs_path: &str, run: &str) -> Result<Vec<(String, String)>> {
        let mut found: Vec<(String, String)> = Vec::new();
        let under =
            latest_outputs_under(self.store, self.moves, &self.now, &[abs_path.to_string()])?;
        for (abs, path, writer, _) in under {
            if abs == abs_path.trim_end_matches('/') || writer == run {
                continue;
            }
            if !found.iter().any(|(w, _)| *w == writer) {
                found.push((writer, path));
            }
        }
        Ok(found)
    }

    /// The nearest directory around `abs_path` recorded as an output: its last writer, the
    /// path inside it, and the bytes it wrote there. Where runs of another copy (or of a
    /// moved project) are read here, the writer the outputs' ranking picks for it.
    fn last_writer_around(
        &mut self,
        abs_path: &str,
    ) -> Result<Option<(String, String, Option<Hash>)>> {
        let mut at = abs_path.trim_end_matches('/');
        while let Some((dir, _)) = at.rsplit_once('/') {
            if dir.is_empty() {
                break;
            }
            let rel = &abs_path[dir.len() + 1..];
            // Where another copy's runs are read here, the directory's writer is the one the
            // outputs' ranking picks (by the bytes there, here, whose inputs hold), as for
            // any output; else the latest recorded there.
            if !self.moves.is_empty() {
                // Only a directory recorded as an output somewhere (an exact lookup): the
                // ranking lists everything under the path it is asked about, and the
                // directories above the project hold every project's outputs.
                let mut recorded = false;
                for at in self.moves.recorded_at(dir) {
                    if self.store.latest_output_at(&at)?.is_some() {
                        recorded = true;
                        break;
                    }
                }
                if recorded {
                    let (run, wrote) = self.last_writer(dir)?;
                    if !run.is_empty() {
                        return Ok(Some((run, rel.to_string(), wrote)));
                    }
                }
                at = dir;
                continue;
            }
            if let Some((run, wrote)) = self.store.latest_output_at(dir)? {
                return Ok(Some((run, rel.to_string(), wrote)));
            }
            at = dir;
        }
        Ok(None)
    }

    /// The run that made input bytes `h` of run `r`, read at `abs_path`: the last writer of
    /// that path when it wrote those very bytes (a rerun that made them again stands for its
    /// original) or when the input `differs` (what is there now is its), else, by the bytes
    /// alone, the first ranked maker among runs that ended before `r` started and could be
    /// where the bytes came from (`target::origins_before`: not a copier, not for an empty
    /// file) that is up to date, or the first of them when none is: two stages that made
    /// the same bytes both made the copy `r` read, and one that still makes them answers
    /// for it (visited to know, at `depth + 1`; [`find`] keeps only the stages reached).
    fn maker(
        &mut self,
        h: &Hash,
        abs_path: &str,
        r: &RunRecord,
        differs: bool,
        depth: usize,
    ) -> Result<Option<String>> {
        if !abs_path.is_empty() {
            let (last, wrote) = self.last_writer(abs_path)?;
            if !last.is_empty() && last != r.id && (differs || wrote == Some(*h)) {
                return Ok(Some(last));
            }
            // A file inside an output directory (`out/train.txt` of `-o out`): the last
            // writer of the nearest directory around it, when what it wrote holds these
            // bytes there. Without it a rerun that made the same file again was passed over
            // for the original, stale for good.
            if last.is_empty()
                && let Some((last, rel, wrote)) = self.last_writer_around(abs_path)?
                && last != r.id
                && (differs || wrote.is_some_and(|d| self.store.manifest_holds(&d, &rel, h)))
            {
                return Ok(Some(last));
            }
        }
        if differs {
            return Ok(None);
        }
        // By the bytes alone (a file no recorded run wrote at that path: a copy made by
        // hand), only a run that is still the last writer where it made them (rerunning it
        // could change them; once a rerun replaced them, what is here is a copy of old
        // bytes that no rerun remakes: reading it as made by the stale original ran
        // `rerun --stale` for ever), and not one that read what `r` made (a downstream
        // stage whose output happens to hold the same bytes: a false cycle).
        let made_by_r: Vec<Hash> = r
            .edges
            .iter()
            .filter(|e| e.role == Role::Output)
            .filter_map(|e| e.artifact.as_ref().map(|a| a.hash))
            .collect();
        let mut first = None;
        for id in target::origins_before(self.store, h, r)? {
            let p = self.store.load_run(&id)?;
            let reads_r = p.edges.iter().any(|e| {
                e.role != Role::Output
                    && e.artifact
                        .as_ref()
                        .is_some_and(|a| made_by_r.contains(&a.hash))
            });
            if reads_r {
                continue;
            }
            let mut current = false;
            for e in p.edges.iter().filter(|e| e.role == Role::Output) {
                let Some(a) = &e.artifact else { continue };
                // A directory it wrote: the bytes were inside it (that is how it made them).
                let holds = a.hash == *h || a.kind == crate::model::ArtifactKind::Dir;
                if holds && self.last_writer(&e.abs_path)?.0 == id {
                    current = true;
                    break;
                }
            }
            if current {
                if !self.visit(&id, depth + 1)? {
                    return Ok(Some(id));
                }
                first.get_or_insert(id);
            }
        }
        Ok(first)
    }

    /// The outputs run `r` was the last to write, each hashed now (through the stat cache).
    fn outputs(&mut self, r: &RunRecord) -> Result<Vec<Output>> {
        let cwd = path_of(&String::from_utf8_lossy(&r.cwd));
        let mut out = Vec::new();
        for e in r.edges.iter().filter(|e| {
            e.role == Role::Output && e.written != Some(Written::Nothing) && e.artifact.is_some()
        }) {
            let (last, _) = self.last_writer(&e.abs_path)?;
            if last != r.id {
                continue;
            }
            let at = cwd.join(path_of(&e.path));
            let at = if Path::new(&path_of(&e.abs_path)).is_absolute() {
                path_of(&e.abs_path)
            } else {
                at
            };
            let now: Option<Hash> = self.now.output(&at, self.store);
            let recorded = e.artifact.as_ref().map(|a| a.hash);
            let state = match now {
                None => "missing",
                Some(h) if Some(h) == recorded => "current",
                // A directory whose files the run wrote are all there as it wrote them: what
                // was added beside them since (a later stage's summary, a note of yours) does
                // not change its product.
                Some(_) if only_added(self.store, &at, e)? => "current",
                Some(_) => "modified",
            };
            out.push(Output {
                path: e.path.clone(),
                abs_path: e.abs_path.clone(),
                state,
            });
        }
        Ok(out)
    }
}

/// The outputs recorded under `roots` (paths as they are now), each with its last writer:
/// those recorded there, and those recorded at the same place in a repository moved there
/// since. Where several wrote a path, the one whose bytes are there now comes first, then a
/// run recorded at the path itself (a run of this checkout, while another, gone, was moved
/// here), then the later run (run ids are UUIDv7: later sorts after).
fn latest_outputs_under(
    store: &Store,
    moves: &Moves,
    now: &checks::Current,
    roots: &[String],
) -> Result<Vec<crate::store::LatestOutput>> {
    Ok(outputs_and_copies_under(store, moves, now, roots)?.0)
}

/// A path here (absolute) that holds bytes a recorded run made, and that run's id.
type CopyHere = (String, String);

/// [`latest_outputs_under`], and the paths whose last writer was recorded in a moved
/// repository but which hold bytes another recorded run made (a copy of a moved project,
/// made after a rerun there: its model is the rerun's), each with that run: copies of what
/// it made, not outputs its first writer would find modified.
fn outputs_and_copies_under(
    store: &Store,
    moves: &Moves,
    now: &checks::Current,
    roots: &[String],
) -> Result<(Vec<crate::store::LatestOutput>, Vec<CopyHere>)> {
    if moves.is_empty() {
        return Ok((store.latest_outputs_under(roots)?, Vec::new()));
    }
    let mut found: BTreeMap<String, Vec<(bool, crate::store::LatestOutput)>> = BTreeMap::new();
    // Whether each run recorded in a moved repository is read here (on the evidence of its
    // files: `Moves::relocate`). One that is not wrote nothing here: a copy of the project
    // made after the move (`mv a b; cp -r b c`) is checked through its files' bytes, not
    // through the gone original's runs, which would read as stale for ever.
    let mut evident: std::collections::HashMap<String, bool> = Default::default();
    let mut read_here = |run: &str| -> Result<bool> {
        if let Some(known) = evident.get(run) {
            return Ok(*known);
        }
        let (_, mapped) = moves.relocate(
            store,
            store.load_run(run)?,
            &mut holds_now(now, store, store),
        );
        evident.insert(run.to_string(), mapped.is_some());
        Ok(mapped.is_some())
    };
    for root in roots {
        for o in store.latest_outputs_under(&moves.recorded_at(root.trim_end_matches('/')))? {
            let at = moves.forward(&o.0);
            if at == o.0 {
                found.entry(at.clone()).or_default().push((true, o));
                continue;
            }
            // Recorded where the project was moved or copied from: each of the latest
            // writers there, and the one that made the bytes here (a copy made before its
            // original ran again holds an earlier run's output; a clone holds none, and the
            // runs whose inputs are its own count), each read here on evidence.
            let mut writers = store.outputs_at(&o.0, WRITERS_WEIGHED)?;
            if let Some(there) = now.output(&path_of(&at), store)
                && !writers.iter().any(|w| w.2 == Some(there))
                && let Some((run, path)) = store.output_with_bytes_at(&o.0, &there)?
            {
                writers.push((run, path, Some(there)));
            }
            for (run, path, bytes) in writers {
                if read_here(&run)? {
                    found
                        .entry(at.clone())
                        .or_default()
                        .push((false, (at.clone(), path, run, bytes)));
                }
            }
        }
    }
    let mut ranker = target::Ranker::new(store);
    let mut outputs = Vec::new();
    let mut copies = Vec::new();
    // Whether each run's inputs and configs (read where it is read) hold here now the bytes
    // it read: between two runs that made what is there, neither recorded here (the
    // original's and a sibling copy's), the one whose inputs are these.
    // Then how many of its files are here with the bytes it recorded (a stage that wrote a
    // model and a log, rerun in the original with a new param that left the log as it was:
    // the first run holds both here, the rerun only the log).
    let mut held: std::collections::HashMap<String, (bool, usize)> = Default::default();
    let mut inputs_hold =
        |id: &str| -> Result<(bool, usize)> { inputs_hold(store, moves, now, id, &mut held, 0) };
    for (at, mut writers) in found {
        let mut there = None;
        if writers.len() > 1 {
            there = now.output(&path_of(&at), store);
            let mut keyed = Vec::with_capacity(writers.len());
            for (here, o) in writers {
                let made = o.3.is_some() && o.3 == there;
                let (holds, files) = match here {
                    true => (false, 0),
                    false => inputs_hold(&o.2)?,
                };
                keyed.push(((made, here, holds, files, o.2.clone()), (here, o)));
            }
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            writers = keyed.into_iter().map(|(_, w)| w).collect();
        }
        let Some((here, o)) = writers.pop() else {
            continue;
        };
        if !here {
            if there.is_none() {
                there = now.output(&path_of(&at), store);
            }
            if let Some(bytes) = there.filter(|b| o.3 != Some(*b))
                && let Some(maker) = ranker.best(&bytes, |_| true)?
                && maker != o.2
            {
                copies.push((at, maker));
                continue;
            }
        }
        outputs.push(o);
    }
    Ok((outputs, copies))
}

/// Whether run `id`, read here, holds here what it read, and how many of its files are here
/// with the bytes it recorded. As `status` checks them: a config by the keys the run depends
/// on; an input that is not here (an earlier stage's output, not made yet, as in a clone)
/// by the run that made the bytes it read there, which must hold in turn (of two
/// generations of a pipeline, the one whose params are here); an input no recorded run
/// made, not here, tells nothing.
fn inputs_hold(
    store: &Store,
    moves: &Moves,
    now: &checks::Current,
    id: &str,
    held: &mut std::collections::HashMap<String, (bool, usize)>,
    depth: usize,
) -> Result<(bool, usize)> {
    if let Some(known) = held.get(id) {
        return Ok(*known);
    }
    // While its makers are weighed (a record from elsewhere could claim a cycle).
    held.insert(id.to_string(), (true, 0));
    let original = store.load_run(id)?;
    let (r, _) = moves.relocate(store, original.clone(), &mut holds_now(now, store, store));
    let mut holds = r.unreadable.is_none();
    if holds {
        let (c, _) = checks::check_now(store, &r, false, store, now)?;
        holds = c.configs.iter().all(|i| !i.differs())
            && c.inputs.iter().all(|i| i.now.is_none() || !i.differs());
        for i in c.inputs.iter().filter(|i| i.now.is_none()) {
            if !holds || depth >= MAX_DEPTH {
                break;
            }
            let (Some(bytes), Some(e)) = (
                i.recorded,
                r.edges
                    .iter()
                    .find(|e| e.role == i.role && e.path == i.path),
            ) else {
                continue;
            };
            let root = original
                .capture
                .git
                .as_ref()
                .map(|g| g.root.trim_end_matches('/').to_string())
                .unwrap_or_default();
            let mut made = false;
            let mut maker_holds = false;
            for at in moves.recorded_at(&e.abs_path) {
                for w in super::moved::makers_at(store, &at, &bytes, &root) {
                    if w == r.id || maker_holds {
                        continue;
                    }
                    if !crate::model::graph::came_before(&store.load_run(&w)?, &original) {
                        continue;
                    }
                    made = true;
                    maker_holds = inputs_hold(store, moves, now, &w, held, depth + 1)?.0;
                }
            }
            holds = !made || maker_holds;
        }
    }
    let files = r
        .edges
        .iter()
        .filter_map(|e| e.artifact.as_ref().map(|a| (e, a.hash)))
        .filter(|(e, h)| {
            let at = path_of(&e.abs_path);
            let found = match e.role {
                Role::Output => now.output(&at, store),
                _ => now.input(&at, store),
            };
            found == Some(*h)
        })
        .count();
    held.insert(id.to_string(), (holds, files));
    Ok((holds, files))
}

fn stage(r: &RunRecord, short: &str) -> Stage {
    Stage {
        id: r.id.clone(),
        short: short.to_string(),
        command: terminal_command_line(&r.argv),
        started_at: r.started_at.clone(),
        stale: false,
        reasons: Vec::new(),
        upstream: Vec::new(),
        outputs: Vec::new(),
        asked: false,
        moved_from: None,
        copied_from: None,
        makers: Vec::new(),
        two_names: None,
    }
}

/// An input the run also wrote (`-i ckpt.pt -o ckpt.pt`: a checkpoint resumed in place)
/// that holds now the bytes the run left there: its own product, no change since it ran.
fn rewritten_by_itself(r: &RunRecord, i: &checks::PathCheck) -> bool {
    let Some(now) = i.now else {
        return false;
    };
    let Some(abs) = r
        .edges
        .iter()
        .find(|e| e.role == i.role && e.path == i.path)
        .map(|e| &e.abs_path)
    else {
        return false;
    };
    r.edges.iter().any(|e| {
        e.role == Role::Output
            && e.abs_path == *abs
            && e.artifact.as_ref().map(|a| a.hash) == Some(now)
    })
}

/// Why a run would make something else now, from its own record: its code, configs (the
/// keys it depends on), inputs and packages. Redacted variables and GPUs do not make it
/// stale (a rerun takes the first from the environment; the second is where it runs).
fn own_reasons(store: &Store, c: &checks::Checks, r: &RunRecord) -> Result<Vec<String>> {
    let mut out: Vec<String> = c.code.iter().map(|x| format!("code: {x}")).collect();
    for i in c.configs.iter().filter(|i| i.differs()) {
        out.push(match &i.keys {
            Some(_) if i.now.is_some() => format!("config {}: {}", i.path, i.state()),
            _ if i.now.is_none() => format!("config {} is missing", i.path),
            _ => format!("config {} changed", i.path),
        });
    }
    for i in c
        .inputs
        .iter()
        .filter(|i| i.differs() && !rewritten_by_itself(r, i))
    {
        out.push(if i.now.is_none() {
            format!("input {} is missing", i.path)
        } else {
            let edge = r
                .edges
                .iter()
                .find(|e| e.role == i.role && e.path == i.path);
            let what = match edge {
                Some(e) => inside_changed(store, e, &path_of(&e.abs_path))?,
                None => String::new(),
            };
            format!("input {} changed{what}", i.path)
        });
    }
    out.extend(c.packages.iter().map(|p| format!("package {p}")));
    Ok(out)
}

/// At most this many names of each kind in [`inside_changed`].
const CHANGES_NAMED: usize = 3;

/// For a directory the run recorded (edge `e`), now at `at`: which files inside were added,
/// removed or changed since, as ` (added NOTES.txt; changed a.csv and 2 more)`; empty for a
/// file, or when that cannot be told.
fn inside_changed(store: &Store, e: &crate::model::EdgeRecord, at: &Path) -> Result<String> {
    if !e
        .artifact
        .as_ref()
        .is_some_and(|a| a.kind == crate::model::ArtifactKind::Dir)
    {
        return Ok(String::new());
    }
    let recorded = files_recorded(store, e)?;
    let Some((_, files)) = files_now(&hash::Hashing::default(), at, store) else {
        return Ok(String::new());
    };
    let now: BTreeMap<&str, Hash> = files.iter().map(|f| (f.path.as_str(), f.hash)).collect();
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for (p, h) in &now {
        match recorded.get(*p) {
            None => added.push(*p),
            Some(was) if was != h => changed.push(*p),
            Some(_) => {}
        }
    }
    let removed: Vec<&str> = recorded
        .keys()
        .map(String::as_str)
        .filter(|p| !now.contains_key(p))
        .collect();
    let mut parts = Vec::new();
    for (word, names) in [("added", added), ("removed", removed), ("changed", changed)] {
        if names.is_empty() {
            continue;
        }
        let shown = names[..names.len().min(CHANGES_NAMED)].join(", ");
        parts.push(match names.len() {
            n if n > CHANGES_NAMED => format!("{word} {shown} and {} more", n - CHANGES_NAMED),
            _ => format!("{word} {shown}"),
        });
    }
    Ok(match parts.is_empty() {
        true => String::new(),
        false => format!(" ({})", parts.join("; ")),
    })
}
