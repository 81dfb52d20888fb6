//! Signed records: each user's ed25519 key, made on first use and kept user-only, signs the
//! canonical record of every run it finishes (`store::signature`); `lineage verify` checks
//! them, and `export --format intoto --sign` wraps statements in DSSE envelopes.
//!
//! Keys are written `ed25519:<64 lowercase hex>` (the public key's 32 bytes) wherever they are
//! shown, listed (`[trust] keys` in `lineage.toml`) or stored; signatures are 128 lowercase
//! hex digits.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};

/// What precedes a public key's hex digits.
pub const KEY_PREFIX: &str = "ed25519:";

/// The environment variable naming the key file instead of the default.
pub const KEY_ENV: &str = "LINEAGE_SIGNING_KEY";

/// What a key file holds before the secret's hex digits.
const FILE_HEADER: &str = "lineage ed25519 signing key v1\n";

/// The user's signing key.
pub struct Signer {
    key: SigningKey,
}

/// This user's public key, when their key file exists (never made here: a reader that
/// only checks signatures does not need one).
pub fn own_public_key() -> Option<String> {
    let path = key_path()?;
    path.path
        .exists()
        .then(|| Signer::load_or_create(&path.path).ok())
        .flatten()
        .map(|s| s.public_key())
}

/// Where the user's key is: `$LINEAGE_SIGNING_KEY` (which must exist: a key named there is
/// never made, so a mount not there yet does not sign with a stray new key), else
/// `$XDG_CONFIG_HOME/lineage/signing.key` (`~/.config/lineage/signing.key`, made on first
/// use).
pub fn key_path() -> Option<KeyPath> {
    if let Some(p) = std::env::var_os(KEY_ENV).filter(|p| !p.is_empty()) {
        return Some(KeyPath {
            path: PathBuf::from(p),
            make: false,
        });
    }
    use etcetera::BaseStrategy;
    let strategy = etcetera::choose_base_strategy().ok()?;
    Some(KeyPath {
        path: strategy.config_dir().join("lineage").join("signing.key"),
        make: true,
    })
}

/// Where a key is, and whether it is made there when missing.
pub struct KeyPath {
    /// The key file.
    pub path: PathBuf,
    /// Whether it is made on first use (the default place) or must exist (named by
    /// `LINEAGE_SIGNING_KEY`).
    pub make: bool,
}

impl KeyPath {
    /// The key, made first if it may be.
    pub fn load(&self) -> Result<Signer, String> {
        if !self.make && !self.path.exists() {
            return Err(format!(
                "{} names {}, which does not exist (unset it for the default key, or make one there with `lineage verify --key`)",
                KEY_ENV,
                self.path.display()
            ));
        }
        Signer::load_or_create(&self.path)
    }
}

impl Signer {
    /// The user's key from `path`, made there (user-only) if there is none. A file another
    /// user owns, or that others can read or write, is never used: Err says why.
    pub fn load_or_create(path: &Path) -> Result<Signer, String> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) => {
                if !meta.is_file() {
                    return Err(format!("{} is not a regular file", path.display()));
                }
                if meta.uid() != rustix::process::geteuid().as_raw() {
                    return Err(format!("{} belongs to another user", path.display()));
                }
                if meta.mode() & 0o077 != 0 {
                    return Err(format!(
                        "{} can be read or written by others (chmod 600 it, or remove it for a new key)",
                        path.display()
                    ));
                }
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Signer::parse(&text).ok_or_else(|| {
                    format!(
                        "{} is not a lineage signing key (remove it for a new key)",
                        path.display()
                    )
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Signer::create(path),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn parse(text: &str) -> Option<Signer> {
        let hex = text.strip_prefix(FILE_HEADER)?.trim();
        let seed: [u8; 32] = from_hex(hex)?.try_into().ok()?;
        Some(Signer {
            key: SigningKey::from_bytes(&seed),
        })
    }

    fn create(path: &Path) -> Result<Signer, String> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("no randomness for a key: {e}"))?;
        let signer = Signer {
            key: SigningKey::from_bytes(&seed),
        };
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        // Written whole under a temporary name, then linked into place: a second lineage
        // making its key at the same moment keeps whichever was first, and both use it.
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".signing-key-")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|e| format!("cannot write a key in {}: {e}", dir.display()))?;
        let text = format!("{FILE_HEADER}{}\n", to_hex(&seed));
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| format!("cannot write a key in {}: {e}", dir.display()))?;
        match tmp.persist_noclobber(path) {
            Ok(_) => Ok(signer),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                Signer::load_or_create(path)
            }
            Err(e) => Err(format!("cannot write {}: {}", path.display(), e.error)),
        }
    }

    /// `ed25519:<hex>`.
    pub fn public_key(&self) -> String {
        format!(
            "{KEY_PREFIX}{}",
            to_hex(self.key.verifying_key().as_bytes())
        )
    }

    /// The signature of `message`, as 128 hex digits.
    pub fn sign(&self, message: &[u8]) -> String {
        to_hex(&self.key.sign(message).to_bytes())
    }

    /// The raw signature of `message`.
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

