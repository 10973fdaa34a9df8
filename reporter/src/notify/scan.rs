//! Finds the events that come from stored reports and from time, and queues
//! them. Each event's key makes it one notice however often the scan runs:
//!
//! - `control.failed` / `control.recovered`: `notify_state` keeps, per host
//!   and control, whether it is failing; only a change is an event (`error`
//!   and `unknown` change nothing: a check that could not run neither fails
//!   nor recovers a control).
//! - `host.stale`: per host, fresh → stale.
//! - `expiring`: a TLS certificate (`not_after` in a TLS check's evidence),
//!   an attestation (`expires`) or a waiver within 14 days of its end; once
//!   per object and day.
//! - `erasure.overdue`: a closure neither closed nor cancelled by its
//!   deadline (`erasure.deadline` after the cooling-off); once per closure.
//! - `breach.deadline`: a personal-data breach 24 h and 6 h before its
//!   72-hour notification deadline, and when it has passed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;
use sqlx::Row;

use super::Notice;
use crate::posture::{is_stale, rfc3339};
use crate::state::{AppState, Shared};
use crate::store::{now_ms, StoreError};

pub const EXPIRING_DAYS: i64 = 14;

/// The pure part of control tracking: the event (if any) for a host and
/// control whose previous state was `prev` and whose status is now `status`.
pub fn control_change(prev: Option<&str>, status: &str) -> Option<&'static str> {
    let now_failing = match status {
        "fail" => true,
        "pass" | "attested" | "waived" => false,
        _ => return None,
    };
    match (prev, now_failing) {
        (Some("failing"), false) => Some("control.recovered"),
        (Some("failing"), true) => None,
        (_, true) => Some("control.failed"),
        _ => None,
    }
}

async fn states(state: &AppState, prefix: &str) -> Result<HashMap<String, String>, StoreError> {
    let rows = sqlx::query("SELECT subject, state FROM notify_state WHERE subject LIKE $1")
        .bind(format!("{prefix}%"))
        .fetch_all(&state.store.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("subject")?, r.try_get("state")?)))
        .collect()
}

/// Sets a subject's state and queues its notice, in one transaction.
async fn change(
    state: &AppState,
    subject: &str,
    new_state: &str,
    notice: Option<&Notice>,
    now: i64,
) -> Result<(), StoreError> {
    let mut tx = state.store.pool.begin().await?;
    sqlx::query("INSERT INTO notify_state (subject, state, since) VALUES ($1, $2, $3) ON CONFLICT (subject) DO UPDATE SET state = excluded.state, since = excluded.since")
        .bind(subject)
        .bind(new_state)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    if let Some(n) = notice {
        super::enqueue(&mut tx, &state.site.notify, n, now).await?;
    }
    tx.commit().await?;
    if let Some(n) = notice {
        tracing::info!(event = n.event, key = %n.key, "notice queued");
    }
    Ok(())
}

async fn controls(state: &AppState, now: i64) -> Result<(), StoreError> {
    let rows = crate::fleet_state::latest(&state.store).await?;
    let known = states(state, "control|").await?;
    for r in rows {
        let subject = format!("control|{}|{}", r.host, r.control_id);
        let prev = known.get(&subject).map(String::as_str);
        let event = control_change(prev, &r.status);
        let new_state = match r.status.as_str() {
            "fail" => "failing",
            "pass" | "attested" | "waived" => "ok",
            _ => continue,
        };
        if prev == Some(new_state) {
            continue;
        }
        let notice = event.map(|e| {
            let verb = if e == "control.failed" {
                "started failing"
            } else {
                "passes again"
            };
            Notice::new(
                e,
                format!("{}|{}|{}", r.host, r.control_id, r.finished_at),
                format!("{} ({}) {verb} on {}", r.control_id, r.title, r.host),
                json!({"host": r.host, "control": r.control_id, "title": r.title,
                       "status": r.status, "reported_at": rfc3339(r.finished_at)}),
            )
        });
        change(state, &subject, new_state, notice.as_ref(), now).await?;
    }
    Ok(())
}

