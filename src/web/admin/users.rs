//! Admin: users — list and search (paged), create, disable / enable, grant or remove admin,
//! reset the password, and the user's grants.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::crypto::password;
use crate::domain::user::check_new_password;
use crate::error::AppError;
use crate::ops;
use crate::startup::AppState;
use crate::store::grants::{self as grant_store, GrantFilter};
use crate::store::users::{self as user_store, User};
use crate::store::{audit, sessions};
use crate::web::admin::grants::{grant_views, GrantView};
use crate::web::admin::{
    admin_or_return, back_to, done, input_status, not_found, require, require_post, Admin, Chrome,
};
use crate::web::ui::{self, Paging};

const PER_PAGE: i64 = 25;

pub struct UserListItem {
    pub id: String,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created: String,
}

impl From<User> for UserListItem {
    fn from(u: User) -> Self {
        UserListItem {
            created: ui::when(u.created_at),
            id: u.id,
            email: u.email,
            name: u.name,
            is_admin: u.is_admin,
            disabled: u.disabled,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage {
    chrome: Chrome,
    q: String,
    users: Vec<UserListItem>,
    paging: Paging,
}

/// `GET /admin/users?q=&page=`
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let admin = admin_or_return!(require(&req, &state).await);
    let ui::ListQuery { q, page } = ui::ListQuery::parse(&req);
    let needle = (!q.is_empty()).then(|| q.clone());
    let (rows, total) = state
        .store
        .run(move |conn| {
            user_store::search(
                conn,
                needle.as_deref(),
                PER_PAGE,
                Paging::offset(page, PER_PAGE),
            )
            .map_err(AppError::from)
        })
        .await?;
    let base = format!("/admin/users?{}", ui::query_of(&[("q", &q)]));
    Ok(admin.render(
        StatusCode::OK,
        &ListPage {
            chrome: admin.chrome("users", done(&req)),
            paging: Paging::new(base.trim_end_matches('?'), page, PER_PAGE, total),
            q,
            users: rows.into_iter().map(UserListItem::from).collect(),
        },
    ))
}

#[derive(Template)]
#[template(path = "admin/user_new.html")]
struct NewPage {
    chrome: Chrome,
    email: String,
    name: String,
    is_admin: bool,
    error: Option<String>,
}

/// `GET /admin/users/new`
pub async fn new_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_or_return!(require(&req, &state).await);
    Ok(admin.render(
        StatusCode::OK,
        &NewPage {
            chrome: admin.chrome("users", None),
            email: String::new(),
            name: String::new(),
            is_admin: false,
            error: None,
        },
    ))
}

/// `POST /admin/users/new`
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (admin, form) = admin_or_return!(require_post(&req, &state, &body).await);
    let email = form.text("email");
    let name = form.text("name");
    let password_text = form.text("password");
    let is_admin = form.checked("is_admin");
    let now = state.now();
    let actor = admin.user.id.clone();
    let (e2, n2) = (email.clone(), name.clone());
    // create_user hashes with argon2: on the blocking pool, inside `run`.
    let created = state
        .store
        .run(move |conn| {
            ops::create_user(conn, &e2, &n2, &password_text, is_admin, now, Some(&actor))
        })
        .await;
    match created {
        Ok(id) => Ok(back_to(&format!("/admin/users/{id}"), "user_created")),
        Err(e) => {
            let Some(status) = input_status(&e) else {
                return Err(e);
            };
            Ok(admin.render(
                status,
                &NewPage {
                    chrome: admin.chrome("users", None),
                    email,
                    name,
                    is_admin,
                    error: Some(capitalise(&e.public_message())),
                },
            ))
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    chrome: Chrome,
    user: UserListItem,
    is_me: bool,
    /// The linked Google account, if any.
    google: Option<String>,
    sessions: i64,
    grants: Vec<GrantView>,
    /// This page, for the revoke forms to come back to.
    here: String,
    error: Option<String>,
}

async fn user_page(
    admin: &Admin,
    state: &AppState,
    id: String,
    notice: Option<&'static str>,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let now = state.now();
    let found = state
        .store
        .run(move |conn| -> Result<_, AppError> {
            let Some(user) = user_store::find(conn, &id)? else {
                return Ok(None);
            };
            let sessions = sessions::count_for_user(conn, &id, now)?;
            let google = crate::store::google::find_by_user(conn, &id)?
                .map(crate::web::account::google_label);
            let (rows, _) = grant_store::list_grants(
                conn,
                &GrantFilter {
                    user_id: Some(id.clone()),
                    ..Default::default()
                },
                200,
                0,
            )?;
            let grants = grant_views(conn, rows)?;
            Ok(Some((user, sessions, google, grants)))
        })
        .await?;
    let Some((user, sessions, google, grants)) = found else {
        return Ok(not_found("user"));
    };
    Ok(admin.render(
        status,
        &UserPage {
            chrome: admin.chrome("users", notice),
            is_me: user.id == admin.user.id,
            here: format!("/admin/users/{}", user.id),
            user: user.into(),
            google,
            sessions,
            grants,
            error,
        },
    ))
}

/// `GET /admin/users/{id}`
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_or_return!(require(&req, &state).await);
    user_page(
        &admin,
        &state,
        path.into_inner(),
        done(&req),
        StatusCode::OK,
        None,
    )
    .await
}

/// `POST /admin/users/{id}/status` with `status=disabled|enabled`. Disabling ends the user's
/// sessions and revokes all their grants.
pub async fn set_status(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (admin, form) = admin_or_return!(require_post(&req, &state, &body).await);
    let id = path.into_inner();
    let disable = match form.get("status") {
        Some("disabled") => true,
        Some("enabled") => false,
        _ => return Err(AppError::BadRequest("Choose enable or disable.".into())),
    };
    if disable && id == admin.user.id {
        return user_page(
            &admin,
            &state,
            id,
            None,
            StatusCode::BAD_REQUEST,
            Some("You cannot disable your own account.".into()),
        )
        .await;
    }
    let now = state.now();
    let actor = admin.user.id.clone();
    let ip = ui::ip(&req);
    let target = id.clone();
    let found = state
        .store
        .run(move |conn| -> Result<bool, AppError> {
            use diesel::Connection as _;
            let found = conn.transaction(|c| {
                if user_store::set_disabled(c, &target, disable)? == 0 {
                    return Ok(false);
                }
                let detail = if disable {
                    let ended = sessions::delete_for_user(c, &target)?;
                    let revoked = grant_store::revoke_all_for_user(c, &target, now)?;
                    serde_json::json!({"sessions_ended": ended, "grants_revoked": revoked})
                } else {
                    serde_json::json!({})
                };
                let action = if disable {
                    "user.disabled"
                } else {
                    "user.enabled"
                };
                audit::record(
                    c,
                    now,
                    Some(&actor),
                    action,
                    Some(&target),
                    detail,
                    ip.as_deref(),
                )?;
                diesel::QueryResult::Ok(true)
            })?;
            Ok(found)
        })
        .await?;
    if !found {
        return Ok(not_found("user"));
    }
    let key = if disable {
        "user_disabled"
    } else {
        "user_enabled"
    };
    Ok(back_to(&format!("/admin/users/{id}"), key))
}

/// `POST /admin/users/{id}/admin` with `admin=grant|remove`.
pub async fn set_admin(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (admin, form) = admin_or_return!(require_post(&req, &state, &body).await);
    let id = path.into_inner();
    let grant = match form.get("admin") {
        Some("grant") => true,
        Some("remove") => false,
        _ => return Err(AppError::BadRequest("Choose grant or remove.".into())),
    };
    if !grant && id == admin.user.id {
        return user_page(
            &admin,
            &state,
            id,
            None,
            StatusCode::BAD_REQUEST,
            Some("You cannot remove your own administrator rights.".into()),
        )
        .await;
    }
    let now = state.now();
    let actor = admin.user.id.clone();
    let ip = ui::ip(&req);
    let target = id.clone();
    let found = state
        .store
        .run(move |conn| -> Result<bool, AppError> {
            if user_store::set_admin(conn, &target, grant)? == 0 {
                return Ok(false);
            }
            let action = if grant {
                "user.admin_granted"
            } else {
                "user.admin_removed"
            };
            audit::record(
                conn,
                now,
                Some(&actor),
                action,
                Some(&target),
                serde_json::json!({}),
                ip.as_deref(),
            )?;
            Ok(true)
        })
        .await?;
    if !found {
        return Ok(not_found("user"));
    }
    let key = if grant {
        "admin_granted"
    } else {
        "admin_removed"
    };
    Ok(back_to(&format!("/admin/users/{id}"), key))
}

/// `POST /admin/users/{id}/password`: sets a new password and ends the user's sessions.
pub async fn reset_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (admin, form) = admin_or_return!(require_post(&req, &state, &body).await);
    let id = path.into_inner();
    let new = form.text("new_password");
    if let Err(e) = check_new_password(&new) {
        return user_page(
            &admin,
            &state,
            id,
            None,
            StatusCode::BAD_REQUEST,
            Some(capitalise(&e.to_string())),
        )
        .await;
    }
    let now = state.now();
    let actor = admin.user.id.clone();
    let ip = ui::ip(&req);
    let target = id.clone();
    let found = state
        .store
        .run(move |conn| -> Result<bool, AppError> {
            if user_store::find(conn, &target)?.is_none() {
                return Ok(false);
            }
            let phc = password::hash(&new).map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
            user_store::set_password_hash(conn, &target, &phc)?;
            let ended = sessions::delete_for_user(conn, &target)?;
            audit::record(
                conn,
                now,
                Some(&actor),
                "user.password_reset",
                Some(&target),
                serde_json::json!({"sessions_ended": ended}),
                ip.as_deref(),
            )?;
            Ok(true)
        })
        .await?;
    if !found {
        return Ok(not_found("user"));
    }
    Ok(back_to(&format!("/admin/users/{id}"), "password_reset"))
}
