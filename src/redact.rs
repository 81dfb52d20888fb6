//! The secret-redaction policy, applied before anything is written to the store.
//!
//! A variable is redacted when its name looks secret (TOKEN, SECRET, PASSWORD, ... anywhere in
//! the name, case-insensitive) or matches `--env-deny`, unless `--env-allow` matches it; its
//! value is redacted regardless of name when it is shaped like a credential (AWS keys,
//! GitHub/GitLab/Slack/OpenAI/Hugging Face tokens, JWTs, PEM private keys). Passwords inside
//! URLs are masked in place (`postgres://u:***@h/db`). Redacted values are kept only as a
//! keyed BLAKE3 hash with a per-store random key, so a later comparison can tell that a
//! secret changed without the store ever holding it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::LazyLock;

use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::{Regex, RegexSet};

use crate::error::Error;

/// What a secret is replaced with wherever it was found.
pub const REDACTED: &str = "[REDACTED]";

/// Substrings of variable names that mark the value as secret (compared upper-case).
const SECRET_NAME_PARTS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
    "AUTH",
    "COOKIE",
    "SESSION",
];

// ASCII mode (`(?-u)`): the credential formats are ASCII, and Unicode word boundaries would
// make compiling the set cost milliseconds. Compiling it still costs about a millisecond, so
// it is compiled only when a value holds one of the literals every match must contain.
static SECRET_VALUES: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(
        SECRET_VALUE_PATTERNS
            .iter()
            .map(|(_, p)| format!("(?-u){p}")),
    )
    .expect("the secret value patterns are valid regexes")
});

/// (literals, pattern): every match of the pattern contains one of its literals.
const SECRET_VALUE_PATTERNS: &[(&[&str], &str)] = &[
    // AWS access key ids.
    (
        &[
            "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA",
        ],
        r"\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b",
    ),
    // GitHub tokens, classic and fine-grained.
    (
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        r"\bgh[pousr]_[A-Za-z0-9]{30,}",
    ),
    (&["github_pat_"], r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    // GitLab personal access tokens.
    (&["glpat-"], r"\bglpat-[A-Za-z0-9_\-]{20,}"),
    // Slack tokens.
    (&["xox"], r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    // OpenAI / Anthropic style keys.
    (&["sk-"], r"\bsk-(proj-|ant-)?[A-Za-z0-9_\-]{20,}"),
    // Stripe live keys.
    (&["k_live_"], r"\b[rs]k_live_[A-Za-z0-9]{20,}"),
    // Hugging Face tokens.
    (&["hf_"], r"\bhf_[A-Za-z0-9]{30,}"),
    // Google API keys.
    (&["AIza"], r"\bAIza[0-9A-Za-z_\-]{35}"),
    // JSON Web Tokens.
    (
        &["eyJ"],
        r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*",
    ),
    // PEM private keys.
    (&["-----BEGIN "], r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
];

/// `scheme://user:password@` inside any value.
static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@ \t\r\n]*:)(?P<pw>[^@/ \t\r\n]+)@")
        .expect("the URL password pattern is a valid regex")
});

/// The redaction policy of one run.
pub struct Policy {
    allow: GlobSet,
    deny: GlobSet,
    /// Extra secret-value patterns from the settings files, as one alternation.
    extra: Option<Regex>,
    key: [u8; 32],
}

/// What the policy made of an environment.
#[derive(Debug, Default)]
pub struct RedactedEnv {
    /// Name -> value as stored (`[REDACTED]`, or a URL with its password masked).
    pub vars: BTreeMap<String, String>,
    /// Name -> keyed hash of the original value, for every variable changed by the policy.
    pub fingerprints: BTreeMap<String, String>,
}

impl Policy {
    /// `values`: regexes (validated by the settings loader) whose matches are secrets too.
    pub fn new(
        allow: &[String],
        deny: &[String],
        values: &[String],
        key: [u8; 32],
    ) -> Result<Policy, Error> {
        let extra = if values.is_empty() {
            None
        } else {
            let joined = values
                .iter()
                .map(|v| format!("(?:{v})"))
                .collect::<Vec<_>>()
                .join("|");
            Some(Regex::new(&joined).map_err(|e| Error::BadGlob {
                flag: "redact.values",
                glob: values.join(", "),
                reason: e.to_string(),
            })?)
        };
        Ok(Policy {
            allow: glob_set("--env-allow", allow)?,
            deny: glob_set("--env-deny", deny)?,
            extra,
            key,
        })
    }

