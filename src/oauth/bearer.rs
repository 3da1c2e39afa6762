//! Access-token verification shared by every protected endpoint: signature, issuer,
//! audience, expiry, and revocation (checked in the database on every call, so a revocation
//! holds at once on every instance).

use actix_web::http::header;
use actix_web::HttpRequest;

use crate::crypto::keys::{KeyRing, VerifyError};
use crate::domain::token::AccessClaims;
use crate::error::{OAuthError, OAuthErrorKind};
use crate::store::{grants, DbConnection};

/// The bearer token of `Authorization: Bearer …` (RFC 6750 §2.1).
pub fn bearer_token(req: &HttpRequest) -> Result<Option<String>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| {
        OAuthError::new(
            OAuthErrorKind::InvalidRequest,
            "malformed Authorization header",
        )
    })?;
    // Another scheme counts as no authentication at all (RFC 6750 §3.1).
    if !value
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("bearer")
    {
        return Ok(None);
    }
    match crate::oauth::params::strip_scheme(value, "Bearer") {
        Some(token) if !token.is_empty() => Ok(Some(token.to_string())),
        _ => Err(OAuthError::new(
            OAuthErrorKind::InvalidRequest,
            "malformed Bearer token",
        )),
    }
}

fn invalid(description: &'static str) -> OAuthError {
    OAuthError::new(OAuthErrorKind::InvalidToken, description)
}

/// Checks the JWT alone; no database.
pub fn verify_signature(
    ring: &KeyRing,
    token: &str,
    issuer: &str,
    now: i64,
) -> Result<AccessClaims, OAuthError> {
    ring.verify::<AccessClaims>(token, "at+jwt", issuer, issuer, now, |c| c.exp)
        .map_err(|e| match e {
            VerifyError::Expired => invalid("the access token expired"),
            VerifyError::UnknownKey => invalid("the access token was signed by an unknown key"),
            _ => invalid("the access token is malformed or its signature is invalid"),
        })
}

/// Checks the JWT and then whether its grant or the token itself was revoked.
pub fn verify(
    conn: &mut DbConnection,
    ring: &KeyRing,
    token: &str,
    issuer: &str,
    now: i64,
) -> Result<Result<AccessClaims, OAuthError>, diesel::result::Error> {
    let claims = match verify_signature(ring, token, issuer, now) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    if grants::is_grant_revoked(conn, &claims.gid)? || grants::is_jti_revoked(conn, &claims.jti)? {
        return Ok(Err(invalid("the access token was revoked")));
    }
    Ok(Ok(claims))
}
