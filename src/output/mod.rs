//! What lineage prints, rendered: human tables, trees, diffs, graphs (dot, mermaid, HTML)
//! and the JSON of `show` and `list`, as strings built from the domain types. Nothing here
//! touches the database or the command line's types, and nothing here writes: the commands
//! hand the text to `ui`.

pub mod compare_runs;
pub mod diff;
pub mod graph;
pub mod group;
pub mod json;
pub mod table;
pub mod verify;

pub use crate::model::text::{escape, terminal_command_line};

/// 1536 -> "1.5 KiB".
pub fn bytes(n: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

pub fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

/// Seconds between two RFC 3339 timestamps.
pub fn duration(start: &str, end: Option<&str>) -> Option<f64> {
    let start: jiff::Timestamp = start.parse().ok()?;
    let end: jiff::Timestamp = end?.parse().ok()?;
    Some(end.duration_since(start).as_secs_f64())
}

/// "5s ago", "3m ago", "2h ago", "4d ago", or the date.
pub fn ago(when: &str, now: jiff::Timestamp) -> String {
    let Ok(t) = when.parse::<jiff::Timestamp>() else {
        return when.to_string();
    };
    let s = now.duration_since(t).as_secs().max(0);
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        86400..2_592_000 => format!("{}d ago", s / 86400),
        _ => t.strftime("%Y-%m-%d").to_string(),
    }
}

/// The first 12 hex digits of a hash, for tables.
pub fn short_hash(h: &crate::model::Hash) -> String {
    h.to_hex()[..12].to_string()
}

/// Strategies for text a record may hold (anything: it may come from a job, an import or a
/// server) and the checks that a rendering of it is inert, for the property tests of every
/// human output.
#[cfg(test)]
pub(crate) mod hostile {
    use proptest::prelude::*;

    /// Pieces that have broken terminals, dot, Mermaid or HTML somewhere.
    const NASTY: &[&str] = &[
        "\x1b[2J",
        "\x1b]0;title\x07",
        "\x1b]8;;javascript:x\x1b\\",
        "\n",
        "\r",
        "\t",
        "\x7f",
        "\0",
        "\u{85}",
        "\u{9b}31m",
        "\u{202e}",
        "\u{2066}",
        "\u{2069}",
        "\u{2028}",
        "\"",
        "\\",
        "'",
        "{{DATA}}",
        "{{TITLE}}",
        "</script>",
        "<!--",
        "-->",
        "<b>",
        "&amp;",
        "#quot;",
        "#",
        "]",
        ")",
        "|",
        "`",
        ";",
        "[",
        "URL=\"javascript:alert(1)\"",
        "a",
        " ",
        "é",
        "模",
    ];

    /// Text: arbitrary bytes read lossily, arbitrary characters, or nasty pieces joined.
    pub fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..24)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            any::<String>(),
            prop::collection::vec(prop::sample::select(NASTY), 0..8).prop_map(|v| v.concat()),
        ]
    }

    /// Bytes: arbitrary, or [`text`]'s.
    pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..24),
            text().prop_map(String::into_bytes),
        ]
    }

    /// The property tests' configuration: a fixed seed, so a run is repeatable.
    pub fn config(cases: u32) -> ProptestConfig {
        ProptestConfig {
            cases,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x15),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// Whether terminal text (rendered without colour) is inert: no character that acts on a
    /// terminal but the layout's own newlines.
    pub fn is_inert(text: &str) -> Result<(), String> {
        for (i, c) in text.char_indices() {
            if c != '\n' && crate::model::text::is_unsafe(c) {
                let at = text[..i].chars().rev().take(40).collect::<String>();
                return Err(format!(
                    "{c:?} after {:?} in {text:?}",
                    at.chars().rev().collect::<String>()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(seconds(0.25), "250ms");
        assert_eq!(seconds(75.0), "1m15s");
    }
}
