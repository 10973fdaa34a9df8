//! Fleet posture: per control, the newest status on every host, with hosts
//! whose reports stopped arriving counted as `stale` and their controls as
//! `unknown`. Pure over rows from the store, so it is tested without one.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::store::{AgentRow, ControlRow};

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ControlPosture {
    pub id: String,
    pub title: String,
    /// fail if any host fails; else error; else unknown; else attested; else waived; else pass.
    pub status: String,
    /// Hosts per status.
    pub counts: BTreeMap<String, u32>,
    pub hosts_failing: Vec<String>,
    pub hosts_error: Vec<String>,
    pub hosts_unknown: Vec<String>,
    /// Newest time a host verified it (pass or attested), RFC 3339.
    pub last_verified: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct HostState {
    pub host: String,
    pub last_report_at: Option<String>,
    pub last_report_id: Option<String>,
    pub stale: bool,
    pub revoked: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Posture {
    pub at: String,
    pub controls: Vec<ControlPosture>,
    pub hosts: Vec<HostState>,
    /// Waivers in force now (apart from the statuses they produce), soonest
    /// expiry first; `expiring_soon` within 14 days.
    pub waivers: Vec<WaiverSummary>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct WaiverSummary {
    pub id: String,
    pub control: String,
    pub check: Option<String>,
    pub expires: String,
    pub days_left: i64,
    pub expiring_soon: bool,
    pub approved_by: String,
    pub justification: String,
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(String::new, |t| {
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    })
}

/// Whether a host last heard from at `last` is stale at `at`.
pub fn is_stale(last: Option<i64>, interval_secs: i64, at: i64) -> bool {
    match last {
        None => true,
        Some(t) => at.saturating_sub(t) > interval_secs.max(1).saturating_mul(2000),
    }
}

/// (host, status, finished_at) of one control.
type HostResult<'a> = (&'a str, &'a str, i64);

pub fn compute(
    at: i64,
    rows: &[ControlRow],
    last_reports: &[(String, i64, String)],
    agents: &[AgentRow],
    policy_controls: &[(String, String)],
) -> Posture {
    let mut hosts: Vec<HostState> = Vec::new();
    let mut stale_hosts: Vec<&str> = Vec::new();
    let mut names: Vec<&str> = agents.iter().map(|a| a.host.as_str()).collect();
    for (h, _, _) in last_reports {
        if !names.contains(&h.as_str()) {
            names.push(h);
        }
    }
    names.sort();
    names.dedup();
    for name in names {
        let last = last_reports.iter().find(|(h, _, _)| h == name);
        let agent = agents.iter().find(|a| a.host == name);
        let interval = agent.map_or(900, |a| a.interval_secs);
        let stale = is_stale(last.map(|l| l.1), interval, at);
        if stale {
            stale_hosts.push(name);
        }
        hosts.push(HostState {
            host: name.to_owned(),
            last_report_at: last.map(|l| rfc3339(l.1)),
            last_report_id: last.map(|l| l.2.clone()),
            stale,
            revoked: agent.is_some_and(|a| a.revoked_at.is_some()),
        });
    }

    // In policy order, then controls only hosts know of, in order of appearance.
    let mut by_control: Vec<(&str, (String, Vec<HostResult>))> = Vec::new();
    for (id, title) in policy_controls {
        if !by_control.iter().any(|(k, _)| k == id) {
            by_control.push((id, (title.clone(), Vec::new())));
        }
    }
    for r in rows {
        let status = if stale_hosts.contains(&r.host.as_str()) {
            "unknown"
        } else {
            r.status.as_str()
        };
        let i = match by_control.iter().position(|(k, _)| *k == r.control_id) {
            Some(i) => i,
            None => {
                by_control.push((&r.control_id, (r.title.clone(), Vec::new())));
                by_control.len() - 1
            }
        };
        if let Some((_, e)) = by_control.get_mut(i) {
            e.1.push((r.host.as_str(), status, r.finished_at));
        }
    }
    let controls = by_control
        .into_iter()
        .map(|(id, (title, results))| {
            let mut counts: BTreeMap<String, u32> = BTreeMap::new();
            for (_, s, _) in &results {
                *counts.entry((*s).to_owned()).or_default() += 1;
            }
            let hosts_with = |s: &str| {
                results
                    .iter()
                    .filter(|r| r.1 == s)
                    .map(|r| r.0.to_owned())
                    .collect::<Vec<_>>()
            };
            let has = |s: &str| counts.contains_key(s);
            let status = if results.is_empty() {
                "unknown"
            } else if has("fail") {
                "fail"
            } else if has("error") {
                "error"
            } else if has("unknown") {
                "unknown"
            } else if has("attested") {
                "attested"
            } else if has("waived") {
                "waived"
            } else {
                "pass"
            };
            let last_verified = results
                .iter()
                .filter(|r| r.1 == "pass" || r.1 == "attested")
                .map(|r| r.2)
                .max()
                .map(rfc3339);
            ControlPosture {
                id: id.to_owned(),
                title,
                status: status.to_owned(),
                hosts_failing: hosts_with("fail"),
                hosts_error: hosts_with("error"),
                hosts_unknown: hosts_with("unknown"),
                counts,
                last_verified,
            }
        })
        .collect();
    Posture {
        at: rfc3339(at),
        controls,
        hosts,
        waivers: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(host: &str, control: &str, status: &str, t: i64) -> ControlRow {
        ControlRow {
            host: host.into(),
            control_id: control.into(),
            title: format!("{control} title"),
            status: status.into(),
            finished_at: t,
        }
    }

    fn agent(host: &str, interval: i64) -> AgentRow {
        AgentRow {
            id: host.into(),
            host: host.into(),
            roles: vec![],
            interval_secs: interval,
            revoked_at: None,
            last_seen: None,
            token_digest: String::new(),
            cert_spki_sha256: None,
        }
    }

    #[test]
    fn worst_status_wins_and_stale_hosts_are_unknown() {
        let now = 1_000_000_000;
        let rows = vec![
            row("web-1", "SP-1", "pass", now - 1000),
            row("web-2", "SP-1", "fail", now - 1000),
            row("web-1", "SP-2", "pass", now - 1000),
            row("old-1", "SP-2", "pass", now - 10_000_000),
            row("web-1", "SP-3", "attested", now - 1000),
        ];
        let last = vec![
            ("web-1".into(), now - 1000, "r1".into()),
            ("web-2".into(), now - 1000, "r2".into()),
            ("old-1".into(), now - 10_000_000, "r0".into()),
        ];
        let agents = vec![agent("web-1", 60), agent("web-2", 60), agent("old-1", 60)];
        let p = compute(
            now,
            &rows,
            &last,
            &agents,
            &[("SP-9".into(), "nine".into())],
        );
        let c = |id: &str| p.controls.iter().find(|c| c.id == id).unwrap();
        assert_eq!(c("SP-1").status, "fail");
        assert_eq!(c("SP-1").hosts_failing, ["web-2"]);
        assert_eq!(c("SP-2").status, "unknown");
        assert_eq!(c("SP-2").hosts_unknown, ["old-1"]);
        assert_eq!(c("SP-3").status, "attested");
        assert_eq!(
            c("SP-9").status,
            "unknown",
            "a control no host reported is unknown"
        );
        assert!(c("SP-9").last_verified.is_none());
        assert!(p.hosts.iter().find(|h| h.host == "old-1").unwrap().stale);
        assert!(!p.hosts.iter().find(|h| h.host == "web-1").unwrap().stale);
    }

    #[test]
    fn staleness_is_twice_the_interval() {
        assert!(!is_stale(Some(0), 60, 120_000));
        assert!(is_stale(Some(0), 60, 120_001));
        assert!(is_stale(None, 60, 0));
    }
}
