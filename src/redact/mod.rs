//! The redaction engine: the one way anything captured reaches the store.
//!
//! The store's write API (`store::NewRun`, `store::Finish`) takes only [`Redacted`] values,
//! and only this module can make one: the command line ([`Policy::redact_argv`]), the params
//! ([`Policy::redact_params`]), every stored file's bytes — configs, untracked files, the
//! uncommitted patch, the package list ([`Policy::keep`]) — and the capture as a whole
//! ([`Policy::seal`]: the environment by name and value, `LINEAGE_*` variables dropped, and
//! every other string in it searched). What the exports, bundles and pages print is read
//! from the store, so it was redacted on the way in.
//!
//! The policy works on bytes in any encoding (`bytes`: UTF-8, UTF-16 by its BOM, anything
//! else as Latin-1), judges names by their meaning (`names`: `api_key` and `auth.pass` are
//! secret, `pad_token_id` and `author` are not), finds secrets in text by structure and
//! by shape (`text`), and passwords that only their program gives a meaning to, on the
//! command line and in scripts (`programs`: `mysql -pX`, `sshpass -p X`, `curl -u u:X`).
//! An allow pattern (`*`) never keeps a name that is secret by a strong word (`HF_TOKEN`) in
//! clear; only its exact name does, and the record's notes say so. A value is replaced where it was found secret, never wherever the same
//! text appears. Redacted values are kept only as a keyed BLAKE3 hash with a per-store random
//! key, so a later comparison can tell that a secret changed without the store holding it.
//! A stored file keeps the hash of its real bytes; a copy with its secrets redacted is stored
//! beside it.

mod bytes;
mod names;
mod programs;
mod rx;
mod text;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::Regex;

use rx::Rx;
use serde_json::Value;

use crate::error::Error;
use crate::model::{Capture, Hash, Param};

pub use bytes::{FileKind, file_kind};
pub use names::is_secret_path;

/// What a secret is replaced with wherever it was found.
pub const REDACTED: &str = "[REDACTED]";

/// A value that went through the engine: what the store accepts. Only this module makes one.
#[derive(Debug, Clone)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    /// The redacted value.
    pub fn get(&self) -> &T {
        &self.0
    }

    /// The redacted value, owned.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Redacted<Vec<T>> {
    /// Keep only the items `keep` says (in order): a part of what was redacted is still
    /// redacted, and each item was judged beside all the others (its siblings included).
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.0.retain(keep);
    }
}

/// A blob to store: (hash of the stored bytes, the bytes).
pub type Blob = (Hash, Vec<u8>);

/// A file's bytes as the store keeps them.
#[derive(Debug)]
pub struct Kept {
    /// The hash of the real bytes: the file's identity, whatever is stored.
    pub hash: Hash,
    /// The real size in bytes.
    pub size: u64,
    /// The stored copy's hash when it differs from the real bytes (secrets were redacted).
    pub redacted: Option<Hash>,
    /// What to store: the real bytes, or the copy with secrets redacted.
    pub blob: Redacted<Blob>,
}

