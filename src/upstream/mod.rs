//! Upstream identity and data providers: Google ("Continue with Google", native
//! authentication, and the Google-backed resource API).

pub mod api;
pub mod google;
pub mod login;
pub mod native;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/google", web::get().to(login::start))
        .route("/auth/google/callback", web::get().to(login::callback))
        .route("/connect/authorize", web::post().to(native::authorize))
        .route("/connect/token", web::post().to(native::token));
}
