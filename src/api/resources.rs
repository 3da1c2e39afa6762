//! Mail, calendar and contacts operations, served by the account's connected provider.
//! The scope guard has already run: a missing scope is always a 403 before anything here.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::api::account::not_found;
use crate::api::guard::{nylas_body, Authorized};
use crate::domain::api::ApiRoute;
use crate::startup::AppState;
use crate::store::google as google_store;

pub async fn dispatch(
    route: &'static ApiRoute,
    auth: Authorized,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let user_id = auth.0.claims.sub.clone();
    let uid = user_id.clone();
    let link = state
        .store
        .run(move |c| google_store::find_by_user(c, &uid).map_err(crate::error::AppError::from))
        .await;
    match link {
        Ok(Some(_)) => match state.google.as_ref() {
            Some(google) => crate::upstream::api::serve(route, &req, &body, &state, google, &user_id).await,
            None => HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
                .content_type("application/json")
                .body(nylas_body("The Google provider is not configured on this server.", "api_error")),
        },
        Ok(None) => not_found("Mail, calendars and contacts come from a connected provider, and no provider account is connected to this account."),
        Err(e) => {
            tracing::error!(error = ?e, "provider lookup failed");
            HttpResponse::ServiceUnavailable().content_type("application/json").body(nylas_body("The account could not be loaded right now.", "api_error"))
        }
    }
}
