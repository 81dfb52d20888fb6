//! `rerun --worktree`: a temporary git worktree at the recorded commit, with the recorded
//! uncommitted changes applied and the recorded untracked files and configs restored from
//! the store, removed on every path out unless `--keep-worktree` keeps it.
//!
//! A record is untrusted (it may come from a bundle or a team store), so nothing it names is
//! written outside the worktree's private directory:
//!
//! - The worktree lives in a fresh directory only the user can enter (`lineage-rerun-*` in
//!   the temporary directory, 0700). When recorded paths lead out of the repository
//!   (`-i ../data/x.csv`), the worktree sits as deep in that directory as the repository sat
//!   in the tree those paths share, so that the job's relative paths land inside it too.
//! - Untracked files are restored only at relative paths without `..`; anything else is
//!   refused. Every directory on the way is checked: a symbolic link that leaves the worktree
//!   is refused, and files are created anew (`O_EXCL | O_NOFOLLOW`; configs 0600).
//! - Configs and inputs inside the repository are restored into the worktree (configs from
//!   their stored bytes, checked against the recorded hash; inputs linked to where they were
//!   read). Those outside it are never written: a relative one is linked, inside the private
//!   directory, to the real file; an absolute one is read where it is. Either way the bytes
//!   the job will read are hashed and compared with the record (`Prepared::verify`).

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::model::{EdgeRecord, Hash, Role, RunRecord, path_of};
use crate::store::Store;
use crate::ui;

/// At most this many untracked files over the size cap are named one by one when a
/// worktree is made; the rest are counted.
const NOT_RESTORED_NAMED: usize = 10;

/// `p` absolute, with `.` and `..` resolved by name (as `cd -L` would); None when relative.
pub(super) fn normalize(p: &Path) -> Option<PathBuf> {
    if !p.is_absolute() {
        return None;
    }
    Some(crate::observe::clean(p))
}

/// A recorded path that must name a place inside a tree (an untracked file, relative to the
/// repository root): relative, not empty, no `..`. Err: why not.
fn inside_relative(p: &str) -> Result<PathBuf, &'static str> {
    let decoded = path_of(p);
    let path = decoded.as_path();
    if p.is_empty() || p.contains('\0') {
        return Err("empty or holding a NUL");
    }
    if path.is_absolute() {
        return Err("absolute");
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            // Git's own: restoring there would make the worktree another repository's.
            Component::Normal(n) if n.eq_ignore_ascii_case(".git") => {
                return Err("it is inside .git");
            }
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return Err("it leads out with `..`"),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("empty or holding a NUL");
    }
    Ok(out)
}

/// Whether a link in the directory `dir` (resolved) holding `target` leads inside `root`
/// (resolved): relative, `..` only at its start (after a name, `..` would go wherever a link
/// of that name leads), never above `root`.
fn link_stays_inside(root: &Path, dir: &Path, target: &Path) -> bool {
    if target.as_os_str().is_empty() || target.is_absolute() {
        return false;
    }
    let mut at = dir.to_path_buf();
    let mut named = false;
    for c in target.components() {
        match c {
            Component::Normal(n) => {
                named = true;
                at.push(n);
            }
            Component::CurDir => {}
            Component::ParentDir if !named && at.pop() => {}
            _ => return false,
        }
    }
    at.starts_with(root)
}

/// Where a rerun in a worktree finds what a recorded path named.
#[derive(Debug, PartialEq)]
pub(super) enum Place {
    /// Absolute as given: the job reads it where it is; never written.
    Absolute(PathBuf),
    /// Relative, and inside the repository: restored into the worktree at this path
    /// (relative to the repository root).
    Repository(PathBuf),
    /// Relative, leading out of the repository: linked, inside the private directory where
    /// the job will look (`at`, where the path leads from the job's cwd), to the real path
    /// (`real`, where it led from the recorded cwd); never written.
    Outside { at: PathBuf, real: PathBuf },
}

/// The layout of a rerun's private directory: the recorded repository root, and the directory
/// (`base`) that holds the repository and every relative path the runs named (the run and,
/// with `--upstream`, every step before it), which the private directory stands for.
struct Layout {
    root: PathBuf,
    base: PathBuf,
}

