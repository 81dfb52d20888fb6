//! Metrics: the numbers a job reports in the files declared with `-m` (or matched by the
//! settings' `[run] metrics` patterns), read once it has ended and flattened like params
//! (`eval.roc_auc`). Only a file the job wrote counts: one left from an earlier job would
//! credit this run with someone else's numbers. Values that are not finite numbers are left
//! out, with a note. Reading a file is best effort: a problem is a note, never a failed job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::capture::config;
use crate::model::{Metric, path_text};

/// A metrics file larger than this is not read (a note says so).
const MAX_FILE_BYTES: u64 = 16 << 20;
/// At most this many metrics are kept for a run.
const MAX_METRICS: usize = 10_000;

/// The metrics of a job that started at `start`: from each declared file (as given, relative
/// to `cwd`), then each file a settings pattern matches, in that order; a key already read
/// from an earlier file keeps that value (a note names the later file).
pub fn read(
    cwd: &Path,
    declared: &[PathBuf],
    patterns: &[String],
    start: SystemTime,
    notes: &mut Vec<String>,
) -> Vec<Metric> {
    let mut files: Vec<(PathBuf, bool)> = declared.iter().map(|p| (p.clone(), true)).collect();
    for pattern in patterns {
        for found in matching(cwd, pattern) {
            if !files.iter().any(|(f, _)| same(cwd, f, &found)) {
                files.push((found, false));
            }
        }
    }
    let mut out: BTreeMap<String, Metric> = BTreeMap::new();
    let mut skipped = 0usize;
    let mut over = false;
    for (file, was_declared) in files {
        let shown = path_text(std::os::unix::ffi::OsStrExt::as_bytes(file.as_os_str()));
        let abs = cwd.join(&file);
        let meta = match std::fs::metadata(&abs) {
            Ok(m) if m.is_file() => m,
            Ok(_) => {
                notes.push(format!(
                    "metrics file {shown} is not a file: no metrics read from it"
                ));
                continue;
            }
            Err(e) => {
                if was_declared {
                    notes.push(format!("metrics file {shown} could not be read: {e}"));
                }
                continue;
            }
        };
        // Written by this job: modified at or after it started (a coarse clock, as the
        // observer's, so a write in the same tick counts).
        if meta.modified().is_ok_and(|m| m < start) {
            if was_declared {
                notes.push(format!(
                    "metrics file {shown} was not written by this job (older than its start): no metrics read from it"
                ));
            }
            continue;
        }
        if meta.len() > MAX_FILE_BYTES {
            notes.push(format!(
                "metrics file {shown} is over {} MiB: no metrics read from it",
                MAX_FILE_BYTES >> 20
            ));
            continue;
        }
        let bytes = match crate::hash::read_regular(&abs) {
            Ok(b) => b,
            Err(e) => {
                notes.push(format!("metrics file {shown} could not be read: {e}"));
                continue;
            }
        };
        // Python's json writes NaN and Infinity, which JSON does not have: read as nulls
        // (left out, with the note below) rather than lose the file's other numbers.
        let parsed = match config::parse(&file, &bytes).or_else(|e| {
            python_non_finite(&bytes)
                .and_then(|b| config::parse(&file, &b).ok())
                .ok_or(e)
        }) {
            Ok(p) => p,
            Err(e) => {
                notes.push(format!(
                    "metrics file {shown}: {e}; no metrics read from it"
                ));
                continue;
            }
        };
        let mut later = Vec::new();
        for (key, value) in parsed {
            let Some(value) = number(&value) else {
                skipped += 1;
                continue;
            };
            // A key is text shown and carried everywhere: a NUL would break every store
            // that takes the run (their rule for text refuses it).
            if key.contains('\0') {
                skipped += 1;
                continue;
            }
            if out.contains_key(&key) {
                later.push(key);
                continue;
            }
            if out.len() >= MAX_METRICS {
                skipped += 1;
                over = true;
                continue;
            }
            out.insert(
                key.clone(),
                Metric {
                    key,
                    value,
                    source: shown.clone(),
                },
            );
        }
        if !later.is_empty() {
            notes.push(format!(
                "metrics file {shown}: {} already read from an earlier file, kept from there",
                later.join(", ")
            ));
        }
    }
    if skipped > 0 {
        notes.push(format!(
            "{skipped} metric value{} left out: {}",
            if skipped == 1 { "" } else { "s" },
            if over {
                format!("over {MAX_METRICS} metrics, or not a finite number")
            } else {
                "not a finite number (text, a boolean, null, NaN or infinity)".into()
            }
        ));
    }
    out.into_values().collect()
}

