//! The redaction patterns, each compiled by two engines on demand: `regex-lite` for the first
//! few KiB a pattern reads (it compiles in microseconds and reads at tens of MB/s), the
//! `regex` crate once more than that comes (it compiles in a fraction of a millisecond and
//! reads at GB/s). A run redacts its environment, argv and capture, a few KiB in all: the
//! regex crate's compile of the seven patterns that text needs was ~1.7 ms of every
//! `lineage run` (docs/performance.md).
//!
//! Both engines find the same matches and groups for these patterns: they use ASCII classes
//! and an ASCII `(?-u:\b)` (the lite engine's `\b`); `.` and negated classes match one
//! Unicode scalar value in both. Case-insensitive parts fold as Unicode says in the regex
//! crate, where two letters outside ASCII fold into it (the Kelvin sign `K` into `k`, the long
//! `ſ` into `s`): the lite engine folds ASCII only, so its copy of the pattern names those two
//! beside `k` and `s` wherever case is ignored (`lite_source`). `tests::both_engines_agree`
//! holds every pattern to the same groups on texts made to hit them.

use std::borrow::Cow;
use std::ops::Index;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes a pattern reads with the lite engine before the full one is compiled: about what
/// the lite engine reads in the time the full one takes to compile (docs/performance.md).
const LITE_BUDGET: usize = 4096;

/// A pattern, compiled by whichever engine its next text calls for (see the module).
pub struct Rx {
    full_source: Cow<'static, str>,
    lite: OnceLock<regex_lite::Regex>,
    full: OnceLock<regex::Regex>,
    budget: AtomicUsize,
}

/// One match of a group: where it is in the text, and its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found<'t> {
    text: &'t str,
    start: usize,
    end: usize,
}

impl<'t> Found<'t> {
    pub fn as_str(&self) -> &'t str {
        self.text
    }
    pub fn start(&self) -> usize {
        self.start
    }
    pub fn end(&self) -> usize {
        self.end
    }
}

/// A match's groups, from either engine.
pub enum Caps<'t> {
    Lite(regex_lite::Captures<'t>),
    Full(regex::Captures<'t>),
}

impl<'t> Caps<'t> {
    /// Group `i` (0: the whole match), if it took part.
    pub fn get(&self, i: usize) -> Option<Found<'t>> {
        match self {
            Caps::Lite(c) => c.get(i).map(|m| found(m.as_str(), m.start(), m.end())),
            Caps::Full(c) => c.get(i).map(|m| found(m.as_str(), m.start(), m.end())),
        }
    }
    /// The named group, if it took part.
    pub fn name(&self, name: &str) -> Option<Found<'t>> {
        match self {
            Caps::Lite(c) => c.name(name).map(|m| found(m.as_str(), m.start(), m.end())),
            Caps::Full(c) => c.name(name).map(|m| found(m.as_str(), m.start(), m.end())),
        }
    }
    /// Every group's span, in order (None: the group did not take part).
    #[cfg(test)]
    pub fn spans(&self) -> Vec<Option<std::ops::Range<usize>>> {
        match self {
            Caps::Lite(c) => c.iter().map(|m| m.map(|m| m.range())).collect(),
            Caps::Full(c) => c.iter().map(|m| m.map(|m| m.range())).collect(),
        }
    }
}

fn found(text: &str, start: usize, end: usize) -> Found<'_> {
    Found { text, start, end }
}

/// `&caps["name"]`, as with the regex crate: the named group's text, panicking when the
/// pattern has no such group or it did not take part (a pattern's own groups, by name).
impl<'t> Index<&str> for Caps<'t> {
    type Output = str;
    fn index(&self, name: &str) -> &str {
        match self {
            Caps::Lite(c) => &c[name],
            Caps::Full(c) => &c[name],
        }
    }
}

impl<'t> Index<usize> for Caps<'t> {
    type Output = str;
    fn index(&self, i: usize) -> &str {
        match self {
            Caps::Lite(c) => &c[i],
            Caps::Full(c) => &c[i],
        }
    }
}

