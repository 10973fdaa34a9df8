//! Fleet posture: per control, the newest status on every host, with hosts
//! whose reports stopped arriving counted as `stale` and their controls as
//! `unknown`. Pure over rows from the store, so it is tested without one.
//!
//! A control with `roles` counts only on the hosts it applies to, judged by
//! the roles the reporter holds for each agent ([`AgentRow::roles`], never
//! what a report says of itself). A host without an agent record or without
//! roles runs every control (as the agent does), so every control applies to
//! it. An applicable host that has not reported a control of the published
//! policy counts as `unknown` for it; a host outside the control's roles is
//! left out of its counts and listed in `hosts_not_applicable`.

use std::collections::{BTreeMap, HashMap, HashSet};

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
    /// The roles the control applies to; empty: every host.
    pub roles: Vec<String>,
    /// How many hosts (not revoked) it applies to: the "M" of "N of M servers".
    pub applicable_hosts: u32,
    /// Hosts outside its roles: not counted, shown as "n/a".
    pub hosts_not_applicable: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct HostState {
    pub host: String,
    pub last_report_at: Option<String>,
    pub last_report_id: Option<String>,
    pub stale: bool,
    pub revoked: bool,
    /// The roles the reporter holds for the host's agent.
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Posture {
    pub at: String,
    pub controls: Vec<ControlPosture>,
    pub hosts: Vec<HostState>,
    /// Waivers in force now (apart from the statuses they produce), soonest
    /// expiry first; `expiring_soon` within 14 days.
    pub waivers: Vec<WaiverSummary>,
    /// Fleet compliance score (0..=1): the share of applicable host ×
    /// control results that are pass, attested or waived; a stale host's
    /// results and applicable controls never reported count as unknown (not
    /// compliant). None when there is no result.
    pub score: Option<f64>,
    /// The score of each of the last 30 UTC days, oldest first, from the
    /// daily roll-ups (see `fleet_state`).
    pub trend: Vec<TrendPoint>,
    /// `live` (the maintained latest results, staleness judged at `at`) or
    /// `day` (`?at=`: the roll-ups at the end of the UTC day holding `at`;
    /// host lists are then empty).
    pub resolution: String,
}

/// One day of the score's trend.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct TrendPoint {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Share (0..=1) of the day's host × control results that are compliant
    /// and were received that day; None when no result was known then.
    pub score: Option<f64>,
    /// Host × control results known at the end of the day.
    pub results: u64,
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

/// Whether a control scoped to `control_roles` applies to a host with
/// `host_roles` (empty on either side: it does).
pub fn applies(control_roles: &[String], host_roles: &[String]) -> bool {
    vigil_rules::policy::roles_match(control_roles, host_roles)
}

/// The roles the reporter holds for `host`: its newest agent's (agents come
/// newest first per host); none known for a host without an agent record.
pub fn host_roles<'a>(agents: &'a [AgentRow], host: &str) -> &'a [String] {
    agents
        .iter()
        .find(|a| a.host == host)
        .map_or(&[], |a| a.roles.as_slice())
}

