//! Annotations (`lineage tag`, `lineage note`): what users say about a run after it ran,
//! as append-only rows of their own (a run in the store never changes). A tag names one
//! run: its current run is its latest `tag` or `untag` row by (created_at, id), so two
//! stores that tagged the same name each a run of their own agree, once synced, on the
//! later one. Each row is signed by its author's key over its canonical form, so a row
//! pulled or imported from elsewhere is checked before it is taken.

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::Store;
use crate::error::Error;
use crate::model::{Annotation, AnnotationKind, Note, RunAnnotations, TagRow};
use crate::redact::Redacted;
use crate::sign::{self, Signer};

/// Names the serialisation inside the signed bytes, so a signature over one format can never
/// be read as one over another (a run's record is `lineage-run-record/1`).
pub const FORMAT: &str = "lineage-annotation/1";

/// The canonical form: these fields, in this (sorted) order, as compact JSON.
#[derive(Serialize)]
struct Canonical<'a> {
    author: &'a str,
    created_at: &'a str,
    format: &'static str,
    id: &'a str,
    kind: &'static str,
    run_id: &'a str,
    text: &'a str,
}

/// The bytes an annotation's signature covers.
pub fn canonical(a: &Annotation) -> Vec<u8> {
    serde_json::to_vec(&Canonical {
        author: &a.author,
        created_at: &a.created_at,
        format: FORMAT,
        id: &a.id,
        kind: a.kind.as_str(),
        run_id: &a.run_id,
        text: &a.text,
    })
    .unwrap_or_default()
}

/// Whether an annotation's signature is its key's over its canonical form (None: unsigned).
pub fn signature_checks(a: &Annotation) -> Option<bool> {
    match (&a.public_key, &a.signature) {
        (Some(key), Some(sig)) => Some(sign::verify(key, &canonical(a), sig)),
        _ => None,
    }
}

/// Who makes annotations in this command: their login name and, when it could be loaded,
/// their signing key.
pub struct Author {
    /// The login name, as a run records its owner.
    pub name: String,
    /// Their key; None records the annotation unsigned.
    pub signer: Option<Signer>,
}

/// What `tag` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Tagged {
    /// The name is new, or was on no run.
    New,
    /// The name already named this run: nothing recorded.
    Already,
    /// `force`: the name moved here from this run.
    Moved {
        /// The run it named before.
        from: String,
    },
}

/// The current tags (optionally only those of the runs in the JSON array ?1): for each name,
/// its latest tag-or-untag row, when that is a tag.
const CURRENT_TAGS: &str = "SELECT a.text, a.run_id, a.created_at, a.author FROM annotations a
 WHERE a.kind = 'tag'
   AND (?1 IS NULL OR a.run_id IN (SELECT value FROM json_each(?1)))
   AND NOT EXISTS (SELECT 1 FROM annotations b
                   WHERE b.kind != 'note' AND b.text = a.text
                     AND (b.created_at, b.id) > (a.created_at, a.id))
 ORDER BY a.text";

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// The latest tag or untag of a name (`?1`): (kind, run id). A tag names the run of its
/// latest `tag`; an `untag` last means it names none.
pub(super) const LATEST_OF_TAG: &str =
    "SELECT kind, run_id FROM annotations WHERE text = ?1 AND kind != 'note'
     ORDER BY created_at DESC, id DESC LIMIT 1";

impl Store {
    /// The run the tag `name` names now, if any.
    pub fn tagged(&self, name: &str) -> Result<Option<String>> {
        let latest: Option<(String, String)> = self
            .conn
            .prepare_cached(LATEST_OF_TAG)?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(latest.and_then(|(kind, run)| (kind == "tag").then_some(run)))
    }

    /// Every tag that names a run now, by name.
    pub fn tags(&self) -> Result<Vec<TagRow>> {
        self.current_tags(None)
    }

