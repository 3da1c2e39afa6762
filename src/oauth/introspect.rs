//! Token introspection (RFC 7662) for access and refresh tokens.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::crypto::secret;
use crate::error::{AppError, OAuthError};
use crate::oauth::client_auth::{authenticate, client_form};
use crate::oauth::{bearer, primitives::Client};
use crate::startup::AppState;
use crate::store::{grants, DbConnection};

/// RFC 7662 §2.2; an inactive token is `{"active": false}` and nothing else.
#[derive(Debug, Serialize, Default)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    match introspect_inner(&req, &state, body).await {
        Ok(i) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(i),
        Err(AppError::OAuth(e)) => e.error_response(),
        Err(other) => {
            tracing::error!(error = ?other, "introspection failed");
            OAuthError::server_error().error_response()
        }
    }
}

async fn introspect_inner(
    req: &HttpRequest,
    state: &AppState,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<Introspection, AppError> {
    let (params, creds) = client_form(req, body)?;
    let token = params.get("token").map(str::to_string);
    let ring = state.signing.ring();
    let issuer = state.issuer.clone();
    let now = state.now();
    state
        .store
        .run(move |conn| -> Result<Introspection, AppError> {
            let client = authenticate(conn, &creds, false)??;
            let token = token.ok_or_else(|| OAuthError::invalid_request("token is required"))?;
            let found = if token.starts_with(crate::domain::token::REFRESH_TOKEN_PREFIX) {
                refresh_token(conn, &token, &issuer, now)?
            } else {
                match bearer::verify(conn, &ring, &token, &issuer, now)? {
                    Ok(c) => Some(Introspection {
                        active: true,
                        scope: Some(c.scope),
                        client_id: Some(c.client_id),
                        sub: Some(c.sub),
                        exp: Some(c.exp),
                        iat: Some(c.iat),
                        token_type: Some("Bearer"),
                        aud: Some(c.aud),
                        iss: Some(c.iss),
                        jti: Some(c.jti),
                    }),
                    Err(_) => None,
                }
            };
            Ok(match found {
                Some(i) if may_see(&client, &i) => i,
                _ => Introspection::default(),
            })
        })
        .await
}

/// A client sees its own tokens; a resource server sees all.
fn may_see(client: &Client, i: &Introspection) -> bool {
    client.is_resource_server || i.client_id.as_deref() == Some(client.id.as_str())
}

fn refresh_token(
    conn: &mut DbConnection,
    token: &str,
    issuer: &str,
    now: i64,
) -> Result<Option<Introspection>, AppError> {
    let Some(row) = grants::find_refresh(conn, &secret::digest(token))? else {
        return Ok(None);
    };
    let Some(family) = grants::find_grant(conn, &row.grant_id)? else {
        return Ok(None);
    };
    if row.used_at.is_some() || family.revoked_at.is_some() || row.expires_at <= now {
        return Ok(None);
    }
    Ok(Some(Introspection {
        active: true,
        scope: Some(row.scopes),
        sub: Some(family.user_id.unwrap_or_else(|| family.client_id.clone())),
        client_id: Some(family.client_id),
        exp: Some(row.expires_at),
        iat: Some(row.created_at),
        token_type: Some("refresh_token"),
        aud: Some(issuer.to_string()),
        iss: Some(issuer.to_string()),
        jti: None,
    }))
}
