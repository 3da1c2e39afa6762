//! Admin: the audit log, filtered by actor, action and date, paged.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::error::AppError;
use crate::startup::AppState;
use crate::store::audit::{self, AuditFilter};
use crate::store::users as user_store;
use crate::web::admin::{admin_or_return, describe_events, require, Chrome, EventView};
use crate::web::ui::{self, Paging};

const PER_PAGE: i64 = 50;

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Chrome,
    actor: String,
    action: String,
    from: String,
    to: String,
    events: Vec<EventView>,
    paging: Paging,
    error: Option<String>,
}

/// `GET /admin/audit?actor=&action=&from=YYYY-MM-DD&to=YYYY-MM-DD&page=`. `actor` is an email,
/// a user id or another actor name (`cli`); `action` an exact action or a family (`login`).
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let admin = admin_or_return!(require(&req, &state).await);
    let query = crate::oauth::params::Params::parse(req.query_string().as_bytes());
    let field = |k: &str| query.get(k).unwrap_or("").trim().to_string();
    let (actor, action, from, to) = (field("actor"), field("action"), field("from"), field("to"));
    let page = ui::page_number(query.get("page"));

    let mut error = None;
    let mut date = |label: &str, value: &str| -> Option<i64> {
        if value.is_empty() {
            return None;
        }
        let parsed = ui::parse_date(value);
        if parsed.is_none() {
            error = Some(format!("{label}: {value:?} is not a date like 2026-12-31."));
        }
        parsed
    };
    let from_ts = date("From", &from);
    // "To" includes the whole day.
    let until_ts = date("To", &to).map(|t| t + 86_400);

    let (a, act) = (actor.clone(), action.clone());
    let (events, total) = if error.is_some() {
        (Vec::new(), 0)
    } else {
        state
            .store
            .run(move |conn| -> Result<_, AppError> {
                let actor = if a.contains('@') {
                    match user_store::find_by_email(conn, &a.to_lowercase())? {
                        Some(u) => Some(u.id),
                        None => return Ok((Vec::new(), 0)),
                    }
                } else {
                    (!a.is_empty()).then_some(a)
                };
                let filter = AuditFilter {
                    actor,
                    action: (!act.is_empty()).then_some(act),
                    from: from_ts,
                    until: until_ts,
                };
                let (rows, total) =
                    audit::search(conn, &filter, PER_PAGE, Paging::offset(page, PER_PAGE))?;
                Ok((describe_events(conn, rows)?, total))
            })
            .await?
    };
    let filters = ui::query_of(&[
        ("actor", &actor),
        ("action", &action),
        ("from", &from),
        ("to", &to),
    ]);
    let base = format!("/admin/audit?{filters}");
    Ok(admin.render(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        &AuditPage {
            chrome: admin.chrome("audit", None),
            paging: Paging::new(base.trim_end_matches('?'), page, PER_PAGE, total),
            actor,
            action,
            from,
            to,
            events,
            error,
        },
    ))
}
