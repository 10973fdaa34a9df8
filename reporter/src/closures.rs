//! Account closure and three-phase erasure (GDPR items 4 and 5).
//!
//! States, in order: `requested`, `export_ready`, `site_erased`,
//! `local_backups_erased`, `offline_backups_erased`, `logs_purged`, `closed`;
//! beside them `cancelled`, and `blocked` shown while a host reports that it
//! could not erase. No state is skipped: a closure moves one step at a time,
//! only when every current, non-stale host whose role the phase names has
//! reported a passing `erasure` check for this account and phase *after* the
//! phase became pending. Offline backups may instead be declared erased by
//! crypto-shredding (with evidence) or by the offline sets rotating out.
//! Every transition is idempotent (`UPDATE … WHERE state = from`) and goes
//! into the audit log with what caused it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;
use utoipa::ToSchema;

use crate::api::AppState;
use crate::posture::{is_stale, rfc3339};
use crate::store::{now_ms, AgentRow, StoreError};

pub const STATES: &[&str] = &[
    "requested",
    "export_ready",
    "site_erased",
    "local_backups_erased",
    "offline_backups_erased",
    "logs_purged",
    "closed",
];
/// The phase whose proof moves `STATES[i]` to `STATES[i + 1]`.
pub const PHASES: &[&str] = &["export", "site", "local_backups", "offline_backups", "logs"];

/// Which roles must prove each phase; `*` is every host.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureConfig {
    /// How long a closure can be cancelled; site erasure waits for it. Default 7 days.
    #[serde(default = "default_cooling")]
    pub cooling_off: vigil_rules::duration::PolicyDuration,
    /// How long offline sets are kept; past it they have rotated out. Default 90 days.
    #[serde(default = "default_retention")]
    pub offline_retention: vigil_rules::duration::PolicyDuration,
    #[serde(default = "default_roles")]
    pub roles: BTreeMap<String, Vec<String>>,
}

fn default_cooling() -> vigil_rules::duration::PolicyDuration {
    vigil_rules::duration::PolicyDuration(std::time::Duration::from_secs(7 * 86400))
}
fn default_retention() -> vigil_rules::duration::PolicyDuration {
    vigil_rules::duration::PolicyDuration(std::time::Duration::from_secs(90 * 86400))
}
fn default_roles() -> BTreeMap<String, Vec<String>> {
    [
        ("export", "app"),
        ("site", "app"),
        ("local_backups", "backup"),
        ("offline_backups", "offline_backup"),
        ("logs", "*"),
    ]
    .iter()
    .map(|(p, r)| ((*p).to_owned(), vec![(*r).to_owned()]))
    .collect()
}

impl Default for ErasureConfig {
    fn default() -> Self {
        ErasureConfig {
            cooling_off: default_cooling(),
            offline_retention: default_retention(),
            roles: default_roles(),
        }
    }
}

#[derive(Debug, Clone)]
struct ClosureRow {
    account: String,
    state: String,
    requested_by: String,
    reason: String,
    identifiers: Vec<String>,
    requested_at: i64,
    state_since: i64,
    cooling_off_until: i64,
    offline_method: Option<String>,
    offline_evidence: Option<String>,
    history: Vec<Value>,
}

