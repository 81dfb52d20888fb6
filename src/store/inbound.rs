//! What a row from outside must be before it enters the store. A bundle file and a team
//! store's rows are not trusted (docs/security.md): every value is type-checked against
//! `schema::SYNCED`, every field validated (ids are UUIDs, hashes 64 lowercase hex, statuses
//! and roles known, times RFC 3339, paths that name places inside a worktree relative and
//! without `..`, no NUL anywhere and no control character in what is not free text), every
//! blob re-hashed and every directory manifest folded back into its Merkle hash. A violation
//! is one line naming the table, the row and the field.

use rusqlite::types::Value;

use super::schema::{Kind, Table};
use crate::hash::DIR_CONTEXT;
use crate::model::{ArtifactKind, Capture, Hash, Role, Status};

/// A field's rule, beyond its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// A UUID in its canonical lowercase hyphenated form.
    Uuid,
    /// 64 lowercase hex digits.
    Hash,
    /// A git object id: 40 or 64 lowercase hex digits.
    GitCommit,
    Status,
    Role,
    ArtifactKind,
    /// RFC 3339.
    Time,
    /// Non-negative.
    Count,
    /// 0 or 1.
    Bool,
    /// A short name (host, boot id, algorithm): no control characters.
    Name,
    /// Free text from a job (paths as typed, keys, sources): no NUL; the rest is escaped
    /// wherever it is shown.
    Text,
    /// Bytes from a job (argv, cwd): anything.
    Bytes,
    /// A path inside a directory: relative, `/`-separated, no empty, `.` or `..` component.
    RelPath,
    /// JSON of a `Capture`.
    Capture,
    /// A JSON scalar (a param's value).
    JsonScalar,
    /// An extra digest's algorithm: `sha256` or `dirHash`.
    Algorithm,
    /// Any integer.
    Int,
    /// An integer that fits 32 bits (an exit code, a signal).
    Int32,
    /// JSON of a run's `Resources`.
    Resources,
    /// A finite number (a metric).
    Finite,
    /// Which of an output's bytes its run wrote: 0, 1 or 2 (`model::Written`).
    Written,
    /// What observing the job said of an edge: 0, 1 or 2 (`model::Seen`).
    Observed,
    /// A JSON array of paths inside a directory (each a `RelPath`).
    KeptPaths,
    /// `ed25519:<64 lowercase hex>`.
    PublicKey,
    /// 128 lowercase hex digits.
    Signature,
    /// An annotation's kind: `tag`, `untag` or `note`.
    AnnotationKind,
}

