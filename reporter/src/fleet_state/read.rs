//! Reading: narrow queries over the maintained state for the API, the pages,
//! notifications and exports.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::*;
use crate::posture::{is_stale, rfc3339, Judged};
use crate::store::{Backend, ControlRow, Store};

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

/// Every host's newest report: when it finished and how long its run took
/// (ms; 0 when the report is no longer stored), by host (for closures'
/// liveness gates).
pub async fn last_seen(store: &Store) -> Result<BTreeMap<String, (i64, i64)>> {
    let rows = sqlx::query(
        "SELECT lh.host, lh.finished_at, COALESCE(lh.finished_at - r.started_at, 0) AS took \
         FROM latest_hosts lh LEFT JOIN reports r ON r.report_id = lh.report_id",
    )
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("host")?,
                (
                    r.try_get("finished_at")?,
                    r.try_get::<i64, _>("took")?.max(0),
                ),
            ))
        })
        .collect()
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

/// Every host of the view (agents and hosts that reported), by name, with
/// staleness at `at` applied.
pub fn fleet_hosts(view: &View, at: i64) -> Vec<FleetHost> {
    let f = view.fleet();
    f.hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| h.listed)
        .map(|(i, h)| {
            let stale = h.stale_at(at);
            let (agent_id, worst) = view.host_extra(i);
            FleetHost {
                host: h.name.to_owned(),
                agent_id: agent_id.map(str::to_owned),
                roles: f
                    .role_sets
                    .get(h.role_set)
                    .map(|r| r.to_vec())
                    .unwrap_or_default(),
                last_report_at: h.last.map(|l| rfc3339(l.0)),
                last_report_ms: h.last.map(|l| l.0),
                last_report_id: h.last.map(|l| l.1.to_owned()),
                stale,
                revoked: h.revoked,
                status: match worst {
                    Some(w) if !stale => w.to_owned(),
                    _ => "unknown".into(),
                },
            }
        })
        .collect()
}

/// [`crate::posture::is_stale`] in SQL: whether a host whose newest report
/// finished at `last` (NULL: never) with an agent of `interval` seconds is
/// stale at `$1` (epoch ms). Tested against `is_stale` at its edges.
pub fn stale_sql(last: &str, interval: &str) -> String {
    format!(
        "({last} IS NULL OR $1 - {last} > (CASE WHEN {interval} < 1 THEN 1 ELSE {interval} END) * 2000)"
    )
}

/// Every host as the host list shows it (`$1` is the time staleness is
/// judged at): agents' hosts and hosts with a newest report, each with its
/// newest agent (by creation, then id). Index searches per host
/// (`agents_host`, `latest_hosts`' key), no scan of results.
fn hosts_sql() -> String {
    let stale = stale_sql("l.finished_at", "COALESCE(a.interval_secs, 900)");
    format!(
        "WITH n AS (SELECT host FROM agents UNION SELECT host FROM latest_hosts), \
         h AS (SELECT n.host AS host, a.id AS agent_id, a.roles AS roles, a.revoked_at AS revoked_at, \
               l.finished_at AS finished_at, l.report_id AS report_id, l.status AS status, \
               CASE WHEN {stale} THEN 1 ELSE 0 END AS stale \
               FROM n LEFT JOIN agents a ON a.host = n.host AND NOT EXISTS (SELECT 1 FROM agents y WHERE y.host = a.host \
                 AND (y.created_at > a.created_at OR (y.created_at = a.created_at AND y.id > a.id))) \
               LEFT JOIN latest_hosts l ON l.host = n.host) \
         SELECT h.*, CASE WHEN stale = 1 OR status IS NULL THEN 'unknown' ELSE status END AS worst FROM h"
    )
}

/// `CASE` giving a status's place in [`super::WORST_FIRST`].
fn rank_sql(col: &str) -> String {
    let mut s = format!("CASE {col}");
    for (i, w) in super::WORST_FIRST.iter().enumerate() {
        s.push_str(&format!(" WHEN '{w}' THEN {i}"));
    }
    s.push_str(&format!(" ELSE {} END", super::WORST_FIRST.len()));
    s
}

enum Bind {
    Int(i64),
    Text(String),
}

async fn fetch(store: &Store, sql: &str, binds: &[Bind]) -> Result<Vec<sqlx::any::AnyRow>> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = match b {
            Bind::Int(i) => q.bind(*i),
            Bind::Text(t) => q.bind(t.as_str()),
        };
    }
    Ok(q.fetch_all(&store.pool).await?)
}

