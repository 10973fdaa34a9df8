//! Reading: narrow queries over the maintained state for the API, the pages,
//! notifications and exports.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::*;
use crate::posture::{self, is_stale, rfc3339};
use crate::store::{AgentRow, Backend, ControlRow, Store};

/// The latest result of every (host, control), without checks, ordered by
/// host then control id: what the scans of `control_results` gave
/// (`Store::latest_controls` at now), read in one row per control.
pub async fn latest(store: &Store) -> Result<Vec<ControlRow>> {
    // One row per control with its results packed (`host\tstatus\tms` lines):
    // 200,000 results decode as 20 rows instead of 200,000.
    let agg = match store.backend {
        Backend::Sqlite => "group_concat(host || char(9) || status || char(9) || CAST(finished_at AS TEXT), char(10))",
        Backend::Postgres => "string_agg(host || chr(9) || status || chr(9) || CAST(finished_at AS TEXT), chr(10))",
    };
    let sql = format!(
        "SELECT control_id, MIN(title) AS title, {agg} AS packed FROM latest_results GROUP BY control_id"
    );
    let rows = sqlx::query(&sql).fetch_all(&store.pool).await?;
    let mut out = Vec::new();
    for r in &rows {
        let control_id: String = r.try_get("control_id")?;
        let title: String = r.try_get("title")?;
        let packed: Option<String> = r.try_get("packed")?;
        for line in packed.as_deref().unwrap_or_default().split('\n') {
            let mut f = line.split('\t');
            let (Some(host), Some(status), Some(ms)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            out.push(ControlRow {
                host: host.to_owned(),
                control_id: control_id.clone(),
                title: title.clone(),
                status: status.to_owned(),
                finished_at: ms
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("latest_results time `{ms}`")))?,
            });
        }
    }
    out.sort_by(|a, b| (&a.host, &a.control_id).cmp(&(&b.host, &b.control_id)));
    Ok(out)
}

/// Every host's newest report: (host, finished_at, report_id), by host;
/// what `Store::last_report_times` at now gave.
pub async fn last_reports(store: &Store) -> Result<Vec<(String, i64, String)>> {
    let rows = sqlx::query("SELECT host, finished_at, report_id FROM latest_hosts ORDER BY host")
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("host")?,
                r.try_get("finished_at")?,
                r.try_get("report_id")?,
            ))
        })
        .collect()
}

/// Every host's newest report time, by host (for closures' liveness gates).
pub async fn last_seen(store: &Store) -> Result<BTreeMap<String, i64>> {
    Ok(last_reports(store)
        .await?
        .into_iter()
        .map(|(h, t, _)| (h, t))
        .collect())
}

/// The control ids any host has reported.
pub async fn reported_controls(store: &Store) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT control_id FROM latest_results")
            .fetch_all(&store.pool)
            .await?,
    )
}

/// One control's latest result on one host, with its checks.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct HostResult {
    pub control_id: String,
    pub title: String,
    /// As reported (staleness not applied; see [`FleetHost::stale`]).
    pub status: String,
    /// The agent's finished_at of the report it came in, RFC 3339.
    pub finished_at: String,
    /// When the reporter received it, RFC 3339.
    pub received_at: String,
    pub report_id: String,
    /// Empty for results stored before migration 0021 until the host reports again.
    pub checks: Vec<CheckBrief>,
}

/// One host's latest result of every control it reported, in the order of
/// `policy` (the published policy's `(id, title)` list), then controls the
/// policy does not name by id. Empty for an unknown host. Independent of
/// report retention.
pub async fn host_results(
    store: &Store,
    host: &str,
    policy: &[(String, String)],
) -> Result<Vec<HostResult>> {
    let rows = sqlx::query(
        "SELECT control_id, title, status, finished_at, received_at, report_id, checks FROM latest_results WHERE host = $1",
    )
    .bind(host)
    .fetch_all(&store.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let checks: String = r.try_get("checks")?;
        out.push(HostResult {
            control_id: r.try_get("control_id")?,
            title: r.try_get("title")?,
            status: r.try_get("status")?,
            finished_at: rfc3339(r.try_get("finished_at")?),
            received_at: rfc3339(r.try_get("received_at")?),
            report_id: r.try_get("report_id")?,
            checks: serde_json::from_str(&checks)
                .map_err(|e| StoreError::Corrupt(format!("latest_results checks: {e}")))?,
        });
    }
    let order = policy_order(policy);
    out.sort_by(|a, b| order_key(&order, &a.control_id).cmp(&order_key(&order, &b.control_id)));
    Ok(out)
}

