//! Exports of recorded lineage in the provenance formats other tools read: W3C PROV-JSON,
//! in-toto Statements with a SLSA Provenance v1 predicate, and OpenLineage RunEvents.
//! Each format is a pure function of an [`Export`]: the runs, the extra digests computed for
//! their artifacts, and the directory memberships the walk went through. Our own vocabulary
//! (build type, builder, producer, facet schemas) lives under [`BASE`]; docs/vocabulary.md
//! says what each URI means.

pub mod digests;
pub mod intoto;
pub mod openlineage;
pub mod prov;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::model::{ArtifactRef, EdgeRecord, Hash, Role, RunAnnotations, RunRecord};

/// What an export reads and remembers beside the runs themselves. The store provides it
/// (the impl lives with the commands, so that this module depends on no store type).
pub trait Records {
    /// The bytes of a stored blob (a recorded patch, config or package list).
    fn blob(&self, hash: &Hash) -> Option<Vec<u8>>;
    /// The files of a stored directory: (path, hash, size), sorted by path.
    fn dir_entries(&self, dir: &Hash) -> anyhow::Result<Vec<(String, Hash, u64)>>;
    /// A digest other than BLAKE3 (`sha256`, `dirHash`) remembered for an artifact.
    fn extra_digest(&self, hash: &Hash, algorithm: &str) -> Option<String>;
    /// Remember a digest computed from bytes that matched `hash` (best effort).
    fn remember_digest(&self, hash: &Hash, algorithm: &str, digest: &str);
}

/// A run's notes as the exports write them: `{text, author, createdAt}`, oldest first.
pub fn notes_json(a: &RunAnnotations) -> Vec<serde_json::Value> {
    a.notes
        .iter()
        .map(|n| serde_json::json!({"text": n.text, "author": n.author, "createdAt": n.created_at}))
        .collect()
}

/// The root of every URI lineage mints: the project's published docs/ folder.
pub const BASE: &str = "https://lineage-ml.github.io/lineage/";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn producer() -> String {
    format!("{BASE}releases/v{VERSION}")
}

/// What an export covers.
pub struct Export {
    /// Oldest first.
    pub runs: Vec<RunRecord>,
    /// Artifact -> its extra digest (`sha256` for a file, `dirHash` for a directory).
    pub digests: HashMap<Hash, String>,
    /// (directory, file inside it, path inside it): containment the ancestry walk followed.
    pub members: Vec<(Hash, Hash, String)>,
    /// Job names of runs outside `runs` that runs in it are reruns of.
    pub rerun_jobs: HashMap<String, String>,
    /// Run id -> the temporary worktree a `rerun --worktree` ran in, and the directory it
    /// stands for: its job and datasets are named as its original's.
    pub worktrees: HashMap<String, Worktree>,
    /// Run id -> its tags and notes (`lineage tag`, `lineage note`); runs with neither are
    /// not in it.
    pub annotations: HashMap<String, RunAnnotations>,
}

/// Where a run recorded by `rerun --worktree` ran: a private temporary directory (`from`,
/// `lineage-rerun-*`) holding a copy of the original's repository at the place the
/// original's directory `to` holds it. A path under `from` stands for the same path under
/// `to`: the rerun's job and files are its original's, in a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Worktree {
    pub from: PathBuf,
    pub to: PathBuf,
}

/// The prefix of the private directory `rerun --worktree` makes (commands/rerun/worktree.rs).
const WORKTREE_PREFIX: &str = "lineage-rerun-";

impl Worktree {
    /// The worktree a rerun ran in, told by comparing its record with its original's: the
    /// rerun's repository root is the original's with the directories above it (`to`)
    /// replaced by a `lineage-rerun-*` directory (`from`), and its cwd lies inside that.
    /// None for a rerun in place, or records that do not read this way.
    pub fn of(rerun: &RunRecord, original: &RunRecord) -> Option<Worktree> {
        if rerun.rerun_of.as_deref() != Some(original.id.as_str()) {
            return None;
        }
        let (ours, theirs) = (
            &rerun.capture.git.as_ref()?.root,
            &original.capture.git.as_ref()?.root,
        );
        let (mut from, mut to) = (PathBuf::from(ours), PathBuf::from(theirs));
        // Strip the tail both roots share: the repository's path below the two directories.
        let mut shared = 0;
        while from.file_name().is_some() && from.file_name() == to.file_name() {
            from.pop();
            to.pop();
            shared += 1;
        }
        let private = from.file_name()?.to_str()?;
        let cwd = Path::new(std::ffi::OsStr::from_bytes(&rerun.cwd));
        (shared > 0 && private.starts_with(WORKTREE_PREFIX) && cwd.starts_with(&from))
            .then_some(Worktree { from, to })
    }

