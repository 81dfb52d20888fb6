//! The redaction patterns, each compiled by two engines on demand: `regex-lite` for the first
//! few KiB a pattern reads (it compiles in microseconds and reads at tens of MB/s), the
//! `regex` crate once more than that comes (it compiles in a fraction of a millisecond and
//! reads at GB/s). A run redacts its environment, argv and capture, a few KiB in all: the
//! regex crate's compile of the seven patterns that text needs was ~1.7 ms of every
//! `lineage run` (docs/performance.md).
//!
//! Both engines find the same matches and groups for these patterns: they use ASCII classes,
//! an ASCII `(?-u:\b)` and an ASCII `(?i-u:...)`, which the lite engine reads as `\b` and
//! `(?i:...)` (ASCII both there); `.` and negated classes match one Unicode scalar value in
//! both. `tests::both_engines_agree` holds every pattern to that on texts made to hit them.

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

    /// The pattern as the lite engine reads it: ASCII is all it knows, so the `-u` goes.
    fn lite_source(&self) -> String {
        self.full_source
            .replace(r"(?-u:\b)", r"\b")
            .replace("(?i-u:", "(?i:")
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Range;

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
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
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