/// The posture at `at` from each (host, control)'s latest result (`rows`),
/// each host's newest report (`last_reports`: host, finished_at, report_id)
/// and the agents. O(rows + hosts × controls) with maps: no per-row search.
/// Controls come in the published policy's order (`policy_controls`), then
/// controls only hosts know of, in order of appearance in `rows`.
pub fn compute(
    at: i64,
    rows: &[ControlRow],
    last_reports: &[(String, i64, String)],
    agents: &[AgentRow],
    policy_controls: &[(String, String)],
    control_roles: &BTreeMap<String, Vec<String>>,
) -> Posture {
    // The newest agent of each host (agents come newest first per host).
    let mut agent_of: HashMap<&str, &AgentRow> = HashMap::with_capacity(agents.len());
    for a in agents {
        agent_of.entry(a.host.as_str()).or_insert(a);
    }
    let mut last_of: HashMap<&str, &(String, i64, String)> =
        HashMap::with_capacity(last_reports.len());
    for l in last_reports {
        last_of.entry(l.0.as_str()).or_insert(l);
    }
    let mut names: Vec<&str> = agent_of.keys().copied().collect();
    names.extend(last_of.keys().filter(|h| !agent_of.contains_key(*h)));
    names.sort_unstable();
    let mut hosts: Vec<HostState> = Vec::with_capacity(names.len());
    let mut stale_hosts: HashSet<&str> = HashSet::new();
    for name in &names {
        let last = last_of.get(name);
        let agent = agent_of.get(name);
        let interval = agent.map_or(900, |a| a.interval_secs);
        let stale = is_stale(last.map(|l| l.1), interval, at);
        if stale {
            stale_hosts.insert(name);
        }
        hosts.push(HostState {
            host: (*name).to_owned(),
            last_report_at: last.map(|l| rfc3339(l.1)),
            last_report_id: last.map(|l| l.2.clone()),
            stale,
            revoked: agent.is_some_and(|a| a.revoked_at.is_some()),
            roles: agent.map(|a| a.roles.clone()).unwrap_or_default(),
        });
    }
    let no_roles: Vec<String> = Vec::new();
    let roles_of = |id: &str| control_roles.get(id).unwrap_or(&no_roles);
    let roles_of_host = |host: &str| agent_of.get(host).map_or(&[][..], |a| a.roles.as_slice());
    let host_applies = |id: &str, host: &str| applies(roles_of(id), roles_of_host(host));

    // In policy order, then controls only hosts know of, in order of appearance.
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut by_control: Vec<(&str, String, Vec<HostResult>)> = Vec::new();
    for (id, title) in policy_controls {
        if !index.contains_key(id.as_str()) {
            index.insert(id, by_control.len());
            by_control.push((id, title.clone(), Vec::new()));
        }
    }
    let in_policy = by_control.len();
    for r in rows.iter().filter(|r| host_applies(&r.control_id, &r.host)) {
        let status = if stale_hosts.contains(r.host.as_str()) {
            "unknown"
        } else {
            r.status.as_str()
        };
        let i = *index.entry(r.control_id.as_str()).or_insert_with(|| {
            by_control.push((&r.control_id, r.title.clone(), Vec::new()));
            by_control.len() - 1
        });
        if let Some(e) = by_control.get_mut(i) {
            e.2.push((r.host.as_str(), status, r.finished_at));
        }
    }
    // An applicable host that never reported a control of the policy: unknown.
    for (id, _, results) in by_control.iter_mut().take(in_policy) {
        let reported: HashSet<&str> = results.iter().map(|r| r.0).collect();
        for h in hosts.iter().filter(|h| !h.revoked) {
            if !reported.contains(h.host.as_str()) && host_applies(id, &h.host) {
                results.push((h.host.as_str(), "unknown", 0));
            }
        }
    }
    for (_, _, results) in by_control.iter_mut() {
        results.sort_by(|a, b| a.0.cmp(b.0));
    }
    let controls = by_control
        .into_iter()
        .map(|(id, title, results)| {
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
                roles: roles_of(id).clone(),
                applicable_hosts: u32::try_from(
                    hosts
                        .iter()
                        .filter(|h| !h.revoked && host_applies(id, &h.host))
                        .count(),
                )
                .unwrap_or(u32::MAX),
                hosts_not_applicable: hosts
                    .iter()
                    .filter(|h| !host_applies(id, &h.host))
                    .map(|h| h.host.clone())
                    .collect(),
            }
        })
        .collect();
    Posture {
        at: rfc3339(at),
        controls,
        hosts,
        waivers: vec![],
        score: None,
        trend: vec![],
        resolution: "live".into(),
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
            &BTreeMap::new(),
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

    fn agent_with(host: &str, roles: &[&str]) -> AgentRow {
        let mut a = agent(host, 60);
        a.roles = roles.iter().map(|r| (*r).to_owned()).collect();
        a
    }

    #[test]
    fn a_scoped_control_counts_only_where_it_applies() {
        let now = 1_000_000_000;
        // db-1 reports BK-1 although the reporter holds it as `db` only (an
        // agent claiming more roles than it was enrolled with): left out.
        let rows = vec![
            row("app-1", "FW", "pass", now - 1000),
            row("db-1", "FW", "fail", now - 1000),
            row("db-1", "BK-1", "error", now - 1000),
            row("bk-1", "BK-1", "pass", now - 1000),
            row("bk-1", "FW", "pass", now - 1000),
        ];
        let last: Vec<(String, i64, String)> = ["app-1", "db-1", "bk-1", "off-1", "legacy"]
            .iter()
            .map(|h| ((*h).to_owned(), now - 1000, format!("r-{h}")))
            .collect();
        let agents = vec![
            agent_with("app-1", &["app"]),
            agent_with("db-1", &["db"]),
            agent_with("bk-1", &["backup"]),
            agent_with("off-1", &["offline_backup"]),
            agent_with("legacy", &[]),
        ];
        let policy = vec![
            ("FW".to_owned(), "fw".to_owned()),
            ("BK-1".to_owned(), "bk".to_owned()),
        ];
        let mut roles = BTreeMap::new();
        roles.insert("FW".to_owned(), vec!["app".to_owned(), "db".to_owned()]);
        roles.insert(
            "BK-1".to_owned(),
            vec!["backup".to_owned(), "offline_backup".to_owned()],
        );
        let p = compute(now, &rows, &last, &agents, &policy, &roles);
        let c = |id: &str| p.controls.iter().find(|c| c.id == id).unwrap();
        let fw = c("FW");
        assert_eq!(fw.status, "fail");
        assert_eq!(fw.hosts_failing, ["db-1"]);
        // bk-1's FW result is outside FW's roles; `legacy` has no roles, so
        // every control applies to it and it has not reported FW: unknown.
        assert_eq!(fw.counts.get("pass"), Some(&1));
        assert_eq!(fw.hosts_unknown, ["legacy"]);
        assert_eq!(fw.applicable_hosts, 3);
        assert_eq!(fw.hosts_not_applicable, ["bk-1", "off-1"]);
        let bk = c("BK-1");
        assert!(bk.hosts_error.is_empty(), "db-1's BK-1 does not count");
        assert_eq!(bk.hosts_unknown, ["legacy", "off-1"]);
        assert_eq!(bk.counts.values().sum::<u32>(), 3);
        assert_eq!(bk.applicable_hosts, 3);
        assert_eq!(bk.roles, ["backup", "offline_backup"]);
        assert_eq!(
            p.hosts.iter().find(|h| h.host == "db-1").unwrap().roles,
            ["db"]
        );
    }

    #[test]
    fn staleness_is_twice_the_interval() {
        assert!(!is_stale(Some(0), 60, 120_000));
        assert!(is_stale(Some(0), 60, 120_001));
        assert!(is_stale(None, 60, 0));
    }
}
