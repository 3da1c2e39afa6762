//! Mail, calendar and contacts operations, served by the account's connected provider.
//! The scope guard has already run: a missing scope is always a 403 before anything here.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::api::account::not_found;
use crate::api::guard::Authorized;
use crate::domain::api::Operation;
use crate::startup::AppState;

pub async fn dispatch(
    operation: Operation,
    auth: Authorized,
    _req: HttpRequest,
    _state: web::Data<AppState>,
) -> HttpResponse {
    tracing::debug!(?operation, sub = %auth.0.claims.sub, "resource call");
    // Password accounts hold no mail, calendars or contacts of their own; a provider
    // (Google) connected to the account serves these operations.
    not_found("Mail, calendars and contacts come from a connected provider, and no provider account is connected to this account.")
}
