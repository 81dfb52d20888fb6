//! What differs now from a run's record, checked before it is run again: the code (commit,
//! uncommitted changes, untracked files), each input and config (by its bytes), the
//! environment (redacted values taken from the current one), the Python packages and the
//! GPUs. Also the plan printed before the rerun, and the differences that could explain
//! outputs that differ after it.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use anyhow::Result;
use nix::unistd::{AccessFlags, access};
use serde::Serialize;

use crate::capture::{git, gpu, software};
use crate::commands::target;
use crate::compare;
use crate::hash;
use crate::model::text::{escape, escape_bytes, terminal_command_line};
use crate::model::{EdgeRecord, GitState, Hash, Role, RunRecord, path_of, prefix};
use crate::store::Store;

/// A declared input or config, now against then.
#[derive(Serialize, Clone, Debug)]
pub struct PathCheck {
    /// `input` or `config`.
    pub role: Role,
    pub path: String,
    pub recorded: Option<Hash>,
    pub now: Option<Hash>,
    /// Short ids of the runs that produced the recorded bytes.
    pub produced_by: Vec<String>,
    /// A config the run depends on only for some keys (`-c params.yaml:train`): those keys,
    /// and which of them have another value now. Absent for a config taken whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<SelectedKeys>,
}

/// The keys of a config a run depends on, and those whose values differ now.
#[derive(Serialize, Clone, Debug)]
pub struct SelectedKeys {
    pub keys: Vec<String>,
    pub differ: Vec<String>,
}

impl PathCheck {
    /// Whether what the run depends on there differs now: the bytes (or they are gone); for
    /// a config it depends on only for some keys, those keys' values.
    pub fn differs(&self) -> bool {
        match &self.keys {
            Some(k) if self.now.is_some() => !k.differ.is_empty(),
            _ => self.recorded != self.now,
        }
    }

    /// The words for its state: `same as recorded`, `missing`, `differs from the record`,
    /// and for a config the run depends on for some keys, whether those changed.
    pub fn state(&self) -> String {
        match (&self.keys, self.recorded, self.now) {
            (_, a, b) if a == b => "same as recorded".into(),
            (_, _, None) => "missing".into(),
            (Some(k), ..) if k.differ.is_empty() => format!(
                "changed, but not {} (the keys this run depends on)",
                k.keys.join(", ")
            ),
            (Some(k), ..) => format!(
                "{} differ{}",
                k.differ.join(", "),
                if k.differ.len() == 1 { "s" } else { "" }
            ),
            _ => "differs from the record".into(),
        }
    }
}

/// For a config run `r` depends on only for some keys (`-c FILE:KEYS`), which of those keys
/// have another value in the file at `path` now than the run recorded. Keys the command line
/// or `-p` set over the config's are the run's own, not the file's: left out. A value stored
/// redacted cannot be compared: counted as differing when the file's bytes differ.
fn selected_keys(
    r: &RunRecord,
    e: &EdgeRecord,
    path: &Path,
    bytes_differ: bool,
) -> Option<SelectedKeys> {
    let keys = r.capture.config_keys.get(&e.path)?;
    let mut differ = Vec::new();
    if bytes_differ {
        let now: BTreeMap<String, serde_json::Value> = std::fs::read(path)
            .ok()
            .and_then(|b| crate::capture::config::parse(path, &b).ok())
            .unwrap_or_default();
        let recorded: BTreeMap<&str, &serde_json::Value> = r
            .params
            .iter()
            .filter(|p| p.source == e.path)
            .map(|p| (p.key.as_str(), &p.value))
            .collect();
        let overridden = |k: &str| r.params.iter().any(|p| p.key == k && p.source != e.path);
        let mut all: Vec<&str> = recorded.keys().copied().collect();
        all.extend(
            now.keys()
                .filter(|k| crate::capture::config::selected(k, keys))
                .map(String::as_str),
        );
        all.sort_unstable();
        all.dedup();
        for k in all {
            if overridden(k) {
                continue;
            }
            let then = recorded.get(k).copied();
            let redacted = then.is_some_and(|v| v.as_str() == Some(crate::redact::REDACTED));
            if redacted || then != now.get(k) {
                differ.push(k.to_string());
            }
        }
    }
    Some(SelectedKeys {
        keys: keys.clone(),
        differ,
    })
}

/// What paths and repositories hold now, each hashed or scanned at most once: `status`
/// checks many records against the same files (one run's output directory is the next
/// one's input; every stage sits in the same repository), and walked each 40,000-file
/// directory of a four-stage pipeline four times. For one look at one moment: whatever
/// runs between two looks needs a new one.
#[derive(Default)]
pub struct Current {
    hashing: hash::Hashing,
    /// (path, as an output) -> its hash now.
    paths: RefCell<HashMap<(PathBuf, bool), Option<Hash>>>,
    /// Working directory -> its repository, scanned.
    repos: RefCell<HashMap<PathBuf, std::rc::Rc<git::Scan>>>,
}

impl Current {
    /// The bytes at `path` as an input (links followed), or None where nothing readable is.
    pub fn input(&self, path: &Path, cache: &dyn hash::StatCache) -> Option<Hash> {
        self.hashed(path, false, || {
            self.hashing
                .hash_path(path, &mut hash::discard, Some(cache), None)
        })
    }

    /// The bytes at `path` as an output (links that leave it recorded as links).
    pub fn output(&self, path: &Path, cache: &dyn hash::StatCache) -> Option<Hash> {
        self.hashed(path, true, || {
            self.hashing
                .hash_output(path, &mut hash::discard, Some(cache))
        })
    }

