//! The git state of the job's working directory, through libgit2: commit, branch, remotes
//! (credentials stripped), dirty flag, the uncommitted tracked changes as a patch, and the
//! untracked files that are not ignored, with their contents up to a size cap. Patch and
//! contents are returned as they are, with their real hashes; the caller passes them through
//! the redaction engine, which decides what the store keeps, so that a rerun can restore the
//! exact code.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use git2::{
    DiffFormat, DiffOptions, ErrorCode, Repository, RepositoryOpenFlags, Status, StatusOptions,
};

use crate::hash;
use crate::model::{GitState, Hash, UntrackedFile};

/// Caps on the untracked files a record lists and keeps: a kept file's size, all of them,
/// and how many files are listed. Every untracked file is hashed either way (it is part of
/// the code); one over a size cap is listed by its hash, not kept, and those past the count
/// are recorded as one (`GitState::untracked_rest`).
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    pub per_file: u64,
    pub total: u64,
    /// A repository with tens of thousands of untracked files that are not ignored (data
    /// left out of .gitignore) had each read, redacted and kept before every launch, and
    /// listed in every run's record (46,000 files: 1.6 s, 10 MB a run).
    pub files: usize,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            per_file: 1 << 20,
            total: 16 << 20,
            files: 1_000,
        }
    }
}

/// At most this many untracked files over the size caps get a note each; the rest are
/// counted in one note.
const OVER_CAP_NOTES: usize = 20;

#[derive(Debug, Default, Clone)]
pub struct GitCapture {
    pub state: Option<GitState>,
    /// Why there is no state.
    pub absent: Option<String>,
    /// The bytes of the patch (`state.patch` is their hash), raw: the caller redacts them.
    pub patch_bytes: Option<Vec<u8>>,
    /// The bytes of each untracked file kept (`stored`), by its path, raw: the caller
    /// redacts them.
    pub untracked_bytes: Vec<(String, Vec<u8>)>,
    pub notes: Vec<String>,
    pub user_name: Option<String>,
    pub user_email: Option<String>,
    /// Untracked files over the size caps, by their place in `state.untracked`: hashed by
    /// [`GitCapture::finish`] (with the stat cache, which this thread cannot reach), which
    /// also computes the code hash.
    over_cap: Vec<(usize, std::path::PathBuf)>,
    /// The untracked files past the count cap, sorted, with their stats: hashed as one by
    /// [`GitCapture::finish`].
    rest: Vec<(String, std::path::PathBuf, hash::StatKey)>,
    /// The symbolic links past the count cap: their paths, hashes (of the path each holds,
    /// `model::untracked_link_hash`) and lengths, counted in the rest with its files.
    rest_links: Vec<(String, Hash, u64)>,
}

impl GitCapture {
    /// Hash the untracked files over the size caps (through `cache`, so that an unchanged
    /// large file is not read again on every run: a 1 GiB one cost 210 ms before each
    /// launch) and compute the code hash. Called once, before `state` is used.
    pub fn finish(mut self, cache: Option<&dyn hash::StatCache>) -> GitCapture {
        let Some(state) = self.state.as_mut() else {
            return self;
        };
        let hashing = hash::Hashing::default();
        let mut gone = Vec::new();
        for (i, path) in std::mem::take(&mut self.over_cap) {
            match hashing.hash_path(&path, &mut hash::discard, cache, None) {
                Ok(h) => {
                    state.untracked[i].hash = h.artifact.hash;
                    state.untracked[i].size = h.artifact.size;
                }
                Err(_) => gone.push(i),
            }
        }
        for i in gone.into_iter().rev() {
            let u = state.untracked.remove(i);
            self.notes
                .push(format!("untracked file {} could not be read", u.path));
        }
        let rest = std::mem::take(&mut self.rest);
        let links = std::mem::take(&mut self.rest_links);
        if !rest.is_empty() || !links.is_empty() {
            // All at once: one lookup in the cache, what it does not know read on every core.
            let files: Vec<(std::path::PathBuf, hash::StatKey)> =
                rest.iter().map(|(_, p, k)| (p.clone(), *k)).collect();
            let hashed = hashing.hash_files(&files, cache);
            let mut read: Vec<(&str, Hash, u64)> = rest
                .iter()
                .zip(&hashed)
                .filter_map(|((rel, _, _), h)| h.as_ref().ok().map(|(h, n)| (rel.as_str(), *h, *n)))
                .collect();
            let files_read = read.len();
            read.extend(links.iter().map(|(rel, h, n)| (rel.as_str(), *h, *n)));
            read.sort_unstable_by(|a, b| a.0.cmp(b.0));
            if files_read < rest.len() {
                self.notes.push(format!(
                    "{} untracked files past the first {} could not be read: left out of the code hash",
                    rest.len() - files_read,
                    state.untracked.len()
                ));
            }
            // None read: nothing to record as one (the note above says why).
            state.untracked_rest = (!read.is_empty()).then(|| crate::model::UntrackedRest {
                files: read.len() as u64,
                bytes: read.iter().map(|(_, _, n)| n).sum(),
                hash: crate::model::UntrackedRest::hash_of(read.iter().map(|(p, h, _)| (*p, h))),
            });
        }
        state.code = crate::model::GitState::code_of(
            state.commit.as_deref(),
            state.patch.as_ref(),
            &state.untracked,
            state.untracked_rest.as_ref(),
        );
        self
    }
}