/// Which engine reads a text.
enum Engine<'a> {
    Lite(&'a regex_lite::Regex),
    Full(&'a regex::Regex),
}

impl Rx {
    /// A pattern (see the module for the syntax both engines share). Compiles nothing yet.
    pub const fn new(source: &'static str) -> Rx {
        Rx::with(Cow::Borrowed(source))
    }

    /// The same for a pattern built at run time (`format!`).
    pub const fn with(source: Cow<'static, str>) -> Rx {
        Rx {
            full_source: source,
            lite: OnceLock::new(),
            full: OnceLock::new(),
            budget: AtomicUsize::new(LITE_BUDGET),
        }
    }

    /// The pattern as the lite engine reads it (see the module).
    fn lite_source(&self) -> String {
        lite_source(&self.full_source)
    }

    fn lite(&self) -> &regex_lite::Regex {
        self.lite.get_or_init(|| {
            regex_lite::Regex::new(&self.lite_source()).expect(
                "a redaction pattern is valid for the lite engine (tests::every_pattern_compiles)",
            )
        })
    }

    fn full(&self) -> &regex::Regex {
        self.full.get_or_init(|| {
            regex::Regex::new(&self.full_source).expect(
                "a redaction pattern is valid for the regex crate (tests::every_pattern_compiles)",
            )
        })
    }

    /// The engine for a text of `len` bytes: the full one once it is compiled or the lite
    /// one's budget is spent, the lite one before.
    fn engine(&self, len: usize) -> Engine<'_> {
        if let Some(full) = self.full.get() {
            return Engine::Full(full);
        }
        let mut left = self.budget.load(Ordering::Relaxed);
        while left >= len {
            match self.budget.compare_exchange_weak(
                left,
                left - len,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Engine::Lite(self.lite()),
                Err(now) => left = now,
            }
        }
        Engine::Full(self.full())
    }

    pub fn is_match(&self, text: &str) -> bool {
        match self.engine(text.len()) {
            Engine::Lite(r) => r.is_match(text),
            Engine::Full(r) => r.is_match(text),
        }
    }

    pub fn captures<'t>(&self, text: &'t str) -> Option<Caps<'t>> {
        self.captures_at(text, 0)
    }

    /// The first match at or after `at`, the text before `at` seen by `^` and `\b`.
    pub fn captures_at<'t>(&self, text: &'t str, at: usize) -> Option<Caps<'t>> {
        match self.engine(text.len() - at.min(text.len())) {
            Engine::Lite(r) => r.captures_at(text, at).map(Caps::Lite),
            Engine::Full(r) => r.captures_at(text, at).map(Caps::Full),
        }
    }

    /// Every match, left to right, none overlapping (as the regex crate's `captures_iter`).
    pub fn captures_all<'t>(&self, text: &'t str) -> Vec<Caps<'t>> {
        match self.engine(text.len()) {
            Engine::Lite(r) => r.captures_iter(text).map(Caps::Lite).collect(),
            Engine::Full(r) => r.captures_iter(text).map(Caps::Full).collect(),
        }
    }

    /// Each match replaced by what `with` makes of it (as the regex crate's `replace_all`
    /// with a closure: no `$name` expansion).
    pub fn replace_all<'t>(
        &self,
        text: &'t str,
        mut with: impl FnMut(&Caps<'t>) -> String,
    ) -> Cow<'t, str> {
        let all = self.captures_all(text);
        if all.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for c in &all {
            let Some(m) = c.get(0) else { continue };
            out.push_str(&text[last..m.start()]);
            out.push_str(&with(c));
            last = m.end();
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }
}

/// The letters outside ASCII that Unicode's simple case folding puts with an ASCII one (the
/// regex crate's `(?i)`; found by trying every scalar value against `(?i)[a-zA-Z]`).
const FOLDS: [(char, char); 2] = [('k', '\u{212a}'), ('s', '\u{17f}')];

