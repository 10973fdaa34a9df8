//! Writing: the upkeep of the maintained state inside the ingest transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::*;
use crate::store::{Backend, NewReport};

// --- the compact checks -----------------------------------------------------------

/// One check of a control's latest result, as kept after its report is pruned.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CheckBrief {
    pub id: String,
    #[serde(rename = "type")]
    pub check_type: String,
    pub status: String,
    pub summary: String,
    /// The check's most severe findings, at most [`KEPT_FINDINGS`].
    #[serde(default)]
    pub findings: Vec<FindingBrief>,
    /// How many more findings the check had, none more severe than the
    /// kept ones (all of them are in the report's body).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub findings_omitted: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waived_by: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Findings kept per check in the maintained state. A file_integrity check
/// of an unbaselined tree reports a finding per changed file (1,169 on this
/// machine, 350 kB): kept whole, they were re-serialized, bound and compared
/// with every report of the host (a tenth of the ingest's CPU) and no host
/// page shows a thousand findings usefully. The report keeps all of them.
pub const KEPT_FINDINGS: usize = 100;

/// One finding of a [`CheckBrief`] (no evidence, no excerpt).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct FindingBrief {
    pub code: String,
    pub severity: String,
    #[serde(default)]
    pub subject: String,
    pub message: String,
}

/// [`CheckBrief`] borrowed from a parsed report: serialized to the same
/// JSON without copying a string (the ingest route makes one per control).
#[derive(Serialize)]
struct CheckBriefRef<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    check_type: &'a str,
    status: &'a str,
    summary: &'a str,
    findings: Vec<FindingBriefRef<'a>>,
    #[serde(skip_serializing_if = "is_zero")]
    findings_omitted: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    waived_by: Option<&'a str>,
}

/// [`FindingBrief`] borrowed.
#[derive(Serialize)]
struct FindingBriefRef<'a> {
    code: &'a str,
    severity: &'a str,
    subject: &'a str,
    message: &'a str,
}

/// The compact checks of every control of `r`, one JSON array per control in
/// `r.controls` order ([`NewReport::checks`]): [`CheckBrief`]s. Built from the
/// parsed report in the ingest route: the body is not parsed again.
pub fn compact_checks(r: &vigil_rules::report::Report) -> Vec<String> {
    r.controls
        .iter()
        .map(|c| {
            let checks: Vec<CheckBriefRef> = c
                .checks
                .iter()
                .map(|k| CheckBriefRef {
                    id: &k.id,
                    check_type: &k.check_type,
                    status: k.status.as_str(),
                    summary: &k.summary,
                    findings: kept(&k.findings)
                        .map(|f| FindingBriefRef {
                            code: &f.code,
                            severity: f.severity.as_str(),
                            subject: &f.subject,
                            message: &f.message,
                        })
                        .collect(),
                    findings_omitted: k.findings.len().saturating_sub(KEPT_FINDINGS),
                    waived_by: k.waived_by.as_deref(),
                })
                .collect();
            serde_json::to_string(&checks).unwrap_or_else(|_| "[]".into())
        })
        .collect()
}

/// The [`KEPT_FINDINGS`] most severe of `findings`, in the report's order
/// (all of them when there are no more).
fn kept(
    findings: &[vigil_rules::verdict::Finding],
) -> impl Iterator<Item = &vigil_rules::verdict::Finding> {
    // The least severity kept, and how many of that severity still fit.
    let (mut floor, mut room) = (vigil_rules::verdict::Severity::Info, KEPT_FINDINGS);
    if findings.len() > KEPT_FINDINGS {
        let mut severities: Vec<_> = findings.iter().map(|f| f.severity).collect();
        severities.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(&least) = severities.get(KEPT_FINDINGS - 1) {
            floor = least;
            room = KEPT_FINDINGS - severities.iter().filter(|s| **s > floor).count();
        }
    }
    findings.iter().filter(move |f| {
        if f.severity > floor {
            true
        } else if f.severity == floor && room > 0 {
            room -= 1;
            true
        } else {
            false
        }
    })
}

// --- writing (inside the ingest transaction) ----------------------------------------