/// Capture the git state at `cwd`. Untracked files under `data` (the run's declared inputs
/// and outputs, absolute) are data, not code, and are left out.
pub fn capture(cwd: &Path, caps: Caps, data: &[std::path::PathBuf]) -> GitCapture {
    scan(cwd).capture(caps, data)
}

/// What a capture finds before it knows the run's data: the repository, its status and its
/// uncommitted changes. The same for every run recorded in one working tree at one moment,
/// so `status` scans each repository once for all the runs it checks (a repository of
/// 40,000 tracked files took 40,000 stats for each run).
#[derive(Clone, Debug, Default)]
pub struct Scan {
    out: GitCapture,
    found: Option<Found>,
}

#[derive(Clone, Debug)]
struct Found {
    root: std::path::PathBuf,
    commit: Option<String>,
    branch: Option<String>,
    detached: bool,
    remote: Option<String>,
    remotes: std::collections::BTreeMap<String, String>,
    dirty: bool,
    untracked_paths: Vec<String>,
    patch: Option<Hash>,
    changed_files: Vec<String>,
}

/// The repository at `cwd`, scanned: [`Scan::capture`] finishes it for one run's data.
pub fn scan(cwd: &Path) -> Scan {
    let mut out = GitCapture::default();
    let repo = match Repository::open_ext(cwd, RepositoryOpenFlags::empty(), &[] as &[&str]) {
        Ok(repo) => repo,
        Err(e) => {
            let (name, email) = default_identity();
            out.user_name = name;
            out.user_email = email;
            out.absent = Some(match e.code() {
                ErrorCode::NotFound => "not in a git repository".to_string(),
                ErrorCode::Owner => {
                    "repository owned by another user (git's safe.directory refuses it)".to_string()
                }
                _ => format!("git repository could not be opened: {}", e.message()),
            });
            return Scan { out, found: None };
        }
    };
    if let Ok(config) = repo.config() {
        out.user_name = config.get_string("user.name").ok();
        out.user_email = config.get_string("user.email").ok();
    }
    let (root, head) = match work_tree(&repo) {
        Ok(found) => found,
        Err(why) => {
            out.absent = Some(why);
            return Scan { out, found: None };
        }
    };
    let commit = head.peel_to_commit().ok();
    let detached = repo.head_detached().unwrap_or(false);
    let branch = if detached {
        None
    } else {
        head.shorthand().ok().map(str::to_string)
    };
    let remotes = remotes(&repo);
    let remote = remotes
        .get("origin")
        .or_else(|| remotes.values().next())
        .cloned();
    let (dirty, untracked_paths) = match status(&repo, &root) {
        Ok(found) => found,
        Err(e) => {
            out.notes
                .push(format!("git status failed: {}", e.message()));
            (false, Vec::new())
        }
    };
    let mut patch = None;
    let mut changed_files = Vec::new();
    if dirty {
        match diff_patch(&repo, commit.as_ref()) {
            Ok((bytes, files)) => {
                patch = Some(Hash::of(&bytes));
                out.patch_bytes = Some(bytes);
                changed_files = files;
            }
            Err(e) => out.notes.push(format!("git diff failed: {}", e.message())),
        }
    }
    let commit = commit.as_ref().map(|c| c.id().to_string());
    Scan {
        out,
        found: Some(Found {
            root,
            commit,
            branch,
            detached,
            remote,
            remotes,
            dirty,
            untracked_paths,
            patch,
            changed_files,
        }),
    }
}

