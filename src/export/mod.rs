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
use std::path::Path;

use crate::model::{ArtifactRef, EdgeRecord, Hash, Role, RunRecord};

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
    /// Job names of runs outside `runs` that runs in it are reruns of (OpenLineage parents).
    pub rerun_jobs: HashMap<String, String>,
}

impl Export {
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
    let c = &run.capture;
    let cwd = String::from_utf8_lossy(&run.cwd).into_owned();
    let base = c.git.as_ref().map_or(cwd.as_str(), |g| g.root.as_str());
    let project = Path::new(base)
        .file_name()
        .map_or_else(|| "root".to_string(), |n| n.to_string_lossy().into_owned());
    let program = match &c.script {
        Some(s) => {
            // Relative to the repository root when the script lives inside it.
            let abs = Path::new(&cwd).join(&s.path);
            abs.strip_prefix(base)
                .map_or_else(|_| s.path.clone(), |p| p.to_string_lossy().into_owned())
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
