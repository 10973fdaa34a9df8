//! Account closure and three-phase erasure (GDPR items 4 and 5).
//!
//! States, in order: `requested`, `export_ready`, `site_erased`,
//! `local_backups_erased`, `offline_backups_erased`, `logs_purged`, `closed`;
//! beside them `cancelled`, and `blocked` shown while a host reports that it
//! could not erase. No state is skipped: a closure moves one step at a time,
//! only when every current, non-stale host whose role the phase names has
//! reported a passing `erasure` check for this account and phase *after* the
//! phase became pending. Offline backups may instead be declared erased by
//! crypto-shredding (with evidence); no phase advances on time alone (the
//! offline sets rotating out is proved by the offline host's agent).
//! Every transition is idempotent (`UPDATE … WHERE state = from`) and goes
//! into the audit log with what caused it.
//!
//! INVARIANT: the hosts that must prove a phase are frozen when the phase
//! becomes pending (`closure_phase_hosts`); a host later losing its roles,
//! revoked or re-enrolled, is still required. A proof counts only when it was
//! *received* after the phase became pending, for the phase pending then, from
//! a host whose reporter-trusted roles prove it (issue 19 items 1 and 7).
//! When a closure ends (`closed` or `cancelled`) the account's export archives
//! and links are deleted in the same transaction as the transition.

pub mod certificate;
pub mod identifiers;
pub mod routes;
pub mod rows;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::posture::{is_stale, rfc3339};
use crate::state::AppState;
use crate::store::{now_ms, AgentRow, StoreError};
use sha2::{Digest, Sha256};

pub const STATES: &[&str] = &[
    "requested",
    "export_ready",
    "site_erased",
    "local_backups_erased",
    "offline_backups_erased",
    "logs_purged",
    "closed",
];
/// The phase whose proof moves `STATES[i]` to `STATES[i + 1]` (the erasure
/// check's own list).
pub use vigil_rules::checks::erasure::PHASES;

pub use crate::config::erasure::{agent_proves, ErasureConfig};
use crate::config::erasure::{hosts_for, roles_for};
pub use crate::extract::valid_account;
pub use certificate::{certificate, overdue, Overdue};
use identifiers::check_account_as_identifier;
pub use identifiers::check_identifier;
use rows::{
    freeze_in, frozen_hosts, load, open_closures, results, runs, ClosureRow, ResultRow, COLS,
};