    fn hashed(
        &self,
        path: &Path,
        output: bool,
        hash: impl FnOnce() -> std::io::Result<hash::Hashed>,
    ) -> Option<Hash> {
        let key = (path.to_path_buf(), output);
        if let Some(h) = self.paths.borrow().get(&key) {
            return *h;
        }
        let now = match hash::path_kind(path) {
            Ok(hash::PathKind::File | hash::PathKind::Dir) => hash().ok().map(|h| h.artifact.hash),
            _ => None,
        };
        self.paths.borrow_mut().insert(key, now);
        now
    }

    /// The repository at `cwd`, scanned once.
    fn repo(&self, cwd: &Path) -> std::rc::Rc<git::Scan> {
        if let Some(s) = self.repos.borrow().get(cwd) {
            return std::rc::Rc::clone(s);
        }
        let s = std::rc::Rc::new(git::scan(cwd));
        self.repos
            .borrow_mut()
            .insert(cwd.to_path_buf(), std::rc::Rc::clone(&s));
        s
    }
}

/// Everything compared before running.
#[derive(Serialize, Default, Clone)]
pub struct Checks {
    /// Code differences (empty when the code the job would see is the recorded code).
    pub code: Vec<String>,
    /// The code files (relative to the repository root, sorted) whose bytes differ from the
    /// recorded ones: the recorded commit with its uncommitted changes and untracked files,
    /// against HEAD and the working tree now; the run's declared paths are left out.
    pub code_files: Vec<String>,
    /// About the code, not differences in it (a new commit holding the same code files).
    pub code_notes: Vec<String>,
    /// Untracked files that appeared since the run (not blocking).
    pub new_untracked: Vec<String>,
    pub inputs: Vec<PathCheck>,
    pub configs: Vec<PathCheck>,
    /// Redacted variables taken from the current environment.
    pub env_from_current: Vec<String>,
    /// Redacted variables not set now: the job runs without them.
    pub env_missing: Vec<String>,
    pub packages: Vec<String>,
    pub system: Vec<String>,
}

/// The environment a rerun runs with.
pub type Env = Vec<(OsString, OsString)>;

/// What differs now from the record, and the environment to run with. With `worktree`,
/// configs count as the recorded ones (the worktree restores their stored bytes).
pub fn check(
    store: &Store,
    r: &RunRecord,
    worktree: bool,
    cache: &dyn hash::StatCache,
) -> Result<(Checks, Env)> {
    check_now(store, r, worktree, cache, &Current::default())
}

/// [`check`], with the paths and repositories as `now` has them (hashed once for all the
/// records checked with it).
pub fn check_now(
    store: &Store,
    r: &RunRecord,
    worktree: bool,
    cache: &dyn hash::StatCache,
    now: &Current,
) -> Result<(Checks, Env)> {
    let mut checks = Checks::default();
    if let Some(then) = &r.capture.git {
        code(store, r, then, now, &mut checks);
    }
    paths(store, r, cache, now, &mut checks)?;
    if worktree {
        // The configs the worktree restores from their stored bytes (those inside the
        // repository) count as the recorded ones; the others are read where they are.
        let restored = r
            .edges
            .iter()
            .filter(|e| e.role == Role::Config)
            .map(|e| super::worktree::restores_config(r, e));
        for (c, restored) in checks.configs.iter_mut().zip(restored) {
            if restored {
                c.now = c.recorded;
                // Its keys too: they were read from the file here, which the worktree's
                // restored copy replaces (a config changed by a later commit refused the
                // rerun as "same as recorded").
                if let Some(k) = c.keys.as_mut() {
                    k.differ.clear();
                }
            }
        }
    }
    let env = environment(r, &mut checks);
    if let Some(py) = &r.capture.software.python {
        checks.packages = packages(store, py);
    }
    checks.system = gpus(r);
    Ok((checks, env))
}

/// The code names shown in a line; `--json` lists them all (`code_files`).
const CODE_FILES_SHOWN: usize = 10;

/// The code now against the recorded code, as the job would see it: file by file, the
/// recorded commit with the recorded uncommitted changes and untracked files against HEAD and
/// the working tree now, the run's declared inputs, configs and outputs left out (they are
/// data, compared by their bytes). A new commit holding the same code files is a note, not a
/// difference. Untracked files that appeared since are reported, not counted as a difference
/// in the code used. Nothing is stored, so nothing needs redacting.
fn code(store: &Store, r: &RunRecord, then: &GitState, current: &Current, checks: &mut Checks) {
    let cwd = PathBuf::from(OsString::from_vec(r.cwd.clone()));
    let data: Vec<PathBuf> = r.edges.iter().map(|e| path_of(&e.abs_path)).collect();
    let now = current
        .repo(&cwd)
        .capture(git::Caps::default(), &data)
        .finish(Some(store));
    let Some(now) = now.state else {
        checks.code.push(format!(
            "the recorded repository is gone ({})",
            now.absent.unwrap_or_default()
        ));
        return;
    };
    if now.code == then.code {
        return;
    }
    // By path through maps: tens of thousands of untracked files made searches quadratic.
    let then_files: BTreeMap<&String, Hash> =
        then.untracked.iter().map(|u| (&u.path, u.hash)).collect();
    let now_files: BTreeMap<&String, Hash> =
        now.untracked.iter().map(|u| (&u.path, u.hash)).collect();
    let mut appeared: Vec<String> = now
        .untracked
        .iter()
        .filter(|n| !then_files.contains_key(&n.path))
        .map(|n| n.path.clone())
        .collect();
    appeared.sort();
    appeared.dedup();
    checks.new_untracked = appeared;
    let commits = if now.commit == then.commit {
        None
    } else {
        Some(format!(
            "commit was {}, now {}",
            short_commit(then.commit.as_deref()),
            short_commit(now.commit.as_deref())
        ))
    };
    let kept_untracked = then
        .untracked
        .iter()
        .all(|u| now_files.get(&u.path) == Some(&u.hash));
    // The untracked files past those listed were recorded as one hash: which of them
    // differs (or whether a file that appeared only moved the line) cannot be told, so a
    // difference there is said, not counted as a difference in the code used.
    match (then.untracked_rest, now.untracked_rest) {
        (Some(rest), other) if other != Some(rest) => checks.code_notes.push(format!(
            "except the {} untracked files past the first {}, recorded as one hash, which \
             differs now: not compared one by one, not counted as a difference",
            rest.files,
            then.untracked.len()
        )),
        (None, Some(rest)) => checks.code_notes.push(format!(
            "except the {} untracked files now past the first {} (the run had none past \
             them): not compared one by one, not counted as a difference",
            rest.files,
            now.untracked.len()
        )),
        _ => {}
    }
    if commits.is_none() && now.patch == then.patch && kept_untracked {
        // Only files that appeared since: reported, not a difference in the code used.
        return;
    }
    match code_files(store, r, then, &now) {
        Ok(found) => {
            if !found.declared.is_empty() {
                checks.code_notes.push(format!(
                    "data (declared by the run or written by a recorded run), compared as data, not as code: {}",
                    capped(&found.declared)
                ));
            }
            let (differ, unread) = opened_only(r, found.differ);
            if !unread.is_empty() {
                checks.code_notes.push(format!(
                    "except files the job never opened (observed), which differ: {}",
                    capped(&unread)
                ));
            }
            let found = CodeFiles { differ, ..found };
            if found.differ.is_empty() {
                if let Some(commits) = commits {
                    checks
                        .code_notes
                        .insert(0, format!("{commits}: no code file differs"));
                }
                return;
            }
            let n = found.differ.len();
            checks.code.push(format!(
                "{n} file{} from the recorded code: {}{}",
                if n == 1 { " differs" } else { "s differ" },
                capped(&found.differ),
                commits.map(|c| format!(" ({c})")).unwrap_or_default()
            ));
            checks.code_files = found.differ;
        }
        Err(why) => {
            // Not comparable file by file: the recorded state as a whole.
            checks
                .code_notes
                .push(format!("not compared file by file: {why}"));
            code_as_a_whole(then, &now, commits, checks);
        }
    }
}

