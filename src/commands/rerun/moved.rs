//! A project moved since its runs were recorded (`mv proj proj2`; copied elsewhere and the
//! original removed; a checkout whose directory was renamed), or copied (`cp -r proj exp`,
//! the original still there). Its runs name paths under another repository root.
//! `lineage status` and `lineage rerun`, run in the repository that holds the recorded commit
//! now, read those runs as if recorded there: every path under the old root is taken under
//! the new one (the cwd, the inputs, configs and outputs, the repository itself). Nothing in
//! the store changes; a rerun records a new run where it runs. So a copy's own edits (a
//! param changed in the copy) make its stages stale, and `rerun --stale` there writes in the
//! copy, never in the original.
//!
//! A recorded root counts as moved or copied here only when it is not a temporary worktree
//! of `rerun --worktree` (those are mapped back to their original's repository:
//! `worktree::as_original`) and the repository here holds the commit it was recorded at;
//! it is a copy when a repository is still there. Where a path was written both here and
//! there, the run whose bytes are there now counts, then the run recorded here.
//! And a run is read here only on evidence: one of the files it read or wrote is here, at
//! the same place under the new root, with the bytes it recorded. Without it (a checkout
//! merged into a larger repository under a prefix, a deleted clone whose runs made other
//! bytes, another of two gone clones) the run is read where it was recorded, as before.
//! What another copy ran after the repository here was made (`.git`'s birth time) is its
//! own: never read here (an experiment in `cp -r proj exp` is not the original's), whether
//! that copy is still there or was deleted or moved away since (each run records its
//! `.git`'s birth: a project moved here keeps it, so its runs are still read here).
//! Absolute paths follow the move too: those it was given (`-i /old/root/data`), those in
//! its command line and its environment (a `.venv` inside the project), its interpreter.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::model::{Hash, Role, RunRecord, path_bytes, path_of, path_text};
use crate::store::Store;

/// Each gone repository root whose runs are read in the repository here, and that root.
#[derive(Clone, Debug, Default)]
pub struct Moves {
    pairs: Vec<Pair>,
    /// The runs found read here so far ([`Moves::evident`]): once read here, a run stays so
    /// for the command (its evidence is its files, or an earlier run's).
    chained: std::cell::RefCell<std::collections::HashSet<String>>,
}

/// A recorded root whose runs may be read under a root here.
#[derive(Clone, Debug, PartialEq)]
struct Pair {
    /// The recorded root and the root here, without a trailing slash.
    from: String,
    to: String,
    /// Whether the recorded root is still a repository: this is a copy of it.
    copied: bool,
    /// When the repository here was made (its `.git`'s birth, as the store writes times),
    /// where the file system keeps it. A run recorded in another copy since is that copy's
    /// own (an experiment in `cp -r proj exp` is not the original's, nor one made in the
    /// original since the copy's), even once that copy is moved or deleted.
    born: Option<String>,
}

impl Pair {
    /// Whether run `r` (recorded under `from`) started there since the copy here was made.
    /// A root gone since was moved here (its `.git`, recorded with the run, is this one,
    /// born when it was), or was the original of this copy, or another copy of it: what
    /// ran there after this copy was made is not this copy's either. Runs recorded before
    /// their repository's birth was kept are read on their evidence alone.
    fn ran_since(&self, r: &RunRecord) -> bool {
        let Some(born) = self.born.as_deref() else {
            return false;
        };
        let since = r.started_at.as_str() >= born;
        if self.copied {
            return since;
        }
        let theirs = r.capture.git.as_ref().and_then(|g| g.born.as_deref());
        since && theirs.is_some_and(|t| t != born)
    }
}

impl Moves {
    /// The roots moved into the repositories around `paths` (files or directories).
    pub fn into_repos_of(store: &Store, paths: &[PathBuf]) -> Result<Moves> {
        let mut moves = Moves::default();
        for p in paths {
            let dir = if p.is_dir() {
                p.as_path()
            } else {
                p.parent().unwrap_or(p)
            };
            for pair in Moves::into_repo_of(store, dir)?.pairs {
                if !moves.pairs.contains(&pair) {
                    moves.pairs.push(pair);
                }
            }
        }
        Ok(moves)
    }