/// Where one run was: its cwd inside the repository (the root when it was outside), and the
/// real cwd, to find the files its relative paths named.
struct Cwds {
    cwd: PathBuf,
    real_cwd: PathBuf,
}

impl Cwds {
    fn of(r: &RunRecord, root: &Path) -> Result<Cwds> {
        let real_cwd = normalize(&PathBuf::from(OsString::from_vec(r.cwd.clone())))
            .context("the recorded working directory is not absolute")?;
        let cwd = if real_cwd.starts_with(root) {
            real_cwd.clone()
        } else {
            root.to_path_buf()
        };
        Ok(Cwds { cwd, real_cwd })
    }
}

impl Layout {
    fn of(runs: &[&RunRecord], root: &str) -> Result<Layout> {
        let root = normalize(Path::new(root))
            .filter(|r| r.parent().is_some())
            .with_context(|| {
                format!("the recorded repository root {root:?} is not an absolute path below /")
            })?;
        // The deepest directory holding the repository and every relative path (outputs
        // too: the jobs write them), less one level, so the worktree has a name of its own.
        let mut base = root.parent().unwrap_or(Path::new("/")).to_path_buf();
        for r in runs {
            let cwds = Cwds::of(r, &root)?;
            for e in &r.edges {
                if let Some(target) = relative_target(&cwds.cwd, &e.path) {
                    while !target.starts_with(&base) || target == base {
                        if !base.pop() {
                            break;
                        }
                    }
                }
            }
        }
        Ok(Layout { root, base })
    }

    fn cwds(&self, r: &RunRecord) -> Result<Cwds> {
        Cwds::of(r, &self.root)
    }

    fn place(&self, c: &Cwds, path: &str) -> Place {
        let p = path_of(path);
        if p.is_absolute() {
            return Place::Absolute(normalize(&p).unwrap_or_default());
        }
        let target = relative_target(&c.cwd, path).unwrap_or_default();
        match target.strip_prefix(&self.root) {
            Ok(rel) => Place::Repository(rel.to_path_buf()),
            Err(_) => Place::Outside {
                at: target.clone(),
                real: relative_target(&c.real_cwd, path).unwrap_or_default(),
            },
        }
    }

    /// Where `abs` (under `base`) is in the private directory `private`.
    fn mirror(&self, private: &Path, abs: &Path) -> PathBuf {
        private.join(abs.strip_prefix(&self.base).unwrap_or(abs))
    }
}

/// Whether run `r` also declares `path` (or a directory around it, or one inside it) as an
/// output.
fn also_written(r: &RunRecord, path: &str) -> bool {
    let inside = |a: &str, b: &str| a.strip_prefix(b).is_some_and(|rest| rest.starts_with('/'));
    r.edges
        .iter()
        .filter(|o| o.role == Role::Output)
        .any(|o| o.path == path || inside(path, &o.path) || inside(&o.path, path))
}

/// A relative recorded path, resolved by name against `cwd`; None when absolute.
fn relative_target(cwd: &Path, path: &str) -> Option<PathBuf> {
    let p = path_of(path);
    if p.is_absolute() {
        return None;
    }
    normalize(&cwd.join(p))
}

/// Whether `--worktree` restores this config into the worktree from its stored bytes (a
/// relative path inside the repository, not through a link leading out of it): the plan
/// counts it as the recorded one.
pub(super) fn restores_config(r: &RunRecord, e: &EdgeRecord) -> bool {
    let Some(g) = &r.capture.git else {
        return false;
    };
    // (A link in the repository leading out of it is taken to be in the checkout too.)
    let Ok(l) = Layout::of(&[r], &g.root) else {
        return false;
    };
    let Ok(cwds) = l.cwds(r) else {
        return false;
    };
    e.role == Role::Config
        && match l.place(&cwds, &e.path) {
            Place::Repository(rel) => escaping_link(&l.root, &rel).is_none(),
            _ => false,
        }
}

