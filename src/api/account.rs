//! `GET /account`: the account behind the token, in Nylas v2's shape.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::api::guard::{nylas_body, Authorized};
use crate::startup::AppState;
use crate::store::users;

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

pub async fn get_account(auth: Authorized, state: web::Data<AppState>) -> HttpResponse {
    let token = auth.0;
    let sub = token.claims.sub.clone();
    let found = state
        .store
        .run(move |conn| users::find(conn, &sub).map_err(crate::error::AppError::from))
        .await;
    match found {
        Ok(Some(user)) => HttpResponse::Ok().json(AccountObject {
            object: "account",
            account_id: user.id.clone(),
            id: user.id,
            name: user.name,
            email_address: user.email,
            provider: "scopegate",
            organization_unit: "folder",
            sync_state: "running",
            linked_at: user.created_at,
            granted_scopes: token.scopes.names(),
        }),
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
