//! "Continue with Google": `GET /auth/google` starts, `GET /auth/google/callback` finishes,
//! then the pending authorization request resumes at the consent page.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::domain::google::{decide_link, google_scopes_for, parse_google_scopes, LinkDecision};
use crate::domain::scope::ScopeSet;
use crate::domain::user::Email;
use crate::error::AppError;
use crate::oauth::params::Params;
use crate::startup::AppState;
use crate::store::audit;
use crate::store::google as google_store;
use crate::store::users;
use crate::upstream::google::{id_token_nonce, Google, GoogleError, Identity};
use crate::web::login::safe_return_to;
use crate::web::pages;
use crate::web::session::{
    self, private_cookie, read_private, removal_cookie, signed_cookie, SESSION_COOKIE,
};

const FLOW_COOKIE: &str = "sg_google";
const FLOW_TTL_SECS: i64 = 600;

/// What the browser carries between start and callback (encrypted cookie).
#[derive(Serialize, Deserialize)]
struct Flow {
    state: String,
    verifier: String,
    nonce: String,
    return_to: String,
    asked: Vec<String>,
}

fn callback_url(state: &AppState) -> String {
    format!("{}/auth/google/callback", state.issuer)
}

/// The Scopegate scopes of the authorization request that `return_to` resumes, if any.
pub fn pending_scopes(return_to: &str) -> ScopeSet {
    return_to
        .strip_prefix("/oauth/authorize?")
        .map(|q| Params::parse(q.as_bytes()))
        .and_then(|p| p.get("scope").and_then(|s| ScopeSet::parse(s).ok()))
        .unwrap_or_default()
}

fn page(status: StatusCode, message: &str) -> HttpResponse {
    pages::error_page(status, message)
}