/// What a stored file is, for [`Policy::keep`].
#[derive(Clone, Copy, Debug)]
pub enum What<'a> {
    /// A config, by its path as given.
    Config(&'a Path),
    /// An untracked file of the repository, by its path.
    File(&'a str),
    /// The uncommitted changes as a unified diff.
    Patch,
    /// A package list, `name==version` a line: such lines carry no secret and are kept as
    /// they are (`secretstorage==3.3` is a package); any other line is searched as text.
    Packages,
    /// Any other text.
    Text,
}

/// The redaction policy of one run.
pub struct Policy {
    allow: GlobSet,
    /// The allow entries that are a name, not a pattern: only these keep a name that is
    /// secret by a strong word (`HF_TOKEN`, `DB_PASSWORD`) in clear.
    allow_exact: Vec<String>,
    /// The allow entries that are patterns (`*`, `MY_*`), for the notes.
    allow_globs: Vec<String>,
    deny: GlobSet,
    /// Extra secret-value patterns from the settings files, as one alternation.
    extra: Option<Regex>,
    key: [u8; 32],
    /// Texts already searched, and what they became: the capture is sealed twice (at both
    /// transactions), its environment searched when it is captured and again then.
    seen: std::sync::Mutex<Seen>,
}

/// Texts searched, by what they were, and the bytes held.
#[derive(Default)]
struct Seen {
    texts: std::collections::HashMap<String, String>,
    bytes: usize,
}

/// Texts up to this long are remembered once searched, up to this many bytes in all. Every
/// CUDA container image sets `NVIDIA_REQUIRE_CUDA`, 2,000 characters of
/// `brand=tesla,driver>=535,driver<536`: searched again at each seal, on a thread whose
/// regex caches were cold, it cost 1.4 ms of every run before launch (and again after).
const SEEN_LEN: usize = 64 << 10;
const SEEN_BYTES: usize = 8 << 20;
/// And at most this many: 100,000 short arguments are not each worth a map entry.
const SEEN_COUNT: usize = 4096;

/// What the policy made of an environment.
#[derive(Debug, Default)]
pub struct RedactedEnv {
    /// Name -> value as stored (`[REDACTED]`, or a URL with its password masked).
    pub vars: BTreeMap<String, String>,
    /// Name -> keyed hash of the original value, for every variable changed by the policy.
    pub fingerprints: BTreeMap<String, String>,
    /// Warnings about the allow rules ([`Policy::allow_notes`]), for the caller to show.
    pub notes: Vec<String>,
}

/// What the policy made of a command line.
#[derive(Debug)]
pub struct RedactedArgv {
    /// The arguments, secrets redacted.
    pub argv: Redacted<Vec<Vec<u8>>>,
    /// Position -> keyed hash of the original argument, for every argument changed.
    pub fingerprints: BTreeMap<usize, String>,
}

/// The variables lineage reads (`LINEAGE_STORE`) or asks the user to set for a rerun
/// (`LINEAGE_ARG_<i>`, a redacted argument): never recorded.
const OWN_PREFIX: &str = "LINEAGE_";

/// `--flag=value`, `key=value`, Hydra's `+db.password=x`, `++x=y`, `~x`.
static ASSIGNMENT: Rx =
    Rx::new(r"(?s)^(?P<key>-{0,2}[+~]{0,2}[A-Za-z_][A-Za-z0-9_.\-/]*)=(?P<value>.*)$");

/// `numpy==1.26.4`: a package list's line (PEP 503 name, PEP 440 version).
static PACKAGE_LINE: Rx =
    Rx::new(r"^[A-Za-z0-9][A-Za-z0-9._\-]*==[A-Za-z0-9][A-Za-z0-9._+!\-]*\r?\n?$");

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
        let (allow_globs, allow_exact): (Vec<String>, Vec<String>) = allow
            .iter()
            .cloned()
            .partition(|g| g.contains(['*', '?', '[', ']', '{', '}', '\\']));
        Ok(Policy {
            allow: glob_set("--env-allow", allow)?,
            allow_exact,
            allow_globs,
            deny: glob_set("--env-deny", deny)?,
            extra,
            key,
            seen: Default::default(),
        })
    }

    /// Whether a value holds a credential of a known shape or matches a settings pattern.
    fn is_secret_value(&self, value: &str) -> bool {
        text::has_credential(value) || self.extra.as_ref().is_some_and(|r| r.is_match(value))
    }

    /// Whether a variable of this name is redacted whatever its value: `--env-deny`, then
    /// `--env-allow`, then its meaning. An allow pattern (`*`, `MY_*`) keeps only names that
    /// are secret by a weak word (`MY_AUTH`, `DB_PASS`) in clear; a name secret by a strong
    /// word (`HF_TOKEN`, `AWS_SECRET_ACCESS_KEY`, `DB_PASSWORD`) only when allowed by its
    /// exact name.
    pub fn is_secret_name(&self, name: &str) -> bool {
        if self.deny.is_match(name) {
            return true;
        }
        let secrecy = names::secrecy(name);
        !self.allows(name, secrecy) && secrecy != names::Secrecy::Clear
    }

    fn allows(&self, name: &str, secrecy: names::Secrecy) -> bool {
        match secrecy {
            names::Secrecy::Strong => self.allow_exact.iter().any(|a| a == name),
            _ => self.allow.is_match(name),
        }
    }

    /// Whether a key path (`auth.pass`, `--hf-token`, `+db.password`) is secret: the globs
    /// on it as a name, then the meaning of each of its parts.
    fn is_secret_key(&self, key: &str) -> bool {
        let name = flag_name(key);
        if self.deny.is_match(&name) {
            return true;
        }
        let secrecy = names::path_secrecy(key);
        !self.allows(&name, secrecy) && secrecy != names::Secrecy::Clear
    }

    /// What the allow rules did to these names, as warnings: a name secret by a strong word
    /// kept in clear because an allow entry names it exactly, and an allow pattern that matched
    /// such names and was not applied to them.
    pub fn allow_notes<'n>(&self, names: impl Iterator<Item = &'n str>) -> Vec<String> {
        let mut kept = Vec::new();
        let mut ignored = Vec::new();
        for name in names {
            if name.starts_with(OWN_PREFIX)
                || self.deny.is_match(name)
                || names::secrecy(name) != names::Secrecy::Strong
            {
                continue;
            }
            if self.allow_exact.iter().any(|a| a == name) {
                kept.push(name.to_string());
            } else if self.allow.is_match(name) {
                ignored.push(name.to_string());
            }
        }
        // Worded so that the text passes find nothing in them (no `name: value`).
        let mut notes = Vec::new();
        if !kept.is_empty() {
            notes.push(format!(
                "{} recorded in clear because an env allow rule names them exactly, though their names say they hold secrets",
                kept.join(", ")
            ));
        }
        if !ignored.is_empty() {
            notes.push(format!(
                "env allow pattern {} not applied to {} (their names say they hold secrets); only an exact name keeps one in clear",
                self.allow_globs
                    .iter()
                    .map(|g| format!("{g:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                ignored.join(", ")
            ));
        }
        notes
    }

    /// Free text with its secrets redacted (a short text searched once per policy).
    pub fn redact_text(&self, text: &str) -> String {
        if text.len() > SEEN_LEN {
            return text::redact(text, &self.scan(text::Mode::Text, false));
        }
        if let Some(out) = self
            .seen
            .lock()
            .ok()
            .and_then(|m| m.texts.get(text).cloned())
        {
            return out;
        }
        let paired = self.text_pairs(text);
        let out = text::redact(
            paired.as_deref().unwrap_or(text),
            &self.scan(text::Mode::Text, false),
        );
        if let Ok(mut m) = self.seen.lock()
            && m.bytes + text.len() + out.len() <= SEEN_BYTES
            && m.texts.len() < SEEN_COUNT
        {
            m.bytes += text.len() + out.len();
            m.texts.insert(text.to_string(), out.clone());
        }
        out
    }

    /// A metric's series as the store keeps it (`model::Series`): a JSON list of `[step,
    /// value]`, numbers only, so nothing in it is redacted.
    pub fn numbers(&self, points: impl Iterator<Item = (Option<i64>, f64)>) -> Redacted<Blob> {
        let mut out = String::from("[");
        for (i, (step, value)) in points.enumerate() {
            if i > 0 {
                out.push(',');
            }
            let value = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
            match step {
                Some(s) => out.push_str(&format!("[{s},{value}]")),
                None => out.push_str(&format!("[null,{value}]")),
            }
        }
        out.push(']');
        let bytes = out.into_bytes();
        Redacted((Hash::of(&bytes), bytes))
    }

    /// A note about a run (`lineage note`) as the store keeps it: free text, its secrets
    /// redacted like any other.
    pub fn redact_note(&self, text: &str) -> Redacted<String> {
        Redacted(self.redact_text(text))
    }

    fn scan(&self, mode: text::Mode, all_secret: bool) -> text::Scan<'_> {
        text::Scan {
            mode,
            all_secret,
            extra: self.extra.as_ref(),
        }
    }

    /// The value to store for the variable `name=value`, or None when it is stored as it
    /// is: `[REDACTED]` for a secret name or a credential-shaped value, else the value with
    /// what it holds redacted (a URL's password masked: `postgres://u:***@h/db`).
    pub fn redact(&self, name: &str, value: &str) -> Option<String> {
        if (self.is_secret_name(name) && !names::is_harmless(value)) || self.is_secret_value(value)
        {
            return (value != REDACTED).then(|| REDACTED.to_string());
        }
        // `AUTH_HEADER="Basic ..."`: the credential after the scheme.
        if text::is_auth_header_name(name)
            && let Some(out) = text::redact_scheme_value(value)
        {
            return (out != value).then_some(out);
        }
        let mut out = self.redact_text(value);
        // `SENTRY_DSN=https://<key>@host/1`: a DSN's URL user is its key.
        if names::words(name).last().is_some_and(|w| w == "dsn") {
            out = text::mask_url_users(&out);
        }
        (out != value).then_some(out)
    }

    /// A keyed hash of a secret: equal secrets give equal strings within one store.
    pub fn fingerprint(&self, value: &str) -> String {
        format!(
            "keyed-blake3:{}",
            blake3::keyed_hash(&self.key, value.as_bytes()).to_hex()
        )
    }

    /// The environment as stored: `LINEAGE_*` left out, secret values replaced, each with
    /// its keyed fingerprint.
    pub fn redact_env(&self, vars: impl Iterator<Item = (OsString, OsString)>) -> RedactedEnv {
        let mut out = RedactedEnv::default();
        for (name, value) in vars {
            let name = String::from_utf8_lossy(name.as_bytes()).into_owned();
            if name.starts_with(OWN_PREFIX) {
                continue;
            }
            let (_, value) = bytes::decode_unix_string(value.as_bytes());
            match self.redact(&name, &value) {
                Some(stored) => {
                    out.fingerprints
                        .insert(name.clone(), self.fingerprint(&value));
                    out.vars.insert(name, stored);
                }
                None => {
                    out.vars.insert(name, value);
                }
            }
        }
        out.notes = self.allow_notes(out.vars.keys().map(String::as_str));
        out
    }

    /// The command line as stored: the value after a secret flag (`--password x`), the value
    /// of a secret `key=value` (`--api-key=x`, `+db.password=x`, `secrets.db=x`), and what
    /// any argument holds (a `bash -c` script's `--password x`, credentials, URL passwords).
    /// The job still receives the real arguments; a rerun asks for exactly the arguments
    /// changed here (`LINEAGE_ARG_<i>`).
    pub fn redact_argv(&self, argv: &[Vec<u8>]) -> RedactedArgv {
        let mut stored_argv = Vec::with_capacity(argv.len());
        let mut fingerprints = BTreeMap::new();
        // The secret flag the next argument is the value of (`--password`, `-pass`).
        let mut secret_flag: Option<String> = None;
        let decoded: Vec<(bytes::Encoding, String)> =
            argv.iter().map(|a| bytes::decode_unix_string(a)).collect();
        let words: Vec<&str> = decoded.iter().map(|(_, a)| a.as_str()).collect();
        // `mysql -pX`, `sshpass -p X`, `curl -u bob:X`, `--user admin:X`: by the program.
        let by_program = programs::secrets(&words);
        // A name/value pair split across arguments (`env.name=AWS_SECRET_ACCESS_KEY
        // env.value=X`, `--env.name KEY --env.value X`): the value is secret by its sibling,
        // as the params made of them are.
        let by_sibling = self.argv_secret_by_sibling(&words);
        for (i, raw) in argv.iter().enumerate() {
            let (encoding, arg) = (decoded[i].0, decoded[i].1.clone());
            let after_secret_flag = secret_flag.take().filter(|_| i > 0);
            let stored = if let Some((_, r)) = by_program.iter().find(|(n, _)| *n == i && i > 0) {
                // What else it holds is searched too (`curl -u ghp_...:x`: the user is a token).
                self.redact_arg_text(&format!("{}{REDACTED}{}", &arg[..r.start], &arg[r.end..]))
            } else if let Some(flag) = after_secret_flag
                && !is_option(&arg)
                && !names::is_harmless_under(&flag, &arg)
            {
                REDACTED.to_string()
            } else if let Some(c) = ASSIGNMENT.captures(&arg)
                && self.is_secret_key(&c["key"])
                && !names::is_harmless_under(&c["key"], &c["value"])
            {
                format!("{}={REDACTED}", &c["key"])
            } else if let Some(ranges) = by_sibling.get(&i) {
                // A script holds more than the pair: what else it holds is searched too.
                self.redact_arg_text(&with_redacted(&arg, ranges))
            } else {
                if i > 0 && is_flag(&arg) && self.is_secret_key(&arg) {
                    secret_flag = Some(arg.clone());
                }
                self.redact_arg_text(&arg)
            };
            if stored == arg {
                stored_argv.push(raw.clone());
            } else {
                fingerprints.insert(i, self.fingerprint(&String::from_utf8_lossy(raw)));
                stored_argv.push(bytes::encode(encoding, &stored));
            }
        }
        RedactedArgv {
            argv: Redacted(stored_argv),
            fingerprints,
        }
    }

    /// A text's name/value pairs split across its words, judged as a command line's are,
    /// each within one statement (line) of it: a variable holding a command line
    /// (`TRAIN_ARGS="--name WANDB_API_KEY --value x"`), a note, a config's `command:`
    /// string, a script kept as code. None when it holds none; texts up to 64 KiB (a larger
    /// one is searched for the rest only).
    fn text_pairs(&self, text: &str) -> Option<String> {
        let has = |needle: &[u8]| {
            text.as_bytes()
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle))
        };
        if text.len() > SEEN_LEN
            || !text.contains(char::is_whitespace)
            || !has(b"val")
            || !(has(b"name") || has(b"var") || has(b"key"))
        {
            return None;
        }
        let found = self.argv_secret_by_sibling(&["", text]);
        found.get(&1).map(|ranges| with_redacted(text, ranges))
    }

    /// An argument's text as stored: searched as given and, where it holds `\"` (JSON in a
    /// shell script's double quotes: `curl -d "{\"password\":\"x\"}"`), searched again with
    /// those quotes unescaped; a secret found only so leaves it unescaped and redacted.
    fn redact_arg_text(&self, arg: &str) -> String {
        let out = self.redact_text(arg);
        if !arg.contains("\\\"") {
            return out;
        }
        let unescaped = out.replace("\\\"", "\"");
        let again = self.redact_text(&unescaped);
        if again == unescaped { out } else { again }
    }

    /// The byte ranges, by argument, of the values of name/value pairs whose name is a
    /// secret's (`e.name=AWS_SECRET_ACCESS_KEY e.value=X`: X's), by the params' sibling rule
    /// over the command's `key=value` arguments (Helm's comma-joined `a=b,c=d` too) and
    /// `--key value` pairs. The two halves must share a parent (`env.name`/`env.value`,
    /// `env_name`/`env_value`, `--env-name`/`--env-value`, `envName`/`envValue`,
    /// `env[0].name`/`env[0].value`), or be bare (`--name WANDB_API_KEY --value x`); the
    /// name must end in a secret's word (`names_a_secret`): a `--name secret_detector --val
    /// data/val.jsonl` names a run and a validation set. Empty, and cheap, for a command with
    /// no such pair.
    fn argv_secret_by_sibling(
        &self,
        words: &[&str],
    ) -> std::collections::BTreeMap<usize, Vec<std::ops::Range<usize>>> {
        let mut found: std::collections::BTreeMap<usize, Vec<std::ops::Range<usize>>> =
            Default::default();
        // (argument, value's range in it, key as `parent.name`/`parent.value`, value)
        let mut pairs: Vec<(usize, std::ops::Range<usize>, String, String)> = Vec::new();
        // The arguments as words; and each argument holding a script (`bash -c "python t.py
        // e.name=K e.value=x"`, `ssh host '...'`), its statements' words, read twice: as a
        // shell splits them, and at every blank whatever the quotes (a script whose quotes
        // cannot be followed, a script nested in a script). A pair is looked for in one
        // statement: its halves judged beside each other there, not beside another command's.
        let mut streams: Vec<(String, Vec<Word>)> = vec![(
            String::new(),
            words
                .iter()
                .enumerate()
                .skip(1)
                .map(|(i, w)| (i, 0..w.len()))
                .collect(),
        )];
        for (i, word) in words.iter().enumerate().skip(1) {
            script_streams(
                word,
                i,
                0..word.len(),
                &format!("\u{1}{i}"),
                0,
                &mut streams,
            );
        }
        for (group, stream) in &streams {
            let text = |(i, r): &Word| &words[*i][r.clone()];
            for (t, word) in stream.iter().enumerate() {
                for (key, range) in word_pairs(text(word)) {
                    let at = word.1.start;
                    let value = strip_quotes(&words[word.0][at + range.start..at + range.end]);
                    pairs.push((
                        word.0,
                        at + range.start..at + range.end,
                        format!("{group}{key}"),
                        value,
                    ));
                }
                if is_flag(&strip_quotes(text(word)))
                    && let Some(next) = stream.get(t + 1)
                    && !is_option(text(next))
                    && let Some(key) = pair_key(&strip_quotes(text(word)))
                {
                    pairs.push((
                        next.0,
                        next.1.clone(),
                        format!("{group}{key}"),
                        strip_quotes(text(next)),
                    ));
                }
            }
        }
        // On a command line a name counts only when its last word is a secret's
        // (`WANDB_API_KEY`, `DB-PASSWORD`, `/prod/db/password`), not a run's, a dataset's or
        // a model's that merely holds one (`secret_detector`, `secret-santa`, `auth`).
        fn leaf(key: &str) -> &str {
            key.rsplit('.').next().unwrap_or_default()
        }
        pairs.retain(|(_, _, k, v)| !text::is_name_key(leaf(k)) || names_a_secret(v));
        // Only a command that has both halves of a pair can hold one.
        let has = |f: fn(&str) -> bool| pairs.iter().any(|(_, _, k, _)| f(leaf(k)));
        if !has(text::is_name_key) || !has(text::is_value_key) {
            return found;
        }
        let values: Vec<Value> = pairs
            .iter()
            .map(|(_, _, _, v)| Value::String(v.clone()))
            .collect();
        let given: Vec<(&str, &Value)> = pairs
            .iter()
            .map(|(_, _, k, _)| k.as_str())
            .zip(&values)
            .collect();
        let secret: std::collections::BTreeSet<String> =
            self.secret_by_sibling(&given).into_iter().collect();
        for (i, range, key, _) in pairs {
            if secret.contains(&key) && !range.is_empty() {
                found.entry(i).or_default().push(range);
            }
        }
        found
    }

    /// The params as stored: a value under a secret key path (`wandb.api_key`,
    /// `passwords.0`, `secrets.db`) becomes `[REDACTED]` (booleans, null and `${VAR}`
    /// references excepted), and a string anywhere loses what it holds; every value of a
    /// config that is secret by its name (`.env`, `*.pem`) is redacted.
    pub fn redact_params(&self, params: Vec<Param>) -> Redacted<Vec<Param>> {
        let every = vec![true; params.len()];
        self.redact_params_kept(params, &every)
    }

    /// [`Policy::redact_params`] of the params `kept` marks (the same length, in order),
    /// each judged beside all the given ones (its siblings among those not kept too); the
    /// others are left out unread. A config of two million values keeps ten thousand.
    pub fn redact_params_kept(&self, params: Vec<Param>, kept: &[bool]) -> Redacted<Vec<Param>> {
        let mut by_sibling = std::collections::BTreeSet::new();
        let mut sources: Vec<&str> = params.iter().map(|p| p.source.as_str()).collect();
        sources.sort_unstable();
        sources.dedup();
        for source in sources {
            let same: Vec<(&str, &Value)> = params
                .iter()
                .filter(|p| p.source == source)
                .map(|p| (p.key.as_str(), &p.value))
                .collect();
            for key in self.secret_by_sibling(&same) {
                by_sibling.insert((source.to_string(), key));
            }
        }
        // Each source's kind once, not once a param.
        let mut kinds: std::collections::HashMap<String, FileKind> =
            std::collections::HashMap::new();
        let mut kind_of = |source: &str| match kinds.get(source) {
            Some(kind) => *kind,
            None => {
                let kind = file_kind(Path::new(source));
                kinds.insert(source.to_string(), kind);
                kind
            }
        };
        Redacted(
            params
                .into_iter()
                .zip(kept.iter().chain(std::iter::repeat(&false)))
                .filter_map(|(p, kept)| kept.then_some(p))
                .map(|p| {
                    let whole = (p.source != "cli" && kind_of(&p.source) != FileKind::Text)
                        || (!by_sibling.is_empty()
                            && by_sibling.contains(&(p.source.clone(), p.key.clone())));
                    let value = self.param_value(&p.key, p.value, whole);
                    Param { value, ..p }
                })
                .collect(),
        )
    }

    fn param_value(&self, key: &str, value: Value, whole: bool) -> Value {
        let secret = whole || self.is_secret_key(key);
        match value {
            Value::String(s) if secret && !self.harmless(key, &s, whole) => {
                Value::String(REDACTED.into())
            }
            Value::String(s) => {
                let leaf = key.rsplit(['.', '/', ':']).next().unwrap_or(key);
                let scheme = text::is_auth_header_name(leaf)
                    .then(|| text::redact_scheme_value(&s))
                    .flatten();
                Value::String(scheme.unwrap_or_else(|| self.redact_text(&s)))
            }
            Value::Number(n) if secret && !self.harmless(key, &n.to_string(), whole) => {
                Value::String(REDACTED.into())
            }
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|v| self.param_value(key, v, whole))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let path = format!("{key}.{k}");
                        let v = self.param_value(&path, v, whole);
                        (k, v)
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    /// A file's bytes as the store keeps them: the real bytes when they hold no secret,
    /// otherwise a copy with the secrets redacted, in the file's own encoding (a file secret
    /// by its name, `id_rsa`, `*.pem`, is kept as `[REDACTED]` alone). `known`: secret values
    /// the params of this config were found to hold; one the text passes missed (a YAML alias,
    /// say) is replaced where it stands as a whole word, and only when it is 8 characters or
    /// more, so a short value (`2048`) is never replaced elsewhere.
    pub fn keep(&self, what: What, bytes: Vec<u8>, known: &[String]) -> Kept {
        let hash = Hash::of(&bytes);
        let size = bytes.len() as u64;
        let (kind, mode) = match what {
            What::Config(p) => (file_kind(p), text::Mode::Text),
            What::File(rel) => (file_kind(Path::new(rel)), text::Mode::Text),
            What::Patch => (FileKind::Text, text::Mode::Patch),
            What::Text | What::Packages => (FileKind::Text, text::Mode::Text),
        };
        let redacted = match kind {
            FileKind::Secret if !bytes.is_empty() => Some(format!("{REDACTED}\n").into_bytes()),
            FileKind::Secret => None,
            FileKind::Text if matches!(what, What::Packages) => {
                let (encoding, text) = bytes::decode(&bytes);
                let out: String = text
                    .split_inclusive('\n')
                    .map(|line| {
                        if PACKAGE_LINE.is_match(line) {
                            line.to_string()
                        } else {
                            self.redact_text(line)
                        }
                    })
                    .collect();
                (out != text).then(|| bytes::encode(encoding, &out))
            }
            FileKind::Text | FileKind::EnvFile => {
                let (encoding, text) = bytes::decode(&bytes);
                let scan = self.scan(mode, kind == FileKind::EnvFile);
                let paired = self.text_pairs(&text);
                let mut out = text::redact(paired.as_deref().unwrap_or(&text), &scan);
                for value in known.iter().filter(|v| v.chars().count() >= 8) {
                    out = replace_word(&out, value);
                }
                let mut copy = (out != text).then(|| bytes::encode(encoding, &out));
                // Bytes taken for UTF-16 may not be: searched again as Latin-1.
                if matches!(encoding, bytes::Encoding::Utf16 { .. }) {
                    let current = copy.as_deref().unwrap_or(&bytes);
                    let latin1: String = current.iter().map(|&b| char::from(b)).collect();
                    let again = text::redact(&latin1, &scan);
                    if again != latin1 {
                        copy = Some(bytes::encode(bytes::Encoding::Latin1, &again));
                    }
                }
                copy
            }
        };
        match redacted {
            Some(copy) => {
                let blob = Hash::of(&copy);
                Kept {
                    hash,
                    size,
                    redacted: Some(blob),
                    blob: Redacted((blob, copy)),
                }
            }
            None => Kept {
                hash,
                size,
                redacted: None,
                blob: Redacted((hash, bytes)),
            },
        }
    }

    /// Whether a value found under a secret key carries no secret: harmless, or a small count
    /// under a weakly secret key (`pass: 1`) unless every value is secret (`whole`).
    fn harmless(&self, key: &str, value: &str, whole: bool) -> bool {
        if whole {
            names::is_harmless(value)
        } else {
            names::is_harmless_under(key, value)
        }
    }

    /// The keys of flattened params made secret by a sibling: the `value` beside a `name`
    /// (or `key`) that names a secret (Kubernetes' `env: [{name: HF_TOKEN, value: x}]`), and
    /// the item after a secret flag in a list (`args: ["--api-key", x]`).
    fn secret_by_sibling(&self, params: &[(&str, &Value)]) -> Vec<String> {
        use std::collections::HashMap;
        fn split(key: &str) -> (Option<&str>, &str) {
            match key.rsplit_once('.') {
                Some((p, l)) => (Some(p), l),
                None => (None, key),
            }
        }
        // The name-keyed siblings grouped by their parent, once: a config holding a list of
        // 40,000 items made each item search the whole list.
        let mut names: HashMap<Option<&str>, Vec<&str>> = HashMap::new();
        // The keys whose value is a secret flag (`--api-key`), each as first given: only
        // the item after one of those can be secret by it. Most configs hold none, and a
        // map of every key (a vocabulary of two million items) cost more than the rest.
        let mut flags: HashMap<&str, Option<&str>> = HashMap::new();
        for (key, value) in params {
            let (parent, leaf) = split(key);
            if let Some(text) = value.as_str() {
                if text::is_name_key(leaf) {
                    names.entry(parent).or_default().push(text);
                }
                if is_flag(text) && self.is_secret_key(text) {
                    flags.insert(*key, None);
                }
            }
        }
        if !flags.is_empty() {
            for (key, value) in params {
                if let Some(first) = flags.get_mut(*key) {
                    first.get_or_insert(value.as_str().unwrap_or_default());
                }
            }
        }
        let get = |key: &str| flags.get(key).copied().flatten();
        let mut named_secret: HashMap<Option<&str>, bool> = HashMap::new();
        let mut out = Vec::new();
        for (key, value) in params {
            let (parent, leaf) = split(key);
            let sibling = |name: &str| match parent {
                Some(p) => get(&format!("{p}.{name}")),
                None => get(name),
            };
            let secret = if text::is_value_key(leaf) {
                *named_secret.entry(parent).or_insert_with(|| {
                    names
                        .get(&parent)
                        .is_some_and(|ns| ns.iter().any(|n| self.is_secret_name(n)))
                })
            } else if let Ok(index) = leaf.parse::<usize>()
                && index > 0
            {
                // The item first: most are no secret whatever comes before them (a
                // number, a harmless word), and finding the one before allocates its key.
                let item = value.as_str().unwrap_or_default();
                !flags.is_empty()
                    && !is_option(item)
                    && !names::is_harmless(item)
                    && sibling(&(index - 1).to_string())
                        .is_some_and(|flag| is_flag(flag) && self.is_secret_key(flag))
            } else {
                false
            };
            if secret {
                out.push(key.to_string());
            }
        }
        out
    }

    /// The secret string values among a config's params, as `keep`'s `known`.
    pub fn secret_values(&self, source: &Path, params: &[(String, Value)]) -> Vec<String> {
        let whole = file_kind(source) != FileKind::Text;
        let borrowed: Vec<(&str, &Value)> = params.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let by_sibling: std::collections::HashSet<String> =
            self.secret_by_sibling(&borrowed).into_iter().collect();
        params
            .iter()
            .filter(|(key, value)| {
                (whole || by_sibling.contains(key) || self.is_secret_key(key))
                    && !matches!(value, Value::Bool(_) | Value::Null)
            })
            .filter_map(|(_, value)| match value {
                Value::String(s) if !names::is_harmless(s) => Some(s.clone()),
                Value::Number(n) if !names::is_small_count(&n.to_string()) => Some(n.to_string()),
                _ => None,
            })
            .collect()
    }

    /// The capture as stored: the environment by name and value (`LINEAGE_*` left out, each
    /// change fingerprinted), then every other string in it (notes, remotes, paths, names)
    /// searched as text. Sealing a sealed capture changes nothing.
    pub fn seal(&self, mut capture: Capture) -> Redacted<Capture> {
        capture.env.retain(|name, _| !name.starts_with(OWN_PREFIX));
        capture
            .env_redacted
            .retain(|name, _| !name.starts_with(OWN_PREFIX));
        for (name, value) in capture.env.iter_mut() {
            if let Some(stored) = self.redact(name, value) {
                if !capture.env_redacted.contains_key(name) {
                    let print = self.fingerprint(value);
                    capture.env_redacted.insert(name.clone(), print);
                }
                *value = stored;
            }
        }
        for note in self.allow_notes(capture.env.keys().map(String::as_str)) {
            if !capture.notes.contains(&note) {
                capture.notes.push(note);
            }
        }
        let env = std::mem::take(&mut capture.env);
        let env_redacted = std::mem::take(&mut capture.env_redacted);
        let argv_redacted = std::mem::take(&mut capture.argv_redacted);
        let config_redacted = std::mem::take(&mut capture.config_redacted);
        let mut sealed = match serde_json::to_value(&capture) {
            Ok(mut tree) => {
                self.redact_strings(&mut tree);
                serde_json::from_value(tree).unwrap_or_else(|e| unsealable(&e))
            }
            Err(e) => unsealable(&e),
        };
        sealed.env = env;
        sealed.env_redacted = env_redacted;
        sealed.argv_redacted = argv_redacted;
        sealed.config_redacted = config_redacted;
        Redacted(sealed)
    }

    fn redact_strings(&self, tree: &mut Value) {
        match tree {
            Value::String(s) => {
                let out = self.redact_text(s);
                if out != *s {
                    *s = out;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_strings(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.redact_strings(v)),
            _ => {}
        }
    }
}

/// A capture that cannot go through serde (it always can: plain data) is not recorded.
fn unsealable(e: &serde_json::Error) -> Capture {
    Capture {
        notes: vec![format!("capture not recorded: redaction failed ({e})")],
        ..Capture::default()
    }
}

/// `value` replaced where it stands as a whole word (not inside a longer word).
fn replace_word(text: &str, value: &str) -> String {
    if value.is_empty() || !text.contains(value) {
        return text.to_string();
    }
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(value) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + value.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(word) || after.is_some_and(word) {
            out.push_str(value);
        } else {
            out.push_str(REDACTED);
        }
        rest = &rest[at + value.len()..];
    }
    out.push_str(rest);
    out
}

/// An argument's word: the argument, and the word's bytes in it.
type Word = (usize, std::ops::Range<usize>);

/// The streams of words of the script at `place` in argument `arg` (nothing if it holds no
/// blank): each statement as a shell splits it, and as split at every blank; then, a quoted
/// word that is a script in turn (`ssh host 'python t.py --name K --value "a b"'`), its own,
/// down to a few levels.
fn script_streams(
    arg: &str,
    i: usize,
    place: std::ops::Range<usize>,
    label: &str,
    depth: usize,
    streams: &mut Vec<(String, Vec<Word>)>,
) {
    let script = &arg[place.clone()];
    if depth > 3 || !script.contains(char::is_whitespace) {
        return;
    }
    let shell = script_words(script);
    for (reading, statements) in [("q", &shell), ("p", &blank_words(script))] {
        for (n, statement) in statements.iter().enumerate() {
            let words = statement
                .iter()
                .map(|r| (i, place.start + r.start..place.start + r.end))
                .collect();
            streams.push((format!("{label}{reading}{n}."), words));
        }
    }
    for (n, word) in shell.iter().flatten().enumerate() {
        let inner = place.start + word.start..place.start + word.end;
        script_streams(arg, i, inner, &format!("{label}n{n}"), depth + 1, streams);
    }
}

/// `text` with each of `ranges` replaced by `[REDACTED]`: ranges that overlap or touch
/// (found more than once, by several readings of a script) replaced once, as one.
fn with_redacted(text: &str, ranges: &[std::ops::Range<usize>]) -> String {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
    for r in sorted {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    let mut out = text.to_string();
    for r in merged.into_iter().rev() {
        out.replace_range(r, REDACTED);
    }
    out
}

/// The name/value halves among one word's `key=value` parts, as (pair key, the value's
/// range in the word). Parts are joined by `,` (Helm's `a=b,c=d`), `&` and `?` (a form's or
/// a URL's `name=K&value=x`); a part with no `=` (`y` in `e.val=x,y`), or after an escaped
/// `\,`, goes on the value before it; the key is the one right before an `=`
/// (`--set=env.name=K`).
fn word_pairs(word: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let mut out: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    let mut at = 0;
    let mut escaped = false;
    for part in word.split([',', '&', '?']) {
        let end = at + part.len();
        if escaped || !part.contains('=') {
            if let Some(last) = out.last_mut()
                && last.1.end + 1 == at
            {
                last.1.end = end;
            }
        } else {
            let mut from = 0;
            for (eq, _) in part.match_indices('=') {
                if let Some(key) = pair_key(&strip_quotes(&part[from..eq])) {
                    out.push((key, at + eq + 1..end));
                    break;
                }
                from = eq + 1;
            }
        }
        escaped = part.ends_with('\\');
        at = end + 1;
    }
    out
}

/// The statements of a shell script given as one argument, each as its words' byte ranges,
/// split as a shell splits them: at unquoted blanks, statements at `;`, `&`, `|`, `(`, `)`
/// and new lines; quotes (`'...'`, `"..."`, `$'...'`, `` `...` ``) and a backslash's escape kept inside
/// their word, a backslash before a new line a blank, a `#` comment to the end of its line,
/// a word wholly quoted (`"e.value=x"`) given without its quotes.
fn script_words(script: &str) -> Vec<Vec<std::ops::Range<usize>>> {
    let b = script.as_bytes();
    let mut statements: Vec<Vec<std::ops::Range<usize>>> = vec![Vec::new()];
    let mut start: Option<usize> = None;
    // `'`, `"`, or `$` for `$'...'`, where a backslash escapes.
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(b'$' | b'"') if c == b'\\' => i += 1,
            Some(b'$') if c == b'\'' => quote = None,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => {
                let continued = c == b'\\' && b.get(i + 1) == Some(&b'\n');
                let ends = b";&|()\n".contains(&c);
                if c.is_ascii_whitespace() || ends || continued {
                    if let Some(s) = start.take()
                        && let Some(st) = statements.last_mut()
                    {
                        st.push(s..i);
                    }
                    if ends {
                        statements.push(Vec::new());
                    }
                    if continued {
                        i += 1;
                    }
                } else if c == b'#' && start.is_none() {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                } else {
                    start.get_or_insert(i);
                    match c {
                        b'\'' if i > 0 && b[i - 1] == b'$' => quote = Some(b'$'),
                        b'\'' | b'"' | b'`' => quote = Some(c),
                        b'\\' => i += 1,
                        _ => {}
                    }
                }
            }
        }
        i += 1;
    }
    if let Some(s) = start
        && let Some(st) = statements.last_mut()
    {
        st.push(s..b.len());
    }
    statements
        .into_iter()
        .map(|st| {
            st.into_iter()
                .map(|r| {
                    let w = &b[r.clone()];
                    match (w.first(), w.last()) {
                        (Some(&x), Some(&y))
                            if w.len() >= 2 && x == y && matches!(x, b'"' | b'\'') =>
                        {
                            r.start + 1..r.end - 1
                        }
                        _ => r,
                    }
                })
                .filter(|r| script.is_char_boundary(r.start) && script.is_char_boundary(r.end))
                .collect::<Vec<_>>()
        })
        .filter(|st| !st.is_empty())
        .collect()
}