fn host_of(r: &sqlx::any::AnyRow) -> Result<FleetHost> {
    let roles: Option<String> = r.try_get("roles")?;
    let finished_at: Option<i64> = r.try_get("finished_at")?;
    let revoked_at: Option<i64> = r.try_get("revoked_at")?;
    let stale: i64 = r.try_get("stale")?;
    Ok(FleetHost {
        host: r.try_get("host")?,
        agent_id: r.try_get("agent_id")?,
        roles: match roles {
            Some(r) => serde_json::from_str(&r)
                .map_err(|e| StoreError::Corrupt(format!("agent roles: {e}")))?,
            None => Vec::new(),
        },
        last_report_at: finished_at.map(rfc3339),
        last_report_ms: finished_at,
        last_report_id: r.try_get("report_id")?,
        stale: stale != 0,
        revoked: revoked_at.is_some(),
        status: r.try_get("worst")?,
    })
}

/// One page (1-based `page`, clamped to the last one) of the hosts matching
/// `filter`, worst status first then by name, with staleness judged at `at`
/// in SQL; and how many match in all, and the page given. Reads `per` rows
/// (and counts when the page asked for is past the end).
pub async fn hosts_page(
    store: &Store,
    at: i64,
    filter: &HostFilter,
    page: u32,
    per: u32,
) -> Result<(Vec<FleetHost>, u64, u32)> {
    let mut wh: Vec<String> = Vec::new();
    let mut binds: Vec<Bind> = vec![Bind::Int(at)];
    let (find, collate) = match store.backend {
        Backend::Sqlite => ("instr", ""),
        Backend::Postgres => ("strpos", " COLLATE \"C\""),
    };
    if let Some(s) = &filter.status {
        binds.push(Bind::Text(s.clone()));
        wh.push(format!("worst = ${}", binds.len()));
    }
    if let Some(r) = &filter.role {
        // `roles` is a JSON array: its elements appear quoted.
        binds.push(Bind::Text(
            serde_json::to_string(r).unwrap_or_else(|_| format!("\"{r}\"")),
        ));
        wh.push(format!("{find}(roles, ${}) > 0", binds.len()));
    }
    if let Some(n) = &filter.name {
        binds.push(Bind::Text(n.to_lowercase()));
        wh.push(format!("{find}(lower(host), ${}) > 0", binds.len()));
    }
    if let Some(st) = filter.stale {
        binds.push(Bind::Int(i64::from(st)));
        wh.push(format!("stale = ${}", binds.len()));
    }
    let cond = if wh.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", wh.join(" AND "))
    };
    let base = format!("SELECT * FROM ({}) v{cond}", hosts_sql());
    let page_sql = |page: u32| {
        format!(
            "SELECT v.*, COUNT(*) OVER () AS total FROM ({base}) v ORDER BY {}, host{collate} LIMIT {} OFFSET {}",
            rank_sql("worst"),
            per.max(1),
            u64::from(page.max(1) - 1) * u64::from(per.max(1)),
        )
    };
    let mut page = page.max(1);
    let mut rows = fetch(store, &page_sql(page), &binds).await?;
    let total: u64 = match rows.first() {
        Some(r) => u64::try_from(r.try_get::<i64, _>("total")?).unwrap_or(0),
        None if page == 1 => 0,
        None => {
            let counted = fetch(
                store,
                &format!("SELECT COUNT(*) AS n FROM ({base}) c"),
                &binds,
            )
            .await?;
            let n: i64 = match counted.first() {
                Some(r) => r.try_get("n")?,
                None => 0,
            };
            let total = u64::try_from(n).unwrap_or(0);
            let last = u32::try_from(total.div_ceil(u64::from(per.max(1))))
                .unwrap_or(u32::MAX)
                .max(1);
            if last < page {
                page = last;
                rows = fetch(store, &page_sql(page), &binds).await?;
            }
            total
        }
    };
    let items = rows.iter().map(host_of).collect::<Result<Vec<_>>>()?;
    Ok((items, total, page))
}

