//! Ed25519 signing keys for JWTs (RFC 8037), the key ring and the JWKS (RFC 7517).

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::crypto::secret::random_id;

/// A freshly generated key pair, ready to be sealed and stored.
pub struct GeneratedKey {
    pub kid: String,
    /// PKCS#8 v2 document; seal before storing.
    pub pkcs8: Vec<u8>,
    /// The public key, base64url (the JWK `x`).
    pub public_x: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("could not generate an Ed25519 key")]
    Generate,
    #[error("stored private key is not a valid Ed25519 PKCS#8 document")]
    BadPrivateKey,
    #[error("no active signing key")]
    NoActiveKey,
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

pub fn generate() -> Result<GeneratedKey, KeyError> {
    let rng = ring::rand::SystemRandom::new();
    let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generate)?;
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| KeyError::Generate)?;
    Ok(GeneratedKey {
        kid: random_id("", 12),
        pkcs8: doc.as_ref().to_vec(),
        public_x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
    })
}

/// A key as loaded from the store, the private half already unsealed.
pub struct LoadedKey {
    pub kid: String,
    pub pkcs8: Option<Vec<u8>>,
    pub public_x: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

struct Signer {
    kid: String,
    key: EncodingKey,
}

/// The keys of one moment: the one that signs, and all that verify (and are published).
pub struct KeyRing {
    signer: Option<Signer>,
    verifiers: HashMap<String, DecodingKey>,
    published: Vec<(String, String)>,
}

/// Why a JWT was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(jsonwebtoken::errors::Error),
    #[error("token expired")]
    Expired,
    #[error("wrong token type")]
    WrongType,
}

impl KeyRing {
    /// `keys` are the published keys, newest first; the newest unretired one with a private
    /// half signs.
    pub fn new(keys: Vec<LoadedKey>) -> Result<KeyRing, KeyError> {
        let mut signer = None;
        let mut verifiers = HashMap::new();
        let mut published = Vec::new();
        for k in keys {
            if signer.is_none() && k.retired_at.is_none() {
                if let Some(der) = &k.pkcs8 {
                    Ed25519KeyPair::from_pkcs8(der).map_err(|_| KeyError::BadPrivateKey)?;
                    signer = Some(Signer {
                        kid: k.kid.clone(),
                        key: EncodingKey::from_ed_der(der),
                    });
                }
            }
            let dk = DecodingKey::from_ed_components(&k.public_x)
                .map_err(|_| KeyError::BadPrivateKey)?;
            verifiers.insert(k.kid.clone(), dk);
            published.push((k.kid, k.public_x));
        }
        Ok(KeyRing {
            signer,
            verifiers,
            published,
        })
    }

    pub fn has_signer(&self) -> bool {
        self.signer.is_some()
    }

    pub fn knows(&self, kid: &str) -> bool {
        self.verifiers.contains_key(kid)
    }

    /// Signs `claims` as a JWT with header `typ` (`at+jwt` for access tokens, `JWT` for ID tokens).
    pub fn sign<T: Serialize>(&self, claims: &T, typ: &str) -> Result<String, KeyError> {
        let signer = self.signer.as_ref().ok_or(KeyError::NoActiveKey)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(typ.to_string());
        header.kid = Some(signer.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &signer.key)?)
    }

    /// The `kid` in a token's header, if it parses.
    pub fn kid_of(token: &str) -> Option<String> {
        jsonwebtoken::decode_header(token).ok()?.kid
    }

    /// Verifies signature, `typ`, issuer and audience; expiry is checked against `now` by
    /// the caller-supplied `exp` extractor so that time stays an argument.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        audience: &str,
        now: i64,
        exp_of: impl Fn(&T) -> i64,
    ) -> Result<T, VerifyError> {
        if token.len() > 8192 {
            return Err(VerifyError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(VerifyError::Malformed);
        }
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(typ))
        {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let key = self.verifiers.get(&kid).ok_or(VerifyError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        let data =
            jsonwebtoken::decode::<T>(token, key, &validation).map_err(VerifyError::Invalid)?;
        if exp_of(&data.claims) <= now {
            return Err(VerifyError::Expired);
        }
        Ok(data.claims)
    }

    /// The JWKS document (RFC 7517 §5).
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .published
            .iter()
            .map(|(kid, x)| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::AccessClaims;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://sg.example".into(),
            sub: "u1".into(),
            aud: "https://sg.example".into(),
            client_id: "app_1".into(),
            scope: "email.send".into(),
            iat: 0,
            exp,
            jti: "j".into(),
            gid: "g".into(),
            auth_time: None,
        }
    }

    fn ring_of(keys: Vec<GeneratedKey>) -> KeyRing {
        KeyRing::new(
            keys.into_iter()
                .map(|k| LoadedKey {
                    kid: k.kid,
                    pkcs8: Some(k.pkcs8),
                    public_x: k.public_x,
                    created_at: 0,
                    retired_at: None,
                })
                .collect(),
        )
        .expect("ring")
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let ring = ring_of(vec![generate().expect("key")]);
        let jwt = ring.sign(&claims(100), "at+jwt").expect("signed");
        let iss = "https://sg.example";
        let ok: AccessClaims = ring
            .verify(&jwt, "at+jwt", iss, iss, 99, |c: &AccessClaims| c.exp)
            .expect("valid");
        assert_eq!(ok, claims(100));
        let late = ring.verify::<AccessClaims>(&jwt, "at+jwt", iss, iss, 100, |c| c.exp);
        assert!(matches!(late, Err(VerifyError::Expired)));
        let wrong_typ = ring.verify::<AccessClaims>(&jwt, "JWT", iss, iss, 1, |c| c.exp);
        assert!(matches!(wrong_typ, Err(VerifyError::WrongType)));
        let wrong_aud = ring.verify::<AccessClaims>(&jwt, "at+jwt", iss, "other", 1, |c| c.exp);
        assert!(matches!(wrong_aud, Err(VerifyError::Invalid(_))));
    }

    #[test]
    fn a_token_from_an_unknown_key_is_refused() {
        let jwt = ring_of(vec![generate().expect("key")])
            .sign(&claims(100), "at+jwt")
            .expect("signed");
        let other = ring_of(vec![generate().expect("key")]);
        let iss = "https://sg.example";
        assert!(matches!(
            other.verify::<AccessClaims>(&jwt, "at+jwt", iss, iss, 1, |c| c.exp),
            Err(VerifyError::UnknownKey)
        ));
    }
}
