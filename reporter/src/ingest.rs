//! Group commit for ingested reports.
//!
//! Every report is stored with its audit entry under the audit log's one
//! writer lock, and each commit is an fsync (SQLite `synchronous = FULL`,
//! PostgreSQL `fsync`). One transaction per report capped ingest at the disk's
//! fsync rate. Here a request queues its report and waits; one flusher task
//! drains the queue and stores everything waiting in one transaction, so
//! reports that arrive during a commit share the next one. A report is still
//! acknowledged only after the transaction holding it has committed.
//!
//! The flusher is a spawned task, not the request that happened to arrive
//! first: a client that disconnects mid-request (hyper drops its future) must
//! not cancel a commit that other agents' reports are part of.
//!
//! If a batch fails (a database error), nothing of it was stored; its reports
//! are then stored one by one so that one bad report fails alone.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use tokio::sync::oneshot;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_rules::report::{self, Report};

use crate::audit::AuditLog;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AgentAuth, ReportBody};
use crate::queue::Reply;
use crate::state::{AppState, Shared};
use crate::store::{now_ms, AgentRow, NewReport, Store, StoreError, Stored};

/// The ingest route with its documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(ingest))
}

// --- the route ------------------------------------------------------------------
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IngestResponse {
    pub report_id: String,
    /// False when this report id was already stored: acknowledged all the same.
    pub stored: bool,
}

/// Checks a report beyond its shape: ids, times, and that statuses and the
/// summary agree with the checks ([`report::validate`], pure, fuzzed).
pub fn validate_report(r: &Report) -> Result<(), String> {
    report::validate(r, chrono::Utc::now())
}

/// Reports larger than this are prepared on the blocking pool: serde_json
/// turns a 385 kB papyrs report into a `Report` in milliseconds, and its
/// compression, hash and compact checks take as long again, which on a
/// runtime worker would stall every other request on it. Below it the work
/// takes about as long as the hand-off to another thread.
pub const INLINE_PARSE_BYTES: usize = 16 * 1024;

/// The roles of each control of the published policy that has them.
type ControlRoles = std::collections::BTreeMap<String, Vec<String>>;

/// A parsed, validated report with the body it came from (moved, never copied).
struct Parsed {
    report: Report,
    body: String,
}

/// A report ready for the group commit, and the parsed report the route
/// still needs after it is stored (erasure proofs).
struct Ready {
    report: Report,
    new: NewReport,
}