/// The statements of a script as its words at every blank, whatever the quotes (a script
/// whose quotes cannot be followed, a script in a script's quotes: `ssh host 'python t.py
/// --name K --value x'`), the quotes, backslashes and backquotes at each word's ends left out.
fn blank_words(script: &str) -> Vec<Vec<std::ops::Range<usize>>> {
    const ENDS: [char; 5] = ['"', '\'', '\\', '`', '$'];
    let mut statements: Vec<Vec<std::ops::Range<usize>>> = vec![Vec::new()];
    let mut start: Option<usize> = None;
    let close = |statements: &mut Vec<Vec<std::ops::Range<usize>>>, r: std::ops::Range<usize>| {
        let w = &script[r.clone()];
        let head = w.len() - w.trim_start_matches(ENDS).len();
        let body = w[head..].trim_end_matches(ENDS);
        if !body.is_empty()
            && let Some(st) = statements.last_mut()
        {
            st.push(r.start + head..r.start + head + body.len());
        }
    };
    for (i, c) in script.char_indices() {
        let ends = ";&|()\n".contains(c);
        if c.is_whitespace() || ends {
            if let Some(s) = start.take() {
                close(&mut statements, s..i);
            }
            if ends {
                statements.push(Vec::new());
            }
        } else {
            start.get_or_insert(i);
        }
    }
    if let Some(s) = start {
        close(&mut statements, s..script.len());
    }
    statements.retain(|st| !st.is_empty());
    statements
}