/// The directory that will hold `rel` under `root`: each directory on the way made (0700)
/// when missing, refused when it is not a directory or a symbolic link that leaves `root`.
/// Returns the full path of `rel` (which itself is not touched).
fn confined(root: &Path, rel: &Path) -> Result<PathBuf> {
    let real_root = std::fs::canonicalize(root)?;
    let parts: Vec<_> = rel.components().collect();
    let Some((last, dirs)) = parts.split_last() else {
        bail!("an empty path");
    };
    let mut at = root.to_path_buf();
    for c in dirs {
        let Component::Normal(name) = c else {
            bail!("{} is not a plain relative path", rel.display());
        };
        at.push(name);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                let real = std::fs::canonicalize(&at)
                    .with_context(|| format!("resolving {}", at.display()))?;
                if !real.starts_with(&real_root) || !real.is_dir() {
                    bail!(
                        "{} is a symbolic link leading out of the worktree: nothing is restored \
                         through it",
                        at.display()
                    );
                }
            }
            Ok(_) => bail!("{} is not a directory", at.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&at)
                .with_context(|| format!("creating {}", at.display()))?,
            Err(e) => return Err(e).with_context(|| format!("reading {}", at.display())),
        }
    }
    let Component::Normal(name) = last else {
        bail!("{} is not a plain relative path", rel.display());
    };
    Ok(at.join(name))
}

