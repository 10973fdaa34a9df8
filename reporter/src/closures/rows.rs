//! The closures' rows in the store: the closure, its erasure results and
//! runs, and the hosts frozen per phase.

use serde_json::{json, Value};
use sqlx::Row;

use crate::posture::rfc3339;
use crate::state::AppState;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub(super) struct ClosureRow {
    pub(super) account: String,
    pub(super) state: String,
    pub(super) requested_by: String,
    pub(super) reason: String,
    pub(super) identifiers: Vec<String>,
    pub(super) requested_at: i64,
    pub(super) state_since: i64,
    pub(super) cooling_off_until: i64,
    pub(super) offline_method: Option<String>,
    pub(super) offline_evidence: Option<String>,
    pub(super) history: Vec<Value>,
    pub(super) due_at: i64,
    pub(super) overdue_at: Option<i64>,
    pub(super) approved_by: String,
}

#[derive(Debug, Clone)]
pub(super) struct ResultRow {
    pub(super) phase: String,
    pub(super) host: String,
    pub(super) done: bool,
    pub(super) report_id: String,
    /// When the reporter received the proof (its own clock).
    pub(super) received_at: i64,
    pub(super) digest: String,
    pub(super) detail: Value,
}

pub(super) fn row_of(r: &sqlx::any::AnyRow) -> Result<ClosureRow, StoreError> {
    let ids: String = r.try_get("identifiers")?;
    let hist: String = r.try_get("history")?;
    Ok(ClosureRow {
        account: r.try_get("account")?,
        state: r.try_get("state")?,
        requested_by: r.try_get("requested_by")?,
        reason: r.try_get("reason")?,
        identifiers: serde_json::from_str(&ids).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        requested_at: r.try_get("requested_at")?,
        state_since: r.try_get("state_since")?,
        cooling_off_until: r.try_get("cooling_off_until")?,
        offline_method: r.try_get("offline_method")?,
        offline_evidence: r.try_get("offline_evidence")?,
        history: serde_json::from_str(&hist).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        due_at: r.try_get("due_at")?,
        overdue_at: r.try_get("overdue_at")?,
        approved_by: r.try_get("approved_by")?,
    })
}

pub(super) const COLS: &str = "account, state, requested_by, reason, identifiers, requested_at, state_since, cooling_off_until, offline_method, offline_evidence, history, due_at, overdue_at, approved_by";

pub(super) async fn load(
    state: &AppState,
    account: &str,
) -> Result<Option<ClosureRow>, StoreError> {
    load_in(&state.store, account).await
}

pub(super) async fn load_in(
    store: &Store,
    account: &str,
) -> Result<Option<ClosureRow>, StoreError> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM closures WHERE account = $1"))
        .bind(account)
        .fetch_optional(&store.pool)
        .await?;
    r.as_ref().map(row_of).transpose()
}

pub(super) async fn open_closures(store: &Store) -> Result<Vec<ClosureRow>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {COLS} FROM closures WHERE state <> 'closed' AND state <> 'cancelled' ORDER BY account"))
        .fetch_all(&store.pool)
        .await?;
    rows.iter().map(row_of).collect()
}

pub(super) async fn results(state: &AppState, account: &str) -> Result<Vec<ResultRow>, StoreError> {
    let rows = sqlx::query("SELECT phase, host, done, report_id, received_at, digest, detail FROM erasure_results WHERE account = $1 ORDER BY phase, host")
        .bind(account)
        .fetch_all(&state.store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            let detail: String = r.try_get("detail")?;
            Ok(ResultRow {
                phase: r.try_get("phase")?,
                host: r.try_get("host")?,
                done: r.try_get::<i64, _>("done")? == 1,
                report_id: r.try_get("report_id")?,
                received_at: r.try_get("received_at")?,
                digest: r.try_get("digest")?,
                detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
            })
        })
        .collect()
}

/// The distinct runs received for `phase` since `since`, oldest first.
pub(super) async fn runs(
    state: &AppState,
    account: &str,
    phase: &str,
    host: &str,
    since: i64,
) -> Result<Vec<Value>, StoreError> {
    let rows = sqlx::query("SELECT report_id, received_at, detail FROM erasure_runs WHERE account = $1 AND phase = $2 AND host = $3 AND received_at >= $4 ORDER BY received_at")
        .bind(account)
        .bind(phase)
        .bind(host)
        .bind(since)
        .fetch_all(&state.store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            let detail: String = r.try_get("detail")?;
            let d: Value = serde_json::from_str(&detail).unwrap_or(Value::Null);
            Ok(json!({
                "report_id": r.try_get::<String, _>("report_id")?,
                "received_at": rfc3339(r.try_get("received_at")?),
                "actions": d.get("actions").cloned().unwrap_or(Value::Null),
                "checked": d.get("checked").cloned().unwrap_or(Value::Null),
                "digest": d.get("digest").cloned().unwrap_or(Value::Null),
            }))
        })
        .collect()
}

pub(super) async fn frozen_hosts(
    state: &AppState,
    account: &str,
    phase: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT host FROM closure_phase_hosts WHERE account = $1 AND phase = $2 ORDER BY host",
    )
    .bind(account)
    .bind(phase)
    .fetch_all(&state.store.pool)
    .await?)
}

/// Freezes the hosts that must prove `phase`, inside the caller's transaction.
pub(super) async fn freeze_in(
    conn: &mut sqlx::AnyConnection,
    account: &str,
    phase: &str,
    hosts: &[String],
) -> Result<(), StoreError> {
    for h in hosts {
        sqlx::query("INSERT INTO closure_phase_hosts (account, phase, host) VALUES ($1, $2, $3) ON CONFLICT (account, phase, host) DO NOTHING")
            .bind(account)
            .bind(phase)
            .bind(h)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
