//! Request parameters, read once with duplicate detection (RFC 6749 §3.1, §3.2), and the
//! adapters that present them to oxide-auth's flows.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use oxide_auth::code_grant::accesstoken::{Authorization, Request as AccessTokenRequest};
use oxide_auth::code_grant::authorization::Request as AuthorizationRequest;
use oxide_auth::code_grant::client_credentials::Request as ClientCredentialsRequest;
use oxide_auth::code_grant::refresh::Request as RefreshRequest;

use crate::error::OAuthError;

/// Longest value accepted for any single parameter.
const MAX_VALUE_LEN: usize = 4096;

/// Parameters of one request. Empty values count as absent (RFC 6749 §3.1).
#[derive(Clone, Debug, Default)]
pub struct Params {
    map: HashMap<String, String>,
    duplicates: Vec<String>,
    oversized: Vec<String>,
}

impl Params {
    pub fn parse(input: &[u8]) -> Params {
        let mut p = Params::default();
        for (k, v) in form_urlencoded::parse(input) {
            if v.is_empty() {
                continue;
            }
            if v.len() > MAX_VALUE_LEN {
                p.oversized.push(k.chars().take(40).collect());
                continue;
            }
            if p.map.contains_key(k.as_ref()) {
                if !p.duplicates.iter().any(|d| d == k.as_ref()) {
                    p.duplicates.push(k.chars().take(40).collect());
                }
                continue;
            }
            p.map.insert(k.into_owned(), v.into_owned());
        }
        p
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    pub fn is_duplicated(&self, key: &str) -> bool {
        self.duplicates.iter().any(|d| d == key)
    }

    /// `invalid_request` for a duplicated or oversized parameter.
    pub fn check_shape(&self) -> Result<(), OAuthError> {
        if let Some(d) = self.duplicates.first() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {d} is repeated"
            )));
        }
        if let Some(o) = self.oversized.first() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {o} is too long"
            )));
        }
        Ok(())
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.map.insert(key.to_string(), value.into());
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.map.remove(key)
    }

    /// Re-encodes as a query string, in a stable order.
    pub fn to_query(&self) -> String {
        let mut keys: Vec<_> = self.map.keys().collect();
        keys.sort();
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for k in keys {
            ser.append_pair(k, &self.map[k]);
        }
        ser.finish()
    }
}

/// How the client identified itself at the token endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCredentials {
    None,
    Public(String),
    Secret { client_id: String, secret: String },
}

impl ClientCredentials {
    pub fn client_id(&self) -> Option<&str> {
        match self {
            ClientCredentials::None => None,
            ClientCredentials::Public(id) | ClientCredentials::Secret { client_id: id, .. } => {
                Some(id)
            }
        }
    }

    /// Reads `client_secret_basic` (each part form-urldecoded, RFC 6749 §2.3.1) or
    /// `client_secret_post`; using both is `invalid_request`.
    pub fn from_request(
        authorization: Option<&str>,
        params: &Params,
    ) -> Result<ClientCredentials, OAuthError> {
        let body_id = params.get("client_id");
        let body_secret = params.get("client_secret");
        if let Some(header) = authorization {
            let Some(encoded) = strip_scheme(header, "Basic") else {
                return Err(OAuthError::invalid_client(
                    "unsupported Authorization scheme",
                ));
            };
            let (id, secret) = decode_basic(encoded)
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "client credentials sent both in the header and in the body",
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            return Ok(ClientCredentials::Secret {
                client_id: id,
                secret,
            });
        }
        match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(ClientCredentials::Secret {
                client_id: id.into(),
                secret: secret.into(),
            }),
            (Some(id), None) => Ok(ClientCredentials::Public(id.into())),
            (None, Some(_)) => Err(OAuthError::invalid_request(
                "client_secret without client_id",
            )),
            (None, None) => Ok(ClientCredentials::None),
        }
    }
}

/// `Basic xyz` → `xyz`, the scheme matched case-insensitively.
pub fn strip_scheme<'h>(header: &'h str, scheme: &str) -> Option<&'h str> {
    let (s, rest) = header.trim().split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let id = form_decode(id)?;
    let secret = form_decode(secret)?;
    (!id.is_empty()).then_some((id, secret))
}

fn form_decode(s: &str) -> Option<String> {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Presents `Params` to oxide-auth's authorization flow.
pub struct AuthorizeRequest<'a>(pub &'a Params);