/// `a, b, c, and 3 more`: the first [`CODE_FILES_SHOWN`] names, escaped when shown.
fn capped(names: &[String]) -> String {
    let mut shown: Vec<String> = names.iter().take(CODE_FILES_SHOWN).cloned().collect();
    if names.len() > CODE_FILES_SHOWN {
        shown.push(format!("and {} more", names.len() - CODE_FILES_SHOWN));
    }
    shown.join(", ")
}

/// What differs when the code cannot be compared file by file (no recorded commit, the
/// commit or the patch no longer at hand): the commit, the uncommitted changes, and the
/// recorded untracked files.
fn code_as_a_whole(then: &GitState, now: &GitState, commits: Option<String>, checks: &mut Checks) {
    if let Some(commits) = commits {
        checks.code.push(commits);
    }
    if now.patch != then.patch {
        let mut files: Vec<String> = then
            .changed_files
            .iter()
            .chain(&now.changed_files)
            .cloned()
            .collect();
        files.sort();
        files.dedup();
        checks
            .code
            .push(format!("uncommitted changes differ ({})", files.join(", ")));
    }
    // Recorded untracked files are code the job may have used: one that changed or went
    // missing blocks; a file that appeared since is only reported.
    let now_files: BTreeMap<_, _> = now.untracked.iter().map(|u| (&u.path, u.hash)).collect();
    for u in &then.untracked {
        match now_files.get(&u.path) {
            None => checks
                .code
                .push(format!("untracked file {} is gone", u.path)),
            Some(h) if *h != u.hash => checks
                .code
                .push(format!("untracked file {} changed", u.path)),
            _ => {}
        }
    }
}

/// The code files that differ, and the declared paths that would have (left out).
#[derive(Default)]
struct CodeFiles {
    differ: Vec<String>,
    declared: Vec<String>,
}