/// The rule for each synced column, and whether it may be NULL.
fn rule(table: &str, column: &str) -> (Rule, bool) {
    use Rule::*;
    match (table, column) {
        ("artifacts", "hash") => (Hash, false),
        ("artifacts", "kind") => (ArtifactKind, false),
        ("artifacts", "size" | "file_count") => (Count, false),
        ("dir_entries", "dir_hash" | "file_hash") => (Hash, false),
        ("dir_entries", "path") => (RelPath, false),
        ("dir_entries", "size") => (Count, false),
        ("dir_entries", "executable") => (Bool, false),
        ("runs", "id") => (Uuid, false),
        ("runs", "rerun_of") => (Uuid, true),
        ("runs", "status") => (Status, false),
        ("runs", "argv" | "cwd") => (Bytes, false),
        ("runs", "started_at") => (Time, false),
        ("runs", "ended_at") => (Time, true),
        ("runs", "exit_code" | "signal") => (Int32, true),
        ("runs", "pid" | "pid_start") => (Int, true),
        ("runs", "hostname" | "boot_id") => (Name, true),
        ("runs", "git_commit") => (GitCommit, true),
        ("runs", "git_dirty") => (Bool, true),
        ("runs", "code_hash") => (Hash, true),
        ("runs", "capture") => (Capture, false),
        ("runs", "resources") => (Resources, true),
        ("edges", "run_id") => (Uuid, false),
        ("edges", "role") => (Role, false),
        ("edges", "position") => (Count, false),
        ("edges", "artifact") => (Hash, true),
        ("edges", "path" | "abs_path") => (Text, false),
        ("edges", "missing" | "changed") => (Bool, false),
        ("edges", "written") => (Written, true),
        ("edges", "kept") => (KeptPaths, true),
        ("edges", "observed") => (Observed, true),
        ("params", "run_id") => (Uuid, false),
        ("params", "key" | "source") => (Text, false),
        ("params", "value") => (JsonScalar, false),
        ("metrics", "run_id") => (Uuid, false),
        ("metrics", "key" | "source") => (Text, false),
        ("metrics", "value") => (Finite, false),
        ("signatures", "run_id") => (Uuid, false),
        ("signatures", "public_key") => (PublicKey, false),
        ("signatures", "signature") => (Signature, false),
        ("blobs", "hash") => (Hash, false),
        ("blobs", "size") => (Count, false),
        ("blobs", "data") => (Bytes, false),
        ("extra_digests", "artifact") => (Hash, false),
        ("extra_digests", "algorithm") => (Algorithm, false),
        ("extra_digests", "digest") => (Hash, false),
        ("annotations", "id" | "run_id") => (Uuid, false),
        ("annotations", "kind") => (AnnotationKind, false),
        ("annotations", "text") => (Text, false),
        ("annotations", "created_at") => (Time, false),
        ("annotations", "author") => (Name, false),
        ("annotations", "public_key") => (PublicKey, true),
        ("annotations", "signature") => (Signature, true),
        // Every synced column has a rule (a test holds the list to it); one without is
        // refused rather than let through.
        _ => (Name, false),
    }
}

/// Check one row of `table` (values in the order of `columns`): Err is the reason, naming the
/// column, for the caller to prefix with the table and row.
pub fn check_row(table: &Table, columns: &[String], row: &[Value]) -> Result<(), String> {
    for (name, value) in columns.iter().zip(row) {
        let Some(col) = table.column(name) else {
            return Err(format!("column {name:?} is not one this lineage knows"));
        };
        let (rule, nullable) = rule(table.name, name);
        check_value(col.kind, rule, nullable, value).map_err(|e| format!("{name}: {e}"))?;
    }
    match table.name {
        "blobs" => {
            let (hash, size, data) = (
                text(row, columns, "hash"),
                int(row, columns, "size"),
                bytes(row, columns, "data"),
            );
            if let (Some(hash), Some(data)) = (hash, data) {
                if Hash::of(data).to_hex() != hash {
                    return Err("data: its bytes do not hash to the row's hash".into());
                }
                if size != Some(data.len() as i64) {
                    return Err("size: not the length of its data".into());
                }
            }
        }
        "runs" => {
            if let (Some(id), Some(of)) = (text(row, columns, "id"), text(row, columns, "rerun_of"))
                && id == of
            {
                return Err("rerun_of: a run cannot be a rerun of itself".into());
            }
            // The column a rerun compares is the capture's code hash, checked above.
            if let Some(capture) = text(row, columns, "capture")
                && let Ok(c) = serde_json::from_str::<crate::model::Capture>(capture)
            {
                let recorded = text(row, columns, "code_hash");
                let of_capture = c.git.as_ref().map(|g| g.code.to_hex());
                if recorded.is_some() && recorded != of_capture.as_deref() {
                    return Err("code_hash: not the code hash of the record's git state".into());
                }
            }
            if let (Some(id), Some(started)) =
                (text(row, columns, "id"), text(row, columns, "started_at"))
            {
                check_run_time(id, started)?;
            }
            if let (Some(started), Some(ended)) = (
                text(row, columns, "started_at"),
                text(row, columns, "ended_at"),
            ) {
                // Both in lineage's one spelling (checked above), so text order is time order.
                if ended < started {
                    return Err(format!(
                        "ended_at: {} is before the run started ({})",
                        show(ended),
                        show(started)
                    ));
                }
                let soon = jiff::Timestamp::now()
                    .checked_add(jiff::SignedDuration::from_hours(1))
                    .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
                    .unwrap_or_default();
                if ended > soon.as_str() {
                    return Err(format!("ended_at: {} is in the future", show(ended)));
                }
            }
            if let (Some(status), Some(end)) = (
                text(row, columns, "status"),
                columns.iter().position(|c| c == "ended_at"),
            ) {
                if status == "running" {
                    return Err("status: a run still going never travels".into());
                }
                if row[end] == Value::Null {
                    return Err("ended_at: a finished run has an end".into());
                }
            }
        }
        "edges" => {
            let role = text(row, columns, "role");
            let written = int(row, columns, "written");
            let kept = text(row, columns, "kept");
            if int(row, columns, "observed") == Some(0) && role == Some("output") {
                return Err("observed: an output is never declared and untouched (0)".into());
            }
            if written.is_some() && role != Some("output") {
                return Err("written: only an output is written".into());
            }
            if kept.is_some() != (written == Some(2)) {
                return Err("kept: a list of files left as they were goes with written = 2, and only with it".into());
            }
        }
        "annotations" => check_annotation(columns, row)?,
        "extra_digests" => {
            let algorithm = text(row, columns, "algorithm");
            if algorithm.is_none() {
                return Err("algorithm: missing".into());
            }
        }
        _ => {}
    }
    Ok(())
}

