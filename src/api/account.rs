//! `GET /account`: the account behind the token, in Nylas v2's shape.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::api::guard::{nylas_body, Authorized};
use crate::domain::scope::ScopeSet;
use crate::startup::AppState;
use crate::store::google::{self as google_store, GoogleAccountRow};
use crate::store::users::{self, User};

/// The Nylas v2 account object, plus the token's granted scopes.
#[derive(Debug, Serialize)]
pub struct AccountObject {
    pub id: String,
    pub object: &'static str,
    pub account_id: String,
    pub name: String,
    pub email_address: String,
    pub provider: &'static str,
    pub organization_unit: &'static str,
    pub sync_state: &'static str,
    pub linked_at: i64,
    pub granted_scopes: Vec<&'static str>,
}

pub fn not_found(message: &str) -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("application/json")
        .body(nylas_body(message, "invalid_request_error"))
}

/// The account object of `user`, Google-shaped when a Google account is linked.
pub fn account_object(
    user: &User,
    google: Option<&GoogleAccountRow>,
    scopes: &ScopeSet,
) -> AccountObject {
    AccountObject {
        id: user.id.clone(),
        object: "account",
        account_id: user.id.clone(),
        name: user.name.clone(),
        email_address: google
            .map(|g| g.email.clone())
            .unwrap_or_else(|| user.email.clone()),
        provider: if google.is_some() {
            "gmail"
        } else {
            "scopegate"
        },
        organization_unit: if google.is_some() { "label" } else { "folder" },
        sync_state: match google {
            Some(g) if g.needs_reauth => "invalid",
            _ => "running",
        },
        linked_at: google.map(|g| g.created_at).unwrap_or(user.created_at),
        granted_scopes: scopes.names(),
    }
}

pub async fn get_account(auth: Authorized, state: web::Data<AppState>) -> HttpResponse {
    let token = auth.0;
    let sub = token.claims.sub.clone();
    let found =
        state
            .store
            .run(
                move |conn| -> Result<
                    Option<(User, Option<GoogleAccountRow>)>,
                    crate::error::AppError,
                > {
                    let Some(user) = users::find(conn, &sub)? else {
                        return Ok(None);
                    };
                    let link = google_store::find_by_user(conn, &user.id)?;
                    Ok(Some((user, link)))
                },
            )
            .await;
    match found {
        Ok(Some((user, link))) => {
            HttpResponse::Ok().json(account_object(&user, link.as_ref(), &token.scopes))
        }
        Ok(None) => not_found("This token is not bound to an account."),
        Err(e) => {
            tracing::error!(error = ?e, "account lookup failed");
            HttpResponse::ServiceUnavailable()
                .content_type("application/json")
                .body(nylas_body(
                    "The account could not be loaded right now.",
                    "api_error",
                ))
        }
    }
}