impl Scan {
    /// The capture for a run whose declared inputs and outputs (absolute) are `data`: its
    /// untracked files that are code, read and hashed up to the caps.
    pub fn capture(&self, caps: Caps, data: &[std::path::PathBuf]) -> GitCapture {
        let mut out = self.out.clone();
        let Some(f) = &self.found else {
            return out;
        };
        let untracked = untracked_files(&f.root, f.untracked_paths.clone(), data, caps, &mut out);
        // Computed again by `finish`, once the files over the caps are hashed.
        let code = crate::model::GitState::code_of(
            f.commit.as_deref(),
            f.patch.as_ref(),
            &untracked,
            None,
        );
        out.state = Some(GitState {
            root: f
                .root
                .display()
                .to_string()
                .trim_end_matches('/')
                .to_string(),
            born: std::fs::symlink_metadata(f.root.join(".git"))
                .and_then(|m| m.created())
                .ok()
                .map(crate::model::stamp),
            commit: f.commit.clone(),
            branch: f.branch.clone(),
            detached: f.detached,
            dirty: f.dirty
                || !untracked.is_empty()
                || !out.rest.is_empty()
                || !out.rest_links.is_empty(),
            remote: f.remote.clone(),
            remotes: f.remotes.clone(),
            patch: f.patch,
            patch_redacted: None,
            changed_files: f.changed_files.clone(),
            untracked,
            untracked_rest: None,
            code,
        });
        out
    }
}

/// The work tree's root and HEAD, or why there is no code to record (a bare repository,
/// no commit yet, an unreadable HEAD).
fn work_tree(repo: &Repository) -> Result<(std::path::PathBuf, git2::Reference<'_>), String> {
    if repo.is_bare() {
        return Err("bare repository (no working tree)".to_string());
    }
    let head = match repo.head() {
        Ok(head) => head,
        Err(e) if e.code() == ErrorCode::UnbornBranch => {
            return Err("unborn HEAD (the repository has no commits yet)".to_string());
        }
        Err(e) => return Err(format!("HEAD could not be read: {}", e.message())),
    };
    let root = repo
        .workdir()
        .map(Path::to_path_buf)
        .ok_or_else(|| "bare repository (no working tree)".to_string())?;
    Ok((root, head))
}

/// Remote name -> URL, credentials stripped.
fn remotes(repo: &Repository) -> std::collections::BTreeMap<String, String> {
    let mut remotes = std::collections::BTreeMap::new();
    if let Ok(names) = repo.remotes() {
        for name in names.iter().flatten().flatten() {
            if let Ok(remote) = repo.find_remote(name)
                && let Ok(url) = remote.url()
            {
                remotes.insert(name.to_string(), strip_credentials(url));
            }
        }
    }
    remotes
}

