//! Writing: the upkeep of the maintained state inside the ingest transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::*;
use crate::store::{placeholders, Backend, NewReport};

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
    // Last: the views' cache generation (views22b; `cache.rs`).
    bump_generation(tx).await?;
    Ok(())
}

/// `$from, $from+1, …` (`n` of them).
fn in_list(from: usize, n: usize) -> String {
    (0..n)
        .map(|i| format!("${}", from + i))
        .collect::<Vec<_>>()
        .join(", ")
}
