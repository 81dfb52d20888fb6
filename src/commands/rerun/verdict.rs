//! A rerun's verdict: each recorded output against what the rerun wrote, and whether the run
//! reproduced bit for bit, with the exit code each verdict means (docs/exit-codes.md).
//!
//! Only what the original job wrote is compared (docs/lineage-model.md, "Produced means
//! written"): a declared output it left untouched is not part of the verdict, and inside an
//! output directory the files it did not write (`kept`, left there by an earlier job) are
//! nobody's product, and not compared.
//!
//! Two things are looked at more closely than by hash. A directory that differs is compared
//! file by file (the two manifests the store keeps): which files were added, removed or
//! changed. And an output that differs may differ only where the job wrote its run id
//! (`LINEAGE_RUN_ID`, which is new for every run): the rerun's bytes with its id written back
//! as the original's must hash to the recorded hash (the original's bytes are not kept; their
//! hash is, and is proof enough).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use serde::Serialize;

use super::checks::{Checks, explain};
use crate::commands::run::Executed;
use crate::error::code;
use crate::model::text::escape;
use crate::model::{
    ArtifactKind, Edge, EdgeRecord, Hash, Role, RunRecord, Status, Written, path_of,
};
use crate::store::Store;

/// Files read to look for a run id written in them: larger ones are only compared by hash.
const RUN_ID_CAP: u64 = 64 << 20;

/// Bytes read in all to look for run ids, for one verdict: a directory of many large files
/// that differ is not read again whole.
const RUN_ID_BUDGET: u64 = 1 << 30;

/// The files of a directory listed in the verdict's text, each kind together; the rest is
/// counted ("and N more"). `--json` lists them all.
const FILES_SHOWN: usize = 10;

/// One recorded output, then against now.
#[derive(Serialize)]
pub struct OutputCheck {
    pub path: String,
    pub recorded: Option<Hash>,
    pub now: Option<Hash>,
    pub result: Comparison,
    /// For a directory that differs: its files, by name inside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FileChanges>,
    /// For a directory: its files that neither job wrote (left there by an earlier one),
    /// sorted; nobody's product, not compared.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_compared: Vec<String>,
}

/// What differs inside a directory output, paths relative to it, sorted.
#[derive(Serialize, Default, Debug, PartialEq, Eq)]
pub struct FileChanges {
    /// Written by the rerun only.
    pub added: Vec<String>,
    /// Recorded, not written by the rerun.
    pub removed: Vec<String>,
    /// Other bytes.
    pub changed: Vec<String>,
    /// Other bytes only where the run id is written.
    pub run_id_only: Vec<String>,
}

impl FileChanges {
    fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.run_id_only.is_empty()
    }
}

/// How an output compares with the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// The same bytes.
    Identical,
    /// Other bytes only where the run id is written: the original's id there instead of the
    /// rerun's gives the recorded bytes.
    RunIdOnly,
    /// Other bytes.
    Differs,
    /// Not written by the rerun.
    Missing,
    /// Declared, but the original job did not write it: nobody's product, not compared.
    NotWritten,
}

/// What a rerun came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The command succeeded and every output is identical: exit 0.
    Reproduced,
    /// The command succeeded and every output is identical but where the job wrote its run
    /// id: exit 0.
    ReproducedExceptRunId,
    /// The command succeeded and some output differs or is missing: exit 100.
    OutputsDiffer,
    /// The command failed: its own exit code.
    Failed,
    /// The command did not run: lineage's code (125, 126, 127).
    NotRun,
}

/// The verdict of a rerun, as `rerun --json` prints it.
#[derive(Serialize)]
pub struct Verdict {
    pub original: String,
    pub rerun: Option<String>,
    pub verdict: Outcome,
    pub exit_code: u8,
    pub outputs: Vec<OutputCheck>,
    pub checks: Checks,
    pub worktree: Option<String>,
}