/// An annotation (`lineage tag`, `lineage note`): a tag's name is one lineage accepts (so it
/// never reads as a run id), a note no longer than one may be, its id the UUIDv7 made when it
/// was recorded and neither in the future, and a signature, when there is one, its key's over
/// its canonical form (an annotation of a run already here is taken only signed: the
/// importer checks that).
fn check_annotation(columns: &[String], row: &[Value]) -> Result<(), String> {
    use crate::model::AnnotationKind;
    let Some(a) = super::annotations::from_row(columns, row) else {
        return Err("a column is missing".into());
    };
    match a.kind {
        AnnotationKind::Tag | AnnotationKind::Untag => {
            if let Some(why) = crate::model::tag_name_problem(&a.text) {
                return Err(format!("text: {} is not a tag ({why})", show(&a.text)));
            }
        }
        AnnotationKind::Note if a.text.len() > crate::model::MAX_NOTE => {
            return Err(format!(
                "text: a note of {} bytes is too long",
                a.text.len()
            ));
        }
        AnnotationKind::Note => {}
    }
    if a.author.is_empty() || a.author.len() > 256 {
        return Err("author: not a user name".into());
    }
    check_run_time(&a.id, &a.created_at).map_err(|e| {
        e.replace("started_at", "created_at")
            .replace("run's start", "annotation's time")
    })?;
    match (&a.public_key, &a.signature) {
        (None, None) => {}
        (Some(_), Some(_)) => {
            if super::annotations::signature_checks(&a) != Some(true) {
                return Err("signature: not its key's over the annotation".into());
            }
        }
        _ => return Err("public_key and signature: one without the other".into()),
    }
    Ok(())
}

/// A run id is the UUIDv7 lineage made when the run started: its time is the run's start
/// (within a day), and neither is in the future (an hour of clock skew allowed), so no
/// imported run can sort after every run still to come.
fn check_run_time(id: &str, started: &str) -> Result<(), String> {
    const DAY_MS: i64 = 86_400_000;
    let u = uuid::Uuid::try_parse(id).map_err(|_| format!("id: {} is not a UUID", show(id)))?;
    let Some(ts) = u.get_timestamp().filter(|_| u.get_version_num() == 7) else {
        return Err(format!("id: {} is not a UUIDv7", show(id)));
    };
    let (secs, nanos) = ts.to_unix();
    let id_ms = secs as i64 * 1000 + i64::from(nanos / 1_000_000);
    let start_ms = started
        .parse::<jiff::Timestamp>()
        .map_err(|_| format!("started_at: {} is not an RFC 3339 time", show(started)))?
        .as_millisecond();
    let now_ms = jiff::Timestamp::now().as_millisecond();
    if (id_ms - start_ms).abs() > DAY_MS {
        return Err(format!(
            "id: its time is not the run's start ({})",
            show(started)
        ));
    }
    if start_ms > now_ms + DAY_MS / 24 {
        return Err(format!("started_at: {} is in the future", show(started)));
    }
    // The id orders `list` and picks the latest run: one from the future would stay on top.
    if id_ms > now_ms + DAY_MS / 24 {
        return Err("id: its time is in the future".into());
    }
    Ok(())
}

