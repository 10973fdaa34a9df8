//! What the fleet pages read, in the shapes they show: one function per
//! question a page asks (the controls' counts with their first failing hosts,
//! one page of hosts, one control's hosts, one host's latest results). The
//! pages call nothing else of the store, so where the answers come from is
//! decided here alone: the state `fleet_state` maintains at ingest (latest
//! result per host and control, newest report per host, daily roll-ups),
//! never a scan of stored reports.

use std::collections::BTreeMap;

use serde::Serialize;

use super::views::{self, HostFilter, Staleness};
use crate::error::PageError;
use crate::fleet_state;
use crate::state::AppState;

/// One control of the overview.
#[derive(Debug, Clone, Serialize)]
pub struct ControlLine {
    pub id: String,
    pub title: String,
    /// Hosts per status.
    pub counts: BTreeMap<String, u64>,
    /// The first failing hosts, by name.
    pub failing: Vec<String>,
    pub failing_total: u64,
}

/// One host of the host list.
#[derive(Debug, Clone, Serialize)]
pub struct HostLine {
    pub host: String,
    pub roles: Vec<String>,
    pub last_report_ms: Option<i64>,
    pub stale: bool,
    pub revoked: bool,
    /// Its worst control status ([`views::WORST_FIRST`]); `unknown` when
    /// stale or never reported.
    pub worst: String,
}

/// The fleet's hosts in numbers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostsSummary {
    pub total: u64,
    pub stale: u64,
    pub revoked: u64,
    pub by_role: BTreeMap<String, u64>,
    pub by_worst: BTreeMap<String, u64>,
}

/// One host's newest result of one control.
#[derive(Debug, Clone, Serialize)]
pub struct ControlHost {
    pub host: String,
    pub status: String,
    pub at_ms: i64,
}

/// The published policy's (id, title) controls and each control's roles.
type PolicyScope = (Vec<(String, String)>, BTreeMap<String, Vec<String>>);

fn roles_and_policy(state: &AppState) -> PolicyScope {
    state
        .policy()
        .map(|p| (p.controls, p.control_roles))
        .unwrap_or_default()
}

fn counts64(c: &BTreeMap<String, u32>) -> BTreeMap<String, u64> {
    c.iter().map(|(k, v)| (k.clone(), u64::from(*v))).collect()
}

fn rank(s: &str) -> usize {
    views::WORST_FIRST
        .iter()
        .position(|w| *w == s)
        .unwrap_or(views::WORST_FIRST.len())
}

/// Every host with its worst status (staleness applied), from the
/// maintained state.
async fn all_hosts(state: &AppState, now: i64) -> Result<Vec<HostLine>, PageError> {
    let agents = state.store.agents().await?;
    Ok(fleet_state::fleet_hosts(&state.store, &agents, now)
        .await?
        .into_iter()
        .map(|h| HostLine {
            host: h.host,
            roles: h.roles,
            last_report_ms: h.last_report_ms,
            stale: h.stale,
            revoked: h.revoked,
            worst: h.status,
        })
        .collect())
}

/// The overview: every control with its counts and first `n` failing hosts,
/// and the hosts in numbers.
pub async fn overview(
    state: &AppState,
    now: i64,
    n: usize,
) -> Result<(Vec<ControlLine>, HostsSummary), PageError> {
    let (policy, roles) = roles_and_policy(state);
    let controls = fleet_state::control_summaries(&state.store, now, &policy, &roles, n)
        .await?
        .into_iter()
        .map(|c| ControlLine {
            counts: counts64(&c.counts),
            failing_total: c.failing_total as u64,
            failing: c.failing,
            id: c.id,
            title: c.title,
        })
        .collect();
    let mut s = HostsSummary::default();
    for h in all_hosts(state, now).await? {
        s.total += 1;
        s.stale += u64::from(h.stale && !h.revoked);
        s.revoked += u64::from(h.revoked);
        for r in &h.roles {
            *s.by_role.entry(r.clone()).or_default() += 1;
        }
        if !h.revoked {
            *s.by_worst.entry(h.worst).or_default() += 1;
        }
    }
    Ok((controls, s))
}

