//! What a run's record proves about itself (docs/security.md): its signature checked against
//! its canonical record, and the bytes it names by hash against their hashes.

use serde::Serialize;

/// A run's record, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seal {
    /// No signature: recorded before signing existed, without a usable key, or imported
    /// from a store that had none.
    Unsigned,
    /// Signed, and the signature and the bytes it names check.
    Signed {
        /// The signer's public key, `ed25519:<hex>`.
        key: String,
    },
    /// Something changed after it was recorded.
    Tampered {
        /// What does not check.
        reason: String,
    },
}

/// Where a run stands for someone who trusts some keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Signed by a trusted key, and intact.
    Verified,
    /// Signed and intact, by a key nobody said to trust.
    UnknownKey,
    /// Not signed.
    Unsigned,
    /// Changed after it was signed (or its bytes are not what they are named).
    Tampered,
}

impl Standing {
    /// How `seal` stands when `trusted` says whether a key is trusted.
    pub fn of(seal: &Seal, trusted: impl Fn(&str) -> bool) -> Standing {
        match seal {
            Seal::Signed { key } if trusted(key) => Standing::Verified,
            Seal::Signed { .. } => Standing::UnknownKey,
            Seal::Unsigned => Standing::Unsigned,
            Seal::Tampered { .. } => Standing::Tampered,
        }
    }

    /// As printed: `verified`, `unknown key`, `unsigned`, `TAMPERED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Verified => "verified",
            Standing::UnknownKey => "unknown key",
            Standing::Unsigned => "unsigned",
            Standing::Tampered => "TAMPERED",
        }
    }
}
