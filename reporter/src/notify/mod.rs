//! Notices to staff (and acknowledgements to incident submitters) by webhook
//! and e-mail, through an outbox.
//!
//! - [`Notice`] is one event (`incident.new`, `control.failed`, …) with its
//!   de-duplication key; [`enqueue`] writes it into the `notices` table, one
//!   row per channel, `INSERT … ON CONFLICT DO NOTHING` on (key, channel,
//!   recipient), so the same event is never recorded or sent twice.
//! - [`scan`] looks at the store on a timer and finds the events that come
//!   from time or from reports (a control starting to fail or recovering, a
//!   host going stale, something expiring, an erasure overdue, a breach
//!   deadline near). Ingest never waits for it: it only reads what ingest stored.
//! - [`deliver`] drains the outbox in the background: webhook POSTs (JSON or a
//!   Slack-compatible `{"text"}`), SMTP (STARTTLS or implicit TLS, lettre over
//!   rustls), retries with backoff, and the daily digest of e-mails.
//!
//! INVARIANT: every notice sent (or given up on) is a row of `notices` with
//! its attempts, `sent_at` or `failed_at`, and the last error.

pub mod deliver;
pub mod scan;

use axum::extract::{Query, State};
use axum::Json;
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

pub use crate::config::notify::{NotifyConfig, SmtpConfig, WebhookFormat};
// --- events ---------------------------------------------------------------------

pub const EVENTS: &[&str] = &[
    "incident.new",
    "control.failed",
    "control.recovered",
    "host.stale",
    "expiring",
    "erasure.overdue",
    "breach.deadline",
];

/// One event to tell staff of.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub event: &'static str,
    /// The same key twice is one notice.
    pub key: String,
    /// One line for chat and the e-mail subject.
    pub text: String,
    /// The event's own fields (`host`, `control`, `tracking_id`, …).
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Notice {
    pub fn new(event: &'static str, key: String, text: String, fields: serde_json::Value) -> Self {
        Notice {
            event,
            key: format!("{event}|{key}"),
            text,
            fields: match fields {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            },
        }
    }

    /// The webhook's JSON body: `{"event", "at", "text", …fields}`.
    pub fn json(&self, at: i64) -> serde_json::Value {
        let mut m = self.fields.clone();
        m.insert("event".into(), self.event.into());
        m.insert("at".into(), rfc3339(at).into());
        m.insert("text".into(), self.text.clone().into());
        serde_json::Value::Object(m)
    }

    /// Sent at once even when e-mails are held for the digest.
    pub fn urgent(&self) -> bool {
        matches!(self.event, "incident.new" | "breach.deadline")
    }
}

/// An acknowledgement e-mail to an incident's submitter.
pub struct Ack<'a> {
    pub to: &'a str,
    pub tracking_id: &'a str,
    pub status_url: &'a str,
    pub organization: &'a str,
}

/// When the next daily digest goes out, after `now` (UTC).
pub fn next_digest_at(now: i64, hour: u32) -> i64 {
    let day_ms = 86_400_000;
    let start = now.div_euclid(day_ms).saturating_mul(day_ms);
    let at = start.saturating_add(i64::from(hour.min(23)) * 3_600_000);
    if at > now {
        at
    } else {
        at.saturating_add(day_ms)
    }
}

/// Both backends take `ON CONFLICT DO NOTHING` (SQLite 3.24+, PostgreSQL 9.5+).
const INSERT_SQL: &str = "INSERT INTO notices (event, dedup_key, channel, recipient, payload, created_at, digest, attempts, next_attempt_at, claimed_until) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, 0) ON CONFLICT (dedup_key, channel, recipient) DO NOTHING";

