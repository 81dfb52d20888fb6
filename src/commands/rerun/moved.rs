//! A project moved since its runs were recorded (`mv proj proj2`; copied elsewhere and the
//! original removed; a checkout whose directory was renamed). Its runs name paths under a
//! repository root that is gone. `lineage status` and `lineage rerun`, run in the repository
//! that holds the recorded commit now, read those runs as if recorded there: every path under
//! the old root is taken under the new one (the cwd, the inputs, configs and outputs, the
//! repository itself). Nothing in the store changes; a rerun records a new run where it runs.
//!
//! A recorded root counts as moved here only when it is gone (a copy whose original is still
//! there is not the original's place), is not a temporary worktree of `rerun --worktree`
//! (those are mapped back to their original's repository: `worktree::as_original`), and
//! the repository here holds the commit it was recorded at.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::model::{RunRecord, path_bytes, path_text};
use crate::store::Store;

/// Each gone repository root whose runs are read in the repository here, and that root.
#[derive(Clone, Debug, Default)]
pub struct Moves {
    /// (recorded root, root here), both without a trailing slash.
    pairs: Vec<(String, String)>,
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
                if !moves.pairs.iter().any(|(from, _)| *from == pair.0) {
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
        let mut holds: std::collections::BTreeMap<String, bool> = Default::default();
        for (commit, cwd) in store.recorded_places()? {
            // A place still there is not moved (cwd lies inside its root).
            if cwd.is_empty() || Path::new(&OsString::from_vec(cwd.clone())).exists() {
                continue;
            }
            let held = *holds.entry(commit.clone()).or_insert_with(|| {
                git2::Oid::from_str(&commit).is_ok_and(|oid| repo.find_commit(oid).is_ok())
            });
            if !held {
                continue;
            }
            let Some(root) = store.recorded_root(&commit, &cwd)? else {
                continue;
            };
            let root = root.trim_end_matches('/').to_string();
            if root.is_empty()
                || root == here
                || Path::new(&root).symlink_metadata().is_ok()
                || in_temporary_worktree(&root)
                || moves.pairs.iter().any(|(from, _)| *from == root)
            {
                continue;
            }
            moves.pairs.push((root, here.clone()));
        }
        Ok(moves)
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Where a recorded absolute path is now: under the new root when it was under a moved
    /// one, else as recorded.
    pub fn forward(&self, abs: &str) -> String {
        for (from, to) in &self.pairs {
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
        for (from, to) in &self.pairs {
            if let Some(rest) = under(abs, to) {
                out.push(format!("{from}{rest}"));
            }
        }
        out
    }

    /// The record as if made here: its cwd, its paths and its repository under the new root
    /// when its repository is a moved one; with where it was mapped from and to.
    pub fn relocate(&self, mut r: RunRecord) -> (RunRecord, Option<Mapped>) {
        let Some(root) = r.capture.git.as_ref().map(|g| g.root.clone()) else {
            return (r, None);
        };
        let root = root.trim_end_matches('/');
        let Some((from, to)) = self.pairs.iter().find(|(from, _)| from == root) else {
            return (r, None);
        };
        let cwd = path_text(&r.cwd);
        if let Some(rest) = under(&cwd, from) {
            r.cwd = path_bytes(&format!("{to}{rest}"));
        }
        for e in &mut r.edges {
            e.abs_path = self.forward(&e.abs_path);
        }
        if let Some(g) = &mut r.capture.git {
            g.root = to.clone();
        }
        let mapped = Mapped::Moved {
            from: from.clone(),
            to: to.clone(),
        };
        (r, Some(mapped))
    }

    /// [`Moves::relocate`], unless the record was mapped already (`mapped`).
    pub fn relocate_unless(
        &self,
        r: RunRecord,
        mapped: Option<Mapped>,
    ) -> (RunRecord, Option<Mapped>) {
        match mapped {
            Some(m) => (r, Some(m)),
            None => self.relocate(r),
        }
    }
}

/// Where a run recorded where it is no longer is rerun.
#[derive(Clone, Debug)]
pub enum Mapped {
    /// Recorded in a temporary worktree of `rerun --worktree`, removed since: rerun in the
    /// repository of the run it reproduced.
    Worktree(String),
    /// Recorded in a repository moved since (`from`): rerun where it is now (`to`).
    Moved { from: String, to: String },
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
            Mapped::Moved { from, to } => format!(
                "  recorded in {}, moved since: rerun in {}, where that repository is now\n",
                escape(from),
                escape(to)
            ),
        }
    }
}

/// What follows `root` in `abs` ("" or "/..."), when `abs` is `root` or lies under it.
fn under<'a>(abs: &'a str, root: &str) -> Option<&'a str> {
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
            pairs: vec![("/w/a".into(), "/w/b".into())],
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
}
