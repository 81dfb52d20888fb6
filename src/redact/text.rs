//! Secrets found in text, in three passes, each replacing only what it found secret, where it
//! found it:
//!
//! 1. JSON (a document that starts with `{` or `[`, one-line or not, JSON Lines too): a
//!    tokenizer follows the key path, so `{"auth": {"pass": "x\"y"}}` loses `x\"y` and nothing
//!    else.
//! 2. Lines (YAML, TOML, INI, `.env`, shell, Python, a patch's lines after their `+`/`-`/` `):
//!    keys nested by indentation, `[section]` headers, `- ` list items and `export`; a
//!    secret-named key anywhere on the path makes its value secret, and a value that goes on
//!    over several lines (a YAML block scalar, a TOML `"""` string, an open `[`, an open quote,
//!    more-indented continuation lines) is redacted line by line, so a patch keeps its shape.
//! 3. Patterns anywhere: whole PEM private-key blocks, credential shapes (cloud, VCS, chat,
//!    payment and model-hub tokens, live and test, webhook URLs), `Bearer` tokens, URL
//!    passwords and key-like URL users (a Sentry DSN's), `Basic` user:password base64, the
//!    credential after an authorization scheme (`Authorization: Token x`), netrc entries,
//!    passwords by the program that reads them (`mysql -pX`, `curl -u u:X`: `programs`),
//!    secret query parameters, `key=value` / `key: value` pairs, XML elements and
//!    `--flag value` where the key, tag or flag is secret-named, and the settings' own
//!    patterns.

use std::sync::LazyLock;

use regex::Regex;

use super::rx::{Caps, Rx};

use super::REDACTED;
use super::names::{is_harmless, is_harmless_under, is_secret_name, is_secret_path};

/// How to read the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A file, a value, an argument.
    Text,
    /// A unified diff: each line's first character is the diff's, not the file's.
    Patch,
}

/// One pass over a text.
pub struct Scan<'a> {
    pub mode: Mode,
    /// Every key is secret (an `.env` file).
    pub all_secret: bool,
    /// The settings' `redact.values` patterns, as one alternation.
    pub extra: Option<&'a Regex>,
}

/// The text with its secrets replaced by `[REDACTED]` (or a URL password by `***`).
pub fn redact(text: &str, scan: &Scan) -> String {
    // A JSON document read as JSON is not read again line by line: its lines' keys are known.
    let structured = if !text.contains([':', '=', '[', '{']) {
        // No key, no section, no container: no structure to follow.
        text.to_string()
    } else {
        (scan.mode == Mode::Text && starts_like_json(text))
            .then(|| json(text, scan.all_secret))
            .flatten()
            .unwrap_or_else(|| lines(text, scan))
    };
    patterns(&structured, scan)
}

/// `path.key`, or `key` at the top.
fn join_key(path: &str, key: &str) -> String {
    match path.is_empty() {
        true => key.to_string(),
        false => format!("{path}.{key}"),
    }
}

/// The parts of a key path kept for a nested container: a key is judged by its own parts
/// and those right before it (`api.key`, `fs.s3a.access.key`), and a container under a
/// secret key makes everything in it secret whatever its path says.
const PATH_PARTS: usize = 16;

/// `path.key` for a container about to open, its leading parts dropped past the last
/// [`PATH_PARTS`]: a document nested 20,000 deep kept 20,000 ever longer paths (800 MB and
/// four seconds before launch for a 120 KB file).
fn nested_path(path: &str, key: &str) -> String {
    let full = join_key(path, key);
    match full.rmatch_indices(['.', '/', ':']).nth(PATH_PARTS - 1) {
        Some((at, _)) => full[at + 1..].to_string(),
        None => full,
    }
}

fn starts_like_json(text: &str) -> bool {
    let t = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    t.starts_with('{') || (t.starts_with('[') && !SECTION.is_match(t.lines().next().unwrap_or("")))
}

// ---------------------------------------------------------------------------------------
// 1. JSON

enum Container {
    Object {
        /// The path of keys to this object (`api`, `aws.access`): a key in it is judged
        /// with it (`api` then `key` is `api.key`, a secret).
        path: String,
        /// The key at hand.
        key: String,
        secret: bool,
        want_key: bool,
        value_secret: bool,
        /// The key at hand when the value is secret by it alone: what is harmless under it
        /// (`pass: 1`, `label_token: "<l>"`) stays.
        value_key: Option<String>,
        /// The key at hand is `name` or `key`; `named`: it named a secret, so `value` is one.
        at_name: bool,
        named: bool,
    },
    Array {
        path: String,
        secret: bool,
        /// The item before was a secret flag (`["--api-key", "x"]`).
        after_flag: bool,
    },
}

