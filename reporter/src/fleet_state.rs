//! The fleet's state, maintained at ingest instead of scanned from stored
//! reports (issue 22, item 2): the latest result of every (host, control)
//! with its checks in compact form (`latest_results`), every host's newest
//! report and worst status (`latest_hosts`), and daily roll-ups per control
//! (`control_daily`). Migration 0021 makes the tables; this module owns
//! their SQL.
//!
//! Writing: [`apply`] runs inside the ingest transaction
//! (`ingest::insert_reports_locked`), in a few multi-row statements per
//! batch. A result replaces the stored one only when its `finished_at` is
//! newer (a late spool delivery never rolls a host back; on a tie the
//! smaller report id wins, as the scans did). Roll-ups move by deltas.
//!
//! Reading: narrow functions over `&Store`, for the API (`fleet`), the
//! pages (`web`), notifications and exports. Staleness is applied at read
//! time: a host whose newest report is older than twice its agent's interval
//! counts every control as `unknown` ([`crate::posture::is_stale`]).
//!
//! Roll-up semantics: the row (`control_id`, `day`, `status`) says how many
//! hosts' latest result of the control was `status` at the end of UTC day
//! `day` (by the reporter's receive time), and how many of them (`fresh`)
//! were received that very day. A control's rows are carried into a new day
//! on its first change that day; a day without rows repeats the previous one
//! with nothing fresh. The fleet **compliance score** of a day is the share
//! of host × control results that are `pass`, `attested` or `waived` and
//! fresh; a result not received that day counts as stale, i.e. `unknown`.
//! Today's live score ([`score_of`]) judges staleness exactly instead.
//!
//! INVARIANT: for every control, the newest `control_daily` day's `hosts`
//! per status equals the count of `latest_results` rows of that control per
//! status (both written in one transaction).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

pub use crate::posture::TrendPoint;
use crate::posture::{self, is_stale, rfc3339};
use crate::store::{placeholders, AgentRow, Backend, ControlRow, NewReport, Store, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// One UTC day in epoch milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Epoch ms of the UTC midnight that starts the day holding `ms`.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// Statuses that count as compliant in the score. Not `waived`: a waived
/// control failed and is accepted for a while, never counted as met (as the
/// overview and the brochure say).
pub const COMPLIANT: [&str; 2] = ["pass", "attested"];

/// Worst first: the order a host's or a control's overall status is taken in.
const WORST_FIRST: [&str; 6] = ["fail", "error", "unknown", "attested", "waived", "pass"];

/// The worst of `statuses` (`unknown` when there are none).
pub fn worst<'a>(statuses: impl IntoIterator<Item = &'a str>) -> &'static str {
    let mut best = WORST_FIRST.len();
    let mut any = false;
    for s in statuses {
        any = true;
        let i = WORST_FIRST.iter().position(|w| *w == s).unwrap_or(2);
        best = best.min(i);
    }
    if !any {
        return "unknown";
    }
    WORST_FIRST.get(best).copied().unwrap_or("unknown")
}

// --- the compact checks -----------------------------------------------------------

/// One check of a control's latest result, as kept after its report is pruned.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CheckBrief {
    pub id: String,
    #[serde(rename = "type")]
    pub check_type: String,
    pub status: String,
    pub summary: String,
    #[serde(default)]
    pub findings: Vec<FindingBrief>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waived_by: Option<String>,
}

/// One finding of a [`CheckBrief`] (no evidence, no excerpt).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct FindingBrief {
    pub code: String,
    pub severity: String,
    #[serde(default)]
    pub subject: String,
    pub message: String,
}

/// The compact checks of every control of `r`, one JSON array per control in
/// `r.controls` order ([`NewReport::checks`]). Built from the parsed report in
/// the ingest route: the body is not parsed again.
pub fn compact_checks(r: &vigil_rules::report::Report) -> Vec<String> {
    r.controls
        .iter()
        .map(|c| {
            let checks: Vec<CheckBrief> = c
                .checks
                .iter()
                .map(|k| CheckBrief {
                    id: k.id.clone(),
                    check_type: k.check_type.clone(),
                    status: k.status.as_str().to_owned(),
                    summary: k.summary.clone(),
                    findings: k
                        .findings
                        .iter()
                        .map(|f| FindingBrief {
                            code: f.code.clone(),
                            severity: f.severity.as_str().to_owned(),
                            subject: f.subject.clone(),
                            message: f.message.clone(),
                        })
                        .collect(),
                    waived_by: k.waived_by.clone(),
                })
                .collect();
            serde_json::to_string(&checks).unwrap_or_else(|_| "[]".into())
        })
        .collect()
}

