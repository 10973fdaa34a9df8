//! The incidents in the store: insert, list, read, triage (with its events
//! and notices), and the submitter's tracking id and status token.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::input::{check_text, ValidIncident, MAX_SHORT_CHARS};
use crate::error::{ApiError, ApiResult};
use crate::posture::rfc3339;
use crate::state::Shared;
use crate::store::{now_ms, StoreError};

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

pub(super) fn sha256_hex(s: &str) -> String {
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
pub(super) async fn insert(
    state: &Shared,
    id: &str,
    v: &ValidIncident,
    addr: &str,
) -> Result<(i64, String), StoreError> {
    let now = now_ms();
    let token = new_status_token();
    // The audit log's writer lock first, then the transaction (as the log does).
    let mut w = state.audit.begin(&state.store).await?;
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
        .execute(&mut *w.tx)
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
        .execute(&mut *w.tx)
        .await?;
    // The log holds a digest of what was submitted, not the text itself.
    let content = serde_json::json!([v.summary, v.description, v.affected_area, v.contact]);
    w.append("incident.reported",
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
    crate::notify::enqueue(&mut w.tx, &state.site.notify, &notice, now).await?;
    if let Some(to) = email_of(v.contact.as_deref()) {
        let status_url = state.site.url(&format!("/incident-status/{token}"));
        crate::notify::enqueue_ack(
            &mut w.tx,
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
    w.commit().await?;
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
        let reported = crate::fleet_state::reported_controls(&state.store).await?;
        if let Some(x) = c
            .controls
            .iter()
            .find(|x| !policy.contains(x) && !reported.contains(x))
        {
            return Err(ApiError::BadRequest(format!("no control `{x}`")));
        }
    }
    let mut w = state.audit.begin(&state.store).await?;
    let row = sqlx::query(
        "SELECT status, severity, assignee, breach_notify_by FROM incidents WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *w.tx)
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
    .fetch_one(&mut *w.tx)
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
        .execute(&mut *w.tx)
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
        .execute(&mut *w.tx)
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
                .execute(&mut *w.tx)
                .await
                .map_err(StoreError::from)?;
        }
    }
    w.append("incident.transition",
            actor,
            serde_json::json!({"tracking_id": id, "from": cur, "to": to, "note_sha256": note.map(sha256_hex),
                "severity": severity, "assignee": assignee,
                "breach_notify_by": breach.map(rfc3339),
                "hosts": c.hosts, "controls": c.controls}),
        )
        .await?;
    w.commit().await?;
    tracing::info!(incident = %id, from = %cur, to = %to, by = %actor, "incident triaged");
    get_one(state, id)
        .await?
        .ok_or_else(|| ApiError::Internal("incident vanished".into()))
}