/// The untracked files that are code (not the run's declared data), sorted: hashed, and
/// kept (in `untracked_bytes`) up to the size caps; over them, only hashed.
fn untracked_files(
    root: &Path,
    mut paths: Vec<String>,
    data: &[std::path::PathBuf],
    caps: Caps,
    out: &mut GitCapture,
) -> Vec<UntrackedFile> {
    let mut untracked = Vec::with_capacity(paths.len().min(caps.files));
    let (mut kept, mut noted) = (0u64, 0usize);
    // The files over the size caps not noted one by one: how many, and the first.
    let (mut more, mut such_as) = (0usize, None::<String>);
    paths.sort();
    // By each file's ancestors, not a search of `data` per file (up to 10,000 outputs of
    // recorded runs times tens of thousands of untracked files).
    let data: std::collections::HashSet<&Path> = data.iter().map(|d| d.as_path()).collect();
    let mut beneath = match Beneath::new(root) {
        Ok(b) => b,
        Err(e) => {
            out.notes
                .push(format!("the untracked files could not be read: {e}"));
            return untracked;
        }
    };
    // A lineage store in the repository, in use or not (`.lineage` left from a time it was
    // LINEAGE_STORE): its files are records, not code.
    let stores: std::collections::HashSet<String> = paths
        .iter()
        .filter_map(|p| p.strip_suffix(crate::model::STORE_FILES[0]))
        .filter(|dir| dir.is_empty() || dir.ends_with('/'))
        .map(str::to_string)
        .collect();
    for rel in paths {
        let path = root.join(crate::model::path_of(&rel));
        if path.ancestors().any(|a| data.contains(a)) {
            continue;
        }
        let (in_dir, file) = rel
            .rsplit_once('/')
            .map_or(("", rel.as_str()), |(d, f)| (&rel[..=d.len()], f));
        if stores.contains(in_dir) && crate::model::STORE_FILES.contains(&file) {
            continue;
        }
        // Nothing on the way is followed: git records a link as the path it holds, and one
        // pointing out of the repository (`creds -> ~/.aws/credentials`) must not have its
        // target kept, nor a directory swapped for such a link while this reads.
        let Some((dir, name)) = beneath.parent(&path) else {
            out.notes.push(format!(
                "untracked file {rel} could not be read (a directory on its way is not one now)"
            ));
            continue;
        };
        use nix::sys::stat::SFlag;
        let (size, key) =
            match nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if kind(&st) == SFlag::S_IFREG => {
                    let key = hash::StatKey::of_stat(&st);
                    (key.size, key)
                }
                // A link to a directory (`data -> /mnt/datasets`, through which `-i
                // data/train.csv` is read) is how data is reached, as a directory is not code
                // here (git lists the files of an untracked one): left out, its target only
                // stat'ed, never read.
                Ok(st) if kind(&st) == SFlag::S_IFLNK && links_to_a_directory(dir, name) => {
                    continue;
                }
                Ok(st) if kind(&st) == SFlag::S_IFLNK => {
                    let Ok(target) = nix::fcntl::readlinkat(dir, name) else {
                        out.notes
                            .push(format!("untracked link {rel} could not be read"));
                        continue;
                    };
                    let target = target.into_encoded_bytes();
                    if untracked.len() >= caps.files {
                        let h = crate::model::untracked_link_hash(&target);
                        out.rest_links.push((rel, h, target.len() as u64));
                    } else {
                        let mut entry = stored(rel, target.len() as u64, target, out);
                        entry.link = true;
                        untracked.push(entry);
                    }
                    continue;
                }
                _ => continue,
            };
        if untracked.len() >= caps.files {
            out.rest.push((rel, path, key));
            continue;
        }
        let fits = size <= caps.per_file && kept + size <= caps.total;
        let entry = if fits {
            Beneath::read(dir, name).ok().map(|bytes| {
                kept += size;
                stored(rel.clone(), bytes.len() as u64, bytes, out)
            })
        } else {
            if noted >= OVER_CAP_NOTES {
                more += 1;
                such_as.get_or_insert_with(|| rel.clone());
            } else {
                noted += 1;
                out.notes.push(over_cap_note(&rel, size));
            }
            // Hashed by `GitCapture::finish`, through the stat cache.
            out.over_cap.push((untracked.len(), path.clone()));
            Some(UntrackedFile {
                path: rel.clone(),
                hash: Hash::of(b""),
                size,
                stored: false,
                redacted_blob: None,
                link: false,
            })
        };
        match entry {
            Some(e) => untracked.push(e),
            None => out
                .notes
                .push(format!("untracked file {rel} could not be read")),
        }
    }
    if let Some(such_as) = such_as {
        out.notes.push(format!(
            "{more} more untracked files over the size cap, such as {such_as}, are recorded by \
             their hashes, not their contents: add the ones that are data to .gitignore"
        ));
    }
    let first = [
        out.rest.first().map(|(rel, _, _)| rel),
        out.rest_links.first().map(|(rel, _, _)| rel),
    ]
    .into_iter()
    .flatten()
    .min()
    .cloned();
    if let Some(first) = first {
        out.notes.push(format!(
            "{} untracked files past the first {}, such as {first}, {REST_NOTE}",
            out.rest.len() + out.rest_links.len(),
            caps.files
        ));
    }
    untracked
}