    /// A path the rerun recorded, as the original's: under `to` when it was under `from`.
    pub fn map(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.from) {
            Ok(rest) if rest.as_os_str().is_empty() => self.to.clone(),
            Ok(rest) => self.to.join(rest),
            Err(_) => path.to_path_buf(),
        }
    }

    fn map_text(&self, path: &str) -> String {
        self.map(Path::new(path)).to_string_lossy().into_owned()
    }
}

impl Export {
    /// A run's tags and notes, when it has any.
    pub fn annotations(&self, run: &RunRecord) -> Option<&RunAnnotations> {
        self.annotations.get(&run.id).filter(|a| !a.is_empty())
    }

    /// Every distinct artifact the runs read or wrote, with the paths it was seen at.
    pub fn artifacts(&self) -> BTreeMap<Hash, (ArtifactRef, Vec<&EdgeRecord>)> {
        let mut out: BTreeMap<Hash, (ArtifactRef, Vec<&EdgeRecord>)> = BTreeMap::new();
        for run in &self.runs {
            for e in &run.edges {
                if let Some(a) = &e.artifact {
                    out.entry(a.hash)
                        .or_insert_with(|| (a.clone(), Vec::new()))
                        .1
                        .push(e);
                }
            }
        }
        out
    }

    /// The job name of a run (its original's paths for a worktree rerun).
    pub fn job_name(&self, run: &RunRecord) -> String {
        job_name_in(run, self.worktrees.get(&run.id))
    }

    /// An absolute path a run recorded, as its original's for a worktree rerun.
    pub fn path(&self, run: &RunRecord, abs: &str) -> String {
        match self.worktrees.get(&run.id) {
            Some(w) => w.map_text(abs),
            None => abs.to_string(),
        }
    }

    /// The extra digest of an artifact, under its algorithm's name.
    pub fn extra(&self, a: &ArtifactRef) -> Option<(&'static str, &str)> {
        self.digests
            .get(&a.hash)
            .map(|d| (digests::algorithm(a.kind), d.as_str()))
    }
}

/// Fill in the extra digests: remembered ones, or (with `compute`) ones computed now from
/// paths whose bytes still match. Returns one warning per artifact left without.
pub fn fill_digests(store: &dyn Records, export: &mut Export, compute: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut found = HashMap::new();
    // Configs the store keeps only as a redacted copy: their exact bytes are not there.
    let redacted: std::collections::HashSet<Hash> = export
        .runs
        .iter()
        .flat_map(|r| {
            edges(r, &[Role::Config])
                .filter(|(e, _)| r.capture.config_redacted.contains_key(&e.path))
                .map(|(_, a)| a.hash)
        })
        .collect();
    for (hash, (artifact, edges)) in export.artifacts() {
        let owned: Vec<std::path::PathBuf> = edges
            .iter()
            .map(|e| crate::model::path_of(&e.abs_path))
            .collect();
        let paths: Vec<&Path> = owned.iter().map(|p| p.as_path()).collect();
        let got = if compute {
            digests::get(store, &artifact, &paths)
        } else {
            digests::stored(store, &artifact).ok_or(digests::Unavailable::Unreadable(
                "not recorded (--no-sha256)".into(),
            ))
        };
        match got {
            Ok(d) => {
                found.insert(hash, d);
            }
            Err(why) => {
                let kept = if redacted.contains(&hash) {
                    ", and the store keeps only a copy with its secrets redacted, not its \
                     exact bytes"
                } else {
                    ""
                };
                warnings.push(format!(
                    "no {} for {} ({hash}): {why}{kept}; `lineage run --sha256` records it \
                     while the bytes are there",
                    digests::algorithm(artifact.kind),
                    edges.first().map_or("?", |e| e.path.as_str()),
                ));
            }
        }
    }
    export.digests = found;
    warnings
}

/// The name a run's job goes by in exports: `<repository or directory>/<script or program>`.
pub fn job_name(run: &RunRecord) -> String {
    job_name_in(run, None)
}

/// The job name of a run, with the paths of a worktree rerun taken as its original's.
fn job_name_in(run: &RunRecord, worktree: Option<&Worktree>) -> String {
    let c = &run.capture;
    let map = |p: String| worktree.map_or_else(|| p.clone(), |w| w.map_text(&p));
    let cwd = map(String::from_utf8_lossy(&run.cwd).into_owned());
    let base = c
        .git
        .as_ref()
        .map_or_else(|| cwd.clone(), |g| map(g.root.clone()));
    let project = Path::new(&base)
        .file_name()
        .map_or_else(|| "root".to_string(), |n| n.to_string_lossy().into_owned());
    let program = match &c.script {
        Some(s) => {
            // Relative to the repository root when the script lives inside it.
            let abs = Path::new(&cwd).join(&s.path);
            let abs = worktree.map_or(abs.clone(), |w| w.map(&abs));
            abs.strip_prefix(&base).map_or_else(
                |_| map(s.path.clone()),
                |p| p.to_string_lossy().into_owned(),
            )
        }
        None => run.argv.first().map_or_else(String::new, |a| {
            let a = String::from_utf8_lossy(a);
            Path::new(a.as_ref())
                .file_name()
                .map_or_else(|| a.to_string(), |n| n.to_string_lossy().into_owned())
        }),
    };
    format!("{project}/{program}")
}