async fn hosts(state: &AppState, now: i64) -> Result<(), StoreError> {
    // One newest report per host (`latest_hosts`); looked up by host name,
    // not searched per agent (10,000 hosts).
    let last: HashMap<String, i64> = crate::fleet_state::last_reports(&state.store)
        .await?
        .into_iter()
        .map(|(host, at, _)| (host, at))
        .collect();
    let agents = state.store.agents().await?;
    let known = states(state, "host|").await?;
    for a in agents.iter().filter(|a| a.revoked_at.is_none()) {
        let Some(at) = last.get(a.host.as_str()) else {
            // Never reported: nothing went silent yet.
            continue;
        };
        let stale = is_stale(Some(*at), a.interval_secs, now);
        let subject = format!("host|{}", a.host);
        let prev = known.get(&subject).map(String::as_str);
        let new_state = if stale { "stale" } else { "fresh" };
        if prev == Some(new_state) {
            continue;
        }
        let notice = (stale && prev != Some("stale")).then(|| {
            Notice::new(
                "host.stale",
                format!("{}|{at}", a.host),
                format!("{} has not reported since {}", a.host, rfc3339(*at)),
                json!({"host": a.host, "last_report_at": rfc3339(*at)}),
            )
        });
        change(state, &subject, new_state, notice.as_ref(), now).await?;
    }
    Ok(())
}

/// Days from `now` to a date or RFC 3339 time `end`; None when unreadable.
pub fn days_left(end: &str, now: i64) -> Option<i64> {
    let end_ms = chrono::DateTime::parse_from_rfc3339(end)
        .map(|t| t.timestamp_millis())
        .ok()
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(end, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_millis())
        })?;
    Some(end_ms.saturating_sub(now).div_euclid(86_400_000))
}

/// (kind, object, host, control, end) of what a report's evidence says ends.
pub fn ends_in_report(body: &str) -> Vec<(&'static str, String, String, String, String)> {
    let Ok(r) = serde_json::from_str::<vigil_rules::report::Report>(body) else {
        return vec![];
    };
    let mut out = Vec::new();
    for c in &r.controls {
        for k in &c.checks {
            // The soonest end among the check's certificates (one leaf per
            // endpoint), or the attestation's expiry.
            let (kind, end) = match k.check_type.as_str() {
                "tls_endpoint" | "tls_certificate_file" => (
                    "certificate",
                    vigil_rules::checks::tls::leaf_certificates(&k.check_type, &k.evidence)
                        .into_iter()
                        .map(|leaf| leaf.not_after)
                        .min(),
                ),
                "attestation" => (
                    "attestation",
                    k.evidence_as::<vigil_rules::checks::attestation::Evidence>()
                        .map(|e| e.expires),
                ),
                _ => continue,
            };
            if let Some(end) = end {
                out.push((
                    kind,
                    format!("{}/{}/{}", r.agent.host, c.id, k.id),
                    r.agent.host.clone(),
                    c.id.clone(),
                    end.to_owned(),
                ));
            }
        }
    }
    out
}