/// Untracked files opened relative to the repository's root without following a link on
/// the way (each directory opened with `O_NOFOLLOW`), so that a directory swapped for a link
/// to elsewhere while they are read is refused, not read through. The last directory is kept
/// open: the files come sorted, so files of one directory follow each other.
struct Beneath {
    root: std::path::PathBuf,
    root_fd: std::os::fd::OwnedFd,
    last: Option<(std::path::PathBuf, std::os::fd::OwnedFd)>,
}

impl Beneath {
    fn new(root: &Path) -> nix::Result<Beneath> {
        use nix::fcntl::OFlag;
        let root_fd = nix::fcntl::open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        Ok(Beneath {
            root: root.to_path_buf(),
            root_fd,
            last: None,
        })
    }

    /// The directory holding `path` (under the root), opened without following links, and
    /// the file's name in it; None when `path` is not under the root or a directory on the
    /// way is not one (a link, a file, gone).
    fn parent<'p>(
        &mut self,
        path: &'p Path,
    ) -> Option<(std::os::fd::BorrowedFd<'_>, &'p std::ffi::OsStr)> {
        use nix::fcntl::OFlag;
        use std::os::fd::AsFd;
        let rel = path.strip_prefix(&self.root).ok()?;
        let name = rel.file_name()?;
        let dir = rel.parent().unwrap_or(Path::new(""));
        if dir.as_os_str().is_empty() {
            return Some((self.root_fd.as_fd(), name));
        }
        if self.last.as_ref().is_none_or(|(d, _)| d != dir) {
            let mut at: Option<std::os::fd::OwnedFd> = None;
            for c in dir.components() {
                let std::path::Component::Normal(part) = c else {
                    return None;
                };
                let from = at.as_ref().map_or(self.root_fd.as_fd(), |f| f.as_fd());
                let next = nix::fcntl::openat(
                    from,
                    part,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .ok()?;
                at = Some(next);
            }
            self.last = Some((dir.to_path_buf(), at?));
        }
        self.last.as_ref().map(|(_, fd)| (fd.as_fd(), name))
    }

    /// The bytes of the regular file `name` in `dir`, opened without following a link and
    /// without blocking (a FIFO swapped in is refused, not waited on).
    fn read(dir: std::os::fd::BorrowedFd<'_>, name: &std::ffi::OsStr) -> std::io::Result<Vec<u8>> {
        use nix::fcntl::OFlag;
        let fd = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        hash::read_opened(std::fs::File::from(fd))
    }
}

/// The type bits of a stat.
fn kind(st: &nix::sys::stat::FileStat) -> nix::sys::stat::SFlag {
    nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT
}

/// Whether the link `name` in `dir` leads to a directory (followed by a stat only).
fn links_to_a_directory(dir: std::os::fd::BorrowedFd<'_>, name: &std::ffi::OsStr) -> bool {
    nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::empty())
        .is_ok_and(|t| kind(&t) == nix::sys::stat::SFlag::S_IFDIR)
}

/// How the note on the untracked files past those listed ends.
const REST_NOTE: &str =
    "are recorded as one hash, neither listed nor kept: add the ones that are data to .gitignore";

/// Whether `note` is the one on the untracked files past those listed.
pub fn is_rest_note(note: &str) -> bool {
    note.ends_with(REST_NOTE)
}

/// The note an untracked file over the size caps leaves in the record.
pub fn over_cap_note(rel: &str, size: u64) -> String {
    format!(
        "untracked file {rel} ({size} bytes) is over the size cap: its hash is recorded, not its contents"
    )
}

/// An untracked file kept in the store: its hash is that of its real bytes, which go to
/// `untracked_bytes` for the caller to redact.
fn stored(rel: String, size: u64, bytes: Vec<u8>, out: &mut GitCapture) -> UntrackedFile {
    let h = Hash::of(&bytes);
    out.untracked_bytes.push((rel.clone(), bytes));
    UntrackedFile {
        path: rel,
        hash: h,
        size,
        stored: true,
        redacted_blob: None,
        link: false,
    }
}

fn default_identity() -> (Option<String>, Option<String>) {
    match git2::Config::open_default() {
        Ok(c) => (
            c.get_string("user.name").ok(),
            c.get_string("user.email").ok(),
        ),
        Err(_) => (None, None),
    }
}