#[derive(Debug, Clone)]
struct ResultRow {
    phase: String,
    host: String,
    done: bool,
    report_id: String,
    at: i64,
    digest: String,
    detail: Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClosureView {
    pub account: String,
    /// The closure's state; `blocked` while a host reports that it could not erase.
    pub state: String,
    /// The last state reached (equal to `state` unless blocked).
    pub progress: String,
    pub requested_by: String,
    pub reason: String,
    pub requested_at: String,
    pub cooling_off_until: String,
    pub blocked_reason: Option<String>,
    pub phases: Vec<PhaseView>,
    pub history: Vec<Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PhaseView {
    pub phase: String,
    /// done, pending, waiting (cooling off, or no host can prove it yet), blocked, or not_started.
    pub state: String,
    /// The hosts that must prove this phase.
    pub hosts: Vec<String>,
    /// What each host reported for this account and phase.
    pub evidence: Vec<Value>,
    pub note: Option<String>,
}

fn valid_account(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 128
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn row_of(r: &sqlx::any::AnyRow) -> Result<ClosureRow, StoreError> {
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
    })
}

const COLS: &str = "account, state, requested_by, reason, identifiers, requested_at, state_since, cooling_off_until, offline_method, offline_evidence, history";

async fn load(state: &AppState, account: &str) -> Result<Option<ClosureRow>, StoreError> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM closures WHERE account = $1"))
        .bind(account)
        .fetch_optional(&state.store.pool)
        .await?;
    r.as_ref().map(row_of).transpose()
}

async fn open_closures(state: &AppState) -> Result<Vec<ClosureRow>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {COLS} FROM closures WHERE state <> 'closed' AND state <> 'cancelled' ORDER BY account"))
        .fetch_all(&state.store.pool)
        .await?;
    rows.iter().map(row_of).collect()
}

async fn results(state: &AppState, account: &str) -> Result<Vec<ResultRow>, StoreError> {
    let rows = sqlx::query("SELECT phase, host, done, report_id, at, digest, detail FROM erasure_results WHERE account = $1 ORDER BY phase, host")
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
                at: r.try_get("at")?,
                digest: r.try_get("digest")?,
                detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
            })
        })
        .collect()
}

fn roles_for<'a>(cfg: &'a ErasureConfig, phase: &str) -> &'a [String] {
    cfg.roles.get(phase).map_or(&[], Vec::as_slice)
}

/// The current agents that must prove `phase`.
/// Whether `agent`'s roles prove `phase`.
pub fn agent_proves(cfg: &ErasureConfig, phase: &str, agent: &AgentRow) -> bool {
    !hosts_for(cfg, phase, std::slice::from_ref(agent)).is_empty()
}

fn hosts_for<'a>(cfg: &ErasureConfig, phase: &str, agents: &'a [AgentRow]) -> Vec<&'a AgentRow> {
    let roles = roles_for(cfg, phase);
    let everyone = roles.iter().any(|r| r == "*");
    agents
        .iter()
        .filter(|a| {
            a.revoked_at.is_none() && (everyone || a.roles.iter().any(|r| roles.contains(r)))
        })
        .collect()
}

/// Whether the gate of `phase` is open for `c`, and if not why.
enum Gate {
    Open(Value),
    Waiting(String),
    Blocked(String),
}

fn gate(
    cfg: &ErasureConfig,
    c: &ClosureRow,
    phase: &str,
    agents: &[AgentRow],
    last_seen: &BTreeMap<String, i64>,
    res: &[ResultRow],
    now: i64,
) -> Gate {
    if phase != "export" && now < c.cooling_off_until {
        return Gate::Waiting(format!(
            "cooling-off period until {}",
            rfc3339(c.cooling_off_until)
        ));
    }
    if phase == "offline_backups" {
        if let Some(m) = &c.offline_method {
            return Gate::Open(json!({"method": m, "evidence": c.offline_evidence}));
        }
        let retention =
            i64::try_from(cfg.offline_retention.as_std().as_millis()).unwrap_or(i64::MAX);
        if now >= c.requested_at.saturating_add(retention) {
            return Gate::Open(
                json!({"method": "rotation", "retention": cfg.offline_retention.to_string()}),
            );
        }
    }
    let hosts = hosts_for(cfg, phase, agents);
    if hosts.is_empty() {
        return Gate::Waiting(format!(
            "no enrolled host has a role that proves `{phase}` ({})",
            roles_for(cfg, phase).join(", ")
        ));
    }
    let mut proofs = Vec::new();
    for h in &hosts {
        let r = res
            .iter()
            .find(|r| r.phase == phase && r.host == h.host && r.at >= c.state_since);
        match r {
            Some(r) if !r.done => {
                return Gate::Blocked(format!(
                    "`{}` reported that `{phase}` is not done for this account",
                    h.host
                ))
            }
            Some(r) => {
                if is_stale(last_seen.get(&h.host).copied(), h.interval_secs, now) {
                    return Gate::Waiting(format!("`{}` is stale", h.host));
                }
                proofs.push(json!({"host": h.host, "report_id": r.report_id, "digest": r.digest, "at": rfc3339(r.at)}));
            }
            None => return Gate::Waiting(format!("waiting for `{}` to prove `{phase}`", h.host)),
        }
    }
    Gate::Open(json!({"hosts": proofs}))
}