fn index(columns: &[String], name: &str) -> Option<usize> {
    columns.iter().position(|c| c == name)
}

fn text<'a>(row: &'a [Value], columns: &[String], name: &str) -> Option<&'a str> {
    match index(columns, name).map(|i| &row[i]) {
        Some(Value::Text(s)) => Some(s),
        _ => None,
    }
}

fn int(row: &[Value], columns: &[String], name: &str) -> Option<i64> {
    match index(columns, name).map(|i| &row[i]) {
        Some(Value::Integer(n)) => Some(*n),
        _ => None,
    }
}

fn bytes<'a>(row: &'a [Value], columns: &[String], name: &str) -> Option<&'a [u8]> {
    match index(columns, name).map(|i| &row[i]) {
        Some(Value::Blob(b)) => Some(b),
        _ => None,
    }
}

fn check_value(kind: Kind, rule: Rule, nullable: bool, value: &Value) -> Result<(), String> {
    match (kind, value) {
        (_, Value::Null) if nullable => Ok(()),
        (_, Value::Null) => Err("is NULL".into()),
        (Kind::Int, Value::Integer(n)) => check_int(rule, *n),
        (Kind::Text, Value::Text(s)) => check_text(rule, s),
        (Kind::Bytes, Value::Blob(_)) => Ok(()),
        (Kind::Real, Value::Real(f)) if f.is_finite() => Ok(()),
        (Kind::Real, Value::Real(_)) => Err("is not a finite number".into()),
        // SQLite stores a REAL that is a whole number as it was given: 3 for 3.0.
        (Kind::Real, Value::Integer(_)) => Ok(()),
        (want, got) => Err(format!(
            "holds {} where {} belongs",
            value_type(got),
            match want {
                Kind::Int => "an integer",
                Kind::Text => "text",
                Kind::Bytes => "bytes",
                Kind::Real => "a number",
            }
        )),
    }
}

fn value_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Integer(_) => "an integer",
        Value::Real(_) => "a real number",
        Value::Text(_) => "text",
        Value::Blob(_) => "bytes",
    }
}

fn check_int(rule: Rule, n: i64) -> Result<(), String> {
    match rule {
        Rule::Count if n < 0 => Err(format!("{n} is negative")),
        Rule::Bool if n != 0 && n != 1 => Err(format!("{n} is not 0 or 1")),
        Rule::Written if !(0..=2).contains(&n) => Err(format!("{n} is not 0, 1 or 2")),
        Rule::Observed if !(0..=3).contains(&n) => Err(format!("{n} is not 0, 1, 2 or 3")),
        Rule::Int32 if i32::try_from(n).is_err() => Err(format!("{n} does not fit 32 bits")),
        _ => Ok(()),
    }
}

/// `s` shown shortened and escaped, for a message.
fn show(s: &str) -> String {
    let short: String = s.chars().take(80).collect();
    format!("{short:?}")
}

