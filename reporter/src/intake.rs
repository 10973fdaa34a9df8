//! Incident intake: outsiders report an incident through `POST
//! /api/v1/incidents` (JSON) or the plain form at `/report-incident`; staff
//! triage it (new → acknowledged → investigating → resolved, with notes), and
//! a webhook hears of each new one. `/.well-known/security.txt` (RFC 9116)
//! points at the form.
//!
//! Limits, in the order they are applied: per-address rate limit (429),
//! content type (415), body size (413), UTF-8 and field lengths (400). A
//! filled honeypot field gets an ordinary-looking answer and is not stored.

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::extract::Staff;
use crate::posture::rfc3339;
use crate::state::Shared;
use crate::store::{now_ms, StoreError};
use crate::web::PageError;

pub use crate::config::intake::IntakeConfig;
pub use crate::config::notify::NotifyConfig;
pub use crate::net::{client_addr, GlobalWindow, Peer, ProxyNet};

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
    /// `low`, `medium`, `high` or `critical`; None until triaged.
    pub severity: Option<String>,
    /// The staff member handling it.
    pub assignee: Option<String>,
    /// Marked as a personal-data breach (GDPR Art. 33).
    pub personal_data_breach: bool,
    /// 72 hours after it was marked a personal-data breach: the supervisory
    /// authority must be notified by then.
    pub breach_notify_by: Option<String>,
    /// The time to `breach_notify_by` in words (`41 h 12 min left`, `passed 3 h ago`).
    pub breach_time_left: Option<String>,
    /// Hosts and controls it concerns (in one incident's JSON; empty in lists).
    #[serde(default)]
    pub links: Vec<IncidentLink>,
    /// Files attached (in one incident's JSON; empty in lists).
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct IncidentLink {
    /// `host` or `control`.
    pub kind: String,
    pub target: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    pub name: String,
    pub sha256: String,
    pub size: i64,
    pub content_type: String,
    /// `clean` (clamd found nothing) or `not_scanned` (no clamd configured).
    pub scan: String,
    pub added_at: String,
    pub added_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IncidentEvent {
    pub at: String,
    pub actor: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub note: Option<String>,
    /// Shown on the submitter's status page.
    #[serde(default)]
    pub public: bool,
}

pub const SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];

/// 72 hours (GDPR Art. 33) from marking to the authority's notification.
pub const BREACH_NOTIFY_MS: i64 = 72 * 3_600_000;