    /// Whether a value holds a credential: a known shape, or a settings pattern.
    fn is_secret_value(&self, value: &str) -> bool {
        is_secret_value(value) || self.extra.as_ref().is_some_and(|r| r.is_match(value))
    }

    /// Whether a variable of this name is redacted whatever its value.
    pub fn is_secret_name(&self, name: &str) -> bool {
        if self.deny.is_match(name) {
            return true;
        }
        if self.allow.is_match(name) {
            return false;
        }
        let upper = name.to_ascii_uppercase();
        SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
    }

    /// The value to store for `name=value`, or None when it is stored as it is.
    pub fn redact(&self, name: &str, value: &str) -> Option<String> {
        if self.is_secret_name(name) || self.is_secret_value(value) {
            return Some(REDACTED.to_string());
        }
        if !value.contains("://") {
            return None;
        }
        match URL_PASSWORD.replace_all(value, "${pre}***@") {
            std::borrow::Cow::Owned(masked) => Some(masked),
            std::borrow::Cow::Borrowed(_) => None,
        }
    }

    /// A keyed hash of a secret: equal secrets give equal strings within one store.
    pub fn fingerprint(&self, value: &str) -> String {
        format!(
            "keyed-blake3:{}",
            blake3::keyed_hash(&self.key, value.as_bytes()).to_hex()
        )
    }

    /// The environment as stored: secret values replaced, each with its keyed fingerprint.
    pub fn redact_env(&self, vars: impl Iterator<Item = (OsString, OsString)>) -> RedactedEnv {
        let mut out = RedactedEnv::default();
        for (name, value) in vars {
            let name = name.to_string_lossy().into_owned();
            let value = value.to_string_lossy();
            match self.redact(&name, &value) {
                Some(stored) => {
                    out.fingerprints
                        .insert(name.clone(), self.fingerprint(&value));
                    out.vars.insert(name, stored);
                }
                None => {
                    out.vars.insert(name, value.into_owned());
                }
            }
        }
        out
    }
}

/// What the policy made of a command line.
#[derive(Debug, Default)]
pub struct RedactedArgv {
    /// The arguments, secrets redacted.
    pub argv: Vec<Vec<u8>>,
    /// Position -> keyed hash of the original argument, for every argument changed.
    pub fingerprints: BTreeMap<usize, String>,
}

impl Policy {
    /// Redact secrets in arguments: `--password x`, `--api-key=x`, `token=x`, credential-shaped
    /// values and passwords inside URLs. The job still receives the real arguments.
    pub fn redact_argv(&self, argv: &[Vec<u8>]) -> RedactedArgv {
        let mut out = RedactedArgv::default();
        let mut value_is_secret = false;
        for (i, raw) in argv.iter().enumerate() {
            let arg = String::from_utf8_lossy(raw);
            let stored = if std::mem::take(&mut value_is_secret) && i > 0 {
                Some(REDACTED.to_string())
            } else if let Some((key, value)) = arg.split_once('=') {
                // --api-key=x, token=x
                if is_flag_like(key) && self.is_secret_name(&flag_name(key)) {
                    Some(format!("{key}={REDACTED}"))
                } else {
                    self.redact("", value).map(|v| format!("{key}={v}"))
                }
            } else if arg.starts_with('-') && i > 0 && self.is_secret_name(&flag_name(&arg)) {
                // --password x: the next argument is the secret.
                value_is_secret = true;
                None
            } else {
                self.redact("", &arg)
            };
            match stored {
                Some(stored) if stored.as_bytes() != raw.as_slice() => {
                    out.fingerprints
                        .insert(i, self.fingerprint(&String::from_utf8_lossy(raw)));
                    out.argv.push(stored.into_bytes());
                }
                _ => out.argv.push(raw.clone()),
            }
        }
        out
    }
}

/// `key: value`, `key = value`, `"key": "value",` lines.
static KEY_VALUE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)^(?P<pre>[ \t-]*["']?(?P<key>[A-Za-z0-9_.\-]+)["']?[ \t]*[:=][ \t]*)(?P<value>[^\r\n]*?)(?P<post>[ \t]*,?[ \t]*\r?)$"#)
        .expect("the key-value pattern is a valid regex")
});

static SECRET_VALUE_ANYWHERE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        &SECRET_VALUE_PATTERNS
            .iter()
            .map(|(_, p)| format!("(?:{p})"))
            .collect::<Vec<_>>()
            .join("|"),
    )
    .expect("the secret value patterns are valid regexes")
});