/// Records `n` for each configured channel, inside `conn`'s transaction;
/// returns how many rows were new (0 when it was seen before or nothing is configured).
pub async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    cfg: &NotifyConfig,
    n: &Notice,
    now: i64,
) -> Result<u64, StoreError> {
    let payload = n.json(now).to_string();
    let mut added = 0;
    if cfg.webhook.is_some() {
        added += sqlx::query(INSERT_SQL)
            .bind(n.event)
            .bind(&n.key)
            .bind("webhook")
            .bind("webhook")
            .bind(&payload)
            .bind(now)
            .bind(0_i64)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    if let Some(smtp) = &cfg.smtp {
        if !smtp.to.is_empty() {
            let held = cfg.digest && !n.urgent();
            added += sqlx::query(INSERT_SQL)
                .bind(n.event)
                .bind(&n.key)
                .bind("email")
                .bind(smtp.to.join(", "))
                .bind(&payload)
                .bind(now)
                .bind(i64::from(held))
                .bind(if held {
                    next_digest_at(now, cfg.digest_hour)
                } else {
                    now
                })
                .execute(&mut *conn)
                .await?
                .rows_affected();
        }
    }
    Ok(added)
}

/// Records `n` in a transaction of its own.
pub async fn enqueue_now(state: &crate::state::AppState, n: &Notice) -> Result<u64, StoreError> {
    let mut tx = state.store.pool.begin().await?;
    let added = enqueue(&mut tx, &state.site.notify, n, now_ms()).await?;
    tx.commit().await?;
    if added > 0 {
        tracing::info!(event = n.event, key = %n.key, "notice queued");
    }
    Ok(added)
}

/// Queues the acknowledgement e-mail to a submitter (when e-mail is configured).
pub async fn enqueue_ack(
    conn: &mut sqlx::AnyConnection,
    cfg: &NotifyConfig,
    ack: &Ack<'_>,
    now: i64,
) -> Result<u64, StoreError> {
    if cfg.smtp.is_none() {
        return Ok(0);
    }
    let payload = serde_json::json!({
        "event": "incident.ack",
        "tracking_id": ack.tracking_id,
        "status_url": ack.status_url,
        "organization": ack.organization,
        "at": rfc3339(now),
    });
    Ok(sqlx::query(INSERT_SQL)
        .bind("incident.ack")
        .bind(format!("incident.ack|{}", ack.tracking_id))
        .bind("ack")
        .bind(ack.to)
        .bind(payload.to_string())
        .bind(now)
        .bind(0_i64)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

// --- the record, for staff ----------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NoticeRecord {
    pub id: i64,
    pub event: String,
    /// `webhook`, `email` (staff) or `ack` (a submitter's acknowledgement).
    pub channel: String,
    /// `webhook`, or the addresses; an acknowledgement's address is not shown.
    pub recipient: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: String,
    pub digest: bool,
    pub attempts: i64,
    pub sent_at: Option<String>,
    pub failed_at: Option<String>,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NoticesResponse {
    pub notices: Vec<NoticeRecord>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NoticesQuery {
    /// Only this event.
    pub event: Option<String>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

pub async fn records(
    state: &crate::state::AppState,
    event: Option<&str>,
    limit: i64,
) -> Result<Vec<NoticeRecord>, StoreError> {
    let cols = "id, event, channel, recipient, payload, created_at, digest, attempts, sent_at, failed_at, next_attempt_at, last_error";
    let rows = match event {
        Some(e) => {
            sqlx::query(&format!(
                "SELECT {cols} FROM notices WHERE event = $1 ORDER BY id DESC LIMIT $2"
            ))
            .bind(e)
            .bind(limit)
            .fetch_all(&state.store.pool)
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {cols} FROM notices ORDER BY id DESC LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(&state.store.pool)
            .await?
        }
    };
    rows.iter()
        .map(|r| {
            let channel: String = r.try_get("channel")?;
            let sent: Option<i64> = r.try_get("sent_at")?;
            let failed: Option<i64> = r.try_get("failed_at")?;
            let next: i64 = r.try_get("next_attempt_at")?;
            Ok(NoticeRecord {
                id: r.try_get("id")?,
                event: r.try_get("event")?,
                recipient: if channel == "ack" {
                    "submitter".to_owned()
                } else {
                    r.try_get("recipient")?
                },
                channel,
                payload: serde_json::from_str(&r.try_get::<String, _>("payload")?)
                    .unwrap_or_default(),
                created_at: rfc3339(r.try_get("created_at")?),
                digest: r.try_get::<i64, _>("digest")? != 0,
                attempts: r.try_get("attempts")?,
                sent_at: sent.map(rfc3339),
                failed_at: failed.map(rfc3339),
                next_attempt_at: (sent.is_none() && failed.is_none()).then(|| rfc3339(next)),
                last_error: r.try_get("last_error")?,
            })
        })
        .collect()
}

/// Notices recorded (queued, sent, given up), newest first.
#[utoipa::path(get, path = "/api/v1/notices", tag = "staff", security(("bearer" = [])), params(NoticesQuery),
    responses((status = 200, body = NoticesResponse), (status = 400, description = "bad event or limit"), (status = 401, description = "not staff")))]
pub async fn list_json(
    State(state): State<Shared>,
    _staff: Staff,
    Query(q): Query<NoticesQuery>,
) -> ApiResult<Json<NoticesResponse>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "`limit` must be between 1 and 1000".into(),
        ));
    }
    if let Some(e) = &q.event {
        if !EVENTS.contains(&e.as_str()) && e != "incident.ack" {
            return Err(ApiError::BadRequest(format!(
                "`event` must be one of {}, incident.ack",
                EVENTS.join(", ")
            )));
        }
    }
    Ok(Json(NoticesResponse {
        notices: records(&state, q.event.as_deref(), limit).await?,
    }))
}

/// Starts the scanner and the outbox's drainer (the `serve` command calls it once).
pub fn spawn(state: Shared) {
    let st = state.clone();
    tokio::spawn(async move { scan::run(st).await });
    tokio::spawn(async move { deliver::run(state).await });
}

/// This feature's `/api/v1` routes with their documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(list_json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_goes_out_at_the_next_hour_given() {
        // 2026-12-02T16:30:00Z
        let now = 1_796_229_000_000;
        let at = next_digest_at(now, 8);
        assert_eq!(rfc3339(at), "2026-12-03T08:00:00.000Z");
        assert_eq!(rfc3339(next_digest_at(now, 17)), "2026-12-02T17:00:00.000Z");
    }

    #[test]
    fn notice_json_carries_event_and_fields() {
        let n = Notice::new(
            "control.failed",
            "web-1|SP-5|1".into(),
            "SP-5 started failing on web-1".into(),
            serde_json::json!({"host": "web-1", "control": "SP-5"}),
        );
        let j = n.json(0);
        assert_eq!(j["event"], "control.failed");
        assert_eq!(j["host"], "web-1");
        assert_eq!(n.key, "control.failed|web-1|SP-5|1");
        assert!(!n.urgent());
    }

    #[test]
    fn config_problems_are_named() {
        let c = NotifyConfig {
            smtp: Some(SmtpConfig {
                url: "ftp://x".into(),
                from: "not an address".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = c.problems();
        assert_eq!(p.len(), 2, "{p:?}");
    }
}
