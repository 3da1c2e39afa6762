//! Sealing secrets at rest with XChaCha20-Poly1305 under a master key kept outside the database.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};

/// The master key. `Debug` never shows it.
#[derive(Clone)]
pub struct SealKey(chacha20poly1305::Key);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(…)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the seal key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("sealed value is corrupt or was sealed under another key")]
    Open,
}

impl SealKey {
    pub fn generate() -> SealKey {
        SealKey(XChaCha20Poly1305::generate_key(&mut OsRng))
    }

    pub fn from_base64(text: &str) -> Result<SealKey, SealError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        Ok(SealKey(*chacha20poly1305::Key::from_slice(&bytes)))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.as_slice())
    }

    /// Raw key bytes, to derive other keys (cookie signing) from.
    pub fn bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// Seals `plain`, binding it to `context` (e.g. a key id) so sealed values cannot be swapped.
    pub fn seal(&self, plain: &[u8], context: &str) -> String {
        let cipher = XChaCha20Poly1305::new(&self.0);
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        #[allow(clippy::expect_used)]
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("v1.{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let body = sealed.strip_prefix("v1.").ok_or(SealError::Open)?;
        let bytes = STANDARD.decode(body).map_err(|_| SealError::Open)?;
        if bytes.len() < 24 {
            return Err(SealError::Open);
        }
        let (nonce, ct) = bytes.split_at(24);
        XChaCha20Poly1305::new(&self.0)
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let key = SealKey::generate();
        let sealed = key.seal(b"private key", "kid-1");
        assert!(!sealed.contains("private"));
        assert_eq!(key.open(&sealed, "kid-1").expect("opens"), b"private key");
        assert!(key.open(&sealed, "kid-2").is_err());
        assert!(SealKey::generate().open(&sealed, "kid-1").is_err());
    }

    #[test]
    fn a_key_round_trips_through_base64() {
        let key = SealKey::generate();
        let again = SealKey::from_base64(&key.to_base64()).expect("valid");
        assert_eq!(key.bytes(), again.bytes());
        assert!(SealKey::from_base64("c2hvcnQ=").is_err());
    }
}
