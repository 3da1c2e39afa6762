//! The admin web UI at `/admin`: dashboard, clients, users, grants, signing keys, audit log.
//!
//! Admins only: a signed-out visitor is sent to the login page, anyone else gets a 403. Every
//! state-changing form is a POST with a CSRF token and writes an audit event. An admin's
//! session ends after `admin_idle_timeout_secs` without a request.

pub mod audit_log;
pub mod clients;
pub mod grants;
pub mod keys;
pub mod users;

use std::collections::HashMap;

use actix_web::cookie::Cookie;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use crate::crypto::secret::digest;
use crate::error::AppError;
use crate::startup::AppState;
use crate::store::audit::{self, AuditEvent};
use crate::store::users::{self as user_store, User};
use crate::store::{clients as client_store, grants as grant_store, sessions, DbConnection};
use crate::web::login::login_redirect;
use crate::web::session::{self, removal_cookie, SESSION_COOKIE};
use crate::web::ui::{self, FormData};
use crate::web::{csrf, pages};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(dashboard))
        .route("/admin/", web::get().to(dashboard))
        .route("/admin/clients", web::get().to(clients::list))
        .route("/admin/clients/new", web::get().to(clients::new_form))
        .route("/admin/clients/new", web::post().to(clients::create))
        .route("/admin/clients/{id}", web::get().to(clients::show))
        .route("/admin/clients/{id}", web::post().to(clients::update))
        .route(
            "/admin/clients/{id}/rotate",
            web::post().to(clients::rotate),
        )
        .route(
            "/admin/clients/{id}/delete",
            web::post().to(clients::delete),
        )
        .route("/admin/users", web::get().to(users::list))
        .route("/admin/users/new", web::get().to(users::new_form))
        .route("/admin/users/new", web::post().to(users::create))
        .route("/admin/users/{id}", web::get().to(users::show))
        .route(
            "/admin/users/{id}/status",
            web::post().to(users::set_status),
        )
        .route("/admin/users/{id}/admin", web::post().to(users::set_admin))
        .route(
            "/admin/users/{id}/password",
            web::post().to(users::reset_password),
        )
        .route("/admin/grants", web::get().to(grants::list))
        .route("/admin/grants/{id}/revoke", web::post().to(grants::revoke))
        .route("/admin/keys", web::get().to(keys::list))
        .route("/admin/keys/rotate", web::post().to(keys::rotate))
        .route("/admin/audit", web::get().to(audit_log::list));
}

/// A signed-in, active admin, with the CSRF token for the page's forms.
pub struct Admin {
    pub user: User,
    pub csrf_token: String,
    csrf_cookie: Option<Cookie<'static>>,
}

/// What every admin page shows around its content.
pub struct Chrome {
    pub csrf_token: String,
    pub me: String,
    pub section: &'static str,
    pub notice: Option<&'static str>,
}

impl Admin {
    pub fn chrome(&self, section: &'static str, notice: Option<&'static str>) -> Chrome {
        Chrome {
            csrf_token: self.csrf_token.clone(),
            me: self.user.email.clone(),
            section,
            notice,
        }
    }

    /// Renders an admin page, setting the CSRF cookie if the browser had none.
    pub fn render(&self, status: StatusCode, page: &impl Template) -> HttpResponse {
        let mut res = pages::render(status, page);
        if let Some(cookie) = &self.csrf_cookie {
            let _ = res.add_cookie(cookie);
        }
        res
    }
}

/// The admin of this request, or the response to send instead: the login page (signed out, or
/// idle too long), or 403.
pub async fn require(req: &HttpRequest, state: &AppState) -> Result<Admin, HttpResponse> {
    let return_to = if req.method() == Method::GET {
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/admin");
        crate::web::login::safe_return_to(Some(pq))
    } else {
        "/admin".to_string()
    };
    let Some(token) = session::read_signed(req, state, SESSION_COOKIE) else {
        return Err(login_redirect(&return_to));
    };
    let d = digest(&token);
    let now = state.now();
    let idle = state.settings.admin_idle_timeout_secs;
    let ip = ui::ip(req);
    let timed_out = state
        .store
        .run(move |conn| -> Result<bool, AppError> {
            let Some(row) = sessions::find(conn, &d)? else {
                return Ok(false);
            };
            let Some(user) = user_store::find(conn, &row.user_id)? else {
                return Ok(false);
            };
            if !user.is_admin {
                return Ok(false);
            }
            if now - row.last_seen_at > idle {
                sessions::delete(conn, &d)?;
                audit::record(
                    conn,
                    now,
                    Some(&user.id),
                    "session.timed_out",
                    Some(&user.id),
                    serde_json::json!({"idle_secs": now - row.last_seen_at}),
                    ip.as_deref(),
                )?;
                return Ok(true);
            }
            // Admin pages count every request, not once a minute, so the timeout is exact.
            sessions::touch(conn, &d, now)?;
            Ok(false)
        })
        .await
        .map_err(|e| e.error_response())?;
    if timed_out {
        let mut res = login_redirect(&return_to);
        let _ = res.add_cookie(&removal_cookie(state, SESSION_COOKIE));
        return Err(res);
    }
    let signed_in = match session::current(req, state).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(login_redirect(&return_to)),
        Err(e) => return Err(e.error_response()),
    };
    if !signed_in.user.is_admin {
        return Err(pages::error_page(
            StatusCode::FORBIDDEN,
            "Only administrators can open the admin pages.",
        ));
    }
    let c = csrf::issue(req, state);
    Ok(Admin {
        user: signed_in.user,
        csrf_token: c.token,
        csrf_cookie: c.cookie,
    })
}