// --- writing (inside the ingest transaction) ----------------------------------------

struct Candidate<'a> {
    title: &'a str,
    status: &'a str,
    finished_at: i64,
    report_id: &'a str,
    checks: &'a str,
}

struct Stored {
    status: String,
    finished_at: i64,
    received_at: i64,
    report_id: String,
}

/// [`newer`] in SQL, for `latest_hosts`' upsert.
const NEWER_HOST_REPORT: &str = "(excluded.finished_at > latest_hosts.finished_at OR (excluded.finished_at = latest_hosts.finished_at AND excluded.report_id < latest_hosts.report_id))";

/// Whether a result (`finished_at`, `report_id`) replaces the stored one.
fn newer(finished_at: i64, report_id: &str, than_f: i64, than_id: &str) -> bool {
    finished_at > than_f || (finished_at == than_f && report_id < than_id)
}

/// Roll-up deltas of replacing `old` by a result of `new_status` received at
/// `now`: (status, Δhosts, Δfresh) entries. Pure.
pub fn deltas(old: Option<(&str, i64)>, new_status: &str, now: i64) -> Vec<(String, i64, i64)> {
    let mut out = vec![(new_status.to_owned(), 1, 1)];
    if let Some((s, received_at)) = old {
        let fresh = i64::from(day_of(received_at) == day_of(now));
        out.push((s.to_owned(), -1, -fresh));
    }
    out
}