/// The body is validated as UTF-8 once (taking the request's buffer, not
/// copying it), parsed once from that `str` (which serde_json then need not
/// validate again), checked, and checked to be the calling agent's.
fn parse_report(body: Bytes, host: &str) -> ApiResult<Parsed> {
    let body = String::from_utf8(Vec::from(body))
        .map_err(|_| ApiError::BadRequest("report is not UTF-8".into()))?;
    let report: Report = serde_json::from_str(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid report: {e}")))?;
    validate_report(&report).map_err(|e| ApiError::BadRequest(format!("invalid report: {e}")))?;
    if report.agent.host != host {
        return Err(ApiError::Forbidden(format!(
            "this agent reports for `{}`, not `{}`",
            host, report.agent.host
        )));
    }
    Ok(Parsed { report, body })
}

/// Whether the agent claims a waiver anywhere in `r` (then the reporter's
/// own waivers are read and [`vet_waivers`] runs before anything is
/// derived from the report).
fn claims_waiver(r: &Report) -> bool {
    r.controls.iter().any(|c| {
        c.status == report::ControlStatus::Waived || c.checks.iter().any(|k| k.waived_by.is_some())
    })
}

/// The rest of the route's CPU work, all of it outside the one flusher
/// that every report waits on: waivers vetted (when `waivers` is given),
/// then, from the vetted report, the compact checks of the maintained
/// state, the baselines seen, the summary, the SHA-256 of the body for its
/// audit entry and the compressed body the store keeps.
fn prepare(
    parsed: Parsed,
    agent: &AgentRow,
    control_roles: &ControlRoles,
    waivers: Option<(&[vigil_rules::waivers::Waiver], chrono::NaiveDate)>,
) -> ApiResult<Ready> {
    let Parsed {
        report: mut r,
        mut body,
    } = parsed;
    if let Some((waivers, today)) = waivers {
        let refused = vet_waivers(&mut r, &agent.host, &agent.roles, waivers, today);
        if !refused.is_empty() {
            tracing::warn!(host = %agent.host, controls = ?refused, "waivers claimed without a reporter waiver: stored as their underlying status");
            body = serde_json::to_string(&r).map_err(|e| ApiError::Internal(e.to_string()))?;
        }
    }
    let summary =
        serde_json::to_string(&r.summary).map_err(|e| ApiError::Internal(e.to_string()))?;
    let body_sha256 = hex::encode(sha2::Sha256::digest(body.as_bytes()));
    let body_zstd = crate::store::compress_body(&body)?;
    drop(body);
    let new = NewReport {
        report_id: r.report_id.clone(),
        agent_id: agent.id.clone(),
        host: agent.host.clone(),
        policy_id: r.policy.id.clone(),
        policy_version: r.policy.version.clone(),
        policy_sha256: r.policy.sha256.clone(),
        started_at: r.started_at.timestamp_millis(),
        finished_at: r.finished_at.timestamp_millis(),
        summary,
        body_zstd,
        body_sha256,
        controls: r
            .controls
            .iter()
            .map(|c| (c.id.clone(), c.title.clone(), c.status.as_str().to_owned()))
            .collect(),
        applies: r
            .controls
            .iter()
            .map(|c| {
                control_roles
                    .get(&c.id)
                    .is_none_or(|roles| crate::posture::applies(roles, &agent.roles))
            })
            .collect(),
        checks: crate::fleet_state::compact_checks(&r),
        baselines: crate::baselines::seen_in(&r),
    };
    Ok(Ready { report: r, new })
}

/// Runs `f` on the blocking pool when `big`, else here. At most one big
/// preparation per CPU runs at a time; the others wait for a turn without a
/// thread. Without the bound, a hundred agents' large reports made a
/// hundred runnable threads on two cores, and the one flusher that every
/// report waits on, woken between its statements, queued behind them for
/// time slices.
async fn cpu<T: Send + 'static>(
    big: bool,
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    static TURNS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    if big {
        let turns = TURNS.get_or_init(|| {
            tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from))
        });
        let _turn = turns
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(format!("report preparation: {e}")))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ApiError::Internal(format!("report preparation: {e}")))?
    } else {
        f()
    }
}

/// Stores one report of the calling agent; idempotent by `report_id`.
#[utoipa::path(post, path = "/api/v1/reports", tag = "agents", security(("bearer" = [])),
    request_body(content = serde_json::Value, description = "one vigil.report/v1 object", content_type = "application/json"),
    responses((status = 201, body = IngestResponse, description = "stored"), (status = 200, body = IngestResponse, description = "already stored"),
        (status = 400, description = "invalid report"), (status = 401, description = "unknown or revoked token; re-enroll"),
        (status = 403, description = "report of another host"), (status = 409, description = "report id used by another host"), (status = 413, description = "too large")))]
