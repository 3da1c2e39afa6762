//! The signed-in landing page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::error::AppError;
use crate::startup::AppState;
use crate::web::login::login_redirect;
use crate::web::{csrf, pages, session};

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub name: String,
    pub email: String,
    pub is_admin: bool,
    pub csrf_token: String,
}

pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let Some(signed_in) = session::current(&req, &state).await? else {
        return Ok(login_redirect("/"));
    };
    let c = csrf::issue(&req, &state);
    let mut res = pages::render(
        StatusCode::OK,
        &HomePage {
            name: signed_in.user.name,
            email: signed_in.user.email,
            is_admin: signed_in.user.is_admin,
            csrf_token: c.token,
        },
    );
    if let Some(cookie) = c.cookie {
        let _ = res.add_cookie(&cookie);
    }
    Ok(res)
}