/// Largest number of erasure results one report may record; the rest are
/// ignored (issue 19 item 18: a report cannot flood the results).
pub const MAX_RESULTS_PER_REPORT: usize = 64;
/// Largest number of tasks handed to one agent at a time.
pub const MAX_TASKS: usize = 64;
/// Distinct runs kept per account, phase and host (the certificate's record).
const MAX_RUNS: i64 = 16;
/// How far ahead of the reporter's clock a proof's report may be dated.
const CLOCK_ALLOWANCE_MS: i64 = 5 * 60 * 1000;
/// How long agents are told to delete the export archive of an ended closure.
pub const DELETE_NOTICE_MS: i64 = 30 * 86_400_000;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClosureView {
    pub account: String,
    /// The closure's state; `blocked` while a host reports that it could not erase.
    pub state: String,
    /// The last state reached (equal to `state` unless blocked).
    pub progress: String,
    pub requested_by: String,
    pub reason: String,
    /// The admin who opened the closure and approved its identifiers.
    pub approved_by: String,
    pub requested_at: String,
    pub cooling_off_until: String,
    /// When the closure must be closed (`erasure.deadline` after the cooling-off).
    pub due_by: String,
    /// Past `due_by` and not closed or cancelled.
    pub overdue: bool,
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

fn host_names(cfg: &ErasureConfig, phase: &str, agents: &[AgentRow]) -> Vec<String> {
    let mut v: Vec<String> = hosts_for(cfg, phase, agents)
        .iter()
        .map(|a| a.host.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The hosts that must prove `phase` now: those frozen when it became
/// pending, and any active host whose roles prove it since.
fn required(
    cfg: &ErasureConfig,
    phase: &str,
    agents: &[AgentRow],
    frozen: &[String],
) -> Vec<String> {
    let mut v = host_names(cfg, phase, agents);
    v.extend(frozen.iter().cloned());
    v.sort();
    v.dedup();
    v
}

/// Whether the gate of `phase` is open for `c`, and if not why.
enum Gate {
    Open(Value),
    Waiting(String),
    Blocked(String),
}

struct GateInput<'a> {
    agents: &'a [AgentRow],
    /// Each host's newest report: finished at, and its run's duration (ms).
    last_seen: &'a BTreeMap<String, (i64, i64)>,
    res: &'a [ResultRow],
    frozen: &'a [String],
    now: i64,
}

fn gate(cfg: &ErasureConfig, c: &ClosureRow, phase: &str, g: &GateInput<'_>) -> Gate {
    if phase != "export" && g.now < c.cooling_off_until {
        return Gate::Waiting(format!(
            "cooling-off period until {}",
            rfc3339(c.cooling_off_until)
        ));
    }
    if phase == "offline_backups" {
        if let Some(m) = &c.offline_method {
            return Gate::Open(json!({"method": m, "evidence": c.offline_evidence}));
        }
    }
    let hosts = required(cfg, phase, g.agents, g.frozen);
    if hosts.is_empty() {
        return Gate::Waiting(format!(
            "no enrolled host has a role that proves `{phase}` ({})",
            roles_for(cfg, phase).join(", ")
        ));
    }
    let mut proofs = Vec::new();
    for h in &hosts {
        let agent = g
            .agents
            .iter()
            .find(|a| &a.host == h && a.revoked_at.is_none());
        let r = g
            .res
            .iter()
            .find(|r| r.phase == phase && &r.host == h && r.received_at >= c.state_since);
        match r {
            Some(r) if !r.done => {
                return Gate::Blocked(format!(
                    "`{h}` reported that `{phase}` is not done for this account"
                ))
            }
            Some(r) => {
                let Some(a) = agent else {
                    return Gate::Waiting(format!("`{h}` has no active agent"));
                };
                // A host whose checks take longer than its schedule reports
                // once a run: it is stale after two of those, not before.
                // (Two backup hosts proving many blobs each took ~15 s a run
                // on a 1 s schedule, so they were never fresh together.)
                let (last, took_ms) = g.last_seen.get(h).copied().unzip();
                let period = a.interval_secs.max(took_ms.unwrap_or(0).saturating_add(999) / 1000);
                if is_stale(last, period, g.now) {
                    return Gate::Waiting(format!("`{h}` is stale"));
                }
                let mut proof = json!({"host": h, "report_id": r.report_id, "digest": r.digest, "at": rfc3339(r.received_at)});
                if let (Some(sha), Some(o)) = (
                    r.detail.get("archive_sha256").and_then(Value::as_str),
                    proof.as_object_mut(),
                ) {
                    o.insert("archive_sha256".into(), sha.into());
                }
                proofs.push(proof);
            }
            None if agent.is_none() => {
                return Gate::Waiting(format!(
                    "`{h}` must prove `{phase}` (required since the phase began) but has no active agent"
                ))
            }
            None if !agent.is_some_and(|a| agent_proves(cfg, phase, a)) => {
                return Gate::Waiting(format!(
                    "`{h}` must prove `{phase}` (required since the phase began) but its roles no longer do; restore them"
                ))
            }
            None => return Gate::Waiting(format!("waiting for `{h}` to prove `{phase}`")),
        }
    }
    Gate::Open(json!({"hosts": proofs}))
}

/// Moves every open closure as far as its gates allow.
pub async fn advance_all(state: &AppState, actor: &str) -> Result<(), StoreError> {
    for c in open_closures(&state.store).await? {
        advance(state, c, actor).await?;
    }
    Ok(())
}

async fn last_seen_map(state: &AppState) -> Result<BTreeMap<String, (i64, i64)>, StoreError> {
    crate::fleet_state::last_seen(&state.store).await
}

/// The pending phase of a closure in `state`, if any.
fn pending_phase(state: &str) -> Option<&'static str> {
    let i = STATES.iter().position(|s| *s == state)?;
    PHASES.get(i).copied()
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
                let mut frozen = frozen_hosts(state, &c.account, p).await?;
                if frozen.is_empty() {
                    // A closure from before phases were frozen: freeze now.
                    let hosts = host_names(&state.erasure, p, &agents);
                    let mut conn = state.store.pool.acquire().await?;
                    freeze_in(&mut conn, &c.account, p, &hosts).await?;
                    frozen = hosts;
                }
                let g = GateInput {
                    agents: &agents,
                    last_seen: &seen,
                    res: &res,
                    frozen: &frozen,
                    now: now_ms(),
                };
                match gate(&state.erasure, &c, p, &g) {
                    Gate::Open(mut ev) => {
                        // The certificate records the runs that deleted, not only
                        // the proof that counted (issue 21).
                        if let Some(hosts) = ev.get_mut("hosts").and_then(Value::as_array_mut) {
                            for h in hosts.iter_mut() {
                                let name = h
                                    .get("host")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_owned();
                                let r = runs(state, &c.account, p, &name, c.state_since).await?;
                                if let Some(o) = h.as_object_mut() {
                                    o.insert("runs".into(), Value::Array(r));
                                }
                            }
                        }
                        ev
                    }
                    Gate::Waiting(_) | Gate::Blocked(_) => return Ok(c),
                }
            }
        };
        let agents_now = agents.clone();
        c = transition(state, c, next, actor, evidence, &agents_now).await?;
    }
}

