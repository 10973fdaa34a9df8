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
use crate::posture;
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

fn host_line(h: fleet_state::FleetHost) -> HostLine {
    HostLine {
        host: h.host,
        roles: h.roles,
        last_report_ms: h.last_report_ms,
        stale: h.stale,
        revoked: h.revoked,
        worst: h.status,
    }
}

/// The overview: every control with its counts and first `n` failing hosts,
/// and the hosts in numbers. One judgement of the cached fleet.
pub async fn overview(
    state: &AppState,
    now: i64,
    n: usize,
) -> Result<(Vec<ControlLine>, HostsSummary), PageError> {
    let (policy, roles) = roles_and_policy(state);
    let view = fleet_state::view(&state.store, &state.fleet_cache).await?;
    let fleet = view.fleet();
    let judged = posture::judge(&fleet, now, &policy, &roles, None);
    let controls = fleet_state::control_summaries(&judged, n)
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
    for (i, h) in fleet.hosts.iter().enumerate().filter(|(_, h)| h.listed) {
        let stale = judged.stale.get(i).copied().unwrap_or(true);
        s.total += 1;
        s.stale += u64::from(stale && !h.revoked);
        s.revoked += u64::from(h.revoked);
        for r in fleet.role_sets.get(h.role_set).copied().unwrap_or_default() {
            *s.by_role.entry(r.clone()).or_default() += 1;
        }
        if !h.revoked {
            let worst = match view.host_extra(i).1 {
                Some(w) if !stale => w,
                _ => "unknown",
            };
            *s.by_worst.entry(worst.to_owned()).or_default() += 1;
        }
    }
    Ok((controls, s))
}

/// One page of hosts matching `f`, worst first then by name, and how many
/// match in all (filters, order and page in SQL).
pub async fn hosts(
    state: &AppState,
    now: i64,
    f: &HostFilter,
) -> Result<(Vec<HostLine>, u64), PageError> {
    let filter = fleet_state::HostFilter {
        status: f.status.clone(),
        role: f.role.clone(),
        name: f.q.clone(),
        stale: f.stale.map(|s| s == Staleness::Stale),
    };
    let (rows, total, _) =
        fleet_state::hosts_page(&state.store, now, &filter, f.page, f.per).await?;
    Ok((rows.into_iter().map(host_line).collect(), total))
}

/// The control (None: neither the policy nor any host it applies to knows
/// it) with its hosts per status (the posture's counts), and one page of
/// its hosts, optionally of one status, worst first then by name.
pub async fn control_hosts(
    state: &AppState,
    now: i64,
    id: &str,
    status: Option<&str>,
    offset: u64,
    limit: u32,
) -> Result<Option<(ControlLine, Vec<ControlHost>, u64)>, PageError> {
    let (policy, roles) = roles_and_policy(state);
    let view = fleet_state::view(&state.store, &state.fleet_cache).await?;
    let fleet = view.fleet();
    let judged = posture::judge(&fleet, now, &policy, &roles, Some(id));
    let (Some(c), Some(all)) = (judged.controls.first(), fleet_state::control_hosts(&judged))
    else {
        return Ok(None);
    };
    let counts = counts64(&judged.counts(c));
    let title = c.title.to_owned();
    let mut rows: Vec<ControlHost> = all
        .into_iter()
        .filter(|h| status.is_none_or(|s| h.status == s))
        .map(|h| ControlHost {
            at_ms: h.finished_at,
            host: h.host,
            status: h.status,
        })
        .collect();
    // Stable: by name within a status.
    rows.sort_by_key(|h| rank(&h.status));
    let total = rows.len() as u64;
    let rows = rows
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit as usize)
        .collect();
    let line = ControlLine {
        id: id.to_owned(),
        title,
        failing_total: counts.get("fail").copied().unwrap_or(0),
        counts,
        failing: Vec::new(),
    };
    Ok(Some((line, rows, total)))
}

/// The host's line (None: no such host): two keyed reads.
pub async fn host(state: &AppState, now: i64, host: &str) -> Result<Option<HostLine>, PageError> {
    Ok(fleet_state::one_host(&state.store, host, now)
        .await?
        .map(host_line))
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
/// days, from one range read of its daily roll-ups.
pub async fn control_trend(
    state: &AppState,
    now: i64,
    id: &str,
    days: i64,
) -> Result<Vec<super::chart::Day>, PageError> {
    let days = u32::try_from(days.clamp(1, 366)).unwrap_or(30);
    Ok(fleet_state::control_days(&state.store, id, now, days)
        .await?
        .into_iter()
        .map(|(day, counts)| super::chart::Day {
            date: chrono::DateTime::from_timestamp_millis(day)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            counts,
        })
        .collect())
}

/// The waivers in force, soonest expiry first.
pub async fn waivers(state: &AppState) -> Result<Vec<crate::posture::WaiverSummary>, PageError> {
    Ok(crate::waivers::in_force(state).await?)
}
