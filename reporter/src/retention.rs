//! Retention of stored reports (CONTRACT.md, "Retention"; issue 22 item 3):
//! `vigil-reporter prune --older-than D` and config `retention: {reports: D}`
//! (run daily by the server) delete reports the reporter received more than
//! `D` ago.
//!
//! What stays: the maintained fleet state (`fleet_state`: latest result per
//! host and control with its checks and findings, the daily roll-ups), each
//! host's newest report (exports, the brochure and expiry notices read its
//! body), erasure proofs (`erasure_results`, `erasure_runs` keep the report
//! id as a reference only, no foreign key), baselines (keyed by host) and
//! the audit log, whose `report.ingested` entries keep each report's SHA-256:
//! the log verifies as before, and one `reports.pruned` entry records each
//! prune.
//!
//! Deletion runs in batches of [`BATCH`] reports, one short write
//! transaction each, so ingest never waits behind a long prune.

use sqlx::Row;

use crate::audit::AuditLog;
use crate::store::{Store, StoreError};

/// Reports deleted per transaction.
pub const BATCH: usize = 500;

/// What a prune did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub reports: u64,
    pub batches: u64,
}

/// Deletes the reports received before `cutoff` (epoch ms), except each
/// host's newest, in batches; `progress` is called after every batch with
/// the running totals. Records one audit entry when anything was deleted.
pub async fn prune(
    store: &Store,
    audit: &AuditLog,
    cutoff: i64,
    mut progress: impl FnMut(&Pruned),
) -> Result<Pruned, StoreError> {
    let mut done = Pruned::default();
    loop {
        let ids: Vec<String> = sqlx::query(
            "SELECT report_id FROM reports WHERE received_at < $1 \
             AND report_id NOT IN (SELECT report_id FROM latest_hosts) \
             ORDER BY received_at LIMIT $2",
        )
        .bind(cutoff)
        .bind(i64::try_from(BATCH).unwrap_or(500))
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|r| r.try_get("report_id"))
        .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            break;
        }
        let sql = format!(
            "DELETE FROM reports WHERE report_id IN ({})",
            store.backend.list(1, ids.len())
        );
        let mut tx = store.begin_write().await?;
        let mut q = sqlx::query(&sql);
        for id in &ids {
            q = q.bind(id.as_str());
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        done.reports += ids.len() as u64;
        done.batches += 1;
        progress(&done);
        if ids.len() < BATCH {
            break;
        }
    }
    if done.reports > 0 {
        audit
            .append(
                store,
                "reports.pruned",
                "reporter",
                serde_json::json!({"reports": done.reports, "received_before": crate::posture::rfc3339(cutoff)}),
            )
            .await?;
    }
    Ok(done)
}

/// Runs [`prune`] once a day (first an hour after start) while the server
/// runs, when `retention.reports` is set.
pub fn spawn(state: crate::state::Shared, keep: Option<vigil_rules::duration::PolicyDuration>) {
    let Some(keep) = keep else {
        return;
    };
    let keep_ms = i64::try_from(keep.as_std().as_millis()).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        let day = std::time::Duration::from_secs(86_400);
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + std::time::Duration::from_secs(3600),
            day,
        );
        loop {
            tick.tick().await;
            let cutoff = crate::store::now_ms().saturating_sub(keep_ms);
            match prune(&state.store, &state.audit, cutoff, |_| {}).await {
                Ok(p) => tracing::info!(reports = p.reports, "retention: pruned stored reports"),
                Err(e) => tracing::error!(error = %e, "retention: cannot prune stored reports"),
            }
        }
    });
}
