//! `rerun --worktree`: a temporary git worktree at the recorded commit, with the recorded
//! uncommitted changes applied and the recorded untracked files and configs restored from
//! the store, removed on every path out unless `--keep-worktree` keeps it.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::model::{Hash, Role, RunRecord};
use crate::store::Store;
use crate::ui;

/// The bytes to restore for a recorded file: its stored blob; or, when it held secrets (the
/// store keeps `redacted`, a copy with them redacted), the real file at `real` if it still has
/// the recorded hash, else the redacted copy, with a warning.
fn restore_bytes(
    store: &Store,
    what: &str,
    real: &Path,
    recorded: Hash,
    redacted: Option<Hash>,
) -> Result<Option<Vec<u8>>> {
    let Some(blob) = redacted else {
        return store.blob(&recorded);
    };
    match std::fs::read(real) {
        Ok(bytes) if Hash::of(&bytes) == recorded => Ok(Some(bytes)),
        _ => {
            ui::warn(format_args!(
                "{what} held secrets and has changed since: restored with them redacted"
            ));
            store.blob(&blob)
        }
    }
}

fn write_restored(target: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(target, bytes).with_context(|| format!("restoring {}", target.display()))
}

/// A temporary git worktree at the recorded commit, with the recorded changes applied.
pub(super) struct Worktree {
    path: PathBuf,
    /// The user-only directory holding it (an unpredictable name in the temporary
    /// directory, so no other user can read the restored files or plant the path first).
    private: PathBuf,
    /// Where the job runs: the recorded cwd mapped into the worktree.
    pub(super) cwd: PathBuf,
    name: String,
    recorded_root: PathBuf,
    /// Kept on purpose (--keep-worktree); otherwise removed when dropped, on every path out.
    keep: bool,
}

impl Drop for Worktree {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
        let _ = std::fs::remove_dir_all(&self.private);
        if let Ok(repo) = git2::Repository::open(&self.recorded_root)
            && let Ok(wt) = repo.find_worktree(&self.name)
        {
            let mut opts = git2::WorktreePruneOptions::new();
            opts.valid(true).working_tree(true);
            let _ = wt.prune(Some(&mut opts));
        }
    }
}

impl Worktree {
    pub(super) fn create(store: &Store, r: &RunRecord) -> Result<Worktree> {
        let g = r
            .capture
            .git
            .as_ref()
            .context("the run was not recorded in a git repository: --worktree needs one")?;
        let commit = g
            .commit
            .as_deref()
            .context("the run has no recorded commit")?;
        let repo = git2::Repository::open(&g.root)
            .with_context(|| format!("opening the repository {}", g.root))?;
        let oid = git2::Oid::from_str(commit)?;
        let commit_obj = repo
            .find_commit(oid)
            .with_context(|| format!("commit {commit} is not in {}", g.root))?;
        let tag: String =
            r.id.chars()
                .filter(char::is_ascii_hexdigit)
                .take(8)
                .collect();
        let name = format!("lineage-rerun-{tag}-{}", std::process::id());
        // User-only, removed if anything fails before the guard exists.
        let private = tempfile::Builder::new()
            .prefix("lineage-rerun-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .context("creating a private temporary directory for the worktree")?;
        let path = private.path().join(&name);
        // git2 adds worktrees on a branch: make a temporary one, then detach the worktree's
        // HEAD at the commit and delete the branch, so none is ever left behind.
        let mut branch = repo.branch(&name, &commit_obj, false)?;
        let mut opts = git2::WorktreeAddOptions::new();
        let reference = repo.find_reference(&format!("refs/heads/{name}"))?;
        opts.reference(Some(&reference));
        repo.worktree(&name, &path, Some(&opts))?;
        // From here on, the guard removes the worktree on any error.
        let recorded_root = PathBuf::from(&g.root);
        let cwd_then = PathBuf::from(OsString::from_vec(r.cwd.clone()));
        let rel = cwd_then
            .strip_prefix(&recorded_root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        let guard = Worktree {
            cwd: path.join(rel),
            path: path.clone(),
            private: private.keep(),
            name,
            recorded_root,
            keep: false,
        };
        let wt = git2::Repository::open(&path)?;
        wt.set_head_detached(oid)?;
        branch.delete()?;
        if let Some(patch) = g.patch {
            let bytes = store
                .blob(&patch)?
                .context("the recorded patch is not in the store")?;
            let diff = git2::Diff::from_buffer(&bytes)?;
            wt.apply(&diff, git2::ApplyLocation::WorkDir, None)
                .context("applying the recorded uncommitted changes")?;
        }
        for u in &g.untracked {
            if !u.stored {
                ui::warn(format_args!(
                    "untracked file {} was over the size cap when recorded: not restored",
                    u.path
                ));
                continue;
            }
            let bytes = restore_bytes(
                store,
                &format!("untracked file {}", u.path),
                &guard.recorded_root.join(crate::model::path_of(&u.path)),
                u.hash,
                u.redacted_blob,
            )?;
            if let Some(bytes) = bytes {
                write_restored(&path.join(crate::model::path_of(&u.path)), &bytes)?;
            }
        }
        Ok(guard)
    }

    /// Configs from their stored bytes; inputs the worktree lacks (data is rarely in git)
    /// linked to where they were read from.
    pub(super) fn restore_inputs_and_configs(
        &self,
        store: &Store,
        r: &RunRecord,
        cwd: &Path,
    ) -> Result<()> {
        for e in &r.edges {
            let abs = crate::model::path_of(&e.abs_path);
            let target = self.map(&cwd.join(crate::model::path_of(&e.path)), &abs);
            match e.role {
                Role::Config => {
                    let Some(recorded) = e.artifact.as_ref().map(|a| a.hash) else {
                        continue;
                    };
                    let bytes = restore_bytes(
                        store,
                        &format!("config {}", e.path),
                        &abs,
                        recorded,
                        r.capture.config_redacted.get(&e.path).copied(),
                    )?;
                    if let Some(bytes) = bytes {
                        write_restored(&target, &bytes)?;
                    }
                }
                Role::Input if !target.exists() => {
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::os::unix::fs::symlink(&abs, &target)
                        .with_context(|| format!("linking input {} into the worktree", e.path))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// An absolute path recorded inside the repository maps into the worktree.
    fn map(&self, relative_to_cwd: &Path, abs: &Path) -> PathBuf {
        if abs.is_absolute()
            && let Ok(rel) = abs.strip_prefix(&self.recorded_root)
            && !relative_to_cwd.starts_with(&self.path)
        {
            return self.path.join(rel);
        }
        relative_to_cwd.to_path_buf()
    }

    /// Keep the worktree and return its path, or let it be removed.
    pub(super) fn finish(mut self, keep: bool) -> Option<String> {
        self.keep = keep;
        keep.then(|| self.path.display().to_string())
    }
}