struct Candidate<'a> {
    /// The control applies to the host ([`NewReport::applies`]).
    applies: bool,
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
///
/// Only results that apply to their host are kept and counted
/// ([`NewReport::applies`]: the reporter's roles of the agent against the
/// published policy's control roles at ingest), as the live posture counts
/// them; a kept result whose control no longer applies (the host's roles or
/// the policy changed) goes with the host's next report of that control.
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
                applies: r.applies.get(i).copied().unwrap_or(true),
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
            backend.list(1, chunk.len())
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
    // A newest result of a control outside the host's roles is neither kept
    // nor counted (the live posture leaves such hosts out of the control's
    // counts); one kept from before (the roles changed since) goes.
    let (winners, outside): (Vec<_>, Vec<_>) = winners.into_iter().partition(|(_, c)| c.applies);
    let removed: Vec<(&str, &str)> = outside
        .into_iter()
        .map(|(k, _)| k)
        .filter(|(h, c)| stored.contains_key(&((*h).to_owned(), (*c).to_owned())))
        .collect();
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
    for (h, c) in &removed {
        if let Some(old) = stored.remove(&((*h).to_owned(), (*c).to_owned())) {
            let e = delta.entry((*c, old.status)).or_default();
            e.0 -= 1;
            e.1 -= i64::from(day_of(old.received_at) == day);
        }
    }
    for chunk in removed.chunks(backend.rows_per_statement(2)) {
        let sql = format!(
            "DELETE FROM latest_results WHERE (host, control_id) IN (VALUES {})",
            backend.placeholders(chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for (h, c) in chunk {
            q = q.bind(*h).bind(*c);
        }
        q.execute(&mut **tx).await?;
    }
    delta.retain(|_, v| *v != (0, 0));
    // `checks` (up to hundreds of kB for a file_integrity tree) is kept as
    // it is when unchanged, the usual case: SQLite then rewrites a record of
    // the same size in place and leaves its unchanged overflow pages alone,
    // and PostgreSQL keeps the stored TOAST value instead of compressing
    // and writing a new one (the old value is the very same datum).
    for chunk in winners.chunks(backend.rows_per_statement(8)) {
        let sql = format!(
            "INSERT INTO latest_results (host, control_id, title, status, finished_at, received_at, report_id, checks) VALUES {} \
             ON CONFLICT (host, control_id) DO UPDATE SET title = excluded.title, status = excluded.status, finished_at = excluded.finished_at, \
             received_at = excluded.received_at, report_id = excluded.report_id, \
             checks = CASE WHEN latest_results.checks = excluded.checks THEN latest_results.checks ELSE excluded.checks END",
            backend.placeholders(chunk.len(), 8)
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
            backend.placeholders(chunk.len(), 5)
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
    // `$1` twice and a numbered list: a policy's controls are few.
    for chunk in touched.chunks(100) {
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
            backend.placeholders(chunk.len(), 5)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::store::{NewReport, Store};

    fn report(id: &str, host: &str, at: i64, controls: &[(&str, &str, bool)]) -> NewReport {
        NewReport {
            report_id: id.into(),
            agent_id: host.into(),
            host: host.into(),
            policy_id: "p".into(),
            policy_version: "1".into(),
            policy_sha256: "0".into(),
            started_at: at,
            finished_at: at,
            summary: "{}".into(),
            body_zstd: crate::store::compress_body("{}").unwrap(),
            body_sha256: String::new(),
            controls: controls
                .iter()
                .map(|(c, s, _)| ((*c).into(), format!("title {c}"), (*s).into()))
                .collect(),
            applies: controls.iter().map(|(_, _, a)| *a).collect(),
            checks: controls.iter().map(|_| "[]".to_owned()).collect(),
            baselines: vec![],
        }
    }

    /// The borrowed briefs serialize to what the owned ones (the readers'
    /// type) read and write.
    #[test]
    fn compact_checks_are_check_briefs() {
        let r: vigil_rules::report::Report = serde_json::from_value(serde_json::json!({
            "schema": "vigil.report/v1", "report_id": "7d3c9a52-5b6f-4d8e-9b1a-2c3d4e5f6a7b",
            "agent": {"host": "web-1", "version": "0"},
            "policy": {"id": "p", "version": "1", "sha256": "0".repeat(64)},
            "started_at": "2026-12-01T00:00:00Z", "finished_at": "2026-12-01T00:00:01Z",
            "controls": [{"id": "SP-6", "title": "t", "status": "waived", "checks": [
                {"id": "advisories", "type": "patch_level", "status": "fail", "summary": "2 \"out\" ✓",
                 "findings": [{"code": "outdated", "severity": "high", "subject": "libc6", "message": "m",
                   "excerpt": "x", "remediation": "patch_level/outdated"}],
                 "evidence": {"a": 1}, "duration_ms": 3, "waived_by": "W-1"},
                {"id": "b", "type": "attestation", "status": "pass", "summary": "", "findings": [],
                 "evidence": null, "duration_ms": 0}]}],
            "summary": {"pass": 0, "fail": 0, "error": 0, "attested": 0, "skipped": 0, "waived": 1, "unknown": 0}
        }))
        .unwrap();
        let got = super::compact_checks(&r);
        let briefs: Vec<super::CheckBrief> = serde_json::from_str(&got[0]).unwrap();
        assert_eq!(briefs.len(), 2);
        assert_eq!(briefs[0].waived_by.as_deref(), Some("W-1"));
        assert_eq!(briefs[0].findings[0].severity, "high");
        assert_eq!(briefs[1].waived_by, None);
        assert_eq!(serde_json::to_string(&briefs).unwrap(), got[0]);
    }

    /// A check with more findings than [`super::KEPT_FINDINGS`] keeps its
    /// most severe ones, in the report's order, and counts the rest.
    #[test]
    fn the_most_severe_findings_are_kept_and_the_rest_counted() {
        let n = super::KEPT_FINDINGS;
        // n + 50 findings: 30 high spread through them, 16 medium near the
        // end, the rest info.
        let findings: Vec<serde_json::Value> = (0..n + 50)
            .map(|i| {
                let severity = if i % 5 == 1 && i < 150 {
                    "high"
                } else if i >= n + 30 {
                    "medium"
                } else {
                    "info"
                };
                serde_json::json!({"code": "c", "severity": severity, "subject": format!("f{i}"), "message": "m"})
            })
            .collect();
        let count = |s: &str| findings.iter().filter(|f| f["severity"] == s).count();
        assert_eq!((count("high"), count("medium")), (30, 16));
        let r: vigil_rules::report::Report = serde_json::from_value(serde_json::json!({
            "schema": "vigil.report/v1", "report_id": "7d3c9a52-5b6f-4d8e-9b1a-2c3d4e5f6a7b",
            "agent": {"host": "web-1", "version": "0"},
            "policy": {"id": "p", "version": "1", "sha256": "0".repeat(64)},
            "started_at": "2026-12-01T00:00:00Z", "finished_at": "2026-12-01T00:00:01Z",
            "controls": [{"id": "SP-7", "title": "t", "status": "fail", "checks": [
                {"id": "tree", "type": "file_integrity", "status": "fail", "summary": "", "findings": findings,
                 "evidence": null, "duration_ms": 0},
                {"id": "few", "type": "file_integrity", "status": "fail", "summary": "",
                 "findings": [{"code": "c", "severity": "info", "subject": "s", "message": "m"}],
                 "evidence": null, "duration_ms": 0}]}],
            "summary": {"pass": 0, "fail": 1, "error": 0, "attested": 0, "skipped": 0, "waived": 0, "unknown": 0}
        }))
        .unwrap();
        let briefs: Vec<super::CheckBrief> =
            serde_json::from_str(&super::compact_checks(&r)[0]).unwrap();
        let kept = &briefs[0].findings;
        assert_eq!(kept.len(), n);
        assert_eq!(briefs[0].findings_omitted, 50);
        // every high and medium one, then the first info ones
        assert_eq!(kept.iter().filter(|f| f.severity == "high").count(), 30);
        assert_eq!(kept.iter().filter(|f| f.severity == "medium").count(), 16);
        let info: Vec<&str> = kept
            .iter()
            .filter(|f| f.severity == "info")
            .map(|f| f.subject.as_str())
            .collect();
        assert_eq!(info.len(), n - 46);
        assert_eq!(info[0], "f0");
        assert_eq!(info[1], "f2");
        // in the report's order
        let order: Vec<usize> = kept
            .iter()
            .map(|f| f.subject[1..].parse().unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            (briefs[1].findings.len(), briefs[1].findings_omitted),
            (1, 0)
        );
    }

    /// The roll-ups of `control` today: hosts per status (zero rows left out).
    async fn rolled_up(store: &Store, control: &str) -> BTreeMap<String, u32> {
        let today = super::day_of(crate::store::now_ms());
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, hosts FROM control_daily WHERE control_id = $1 AND day = $2 AND hosts <> 0",
        )
        .bind(control)
        .bind(today)
        .fetch_all(&store.pool)
        .await
        .unwrap();
        rows.into_iter()
            .map(|(s, n)| (s, u32::try_from(n).unwrap()))
            .collect()
    }

    /// The daily roll-ups counted a host's result for a control outside the
    /// host's roles, which the live posture leaves out: the two disagreed.
    /// Such a result is now neither kept nor counted, and one kept from
    /// before the host's roles changed goes with the host's next report.
    #[tokio::test]
    async fn results_outside_the_hosts_roles_are_not_rolled_up() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("v.db").display());
        let store = Store::open(&url).await.unwrap();
        let audit =
            crate::audit::AuditLog::load_or_create(&dir.path().join("audit.key"), "t").unwrap();
        // SP-6 applies to `db` hosts only; the reporter holds these roles.
        for (host, roles) in [
            ("db-1", r#"["db"]"#),
            ("web-1", r#"["web"]"#),
            ("app-1", r#"["app"]"#),
        ] {
            sqlx::query("INSERT INTO agents (id, host, roles, interval_secs, token_lookup, token_digest, created_at) VALUES ($1, $1, $2, 3600, $1, 'd', 0)")
                .bind(host)
                .bind(roles)
                .execute(&store.pool)
                .await
                .unwrap();
        }
        let control_roles = BTreeMap::from([("SP-6".to_owned(), vec!["db".to_owned()])]);
        let policy = vec![
            ("SP-1".to_owned(), "title SP-1".to_owned()),
            ("SP-6".to_owned(), "title SP-6".to_owned()),
        ];
        let now = crate::store::now_ms();
        let batches = [
            // web-1's SP-6 counted while it applied (before its roles changed)
            vec![
                report(
                    "r1",
                    "web-1",
                    now - 2000,
                    &[("SP-1", "pass", true), ("SP-6", "fail", true)],
                ),
                report(
                    "r2",
                    "db-1",
                    now - 2000,
                    &[("SP-1", "pass", true), ("SP-6", "pass", true)],
                ),
            ],
            // now outside web-1's roles; app-1's never applied
            vec![
                report(
                    "r3",
                    "web-1",
                    now - 1000,
                    &[("SP-1", "pass", true), ("SP-6", "fail", false)],
                ),
                report(
                    "r4",
                    "app-1",
                    now - 1000,
                    &[("SP-1", "fail", true), ("SP-6", "fail", false)],
                ),
            ],
        ];
        let mut after = Vec::new();
        for batch in batches {
            let _g = audit.write_lock().await;
            crate::ingest::insert_reports_locked(&store, &audit, &batch)
                .await
                .unwrap();
            after.push(rolled_up(&store, "SP-6").await);
        }
        assert_eq!(
            after[0],
            BTreeMap::from([("fail".to_owned(), 1), ("pass".to_owned(), 1)])
        );
        assert_eq!(after[1], BTreeMap::from([("pass".to_owned(), 1)]));
        // The live posture counts the same hosts for every control.
        let view = super::view(&store, &super::Cache::default()).await.unwrap();
        let fleet = view.fleet();
        let p = crate::posture::judge(&fleet, now, &policy, &control_roles, None).posture();
        for c in &p.controls {
            let counts: BTreeMap<String, u32> = c
                .counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(s, n)| (s.clone(), *n))
                .collect();
            assert_eq!(counts, rolled_up(&store, &c.id).await, "{}", c.id);
        }
        assert_eq!(
            rolled_up(&store, "SP-1").await,
            BTreeMap::from([("fail".to_owned(), 1), ("pass".to_owned(), 2)])
        );
        // Nothing kept for SP-6 outside its roles; web-1's worst is SP-1's pass.
        let kept: Vec<String> =
            sqlx::query_scalar("SELECT host FROM latest_results WHERE control_id = 'SP-6'")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(kept, ["db-1"]);
        let web: String =
            sqlx::query_scalar("SELECT status FROM latest_hosts WHERE host = 'web-1'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(web, "pass");
    }
}