impl Policy {
    /// The text of a config file with its secrets replaced, for the stored copy: values of
    /// secret-named keys (`api_key: x`, `password = "x"`), credential-shaped values anywhere,
    /// passwords in URLs, and the `known` values the parameter policy already redacted. None
    /// when nothing needed redacting.
    pub fn redact_text(&self, text: &str, known: &[String]) -> Option<String> {
        let mut out = KEY_VALUE_LINE
            .replace_all(text, |c: &regex::Captures| {
                let value = &c["value"];
                let blank = value.trim_matches(|ch| ch == '"' || ch == '\'').is_empty();
                if !blank && self.is_secret_name(&c["key"]) {
                    format!("{}{REDACTED}{}", &c["pre"], &c["post"])
                } else {
                    c[0].to_string()
                }
            })
            .into_owned();
        out = SECRET_VALUE_ANYWHERE
            .replace_all(&out, REDACTED)
            .into_owned();
        if let Some(extra) = &self.extra {
            out = extra.replace_all(&out, REDACTED).into_owned();
        }
        out = URL_PASSWORD.replace_all(&out, "${pre}***@").into_owned();
        for value in known.iter().filter(|v| v.len() >= 4) {
            out = out.replace(value.as_str(), REDACTED);
        }
        (out != text).then_some(out)
    }
}

