//! Per-client-address rate limits for the login and token endpoints (429 + `Retry-After`).

use std::net::IpAddr;
use std::num::NonZeroU32;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Limits are per instance; behind N instances the effective limit is up to N times higher.
pub struct RateLimits {
    login: DefaultKeyedRateLimiter<IpAddr>,
    token: DefaultKeyedRateLimiter<IpAddr>,
}

/// Which limit to apply.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    Login,
    Token,
}

fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl RateLimits {
    pub fn new(login_per_minute: u32, token_per_minute: u32) -> RateLimits {
        RateLimits {
            login: RateLimiter::keyed(quota(login_per_minute)),
            token: RateLimiter::keyed(quota(token_per_minute)),
        }
    }

    /// `Err(seconds to wait)` when the caller is over its limit.
    pub fn check(&self, limit: Limit, req: &HttpRequest) -> Result<(), u64> {
        let ip = req
            .peer_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let limiter = match limit {
            Limit::Login => &self.login,
            Limit::Token => &self.token,
        };
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs().max(1)
        })
    }
}

/// The 429 answer, JSON-shaped like every other OAuth error.
pub fn too_many_requests(retry_after: u64) -> HttpResponse {
    HttpResponse::TooManyRequests()
        .insert_header((header::RETRY_AFTER, retry_after.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "too many requests; retry later",
        }))
}