impl Verdict {
    /// Compare what the rerun (`executed`) wrote with what `original` recorded. The rerun's
    /// outputs are read where it wrote them (in the worktree, if any: still there).
    pub fn of(store: &Store, original: &RunRecord, executed: &Executed, checks: Checks) -> Verdict {
        let ids = Ids::new(&original.id, &executed.id);
        let outputs: Vec<OutputCheck> = original
            .edges
            .iter()
            .filter(|e| e.role == Role::Output)
            .map(|e| {
                let rerun = executed.outputs.iter().find(|o| o.path == e.path);
                compare(store, e, rerun, &ids)
            })
            .collect();
        // What the original did not write is not part of the verdict.
        let all = |ok: &[Comparison]| {
            outputs
                .iter()
                .all(|o| o.result == Comparison::NotWritten || ok.contains(&o.result))
        };
        let (verdict, exit_code) = match executed.status {
            None => (Outcome::NotRun, executed.exit),
            Some(Status::Succeeded) if all(&[Comparison::Identical]) => {
                (Outcome::Reproduced, code::SUCCESS)
            }
            Some(Status::Succeeded) if all(&[Comparison::Identical, Comparison::RunIdOnly]) => {
                (Outcome::ReproducedExceptRunId, code::SUCCESS)
            }
            Some(Status::Succeeded) => (Outcome::OutputsDiffer, code::OUTPUTS_DIFFER),
            Some(_) => (Outcome::Failed, executed.exit),
        };
        Verdict {
            original: original.id.clone(),
            rerun: executed
                .status
                .filter(|_| executed.recorded)
                .map(|_| executed.id.clone()),
            verdict,
            exit_code,
            outputs,
            checks,
            worktree: None,
        }
    }

    /// The verdict for people: `rerun R of O: ...`, what differs and why it might.
    pub fn text(&self, rerun: &str, original: &str) -> String {
        let (rerun, original) = (escape(rerun), escape(original));
        let n = self
            .outputs
            .iter()
            .filter(|o| o.result == Comparison::Identical)
            .count();
        let mut t = match self.verdict {
            Outcome::Reproduced => {
                let mut t = format!(
                    "rerun {rerun} of {original}: reproduced bit for bit ({n} output{} identical)\n",
                    if n == 1 { "" } else { "s" }
                );
                t += &self.not_compared_lines();
                t
            }
            Outcome::ReproducedExceptRunId => {
                let mut t = format!(
                    "rerun {rerun} of {original}: reproduced; the outputs differ only where the \
                     run id is written\n"
                );
                t += &self.output_lines();
                t += &self.not_compared_lines();
                t
            }
            Outcome::OutputsDiffer => {
                let mut t = format!("rerun {rerun} of {original}: outputs differ\n");
                t += &self.output_lines();
                t += &self.not_compared_lines();
                t += "  recorded differences that could explain it:\n";
                for c in explain(&self.checks) {
                    t += &format!("    {}\n", escape(&c));
                }
                t
            }
            Outcome::Failed => format!(
                "rerun {rerun} of {original}: the command failed (exit {})\n",
                self.exit_code
            ),
            Outcome::NotRun => format!("rerun of {original}: the command did not run\n"),
        };
        if let Some(path) = &self.worktree {
            t += &format!("worktree kept at {}\n", escape(path));
        }
        t
    }

    /// What was left out of the comparison: outputs the original did not write, and files
    /// of a directory that neither job wrote (the first [`FILES_SHOWN`]).
    fn not_compared_lines(&self) -> String {
        let mut t = String::new();
        for o in &self.outputs {
            let path = escape(&o.path);
            if o.result == Comparison::NotWritten {
                t += &format!("  {path}: not written by the original: not compared\n");
            } else if !o.not_compared.is_empty() {
                let n = o.not_compared.len();
                let mut shown: Vec<String> = o
                    .not_compared
                    .iter()
                    .take(FILES_SHOWN)
                    .map(|p| escape(p).into_owned())
                    .collect();
                if n > FILES_SHOWN {
                    shown.push(format!("and {} more", n - FILES_SHOWN));
                }
                t += &format!(
                    "  {path}: {n} file{} the original did not write: not compared ({})\n",
                    if n == 1 { "" } else { "s" },
                    shown.join(", ")
                );
            }
        }
        t
    }

