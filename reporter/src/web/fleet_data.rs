//! What the fleet pages read, in the shapes they show: one function per
//! question a page asks (the controls' counts with their first failing hosts,
//! one page of hosts, one control's hosts, one host's latest results). The
//! pages call nothing else of the store, so where the answers come from is
//! decided here alone.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::views::{self, HostFilter, Staleness};
use crate::error::PageError;
use crate::state::AppState;
use crate::store::StoreError;

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
    /// Its worst control status ([`views::WORST_FIRST`]).
    pub worst: String,
    /// How many of its controls fail.
    pub failing: u64,
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

/// One host's newest result of a control, with its report.
#[derive(Debug, Clone)]
pub struct LatestControl {
    pub id: String,
    pub title: String,
    pub status: String,
    pub at_ms: i64,
    pub report_id: String,
}

fn se(e: sqlx::Error) -> PageError {
    StoreError::from(e).into()
}

/// Every host's worst status and staleness, from the posture.
struct Fleet {
    posture: crate::posture::Posture,
    lines: Vec<HostLine>,
}

async fn fleet(state: &AppState, now: i64) -> Result<Fleet, PageError> {
    let posture = crate::fleet::compute_posture(state, now).await?;
    let last: BTreeMap<String, i64> = state
        .store
        .last_report_times(now)
        .await?
        .into_iter()
        .map(|(h, t, _)| (h, t))
        .collect();
    let lines = posture
        .hosts
        .iter()
        .map(|h| {
            let mut statuses: Vec<&str> = Vec::new();
            let mut failing = 0;
            for c in &posture.controls {
                if c.hosts_not_applicable.contains(&h.host) {
                    continue;
                }
                let s = if c.hosts_failing.contains(&h.host) {
                    failing += 1;
                    "fail"
                } else if c.hosts_error.contains(&h.host) {
                    "error"
                } else if c.hosts_unknown.contains(&h.host) {
                    "unknown"
                } else {
                    "pass"
                };
                statuses.push(s);
            }
            HostLine {
                host: h.host.clone(),
                roles: h.roles.clone(),
                last_report_ms: last.get(&h.host).copied(),
                stale: h.stale,
                revoked: h.revoked,
                worst: if h.stale {
                    "unknown".into()
                } else {
                    views::worst(statuses).to_owned()
                },
                failing,
            }
        })
        .collect();
    Ok(Fleet { posture, lines })
}

