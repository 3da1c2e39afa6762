//! The signed-in user's own page: profile, password, connected apps, sessions.
//!
//! `GET /account` is shared with the resource API (`src/api/account.rs`): a request with an
//! `Authorization` header is an API call; one without that either asks for HTML or carries the
//! session cookie is a person, and gets this page.

use actix_web::guard::GuardContext;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::crypto::password;
use crate::domain::scope::ScopeSet;
use crate::domain::user::check_new_password;
use crate::error::AppError;
use crate::startup::AppState;
use crate::store::google::{self as google_store, GoogleAccountRow};
use crate::store::{audit, grants, sessions, users};
use crate::web::login::login_redirect;
use crate::web::session::{self, removal_cookie, SignedIn, SESSION_COOKIE};
use crate::web::ui::{self, FormData};
use crate::web::{csrf, pages};

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub csrf_token: String,
    pub section: &'static str,
    pub is_admin: bool,
    pub name: String,
    pub email: String,
    /// The linked Google account, if any.
    pub google: Option<String>,
    pub apps: Vec<AppView>,
    /// Accounts made by signing in with Google may have no password to change.
    pub has_password: bool,
    pub notice: Option<&'static str>,
    pub password_error: Option<String>,
}

/// One connected application as the user sees it.
pub struct AppView {
    pub client_id: String,
    pub name: String,
    pub granted: String,
    pub last_used: String,
    pub scopes: Vec<ScopeView>,
}

pub struct ScopeView {
    pub name: String,
    pub description: String,
    pub sensitive: bool,
}

/// Scopes in plain language, catalogue order; a name the catalogue no longer has is shown as is.
pub fn scope_views(scopes: &str) -> Vec<ScopeView> {
    match ScopeSet::parse(scopes) {
        Ok(set) => set
            .iter()
            .map(|s| ScopeView {
                name: s.name().to_string(),
                description: s.info().description.to_string(),
                sensitive: s.info().sensitive,
            })
            .collect(),
        Err(_) => scopes
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(|s| ScopeView {
                name: s.to_string(),
                description: s.to_string(),
                sensitive: false,
            })
            .collect(),
    }
}

/// Route guard for the HTML page at `GET /account` (see the module doc).
pub fn wants_page(ctx: &GuardContext<'_>) -> bool {
    let headers = ctx.head().headers();
    if headers.contains_key(header::AUTHORIZATION) {
        return false;
    }
    let accepts_html = headers
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    let has_session = headers
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(';')
                .any(|c| c.trim_start().starts_with(&format!("{SESSION_COOKIE}=")))
        });
    accepts_html || has_session
}

/// How a linked Google account reads on a page.
pub fn google_label(row: GoogleAccountRow) -> String {
    if row.needs_reauth {
        format!("{} (needs signing in with Google again)", row.email)
    } else {
        row.email
    }
}

fn notice(key: Option<&str>) -> Option<&'static str> {
    match key? {
        "access_removed" => Some("Access removed. The application's tokens no longer work."),
        "password_changed" => Some("Password changed. Your other sessions were signed out."),
        _ => None,
    }
}

async fn load_page(
    state: &AppState,
    signed_in: &SignedIn,
    csrf_token: String,
    notice: Option<&'static str>,
    password_error: Option<String>,
) -> Result<AccountPage, AppError> {
    let user_id = signed_in.user.id.clone();
    let (apps, google) = state
        .store
        .run(move |conn| -> Result<_, AppError> {
            let apps = grants::connected_apps(conn, &user_id)?;
            let google = google_store::find_by_user(conn, &user_id)?.map(google_label);
            Ok((apps, google))
        })
        .await?;
    Ok(AccountPage {
        csrf_token,
        section: "account",
        is_admin: signed_in.user.is_admin,
        name: signed_in.user.name.clone(),
        email: signed_in.user.email.clone(),
        google,
        has_password: signed_in.user.password_hash.is_some(),
        apps: apps
            .into_iter()
            .map(|a| AppView {
                scopes: scope_views(&a.scopes),
                granted: ui::when(a.granted_at),
                last_used: ui::when_opt(a.last_used_at, "never"),
                client_id: a.client_id,
                name: a.client_name,
            })
            .collect(),
        notice,
        password_error,
    })
}

/// `GET /account` (and `/`): the page, or the login page first.
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    show_at(&req, &state, "/account").await
}

pub async fn show_at(
    req: &HttpRequest,
    state: &AppState,
    return_to: &str,
) -> Result<HttpResponse, AppError> {
    let Some(signed_in) = session::current(req, state).await? else {
        return Ok(login_redirect(return_to));
    };
    let query = crate::oauth::params::Params::parse(req.query_string().as_bytes());
    let c = csrf::issue(req, state);
    let page = load_page(
        state,
        &signed_in,
        c.token.clone(),
        notice(query.get("done")),
        None,
    )
    .await?;
    Ok(ui::with_csrf(pages::render(StatusCode::OK, &page), c))
}