async fn ingest(
    State(state): State<Shared>,
    AgentAuth(agent): AgentAuth,
    ReportBody(body): ReportBody,
) -> ApiResult<(StatusCode, Json<IngestResponse>)> {
    // The reporter's own clock dates erasure proofs, not the agent's (issue 19 item 7).
    let received_at = crate::store::now_ms();
    let big = body.len() > INLINE_PARSE_BYTES;
    let agent = Arc::new(agent);
    // The published policy's control roles, as the live posture judges them.
    let control_roles: Arc<ControlRoles> = Arc::new(
        state
            .policy
            .read()
            .ok()
            .and_then(|p| p.as_ref().map(|p| p.control_roles.clone()))
            .unwrap_or_default(),
    );
    // Most reports claim no waiver: parsed and prepared in one go.
    let first = {
        let (agent, control_roles) = (agent.clone(), control_roles.clone());
        cpu(big, move || {
            let parsed = parse_report(body, &agent.host)?;
            if claims_waiver(&parsed.report) {
                Ok(Err(parsed))
            } else {
                prepare(parsed, &agent, &control_roles, None).map(Ok)
            }
        })
        .await?
    };
    // Waivers the agent claims hold only where the reporter's own cover them:
    // vetted before the compact checks (their `waived_by`) are derived.
    let Ready { report: r, new } = match first {
        Ok(ready) => ready,
        Err(parsed) => {
            let waivers = reporter_waivers(&state.store).await?;
            let agent = agent.clone();
            cpu(big, move || {
                prepare(
                    parsed,
                    &agent,
                    &control_roles,
                    Some((&waivers, chrono::Utc::now().date_naive())),
                )
            })
            .await?
        }
    };
    match store(&state, new).await? {
        Stored::New => {
            // Erasure proofs move closures; a failure here does not un-store the report.
            match crate::closures::record_results(&state, &agent, &r, received_at).await {
                Ok(true) => {
                    if let Err(e) = crate::closures::advance_all(&state, &agent.host).await {
                        tracing::error!(error = %e, "cannot advance closures");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "cannot record erasure results"),
            }
            Ok((
                StatusCode::CREATED,
                Json(IngestResponse {
                    report_id: r.report_id.clone(),
                    stored: true,
                }),
            ))
        }
        Stored::Duplicate => Ok((
            StatusCode::OK,
            Json(IngestResponse {
                report_id: r.report_id.clone(),
                stored: false,
            }),
        )),
        Stored::Conflict => Err(ApiError::Conflict(
            "this report id is taken by another host's report".into(),
        )),
    }
}

// --- the group commit -------------------------------------------------------------

/// Stores `report` (idempotently by its id) and returns once the
/// transaction holding it has committed.
pub async fn store(state: &Arc<AppState>, report: NewReport) -> Result<Stored, StoreError> {
    let (tx, rx) = oneshot::channel();
    state.ingest.push(report, tx)?;
    if !state.ingest.flushing.swap(true, Ordering::AcqRel) {
        tokio::spawn(flush(state.clone()));
    }
    rx.await
        .map_err(|_| StoreError::Corrupt("the ingest flusher stopped before answering".into()))?
}

async fn flush(state: Arc<AppState>) {
    loop {
        let batch = state.ingest.take();
        if batch.is_empty() {
            state.ingest.flushing.store(false, Ordering::Release);
            // A report queued after `take` but before the store above saw
            // `flushing` still true and spawned nothing: take it on.
            if state.ingest.is_empty() || state.ingest.flushing.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        }
        let _g = state.audit.write_lock().await;
        let (reports, replies): (Vec<NewReport>, Vec<Reply>) = batch.into_iter().unzip();
        match insert_reports_locked(&state.store, &state.audit, &reports).await {
            Ok(results) if results.len() == replies.len() => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // The requester may have gone (client disconnected): the
                    // report is stored all the same and a retry is a duplicate.
                    let _ = reply.send(Ok(result));
                }
            }
            outcome => {
                if let Err(e) = &outcome {
                    tracing::warn!(error = %e, reports = reports.len(), "a batched commit failed; storing its reports one by one");
                }
                for (report, reply) in reports.iter().zip(replies) {
                    let result = insert_reports_locked(
                        &state.store,
                        &state.audit,
                        std::slice::from_ref(report),
                    )
                    .await
                    .and_then(|mut v| {
                        v.pop().ok_or_else(|| {
                            StoreError::Corrupt("a batch of one stored nothing".into())
                        })
                    });
                    let _ = reply.send(result);
                }
            }
        }
    }
}