/// One host as the fleet views list it.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FleetHost {
    pub host: String,
    pub agent_id: Option<String>,
    pub roles: Vec<String>,
    /// Its newest report's finished_at, RFC 3339 (None: never reported).
    pub last_report_at: Option<String>,
    pub last_report_ms: Option<i64>,
    pub last_report_id: Option<String>,
    pub stale: bool,
    pub revoked: bool,
    /// Its worst latest control status; `unknown` when stale or never reported.
    pub status: String,
}

/// Filter of [`hosts_page`]; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct HostFilter {
    /// A [`FleetHost::status`] value.
    pub status: Option<String>,
    /// Hosts holding this role.
    pub role: Option<String>,
    /// Case-insensitive substring of the host name.
    pub name: Option<String>,
    pub stale: Option<bool>,
}

/// A page of a longer list.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Matching items in all pages.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
}

fn page<T>(all: Vec<T>, offset: usize, limit: usize) -> Page<T> {
    let total = all.len();
    Page {
        items: all.into_iter().skip(offset).take(limit).collect(),
        total,
        offset,
        limit,
    }
}

/// Every host (agents and hosts that reported), by name, with staleness at
/// `at` (epoch ms, normally now) applied. `agents` is `Store::agents()`.
pub async fn fleet_hosts(store: &Store, agents: &[AgentRow], at: i64) -> Result<Vec<FleetHost>> {
    let rows = sqlx::query("SELECT host, finished_at, report_id, status FROM latest_hosts")
        .fetch_all(&store.pool)
        .await?;
    let mut latest: HashMap<String, (i64, String, String)> = HashMap::with_capacity(rows.len());
    for r in &rows {
        latest.insert(
            r.try_get("host")?,
            (
                r.try_get("finished_at")?,
                r.try_get("report_id")?,
                r.try_get("status")?,
            ),
        );
    }
    let by_host: HashMap<&str, &AgentRow> =
        agents.iter().rev().map(|a| (a.host.as_str(), a)).collect();
    let mut names: BTreeSet<&str> = by_host.keys().copied().collect();
    names.extend(latest.keys().map(String::as_str));
    Ok(names
        .into_iter()
        .map(|h| {
            let a = by_host.get(h);
            let l = latest.get(h);
            let stale = is_stale(l.map(|l| l.0), a.map_or(900, |a| a.interval_secs), at);
            FleetHost {
                host: h.to_owned(),
                agent_id: a.map(|a| a.id.clone()),
                roles: a.map(|a| a.roles.clone()).unwrap_or_default(),
                last_report_at: l.map(|l| rfc3339(l.0)),
                last_report_ms: l.map(|l| l.0),
                last_report_id: l.map(|l| l.1.clone()),
                stale,
                revoked: a.is_some_and(|a| a.revoked_at.is_some()),
                status: match l {
                    Some(l) if !stale => l.2.clone(),
                    _ => "unknown".into(),
                },
            }
        })
        .collect())
}

/// A page of [`fleet_hosts`] matching `filter`, by name, with the total count.
pub async fn hosts_page(
    store: &Store,
    agents: &[AgentRow],
    at: i64,
    filter: &HostFilter,
    offset: usize,
    limit: usize,
) -> Result<Page<FleetHost>> {
    let needle = filter.name.as_ref().map(|n| n.to_lowercase());
    let all: Vec<FleetHost> = fleet_hosts(store, agents, at)
        .await?
        .into_iter()
        .filter(|h| filter.status.as_ref().is_none_or(|s| *s == h.status))
        .filter(|h| filter.role.as_ref().is_none_or(|r| h.roles.contains(r)))
        .filter(|h| filter.stale.is_none_or(|s| s == h.stale))
        .filter(|h| {
            needle
                .as_ref()
                .is_none_or(|n| h.host.to_lowercase().contains(n.as_str()))
        })
        .collect();
    Ok(page(all, offset, limit))
}