async fn transition(
    state: &AppState,
    mut c: ClosureRow,
    to: &str,
    actor: &str,
    evidence: Value,
    agents: &[AgentRow],
) -> Result<ClosureRow, StoreError> {
    let now = now_ms();
    let from = c.state.clone();
    let mut history = c.history.clone();
    history.push(
        json!({"from": from, "to": to, "at": rfc3339(now), "by": actor, "evidence": evidence}),
    );
    let ends = matches!(to, "closed" | "cancelled");
    let _g = state.audit.write_lock().await;
    let mut tx = state.store.begin_write().await?;
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
    if let Some(p) = pending_phase(to) {
        freeze_in(
            &mut tx,
            &c.account,
            p,
            &host_names(&state.erasure, p, agents),
        )
        .await?;
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
    let dropped = if ends {
        Some(
            crate::exports::drop_in(
                &mut tx,
                &state.audit,
                state.store.backend,
                &c.account,
                actor,
                &format!("closure {to}"),
            )
            .await?,
        )
    } else {
        None
    };
    tx.commit().await?;
    drop(_g);
    if let Some(d) = dropped {
        crate::exports::remove_files(&state.exports_dir, &c.account, &d).await;
    }
    c.state = to.to_owned();
    c.state_since = now;
    c.history = history;
    Ok(c)
}

/// Records the `erasure` check results of a freshly stored report, received
/// at `received_at` (the reporter's clock): only for the phase each closure
/// has pending now, only from a host whose roles prove it, only from a report
/// not dated ahead of the reporter, and at most [`MAX_RESULTS_PER_REPORT`].
/// Export proofs for an export on request go to [`crate::exports`].
pub async fn record_results(
    state: &AppState,
    agent: &AgentRow,
    report: &vigil_rules::report::Report,
    received_at: i64,
) -> Result<bool, StoreError> {
    let host = agent.host.as_str();
    let finished = report.finished_at.timestamp_millis();
    if finished > received_at.saturating_add(CLOCK_ALLOWANCE_MS) {
        tracing::warn!(%host, report_id = %report.report_id, "erasure proofs of a report dated in the future ignored");
        return Ok(false);
    }
    let mut any = false;
    let mut seen = 0usize;
    for c in &report.controls {
        for k in c.checks.iter().filter(|k| k.check_type == "erasure") {
            for (task, t) in vigil_rules::checks::erasure::tasks(&k.evidence) {
                seen += 1;
                if seen > MAX_RESULTS_PER_REPORT {
                    tracing::warn!(%host, report_id = %report.report_id, "more than {MAX_RESULTS_PER_REPORT} erasure results in one report; the rest ignored");
                    return Ok(any);
                }
                let (account, phase) = (task.account.as_str(), task.phase.as_str());
                if !PHASES.contains(&phase)
                    || !valid_account(account)
                    || !agent_proves(&state.erasure, phase, agent)
                {
                    continue;
                }
                let done = task.done && k.status != vigil_rules::verdict::CheckStatus::Error;
                let closure = load(state, account).await?;
                let pending = closure.as_ref().and_then(|c| pending_phase(&c.state));
                if pending != Some(phase) {
                    if phase == "export" {
                        any |= crate::exports::record_request_proof(
                            &state.store,
                            &state.audit,
                            account,
                            host,
                            done,
                            t,
                            received_at,
                        )
                        .await?;
                    }
                    continue;
                }
                let digest = task.digest.as_str();
                let detail = t.to_string();
                let run_digest = hex::encode(Sha256::digest(detail.as_bytes()));
                // Lock first (across reporters on PostgreSQL): the same
                // host's proof arriving at two reporters at once would
                // otherwise both delete nothing and insert the same key.
                let mut tx = state.store.begin_write().await?;
                sqlx::query(
                    "DELETE FROM erasure_results WHERE account = $1 AND phase = $2 AND host = $3",
                )
                .bind(account)
                .bind(phase)
                .bind(host)
                .execute(&mut *tx)
                .await?;
                sqlx::query("INSERT INTO erasure_results (account, phase, host, done, report_id, at, digest, detail, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                    .bind(account)
                    .bind(phase)
                    .bind(host)
                    .bind(i64::from(done))
                    .bind(&report.report_id)
                    .bind(finished)
                    .bind(digest)
                    .bind(&detail)
                    .bind(received_at)
                    .execute(&mut *tx)
                    .await?;
                let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM erasure_runs WHERE account = $1 AND phase = $2 AND host = $3")
                    .bind(account)
                    .bind(phase)
                    .bind(host)
                    .fetch_one(&mut *tx)
                    .await?;
                if kept < MAX_RUNS {
                    sqlx::query("INSERT INTO erasure_runs (account, phase, host, run_digest, report_id, received_at, detail) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (account, phase, host, run_digest) DO NOTHING")
                        .bind(account)
                        .bind(phase)
                        .bind(host)
                        .bind(&run_digest)
                        .bind(&report.report_id)
                        .bind(received_at)
                        .bind(&detail)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                any = true;
            }
        }
    }
    Ok(any)
}

/// What the reporter hands one agent: its erasure tasks and the accounts
/// whose export archive it must delete.
pub struct AgentTasks {
    pub tasks: Vec<Value>,
    pub delete_exports: Vec<String>,
}

/// Tasks for one agent: for every open closure, the pending phase if this
/// agent's roles prove it and the cooling-off allows it; the exports on
/// request; and the export archives to delete (closures that ended, exports
/// that expired, in the last 30 days). At most [`MAX_TASKS`] tasks.
pub async fn tasks_for(state: &AppState, agent: &AgentRow) -> Result<AgentTasks, StoreError> {
    let now = now_ms();
    let mut out = Vec::new();
    let mut busy = std::collections::BTreeSet::new();
    for c in open_closures(&state.store).await? {
        busy.insert(c.account.clone());
        let Some(phase) = pending_phase(&c.state) else {
            continue;
        };
        if phase != "export" && now < c.cooling_off_until {
            continue;
        }
        if phase == "offline_backups" && c.offline_method.is_some() {
            continue;
        }
        if !agent_proves(&state.erasure, phase, agent) {
            continue;
        }
        // requested_at: `delete: rotation` proves every older snapshot gone.
        out.push(
            json!({"account": c.account, "phase": phase, "identifiers": c.identifiers,
                        "requested_at": rfc3339(c.requested_at)}),
        );
    }
    let exporter = agent_proves(&state.erasure, "export", agent);
    for a in crate::exports::open_requests(&state.store, now).await? {
        let pending = out
            .iter()
            .any(|t| t["account"] == a.account.as_str() && t["phase"] == "export");
        if exporter && !a.proved && !pending {
            out.push(json!({"account": a.account, "phase": "export", "identifiers": []}));
        }
        busy.insert(a.account);
    }
    out.truncate(MAX_TASKS);
    let mut delete = Vec::new();
    if exporter {
        let ended: Vec<String> = sqlx::query_scalar("SELECT account FROM closures WHERE (state = 'closed' OR state = 'cancelled') AND state_since >= $1 ORDER BY account")
            .bind(now.saturating_sub(DELETE_NOTICE_MS))
            .fetch_all(&state.store.pool)
            .await?;
        delete.extend(ended);
        delete.extend(
            crate::exports::ended_requests(&state.store, now.saturating_sub(DELETE_NOTICE_MS))
                .await?,
        );
        delete.retain(|a| !busy.contains(a));
        delete.sort();
        delete.dedup();
        delete.truncate(MAX_TASKS);
    }
    Ok(AgentTasks {
        tasks: out,
        delete_exports: delete,
    })
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
            "`{account}` is not an account id (letters, digits, `-`, `.`, `_`, starting with a letter or digit)"
        ));
    }
    if requested_by.trim().is_empty() || reason.trim().is_empty() {
        return Err("`requested_by` and `reason` are required".into());
    }
    let existing = load(state, account).await.map_err(|e| e.to_string())?;
    if let Some(c) = &existing {
        if c.state != "cancelled" {
            return Ok(OpenOutcome::Existing(Box::new(
                view(state, c.clone()).await.map_err(|e| e.to_string())?,
            )));
        }
    }
    check_account_as_identifier(account)?;
    for i in &identifiers {
        check_identifier(i)?;
    }
    let mut ids = identifiers;
    if !ids.iter().any(|i| i == account) {
        ids.insert(0, account.to_owned());
    }
    let agents = state.store.agents().await.map_err(|e| e.to_string())?;
    let now = now_ms();
    let ms = |d: &vigil_rules::duration::PolicyDuration| {
        i64::try_from(d.as_std().as_millis()).unwrap_or(i64::MAX)
    };
    let cooling_until = now.saturating_add(ms(&state.erasure.cooling_off));
    let due_at = cooling_until.saturating_add(ms(&state.erasure.deadline));
    let history = vec![
        json!({"to": "requested", "at": rfc3339(now), "by": actor, "approved_by": actor, "requested_by": requested_by, "reason": reason}),
    ];
    let _g = state.audit.write_lock().await;
    let run = async {
        let mut tx = state.store.begin_write().await?;
        if existing.is_some() {
            // Reopening a cancelled closure: nothing of the old one counts.
            for table in [
                "closures",
                "erasure_results",
                "erasure_runs",
                "closure_phase_hosts",
            ] {
                sqlx::query(&format!("DELETE FROM {table} WHERE account = $1"))
                    .bind(account)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query(&format!(
            "INSERT INTO closures ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(account)
        .bind("requested")
        .bind(requested_by)
        .bind(reason)
        .bind(serde_json::to_string(&ids).unwrap_or_default())
        .bind(now)
        .bind(now)
        .bind(cooling_until)
        .bind(None::<String>)
        .bind(None::<String>)
        .bind(serde_json::to_string(&history).unwrap_or_default())
        .bind(due_at)
        .bind(None::<i64>)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        freeze_in(
            &mut tx,
            account,
            "export",
            &host_names(&state.erasure, "export", &agents),
        )
        .await?;
        // The identifiers themselves stay out of the audit log: they are what
        // the purge removes. Their number and approver go in.
        state
            .audit
            .append_in(
                &mut tx,
                state.store.backend,
                "closure.requested",
                actor,
                json!({"account": account, "requested_by": requested_by, "reason": reason,
                       "approved_by": actor, "identifiers": ids.len(), "due_by": rfc3339(due_at)}),
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
    let agents = state.store.agents().await?;
    let c = transition(
        state,
        c,
        "cancelled",
        actor,
        json!({"cancelled_by": actor}),
        &agents,
    )
    .await?;
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
    let mut tx = state.store.begin_write().await?;
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

fn is_open(state: &str) -> bool {
    state != "closed" && state != "cancelled"
}

async fn view(state: &AppState, c: ClosureRow) -> Result<ClosureView, StoreError> {
    let agents = state.store.agents().await?;
    let seen = last_seen_map(state).await?;
    let res = results(state, &c.account).await?;
    let now = now_ms();
    let reached = STATES.iter().position(|s| *s == c.state);
    let mut blocked_reason = None;
    let mut phases = Vec::new();
    for (i, p) in PHASES.iter().enumerate() {
        let frozen = frozen_hosts(state, &c.account, p).await?;
        let hosts = if reached.is_some_and(|r| r >= i) && !frozen.is_empty() {
            required(&state.erasure, p, &agents, &frozen)
        } else {
            host_names(&state.erasure, p, &agents)
        };
        let evidence: Vec<Value> = res
            .iter()
            .filter(|r| r.phase == *p)
            .map(|r| json!({"host": r.host, "done": r.done, "report_id": r.report_id, "digest": r.digest, "at": rfc3339(r.received_at), "detail": r.detail}))
            .collect();
        let g = GateInput {
            agents: &agents,
            last_seen: &seen,
            res: &res,
            frozen: &frozen,
            now,
        };
        let (st, note) = match reached {
            _ if c.state == "cancelled" => ("cancelled".to_owned(), None),
            Some(r) if r > i => ("done".to_owned(), None),
            Some(r) if r == i => match gate(&state.erasure, &c, p, &g) {
                Gate::Open(_) => ("pending".to_owned(), None),
                Gate::Waiting(w) => ("waiting".to_owned(), Some(w)),
                Gate::Blocked(b) => {
                    blocked_reason = Some(b.clone());
                    ("blocked".to_owned(), Some(b))
                }
            },
            _ => ("not_started".to_owned(), None),
        };
        phases.push(PhaseView {
            phase: (*p).to_owned(),
            state: st,
            hosts,
            evidence,
            note,
        });
    }
    let overdue = is_open(&c.state) && c.due_at > 0 && now > c.due_at;
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
        approved_by: c.approved_by,
        requested_at: rfc3339(c.requested_at),
        cooling_off_until: rfc3339(c.cooling_off_until),
        due_by: if c.due_at > 0 {
            rfc3339(c.due_at)
        } else {
            String::new()
        },
        overdue,
        blocked_reason,
        phases,
        history: c.history,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_must_be_specific() {
        // Regression (issue 19 item 17): `sshd` as an identifier blanked every
        // sshd line fleet-wide.
        for bad in [
            "sshd",
            "SSHD",
            "session",
            "12345",
            "abcdefg",
            "u 1842",
            "connections",
            "authentication",
        ] {
            assert!(check_identifier(bad).is_err(), "`{bad}` accepted");
        }
        for good in ["u-1842", "acme.papyrs.example", "12345678", "cust_00417"] {
            assert!(check_identifier(good).is_ok(), "`{good}` refused");
        }
        assert!(check_account_as_identifier("root").is_err());
        assert!(check_account_as_identifier("abc").is_err());
        assert!(check_account_as_identifier("acme").is_ok());
    }

    #[test]
    fn path_like_account_ids_are_refused() {
        // Regression (issue 19 item 18): `.`/`..` were account ids.
        for bad in [".", "..", ".hidden", "-rf", "a/b", "", &"a".repeat(129)] {
            assert!(!valid_account(bad), "`{bad}` accepted");
        }
        assert!(valid_account("acme") && valid_account("acme-2.eu_1"));
    }

    #[tokio::test]
    async fn overdue_closures_are_reported_and_audited_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("vigil.db").display()
        );
        let store = crate::store::Store::open(&url).await.unwrap();
        let audit =
            crate::audit::AuditLog::load_or_create(&dir.path().join("audit.key"), "t").unwrap();
        let now = now_ms();
        for (account, state, due) in [
            ("late", "site_erased", now - 1000),
            ("early", "site_erased", now + 60_000),
            ("done", "closed", now - 1000),
        ] {
            sqlx::query(&format!("INSERT INTO closures ({COLS}) VALUES ($1, $2, 'x', 'y', '[]', $3, $3, $3, NULL, NULL, '[]', $4, NULL, 'alice')"))
                .bind(account)
                .bind(state)
                .bind(now - 10_000)
                .bind(due)
                .execute(&store.pool)
                .await
                .unwrap();
        }
        let first = overdue(&store, &audit, now).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].account, "late");
        assert!(overdue(&store, &audit, now + 5000)
            .await
            .unwrap()
            .is_empty());
        let entries = crate::audit::entries(&store).await.unwrap();
        let kinds: Vec<&str> = entries
            .iter()
            .map(|e| e.kind.as_str())
            .filter(|k| *k == "erasure.overdue")
            .collect();
        assert_eq!(kinds.len(), 1);
    }
}