    /// A line per output that is not identical, and for a directory, its files.
    fn output_lines(&self) -> String {
        let mut t = String::new();
        for o in self
            .outputs
            .iter()
            .filter(|o| !matches!(o.result, Comparison::Identical | Comparison::NotWritten))
        {
            let path = escape(&o.path);
            match (o.result, &o.files) {
                (Comparison::Missing, _) => t += &format!("  missing {path}\n"),
                (Comparison::RunIdOnly, _) => {
                    t += &format!("  differs only where the run id is written: {path}\n");
                }
                (_, Some(f)) if f.is_empty() => {
                    t += &format!("  differs {path} (no file's bytes differ: file modes do)\n");
                }
                (_, Some(f)) => {
                    let mut counts = Vec::new();
                    for (n, what) in [
                        (f.changed.len(), "changed"),
                        (f.added.len(), "added"),
                        (f.removed.len(), "removed"),
                        (
                            f.run_id_only.len(),
                            "differing only where the run id is written",
                        ),
                    ] {
                        if n > 0 {
                            counts
                                .push(format!("{n} file{} {what}", if n == 1 { "" } else { "s" }));
                        }
                    }
                    t += &format!("  differs {path} ({})\n", counts.join(", "));
                    t += &file_lines(&o.path, f);
                }
                _ => t += &format!("  differs {path}\n"),
            }
        }
        t
    }
}

/// `    changed eval/metrics.json`, the first [`FILES_SHOWN`] files, then `and N more`.
fn file_lines(dir: &str, f: &FileChanges) -> String {
    let all = [
        ("changed", &f.changed),
        ("added", &f.added),
        ("removed", &f.removed),
        ("differs only where the run id is written:", &f.run_id_only),
    ];
    let total: usize = all.iter().map(|(_, v)| v.len()).sum();
    let mut t = String::new();
    let dir = dir.trim_end_matches('/');
    for (what, path) in all
        .iter()
        .flat_map(|(what, v)| v.iter().map(move |p| (*what, p)))
        .take(FILES_SHOWN)
    {
        t += &format!("    {what} {}\n", escape(&format!("{dir}/{path}")));
    }
    if total > FILES_SHOWN {
        t += &format!("    and {} more\n", total - FILES_SHOWN);
    }
    t
}

/// One recorded output against what the rerun left at its path: only what the original wrote
/// (an output it did not write at all is `NotWritten`; inside a directory, the files it did
/// not write are not compared).
fn compare(store: &Store, e: &EdgeRecord, rerun: Option<&Edge>, ids: &Ids) -> OutputCheck {
    let recorded = e.artifact.as_ref().map(|a| a.hash);
    let now_artifact = rerun.and_then(|o| o.artifact.as_ref());
    let now = now_artifact.map(|a| a.hash);
    let mut check = OutputCheck {
        path: e.path.clone(),
        recorded,
        now,
        result: Comparison::Differs,
        files: None,
        not_compared: Vec::new(),
    };
    // Recorded before lineage told what was written: all of it counts.
    let written = e.written.clone().unwrap_or(Written::All);
    if written == Written::Nothing {
        check.result = Comparison::NotWritten;
        return check;
    }
    let (Some(rec), Some(now_a), Some(rerun)) = (e.artifact.as_ref(), now_artifact, rerun) else {
        if now.is_none() {
            check.result = Comparison::Missing;
        }
        return check;
    };
    if rec.hash == now_a.hash {
        check.result = Comparison::Identical;
        return check;
    }
    let at = path_of(&rerun.abs_path);
    match (rec.kind, now_a.kind) {
        (ArtifactKind::File, ArtifactKind::File)
            if rec.size == now_a.size && ids.explains(&at, now_a.hash, rec.hash) =>
        {
            check.result = Comparison::RunIdOnly;
        }
        (ArtifactKind::Dir, ArtifactKind::Dir) => {
            let (Ok(then), Ok(now_files)) =
                (store.dir_entries(&rec.hash), store.dir_entries(&now_a.hash))
            else {
                return check;
            };
            // A manifest the store lacks (not recorded, or not imported) tells nothing.
            if (then.is_empty() && rec.file_count > 0)
                || (now_files.is_empty() && now_a.file_count > 0)
            {
                return check;
            }
            let rerun_wrote = |p: &str| rerun.written.as_ref().is_none_or(|w| w.wrote(p));
            let mut f = FileChanges::default();
            let mut not_compared = std::collections::BTreeSet::new();
            let sizes: BTreeMap<&str, u64> =
                then.iter().map(|(p, _, n)| (p.as_str(), *n)).collect();
            // The files the original wrote: those compared.
            let then: BTreeMap<String, Hash> = then
                .iter()
                .filter(|(p, _, _)| {
                    let wrote = written.wrote(p);
                    if !wrote {
                        not_compared.insert(p.clone());
                    }
                    wrote
                })
                .map(|(p, h, _)| (p.clone(), *h))
                .collect();
            let now_map: BTreeMap<&str, (Hash, u64)> = now_files
                .iter()
                .map(|(p, h, n)| (p.as_str(), (*h, *n)))
                .collect();
            for (p, h) in &then {
                match now_map.get(p.as_str()) {
                    None => f.removed.push(p.clone()),
                    Some((n, _)) if n == h => {}
                    // The id written back keeps the size: other sizes differ otherwise too.
                    Some((n, size))
                        if sizes.get(p.as_str()) == Some(size)
                            && ids.explains(&at.join(path_of(p)), *n, *h) =>
                    {
                        f.run_id_only.push(p.clone());
                    }
                    Some(_) => f.changed.push(p.clone()),
                }
            }
            // Written by the rerun and not by the original: added. Neither wrote it: left
            // there by an earlier job, not compared.
            for p in now_map.keys().filter(|p| !then.contains_key(**p)) {
                if rerun_wrote(p) {
                    f.added.push(p.to_string());
                } else {
                    not_compared.insert(p.to_string());
                }
            }
            check.not_compared = not_compared.into_iter().collect();
            let compared_the_same =
                f.added.is_empty() && f.removed.is_empty() && f.changed.is_empty();
            if compared_the_same && !check.not_compared.is_empty() {
                // The hashes differ by what was not compared (or by modes, which the
                // manifests do not hold file by file).
                if f.run_id_only.is_empty() {
                    check.result = Comparison::Identical;
                    return check;
                }
                check.result = Comparison::RunIdOnly;
            } else if compared_the_same
                && !f.run_id_only.is_empty()
                && same_but_run_id(&at, &now_files, now_a.hash, &then, rec.hash)
            {
                check.result = Comparison::RunIdOnly;
            }
            check.files = Some(f);
        }
        _ => {}
    }
    check
}

