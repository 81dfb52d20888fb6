//! What users say about a run after it ran (`lineage tag`, `lineage note`): annotations,
//! kept apart from the run's record, which never changes. Plain data; the store keeps them
//! (`store/annotations.rs`), `show` and the exports read them.

use serde::Serialize;

/// Longest a tag name may be, in bytes.
pub const MAX_TAG: usize = 100;

/// Longest a note may be, in bytes.
pub const MAX_NOTE: usize = 64 * 1024;

/// What an annotation says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnotationKind {
    /// The name in `text` names this run (and no other) from now on.
    Tag,
    /// The name in `text` no longer names this run.
    Untag,
    /// Free text about the run.
    Note,
}

impl AnnotationKind {
    /// As stored: `tag`, `untag`, `note`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnotationKind::Tag => "tag",
            AnnotationKind::Untag => "untag",
            AnnotationKind::Note => "note",
        }
    }

    /// From its stored form.
    pub fn parse(s: &str) -> Option<AnnotationKind> {
        match s {
            "tag" => Some(AnnotationKind::Tag),
            "untag" => Some(AnnotationKind::Untag),
            "note" => Some(AnnotationKind::Note),
            _ => None,
        }
    }
}

/// One annotation, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    /// A UUIDv7, made when it was recorded.
    pub id: String,
    /// The run it is about.
    pub run_id: String,
    /// What it says.
    pub kind: AnnotationKind,
    /// The tag's name, or the note (secrets redacted).
    pub text: String,
    /// RFC 3339 UTC, microseconds.
    pub created_at: String,
    /// The login name of the user who made it (a claim; the signature is the proof).
    pub author: String,
    /// The signer's key, `ed25519:<hex>`, when it was signed.
    pub public_key: Option<String>,
    /// The signature over its canonical form, 128 hex digits.
    pub signature: Option<String>,
}

/// A note on a run, as shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    /// What it says (secrets redacted).
    pub text: String,
    /// Who wrote it (their login name).
    pub author: String,
    /// When, RFC 3339 UTC.
    pub created_at: String,
}

/// A tag as listed: its name, the run it names, when and by whom it was put there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TagRow {
    /// The tag.
    pub name: String,
    /// The run it names.
    pub run_id: String,
    /// When it was put there, RFC 3339 UTC.
    pub created_at: String,
    /// Who put it there (their login name).
    pub author: String,
}

/// What a run carries beside its record: the tags that name it now, and its notes, oldest
/// first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunAnnotations {
    /// The tags that name it, sorted.
    pub tags: Vec<String>,
    /// Its notes, oldest first.
    pub notes: Vec<Note>,
}

impl RunAnnotations {
    /// Neither a tag nor a note.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.notes.is_empty()
    }
}

/// Why `name` cannot be a tag, or None. A tag is accepted wherever a run id is, so it must
/// never read as one: a name made only of hex digits and hyphens (`cafe`, `0192-ab`) is
/// refused, and so are names that would read as something else on the command line (an
/// option, a `blake3:` hash) or print as something else (control, space, non-ASCII).
pub fn tag_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("it is empty");
    }
    if name.len() > MAX_TAG {
        return Some("it is longer than 100 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b'+' | b'@'))
    {
        return Some("only ASCII letters, digits and . _ - / + @ may be in a tag");
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Some("it must start with a letter or a digit");
    }
    if name.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Some("hex digits and hyphens alone read as a run id");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_never_read_as_run_ids_or_options() {
        for ok in [
            "best",
            "v1.2",
            "baseline/2026-11",
            "exp+lr@0.1",
            "Deadbeefs",
            "g0",
        ] {
            assert_eq!(tag_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "cafe",
            "0192e5a0",
            "DEAD-beef",
            "-x",
            ".hidden",
            "a b",
            "tab\t",
            "é",
            "blake3:ab",
            "a\u{202e}b",
        ] {
            assert!(tag_name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(tag_name_problem(&"x".repeat(101)).is_some());
    }
}
