//! The one error type of the HTTP API: a 4xx explains what was wrong with the
//! input; a 5xx says nothing internal and the detail goes to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

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
