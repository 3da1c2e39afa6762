//! `/`: the signed-in user's account page (the default landing page after sign-in).

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::AppError;
use crate::startup::AppState;

pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    crate::web::account::show_at(&req, &state, "/").await
}
