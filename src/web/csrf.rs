//! CSRF protection: a random token in a signed HttpOnly cookie, echoed in every form.

use actix_web::cookie::Cookie;
use actix_web::HttpRequest;
use subtle::ConstantTimeEq;

use crate::crypto::secret::random_id;
use crate::error::AppError;
use crate::startup::AppState;
use crate::web::session::{read_signed, signed_cookie};

pub const CSRF_COOKIE: &str = "sg_csrf";

/// The token to put in a form, and the cookie to set if the visitor had none.
pub struct Csrf {
    pub token: String,
    pub cookie: Option<Cookie<'static>>,
}

pub fn issue(req: &HttpRequest, state: &AppState) -> Csrf {
    match read_signed(req, state, CSRF_COOKIE) {
        Some(token) => Csrf {
            token,
            cookie: None,
        },
        None => {
            let token = random_id("", 24);
            let cookie = signed_cookie(state, CSRF_COOKIE, token.clone(), None);
            Csrf {
                token,
                cookie: Some(cookie),
            }
        }
    }
}

/// Refuses a form whose token does not match the cookie.
pub fn verify(
    req: &HttpRequest,
    state: &AppState,
    form_token: Option<&str>,
) -> Result<(), AppError> {
    let cookie = read_signed(req, state, CSRF_COOKIE);
    let ok = match (cookie, form_token) {
        (Some(c), Some(f)) => bool::from(c.as_bytes().ct_eq(f.as_bytes())),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "This form has expired or did not come from this site. Go back, reload the page and try again.".into(),
        ))
    }
}