/// Whether `signature` (hex) is `public_key`'s (`ed25519:<hex>`) over `message`.
pub fn verify(public_key: &str, message: &[u8], signature: &str) -> bool {
    let Some(key) = parse_public_key(public_key) else {
        return false;
    };
    let Some(sig) = from_hex(signature).and_then(|b| <[u8; 64]>::try_from(b).ok()) else {
        return false;
    };
    key.verify(message, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok()
}

/// A public key as written (`ed25519:<64 lowercase hex>`), if it is one.
pub fn parse_public_key(s: &str) -> Option<VerifyingKey> {
    let hex = s.strip_prefix(KEY_PREFIX)?;
    if hex.len() != 64 || hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let bytes: [u8; 32] = from_hex(hex)?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// Whether `s` is a signature as written: 128 lowercase hex digits.
pub fn is_signature(s: &str) -> bool {
    s.len() == 128 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// DSSE's pre-authentication encoding of a payload (what a DSSE signature signs).
pub fn dsse_pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope (in-toto's signed wrapper) around `payload`, signed by `signer`.
pub fn dsse_envelope(signer: &Signer, payload_type: &str, payload: &[u8]) -> serde_json::Value {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let sig = signer.sign_bytes(&dsse_pae(payload_type, payload));
    serde_json::json!({
        "payloadType": payload_type,
        "payload": b64.encode(payload),
        "signatures": [{"keyid": signer.public_key(), "sig": b64.encode(sig)}],
    })
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_user_only_and_signs_what_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cfg/lineage/signing.key");
        let a = Signer::load_or_create(&path).expect("made");
        let meta = std::fs::metadata(&path).expect("file");
        assert_eq!(meta.mode() & 0o777, 0o600);
        let b = Signer::load_or_create(&path).expect("loaded");
        assert_eq!(a.public_key(), b.public_key());
        let sig = a.sign(b"record");
        assert!(is_signature(&sig));
        assert!(verify(&b.public_key(), b"record", &sig));
        assert!(!verify(&b.public_key(), b"recorD", &sig));
        let other = Signer::load_or_create(&dir.path().join("other.key")).expect("other");
        assert!(!verify(&other.public_key(), b"record", &sig));
        assert!(!verify("ed25519:zz", b"record", &sig));
        assert!(!verify(&b.public_key(), b"record", "00"));
    }

    #[test]
    fn a_key_others_can_read_or_that_is_damaged_is_never_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("signing.key");
        Signer::load_or_create(&path).expect("made");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = Signer::load_or_create(&path).err().expect("refused");
        assert!(e.contains("read or written by others"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(&path, "garbage").expect("write");
        let e = Signer::load_or_create(&path).err().expect("refused");
        assert!(e.contains("not a lineage signing key"), "{e}");
    }

    #[test]
    fn the_dsse_encoding_is_the_specs() {
        // From the DSSE spec's protocol description: "DSSEv1" SP LEN(type) SP type SP
        // LEN(body) SP body.
        assert_eq!(
            dsse_pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }
}
