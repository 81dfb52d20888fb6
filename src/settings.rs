//! Settings from files a team or a user writes once: `lineage.toml` at the repository root
//! (shared with the code) and `$XDG_CONFIG_HOME/lineage/config.toml` (the user's own).
//!
//! Precedence, lowest first: built-in defaults, the user's file, the repository's file, then
//! the environment (`LINEAGE_STORE`) and the command line. Single values (the store, whether
//! to capture Python) are taken from the highest source that sets them; lists (env allow/deny
//! globs, redaction patterns) add up across all of them.
//!
//! ```toml
//! store = "/data/lineage"            # default store directory
//! [env]
//! allow = ["WANDB_MODE"]             # keep in clear even when the name looks secret
//! deny = ["CORP_*"]                  # always redact
//! [redact]
//! values = ['corp-[0-9a-f]{32}']     # regexes: matching values redacted anywhere
//! [capture]
//! python = true                      # interpreter and installed packages
//! [run]
//! observe = true                     # observe the files a job opens (--no-observe)
//! strict = false                     # undeclared I/O fails the run afterwards (--strict)
//! metrics = ["metrics.json"]         # metrics files jobs write (-m), read when written
//! [trust]
//! keys = ["ed25519:3b6a27bc…"]       # whose signed runs `lineage verify` accepts
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::location::StoreArg;

/// The repository's file name.
pub const REPO_FILE: &str = "lineage.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    store: Option<String>,
    team_store: Option<String>,
    #[serde(default)]
    env: EnvSection,
    #[serde(default)]
    redact: RedactSection,
    #[serde(default)]
    capture: CaptureSection,
    #[serde(default)]
    run: RunSection,
    #[serde(default)]
    trust: TrustSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunSection {
    observe: Option<bool>,
    strict: Option<bool>,
    #[serde(default)]
    metrics: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustSection {
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvSection {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactSection {
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureSection {
    python: Option<bool>,
}

/// The merged settings of every file found.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Files read, lowest precedence first.
    pub files: Vec<PathBuf>,
    /// The store a file names: a directory (a relative path resolved against that file's
    /// directory) or a postgres:// URL.
    pub store: Option<StoreArg>,
    /// The team store `lineage push` and `pull` use by default.
    pub team_store: Option<String>,
    pub env_allow: Vec<String>,
    pub env_deny: Vec<String>,
    /// Regexes whose matches are secrets wherever they appear.
    pub redact_values: Vec<String>,
    pub capture_python: bool,
    /// Observe the files each job opens (`[run] observe`; `--no-observe`).
    pub observe: bool,
    /// Undeclared I/O fails a run once it has ended (`[run] strict`; `--strict`).
    pub strict: bool,
    /// Metrics files every job may write (`[run] metrics`): paths relative to the job's
    /// directory, `*` and `?` allowed in the file name; read when the job wrote them.
    pub metrics: Vec<String>,
    /// Public keys (`ed25519:<hex>`) whose signed runs `lineage verify` accepts, with the
    /// file that lists each; the user's own key is trusted without being listed.
    pub trusted_keys: Vec<(String, PathBuf)>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            files: Vec::new(),
            store: None,
            team_store: None,
            env_allow: Vec::new(),
            env_deny: Vec::new(),
            redact_values: Vec::new(),
            capture_python: true,
            observe: true,
            strict: false,
            metrics: Vec::new(),
            trusted_keys: Vec::new(),
        }
    }
}

/// A settings file that cannot be used; the message names the file and what to fix.
#[derive(Debug, thiserror::Error)]
#[error("settings file {path}: {reason} (docs/configuration.md lists the keys)")]
pub struct BadFile {
    pub path: String,
    pub reason: String,
}

/// Read the user's file and the repository's file above `cwd`, merged.
pub fn for_dir(cwd: &Path) -> Result<Settings, BadFile> {
    load(user_file().as_deref(), repo_file(cwd).as_deref())
}

/// `$XDG_CONFIG_HOME/lineage/config.toml` (`~/.config/lineage/config.toml`).
pub fn user_file() -> Option<PathBuf> {
    use etcetera::BaseStrategy;
    let strategy = etcetera::choose_base_strategy().ok()?;
    Some(strategy.config_dir().join("lineage").join("config.toml"))
}

/// `lineage.toml` in `cwd` or a parent, up to the root of the git work tree holding it.
pub fn repo_file(cwd: &Path) -> Option<PathBuf> {
    for dir in cwd.ancestors() {
        let candidate = dir.join(REPO_FILE);
        if candidate.is_file() {
            return Some(candidate);
        }
        if dir.join(".git").exists() {
            return None;
        }
    }
    None
}

pub fn load(user: Option<&Path>, repo: Option<&Path>) -> Result<Settings, BadFile> {
    let mut s = Settings::default();
    for path in [user, repo].into_iter().flatten() {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(bad(path, format!("cannot read it: {e}"))),
        };
        let file: File = toml::from_str(&text).map_err(|e| {
            let reason = e.message().to_string();
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            bad(
                path,
                match line {
                    Some(n) => format!("line {n}: {reason}"),
                    None => reason,
                },
            )
        })?;
        for glob in file.env.allow.iter().chain(&file.env.deny) {
            globset::Glob::new(glob)
                .map_err(|e| bad(path, format!("{glob:?} is not a valid glob: {}", e.kind())))?;
        }
        for pattern in &file.redact.values {
            regex::Regex::new(pattern).map_err(|e| {
                let first = e.to_string().lines().last().unwrap_or_default().to_string();
                bad(
                    path,
                    format!("redact.values: {pattern:?} is not a valid regex: {first}"),
                )
            })?;
        }
        for key in &file.trust.keys {
            if crate::sign::parse_public_key(key).is_none() {
                return Err(bad(
                    path,
                    format!(
                        "trust.keys: {key:?} is not a public key (`ed25519:` and 64 lowercase hex digits, as `lineage verify --key` prints)"
                    ),
                ));
            }
            s.trusted_keys.push((key.clone(), path.to_path_buf()));
        }
        if let Some(url) = file.team_store {
            s.team_store = Some(url);
        }
        if let Some(store) = file.store {
            s.store = Some(resolve(path, &store));
        }
        if let Some(python) = file.capture.python {
            s.capture_python = python;
        }
        if let Some(observe) = file.run.observe {
            s.observe = observe;
        }
        if let Some(strict) = file.run.strict {
            s.strict = strict;
        }
        for m in &file.run.metrics {
            let outside = std::path::Path::new(m).is_absolute()
                || std::path::Path::new(m)
                    .components()
                    .any(|c| c == std::path::Component::ParentDir);
            if m.is_empty() || m.contains('\0') || outside || globset::Glob::new(m).is_err() {
                return Err(bad(
                    path,
                    format!(
                        "run.metrics: {m:?} is not a file name pattern inside the job's directory (like \"metrics.json\" or \"reports/*.json\": relative, no ..)"
                    ),
                ));
            }
        }
        s.metrics.extend(file.run.metrics);
        s.env_allow.extend(file.env.allow);
        s.env_deny.extend(file.env.deny);
        s.redact_values.extend(file.redact.values);
        s.files.push(path.to_path_buf());
    }
    Ok(s)
}