/// A word without its quotes, as a shell reads it (`"hunter 2"`, `_KE"Y"`).
fn strip_quotes(word: &str) -> String {
    word.replace(['"', '\''], "")
}

/// Whether a name given on a command line names a secret by its last word (`HF_TOKEN`,
/// `WANDB_API_KEY`, `DB-PASSWORD`, `/prod/db/password`, `openaiApiKey`, `SASToken`), a
/// number after it left aside (`OPENAI_API_KEY_2`), or by one word
/// ending in password (`PGPASSWORD`). A name in lower case ending in `token` or `key` is an
/// ML name as often as a credential's (`loss_per_token`, `masked_token`, `sort_key`): it
/// counts only after a credential's word (`/ml/hf/token`, `hf-token`, `api_key`).
fn names_a_secret(name: &str) -> bool {
    let words = names::words(name);
    let is_suffix = |w: &str| w.bytes().all(|b| b.is_ascii_digit());
    let mut kept = words.iter().rev().skip_while(|w| is_suffix(w));
    let Some(last) = kept.next() else {
        return false;
    };
    if ["password", "passwd", "passphrase"]
        .iter()
        .any(|w| last.ends_with(w))
    {
        return true;
    }
    if ![
        "pwd",
        "secret",
        "apikey",
        "credential",
        "credentials",
        "token",
        "key",
    ]
    .contains(&last.as_str())
    {
        return false;
    }
    let lower = !name.bytes().any(|b| b.is_ascii_uppercase());
    if !(lower && (last == "token" || last == "key")) {
        return true;
    }
    kept.next().is_some_and(|before| {
        [
            "api",
            "access",
            "auth",
            "bearer",
            "refresh",
            "session",
            "github",
            "gh",
            "gitlab",
            "hf",
            "huggingface",
            "openai",
            "wandb",
            "slack",
            "bot",
            "npm",
            "pypi",
            "oauth",
            "secret",
            "private",
            "personal",
            "client",
            "service",
            "signing",
            "encryption",
            "master",
            "deploy",
            "aws",
            "gcp",
            "azure",
            "db",
            "admin",
            "root",
            "ssh",
            "jwt",
        ]
        .contains(&before.as_str())
    })
}

