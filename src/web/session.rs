//! Server-side sessions behind a signed, HttpOnly, SameSite=Lax cookie.

use actix_web::cookie::{time, Cookie, CookieJar, SameSite};
use actix_web::HttpRequest;

use crate::crypto::secret::{digest, OpaqueToken};
use crate::domain::token::SESSION_PREFIX;
use crate::error::AppError;
use crate::startup::AppState;
use crate::store::sessions::{self, SessionRow};
use crate::store::users::{self, User};
use crate::store::DbConnection;

pub const SESSION_COOKIE: &str = "sg_session";

/// The signed-in user of a request.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub digest: String,
    pub user: User,
    pub auth_time: i64,
}

/// Reads a signed cookie's value, or `None` if absent or tampered with.
pub fn read_signed(req: &HttpRequest, state: &AppState, name: &str) -> Option<String> {
    let raw = req.cookie(name)?;
    let mut jar = CookieJar::new();
    jar.add_original(raw);
    jar.signed(&state.cookie_key)
        .get(name)
        .map(|c| c.value().to_string())
}

/// Builds a signed cookie with our attributes.
pub fn signed_cookie(
    state: &AppState,
    name: &'static str,
    value: String,
    max_age: Option<i64>,
) -> Cookie<'static> {
    let mut builder = Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Lax);
    if let Some(secs) = max_age {
        builder = builder.max_age(time::Duration::seconds(secs));
    }
    let mut jar = CookieJar::new();
    jar.signed_mut(&state.cookie_key).add(builder.finish());
    jar.get(name)
        .cloned()
        .unwrap_or_else(|| Cookie::new(name, ""))
}

pub fn removal_cookie(state: &AppState, name: &'static str) -> Cookie<'static> {
    let mut c = Cookie::build(name, "")
        .path("/")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Lax)
        .finish();
    c.make_removal();
    c
}

/// Looks the session up; expired sessions and disabled users count as signed out.
pub async fn current(req: &HttpRequest, state: &AppState) -> Result<Option<SignedIn>, AppError> {
    let Some(token) = read_signed(req, state, SESSION_COOKIE) else {
        return Ok(None);
    };
    let d = digest(&token);
    let now = state.now();
    state
        .store
        .run(move |conn| -> Result<Option<SignedIn>, AppError> {
            let Some(row) = sessions::find(conn, &d)? else {
                return Ok(None);
            };
            if row.expires_at <= now {
                sessions::delete(conn, &d)?;
                return Ok(None);
            }
            let Some(user) = users::find(conn, &row.user_id)? else {
                return Ok(None);
            };
            if user.disabled {
                return Ok(None);
            }
            // Touch at most once a minute to keep reads cheap.
            if now - row.last_seen_at > 60 {
                sessions::touch(conn, &d, now)?;
            }
            Ok(Some(SignedIn {
                digest: d,
                user,
                auth_time: row.auth_time,
            }))
        })
        .await
}

/// Starts a session for `user_id`; the returned token goes into the cookie only.
pub fn start(
    conn: &mut DbConnection,
    user_id: &str,
    now: i64,
    ttl: i64,
) -> Result<OpaqueToken, AppError> {
    let token = OpaqueToken::generate(SESSION_PREFIX);
    sessions::insert(
        conn,
        &SessionRow {
            digest: token.digest(),
            user_id: user_id.to_string(),
            auth_time: now,
            created_at: now,
            last_seen_at: now,
            expires_at: now + ttl,
        },
    )?;
    Ok(token)
}

/// Reads an encrypted cookie's value, or `None` if absent or tampered with.
pub fn read_private(req: &HttpRequest, state: &AppState, name: &str) -> Option<String> {
    let raw = req.cookie(name)?;
    let mut jar = CookieJar::new();
    jar.add_original(raw);
    jar.private(&state.cookie_key)
        .get(name)
        .map(|c| c.value().to_string())
}

/// An encrypted (and authenticated) cookie, for short-lived flow state.
pub fn private_cookie(
    state: &AppState,
    name: &'static str,
    value: String,
    max_age: i64,
) -> Cookie<'static> {
    let cookie = Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(max_age))
        .finish();
    let mut jar = CookieJar::new();
    jar.private_mut(&state.cookie_key).add(cookie);
    jar.get(name)
        .cloned()
        .unwrap_or_else(|| Cookie::new(name, ""))
}
