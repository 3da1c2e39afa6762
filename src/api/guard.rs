//! The scope guard: `RequireScopes::any_of([...])`, an actix middleware that lets a request
//! through only with a valid access token holding at least one of the scopes, and answers
//! RFC 6750 §3 refusals (401 `invalid_token`, 403 `insufficient_scope`) otherwise.
//!
//! The token is checked by a [`TokenVerifier`] found in app data as
//! `web::Data<dyn TokenVerifier>`: Scopegate registers [`ScopegateVerifier`] (signature and
//! revocation against its database); another service can use [`JwksVerifier`].

use std::future::{ready, Ready};
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::future::LocalBoxFuture;

use crate::crypto::keys::{KeyRing, LoadedKey};
use crate::domain::api::{allows, insufficient_scope_message};
use crate::domain::scope::ScopeSet;
use crate::domain::token::AccessClaims;
use crate::oauth::bearer;
use crate::oauth::params::strip_scheme;
use crate::startup::AppState;

/// A token that passed verification.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    pub claims: AccessClaims,
    pub scopes: ScopeSet,
}

/// Why verification failed.
#[derive(Debug, Clone)]
pub enum VerifyFailure {
    /// Malformed, expired, badly signed, wrong audience or revoked (→ 401 `invalid_token`).
    Invalid(String),
    /// The verifier could not decide (database down) (→ 503).
    Unavailable,
}

/// Decides whether an access token is valid right now.
pub trait TokenVerifier: Send + Sync + 'static {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> LocalBoxFuture<'a, Result<VerifiedToken, VerifyFailure>>;
}

fn verified(claims: AccessClaims) -> Result<VerifiedToken, VerifyFailure> {
    let scopes = ScopeSet::parse(&claims.scope)
        .map_err(|_| VerifyFailure::Invalid("the token carries an unknown scope".into()))?;
    Ok(VerifiedToken { claims, scopes })
}

/// Scopegate's own verifier: signature with the current key ring, then the revocation check
/// in the database on every call (no cache: a revocation holds at once on every instance).
pub struct ScopegateVerifier {
    pub state: web::Data<AppState>,
}

impl TokenVerifier for ScopegateVerifier {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> LocalBoxFuture<'a, Result<VerifiedToken, VerifyFailure>> {
        Box::pin(async move {
            let state = self.state.clone();
            let token = token.to_string();
            let outcome = self
                .state
                .store
                .run(
                    move |conn| -> Result<Result<AccessClaims, String>, crate::error::AppError> {
                        let now = state.now();
                        let mut ring = state.signing.ring();
                        // A key created by another instance since our last reload: reload once.
                        if KeyRing::kid_of(&token).is_some_and(|kid| !ring.knows(&kid)) {
                            state.signing.reload(conn, now)?;
                            ring = state.signing.ring();
                        }
                        Ok(bearer::verify(conn, &ring, &token, &state.issuer, now)?
                            .map_err(|e| e.description.into_owned()))
                    },
                )
                .await;
            match outcome {
                Ok(Ok(claims)) => verified(claims),
                Ok(Err(reason)) => Err(VerifyFailure::Invalid(reason)),
                Err(e) => {
                    tracing::error!(error = ?e, "token verification failed");
                    Err(VerifyFailure::Unavailable)
                }
            }
        })
    }
}

/// For services other than Scopegate: checks signature, issuer, audience and expiry against
/// keys taken from Scopegate's JWKS. It cannot see revocations; pair it with short token
/// lifetimes or use introspection where that matters.
pub struct JwksVerifier {
    ring: KeyRing,
    issuer: String,
    audience: String,
}

impl JwksVerifier {
    /// `jwks` is the document served at `/.well-known/jwks.json`.
    pub fn from_jwks(
        jwks: &serde_json::Value,
        issuer: &str,
        audience: &str,
    ) -> Result<JwksVerifier, String> {
        let keys = jwks["keys"]
            .as_array()
            .ok_or("the JWKS has no keys array")?;
        let loaded = keys
            .iter()
            .filter(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519")
            .filter_map(|k| {
                Some(LoadedKey {
                    kid: k["kid"].as_str()?.to_string(),
                    pkcs8: None,
                    public_x: k["x"].as_str()?.to_string(),
                    created_at: 0,
                    retired_at: None,
                })
            })
            .collect();
        let ring = KeyRing::new(loaded).map_err(|e| e.to_string())?;
        Ok(JwksVerifier {
            ring,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
        })
    }
}

impl TokenVerifier for JwksVerifier {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> LocalBoxFuture<'a, Result<VerifiedToken, VerifyFailure>> {
        let now = chrono::Utc::now().timestamp();
        let result = self
            .ring
            .verify::<AccessClaims>(token, "at+jwt", &self.issuer, &self.audience, now, |c| {
                c.exp
            })
            .map_err(|e| VerifyFailure::Invalid(e.to_string()))
            .and_then(verified);
        Box::pin(ready(result))
    }
}

/// Middleware requiring at least one of a set of scopes (an empty set: any valid token).
#[derive(Clone, Copy, Debug)]
pub struct RequireScopes {
    any_of: ScopeSet,
}

