//! Bytes in any encoding as text and back: UTF-8 (with or without a BOM), UTF-16 (told by its
//! BOM, or by the zero bytes of mostly-ASCII text), and anything else read as Latin-1, which
//! maps every byte to one character and back, so a file with a stray invalid byte or a binary
//! file is still searched and never stored raw when it holds a secret. And which file names
//! say that a file is a secret as a whole.

use std::path::Path;

/// How a file's text was encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8 { bom: bool },
    Utf16 { little_endian: bool, bom: bool },
    Latin1,
}

/// The text of `bytes` and how to write it back.
/// An argument's or an environment variable's bytes as text: UTF-8, else Latin-1, never
/// UTF-16. Neither can hold a NUL byte, so never UTF-16 text; read as UTF-16 because they began
/// with `FF FE`, a script's ASCII was searched as other characters, and kept its secrets.
pub fn decode_unix_string(bytes: &[u8]) -> (Encoding, String) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (Encoding::Utf8 { bom: false }, text.to_string()),
        Err(_) => (
            Encoding::Latin1,
            bytes.iter().map(|&b| char::from(b)).collect(),
        ),
    }
}

pub fn decode(bytes: &[u8]) -> (Encoding, String) {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF")
        && let Ok(text) = std::str::from_utf8(rest)
    {
        return (Encoding::Utf8 { bom: true }, text.to_string());
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return (utf16(true, true), decode_utf16(rest, true));
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return (utf16(false, true), decode_utf16(rest, false));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (Encoding::Utf8 { bom: false }, text.to_string());
    }
    if let Some(little_endian) = utf16_without_bom(bytes) {
        return (
            utf16(little_endian, false),
            decode_utf16(bytes, little_endian),
        );
    }
    (
        Encoding::Latin1,
        bytes.iter().map(|&b| char::from(b)).collect(),
    )
}

fn utf16(little_endian: bool, bom: bool) -> Encoding {
    Encoding::Utf16 { little_endian, bom }
}

/// Text written back as it was read (a character Latin-1 cannot hold, never produced by the
/// redaction, becomes `?`).
pub fn encode(encoding: Encoding, text: &str) -> Vec<u8> {
    match encoding {
        Encoding::Utf8 { bom } => {
            let mut out = if bom {
                b"\xEF\xBB\xBF".to_vec()
            } else {
                Vec::new()
            };
            out.extend_from_slice(text.as_bytes());
            out
        }
        Encoding::Utf16 { little_endian, bom } => {
            let mut out = Vec::with_capacity(text.len() * 2 + 2);
            let units = bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16());
            for unit in units {
                if little_endian {
                    out.extend_from_slice(&unit.to_le_bytes());
                } else {
                    out.extend_from_slice(&unit.to_be_bytes());
                }
            }
            out
        }
        Encoding::Latin1 => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect(),
    }
}

fn decode_utf16(bytes: &[u8], little_endian: bool) -> String {
    let units = bytes.chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if little_endian {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        }
    });
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// UTF-16 without a BOM: an even length and a zero in most odd (little-endian) or even
/// (big-endian) positions, as mostly-ASCII text has.
fn utf16_without_bom(bytes: &[u8]) -> Option<bool> {
    if bytes.len() < 8 || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let pairs = bytes.len() / 2;
    let zeros_high = bytes
        .chunks_exact(2)
        .filter(|p| p[1] == 0 && p[0] != 0)
        .count();
    let zeros_low = bytes
        .chunks_exact(2)
        .filter(|p| p[0] == 0 && p[1] != 0)
        .count();
    if zeros_high * 10 >= pairs * 9 {
        Some(true)
    } else if zeros_low * 10 >= pairs * 9 {
        Some(false)
    } else {
        None
    }
}

/// What a file's name says about its contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Judged by its contents.
    Text,
    /// Every assignment in it is a secret (`.env`, `.env.local`, `prod.env`, `.envrc`).
    EnvFile,
    /// Key material or a credentials store as a whole (`id_rsa`, `*.pem`, `.netrc`): never
    /// kept, whatever it holds.
    Secret,
}

/// What a file's name says: `id_rsa`, `*.pem`, `*.key`, `.netrc`, `.pgpass`,
/// `.git-credentials` are secrets as a whole; `.env` files hold secrets in every assignment.
pub fn file_kind(path: &Path) -> FileKind {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return FileKind::Text;
    };
    let lower = name.to_ascii_lowercase();
    let ext = Path::new(&lower)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    let whole = [
        ".netrc",
        "_netrc",
        ".pgpass",
        ".htpasswd",
        ".git-credentials",
        "credentials",
        ".my.cnf",
        ".pypirc",
        ".npmrc",
        "kaggle.json",
        "token",
        ".dockercfg",
    ];
    let key_ext = [
        "pem", "key", "p12", "pfx", "jks", "keystore", "ppk", "kdbx", "gpg", "p8",
    ];
    let ssh_key = [
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "id_ecdsa_sk",
        "id_ed25519_sk",
    ];
    if whole.contains(&lower.as_str())
        || key_ext.contains(&ext)
        || ssh_key
            .iter()
            .any(|k| lower == *k || (lower.starts_with(&format!("{k}.")) && ext != "pub"))
    {
        return FileKind::Secret;
    }
    if lower == ".env" || lower == ".envrc" || lower.starts_with(".env.") || ext == "env" {
        return FileKind::EnvFile;
    }
    FileKind::Text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip() {
        let samples: Vec<Vec<u8>> = vec![
            b"plain ascii\n".to_vec(),
            "caf\u{e9} utf8\n".as_bytes().to_vec(),
            b"\xEF\xBB\xBFbom\n".to_vec(),
            b"latin1 caf\xe9 and a stray \xff byte\n".to_vec(),
            encode(utf16(true, true), "utf-16 le text\n"),
            encode(utf16(false, true), "utf-16 be text\n"),
            encode(utf16(true, false), "no bom at all, le\n"),
            vec![0, 1, 2, 3, 255, 254, 0, 7],
        ];
        for bytes in samples {
            let (enc, text) = decode(&bytes);
            assert_eq!(encode(enc, &text), bytes, "{enc:?} {text:?}");
        }
        assert_eq!(
            decode(&encode(utf16(true, true), "x=1")).1,
            "x=1",
            "the BOM is not part of the text"
        );
        assert_eq!(decode(b"a\xe9b").0, Encoding::Latin1);
    }

    #[test]
    fn file_names() {
        for name in [
            "id_rsa",
            "server.pem",
            "tls.key",
            ".netrc",
            "a/b/.pgpass",
            "id_ed25519",
        ] {
            assert_eq!(file_kind(Path::new(name)), FileKind::Secret, "{name}");
        }
        for name in [".env", ".env.local", "prod.env", ".envrc"] {
            assert_eq!(file_kind(Path::new(name)), FileKind::EnvFile, "{name}");
        }
        for name in [
            "id_rsa.pub",
            "train.py",
            "config.yaml",
            "keyframes.txt",
            "environment.yml",
        ] {
            assert_eq!(file_kind(Path::new(name)), FileKind::Text, "{name}");
        }
    }
}