/// `bytes` with Python's `NaN`, `Infinity` and `-Infinity` outside strings made `null`;
/// None when there are none.
fn python_non_finite(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let (mut in_string, mut escaped, mut found) = (false, false, false);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            out.push(b);
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            out.push(b);
            i += 1;
            continue;
        }
        let token = [&b"-Infinity"[..], b"Infinity", b"NaN"]
            .into_iter()
            .find(|t| bytes[i..].starts_with(t));
        match token {
            Some(t) => {
                out.extend_from_slice(b"null");
                i += t.len();
                found = true;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    found.then_some(out)
}

/// A finite number, or None (strings, booleans, nulls, NaN and infinities are not metrics).
fn number(v: &serde_json::Value) -> Option<f64> {
    v.as_f64().filter(|f| f.is_finite())
}

fn same(cwd: &Path, a: &Path, b: &Path) -> bool {
    crate::commands::absolute(&cwd.join(a)) == crate::commands::absolute(&cwd.join(b))
}

/// The files a settings pattern names: a plain path, or `dir/glob` with the wildcards in the
/// file name only, relative to `cwd`; sorted.
fn matching(cwd: &Path, pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !name.contains(['*', '?', '[']) {
        return vec![path.to_path_buf()];
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    let Ok(glob) = globset::Glob::new(name) else {
        return Vec::new();
    };
    let matcher = glob.compile_matcher();
    let Ok(entries) = std::fs::read_dir(cwd.join(dir)) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| matcher.is_match(e.file_name()))
        .map(|e| dir.join(e.file_name()))
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn write(dir: &Path, name: &str, text: &str) {
        if let Some(p) = Path::new(name).parent() {
            std::fs::create_dir_all(dir.join(p)).unwrap();
        }
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn numbers_are_read_flattened_and_the_rest_left_out_with_a_note() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "m.json",
            r#"{"eval": {"acc": 0.9, "n": 3, "name": "x", "ok": true}, "loss": null}"#,
        );
        write(d.path(), "m.yaml", "inf: .inf\nnan: .nan\n");
        let start = SystemTime::now() - Duration::from_secs(5);
        let mut notes = Vec::new();
        let m = read(
            d.path(),
            &["m.json".into(), "m.yaml".into()],
            &[],
            start,
            &mut notes,
        );
        let keys: Vec<(&str, f64)> = m.iter().map(|m| (m.key.as_str(), m.value)).collect();
        assert_eq!(keys, [("eval.acc", 0.9), ("eval.n", 3.0)]);
        assert!(m.iter().all(|m| m.source == "m.json"));
        // "x", true, null, infinity and NaN are left out.
        assert!(
            notes[0].starts_with("5 metric values left out"),
            "{notes:?}"
        );
    }

    #[test]
    fn pythons_nan_and_infinity_are_left_out_and_the_rest_kept() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "m.json",
            r#"{"loss": NaN, "acc": 0.9, "hi": Infinity, "lo": -Infinity, "name": "NaN \"Infinity\""}"#,
        );
        let start = SystemTime::now() - Duration::from_secs(5);
        let mut notes = Vec::new();
        let m = read(d.path(), &["m.json".into()], &[], start, &mut notes);
        let keys: Vec<(&str, f64)> = m.iter().map(|m| (m.key.as_str(), m.value)).collect();
        assert_eq!(keys, [("acc", 0.9)]);
        assert!(
            notes[0].starts_with("4 metric values left out"),
            "{notes:?}"
        );
    }

    #[test]
    fn a_file_older_than_the_job_is_not_its_metrics() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "m.yaml", "acc: 0.5\n");
        let start = SystemTime::now() + Duration::from_secs(60);
        let mut notes = Vec::new();
        let m = read(d.path(), &["m.yaml".into()], &[], start, &mut notes);
        assert!(m.is_empty());
        assert!(notes[0].contains("not written by this job"), "{notes:?}");
        // A pattern's file that the job did not write is passed over quietly.
        let mut notes = Vec::new();
        assert!(read(d.path(), &[], &["*.yaml".into()], start, &mut notes).is_empty());
        assert!(notes.is_empty());
    }

    #[test]
    fn patterns_match_file_names_and_an_earlier_file_keeps_its_key() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "reports/a.toml", "acc = 0.7\n");
        write(d.path(), "reports/b.json", r#"{"acc": 0.1, "f1": 0.2}"#);
        write(d.path(), "reports/skip.txt", "acc: 1");
        let start = SystemTime::now() - Duration::from_secs(5);
        let mut notes = Vec::new();
        let m = read(
            d.path(),
            &[],
            &["reports/*.toml".into(), "reports/*.json".into()],
            start,
            &mut notes,
        );
        let keys: Vec<(&str, f64, &str)> = m
            .iter()
            .map(|m| (m.key.as_str(), m.value, m.source.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("acc", 0.7, "reports/a.toml"),
                ("f1", 0.2, "reports/b.json")
            ]
        );
        assert!(notes[0].contains("acc already read"), "{notes:?}");
    }
}