/// `--api-key`, `-p`, `token` (a bare key in `key=value`): letters, digits, `-`, `_`, `.`.
fn is_flag_like(key: &str) -> bool {
    !key.is_empty()
        && key
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// `--api-key` -> `API_KEY`, so flag names match the variable-name rules.
fn flag_name(flag: &str) -> String {
    flag.trim_start_matches('-').replace(['-', '.'], "_")
}

/// Whether a value is shaped like a credential, whatever its name.
pub fn is_secret_value(value: &str) -> bool {
    let might = SECRET_VALUE_PATTERNS
        .iter()
        .any(|(literals, _)| literals.iter().any(|l| value.contains(l)));
    might && SECRET_VALUES.is_match(value)
}

fn glob_set(flag: &'static str, globs: &[String]) -> Result<GlobSet, Error> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let g = Glob::new(glob).map_err(|e| Error::BadGlob {
            flag,
            glob: glob.clone(),
            reason: e.kind().to_string(),
        })?;
        builder.add(g);
    }
    builder.build().map_err(|e| Error::BadGlob {
        flag,
        glob: globs.join(","),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> Policy {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Policy::new(&s(allow), &s(deny), &[], [7; 32]).expect("policy")
    }

    #[test]
    fn every_value_pattern_is_reached_through_its_literals() {
        // One credential per pattern, in order: the literal prefilter must let each through.
        let samples = [
            "AKIAIOSFODNN7EXAMPLE",
            "ghs_abcdefghijklmnopqrstuvwxyz0123456789",
            "github_pat_11ABCDEFG0123456789_abcdefghij",
            "glpat-abcdefghijklmnopqrst",
            "xoxp-1234567890-abc",
            "sk-ant-abcdefghijklmnopqrstuvwx",
            "rk_live_abcdefghijklmnopqrstuvwx",
            "hf_abcdefghijklmnopqrstuvwxyzABCDEF",
            "AIzaSyA1234567890abcdefghijklmnopqrstuv",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
        ];
        assert_eq!(samples.len(), SECRET_VALUE_PATTERNS.len());
        for (i, sample) in samples.iter().enumerate() {
            let matched: Vec<usize> = SECRET_VALUES.matches(sample).into_iter().collect();
            assert!(matched.contains(&i), "pattern {i} misses {sample}");
            for m in matched {
                let (literals, _) = SECRET_VALUE_PATTERNS[m];
                assert!(
                    literals.iter().any(|l| sample.contains(l)),
                    "pattern {m} matched {sample} without one of its literals"
                );
            }
            assert!(is_secret_value(&format!("x {sample} y")), "{sample}");
        }
        assert!(!is_secret_value("disk-usage-report-for-the-whole-cluster"));
    }

    #[test]
    fn names_values_and_urls() {
        let p = policy(&[], &[]);
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("HOME", "/home/u", None),
            ("HF_TOKEN", "x", Some(REDACTED)),
            ("db_password", "hunter2", Some(REDACTED)),
            ("AWS_SECRET_ACCESS_KEY", "abc", Some(REDACTED)),
            ("WANDB_API_KEY", "abc", Some(REDACTED)),
            ("MY_VAR", "AKIAIOSFODNN7EXAMPLE", Some(REDACTED)),
            (
                "NOTE",
                "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                Some(REDACTED),
            ),
            ("X", "sk-proj-abcdefghijklmnopqrstuvwx", Some(REDACTED)),
            ("X", "hf_abcdefghijklmnopqrstuvwxyzABCDEF", Some(REDACTED)),
            ("X", "glpat-abcdefghijklmnopqrst", Some(REDACTED)),
            ("X", "xoxb-123456789012-abcdef", Some(REDACTED)),
            (
                "X",
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig",
                Some(REDACTED),
            ),
            ("X", "-----BEGIN RSA PRIVATE KEY-----\nabc", Some(REDACTED)),
            (
                "DATABASE_URL",
                "postgres://u:pw@h/db",
                Some("postgres://u:***@h/db"),
            ),
            ("DATABASE_URL", "postgres://h/db", None),
        ];
        for (name, value, want) in cases {
            assert_eq!(p.redact(name, value).as_deref(), *want, "{name}={value}");
        }
    }

    #[test]
    fn allow_and_deny_globs() {
        let p = policy(&["MY_AUTH_MODE"], &["CUSTOM_*"]);
        assert_eq!(p.redact("MY_AUTH_MODE", "oauth"), None);
        assert_eq!(p.redact("CUSTOM_THING", "v").as_deref(), Some(REDACTED));
        // Allowing a name never lets a credential-shaped value through.
        assert_eq!(
            p.redact("MY_AUTH_MODE", "AKIAIOSFODNN7EXAMPLE").as_deref(),
            Some(REDACTED)
        );
        assert!(Policy::new(&["[".into()], &[], &[], [0; 32]).is_err());
    }

    #[test]
    fn arguments_with_secrets_are_redacted() {
        let p = policy(&[], &[]);
        let argv: Vec<Vec<u8>> = [
            "python",
            "train.py",
            "--password",
            "hunter2",
            "--api-key=abc123",
            "token=xyz",
            "--lr",
            "0.01",
            "--db",
            "postgres://u:pw@h/db",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "--epochs=3",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        let r = p.redact_argv(&argv);
        let shown: Vec<String> = r
            .argv
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(
            shown,
            [
                "python",
                "train.py",
                "--password",
                REDACTED,
                "--api-key=[REDACTED]",
                "token=[REDACTED]",
                "--lr",
                "0.01",
                "--db",
                "postgres://u:***@h/db",
                REDACTED,
                "--epochs=3",
            ]
        );
        assert_eq!(
            r.fingerprints.keys().copied().collect::<Vec<_>>(),
            [3, 4, 5, 9, 10]
        );
    }

    #[test]
    fn config_text_is_redacted_line_by_line() {
        let p = policy(&[], &[]);
        let yaml = "model: resnet\nwandb:\n  api_key: abc123secret\n  project: demo\ndb_url: postgres://u:pw9@h/db\n";
        let out = p.redact_text(yaml, &[]).expect("redacted");
        assert_eq!(
            out,
            "model: resnet\nwandb:\n  api_key: [REDACTED]\n  project: demo\ndb_url: postgres://u:***@h/db\n"
        );
        let toml = "lr = 0.1\npassword = \"hunter2\"\n";
        assert_eq!(
            p.redact_text(toml, &[]).expect("redacted"),
            "lr = 0.1\npassword = [REDACTED]\n"
        );
        let json = r#"{"token": "zzz-111", "x": 1}"#;
        assert_eq!(
            p.redact_text(json, &["zzz-111".into()]).expect("redacted"),
            r#"{"token": "[REDACTED]", "x": 1}"#
        );
        let env_file = "HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyzABCDEF\nSEED=3\n";
        assert_eq!(
            p.redact_text(env_file, &[]).expect("redacted"),
            "HF_TOKEN=[REDACTED]\nSEED=3\n"
        );
        assert_eq!(p.redact_text("lr: 0.1\nepochs: 3\n", &[]), None);
    }

    #[test]
    fn fingerprints_compare_without_revealing() {
        let p = policy(&[], &[]);
        assert_eq!(p.fingerprint("a"), p.fingerprint("a"));
        assert_ne!(p.fingerprint("a"), p.fingerprint("b"));
        assert!(!p.fingerprint("hunter2").contains("hunter2"));
    }
}
