//! Token revocation (RFC 7009): a refresh token revokes its whole family, an access token
//! itself. Unknown tokens answer 200, as §2.2 requires.

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::crypto::secret;
use crate::domain::token::{AccessClaims, REFRESH_TOKEN_PREFIX};
use crate::error::{AppError, OAuthError};
use crate::oauth::client_auth::{authenticate, client_form};
use crate::startup::AppState;
use crate::store::{audit, grants};

pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    match revoke_inner(&req, &state, body).await {
        Ok(()) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
        Err(AppError::OAuth(e)) => e.error_response(),
        Err(other) => {
            tracing::error!(error = ?other, "revocation failed");
            OAuthError::server_error().error_response()
        }
    }
}

async fn revoke_inner(
    req: &HttpRequest,
    state: &AppState,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<(), AppError> {
    let (params, creds) = client_form(req, body)?;
    let token = params.get("token").map(str::to_string);
    let ring = state.signing.ring();
    let issuer = state.issuer.clone();
    let now = state.now();
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    state
        .store
        .run(move |conn| -> Result<(), AppError> {
            let client = authenticate(conn, &creds, true)??;
            let token = token.ok_or_else(|| OAuthError::invalid_request("token is required"))?;
            if token.starts_with(REFRESH_TOKEN_PREFIX) {
                let Some(row) = grants::find_refresh(conn, &secret::digest(&token))? else {
                    return Ok(());
                };
                let Some(family) = grants::find_grant(conn, &row.grant_id)? else {
                    return Ok(());
                };
                // Another client's token is left alone, and the answer does not tell.
                if family.client_id == client.id {
                    grants::revoke_grant(conn, &family.id, now)?;
                    audit::record(
                        conn,
                        now,
                        Some(&client.id),
                        "token.revoked",
                        Some(&family.id),
                        serde_json::json!({"token_type": "refresh_token", "family": true}),
                        ip.as_deref(),
                    )?;
                }
                return Ok(());
            }
            // An expired access token needs no revoking; only the signature must check out.
            let far_past = i64::MIN / 2;
            let Ok(claims) =
                ring.verify::<AccessClaims>(&token, "at+jwt", &issuer, &issuer, far_past, |c| {
                    c.exp
                })
            else {
                return Ok(());
            };
            if claims.client_id == client.id && claims.exp > now {
                grants::revoke_jti(conn, &claims.jti, claims.exp)?;
                audit::record(
                    conn,
                    now,
                    Some(&client.id),
                    "token.revoked",
                    Some(&claims.gid),
                    serde_json::json!({"token_type": "access_token", "jti": claims.jti}),
                    ip.as_deref(),
                )?;
            }
            Ok(())
        })
        .await
}