    /// The roots moved into the repository around `dir` (none outside a repository).
    pub fn into_repo_of(store: &Store, dir: &Path) -> Result<Moves> {
        let mut moves = Moves::default();
        let Ok(repo) = git2::Repository::discover(dir) else {
            return Ok(moves);
        };
        let Some(here) = repo.workdir() else {
            return Ok(moves);
        };
        let here = here.canonicalize().unwrap_or_else(|_| here.to_path_buf());
        let here = path_text(here.as_os_str().as_bytes())
            .trim_end_matches('/')
            .to_string();
        let born = std::fs::symlink_metadata(Path::new(&here).join(".git"))
            .and_then(|m| m.created())
            .ok()
            .map(crate::model::stamp);
        let mut holds: std::collections::HashMap<String, bool> = Default::default();
        let mut seen: std::collections::HashSet<String> = Default::default();
        for (commit, cwd) in store.recorded_places()? {
            let held = *holds.entry(commit.clone()).or_insert_with(|| {
                git2::Oid::from_str(&commit).is_ok_and(|oid| repo.find_commit(oid).is_ok())
            });
            // Runs of other repositories, and those recorded in this one where it is.
            if !held || cwd.is_empty() || under(&path_text(&cwd), &here).is_some() {
                continue;
            }
            let Some(root) = store.recorded_root(&commit, &cwd)? else {
                continue;
            };
            let root = root.trim_end_matches('/').to_string();
            if root.is_empty()
                || root == here
                || here.starts_with(&format!("{root}/"))
                || in_temporary_worktree(&root)
                || !seen.insert(root.clone())
            {
                continue;
            }
            // Still a repository there: this is a copy of it (or another checkout).
            let copied = Path::new(&root).join(".git").symlink_metadata().is_ok();
            moves.pairs.push(Pair {
                from: root,
                to: here.clone(),
                copied,
                born: born.clone(),
            });
        }
        Ok(moves)
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Whether `root` is another copy of the repository here, still there (its runs are read
    /// here only on evidence; without it, rerunning one here would write there).
    pub fn is_other_copy(&self, root: &str) -> bool {
        let root = root.trim_end_matches('/');
        self.pairs.iter().any(|p| p.copied && p.from == root)
    }

    /// Why run `r` of another copy still there is not read here: it started there after
    /// this copy was made, or no file of its here holds the bytes it recorded.
    pub fn why_not_here(&self, r: &RunRecord) -> &'static str {
        let root = r.capture.git.as_ref().map(|g| g.root.trim_end_matches('/'));
        let since = self
            .pairs
            .iter()
            .any(|p| Some(p.from.as_str()) == root && p.ran_since(r));
        match since {
            true => "and it ran there after this copy was made",
            false => "and no file of its here holds the bytes it recorded",
        }
    }

    /// Where a recorded absolute path is now: under the new root when it was under a moved
    /// one, else as recorded.
    pub fn forward(&self, abs: &str) -> String {
        for Pair { from, to, .. } in &self.pairs {
            if let Some(rest) = under(abs, from) {
                return format!("{to}{rest}");
            }
        }
        abs.to_string()
    }

    /// The paths a path here may have been recorded at: itself, and the same place under
    /// every root moved here.
    pub fn recorded_at(&self, abs: &str) -> Vec<String> {
        let mut out = vec![abs.to_string()];
        for Pair { from, to, .. } in &self.pairs {
            if let Some(rest) = under(abs, to) {
                out.push(format!("{from}{rest}"));
            }
        }
        out
    }

    /// The record as if made here, when its repository is a moved one and it is read here on
    /// evidence ([`Moves::evident`]; for a copy, when it started before the copy here was
    /// made): its cwd, its paths, its repository, the absolute paths
    /// in its command line, environment and interpreter under the new root; with where it
    /// was mapped from and to. Else the record as it is.
    pub fn relocate(
        &self,
        store: &Store,
        r: RunRecord,
        holds: &mut dyn FnMut(&Path, &Hash, bool) -> bool,
    ) -> (RunRecord, Option<Mapped>) {
        let Some(root) = r.capture.git.as_ref().map(|g| g.root.clone()) else {
            return (r, None);
        };
        let root = root.trim_end_matches('/');
        for pair in self.pairs.iter().filter(|p| p.from == root) {
            // Recorded in the other copy since this one was made: that copy's own.
            if pair.ran_since(&r) {
                continue;
            }
            let Pair {
                from, to, copied, ..
            } = pair;
            let mut seen = std::collections::HashSet::new();
            if self.evident(store, &r, from, to, holds, &mut seen) {
                let mapped = Mapped::Moved {
                    from: from.clone(),
                    to: to.clone(),
                    copied: *copied,
                };
                return (moved_record(&r, from, to), Some(mapped));
            }
        }
        (r, None)
    }

    /// Whether run `r`, recorded under `from`, is read under `to`: a file it read or wrote is
    /// there with the bytes it recorded (`holds(path, bytes, as an output)`), or it read, at
    /// a path, the bytes an earlier run recorded under `from` wrote there, and that run is
    /// read under `to` (a clone holds no output: the second stage of a pipeline is read here
    /// because the first is, whose data is here). `seen`: the runs weighed in this chain.
    fn evident(
        &self,
        store: &Store,
        r: &RunRecord,
        from: &str,
        to: &str,
        holds: &mut dyn FnMut(&Path, &Hash, bool) -> bool,
        seen: &mut std::collections::HashSet<String>,
    ) -> bool {
        if self.chained.borrow().contains(&r.id) {
            return true;
        }
        if !seen.insert(r.id.clone()) || seen.len() > CHAIN_WEIGHED {
            return false;
        }
        let moved = moved_record(r, from, to);
        let here = moved
            .edges
            .iter()
            .filter_map(|e| e.artifact.as_ref().map(|a| (e, a.hash)))
            .any(|(e, h)| holds(&path_of(&e.abs_path), &h, e.role == Role::Output));
        let evident = here
            || r.edges
                .iter()
                .filter(|e| e.role != Role::Output)
                .filter_map(|e| e.artifact.as_ref().map(|a| (e, a.hash)))
                .any(|(e, h)| {
                    makers_at(store, &e.abs_path, &h, from)
                        .into_iter()
                        .filter(|w| *w != r.id)
                        .filter_map(|w| store.load_run(&w).ok())
                        .filter(|w| {
                            w.capture
                                .git
                                .as_ref()
                                .is_some_and(|g| g.root.trim_end_matches('/') == from)
                                && crate::model::graph::came_before(w, r)
                        })
                        .any(|w| self.evident(store, &w, from, to, holds, seen))
                });
        if evident {
            self.chained.borrow_mut().insert(r.id.clone());
        }
        evident
    }

    /// [`Moves::relocate`], unless the record was mapped already (`mapped`).
    pub fn relocate_unless(
        &self,
        store: &Store,
        r: RunRecord,
        mapped: Option<Mapped>,
        holds: &mut dyn FnMut(&Path, &Hash, bool) -> bool,
    ) -> (RunRecord, Option<Mapped>) {
        match mapped {
            Some(m) => (r, Some(m)),
            None => self.relocate(store, r, holds),
        }
    }
}

/// Where a run recorded where it is no longer is rerun.
#[derive(Clone, Debug)]
pub enum Mapped {
    /// Recorded in a temporary worktree of `rerun --worktree`, removed since: rerun in the
    /// repository of the run it reproduced.
    Worktree(String),
    /// Recorded in a repository moved since (`from`), or (`copied`) one still there of
    /// which this is a copy: rerun where it is now, or in the copy (`to`).
    Moved {
        from: String,
        to: String,
        copied: bool,
    },
}

impl Mapped {
    /// The repository it is rerun in.
    pub fn root(&self) -> &str {
        match self {
            Mapped::Worktree(root) | Mapped::Moved { to: root, .. } => root,
        }
    }

