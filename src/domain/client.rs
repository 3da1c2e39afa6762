//! Client identifiers and redirect URIs, parsed once (RFC 6749 §3.1.2, RFC 8252 §7.3).

use std::fmt;

use url::{Host, Url};

/// A client identifier as issued by Scopegate: `app_` + URL-safe characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("malformed client_id")]
    MalformedId,
    #[error("redirect URI {0:?} is not an absolute URL")]
    NotAbsolute(String),
    #[error("redirect URI must not contain a fragment")]
    Fragment,
    #[error("plain http redirect URIs are allowed only for loopback addresses")]
    InsecureHttp,
    #[error("a client needs at least one redirect URI")]
    NoRedirectUri,
    #[error("client name must be 1 to 100 characters")]
    BadName,
}

impl ClientId {
    pub const PREFIX: &'static str = "app_";

    /// Accepts any plausible identifier shape; whether it exists is the store's business.
    pub fn parse(s: &str) -> Result<ClientId, ClientError> {
        let ok = (1..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| ClientId(s.to_string()))
            .ok_or(ClientError::MalformedId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0)
    }
}

/// A registered redirect URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectUri(Url);

impl RedirectUri {
    pub fn parse(s: &str) -> Result<RedirectUri, ClientError> {
        let url =
            Url::parse(s).map_err(|_| ClientError::NotAbsolute(s.chars().take(200).collect()))?;
        if url.fragment().is_some() {
            return Err(ClientError::Fragment);
        }
        if url.scheme() == "http" && !is_loopback(&url) {
            return Err(ClientError::InsecureHttp);
        }
        if url.cannot_be_a_base() && url.scheme() != "urn" {
            return Err(ClientError::NotAbsolute(s.chars().take(200).collect()));
        }
        Ok(RedirectUri(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &Url {
        &self.0
    }

    /// Does the requested URI match this registration? Exact string match, except that a
    /// loopback IP registration matches any port (RFC 8252 §7.3).
    pub fn matches(&self, requested: &str) -> bool {
        if self.0.as_str() == requested {
            return true;
        }
        let Ok(req) = Url::parse(requested) else {
            return false;
        };
        if !(self.0.scheme() == "http" && is_loopback_ip(&self.0)) {
            return false;
        }
        let mut a = self.0.clone();
        let mut b = req.clone();
        if a.set_port(None).is_err() || b.set_port(None).is_err() {
            return false;
        }
        a == b && req.fragment().is_none()
    }
}

fn is_loopback(url: &Url) -> bool {
    is_loopback_ip(url) || url.host_str() == Some("localhost")
}

fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// A display name for a client.
pub fn parse_client_name(name: &str) -> Result<String, ClientError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ClientError::BadName);
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_absolute_without_fragment() {
        assert!(RedirectUri::parse("/callback").is_err());
        assert_eq!(
            RedirectUri::parse("https://app.example/cb#x"),
            Err(ClientError::Fragment)
        );
        assert!(RedirectUri::parse("https://app.example/cb").is_ok());
        assert!(RedirectUri::parse("com.example.app:/oauth").is_ok());
    }

    #[test]
    fn plain_http_is_only_for_loopback() {
        assert_eq!(
            RedirectUri::parse("http://app.example/cb"),
            Err(ClientError::InsecureHttp)
        );
        assert!(RedirectUri::parse("http://127.0.0.1/cb").is_ok());
        assert!(RedirectUri::parse("http://localhost:3000/cb").is_ok());
    }

    #[test]
    fn matching_is_exact_except_the_loopback_port() {
        let web = RedirectUri::parse("https://app.example/cb").expect("valid");
        assert!(web.matches("https://app.example/cb"));
        assert!(!web.matches("https://app.example/cb/"));
        assert!(!web.matches("https://app.example/cb?x=1"));
        let native = RedirectUri::parse("http://127.0.0.1/cb").expect("valid");
        assert!(native.matches("http://127.0.0.1:53121/cb"));
        assert!(!native.matches("http://127.0.0.1:53121/other"));
        assert!(!native.matches("http://evil.example:53121/cb"));
    }

    #[test]
    fn client_ids_are_url_safe() {
        assert!(ClientId::parse("app_abc-DEF_123").is_ok());
        assert!(ClientId::parse("app abc").is_err());
        assert!(ClientId::parse("").is_err());
    }
}
