//! Admin: grants (token families) — list, filter by user or client, revoke.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::error::AppError;
use crate::startup::AppState;
use crate::store::grants::{self as grant_store, GrantFilter, GrantRow};
use crate::store::{audit, clients as client_store, users as user_store, DbConnection};
use crate::web::admin::{admin_or_return, back_to, done, not_found, require, require_post, Chrome};
use crate::web::ui::{self, Paging};

const PER_PAGE: i64 = 25;

/// A token family as the admin pages show it.
pub struct GrantView {
    pub id: String,
    pub user_id: Option<String>,
    /// The user's email, or a note for client-credentials grants.
    pub user: String,
    pub client_id: String,
    pub client: String,
    pub scopes: String,
    pub created: String,
    pub last_used: String,
    pub revoked: Option<String>,
}

/// Resolves users and clients for a page of grants.
pub fn grant_views(
    conn: &mut DbConnection,
    rows: Vec<GrantRow>,
) -> diesel::QueryResult<Vec<GrantView>> {
    let mut user_ids: Vec<String> = rows.iter().filter_map(|g| g.user_id.clone()).collect();
    user_ids.sort();
    user_ids.dedup();
    let mut client_ids: Vec<String> = rows.iter().map(|g| g.client_id.clone()).collect();
    client_ids.sort();
    client_ids.dedup();
    let emails: HashMap<String, String> = user_store::find_many(conn, &user_ids)?
        .into_iter()
        .map(|u| (u.id, u.email))
        .collect();
    let names: HashMap<String, String> = client_store::find_many(conn, &client_ids)?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    Ok(rows
        .into_iter()
        .map(|g| GrantView {
            user: match &g.user_id {
                Some(u) => emails.get(u).cloned().unwrap_or_else(|| u.clone()),
                None => "(the client itself)".to_string(),
            },
            client: names
                .get(&g.client_id)
                .cloned()
                .unwrap_or_else(|| g.client_id.clone()),
            scopes: g.scopes,
            created: ui::when(g.created_at),
            last_used: ui::when(g.last_used_at),
            revoked: g.revoked_at.map(ui::when),
            id: g.id,
            user_id: g.user_id,
            client_id: g.client_id,
        })
        .collect())
}

#[derive(Template)]
#[template(path = "admin/grants.html")]
struct ListPage {
    chrome: Chrome,
    user: String,
    client: String,
    all: bool,
    grants: Vec<GrantView>,
    paging: Paging,
    /// This page's URL, for the revoke forms to come back to.
    here: String,
    error: Option<String>,
}

/// `GET /admin/grants?user=&client=&status=active|all&page=`; `user` is an email or a user id.
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let admin = admin_or_return!(require(&req, &state).await);
    let query = crate::oauth::params::Params::parse(req.query_string().as_bytes());
    let user = query.get("user").unwrap_or("").trim().to_string();
    let client = query.get("client").unwrap_or("").trim().to_string();
    let all = query.get("status") == Some("all");
    let page = ui::page_number(query.get("page"));
    let (u, c) = (user.clone(), client.clone());
    let (grants, total, error) = state
        .store
        .run(move |conn| -> Result<_, AppError> {
            let user_id = if u.is_empty() {
                None
            } else if u.contains('@') {
                match user_store::find_by_email(conn, &u.to_lowercase())? {
                    Some(found) => Some(found.id),
                    None => {
                        return Ok((Vec::new(), 0, Some(format!("No user has the email {u}."))))
                    }
                }
            } else {
                Some(u)
            };
            let filter = GrantFilter {
                user_id,
                client_id: (!c.is_empty()).then_some(c),
                active_only: !all,
            };
            let (rows, total) =
                grant_store::list_grants(conn, &filter, PER_PAGE, Paging::offset(page, PER_PAGE))?;
            Ok((grant_views(conn, rows)?, total, None))
        })
        .await?;
    let status = if all { "all" } else { "" };
    let filters = ui::query_of(&[("user", &user), ("client", &client), ("status", status)]);
    let base = format!("/admin/grants?{filters}");
    let base = base.trim_end_matches('?');
    let paging = Paging::new(base, page, PER_PAGE, total);
    let here = if paging.page > 1 {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}page={}", paging.page)
    } else {
        base.to_string()
    };
    Ok(admin.render(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &ListPage {
            chrome: admin.chrome("grants", done(&req)),
            user,
            client,
            all,
            grants,
            paging,
            here,
            error,
        },
    ))
}

/// `POST /admin/grants/{id}/revoke`: the family's refresh and access tokens fail at once.
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (admin, form) = admin_or_return!(require_post(&req, &state, &body).await);
    let id = path.into_inner();
    let return_to = match form.get("return_to") {
        Some(p) if p.starts_with("/admin/") && !p.contains("//") && !p.contains('\\') => {
            p.to_string()
        }
        _ => "/admin/grants".to_string(),
    };
    let now = state.now();
    let actor = admin.user.id.clone();
    let ip = ui::ip(&req);
    let found = state
        .store
        .run(move |conn| -> Result<bool, AppError> {
            let Some(grant) = grant_store::find_grant(conn, &id)? else {
                return Ok(false);
            };
            if grant_store::revoke_grant(conn, &id, now)? > 0 {
                audit::record(
                    conn,
                    now,
                    Some(&actor),
                    "grant.revoked",
                    Some(&id),
                    serde_json::json!({"user_id": grant.user_id, "client_id": grant.client_id}),
                    ip.as_deref(),
                )?;
            }
            Ok(true)
        })
        .await?;
    if !found {
        return Ok(not_found("grant"));
    }
    Ok(back_to(&return_to, "grant_revoked"))
}
