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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::api::AppState;
use crate::store::{NewReport, StoreError, Stored};

/// Most reports in one transaction; the rest wait for the next one.
pub const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Stored, StoreError>>;

#[derive(Default)]
pub struct Ingest {
    queue: Mutex<Vec<(NewReport, Reply)>>,
    /// A flusher task is running (or about to).
    flushing: AtomicBool,
}

impl Ingest {
    fn push(&self, report: NewReport, reply: Reply) -> Result<(), StoreError> {
        self.queue
            .lock()
            .map_err(|_| StoreError::Corrupt("the ingest queue's lock is poisoned".into()))?
            .push((report, reply));
        Ok(())
    }

    fn take(&self) -> Vec<(NewReport, Reply)> {
        match self.queue.lock() {
            Ok(mut q) => {
                let n = q.len().min(MAX_BATCH);
                q.drain(..n).collect()
            }
            Err(_) => Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.queue.lock().map(|q| q.is_empty()).unwrap_or(true)
    }
}

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
        match state
            .store
            .insert_reports_locked(&state.audit, &reports)
            .await
        {
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
                    let result = state
                        .store
                        .insert_reports_locked(&state.audit, std::slice::from_ref(report))
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