/// Moves every open closure as far as its gates allow.
pub async fn advance_all(state: &AppState, actor: &str) -> Result<(), StoreError> {
    for c in open_closures(state).await? {
        advance(state, c, actor).await?;
    }
    Ok(())
}

async fn last_seen_map(state: &AppState) -> Result<BTreeMap<String, i64>, StoreError> {
    Ok(state
        .store
        .last_report_times(now_ms())
        .await?
        .into_iter()
        .map(|(h, t, _)| (h, t))
        .collect())
}

async fn advance(
    state: &AppState,
    mut c: ClosureRow,
    actor: &str,
) -> Result<ClosureRow, StoreError> {
    let agents = state.store.agents().await?;
    let seen = last_seen_map(state).await?;
    loop {
        let Some(i) = STATES.iter().position(|s| *s == c.state) else {
            return Ok(c);
        };
        let (Some(next), phase) = (STATES.get(i + 1), PHASES.get(i)) else {
            return Ok(c);
        };
        let evidence = match phase {
            None => json!({"all_phases": "done"}),
            Some(p) => {
                let res = results(state, &c.account).await?;
                match gate(&state.erasure, &c, p, &agents, &seen, &res, now_ms()) {
                    Gate::Open(ev) => ev,
                    Gate::Waiting(_) | Gate::Blocked(_) => return Ok(c),
                }
            }
        };
        c = transition(state, c, next, actor, evidence).await?;
    }
}

async fn transition(
    state: &AppState,
    mut c: ClosureRow,
    to: &str,
    actor: &str,
    evidence: Value,
) -> Result<ClosureRow, StoreError> {
    let now = now_ms();
    let from = c.state.clone();
    let mut history = c.history.clone();
    history.push(
        json!({"from": from, "to": to, "at": rfc3339(now), "by": actor, "evidence": evidence}),
    );
    let _g = state.audit.write_lock().await;
    let mut tx = state.store.pool.begin().await?;
    let r = sqlx::query("UPDATE closures SET state = $1, state_since = $2, history = $3 WHERE account = $4 AND state = $5")
        .bind(to)
        .bind(now)
        .bind(serde_json::to_string(&history).unwrap_or_default())
        .bind(&c.account)
        .bind(&from)
        .execute(&mut *tx)
        .await?;
    if r.rows_affected() == 0 {
        // Someone else moved it first: nothing to do twice.
        tx.rollback().await?;
        return Ok(load(state, &c.account).await?.unwrap_or(c));
    }
    state
        .audit
        .append_in(
            &mut tx,
            state.store.backend,
            "closure.transition",
            actor,
            json!({"account": c.account, "from": from, "to": to, "evidence": evidence}),
        )
        .await?;
    tx.commit().await?;
    c.state = to.to_owned();
    c.state_since = now;
    c.history = history;
    Ok(c)
}