pub async fn start(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(google) = state.google.as_ref() else {
        return page(
            StatusCode::NOT_FOUND,
            "Sign-in with Google is not configured on this server.",
        );
    };
    let params = Params::parse(req.query_string().as_bytes());
    let return_to = safe_return_to(params.get("return_to"));
    let asked = google_scopes_for(&pending_scopes(&return_to));
    let start = match google.start(&callback_url(&state), &asked) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Google authorization URL");
            return page(
                StatusCode::BAD_GATEWAY,
                "Sign-in with Google is misconfigured on this server.",
            );
        }
    };
    let flow = Flow {
        state: start.state,
        verifier: start.verifier,
        nonce: start.nonce,
        return_to,
        asked,
    };
    let value = serde_json::to_string(&flow).unwrap_or_default();
    HttpResponse::Found()
        .insert_header((header::LOCATION, start.url.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(private_cookie(&state, FLOW_COOKIE, value, FLOW_TTL_SECS))
        .finish()
}

/// The sign-in page to go back to, keeping the pending request.
fn back_to_login(return_to: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    format!("/login?{q}")
}

fn failure(
    state: &AppState,
    status: StatusCode,
    message: &str,
    return_to: Option<&str>,
) -> HttpResponse {
    let text = match return_to {
        Some(_) => {
            format!("{message} You can go back to sign-in and try again, or use your password.")
        }
        None => message.to_string(),
    };
    if let Some(r) = return_to {
        let mut res =
            pages::error_page_with_link(status, &text, &back_to_login(r), "Back to sign-in");
        let _ = res.add_cookie(&removal_cookie(state, FLOW_COOKIE));
        return res;
    }
    let mut res = page(status, &text);
    let _ = res.add_cookie(&removal_cookie(state, FLOW_COOKIE));
    res
}

pub async fn callback(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(google) = state.google.as_ref() else {
        return page(
            StatusCode::NOT_FOUND,
            "Sign-in with Google is not configured on this server.",
        );
    };
    let params = Params::parse(req.query_string().as_bytes());
    let Some(flow) =
        read_private(&req, &state, FLOW_COOKIE).and_then(|v| serde_json::from_str::<Flow>(&v).ok())
    else {
        return failure(
            &state,
            StatusCode::BAD_REQUEST,
            "This sign-in with Google expired or was started in another browser.",
            None,
        );
    };
    let state_ok = params
        .get("state")
        .is_some_and(|s| bool::from(s.as_bytes().ct_eq(flow.state.as_bytes())));
    if !state_ok {
        return failure(
            &state,
            StatusCode::BAD_REQUEST,
            "The answer from Google does not belong to this sign-in (state mismatch).",
            Some(&flow.return_to),
        );
    }
    if let Some(err) = params.get("error") {
        let msg = if err == "access_denied" {
            "You declined to sign in with Google."
        } else {
            "Google could not sign you in."
        };
        return failure(&state, StatusCode::BAD_REQUEST, msg, Some(&flow.return_to));
    }
    let Some(code) = params.get("code") else {
        return failure(
            &state,
            StatusCode::BAD_REQUEST,
            "Google sent no authorization code.",
            Some(&flow.return_to),
        );
    };
    match finish(&req, &state, google, code, &flow).await {
        Ok(res) => res,
        Err(GoogleError::Unreachable) => failure(
            &state,
            StatusCode::BAD_GATEWAY,
            "Google could not be reached.",
            Some(&flow.return_to),
        ),
        Err(GoogleError::Refused(why)) => {
            tracing::warn!(%why, "Google refused the code exchange");
            failure(
                &state,
                StatusCode::BAD_REQUEST,
                "Google did not accept the sign-in; it may have expired.",
                Some(&flow.return_to),
            )
        }
        Err(GoogleError::Protocol(why)) if why.starts_with("link:") => failure(
            &state,
            StatusCode::CONFLICT,
            why.trim_start_matches("link:"),
            Some(&flow.return_to),
        ),
        Err(GoogleError::Protocol(why)) => {
            tracing::warn!(%why, "Google's answer to a sign-in did not check out");
            failure(
                &state,
                StatusCode::BAD_REQUEST,
                "Google's answer could not be verified.",
                Some(&flow.return_to),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "Google sign-in failed");
            failure(
                &state,
                StatusCode::BAD_GATEWAY,
                "Sign-in with Google failed.",
                Some(&flow.return_to),
            )
        }
    }
}

async fn finish(
    req: &HttpRequest,
    state: &AppState,
    google: &Google,
    code: &str,
    flow: &Flow,
) -> Result<HttpResponse, GoogleError> {
    let tokens = google
        .exchange_code(code, &flow.verifier, &callback_url(state))
        .await?;
    if let Some(nonce) = tokens.id_token.as_deref().and_then(id_token_nonce) {
        if !bool::from(nonce.as_bytes().ct_eq(flow.nonce.as_bytes())) {
            return Err(GoogleError::Protocol(
                "the ID token's nonce does not match".into(),
            ));
        }
    }
    let user = google.userinfo(tokens.access_token.expose_secret()).await?;
    let granted = tokens.scopes.clone().unwrap_or_else(|| flow.asked.clone());
    let granted: Vec<String> = granted
        .iter()
        .flat_map(|s| parse_google_scopes(s))
        .collect();
    let email = user
        .email
        .as_deref()
        .and_then(|e| Email::parse(e).ok())
        .ok_or_else(|| {
            GoogleError::Protocol("link:Google did not share a usable email address.".into())
        })?;
    let now = state.now();
    let ttl = state.settings.session_ttl_secs;
    let seal = state.seal.clone();
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let name = user
        .name
        .clone()
        .unwrap_or_else(|| email.as_str().to_string());
    let outcome = state
        .store
        .run(
            move |conn| -> Result<Result<String, &'static str>, AppError> {
                conn.transaction(|conn| {
                    let linked = google_store::find_by_sub(conn, &user.sub)?;
                    let same_email = users::find_by_email(conn, email.as_str())?;
                    let same_email_linked = match &same_email {
                        Some(u) => google_store::find_by_user(conn, &u.id)?.is_some(),
                        None => false,
                    };
                    let decision = decide_link(
                        linked.as_ref().map(|l| l.user_id.as_str()),
                        same_email
                            .as_ref()
                            .map(|u| (u.id.as_str(), same_email_linked)),
                        email.as_str(),
                        user.email_verified.unwrap_or(false),
                        user.hd.as_deref(),
                    );
                    let user_id = match decision {
                        LinkDecision::Linked(id) | LinkDecision::JoinByEmail(id) => id,
                        LinkDecision::Create => crate::ops::create_passwordless_user(
                            conn,
                            &email,
                            &name,
                            now,
                            None,
                            "google",
                            ip.as_deref(),
                        )?,
                        LinkDecision::Refuse(why) => return Ok(Err(why)),
                    };
                    if users::find(conn, &user_id)?.is_some_and(|u| u.disabled) {
                        return Ok(Err("This account is disabled."));
                    }
                    let row = Google::seal_row(
                        &seal,
                        &Identity {
                            user_id: &user_id,
                            sub: &user.sub,
                            email: email.as_str(),
                        },
                        &tokens,
                        &granted,
                        None,
                        linked.as_ref(),
                        now,
                    );
                    google_store::save(conn, &row)?;
                    let token = session::start(conn, &user_id, now, ttl)?;
                    audit::record(
                        conn,
                        now,
                        Some(&user_id),
                        "login.success",
                        Some(&user_id),
                        serde_json::json!({"method": "google", "google_scopes": granted.join(" ")}),
                        ip.as_deref(),
                    )?;
                    Ok(Ok(token.reveal().to_string()))
                })
            },
        )
        .await
        .map_err(|e| GoogleError::Store(format!("{e:?}")))?;
    let session_token = outcome.map_err(|why| GoogleError::Protocol(format!("link:{why}")))?;
    let mut res = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, flow.return_to.clone()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(signed_cookie(
            state,
            SESSION_COOKIE,
            session_token,
            Some(ttl),
        ))
        .finish();
    let _ = res.add_cookie(&removal_cookie(state, FLOW_COOKIE));
    Ok(res)
}

use diesel::Connection as _;