fn check_text(rule: Rule, s: &str) -> Result<(), String> {
    if s.contains('\0') {
        return Err(format!("{} holds a NUL", show(s)));
    }
    let ok = match rule {
        Rule::Uuid => is_uuid(s),
        Rule::Hash => is_hex(s, 64),
        Rule::GitCommit => is_hex(s, 40) || is_hex(s, 64),
        Rule::Status => Status::parse(s).is_some(),
        Rule::Role => Role::parse(s).is_some(),
        Rule::ArtifactKind => ArtifactKind::parse(s).as_str() == s,
        // Exactly as lineage writes times (UTC, microseconds): they are compared as text
        // (causes before effects), so another spelling of the same instant is refused.
        Rule::Time => s
            .parse::<jiff::Timestamp>()
            .is_ok_and(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string() == s),
        Rule::Name => !s.chars().any(char::is_control),
        Rule::Text => true,
        Rule::RelPath => return check_rel_path(s),
        Rule::KeptPaths => {
            let paths: Vec<String> = serde_json::from_str(s)
                .map_err(|_| format!("{} is not a JSON array of paths", show(s)))?;
            for p in &paths {
                check_rel_path(p)?;
            }
            return Ok(());
        }
        Rule::Capture => return check_capture(s),
        Rule::Resources => serde_json::from_str::<crate::model::Resources>(s).is_ok(),
        Rule::JsonScalar => serde_json::from_str::<serde_json::Value>(s)
            .is_ok_and(|v| !v.is_array() && !v.is_object()),
        Rule::Algorithm => s == "sha256" || s == "dirHash",
        Rule::PublicKey => crate::sign::parse_public_key(s).is_some(),
        Rule::Signature => crate::sign::is_signature(s),
        Rule::AnnotationKind => crate::model::AnnotationKind::parse(s).is_some(),
        Rule::Count
        | Rule::Bool
        | Rule::Finite
        | Rule::Written
        | Rule::Observed
        | Rule::Int
        | Rule::Int32
        | Rule::Bytes => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{} is not {}", show(s), describe(rule)))
    }
}

fn describe(rule: Rule) -> &'static str {
    match rule {
        Rule::Uuid => "a UUID",
        Rule::Hash => "64 lowercase hex digits",
        Rule::GitCommit => "a git commit id",
        Rule::Status => "a run status",
        Rule::Role => "input, output or config",
        Rule::ArtifactKind => "file or dir",
        Rule::Time => "a UTC time as lineage writes it (2026-12-01T09:30:00.000000Z)",
        Rule::Name => "a name without control characters",
        Rule::Resources => "a run's resources",
        Rule::JsonScalar => "a JSON scalar",
        Rule::Algorithm => "sha256 or dirHash",
        Rule::PublicKey => "an ed25519 public key",
        Rule::Signature => "an ed25519 signature",
        Rule::AnnotationKind => "tag, untag or note",
        _ => "of the right type",
    }
}

/// A UUID as lineage writes it: lowercase, hyphenated.
pub fn is_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A path naming a place inside a directory (a manifest entry, an untracked file, a changed
/// file): relative, `/`-separated, no empty, `.` or `..` component, no control character.
pub fn check_rel_path(s: &str) -> Result<(), String> {
    let bad = s.is_empty()
        || s.starts_with('/')
        || s.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        || s.chars().any(char::is_control);
    if bad {
        Err(format!(
            "{} is not a relative path inside its directory",
            show(s)
        ))
    } else {
        Ok(())
    }
}

/// A run's capture: JSON this lineage reads, whose paths inside the repository stay inside it.
fn check_capture(s: &str) -> Result<(), String> {
    let capture: Capture =
        serde_json::from_str(s).map_err(|e| format!("cannot be read as a capture ({e})"))?;
    // A variable's name is what an environment can hold: `PATH=/evil` as a name would become
    // a PATH the rerun plan never shows.
    for name in capture.env.keys().chain(capture.env_redacted.keys()) {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(format!(
                "environment variable name {} is not one an environment can hold",
                show(name)
            ));
        }
    }
    if let Some(git) = &capture.git {
        for f in &git.untracked {
            check_rel_path(&f.path).map_err(|e| format!("untracked file {e}"))?;
            // Git never lists what is inside `.git`: restored, it would be the worktree's
            // repository (a `.git` file pointing at another one).
            if f.path.split('/').any(|c| c.eq_ignore_ascii_case(".git")) {
                return Err(format!("untracked file {} is inside .git", show(&f.path)));
            }
        }
        for f in &git.changed_files {
            check_rel_path(f).map_err(|e| format!("changed file {e}"))?;
        }
        // The code hash says what a rerun restores and compares: it must be the hash of the
        // commit, patch and untracked files the record holds, not a claim of its own.
        if git.code
            != crate::model::GitState::code_of(
                git.commit.as_deref(),
                git.patch.as_ref(),
                &git.untracked,
                git.untracked_rest.as_ref(),
            )
        {
            return Err(
                "git.code is not the hash of the record's commit, patch and untracked files".into(),
            );
        }
    }
    Ok(())
}