impl AuthorizationRequest for AuthorizeRequest<'_> {
    fn valid(&self) -> bool {
        true
    }
    fn client_id(&self) -> Option<Cow<'_, str>> {
        self.0.get("client_id").map(Cow::Borrowed)
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        self.0.get("scope").map(Cow::Borrowed)
    }
    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        self.0.get("redirect_uri").map(Cow::Borrowed)
    }
    fn state(&self) -> Option<Cow<'_, str>> {
        self.0.get("state").map(Cow::Borrowed)
    }
    fn response_type(&self) -> Option<Cow<'_, str>> {
        self.0.get("response_type").map(Cow::Borrowed)
    }
    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        self.0.get(key).map(Cow::Borrowed)
    }
}

/// Presents a token request to oxide-auth with exactly one credential, already decoded.
pub struct TokenRequest<'a> {
    pub params: &'a Params,
    pub credentials: &'a ClientCredentials,
    /// `redirect_uri` filled in when the authorization request did not send one.
    pub implied_redirect_uri: Option<String>,
    /// `scope` re-encoded space-separated.
    pub scope: Option<String>,
}

impl TokenRequest<'_> {
    fn secret_pair(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        match self.credentials {
            ClientCredentials::Secret { client_id, secret } => Some((
                Cow::Borrowed(client_id.as_str()),
                Cow::Borrowed(secret.as_bytes()),
            )),
            _ => None,
        }
    }
}

impl AccessTokenRequest for TokenRequest<'_> {
    fn valid(&self) -> bool {
        true
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        self.params.get("code").map(Cow::Borrowed)
    }
    fn authorization(&self) -> Authorization<'_> {
        match self.secret_pair() {
            Some((id, secret)) => Authorization::UsernamePassword(id, secret),
            None => Authorization::None,
        }
    }
    fn client_id(&self) -> Option<Cow<'_, str>> {
        match self.credentials {
            ClientCredentials::Public(id) => Some(Cow::Borrowed(id)),
            _ => None,
        }
    }
    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        self.params
            .get("redirect_uri")
            .map(Cow::Borrowed)
            .or(self.implied_redirect_uri.as_deref().map(Cow::Borrowed))
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        self.params.get("grant_type").map(Cow::Borrowed)
    }
    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        self.params.get(key).map(Cow::Borrowed)
    }
}

impl RefreshRequest for TokenRequest<'_> {
    fn valid(&self) -> bool {
        true
    }
    fn refresh_token(&self) -> Option<Cow<'_, str>> {
        self.params.get("refresh_token").map(Cow::Borrowed)
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        self.scope.as_deref().map(Cow::Borrowed)
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        self.params.get("grant_type").map(Cow::Borrowed)
    }
    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        self.secret_pair()
    }
    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        self.params.get(key).map(Cow::Borrowed)
    }
}

impl ClientCredentialsRequest for TokenRequest<'_> {
    fn valid(&self) -> bool {
        true
    }
    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        self.secret_pair()
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        self.scope.as_deref().map(Cow::Borrowed)
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        self.params.get("grant_type").map(Cow::Borrowed)
    }
    fn extension(&self, _key: &str) -> Option<Cow<'_, str>> {
        // Credentials are presented through `authorization` only.
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_flagged_and_empty_ones_ignored() {
        let p = Params::parse(b"state=a&state=b&scope=&client_id=x");
        assert!(p.is_duplicated("state"));
        assert_eq!(p.get("scope"), None);
        assert!(p.check_shape().is_err());
        assert!(Params::parse(b"a=1&b=2").check_shape().is_ok());
    }

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        // "my%3Aid:p%40ss+word" — RFC 6749 §2.3.1 encodes before base64.
        let header = format!("Basic {}", STANDARD.encode("my%3Aid:p%40ss+word"));
        let creds =
            ClientCredentials::from_request(Some(&header), &Params::default()).expect("valid");
        assert_eq!(
            creds,
            ClientCredentials::Secret {
                client_id: "my:id".into(),
                secret: "p@ss word".into()
            }
        );
    }

    #[test]
    fn two_authentication_methods_are_refused() {
        let header = format!("Basic {}", STANDARD.encode("id:secret"));
        let body = Params::parse(b"client_secret=secret");
        assert!(ClientCredentials::from_request(Some(&header), &body).is_err());
    }

    #[test]
    fn a_client_id_alone_is_a_public_client() {
        let body = Params::parse(b"client_id=app_1");
        assert_eq!(
            ClientCredentials::from_request(None, &body).expect("valid"),
            ClientCredentials::Public("app_1".into())
        );
    }
}