/// JSON (and JSON Lines, and `//` comments) with the values on secret key paths replaced;
/// None when the text is not JSON after all.
fn json(text: &str, all_secret: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut stack: Vec<Container> = Vec::new();
    let value_secret = |stack: &[Container]| match stack.last() {
        Some(Container::Object { value_secret, .. }) => *value_secret,
        Some(Container::Array { secret, .. }) => *secret,
        None => false,
    };
    // The path of keys to a value about to open.
    let value_path = |stack: &[Container]| match stack.last() {
        Some(Container::Object { path, key, .. }) => nested_path(path, key),
        Some(Container::Array { path, .. }) => path.clone(),
        None => String::new(),
    };
    let harmless_under_key = |stack: &[Container], value: &str| match stack.last() {
        Some(Container::Object {
            value_key: Some(key),
            ..
        }) => super::names::is_harmless_under(key, value),
        _ => false,
    };
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' | b':' => {
                out.push(c as char);
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                out.push_str(&text[i..end]);
                i = end;
            }
            b'{' => {
                let secret = value_secret(&stack);
                stack.push(Container::Object {
                    path: value_path(&stack),
                    key: String::new(),
                    secret,
                    want_key: true,
                    value_secret: secret,
                    value_key: None,
                    at_name: false,
                    named: false,
                });
                out.push('{');
                i += 1;
            }
            b'[' => {
                let secret = value_secret(&stack);
                stack.push(Container::Array {
                    path: value_path(&stack),
                    secret,
                    after_flag: false,
                });
                out.push('[');
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                out.push(c as char);
                i += 1;
            }
            b',' => {
                if let Some(Container::Object { want_key, .. }) = stack.last_mut() {
                    *want_key = true;
                }
                out.push(',');
                i += 1;
            }
            b'"' => {
                let end = string_end(bytes, i)?;
                let token = &text[i..end];
                let inner = &token[1..token.len() - 1];
                match stack.last_mut() {
                    Some(Container::Object {
                        path,
                        key,
                        secret,
                        want_key,
                        value_secret,
                        value_key,
                        at_name,
                        named,
                    }) if *want_key => {
                        *want_key = false;
                        inner.clone_into(key);
                        let by_name = *named && is_value_key(inner);
                        let by_key =
                            is_secret_path(inner) || is_secret_path(&join_key(path, inner));
                        *value_secret = *secret || all_secret || by_name || by_key;
                        *value_key = (!*secret && !all_secret && !by_name && by_key)
                            .then(|| inner.to_string());
                        *at_name = is_name_key(inner);
                        out.push_str(token);
                    }
                    _ => {
                        let mut flag_value = false;
                        match stack.last_mut() {
                            Some(Container::Object { at_name, named, .. })
                                if *at_name && is_secret_name(inner) =>
                            {
                                *named = true;
                            }
                            Some(Container::Array { after_flag, .. }) => {
                                flag_value = std::mem::take(after_flag) && !inner.starts_with('-');
                                *after_flag = is_secret_flag(inner);
                            }
                            _ => {}
                        }
                        if (value_secret(&stack) || flag_value)
                            && !is_harmless(inner)
                            && !harmless_under_key(&stack, inner)
                        {
                            out.push('"');
                            out.push_str(REDACTED);
                            out.push('"');
                        } else {
                            out.push_str(token);
                        }
                    }
                }
                i = end;
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                let len = bytes[i..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
                    .count();
                let token = &text[i..i + len];
                let literal = matches!(token, "true" | "false" | "null");
                if !literal && !token.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
                    return None;
                }
                if let Some(Container::Array { after_flag, .. }) = stack.last_mut() {
                    *after_flag = false;
                }
                if !literal && value_secret(&stack) && !harmless_under_key(&stack, token) {
                    out.push('"');
                    out.push_str(REDACTED);
                    out.push('"');
                } else {
                    out.push_str(token);
                }
                i += len;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The index just past the closing quote of the string starting at `start`.
pub(super) fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// 2. Lines

/// `[section]`, `[[array.of.tables]]`, `[auth "basic"]` (git config).
static SECTION: Rx =
    Rx::new(r#"^[ \t]*\[\[?[ \t]*(?P<name>[A-Za-z0-9_.\-" ]+?)[ \t]*\]\]?[ \t]*(?:[#;].*)?$"#);

/// `key: value`, `key = value`, `"key": value`, `key := value`.
static KEY_LINE: Rx = Rx::new(
    r#"^(?P<key>"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_$@+~][A-Za-z0-9_.\-+~$@/]*)[ \t]*(?P<sep>:=|:|=)(?P<value>.*)$"#,
);

/// What goes on after a secret key's line.
#[derive(Clone, Copy)]
enum Swallow {
    /// Lines more indented than this (and blank ones) belong to the value.
    Deeper(usize),
    /// Lines up to the one that closes the value with this delimiter.
    Until(&'static str),
}

struct Frame {
    indent: usize,
    secret: bool,
    /// The path of keys to it (`api`, `storage.account`), its section's first.
    path: String,
}

fn lines(text: &str, scan: &Scan) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut stack: Vec<Frame> = Vec::new();
    let mut section_secret = false;
    let mut section = String::new();
    let mut swallow: Option<Swallow> = None;
    // The indent of a mapping whose `name:` names a secret: its `value:` is one
    // (Kubernetes' `env: [{name: HF_TOKEN, value: x}]`).
    let mut named: Option<usize> = None;
    // The indent of a list item that is a secret flag: the next item is its value
    // (`args: [--api-key, x]` in block style).
    let mut flag_item: Option<usize> = None;
    let all: Vec<&str> = text.split_inclusive('\n').collect();
    for (at, &raw) in all.iter().enumerate() {
        let (line, eol) = split_eol(raw);
        let margin = match scan.mode {
            Mode::Text => 0,
            Mode::Patch => {
                let header = ["+++ ", "--- ", "diff ", "@@", "index "]
                    .iter()
                    .any(|h| line.starts_with(h));
                if header || !line.starts_with(['+', '-', ' ']) {
                    stack.clear();
                    section_secret = false;
                    section.clear();
                    swallow = None;
                    out.push_str(raw);
                    continue;
                }
                1
            }
        };
        let body = &line[margin..];
        let indent = body.len() - body.trim_start_matches([' ', '\t']).len();
        let trimmed = body.trim();
        let lead = &line[..margin + indent];
        if let Some(sw) = swallow {
            match sw {
                Swallow::Deeper(n) => {
                    if trimmed.is_empty() {
                        out.push_str(raw);
                        continue;
                    }
                    if indent > n {
                        push_redacted_line(&mut out, lead, eol);
                        continue;
                    }
                    swallow = None;
                }
                Swallow::Until(delim) => {
                    match closing(trimmed, delim) {
                        Some(at) => {
                            let rest = &trimmed[at..];
                            let before = if at == 0 { "" } else { REDACTED };
                            out.push_str(lead);
                            out.push_str(before);
                            out.push_str(rest);
                            out.push_str(eol);
                            swallow = None;
                        }
                        None => push_redacted_line(&mut out, lead, eol),
                    }
                    continue;
                }
            }
        }
        if trimmed.is_empty()
            || trimmed.starts_with('#')
            || trimmed.starts_with(';')
            || trimmed.starts_with("//")
        {
            out.push_str(raw);
            continue;
        }
        if let Some(c) = SECTION.captures(trimmed)
            && (indent == 0 || stack.is_empty())
        {
            stack.clear();
            section = c["name"].replace('"', "");
            section_secret = scan.all_secret || is_secret_path(&section);
            out.push_str(raw);
            continue;
        }
        let is_item = trimmed == "-" || trimmed.starts_with("- ");
        while let Some(top) = stack.last() {
            if top.indent > indent || (top.indent == indent && !is_item) {
                stack.pop();
            } else {
                break;
            }
        }
        let context_secret = scan.all_secret || section_secret || stack.iter().any(|f| f.secret);
        // `- `, `- - `: list markers; a key after one is indented as far as it stands.
        let mut rest = &body[indent..];
        let mut key_indent = indent;
        while rest == "-" || rest.starts_with("- ") {
            let after = rest[1..].trim_start_matches([' ', '\t']);
            key_indent += rest.len() - after.len();
            rest = after;
        }
        if let Some(after) = rest.strip_prefix("export ") {
            let after = after.trim_start();
            key_indent += rest.len() - after.len();
            rest = after;
        }
        let rest_at = margin + key_indent;
        if named.is_some_and(|n| key_indent < n || (is_item && key_indent <= n)) {
            named = None;
        }
        let after_flag = is_item && flag_item == Some(indent);
        flag_item = (is_item && is_secret_flag(unquote(rest))).then_some(indent);
        if after_flag
            && !rest.starts_with('-')
            && !is_harmless(rest)
            && !KEY_LINE.captures(rest).is_some_and(|c| is_key(&c))
        {
            let (replaced, next) = redact_value(rest, key_indent);
            out.push_str(&line[..rest_at]);
            out.push_str(&replaced);
            out.push_str(eol);
            swallow = next;
            continue;
        }
        if let Some(c) = KEY_LINE.captures(rest).filter(|c| is_key(c)) {
            let key = unquote(c["key"].trim());
            let by_name = is_value_key(key)
                && (named == Some(key_indent)
                    || (scan.mode == Mode::Text && named_below(&all[at + 1..], key_indent)));
            let path = join_key(stack.last().map_or(&section, |f| &f.path), key);
            let secret = context_secret || by_name || is_secret_path(key) || is_secret_path(&path);
            let value_raw = &c["value"];
            let value_at = rest_at + c.name("value").map_or(0, |m| m.start());
            let lead_ws = value_raw.len() - value_raw.trim_start().len();
            let (value, tail) = split_value(value_raw.trim_start());
            if is_name_key(key) && is_secret_name(unquote(value)) {
                named = Some(key_indent);
            }
            if value.is_empty() || is_anchor_or_tag(value) {
                stack.push(Frame {
                    indent: key_indent,
                    secret,
                    path,
                });
                out.push_str(raw);
                continue;
            }
            if !secret {
                // A block scalar's lines (`prompt: |`) are text, not keys under this one:
                // one that reads `key: value` is judged by its own name alone.
                if value.starts_with(['|', '>']) {
                    stack.push(Frame {
                        indent: key_indent,
                        secret: false,
                        path: String::new(),
                    });
                }
                out.push_str(raw);
                continue;
            }
            let (replaced, next) = redact_value(value, key_indent);
            // `"""`, `|`, an open quote: a value that goes on below, never harmless.
            let opens = replaced == value || matches!(next, Some(Swallow::Until(_)));
            // `pass: 1`, `label_token: "<l>"`: harmless under this key, when it alone is secret.
            let harmless_here = !context_secret && !by_name && is_harmless_under(key, value);
            if !opens && (is_harmless(value) || harmless_here) {
                out.push_str(raw);
                continue;
            }
            let head = &line[..value_at + lead_ws];
            out.push_str(head);
            out.push_str(&replaced);
            // A comment or a trailing comma stays, unless the value goes on below.
            if !matches!(next, Some(Swallow::Until(_))) {
                out.push_str(tail);
            }
            out.push_str(eol);
            swallow = next;
            continue;
        }
        if context_secret && !is_harmless(rest) && !rest.is_empty() {
            let head = &line[..rest_at];
            let (replaced, next) = redact_value(rest, key_indent);
            out.push_str(head);
            out.push_str(&replaced);
            out.push_str(eol);
            swallow = next;
            continue;
        }
        // Spark's `spark-defaults.conf` and Java's properties written `key value`
        // (`spark.hadoop.fs.s3a.secret.key  x`): a dotted key, blanks, the value.
        if let Some(c) = SPACED_PAIR.captures(rest)
            && is_secret_path(&c["key"])
            && !is_harmless_under(&c["key"], &c["value"])
            && let Some(value) = c.name("value")
        {
            out.push_str(&line[..rest_at + value.start()]);
            out.push_str(REDACTED);
            out.push_str(&rest[value.end()..]);
            out.push_str(eol);
            continue;
        }
        out.push_str(raw);
    }
    out
}

/// `spark.hadoop.fs.s3a.secret.key  x`: a dotted key, blanks, a value (no `=` or `:` after
/// the key, which KEY_LINE takes).
static SPACED_PAIR: Rx = Rx::new(
    r"^(?P<key>[A-Za-z][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)+)[ \t]+(?P<value>[^ \t\r\n=:#][^\r\n]*?)[ \t]*$",
);

/// Whether a `name:` that names a secret follows in the same mapping, at this indent, before
/// the mapping ends (`- value: x` then `  name: HF_TOKEN`).
fn named_below(rest: &[&str], key_indent: usize) -> bool {
    for raw in rest {
        let (line, _) = split_eol(raw);
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent < key_indent || (indent == key_indent && trimmed.starts_with("- ")) {
            return false;
        }
        if indent > key_indent {
            continue;
        }
        if let Some(c) = KEY_LINE.captures(trimmed).filter(|c| is_key(c))
            && is_name_key(unquote(c["key"].trim()))
        {
            let (value, _) = split_value(c["value"].trim_start());
            return is_secret_name(unquote(value));
        }
    }
    false
}

/// `name`, `key`, `variable`, `var`: the key of a name/value pair's name.
pub(super) fn is_name_key(key: &str) -> bool {
    ["name", "key", "variable", "var"]
        .iter()
        .any(|k| key.eq_ignore_ascii_case(k))
}

/// `value`, `val`: the key of a name/value pair's value.
pub(super) fn is_value_key(key: &str) -> bool {
    ["value", "val"].iter().any(|k| key.eq_ignore_ascii_case(k))
}

/// `--api-key`, `-password`: a flag (no `=`, no blank) that names a secret.
fn is_secret_flag(word: &str) -> bool {
    word.len() > 1
        && word.starts_with('-')
        && !word.contains(['=', ' ', '\t'])
        && is_secret_path(word)
}

/// Whether a match of KEY_LINE is a key: YAML's `:` is followed by a space or the end
/// (`http://x` is no key), and `==` is a comparison.
fn is_key(c: &Caps) -> bool {
    let value = &c["value"];
    match &c["sep"] {
        ":" => value.is_empty() || value.starts_with([' ', '\t']),
        "=" => !value.starts_with('='),
        _ => true,
    }
}

/// A value's replacement, and what of the following lines belongs to it.
fn redact_value(value: &str, key_indent: usize) -> (String, Option<Swallow>) {
    let is_block = value.starts_with(['|', '>'])
        && value[1..]
            .chars()
            .all(|c| c == '-' || c == '+' || c.is_ascii_digit());
    if is_block {
        return (value.to_string(), Some(Swallow::Deeper(key_indent)));
    }
    for delim in ["\"\"\"", "'''"] {
        if let Some(after) = value.strip_prefix(delim)
            && closing(after, delim).is_none()
        {
            let body = if after.trim().is_empty() {
                ""
            } else {
                REDACTED
            };
            return (format!("{delim}{body}"), Some(Swallow::Until(delim)));
        }
    }
    for (open, close) in [('"', "\""), ('\'', "'")] {
        if let Some(after) = value.strip_prefix(open)
            && closing(after, close).is_none()
        {
            return (format!("{open}{REDACTED}"), Some(Swallow::Until(close)));
        }
    }
    for (open, close) in [('[', "]"), ('{', "}")] {
        if value.starts_with(open) {
            let opens = value.matches(open).count();
            let closes = value.matches(close).count();
            if opens > closes {
                return (REDACTED.to_string(), Some(Swallow::Until(close)));
            }
        }
    }
    let quoted = value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')));
    let replaced = if quoted {
        let q = &value[..1];
        format!("{q}{REDACTED}{q}")
    } else {
        REDACTED.to_string()
    };
    (replaced, Some(Swallow::Deeper(key_indent)))
}

/// Where `delim` closes a value in `text` (an escaped `\"` does not close a string).
fn closing(text: &str, delim: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && delim == "\"" {
            i += 2;
            continue;
        }
        if bytes[i..].starts_with(delim.as_bytes()) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// A value and what follows it on its line: a trailing comma, a ` # comment`.
fn split_value(value: &str) -> (&str, &str) {
    let mut end = value.len();
    let bytes = value.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == b'\\' && q == b'"' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if (b == b'"' || b == b'\'') && i == 0 => quote = Some(b),
            None if b == b'#' && i > 0 && (bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') => {
                end = i;
                break;
            }
            None => {}
        }
        i += 1;
    }
    let mut v = value[..end].trim_end();
    if let Some(stripped) = v.strip_suffix(',') {
        v = stripped.trim_end();
    }
    (v, &value[v.len()..])
}

fn is_anchor_or_tag(value: &str) -> bool {
    value.starts_with(['&', '!']) && !value.contains(char::is_whitespace)
}

fn unquote(key: &str) -> &str {
    key.trim_matches(|c| c == '"' || c == '\'')
}

fn split_eol(raw: &str) -> (&str, &str) {
    let line = raw.strip_suffix('\n').unwrap_or(raw);
    let line = line.strip_suffix('\r').unwrap_or(line);
    (line, &raw[line.len()..])
}

fn push_redacted_line(out: &mut String, lead: &str, eol: &str) {
    out.push_str(lead);
    out.push_str(REDACTED);
    out.push_str(eol);
}

// ---------------------------------------------------------------------------------------
// 3. Patterns

/// (literals, pattern): every match of the pattern contains one of its literals.
pub const CREDENTIAL_PATTERNS: &[(&[&str], &str)] = &[
    // AWS access key ids.
    (
        &[
            "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA",
        ],
        r"(?-u:\b)(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}(?-u:\b)",
    ),
    // GitHub tokens, classic and fine-grained.
    (
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        r"(?-u:\b)gh[pousr]_[A-Za-z0-9]{30,}",
    ),
    (&["github_pat_"], r"(?-u:\b)github_pat_[A-Za-z0-9_]{20,}"),
    // GitLab tokens.
    (
        &["glpat-", "glptt-", "gldt-"],
        r"(?-u:\b)gl(pat|ptt|dt)-[A-Za-z0-9_\-]{20,}",
    ),
    // Slack tokens and app tokens.
    (
        &["xox", "xapp-"],
        r"(?-u:\b)(xox[abposre]|xapp)-[A-Za-z0-9\-]{10,}",
    ),
    // OpenAI / Anthropic style keys.
    (
        &["sk-"],
        r"(?-u:\b)sk-(proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
    ),
    // Stripe keys, live and test, and webhook secrets.
    (
        &["k_live_", "k_test_", "whsec_"],
        r"(?-u:\b)([rsp]k_(live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{16,})",
    ),
    // Hugging Face tokens.
    (&["hf_"], r"(?-u:\b)hf_[A-Za-z0-9]{30,}"),
    // Google API keys.
    (&["AIza"], r"(?-u:\b)AIza[0-9A-Za-z_\-]{35}"),
    // JSON Web Tokens.
    (
        &["eyJ"],
        r"(?-u:\b)eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*",
    ),
    // npm, PyPI, SendGrid, DigitalOcean, Shopify, Twilio-style keys.
    (&["npm_"], r"(?-u:\b)npm_[A-Za-z0-9]{36}"),
    (&["pypi-"], r"(?-u:\b)pypi-[A-Za-z0-9_\-]{50,}"),
    (
        &["SG."],
        r"(?-u:\b)SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",
    ),
    (&["dop_v1_", "doo_v1_"], r"(?-u:\b)do[po]_v1_[a-f0-9]{64}"),
    (&["shpat_", "shpss_"], r"(?-u:\b)shp(at|ss)_[a-fA-F0-9]{32}"),
    // Slack webhooks.
    (
        &["hooks.slack.com/"],
        r"hooks\.slack\.com/services/[A-Za-z0-9/_\-]+",
    ),
    // Discord and Microsoft Teams webhooks: the URL is the credential.
    (
        &["discord.com/api/webhooks/", "discordapp.com/api/webhooks/"],
        r"discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_\-]+",
    ),
    (
        &[".webhook.office.com/"],
        r"[A-Za-z0-9\-]+\.webhook\.office\.com/webhook[A-Za-z0-9]*/[A-Za-z0-9@/_\-]+",
    ),
    // age's secret keys.
    (&["AGE-SECRET-KEY-1"], r"AGE-SECRET-KEY-1[0-9A-Z]{20,}"),
    // A PEM private key's first line (its block is removed whole by PEM_BLOCK).
    (
        &["-----BEGIN "],
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----",
    ),
];

static CREDENTIALS: LazyLock<Rx> = LazyLock::new(|| {
    Rx::with(
        CREDENTIAL_PATTERNS
            .iter()
            .map(|(_, p)| format!("(?:{p})"))
            .collect::<Vec<_>>()
            .join("|")
            .into(),
    )
});

/// Whether a text holds a credential of a known shape.
pub fn has_credential(text: &str) -> bool {
    might_hold_credential(text) && CREDENTIALS.is_match(text)
}

fn might_hold_credential(text: &str) -> bool {
    match &*CREDENTIAL_LITERALS {
        Some(literals) => literals.is_match(text),
        None => CREDENTIAL_PATTERNS
            .iter()
            .any(|(literals, _)| literals.iter().any(|l| text.contains(l))),
    }
}

/// Every literal of `CREDENTIAL_PATTERNS`, searched for at once: one pass over the text
/// instead of forty (a config of two million short values spent a fifth of its redaction
/// in those searches). None only if the automaton could not be built; then one by one.
static CREDENTIAL_LITERALS: LazyLock<Option<aho_corasick::AhoCorasick>> =
    LazyLock::new(|| literals(CREDENTIAL_PATTERNS.iter().flat_map(|(l, _)| l.iter())));

/// An automaton finding any of `words`, built once a process: as a contiguous NFA, which
/// builds in a fraction of the time a DFA takes (the crate's choice for a few dozen words:
/// about half a millisecond of every `lineage run`, before launch) and searches short
/// texts about as fast. None only if it could not be built.
pub(crate) fn literals<I, P>(words: I) -> Option<aho_corasick::AhoCorasick>
where
    I: IntoIterator<Item = P>,
    P: AsRef<[u8]>,
{
    aho_corasick::AhoCorasick::builder()
        .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
        .build(words)
        .ok()
}

/// A private key's whole PEM block, its body too, whether its lines are real or `\n`
/// escapes inside a string; to the end of the text when its END line is missing.
static PEM_BLOCK: Rx = Rx::new(
    r"(?s)-----BEGIN (?:[A-Z0-9 ]*PRIVATE KEY|PGP PRIVATE KEY BLOCK|[A-Z0-9 ]*ENCRYPTED[A-Z0-9 ]*)-----.*?(?:-----END [A-Z0-9 ]*-----|\z)",
);

/// `scheme://user:password@host` and `scheme://user@host`.
static URL_USERINFO: Rx = Rx::new(
    r#"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@ \t\r\n"'<>]*)(?::(?P<pw>[^@/ \t\r\n"'<>]*))?@(?P<host>[A-Za-z0-9.\-]*)"#,
);

/// Whether the user of a URL without a password is a key: long (16 characters or more), of
/// a credential's shape, letters and digits mixed over 10 characters or more (a
/// `https://<key>@host` DSN), or any user of a Sentry DSN (`https://<key>@o1.ingest.sentry.io`).
pub fn user_is_key(user: &str, host: &str) -> bool {
    let mixed = user.len() >= 10
        && user.bytes().any(|b| b.is_ascii_digit())
        && user.bytes().any(|b| b.is_ascii_alphabetic())
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let sentry = host == "sentry.io" || host.ends_with(".sentry.io");
    !user.is_empty() && (user.len() >= 16 || has_credential(user) || mixed || sentry)
}

/// A URL's user masked whatever it is (the value of a `*_DSN` variable): `https://***@h/1`.
pub fn mask_url_users(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    URL_USERINFO
        .replace_all(text, |c: &Caps| {
            let user = if c["user"].is_empty() { "" } else { "***" };
            match c.name("pw").map(|m| m.as_str()) {
                Some(pw) if !pw.is_empty() => format!("{}{user}:***@{}", &c["scheme"], &c["host"]),
                Some(_) => format!("{}{user}:@{}", &c["scheme"], &c["host"]),
                None => format!("{}{user}@{}", &c["scheme"], &c["host"]),
            }
        })
        .into_owned()
}

/// `?token=x`, `&X-Amz-Signature=x`.
static QUERY_PARAM: Rx =
    Rx::new(r#"(?P<pre>[?&;](?P<key>[A-Za-z0-9_.\-]+)=)(?P<value>[^&# \t\r\n"'<>]+)"#);

/// Query parameters that carry a credential besides the secret-named ones.
const QUERY_SECRETS: &[&str] = &[
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "key",
    "code",
];

/// `key=value`, `key: value`, `"key": "value"`, `export KEY=value`, `--flag=value`.
static PAIR: Rx = Rx::new(
    r#"(?m)(?P<pre>(?:^|[ \t,;{(\[|&"'])(?:export[ \t]+)?-{0,2}["']?(?P<key>[A-Za-z_+~][A-Za-z0-9_.\-]*)["']?[ \t]*(?::=|=|:)[ \t]*)(?P<value>\[REDACTED\]|\$\{[^}\n]*\}|"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^ \t\r\n"',;&|(){}\[\]]+)"#,
);

/// A name/value pair on one line: `{name: HF_TOKEN, value: x}`, `{"key": "API_KEY",
/// "value": "x"}` (Kubernetes' `env`, many tools' variables).
static NAMED_VALUE: Rx = Rx::new(
    r#"(?m)(?P<pre>(?:^|[ \t,{(\[])["']?(?i:name|key|variable|var)["']?[ \t]*(?::|=)[ \t]*["']?(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)["']?[ \t]*,[ \t]*["']?(?i:value|val)["']?[ \t]*(?::|=)[ \t]*)(?P<value>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^ \t\r\n"',}\]]+)"#,
);

/// The same with the value first: `{value: x, name: HF_TOKEN}`.
static VALUE_NAMED: Rx = Rx::new(
    r#"(?m)(?P<pre>(?:^|[ \t,{(\[])["']?(?i:value|val)["']?[ \t]*(?::|=)[ \t]*)(?P<value>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^ \t\r\n"',}\]]+)(?P<post>[ \t]*,[ \t]*["']?(?i:name|key|variable|var)["']?[ \t]*(?::|=)[ \t]*["']?(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*))"#,
);

/// A secret flag and its value as items of a list: `["--api-key", "x"]`, `[--hf-token, x]`.
static LIST_FLAG: Rx = Rx::new(
    r#"(?m)(?P<pre>(?:^|[\[, \t])["']?--?(?P<flag>[A-Za-z][A-Za-z0-9_.\-]*)["']?[ \t]*,[ \t]*)(?P<value>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^ \t\r\n"',\]\[{}][^ \t\r\n"',\]]*)"#,
);

/// `PASSWORD=x` inside the value of an option (`--env=PASSWORD=x`).
static INNER_PAIR: Rx = Rx::new(r"^(?P<key>[A-Za-z_+~/][A-Za-z0-9_.\-/:]*)=(?P<value>.+)$");

/// ODBC's and ADO.NET's `Pwd=x` in a connection string (`Server=h;Uid=u;Pwd=x;`): `pwd`
/// alone is the working directory, so only where a `;` stands beside it.
fn is_connection_pwd(key: &str, pre: &str, end: &str) -> bool {
    key.eq_ignore_ascii_case("pwd") && (pre.starts_with(';') || end.starts_with(';'))
}

/// `--password value`, `-passphrase value`.
static FLAG_VALUE: Rx = Rx::new(
    r#"(?P<pre>(?:^|[ \t"'=])--?(?P<flag>[A-Za-z][A-Za-z0-9_.\-]*)[ \t]+)(?P<value>\$\{[^}\n]*\}|"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^ \t\r\n"'\-][^ \t\r\n"';&|)]*)"#,
);

/// `<password>x</password>`, `<add key="..." value="...">` aside: an XML element's text.
static XML_ELEMENT: Rx =
    Rx::new(r#"(?P<pre><(?P<tag>[A-Za-z_][A-Za-z0-9_.:\-]*)(?:[ \t][^<>]*)?>)(?P<value>[^<]+)</"#);

/// `Bearer <token>`, and Okta's `SSWS <token>`, wherever they stand (`hdr: SSWS x`).
static BEARER: Rx =
    Rx::new(r"(?P<pre>(?-u:\b)(?:[Bb]earer|[Ss][Ss][Ww][Ss])[ \t]+)[A-Za-z0-9._~+/\-]{8,}=*");

/// The schemes of an `Authorization` header's value: the credential follows.
const SCHEMES: &str = r"basic|bearer|token|digest|negotiate|ntlm|bot|jwt|apikey|api-key|oauth|ssws|key|hmac|signature|sharedkey|aws4-hmac-sha256|googlelogin|dpop|mac|hoba";

/// `Authorization: Basic <credential>`, `auth_header: Token <credential>`: a key, then a
/// scheme, then the credential up to the end of its quotes or line (Digest's `k="v"` pairs
/// included).
static AUTH_SCHEME: LazyLock<Rx> = LazyLock::new(|| {
    let pre = &*AUTH_SCHEME_PRE;
    Rx::with(format!(r#"{pre}(?P<value>(?:[^"'\r\n=]|="[^"\r\n]*"|=)+)"#).into())
});

/// `AUTH_SCHEME` up to its value.
static AUTH_SCHEME_PRE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"(?i)(?P<pre>(?:^|[ \t,;{{(\[|&"'])["']?(?P<key>[A-Za-z_][A-Za-z0-9_.\-]*)["']?[ \t]*(?::=|=|:)[ \t]*["']?(?:{SCHEMES})[ \t]+)"#
    )
});

/// `AUTH_SCHEME`'s `pre` alone, which is all a key that is not secret needs (see
/// `replace_auth_schemes`).
static AUTH_SCHEME_KEY: LazyLock<Rx> = LazyLock::new(|| Rx::with(AUTH_SCHEME_PRE.clone().into()));

/// A value that is a scheme and its credential whole: `Basic dXNlcjpwdw==`, `Token abc`.
static SCHEME_VALUE: LazyLock<Rx> = LazyLock::new(|| {
    Rx::with(format!(
        r#"^(?i)(?P<pre>[ \t"']*(?:{SCHEMES})[ \t]+)(?P<value>[^ \t"'][^"'\r\n]*?)(?P<post>[ \t"']*)$"#
    ).into())
});

/// A scheme alone.
static SCHEME_WORD: LazyLock<Rx> =
    LazyLock::new(|| Rx::with(format!(r"^(?i)(?:{SCHEMES})$").into()));

/// `Basic <base64>` anywhere: secret when the base64 is `user:password`.
static BASIC: Rx =
    Rx::new(r"(?P<pre>(?-u:\b)[Bb][Aa][Ss][Ii][Cc][ \t]+)(?P<value>[A-Za-z0-9+/]{6,}={0,2})");

/// Whether a name says its value is an `Authorization` header: `auth_header`,
/// `AUTHORIZATION_HEADER`, `proxy_auth_headers`.
pub fn is_auth_header_name(name: &str) -> bool {
    let words = super::names::words(name);
    words
        .last()
        .is_some_and(|w| w == "header" || w == "headers")
        && words[..words.len() - 1].iter().any(|w| {
            matches!(
                w.as_str(),
                "auth"
                    | "authorization"
                    | "authentication"
                    | "authn"
                    | "credential"
                    | "credentials"
            )
        })
}

/// A scheme's credential redacted, the scheme kept (`Basic [REDACTED]`), when the whole
/// value is a scheme and a credential; None otherwise.
pub fn redact_scheme_value(value: &str) -> Option<String> {
    let c = SCHEME_VALUE.captures(value)?;
    (!is_harmless(&c["value"])).then(|| format!("{}{REDACTED}{}", &c["pre"], &c["post"]))
}

/// `base64` that decodes to printable `user:password`.
fn is_basic_credential(b64: &str) -> bool {
    use base64::Engine as _;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) else {
        return false;
    };
    let Ok(decoded) = std::str::from_utf8(&bytes) else {
        return false;
    };
    decoded
        .find(':')
        .is_some_and(|at| at > 0 && at + 1 < decoded.len())
        && !decoded.chars().any(char::is_control)
}

/// netrc's keywords; `password` and `account` take a secret.
const NETRC_KEYWORDS: &[&str] = &["login", "password", "account", "port", "protocol"];

/// The passwords of netrc entries (`machine h login bob password x`, on one line or many),
/// whatever the file is called.
fn netrc(text: &str) -> String {
    let mut tokens: Vec<(usize, &str)> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let separator = |b: u8| b.is_ascii_whitespace() || b == b'"' || b == b'\'' || b == b'`';
        if separator(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !separator(bytes[i]) {
            // A `\n` escape ends a token too (`printf 'machine h password x\n'`).
            if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'n') {
                break;
            }
            i += 1;
        }
        if i == start {
            i += 2;
            continue;
        }
        tokens.push((start, &text[start..i]));
    }
    let mut secret: Vec<(usize, usize)> = Vec::new();
    let mut t = 0;
    while t < tokens.len() {
        // `machine HOST` then a keyword; `default` only as `default login ...`, so that prose
        // (`the default password is ...`) is no netrc entry.
        let entry = match tokens[t].1 {
            "machine" if t + 2 < tokens.len() && NETRC_KEYWORDS.contains(&tokens[t + 2].1) => t + 2,
            "default" if tokens.get(t + 1).is_some_and(|k| k.1 == "login") => t + 1,
            _ => {
                t += 1;
                continue;
            }
        };
        let mut k = entry;
        while k + 1 < tokens.len() && NETRC_KEYWORDS.contains(&tokens[k].1) {
            let (at, value) = tokens[k + 1];
            if matches!(tokens[k].1, "password" | "account") && !is_harmless(value) {
                secret.push((at, at + value.len()));
            }
            k += 2;
        }
        t = k.max(t + 1);
    }
    if secret.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in secret {
        out.push_str(&text[last..start]);
        out.push_str(REDACTED);
        last = end;
    }
    out.push_str(&text[last..]);
    out
}