/// One page of hosts matching `f`, worst first then by name, and how many
/// match in all.
pub async fn hosts(
    state: &AppState,
    now: i64,
    f: &HostFilter,
) -> Result<(Vec<HostLine>, u64), PageError> {
    let needle = f.q.as_ref().map(|q| q.to_lowercase());
    let mut lines = all_hosts(state, now).await?;
    lines.retain(|h| {
        f.status.as_ref().is_none_or(|s| &h.worst == s)
            && f.role.as_ref().is_none_or(|r| h.roles.contains(r))
            && needle
                .as_ref()
                .is_none_or(|q| h.host.to_lowercase().contains(q.as_str()))
            && match f.stale {
                None => true,
                Some(Staleness::Stale) => h.stale,
                Some(Staleness::Fresh) => !h.stale,
            }
    });
    lines.sort_by(|a, b| {
        rank(&a.worst)
            .cmp(&rank(&b.worst))
            .then_with(|| a.host.cmp(&b.host))
    });
    let total = lines.len() as u64;
    let page = views::Page::new(f.page, f.per, total);
    let rows = lines
        .into_iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(f.per as usize)
        .collect();
    Ok((rows, total))
}

/// The control (None: neither the policy nor any host knows it) with its
/// hosts per status, and one page of its hosts, optionally of one status,
/// worst first then by name.
pub async fn control_hosts(
    state: &AppState,
    now: i64,
    id: &str,
    status: Option<&str>,
    offset: u64,
    limit: u32,
) -> Result<Option<(ControlLine, Vec<ControlHost>, u64)>, PageError> {
    let (policy, roles) = roles_and_policy(state);
    let all = fleet_state::control_hosts(&state.store, now, id, &roles, None, 0, usize::MAX)
        .await?
        .items;
    let title = match policy.iter().find(|(p, _)| p == id) {
        Some((_, t)) => t.clone(),
        // A control of an older policy that some host still reports.
        None if all.iter().any(|h| h.finished_at.is_some()) => id.to_owned(),
        None => return Ok(None),
    };
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut failing = 0u64;
    for h in &all {
        *counts.entry(h.status.clone()).or_default() += 1;
        failing += u64::from(h.status == "fail");
    }
    let mut rows: Vec<ControlHost> = all
        .into_iter()
        .filter(|h| status.is_none_or(|s| h.status == s))
        .map(|h| ControlHost {
            at_ms: h
                .finished_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or(0, |t| t.timestamp_millis()),
            host: h.host,
            status: h.status,
        })
        .collect();
    rows.sort_by(|a, b| {
        rank(&a.status)
            .cmp(&rank(&b.status))
            .then_with(|| a.host.cmp(&b.host))
    });
    let total = rows.len() as u64;
    let rows = rows
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit as usize)
        .collect();
    let line = ControlLine {
        id: id.to_owned(),
        title,
        counts,
        failing: Vec::new(),
        failing_total: failing,
    };
    Ok(Some((line, rows, total)))
}

/// The host's line (None: no such host).
pub async fn host(state: &AppState, now: i64, host: &str) -> Result<Option<HostLine>, PageError> {
    Ok(all_hosts(state, now)
        .await?
        .into_iter()
        .find(|h| h.host == host))
}

/// The newest result of every control the host ever reported, with its
/// checks (a control missing from the newest report keeps the result of
/// the report that last had it), in the policy's order.
pub async fn host_latest(
    state: &AppState,
    host: &str,
) -> Result<Vec<fleet_state::HostResult>, PageError> {
    let (policy, _) = roles_and_policy(state);
    Ok(fleet_state::host_results(&state.store, host, &policy).await?)
}

/// The fleet compliance score of each of the last `days` days (0..=100),
/// from the daily roll-ups.
pub async fn trend(
    state: &AppState,
    now: i64,
    days: u32,
) -> Result<Vec<(String, Option<f64>)>, PageError> {
    Ok(fleet_state::score_trend(&state.store, now, days)
        .await?
        .into_iter()
        .map(|p| (p.day, p.score.map(|s| s * 100.0)))
        .collect())
}

/// One control's hosts per status at the end of each of the last `days`
/// days, from the daily roll-ups (one small read per day).
pub async fn control_trend(
    state: &AppState,
    now: i64,
    id: &str,
    days: i64,
) -> Result<Vec<super::chart::Day>, PageError> {
    let (policy, roles) = roles_and_policy(state);
    let mut out = Vec::new();
    for back in (0..days).rev() {
        let at = now - back * fleet_state::DAY_MS;
        let p = fleet_state::posture_on_day(&state.store, at, &policy, &roles).await?;
        let counts = p
            .controls
            .into_iter()
            .find(|c| c.id == id)
            .map(|c| c.counts)
            .unwrap_or_default();
        let date = chrono::DateTime::from_timestamp_millis(fleet_state::day_of(at))
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        out.push(super::chart::Day { date, counts });
    }
    Ok(out)
}

/// The waivers in force, soonest expiry first.
pub async fn waivers(state: &AppState) -> Result<Vec<crate::posture::WaiverSummary>, PageError> {
    Ok(crate::waivers::in_force(state).await?)
}
