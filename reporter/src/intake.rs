//! Incident intake: outsiders report an incident through `POST
//! /api/v1/incidents` (JSON) or the plain form at `/report-incident`; staff
//! triage it (new → acknowledged → investigating → resolved, with notes), and
//! a webhook hears of each new one. `/.well-known/security.txt` (RFC 9116)
//! points at the form.
//!
//! Limits, in the order they are applied: per-address rate limit (429),
//! content type (415), body size (413), UTF-8 and field lengths (400). A
//! filled honeypot field gets an ordinary-looking answer and is not stored.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use crate::api::{Shared, Staff};
use crate::error::{ApiError, ApiResult};
use crate::posture::rfc3339;
use crate::store::{now_ms, StoreError};
use crate::web::PageError;

// --- configuration ------------------------------------------------------------

/// `intake:` in the reporter config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeConfig {
    /// Largest submission body in bytes (default 16384).
    pub max_body_bytes: usize,
    /// Submissions per client address per hour (default 10).
    pub per_address_per_hour: u32,
    pub max_summary_chars: usize,
    pub max_description_chars: usize,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            max_body_bytes: 16 * 1024,
            per_address_per_hour: 10,
            max_summary_chars: 200,
            max_description_chars: 10_000,
        }
    }
}

/// `notify:` in the reporter config.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// POSTed a JSON notice of every new incident (no submitter text in it).
    pub webhook: Option<String>,
    /// Sent as `Authorization: Bearer …` to the webhook. `VIGIL_WEBHOOK_TOKEN` overrides it.
    pub webhook_token: Option<String>,
}

// --- the submission, validated -----------------------------------------------

pub use crate::intake_input::{
    check_text, decode_form, from_form, from_json, submission_from_form, IncidentSubmission,
    ValidIncident, MAX_SHORT_CHARS,
};

/// Checks lengths and characters against `cfg`; Ok(None) for a honeypot hit.
pub fn validate(
    s: IncidentSubmission,
    cfg: &IntakeConfig,
) -> Result<Option<ValidIncident>, String> {
    crate::intake_input::validate(s, cfg.max_summary_chars, cfg.max_description_chars)
}

// --- the store ----------------------------------------------------------------