/// Whether the rerun's directory at `at` (its manifest `now`, hashing to `now_hash`) with the
/// recorded bytes in place of its files' (`then`) folds into the recorded hash: proof that
/// nothing else differs (file modes, which manifests as the store returns them leave out).
fn same_but_run_id(
    at: &Path,
    now: &[(String, Hash, u64)],
    now_hash: Hash,
    then: &BTreeMap<String, Hash>,
    recorded: Hash,
) -> bool {
    let mut entries = Vec::with_capacity(now.len());
    for (p, h, size) in now {
        let Ok(meta) = std::fs::symlink_metadata(at.join(path_of(p))) else {
            return false;
        };
        let executable = meta.is_file() && meta.permissions().mode() & 0o111 != 0;
        entries.push((p.clone(), *h, *size, executable));
    }
    // The modes read now must be those the rerun recorded.
    if crate::store::dir_hash(&mut entries.clone()).0 != now_hash {
        return false;
    }
    for e in &mut entries {
        if let Some(h) = then.get(&e.0) {
            e.1 = *h;
        }
    }
    crate::store::dir_hash(&mut entries).0 == recorded
}

/// The two run ids in the forms a job may write them: the UUID as given (`LINEAGE_RUN_ID`),
/// without its hyphens, each in upper case too; and its first 8 characters.
struct Ids {
    /// Rerun's form -> the original's, longest first.
    forms: Vec<(Vec<u8>, Vec<u8>)>,
    /// The 8-character prefixes (when they differ).
    prefix: Option<(Vec<u8>, Vec<u8>)>,
    /// Bytes left to read (`RUN_ID_BUDGET`).
    budget: std::cell::Cell<u64>,
}

impl Ids {
    fn new(original: &str, rerun: &str) -> Ids {
        let variants = |id: &str| {
            let hex = id.replace('-', "");
            [
                id.to_string(),
                id.to_uppercase(),
                hex.clone(),
                hex.to_uppercase(),
            ]
        };
        let mut forms: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (r, o) in variants(rerun).into_iter().zip(variants(original)) {
            if r != o && r.len() == o.len() && !forms.iter().any(|(f, _)| *f == r.as_bytes()) {
                forms.push((r.into_bytes(), o.into_bytes()));
            }
        }
        let prefix = match (rerun.get(..8), original.get(..8)) {
            (Some(r), Some(o)) if r != o => Some((r.as_bytes().to_vec(), o.as_bytes().to_vec())),
            _ => None,
        };
        Ids {
            forms,
            prefix,
            budget: std::cell::Cell::new(RUN_ID_BUDGET),
        }
    }