/// The key of one half of a name/value pair as `parent.name` or `parent.value` (`name`,
/// `key`, `var`, `variable`; `value`, `val`), from `env.name`, `--env.name`, `+env.name`,
/// `env[0].name`, `env_name`, `--env-name`, `env/name` or `envName`, or as `name`/`value`
/// for a bare half (`--name`); None for any other key.
fn pair_key(key: &str) -> Option<String> {
    let key = key.trim_start_matches(['-', '+', '~']);
    if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == '=') {
        return None;
    }
    let half = |w: &str| text::is_name_key(w) || text::is_value_key(w);
    if half(key) {
        return Some(key.to_ascii_lowercase());
    }
    // `env[0].name`, `env:name` (a colon between the parts): `env.0.name`, `env.name`.
    let key = key.replace(['[', ':'], ".").replace(']', "");
    let (prefix, segment) = match key.rsplit_once('.') {
        Some((p, l)) if half(l) && !p.is_empty() => return Some(key.clone()),
        Some((p, l)) => (format!("{p}."), l),
        None => (String::new(), key.as_str()),
    };
    // `env_name`, `env-name`, `env/name`: the last separator; `envName`: the last capital.
    let cut = segment
        .rfind(['_', '-', '/'])
        .map(|at| (at, at + 1))
        .or_else(|| {
            let b = segment.as_bytes();
            (1..b.len())
                .rev()
                .find(|&i| b[i].is_ascii_uppercase() && !b[i - 1].is_ascii_uppercase())
                .map(|i| (i, i))
        })?;
    let (head, tail) = (&segment[..cut.0], &segment[cut.1..]);
    (half(tail) && !head.is_empty())
        .then(|| format!("{prefix}{head}.{}", tail.to_ascii_lowercase()))
}

/// `--lr`, `--epochs=3`, `-v`: an option, not the value of the secret flag before it.
fn is_option(arg: &str) -> bool {
    arg.starts_with("--")
        || (arg.len() == 2 && arg.starts_with('-') && arg.as_bytes()[1].is_ascii_alphabetic())
}

/// `--password`, `-p`: a flag that may take the next argument as its value.
fn is_flag(arg: &str) -> bool {
    arg.len() > 1 && arg.starts_with('-') && !arg.contains(['=', ' ', '\t', '\n'])
}

/// `--api-key` -> `api_key`, `+db.password` -> `db_password`, for the globs.
fn flag_name(flag: &str) -> String {
    flag.trim_start_matches(['-', '+', '~'])
        .replace(['-', '.'], "_")
}

/// Whether a value is shaped like a credential, whatever its name.
pub fn is_secret_value(value: &str) -> bool {
    text::has_credential(value)
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
mod tests;