fn patterns(text: &str, scan: &Scan) -> String {
    let mut out = text.to_string();
    if out.contains("-----BEGIN ") {
        out = PEM_BLOCK
            .replace_all(&out, |c: &Caps| pem_replacement(&c[0], scan.mode))
            .into_owned();
    }
    if might_hold_credential(&out) {
        out = CREDENTIALS
            .replace_all(&out, |_| REDACTED.to_string())
            .into_owned();
    }
    if out.contains("://") {
        out = URL_USERINFO
            .replace_all(&out, |c: &Caps| {
                let (user, host) = (&c["user"], &c["host"]);
                let pw = c.name("pw").map(|m| m.as_str());
                // With a password, the user is a name; without one, it may be the key.
                let key = match pw {
                    None => user_is_key(user, host),
                    Some(_) => user.len() >= 16 || has_credential(user),
                };
                let user = if key { "***" } else { user };
                match pw {
                    Some(pw) if !pw.is_empty() => format!("{}{user}:***@{host}", &c["scheme"]),
                    Some(_) => format!("{}{user}:@{host}", &c["scheme"]),
                    None => format!("{}{user}@{host}", &c["scheme"]),
                }
            })
            .into_owned();
    }
    if out.contains("earer") || out.contains("SSWS") || out.contains("ssws") {
        out = BEARER
            .replace_all(&out, |c: &Caps| format!("{}{REDACTED}", &c["pre"]))
            .into_owned();
    }
    if out.contains("asic") || out.contains("ASIC") {
        out = replace_secret_values(&out, &BASIC, |c, _| {
            is_basic_credential(&c["value"]).then(|| format!("{}{REDACTED}", &c["pre"]))
        });
    }
    if out.contains([':', '=']) {
        out = replace_auth_schemes(&out);
    }
    if out.contains("machine") || out.contains("default") {
        out = netrc(&out);
    }
    out = super::programs::redact(&out);
    if out.contains('=') && out.contains(['?', '&', ';']) {
        out = replace_secret_values(&out, &QUERY_PARAM, |c, _| {
            let key = &c["key"];
            let lower = key.to_ascii_lowercase();
            ((QUERY_SECRETS.contains(&lower.as_str()) || is_secret_name(key))
                && !is_harmless(&c["value"]))
            .then(|| format!("{}{REDACTED}", &c["pre"]))
        });
    }
    if out.contains(',') && (out.contains("alue") || out.contains("ALUE")) {
        out = replace_secret_values(&out, &NAMED_VALUE, |c, _| {
            (is_secret_name(&c["name"]) && !is_harmless(&c["value"]))
                .then(|| format!("{}{}", &c["pre"], replacement(&c["value"])))
        });
        out = replace_secret_values(&out, &VALUE_NAMED, |c, _| {
            (is_secret_name(&c["name"]) && !is_harmless(&c["value"]))
                .then(|| format!("{}{}{}", &c["pre"], replacement(&c["value"]), &c["post"]))
        });
    }
    if out.contains(',') && out.contains('-') {
        out = replace_secret_values(&out, &LIST_FLAG, |c, _| {
            let value = &c["value"];
            (is_secret_path(&c["flag"])
                && !unquote(value).starts_with('-')
                && !is_harmless_under(&c["flag"], value))
            .then(|| format!("{}{}", &c["pre"], replacement(value)))
        });
    }
    if out.contains(['=', ':']) {
        out = replace_secret_values(&out, &PAIR, |c, end| {
            let called = end.starts_with(['(', '[']);
            // `Authorization: Basic [REDACTED]`: the scheme stays.
            let scheme = end.starts_with([' ', '\t'])
                && end.trim_start_matches([' ', '\t']).starts_with(REDACTED)
                && SCHEME_WORD.is_match(&c["value"]);
            let (key, value) = (&c["key"], &c["value"]);
            if called || scheme {
                return None;
            }
            if (is_secret_path(key) || is_connection_pwd(key, &c["pre"], end))
                && !is_harmless_under(key, value)
            {
                return Some(format!("{}{}", &c["pre"], replacement(value)));
            }
            // `--env=PASSWORD=x`, `--set=db.password=x`, `--build-arg="API_KEY=x"`: a pair
            // given as the value of an option.
            let (q, inner) = match value.chars().next() {
                Some(q @ ('"' | '\'')) if value.len() >= 2 && value.ends_with(q) => {
                    (&value[..1], &value[1..value.len() - 1])
                }
                _ => ("", value),
            };
            let nested = INNER_PAIR.captures(inner)?;
            (is_secret_path(&nested["key"]) && !is_harmless_under(&nested["key"], &nested["value"]))
                .then(|| format!("{}{q}{}={REDACTED}{q}", &c["pre"], &nested["key"]))
        });
    }
    if out.contains('<') && out.contains(['=', '/']) {
        out = xml_pairs(&out, scan.mode);
    }
    if out.contains("</") {
        out = replace_secret_values(&out, &XML_ELEMENT, |c, _| {
            let tag = c["tag"].rsplit(':').next().unwrap_or_default();
            (is_secret_name(tag) && !is_harmless(&c["value"]))
                .then(|| format!("{}{REDACTED}</", &c["pre"]))
        });
    }
    if out.contains('-') && out.contains([' ', '\t']) {
        out = replace_secret_values(&out, &FLAG_VALUE, |c, _| {
            (is_secret_path(&c["flag"]) && !is_harmless_under(&c["flag"], &c["value"]))
                .then(|| format!("{}{}", &c["pre"], replacement(&c["value"])))
        });
    }
    if let Some(extra) = scan.extra {
        out = extra.replace_all(&out, REDACTED).into_owned();
    }
    out
}

