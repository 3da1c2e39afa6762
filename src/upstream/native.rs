//! Native authentication as the Nylas SDKs call it: `POST /connect/authorize` checks a Google
//! refresh token by really refreshing it and answers a single-use code;
//! `POST /connect/token` trades the code for the account and a Scopegate access token.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::api::account::{account_object, AccountObject};
use crate::api::guard::nylas_body;
use crate::crypto::secret::{self, OpaqueToken};
use crate::domain::google::{missing_google_scopes, parse_google_scopes};
use crate::domain::scope::ScopeSet;
use crate::domain::token::AUTH_CODE_PREFIX;
use crate::domain::user::{parse_user_name, Email};
use crate::error::AppError;
use crate::oauth::primitives::{issue_access_token, Client, IssueContext};
use crate::startup::AppState;
use crate::store::google::{self as google_store, ConnectCodeRow};
use crate::store::users;
use crate::store::{audit, clients};
use crate::upstream::google::{Google, GoogleError, Identity};

/// `scopes` may be `"a,b"` or `["a", "b"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Scopes {
    Text(String),
    List(Vec<String>),
}

#[derive(Deserialize)]
pub struct NativeSettings {
    google_client_id: Option<String>,
    google_client_secret: Option<String>,
    google_refresh_token: Option<String>,
}

#[derive(Deserialize)]
pub struct AuthorizeBody {
    client_id: Option<String>,
    name: Option<String>,
    email_address: Option<String>,
    provider: Option<String>,
    settings: Option<NativeSettings>,
    scopes: Option<Scopes>,
    reauth_account_id: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenBody {
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
}

/// `{"message", "type"}` with a status.
struct NativeError(StatusCode, String, &'static str);

impl NativeError {
    fn bad(msg: impl Into<String>) -> Self {
        NativeError(StatusCode::BAD_REQUEST, msg.into(), "invalid_request_error")
    }
    fn response(self) -> HttpResponse {
        HttpResponse::build(self.0)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("application/json")
            .body(nylas_body(&self.1, self.2))
    }
}

impl From<AppError> for NativeError {
    fn from(e: AppError) -> Self {
        tracing::error!(error = ?e, "native authentication failed");
        NativeError(
            StatusCode::SERVICE_UNAVAILABLE,
            "The request could not be completed right now.".into(),
            "api_error",
        )
    }
}

fn parse_json<T: for<'de> Deserialize<'de>>(
    req: &HttpRequest,
    body: &[u8],
) -> Result<T, NativeError> {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return Err(NativeError::bad(
            "The body must be JSON (Content-Type: application/json).",
        ));
    }
    serde_json::from_slice(body).map_err(|e| NativeError::bad(format!("Malformed JSON body: {e}.")))
}

/// The secret of `Authorization: Basic base64(<client_secret>:)`, as the Nylas SDKs send it.
fn basic_secret(req: &HttpRequest) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = crate::oauth::params::strip_scheme(v, "Basic")?;
    let text = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (secret, _) = text.split_once(':')?;
    (!secret.is_empty()).then(|| secret.to_string())
}

pub async fn authorize(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    match authorize_inner(&req, &state, &body).await {
        Ok(code) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({"code": code})),
        Err(e) => e.response(),
    }
}

