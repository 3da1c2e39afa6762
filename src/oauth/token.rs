//! The token endpoint (RFC 6749 §3.2): authorization_code, refresh_token, client_credentials.
//!
//! Credentials are decoded here (both Basic, form-urldecoded, and body) and handed to
//! oxide-auth as exactly one; its errors are mapped to the RFC 6749 §5.2 codes.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use oxide_auth::code_grant::accesstoken::{access_token, Error as AccessTokenError, TokenResponse};
use oxide_auth::code_grant::client_credentials::{
    client_credentials, Error as ClientCredentialsError,
};
use oxide_auth::code_grant::refresh::{refresh, Error as RefreshError};
use serde::Serialize;

use crate::crypto::secret;
use crate::domain::scope::{Scope, ScopeSet};
use crate::domain::token::IdClaims;
use crate::error::{AppError, OAuthError, OAuthErrorKind};
use crate::oauth::params::{ClientCredentials, Params, TokenRequest};
use crate::oauth::primitives::{refusal_or, FlowKind, IssueContext, Issued, Primitives};
use crate::startup::AppState;
use crate::store::{audit, grants, users, DbConnection};
use crate::web::ratelimit::{too_many_requests, Limit};

/// The successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Serialize)]
struct TokenBody {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    if let Err(wait) = state.limits.check(Limit::Token, &req) {
        return too_many_requests(wait);
    }
    let body = match crate::oauth::client_auth::form_body(body) {
        Ok(b) => b,
        Err(e) => return e.error_response(),
    };
    match token_inner(&req, &state, body).await {
        Ok(body) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(body),
        Err(AppError::OAuth(e)) => e.error_response(),
        Err(other) => {
            tracing::error!(error = ?other, "token request failed");
            OAuthError::server_error().error_response()
        }
    }
}

fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

async fn token_inner(
    req: &HttpRequest,
    state: &AppState,
    body: web::Bytes,
) -> Result<TokenBody, AppError> {
    if !is_form(req) {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        )
        .into());
    }
    let params = Params::parse(&body);
    params.check_shape()?;
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let credentials = ClientCredentials::from_request(authorization, &params)?;
    if credentials == ClientCredentials::None {
        return Err(OAuthError::invalid_client("client authentication is required").into());
    }
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?
        .to_string();
    let ctx = IssueContext {
        issuer: state.issuer.clone(),
        lifetimes: state.lifetimes,
        ring: state.signing.ring(),
    };
    let now = state.now();
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    state
        .store
        .run(move |conn| -> Result<TokenBody, AppError> {
            let kind = match grant_type.as_str() {
                "authorization_code" => FlowKind::AccessToken,
                "refresh_token" => FlowKind::Refresh,
                "client_credentials" => FlowKind::ClientCredentials,
                _ => {
                    return Err(OAuthError::new(OAuthErrorKind::UnsupportedGrantType, "supported: authorization_code, refresh_token, client_credentials").into())
                }
            };
            let (issued, token) = {
                let mut prims = Primitives::new(conn, &ctx, now, kind);
                let outcome = match kind {
                    FlowKind::AccessToken => exchange_code(&mut prims, &params, &credentials),
                    FlowKind::Refresh => refresh_tokens(&mut prims, &params, &credentials),
                    _ => client_credentials_grant(&mut prims, &params, &credentials),
                };
                match outcome {
                    Ok(token) => (prims.issued.clone().ok_or_else(|| anyhow::anyhow!("flow succeeded without issuing"))?, token),
                    Err(e) => {
                        drop(prims);
                        record_refusal(conn, now, &credentials, &grant_type, &e, ip.as_deref());
                        return Err(e.into());
                    }
                }
            };
            let action = match kind {
                FlowKind::Refresh => "token.refreshed",
                _ => "token.issued",
            };
            audit::record(
                conn,
                now,
                Some(&issued.subject),
                action,
                Some(&issued.client_id),
                serde_json::json!({"grant_type": grant_type, "grant_id": issued.grant_id, "scopes": issued.scope.to_string()}),
                ip.as_deref(),
            )?;
            let id_token = id_token_for(conn, &ctx, &issued, now)?;
            Ok(TokenBody {
                access_token: token.access_token.unwrap_or_default(),
                token_type: "Bearer",
                expires_in: issued.access_token_exp - now,
                scope: issued.scope.to_string(),
                refresh_token: token.refresh_token,
                id_token,
            })
        })
        .await
}