/// The command as one line, each argument shell-quoted when it needs it.
pub fn command_line(run: &RunRecord) -> String {
    crate::model::command_line(&run.argv)
}

pub fn argv(run: &RunRecord) -> Vec<String> {
    run.argv
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Edges of one role that name an artifact.
pub fn edges<'a>(
    run: &'a RunRecord,
    roles: &'a [Role],
) -> impl Iterator<Item = (&'a EdgeRecord, &'a ArtifactRef)> {
    run.edges
        .iter()
        .filter(move |e| roles.contains(&e.role))
        .filter_map(|e| e.artifact.as_ref().map(|a| (e, a)))
}

/// A git remote as a URI: `git@host:path` becomes `ssh://git@host/path`.
pub fn remote_uri(remote: &str) -> String {
    if remote.contains("://") {
        return remote.to_string();
    }
    match remote.split_once(':') {
        Some((host, path)) if !host.contains('/') => {
            format!("ssh://{host}/{}", path.trim_start_matches('/'))
        }
        _ => format!("file://{remote}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_repo(id: &str, root: &str, cwd: &str, rerun_of: Option<&str>) -> RunRecord {
        let mut r = RunRecord::example(id, "sh train.sh");
        r.cwd = cwd.as_bytes().to_vec();
        r.rerun_of = rerun_of.map(str::to_string);
        r.capture.git = Some(crate::model::GitState {
            root: root.into(),
            ..Default::default()
        });
        r
    }

    #[test]
    fn a_worktree_rerun_stands_for_its_originals_directory() {
        let original = in_repo(
            "o",
            "/home/ada/proj/model",
            "/home/ada/proj/model/src",
            None,
        );
        let rerun = in_repo(
            "r",
            "/tmp/lineage-rerun-Ab12/proj/model",
            "/tmp/lineage-rerun-Ab12/proj/model/src",
            Some("o"),
        );
        let w = Worktree::of(&rerun, &original).expect("a worktree rerun");
        assert_eq!(w.from, Path::new("/tmp/lineage-rerun-Ab12"));
        assert_eq!(w.to, Path::new("/home/ada"));
        assert_eq!(
            w.map(Path::new("/tmp/lineage-rerun-Ab12/proj/data/x.csv")),
            Path::new("/home/ada/proj/data/x.csv")
        );
        assert_eq!(w.map(Path::new("/etc/hosts")), Path::new("/etc/hosts"));
        assert_eq!(
            w.map(Path::new("/tmp/lineage-rerun-Ab12x/a")),
            Path::new("/tmp/lineage-rerun-Ab12x/a"),
            "by components, not by text"
        );
        let mut export = Export {
            runs: vec![original.clone(), rerun.clone()],
            digests: HashMap::new(),
            members: Vec::new(),
            rerun_jobs: HashMap::new(),
            worktrees: HashMap::new(),
            annotations: HashMap::new(),
        };
        export.worktrees.insert("r".into(), w);
        assert_eq!(export.job_name(&rerun), export.job_name(&original));

        // A rerun in place, a run that is no rerun of it, and a copy elsewhere are not.
        let in_place = in_repo(
            "p",
            "/home/ada/proj/model",
            "/home/ada/proj/model",
            Some("o"),
        );
        assert_eq!(Worktree::of(&in_place, &original), None);
        let other = in_repo(
            "q",
            "/tmp/lineage-rerun-Ab12/model",
            "/tmp/lineage-rerun-Ab12/model",
            None,
        );
        assert_eq!(Worktree::of(&other, &original), None);
        let moved = in_repo("m", "/srv/copy/model", "/srv/copy/model", Some("o"));
        assert_eq!(Worktree::of(&moved, &original), None);
    }

    #[test]
    fn scp_remotes_become_uris() {
        assert_eq!(
            remote_uri("git@github.com:ada/model.git"),
            "ssh://git@github.com/ada/model.git"
        );
        assert_eq!(
            remote_uri("https://github.com/ada/model.git"),
            "https://github.com/ada/model.git"
        );
        assert_eq!(remote_uri("/srv/git/model"), "file:///srv/git/model");
    }
}
