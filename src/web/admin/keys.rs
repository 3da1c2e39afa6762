//! Admin: signing keys — list, rotate. Retired keys stay in the JWKS until every token they
//! signed has expired.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::error::AppError;
use crate::startup::AppState;
use crate::store::audit;
use crate::web::admin::{admin_or_return, back_to, done, require, require_post, Chrome};
use crate::web::ui;

pub struct KeyView {
    pub kid: String,
    pub algorithm: String,
    pub created: String,
    pub retired: Option<String>,
    pub published: bool,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: Vec<KeyView>,
}

/// `GET /admin/keys`
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let admin = admin_or_return!(require(&req, &state).await);
    let now = state.now();
    let s = state.clone();
    let keys = state
        .store
        .run(move |conn| s.signing.list(conn, now))
        .await?;
    Ok(admin.render(
        StatusCode::OK,
        &KeysPage {
            chrome: admin.chrome("keys", done(&req)),
            keys: keys
                .into_iter()
                .map(|k| KeyView {
                    kid: k.kid,
                    algorithm: k.algorithm,
                    created: ui::when(k.created_at),
                    retired: k.retired_at.map(ui::when),
                    published: k.published,
                })
                .collect(),
        },
    ))
}

/// `POST /admin/keys/rotate`: a new signing key; this instance signs with it at once, others
/// within the key reload interval.
pub async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (admin, _form) = admin_or_return!(require_post(&req, &state, &body).await);
    let now = state.now();
    let actor = admin.user.id.clone();
    let ip = ui::ip(&req);
    let s = state.clone();
    state
        .store
        .run(move |conn| -> Result<(), AppError> {
            let kid = s.signing.rotate(conn, now)?;
            audit::record(
                conn,
                now,
                Some(&actor),
                "key.rotated",
                Some(&kid),
                serde_json::json!({}),
                ip.as_deref(),
            )?;
            Ok(())
        })
        .await?;
    Ok(back_to("/admin/keys", "key_rotated"))
}