/// The first directory on the way to `rel` under `root` that is a symbolic link leading out
/// of `root`, if any (nothing is created).
fn escaping_link(root: &Path, rel: &Path) -> Option<PathBuf> {
    let real_root = std::fs::canonicalize(root).ok()?;
    let mut at = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in parts.split_last()?.1 {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                if !std::fs::canonicalize(&at).is_ok_and(|real| real.starts_with(&real_root)) {
                    return Some(at);
                }
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Write `bytes` at `rel` under `root`, confined (see [`confined`]): what is there (a file or
/// a link of the checkout) is replaced by a new file, created with `O_EXCL | O_NOFOLLOW`.
fn write_confined(root: &Path, rel: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let target = confined(root, rel)?;
    match std::fs::symlink_metadata(&target) {
        Ok(m) if m.is_dir() => bail!("{} is a directory", target.display()),
        Ok(_) => std::fs::remove_file(&target)?,
        Err(_) => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&target)
        .with_context(|| format!("restoring {}", target.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("restoring {}", target.display()))
}

/// Copy `to` (a file, or a directory's files) to `rel` under `root` (confined), unless
/// something is there already: for an input the step also writes, which a link would let it
/// write through to the real file.
fn copy_confined(root: &Path, rel: &Path, to: &Path) -> Result<()> {
    let target = confined(root, rel)?;
    if std::fs::symlink_metadata(&target).is_ok() {
        return Ok(());
    }
    let meta = std::fs::metadata(to).with_context(|| format!("reading {}", to.display()))?;
    if !meta.is_dir() {
        let bytes = std::fs::read(to).with_context(|| format!("reading {}", to.display()))?;
        return write_confined(
            root,
            rel,
            &bytes,
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        );
    }
    std::fs::create_dir(&target).with_context(|| format!("making {}", target.display()))?;
    for entry in std::fs::read_dir(to).with_context(|| format!("reading {}", to.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        // Links inside are not followed (they would lead anywhere): files and directories only.
        if kind.is_dir() || kind.is_file() {
            copy_confined(root, &rel.join(entry.file_name()), &entry.path())?;
        }
    }
    Ok(())
}

/// Link `rel` under `root` (confined) to `to`, unless something is there already.
fn link_confined(root: &Path, rel: &Path, to: &Path) -> Result<()> {
    let target = confined(root, rel)?;
    if std::fs::symlink_metadata(&target).is_ok() {
        return Ok(());
    }
    std::os::unix::fs::symlink(to, &target)
        .with_context(|| format!("linking {} to {}", target.display(), to.display()))
}

/// The bytes to restore for a recorded file: its stored blob (which must hash to `recorded`);
/// or, when it held secrets (the store keeps `redacted`, a copy with them redacted), the real
/// file at `real` if it still has the recorded hash, else the redacted copy, with a warning.
fn restore_bytes(
    store: &Store,
    what: &str,
    real: Option<&Path>,
    recorded: Hash,
    redacted: Option<Hash>,
) -> Result<Option<Vec<u8>>> {
    let Some(blob) = redacted else {
        let bytes = store.blob(&recorded)?;
        if let Some(b) = &bytes
            && Hash::of(b) != recorded
        {
            bail!("the stored bytes of {what} do not have its recorded hash: not restored");
        }
        return Ok(bytes);
    };
    match real.map(std::fs::read) {
        Some(Ok(bytes)) if Hash::of(&bytes) == recorded => Ok(Some(bytes)),
        _ => {
            ui::warn(format_args!(
                "{what} held secrets and has changed since: restored with them redacted"
            ));
            store.blob(&blob)
        }
    }
}

/// A run recorded by `rerun --worktree` ran in a temporary worktree, removed since (kept,
/// with `--keep-worktree`, it is rerun where it is): it is rerun as the run it reproduced
/// was, in that run's repository, its cwd and paths mapped back from the worktree. Returns
/// the record to rerun, and the repository it was mapped back to when it was.
pub(super) fn as_original(store: &Store, r: RunRecord) -> Result<(RunRecord, Option<String>)> {
    as_original_within(store, r, 0)
}

fn as_original_within(
    store: &Store,
    mut r: RunRecord,
    depth: usize,
) -> Result<(RunRecord, Option<String>)> {
    let Some(original_id) = r.rerun_of.clone() else {
        return Ok((r, None));
    };
    let cwd = PathBuf::from(OsString::from_vec(r.cwd.clone()));
    let Some(g) = &r.capture.git else {
        return Ok((r, None));
    };
    let root = PathBuf::from(&g.root);
    let in_temporary_worktree = root.ancestors().any(|a| {
        a.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("lineage-rerun-"))
    });
    if !in_temporary_worktree || cwd.exists() || depth > 64 {
        return Ok((r, None));
    }
    let Some(original) = store.load_runs(&[original_id.as_str()])?.pop() else {
        return Ok((r, None));
    };
    let (original, _) = as_original_within(store, original, depth + 1)?;
    let Some(og) = &original.capture.git else {
        return Ok((r, None));
    };
    let original_root = PathBuf::from(&og.root);
    let mapped_cwd = match cwd.strip_prefix(&root) {
        Ok(rel) if rel.as_os_str().is_empty() => original_root.clone(),
        Ok(rel) => original_root.join(rel),
        Err(_) => PathBuf::from(OsString::from_vec(original.cwd.clone())),
    };
    use std::os::unix::ffi::OsStrExt;
    r.cwd = mapped_cwd.as_os_str().as_bytes().to_vec();
    for e in &mut r.edges {
        let p = path_of(&e.path);
        if p.is_relative() {
            let abs = normalize(&mapped_cwd.join(p)).unwrap_or_default();
            e.abs_path = crate::model::path_text(abs.as_os_str().as_bytes());
        }
    }
    let shown = og.root.clone();
    if let Some(g) = &mut r.capture.git {
        g.root = og.root.clone();
    }
    Ok((r, Some(shown)))
}

/// A temporary git worktree at the recorded commit, with the recorded changes applied, in a
/// private directory of its own. With `--upstream` one worktree holds every step: each runs
/// in it with its own recorded code, and reads what the steps before it wrote there.
pub(super) struct Worktree {
    /// The private directory (0700) holding the worktree and whatever relative paths that
    /// lead out of the repository were linked; removed on every path out.
    private: PathBuf,
    /// The worktree.
    path: PathBuf,
    name: String,
    layout: Layout,
    /// The code (`GitState::code`) checked out in it now.
    code: std::cell::Cell<Hash>,
    /// Kept on purpose (--keep-worktree); otherwise removed when dropped, on every path out.
    keep: bool,
}

impl Drop for Worktree {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.private);
        if let Ok(repo) = git2::Repository::open(&self.layout.root) {
            if let Ok(wt) = repo.find_worktree(&self.name) {
                let mut opts = git2::WorktreePruneOptions::new();
                opts.valid(true).working_tree(true);
                let _ = wt.prune(Some(&mut opts));
            }
            if let Ok(mut b) = repo.find_branch(&self.name, git2::BranchType::Local) {
                let _ = b.delete();
            }
        }
    }
}

/// The recorded untracked files' paths, each a relative path inside the repository; a record
/// naming one outside it is refused.
fn untracked_paths(g: &crate::model::GitState) -> Result<Vec<PathBuf>> {
    g.untracked
        .iter()
        .map(|u| {
            inside_relative(&u.path).map_err(|why| {
                anyhow::anyhow!(
                    "the record names untracked file {:?}, which is not a path inside the \
                     repository ({why}): refusing to restore it",
                    u.path
                )
            })
        })
        .collect()
}

/// A run's recorded repository state, or why `--worktree` cannot use it.
fn git_state(r: &RunRecord) -> Result<(&crate::model::GitState, &str)> {
    let g = r
        .capture
        .git
        .as_ref()
        .context("the run was not recorded in a git repository: --worktree needs one")?;
    let commit = g
        .commit
        .as_deref()
        .context("the run has no recorded commit")?;
    Ok((g, commit))
}

impl Worktree {
    /// One worktree for `runs` (the steps in the order they will run, `(record, short id)`),
    /// all recorded in the same repository; the first one's code is checked out.
    pub(super) fn create(store: &Store, runs: &[(&RunRecord, &str)]) -> Result<Worktree> {
        let Some(&(first, _)) = runs.first() else {
            bail!("no run to rerun in a worktree");
        };
        let (g, _) = git_state(first)?;
        let records: Vec<&RunRecord> = runs.iter().map(|(r, _)| *r).collect();
        let layout = Layout::of(&records, &g.root)?;
        for (r, short) in runs {
            let (other, _) =
                git_state(r).with_context(|| format!("run {short} cannot be rerun there"))?;
            // Refuse a record naming untracked files outside the tree before anything is made.
            untracked_paths(other)?;
            if normalize(Path::new(&other.root)).as_deref() != Some(layout.root.as_path()) {
                bail!(
                    "run {short} was recorded in another repository ({}) than {}: one worktree \
                     holds every step of a rerun; rerun {short} first, or without --worktree",
                    other.root,
                    layout.root.display()
                );
            }
        }
        let repo = git2::Repository::open(&layout.root)
            .with_context(|| format!("opening the repository {}", g.root))?;
        let private = tempfile::Builder::new()
            .prefix("lineage-rerun-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .context("creating a private temporary directory")?
            .keep();
        let name = private
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("lineage-rerun-{}", std::process::id()));
        let path = layout.mirror(&private, &layout.root);
        // From here on, the guard removes the directory, the worktree and its branch on any
        // error.
        let guard = Worktree {
            private: private.clone(),
            path: path.clone(),
            name: name.clone(),
            layout,
            code: std::cell::Cell::new(g.code),
            keep: false,
        };
        let (_, commit) = git_state(first)?;
        let oid = git2::Oid::from_str(commit)?;
        let commit_obj = repo
            .find_commit(oid)
            .with_context(|| format!("commit {commit} is not in {}", g.root))?;
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
        // git2 adds worktrees on a branch: make a temporary one, then detach the worktree's
        // HEAD at the commit and delete the branch, so none is ever left behind.
        let mut branch = repo.branch(&name, &commit_obj, false)?;
        let mut opts = git2::WorktreeAddOptions::new();
        let reference = repo.find_reference(&format!("refs/heads/{name}"))?;
        opts.reference(Some(&reference));
        repo.worktree(&name, &path, Some(&opts))?;
        let wt = git2::Repository::open(&path)?;
        wt.set_head_detached(oid)?;
        branch.delete()?;
        guard.apply_changes(store, &wt, first)?;
        Ok(guard)
    }

    /// The recorded uncommitted changes and untracked files of `r`, on the checked-out
    /// commit.
    fn apply_changes(&self, store: &Store, wt: &git2::Repository, r: &RunRecord) -> Result<()> {
        let (g, _) = git_state(r)?;
        let untracked = untracked_paths(g)?;
        if let Some(patch) = g.patch {
            // A patch that held secrets is stored redacted: applied as it is stored.
            if g.patch_redacted.is_some() {
                ui::warn(
                    "the recorded uncommitted changes held secrets: applied with them redacted",
                );
            }
            let bytes = store
                .blob(&g.patch_redacted.unwrap_or(patch))?
                .context("the recorded patch is not in the store")?;
            let diff = git2::Diff::from_buffer(&bytes)?;
            // libgit2 reads a link's old content in the working directory through the link
            // (the file it points to, not the path it holds), so a change of where a tracked
            // link points never applied there. Applied to the index, whose entries hold what
            // git holds, then checked out for the paths it touches (staged: `git diff HEAD`,
            // what the record holds, is the same).
            wt.apply(&diff, git2::ApplyLocation::Index, None)
                .context("applying the recorded uncommitted changes")?;
            let mut checkout = git2::build::CheckoutBuilder::new();
            checkout.force();
            for d in diff.deltas() {
                for p in [d.old_file().path(), d.new_file().path()]
                    .into_iter()
                    .flatten()
                {
                    checkout.path(p);
                }
            }
            wt.checkout_index(None, Some(&mut checkout))
                .context("writing the recorded uncommitted changes")?;
        }
        let mut not_kept = 0usize;
        for (u, rel) in g.untracked.iter().zip(&untracked) {
            if !u.stored {
                not_kept += 1;
                if not_kept <= NOT_RESTORED_NAMED {
                    ui::warn(format_args!(
                        "untracked file {} was over the size cap when recorded: not restored",
                        u.path
                    ));
                }
                continue;
            }
            if u.link {
                self.restore_link(store, u, rel)?;
                continue;
            }
            let bytes = restore_bytes(
                store,
                &format!("untracked file {}", u.path),
                Some(&self.layout.root.join(rel)),
                u.hash,
                u.redacted_blob,
            )?;
            if let Some(bytes) = bytes {
                let mode = if u.redacted_blob.is_some() {
                    0o600
                } else {
                    0o644
                };
                write_confined(&self.path, rel, &bytes, mode)
                    .with_context(|| format!("restoring untracked file {}", u.path))?;
            }
        }
        if not_kept > NOT_RESTORED_NAMED {
            ui::warn(format_args!(
                "{} more untracked files were over the size cap when recorded: not restored",
                not_kept - NOT_RESTORED_NAMED
            ));
        }
        if let Some(rest) = g.untracked_rest {
            ui::warn(format_args!(
                "{} untracked files past the first {} were recorded as one hash, not kept: not restored",
                rest.files,
                g.untracked.len()
            ));
        }
        self.code.set(g.code);
        Ok(())
    }

    /// Restore a recorded untracked symbolic link at `rel`, when the path it holds (its
    /// recorded bytes) is relative and, read from its directory, stays inside the worktree;
    /// otherwise say that it is not restored.
    fn restore_link(
        &self,
        store: &Store,
        u: &crate::model::UntrackedFile,
        rel: &Path,
    ) -> Result<()> {
        let what = format!("untracked link {}", u.path);
        let Some(bytes) = restore_bytes(store, &what, None, u.hash, u.redacted_blob)? else {
            return Ok(());
        };
        let target = PathBuf::from(std::ffi::OsString::from_vec(bytes));
        let at = confined(&self.path, rel)?;
        let inside = match (
            std::fs::canonicalize(&self.path),
            at.parent().map(std::fs::canonicalize),
        ) {
            (Ok(root), Some(Ok(dir))) => link_stays_inside(&root, &dir, &target),
            _ => false,
        };
        if u.redacted_blob.is_some() {
            ui::warn(format_args!(
                "{what} held a secret when recorded (redacted in the store): not restored"
            ));
            return Ok(());
        }
        if !inside {
            ui::warn(format_args!(
                "{what} leads out of the worktree (to {}): not restored",
                target.display()
            ));
            return Ok(());
        }
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => bail!("{} is a directory", at.display()),
            Ok(_) => std::fs::remove_file(&at)?,
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&target, &at).with_context(|| format!("restoring {what}"))
    }

    /// Make the worktree ready for `r`: its recorded code (when a step before it had other
    /// code: tracked files reset to its commit, its changes and untracked files applied; what
    /// the steps before wrote stays), then its inputs and configs.
    pub(super) fn prepare(&self, store: &Store, r: &RunRecord) -> Result<()> {
        let (g, commit) = git_state(r)?;
        if g.code != self.code.get() {
            let wt = git2::Repository::open(&self.path)?;
            let oid = git2::Oid::from_str(commit)?;
            let target = wt
                .find_commit(oid)
                .with_context(|| format!("commit {commit} is not in {}", g.root))?;
            wt.reset(target.as_object(), git2::ResetType::Hard, None)
                .with_context(|| format!("checking out commit {commit} in the worktree"))?;
            self.apply_changes(store, &wt, r)?;
        }
        self.restore_inputs_and_configs(store, r)
    }

    /// Where `r`'s job runs: its recorded cwd mapped into the worktree.
    pub(super) fn cwd(&self, r: &RunRecord) -> Result<PathBuf> {
        let cwds = self.layout.cwds(r)?;
        Ok(self.layout.mirror(&self.private, &cwds.cwd))
    }

    /// Configs inside the repository from their stored bytes; inputs the worktree lacks
    /// (data is rarely in git, or a step before wrote it here) linked to where they were
    /// read from; relative paths that lead out of the repository linked, in the private
    /// directory, to the real files.
    fn restore_inputs_and_configs(&self, store: &Store, r: &RunRecord) -> Result<()> {
        let cwds = self.layout.cwds(r)?;
        for e in r.edges.iter().filter(|e| e.role != Role::Output) {
            match self.layout.place(&cwds, &e.path) {
                Place::Absolute(_) => {}
                // The repository itself (`-i .`): the worktree is there.
                Place::Repository(rel) if rel.as_os_str().is_empty() => {}
                // Reached through a link of the checkout that leads out of the worktree:
                // never written; the job reads it there, compared with the record.
                Place::Repository(rel) if escaping_link(&self.path, &rel).is_some() => {
                    ui::warn(format_args!(
                        "{} {} is reached through a link leading out of the worktree: not \
                         restored; the job reads it where the link leads",
                        e.role.as_str(),
                        e.path
                    ));
                }
                Place::Repository(rel) if e.role == Role::Config => {
                    let Some(recorded) = e.artifact.as_ref().map(|a| a.hash) else {
                        continue;
                    };
                    let real = relative_target(&cwds.real_cwd, &e.path);
                    let bytes = restore_bytes(
                        store,
                        &format!("config {}", e.path),
                        real.as_deref(),
                        recorded,
                        r.capture.config_redacted.get(&e.path).copied(),
                    )?;
                    if let Some(bytes) = bytes {
                        write_confined(&self.path, &rel, &bytes, 0o600)
                            .with_context(|| format!("restoring config {}", e.path))?;
                    }
                }
                Place::Repository(rel) => {
                    if let Some(real) = relative_target(&cwds.real_cwd, &e.path) {
                        // What the step also writes is copied: through a link, the job
                        // would write the real file.
                        if also_written(r, &e.path) {
                            copy_confined(&self.path, &rel, &real).with_context(|| {
                                format!("copying input {} into the worktree", e.path)
                            })?;
                            // A tick of the filesystem's clock, so that the output's snapshot
                            // before launch tells the copy from what the job writes.
                            std::thread::sleep(std::time::Duration::from_millis(30));
                        } else {
                            link_confined(&self.path, &rel, &real).with_context(|| {
                                format!("linking input {} into the worktree", e.path)
                            })?;
                        }
                    }
                }
                Place::Outside { at, real } => {
                    let at = self.layout.mirror(&self.private, &at);
                    let rel = at.strip_prefix(&self.private).unwrap_or(&at).to_path_buf();
                    link_confined(&self.private, &rel, &real).with_context(|| {
                        format!("linking {} {} for the job", e.role.as_str(), e.path)
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Keep the worktree and return its path, or let it be removed.
    pub(super) fn finish(mut self, keep: bool) -> Option<String> {
        self.keep = keep;
        keep.then(|| self.path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_by_name() {
        let n = |p: &str| normalize(Path::new(p)).map(|p| p.display().to_string());
        assert_eq!(n("/a/b/../c/./d"), Some("/a/c/d".into()));
        assert_eq!(n("/../../x"), Some("/x".into()));
        assert_eq!(n("rel/x"), None);
    }

    /// Every relative path the job uses, followed from its cwd in the private directory,
    /// lands where the layout linked or restored it, inside the private directory.
    #[test]
    fn relative_paths_land_inside_the_private_directory_where_they_were_put() {
        let edge = |role, path: &str| EdgeRecord {
            role,
            path: path.into(),
            abs_path: String::new(),
            artifact: None,
            changed: false,
            written: None,
            observed: None,
        };
        let mut r = RunRecord::example("id", "x");
        r.cwd = b"/home/u/proj/sub".to_vec();
        r.edges = vec![
            edge(Role::Input, "../../data/x.csv"),
            edge(Role::Config, "cfg.yaml"),
            edge(Role::Config, "../conf/../c.yaml"),
            edge(Role::Input, "/abs/y"),
            edge(Role::Output, "../../../out.bin"),
        ];
        let l = Layout::of(&[&r], "/home/u/proj").expect("layout");
        let c = l.cwds(&r).expect("cwds");
        // ../../../out.bin is /home/out.bin: the private directory stands for /home.
        assert_eq!(l.base, Path::new("/home"));
        let private = Path::new("/tmp/lineage-rerun-x");
        let job_cwd = l.mirror(private, &c.cwd);
        assert_eq!(job_cwd, Path::new("/tmp/lineage-rerun-x/u/proj/sub"));
        assert_eq!(
            l.place(&c, "../../data/x.csv"),
            Place::Outside {
                at: "/home/u/data/x.csv".into(),
                real: "/home/u/data/x.csv".into()
            }
        );
        assert_eq!(
            l.place(&c, "cfg.yaml"),
            Place::Repository("sub/cfg.yaml".into())
        );
        assert_eq!(
            l.place(&c, "../conf/../c.yaml"),
            Place::Repository("c.yaml".into())
        );
        assert_eq!(l.place(&c, "/abs/y"), Place::Absolute("/abs/y".into()));
        for e in &r.edges {
            let seen = normalize(&job_cwd.join(&e.path)).expect("absolute");
            match l.place(&c, &e.path) {
                Place::Outside { at, .. } => assert_eq!(seen, l.mirror(private, &at)),
                Place::Repository(rel) => {
                    assert_eq!(seen, l.mirror(private, &l.root).join(rel));
                }
                Place::Absolute(_) => continue,
            }
            assert!(seen.starts_with(private), "{}", seen.display());
        }
        // A recorded cwd outside the repository runs at its root.
        let mut elsewhere = r.clone();
        elsewhere.cwd = b"/elsewhere".to_vec();
        let l = Layout::of(&[&elsewhere], "/home/u/proj").expect("layout");
        assert_eq!(
            l.cwds(&elsewhere).expect("cwds").cwd,
            Path::new("/home/u/proj")
        );
        assert!(Layout::of(&[&elsewhere], "relative/root").is_err());
        assert!(Layout::of(&[&elsewhere], "/").is_err());
        // One private directory for several steps holds every step's relative paths.
        let mut step = RunRecord::example("step", "x");
        step.cwd = b"/home/u/proj".to_vec();
        step.edges = vec![edge(Role::Input, "../../../../srv/raw.csv")];
        let l = Layout::of(&[&step, &r], "/home/u/proj").expect("layout");
        assert_eq!(l.base, Path::new("/"));
    }

    #[test]
    fn untracked_paths_must_stay_inside_the_tree() {
        assert_eq!(
            inside_relative("src/./a.py").expect("ok"),
            PathBuf::from("src/a.py")
        );
        for bad in [
            "/tmp/x",
            "../../../x",
            "a/../../x",
            "a/..",
            "",
            ".",
            "a\0b",
            ".git",
            "x/.GIT/hooks/y",
        ] {
            assert!(inside_relative(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nothing_is_created_through_a_link_that_leaves_the_root() {
        let root = tempfile::tempdir().expect("tmp");
        let outside = tempfile::tempdir().expect("tmp");
        std::os::unix::fs::symlink(outside.path(), root.path().join("out")).expect("link");
        std::fs::create_dir(root.path().join("real")).expect("dir");
        std::os::unix::fs::symlink("real", root.path().join("in")).expect("link");
        let err =
            write_confined(root.path(), Path::new("out/x"), b"x", 0o600).expect_err("refused");
        assert!(
            err.to_string().contains("leading out of the worktree"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(outside.path()).expect("ls").count(), 0);
        write_confined(root.path(), Path::new("in/x"), b"x", 0o600).expect("inside");
        assert_eq!(std::fs::read(root.path().join("real/x")).expect("x"), b"x");
        // A link at the file itself is replaced, never followed.
        std::os::unix::fs::symlink(outside.path().join("y"), root.path().join("y")).expect("link");
        write_confined(root.path(), Path::new("y"), b"y", 0o600).expect("replaced");
        assert!(!outside.path().join("y").exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.path().join("y"))
            .expect("y")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
