//! The reporter remembers the last hash of every `file_integrity` baseline
//! it saw, per host and check.
//!
//! On the host, the baseline file is protected by the hash `vigil-agent
//! baseline` records in the state directory (`baseline_tampered` when they
//! differ). Someone with root can rewrite both. What the reporter adds is a
//! history the host cannot rewrite: every change of a baseline's hash between
//! two reports is counted, kept with the previous hash, and written to the
//! audit log (`baseline.changed`), so a re-baseline (planned after an update,
//! or an intruder covering tracks) is always visible to security staff.
//! The handler reads the hashes from the report ([`seen_in`], pure); they
//! are recorded in the same group-commit transaction as the report itself
//! ([`record_in`], called from `Store::insert_reports_locked`).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use utoipa::ToSchema;
use vigil_rules::report::Report;

use sqlx::AnyConnection;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::extract::Staff;
use crate::posture::rfc3339;
use crate::state::Shared;
use crate::store::{Store, StoreError};

pub use crate::store::Seen;

/// The baselines a report carries (pure): every `file_integrity` check with
/// `evidence.baseline.sha256`.
pub fn seen_in(report: &Report) -> Vec<Seen> {
    let mut out = Vec::new();
    for c in &report.controls {
        for k in c.checks.iter().filter(|k| k.check_type == "file_integrity") {
            let Some(b) = k
                .evidence_as::<vigil_rules::checks::file_integrity::Evidence>()
                .and_then(|e| e.baseline)
            else {
                continue;
            };
            let (sha, path) = (b.sha256.as_str(), b.path.as_str());
            if sha.len() == 64 && sha.bytes().all(|x| x.is_ascii_hexdigit()) {
                out.push(Seen {
                    control_id: c.id.clone(),
                    check_id: k.id.clone(),
                    path: path.chars().take(4096).collect(),
                    sha256: sha.to_ascii_lowercase(),
                });
            }
        }
    }
    out
}