/// The code as the job would see it, then and now, file by file. Both sides are taken as
/// changes from the recorded commit, printed as the capture prints the recorded patch
/// (`git diff` of the commit against the working tree and index): the recorded patch, cut
/// at each file, against the tree now diffed from that same commit, so that a file is the
/// same exactly when its changes from the commit are. Recorded untracked files are compared
/// by their hashes with the file at their path now, tracked since or not. Err: why this
/// cannot be done (no recorded commit, or it or the recorded patch is not at hand).
fn code_files(
    store: &Store,
    r: &RunRecord,
    then: &GitState,
    now: &GitState,
) -> Result<CodeFiles, String> {
    let commit = then.commit.as_deref().ok_or("no commit was recorded")?;
    let repo = git2::Repository::open(&now.root).map_err(|e| e.message().to_string())?;
    let tree = git2::Oid::from_str(commit)
        .and_then(|oid| repo.find_commit(oid))
        .and_then(|c| c.tree())
        .map_err(|_| {
            format!(
                "the recorded commit {} is not in the repository now",
                short_commit(Some(commit))
            )
        })?;
    let recorded_patch = match then.patch {
        None => Vec::new(),
        Some(p) => store
            .blob(&then.patch_redacted.unwrap_or(p))
            .ok()
            .flatten()
            .ok_or("the recorded uncommitted changes are not in the store")?,
    };
    let mut recorded = split_patch(&recorded_patch, &then.changed_files)
        .ok_or("the recorded uncommitted changes could not be read file by file")?;
    let root = Path::new(&now.root);
    let declared_paths = declared(store, r, root);
    // Declared by this run, or written by any recorded run (a step before it, which
    // `--upstream` makes again): data, not code.
    let is_declared = |p: &str| {
        declared_paths.iter().any(|d| Path::new(p).starts_with(d))
            || store
                .declared_output_at(&crate::model::path_text(
                    std::os::unix::ffi::OsStrExt::as_bytes(root.join(path_of(p)).as_os_str()),
                ))
                .unwrap_or(false)
    };
    let mut out = CodeFiles::default();
    // Recorded untracked files: by their hashes, with the file at their path now.
    let now_untracked: BTreeMap<&String, Hash> =
        now.untracked.iter().map(|u| (&u.path, u.hash)).collect();
    let mut handled = std::collections::BTreeSet::new();
    for u in &then.untracked {
        handled.insert(u.path.as_str());
        let same = match now_untracked.get(&u.path) {
            Some(h) => *h == u.hash,
            None if u.link => std::fs::read_link(root.join(path_of(&u.path))).is_ok_and(|t| {
                Hash::of(std::os::unix::ffi::OsStrExt::as_bytes(t.as_os_str())) == u.hash
            }),
            None => hash::hash_file(&root.join(path_of(&u.path))).is_ok_and(|(h, _)| h == u.hash),
        };
        if !same {
            if is_declared(&u.path) {
                out.declared.push(u.path.clone());
            } else {
                out.differ.push(u.path.clone());
            }
        }
    }
    let mut opts = git2::DiffOptions::new();
    opts.show_binary(true).ignore_submodules(true);
    let diff = repo
        .diff_tree_to_workdir_with_index(Some(&tree), Some(&mut opts))
        .map_err(|e| format!("git diff failed: {}", e.message()))?;
    for (i, delta) in diff.deltas().enumerate() {
        let Some(path) = delta
            .new_file()
            .path()
            .or_else(|| delta.old_file().path())
            .map(|p| p.display().to_string())
        else {
            continue;
        };
        if handled.contains(path.as_str()) {
            recorded.remove(&path);
            continue;
        }
        let same = match recorded.remove(&path) {
            // Changed from the commit now, not then.
            None => false,
            Some(then_changes) => {
                let mut now_changes = Vec::new();
                if let Ok(Some(mut patch)) = git2::Patch::from_diff(&diff, i) {
                    let _ = patch.print(&mut |_, _, line| {
                        if matches!(line.origin(), '+' | '-' | ' ') {
                            now_changes.push(line.origin() as u8);
                        }
                        now_changes.extend_from_slice(line.content());
                        true
                    });
                }
                without_index_lines(then_changes) == without_index_lines(&now_changes)
            }
        };
        if !same {
            if is_declared(&path) {
                out.declared.push(path);
            } else {
                out.differ.push(path);
            }
        }
    }
    // Changed from the commit then, as it is in the commit now.
    for path in recorded.into_keys() {
        if handled.contains(path.as_str()) {
            continue;
        }
        if is_declared(&path) {
            out.declared.push(path);
        } else {
            out.differ.push(path);
        }
    }
    for v in [&mut out.differ, &mut out.declared] {
        v.sort();
        v.dedup();
    }
    Ok(out)
}

/// The run's declared paths (inputs, configs, outputs) inside the repository at `root`,
/// relative to it; the root itself is left out (`-i .` does not make all of it data).
fn declared(store: &Store, r: &RunRecord, root: &Path) -> Vec<PathBuf> {
    let real_root = std::fs::canonicalize(root).ok();
    r.edges
        .iter()
        .filter(|e| !kept_code(store, r, e))
        .filter_map(|e| {
            let abs = path_of(&e.abs_path);
            let by_name = super::worktree::normalize(&abs)
                .and_then(|a| a.strip_prefix(root).ok().map(Path::to_path_buf));
            by_name
                .or_else(|| {
                    let real = std::fs::canonicalize(&abs).ok()?;
                    Some(real.strip_prefix(real_root.as_ref()?).ok()?.to_path_buf())
                })
                .filter(|rel| !rel.as_os_str().is_empty())
        })
        .collect()
}

/// The code files that differ, split by whether the job opened them, when it was observed:
/// a file it never opened (a README, another stage's script) is no difference in the code
/// it used. Unobserved: every file counts.
fn opened_only(r: &RunRecord, differ: Vec<String>) -> (Vec<String>, Vec<String>) {
    let Some(o) = r.capture.observed.as_ref().filter(|o| o.off.is_none()) else {
        return (differ, Vec::new());
    };
    let root = r.capture.git.as_ref().map(|g| PathBuf::from(&g.root));
    // Untracked files the job read are input edges (kept with the code too).
    let inputs: Vec<PathBuf> = r
        .edges
        .iter()
        .filter(|e| e.role != Role::Output)
        .filter_map(|e| {
            let abs = path_of(&e.abs_path);
            Some(abs.strip_prefix(root.as_ref()?).ok()?.to_path_buf())
        })
        .collect();
    differ.into_iter().partition(|f| {
        o.code_read.iter().any(|c| c == f) || inputs.iter().any(|i| Path::new(f).starts_with(i))
    })
}

/// An input only observed (not declared) that is one of the untracked files the record
/// kept with its code (a helper script the job ran): compared and restored as code, like the
/// rest of the recorded tree, not as data. A file some recorded run wrote (a step before it)
/// is data, whatever git thought of it.
fn kept_code(store: &Store, r: &RunRecord, e: &EdgeRecord) -> bool {
    let Some(g) = &r.capture.git else {
        return false;
    };
    e.role == Role::Input
        && e.observed == Some(crate::model::Seen::Undeclared)
        && path_of(&e.abs_path)
            .strip_prefix(&g.root)
            .is_ok_and(|rel| g.untracked.iter().any(|u| Path::new(&u.path) == rel))
        && !store.declared_output_at(&e.abs_path).unwrap_or(false)
}

