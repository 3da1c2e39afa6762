//! The Nylas v2-compatible resource API, every route behind the scope guard.

pub mod account;
pub mod guard;
pub mod resources;

use std::collections::BTreeMap;

use actix_web::http::Method;
use actix_web::{web, HttpResponse};

use crate::domain::api::{ApiRoute, Operation, API_ROUTES};
use guard::RequireScopes;

/// Registers every row of [`API_ROUTES`] with its guard.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let mut by_path: BTreeMap<&'static str, Vec<&'static ApiRoute>> = BTreeMap::new();
    for route in API_ROUTES {
        by_path.entry(route.path).or_default().push(route);
    }
    for (path, routes) in by_path {
        let mut resource = web::resource(path);
        for route in routes {
            let method = Method::from_bytes(route.method.as_bytes()).unwrap_or(Method::GET);
            let guard = RequireScopes::set(route.operation.any_of());
            let handler = match route.operation {
                Operation::Account => web::method(method).to(account::get_account),
                _ => web::method(method).to(move |auth, req, body, state| {
                    resources::dispatch(route, auth, req, body, state)
                }),
            };
            resource = resource.route(handler.wrap(guard));
        }
        cfg.service(resource.default_service(web::to(method_not_allowed)));
    }
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .content_type("application/json")
        .body(guard::nylas_body(
            "This method is not supported on this path.",
            "invalid_request_error",
        ))
}