    /// The plan's line saying so.
    pub fn line(&self) -> String {
        use crate::model::text::escape;
        match self {
            Mapped::Worktree(root) => format!(
                "  recorded in a temporary worktree removed since: rerun in {}, as the run it reproduced\n",
                escape(root)
            ),
            Mapped::Moved {
                from,
                to,
                copied: false,
            } => format!(
                "  recorded in {}, moved since: rerun in {}, where that repository is now\n",
                escape(from),
                escape(to)
            ),
            Mapped::Moved {
                from,
                to,
                copied: true,
            } => format!(
                "  recorded in {}, another copy of this project: rerun in {}\n",
                escape(from),
                escape(to)
            ),
        }
    }
}

/// Evidence for [`Moves::relocate`]: whether `path` holds `bytes` now, looked at through `now`
/// (each path hashed once) and `cache`; for a directory recorded there that differs now (a
/// half-written output, a file edited inside it), whether one of the first files it held
/// (`FILES_WEIGHED`, non-empty) is there with its bytes.
pub fn holds_now<'a>(
    now: &'a super::checks::Current,
    cache: &'a dyn crate::hash::StatCache,
    store: &'a Store,
) -> impl FnMut(&Path, &Hash, bool) -> bool + 'a {
    move |path, bytes, output| {
        let found = if output {
            now.output(path, cache)
        } else {
            now.input(path, cache)
        };
        if found == Some(*bytes) {
            return true;
        }
        if found.is_none() || !path.is_dir() {
            return false;
        }
        store
            .some_dir_files(bytes, FILES_WEIGHED)
            .unwrap_or_default()
            .into_iter()
            .any(|(rel, h)| now.input(&path.join(path_of(&rel)), cache) == Some(h))
    }
}

