//! Text that came from outside lineage (a path, an argument, a param, a note, an imported
//! row) made inert for a terminal: the one escaping every human-readable output uses (`ui`'s
//! messages, the tables, trees, diffs and the rerun plan of `output/` and the commands).
//! JSON output is not escaped here: serde escapes it.

use std::borrow::Cow;

/// Characters that change how text is shown rather than being shown: the C0 and C1 control
/// characters (newlines, tabs, ESC, DEL, ...), the bidirectional overrides and isolates
/// (which reorder what follows them: "Trojan Source"), the Unicode line and paragraph
/// separators, and the characters shown as nothing (the zero-width space, the
/// byte-order mark, the soft hyphen, word joiners, tag characters, the Hangul fillers),
/// which make two different names look the same. (The zero-width joiners are left: scripts
/// such as Persian and emoji sequences need them.)
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
                | '\u{2028}' | '\u{2029}'
                | '\u{00ad}' | '\u{034f}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
                | '\u{180e}' | '\u{200b}' | '\u{2060}'..='\u{2064}'
                | '\u{3164}' | '\u{feff}' | '\u{ffa0}'
                | '\u{e0000}'..='\u{e007f}'
                // A raw byte of a stored path (`model::path_text`): shown as `\xNN`.
                | '\u{10ff00}'..='\u{10ffff}'
        )
}

/// `s` made inert for a terminal: each unsafe character (see [`is_unsafe`]) shown as `\n`,
/// `\r`, `\t`, `\x1b` or `\u{202e}`, so that what is printed cannot move the cursor, change
/// colours or the title, reorder the line, or forge a line of output. Borrowed when there is
/// nothing to escape.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && is_unsafe(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) >= super::PATH_BYTE => {
                out.push_str(&format!("\\x{:02x}", c as u32 - super::PATH_BYTE));
            }
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Bytes that should be text (a recorded path or argument): [`escape`]d, with each byte that
/// is not UTF-8 shown as `\xNN`.
pub fn escape_bytes(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => escape(s),
        Err(_) => {
            let mut out = String::with_capacity(b.len() + 8);
            for chunk in b.utf8_chunks() {
                out.push_str(&escape(chunk.valid()));
                for byte in chunk.invalid() {
                    out.push_str(&format!("\\x{byte:02x}"));
                }
            }
            Cow::Owned(out)
        }
    }
}

/// A recorded command line for a terminal: exact and inert. Each argument is left bare when
/// it needs no quoting, in single quotes when it is printable text, and in ANSI-C quotes
/// (`$'two\nlines'`, which bash, zsh, ksh and POSIX.1-2024 shells read back as the same
/// bytes) when it holds a character [`is_unsafe`] or bytes that are not UTF-8. Unlike
/// [`super::command_line`], which is for JSON and exports (serde escapes there), nothing in
/// it can act on a terminal and nothing is lost.
pub fn terminal_command_line(argv: &[Vec<u8>]) -> String {
    argv.iter()
        .map(|a| match std::str::from_utf8(a) {
            Ok(s) if !s.chars().any(is_unsafe) => super::shell_quote(s),
            _ => ansi_c_quote(a),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `$'...'`: backslash and quote escaped, unsafe characters (as their UTF-8 bytes, which
/// reads back the same in any locale) and bytes that are not UTF-8 as `\xNN`.
fn ansi_c_quote(a: &[u8]) -> String {
    let mut out = String::from("$'");
    for chunk in a.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if (c as u32) < 0x80 && is_unsafe(c) => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c if is_unsafe(c) => {
                    let mut buf = [0; 4];
                    for byte in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{byte:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_paths_raw_bytes_are_shown_as_the_bytes_they_are() {
        let stored = crate::model::path_text(b"big\xff\x1b[31m.bin");
        assert_eq!(escape(&stored), "big\\xff\\x1b[31m.bin");
        assert_eq!(escape(&stored), escape_bytes(b"big\xff\x1b[31m.bin"));
    }

    #[test]
    fn escape_leaves_plain_text_alone_and_makes_control_characters_visible() {
        assert!(matches!(escape("data/train.csv"), Cow::Borrowed(_)));
        assert_eq!(escape("a\nb"), "a\\nb");
        assert_eq!(escape("\x1b]0;owned\x07"), "\\x1b]0;owned\\x07");
        assert_eq!(escape("tab\there"), "tab\\there");
        assert_eq!(escape("del\x7f"), "del\\x7f");
        assert!(matches!(escape("back\\slash"), Cow::Borrowed(_)));
        assert_eq!(escape("next\u{85}line"), "next\\u{85}line");
        assert_eq!(escape("csi\u{9b}2J"), "csi\\u{9b}2J");
        assert_eq!(escape("abc\u{202e}txt.exe"), "abc\\u{202e}txt.exe");
        assert_eq!(escape("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
        assert_eq!(escape("café 模型"), "café 模型");
        // Shown as nothing, so two names look the same: made visible.
        assert_eq!(escape("data\u{200b}.csv"), "data\\u{200b}.csv");
        assert_eq!(
            escape("\u{feff}x\u{ad}y\u{e0041}"),
            "\\u{feff}x\\u{ad}y\\u{e0041}"
        );
        assert_eq!(escape("می\u{200c}خواهم"), "می\u{200c}خواهم");
        assert_eq!(escape_bytes(b"in\xff.csv\n"), "in\\xff.csv\\n");
    }

    /// What `terminal_command_line` prints, read back by bash, is the same bytes.
    #[test]
    fn a_terminal_command_line_is_inert_and_reads_back_through_bash_as_the_same_bytes() {
        let argv: Vec<Vec<u8>> = [
            &b"python"[..],
            b"train.py",
            b"it's",
            b"",
            b"two\nlines",
            b"\x1b]0;title\x07\x1b[2J",
            b"a\\b'c",
            b"in\xff.csv",
            "rtl\u{202e}cod.sh".as_bytes(),
            "c1\u{9b}31m".as_bytes(),
            b"del\x7f",
            "modèle".as_bytes(),
        ]
        .iter()
        .map(|a| a.to_vec())
        .collect();
        let line = terminal_command_line(&argv);
        assert!(line.starts_with("python train.py 'it'\\''s' '' $'two\\nlines' "));
        assert!(!line.chars().any(is_unsafe), "{line:?}");
        let Ok(out) = std::process::Command::new("bash")
            .args(["-c", &format!("printf '%s\\0' {line}")])
            .output()
        else {
            return; // no bash here: the shape was checked above
        };
        let back: Vec<Vec<u8>> = out.stdout.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
        assert_eq!(&back[..argv.len()], &argv[..], "{line}");
    }
}
