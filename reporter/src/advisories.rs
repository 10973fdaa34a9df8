//! The advisory feed the reporter keeps for every host (`patch_level`
//! with `advisories: reporter`), so that the whole fleet is judged against
//! one feed.
//!
//! - An admin uploads one: `PUT /api/v1/advisories` (the body is the feed:
//!   debsecan's per-release feed, zlib-compressed or not, or the security
//!   tracker's JSON; at most [`MAX_UPLOAD`] bytes). It is checked whole with
//!   the parser the agent uses (`vigil_rules::checks::patch_level::feeds`),
//!   stored, and the upload is audited (`advisories.uploaded`).
//! - Or the reporter fetches it: config `advisories: {url, every}` fetches
//!   the URL at start and then every `every` (default 6h); a changed feed is
//!   stored and audited (`advisories.fetched`); a failed or refused fetch
//!   keeps the feed it had and is logged.
//! - Agents fetch it with their token: `GET /api/v1/advisories`, with an
//!   ETag (the feed's SHA-256) so that an unchanged feed costs a 304. No
//!   feed: 404, and the agent's check is `error`, never a quiet pass.
//!
//! The feed lives in one row of `advisory_feed` (migration 0016).

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vigil_rules::checks::patch_level::feeds;

use crate::audit::AuditLog;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, AgentAuth};
use crate::state::{Audit, Shared};
use crate::store::{now_ms, Store, StoreError};

/// The largest upload or fetched body, in bytes (a zlib-compressed feed
/// may inflate up to `feeds::MAX_FEED`).
pub const MAX_UPLOAD: usize = 128 * 1024 * 1024;

pub use crate::config::advisories::FeedConfig;

/// What the reporter holds (the feed itself aside).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FeedInfo {
    /// SHA-256 of the feed's text: its ETag.
    pub sha256: String,
    /// `debsecan` or `security-tracker-json`.
    pub format: String,
    pub entries: i64,
    pub bytes: i64,
    /// `upload` or the URL it was fetched from.
    pub source: String,
    pub updated_by: String,
    pub updated_at: i64,
    /// Whether this upload or fetch changed the feed.
    #[serde(default)]
    pub changed: bool,
}

/// Stores a checked feed when it differs from the one held, with its audit
/// entry in the same transaction. Returns what is held now.
pub async fn store(
    store: &Store,
    audit: &AuditLog,
    checked: &feeds::Checked,
    source: &str,
    actor: &str,
    event: &str,
) -> Result<FeedInfo, ApiError> {
    let sha = hex::encode(Sha256::digest(checked.text.as_bytes()));
    let now = now_ms();
    let mut w = audit.begin(store).await?;
    let held: Option<String> = sqlx::query_scalar("SELECT sha256 FROM advisory_feed WHERE id = 1")
        .fetch_optional(&mut *w.tx)
        .await
        .map_err(StoreError::from)?;
    let changed = held.as_deref() != Some(sha.as_str());
    if changed {
        sqlx::query(
            "INSERT INTO advisory_feed (id, body, sha256, format, entries, bytes, source, updated_by, updated_at) \
             VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, sha256 = excluded.sha256, format = excluded.format, \
             entries = excluded.entries, bytes = excluded.bytes, source = excluded.source, \
             updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(&checked.text)
        .bind(&sha)
        .bind(checked.format)
        .bind(i64::try_from(checked.entries).unwrap_or(i64::MAX))
        .bind(i64::try_from(checked.text.len()).unwrap_or(i64::MAX))
        .bind(source)
        .bind(actor)
        .bind(now)
        .execute(&mut *w.tx)
        .await
        .map_err(StoreError::from)?;
        w.append(
            event,
            actor,
            json!({"sha256": sha, "format": checked.format, "entries": checked.entries,
                       "bytes": checked.text.len(), "source": source}),
        )
        .await?;
    }
    w.commit().await?;
    let mut info = info(store).await?.ok_or_else(|| {
        ApiError::Internal("the advisory feed vanished after it was stored".into())
    })?;
    info.changed = changed;
    Ok(info)
}

/// What the reporter holds, if anything.
pub async fn info(store: &Store) -> Result<Option<FeedInfo>, ApiError> {
    let row = sqlx::query(
        "SELECT sha256, format, entries, bytes, source, updated_by, updated_at FROM advisory_feed WHERE id = 1",
    )
    .fetch_optional(&store.pool)
    .await
    .map_err(StoreError::from)?;
    let Some(r) = row else {
        return Ok(None);
    };
    let get = |k: &str| r.try_get::<String, _>(k).map_err(StoreError::from);
    let num = |k: &str| r.try_get::<i64, _>(k).map_err(StoreError::from);
    Ok(Some(FeedInfo {
        sha256: get("sha256")?,
        format: get("format")?,
        entries: num("entries")?,
        bytes: num("bytes")?,
        source: get("source")?,
        updated_by: get("updated_by")?,
        updated_at: num("updated_at")?,
        changed: false,
    }))
}

/// Uploads the advisory feed (admin): checked whole, stored, audited.
#[utoipa::path(put, path = "/api/v1/advisories", tag = "staff", security(("bearer" = [])),
    request_body(content = String, content_type = "application/octet-stream",
        description = "the feed: debsecan's per-release feed (zlib-compressed or not) or the Debian security tracker's JSON; at most 128 MiB"),
    responses((status = 200, body = FeedInfo, description = "the feed held now; `changed` is false when it was the same"),
        (status = 400, description = "not a feed the agent's parser accepts, with the reason"),
        (status = 401, description = "not staff"), (status = 403, description = "not an admin"),
        (status = 413, description = "larger than 128 MiB")))]