/// Issue 19, item 12: an agent could send `waived` for any failing control
/// with a made-up `waived_by`. A report's waivers are vetted against the
/// reporter's own: a failing check stays waived only where an in-date,
/// unrevoked reporter waiver covers that host (by name, or by a role the
/// reporter trusts), control and check. Anything else is stored as its
/// underlying status (the report is not refused: its other results are
/// good evidence), `waived_by` is cleared, and the summary recomputed.
/// Returns the ids of the controls whose claimed waiver was refused.
pub fn vet_waivers(
    report: &mut vigil_rules::report::Report,
    host: &str,
    trusted_roles: &[String],
    waivers: &[vigil_rules::waivers::Waiver],
    today: chrono::NaiveDate,
) -> Vec<String> {
    use vigil_rules::report::{control_status, summarize, ControlStatus};
    use vigil_rules::verdict::CheckStatus;
    let mut refused = Vec::new();
    for control in &mut report.controls {
        let claimed = control.status == ControlStatus::Waived
            || control.checks.iter().any(|c| c.waived_by.is_some());
        if !claimed {
            continue;
        }
        let mut all_covered = true;
        let mut any_failure = false;
        let mut bogus = false;
        for check in &mut control.checks {
            let covering = waivers.iter().find(|w| {
                w.in_date(today)
                    && w.applies_to(host, trusted_roles)
                    && w.control == control.id
                    && w.check.as_ref().is_none_or(|c| *c == check.id)
            });
            if check.status == CheckStatus::Fail {
                any_failure = true;
                match (covering, &check.waived_by) {
                    (Some(w), Some(by)) if *by == w.id => {}
                    (Some(w), Some(_)) => check.waived_by = Some(w.id.clone()),
                    (_, None) => all_covered = false,
                    (None, Some(_)) => {
                        check.waived_by = None;
                        all_covered = false;
                        bogus = true;
                    }
                }
            } else if check.waived_by.take().is_some() {
                bogus = true;
            }
        }
        let computed = control_status(&control.checks);
        let errors = control
            .checks
            .iter()
            .any(|c| c.status == CheckStatus::Error);
        let waived_ok = computed == ControlStatus::Fail && any_failure && all_covered && !errors;
        let status = if control.status == ControlStatus::Waived && waived_ok {
            ControlStatus::Waived
        } else if control.status == ControlStatus::Waived {
            bogus = true;
            computed
        } else {
            control.status
        };
        if bogus {
            refused.push(control.id.clone());
        }
        control.status = status;
    }
    if !refused.is_empty() {
        report.summary = summarize(&report.controls);
    }
    refused
}

/// The reporter's unrevoked waivers (expired ones too: [`vet_waivers`]
/// checks dates), read only when a report claims a waiver.
pub async fn reporter_waivers(
    store: &crate::store::Store,
) -> Result<Vec<vigil_rules::waivers::Waiver>, StoreError> {
    use sqlx::Row;
    let rows = sqlx::query("SELECT body FROM waivers WHERE revoked_at IS NULL")
        .fetch_all(&store.pool)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let body: String = r.try_get("body")?;
        let v: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| StoreError::Corrupt(format!("stored waiver: {e}")))?;
        out.push(
            crate::waivers::validate(&v, None)
                .map_err(|e| StoreError::Corrupt(format!("stored waiver: {e}")))?,
        );
    }
    Ok(out)
}

// --- the transaction ----------------------------------------------------------------

/// The data of an audit entry to sign ([`insert_reports_locked`]).
enum EntryData {
    /// `report.ingested`: the report's id, body digest and summary JSON.
    Report {
        report_id: String,
        sha256: String,
        summary: String,
    },
    Value(serde_json::Value),
}