/// Records the `erasure` check results of a freshly stored report.
pub async fn record_results(
    state: &AppState,
    host: &str,
    report: &vigil_rules::report::Report,
) -> Result<bool, StoreError> {
    let mut any = false;
    for c in &report.controls {
        for k in c.checks.iter().filter(|k| k.check_type == "erasure") {
            let Some(tasks) = k.evidence.get("tasks").and_then(Value::as_array) else {
                continue;
            };
            for t in tasks {
                let (Some(account), Some(phase)) = (
                    t.get("account").and_then(Value::as_str),
                    t.get("phase").and_then(Value::as_str),
                ) else {
                    continue;
                };
                if !PHASES.contains(&phase) || !valid_account(account) {
                    continue;
                }
                let done = t.get("done").and_then(Value::as_bool).unwrap_or(false)
                    && k.status != vigil_rules::verdict::CheckStatus::Error;
                let digest = t.get("digest").and_then(Value::as_str).unwrap_or("");
                let at = report.finished_at.timestamp_millis();
                let mut tx = state.store.pool.begin().await?;
                sqlx::query(
                    "DELETE FROM erasure_results WHERE account = $1 AND phase = $2 AND host = $3",
                )
                .bind(account)
                .bind(phase)
                .bind(host)
                .execute(&mut *tx)
                .await?;
                sqlx::query("INSERT INTO erasure_results (account, phase, host, done, report_id, at, digest, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(account)
                    .bind(phase)
                    .bind(host)
                    .bind(i64::from(done))
                    .bind(&report.report_id)
                    .bind(at)
                    .bind(digest)
                    .bind(t.to_string())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                any = true;
            }
        }
    }
    Ok(any)
}

/// Tasks for one agent: for every open closure, the pending phase if this
/// agent's roles prove it and the cooling-off allows it.
pub async fn tasks_for(state: &AppState, agent: &AgentRow) -> Result<Vec<Value>, StoreError> {
    let now = now_ms();
    let mut out = Vec::new();
    for c in open_closures(state).await? {
        let Some(i) = STATES.iter().position(|s| *s == c.state) else {
            continue;
        };
        let Some(phase) = PHASES.get(i) else { continue };
        if *phase != "export" && now < c.cooling_off_until {
            continue;
        }
        if *phase == "offline_backups" && c.offline_method.is_some() {
            continue;
        }
        if hosts_for(&state.erasure, phase, std::slice::from_ref(agent)).is_empty() {
            continue;
        }
        // requested_at: `delete: rotation` proves every older snapshot gone.
        out.push(
            json!({"account": c.account, "phase": phase, "identifiers": c.identifiers,
                        "requested_at": rfc3339(c.requested_at)}),
        );
    }
    Ok(out)
}

pub enum OpenOutcome {
    Created(Box<ClosureView>),
    Existing(Box<ClosureView>),
}

pub async fn open(
    state: &AppState,
    account: &str,
    requested_by: &str,
    reason: &str,
    identifiers: Vec<String>,
    actor: &str,
) -> Result<OpenOutcome, String> {
    if !valid_account(account) {
        return Err(format!(
            "`{account}` is not an account id (letters, digits, `-`, `.`, `_`)"
        ));
    }
    if requested_by.trim().is_empty() || reason.trim().is_empty() {
        return Err("`requested_by` and `reason` are required".into());
    }
    let existing = load(state, account).await.map_err(|e| e.to_string())?;
    if let Some(c) = existing {
        if c.state != "cancelled" {
            return Ok(OpenOutcome::Existing(Box::new(
                view(state, c).await.map_err(|e| e.to_string())?,
            )));
        }
        sqlx::query("DELETE FROM closures WHERE account = $1")
            .bind(account)
            .execute(&state.store.pool)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut ids = identifiers;
    if !ids.iter().any(|i| i == account) {
        ids.insert(0, account.to_owned());
    }
    let now = now_ms();
    let cooling = i64::try_from(state.erasure.cooling_off.as_std().as_millis()).unwrap_or(i64::MAX);
    let history = vec![
        json!({"to": "requested", "at": rfc3339(now), "by": actor, "requested_by": requested_by, "reason": reason}),
    ];
    let _g = state.audit.write_lock().await;
    let run = async {
        let mut tx = state.store.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO closures ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(account)
        .bind("requested")
        .bind(requested_by)
        .bind(reason)
        .bind(serde_json::to_string(&ids).unwrap_or_default())
        .bind(now)
        .bind(now)
        .bind(now.saturating_add(cooling))
        .bind(None::<String>)
        .bind(None::<String>)
        .bind(serde_json::to_string(&history).unwrap_or_default())
        .execute(&mut *tx)
        .await?;
        state
            .audit
            .append_in(
                &mut tx,
                state.store.backend,
                "closure.requested",
                actor,
                json!({"account": account, "requested_by": requested_by, "reason": reason}),
            )
            .await?;
        tx.commit().await?;
        Ok::<(), StoreError>(())
    };
    run.await.map_err(|e| e.to_string())?;
    drop(_g);
    let c = load(state, account)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the closure vanished")?;
    Ok(OpenOutcome::Created(Box::new(
        view(state, c).await.map_err(|e| e.to_string())?,
    )))
}

pub enum CancelOutcome {
    Cancelled(Box<ClosureView>),
    TooLate(String),
    Missing,
}

pub async fn cancel(
    state: &AppState,
    account: &str,
    actor: &str,
) -> Result<CancelOutcome, StoreError> {
    let Some(c) = load(state, account).await? else {
        return Ok(CancelOutcome::Missing);
    };
    if c.state == "cancelled" {
        return Ok(CancelOutcome::Cancelled(Box::new(view(state, c).await?)));
    }
    if !matches!(c.state.as_str(), "requested" | "export_ready") || now_ms() >= c.cooling_off_until
    {
        return Ok(CancelOutcome::TooLate(format!(
            "the closure of `{account}` is `{}` and its cooling-off period ended {}: it can no longer be cancelled",
            c.state,
            rfc3339(c.cooling_off_until)
        )));
    }
    let c = transition(state, c, "cancelled", actor, json!({"cancelled_by": actor})).await?;
    Ok(CancelOutcome::Cancelled(Box::new(view(state, c).await?)))
}

/// Declares offline backups erased by crypto-shredding, with evidence.
pub async fn declare_offline(
    state: &AppState,
    account: &str,
    method: &str,
    evidence: &str,
    actor: &str,
) -> Result<Option<ClosureView>, StoreError> {
    let Some(_c) = load(state, account).await? else {
        return Ok(None);
    };
    let _g = state.audit.write_lock().await;
    let mut tx = state.store.pool.begin().await?;
    sqlx::query(
        "UPDATE closures SET offline_method = $1, offline_evidence = $2 WHERE account = $3",
    )
    .bind(method)
    .bind(evidence)
    .bind(account)
    .execute(&mut *tx)
    .await?;
    state
        .audit
        .append_in(
            &mut tx,
            state.store.backend,
            "closure.offline_declared",
            actor,
            json!({"account": account, "method": method, "evidence": evidence}),
        )
        .await?;
    tx.commit().await?;
    drop(_g);
    let c = load(state, account)
        .await?
        .ok_or_else(|| StoreError::Corrupt("closure vanished".into()))?;
    let c = advance(state, c, actor).await?;
    Ok(Some(view(state, c).await?))
}

/// Every closure, open ones advanced first, by account.
pub async fn all(state: &AppState) -> Result<Vec<ClosureView>, StoreError> {
    let accounts: Vec<String> = sqlx::query_scalar("SELECT account FROM closures ORDER BY account")
        .fetch_all(&state.store.pool)
        .await?;
    let mut out = Vec::new();
    for a in accounts {
        if let Some(v) = get(state, &a).await? {
            out.push(v);
        }
    }
    Ok(out)
}

pub async fn get(state: &AppState, account: &str) -> Result<Option<ClosureView>, StoreError> {
    let Some(c) = load(state, account).await? else {
        return Ok(None);
    };
    let c = if c.state == "cancelled" || c.state == "closed" {
        c
    } else {
        advance(state, c, "reporter").await?
    };
    Ok(Some(view(state, c).await?))
}

async fn view(state: &AppState, c: ClosureRow) -> Result<ClosureView, StoreError> {
    let agents = state.store.agents().await?;
    let seen = last_seen_map(state).await?;
    let res = results(state, &c.account).await?;
    let now = now_ms();
    let reached = STATES.iter().position(|s| *s == c.state);
    let mut blocked_reason = None;
    let phases = PHASES
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let hosts: Vec<String> = hosts_for(&state.erasure, p, &agents).iter().map(|a| a.host.clone()).collect();
            let evidence: Vec<Value> = res
                .iter()
                .filter(|r| r.phase == *p)
                .map(|r| json!({"host": r.host, "done": r.done, "report_id": r.report_id, "digest": r.digest, "at": rfc3339(r.at), "detail": r.detail}))
                .collect();
            let (st, note) = match reached {
                _ if c.state == "cancelled" => ("cancelled".to_owned(), None),
                Some(r) if r > i => ("done".to_owned(), None),
                Some(r) if r == i => match gate(&state.erasure, &c, p, &agents, &seen, &res, now) {
                    Gate::Open(_) => ("pending".to_owned(), None),
                    Gate::Waiting(w) => ("waiting".to_owned(), Some(w)),
                    Gate::Blocked(b) => {
                        blocked_reason = Some(b.clone());
                        ("blocked".to_owned(), Some(b))
                    }
                },
                _ => ("not_started".to_owned(), None),
            };
            PhaseView { phase: (*p).to_owned(), state: st, hosts, evidence, note }
        })
        .collect();
    Ok(ClosureView {
        state: if blocked_reason.is_some() {
            "blocked".into()
        } else {
            c.state.clone()
        },
        progress: c.state,
        account: c.account,
        requested_by: c.requested_by,
        reason: c.reason,
        requested_at: rfc3339(c.requested_at),
        cooling_off_until: rfc3339(c.cooling_off_until),
        blocked_reason,
        phases,
        history: c.history,
    })
}