pub async fn upload(
    State(store): State<Store>,
    State(audit): State<Audit>,
    Admin(user): Admin,
    body: axum::body::Body,
) -> ApiResult<Json<FeedInfo>> {
    let bytes = axum::body::to_bytes(body, MAX_UPLOAD).await.map_err(|_| {
        ApiError::TooLarge(format!(
            "the advisory feed is larger than {MAX_UPLOAD} bytes (or was cut off)"
        ))
    })?;
    let checked = feeds::check(&bytes, feeds::MAX_FEED)
        .map_err(|e| ApiError::BadRequest(format!("the advisory feed is refused: {e}")))?;
    let info = self::store(
        &store,
        &audit,
        &checked,
        "upload",
        &user.name,
        "advisories.uploaded",
    )
    .await?;
    tracing::info!(sha256 = %info.sha256, format = %info.format, entries = info.entries, by = %user.name, "advisory feed uploaded");
    Ok(Json(info))
}

/// The advisory feed for agents, with its SHA-256 as ETag.
#[utoipa::path(get, path = "/api/v1/advisories", tag = "agents", security(("bearer" = [])),
    params(("If-None-Match" = Option<String>, Header, description = "the ETag of the feed the agent holds")),
    responses((status = 200, content_type = "text/plain", body = String, description = "the feed's text (inflated), `ETag` its SHA-256"),
        (status = 304, description = "unchanged since the ETag given"),
        (status = 401, description = "unknown or revoked token"),
        (status = 404, description = "the reporter holds no feed: the agent's check is `error`")))]
pub async fn for_agent(
    State(store): State<Store>,
    AgentAuth(_agent): AgentAuth,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(held) = info(&store).await? else {
        return Err(ApiError::NotFound(
            "the reporter holds no advisory feed: an admin uploads one (PUT /api/v1/advisories) or config `advisories.url` fetches one".into(),
        ));
    };
    let etag = format!("\"{}\"", held.sha256);
    let wanted = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let tag = HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.to_string()))?;
    if wanted {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    let body: Option<String> = sqlx::query_scalar("SELECT body FROM advisory_feed WHERE id = 1")
        .fetch_optional(&store.pool)
        .await
        .map_err(StoreError::from)?;
    let body = body.ok_or_else(|| ApiError::NotFound("the advisory feed was removed".into()))?;
    Ok((
        StatusCode::OK,
        [
            (header::ETAG, tag),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
        ],
        body,
    )
        .into_response())
}

/// Fetches the configured feed once: `Ok(info)` when it was stored (changed
/// or not).
pub async fn fetch_once(
    store: &Store,
    audit: &AuditLog,
    client: &reqwest::Client,
    cfg: &FeedConfig,
) -> Result<FeedInfo, String> {
    let resp = client
        .get(&cfg.url)
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .map_err(|e| format!("cannot fetch `{}`: {e}", cfg.url))?;
    if !resp.status().is_success() {
        return Err(format!("`{}` answered {}", cfg.url, resp.status()));
    }
    if resp.content_length().is_some_and(|n| n > MAX_UPLOAD as u64) {
        return Err(format!("`{}` is larger than {MAX_UPLOAD} bytes", cfg.url));
    }
    let mut resp = resp;
    let mut bytes: Vec<u8> = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("cannot read `{}`: {e}", cfg.url))?
    {
        if bytes.len() + chunk.len() > MAX_UPLOAD {
            return Err(format!("`{}` is larger than {MAX_UPLOAD} bytes", cfg.url));
        }
        bytes.extend_from_slice(&chunk);
    }
    let checked = tokio::task::spawn_blocking(move || feeds::check(&bytes, feeds::MAX_FEED))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("the feed at `{}` is refused: {e}", cfg.url))?;
    self::store(
        store,
        audit,
        &checked,
        &cfg.url,
        "reporter",
        "advisories.fetched",
    )
    .await
    .map_err(|e| e.to_string())
}

/// Fetches the configured feed now and then every `every`, for as long as
/// the reporter runs. A failure keeps the feed held and is logged.
pub fn spawn(store: Store, audit: Audit, cfg: Option<FeedConfig>) {
    let Some(cfg) = cfg else {
        return;
    };
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut tick = tokio::time::interval(cfg.interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match fetch_once(&store, &audit, &client, &cfg).await {
                Ok(i) if i.changed => {
                    tracing::info!(sha256 = %i.sha256, format = %i.format, entries = i.entries, "advisory feed fetched: new content")
                }
                Ok(_) => tracing::debug!("advisory feed fetched: unchanged"),
                Err(e) => tracing::warn!("{e}; keeping the advisory feed held"),
            }
        }
    });
}

/// `PUT`/`GET /api/v1/advisories`.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(upload, for_agent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_config_interval() {
        let c: FeedConfig =
            serde_json::from_value(json!({"url": "http://127.0.0.1:1/f", "every": "30m"})).unwrap();
        assert_eq!(c.interval(), Duration::from_secs(1800));
        let c: FeedConfig = serde_json::from_value(json!({"url": "u"})).unwrap();
        assert_eq!(c.interval(), Duration::from_secs(6 * 3600));
        assert!(serde_json::from_value::<FeedConfig>(json!({"url": "u", "evry": "1h"})).is_err());
    }
}