/// Stores several reports in ONE transaction (one commit, one fsync: the
/// group commit above), each with its audit entry, the maintained fleet
/// state and the agents' `last_seen`, in a few multi-row statements per
/// batch rather than a few per report. The caller holds
/// [`AuditLog::write_lock`]. All or nothing: on an error nothing of the
/// batch is stored and the caller retries the reports one by one.
pub async fn insert_reports_locked(
    store: &Store,
    audit: &AuditLog,
    reports: &[NewReport],
) -> Result<Vec<Stored>, StoreError> {
    let now = now_ms();
    let t0 = std::time::Instant::now();
    let mut tx = store.begin_write().await?;
    let next_seq = audit.next_seq(&mut tx, store.backend).await?;
    let t_begin = t0.elapsed();
    // 1. The reports; RETURNING names the ones that were new.
    let mut inserted: std::collections::HashSet<String> = std::collections::HashSet::new();
    for chunk in reports.chunks(store.backend.rows_per_statement(12)) {
        let sql = format!(
            "INSERT INTO reports (report_id, agent_id, host, policy_id, policy_version, policy_sha256, started_at, finished_at, received_at, summary, body, body_zstd) \
             VALUES {} ON CONFLICT (report_id) DO NOTHING RETURNING report_id",
            store.backend.placeholders(chunk.len(), 12)
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql);
        for r in chunk {
            q = q
                .bind(r.report_id.as_str())
                .bind(r.agent_id.as_str())
                .bind(r.host.as_str())
                .bind(r.policy_id.as_str())
                .bind(r.policy_version.as_str())
                .bind(r.policy_sha256.as_str())
                .bind(r.started_at)
                .bind(r.finished_at)
                .bind(now)
                .bind(r.summary.as_str())
                .bind("")
                .bind(r.body_zstd.as_slice());
        }
        inserted.extend(q.fetch_all(&mut *tx).await?);
    }
    // 2. Who stored what: the first copy of a new id is New; any other
    // copy (stored earlier, or a retry in this very batch) is a
    // duplicate of its own host's report or a conflict with another's.
    let mut out = Vec::with_capacity(reports.len());
    let mut new: Vec<&NewReport> = Vec::new();
    for r in reports {
        if inserted.remove(&r.report_id) {
            new.push(r);
            out.push(Stored::New);
            continue;
        }
        let owner: Option<String> = match new.iter().find(|n| n.report_id == r.report_id) {
            Some(n) => Some(n.host.clone()),
            None => {
                sqlx::query_scalar("SELECT host FROM reports WHERE report_id = $1")
                    .bind(r.report_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
            }
        };
        out.push(if owner.as_deref() == Some(r.host.as_str()) {
            Stored::Duplicate
        } else {
            Stored::Conflict
        });
    }
    let t_reports = t0.elapsed();
    // 3. The baselines the new reports carry (a baseline whose hash changed
    // makes an audit entry after its report's), then the audit entries,
    // numbered in order and signed on the blocking pool while the
    // statements below run: one Ed25519 signature each, none of them in
    // the serial section every report waits on.
    let mut specs: Vec<(&'static str, String, EntryData)> = Vec::with_capacity(new.len());
    for r in &new {
        specs.push((
            "report.ingested",
            r.host.clone(),
            EntryData::Report {
                report_id: r.report_id.clone(),
                sha256: r.body_sha256.clone(),
                summary: r.summary.clone(),
            },
        ));
        if !r.baselines.is_empty() {
            for data in
                crate::baselines::record_in(&mut tx, &r.host, &r.report_id, &r.baselines, now)
                    .await?
            {
                specs.push(("baseline.changed", r.host.clone(), EntryData::Value(data)));
            }
        }
    }
    let signer = audit.signer();
    let first_seq = next_seq;
    let signing = tokio::task::spawn_blocking(move || {
        (first_seq..)
            .zip(specs)
            .map(|(seq, (kind, actor, data))| {
                let data = match data {
                    EntryData::Value(v) => v,
                    EntryData::Report {
                        report_id,
                        sha256,
                        summary,
                    } => {
                        let summary = serde_json::from_str::<serde_json::Value>(&summary)
                            .unwrap_or_default();
                        serde_json::json!({"report_id": report_id, "host": actor, "sha256": sha256, "summary": summary})
                    }
                };
                signer.entry(seq, kind, &actor, data)
            })
            .collect::<Vec<crate::audit::Entry>>()
    });
    // 5. The maintained fleet state (latest results, roll-ups).
    crate::fleet_state::apply(&mut tx, store.backend, &new, now).await?;
    let t_state = t0.elapsed();
    // 5b. The agents heard from.
    let mut agents: Vec<&str> = new.iter().map(|r| r.agent_id.as_str()).collect();
    agents.sort_unstable();
    agents.dedup();
    for chunk in agents.chunks(store.backend.rows_per_statement(1)) {
        // `now` is the reporter's own integer, not input: written into the
        // statement so that the list is its only parameters.
        let sql = format!(
            "UPDATE agents SET last_seen = {now} WHERE id IN ({})",
            store.backend.list(1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for a in chunk {
            q = q.bind(*a);
        }
        q.execute(&mut *tx).await?;
    }
    // 6. The signed audit entries.
    let entries = signing
        .await
        .map_err(|e| StoreError::Corrupt(format!("signing audit entries: {e}")))?;
    let t_sign = t0.elapsed();
    crate::audit::insert_entries(&mut tx, &entries, store.backend).await?;
    let t_audit = t0.elapsed();
    tx.commit().await?;
    tracing::debug!(
        reports = reports.len(),
        begin_us = t_begin.as_micros(),
        reports_us = (t_reports - t_begin).as_micros(),
        state_us = (t_state - t_reports).as_micros(),
        sign_us = (t_sign - t_state).as_micros(),
        audit_us = (t_audit - t_sign).as_micros(),
        commit_us = (t0.elapsed() - t_audit).as_micros(),
        "ingest batch committed"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_rules::report::{ControlStatus, Report};

    fn report(waived_by: &str) -> Report {
        serde_json::from_value(serde_json::json!({
            "schema": "vigil.report/v1", "report_id": "7d3c9a52-5b6f-4d8e-9b1a-2c3d4e5f6a7b",
            "agent": {"host": "web-1", "version": "0"},
            "policy": {"id": "p", "version": "1", "sha256": "0".repeat(64)},
            "started_at": "2026-12-01T00:00:00Z", "finished_at": "2026-12-01T00:00:01Z",
            "controls": [{"id": "SP-6", "title": "t", "status": "waived", "checks": [
                {"id": "advisories", "type": "patch_level", "status": "fail", "summary": "", "findings": [],
                 "evidence": null, "duration_ms": 0, "waived_by": waived_by}]}],
            "summary": {"pass": 0, "fail": 0, "error": 0, "attested": 0, "skipped": 0, "waived": 1, "unknown": 0}
        }))
        .unwrap()
    }

    fn waiver(hosts: &str, expires: &str) -> vigil_rules::waivers::Waiver {
        crate::waivers::validate(
            &serde_json::json!({"id": "W-1", "control": "SP-6", "check": "advisories", "hosts": [hosts],
                "justification": "j", "approved_by": "ciso", "approved_on": "2026-11-01", "expires": expires}),
            None,
        )
        .unwrap()
    }

    fn day(s: &str) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    // Regression (issue 19, item 12): a made-up `waived_by` made a failing
    // control `waived` in the fleet's posture.
    #[test]
    fn only_reporter_waivers_waive() {
        let today = day("2026-12-01");
        let mut r = report("W-MADE-UP");
        assert_eq!(vet_waivers(&mut r, "web-1", &[], &[], today), vec!["SP-6"]);
        assert_eq!(r.controls[0].status, ControlStatus::Fail);
        assert_eq!(r.controls[0].checks[0].waived_by, None);
        assert_eq!((r.summary.fail, r.summary.waived), (1, 0));
        vigil_rules::report::validate(&r, chrono::Utc::now()).unwrap();

        let mut r = report("W-1");
        assert!(vet_waivers(
            &mut r,
            "web-1",
            &[],
            &[waiver("web-*", "2027-01-31")],
            today
        )
        .is_empty());
        assert_eq!(r.controls[0].status, ControlStatus::Waived);
        // another host's waiver, or an expired one, does not count
        for w in [waiver("db-*", "2027-01-31"), waiver("web-*", "2026-11-30")] {
            let mut r = report("W-1");
            assert_eq!(vet_waivers(&mut r, "web-1", &[], &[w], today), vec!["SP-6"]);
            assert_eq!(r.controls[0].status, ControlStatus::Fail);
        }
    }
}