/// A manifest entry: path (as stored), file hash, size, executable.
pub type Entry = (String, Hash, u64, bool);

/// The Merkle hash of a directory from its manifest (`hash::DIR_CONTEXT`, docs/hashing.md),
/// with its total size and file count. `entries` in any order: they are put in walk order
/// (depth first, names sorted bytewise), which is how the hash was made.
pub fn dir_hash(entries: &mut [Entry]) -> (Hash, u64, u64) {
    // Names as their bytes (`model::path_bytes`: a name that is not UTF-8 is stored with its
    // bytes escaped), which is what the walk sorted and hashed.
    let mut raw: Vec<(Vec<u8>, &Entry)> = entries
        .iter()
        .map(|e| (crate::model::path_bytes(&e.0), e))
        .collect();
    raw.sort_by(|a, b| a.0.split(|c| *c == b'/').cmp(b.0.split(|c| *c == b'/')));
    let mut merkle = blake3::Hasher::new_derive_key(DIR_CONTEXT);
    let mut size = 0u64;
    for (path, (_, hash, file_size, executable)) in &raw {
        merkle.update(&(path.len() as u64).to_le_bytes());
        merkle.update(path);
        merkle.update(&[u8::from(*executable)]);
        merkle.update(&hash.0);
        size = size.saturating_add(*file_size);
    }
    (
        Hash(*merkle.finalize().as_bytes()),
        size,
        entries.len() as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::SYNCED;

    #[test]
    fn every_synced_column_has_a_rule_of_its_own() {
        for t in SYNCED {
            for c in t.columns {
                let fallback = rule(t.name, c.name) == (Rule::Name, false)
                    && !matches!(
                        (t.name, c.name),
                        ("runs", "hostname" | "boot_id") | ("annotations", "author")
                    );
                assert!(!fallback, "{}.{} has no rule", t.name, c.name);
            }
        }
    }

    #[test]
    fn ids_hashes_and_paths_are_checked() {
        assert!(is_uuid("0192e5a0-3b1c-7d2e-8f00-0123456789ab"));
        assert!(!is_uuid("0192E5A0-3B1C-7D2E-8F00-0123456789AB"));
        assert!(!is_uuid("ééééééééé"));
        assert!(!is_uuid("x' OR 1=1 --"));
        assert!(check_text(Rule::Hash, &"a".repeat(64)).is_ok());
        assert!(check_text(Rule::Hash, &"A".repeat(64)).is_err());
        assert!(check_text(Rule::Hash, &"a".repeat(63)).is_err());
        for bad in [
            "/tmp/x",
            "../../../x",
            "a/../../x",
            "a//b",
            "",
            "a\nb",
            "./a",
        ] {
            assert!(check_rel_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_rel_path("data/train.csv").is_ok());
        assert!(check_rel_path("a..b/c").is_ok());
    }

    #[test]
    fn a_manifest_folds_back_into_the_hash_the_walk_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for (p, body) in [("a.txt", "1"), ("a/b", "2"), ("a/c/d", "3"), ("b", "4")] {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, body).expect("write");
        }
        let hashing = crate::hash::Hashing::default();
        let mut entries = Vec::new();
        let hashed = hashing
            .hash_path(
                root,
                &mut |chunk: &[crate::model::DirEntry]| {
                    entries.extend(
                        chunk
                            .iter()
                            .map(|e| (e.path.clone(), e.hash, e.size, e.executable)),
                    );
                    Ok(())
                },
                None,
                None,
            )
            .expect("hash");
        entries.reverse();
        let (hash, size, count) = dir_hash(&mut entries);
        assert_eq!(hash, hashed.artifact.hash);
        assert_eq!((size, count), (4, 4));
        entries[0].2 += 1;
        entries[0].1 = Hash::of(b"other");
        assert_ne!(dir_hash(&mut entries).0, hashed.artifact.hash);
    }
}