/// `source` for the lite engine: `(?-u:\b)` is its `\b`, and where case is ignored (after
/// `(?i)`, inside `(?i:...)`) a literal `k` or `s` and a class holding one also take the
/// letter that folds into it. Written for the redaction patterns' syntax: escapes, classes
/// (no nested ones), groups and flags.
fn lite_source(source: &str) -> String {
    let source = source.replace(r"(?-u:\b)", r"\b");
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len() + 16);
    // Whether case is ignored, and what it was outside each open group.
    let (mut ignore, mut outer) = (false, Vec::new());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                out.extend(chars.get(i..(i + 2).min(chars.len())).into_iter().flatten());
                i += 2;
            }
            '(' => {
                outer.push(ignore);
                let rest: String = chars[i..].iter().take(6).collect();
                if rest.starts_with("(?i)") {
                    // A flag for the rest of the enclosing group, not a group.
                    outer.pop();
                    ignore = true;
                    out.push_str("(?i)");
                    i += 4;
                } else if rest.starts_with("(?i:") {
                    ignore = true;
                    out.push_str("(?i:");
                    i += 4;
                } else if rest.starts_with("(?P<") {
                    let end = chars[i..]
                        .iter()
                        .position(|&c| c == '>')
                        .map_or(chars.len(), |n| i + n + 1);
                    out.extend(&chars[i..end]);
                    i = end;
                } else {
                    out.push('(');
                    i += 1;
                }
            }
            ')' => {
                ignore = outer.pop().unwrap_or(false);
                out.push(')');
                i += 1;
            }
            '[' => {
                // The class up to its `]` (one right after `[` or `[^` is a member).
                let mut end = i + 1;
                if chars.get(end) == Some(&'^') {
                    end += 1;
                }
                if chars.get(end) == Some(&']') {
                    end += 1;
                }
                let mut members = Vec::new();
                while end < chars.len() && chars[end] != ']' {
                    if chars[end] == '\\' {
                        end += 2;
                        continue;
                    }
                    if chars.get(end + 1) == Some(&'-')
                        && chars.get(end + 2).is_some_and(|&c| c != ']')
                    {
                        members.push((chars[end], chars[end + 2]));
                        end += 3;
                    } else {
                        members.push((chars[end], chars[end]));
                        end += 1;
                    }
                }
                out.extend(&chars[i..end.min(chars.len())]);
                if ignore {
                    for (ascii, other) in FOLDS {
                        let upper = ascii.to_ascii_uppercase();
                        if members
                            .iter()
                            .any(|&(a, b)| (a..=b).contains(&ascii) || (a..=b).contains(&upper))
                        {
                            out.push(other);
                        }
                    }
                }
                if end < chars.len() {
                    out.push(']');
                }
                i = end + 1;
            }
            _ => {
                match FOLDS
                    .iter()
                    .find(|(ascii, _)| ignore && c.eq_ignore_ascii_case(ascii))
                {
                    Some((ascii, other)) => {
                        out.push('[');
                        out.push(*ascii);
                        out.push(ascii.to_ascii_uppercase());
                        out.push(*other);
                        out.push(']');
                    }
                    None => out.push(c),
                }
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::ops::Range;

    /// A fixed pseudo-random sequence (xorshift64), for texts made of pieces.
    pub(in crate::redact) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// Every group of every match, by each engine, over the whole text and from each
    /// character boundary on.
    fn spans(rx: &Rx, text: &str, full: bool) -> Vec<Vec<Option<Range<usize>>>> {
        let mut out: Vec<Vec<Option<Range<usize>>>> = if full {
            rx.full()
                .captures_iter(text)
                .map(|c| Caps::Full(c).spans())
                .collect()
        } else {
            rx.lite()
                .captures_iter(text)
                .map(|c| Caps::Lite(c).spans())
                .collect()
        };
        for at in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
            out.push(
                match full {
                    true => rx
                        .full()
                        .captures_at(text, at)
                        .map(|c| Caps::Full(c).spans()),
                    false => rx
                        .lite()
                        .captures_at(text, at)
                        .map(|c| Caps::Lite(c).spans()),
                }
                .unwrap_or_default(),
            );
        }
        out
    }

    #[test]
    fn the_engine_changes_once_the_budget_is_spent_and_the_matches_do_not() {
        let rx = Rx::new(r"(?P<key>[A-Za-z_]+)=(?P<value>[^ ]*)");
        let short = "a=1 b=2";
        let caps = rx.captures(short).map(|c| c.spans());
        assert!(
            rx.full.get().is_none(),
            "a short text is read by the lite engine"
        );
        let long = format!("{short} {}", "x".repeat(LITE_BUDGET));
        assert!(rx.is_match(&long));
        assert!(
            rx.full.get().is_some(),
            "past the budget the full engine is compiled"
        );
        assert_eq!(rx.captures(short).map(|c| c.spans()), caps);
        assert_eq!(
            rx.replace_all(short, |c| format!("{}=*", &c["key"])),
            "a=* b=*"
        );
    }

    #[test]
    fn both_engines_agree() {
        // Texts made of the characters the patterns turn on, Unicode ones among them (the
        // Kelvin sign and the long s fold to k and s under Unicode case rules, not ASCII's).
        let pieces = [
            "a",
            "K",
            "\u{212a}",
            "\u{17f}",
            "é",
            "ß",
            "δ",
            " ",
            "\t",
            "\n",
            "\r",
            "=",
            ":",
            ":=",
            "\"",
            "'",
            "\\",
            "-",
            "--",
            "[",
            "]",
            "{",
            "}",
            "(",
            ")",
            ",",
            ";",
            "&",
            "?",
            "#",
            "@",
            "/",
            "://",
            ".",
            "_",
            "$",
            "<",
            ">",
            "</",
            "0",
            "9",
            "Bearer ",
            "basic ",
            "Basic ",
            "BASIC ",
            "token ",
            "\u{212a}ey",
            "name",
            "NAME",
            "value",
            "Value",
            "key",
            "password",
            "api_key",
            "export ",
            "-----BEGIN RSA PRIVATE KEY-----",
            "-----END RSA PRIVATE KEY-----",
            "AKIA",
            "ABCDEFGHIJKLMNOP",
            "ghp_",
            "sk-",
            "hf_",
            "eyJ",
            "dXNlcjpwdw==",
            "machine ",
            "login ",
            "https://",
            "user:pw@host",
        ];
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let mut texts: Vec<String> = [
            "[section]\npassword = hunter2\n",
            "  [[tool.poetry.source]] # x",
            "api_key: \"sk-abcdefghijklmnopqrstuvwxyz\"",
            "export GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "Authorization: Bearer abc.def.ghi",
            "auth_header=Token abcdefgh, other=1",
            "curl -u bob:pw https://bob:secret@example.com/x?sig=abc&x=1",
            "{name: HF_TOKEN, value: hf_abc}, {value: x, name: API_KEY}",
            "[\"--api-key\", \"x\"] --password hunter2 -p 'x y'",
            "<password>x</password><Value>é</Value>",
            "machine h login bob password x",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
            "numpy==1.26.4\n",
            "--env=PASSWORD=x",
            "Basic dXNlcjpwdw== and basic\tdXNlcjpwdw==",
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "\u{212a}EY: \u{17f}ecret",
            "{\u{212a}ey: API_KEY, value: x}",
            "\u{212a}ey",
            "Authorization: \u{212a}ey abcdefgh",
            "{\u{212a}ey: HF_TOKEN, value: CANARY_X1}",
            "AUTH_HEADER=to\u{212a}en CANARY_X2",
            "auth_header=Dige\u{17f}t response=CANARY_X3",
            "Authorization: ba\u{17f}ic dXNlcjpwdw==",
            "{value: S, \u{212a}ey: HF_TOKEN}",
            "X-Auth-Header: api\u{212a}ey S",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        texts.extend(pieces.iter().map(|p| p.to_string()));
        for _ in 0..600 {
            let n = 1 + next() as usize % 14;
            texts.push(
                (0..n)
                    .map(|_| pieces[next() as usize % pieces.len()])
                    .collect(),
            );
        }
        for (name, rx) in super::super::text::every_pattern() {
            for text in &texts {
                assert_eq!(
                    spans(rx, text, false),
                    spans(rx, text, true),
                    "pattern {name} differs between the engines on {text:?}"
                );
            }
        }
    }

    #[test]
    fn the_lite_copy_folds_the_two_letters_the_regex_crate_does() {
        assert_eq!(lite_source(r"(?-u:\b)sk-[a-z]"), r"\bsk-[a-z]");
        assert_eq!(
            lite_source(r"(?i:key|Sk)x"),
            "(?i:[kK\u{212a}]ey|[sS\u{17f}][kK\u{212a}])x"
        );
        assert_eq!(
            lite_source(r"(?i)[A-Z_][^s\]]"),
            "(?i)[A-Z_\u{212a}\u{17f}][^s\\]\u{17f}]"
        );
        assert_eq!(
            lite_source(r"(?P<key>x)(?i)(?P<s>\sk)"),
            "(?P<key>x)(?i)(?P<s>\\s[kK\u{212a}])"
        );
        assert_eq!(lite_source(r"((?i:k))k"), "((?i:[kK\u{212a}]))k");
    }

    #[test]
    fn every_pattern_compiles() {
        for (name, rx) in super::super::text::every_pattern() {
            assert!(
                regex_lite::Regex::new(&rx.lite_source()).is_ok(),
                "{name}: lite"
            );
            assert!(regex::Regex::new(&rx.full_source).is_ok(), "{name}: full");
        }
    }
}