/// The overview: every control with its counts and first `n` failing hosts,
/// the hosts in numbers, and (pass, attested, …) counts over every result.
pub async fn overview(
    state: &AppState,
    now: i64,
    n: usize,
) -> Result<(Vec<ControlLine>, HostsSummary), PageError> {
    let f = fleet(state, now).await?;
    let controls = f
        .posture
        .controls
        .iter()
        .map(|c| ControlLine {
            id: c.id.clone(),
            title: c.title.clone(),
            counts: c
                .counts
                .iter()
                .map(|(k, v)| (k.clone(), u64::from(*v)))
                .collect(),
            failing: c.hosts_failing.iter().take(n).cloned().collect(),
            failing_total: c.hosts_failing.len() as u64,
        })
        .collect();
    let mut s = HostsSummary::default();
    for h in &f.lines {
        s.total += 1;
        s.stale += u64::from(h.stale && !h.revoked);
        s.revoked += u64::from(h.revoked);
        for r in &h.roles {
            *s.by_role.entry(r.clone()).or_default() += 1;
        }
        if !h.revoked {
            *s.by_worst.entry(h.worst.clone()).or_default() += 1;
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
    let mut lines = fleet(state, now).await?.lines;
    lines.retain(|h| {
        f.status.as_ref().is_none_or(|s| &h.worst == s)
            && f.role.as_ref().is_none_or(|r| h.roles.contains(r))
            && f.q
                .as_ref()
                .is_none_or(|q| h.host.to_lowercase().contains(&q.to_lowercase()))
            && match f.stale {
                None => true,
                Some(Staleness::Stale) => h.stale,
                Some(Staleness::Fresh) => !h.stale,
            }
    });
    let rank = |s: &str| {
        views::WORST_FIRST
            .iter()
            .position(|w| *w == s)
            .unwrap_or(99)
    };
    lines.sort_by(|a, b| {
        rank(&a.worst)
            .cmp(&rank(&b.worst))
            .then(b.failing.cmp(&a.failing))
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

/// The control's posture (None: no such control) and one page of its hosts,
/// optionally of one status, failing first.
pub async fn control_hosts(
    state: &AppState,
    now: i64,
    id: &str,
    status: Option<&str>,
    offset: u64,
    limit: u32,
) -> Result<Option<(ControlLine, Vec<ControlHost>, u64)>, PageError> {
    let f = fleet(state, now).await?;
    let Some(c) = f.posture.controls.iter().find(|c| c.id == id) else {
        return Ok(None);
    };
    let latest = state.store.latest_controls(now).await?;
    let stale: Vec<&str> = f
        .posture
        .hosts
        .iter()
        .filter(|h| h.stale)
        .map(|h| h.host.as_str())
        .collect();
    let mut rows: Vec<ControlHost> = latest
        .iter()
        .filter(|r| r.control_id == id && !c.hosts_not_applicable.contains(&r.host))
        .map(|r| ControlHost {
            host: r.host.clone(),
            status: if stale.contains(&r.host.as_str()) {
                "unknown".into()
            } else {
                r.status.clone()
            },
            at_ms: r.finished_at,
        })
        .collect();
    for h in &c.hosts_unknown {
        if !rows.iter().any(|r| &r.host == h) {
            rows.push(ControlHost {
                host: h.clone(),
                status: "unknown".into(),
                at_ms: 0,
            });
        }
    }
    rows.retain(|r| status.is_none_or(|s| r.status == s));
    let rank = |s: &str| {
        views::WORST_FIRST
            .iter()
            .position(|w| *w == s)
            .unwrap_or(99)
    };
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
        id: c.id.clone(),
        title: c.title.clone(),
        counts: c
            .counts
            .iter()
            .map(|(k, v)| (k.clone(), u64::from(*v)))
            .collect(),
        failing: Vec::new(),
        failing_total: c.hosts_failing.len() as u64,
    };
    Ok(Some((line, rows, total)))
}

/// The host's line (None: no such host).
pub async fn host(state: &AppState, now: i64, host: &str) -> Result<Option<HostLine>, PageError> {
    Ok(fleet(state, now)
        .await?
        .lines
        .into_iter()
        .find(|h| h.host == host))
}

/// The newest result of every control the host ever reported, with the
/// report that holds it (a control missing from the newest report keeps
/// the result of the report that last had it).
pub async fn host_latest(state: &AppState, host: &str) -> Result<Vec<LatestControl>, PageError> {
    let rows = sqlx::query(
        "SELECT cr.control_id, cr.title, cr.status, cr.finished_at, cr.report_id FROM control_results cr \
         JOIN (SELECT control_id, MAX(finished_at) AS f FROM control_results WHERE host = $1 GROUP BY control_id) l \
         ON cr.control_id = l.control_id AND cr.finished_at = l.f WHERE cr.host = $1 ORDER BY cr.control_id, cr.report_id",
    )
    .bind(host)
    .fetch_all(&state.store.pool)
    .await
    .map_err(se)?;
    let mut out: Vec<LatestControl> = Vec::new();
    for r in &rows {
        let c = LatestControl {
            id: r.try_get("control_id").map_err(se)?,
            title: r.try_get("title").map_err(se)?,
            status: r.try_get("status").map_err(se)?,
            at_ms: r.try_get("finished_at").map_err(se)?,
            report_id: r.try_get("report_id").map_err(se)?,
        };
        if out.last().is_some_and(|l| l.id == c.id) {
            continue;
        }
        out.push(c);
    }
    Ok(out)
}

/// Per day of the last `days`, (results per status) over every control and
/// host: the compliance trend.
pub async fn trend(
    state: &AppState,
    now: i64,
    days: i64,
) -> Result<Vec<super::chart::Day>, PageError> {
    let from = now - days * 86_400_000;
    let rows = sqlx::query(
        "SELECT host, control_id, status, finished_at FROM control_results WHERE finished_at <= $1 ORDER BY finished_at",
    )
    .bind(now)
    .fetch_all(&state.store.pool)
    .await
    .map_err(se)?;
    let mut history: Vec<(String, String, i64)> = Vec::with_capacity(rows.len());
    for r in &rows {
        let host: String = r.try_get("host").map_err(se)?;
        let control: String = r.try_get("control_id").map_err(se)?;
        history.push((
            format!("{host}\u{0}{control}"),
            r.try_get("status").map_err(se)?,
            r.try_get("finished_at").map_err(se)?,
        ));
    }
    Ok(super::chart::days(&history, from, now))
}

/// One control's results per day of the last `days` (hosts per status at
/// the end of each day).
pub async fn control_trend(
    state: &AppState,
    now: i64,
    id: &str,
    days: i64,
) -> Result<Vec<super::chart::Day>, PageError> {
    let from = now - days * 86_400_000;
    let rows = sqlx::query(
        "SELECT host, status, finished_at FROM control_results WHERE control_id = $1 AND finished_at <= $2 ORDER BY finished_at",
    )
    .bind(id)
    .bind(now)
    .fetch_all(&state.store.pool)
    .await
    .map_err(se)?;
    let mut history: Vec<(String, String, i64)> = Vec::with_capacity(rows.len());
    for r in &rows {
        history.push((
            r.try_get("host").map_err(se)?,
            r.try_get("status").map_err(se)?,
            r.try_get("finished_at").map_err(se)?,
        ));
    }
    Ok(super::chart::days(&history, from, now))
}

/// The waivers in force, soonest expiry first.
pub async fn waivers(state: &AppState) -> Result<Vec<crate::posture::WaiverSummary>, PageError> {
    let mut out: Vec<crate::posture::WaiverSummary> = crate::waivers::list_views(state)
        .await?
        .into_iter()
        .filter(|v| v.state == "active")
        .map(|v| {
            let field = |k: &str| {
                v.waiver
                    .get(k)
                    .and_then(|x| x.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            crate::posture::WaiverSummary {
                id: field("id"),
                control: field("control"),
                check: v
                    .waiver
                    .get("check")
                    .and_then(|x| x.as_str())
                    .map(str::to_owned),
                expires: field("expires"),
                days_left: v.days_left,
                expiring_soon: v.expiring_soon,
                approved_by: field("approved_by"),
                justification: field("justification"),
            }
        })
        .collect();
    out.sort_by_key(|w| w.days_left);
    Ok(out)
}