pub const STATUSES: &[&str] = &["new", "acknowledged", "investigating", "resolved"];

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Incident {
    pub tracking_id: String,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub contact: Option<String>,
    pub summary: String,
    pub description: String,
    pub affected_area: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IncidentEvent {
    pub at: String,
    pub actor: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub note: Option<String>,
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

pub fn new_tracking_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("INC-{}", hex::encode_upper(b))
}

pub fn valid_tracking_id(id: &str) -> bool {
    id.strip_prefix("INC-")
        .is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn insert(
    state: &Shared,
    id: &str,
    v: &ValidIncident,
    addr: &str,
) -> Result<i64, StoreError> {
    let now = now_ms();
    // The audit log's writer lock first, then the transaction (as the log does).
    let _g = state.audit.write_lock().await;
    let mut tx = state.store.pool.begin().await?;
    sqlx::query("INSERT INTO incidents (id, created_at, updated_at, status, contact, summary, description, affected, source_addr) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(id)
        .bind(now)
        .bind(now)
        .bind("new")
        .bind(v.contact.as_deref())
        .bind(&v.summary)
        .bind(&v.description)
        .bind(v.affected_area.as_deref())
        .bind(addr)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO incident_events (incident_id, seq, at, actor, from_status, to_status, note) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(id)
        .bind(1_i64)
        .bind(now)
        .bind("submitter")
        .bind(None::<String>)
        .bind("new")
        .bind(None::<String>)
        .execute(&mut *tx)
        .await?;
    // The log holds a digest of what was submitted, not the text itself.
    let content = serde_json::json!([v.summary, v.description, v.affected_area, v.contact]);
    state
        .audit
        .append_in(
            &mut tx,
            state.store.backend,
            "incident.reported",
            "submitter",
            serde_json::json!({"tracking_id": id, "status": "new", "content_sha256": sha256_hex(&content.to_string())}),
        )
        .await?;
    tx.commit().await?;
    Ok(now)
}

fn incident_from(r: &sqlx::any::AnyRow) -> Result<Incident, StoreError> {
    Ok(Incident {
        tracking_id: r.try_get("id")?,
        status: r.try_get("status")?,
        created_at: rfc3339(r.try_get("created_at")?),
        updated_at: rfc3339(r.try_get("updated_at")?),
        contact: r.try_get("contact")?,
        summary: r.try_get("summary")?,
        description: r.try_get("description")?,
        affected_area: r.try_get("affected")?,
    })
}

pub async fn list(
    state: &Shared,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<Incident>, StoreError> {
    let cols = "id, status, created_at, updated_at, contact, summary, description, affected";
    let rows = match status {
        Some(s) => {
            sqlx::query(&format!(
            "SELECT {cols} FROM incidents WHERE status = $1 ORDER BY created_at DESC, id LIMIT $2"
        ))
            .bind(s)
            .bind(limit)
            .fetch_all(&state.store.pool)
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {cols} FROM incidents ORDER BY created_at DESC, id LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(&state.store.pool)
            .await?
        }
    };
    rows.iter().map(incident_from).collect()
}

pub async fn get_one(
    state: &Shared,
    id: &str,
) -> Result<Option<(Incident, Vec<IncidentEvent>)>, StoreError> {
    let row = sqlx::query("SELECT id, status, created_at, updated_at, contact, summary, description, affected FROM incidents WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.store.pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let inc = incident_from(&row)?;
    let rows = sqlx::query("SELECT at, actor, from_status, to_status, note FROM incident_events WHERE incident_id = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(&state.store.pool)
        .await?;
    let events = rows
        .iter()
        .map(|r| {
            Ok(IncidentEvent {
                at: rfc3339(r.try_get("at")?),
                actor: r.try_get("actor")?,
                from_status: r.try_get("from_status")?,
                to_status: r.try_get("to_status")?,
                note: r.try_get("note")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some((inc, events)))
}

/// Whether `from → to` is allowed: forward only; the same status adds a note.
pub fn transition_allowed(from: &str, to: &str) -> bool {
    let pos = |s: &str| STATUSES.iter().position(|x| *x == s);
    match (pos(from), pos(to)) {
        (Some(f), Some(t)) => t >= f,
        _ => false,
    }
}

/// Moves an incident to `to` (or adds a note), recording who and when.
pub async fn transition(
    state: &Shared,
    id: &str,
    to: Option<&str>,
    note: Option<&str>,
    actor: &str,
) -> ApiResult<(Incident, Vec<IncidentEvent>)> {
    if let Some(n) = note {
        check_text("note", n, 4000, true).map_err(ApiError::BadRequest)?;
    }
    let _g = state.audit.write_lock().await;
    let mut tx = state.store.begin_write().await?;
    let cur: Option<String> = sqlx::query_scalar("SELECT status FROM incidents WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    let cur = cur.ok_or_else(|| ApiError::NotFound(format!("no incident `{id}`")))?;
    let to = to.unwrap_or(&cur).to_owned();
    if !STATUSES.contains(&to.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "`status` must be one of {}",
            STATUSES.join(", ")
        )));
    }
    if !transition_allowed(&cur, &to) {
        return Err(ApiError::Conflict(format!(
            "an incident goes new → acknowledged → investigating → resolved; it cannot go from `{cur}` back to `{to}`"
        )));
    }
    if to == cur && note.is_none_or(|n| n.trim().is_empty()) {
        return Err(ApiError::BadRequest(
            "give a new `status` or a `note`".into(),
        ));
    }
    let seq: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM incident_events WHERE incident_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let now = now_ms();
    sqlx::query("INSERT INTO incident_events (incident_id, seq, at, actor, from_status, to_status, note) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(id)
        .bind(seq)
        .bind(now)
        .bind(actor)
        .bind(Some(cur.clone()))
        .bind(&to)
        .bind(note.map(str::trim).filter(|n| !n.is_empty()))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    sqlx::query("UPDATE incidents SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(&to)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    state
        .audit
        .append_in(
            &mut tx,
            state.store.backend,
            "incident.transition",
            actor,
            serde_json::json!({"tracking_id": id, "from": cur, "to": to, "note_sha256": note.map(sha256_hex)}),
        )
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    drop(_g);
    tracing::info!(incident = %id, from = %cur, to = %to, by = %actor, "incident triaged");
    get_one(state, id)
        .await?
        .ok_or_else(|| ApiError::Internal("incident vanished".into()))
}

// --- the peer address -----------------------------------------------------------

/// The client's address, from the connection (not from headers a client can set).
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

// --- submission, shared by the JSON route and the form ----------------------------

/// Why a submission was refused: JSON `{"error": …}` on the API, a page on the form.
#[derive(Debug)]
pub enum Refusal {
    Status(StatusCode, String),
    Store(StoreError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Store(e) => ApiError::from(e).into_response(),
            Refusal::Status(s, m) => (s, Json(serde_json::json!({ "error": m }))).into_response(),
        }
    }
}

impl From<Refusal> for PageError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Store(e) => e.into(),
            Refusal::Status(s, m) => PageError::Status(s, m),
        }
    }
}

enum Kind {
    Json,
    Form,
}

async fn submit(
    state: &Shared,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    body: Body,
    kind: Kind,
) -> Result<(String, String), Refusal> {
    let cfg = &state.site.intake;
    let addr = peer.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    let limiter_key = peer.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let n = state.site.limiter.count(limiter_key, now_ms(), 3_600_000);
    if n > cfg.per_address_per_hour {
        // once per window and address, not once per request of a flood
        if n == cfg.per_address_per_hour.saturating_add(1) {
            tracing::warn!(%addr, "incident intake: rate limited for the rest of the hour");
        }
        return Err(Refusal::Status(
            StatusCode::TOO_MANY_REQUESTS,
            "too many reports from your address; try again in an hour".into(),
        ));
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let want = match kind {
        Kind::Json => "application/json",
        Kind::Form => "application/x-www-form-urlencoded",
    };
    if ctype != want {
        return Err(Refusal::Status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send `Content-Type: {want}`"),
        ));
    }
    let too_large = || {
        Refusal::Status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a report may be at most {} bytes", cfg.max_body_bytes),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > cfg.max_body_bytes) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, cfg.max_body_bytes)
        .await
        .map_err(|_| too_large())?;
    let bad = |m: String| Refusal::Status(StatusCode::BAD_REQUEST, m);
    let sub: IncidentSubmission = match kind {
        Kind::Json => from_json(&bytes),
        Kind::Form => from_form(&bytes),
    }
    .map_err(bad)?;
    let Some(valid) = validate(sub, cfg).map_err(bad)? else {
        tracing::warn!(%addr, "incident intake: honeypot filled; not stored");
        return Ok((new_tracking_id(), rfc3339(now_ms())));
    };
    let id = new_tracking_id();
    let at = insert(state, &id, &valid, &addr)
        .await
        .map_err(Refusal::Store)?;
    tracing::info!(incident = %id, %addr, "incident reported");
    notify(state, &id, at);
    Ok((id, rfc3339(at)))
}

/// Tells the configured webhook of a new incident, in the background. The
/// notice carries the tracking id and a link, never the submitter's text.
fn notify(state: &Shared, id: &str, at: i64) {
    let Some(url) = state.site.notify.webhook.clone() else {
        return;
    };
    let Some(client) = state.site.http.clone() else {
        return;
    };
    let token = std::env::var("VIGIL_WEBHOOK_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .or_else(|| state.site.notify.webhook_token.clone());
    let link = state.site.url(&format!("/reports/incidents/{id}"));
    let body = serde_json::json!({
        "event": "incident.created",
        "tracking_id": id,
        "created_at": rfc3339(at),
        "url": link,
        "text": format!("New incident report {id}: {link}"),
    });
    let id = id.to_owned();
    tokio::spawn(async move {
        let mut req = client.post(&url).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => tracing::info!(incident = %id, "webhook notified"),
            Ok(r) => {
                tracing::warn!(incident = %id, status = %r.status(), "webhook refused the notice")
            }
            Err(e) => tracing::warn!(incident = %id, error = %e, "webhook unreachable"),
        }
    });
}

// --- JSON routes ------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentReceipt {
    /// Quote it in any follow-up.
    pub tracking_id: String,
    pub status: String,
    pub received_at: String,
}

/// Reports a security incident (anyone); returns a tracking id.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", request_body = IncidentSubmission,
    responses((status = 201, body = IncidentReceipt), (status = 400, description = "missing or too long fields, bad UTF-8, unknown fields"),
        (status = 413, description = "body too large"), (status = 415, description = "not application/json"), (status = 429, description = "too many reports from this address")))]
pub async fn submit_json(
    State(state): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<IncidentReceipt>), Refusal> {
    let (tracking_id, received_at) = submit(&state, peer, &headers, body, Kind::Json).await?;
    Ok((
        StatusCode::CREATED,
        Json(IncidentReceipt {
            tracking_id,
            status: "new".into(),
            received_at,
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct IncidentsQuery {
    /// Only incidents in this status.
    pub status: Option<String>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentsResponse {
    pub incidents: Vec<Incident>,
}

/// Reported incidents, newest first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", security(("bearer" = [])), params(IncidentsQuery),
    responses((status = 200, body = IncidentsResponse), (status = 400, description = "bad status or limit"), (status = 401, description = "not staff")))]
pub async fn list_json(
    State(state): State<Shared>,
    _staff: Staff,
    Query(q): Query<IncidentsQuery>,
) -> ApiResult<Json<IncidentsResponse>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "`limit` must be between 1 and 1000".into(),
        ));
    }
    if let Some(s) = &q.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "`status` must be one of {}",
                STATUSES.join(", ")
            )));
        }
    }
    Ok(Json(IncidentsResponse {
        incidents: list(&state, q.status.as_deref(), limit).await?,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: Incident,
    /// Every status change and note, oldest first.
    pub events: Vec<IncidentEvent>,
}

/// One incident with its triage history.
#[utoipa::path(get, path = "/api/v1/incidents/{tracking_id}", tag = "incidents", security(("bearer" = [])), params(("tracking_id" = String, Path, description = "INC-…")),
    responses((status = 200, body = IncidentDetail), (status = 401, description = "not staff"), (status = 404, description = "unknown incident")))]
