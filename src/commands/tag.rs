//! `lineage tag [RUN NAME] [--force] [--delete NAME] [--json]` and `lineage note RUN TEXT`:
//! what users say about a run after it ran, recorded as annotations beside it (the run never
//! changes; `store/annotations.rs`), signed by the user's key.

use anyhow::Result;

use super::Context;
use crate::cli::{NoteArgs, TagArgs};
use crate::error::Error;
use crate::model::TagRow;
use crate::model::text::terminal_command_line;
use crate::redact::Policy;
use crate::store::{Author, Store, Tagged};
use crate::{output, sign, ui};

pub fn tag(args: TagArgs, ctx: &Context) -> Result<()> {
    let mut store = ctx.open_store()?;
    if let Some(name) = &args.delete {
        let run = store.untag(name, &author())?;
        ui::info(format_args!(
            "tag {} taken off run {}",
            ui::escape(name),
            store.short_id(&run)?
        ));
        return Ok(());
    }
    let (Some(run), Some(name)) = (&args.run, &args.name) else {
        return list(&store, args.json, ctx.color);
    };
    // The name first: a bad one is refused before anything else is looked up.
    if let Some(why) = crate::model::tag_name_problem(name) {
        return Err(Error::BadTagName {
            name: name.clone(),
            why,
        }
        .into());
    }
    let id = store.resolve(Some(run))?;
    let short = store.short_id(&id)?;
    match store.tag(&id, name, args.force, &author()) {
        Ok(Tagged::New) => ui::info(format_args!("run {short} is tagged {name}")),
        Ok(Tagged::Already) => ui::info(format_args!("run {short} is already tagged {name}")),
        Ok(Tagged::Moved { from }) => ui::info(format_args!(
            "run {short} is tagged {name} (moved from run {})",
            store.short_id(&from)?
        )),
        Err(e) => {
            return Err(match e.downcast::<Error>() {
                Ok(Error::TagTaken { name, run }) => Error::TagTaken {
                    name,
                    run: store.short_id(&run)?,
                }
                .into(),
                Ok(other) => other.into(),
                Err(e) => e,
            });
        }
    }
    Ok(())
}

pub fn note(args: NoteArgs, ctx: &Context) -> Result<()> {
    let mut store = ctx.open_store()?;
    let id = store.resolve(Some(&args.run))?;
    let text = args.text.join(" ");
    if text.trim().is_empty() {
        anyhow::bail!(
            "the note is empty: write something after the run, `lineage note RUN \"why this run\"`"
        );
    }
    let (key, warning) = store.secret_key();
    if let Some(w) = warning {
        ui::warn(&w);
    }
    let s = &ctx.settings;
    let policy = Policy::new(&s.env_allow, &s.env_deny, &s.redact_values, key)?;
    let redacted = policy.redact_note(&text);
    let changed = redacted.get() != &text;
    store.note(&id, redacted, &author())?;
    let short = store.short_id(&id)?;
    ui::info(format_args!("note added to run {short}"));
    if changed {
        ui::warn("the note held what looks like a secret: it is stored redacted");
    }
    Ok(())
}

/// Every tag, by name, with its run's short id and command.
fn list(store: &Store, json: bool, color: bool) -> Result<()> {
    let tags = store.tags()?;
    let ids: Vec<&str> = tags.iter().map(|t| t.run_id.as_str()).collect();
    let shorts = store.short_ids(&ids)?;
    if json {
        #[derive(serde::Serialize)]
        struct Item<'a> {
            name: &'a str,
            run_id: &'a str,
            short_id: &'a str,
            tagged_at: &'a str,
            author: &'a str,
        }
        let items: Vec<Item> = tags
            .iter()
            .map(|t| Item {
                name: &t.name,
                run_id: &t.run_id,
                short_id: shorts.get(&t.run_id).map_or(&t.run_id, String::as_str),
                tagged_at: &t.created_at,
                author: &t.author,
            })
            .collect();
        ui::data(&(serde_json::to_string_pretty(&items)? + "\n"));
        return Ok(());
    }
    if tags.is_empty() {
        ui::info("no tags yet: `lineage tag RUN NAME` names a run");
        return Ok(());
    }
    let runs = store.load_runs(&ids)?;
    let rows: Vec<(TagRow, String, String)> = tags
        .into_iter()
        .map(|t| {
            let short = shorts.get(&t.run_id).cloned().unwrap_or(t.run_id.clone());
            let command = runs
                .iter()
                .find(|r| r.id == t.run_id)
                .map(|r| terminal_command_line(&r.argv))
                .unwrap_or_default();
            (t, short, command)
        })
        .collect();
    ui::data(&(output::table::tags(&rows, color) + "\n"));
    Ok(())
}

/// The user making an annotation: their login name (as a run records its owner) and their
/// signing key; without a usable key the annotation is recorded unsigned, with a warning.
fn author() -> Author {
    let env = |k: &str| std::env::var(k).ok();
    let owner = crate::capture::context::owner(&env, None, None);
    let name = owner.user.unwrap_or_else(|| format!("uid {}", owner.uid));
    let signer = match sign::key_path() {
        None => {
            ui::warn(
                "no home directory for a signing key: the annotation is recorded unsigned (it \
                 stays in this store: team stores take only signed ones)",
            );
            None
        }
        Some(path) => match path.load() {
            Ok(s) => Some(s),
            Err(e) => {
                ui::warn(format_args!(
                    "cannot use your signing key ({e}): the annotation is recorded unsigned (it \
                     stays in this store: team stores take only signed ones)"
                ));
                None
            }
        },
    };
    Author { name, signer }
}