/// [`require`] for a POST, then its CSRF token; returns the parsed form.
pub async fn require_post(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<(Admin, FormData), HttpResponse> {
    let admin = require(req, state).await?;
    let form = FormData::parse(body);
    csrf::verify(req, state, form.get("csrf_token")).map_err(|e| e.error_response())?;
    Ok((admin, form))
}

/// `let admin = admin_or_return!(require(&req, &state).await);`
macro_rules! admin_or_return {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(res) => return Ok(res),
        }
    };
}
pub(crate) use admin_or_return;

/// Messages shown after a successful POST (`?done=key`); unknown keys show nothing.
pub fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "client_updated" => "Client saved.",
        "client_deleted" => "Client deleted; its grants were revoked.",
        "user_created" => "User created.",
        "user_disabled" => "User disabled: their sessions ended and their grants were revoked.",
        "user_enabled" => "User enabled.",
        "admin_granted" => "The user is now an administrator.",
        "admin_removed" => "The user is no longer an administrator.",
        "password_reset" => "Password reset; the user's sessions were ended.",
        "grant_revoked" => "Grant revoked; its tokens no longer work.",
        "key_rotated" => {
            "New signing key created. Older keys stay published until their tokens expire."
        }
        _ => return None,
    })
}

/// The `done` query parameter of this request.
pub fn done(req: &HttpRequest) -> Option<&'static str> {
    let q = crate::oauth::params::Params::parse(req.query_string().as_bytes());
    notice(q.get("done"))
}

/// An audit event ready to show: ids resolved to emails and client names.
pub struct EventView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub ip: String,
}

/// Resolves the user and client ids that events name.
pub fn describe_events(
    conn: &mut DbConnection,
    events: Vec<AuditEvent>,
) -> diesel::QueryResult<Vec<EventView>> {
    let mut user_ids = Vec::new();
    let mut client_ids = Vec::new();
    for e in &events {
        for id in [e.actor.as_deref(), e.target.as_deref()]
            .into_iter()
            .flatten()
        {
            if id.starts_with("usr_") {
                user_ids.push(id.to_string());
            } else if id.starts_with(crate::domain::client::ClientId::PREFIX) {
                client_ids.push(id.to_string());
            }
        }
    }
    user_ids.sort();
    user_ids.dedup();
    client_ids.sort();
    client_ids.dedup();
    let mut names: HashMap<String, String> = HashMap::new();
    for u in user_store::find_many(conn, &user_ids)? {
        names.insert(u.id, u.email);
    }
    for c in client_store::find_many(conn, &client_ids)? {
        names.insert(c.id, c.name);
    }
    let label = |id: Option<&str>| match id {
        None => String::new(),
        Some(id) => match names.get(id) {
            Some(name) => name.clone(),
            None => id.to_string(),
        },
    };
    Ok(events
        .into_iter()
        .map(|e| EventView {
            at: ui::when(e.at),
            actor: label(e.actor.as_deref()),
            target: label(e.target.as_deref()),
            detail: if e.detail == "{}" {
                String::new()
            } else {
                e.detail.chars().take(300).collect()
            },
            action: e.action,
            ip: e.ip.unwrap_or_default(),
        })
        .collect())
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    users: i64,
    clients: i64,
    active_grants: i64,
    tokens_today: i64,
    /// Today's date (UTC), for the link to today's token events.
    today: String,
    events: Vec<EventView>,
}

/// `GET /admin`: counts and the latest events.
pub async fn dashboard(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_or_return!(require(&req, &state).await);
    let today = ui::start_of_day(state.now());
    let (users, clients, active_grants, tokens_today, events) = state
        .store
        .run(move |conn| -> Result<_, AppError> {
            let events = audit::recent(conn, 10)?;
            Ok((
                user_store::count(conn)?,
                client_store::count(conn)?,
                grant_store::count_active(conn)?,
                audit::count_actions_since(conn, &["token.issued", "token.refreshed"], today)?,
                describe_events(conn, events)?,
            ))
        })
        .await?;
    Ok(admin.render(
        StatusCode::OK,
        &DashboardPage {
            chrome: admin.chrome("dashboard", done(&req)),
            users,
            clients,
            active_grants,
            tokens_today,
            today: chrono::DateTime::from_timestamp(today, 0)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            events,
        },
    ))
}

/// An admin form shown again with an error: 400 for bad input, 409 for a conflict.
pub fn input_status(e: &AppError) -> Option<StatusCode> {
    match e {
        AppError::BadRequest(_) => Some(StatusCode::BAD_REQUEST),
        AppError::Conflict(_) => Some(StatusCode::CONFLICT),
        _ => None,
    }
}

/// `Location` after a POST, with `done=key` added.
pub fn back_to(path: &str, done: &str) -> HttpResponse {
    let sep = if path.contains('?') { '&' } else { '?' };
    ui::see_other(&format!("{path}{sep}done={done}"))
}

/// The 404 page for an id that names nothing.
pub fn not_found(what: &str) -> HttpResponse {
    pages::error_page(StatusCode::NOT_FOUND, &format!("No such {what}."))
}