/// XML's name/value pairs: an attribute named as a secret (`<connection password="x">`), a
/// `value` (or `val`) attribute beside a `name` or `key` attribute naming one (`<add
/// key="ApiKey" value="x"/>`, Ant's and Maven's `<property name="db.password" value="x"/>`),
/// the text of an element so named (Java's `<entry key="db.password">x</entry>`, log4j's
/// `<param name="password">x</param>`), and the `<value>` (`<string>`, `<data>`) element
/// paired with a `<name>` or `<key>` naming one in the same parent, before or after it
/// (Hadoop's `core-site.xml`: `<name>fs.s3a.secret.key</name><value>x</value>`, a
/// `<description>` between them or not; .NET's `<setting name="Password"><value>x</value>`;
/// a property list's `<key>APIToken</key><string>x</string>`). A value element's whole
/// content goes (CDATA, comments and entities in it too). A tolerant scan of tags, not a
/// parser, linear in the text: a `<` that opens no tag is passed; a value over lines is
/// redacted line by line, a patch's line markers kept.
fn xml_pairs(text: &str, mode: Mode) -> String {
    const VALUES: [&str; 3] = ["value", "string", "data"];
    let is = |name: &str, set: &[&str]| set.iter().any(|e| name.eq_ignore_ascii_case(e));
    let bytes = text.as_bytes();
    // Replacements: (start, end) of a value's text.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    // Open elements.
    let mut depth = 0usize;
    // A secret pair awaits its value among the children of the element open at this depth.
    let mut pending: Option<usize> = None;
    // The last value element not redacted, at this depth (a name after it may claim it).
    let mut last_value: Option<(usize, (usize, usize))> = None;
    // An open `<name>` or `<key>` element: where its text starts.
    let mut naming: Option<usize> = None;
    // A name not secret closed at this depth: the value after it is its own, not one a
    // later name may claim (a property list's `<key>Name</key><string>demo</string>` then
    // `<key>APIToken</key>`).
    let mut named_at: Option<usize> = None;
    let mut i = 0;
    while let Some(lt) = text[i..].find('<').map(|n| i + n) {
        // A comment or CDATA section is passed whole (a `<a>` inside opens nothing).
        if let Some((open, close)) = [("<!--", "-->"), ("<![CDATA[", "]]>")]
            .into_iter()
            .find(|(open, _)| text[lt..].starts_with(open))
        {
            i = text[lt + open.len()..]
                .find(close)
                .map_or(text.len(), |n| lt + open.len() + n + close.len());
            continue;
        }
        // A `<` that opens no tag (`a < b` in text) is passed.
        let Some(gt) = tag_end(bytes, lt) else {
            i = lt + 1;
            continue;
        };
        let tag = &text[lt + 1..gt];
        i = gt + 1;
        if tag.starts_with(['!', '?']) {
            continue;
        }
        if let Some(closed) = tag.strip_prefix('/') {
            let closed = local_name(closed.trim());
            depth = depth.saturating_sub(1);
            if let Some(start) = naming.take()
                && is(closed, &["name", "key"])
            {
                if is_secret_path(text[start..lt].trim()) {
                    pending = Some(depth);
                    if let Some((d, span)) = last_value.take()
                        && d == depth
                    {
                        spans.push(span);
                    }
                } else {
                    named_at = Some(depth);
                }
            }
            if pending.is_some_and(|d| depth < d) {
                pending = None;
            }
            if last_value.is_some_and(|(d, _)| depth < d) {
                last_value = None;
            }
            if named_at.is_some_and(|d| depth < d) {
                named_at = None;
            }
            continue;
        }
        let name_len = tag
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(tag.len());
        let element = local_name(&tag[..name_len]);
        let self_closing = tag.ends_with('/');
        let attrs = attributes(tag, lt + 1, name_len);
        let named = attrs
            .iter()
            .find(|(k, _)| is(local_name(k), &["name", "key"]))
            .map(|(_, v)| text[v.0..v.1].trim());
        let named_secret = named.is_some_and(is_secret_path);
        let mut value_attr = false;
        for (k, v) in &attrs {
            let (k, value) = (local_name(k), &text[v.0..v.1]);
            let (secret, under) = if is(k, &["value", "val"]) {
                value_attr = true;
                (named_secret, named.unwrap_or_default())
            } else {
                (!is(k, &["name", "key"]) && is_secret_name(k), k)
            };
            if secret
                && !value.is_empty()
                && !is_harmless_under(under, value)
                && !value.starts_with(REDACTED)
            {
                spans.push(*v);
            }
        }
        // A sibling that is no part of a pair ends the wait (a pom's `<name>` then its
        // `<properties>`).
        if pending == Some(depth) && !is(element, &VALUES) && !is(element, &["description"]) {
            pending = None;
        }
        if self_closing {
            continue;
        }
        if is(element, &VALUES) || (named_secret && !value_attr) {
            // Text only (CDATA and comments too): a value; elements inside: a parent.
            if let Some(end) = text_content_end(text, gt + 1, element) {
                let value = text[gt + 1..end].trim();
                // Android's `<string name="api_key">x</string>`: named itself.
                let secret = pending == Some(depth) || (named_secret && !value_attr);
                if !value.is_empty() && !value.starts_with(REDACTED) {
                    if secret && !is_harmless_under(named.unwrap_or(element), value) {
                        spans.push((gt + 1, end));
                    } else if is(element, &VALUES) && named_at != Some(depth) {
                        last_value = Some((depth, (gt + 1, end)));
                    }
                }
                if is(element, &VALUES) && named_at == Some(depth) {
                    named_at = None;
                }
                // Its content read; its close comes next.
                i = end;
                depth += 1;
                continue;
            }
            if named_secret && !value_attr {
                pending = Some(depth + 1);
            }
            depth += 1;
            continue;
        }
        if is(element, &["name", "key"]) {
            naming = Some(gt + 1);
        }
        if named.is_some() && !value_attr {
            pending = named_secret.then_some(depth + 1);
        }
        depth += 1;
    }
    if spans.is_empty() {
        return text.to_string();
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in spans {
        if start < last {
            continue;
        }
        out.push_str(&text[last..start]);
        // Line by line: a value's own line ends, and a patch's markers after them, stay.
        for (n, line) in text[start..end].split('\n').enumerate() {
            let (marker, line) = match (n, mode) {
                (1.., Mode::Patch) if line.starts_with(['+', '-', ' ']) => line.split_at(1),
                _ => ("", line),
            };
            if n > 0 {
                out.push('\n');
            }
            out.push_str(marker);
            let trimmed = line.trim();
            if trimmed.is_empty() {
                out.push_str(line);
            } else {
                let lead = &line[..line.len() - line.trim_start().len()];
                let trail = &line[lead.len() + trimmed.len()..];
                out.push_str(lead);
                out.push_str(REDACTED);
                out.push_str(trail);
            }
        }
        last = end;
    }
    out.push_str(&text[last..]);
    out
}

/// Where the content of `element` (opened just before `from`) ends, when it is text: the `<`
/// of its closing tag (any prefix, any case), past CDATA sections and comments; None at
/// another tag first (or no close): then it holds elements. Reads no further than that
/// tag, so the scan stays linear.
fn text_content_end(text: &str, from: usize, element: &str) -> Option<usize> {
    let mut at = from;
    loop {
        let lt = at + text[at..].find('<')?;
        let rest = &text[lt..];
        for (open, close) in [("<![CDATA[", "]]>"), ("<!--", "-->")] {
            if rest.starts_with(open) {
                at = lt + rest.find(close)? + close.len();
                break;
            }
        }
        if at > lt {
            continue;
        }
        let closing = rest.strip_prefix("</")?;
        let name_end = closing
            .find(['>', ' ', '\t', '\r', '\n'])
            .unwrap_or(closing.len());
        return local_name(&closing[..name_end])
            .eq_ignore_ascii_case(element)
            .then_some(lt);
    }
}

/// The index of the `>` that ends the tag opened at `lt` (quotes respected), if any.
fn tag_end(bytes: &[u8], lt: usize) -> Option<usize> {
    let mut quote = None;
    for (n, &b) in bytes[lt + 1..].iter().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), b) if b == q => quote = None,
            (None, b'>') => return Some(lt + 1 + n),
            (None, b'<') => return None,
            _ => {}
        }
    }
    None
}