/// Checks the CSRF token, then the session; `Err` is the response to send instead.
async fn signed_in_post(
    req: &HttpRequest,
    state: &AppState,
    form: &FormData,
) -> Result<Result<SignedIn, HttpResponse>, AppError> {
    csrf::verify(req, state, form.get("csrf_token"))?;
    match session::current(req, state).await? {
        Some(s) => Ok(Ok(s)),
        None => Ok(Err(login_redirect("/account"))),
    }
}

/// `POST /account/password`: the current password is required; other sessions end.
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = FormData::parse(&body);
    let signed_in = match signed_in_post(&req, &state, &form).await? {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let current = form.text("current_password");
    let new = form.text("new_password");
    let confirm = form.text("confirm_password");
    let user_id = signed_in.user.id.clone();
    let keep = signed_in.digest.clone();
    let now = state.now();
    let ip = ui::ip(&req);
    let outcome = state
        .store
        .run(move |conn| -> Result<Result<(), String>, AppError> {
            let Some(user) = users::find(conn, &user_id)? else {
                return Err(AppError::NotFound);
            };
            // argon2 runs here, on the blocking pool.
            let verified = match &user.password_hash {
                Some(phc) => password::verify(&current, phc),
                None => {
                    password::verify_dummy(&current);
                    false
                }
            };
            if !verified {
                return Ok(Err("Your current password is not correct.".into()));
            }
            if let Err(e) = check_new_password(&new) {
                return Ok(Err(format!("The new {e}.")));
            }
            if new != confirm {
                return Ok(Err("The new passwords do not match.".into()));
            }
            let phc = password::hash(&new).map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
            users::set_password_hash(conn, &user.id, &phc)?;
            let ended = sessions::delete_for_user_except(conn, &user.id, &keep)?;
            audit::record(
                conn,
                now,
                Some(&user.id),
                "password.changed",
                Some(&user.id),
                serde_json::json!({"other_sessions_ended": ended}),
                ip.as_deref(),
            )?;
            Ok(Ok(()))
        })
        .await?;
    match outcome {
        Ok(()) => Ok(ui::see_other("/account?done=password_changed")),
        Err(message) => {
            let c = csrf::issue(&req, &state);
            let page = load_page(&state, &signed_in, c.token.clone(), None, Some(message)).await?;
            Ok(ui::with_csrf(
                pages::render(StatusCode::BAD_REQUEST, &page),
                c,
            ))
        }
    }
}

/// `POST /account/apps/remove`: forgets the consent and revokes every token family of the
/// application for this user; its refresh and access tokens fail at once.
pub async fn remove_app(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = FormData::parse(&body);
    let signed_in = match signed_in_post(&req, &state, &form).await? {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let Some(client_id) = form.get("client_id").map(str::to_string) else {
        return Err(AppError::BadRequest(
            "Choose an application to remove.".into(),
        ));
    };
    let user_id = signed_in.user.id.clone();
    let now = state.now();
    let ip = ui::ip(&req);
    state
        .store
        .run(move |conn| -> Result<(), AppError> {
            use diesel::Connection as _;
            conn.transaction(|c| {
                let consents = grants::delete_consent(c, &user_id, &client_id)?;
                let revoked = grants::revoke_grants_of(c, &user_id, &client_id, now)?;
                if consents + revoked > 0 {
                    audit::record(
                        c,
                        now,
                        Some(&user_id),
                        "consent.revoked",
                        Some(&client_id),
                        serde_json::json!({"grants_revoked": revoked, "by": "user"}),
                        ip.as_deref(),
                    )?;
                }
                diesel::QueryResult::Ok(())
            })?;
            Ok(())
        })
        .await?;
    Ok(ui::see_other("/account?done=access_removed"))
}

/// `POST /account/sessions/end-all`: signs the user out on every device.
pub async fn end_all_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form = FormData::parse(&body);
    let signed_in = match signed_in_post(&req, &state, &form).await? {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let user_id = signed_in.user.id.clone();
    let now = state.now();
    let ip = ui::ip(&req);
    state
        .store
        .run(move |conn| -> Result<(), AppError> {
            let ended = sessions::delete_for_user(conn, &user_id)?;
            audit::record(
                conn,
                now,
                Some(&user_id),
                "session.ended_all",
                Some(&user_id),
                serde_json::json!({"sessions_ended": ended}),
                ip.as_deref(),
            )?;
            Ok(())
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(removal_cookie(&state, SESSION_COOKIE))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_in_plain_language_in_catalogue_order() {
        let views = scope_views("email.send openid email.read_only");
        let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["email.read_only", "email.send", "openid"]);
        assert!(views[1].sensitive);
        assert!(views[0].description.starts_with("Read your messages"));
        assert_eq!(scope_views("retired.scope")[0].description, "retired.scope");
    }
}