/// One control across the fleet, for the overview.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ControlSummary {
    pub id: String,
    pub title: String,
    pub status: String,
    /// Applicable hosts per status (stale hosts and applicable hosts that
    /// never reported the control are `unknown`).
    pub counts: BTreeMap<String, u32>,
    /// The first `first_n` failing hosts by name.
    pub failing: Vec<String>,
    pub failing_total: usize,
    pub applicable_hosts: u32,
    pub last_verified: Option<String>,
}

/// Everything the posture is computed from, read once.
pub struct Snapshot {
    pub at: i64,
    pub rows: Vec<ControlRow>,
    pub last: Vec<(String, i64, String)>,
    pub agents: Vec<AgentRow>,
}

/// Reads the maintained state (no report is read).
pub async fn snapshot(store: &Store, at: i64) -> Result<Snapshot> {
    Ok(Snapshot {
        at,
        rows: latest(store).await?,
        last: last_reports(store).await?,
        agents: store.agents().await?,
    })
}

impl Snapshot {
    /// The live posture (staleness at `self.at`), controls in policy order.
    pub fn posture(
        &self,
        policy: &[(String, String)],
        control_roles: &BTreeMap<String, Vec<String>>,
    ) -> posture::Posture {
        posture::compute(
            self.at,
            &self.rows,
            &self.last,
            &self.agents,
            policy,
            control_roles,
        )
    }
}

/// Per control in policy order: counts by status and the first `first_n`
/// failing hosts (the overview). Reads the maintained state only.
pub async fn control_summaries(
    store: &Store,
    at: i64,
    policy: &[(String, String)],
    control_roles: &BTreeMap<String, Vec<String>>,
    first_n: usize,
) -> Result<Vec<ControlSummary>> {
    let p = snapshot(store, at).await?.posture(policy, control_roles);
    Ok(p.controls
        .into_iter()
        .map(|c| ControlSummary {
            failing_total: c.hosts_failing.len(),
            failing: c.hosts_failing.into_iter().take(first_n).collect(),
            id: c.id,
            title: c.title,
            status: c.status,
            counts: c.counts,
            applicable_hosts: c.applicable_hosts,
            last_verified: c.last_verified,
        })
        .collect())
}

/// One host's result of one control (staleness applied).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ControlHost {
    pub host: String,
    /// `unknown` when the host is stale or never reported the control.
    pub status: String,
    /// The result's finished_at (None: never reported).
    pub finished_at: Option<String>,
    pub stale: bool,
}

/// The applicable hosts of control `control`, by name, optionally only those
/// of `status` (after staleness), paginated with a total count.
pub async fn control_hosts(
    store: &Store,
    at: i64,
    control: &str,
    control_roles: &BTreeMap<String, Vec<String>>,
    status: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<Page<ControlHost>> {
    let agents = store.agents().await?;
    let hosts = fleet_hosts(store, &agents, at).await?;
    let rows =
        sqlx::query("SELECT host, status, finished_at FROM latest_results WHERE control_id = $1")
            .bind(control)
            .fetch_all(&store.pool)
            .await?;
    let mut results: HashMap<String, (String, i64)> = HashMap::with_capacity(rows.len());
    for r in &rows {
        results.insert(
            r.try_get("host")?,
            (r.try_get("status")?, r.try_get("finished_at")?),
        );
    }
    let no_roles = Vec::new();
    let roles = control_roles.get(control).unwrap_or(&no_roles);
    let all: Vec<ControlHost> = hosts
        .iter()
        .filter(|h| posture::applies(roles, &h.roles))
        .filter_map(|h| {
            let r = results.get(&h.host);
            if r.is_none() && h.revoked {
                return None;
            }
            Some(ControlHost {
                host: h.host.clone(),
                status: match r {
                    Some((s, _)) if !h.stale => s.clone(),
                    _ => "unknown".into(),
                },
                finished_at: r.map(|r| rfc3339(r.1)),
                stale: h.stale,
            })
        })
        .filter(|c| status.is_none_or(|s| s == c.status))
        .collect();
    Ok(page(all, offset, limit))
}
