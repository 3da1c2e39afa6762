//! OAuth 2 / OpenID Connect endpoints, built on oxide-auth's flows.

pub mod authorize;
pub mod bearer;
pub mod client_auth;
pub mod discovery;
pub mod introspect;
pub mod params;
pub mod primitives;
pub mod revoke;
pub mod signing;
pub mod token;
pub mod userinfo;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth/authorize", web::get().to(authorize::authorize_get))
        .route(
            "/oauth/authorize",
            web::post().to(authorize::authorize_post),
        )
        .route("/oauth/token", web::post().to(token::token))
        .route("/oauth/introspect", web::post().to(introspect::introspect))
        .route("/oauth/revoke", web::post().to(revoke::revoke))
        .route("/userinfo", web::get().to(userinfo::userinfo))
        .route("/userinfo", web::post().to(userinfo::userinfo))
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(discovery::metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            web::get().to(discovery::metadata),
        )
        .route("/.well-known/jwks.json", web::get().to(discovery::jwks));
}