/// The runs (among the latest [`WRITERS_WEIGHED`] at each place) that wrote `bytes` at `abs`,
/// as the file itself or as a file of a directory output around it (`-o out/d`, then
/// `-i out/d/f.txt`), no higher than `root`.
pub(super) fn makers_at(store: &Store, abs: &str, bytes: &Hash, root: &str) -> Vec<String> {
    let mut makers: Vec<String> = store
        .outputs_at(abs, WRITERS_WEIGHED)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, _, b)| b.as_ref() == Some(bytes))
        .map(|(w, ..)| w)
        .collect();
    let mut at = abs;
    while let Some((dir, _)) = at.rsplit_once('/') {
        if under(dir, root).is_none() {
            break;
        }
        let rel = &abs[dir.len() + 1..];
        for (w, _, held) in store.outputs_at(dir, WRITERS_WEIGHED).unwrap_or_default() {
            if let Some(held) = held
                && store.dir_file(&held, rel).ok().flatten().as_ref() == Some(bytes)
                && !makers.contains(&w)
            {
                makers.push(w);
            }
        }
        at = dir;
    }
    makers
}

/// How many of the latest runs that wrote a path are weighed: as its maker for evidence, and
/// (`stale`) as its writer here, with the one that made the bytes here wherever it ranks.
pub(super) const WRITERS_WEIGHED: usize = 8;

/// How many runs one chain of evidence weighs (a pipeline's stages, up to its first).
const CHAIN_WEIGHED: usize = 256;

/// How many files of a recorded directory are looked at for evidence.
const FILES_WEIGHED: usize = 16;

/// `r` with every path under `from` taken under `to`.
fn moved_record(r: &RunRecord, from: &str, to: &str) -> RunRecord {
    let forward =
        |text: &str| -> Option<String> { under(text, from).map(|rest| format!("{to}{rest}")) };
    let mut r = r.clone();
    if let Some(cwd) = forward(&path_text(&r.cwd)) {
        r.cwd = path_bytes(&cwd);
    }
    for e in &mut r.edges {
        if let Some(abs) = forward(&e.abs_path) {
            e.abs_path = abs;
        }
        if let Some(path) = forward(&e.path) {
            e.path = path;
        }
    }
    // A config given by an absolute path (`-c /old/root/params.yaml:train`): its params and
    // keys are kept under its path as given, which follows (else its keys were lost and its
    // params read as set over it: nothing compared).
    for p in &mut r.params {
        if let Some(source) = forward(&p.source) {
            p.source = source;
        }
    }
    r.capture.config_keys = std::mem::take(&mut r.capture.config_keys)
        .into_iter()
        .map(|(p, k)| (forward(&p).unwrap_or(p), k))
        .collect();
    // The command line: a whole argument, or the value of `--flag=PATH`.
    for arg in &mut r.argv {
        let text = path_text(arg);
        let moved = forward(&text).or_else(|| {
            let (flag, value) = text.split_once('=')?;
            forward(value).map(|v| format!("{flag}={v}"))
        });
        if let Some(m) = moved {
            *arg = path_bytes(&m);
        }
    }
    // The environment: each part of a `:`-separated list (PATH, PYTHONPATH), or the value.
    for value in r.capture.env.values_mut() {
        if value.contains(from) {
            *value = value
                .split(':')
                .map(|part| forward(part).unwrap_or_else(|| part.to_string()))
                .collect::<Vec<_>>()
                .join(":");
        }
    }
    if let Some(py) = &mut r.capture.software.python {
        if let Some(exe) = forward(&py.executable) {
            py.executable = exe;
        }
        for dir in &mut py.site_packages {
            if let Some(d) = forward(dir) {
                *dir = d;
            }
        }
    }
    if let Some(g) = &mut r.capture.git {
        g.root = to.to_string();
    }
    r
}

