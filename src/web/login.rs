//! Sign-in and sign-out. Unknown email and wrong password cost the same and read the same.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::crypto::password;
use crate::domain::user::Email;
use crate::error::AppError;
use crate::oauth::params::Params;
use crate::startup::AppState;
use crate::store::{audit, sessions, users};
use crate::web::ratelimit::{too_many_requests, Limit};
use crate::web::session::{self, removal_cookie, signed_cookie, SESSION_COOKIE};
use crate::web::{csrf, pages};

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub csrf_token: String,
    pub return_to: String,
    pub email: String,
    pub error: Option<String>,
    /// "Continue with Google", when Google is configured.
    pub google: Option<String>,
}

const BAD_CREDENTIALS: &str = "Incorrect email or password.";

/// Only local paths may be returned to, never another origin.
pub fn safe_return_to(candidate: Option<&str>) -> String {
    match candidate {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && p.len() <= 4096 =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

/// `/login?return_to=…` for a page that needs a signed-in user.
pub fn login_redirect(return_to: &str) -> HttpResponse {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    HttpResponse::Found()
        .insert_header((header::LOCATION, format!("/login?{q}")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn login_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    return_to: String,
    email: String,
    error: Option<String>,
) -> HttpResponse {
    let c = csrf::issue(req, state);
    let google = state.google.is_some().then(|| {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", &return_to)
            .finish();
        format!("/auth/google?{q}")
    });
    let mut res = pages::render(
        status,
        &LoginPage {
            csrf_token: c.token,
            return_to,
            email,
            error,
            google,
        },
    );
    if let Some(cookie) = c.cookie {
        let _ = res.add_cookie(&cookie);
    }
    res
}

pub async fn login_form(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let params = Params::parse(req.query_string().as_bytes());
    let return_to = safe_return_to(params.get("return_to"));
    login_page(&req, &state, StatusCode::OK, return_to, String::new(), None)
}

pub async fn login_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    if let Err(wait) = state.limits.check(Limit::Login, &req) {
        return Ok(too_many_requests(wait));
    }
    let form = Params::parse(&body);
    csrf::verify(&req, &state, form.get("csrf_token"))?;
    let return_to = safe_return_to(form.get("return_to"));
    let email_input = form.get("email").unwrap_or("").to_string();
    let password = form.get("password").unwrap_or("").to_string();
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    let now = state.now();
    let ttl = state.settings.session_ttl_secs;

    let outcome = state
        .store
        .run(
            move |conn| -> Result<Result<(String, String), ()>, AppError> {
                let email = Email::parse(&email_input).ok();
                let user = match &email {
                    Some(e) => users::find_by_email(conn, e.as_str())?,
                    None => None,
                };
                let verified = match &user {
                    Some(u) if !u.disabled => match &u.password_hash {
                        Some(phc) => password::verify(&password, phc),
                        None => {
                            password::verify_dummy(&password);
                            false
                        }
                    },
                    _ => {
                        password::verify_dummy(&password);
                        false
                    }
                };
                let shown_email: String = email_input.chars().take(254).collect();
                match (user, verified) {
                    (Some(u), true) => {
                        let token = session::start(conn, &u.id, now, ttl)?;
                        audit::record(
                            conn,
                            now,
                            Some(&u.id),
                            "login.success",
                            Some(&u.id),
                            serde_json::json!({"method": "password"}),
                            ip.as_deref(),
                        )?;
                        Ok(Ok((token.reveal().to_string(), u.id)))
                    }
                    (user, _) => {
                        audit::record(
                            conn,
                            now,
                            user.as_ref().map(|u| u.id.as_str()),
                            "login.failure",
                            None,
                            serde_json::json!({"email": shown_email}),
                            ip.as_deref(),
                        )?;
                        Ok(Err(()))
                    }
                }
            },
        )
        .await?;

    match outcome {
        Ok((token, _user_id)) => {
            let cookie = signed_cookie(&state, SESSION_COOKIE, token, Some(ttl));
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, return_to))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .cookie(cookie)
                .finish())
        }
        Err(()) => {
            let email = form.get("email").unwrap_or("").chars().take(254).collect();
            Ok(login_page(
                &req,
                &state,
                StatusCode::UNAUTHORIZED,
                return_to,
                email,
                Some(BAD_CREDENTIALS.into()),
            ))
        }
    }
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = Params::parse(&body);
    csrf::verify(&req, &state, form.get("csrf_token"))?;
    if let Some(signed_in) = session::current(&req, &state).await? {
        let now = state.now();
        let ip = req.peer_addr().map(|a| a.ip().to_string());
        state
            .store
            .run(move |conn| -> Result<(), AppError> {
                sessions::delete(conn, &signed_in.digest)?;
                audit::record(
                    conn,
                    now,
                    Some(&signed_in.user.id),
                    "logout",
                    Some(&signed_in.user.id),
                    serde_json::json!({}),
                    ip.as_deref(),
                )?;
                Ok(())
            })
            .await?;
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .cookie(removal_cookie(&state, SESSION_COOKIE))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(
            safe_return_to(Some("/oauth/authorize?x=1")),
            "/oauth/authorize?x=1"
        );
        assert_eq!(safe_return_to(Some("https://evil.example/")), "/");
        assert_eq!(safe_return_to(Some("//evil.example/")), "/");
        assert_eq!(safe_return_to(Some("/\\evil.example")), "/");
        assert_eq!(safe_return_to(None), "/");
    }
}