/// A patch as the capture prints it, cut at each file (`diff --git` starts a line only
/// there: every other line starts with its origin, a hunk header or base85), named by the
/// recorded changed files, in order. None when they do not match.
fn split_patch<'a>(patch: &'a [u8], files: &[String]) -> Option<BTreeMap<String, &'a [u8]>> {
    const HEADER: &[u8] = b"diff --git ";
    let starts: Vec<usize> = (0..patch.len())
        .filter(|&i| (i == 0 || patch[i - 1] == b'\n') && patch[i..].starts_with(HEADER))
        .collect();
    if starts.len() != files.len() || starts.first().is_some_and(|&s| s != 0) {
        return None;
    }
    if patch.is_empty() != files.is_empty() {
        return None;
    }
    let ends = starts
        .iter()
        .skip(1)
        .copied()
        .chain(std::iter::once(patch.len()));
    Some(
        files
            .iter()
            .cloned()
            .zip(starts.iter().zip(ends).map(|(&a, b)| &patch[a..b]))
            .collect(),
    )
}

/// A file's changes without its `index` line, whose abbreviated blob ids depend on whether
/// libgit2 had hashed the working file when it printed them; the hunks hold the bytes.
fn without_index_lines(changes: &[u8]) -> Vec<u8> {
    changes
        .split_inclusive(|b| *b == b'\n')
        .filter(|l| !l.starts_with(b"index "))
        .flatten()
        .copied()
        .collect()
}

/// Each input and config: the bytes the job will read (the path as given, from the recorded
/// cwd) against the recorded ones, and which runs produced the recorded ones when they
/// differ.
fn paths(
    store: &Store,
    r: &RunRecord,
    cache: &dyn hash::StatCache,
    current: &Current,
    checks: &mut Checks,
) -> Result<()> {
    let cwd = PathBuf::from(OsString::from_vec(r.cwd.clone()));
    for e in r
        .edges
        .iter()
        .filter(|e| e.role != Role::Output && !kept_code(store, r, e))
    {
        let check = path_check(store, r, e, &cwd.join(path_of(&e.path)), current, cache)?;
        match e.role {
            Role::Config => checks.configs.push(check),
            _ => checks.inputs.push(check),
        }
    }
    Ok(())
}

/// One input or config of run `r`: the bytes at `now_at` against the recorded ones, and
/// the runs that made the recorded bytes before `r` started (its possible causes).
fn path_check(
    store: &Store,
    r: &RunRecord,
    e: &EdgeRecord,
    now_at: &Path,
    current: &Current,
    cache: &dyn hash::StatCache,
) -> Result<PathCheck> {
    let recorded = e.artifact.as_ref().map(|a| a.hash);
    // The file itself, wherever links lead (the stat cache knows it by that name).
    let path = std::fs::canonicalize(now_at).unwrap_or_else(|_| now_at.to_path_buf());
    let now = current.input(&path, cache);
    let producer_ids = match recorded {
        Some(h) if recorded != now => target::producers_before(store, &h, r)?,
        _ => Vec::new(),
    };
    let keys = match e.role {
        Role::Config => selected_keys(r, e, &path, recorded != now),
        _ => None,
    };
    Ok(PathCheck {
        role: e.role,
        path: e.path.clone(),
        recorded,
        now,
        produced_by: producer_ids
            .iter()
            .map(|id| store.short_id(id).unwrap_or_else(|_| id.clone()))
            .collect(),
        keys,
    })
}

/// After a worktree is prepared, each input and config again, as the job will read it from
/// `job_cwd`: what was restored, linked, or is read where it is.
pub fn recheck(
    store: &Store,
    r: &RunRecord,
    job_cwd: &Path,
    cache: &dyn hash::StatCache,
    checks: &mut Checks,
) -> Result<()> {
    let current = Current::default();
    checks.inputs.clear();
    checks.configs.clear();
    for e in r
        .edges
        .iter()
        .filter(|e| e.role != Role::Output && !kept_code(store, r, e))
    {
        let check = path_check(
            store,
            r,
            e,
            &job_cwd.join(path_of(&e.path)),
            &current,
            cache,
        )?;
        match e.role {
            Role::Config => checks.configs.push(check),
            _ => checks.inputs.push(check),
        }
    }
    Ok(())
}

/// The recorded environment; redacted values come from the current one.
fn environment(r: &RunRecord, checks: &mut Checks) -> Env {
    let mut env = Vec::new();
    for (name, value) in &r.capture.env {
        // A name no environment can hold (from a store edited by hand; imports refuse it)
        // would set another variable than the plan shows: left out.
        if name.is_empty() || name.contains(['=', '\0']) {
            continue;
        }
        if r.capture.env_redacted.contains_key(name) {
            match std::env::var_os(name) {
                Some(v) => {
                    checks.env_from_current.push(name.clone());
                    env.push((OsString::from(name), v));
                }
                None => checks.env_missing.push(name.clone()),
            }
        } else {
            env.push((OsString::from(name), OsString::from(value)));
        }
    }
    // lineage's own variables are never recorded: a job that runs lineage itself gets this
    // session's (the store, say), never the arguments a rerun is given (`LINEAGE_ARG_<i>`).
    for (name, value) in std::env::vars_os() {
        let own = name.as_encoded_bytes().starts_with(b"LINEAGE_");
        if own && !name.as_encoded_bytes().starts_with(b"LINEAGE_ARG_") {
            env.push((name, value));
        }
    }
    env
}

