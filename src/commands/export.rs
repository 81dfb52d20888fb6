//! `lineage export TARGET --format prov-json|in-toto|openlineage [-o FILE] [--post URL]`:
//! a run, or the whole ancestry of a file or directory, in a standard provenance format.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use super::Context;
use super::target::{self, Reading, Target};
use crate::cli::{ExportArgs, ExportFormat};
use crate::export::{self, Export, Records};
use crate::model::graph::{Direction, Via};
use crate::model::{Hash, RunRecord};
use crate::sign;
use crate::store::Store;
use crate::ui;

/// The store as the exports see it.
impl Records for Store {
    fn blob(&self, hash: &Hash) -> Option<Vec<u8>> {
        Store::blob(self, hash).ok().flatten()
    }

    fn dir_entries(&self, dir: &Hash) -> Result<Vec<(String, Hash, u64)>> {
        Store::dir_entries(self, dir)
    }

    fn extra_digest(&self, hash: &Hash, algorithm: &str) -> Option<String> {
        Store::extra_digest(self, hash, algorithm).ok().flatten()
    }

    fn remember_digest(&self, hash: &Hash, algorithm: &str, digest: &str) {
        let _ = self.put_extra_digest(hash, algorithm, digest);
    }
}

pub fn export(args: ExportArgs, ctx: &Context) -> Result<()> {
    if args.post.is_some() && args.format != ExportFormat::Openlineage {
        bail!("--post sends OpenLineage events: add --format openlineage");
    }
    if args.sign && args.format != ExportFormat::InToto {
        bail!("--sign wraps in-toto statements in DSSE envelopes: add --format in-toto");
    }
    let signer = if args.sign {
        let path = sign::key_path().ok_or_else(|| {
            anyhow::anyhow!("no home directory for a signing key: set {}", sign::KEY_ENV)
        })?;
        Some(path.load().map_err(anyhow::Error::msg)?)
    } else {
        None
    };
    let store = ctx.open_store()?;
    let mut export = gather(&store, &args)?;
    if signer.is_some() {
        // An envelope is the exporter's attestation: only of runs whose records verify
        // (signed by a trusted key, unchanged), never of a tampered or unproven one.
        let own = super::verify::own_key();
        for r in &export.runs {
            let (_, standing, _) = super::verify::check(&store, &r.id, true, own.as_deref(), ctx)?;
            if let Some(mark) = super::verify::mark(standing) {
                return Err(crate::error::Error::UnverifiedForSigning {
                    run: store.short_id(&r.id)?,
                    standing: mark.to_string(),
                }
                .into());
            }
        }
    }
    for w in export::fill_digests(&store, &mut export, !args.no_sha256) {
        ui::warn(w);
    }
    let text = match args.format {
        ExportFormat::ProvJson => {
            serde_json::to_string_pretty(&export::prov::document(&export))? + "\n"
        }
        ExportFormat::InToto => {
            let statements = export::intoto::statements(&export, &store);
            if statements.is_empty() {
                bail!(
                    "no run here recorded an output, and an in-toto statement needs at least \
                     one subject: export it with --format prov-json or openlineage"
                );
            }
            match &signer {
                Some(signer) => {
                    let envelopes = statements
                        .iter()
                        .map(|s| {
                            Ok(sign::dsse_envelope(
                                signer,
                                export::intoto::PAYLOAD_TYPE,
                                &serde_json::to_vec(s)?,
                            ))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    json_lines(&envelopes)?
                }
                None => json_lines(&statements)?,
            }
        }
        ExportFormat::Openlineage => {
            let events = export::openlineage::events(&export, &args.namespace);
            if let Some(url) = &args.post {
                post(url, &args.endpoint, &events)?;
            }
            json_lines(&events)?
        }
    };
    match &args.output {
        Some(path) => write_file(path, &text)?,
        None if args.post.is_some() => {}
        None => ui::data(&text),
    }
    Ok(())
}

/// The runs a target covers: one run, or every run in the ancestry of an artifact.
fn gather(store: &Store, args: &ExportArgs) -> Result<Export> {
    let mut members = Vec::new();
    let reading = Reading::from_flags(args.run, args.path);
    let mut runs: Vec<RunRecord> = match target::resolve(store, args.target.as_ref(), reading)? {
        Target::Run(id) => vec![store.load_run(&id)?],
        Target::Artifact { root, path } => {
            let lineage = target::walk(store, root, path.as_deref(), Direction::Ancestry, None)?;
            for (artifact, links) in &lineage.links {
                for l in links {
                    match &l.via {
                        Via::InsideDir { dir, path } => {
                            members.push((*dir, *artifact, path.clone()));
                        }
                        Via::ContainsFile { file, path } => {
                            members.push((*artifact, *file, path.clone()));
                        }
                        Via::Direct => {}
                    }
                }
            }
            lineage.runs.into_values().map(|(r, _)| r).collect()
        }
    };
    // Provenance with a blank where a run's environment and machine were would be false.
    for r in &runs {
        super::readable(r)?;
    }
    runs.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
    members.sort();
    members.dedup();
    // A rerun names its original (and its job); a worktree rerun's paths are its original's.
    let mut rerun_jobs = std::collections::HashMap::new();
    let mut worktrees = std::collections::HashMap::new();
    for r in &runs {
        let Some(of) = &r.rerun_of else { continue };
        let loaded;
        let original = match runs.iter().find(|x| &x.id == of) {
            Some(o) => o,
            None => match store.load_run(of) {
                Ok(o) => {
                    rerun_jobs.insert(of.clone(), export::job_name(&o));
                    loaded = o;
                    &loaded
                }
                Err(_) => continue,
            },
        };
        if let Some(w) = export::Worktree::of(r, original) {
            worktrees.insert(r.id.clone(), w);
        }
    }
    let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let annotations = store.annotations_of(&ids)?;
    Ok(Export {
        annotations,
        runs,
        digests: Default::default(),
        members,
        rerun_jobs,
        worktrees,
    })
}

fn json_lines(values: &[serde_json::Value]) -> Result<String> {
    let mut out = String::new();
    for v in values {
        out.push_str(&serde_json::to_string(v)?);
        out.push('\n');
    }
    Ok(out)
}

/// Write next to the destination, then rename: a reader never sees half a file, and a
/// failure leaves nothing behind.
fn write_file(path: &Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = || format!("cannot write {}", path.display());
    if super::is_special(path) {
        return super::write_through(&mut text.as_bytes(), path).with_context(fail);
    }
    // Mode 0666 before the umask, as any file a program writes.
    use std::os::unix::fs::PermissionsExt;
    let mut tmp = tempfile::Builder::new()
        .prefix(".lineage-export-")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(fail)?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(fail)?;
    tmp.persist(path).map_err(|e| e.error).with_context(fail)?;
    Ok(())
}

#[cfg(not(feature = "team-store"))]
fn post(_url: &str, _endpoint: &str, _events: &[serde_json::Value]) -> Result<()> {
    Err(crate::error::Error::NoTeamStore("--post").into())
}

/// POST each event to `{url}/{endpoint}`, as an OpenLineage HTTP transport does (Marquez
/// listens on /api/v1/lineage). `OPENLINEAGE_API_KEY`, when set, goes as a bearer token.
#[cfg(feature = "team-store")]
fn post(url: &str, endpoint: &str, events: &[serde_json::Value]) -> Result<()> {
    let target = format!(
        "{}/{}",
        url.trim_end_matches('/'),
        endpoint.trim_start_matches('/')
    );
    let key = std::env::var("OPENLINEAGE_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    for (i, event) in events.iter().enumerate() {
        let mut req = agent
            .post(&target)
            .header("Content-Type", "application/json");
        if let Some(k) = &key {
            req = req.header("Authorization", &format!("Bearer {k}"));
        }
        let what = || {
            format!(
                "could not post OpenLineage event {} of {} to {target}",
                i + 1,
                events.len()
            )
        };
        let resp = req
            .send(serde_json::to_string(event)?)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(what)?;
        let status = resp.status();
        if !status.is_success() {
            let mut body = resp.into_body().read_to_string().unwrap_or_default();
            body.truncate(200);
            bail!("{}: the server answered {status}: {}", what(), body.trim());
        }
    }
    ui::info(format_args!(
        "posted {} OpenLineage event{} to {target}",
        events.len(),
        if events.len() == 1 { "" } else { "s" }
    ));
    Ok(())
}