    /// Whether the file at `at` (which must still hash to `now`) with the rerun's id written
    /// back as the original's hashes to `recorded`.
    fn explains(&self, at: &Path, now: Hash, recorded: Hash) -> bool {
        if self.forms.is_empty() {
            return false;
        }
        let Ok(meta) = std::fs::symlink_metadata(at) else {
            return false;
        };
        if !meta.is_file() || meta.len() > RUN_ID_CAP || meta.len() > self.budget.get() {
            return false;
        }
        self.budget.set(self.budget.get() - meta.len());
        let Ok(bytes) = std::fs::read(at) else {
            return false;
        };
        if Hash::of(&bytes) != now {
            return false;
        }
        let whole = replace(&bytes, &self.forms);
        if whole != bytes && Hash::of(&whole) == recorded {
            return true;
        }
        self.prefix.as_ref().is_some_and(|p| {
            let short = replace(&whole, std::slice::from_ref(p));
            short != whole && Hash::of(&short) == recorded
        })
    }
}

/// `bytes` with every occurrence of each `from` replaced by its `to` (same length), the
/// first form that matches at a position winning.
fn replace(bytes: &[u8], forms: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    'outer: while i < bytes.len() {
        for (from, to) in forms {
            if !from.is_empty() && bytes[i..].starts_with(from) {
                out.extend_from_slice(to);
                i += from.len();
                continue 'outer;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: &str = "01a23000-0000-7000-8000-00000000000a";
    const R: &str = "01a23111-1111-7111-8111-11111111111b";

    #[test]
    fn every_form_of_the_run_id_is_written_back() {
        let ids = Ids::new(O, R);
        let hex = R.replace('-', "");
        let text = format!("id={R} hex={hex} UP={}\n", R.to_uppercase());
        let back = replace(text.as_bytes(), &ids.forms);
        let want = format!(
            "id={O} hex={} UP={}\n",
            O.replace('-', ""),
            O.to_uppercase()
        );
        assert_eq!(String::from_utf8_lossy(&back), want);
    }

    #[test]
    fn a_file_differing_only_by_the_run_id_is_told_apart_from_one_that_differs() {
        let dir = tempfile::tempdir().expect("tmp");
        let ids = Ids::new(O, R);
        let original = format!("epoch 3, run {O}, loss 0.25\n");
        let at = dir.path().join("ckpt.txt");
        std::fs::write(&at, format!("epoch 3, run {R}, loss 0.25\n")).expect("write");
        let now = Hash::of(&std::fs::read(&at).expect("read"));
        assert!(ids.explains(&at, now, Hash::of(original.as_bytes())));
        // Another difference besides the id: not explained.
        std::fs::write(&at, format!("epoch 3, run {R}, loss 0.26\n")).expect("write");
        let now = Hash::of(&std::fs::read(&at).expect("read"));
        assert!(!ids.explains(&at, now, Hash::of(original.as_bytes())));
        // Bytes that are no longer those the rerun recorded: not looked at.
        assert!(!ids.explains(&at, Hash::of(b"x"), Hash::of(original.as_bytes())));
        // The first 8 characters.
        let short = format!("run {}\n", &O[..8]);
        std::fs::write(&at, format!("run {}\n", &R[..8])).expect("write");
        let now = Hash::of(&std::fs::read(&at).expect("read"));
        assert!(ids.explains(&at, now, Hash::of(short.as_bytes())));
    }

    #[test]
    fn a_directory_lists_its_files_and_cuts_the_list() {
        let f = FileChanges {
            added: (0..12).map(|i| format!("new{i:02}.txt")).collect(),
            removed: vec!["old.txt".into()],
            changed: vec!["metrics.json".into()],
            run_id_only: Vec::new(),
        };
        let t = file_lines("eval/", &f);
        assert!(
            t.starts_with("    changed eval/metrics.json\n    added eval/new00.txt\n"),
            "{t}"
        );
        assert_eq!(t.lines().count(), FILES_SHOWN + 1, "{t}");
        assert!(t.ends_with("    and 4 more\n"), "{t}");
    }
}