/// One host by name (None: neither an agent nor a report knows it), with
/// staleness at `at`: two keyed reads.
pub async fn one_host(store: &Store, host: &str, at: i64) -> Result<Option<FleetHost>> {
    let agent = sqlx::query(
        "SELECT id, roles, interval_secs, revoked_at FROM agents WHERE host = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(host)
    .fetch_optional(&store.pool)
    .await?;
    let last =
        sqlx::query("SELECT finished_at, report_id, status FROM latest_hosts WHERE host = $1")
            .bind(host)
            .fetch_optional(&store.pool)
            .await?;
    if agent.is_none() && last.is_none() {
        return Ok(None);
    }
    let mut h = FleetHost {
        host: host.to_owned(),
        agent_id: None,
        roles: Vec::new(),
        last_report_at: None,
        last_report_ms: None,
        last_report_id: None,
        stale: true,
        revoked: false,
        status: "unknown".into(),
    };
    let mut interval = 900;
    if let Some(a) = &agent {
        let roles: String = a.try_get("roles")?;
        h.agent_id = Some(a.try_get("id")?);
        h.roles = serde_json::from_str(&roles)
            .map_err(|e| StoreError::Corrupt(format!("agent roles: {e}")))?;
        interval = a.try_get("interval_secs")?;
        h.revoked = a.try_get::<Option<i64>, _>("revoked_at")?.is_some();
    }
    let mut worst = None;
    if let Some(l) = &last {
        let t: i64 = l.try_get("finished_at")?;
        h.last_report_at = Some(rfc3339(t));
        h.last_report_ms = Some(t);
        h.last_report_id = Some(l.try_get("report_id")?);
        worst = Some(l.try_get::<String, _>("status")?);
    }
    h.stale = is_stale(h.last_report_ms, interval, at);
    if let Some(w) = worst.filter(|_| !h.stale) {
        h.status = w;
    }
    Ok(Some(h))
}

/// Active hosts (an unrevoked agent) and how many of them are fresh at `at`
/// (a newest report within twice the interval, as the posture judges).
pub async fn staleness_counts(store: &Store, at: i64) -> Result<(i64, i64)> {
    let sql = format!(
        "SELECT COUNT(*) AS active, CAST(COALESCE(SUM(CASE WHEN {} THEN 0 ELSE 1 END), 0) AS BIGINT) AS fresh \
         FROM agents a LEFT JOIN latest_hosts l ON l.host = a.host WHERE a.revoked_at IS NULL",
        stale_sql("l.finished_at", "a.interval_secs")
    );
    let row = sqlx::query(&sql).bind(at).fetch_one(&store.pool).await?;
    Ok((row.try_get("active")?, row.try_get("fresh")?))
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

/// Per judged control (policy order): counts by status and the first
/// `first_n` failing hosts (the overview).
pub fn control_summaries(j: &Judged, first_n: usize) -> Vec<ControlSummary> {
    j.controls
        .iter()
        .map(|c| {
            let failing: Vec<&(u32, u8, i64)> = c.results.iter().filter(|r| r.1 == 0).collect();
            ControlSummary {
                id: c.id.to_owned(),
                title: c.title.to_owned(),
                status: j.status(c).to_owned(),
                counts: j.counts(c),
                failing: failing
                    .iter()
                    .take(first_n)
                    .filter_map(|r| j.fleet.hosts.get(r.0 as usize))
                    .map(|h| h.name.to_owned())
                    .collect(),
                failing_total: failing.len(),
                applicable_hosts: j.applicable_hosts(c),
                last_verified: c
                    .results
                    .iter()
                    .filter(|r| r.1 == 5 || r.1 == 3)
                    .map(|r| r.2)
                    .max()
                    .map(rfc3339),
            }
        })
        .collect()
}

/// One host's result of one control (staleness applied).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ControlHost {
    pub host: String,
    /// `unknown` when the host is stale or never reported the control.
    pub status: String,
    /// The result's finished_at, epoch ms (0: never reported).
    pub finished_at: i64,
    pub stale: bool,
}

/// The hosts of the one control `j` was judged for (`judge(.., Some(id))`),
/// in host order; None when the control is neither in the policy nor
/// reported by a host it applies to. Its counts are `j.counts`.
pub fn control_hosts(j: &Judged) -> Option<Vec<ControlHost>> {
    let c = j.controls.first()?;
    Some(
        c.results
            .iter()
            .filter_map(|(i, s, ms)| {
                let h = j.fleet.hosts.get(*i as usize)?;
                Some(ControlHost {
                    host: h.name.to_owned(),
                    status: j
                        .fleet
                        .statuses
                        .get(usize::from(*s))
                        .cloned()
                        .unwrap_or_else(|| "unknown".into()),
                    finished_at: *ms,
                    stale: j.stale.get(*i as usize).copied().unwrap_or(false),
                })
            })
            .collect(),
    )
}