pub async fn get_json(
    State(state): State<Shared>,
    _staff: Staff,
    Path(id): Path<String>,
) -> ApiResult<Json<IncidentDetail>> {
    let (incident, events) = get_one(&state, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident `{id}`")))?;
    Ok(Json(IncidentDetail { incident, events }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// The next status (forward only); absent to add a note alone.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// Triage: moves an incident forward (new → acknowledged → investigating → resolved) and/or adds a note.
#[utoipa::path(post, path = "/api/v1/incidents/{tracking_id}/transitions", tag = "incidents", security(("bearer" = [])),
    params(("tracking_id" = String, Path, description = "INC-…")), request_body = TransitionRequest,
    responses((status = 200, body = IncidentDetail), (status = 400, description = "unknown status, or neither status nor note"), (status = 401, description = "not staff"),
        (status = 404, description = "unknown incident"), (status = 409, description = "a backward move")))]
pub async fn transition_json(
    State(state): State<Shared>,
    Staff(user): Staff,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<IncidentDetail>> {
    let req: TransitionRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid transition: {e}")))?;
    let (incident, events) = transition(
        &state,
        &id,
        req.status.as_deref(),
        req.note.as_deref(),
        &user.name,
    )
    .await?;
    Ok(Json(IncidentDetail { incident, events }))
}

// --- public pages -----------------------------------------------------------------

async fn form_page(State(state): State<Shared>) -> Result<Response, PageError> {
    Ok(state
        .site
        .render(
            "report_incident.html",
            minijinja::context! {
                title => "Report a security incident",
                organization => state.site.organization,
                limits => minijinja::context! {
                    summary => state.site.intake.max_summary_chars,
                    description => state.site.intake.max_description_chars,
                    short => MAX_SHORT_CHARS,
                },
            },
        )?
        .into_response())
}

async fn form_submit(
    State(state): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PageError> {
    let (tracking_id, received_at) = submit(&state, peer, &headers, body, Kind::Form).await?;
    Ok(state
        .site
        .render(
            "incident_ack.html",
            minijinja::context! {
                title => "Report received",
                tracking_id => tracking_id,
                received_at => received_at,
                organization => state.site.organization,
            },
        )?
        .into_response())
}

/// RFC 9116: Contact (the form, then any configured contact), Expires (a year
/// ahead, recomputed on every request), Policy, Preferred-Languages, Canonical.
pub fn security_txt(site: &crate::web::Site, now: chrono::DateTime<chrono::Utc>) -> String {
    let expires =
        (now + chrono::Duration::days(365)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut s = String::new();
    s.push_str(&format!("# Security contact of {}\n", site.organization));
    s.push_str(&format!("Contact: {}\n", site.url("/report-incident")));
    if let Some(c) = &site.security_contact {
        s.push_str(&format!("Contact: {c}\n"));
    }
    s.push_str(&format!("Expires: {expires}\n"));
    s.push_str(&format!("Policy: {}\n", site.url("/policy.pdf")));
    s.push_str("Preferred-Languages: en\n");
    if site.public_url.is_some() {
        s.push_str(&format!(
            "Canonical: {}\n",
            site.url("/.well-known/security.txt")
        ));
    }
    s
}

async fn security_txt_route(State(state): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        security_txt(&state.site, chrono::Utc::now()),
    )
        .into_response()
}

/// The public routes that are not under `/api` (the JSON routes are in `api::router`).
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/report-incident", get(form_page).post(form_submit))
        .route("/.well-known/security.txt", get(security_txt_route))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(summary: &str, description: &str) -> IncidentSubmission {
        IncidentSubmission {
            summary: summary.into(),
            description: description.into(),
            ..Default::default()
        }
    }

    #[test]
    fn validation_limits_and_honeypot() {
        let c = IntakeConfig::default();
        assert!(validate(sub("x", "y"), &c).unwrap().is_some());
        assert!(validate(sub("", "y"), &c).is_err());
        assert!(validate(sub(&"x".repeat(201), "y"), &c).is_err());
        assert!(validate(sub("a\u{7}b", "y"), &c).is_err());
        assert!(validate(sub("a", "line\nline"), &c).unwrap().is_some());
        let mut s = sub("x", "y");
        s.website = Some("http://spam".into());
        assert_eq!(validate(s, &c).unwrap(), None);
    }

    #[test]
    fn strict_form_decoding() {
        let p = decode_form(b"summary=a+b%21&description=%C3%A9").unwrap();
        assert_eq!(p[0], ("summary".into(), "a b!".into()));
        assert_eq!(p[1].1, "é");
        assert!(decode_form(b"summary=%FF").is_err());
        assert!(decode_form(b"summary=%G1").is_err());
        assert!(submission_from_form(decode_form(b"nope=1").unwrap()).is_err());
    }

    #[test]
    fn triage_goes_forward_only() {
        assert!(transition_allowed("new", "acknowledged"));
        assert!(transition_allowed("new", "resolved"));
        assert!(transition_allowed("investigating", "investigating"));
        assert!(!transition_allowed("resolved", "new"));
        assert!(!transition_allowed("new", "closed"));
        assert!(valid_tracking_id(&new_tracking_id()));
    }
}
