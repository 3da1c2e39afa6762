//! Random opaque secrets, their SHA-256 digests, and constant-time comparison.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A freshly generated opaque token: `prefix` + 256 random bits in base64url.
/// Its `Debug` shows only the prefix and a few characters.
pub struct OpaqueToken(SecretString);

impl OpaqueToken {
    pub fn generate(prefix: &str) -> OpaqueToken {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        OpaqueToken(SecretString::from(format!(
            "{prefix}{}",
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// The value to hand to its owner, once.
    pub fn reveal(&self) -> &str {
        self.0.expose_secret()
    }

    /// The value to store.
    pub fn digest(&self) -> String {
        digest(self.reveal())
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpaqueToken({})", redact(self.reveal()))
    }
}

/// The first few characters and an ellipsis, for logs.
pub fn redact(token: &str) -> String {
    let shown: String = token.chars().take(8).collect();
    format!("{shown}…")
}

/// SHA-256 of a token, hex-encoded: what the database holds instead of the token.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares a presented token with a stored digest in constant time.
pub fn matches_digest(presented: &str, stored_digest: &str) -> bool {
    digest(presented)
        .as_bytes()
        .ct_eq(stored_digest.as_bytes())
        .into()
}

/// Random URL-safe identifier with a prefix (not secret: client ids, key ids, jti).
pub fn random_id(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_only_its_own_digest() {
        let t = OpaqueToken::generate("sgr_");
        assert!(t.reveal().starts_with("sgr_"));
        assert_eq!(t.reveal().len(), 4 + 43);
        assert!(matches_digest(t.reveal(), &t.digest()));
        assert!(!matches_digest("sgr_other", &t.digest()));
    }

    #[test]
    fn debug_output_is_redacted() {
        let t = OpaqueToken::generate("sgs_");
        let shown = format!("{t:?}");
        assert!(!shown.contains(t.reveal()));
        assert!(shown.starts_with("OpaqueToken(sgs_"));
    }
}