/// An index file larger than this (about 12,000 entries) has the git CLI, when installed,
/// compute the status: it reuses the index's cache-tree, stats files on several threads and
/// honours the repository's fsmonitor and untracked cache, none of which libgit2 does (on
/// 50,000 files libgit2 took 1.7x as long as `git status`). Below it, libgit2 avoids
/// starting a process.
const CLI_STATUS_INDEX_BYTES: u64 = 1 << 20;

/// Whether tracked files differ from HEAD (staged or not), and the untracked, not ignored
/// files (each file inside an untracked directory), relative to the root.
fn status(repo: &Repository, root: &Path) -> Result<(bool, Vec<String>), git2::Error> {
    // The index file's size stands for its entry count: loading it through libgit2 to count
    // costs as much as a status on small repositories (60 ms on 50,000 entries).
    let index_bytes = std::fs::metadata(repo.path().join("index")).map_or(0, |m| m.len());
    if index_bytes > CLI_STATUS_INDEX_BYTES
        && let Some(found) = status_via_cli(root)
    {
        return Ok(found);
    }
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true);
    let mut untracked = Vec::new();
    let mut dirty = false;
    for entry in repo.statuses(Some(&mut opts))?.iter() {
        let s = entry.status();
        if s.contains(Status::WT_NEW) {
            untracked.push(crate::model::path_text(entry.path_bytes()));
        } else if !s.is_empty() && !s.contains(Status::IGNORED) {
            dirty = true;
        }
    }
    Ok((dirty, untracked))
}

/// `git status --porcelain -z` in `root`, without taking the index lock; None when git is
/// not installed or fails (libgit2 then answers).
fn status_via_cli(root: &Path) -> Option<(bool, Vec<String>)> {
    let out = std::process::Command::new("git")
        .args([
            "--no-optional-locks",
            "status",
            "--porcelain",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=all",
        ])
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(parse_porcelain(&out.stdout))
}

/// Porcelain v1 with -z: `XY path\0`, and for renames and copies `XY new\0old\0`.
fn parse_porcelain(raw: &[u8]) -> (bool, Vec<String>) {
    let mut dirty = false;
    let mut untracked = Vec::new();
    let mut fields = raw.split(|b| *b == 0).filter(|f| !f.is_empty());
    while let Some(field) = fields.next() {
        if field.len() < 4 {
            continue;
        }
        let (xy, path) = (&field[..2], &field[3..]);
        match xy {
            // Losslessly (model::path_text): a name that is not UTF-8 is restored by rerun.
            b"??" => untracked.push(crate::model::path_text(path)),
            b"!!" => {}
            _ => {
                dirty = true;
                if xy[0] == b'R' || xy[0] == b'C' {
                    fields.next(); // the old path
                }
            }
        }
    }
    (dirty, untracked)
}

/// `git diff HEAD` of tracked files (binary-safe), and the paths it touches.
fn diff_patch(
    repo: &Repository,
    commit: Option<&git2::Commit>,
) -> Result<(Vec<u8>, Vec<String>), git2::Error> {
    let tree = commit.map(|c| c.tree()).transpose()?;
    let mut opts = DiffOptions::new();
    opts.show_binary(true).ignore_submodules(true);
    let diff = repo.diff_tree_to_workdir_with_index(tree.as_ref(), Some(&mut opts))?;
    let files = diff
        .deltas()
        .filter_map(|d| {
            d.new_file()
                .path()
                .or_else(|| d.old_file().path())
                .map(|p| p.display().to_string())
        })
        .collect();
    let mut bytes = Vec::new();
    diff.print(DiffFormat::Patch, |_, _, line| {
        if matches!(line.origin(), '+' | '-' | ' ') {
            bytes.push(line.origin() as u8);
        }
        bytes.extend_from_slice(line.content());
        true
    })?;
    Ok((bytes, files))
}