/// The erasure certificate of a closed account: every transition with its
/// evidence, the audit entries that recorded them with inclusion proofs
/// against a signed checkpoint, all signed with the audit key. Verifiable
/// offline with `vigil-reporter audit verify --certificate FILE`.
pub async fn certificate(state: &AppState, account: &str) -> Result<Option<Value>, StoreError> {
    let Some(c) = load(state, account).await? else {
        return Ok(None);
    };
    if c.state != "closed" {
        return Ok(None);
    }
    let cp = state.audit.checkpoint(&state.store).await?;
    let entries = crate::audit::entries(&state.store).await?;
    let size = usize::try_from(cp.size).unwrap_or(0);
    let leaves: Vec<crate::merkle::Hash> = entries
        .iter()
        .take(size)
        .map(|e| crate::merkle::leaf_hash(&e.encode()))
        .collect();
    let mut proven = Vec::new();
    for (i, e) in entries.iter().enumerate().take(size) {
        if e.kind.starts_with("closure.")
            && e.data.get("account").and_then(Value::as_str) == Some(account)
        {
            let proof: Vec<String> = crate::merkle::inclusion_proof(i, &leaves)
                .iter()
                .map(hex::encode)
                .collect();
            proven.push(json!({"entry": e, "proof": proof}));
        }
    }
    let mut cert = json!({
        "schema": "vigil.erasure-certificate/v1",
        "account": c.account,
        "requested_by": c.requested_by,
        "reason": c.reason,
        "requested_at": rfc3339(c.requested_at),
        "closed_at": rfc3339(c.state_since),
        "transitions": c.history,
        "audit": {"origin": state.audit.origin, "public_key": state.audit.public_key_b64(), "checkpoint": cp.note, "tree_size": cp.size, "entries": proven},
    });
    let sig = state
        .audit
        .sign(crate::audit::canonical_json(&cert).as_bytes());
    if let Some(o) = cert.as_object_mut() {
        o.insert("signature".into(), Value::String(sig));
    }
    Ok(Some(cert))
}