/// The packages installed now in the recorded interpreter against the recorded list.
fn packages(store: &Store, then: &crate::model::Python) -> Vec<String> {
    let (now, blob) = software::python(Path::new(&then.executable));
    if now.packages == then.packages {
        return Vec::new();
    }
    let lines = |bytes: Option<Vec<u8>>| -> Vec<String> {
        String::from_utf8_lossy(&bytes.unwrap_or_default())
            .lines()
            .map(str::to_string)
            .collect()
    };
    let recorded = lines(then.packages.and_then(|h| store.blob(&h).ok().flatten()));
    let d = compare::package_lists(&recorded, &lines(blob.map(|(_, b)| b)));
    let version = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    // In name order, what went or changed, then what is new.
    let mut gone_or_changed: BTreeMap<&String, String> = BTreeMap::new();
    for (name, v) in &d.removed {
        gone_or_changed.insert(
            name,
            format!("{name} {} is no longer installed", version(v)),
        );
    }
    for (name, c) in &d.changed {
        gone_or_changed.insert(
            name,
            format!("{name} {} -> {}", version(&c.a), version(&c.b)),
        );
    }
    let mut out: Vec<String> = gone_or_changed.into_values().collect();
    out.extend(
        d.added
            .iter()
            .map(|(name, v)| format!("{name} {} is new", version(v))),
    );
    out
}

