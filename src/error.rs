//! `AppError` for the application and `OAuthError` for RFC 6749 / 6750 / 7009 error responses.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::store::StoreError;

/// The error codes of RFC 6749 §4.1.2.1 / §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1 and
/// OIDC Core §3.1.2.6; `as_str` is the wire string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthErrorKind {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
    InsufficientScope,
    UnsupportedTokenType,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
}

impl OAuthErrorKind {
    pub fn as_str(self) -> &'static str {
        use OAuthErrorKind::*;
        match self {
            InvalidRequest => "invalid_request",
            InvalidClient => "invalid_client",
            InvalidGrant => "invalid_grant",
            UnauthorizedClient => "unauthorized_client",
            UnsupportedGrantType => "unsupported_grant_type",
            UnsupportedResponseType => "unsupported_response_type",
            InvalidScope => "invalid_scope",
            AccessDenied => "access_denied",
            ServerError => "server_error",
            TemporarilyUnavailable => "temporarily_unavailable",
            InvalidToken => "invalid_token",
            InsufficientScope => "insufficient_scope",
            UnsupportedTokenType => "unsupported_token_type",
            LoginRequired => "login_required",
            ConsentRequired => "consent_required",
            InteractionRequired => "interaction_required",
        }
    }
}

impl fmt::Display for OAuthErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub kind: OAuthErrorKind,
    pub description: Cow<'static, str>,
}

impl OAuthError {
    pub fn new(kind: OAuthErrorKind, description: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError {
            kind,
            description: description.into(),
        }
    }

    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorKind::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorKind::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorKind::InvalidGrant, d)
    }
    pub fn invalid_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorKind::InvalidScope, d)
    }
    pub fn server_error() -> Self {
        Self::new(
            OAuthErrorKind::ServerError,
            "the server could not complete the request",
        )
    }

    pub fn status(&self) -> StatusCode {
        match self.kind {
            OAuthErrorKind::InvalidClient | OAuthErrorKind::InvalidToken => {
                StatusCode::UNAUTHORIZED
            }
            OAuthErrorKind::InsufficientScope => StatusCode::FORBIDDEN,
            OAuthErrorKind::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorKind::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// `{error, error_description}` as JSON.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.kind.as_str(), "error_description": self.description })
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.description)
    }
}

impl std::error::Error for OAuthError {}

/// JSON error response with `Cache-Control: no-store` (RFC 6749 §5.1, §5.2).
impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status());
        res.insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        match self.kind {
            OAuthErrorKind::InvalidClient => {
                res.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"scopegate\""));
            }
            OAuthErrorKind::InvalidToken => {
                let v = format!(
                    "Bearer realm=\"scopegate\", error=\"invalid_token\", error_description=\"{}\"",
                    self.description.replace(['"', '\\'], "'")
                );
                if let Ok(v) = HeaderValue::from_str(&v) {
                    res.insert_header((header::WWW_AUTHENTICATE, v));
                }
            }
            _ => {}
        }
        res.json(self.body())
    }
}

/// Application errors; each renders as a safe response and never leaks its cause.
#[derive(thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error("database error")]
    Store(#[from] StoreError),
    #[error("unexpected error")]
    Unexpected(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => AppError::NotFound,
            other => AppError::Store(StoreError::Query(other)),
        }
    }
}

/// Prints the whole cause chain, which `Display` keeps to itself.
impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = match self {
            AppError::Store(e) => Some(e as &dyn std::error::Error),
            AppError::Unexpected(e) => Some(e.as_ref() as &dyn std::error::Error),
            _ => std::error::Error::source(self),
        };
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::OAuth(e) => e.status(),
            AppError::Store(_) | AppError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What a person may be told.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Store(_) | AppError::Unexpected(_) => {
                "Something went wrong on our side. Please try again.".into()
            }
            other => other.to_string(),
        }
    }
}

/// Browser-facing errors render the HTML error page; server errors are logged with cause.
impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::OAuth(e) = self {
            return e.error_response();
        }
        if self.status().is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        crate::web::pages::error_page(self.status(), &self.public_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_print_their_wire_string() {
        assert_eq!(OAuthErrorKind::InvalidGrant.to_string(), "invalid_grant");
        assert_eq!(OAuthErrorKind::ConsentRequired.as_str(), "consent_required");
    }

    #[test]
    fn invalid_client_is_401_and_others_400() {
        assert_eq!(
            OAuthError::invalid_client("x").status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            OAuthError::invalid_grant("x").status(),
            StatusCode::BAD_REQUEST
        );
        let body = OAuthError::invalid_grant("code reused").body();
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], "code reused");
    }
}