fn record_refusal(
    conn: &mut DbConnection,
    now: i64,
    creds: &ClientCredentials,
    grant_type: &str,
    e: &OAuthError,
    ip: Option<&str>,
) {
    let result = audit::record(
        conn,
        now,
        creds.client_id(),
        "token.refused",
        creds.client_id(),
        serde_json::json!({"grant_type": grant_type, "error": e.kind.as_str(), "reason": e.description}),
        ip,
    );
    if let Err(err) = result {
        tracing::warn!(error = %err, "could not record a refused token request");
    }
}

/// oxide-auth answers with a JSON document; we re-read it to build our own response.
fn parse_token_json(json: &str) -> Result<TokenResponse, AppError> {
    serde_json::from_str(json)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("bad token JSON from oxide-auth: {e}")))
}

fn map_access_error(prims: &Primitives<'_>, err: AccessTokenError) -> OAuthError {
    match err {
        AccessTokenError::Primitive(_) => refusal_or(prims, OAuthError::server_error()),
        AccessTokenError::Unauthorized(..) => refusal_or(
            prims,
            OAuthError::invalid_client("client authentication failed"),
        ),
        AccessTokenError::Invalid(mut d) => {
            // Shape was checked before the flow ran, so oxide-auth's `invalid_request` here
            // means the grant itself did not check out (RFC 6749 §5.2 `invalid_grant`).
            let kind = match d.description().kind().as_ref() {
                "invalid_client" => OAuthErrorKind::InvalidClient,
                "unsupported_grant_type" => OAuthErrorKind::UnsupportedGrantType,
                "invalid_scope" => OAuthErrorKind::InvalidScope,
                _ => OAuthErrorKind::InvalidGrant,
            };
            refusal_or(prims, OAuthError::new(kind, "the authorization code is invalid, expired, or was issued to another client or redirect URI"))
        }
    }
}

fn exchange_code(
    prims: &mut Primitives<'_>,
    params: &Params,
    creds: &ClientCredentials,
) -> Result<TokenResponse, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    check_client_kind(prims, creds)?;
    // redirect_uri is required only if the authorization request carried one (§4.1.3).
    let mut implied = None;
    if params.get("redirect_uri").is_none() {
        let digest = secret::digest(code);
        let row = prims
            .with_conn(|c| grants::find_code(c, &digest))
            .map_err(|_| OAuthError::server_error())?;
        match row {
            Some(r) if r.redirect_uri_given => {
                return Err(OAuthError::invalid_request(
                    "redirect_uri is required: the authorization request included one",
                ))
            }
            Some(r) => implied = Some(r.redirect_uri),
            None => {}
        }
    }
    let request = TokenRequest {
        params,
        credentials: creds,
        implied_redirect_uri: implied,
        scope: None,
    };
    match access_token(prims, &request) {
        Ok(bearer) => parse_token_json(&bearer.to_json()).map_err(|_| OAuthError::server_error()),
        Err(e) => Err(map_access_error(prims, e)),
    }
}

/// A public client may not pose as confidential and vice versa.
fn check_client_kind(prims: &Primitives<'_>, creds: &ClientCredentials) -> Result<(), OAuthError> {
    let id = creds.client_id().unwrap_or("");
    let client = prims.client(id).map_err(|()| OAuthError::server_error())?;
    match (client, creds) {
        (None, _) => Err(OAuthError::invalid_client("client authentication failed")),
        (Some(c), ClientCredentials::Public(_)) if !c.is_public() => Err(
            OAuthError::invalid_client("this client must authenticate with its client_secret"),
        ),
        (Some(c), ClientCredentials::Secret { .. }) if c.is_public() => Err(
            OAuthError::invalid_client("public clients have no client_secret"),
        ),
        _ => Ok(()),
    }
}

fn normalized_scope(params: &Params) -> Result<Option<String>, OAuthError> {
    match params.get("scope") {
        None => Ok(None),
        Some(s) => ScopeSet::parse_non_empty(s)
            .map(|set| Some(set.to_string()))
            .map_err(|e| OAuthError::invalid_scope(e.to_string())),
    }
}

