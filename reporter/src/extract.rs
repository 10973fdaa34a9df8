//! What the `/api/v1` routes take from a request before they run: the
//! calling agent (its token, and with mutual TLS its certificate), the staff
//! member and their role, and the checked JSON body.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::state::Shared;
use crate::store::{AgentRow, UserRow};

// --- authentication ---------------------------------------------------------

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// An enrolled, unrevoked agent.
pub struct AgentAuth(pub AgentRow);

impl FromRequestParts<Shared> for AgentAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::ReEnroll("missing agent token (Authorization: Bearer …)".into())
        })?;
        let (lookup, secret) = auth::parse_token(token, auth::AGENT_PREFIX)
            .ok_or_else(|| ApiError::ReEnroll("malformed agent token".into()))?;
        let agent = state.store.agent_by_lookup(lookup).await?;
        match agent {
            Some(a) if auth::verify(secret, &a.token_digest) => {
                if a.revoked_at.is_some() {
                    Err(ApiError::ReEnroll(
                        "this agent's token was revoked; enroll again".into(),
                    ))
                } else {
                    let cert = crate::mtls::presented(parts.extensions.get())
                        .map_err(ApiError::ReEnroll)?;
                    crate::mtls::check_binding(
                        state.agent_tls.as_ref(),
                        a.cert_spki_sha256.as_deref(),
                        cert.as_ref(),
                    )
                    .map_err(|r| {
                        tracing::warn!(host = %a.host, "agent request refused: certificate binding");
                        refusal(r)
                    })?;
                    Ok(AgentAuth(a))
                }
            }
            _ => Err(ApiError::ReEnroll(
                "unknown agent token; enroll again".into(),
            )),
        }
    }
}

/// A staff member (admin or auditor).
pub struct Staff(pub UserRow);

impl FromRequestParts<Shared> for Staff {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::Unauthorized("missing staff token (Authorization: Bearer …)".into())
        })?;
        let (lookup, secret) = auth::parse_token(token, auth::STAFF_PREFIX)
            .ok_or_else(|| ApiError::Unauthorized("malformed staff token".into()))?;
        match state.store.user_by_lookup(lookup).await? {
            Some(u) if auth::verify(secret, &u.token_digest) && u.disabled_at.is_none() => {
                if token_expired(&u, state.staff_token_lifetime_ms, crate::store::now_ms()) {
                    return Err(ApiError::Unauthorized(
                        "this staff token expired; an admin can issue a new one (`vigil-reporter user rotate`)".into(),
                    ));
                }
                Ok(Staff(u))
            }
            _ => Err(ApiError::Unauthorized("unknown staff token".into())),
        }
    }
}

/// A staff member with the admin role.
pub struct Admin(pub UserRow);

impl FromRequestParts<Shared> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let Staff(u) = Staff::from_request_parts(parts, state).await?;
        if u.role == "admin" {
            Ok(Admin(u))
        } else {
            Err(ApiError::Forbidden(format!(
                "`{}` is an {}; this needs an admin",
                u.name, u.role
            )))
        }
    }
}

// --- the report body ---------------------------------------------------------

/// A report's body, collected once. A declared `Content-Length` over
/// `max_report_bytes` is answered 413 before a byte of the body is read; an
/// undeclared length (chunked) is cut off by the route's body limit as soon
/// as it passes it, so a huge body is never buffered whole.
pub struct ReportBody(pub Bytes);

impl FromRequest<Shared> for ReportBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &Shared) -> Result<Self, ApiError> {
        let max = state.max_report_bytes;
        let too_large = || ApiError::TooLarge(format!("a report may be at most {max} bytes"));
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        let body = <Bytes as FromRequest<Shared>>::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    ApiError::BadRequest(e.body_text())
                }
            })?;
        if body.len() > max {
            return Err(too_large());
        }
        Ok(ReportBody(body))
    }
}

pub fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid {what}: {e}")))
}

/// The API error of a refused agent certificate.
pub fn refusal(r: crate::mtls::Refusal) -> ApiError {
    match r {
        crate::mtls::Refusal::Unauthenticated(m) => ApiError::Unauthorized(m),
        crate::mtls::Refusal::Forbidden(m) => ApiError::Forbidden(m),
    }
}

/// Whether `u`'s token is past the configured lifetime at `now`.
pub fn token_expired(u: &UserRow, lifetime_ms: Option<i64>, now: i64) -> bool {
    match (lifetime_ms, u.token_issued_at) {
        (Some(l), Some(issued)) => issued.saturating_add(l) <= now,
        // A lifetime is set but the issue time is unknown: treat it as expired.
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// An account id a closure may take: a safe path component and argv word
/// (no `.`/`..`, no leading `.` or `-`), at most 128 characters.
pub fn valid_account(a: &str) -> bool {
    vigil_rules::checks::erasure::valid_account(a)
        && a.len() <= 128
        && a.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}
