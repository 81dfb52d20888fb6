//! `lineage verify [TARGET]`: every run of a run's or a file's ancestry, its signature
//! checked against its record and its key against the keys this user trusts (their own and
//! `[trust] keys`), with an exit code for scripts (docs/exit-codes.md).

use std::collections::BTreeSet;

use anyhow::Result;

use super::Context;
use super::target::{self, Reading, Target};
use crate::cli::VerifyArgs;
use crate::error::code;
use crate::model::graph::UNLIMITED;
use crate::model::{Role, Seal, Standing};
use crate::output::verify::{self, Checked};
use crate::sign::{self, Signer};
use crate::store::Store;
use crate::ui;

pub fn verify(args: VerifyArgs, ctx: &Context) -> Result<u8> {
    let own = own_key();
    if args.key {
        let path = sign::key_path()
            .ok_or_else(|| anyhow::anyhow!("no home directory for a signing key"))?;
        // Asked for: made here even where LINEAGE_SIGNING_KEY names it.
        let signer = Signer::load_or_create(&path.path).map_err(anyhow::Error::msg)?;
        ui::data(&(signer.public_key() + "\n"));
        return Ok(code::SUCCESS);
    }
    let store = ctx.open_store()?;
    let reading = Reading::from_flags(args.run, args.path);
    let ids: Vec<String> = match target::resolve(&store, args.target.as_ref(), reading)? {
        Target::Run(id) => {
            // The run and the ancestry of everything it read.
            let run = store.load_run(&id)?;
            let mut ids = BTreeSet::from([id]);
            for e in &run.edges {
                if e.role == Role::Output {
                    continue;
                }
                if let Some(a) = &e.artifact {
                    ids.extend(
                        store
                            .ancestry(&a.hash, UNLIMITED, true)?
                            .into_iter()
                            .map(|l| l.run_id),
                    );
                }
            }
            ids.into_iter().collect()
        }
        found @ Target::Artifact { .. } => target::runs(&store, found)?,
    };
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut shorts = store.short_ids(&refs)?;
    let mut rows = Vec::new();
    for run in store.load_runs(&refs)? {
        let (seal, standing, trusted_as) = check(&store, &run.id, true, own.as_deref(), ctx)?;
        rows.push(Checked {
            short: shorts.remove(&run.id).unwrap_or_else(|| run.id.clone()),
            id: run.id,
            argv: run.argv,
            seal,
            standing,
            trusted_as,
        });
    }
    // Oldest first (UUIDv7 ids sort by time), as the pipeline ran.
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    if args.json {
        ui::data(&(verify::json(&rows)? + "\n"));
    } else {
        ui::data(&(verify::table(&rows, ctx.color) + "\n"));
        ui::info(verify::summary(&rows));
        if rows.iter().any(|r| r.standing == Standing::UnknownKey) {
            ui::hint(
                "if you trust a signer, list their key under [trust] keys in lineage.toml \
                 (they print it with `lineage verify --key`)",
            );
        }
    }
    let worst = rows.iter().map(|r| r.standing).max();
    Ok(match worst {
        Some(Standing::Tampered) => code::TAMPERED,
        Some(Standing::Unsigned | Standing::UnknownKey) => code::UNVERIFIED,
        Some(Standing::Verified) | None => code::SUCCESS,
    })
}

/// Run `id` checked (`deep`: its blobs and manifests re-hashed too), where it stands for
/// this user, and who its key is when trusted.
pub fn check(
    store: &Store,
    id: &str,
    deep: bool,
    own: Option<&str>,
    ctx: &Context,
) -> Result<(Seal, Standing, Option<String>)> {
    let seal = store.check_run(id, deep)?;
    let trusted_as = match &seal {
        Seal::Signed { key } => trusted(key, own, ctx),
        _ => None,
    };
    let standing = Standing::of(&seal, |_| trusted_as.is_some());
    Ok((seal, standing, trusted_as))
}

/// How `show` marks a run whose record does not verify; None for a verified one.
pub fn mark(standing: Standing) -> Option<&'static str> {
    match standing {
        Standing::Verified => None,
        Standing::UnknownKey => Some("signed by an unknown key"),
        Standing::Unsigned => Some("unsigned"),
        Standing::Tampered => Some("TAMPERED: changed after it was signed"),
    }
}

/// The user's own public key, if they have one (never made here).
pub fn own_key() -> Option<String> {
    sign::own_public_key()
}

/// Who `key` is to this user: `you`, or the settings file listing it.
fn trusted(key: &str, own: Option<&str>, ctx: &Context) -> Option<String> {
    if own == Some(key) {
        return Some("you".into());
    }
    ctx.settings
        .trusted_keys
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, file)| format!("a key in {}", file.display()))
}