/// A name without its namespace prefix (`app:password` -> `password`).
fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// A start tag's quoted attributes: (name, span of the value's text in the whole text).
/// `tag` is the tag's inside, found at `offset`; its element name is `name_len` long.
fn attributes(tag: &str, offset: usize, name_len: usize) -> Vec<(&str, (usize, usize))> {
    let mut out = Vec::new();
    let mut rest = &tag[name_len..];
    let mut at = offset + name_len;
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].trim();
        let name = name
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or(name);
        let after = &rest[eq + 1..];
        let skipped = after.len() - after.trim_start().len();
        let value = &after[skipped..];
        let Some(q @ ('"' | '\'')) = value.chars().next() else {
            // Unquoted (HTML's way): up to the next space, or the tag's own `/` at its end.
            let len = value.find(char::is_whitespace).unwrap_or(value.len());
            let len = if len == value.len() {
                value.trim_end_matches('/').len()
            } else {
                len
            };
            let start = at + eq + 1 + skipped;
            if !name.is_empty() && len > 0 {
                out.push((name, (start, start + len)));
            }
            let step = eq + 1 + skipped + len.max(1);
            rest = &rest[step.min(rest.len())..];
            at += step;
            continue;
        };
        let Some(close) = value[1..].find(q) else {
            break;
        };
        let start = at + eq + 1 + skipped + 1;
        if !name.is_empty() {
            out.push((name, (start, start + close)));
        }
        let step = eq + 1 + skipped + 1 + close + 1;
        rest = &rest[step..];
        at += step;
    }
    out
}

