//! The OIDC UserInfo endpoint (OIDC Core §5.3).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::error::{AppError, OAuthError, OAuthErrorKind};
use crate::oauth::bearer;
use crate::startup::AppState;
use crate::store::users;

pub async fn userinfo(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match userinfo_inner(&req, &state).await {
        Ok(body) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(body),
        Err(AppError::OAuth(e)) => bearer_error(&e),
        Err(other) => {
            tracing::error!(error = ?other, "userinfo failed");
            OAuthError::server_error().error_response()
        }
    }
}

/// RFC 6750 §3: errors on a protected resource are told in `WWW-Authenticate`.
pub fn bearer_error(e: &OAuthError) -> HttpResponse {
    match e.kind {
        OAuthErrorKind::InvalidRequest | OAuthErrorKind::InsufficientScope => {
            let mut res = e.error_response();
            let v = format!("Bearer realm=\"scopegate\", error=\"{}\"", e.kind.as_str());
            if let Ok(v) = header::HeaderValue::from_str(&v) {
                res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            res
        }
        _ => e.error_response(),
    }
}

async fn userinfo_inner(
    req: &HttpRequest,
    state: &AppState,
) -> Result<serde_json::Value, AppError> {
    let Some(token) = bearer::bearer_token(req)? else {
        return Err(
            OAuthError::new(OAuthErrorKind::InvalidToken, "an access token is required").into(),
        );
    };
    let ring = state.signing.ring();
    let issuer = state.issuer.clone();
    let now = state.now();
    state
        .store
        .run(move |conn| -> Result<serde_json::Value, AppError> {
            let claims = bearer::verify(conn, &ring, &token, &issuer, now)??;
            let scopes: Vec<&str> = claims.scope.split(' ').collect();
            if !scopes.contains(&"openid") {
                return Err(OAuthError::new(
                    OAuthErrorKind::InsufficientScope,
                    "the openid scope is required",
                )
                .into());
            }
            let Some(user) = users::find(conn, &claims.sub)? else {
                return Err(OAuthError::new(
                    OAuthErrorKind::InvalidToken,
                    "the token's subject no longer exists",
                )
                .into());
            };
            let mut body = serde_json::json!({ "sub": user.id });
            if scopes.contains(&"email") {
                body["email"] = user.email.into();
            }
            if scopes.contains(&"profile") {
                body["name"] = user.name.into();
            }
            Ok(body)
        })
        .await
}