/// What follows `root` in `abs` ("" or "/..."), when `abs` is `root` or lies under it.
pub(super) fn under<'a>(abs: &'a str, root: &str) -> Option<&'a str> {
    let rest = abs.strip_prefix(root)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// Whether `root` lies in a temporary worktree of `rerun --worktree`.
fn in_temporary_worktree(root: &str) -> bool {
    Path::new(root).ancestors().any(|a| {
        a.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("lineage-rerun-"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_a_moved_root_go_to_the_new_one_and_back() {
        let moves = Moves {
            pairs: vec![Pair {
                from: "/w/a".into(),
                to: "/w/b".into(),
                copied: false,
                born: None,
            }],
            ..Moves::default()
        };
        assert_eq!(moves.forward("/w/a"), "/w/b");
        assert_eq!(moves.forward("/w/a/out/m.pt"), "/w/b/out/m.pt");
        // Not under it: a sibling sharing a prefix, a path elsewhere.
        assert_eq!(moves.forward("/w/ab/x"), "/w/ab/x");
        assert_eq!(moves.forward("/data/x"), "/data/x");
        assert_eq!(
            moves.recorded_at("/w/b/out"),
            vec!["/w/b/out".to_string(), "/w/a/out".to_string()]
        );
        assert_eq!(moves.recorded_at("/w/bc"), vec!["/w/bc".to_string()]);
    }

    /// Every absolute path under the old root follows it: the cwd, the paths as given and as
    /// resolved, the command line (whole or after `=`), the environment's lists, the
    /// interpreter; nothing else.
    #[test]
    fn a_moved_record_names_the_new_place() {
        let mut r = RunRecord::example("r", "python /w/a/.venv/bin/x --out=/w/a/out /w/ab");
        r.cwd = b"/w/a/sub".to_vec();
        r.edges.push(crate::model::EdgeRecord {
            role: Role::Input,
            path: "/w/a/data".into(),
            abs_path: "/w/a/data".into(),
            artifact: None,
            changed: false,
            written: None,
            observed: None,
        });
        r.capture
            .config_keys
            .insert("/w/a/params.yaml".into(), vec!["train".into()]);
        r.params.push(crate::model::Param {
            key: "train.lr".into(),
            value: serde_json::json!(0.1),
            source: "/w/a/params.yaml".into(),
        });
        r.capture
            .env
            .insert("PATH".into(), "/w/a/.venv/bin:/usr/bin".into());
        r.capture.env.insert("HOME".into(), "/home/u".into());
        r.capture.git = Some(crate::model::GitState {
            root: "/w/a".into(),
            ..Default::default()
        });
        let m = moved_record(&r, "/w/a", "/x/b");
        assert_eq!(m.cwd, b"/x/b/sub");
        assert_eq!(m.edges[0].path, "/x/b/data");
        assert_eq!(m.edges[0].abs_path, "/x/b/data");
        let argv: Vec<String> = m.argv.iter().map(|a| path_text(a)).collect();
        assert_eq!(
            argv,
            ["python", "/x/b/.venv/bin/x", "--out=/x/b/out", "/w/ab"]
        );
        assert_eq!(m.capture.env["PATH"], "/x/b/.venv/bin:/usr/bin");
        assert_eq!(m.capture.config_keys["/x/b/params.yaml"], ["train"]);
        assert_eq!(m.params[0].source, "/x/b/params.yaml");
        assert_eq!(m.capture.env["HOME"], "/home/u");
        assert_eq!(
            m.capture.git.as_ref().map(|g| g.root.as_str()),
            Some("/x/b")
        );
    }
}
