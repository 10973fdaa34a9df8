//! The intake's `/api/v1` routes: the JSON submission (shared with the
//! form), staff triage and attachments.

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::input::{from_form, from_json, IncidentSubmission, ValidIncident};
use super::store::*;
use crate::config::intake::IntakeConfig;
use crate::error::PageError;
use crate::error::{ApiError, ApiResult};
use crate::extract::Staff;
use crate::net::{client_addr, Peer};
use crate::posture::rfc3339;
use crate::state::Shared;
use crate::store::{now_ms, StoreError};

/// Checks lengths and characters against `cfg`; Ok(None) for a honeypot hit.
pub fn validate(
    s: IncidentSubmission,
    cfg: &IntakeConfig,
) -> Result<Option<ValidIncident>, String> {
    super::input::validate(s, cfg.max_summary_chars, cfg.max_description_chars)
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

pub(super) enum Kind {
    Json,
    Form,
}

pub(super) async fn submit(
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

pub(super) struct Receipt {
    pub(super) tracking_id: String,
    pub(super) received_at: String,
    pub(super) status_url: String,
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
    let mut tx = state.store.begin_write().await.map_err(Refusal::Store)?;
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

/// This feature's `/api/v1` routes with their documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(submit_json, list_json))
        .routes(routes!(get_json))
        .routes(routes!(transition_json))
        .routes(routes!(attach))
}