    /// The tags that name each of these runs now (runs without one are left out), each
    /// run's sorted by name.
    pub fn tags_of(&self, run_ids: &[&str]) -> Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for t in self.current_tags(Some(serde_json::to_string(run_ids)?))? {
            out.entry(t.run_id).or_default().push(t.name);
        }
        Ok(out)
    }

    fn current_tags(&self, ids: Option<String>) -> Result<Vec<TagRow>> {
        let mut stmt = self.conn.prepare_cached(CURRENT_TAGS)?;
        let rows = stmt
            .query_map([ids], |r| {
                Ok(TagRow {
                    name: r.get(0)?,
                    run_id: r.get(1)?,
                    created_at: r.get(2)?,
                    author: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The tags and notes of these runs (runs with neither are left out).
    pub fn annotations_of(&self, run_ids: &[&str]) -> Result<HashMap<String, RunAnnotations>> {
        let mut out: HashMap<String, RunAnnotations> = HashMap::new();
        for (run, tags) in self.tags_of(run_ids)? {
            out.entry(run).or_default().tags = tags;
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT run_id, text, author, created_at FROM annotations
             WHERE kind = 'note' AND run_id IN (SELECT value FROM json_each(?1))
             ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([serde_json::to_string(run_ids)?], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Note {
                    text: r.get(1)?,
                    author: r.get(2)?,
                    created_at: r.get(3)?,
                },
            ))
        })?;
        for row in rows {
            let (run, note) = row?;
            out.entry(run).or_default().notes.push(note);
        }
        Ok(out)
    }

    /// Every annotation of a run, oldest first (its tag history included).
    pub fn annotation_rows(&self, run_id: &str) -> Result<Vec<Annotation>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, run_id, kind, text, created_at, author, public_key, signature
             FROM annotations WHERE run_id = ?1 ORDER BY created_at, id",
        )?;
        let rows = stmt
            .query_map([run_id], |r| {
                let kind: String = r.get(2)?;
                Ok(Annotation {
                    id: r.get(0)?,
                    run_id: r.get(1)?,
                    kind: AnnotationKind::parse(&kind).unwrap_or(AnnotationKind::Note),
                    text: r.get(3)?,
                    created_at: r.get(4)?,
                    author: r.get(5)?,
                    public_key: r.get(6)?,
                    signature: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Name run `run_id` `name`. A name on another run is refused (`Error::TagTaken`) unless
    /// `force`, which moves it: an untag of the other run, then the tag, in one transaction.
    pub fn tag(&mut self, run_id: &str, name: &str, force: bool, who: &Author) -> Result<Tagged> {
        if let Some(why) = crate::model::tag_name_problem(name) {
            return Err(Error::BadTagName {
                name: name.to_string(),
                why,
            }
            .into());
        }
        let tx = self.conn.transaction()?;
        let current: Option<(String, String)> = tx
            .query_row(
                "SELECT kind, run_id FROM annotations WHERE text = ?1 AND kind != 'note'
                 ORDER BY created_at DESC, id DESC LIMIT 1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let on = current.and_then(|(kind, run)| (kind == "tag").then_some(run));
        let outcome = match on {
            Some(run) if run == run_id => return Ok(Tagged::Already),
            Some(run) if !force => {
                return Err(Error::TagTaken {
                    name: name.to_string(),
                    run,
                }
                .into());
            }
            Some(run) => Tagged::Moved { from: run },
            None => Tagged::New,
        };
        // Ids are UUIDv7 made now, in order: the untag sorts before the tag.
        let mut ids = [uuid::Uuid::now_v7(), uuid::Uuid::now_v7()];
        ids.sort();
        let at = now();
        if let Tagged::Moved { from } = &outcome {
            insert(&tx, &ids[0], from, AnnotationKind::Untag, name, &at, who)?;
        }
        insert(&tx, &ids[1], run_id, AnnotationKind::Tag, name, &at, who)?;
        tx.commit()?;
        Ok(outcome)
    }

    /// Take the tag `name` off the run it names; returns that run.
    pub fn untag(&mut self, name: &str, who: &Author) -> Result<String> {
        let tx = self.conn.transaction()?;
        let current: Option<(String, String)> = tx
            .query_row(
                "SELECT kind, run_id FROM annotations WHERE text = ?1 AND kind != 'note'
                 ORDER BY created_at DESC, id DESC LIMIT 1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some(run) = current.and_then(|(kind, run)| (kind == "tag").then_some(run)) else {
            return Err(Error::UnknownTag(name.to_string()).into());
        };
        insert(
            &tx,
            &uuid::Uuid::now_v7(),
            &run,
            AnnotationKind::Untag,
            name,
            &now(),
            who,
        )?;
        tx.commit()?;
        Ok(run)
    }

    /// Add a note to run `run_id` (its secrets already redacted: only `redact` makes a
    /// `Redacted`).
    pub fn note(&mut self, run_id: &str, text: Redacted<String>, who: &Author) -> Result<()> {
        let text = text.into_inner();
        if text.len() > crate::model::MAX_NOTE {
            anyhow::bail!(
                "the note is {} bytes, more than a note may hold ({}): keep notes short, and \
                 record a report as an output of a run",
                text.len(),
                crate::model::MAX_NOTE
            );
        }
        let tx = self.conn.transaction()?;
        insert(
            &tx,
            &uuid::Uuid::now_v7(),
            run_id,
            AnnotationKind::Note,
            &text,
            &now(),
            who,
        )?;
        tx.commit()?;
        Ok(())
    }
}

/// What became of an annotation fetched from a team store (`Store::take_annotation`).
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// New here.
    New,
    /// Here already.
    Here,
    /// Its run is not here (quarantined, or not fetched yet): not taken.
    NoRun,
    /// It fails a check (`inbound`: its values, its signature), or is unsigned: not taken.
    Refused(String),
}

impl Store {
    /// Take one annotation from a team store (values in `schema::SYNCED`'s column order for
    /// `annotations`), once it passes `inbound` (its signature checked there) and only when
    /// signed: a team store's annotations are all of runs it already has, so the bundle
    /// rule for those applies (unsigned, nobody could tell who wrote it).
    pub fn take_annotation(&self, row: &[Value]) -> Result<Taken> {
        let table = super::schema::table("annotations")
            .ok_or_else(|| anyhow::anyhow!("annotations are not synced"))?;
        let columns: Vec<String> = table.columns.iter().map(|c| c.name.to_string()).collect();
        if row.len() != columns.len() {
            return Ok(Taken::Refused("not an annotation's columns".into()));
        }
        if let Err(why) = super::inbound::check_row(table, &columns, row) {
            return Ok(Taken::Refused(why));
        }
        let Some(a) = from_row(&columns, row) else {
            return Ok(Taken::Refused("a column is missing".into()));
        };
        if signature_checks(&a) != Some(true) {
            return Ok(Taken::Refused(
                "unsigned: nobody could tell who wrote it".into(),
            ));
        }
        let here: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?1)",
            [&a.run_id],
            |r| r.get(0),
        )?;
        if !here {
            return Ok(Taken::NoRun);
        }
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO annotations
                 (id, run_id, kind, text, created_at, author, public_key, signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                a.id,
                a.run_id,
                a.kind.as_str(),
                a.text,
                a.created_at,
                a.author,
                a.public_key,
                a.signature
            ],
        )?;
        Ok(if added > 0 { Taken::New } else { Taken::Here })
    }
}

/// Insert one annotation, signed when the author has a key.
fn insert(
    tx: &rusqlite::Transaction,
    id: &uuid::Uuid,
    run_id: &str,
    kind: AnnotationKind,
    text: &str,
    created_at: &str,
    who: &Author,
) -> Result<()> {
    let mut a = Annotation {
        id: id.hyphenated().to_string(),
        run_id: run_id.to_string(),
        kind,
        text: text.to_string(),
        created_at: created_at.to_string(),
        author: who.name.clone(),
        public_key: None,
        signature: None,
    };
    if let Some(signer) = &who.signer {
        a.signature = Some(signer.sign(&canonical(&a)));
        a.public_key = Some(signer.public_key());
    }
    tx.execute(
        "INSERT INTO annotations (id, run_id, kind, text, created_at, author, public_key, signature)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            a.id,
            a.run_id,
            a.kind.as_str(),
            a.text,
            a.created_at,
            a.author,
            a.public_key,
            a.signature
        ],
    )?;
    Ok(())
}

/// An annotation from a synced row (`schema::SYNCED`'s columns, in `columns` order), once
/// `inbound` checked its values.
pub fn from_row(columns: &[String], row: &[Value]) -> Option<Annotation> {
    let text = |name: &str| match columns.iter().position(|c| c == name).map(|i| &row[i]) {
        Some(Value::Text(s)) => Some(s.clone()),
        _ => None,
    };
    Some(Annotation {
        id: text("id")?,
        run_id: text("run_id")?,
        kind: AnnotationKind::parse(&text("kind")?)?,
        text: text("text")?,
        created_at: text("created_at")?,
        author: text("author")?,
        public_key: text("public_key"),
        signature: text("signature"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        (dir, store)
    }

    fn add_run(store: &Store, id: &str) {
        store
            .conn
            .execute(
                "INSERT INTO runs (id, status, argv, cwd, started_at, capture)
                 VALUES (?1, 'succeeded', x'', x'', '2026-01-01T00:00:00.000000Z', '{}')",
                [id],
            )
            .expect("run");
    }

    const A: &str = "0192e5a0-3b1c-7d2e-8f00-0123456789ab";
    const B: &str = "0192e5a0-3b1c-7d2e-8f00-0123456789cd";

    #[test]
    fn an_annotation_from_a_team_store_is_taken_only_signed_checked_and_of_a_run_here() {
        let (_d, mut store) = store();
        add_run(&store, A);
        let key = tempfile::tempdir().expect("tempdir");
        let who = Author {
            name: "ada".into(),
            signer: Some(Signer::load_or_create(&key.path().join("k")).expect("key")),
        };
        store.tag(A, "best", false, &who).expect("tag");
        let a = store.annotation_rows(A).expect("rows").remove(0);
        let row = |a: &Annotation| -> Vec<Value> {
            let t = |s: &str| Value::Text(s.to_string());
            let o = |s: &Option<String>| s.as_deref().map_or(Value::Null, t);
            vec![
                t(&a.id),
                t(&a.run_id),
                t(a.kind.as_str()),
                t(&a.text),
                t(&a.created_at),
                t(&a.author),
                o(&a.public_key),
                o(&a.signature),
            ]
        };
        assert_eq!(store.take_annotation(&row(&a)).expect("take"), Taken::Here);
        // Another store's copy of it, before this store has its run: not taken, not refused.
        let (_d2, other) = self::store();
        assert_eq!(other.take_annotation(&row(&a)).expect("take"), Taken::NoRun);
        add_run(&other, A);
        assert_eq!(other.take_annotation(&row(&a)).expect("take"), Taken::New);
        // Its signature over another text, and no signature at all: refused, by reason.
        let mut forged = a.clone();
        forged.text = "prod".into();
        let Taken::Refused(why) = other.take_annotation(&row(&forged)).expect("take") else {
            panic!("a forged annotation was taken")
        };
        assert!(why.contains("signature"), "{why}");
        let mut unsigned = a.clone();
        unsigned.id = uuid::Uuid::now_v7().hyphenated().to_string();
        (unsigned.public_key, unsigned.signature) = (None, None);
        let Taken::Refused(why) = other.take_annotation(&row(&unsigned)).expect("take") else {
            panic!("an unsigned annotation was taken")
        };
        assert!(why.contains("unsigned"), "{why}");
        assert_eq!(other.tagged("best").expect("q").as_deref(), Some(A));
        assert_eq!(other.tagged("prod").expect("q"), None);
    }

    #[test]
    fn a_tag_names_one_run_and_force_moves_it_with_an_untag() {
        let (_d, mut store) = store();
        add_run(&store, A);
        add_run(&store, B);
        let key = tempfile::tempdir().expect("tempdir");
        let who = Author {
            name: "ada".into(),
            signer: Some(Signer::load_or_create(&key.path().join("k")).expect("key")),
        };
        assert_eq!(store.tag(A, "best", false, &who).expect("tag"), Tagged::New);
        assert_eq!(
            store.tag(A, "best", false, &who).expect("again"),
            Tagged::Already
        );
        let e = store.tag(B, "best", false, &who).expect_err("taken");
        assert!(
            matches!(e.downcast_ref(), Some(Error::TagTaken { run, .. }) if run == A),
            "{e}"
        );
        assert_eq!(store.tagged("best").expect("q").as_deref(), Some(A));
        assert_eq!(
            store.tag(B, "best", true, &who).expect("moved"),
            Tagged::Moved { from: A.into() }
        );
        assert_eq!(store.tagged("best").expect("q").as_deref(), Some(B));
        let rows = store.annotation_rows(A).expect("rows");
        assert_eq!(
            rows.iter().map(|a| a.kind).collect::<Vec<_>>(),
            [AnnotationKind::Tag, AnnotationKind::Untag]
        );
        assert!(rows.iter().all(|a| signature_checks(a) == Some(true)));
        let mut forged = rows[0].clone();
        forged.run_id = B.into();
        assert_eq!(signature_checks(&forged), Some(false));
        assert_eq!(store.tags_of(&[A, B]).expect("of").len(), 1);
        assert_eq!(store.untag("best", &who).expect("untag"), B);
        assert_eq!(store.tagged("best").expect("q"), None);
        assert!(store.tags().expect("tags").is_empty());
        assert!(store.untag("best", &who).is_err());
    }
}
