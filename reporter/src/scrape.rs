//! `GET /metrics`: the registry of [`crate::metrics::Metrics`] for Prometheus.
//!
//! Who may scrape: the figures show internal detail (hosts going stale,
//! closures in flight, refusals), so the route is not public. It answers a
//! bearer token that is either the scrape token of `metrics: {token_file: …}`
//! (what a Prometheus server's `bearer_token_file` sends) or any staff
//! member's token (admin or auditor). Anything else gets 401 with a reason
//! and no metric name.

use axum::extract::{FromRequestParts, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::extract::Staff;
use crate::state::Shared;

/// The metrics route (outside `/api/v1`, so not in the OpenAPI document).
pub fn router() -> Router<Shared> {
    Router::new().route("/metrics", get(scrape))
}

/// Content type of the text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A caller allowed to scrape: the scrape token or a staff member.
struct Scraper;

impl FromRequestParts<Shared> for Scraper {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let (Some(p), Some(t)) = (presented, state.metrics.token()) {
            if crate::auth::secrets_equal(p, t) {
                return Ok(Scraper);
            }
        }
        if presented.is_none() {
            return Err(ApiError::Unauthorized(
                "missing token (Authorization: Bearer …): the metrics token or a staff token"
                    .into(),
            ));
        }
        Staff::from_request_parts(parts, state).await?;
        Ok(Scraper)
    }
}

async fn scrape(State(state): State<Shared>, _who: Scraper) -> Response {
    // Every state a closure can be in, shown at 0 when empty.
    let closure_states: Vec<&str> = crate::closures::STATES
        .iter()
        .copied()
        .chain(["cancelled"])
        .collect();
    state.metrics.refresh(&state.store, &closure_states).await;
    match state.metrics.render() {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => ApiError::Internal(e).into_response(),
    }
}
