//! Client authentication for the endpoints that do not run an oxide-auth flow
//! (introspection, revocation): the same rules as the token endpoint.

use actix_web::http::header;
use actix_web::{web, HttpRequest};

use crate::crypto::secret;
use crate::error::OAuthError;
use crate::oauth::params::{ClientCredentials, Params};
use crate::oauth::primitives::Client;
use crate::store::{clients, DbConnection};

/// Whether a form body was sent with the right content type.
pub fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The request body, or `invalid_request` when it could not be read (over the payload limit,
/// or cut off), so that the client gets an RFC 6749 §5.2 error rather than actix's
/// plain-text 413.
pub fn form_body(body: Result<web::Bytes, actix_web::Error>) -> Result<web::Bytes, OAuthError> {
    body.map_err(|_| {
        OAuthError::invalid_request("the request body is too large or could not be read")
    })
}

/// Reads the credentials of a request; `None` credentials are `invalid_client`.
pub fn credentials(req: &HttpRequest, params: &Params) -> Result<ClientCredentials, OAuthError> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    match ClientCredentials::from_request(authorization, params)? {
        ClientCredentials::None => Err(OAuthError::invalid_client(
            "client authentication is required",
        )),
        c => Ok(c),
    }
}

/// Authenticates a client; public clients pass with their id only when `allow_public`.
pub fn authenticate(
    conn: &mut DbConnection,
    creds: &ClientCredentials,
    allow_public: bool,
) -> Result<Result<Client, OAuthError>, diesel::result::Error> {
    let failed = || {
        Ok(Err(OAuthError::invalid_client(
            "client authentication failed",
        )))
    };
    let Some(id) = creds.client_id() else {
        return failed();
    };
    let Some(client) = clients::find(conn, id)?.map(Client::from_row) else {
        let _ = secret::matches_digest("", "");
        return failed();
    };
    let ok = match (creds, &client.secret_digest) {
        (ClientCredentials::Secret { secret, .. }, Some(digest)) => {
            secret::matches_digest(secret, digest)
        }
        (ClientCredentials::Public(_), None) => allow_public,
        _ => false,
    };
    if ok {
        Ok(Ok(client))
    } else {
        failed()
    }
}

/// The common start of a client-authenticated form endpoint (introspection, revocation):
/// content type, readable body, no repeated parameters, and the client's credentials.
pub fn client_form(
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<(Params, ClientCredentials), OAuthError> {
    if !is_form(req) {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let body = form_body(body)?;
    let params = Params::parse(&body);
    params.check_shape()?;
    let creds = credentials(req, &params)?;
    Ok((params, creds))
}