fn refresh_tokens(
    prims: &mut Primitives<'_>,
    params: &Params,
    creds: &ClientCredentials,
) -> Result<TokenResponse, OAuthError> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    check_client_kind(prims, creds)?;
    let scope = normalized_scope(params)?;
    if let ClientCredentials::Public(client_id) = creds {
        // oxide-auth authenticates public clients against the grant's client only; make sure
        // the presented client_id is that one.
        let digest = secret::digest(token);
        let owner = prims
            .with_conn(|c| -> diesel::QueryResult<Option<String>> {
                Ok(match grants::find_refresh(c, &digest)? {
                    Some(r) => grants::find_grant(c, &r.grant_id)?.map(|g| g.client_id),
                    None => None,
                })
            })
            .map_err(|_| OAuthError::server_error())?;
        if owner.is_some_and(|o| &o != client_id) {
            return Err(OAuthError::invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
    }
    let request = TokenRequest {
        params,
        credentials: creds,
        implied_redirect_uri: None,
        scope,
    };
    match refresh(prims, &request) {
        Ok(bearer) => parse_token_json(&bearer.to_json()).map_err(|_| OAuthError::server_error()),
        Err(RefreshError::Primitive) => Err(refusal_or(prims, OAuthError::server_error())),
        Err(RefreshError::Unauthorized(..)) => Err(refusal_or(
            prims,
            OAuthError::invalid_client("client authentication failed"),
        )),
        Err(RefreshError::Invalid(mut d)) => {
            let kind = match d.description().kind().as_ref() {
                "invalid_scope" => OAuthErrorKind::InvalidScope,
                "invalid_client" => OAuthErrorKind::InvalidClient,
                _ => OAuthErrorKind::InvalidGrant,
            };
            let fallback = match kind {
                OAuthErrorKind::InvalidScope => "the requested scope exceeds the original grant",
                _ => "the refresh token is invalid, expired or was issued to another client",
            };
            Err(refusal_or(prims, OAuthError::new(kind, fallback)))
        }
    }
}

fn client_credentials_grant(
    prims: &mut Primitives<'_>,
    params: &Params,
    creds: &ClientCredentials,
) -> Result<TokenResponse, OAuthError> {
    let ClientCredentials::Secret { client_id, .. } = creds else {
        return Err(OAuthError::new(
            OAuthErrorKind::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    };
    check_client_kind(prims, creds)?;
    let scope = normalized_scope(params)?;
    let request = TokenRequest {
        params,
        credentials: creds,
        implied_redirect_uri: None,
        scope,
    };
    let pending = match client_credentials(prims, &request) {
        Ok(p) => p,
        Err(ClientCredentialsError::Unauthorized(..)) => {
            return Err(refusal_or(
                prims,
                OAuthError::invalid_client("client authentication failed"),
            ))
        }
        Err(ClientCredentialsError::Ignore) => {
            return Err(refusal_or(
                prims,
                OAuthError::invalid_scope("the requested scope is not allowed"),
            ))
        }
        Err(ClientCredentialsError::Invalid(_)) => {
            return Err(refusal_or(
                prims,
                OAuthError::invalid_request("malformed client_credentials request"),
            ))
        }
        Err(ClientCredentialsError::Primitive(_)) => {
            return Err(refusal_or(prims, OAuthError::server_error()))
        }
    };
    match pending.issue(prims, client_id.clone(), false) {
        Ok(bearer) => parse_token_json(&bearer.to_json()).map_err(|_| OAuthError::server_error()),
        Err(_) => Err(refusal_or(prims, OAuthError::server_error())),
    }
}

/// With `openid` granted, an ID token (OIDC Core §2) for the user.
fn id_token_for(
    conn: &mut DbConnection,
    ctx: &IssueContext,
    issued: &Issued,
    now: i64,
) -> Result<Option<String>, AppError> {
    let openid = Scope::parse("openid")
        .map(|s| issued.scope.contains(s))
        .unwrap_or(false);
    if !openid || issued.subject == issued.client_id {
        return Ok(None);
    }
    let Some(user) = users::find(conn, &issued.subject)? else {
        return Ok(None);
    };
    let claims = IdClaims {
        iss: ctx.issuer.clone(),
        sub: user.id.clone(),
        aud: issued.client_id.clone(),
        exp: now + ctx.lifetimes.id_token,
        iat: now,
        auth_time: issued.auth_time.unwrap_or(now),
        nonce: issued.nonce.clone(),
        email: issued
            .scope
            .contains_name("email")
            .then(|| user.email.clone()),
        email_verified: None,
        name: issued
            .scope
            .contains_name("profile")
            .then(|| user.name.clone()),
        azp: issued.client_id.clone(),
    };
    let jwt = ctx
        .ring
        .sign(&claims, "JWT")
        .map_err(|e| anyhow::anyhow!("signing an ID token: {e}"))?;
    Ok(Some(jwt))
}
