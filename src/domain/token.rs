//! Token shapes and lifetimes: JWT claims (RFC 9068, OIDC Core §2), opaque-token prefixes,
//! and the expiry / rotation rules, all with `now` passed in.

use serde::{Deserialize, Serialize};

/// Prefixes make leaked tokens easy to scan for.
pub const REFRESH_TOKEN_PREFIX: &str = "sgr_";
pub const AUTH_CODE_PREFIX: &str = "sgc_";
pub const CLIENT_SECRET_PREFIX: &str = "sgs_";
pub const SESSION_PREFIX: &str = "sgx_";

/// How long each credential lives, in seconds.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    pub access: i64,
    pub refresh: i64,
    pub code: i64,
    pub id_token: i64,
}

/// Claims of an access token (RFC 9068 §2.2), plus the grant (token family) id.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The grant (token family) this token belongs to; revoking it revokes the token.
    pub gid: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_time: Option<i64>,
}

/// Claims of an ID token (OIDC Core §2, §5.1).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    pub azp: String,
}

/// What a presented refresh token row amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshStatus {
    Usable,
    Expired,
    /// Already rotated: presenting it again means it leaked, so the family is revoked
    /// (RFC 9700 §4.14.2).
    Reused,
    Revoked,
}

pub fn refresh_status(
    expires_at: i64,
    used_at: Option<i64>,
    family_revoked: bool,
    now: i64,
) -> RefreshStatus {
    if family_revoked {
        RefreshStatus::Revoked
    } else if used_at.is_some() {
        RefreshStatus::Reused
    } else if now >= expires_at {
        RefreshStatus::Expired
    } else {
        RefreshStatus::Usable
    }
}

/// What a presented authorization code row amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeStatus {
    Usable,
    Expired,
    /// A second use: what the first one issued is revoked (RFC 6749 §4.1.2).
    Replayed,
}

pub fn code_status(expires_at: i64, used_at: Option<i64>, now: i64) -> CodeStatus {
    if used_at.is_some() {
        CodeStatus::Replayed
    } else if now >= expires_at {
        CodeStatus::Expired
    } else {
        CodeStatus::Usable
    }
}

/// Whether a signing key retired at `retired_at` must still be published: until every access
/// or ID token it signed has expired.
pub fn key_still_published(retired_at: Option<i64>, lifetimes: &Lifetimes, now: i64) -> bool {
    match retired_at {
        None => true,
        Some(at) => now < at + lifetimes.access.max(lifetimes.id_token),
    }
}

/// `max_age` (OIDC Core §3.1.2.1): is the sign-in at `auth_time` too old?
pub fn login_too_old(auth_time: i64, max_age: Option<i64>, now: i64) -> bool {
    // max_age=0 means "sign in again now" (OIDC Core §3.1.2.1), even within the same second.
    max_age.is_some_and(|max| max == 0 || now - auth_time > max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_refresh_token_is_a_reuse_even_when_expired() {
        assert_eq!(
            refresh_status(100, Some(50), false, 200),
            RefreshStatus::Reused
        );
        assert_eq!(
            refresh_status(100, None, false, 100),
            RefreshStatus::Expired
        );
        assert_eq!(refresh_status(100, None, false, 99), RefreshStatus::Usable);
        assert_eq!(refresh_status(100, None, true, 10), RefreshStatus::Revoked);
    }

    #[test]
    fn a_code_used_twice_is_a_replay() {
        assert_eq!(code_status(60, None, 59), CodeStatus::Usable);
        assert_eq!(code_status(60, None, 60), CodeStatus::Expired);
        assert_eq!(code_status(60, Some(10), 20), CodeStatus::Replayed);
    }

    #[test]
    fn retired_keys_stay_published_until_their_tokens_expire() {
        let l = Lifetimes {
            access: 3600,
            refresh: 0,
            code: 60,
            id_token: 600,
        };
        assert!(key_still_published(None, &l, 0));
        assert!(key_still_published(Some(1000), &l, 4599));
        assert!(!key_still_published(Some(1000), &l, 4600));
    }

    #[test]
    fn max_age_zero_always_demands_a_fresh_login() {
        assert!(login_too_old(100, Some(0), 101));
        assert!(login_too_old(100, Some(0), 100));
        assert!(!login_too_old(100, None, 10_000));
        assert!(!login_too_old(100, Some(60), 160));
    }
}