/// Remove credentials from a remote URL: the password always, and for http(s) the whole
/// user part (tokens are often passed as the user name).
pub fn strip_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let Some((user, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let is_http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    if is_http {
        format!("{scheme}://{host}{path}")
    } else {
        let user = user.split(':').next().unwrap_or("");
        format!("{scheme}://{user}@{host}{path}")
    }
}

/// Every file git tracks in the work tree at `root` (its index), as absolute paths; empty
/// when `root` is no repository.
/// The most paths, and bytes of them, asked about on one `git ls-files` command line (well
/// within the kernel's limit on arguments).
const LS_FILES_MOST: usize = 4096;
const LS_FILES_BYTES: usize = 256 * 1024;

/// The files git tracks in the work tree at `root`, asked about the paths a job named: on a
/// large repository through `git ls-files` with just those paths ([`Tracked::ask`]), else
/// through its index, read on the first question (a job may name no file of the work tree
/// but its script). All of a repository's tracked files made into paths took 40 to 60 ms
/// after every job in one of 50,000 files.
pub struct Tracked {
    root: Option<PathBuf>,
    /// What `git ls-files` said of the paths asked about, when it was asked.
    listed: Option<std::collections::HashSet<PathBuf>>,
    index: Option<Option<git2::Index>>,
}

impl Tracked {
    /// The work tree at `root` (None: no work tree, nothing tracked).
    pub fn at(root: Option<PathBuf>) -> Tracked {
        Tracked {
            root,
            listed: None,
            index: None,
        }
    }

    /// Ask about these paths at once, where the index is large (as `status` does, past
    /// `CLI_STATUS_INDEX_BYTES`): one `git ls-files` of them, not a load of the whole index
    /// through libgit2. Without git, where it fails, or for more paths than one command line
    /// takes, the index answers.
    pub fn ask<'p>(&mut self, paths: impl Iterator<Item = &'p Path>) {
        let Some(root) = &self.root else {
            return;
        };
        let repo = match git2::Repository::open(root) {
            Ok(r) => r,
            Err(_) => return,
        };
        let index_bytes = std::fs::metadata(repo.path().join("index")).map_or(0, |m| m.len());
        if index_bytes <= CLI_STATUS_INDEX_BYTES {
            return;
        }
        let rel: Vec<&Path> = paths.filter_map(|p| p.strip_prefix(root).ok()).collect();
        if rel.is_empty() {
            self.listed = Some(Default::default());
            return;
        }
        // On one command line; a job that named more reads the whole index instead.
        let bytes: usize = rel.iter().map(|p| p.as_os_str().len() + 1).sum();
        if rel.len() > LS_FILES_MOST || bytes > LS_FILES_BYTES {
            return;
        }
        self.listed = ls_files(root, &rel).map(|found| {
            found
                .split(|b| *b == 0)
                .filter(|f| !f.is_empty())
                .map(|f| root.join(std::ffi::OsStr::from_bytes(f)))
                .collect()
        });
    }

    /// Whether git tracks `path` (absolute, as `root` is).
    pub fn contains(&mut self, path: &Path) -> bool {
        let Some(root) = &self.root else {
            return false;
        };
        // The work tree itself is no file of it (and libgit2 refuses an empty path).
        let Ok(rel) = path.strip_prefix(root) else {
            return false;
        };
        if rel.as_os_str().is_empty() {
            return false;
        }
        if let Some(listed) = &self.listed {
            return listed.contains(path);
        }
        let index = self.index.get_or_insert_with(|| {
            git2::Repository::open(root)
                .and_then(|repo| repo.index())
                .ok()
        });
        index.as_ref().is_some_and(|i| i.get_path(rel, 0).is_some())
    }
}