/// The credential after an authorization scheme replaced where the key is secret (or names
/// an `Authorization` header). The pattern's value runs to the end of its line, so finding
/// each match whole made a line of many `key=Token x` pairs quadratic (20 KB of them took
/// 4 s to redact, 120 KB minutes): a key that is not secret is passed over on its `pre`
/// alone, which ends where the whole match's would whenever a value follows it (any
/// character but a quote or a line end: the value's first alternative takes it); where none
/// does, or the key is secret, the whole match is found as before.
fn replace_auth_schemes(text: &str) -> String {
    let secret_key = |key: &str| is_secret_path(key) || is_auth_header_name(key);
    let passed_over = |at: usize| {
        let c = AUTH_SCHEME_KEY.captures_at(text, at)?;
        let pre = c.name("pre")?;
        let value_follows = text[pre.end()..]
            .chars()
            .next()
            .is_some_and(|ch| !matches!(ch, '"' | '\'' | '\r' | '\n'));
        (value_follows && !secret_key(&c["key"])).then_some((pre.start(), pre.end()))
    };
    replace_secret_values_skipping(text, &AUTH_SCHEME, passed_over, |c, _| {
        let key = &c["key"];
        (secret_key(key) && !is_harmless(&c["value"]) && !c["value"].starts_with(REDACTED))
            .then(|| format!("{}{REDACTED}", &c["pre"]))
    })
}

/// Each match of `re` (a `pre` group, then a value) replaced where `secret` says so. A match
/// left alone is searched again from its value on, so `setup: "export TOKEN=x"` finds the
/// pair inside the quoted value of a key that is not secret. `secret` gets the text after
/// the match too.
fn replace_secret_values(
    text: &str,
    re: &Rx,
    secret: impl Fn(&Caps, &str) -> Option<String>,
) -> String {
    replace_secret_values_skipping(text, re, |_| None, secret)
}