/// Updates the latest results, the hosts' newest reports and the roll-ups
/// for the NEW reports of one ingest batch. Runs inside the caller's
/// transaction; `now` is the reporter's receive time of the batch.
pub async fn apply(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    reports: &[&NewReport],
    now: i64,
) -> Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    // 1. The batch's newest result per (host, control).
    let mut cands: HashMap<(&str, &str), Candidate> = HashMap::new();
    for r in reports {
        for (i, (id, title, status)) in r.controls.iter().enumerate() {
            let c = Candidate {
                title,
                status,
                finished_at: r.finished_at,
                report_id: &r.report_id,
                checks: r.checks.get(i).map_or("[]", String::as_str),
            };
            match cands.get(&(r.host.as_str(), id.as_str())) {
                Some(o) if !newer(c.finished_at, c.report_id, o.finished_at, o.report_id) => {}
                _ => {
                    cands.insert((r.host.as_str(), id.as_str()), c);
                }
            }
        }
    }
    let hosts: BTreeSet<&str> = reports.iter().map(|r| r.host.as_str()).collect();
    let hosts: Vec<&str> = hosts.into_iter().collect();
    // 2. What is stored for these hosts.
    let mut stored: HashMap<(String, String), Stored> = HashMap::new();
    for chunk in hosts.chunks(backend.rows_per_statement(1)) {
        let sql = format!(
            "SELECT host, control_id, status, finished_at, received_at, report_id FROM latest_results WHERE host IN ({})",
            in_list(1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for h in chunk {
            q = q.bind(*h);
        }
        for row in q.fetch_all(&mut **tx).await? {
            stored.insert(
                (row.try_get("host")?, row.try_get("control_id")?),
                Stored {
                    status: row.try_get("status")?,
                    finished_at: row.try_get("finished_at")?,
                    received_at: row.try_get("received_at")?,
                    report_id: row.try_get("report_id")?,
                },
            );
        }
    }
    // 3. The winners, and the roll-up deltas they make.
    let mut winners: Vec<((&str, &str), &Candidate)> = cands
        .iter()
        .filter(|((h, c), cand)| {
            stored
                .get(&((*h).to_owned(), (*c).to_owned()))
                .is_none_or(|s| {
                    newer(
                        cand.finished_at,
                        cand.report_id,
                        s.finished_at,
                        &s.report_id,
                    )
                })
        })
        .map(|(k, v)| (*k, v))
        .collect();
    winners.sort_by(|a, b| a.0.cmp(&b.0));
    let day = day_of(now);
    let mut delta: BTreeMap<(&str, String), (i64, i64)> = BTreeMap::new();
    for ((h, c), cand) in &winners {
        let old = stored.get(&((*h).to_owned(), (*c).to_owned()));
        for (s, dh, df) in deltas(
            old.map(|o| (o.status.as_str(), o.received_at)),
            cand.status,
            now,
        ) {
            let e = delta.entry((*c, s)).or_default();
            e.0 += dh;
            e.1 += df;
        }
    }
    delta.retain(|_, v| *v != (0, 0));
    for chunk in winners.chunks(backend.rows_per_statement(8)) {
        let sql = format!(
            "INSERT INTO latest_results (host, control_id, title, status, finished_at, received_at, report_id, checks) VALUES {} \
             ON CONFLICT (host, control_id) DO UPDATE SET title = excluded.title, status = excluded.status, finished_at = excluded.finished_at, \
             received_at = excluded.received_at, report_id = excluded.report_id, checks = excluded.checks",
            placeholders(chunk.len(), 8)
        );
        let mut q = sqlx::query(&sql);
        for ((h, c), cand) in chunk {
            q = q
                .bind(*h)
                .bind(*c)
                .bind(cand.title)
                .bind(cand.status)
                .bind(cand.finished_at)
                .bind(now)
                .bind(cand.report_id)
                .bind(cand.checks);
        }
        q.execute(&mut **tx).await?;
    }
    // 4. Each host's newest report and worst status after this batch.
    for ((h, c), cand) in &winners {
        stored.insert(
            ((*h).to_owned(), (*c).to_owned()),
            Stored {
                status: cand.status.to_owned(),
                finished_at: cand.finished_at,
                received_at: now,
                report_id: cand.report_id.to_owned(),
            },
        );
    }
    let mut status_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for ((h, _), s) in &stored {
        status_of
            .entry(h.as_str())
            .or_default()
            .push(s.status.as_str());
    }
    let mut newest: HashMap<&str, (i64, &str)> = HashMap::new();
    for r in reports {
        let e = newest
            .entry(r.host.as_str())
            .or_insert((r.finished_at, &r.report_id));
        if newer(r.finished_at, &r.report_id, e.0, e.1) {
            *e = (r.finished_at, &r.report_id);
        }
    }
    for chunk in hosts.chunks(backend.rows_per_statement(5)) {
        let sql = format!(
            "INSERT INTO latest_hosts (host, finished_at, received_at, report_id, status) VALUES {} \
             ON CONFLICT (host) DO UPDATE SET status = excluded.status, \
             received_at = CASE WHEN {NEWER_HOST_REPORT} THEN excluded.received_at ELSE latest_hosts.received_at END, \
             report_id = CASE WHEN {NEWER_HOST_REPORT} THEN excluded.report_id ELSE latest_hosts.report_id END, \
             finished_at = CASE WHEN {NEWER_HOST_REPORT} THEN excluded.finished_at ELSE latest_hosts.finished_at END",
            placeholders(chunk.len(), 5)
        );
        let mut q = sqlx::query(&sql);
        for h in chunk {
            let (f, id) = newest.get(h).copied().unwrap_or((0, ""));
            let st = worst(status_of.get(h).into_iter().flatten().copied());
            q = q.bind(*h).bind(f).bind(now).bind(id).bind(st);
        }
        q.execute(&mut **tx).await?;
    }
    // 5. Roll-ups: carry the touched controls into today, then add the deltas.
    let touched: BTreeSet<&str> = delta.keys().map(|(c, _)| *c).collect();
    let touched: Vec<&str> = touched.into_iter().collect();
    for chunk in touched.chunks(backend.rows_per_statement(1).saturating_sub(1).max(1)) {
        let sql = format!(
            "INSERT INTO control_daily (control_id, day, status, hosts, fresh) \
             SELECT d.control_id, $1, d.status, d.hosts, 0 FROM control_daily d \
             WHERE d.control_id IN ({}) \
             AND d.day = (SELECT MAX(p.day) FROM control_daily p WHERE p.control_id = d.control_id AND p.day < $1) \
             AND NOT EXISTS (SELECT 1 FROM control_daily t WHERE t.control_id = d.control_id AND t.day = $1)",
            in_list(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(day);
        for c in chunk {
            q = q.bind(*c);
        }
        q.execute(&mut **tx).await?;
    }
    let rows: Vec<_> = delta.into_iter().collect();
    for chunk in rows.chunks(backend.rows_per_statement(5)) {
        let sql = format!(
            "INSERT INTO control_daily (control_id, day, status, hosts, fresh) VALUES {} \
             ON CONFLICT (control_id, day, status) DO UPDATE SET hosts = control_daily.hosts + excluded.hosts, \
             fresh = control_daily.fresh + excluded.fresh",
            placeholders(chunk.len(), 5)
        );
        let mut q = sqlx::query(&sql);
        for ((c, s), (dh, df)) in chunk {
            q = q.bind(*c).bind(day).bind(s.as_str()).bind(*dh).bind(*df);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// `$from, $from+1, …` (`n` of them).
fn in_list(from: usize, n: usize) -> String {
    (0..n)
        .map(|i| format!("${}", from + i))
        .collect::<Vec<_>>()
        .join(", ")
}

// --- reading --------------------------------------------------------------------------

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

/// Position of each policy control id.
pub fn policy_order(policy: &[(String, String)]) -> HashMap<&str, usize> {
    let mut m = HashMap::new();
    for (i, (id, _)) in policy.iter().enumerate() {
        m.entry(id.as_str()).or_insert(i);
    }
    m
}

/// Sort key: policy position first, then controls outside the policy by id
/// in natural order (SP-2 before SP-10).
pub fn order_key<'a>(order: &HashMap<&str, usize>, id: &'a str) -> (usize, Vec<NaturalPart<'a>>) {
    (order.get(id).copied().unwrap_or(usize::MAX), natural(id))
}

/// A piece of an id for natural ordering: digits compare as numbers.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NaturalPart<'a> {
    Num(u64),
    Text(&'a str),
}

fn natural(s: &str) -> Vec<NaturalPart<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = s.as_bytes();
    while start < bytes.len() {
        let digit = bytes.get(start).is_some_and(u8::is_ascii_digit);
        let mut end = start;
        while end < bytes.len() && bytes.get(end).is_some_and(u8::is_ascii_digit) == digit {
            end += 1;
        }
        let part = s.get(start..end).unwrap_or_default();
        out.push(if digit {
            NaturalPart::Num(part.parse().unwrap_or(u64::MAX))
        } else {
            NaturalPart::Text(part)
        });
        start = end;
    }
    out
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

/// The live fleet compliance score of a posture: the share of applicable
/// host × control results that are pass, attested or waived (stale and
/// never-reported results count as `unknown`, not compliant). None when
/// there is no result at all.
pub fn score_of(p: &posture::Posture) -> Option<f64> {
    let (mut ok, mut all) = (0u64, 0u64);
    for c in &p.controls {
        for (s, n) in &c.counts {
            all += u64::from(*n);
            if COMPLIANT.contains(&s.as_str()) {
                ok += u64::from(*n);
            }
        }
    }
    (all > 0).then(|| ok as f64 / all as f64)
}

/// One roll-up row.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyRow {
    pub control_id: String,
    pub day: i64,
    pub status: String,
    pub hosts: i64,
    pub fresh: i64,
}

/// The roll-up rows that describe days `from..=to` (epoch ms days): every
/// row in range and, per control, the last row before `from`.
async fn daily_rows(store: &Store, from: i64, to: i64) -> Result<Vec<DailyRow>> {
    let rows = sqlx::query(
        "SELECT d.control_id, d.day, d.status, d.hosts, d.fresh FROM control_daily d \
         WHERE d.day <= $1 AND d.day >= COALESCE((SELECT MAX(p.day) FROM control_daily p WHERE p.control_id = d.control_id AND p.day <= $2), $2) \
         ORDER BY d.day",
    )
    .bind(to)
    .bind(from)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DailyRow {
                control_id: r.try_get("control_id")?,
                day: r.try_get("day")?,
                status: r.try_get("status")?,
                hosts: r.try_get("hosts")?,
                fresh: r.try_get("fresh")?,
            })
        })
        .collect()
}

/// Per control, hosts per status at the end of `day`, with hosts whose
/// result was not received that day counted as `unknown`. Pure over rows
/// sorted by day.
pub fn day_counts(rows: &[DailyRow], day: i64) -> BTreeMap<String, BTreeMap<String, u32>> {
    // Each control's newest day <= `day`.
    let mut newest: HashMap<&str, i64> = HashMap::new();
    for r in rows.iter().filter(|r| r.day <= day) {
        let e = newest.entry(r.control_id.as_str()).or_insert(r.day);
        *e = (*e).max(r.day);
    }
    let mut out: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for r in rows {
        if newest.get(r.control_id.as_str()) != Some(&r.day) || r.hosts <= 0 {
            continue;
        }
        let fresh = if r.day == day {
            r.fresh.clamp(0, r.hosts)
        } else {
            0
        };
        let counts = out.entry(r.control_id.clone()).or_default();
        if fresh > 0 {
            *counts.entry(r.status.clone()).or_default() +=
                u32::try_from(fresh).unwrap_or(u32::MAX);
        }
        if r.hosts > fresh {
            *counts.entry("unknown".into()).or_default() +=
                u32::try_from(r.hosts - fresh).unwrap_or(u32::MAX);
        }
    }
    out
}

/// The score of one day's [`day_counts`].
pub fn day_score(counts: &BTreeMap<String, BTreeMap<String, u32>>) -> (Option<f64>, u64) {
    let (mut ok, mut all) = (0u64, 0u64);
    for c in counts.values() {
        for (s, n) in c {
            all += u64::from(*n);
            if COMPLIANT.contains(&s.as_str()) {
                ok += u64::from(*n);
            }
        }
    }
    ((all > 0).then(|| ok as f64 / all as f64), all)
}

fn day_name(day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The score of each of the last `days` UTC days up to the one holding
/// `now`, oldest first (from the roll-ups; see the module doc).
pub async fn score_trend(store: &Store, now: i64, days: u32) -> Result<Vec<TrendPoint>> {
    let to = day_of(now);
    let from = to - i64::from(days.max(1) - 1) * DAY_MS;
    let rows = daily_rows(store, from, to).await?;
    let mut out = Vec::with_capacity(days as usize);
    let mut d = from;
    while d <= to {
        let (score, results) = day_score(&day_counts(&rows, d));
        out.push(TrendPoint {
            day: day_name(d),
            score,
            results,
        });
        d += DAY_MS;
    }
    Ok(out)
}

/// The posture at the end of the UTC day holding `at`, from the roll-ups
/// (day resolution): per control its counts and status; host lists, hosts
/// and `last_verified` are empty (not kept per day). Controls in policy
/// order, then others by id.
pub async fn posture_on_day(
    store: &Store,
    at: i64,
    policy: &[(String, String)],
    control_roles: &BTreeMap<String, Vec<String>>,
) -> Result<posture::Posture> {
    let day = day_of(at);
    let rows = daily_rows(store, day, day).await?;
    Ok(posture_from_day_counts(
        at,
        day_counts(&rows, day),
        policy,
        control_roles,
    ))
}

/// Pure part of [`posture_on_day`].
pub fn posture_from_day_counts(
    at: i64,
    mut counts: BTreeMap<String, BTreeMap<String, u32>>,
    policy: &[(String, String)],
    control_roles: &BTreeMap<String, Vec<String>>,
) -> posture::Posture {
    let mut ids: Vec<(String, String)> = policy.to_vec();
    let mut extra: Vec<&String> = counts
        .keys()
        .filter(|k| !policy.iter().any(|p| &p.0 == *k))
        .collect();
    let order = HashMap::new();
    extra.sort_by(|a, b| order_key(&order, a).cmp(&order_key(&order, b)));
    ids.extend(extra.into_iter().map(|k| (k.clone(), k.clone())));
    let controls = ids
        .into_iter()
        .map(|(id, title)| {
            let c = counts.remove(&id).unwrap_or_default();
            let status = worst(c.keys().map(String::as_str)).to_owned();
            posture::ControlPosture {
                applicable_hosts: c.values().sum(),
                roles: control_roles.get(&id).cloned().unwrap_or_default(),
                id,
                title,
                status,
                counts: c,
                hosts_failing: vec![],
                hosts_error: vec![],
                hosts_unknown: vec![],
                last_verified: None,
                hosts_not_applicable: vec![],
            }
        })
        .collect();
    posture::Posture {
        at: rfc3339(at),
        controls,
        hosts: vec![],
        waivers: vec![],
        score: None,
        trend: vec![],
        resolution: "day".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_status_and_days() {
        assert_eq!(worst(["pass", "waived", "attested"]), "attested");
        assert_eq!(worst(["pass", "error", "fail"]), "fail");
        assert_eq!(worst(std::iter::empty()), "unknown");
        assert_eq!(day_of(DAY_MS + 5), DAY_MS);
        assert_eq!(day_of(-1), -DAY_MS);
    }

    #[test]
    fn deltas_move_one_host_and_its_freshness() {
        let now = 10 * DAY_MS + 100;
        assert_eq!(deltas(None, "pass", now), vec![("pass".into(), 1, 1)]);
        // replaced the same day: it was fresh already
        assert_eq!(
            deltas(Some(("fail", now - 50)), "pass", now),
            vec![("pass".into(), 1, 1), ("fail".into(), -1, -1)]
        );
        // replaced a result of an earlier day: carried rows had it not fresh
        assert_eq!(
            deltas(Some(("pass", now - DAY_MS)), "pass", now),
            vec![("pass".into(), 1, 1), ("pass".into(), -1, 0)]
        );
    }

    fn row(c: &str, day: i64, s: &str, hosts: i64, fresh: i64) -> DailyRow {
        DailyRow {
            control_id: c.into(),
            day: day * DAY_MS,
            status: s.into(),
            hosts,
            fresh,
        }
    }

    #[test]
    fn a_day_without_rows_repeats_the_last_one_as_stale() {
        let rows = vec![
            row("SP-1", 1, "pass", 3, 3),
            row("SP-1", 1, "fail", 1, 1),
            row("SP-2", 1, "pass", 4, 2),
            row("SP-1", 3, "pass", 4, 1),
            row("SP-1", 3, "fail", 0, 0),
        ];
        let d1 = day_counts(&rows, DAY_MS);
        assert_eq!(d1["SP-1"]["pass"], 3);
        assert_eq!(d1["SP-1"]["fail"], 1);
        assert_eq!(d1["SP-2"]["unknown"], 2);
        assert_eq!(day_score(&d1), (Some(5.0 / 8.0), 8));
        let d2 = day_counts(&rows, 2 * DAY_MS);
        assert_eq!(d2["SP-1"]["unknown"], 4);
        assert_eq!(day_score(&d2).0, Some(0.0));
        let d3 = day_counts(&rows, 3 * DAY_MS);
        assert_eq!(d3["SP-1"].get("pass"), Some(&1));
        assert_eq!(d3["SP-1"].get("unknown"), Some(&3));
        assert!(!d3["SP-1"].contains_key("fail"));
        assert!(day_counts(&rows, 0).is_empty());
    }

    #[test]
    fn controls_sort_in_policy_then_natural_order() {
        let policy = vec![
            ("SP-2".to_owned(), String::new()),
            ("SP-1".to_owned(), String::new()),
        ];
        let order = policy_order(&policy);
        let mut ids = vec!["X-10", "SP-1", "X-2", "SP-2"];
        ids.sort_by(|a, b| order_key(&order, a).cmp(&order_key(&order, b)));
        assert_eq!(ids, ["SP-2", "SP-1", "X-2", "X-10"]);
    }

    #[test]
    fn a_past_day_posture_keeps_policy_order() {
        let mut counts = BTreeMap::new();
        counts.insert("SP-10".to_owned(), BTreeMap::from([("pass".to_owned(), 2)]));
        counts.insert(
            "SP-2".to_owned(),
            BTreeMap::from([("fail".to_owned(), 1), ("pass".to_owned(), 1)]),
        );
        let policy = vec![
            ("SP-2".to_owned(), "two".to_owned()),
            ("SP-10".to_owned(), "ten".to_owned()),
        ];
        let p = posture_from_day_counts(0, counts, &policy, &BTreeMap::new());
        let ids: Vec<&str> = p.controls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["SP-2", "SP-10"]);
        assert_eq!(p.controls[0].status, "fail");
        assert_eq!(p.controls[0].applicable_hosts, 2);
        assert_eq!(p.controls[1].status, "pass");
    }

    /// Item 7 of the brief: the maintained state gives the posture that
    /// scanning every stored report gives, for reports delivered out of
    /// order (late spool deliveries, ties of finished_at) in several batches.
    #[tokio::test]
    async fn maintained_state_matches_a_scan_of_the_stored_reports() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("v.db").display());
        let store = Store::open(&url).await.unwrap();
        let audit =
            crate::audit::AuditLog::load_or_create(&dir.path().join("audit.key"), "t").unwrap();
        let statuses = ["pass", "fail", "error", "attested", "waived", "unknown"];
        let mut seed: u64 = 7;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let base = 1_800_000_000_000_i64;
        let mut reports = Vec::new();
        for _ in 0..240 {
            let host = format!("h-{}", next(9));
            // Coarse times make ties between reports of one host.
            let finished_at = base + i64::try_from(next(40)).unwrap() * 60_000;
            let mut controls: Vec<(String, String, String)> = Vec::new();
            for c in 1..=6 {
                if next(4) > 0 {
                    let s = statuses[usize::try_from(next(6)).unwrap()];
                    controls.push((format!("SP-{c}"), format!("t{c}"), s.to_owned()));
                }
            }
            let checks = controls.iter().map(|_| "[]".to_owned()).collect();
            reports.push(NewReport {
                report_id: format!("r-{:04}", next(10_000)),
                agent_id: host.clone(),
                host,
                policy_id: "p".into(),
                policy_version: "1".into(),
                policy_sha256: "0".into(),
                started_at: finished_at,
                finished_at,
                summary: "{}".into(),
                body: "{}".into(),
                body_sha256: String::new(),
                controls,
                checks,
                baselines: vec![],
            });
        }
        // Delivered in batches of varying size, in this (unsorted) order.
        let mut rest = reports.as_slice();
        while !rest.is_empty() {
            let n = usize::try_from(1 + next(30)).unwrap().min(rest.len());
            let (batch, tail) = rest.split_at(n);
            let _g = audit.write_lock().await;
            crate::ingest::insert_reports_locked(&store, &audit, batch)
                .await
                .unwrap();
            rest = tail;
        }
        let policy: Vec<(String, String)> = (1..=7)
            .map(|c| (format!("SP-{c}"), format!("t{c}")))
            .collect();
        for at in [base + 41 * 60_000, base + 60 * 60_000 + 1_800_000] {
            let scanned = posture::compute(
                at,
                &store.latest_controls(at).await.unwrap(),
                &store.last_report_times(at).await.unwrap(),
                &[],
                &policy,
                &BTreeMap::new(),
            );
            let maintained = snapshot(&store, at)
                .await
                .unwrap()
                .posture(&policy, &BTreeMap::new());
            assert_eq!(maintained, scanned, "at {at}");
            assert!(
                scanned.controls.iter().any(|c| !c.hosts_failing.is_empty())
                    || at > base + 3_600_000
            );
        }
        // The roll-ups agree with the latest results (the module's INVARIANT).
        let today = day_of(crate::store::now_ms());
        let rows = daily_rows(&store, today, today).await.unwrap();
        let latest = latest(&store).await.unwrap();
        for (c, _) in &policy {
            for s in statuses {
                let want = latest
                    .iter()
                    .filter(|r| &r.control_id == c && r.status == s)
                    .count();
                let got: i64 = rows
                    .iter()
                    .filter(|r| &r.control_id == c && r.status == s && r.day == today)
                    .map(|r| r.hosts)
                    .sum();
                assert_eq!(got, i64::try_from(want).unwrap(), "{c} {s}");
            }
        }
    }
}