/// `git ls-files` of `rel` (paths under `root`, given literally): the tracked ones,
/// NUL-separated; None when git is not installed or fails.
fn ls_files(root: &Path, rel: &[&Path]) -> Option<Vec<u8>> {
    let out = std::process::Command::new("git")
        .args([
            "--literal-pathspecs",
            "--no-optional-locks",
            "ls-files",
            "-z",
            "--",
        ])
        .args(rel)
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One scan of a repository, captured for two runs' data, gives each what a capture of
    /// its own gives: its untracked files that are code, the same commit and patch.
    #[test]
    fn a_scan_captured_for_each_runs_data_is_that_runs_capture() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let repo = Repository::init(root).expect("init");
        std::fs::write(root.join("train.py"), "print(1)\n").expect("train.py");
        let mut index = repo.index().expect("index");
        index.add_path(Path::new("train.py")).expect("add");
        index.write().expect("write");
        let tree = repo
            .find_tree(index.write_tree().expect("tree"))
            .expect("tree");
        let sig = git2::Signature::now("t", "t@example.com").expect("sig");
        repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
            .expect("commit");
        std::fs::write(root.join("train.py"), "print(2)\n").expect("changed");
        std::fs::write(root.join("util.py"), "x = 1\n").expect("util.py");
        std::fs::create_dir(root.join("data")).expect("data");
        std::fs::write(root.join("data/x.csv"), "1,2\n").expect("x.csv");
        let scan = scan(root);
        for data in [vec![], vec![root.join("data")]] {
            let shared = scan.capture(Caps::default(), &data).finish(None);
            let own = capture(root, Caps::default(), &data).finish(None);
            let (a, b) = (shared.state.expect("state"), own.state.expect("state"));
            let paths = |s: &GitState| {
                s.untracked
                    .iter()
                    .map(|u| u.path.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(paths(&a), paths(&b));
            assert_eq!(
                paths(&a).contains(&"data/x.csv".to_string()),
                data.is_empty(),
                "a run's data is not its code"
            );
            assert_eq!(
                (a.commit, a.patch, a.code, a.dirty),
                (b.commit, b.patch, b.code, b.dirty)
            );
            assert!(a.patch.is_some());
            assert_eq!(shared.patch_bytes, own.patch_bytes);
            assert_eq!(shared.untracked_bytes, own.untracked_bytes);
        }
    }

    /// Git listed `ud/inner.txt` when `ud` was a directory; by the time it is read, `ud` is a
    /// link to a directory outside the repository holding a file of that name. Nothing is
    /// read through the link: the file is left out with a note, its bytes never kept.
    #[test]
    fn a_directory_swapped_for_a_link_is_not_read_through() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (repo, outside) = (tmp.path().join("repo"), tmp.path().join("outside"));
        std::fs::create_dir_all(&repo).expect("repo");
        std::fs::create_dir_all(&outside).expect("outside");
        std::fs::write(outside.join("inner.txt"), "private-canary").expect("outside file");
        std::os::unix::fs::symlink(&outside, repo.join("ud")).expect("link");
        std::fs::write(repo.join("top.txt"), "kept").expect("top");
        let mut out = GitCapture::default();
        let listed = vec!["ud/inner.txt".to_string(), "top.txt".to_string()];
        let untracked = untracked_files(&repo, listed, &[], Caps::default(), &mut out);
        let paths: Vec<&str> = untracked.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(paths, ["top.txt"]);
        assert!(
            out.untracked_bytes
                .iter()
                .all(|(_, b)| !b.windows(14).any(|w| w == b"private-canary")),
            "read through the link"
        );
        assert!(
            out.notes
                .iter()
                .any(|n| n.starts_with("untracked file ud/inner.txt could not be read")),
            "{:?}",
            out.notes
        );
    }

    #[test]
    fn porcelain_status_is_parsed_with_renames_and_odd_names() {
        let raw = b" M train.py\0?? notes/new file.py\0R  b.py\0a.py\0?? x\ny.py\0!! ignored/c\0";
        let (dirty, untracked) = parse_porcelain(raw);
        assert!(dirty);
        assert_eq!(untracked, ["notes/new file.py", "x\ny.py"]);
        // The old name of a rename is not taken for an entry of its own.
        let (dirty, untracked) = parse_porcelain(b"R  b.py\0?? a.py\0?? c.py\0");
        assert!(dirty);
        assert_eq!(
            untracked,
            ["c.py"],
            "the field after a rename is its old name"
        );
        assert_eq!(
            parse_porcelain(b"?? only.py\0"),
            (false, vec!["only.py".to_string()])
        );
        assert_eq!(parse_porcelain(b""), (false, vec![]));
    }

    #[test]
    fn credentials_are_stripped_from_remote_urls() {
        let cases = [
            (
                "https://user:tok@github.com/o/r.git",
                "https://github.com/o/r.git",
            ),
            ("https://ghp_x@github.com/o/r", "https://github.com/o/r"),
            (
                "ssh://git:pw@host.example/o/r",
                "ssh://git@host.example/o/r",
            ),
            ("git@github.com:o/r.git", "git@github.com:o/r.git"),
            ("/srv/repos/r.git", "/srv/repos/r.git"),
        ];
        for (url, want) in cases {
            assert_eq!(strip_credentials(url), want, "{url}");
        }
    }
}