/// What a host's newest report says ends, kept between scans so a body is
/// read once, when a newer report arrives.
type Ends = Vec<(&'static str, String, String, String, String)>;

#[derive(Default)]
pub struct Memory {
    /// host → (newest report id, what it says ends)
    ends: std::collections::HashMap<String, (String, Ends)>,
}

async fn expiring(state: &AppState, now: i64, mem: &mut Memory) -> Result<(), StoreError> {
    let today = chrono::DateTime::from_timestamp_millis(now)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let mut notices = Vec::new();
    let newest = crate::fleet_state::last_reports(&state.store).await?;
    let reporting: HashSet<&str> = newest.iter().map(|n| n.0.as_str()).collect();
    mem.ends.retain(|h, _| reporting.contains(h.as_str()));
    for (host, _at, id) in newest {
        if mem.ends.get(&host).is_none_or(|(seen, _)| *seen != id) {
            let ends = match state.store.report_body(&id).await? {
                Some(body) => ends_in_report(&body),
                None => vec![],
            };
            mem.ends.insert(host.clone(), (id.clone(), ends));
        }
        let Some((_, ends)) = mem.ends.get(&host) else {
            continue;
        };
        for (kind, object, host, control, end) in ends {
            let Some(days) = days_left(end, now) else {
                continue;
            };
            if (0..=EXPIRING_DAYS).contains(&days) {
                notices.push(Notice::new(
                    "expiring",
                    format!("{kind}|{object}|{today}"),
                    format!("the {kind} of {control} on {host} ends {end} ({days} days left)"),
                    json!({"kind": kind, "object": object, "host": host, "control": control, "ends": end, "days_left": days}),
                ));
            }
        }
    }
    let views = crate::waivers::list_views(state)
        .await
        .map_err(|e| StoreError::Corrupt(format!("waivers: {e:?}")))?;
    for v in views.iter().filter(|v| v.state == "active") {
        if !(0..=EXPIRING_DAYS).contains(&v.days_left) {
            continue;
        }
        let f = |k: &str| {
            v.waiver
                .get(k)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let id = f("id");
        notices.push(Notice::new(
            "expiring",
            format!("waiver|{id}|{today}"),
            format!(
                "waiver {id} of {} ends {} ({} days left)",
                f("control"),
                f("expires"),
                v.days_left
            ),
            json!({"kind": "waiver", "object": id, "control": f("control"), "ends": f("expires"), "days_left": v.days_left}),
        ));
    }
    for n in &notices {
        super::enqueue_now(state, n).await?;
    }
    Ok(())
}

async fn erasures(state: &AppState, now: i64) -> Result<(), StoreError> {
    // The closure workflow owns the deadline (`erasure.deadline`, 30 days
    // after the cooling-off by default) and reports each late closure once,
    // audited as `erasure.overdue`; the outbox de-duplicates the notice.
    for late in crate::closures::overdue(&state.store, &state.audit, now).await? {
        super::enqueue_now(
            state,
            &Notice::new(
                "erasure.overdue",
                format!("{}|{}", late.account, late.requested_at),
                format!(
                    "the erasure of account {} is overdue: due by {}, still `{}`",
                    late.account, late.due_by, late.state
                ),
                json!({"account": late.account, "state": late.state, "requested_at": late.requested_at, "due": late.due_by}),
            ),
        )
        .await?;
    }
    Ok(())
}

/// The alert thresholds before a breach's deadline, in hours.
pub const BREACH_ALERTS: &[i64] = &[24, 6, 0];

/// Which breach alert is due now (the smallest threshold reached), if any.
pub fn breach_alert(notify_by: i64, now: i64) -> Option<i64> {
    let left = notify_by.saturating_sub(now);
    BREACH_ALERTS
        .iter()
        .rev()
        .copied()
        .find(|h| left <= h.saturating_mul(3_600_000))
}

async fn breaches(state: &AppState, now: i64) -> Result<(), StoreError> {
    let rows = sqlx::query(
        "SELECT id, breach_notify_by FROM incidents WHERE breach_notify_by IS NOT NULL",
    )
    .fetch_all(&state.store.pool)
    .await?;
    for r in rows {
        let id: String = r.try_get("id")?;
        let by: i64 = r.try_get("breach_notify_by")?;
        let Some(h) = breach_alert(by, now) else {
            continue;
        };
        let text = if h == 0 {
            format!("the 72-hour breach notification deadline of {id} has passed")
        } else {
            format!(
                "{id}: personal-data breach, notify the authority within {h} hours (by {})",
                rfc3339(by)
            )
        };
        super::enqueue_now(
            state,
            &Notice::new(
                "breach.deadline",
                format!("{id}|{h}h"),
                text,
                json!({"tracking_id": id, "breach_notify_by": rfc3339(by), "hours_left": h,
                       "url": state.site.url(&format!("/reports/incidents/{id}"))}),
            ),
        )
        .await?;
    }
    Ok(())
}

/// One scan; each part runs even when another failed.
pub async fn scan_once(state: &AppState, mem: &mut Memory) {
    let now = now_ms();
    for (what, r) in [
        ("controls", controls(state, now).await),
        ("hosts", hosts(state, now).await),
        ("expiring", expiring(state, now, mem).await),
        ("erasures", erasures(state, now).await),
        ("breaches", breaches(state, now).await),
    ] {
        if let Err(e) = r {
            tracing::error!(error = %e, part = what, "notice scan failed");
        }
    }
}

pub async fn run(state: Shared) {
    let every = Duration::from_secs(state.site.notify.scan_every_secs.max(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut mem = Memory::default();
    loop {
        tick.tick().await;
        scan_once(&state, &mut mem).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_change() {
        assert_eq!(control_change(None, "fail"), Some("control.failed"));
        assert_eq!(control_change(Some("ok"), "fail"), Some("control.failed"));
        assert_eq!(control_change(Some("failing"), "fail"), None);
        assert_eq!(
            control_change(Some("failing"), "pass"),
            Some("control.recovered")
        );
        assert_eq!(control_change(None, "pass"), None);
        assert_eq!(control_change(Some("failing"), "error"), None);
    }

    #[test]
    fn breach_alerts_at_24_and_6_hours() {
        let h = 3_600_000;
        assert_eq!(breach_alert(72 * h, 0), None);
        assert_eq!(breach_alert(24 * h, 0), Some(24));
        assert_eq!(breach_alert(7 * h, 0), Some(24));
        assert_eq!(breach_alert(6 * h, 0), Some(6));
        assert_eq!(breach_alert(0, 1), Some(0));
    }

    #[test]
    fn days_left_of_dates_and_times() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(days_left("2026-12-11", now), Some(10));
        assert_eq!(days_left("2026-12-11T12:00:00Z", now), Some(10));
        assert_eq!(days_left("soon", now), None);
    }
}