async fn authorize_inner(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<String, NativeError> {
    let Some(google) = state.google.as_ref() else {
        return Err(NativeError(
            StatusCode::BAD_REQUEST,
            "Google is not configured on this server.".into(),
            "invalid_request_error",
        ));
    };
    let b: AuthorizeBody = parse_json(req, body)?;
    let client_id = b
        .client_id
        .ok_or_else(|| NativeError::bad("client_id is required."))?;
    if b.provider.as_deref() != Some("gmail") {
        return Err(NativeError::bad("provider must be \"gmail\"."));
    }
    let email = Email::parse(b.email_address.as_deref().unwrap_or(""))
        .map_err(|e| NativeError::bad(format!("email_address: {e}.")))?;
    let name = parse_user_name(b.name.as_deref().unwrap_or(email.as_str()))
        .map_err(|e| NativeError::bad(format!("name: {e}.")))?;
    let settings = b
        .settings
        .ok_or_else(|| NativeError::bad("settings is required."))?;
    let (Some(gid), Some(gsecret), Some(grefresh)) = (
        settings.google_client_id,
        settings.google_client_secret,
        settings.google_refresh_token,
    ) else {
        return Err(NativeError::bad(
            "settings needs google_client_id, google_client_secret and google_refresh_token.",
        ));
    };
    let scope_text = match b.scopes {
        Some(Scopes::Text(s)) => s,
        Some(Scopes::List(l)) => l.join(" "),
        None => return Err(NativeError::bad("scopes is required.")),
    };
    let scopes = ScopeSet::parse_non_empty(&scope_text)
        .map_err(|e| NativeError::bad(format!("scopes: {e}.")))?;

    let cid = client_id.clone();
    let client = state
        .store
        .run(move |c| clients::find(c, &cid).map_err(AppError::from))
        .await?
        .map(Client::from_row)
        .ok_or_else(|| NativeError::bad("Unknown client_id."))?;
    scopes
        .check_allowed(&client.allowed_scopes)
        .map_err(|e| NativeError::bad(format!("scopes: {e}.")))?;

    // The refresh token is checked by really refreshing it, with the application's client.
    let tokens = match google.refresh_with(&gid, &gsecret, &grefresh).await {
        Ok(t) => t,
        Err(GoogleError::Refused(why)) => {
            return Err(NativeError(
                StatusCode::UNAUTHORIZED,
                format!("Google refused the refresh token ({why})."),
                "api_error",
            ))
        }
        Err(GoogleError::Unreachable) => {
            return Err(NativeError(
                StatusCode::BAD_REQUEST,
                "Google could not be reached to check the refresh token.".into(),
                "api_error",
            ))
        }
        Err(e) => {
            return Err(NativeError(
                StatusCode::BAD_REQUEST,
                format!("Checking the refresh token failed: {e}."),
                "api_error",
            ))
        }
    };
    let granted: Vec<String> = tokens
        .scopes
        .clone()
        .unwrap_or_default()
        .iter()
        .flat_map(|s| parse_google_scopes(s))
        .collect();
    let missing = missing_google_scopes(&scopes, &granted);
    if !missing.is_empty() {
        return Err(NativeError(
            StatusCode::FORBIDDEN,
            format!(
                "You do not have access to the required scopes. You provided a Google token which has the following scopes {}. You would need a token with all of the following scopes: {}",
                python_list(&granted),
                python_list(&missing)
            ),
            "api_error",
        ));
    }
    // Google's identity when the token may read it; else the application's word for the email.
    let identity = google
        .userinfo(tokens.access_token.expose_secret())
        .await
        .ok();
    if let Some(g_email) = identity.as_ref().and_then(|u| u.email.as_deref()) {
        if !g_email.eq_ignore_ascii_case(email.as_str()) {
            return Err(NativeError::bad(
                "email_address does not match the Google account of the refresh token.",
            ));
        }
    }
    let sub = identity
        .map(|u| u.sub)
        .unwrap_or_else(|| format!("email:{}", email.as_str()));

    let now = state.now();
    let seal = state.seal.clone();
    let code = OpaqueToken::generate(AUTH_CODE_PREFIX);
    let digest = code.digest();
    let code_ttl = state.lifetimes.code;
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let reauth = b.reauth_account_id;
    let outcome = state
        .store
        .run(move |conn| -> Result<Result<(), NativeError>, AppError> {
            conn.transaction(|conn| {
                let by_sub = google_store::find_by_sub(conn, &sub)?;
                let user_id = match (&reauth, by_sub) {
                    (Some(rid), _) => {
                        let Some(u) = users::find(conn, rid)? else {
                            return Ok(Err(NativeError::bad(
                                "reauth_account_id names no account.",
                            )));
                        };
                        if u.email != email.as_str() {
                            return Ok(Err(NativeError::bad(
                                "reauth_account_id belongs to another email address.",
                            )));
                        }
                        u.id
                    }
                    (None, Some(link)) => link.user_id,
                    (None, None) => match users::find_by_email(conn, email.as_str())? {
                        Some(u) => u.id,
                        None => crate::ops::create_passwordless_user(
                            conn,
                            &email,
                            &name,
                            now,
                            Some(&client.id),
                            "native",
                            ip.as_deref(),
                        )?,
                    },
                };
                let previous = google_store::find_by_user(conn, &user_id)?;
                let row = Google::seal_row(
                    &seal,
                    &Identity {
                        user_id: &user_id,
                        sub: &sub,
                        email: email.as_str(),
                    },
                    &tokens,
                    &granted,
                    Some((&gid, &gsecret)),
                    previous.as_ref(),
                    now,
                );
                // The application's refresh token is the one that works with its client.
                let mut row = row;
                row.refresh_token_sealed =
                    Some(seal.seal(grefresh.as_bytes(), &format!("google-refresh:{user_id}")));
                google_store::save(conn, &row)?;
                google_store::insert_connect_code(
                    conn,
                    &ConnectCodeRow {
                        digest: digest.clone(),
                        client_id: client.id.clone(),
                        user_id: user_id.clone(),
                        scopes: scopes.to_string(),
                        expires_at: now + code_ttl,
                        used_at: None,
                        created_at: now,
                    },
                )?;
                audit::record(
                    conn,
                    now,
                    Some(&client.id),
                    "native.authorize",
                    Some(&user_id),
                    serde_json::json!({"scopes": scopes.to_string()}),
                    ip.as_deref(),
                )?;
                Ok(Ok(()))
            })
        })
        .await?;
    outcome?;
    Ok(code.reveal().to_string())
}

fn python_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The `/connect/token` answer: the account plus the token.
#[derive(serde::Serialize)]
struct ConnectToken {
    #[serde(flatten)]
    account: AccountObject,
    access_token: String,
    token_type: &'static str,
    scope: String,
}

pub async fn token(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    match token_inner(&req, &state, &body).await {
        Ok(t) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(t),
        Err(e) => e.response(),
    }
}

async fn token_inner(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<ConnectToken, NativeError> {
    if state.google.is_none() {
        return Err(NativeError::bad("Google is not configured on this server."));
    }
    let b: TokenBody = parse_json(req, body)?;
    let client_id = b
        .client_id
        .ok_or_else(|| NativeError::bad("client_id is required."))?;
    let client_secret = b
        .client_secret
        .or_else(|| basic_secret(req))
        .ok_or_else(|| {
            NativeError(
                StatusCode::UNAUTHORIZED,
                "client_secret is required.".into(),
                "invalid_request_error",
            )
        })?;
    let code = b
        .code
        .ok_or_else(|| NativeError::bad("code is required."))?;
    let ctx = IssueContext {
        issuer: state.issuer.clone(),
        lifetimes: state.lifetimes,
        ring: state.signing.ring(),
    };
    let now = state.now();
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let out = state
        .store
        .run(move |conn| -> Result<Result<ConnectToken, NativeError>, AppError> {
            let client = clients::find(conn, &client_id)?.map(Client::from_row);
            let authenticated = client.as_ref().is_some_and(|c| c.secret_digest.as_deref().is_some_and(|d| secret::matches_digest(&client_secret, d)));
            let Some(client) = client.filter(|_| authenticated) else {
                return Ok(Err(NativeError(StatusCode::UNAUTHORIZED, "Client authentication failed.".into(), "invalid_request_error")));
            };
            let digest = secret::digest(&code);
            let Some(row) = google_store::find_connect_code(conn, &digest)? else {
                return Ok(Err(NativeError::bad("Unknown code.")));
            };
            if row.client_id != client.id || row.expires_at <= now || !google_store::consume_connect_code(conn, &digest, now)? {
                return Ok(Err(NativeError::bad("The code is invalid, expired, already used, or belongs to another client.")));
            }
            let Some(user) = users::find(conn, &row.user_id)? else {
                return Ok(Err(NativeError::bad("The account no longer exists.")));
            };
            let scopes = ScopeSet::parse(&row.scopes).unwrap_or_default();
            let issued = issue_access_token(conn, &ctx, now, &client.id, &user.id, &scopes)?;
            let link = google_store::find_by_user(conn, &user.id)?;
            audit::record(conn, now, Some(&user.id), "token.issued", Some(&client.id), serde_json::json!({"grant_type": "native", "grant_id": issued.grant_id, "scopes": scopes.to_string()}), ip.as_deref())?;
            Ok(Ok(ConnectToken {
                account: account_object(&user, link.as_ref(), &scopes),
                access_token: issued.access_token,
                token_type: "bearer",
                scope: scopes.to_string(),
            }))
        })
        .await?;
    out
}

use diesel::Connection as _;
