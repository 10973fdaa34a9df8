//! The one error type of the HTTP API: a 4xx explains what was wrong with the
//! input; a 5xx says nothing internal and the detail goes to the log.

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;
use minijinja::Environment;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// The agent's token is unknown or revoked: it must enroll again.
    #[error("{0}")]
    ReEnroll(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// The thing existed and is no longer available (an expired link).
    #[error("{0}")]
    Gone(String),
    /// Throttled (issue 19): too many attempts, or too many at once; the
    /// seconds to wait go into `Retry-After`.
    #[error("{0}")]
    TooManyRequests(String, u64),
    #[error("internal error")]
    Internal(String),
}

impl From<crate::throttle::Throttled> for ApiError {
    fn from(t: crate::throttle::Throttled) -> Self {
        ApiError::TooManyRequests(t.message, t.retry_after_secs)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, extra) = match &self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, None),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, None),
            ApiError::ReEnroll(_) => (
                StatusCode::UNAUTHORIZED,
                Some(("re_enroll", serde_json::Value::Bool(true))),
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, None),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, None),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, None),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, None),
            ApiError::Gone(_) => (StatusCode::GONE, None),
            ApiError::TooManyRequests(_, _) => (StatusCode::TOO_MANY_REQUESTS, None),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, None)
            }
        };
        let mut body = serde_json::json!({"error": self.to_string()});
        if let (Some((k, v)), Some(obj)) = (extra, body.as_object_mut()) {
            obj.insert(k.into(), v);
        }
        let mut resp = (status, Json(body)).into_response();
        if let ApiError::TooManyRequests(_, secs) = &self {
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// An error of an HTML page: a page saying what went wrong, or a redirect to
/// the login form.
#[derive(Debug)]
pub enum PageError {
    Login(String),
    Status(StatusCode, String),
    Internal(String),
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl From<crate::error::ApiError> for PageError {
    fn from(e: crate::error::ApiError) -> Self {
        use crate::error::ApiError as E;
        match e {
            E::BadRequest(m) => PageError::Status(StatusCode::BAD_REQUEST, m),
            E::NotFound(m) => PageError::Status(StatusCode::NOT_FOUND, m),
            E::Forbidden(m) => PageError::Status(StatusCode::FORBIDDEN, m),
            E::Conflict(m) => PageError::Status(StatusCode::CONFLICT, m),
            E::TooLarge(m) => PageError::Status(StatusCode::PAYLOAD_TOO_LARGE, m),
            E::Unauthorized(m) | E::ReEnroll(m) => PageError::Status(StatusCode::UNAUTHORIZED, m),
            other => PageError::Internal(other.to_string()),
        }
    }
}

/// The error page, escaped like every other page; 5xx say nothing internal.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let env = ERROR_ENV.get_or_init(|| {
        let mut env = Environment::new();
        let _ = env.add_template("base.html", include_str!("web/templates/base.html"));
        let _ = env.add_template("error.html", include_str!("web/templates/error.html"));
        env
    });
    let body = env
        .get_template("error.html")
        .and_then(|t| {
            t.render(minijinja::context! {
                title => status.canonical_reason().unwrap_or("error"),
                status => status.as_u16(),
                message => message,
            })
        })
        .unwrap_or_else(|_| "error".to_owned());
    (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

static ERROR_ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Login(next) => {
                let next = if safe_next(&next) { next } else { "/".into() };
                let q = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
                Redirect::to(&format!("/login?{q}")).into_response()
            }
            PageError::Status(s, m) => error_page(s, &m),
            PageError::Internal(detail) => {
                tracing::error!(%detail, "page failed");
                error_page(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

/// Only local absolute paths: no `//host`, no scheme, no backslash tricks.
pub fn safe_next(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
}