/// `replace_secret_values`, where `passed_over(at)` may say, without the whole match, that
/// the next match from `at` is left alone and where its `pre` ends.
fn replace_secret_values_skipping(
    text: &str,
    re: &Rx,
    passed_over: impl Fn(usize) -> Option<(usize, usize)>,
    secret: impl Fn(&Caps, &str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut last, mut at) = (0, 0);
    while at <= text.len() {
        if let Some((start, end)) = passed_over(at) {
            at = end.max(start + 1);
            while at < text.len() && !text.is_char_boundary(at) {
                at += 1;
            }
            continue;
        }
        let Some(c) = re.captures_at(text, at) else {
            break;
        };
        let Some(m) = c.get(0) else { break };
        match secret(&c, &text[m.end()..]) {
            Some(replaced) => {
                out.push_str(&text[last..m.start()]);
                out.push_str(&replaced);
                last = m.end();
                at = m.end().max(m.start() + 1);
            }
            None => {
                at = c
                    .name("pre")
                    .map_or(m.end(), |p| p.end())
                    .max(m.start() + 1);
            }
        }
        while at < text.len() && !text.is_char_boundary(at) {
            at += 1;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// A value's replacement, keeping its quotes.
fn replacement(value: &str) -> String {
    match value.chars().next() {
        Some(q @ ('"' | '\'')) if value.len() >= 2 && value.ends_with(q) => {
            format!("{q}{REDACTED}{q}")
        }
        _ => REDACTED.to_string(),
    }
}

/// A PEM block's replacement: one `[REDACTED]` per line, so a patch keeps its line counts
/// (each line keeps its diff marker).
fn pem_replacement(block: &str, mode: Mode) -> String {
    let mut out = String::new();
    for (i, line) in block.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if mode == Mode::Patch && line.starts_with(['+', '-', ' ']) {
                out.push_str(&line[..1]);
            }
        }
        out.push_str(REDACTED);
        if line.ends_with('\r') {
            out.push('\r');
        }
    }
    out
}

/// Every pattern of the redaction engine, by name (`rx::tests` holds both engines to them).
#[cfg(test)]
pub(super) fn every_pattern() -> Vec<(&'static str, &'static Rx)> {
    vec![
        ("SECTION", &SECTION),
        ("KEY_LINE", &KEY_LINE),
        ("SPACED_PAIR", &SPACED_PAIR),
        ("CREDENTIALS", &CREDENTIALS),
        ("PEM_BLOCK", &PEM_BLOCK),
        ("URL_USERINFO", &URL_USERINFO),
        ("QUERY_PARAM", &QUERY_PARAM),
        ("PAIR", &PAIR),
        ("NAMED_VALUE", &NAMED_VALUE),
        ("VALUE_NAMED", &VALUE_NAMED),
        ("LIST_FLAG", &LIST_FLAG),
        ("INNER_PAIR", &INNER_PAIR),
        ("FLAG_VALUE", &FLAG_VALUE),
        ("XML_ELEMENT", &XML_ELEMENT),
        ("BEARER", &BEARER),
        ("AUTH_SCHEME", &AUTH_SCHEME),
        ("AUTH_SCHEME_KEY", &AUTH_SCHEME_KEY),
        ("SCHEME_VALUE", &SCHEME_VALUE),
        ("SCHEME_WORD", &SCHEME_WORD),
        ("BASIC", &BASIC),
        ("ASSIGNMENT", &super::ASSIGNMENT),
        ("PACKAGE_LINE", &super::PACKAGE_LINE),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_literals_are_found_at_once_as_one_by_one() {
        let one_by_one = |text: &str| {
            CREDENTIAL_PATTERNS
                .iter()
                .any(|(literals, _)| literals.iter().any(|l| text.contains(l)))
        };
        assert!(CREDENTIAL_LITERALS.is_some());
        let mut texts = vec![
            String::new(),
            "tok123".into(),
            "lr: 0.01".into(),
            "ghp".into(),
        ];
        for (literals, _) in CREDENTIAL_PATTERNS {
            for l in *literals {
                texts.push((*l).to_string());
                texts.push(format!("x {l}y"));
                texts.push(l[..l.len() - 1].to_string());
                texts.push(format!("{}é", &l[1..]));
            }
        }
        for text in &texts {
            assert_eq!(might_hold_credential(text), one_by_one(text), "{text:?}");
        }
        assert!(might_hold_credential("key: ghp_abc"));
        assert!(!might_hold_credential("key: gh_abc"));
    }

    /// The linear pass over authorization schemes redacts exactly what finding every match
    /// whole did, on texts made of pairs, schemes, quotes and line ends.
    #[test]
    fn auth_schemes_passed_over_by_key_redact_as_whole_matches_did() {
        let whole = |text: &str| {
            replace_secret_values(text, &AUTH_SCHEME, |c, _| {
                let key = &c["key"];
                ((is_secret_path(key) || is_auth_header_name(key))
                    && !is_harmless(&c["value"])
                    && !c["value"].starts_with(REDACTED))
                .then(|| format!("{}{REDACTED}", &c["pre"]))
            })
        };
        let pieces = [
            "a",
            "password",
            "auth_header",
            "Authorization",
            "x",
            "=",
            ":",
            ":=",
            " ",
            "  ",
            "\t",
            "\n",
            "\r\n",
            "\"",
            "'",
            "Token",
            "token",
            "Basic",
            "Digest",
            "to\u{212a}en",
            ",",
            ";",
            "{",
            "[REDACTED]",
            "abc",
            "dXNlcjpwdw==",
            "é",
            "true",
            "${X}",
            "=\"q\"",
        ];
        let mut next = super::super::rx::tests::xorshift(0x2545_f491_4f6c_dd1d);
        let mut texts = vec![
            "a=Token b ".repeat(50),
            "password=Token b a=Token c ".repeat(20),
            "a: Token \"x\" auth_header: Token  'y' b=Token \n".repeat(10),
        ];
        for _ in 0..3000 {
            let n = 1 + next() as usize % 24;
            texts.push(
                (0..n)
                    .map(|_| pieces[next() as usize % pieces.len()])
                    .collect(),
            );
        }
        for text in &texts {
            assert_eq!(replace_auth_schemes(text), whole(text), "on {text:?}");
        }
    }

    fn text(s: &str) -> String {
        redact(
            s,
            &Scan {
                mode: Mode::Text,
                all_secret: false,
                extra: None,
            },
        )
    }

    fn in_patch(s: &str) -> String {
        redact(
            s,
            &Scan {
                mode: Mode::Patch,
                all_secret: false,
                extra: None,
            },
        )
    }

    #[test]
    fn xml_name_value_pairs_and_secret_attributes() {
        let xml = "<configuration>\n  <!-- when a < b -->\n  <property>\n    <name>fs.s3a.secret.key</name>\n    <value>HADOOPSECRET1</value>\n  </property>\n  <property>\n    <name>fs.s3a.endpoint</name>\n    <value>s3.example.com</value>\n  </property>\n  <property name=\"db.password\" value=\"ANTSECRET2\"/>\n  <property name=\"db.url\" value=\"jdbc:pg://h/db\"/>\n  <add key=\"ApiKey\" value='DOTNETSECRET3'/>\n  <add key=\"Timeout\" value=\"30\"/>\n  <setting name=\"Password\" serializeAs=\"String\"><value>SETTINGSECRET4</value></setting>\n  <setting name=\"Theme\"><value>dark</value></setting>\n  <connection host=\"h\" password=\"ATTRSECRET5\" user=\"bob\"/>\n  <dict><key>APIToken</key><string>PLISTSECRET9</string><key>Name</key><string>demo</string></dict>\n  <dict><key>Label</key><string>demo2</string><key>APIToken</key><string>PLISTSECRET10</string></dict>\n  <app:key name=\"hf_token\">\n    <app:value>\n      MULTILINE6\n    </app:value>\n  </app:key>\n</configuration>\n";
        let out = text(xml);
        for secret in [
            "HADOOPSECRET1",
            "ANTSECRET2",
            "DOTNETSECRET3",
            "SETTINGSECRET4",
            "ATTRSECRET5",
            "MULTILINE6",
            "PLISTSECRET9",
            "PLISTSECRET10",
        ] {
            assert!(!out.contains(secret), "{secret} left in:\n{out}");
        }
        for kept in [
            "s3.example.com",
            "jdbc:pg://h/db",
            "value=\"30\"",
            "<value>dark</value>",
            // A value that has its name before it is not claimed by the next name.
            "<string>demo2</string>",
            "user=\"bob\"",
            "fs.s3a.secret.key",
            "<string>demo</string>",
        ] {
            assert!(out.contains(kept), "{kept} lost:\n{out}");
        }
        assert_eq!(out.lines().count(), xml.lines().count(), "{out}");
        assert!(out.contains("<value>[REDACTED]</value>"), "{out}");
        assert!(out.contains("value='[REDACTED]'"), "{out}");
        // What an attacking trial found kept: a description between name and value, CDATA,
        // the value first, Java's and log4j's element text, `val`, prefixed attributes,
        // unquoted ones, a comment inside the value; and a pom's unrelated value redacted.
        let more = "<c>\n<property><name>db.password</name><description>pw for db</description><value>LKDESC2</value></property>\n<property><name>db.password</name><value>\n  <![CDATA[LKCDATA]]>\n</value></property>\n<property><value>LKORDER</value><name>db.password</name></property>\n<entry key=\"db.password\">LKJPROPS</entry><entry key=\"timeout\">30</entry>\n<param name=\"password\">LKPARAMTEXT</param>\n<item key=\"password\" val=\"LKVAL\"/>\n<x:property x:name=\"db.password\" x:value=\"LKNSVAL\"/>\n<property name=db.password value=LKUNQ />\n<property><name>db.password</name><value>LK<!-- -->SPLIT</value></property>\n<project><name>token-service</name><properties><value>KEEP1</value></properties></project>\n<resources><string name=\"api_key\">LKANDROID</string><string name=\"app_name\">PLAINAPP</string></resources>\n<property><name>db.password</name><!-- see <a> --><value>LKCOMMENT2</value></property>\n</c>\n";
        let out = text(more);
        for secret in [
            "LKDESC2",
            "LKCDATA",
            "LKORDER",
            "LKJPROPS",
            "LKPARAMTEXT",
            "LKVAL",
            "LKNSVAL",
            "LKUNQ",
            "SPLIT",
            "LKANDROID",
            "LKCOMMENT2",
        ] {
            assert!(!out.contains(secret), "{secret} left in:\n{out}");
        }
        for kept in [
            "pw for db",
            "<entry key=\"timeout\">30</entry>",
            "<value>KEEP1</value>",
            "PLAINAPP",
        ] {
            assert!(out.contains(kept), "{kept} lost:\n{out}");
        }
        assert_eq!(out.lines().count(), more.lines().count(), "{out}");
        // A patch keeps its lines and markers.
        let patch = "@@ -1,2 +1,2 @@\n <name>db.password</name>\n-<value>OLDSECRET7</value>\n+<value>NEWSECRET8</value>\n";
        let out = in_patch(patch);
        assert!(
            !out.contains("OLDSECRET7") && !out.contains("NEWSECRET8"),
            "{out}"
        );
        assert_eq!(out.lines().count(), patch.lines().count(), "{out}");
        let patch = "@@ -1,3 +1,3 @@\n <name>db.password</name>\n <value>\n-  OLDSECRET7\n+  NEWSECRET8\n </value>\n";
        let out = in_patch(patch);
        assert!(
            !out.contains("SECRET7") && !out.contains("SECRET8"),
            "{out}"
        );
        let markers: Vec<char> = out.lines().filter_map(|l| l.chars().next()).collect();
        assert_eq!(markers, ['@', ' ', ' ', '-', '+', ' '], "{out}");
    }

    #[test]
    fn yaml_key_paths_lists_and_block_scalars() {
        let yaml = "model:\n  hidden_size: 2048\n  pad_token_id: 0\nauth:\n  user: bob\n  pass: s3cr3t-pass\npasswords:\n- first-pw-1\n- second-pw-2\ndb:\n  password: |\n    line-one-secret\n    line-two-secret\n  host: db.local\nkey_dim: 64\n";
        let out = text(yaml);
        for secret in [
            "s3cr3t-pass",
            "first-pw-1",
            "second-pw-2",
            "line-one-secret",
            "line-two-secret",
            "bob",
        ] {
            assert!(!out.contains(secret), "{secret} in\n{out}");
        }
        for kept in [
            "hidden_size: 2048",
            "pad_token_id: 0",
            "host: db.local",
            "key_dim: 64",
        ] {
            assert!(out.contains(kept), "{kept} lost in\n{out}");
        }
        assert_eq!(out.lines().count(), yaml.lines().count());
    }

    #[test]
    fn comments_and_commas_after_a_value_stay() {
        assert_eq!(
            text("password: \"x1\",  # the db\nlr: 1\n"),
            "password: \"[REDACTED]\",  # the db\nlr: 1\n"
        );
        assert_eq!(text("token = abc # note"), "token = [REDACTED] # note");
        // References to variables are kept: they hold no secret.
        let hydra = "wandb:\n  api_key: ${oc.env:WANDB_API_KEY}\nrun: x --token ${TOKEN} y\n";
        assert_eq!(text(hydra), hydra);
    }

    #[test]
    fn toml_sections_and_multi_line_strings() {
        let toml = "lr = 0.1\n[auth]\npass = \"toml-pass-1\"\n[db]\nhost = \"h\"\npassword = \"\"\"\nmulti-secret-1\nmulti-secret-2\n\"\"\"\nport = 5432\n";
        let out = text(toml);
        for secret in ["toml-pass-1", "multi-secret-1", "multi-secret-2"] {
            assert!(!out.contains(secret), "{secret} in\n{out}");
        }
        assert!(
            out.contains("port = 5432") && out.contains("host = \"h\""),
            "{out}"
        );
        assert!(out.contains("lr = 0.1"), "{out}");
    }

    #[test]
    fn json_one_line_with_escaped_quote_and_nesting() {
        let json = r#"{"auth": {"pass": "pa\"ss-1"}, "password": "x\"y-2", "hidden_size": 2048, "eos_token_id": 2, "api_key": 12345678}"#;
        let out = text(json);
        assert_eq!(
            out,
            r#"{"auth": {"pass": "[REDACTED]"}, "password": "[REDACTED]", "hidden_size": 2048, "eos_token_id": 2, "api_key": "[REDACTED]"}"#
        );
    }

    #[test]
    fn shell_lines_flags_urls_and_shapes() {
        let cases = [
            ("export DB_PASS=shell-pass-1", "export DB_PASS=[REDACTED]"),
            (
                "mysql --password hunter-22 -h db",
                "mysql --password [REDACTED] -h db",
            ),
            ("gpg --passphrase 'x y z'", "gpg --passphrase '[REDACTED]'"),
            (
                "curl https://api.x/v1?token=tok-in-query&page=2",
                "curl https://api.x/v1?token=[REDACTED]&page=2",
            ),
            (
                "git clone https://ghtoken1234567890abcd@github.com/o/r",
                "git clone https://***@github.com/o/r",
            ),
            (
                "pip install --index-url https://u:pw-in-url@pypi.internal/simple",
                "pip install --index-url https://u:***@pypi.internal/simple",
            ),
            ("key = sk_test_4eC39HqLyjWDarjtT1zdp7dc", "key = [REDACTED]"),
            (
                "Authorization: Bearer abcdef0123456789",
                "Authorization: [REDACTED]",
            ),
            (
                "--max-tokens 512 --pad-token-id 0",
                "--max-tokens 512 --pad-token-id 0",
            ),
            (
                "author: Jane, session_len: 5",
                "author: Jane, session_len: 5",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
    }

    #[test]
    fn the_credential_after_an_authorization_scheme() {
        let cases = [
            (
                r#"curl -H "Authorization: Basic dXNlcjpzM2NyM3Q=" http://x/"#,
                r#"curl -H "Authorization: Basic [REDACTED]" http://x/"#,
            ),
            (
                r#"-H "Authorization: Token abc123""#,
                r#"-H "Authorization: Token [REDACTED]""#,
            ),
            (
                r#"-H 'Proxy-Authorization: Digest username="u", response="r0"'"#,
                r#"-H 'Proxy-Authorization: Digest [REDACTED]'"#,
            ),
            ("auth_header: Token abc123", "auth_header: Token [REDACTED]"),
            (
                "AUTH_HEADER=\"Basic dXNlcjpzM2NyM3Q=\"",
                "AUTH_HEADER=\"Basic [REDACTED]\"",
            ),
            // Basic with base64 of user:password, whatever names it.
            ("x Basic dXNlcjpzM2NyM3Q= y", "x Basic [REDACTED] y"),
            // Not a credential: words after a scheme word in prose, a header's name.
            (
                "Basic training for new users",
                "Basic training for new users",
            ),
            ("api_key_header: X-Api-Key", "api_key_header: X-Api-Key"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        assert_eq!(
            redact_scheme_value("Basic dXNlcjpw").as_deref(),
            Some("Basic [REDACTED]")
        );
        assert_eq!(redact_scheme_value("plain"), None);
        assert!(is_auth_header_name("AUTH_HEADER"));
        assert!(is_auth_header_name("authorization_headers"));
        assert!(!is_auth_header_name("header"));
        assert!(!is_auth_header_name("api_key_header"));
    }

    #[test]
    fn netrc_entries_in_any_file() {
        assert_eq!(
            text("machine api.example.com login bob password s3cr3t-n1\n"),
            "machine api.example.com login bob password [REDACTED]\n"
        );
        assert_eq!(
            text("machine h\n  login bob\n  password s3cr3t-n2\n  account acct-n3\n"),
            "machine h\n  login bob\n  password [REDACTED]\n  account [REDACTED]\n"
        );
        assert_eq!(
            text("default login anon password s3cr3t-n4"),
            "default login anon password [REDACTED]"
        );
        for prose in [
            "the default password is changed on first login",
            "machine learning is fun",
        ] {
            assert_eq!(text(prose), prose);
        }
    }

    #[test]
    fn webhooks_and_url_users_that_are_keys() {
        let cases = [
            (
                "webhook: https://discord.com/api/webhooks/123/tok-en_1",
                "webhook: https://[REDACTED]",
            ),
            (
                "https://abc123def456@o1.ingest.sentry.io/1",
                "https://***@o1.ingest.sentry.io/1",
            ),
            (
                "https://k3y@o1.ingest.sentry.io/1",
                "https://***@o1.ingest.sentry.io/1",
            ),
            // A user name, no key: kept.
            ("ssh://git@github.com/o/r", "ssh://git@github.com/o/r"),
            ("postgres://trainer@db/x", "postgres://trainer@db/x"),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
        assert_eq!(mask_url_users("postgres://app@db/x"), "postgres://***@db/x");
    }

    #[test]
    fn common_commands_and_prose_stay() {
        for clear in [
            "docker run --user 1000:1000 img",
            "docker run --user app:staff img",
            "ssh -p 22 host && scp -P 2222 a h:b",
            "python -u train.py -p 8",
            "pip install -U torch",
            "torchrun --nproc_per_node 8 train.py",
            "curl -u user http://x/",
            "mysql -p db",
            "zip -r out.zip dir; unzip -o data.zip -d out",
            "srun -p gpu python t.py; sbatch -p gpu job.sh",
            "sudo -u postgres psql",
            "rsync -a --chown=app:app src dst",
            "redis-cli ping",
            "Basic usage: run it. Basic Training for all.",
            "machine learning is fun; the default password is set on first login",
            "ssh://git@github.com/o/r https://github.com/o/r",
            "headers = {\"X-Api-Key-Header\": \"X-Api-Key\"}",
        ] {
            assert_eq!(text(clear), clear, "{clear}");
        }
    }

    #[test]
    fn pem_blocks_go_whole() {
        let pem = "a: 1\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bodyline\nmorebody==\n-----END RSA PRIVATE KEY-----\nb: 2\n";
        let out = text(pem);
        assert!(
            !out.contains("bodyline") && !out.contains("morebody"),
            "{out}"
        );
        assert!(
            out.starts_with("a: 1\n") && out.ends_with("b: 2\n"),
            "{out}"
        );
        let escaped = r#"{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQ-escaped\n-----END PRIVATE KEY-----\n", "x": 1}"#;
        assert!(!text(escaped).contains("MIIEvQ-escaped"));
        let patch = "+key: |\n+  -----BEGIN OPENSSH PRIVATE KEY-----\n+  b3BlbnNzaC1rZXktdjE-body\n+  -----END OPENSSH PRIVATE KEY-----\n";
        let out = in_patch(patch);
        assert!(!out.contains("b3BlbnNzaC1rZXktdjE-body"), "{out}");
        assert_eq!(out.lines().count(), 4);
        assert!(out.lines().all(|l| l.starts_with('+')), "{out}");
    }

    #[test]
    fn a_patch_is_read_past_its_markers() {
        let patch = "diff --git a/c.yaml b/c.yaml\n--- a/c.yaml\n+++ b/c.yaml\n@@ -1,2 +1,4 @@\n auth:\n-  pass: old-pass-1\n+  pass: new-pass-2\n+  user: bob\n lr: 0.1\n";
        let out = in_patch(patch);
        assert!(
            !out.contains("old-pass-1") && !out.contains("new-pass-2"),
            "{out}"
        );
        assert!(out.contains(" lr: 0.1"), "{out}");
        assert_eq!(out.lines().count(), patch.lines().count());
    }

    #[test]
    fn env_files_redact_every_value() {
        let out = redact(
            "# db\nHOST=db.local\nexport PLAIN=value-1\nMULTI=\"line-a\nline-b\"\nFLAG=true\n",
            &Scan {
                mode: Mode::Text,
                all_secret: true,
                extra: None,
            },
        );
        for secret in ["db.local", "value-1", "line-a", "line-b"] {
            assert!(!out.contains(secret), "{secret} in\n{out}");
        }
        assert!(out.contains("FLAG=true"));
    }
}