/// The GPUs now against the recorded ones (name and driver).
fn gpus(r: &RunRecord) -> Vec<String> {
    let gpus = gpu::start(std::env::var("CUDA_VISIBLE_DEVICES").ok())
        .finish()
        .gpus;
    let describe = |g: &[crate::model::Gpu]| {
        g.iter()
            .map(|g| format!("{} (driver {})", g.name, g.driver_version))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if describe(&gpus) == describe(&r.capture.system.gpus) {
        return Vec::new();
    }
    vec![format!(
        "GPUs were [{}], now [{}]",
        describe(&r.capture.system.gpus),
        describe(&gpus)
    )]
}

fn short_commit(c: Option<&str>) -> String {
    c.map_or("(none)".to_string(), |c| prefix(c, 12).to_string())
}

/// Why a rerun would not be faithful, as the lines of its refusal: the code (unless a
/// worktree restores it), configs (those a worktree restores count as the recorded ones),
/// inputs missing or changed. With `upstream`, what made an input was already rerun (or
/// cannot be): the line does not suggest `--upstream`.
pub fn blockers(checks: &Checks, worktree: bool, upstream: bool) -> Vec<String> {
    let mut blockers = Vec::new();
    if !worktree {
        blockers.extend(checks.code.iter().map(|c| format!("code: {c}")));
    }
    blockers.extend(
        checks
            .configs
            .iter()
            .filter(|c| c.differs())
            .map(|c| match &c.keys {
                Some(_) if c.now.is_some() => format!("config {}: {}", c.path, c.state()),
                _ => format!("config {} differs from the record", c.path),
            }),
    );
    for i in checks.inputs.iter().filter(|i| i.differs()) {
        let what = if i.now.is_none() {
            "is missing"
        } else {
            "differs from the record"
        };
        let mut line = format!("input {} {what}", i.path);
        if !i.produced_by.is_empty() {
            line += &format!(
                " (produced by run {}{})",
                i.produced_by.join(", "),
                if upstream {
                    ""
                } else {
                    "; --upstream reruns it"
                }
            );
        }
        blockers.push(line);
    }
    blockers
}

/// What would refuse a rerun in place (not in a worktree) of the run asked for: its outputs
/// holding bytes no recorded run wrote (edited by hand?), which the rerun would overwrite.
pub fn edited_outputs(
    store: &Store,
    r: &RunRecord,
    cache: &dyn hash::StatCache,
) -> Result<Vec<String>> {
    let mut out: Vec<String> = super::stale::planted_outputs(r)
        .into_iter()
        .map(|p| {
            format!(
                "output {p}: a symbolic link made since it ran leads it out of the project, \
                 where the rerun would write: remove the link to rerun here"
            )
        })
        .collect();
    out.extend(
        super::stale::unrecorded_outputs(store, r, cache)?
            .into_iter()
            .map(|p| {
                format!(
                    "output {p} holds bytes no recorded run wrote (edited by hand?), which the \
                     rerun could overwrite: move it away to keep it"
                )
            }),
    );
    Ok(out)
}

/// The recorded differences that could explain outputs that differ.
pub fn explain(c: &Checks) -> Vec<String> {
    let mut out: Vec<String> = c.code.iter().map(|x| format!("code: {x}")).collect();
    out.extend(
        c.inputs
            .iter()
            .chain(&c.configs)
            .filter(|i| i.differs())
            .map(|i| format!("{} {} differs", i.role.as_str(), i.path)),
    );
    out.extend(
        c.env_from_current
            .iter()
            .map(|n| format!("env {n} taken from the current environment")),
    );
    out.extend(c.env_missing.iter().map(|n| format!("env {n} not set now")));
    out.extend(c.packages.iter().map(|p| format!("package {p}")));
    out.extend(c.system.iter().cloned());
    if out.is_empty() {
        out.push("none recorded: the job itself is not deterministic (seeds, time, threads, GPU kernels)".into());
    }
    out
}

/// The plan printed before a rerun (on stdout with `--dry-run`): what will run (the exact
/// argv, and the program it resolves to under the environment it will run with), what differs
/// from the record, and the variables that change how programs and modules are found where
/// they differ from now. Every recorded string in it is escaped: it is shown on a terminal.
///
/// `remade`: inputs an earlier step of the plan makes again (path -> which step).
pub fn plan_text(
    r: &RunRecord,
    short: &str,
    c: &Checks,
    env: &Env,
    worktree: bool,
    remade: &BTreeMap<String, String>,
) -> String {
    let mut t = format!(
        "plan: rerun {} `{}` in {}{}\n",
        escape(short),
        terminal_command_line(&r.argv),
        escape_bytes(&r.cwd),
        if worktree {
            " (mapped into a temporary worktree at the recorded commit)"
        } else {
            ""
        }
    );
    t += &program_line(r, env, worktree);
    if c.code.is_empty() {
        t += "  code: same as recorded\n";
    }
    for n in &c.code_notes {
        t += &format!("  code: {}\n", escape(n));
    }
    if !c.new_untracked.is_empty() {
        t += &format!(
            "  code: untracked files new since the run (not used then): {}\n",
            c.new_untracked
                .iter()
                .map(|p| escape(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for x in &c.code {
        let restored = if worktree {
            " (the worktree restores the recorded code)"
        } else {
            ""
        };
        t += &format!("  code: {}{restored}\n", escape(x));
    }
    for i in c.inputs.iter().chain(&c.configs) {
        let state = escape(&i.state()).into_owned();
        let by = if let Some(step) = remade.get(&i.path).filter(|_| i.differs()) {
            format!(" ({} remakes it)", escape(step))
        } else if i.differs() && !i.produced_by.is_empty() {
            format!(
                " (recorded bytes produced by run {})",
                escape(&i.produced_by.join(", "))
            )
        } else {
            String::new()
        };
        t += &format!("  {} {}: {state}{by}\n", i.role.as_str(), escape(&i.path));
    }
    t += &environment_lines(r, c, env);
    for p in &c.packages {
        t += &format!("  package: {}\n", escape(p));
    }
    for s in &c.system {
        t += &format!("  system: {}\n", escape(s));
    }
    t
}

/// `  program: /usr/bin/python3 (python3, found on the job's PATH)`: what the recorded
/// argv[0] resolves to under the environment the job will get, as execvp would find it.
fn program_line(r: &RunRecord, env: &Env, worktree: bool) -> String {
    let Some(program) = r.argv.first() else {
        return "  program: none recorded\n".to_string();
    };
    let shown = terminal_command_line(std::slice::from_ref(program));
    let program = OsString::from_vec(program.clone());
    if program.as_bytes().contains(&b'/') {
        if Path::new(&program).is_relative() {
            if worktree {
                return format!("  program: {shown}, relative to the job's cwd in the worktree\n");
            }
            let at = PathBuf::from(OsString::from_vec(r.cwd.clone())).join(&program);
            return format!("  program: {}\n", resolved(&at));
        }
        return format!("  program: {}\n", resolved(Path::new(&program)));
    }
    let path_var = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v);
    let Some(path_var) = path_var else {
        return format!("  program: {shown} not found: the job's environment has no PATH\n");
    };
    let found = std::env::split_paths(path_var)
        .map(|dir| dir.join(&program))
        .find(|p| p.is_file() && access(p, AccessFlags::X_OK).is_ok());
    match found {
        Some(p) => format!(
            "  program: {} ({shown}, found on the job's PATH)\n",
            resolved(&p)
        ),
        None => format!("  program: {shown} not found on the job's PATH\n"),
    }
}

/// A program's path, and where its links lead when it is one.
fn resolved(p: &Path) -> String {
    let shown = escape_bytes(p.as_os_str().as_bytes()).into_owned();
    match std::fs::canonicalize(p) {
        Ok(real) if real != p => {
            format!("{shown} -> {}", escape_bytes(real.as_os_str().as_bytes()))
        }
        Ok(_) => shown,
        Err(_) => format!("{shown} (not found)"),
    }
}

/// Variables that change which program, library or module a job gets: shown in the plan
/// when the job's value differs from the current one. Also any `LD_*`, `DYLD_*`, `PYTHON*`
/// and `CONDA_*` variable, bash's exported functions (`BASH_FUNC_*`, which replace a command
/// by a function in every bash the job starts), and any whose name ends in `PATH`.
const LOOKUP_VARIABLES: &[&str] = &[
    "VIRTUAL_ENV",
    "HOME",
    "BASH_ENV",
    "ENV",
    "ZDOTDIR",
    "JAVA_HOME",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    "OPENSSL_MODULES",
    "GIT_SSH_COMMAND",
    "GIT_SSH",
    "GIT_EXEC_PATH",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "PERL5DB",
    "GLIBC_TUNABLES",
    "MALLOC_CONF",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "PERL5LIB",
    "PERLLIB",
    "PERL5OPT",
    "RUBYLIB",
    "RUBYOPT",
    "GEM_HOME",
    "NODE_OPTIONS",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "R_LIBS",
    "R_LIBS_USER",
    "R_LIBS_SITE",
    "JULIA_DEPOT_PATH",
];

/// Whether a variable changes how programs, libraries or modules are found.
pub fn is_lookup_variable(name: &str) -> bool {
    LOOKUP_VARIABLES.contains(&name)
        || ["LD_", "DYLD_", "PYTHON", "CONDA_", "BASH_FUNC_", "LUA_INIT"]
            .iter()
            .any(|p| name.starts_with(p))
        || name.ends_with("PATH")
}

/// The plan's lines about the environment and the redacted arguments.
fn environment_lines(r: &RunRecord, c: &Checks, env: &Env) -> String {
    let mut t = format!(
        "  env: {} variables restored from the record\n",
        r.capture
            .env
            .len()
            .saturating_sub(c.env_missing.len() + c.env_from_current.len())
    );
    let quote = |v: &OsString| terminal_command_line(&[v.as_bytes().to_vec()]);
    let job: BTreeMap<&OsString, &OsString> = env.iter().map(|(k, v)| (k, v)).collect();
    let now: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    let names: std::collections::BTreeSet<&OsString> =
        job.keys().copied().chain(now.keys()).collect();
    for name in names {
        if !is_lookup_variable(&name.to_string_lossy()) {
            continue;
        }
        let shown = escape_bytes(name.as_bytes());
        match (job.get(name), now.get(name)) {
            (Some(a), Some(b)) if *a != b => {
                t += &format!(
                    "  env: {shown} for the job is {} (now {})\n",
                    quote(a),
                    quote(b)
                );
            }
            (Some(a), None) => {
                t += &format!("  env: {shown} for the job is {} (not set now)\n", quote(a));
            }
            (None, Some(b)) => {
                t += &format!("  env: {shown} is not set for the job (now {})\n", quote(b));
            }
            _ => {}
        }
    }
    if !c.env_from_current.is_empty() {
        t += &format!(
            "  env: redacted, taken from the current environment: {}\n",
            escape(&c.env_from_current.join(", "))
        );
    }
    if !c.env_missing.is_empty() {
        t += &format!(
            "  env: redacted and not set now (the job runs without them): {}\n",
            escape(&c.env_missing.join(", "))
        );
    }
    for i in r.capture.argv_redacted.keys() {
        let set = if std::env::var_os(format!("LINEAGE_ARG_{i}")).is_some() {
            "set"
        } else {
            "not set: required"
        };
        t += &format!("  argv: argument {i} was redacted; taken from LINEAGE_ARG_{i} ({set})\n");
    }
    t
}

/// The recorded argv with each redacted argument taken from `LINEAGE_ARG_<position>`; the
/// job never receives `[REDACTED]`. Err: the positions still to set, with what was recorded.
pub fn restore_argv(r: &RunRecord) -> Result<Vec<OsString>, Vec<(usize, String)>> {
    let mut missing = Vec::new();
    let mut argv = Vec::with_capacity(r.argv.len());
    for (i, arg) in r.argv.iter().enumerate() {
        if r.capture.argv_redacted.contains_key(&i) {
            let var = format!("LINEAGE_ARG_{i}");
            match std::env::var_os(&var) {
                Some(v) => argv.push(v),
                None => missing.push((i, String::from_utf8_lossy(arg).into_owned())),
            }
        } else {
            argv.push(OsString::from_vec(arg.clone()));
        }
    }
    if missing.is_empty() {
        Ok(argv)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::hostile::{bytes, config, is_inert, text};
    use proptest::prelude::*;

    /// One look hashes each path once, as an input and as an output apart: what changes
    /// during the look is not seen by it (a new look sees it), and a link that leaves an
    /// output directory is a link there, followed for an input.
    #[test]
    fn a_look_hashes_each_path_once_as_an_input_and_as_an_output() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&tmp.path().join("store")).expect("store");
        let d = tmp.path().join("d");
        std::fs::create_dir(&d).expect("d");
        std::fs::write(d.join("a"), "one").expect("a");
        std::fs::write(tmp.path().join("outside"), "out").expect("outside");
        std::os::unix::fs::symlink(tmp.path().join("outside"), d.join("l")).expect("link");
        let look = Current::default();
        let input = look.input(&d, &store).expect("hashed");
        let output = look.output(&d, &store).expect("hashed");
        assert_ne!(input, output, "the link is followed for an input only");
        std::fs::write(d.join("a"), "two, another size").expect("a again");
        assert_eq!(look.input(&d, &store), Some(input));
        assert_eq!(look.output(&d, &store), Some(output));
        let again = Current::default();
        assert_ne!(again.input(&d, &store), Some(input));
        assert_ne!(again.output(&d, &store), Some(output));
        assert_eq!(again.input(&tmp.path().join("gone"), &store), None);
    }

    #[test]
    fn a_patch_is_cut_at_each_file_in_the_recorded_order() {
        let patch = b"diff --git a/a.py b/a.py\nindex 1..2 100644\n--- a/a.py\n+++ b/a.py\n\
                      @@ -1 +1 @@\n-x\n+diff --git y\ndiff --git a/b b/b\nnew file mode 100644\n";
        let files = vec!["a.py".to_string(), "b".to_string()];
        let cut = split_patch(patch, &files).expect("two files");
        assert!(cut["a.py"].ends_with(b"+diff --git y\n"));
        assert_eq!(cut["b"], b"diff --git a/b b/b\nnew file mode 100644\n");
        assert_eq!(
            without_index_lines(cut["a.py"]),
            b"diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x\n+diff --git y\n"
        );
        // Another count of files than recorded: not cut.
        assert!(split_patch(patch, &files[..1]).is_none());
        assert!(split_patch(b"junk\ndiff --git a/b b/b\n", &files[1..]).is_none());
        assert_eq!(split_patch(b"", &[]).expect("none").len(), 0);
    }

    proptest! {
        #![proptest_config(config(200))]

        /// The plan of a record holding arbitrary argv, cwd, paths, names and environment:
        /// inert, and one line per thing planned (a recorded newline starts no line).
        #[test]
        fn a_plan_of_arbitrary_text_is_inert_and_forges_no_line(
            argv in prop::collection::vec(bytes(), 1..4),
            cwd in bytes(),
            t in prop::collection::vec(text(), 6..7),
            value in bytes(),
        ) {
            let mut r = RunRecord::example("id", "x");
            r.argv = argv;
            r.cwd = cwd;
            let check = |role, path: &str| PathCheck {
                role,
                path: path.to_string(),
                recorded: Some(Hash::of(b"a")),
                now: None,
                produced_by: vec![t[5].clone()],
                keys: None,
            };
            let c = Checks {
                code: vec![t[0].clone()],
                code_files: vec![t[0].clone()],
                code_notes: vec![t[1].clone()],
                new_untracked: vec![t[1].clone()],
                inputs: vec![check(Role::Input, &t[2])],
                configs: vec![check(Role::Config, &t[3])],
                env_from_current: vec![t[4].clone()],
                env_missing: Vec::new(),
                packages: vec![t[5].clone()],
                system: Vec::new(),
            };
            let env: Env = vec![
                (OsString::from("PATH"), OsString::from_vec(value.clone())),
                (OsString::from("LD_PRELOAD"), OsString::from_vec(value)),
            ];
            let plan = plan_text(&r, &t[5], &c, &env, false, &BTreeMap::new());
            is_inert(&plan).map_err(TestCaseError::fail)?;
            prop_assert_eq!(plan.lines().filter(|l| !l.starts_with("  ")).count(), 1, "{}", plan);
            prop_assert!(plan.lines().any(|l| l.starts_with("  program: ")), "{}", plan);
        }
    }
}