/// Records the baselines `seen` in a newly stored report of `host`, inside
/// the caller's transaction (the ingest's group commit, which holds the
/// audit log's writer lock). Returns the `baseline.changed` audit data of
/// each baseline whose hash changed; the caller appends them.
pub async fn record_in(
    conn: &mut AnyConnection,
    host: &str,
    report_id: &str,
    seen: &[Seen],
    now: i64,
) -> Result<Vec<Value>, StoreError> {
    let mut changed = Vec::new();
    for s in seen {
        let prev: Option<String> = sqlx::query_scalar(
            "SELECT sha256 FROM baselines WHERE host = $1 AND control_id = $2 AND check_id = $3",
        )
        .bind(host)
        .bind(&s.control_id)
        .bind(&s.check_id)
        .fetch_optional(&mut *conn)
        .await?;
        match prev {
            None => {
                sqlx::query("INSERT INTO baselines (host, control_id, check_id, path, sha256, previous_sha256, first_seen, last_seen, changes) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, 0)")
                    .bind(host)
                    .bind(&s.control_id)
                    .bind(&s.check_id)
                    .bind(&s.path)
                    .bind(&s.sha256)
                    .bind(now)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
            }
            Some(p) if p == s.sha256 => {
                sqlx::query("UPDATE baselines SET last_seen = $1 WHERE host = $2 AND control_id = $3 AND check_id = $4")
                    .bind(now)
                    .bind(host)
                    .bind(&s.control_id)
                    .bind(&s.check_id)
                    .execute(&mut *conn)
                    .await?;
            }
            Some(p) => {
                sqlx::query("UPDATE baselines SET path = $1, sha256 = $2, previous_sha256 = $3, first_seen = $4, last_seen = $5, changes = changes + 1 WHERE host = $6 AND control_id = $7 AND check_id = $8")
                    .bind(&s.path)
                    .bind(&s.sha256)
                    .bind(&p)
                    .bind(now)
                    .bind(now)
                    .bind(host)
                    .bind(&s.control_id)
                    .bind(&s.check_id)
                    .execute(&mut *conn)
                    .await?;
                tracing::warn!(host, control = %s.control_id, check = %s.check_id, "a file_integrity baseline changed since the last report");
                changed.push(
                    serde_json::json!({"host": host, "control": s.control_id, "check": s.check_id,
                    "path": s.path, "from": p, "to": s.sha256, "report_id": report_id}),
                );
            }
        }
    }
    Ok(changed)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BaselineView {
    pub host: String,
    pub control: String,
    pub check: String,
    pub path: String,
    /// The hash in the newest report.
    pub sha256: String,
    /// The hash before the last change (none if it never changed).
    pub previous_sha256: Option<String>,
    /// When the reporter first saw the current hash.
    pub since: String,
    pub last_seen: String,
    /// Changes seen since the first report of this baseline.
    pub changes: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BaselineList {
    pub baselines: Vec<BaselineView>,
}

/// Every file_integrity baseline's hash as last reported, with its changes.
#[utoipa::path(get, path = "/api/v1/baselines", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = BaselineList), (status = 401, description = "not staff")))]
pub async fn list(State(store): State<Store>, _staff: Staff) -> ApiResult<Json<BaselineList>> {
    let rows = sqlx::query("SELECT host, control_id, check_id, path, sha256, previous_sha256, first_seen, last_seen, changes FROM baselines ORDER BY host, control_id, check_id")
        .fetch_all(&store.pool)
        .await
        .map_err(StoreError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(BaselineView {
            host: r.try_get("host").map_err(StoreError::from)?,
            control: r.try_get("control_id").map_err(StoreError::from)?,
            check: r.try_get("check_id").map_err(StoreError::from)?,
            path: r.try_get("path").map_err(StoreError::from)?,
            sha256: r.try_get("sha256").map_err(StoreError::from)?,
            previous_sha256: r.try_get("previous_sha256").map_err(StoreError::from)?,
            since: rfc3339(r.try_get("first_seen").map_err(StoreError::from)?),
            last_seen: rfc3339(r.try_get("last_seen").map_err(StoreError::from)?),
            changes: r.try_get("changes").map_err(StoreError::from)?,
        });
    }
    Ok(Json(BaselineList { baselines: out }))
}

/// This feature's `/api/v1` routes with their documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(evidence: Value, check_type: &str) -> Report {
        serde_json::from_value(serde_json::json!({
            "schema": "vigil.report/v1", "report_id": "r-1",
            "agent": {"host": "web-1", "version": "0.1.0"},
            "policy": {"id": "p", "version": "1", "sha256": "a".repeat(64)},
            "started_at": "2026-11-26T00:00:00Z", "finished_at": "2026-11-26T00:00:01Z",
            "controls": [{"id": "SP-7", "title": "t", "status": "pass", "checks": [
                {"id": "baseline", "type": check_type, "status": "pass", "summary": "s",
                 "findings": [], "evidence": evidence, "duration_ms": 1}]}],
            "summary": {"pass": 1, "fail": 0, "error": 0, "attested": 0, "skipped": 0, "waived": 0, "unknown": 0}
        }))
        .unwrap()
    }

    #[test]
    fn baselines_are_read_from_file_integrity_evidence_only() {
        let ev = serde_json::json!({"baseline": {"path": "/var/lib/vigil/b.json", "sha256": "AB".repeat(32)}});
        assert_eq!(
            seen_in(&report(ev.clone(), "file_integrity")),
            vec![Seen {
                control_id: "SP-7".into(),
                check_id: "baseline".into(),
                path: "/var/lib/vigil/b.json".into(),
                sha256: "ab".repeat(32),
            }]
        );
        assert!(seen_in(&report(ev, "clamav")).is_empty());
        // dpkg_verify alone, or a hash that is not one: nothing to remember.
        assert!(seen_in(&report(
            serde_json::json!({"baseline": null}),
            "file_integrity"
        ))
        .is_empty());
        let bad = serde_json::json!({"baseline": {"path": "/b", "sha256": "zz"}});
        assert!(seen_in(&report(bad, "file_integrity")).is_empty());
    }
}