/// The time from `now` to `by` in words.
pub fn time_left(by: i64, now: i64) -> String {
    let d = by.saturating_sub(now);
    let mins = d.unsigned_abs() / 60_000;
    let words = format!("{} h {} min", mins / 60, mins % 60);
    if d >= 0 {
        format!("{words} left")
    } else {
        format!("passed {words} ago")
    }
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

/// A secret for an incident's status page: 32 random bytes, hex. Only its
/// SHA-256 is stored.
pub fn new_status_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Whether `contact` is a bare e-mail address an acknowledgement can go to.
pub fn email_of(contact: Option<&str>) -> Option<&str> {
    let c = contact?.trim();
    let (local, domain) = c.split_once('@')?;
    (!local.is_empty()
        && domain.contains('.')
        && !c.contains([' ', '<', '>', ',', ';', '\n', '\r'])
        && c.parse::<lettre::message::Mailbox>().is_ok())
    .then_some(c)
}

/// Stores a new incident, its first event, its audit entry and its notices
/// (`incident.new` to staff, the acknowledgement to the submitter) in one
/// transaction; returns the time and the status page's secret.
async fn insert(
    state: &Shared,
    id: &str,
    v: &ValidIncident,
    addr: &str,
) -> Result<(i64, String), StoreError> {
    let now = now_ms();
    let token = new_status_token();
    // The audit log's writer lock first, then the transaction (as the log does).
    let _g = state.audit.write_lock().await;
    let mut tx = state.store.pool.begin().await?;
    sqlx::query("INSERT INTO incidents (id, created_at, updated_at, status, contact, summary, description, affected, source_addr, status_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(id)
        .bind(now)
        .bind(now)
        .bind("new")
        .bind(v.contact.as_deref())
        .bind(&v.summary)
        .bind(&v.description)
        .bind(v.affected_area.as_deref())
        .bind(addr)
        .bind(sha256_hex(&token))
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO incident_events (incident_id, seq, at, actor, from_status, to_status, note, public) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(id)
        .bind(1_i64)
        .bind(now)
        .bind("submitter")
        .bind(None::<String>)
        .bind("new")
        .bind(None::<String>)
        .bind(1_i64)
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
    // The notice carries the tracking id and a link, never the submitter's text.
    let link = state.site.url(&format!("/reports/incidents/{id}"));
    let notice = crate::notify::Notice::new(
        "incident.new",
        id.to_owned(),
        format!("New incident report {id}: {link}"),
        serde_json::json!({"tracking_id": id, "created_at": rfc3339(now), "url": link}),
    );
    crate::notify::enqueue(&mut tx, &state.site.notify, &notice, now).await?;
    if let Some(to) = email_of(v.contact.as_deref()) {
        let status_url = state.site.url(&format!("/incident-status/{token}"));
        crate::notify::enqueue_ack(
            &mut tx,
            &state.site.notify,
            &crate::notify::Ack {
                to,
                tracking_id: id,
                status_url: &status_url,
                organization: &state.site.organization,
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok((now, token))
}

const COLS: &str = "id, status, created_at, updated_at, contact, summary, description, affected, severity, assignee, breach_notify_by";

fn incident_from(r: &sqlx::any::AnyRow) -> Result<Incident, StoreError> {
    let by: Option<i64> = r.try_get("breach_notify_by")?;
    Ok(Incident {
        tracking_id: r.try_get("id")?,
        status: r.try_get("status")?,
        created_at: rfc3339(r.try_get("created_at")?),
        updated_at: rfc3339(r.try_get("updated_at")?),
        contact: r.try_get("contact")?,
        summary: r.try_get("summary")?,
        description: r.try_get("description")?,
        affected_area: r.try_get("affected")?,
        severity: r.try_get("severity")?,
        assignee: r.try_get("assignee")?,
        personal_data_breach: by.is_some(),
        breach_notify_by: by.map(rfc3339),
        breach_time_left: by.map(|b| time_left(b, now_ms())),
        links: vec![],
        attachments: vec![],
    })
}

pub async fn list(
    state: &Shared,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<Incident>, StoreError> {
    let cols = COLS;
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
    let row = sqlx::query(&format!("SELECT {COLS} FROM incidents WHERE id = $1"))
        .bind(id)
        .fetch_optional(&state.store.pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut inc = incident_from(&row)?;
    inc.links = sqlx::query(
        "SELECT kind, target FROM incident_links WHERE incident_id = $1 ORDER BY kind, target",
    )
    .bind(id)
    .fetch_all(&state.store.pool)
    .await?
    .iter()
    .map(|r| {
        Ok(IncidentLink {
            kind: r.try_get("kind")?,
            target: r.try_get("target")?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    inc.attachments = sqlx::query("SELECT name, sha256, size, content_type, scan, added_at, added_by FROM incident_attachments WHERE incident_id = $1 ORDER BY added_at, sha256")
        .bind(id)
        .fetch_all(&state.store.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Attachment {
                name: r.try_get("name")?,
                sha256: r.try_get("sha256")?,
                size: r.try_get("size")?,
                content_type: r.try_get("content_type")?,
                scan: r.try_get("scan")?,
                added_at: rfc3339(r.try_get("added_at")?),
                added_by: r.try_get("added_by")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let rows = sqlx::query("SELECT at, actor, from_status, to_status, note, public FROM incident_events WHERE incident_id = $1 ORDER BY seq")
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
                public: r.try_get::<i64, _>("public")? != 0,
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

/// What one triage step changes; absent fields stay as they are.
#[derive(Debug, Default, Clone)]
pub struct Change<'a> {
    pub to: Option<&'a str>,
    pub note: Option<&'a str>,
    /// The note is shown on the submitter's status page.
    pub public: bool,
    pub severity: Option<&'a str>,
    /// `Some("")` clears it.
    pub assignee: Option<&'a str>,
    pub personal_data_breach: Option<bool>,
    pub hosts: &'a [String],
    pub controls: &'a [String],
}

/// Moves an incident to `to` (or adds a note), recording who and when.
pub async fn transition(
    state: &Shared,
    id: &str,
    to: Option<&str>,
    note: Option<&str>,
    actor: &str,
) -> ApiResult<(Incident, Vec<IncidentEvent>)> {
    transition_with(
        state,
        id,
        &Change {
            to,
            note,
            ..Change::default()
        },
        actor,
    )
    .await
}

/// One triage step: status, note, severity, assignee, the breach mark,
/// links; all in one transaction with its audit entry.
pub async fn transition_with(
    state: &Shared,
    id: &str,
    c: &Change<'_>,
    actor: &str,
) -> ApiResult<(Incident, Vec<IncidentEvent>)> {
    let note = c.note.map(str::trim).filter(|n| !n.is_empty());
    if let Some(n) = c.note {
        check_text("note", n, 4000, true).map_err(ApiError::BadRequest)?;
    }
    if let Some(s) = c.severity {
        if !SEVERITIES.contains(&s) {
            return Err(ApiError::BadRequest(format!(
                "`severity` must be one of {}",
                SEVERITIES.join(", ")
            )));
        }
    }
    if let Some(a) = c.assignee {
        if !a.is_empty() {
            check_text("assignee", a, MAX_SHORT_CHARS, false).map_err(ApiError::BadRequest)?;
        }
    }
    // Links name hosts the reporter knows and controls of the policy or of reports.
    if !c.hosts.is_empty() {
        let agents = state.store.agents().await?;
        if let Some(h) = c
            .hosts
            .iter()
            .find(|h| !agents.iter().any(|a| &a.host == *h))
        {
            return Err(ApiError::BadRequest(format!("no host `{h}`")));
        }
    }
    if !c.controls.is_empty() {
        let policy: Vec<String> = state
            .policy()
            .map(|p| p.controls.into_iter().map(|c| c.0).collect())
            .unwrap_or_default();
        let reported = state.store.latest_controls(now_ms()).await?;
        if let Some(x) = c
            .controls
            .iter()
            .find(|x| !policy.contains(x) && !reported.iter().any(|r| &r.control_id == *x))
        {
            return Err(ApiError::BadRequest(format!("no control `{x}`")));
        }
    }
    let _g = state.audit.write_lock().await;
    let mut tx = state.store.begin_write().await?;
    let row = sqlx::query(
        "SELECT status, severity, assignee, breach_notify_by FROM incidents WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let row = row.ok_or_else(|| ApiError::NotFound(format!("no incident `{id}`")))?;
    let cur: String = row.try_get("status").map_err(StoreError::from)?;
    let cur_severity: Option<String> = row.try_get("severity").map_err(StoreError::from)?;
    let cur_assignee: Option<String> = row.try_get("assignee").map_err(StoreError::from)?;
    let cur_breach: Option<i64> = row.try_get("breach_notify_by").map_err(StoreError::from)?;
    let to = c.to.unwrap_or(&cur).to_owned();
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
    let severity = c.severity.map(str::to_owned).or(cur_severity.clone());
    let assignee = match c.assignee {
        Some("") => None,
        Some(a) => Some(a.to_owned()),
        None => cur_assignee.clone(),
    };
    let now = now_ms();
    let breach = match c.personal_data_breach {
        // Marking again keeps the first deadline: the clock does not restart.
        Some(true) => Some(cur_breach.unwrap_or(now.saturating_add(BREACH_NOTIFY_MS))),
        Some(false) => None,
        None => cur_breach,
    };
    let changed = to != cur
        || note.is_some()
        || severity != cur_severity
        || assignee != cur_assignee
        || breach != cur_breach
        || !c.hosts.is_empty()
        || !c.controls.is_empty();
    if !changed {
        return Err(ApiError::BadRequest(
            "give a new `status`, a `note`, or another change".into(),
        ));
    }
    let seq: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM incident_events WHERE incident_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    sqlx::query("INSERT INTO incident_events (incident_id, seq, at, actor, from_status, to_status, note, public) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(id)
        .bind(seq)
        .bind(now)
        .bind(actor)
        .bind(Some(cur.clone()))
        .bind(&to)
        .bind(note)
        .bind(i64::from(c.public && note.is_some()))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    sqlx::query("UPDATE incidents SET status = $1, updated_at = $2, severity = $3, assignee = $4, breach_notify_by = $5, breach_marked_at = $6 WHERE id = $7")
        .bind(&to)
        .bind(now)
        .bind(severity.as_deref())
        .bind(assignee.as_deref())
        .bind(breach)
        .bind(breach.map(|b| b.saturating_sub(BREACH_NOTIFY_MS)))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    for (kind, targets) in [("host", c.hosts), ("control", c.controls)] {
        for t in targets {
            sqlx::query("INSERT INTO incident_links (incident_id, kind, target, added_at, added_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (incident_id, kind, target) DO NOTHING")
                .bind(id)
                .bind(kind)
                .bind(t)
                .bind(now)
                .bind(actor)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        }
    }
    state
        .audit
        .append_in(
            &mut tx,
            state.store.backend,
            "incident.transition",
            actor,
            serde_json::json!({"tracking_id": id, "from": cur, "to": to, "note_sha256": note.map(sha256_hex),
                "severity": severity, "assignee": assignee,
                "breach_notify_by": breach.map(rfc3339),
                "hosts": c.hosts, "controls": c.controls}),
        )
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    drop(_g);
    tracing::info!(incident = %id, from = %cur, to = %to, by = %actor, "incident triaged");
    get_one(state, id)
        .await?
        .ok_or_else(|| ApiError::Internal("incident vanished".into()))
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
) -> Result<Receipt, Refusal> {
    let cfg = &state.site.intake;
    let peer = client_addr(peer, headers, &state.site.trusted_proxies);
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
    let g = state.site.intake_global.count(now_ms(), 3_600_000);
    if g > cfg.global_per_hour {
        if g == cfg.global_per_hour.saturating_add(1) {
            tracing::warn!("incident intake: the global limit is reached for the rest of the hour");
        }
        return Err(Refusal::Status(
            StatusCode::TOO_MANY_REQUESTS,
            "too many reports right now; try again in an hour".into(),
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
        return Ok(Receipt {
            tracking_id: new_tracking_id(),
            received_at: rfc3339(now_ms()),
            status_url: state
                .site
                .url(&format!("/incident-status/{}", new_status_token())),
        });
    };
    let id = new_tracking_id();
    let (at, token) = insert(state, &id, &valid, &addr)
        .await
        .map_err(Refusal::Store)?;
    tracing::info!(incident = %id, %addr, "incident reported");
    Ok(Receipt {
        tracking_id: id,
        received_at: rfc3339(at),
        status_url: state.site.url(&format!("/incident-status/{token}")),
    })
}

struct Receipt {
    tracking_id: String,
    received_at: String,
    status_url: String,
}

// --- JSON routes ------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentReceipt {
    /// Quote it in any follow-up.
    pub tracking_id: String,
    pub status: String,
    pub received_at: String,
    /// A secret link to the incident's status and public notes (no login).
    pub status_url: String,
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
    let r = submit(&state, peer, &headers, body, Kind::Json).await?;
    Ok((
        StatusCode::CREATED,
        Json(IncidentReceipt {
            tracking_id: r.tracking_id,
            status: "new".into(),
            received_at: r.received_at,
            status_url: r.status_url,
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
    /// Show the note on the submitter's status page (default false).
    #[serde(default)]
    pub public: bool,
    /// `low`, `medium`, `high` or `critical`.
    #[serde(default)]
    pub severity: Option<String>,
    /// Who handles it; `""` clears it.
    #[serde(default)]
    pub assignee: Option<String>,
    /// true marks a personal-data breach (the 72-hour notification clock
    /// starts, once); false clears the mark.
    #[serde(default)]
    pub personal_data_breach: Option<bool>,
    /// Hosts the incident concerns (added to its links).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Controls the incident concerns (added to its links).
    #[serde(default)]
    pub controls: Vec<String>,
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
    if req.hosts.len() + req.controls.len() > 100 {
        return Err(ApiError::BadRequest("at most 100 links at a time".into()));
    }
    let (incident, events) = transition_with(
        &state,
        &id,
        &Change {
            to: req.status.as_deref(),
            note: req.note.as_deref(),
            public: req.public,
            severity: req.severity.as_deref(),
            assignee: req.assignee.as_deref(),
            personal_data_breach: req.personal_data_breach,
            hosts: &req.hosts,
            controls: &req.controls,
        },
        &user.name,
    )
    .await?;
    Ok(Json(IncidentDetail { incident, events }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AttachmentQuery {
    /// The file's name (letters, digits, `.`, `-`, `_`; at most 100).
    pub name: String,
}

/// Whether an attachment's name is plain (no path, no control characters).
pub fn valid_attachment_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 100
        && !n.starts_with('.')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

async fn clamd_scan(target: &str, bytes: &[u8]) -> Result<bool, String> {
    use clamav_client::tokio as clam;
    let answer = if target.starts_with('/') {
        clam::scan_buffer(
            bytes,
            clam::Socket {
                socket_path: target,
            },
            None,
        )
        .await
    } else {
        clam::scan_buffer(
            bytes,
            clam::Tcp {
                host_address: target,
            },
            None,
        )
        .await
    }
    .map_err(|e| format!("clamd: {e}"))?;
    clamav_client::clean(&answer).map_err(|e| format!("clamd: {e}"))
}

/// Attaches a file to an incident (staff): size-capped, scanned by clamd when
/// configured (refused when infected, 503 when clamd cannot answer), stored
/// under its SHA-256 in `DATA/attachments/`.
#[utoipa::path(post, path = "/api/v1/incidents/{tracking_id}/attachments", tag = "incidents", security(("bearer" = [])),
    params(("tracking_id" = String, Path, description = "INC-…"), AttachmentQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Attachment), (status = 400, description = "bad name or empty file"), (status = 401, description = "not staff"),
        (status = 404, description = "unknown incident"), (status = 413, description = "too large"), (status = 422, description = "clamd found malware"),
        (status = 503, description = "clamd is configured and could not scan")))]
pub async fn attach(
    State(state): State<Shared>,
    Staff(user): Staff,
    Path(id): Path<String>,
    Query(q): Query<AttachmentQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Attachment>), Refusal> {
    let cfg = &state.site.intake;
    let bad = |m: String| Refusal::Status(StatusCode::BAD_REQUEST, m);
    if !valid_attachment_name(&q.name) {
        return Err(bad("`name` may hold letters, digits, `.`, `-` and `_` (at most 100, not starting with `.`)".into()));
    }
    let exists: Option<String> = sqlx::query_scalar("SELECT id FROM incidents WHERE id = $1")
        .bind(&id)
        .fetch_optional(&state.store.pool)
        .await
        .map_err(|e| Refusal::Store(e.into()))?;
    if exists.is_none() {
        return Err(Refusal::Status(
            StatusCode::NOT_FOUND,
            format!("no incident `{id}`"),
        ));
    }
    let too_large = || {
        Refusal::Status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "an attachment may be at most {} bytes",
                cfg.max_attachment_bytes
            ),
        )
    };
    let bytes = axum::body::to_bytes(body, cfg.max_attachment_bytes)
        .await
        .map_err(|_| too_large())?;
    if bytes.is_empty() {
        return Err(bad("the file is empty".into()));
    }
    let scan = match &cfg.clamd {
        Some(target) => match clamd_scan(target, &bytes).await {
            Ok(true) => "clean",
            Ok(false) => {
                tracing::warn!(incident = %id, "attachment refused: clamd found malware");
                return Err(Refusal::Status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "the file was refused: the virus scanner found malware in it".into(),
                ));
            }
            Err(e) => {
                tracing::error!(incident = %id, error = %e, "attachment not scanned");
                return Err(Refusal::Status(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the virus scanner could not scan the file; try again later".into(),
                ));
            }
        },
        None => "not_scanned",
    };
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 100 && v.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        .unwrap_or("application/octet-stream")
        .to_owned();
    let dir = state.exports_dir.with_file_name("attachments");
    let path = dir.join(&digest);
    let write = {
        let (dir, path, bytes) = (dir.clone(), path.clone(), bytes.clone());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            if path.exists() {
                return Ok(());
            }
            let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
            std::io::Write::write_all(&mut tmp, &bytes)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })
    };
    match write.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot store an attachment");
            return Err(Refusal::Store(StoreError::Corrupt(
                "cannot store the attachment".into(),
            )));
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store an attachment");
            return Err(Refusal::Store(StoreError::Corrupt(
                "cannot store the attachment".into(),
            )));
        }
    }
    let now = now_ms();
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    let _g = state.audit.write_lock().await;
    let mut tx = state
        .store
        .pool
        .begin()
        .await
        .map_err(|e| Refusal::Store(e.into()))?;
    sqlx::query("INSERT INTO incident_attachments (incident_id, sha256, name, size, content_type, scan, added_at, added_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (incident_id, sha256) DO NOTHING")
        .bind(&id)
        .bind(&digest)
        .bind(&q.name)
        .bind(size)
        .bind(&ctype)
        .bind(scan)
        .bind(now)
        .bind(&user.name)
        .execute(&mut *tx)
        .await
        .map_err(|e| Refusal::Store(e.into()))?;
    state
        .audit
        .append_in(
            &mut tx,
            state.store.backend,
            "incident.attachment",
            &user.name,
            serde_json::json!({"tracking_id": id, "sha256": digest, "size": size, "scan": scan}),
        )
        .await
        .map_err(Refusal::Store)?;
    tx.commit().await.map_err(|e| Refusal::Store(e.into()))?;
    Ok((
        StatusCode::CREATED,
        Json(Attachment {
            name: q.name,
            sha256: digest,
            size,
            content_type: ctype,
            scan: scan.to_owned(),
            added_at: rfc3339(now),
            added_by: user.name,
        }),
    ))
}

// --- the submitter's status page ---------------------------------------------------

/// An incident as its submitter sees it: status and public history only.
#[derive(Debug, Serialize)]
pub struct PublicStatus {
    pub tracking_id: String,
    pub status: String,
    pub received_at: String,
    pub updated_at: String,
    /// Status changes, and notes staff chose to share.
    pub history: Vec<PublicEvent>,
}

#[derive(Debug, Serialize)]
pub struct PublicEvent {
    pub at: String,
    pub status: String,
    pub note: Option<String>,
}

pub async fn public_status(
    state: &Shared,
    token: &str,
) -> Result<Option<PublicStatus>, StoreError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM incidents WHERE status_digest = $1")
            .bind(sha256_hex(token))
            .fetch_optional(&state.store.pool)
            .await?;
    let Some(id) = id else { return Ok(None) };
    let Some((inc, events)) = get_one(state, &id).await? else {
        return Ok(None);
    };
    let history = events
        .into_iter()
        .filter(|e| e.public || e.from_status.as_deref() != Some(e.to_status.as_str()))
        .map(|e| PublicEvent {
            at: e.at,
            status: e.to_status,
            note: if e.public { e.note } else { None },
        })
        .collect();
    Ok(Some(PublicStatus {
        tracking_id: inc.tracking_id,
        status: inc.status,
        received_at: inc.created_at,
        updated_at: inc.updated_at,
        history,
    }))
}

async fn status_page(
    State(state): State<Shared>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let Some(st) = public_status(&state, &token).await? else {
        return Err(PageError::Status(
            StatusCode::NOT_FOUND,
            "no such status page".into(),
        ));
    };
    let mut resp = state
        .site
        .render(
            "incident_status.html",
            minijinja::context! {
                title => format!("Report {}", st.tracking_id),
                organization => state.site.organization,
                st => st,
            },
        )?
        .into_response();
    // The link is the secret: keep it out of caches and referrers.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("no-referrer"),
    );
    Ok(resp)
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
    let r = submit(&state, peer, &headers, body, Kind::Form).await?;
    Ok(state
        .site
        .render(
            "incident_ack.html",
            minijinja::context! {
                title => "Report received",
                tracking_id => r.tracking_id,
                received_at => r.received_at,
                status_url => r.status_url,
                organization => state.site.organization,
            },
        )?
        .into_response())
}

/// RFC 9116: Contact (the configured contact, then the form; absolute URIs
/// only), Expires (a year ahead, recomputed on every request), Policy,
/// Preferred-Languages, Canonical. Without `public_url` nor
/// `security_contact` there is no absolute contact to give: a comment says so.
pub fn security_txt(site: &crate::web::Site, now: chrono::DateTime<chrono::Utc>) -> String {
    let expires =
        (now + chrono::Duration::days(365)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut s = String::new();
    s.push_str(&format!("# Security contact of {}\n", site.organization));
    let mut contacts = 0;
    if let Some(c) = &site.security_contact {
        s.push_str(&format!("Contact: {c}\n"));
        contacts += 1;
    }
    if site.public_url.is_some() {
        s.push_str(&format!("Contact: {}\n", site.url("/report-incident")));
        contacts += 1;
    }
    if contacts == 0 {
        s.push_str(
            "# No contact: the reporter's `public_url` or `security_contact` is not configured\n",
        );
    }
    s.push_str(&format!("Expires: {expires}\n"));
    if site.public_url.is_some() {
        s.push_str(&format!("Policy: {}\n", site.url("/policy.pdf")));
    }
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
        .route("/incident-status/{token}", get(status_page))
        .route("/.well-known/security.txt", get(security_txt_route))
}

/// This feature's `/api/v1` routes with their documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(submit_json, list_json))
        .routes(routes!(get_json))
        .routes(routes!(transition_json))
        .routes(routes!(attach))
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
    fn client_behind_trusted_proxies_only() {
        let trusted = [
            ProxyNet::parse("10.0.0.0/8").unwrap(),
            ProxyNet::parse("::1").unwrap(),
        ];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.7, 10.1.2.3".parse().unwrap(),
        );
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        // The nearest untrusted hop, not what the client prepended.
        assert_eq!(
            client_addr(Some(peer), &h, &trusted),
            "203.0.113.7".parse().ok()
        );
        let stranger: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(client_addr(Some(stranger), &h, &trusted), Some(stranger));
        let mut f = HeaderMap::new();
        f.insert(
            header::FORWARDED,
            "for=\"[2001:db8::5]:4711\";proto=https".parse().unwrap(),
        );
        assert_eq!(
            client_addr(Some("::1".parse().unwrap()), &f, &trusted),
            "2001:db8::5".parse().ok()
        );
        assert!(ProxyNet::parse("10.0.0.0/33").is_err());
        assert!(ProxyNet::parse("proxy").is_err());
        assert_eq!(time_left(3_600_000 * 2 + 60_000, 0), "2 h 1 min left");
        assert_eq!(time_left(0, 3_600_000), "passed 1 h 0 min ago");
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
