//! Browser-facing pages: sessions, CSRF, login/logout, the account page, the admin UI,
//! security headers.

pub mod account;
pub mod admin;
pub mod csrf;
pub mod home;
pub mod login;
pub mod pages;
pub mod ratelimit;
pub mod session;
pub mod ui;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpResponse};

/// A strict CSP with `frame-ancestors 'none'` and friends, on every response.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/static/style.css", web::get().to(stylesheet))
        .route("/static/copy.js", web::get().to(copy_script))
        .route("/", web::get().to(home::home))
        .route("/login", web::get().to(login::login_form))
        .route("/login", web::post().to(login::login_submit))
        .route("/logout", web::post().to(login::logout))
        // Registered before the resource API's `GET /account`, which gets what this skips.
        .service(
            web::resource("/account")
                .guard(actix_web::guard::fn_guard(account::wants_page))
                .route(web::get().to(account::show)),
        )
        .route(
            "/account/password",
            web::post().to(account::change_password),
        )
        .route("/account/apps/remove", web::post().to(account::remove_app))
        .route(
            "/account/sessions/end-all",
            web::post().to(account::end_all_sessions),
        )
        .configure(admin::routes);
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/style.css"))
}

/// The one script: copy-to-clipboard buttons (progressive enhancement; pages work without it).
async fn copy_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/copy.js"))
}