fn bad(path: &Path, reason: String) -> BadFile {
    BadFile {
        path: path.display().to_string(),
        reason,
    }
}

/// A URL as it is; `~/x` from the home directory, a relative path from the file's directory.
fn resolve(file: &Path, value: &str) -> StoreArg {
    if crate::location::is_url(value) {
        return StoreArg::Url(value.to_string());
    }
    if let Some(rest) = value.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return StoreArg::Dir(PathBuf::from(home).join(rest));
    }
    let p = PathBuf::from(value);
    StoreArg::Dir(if p.is_absolute() {
        p
    } else {
        file.parent().unwrap_or(Path::new(".")).join(p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_add_up_and_the_repository_file_wins_single_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let user = dir.path().join("user.toml");
        let repo = dir.path().join("repo/lineage.toml");
        std::fs::create_dir_all(repo.parent().expect("parent")).expect("mkdir");
        std::fs::write(
            &user,
            "store = \"/u\"\n[env]\ndeny = [\"A_*\"]\n[capture]\npython = false\n",
        )
        .expect("write");
        std::fs::write(
            &repo,
            "store = \"s\"\n[env]\ndeny = [\"B_*\"]\nallow = [\"C\"]\n",
        )
        .expect("write");
        let s = load(Some(&user), Some(&repo)).expect("valid");
        assert_eq!(s.store, Some(StoreArg::Dir(dir.path().join("repo/s"))));
        assert_eq!(s.env_deny, ["A_*", "B_*"]);
        assert_eq!(s.env_allow, ["C"]);
        assert!(!s.capture_python, "the repository file left it unset");
        assert_eq!(s.files, [user, repo]);
    }

    #[test]
    fn mistakes_name_the_file_and_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("lineage.toml");
        std::fs::write(&f, "[env]\nallow = [\"X\"]\ndenied = [\"Y\"]\n").expect("write");
        let e = load(None, Some(&f)).expect_err("unknown key").to_string();
        assert!(
            e.contains("lineage.toml") && e.contains("line 3") && e.contains("denied"),
            "{e}"
        );
        std::fs::write(&f, "[redact]\nvalues = [\"(unclosed\"]\n").expect("write");
        let e = load(None, Some(&f)).expect_err("bad regex").to_string();
        assert!(e.contains("not a valid regex"), "{e}");
    }
}