impl RequireScopes {
    /// # Panics
    /// On a name outside the scope catalogue: that is a programming error, found at startup.
    pub fn any_of<'n>(names: impl IntoIterator<Item = &'n str>) -> RequireScopes {
        let mut any_of = ScopeSet::default();
        for n in names {
            #[allow(clippy::expect_used)]
            any_of.insert(
                crate::domain::scope::Scope::parse(n)
                    .expect("RequireScopes::any_of takes catalogue scope names"),
            );
        }
        RequireScopes { any_of }
    }

    pub fn set(any_of: ScopeSet) -> RequireScopes {
        RequireScopes { any_of }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireScopes
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireScopesMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireScopesMiddleware {
            service: Rc::new(service),
            any_of: self.any_of,
        }))
    }
}

pub struct RequireScopesMiddleware<S> {
    service: Rc<S>,
    any_of: ScopeSet,
}

impl<S, B> Service<ServiceRequest> for RequireScopesMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let any_of = self.any_of;
        Box::pin(async move {
            match check(req.request(), any_of).await {
                Ok(token) => {
                    req.extensions_mut().insert(token);
                    service
                        .call(req)
                        .await
                        .map(ServiceResponse::map_into_left_body)
                }
                Err(refusal) => Ok(req.into_response(refusal).map_into_right_body()),
            }
        })
    }
}

async fn check(req: &HttpRequest, any_of: ScopeSet) -> Result<VerifiedToken, HttpResponse> {
    let token = match presented_token(req) {
        Presented::None => return Err(missing_token()),
        Presented::Malformed(why) => return Err(invalid_token(why)),
        Presented::Token(t) => t,
    };
    let Some(verifier) = req.app_data::<web::Data<dyn TokenVerifier>>() else {
        tracing::error!("RequireScopes used without a TokenVerifier in app data");
        return Err(unavailable());
    };
    let token = match verifier.verify(&token).await {
        Ok(t) => t,
        Err(VerifyFailure::Invalid(why)) => return Err(invalid_token(&why)),
        Err(VerifyFailure::Unavailable) => return Err(unavailable()),
    };
    if !allows(&token.scopes, &any_of) {
        return Err(insufficient_scope(&token.scopes, &any_of));
    }
    Ok(token)
}

enum Presented<'a> {
    None,
    Malformed(&'a str),
    Token(String),
}

/// `Bearer <token>` (RFC 6750), or `Basic base64(<token>:)` as the Nylas SDKs send it.
fn presented_token(req: &HttpRequest) -> Presented<'static> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Presented::None;
    };
    let Ok(value) = value.to_str() else {
        return Presented::Malformed("the Authorization header is not ASCII");
    };
    if let Some(token) = strip_scheme(value, "Bearer") {
        return if token.is_empty() {
            Presented::Malformed("empty bearer token")
        } else {
            Presented::Token(token.to_string())
        };
    }
    if let Some(encoded) = strip_scheme(value, "Basic") {
        let decoded = STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        return match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((token, "")) if !token.is_empty() => Presented::Token(token.to_string()),
            _ => Presented::Malformed(
                "Basic credentials must be the access token and an empty password",
            ),
        };
    }
    Presented::Malformed("unsupported Authorization scheme")
}

fn api_error(
    status: StatusCode,
    message: &str,
    kind: &str,
    www_authenticate: &str,
) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Ok(v) = HeaderValue::from_str(www_authenticate) {
        res.insert_header((header::WWW_AUTHENTICATE, v));
    }
    res.content_type("application/json")
        .body(nylas_body(message, kind))
}

/// `{"message": …, "type": …}` with the spacing the Nylas API uses.
pub fn nylas_body(message: &str, kind: &str) -> String {
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"\"".into());
    let kind = serde_json::to_string(kind).unwrap_or_else(|_| "\"\"".into());
    format!("{{\"message\": {message}, \"type\": {kind}}}")
}

fn quote_safe(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

fn missing_token() -> HttpResponse {
    api_error(
        StatusCode::UNAUTHORIZED,
        "An access token is required.",
        "invalid_request_error",
        "Bearer realm=\"scopegate\"",
    )
}

fn invalid_token(why: &str) -> HttpResponse {
    let www = format!(
        "Bearer realm=\"scopegate\", error=\"invalid_token\", error_description=\"{}\"",
        quote_safe(why)
    );
    api_error(
        StatusCode::UNAUTHORIZED,
        &format!("Invalid access token: {why}."),
        "invalid_request_error",
        &www,
    )
}

fn insufficient_scope(granted: &ScopeSet, any_of: &ScopeSet) -> HttpResponse {
    let www = format!("Bearer error=\"insufficient_scope\", scope=\"{any_of}\"");
    api_error(
        StatusCode::FORBIDDEN,
        &insufficient_scope_message(granted, any_of),
        "api_error",
        &www,
    )
}

fn unavailable() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "1"))
        .content_type("application/json")
        .body(nylas_body(
            "The token could not be checked right now. Retry shortly.",
            "api_error",
        ))
}

/// The verified token of a request that passed [`RequireScopes`].
pub struct Authorized(pub VerifiedToken);

impl FromRequest for Authorized {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.extensions().get::<VerifiedToken>() {
            Some(t) => Ok(Authorized(t.clone())),
            None => Err(actix_web::error::InternalError::from_response(
                "no verified token",
                missing_token(),
            )
            .into()),
        })
    }
}
