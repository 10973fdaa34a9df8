//! `mirror_lag`: user data is continuously mirrored to several servers.
//!
//! Two kinds of mirror:
//! - PostgreSQL streaming replication. On a primary the agent reads
//!   `pg_stat_replication` (one [`Replica`] per walsender); on a standby it
//!   reads the receive and replay positions and the last replayed
//!   transaction's time ([`Standby`]). A standby that has replayed all it
//!   received is caught up however old its last transaction is, so an idle
//!   primary does not look like lag.
//! - Heartbeat files: a job on the primary writes the current time into a
//!   file inside the mirrored data; the agent reads the copy at each mirror
//!   path ([`Heartbeat`]) and the lag is now minus that time.
//!
//! Connection strings may hold a password: the collector scrubs it from every
//! message, and the facts hold none.

mod evidence;
mod facts;
mod params;
mod parse;

pub use evidence::Evidence;
pub use facts::{Facts, Heartbeat, PostgresFacts, Replica, Standby};
pub use params::{HeartbeatSpec, Params, PostgresSpec, Role};
pub use parse::{parse_heartbeat, HeartbeatError};

use super::{CheckKind, JudgeCtx};
use crate::finding_codes;
use crate::verdict::{FindingCode, Verdict};

pub struct MirrorLag;

finding_codes! {
    pub enum Code {
        TooFewReplicas = ("too_few_replicas", High, "fewer streaming replicas on distinct hosts than `min_replicas`"),
        ReplicaNotStreaming = ("replica_not_streaming", High, "a replica is connected but not streaming (catching up, starting, backing up)"),
        LagExceeded = ("lag_exceeded", High, "a replica or standby is further behind than `max_lag_seconds`"),
        LagUnknown = ("lag_unknown", Medium, "a replica is behind but the server has no lag measurement for it"),
        StandbyNotStreaming = ("standby_not_streaming", High, "this standby receives no WAL from its primary"),
        ReplayPaused = ("replay_paused", Medium, "this standby's replay is paused"),
        WrongRole = ("wrong_role", High, "the server is a primary where the policy expects a standby, or the reverse"),
        HeartbeatStale = ("heartbeat_stale", High, "a mirror's heartbeat is older than `max_lag_seconds`"),
        HeartbeatMissing = ("heartbeat_missing", High, "a mirror has no heartbeat file"),
        HeartbeatInvalid = ("heartbeat_invalid", Medium, "a mirror's heartbeat file holds no readable time"),
    }
}

fn secs(s: f64) -> String {
    if s >= 120.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{s:.1} s")
    }
}

fn judge_postgres(
    spec: &PostgresSpec,
    pg: &PostgresFacts,
    findings: &mut Vec<crate::verdict::Finding>,
    ok: &mut Vec<String>,
) {
    let max = spec.max_lag_seconds;
    let target = &pg.target;
    let expect = match spec.role {
        Role::Auto => None,
        Role::Primary => Some("primary"),
        Role::Standby => Some("standby"),
    };
    if let Some(want) = expect {
        if pg.role != want {
            findings.push(Code::WrongRole.finding(
                target,
                format!("`{target}` is a {}, the policy expects a {want}", pg.role),
            ));
            return;
        }
    }
    if pg.role == "standby" {
        let Some(sb) = &pg.standby else {
            findings.push(Code::StandbyNotStreaming.finding(
                target,
                format!("standby `{target}` reported no replay state"),
            ));
            return;
        };
        if sb.wal_receiver_status.as_deref() != Some("streaming") {
            findings.push(Code::StandbyNotStreaming.finding(
                target,
                format!(
                    "standby `{target}` is not streaming from its primary (WAL receiver: {})",
                    sb.wal_receiver_status.as_deref().unwrap_or("not running")
                ),
            ));
        }
        if sb.replay_paused {
            findings.push(Code::ReplayPaused.finding(
                target,
                format!(
                    "standby `{target}` has replay paused (`pg_wal_replay_resume()` resumes it)"
                ),
            ));
        }
        // Caught up: nothing received is waiting, however old the last
        // transaction is (an idle primary writes none).
        let behind = sb.unreplayed_bytes.unwrap_or(0) > 0;
        if behind {
            match sb.since_last_replay_seconds {
                Some(lag) if lag > max => findings.push(Code::LagExceeded.finding(
                    target,
                    format!(
                        "standby `{target}` is {} behind ({} bytes received but not replayed), the policy allows {}",
                        secs(lag),
                        sb.unreplayed_bytes.unwrap_or(0),
                        secs(max)
                    ),
                )),
                Some(lag) => ok.push(format!("standby {} behind", secs(lag))),
                None => findings.push(Code::LagUnknown.finding(
                    target,
                    format!(
                        "standby `{target}` has {} bytes not replayed and no replayed transaction to date them",
                        sb.unreplayed_bytes.unwrap_or(0)
                    ),
                )),
            }
        } else {
            ok.push("standby caught up".into());
        }
        return;
    }
    // Primary.
    let mut good_hosts: Vec<String> = Vec::new();
    for r in &pg.replicas {
        let who = r.label();
        if r.state != "streaming" {
            findings.push(Code::ReplicaNotStreaming.finding(
                &who,
                format!(
                    "replica {who} of `{target}` is in state `{}`, not streaming",
                    r.state
                ),
            ));
            continue;
        }
        let behind_bytes = r.replay_lag_bytes.unwrap_or(0);
        let lag = match r.replay_lag_seconds {
            Some(l) => l,
            None if behind_bytes <= 0 => 0.0,
            None => {
                findings.push(Code::LagUnknown.finding(
                    &who,
                    format!("replica {who} of `{target}` is {behind_bytes} bytes behind but the primary has no replay lag measurement for it"),
                ));
                continue;
            }
        };
        if lag > max {
            findings.push(Code::LagExceeded.finding(
                &who,
                format!(
                    "replica {who} of `{target}` replays {} behind ({behind_bytes} bytes), the policy allows {}",
                    secs(lag),
                    secs(max)
                ),
            ));
            continue;
        }
        let key = r.host_key();
        if !good_hosts.contains(&key) {
            good_hosts.push(key);
        }
    }
    if (good_hosts.len() as u64) < spec.min_replicas {
        let seen: Vec<String> = pg.replicas.iter().map(Replica::label).collect();
        findings.push(Code::TooFewReplicas.finding(
            target,
            format!(
                "`{target}` has {} healthy streaming replica{} on distinct hosts, the policy asks for at least {} (connected: {})",
                good_hosts.len(),
                if good_hosts.len() == 1 { "" } else { "s" },
                spec.min_replicas,
                if seen.is_empty() { "none".to_owned() } else { seen.join(", ") }
            ),
        ));
    }
    let worst = pg
        .replicas
        .iter()
        .filter_map(|r| r.replay_lag_seconds)
        .fold(0.0_f64, f64::max);
    ok.push(format!(
        "{} streaming replica{} (worst lag {})",
        good_hosts.len(),
        if good_hosts.len() == 1 { "" } else { "s" },
        secs(worst)
    ));
}

impl CheckKind for MirrorLag {
    type Params = Params;
    type Facts = Facts;
    type Evidence = Evidence;
    type Code = Code;
    const SUMMARY: &'static str =
        "continuous mirroring: streaming replicas on distinct hosts, heartbeat mirrors, and their lag";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        if p.postgres.is_none() && p.heartbeat.is_none() {
            out.push((None, "give `postgres`, `heartbeat` or both".to_owned()));
        }
        if let Some(pg) = &p.postgres {
            if !super::one_dsn_source(&pg.dsn, &pg.dsn_file, &pg.dsn_env) {
                out.push((
                    Some("postgres"),
                    "`postgres` takes exactly one of `dsn`, `dsn_file`, `dsn_env`".to_owned(),
                ));
            }
            if !(pg.max_lag_seconds.is_finite() && pg.max_lag_seconds > 0.0) {
                out.push((
                    Some("postgres"),
                    "`max_lag_seconds` must be above 0".to_owned(),
                ));
            }
        }
        if let Some(hb) = &p.heartbeat {
            if hb.mirrors.is_empty() {
                out.push((
                    Some("heartbeat"),
                    "`mirrors` lists no heartbeat file".to_owned(),
                ));
            }
            if !(hb.max_lag_seconds.is_finite() && hb.max_lag_seconds > 0.0) {
                out.push((
                    Some("heartbeat"),
                    "`max_lag_seconds` must be above 0".to_owned(),
                ));
            }
        }
        out
    }

    fn judge(p: &Params, facts: &Facts, ctx: &JudgeCtx) -> Verdict {
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let mut ok = Vec::new();
        if let Some(spec) = &p.postgres {
            match &facts.postgres {
                None => errors.push("PostgreSQL was not queried".to_owned()),
                Some(pg) => match &pg.error {
                    Some(e) => errors.push(format!("PostgreSQL `{}`: {e}", pg.target)),
                    None => judge_postgres(spec, pg, &mut findings, &mut ok),
                },
            }
        }
        if let Some(hb) = &p.heartbeat {
            let max = hb.max_lag_seconds;
            let mut fresh = 0;
            for path in &hb.mirrors {
                let Some(h) = facts.heartbeats.iter().find(|h| &h.path == path) else {
                    errors.push(format!("heartbeat `{path}` was not read"));
                    continue;
                };
                if let Some(e) = &h.error {
                    errors.push(format!("heartbeat `{path}`: {e}"));
                } else if h.missing {
                    findings.push(Code::HeartbeatMissing.finding(
                        path,
                        format!("mirror heartbeat `{path}` does not exist: the mirror holds no copy of it"),
                    ));
                } else if let Some(why) = &h.invalid {
                    findings.push(
                        Code::HeartbeatInvalid
                            .finding(path, format!("mirror heartbeat `{path}`: {why}")),
                    );
                } else if let Some(t) = h.time {
                    let lag = (ctx.now - t).num_milliseconds() as f64 / 1000.0;
                    if lag > max {
                        findings.push(Code::HeartbeatStale.finding(
                            path,
                            format!(
                                "mirror heartbeat `{path}` is from {} ({} behind), the policy allows {}",
                                t.format("%Y-%m-%d %H:%M:%S UTC"),
                                secs(lag),
                                secs(max)
                            ),
                        ));
                    } else {
                        fresh += 1;
                    }
                }
            }
            ok.push(format!(
                "{fresh} of {} heartbeat mirrors fresh",
                hb.mirrors.len()
            ));
        }
        let evidence: &Evidence = facts;
        if !errors.is_empty() {
            let mut v = Verdict::error(errors.join("; "));
            v.findings = findings;
            v.evidence = crate::verdict::to_json(evidence);
            return v;
        }
        Verdict::from_findings(findings, ok.join("; "), evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::CheckStatus;
    use chrono::{DateTime, Utc};

    fn ctx() -> JudgeCtx {
        JudgeCtx {
            now: "2026-11-25T08:00:00Z".parse().unwrap(),
            host: "db-1".into(),
        }
    }

    fn params(yaml: &str) -> Params {
        crate::yaml::from_node(&crate::yaml::parse(yaml).unwrap()).unwrap()
    }

    fn replica(
        name: &str,
        addr: Option<&str>,
        state: &str,
        lag: Option<f64>,
        bytes: i64,
    ) -> Replica {
        Replica {
            application_name: name.into(),
            client_addr: addr.map(String::from),
            client_hostname: None,
            state: state.into(),
            sync_state: "async".into(),
            replay_lag_seconds: lag,
            replay_lag_bytes: Some(bytes),
        }
    }

    fn primary(replicas: Vec<Replica>) -> Facts {
        Facts {
            postgres: Some(PostgresFacts {
                target: "postgres://monitor@db-1/postgres".into(),
                server_version: "15.10".into(),
                role: "primary".into(),
                replicas,
                standby: None,
                error: None,
            }),
            heartbeats: vec![],
        }
    }

    fn codes(v: &Verdict) -> Vec<&str> {
        v.findings.iter().map(|f| f.code.as_str()).collect()
    }

    const PG: &str =
        "postgres: {dsn: 'postgres://monitor@db-1/postgres', min_replicas: 2, max_lag_seconds: 60}";

    #[test]
    fn fixture_facts_judge() {
        let facts: Facts = serde_json::from_str(include_str!(
            "../../../../tests/data/mirror/primary_two_replicas/facts.json"
        ))
        .unwrap();
        let v = crate::checks::judged::<MirrorLag>(&params(PG), &facts, &ctx());
        assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
        assert_eq!(v.summary, "2 streaming replicas (worst lag 0.4 s)");
    }

    #[test]
    fn two_healthy_replicas_on_distinct_hosts_pass() {
        let f = primary(vec![
            replica("db-2", Some("10.0.0.2"), "streaming", Some(0.2), 0),
            replica("db-3", Some("10.0.0.3"), "streaming", None, 0),
        ]);
        assert_eq!(
            crate::checks::judged::<MirrorLag>(&params(PG), &f, &ctx()).status,
            CheckStatus::Pass
        );
    }

    #[test]
    fn same_host_counts_once_except_on_loopback() {
        let f = primary(vec![
            replica("a", Some("10.0.0.2"), "streaming", Some(0.2), 0),
            replica("b", Some("10.0.0.2"), "streaming", Some(0.2), 0),
        ]);
        let v = crate::checks::judged::<MirrorLag>(&params(PG), &f, &ctx());
        assert_eq!(codes(&v), ["too_few_replicas"]);
        assert!(
            v.summary
                .contains("1 healthy streaming replica on distinct hosts"),
            "{}",
            v.summary
        );
        let f = primary(vec![
            replica("a", Some("127.0.0.1"), "streaming", Some(0.2), 0),
            replica("b", Some("127.0.0.1"), "streaming", Some(0.2), 0),
        ]);
        assert_eq!(
            crate::checks::judged::<MirrorLag>(&params(PG), &f, &ctx()).status,
            CheckStatus::Pass
        );
    }

    #[test]
    fn lagging_and_not_streaming_replicas_fail() {
        let f = primary(vec![
            replica("db-2", Some("10.0.0.2"), "streaming", Some(95.0), 123456),
            replica("db-3", Some("10.0.0.3"), "catchup", None, 0),
            replica("db-4", Some("10.0.0.4"), "streaming", None, 4096),
        ]);
        let v = crate::checks::judged::<MirrorLag>(&params(PG), &f, &ctx());
        assert_eq!(
            codes(&v),
            [
                "lag_exceeded",
                "replica_not_streaming",
                "lag_unknown",
                "too_few_replicas"
            ]
        );
        assert!(v.findings[0]
            .message
            .contains("95.0 s behind (123456 bytes), the policy allows 60.0 s"));
    }

    #[test]
    fn idle_standby_is_not_lag_but_a_stuck_one_is() {
        let p = params("postgres: {dsn: 'postgres://x@h/db', max_lag_seconds: 30}");
        let mut sb = Standby {
            receive_lsn: Some("0/3000060".into()),
            replay_lsn: Some("0/3000060".into()),
            unreplayed_bytes: Some(0),
            since_last_replay_seconds: Some(7200.0),
            replay_paused: false,
            wal_receiver_status: Some("streaming".into()),
            sender_host: Some("db-1".into()),
        };
        let facts = |sb: &Standby| Facts {
            postgres: Some(PostgresFacts {
                target: "postgres://x@h/db".into(),
                server_version: "15".into(),
                role: "standby".into(),
                replicas: vec![],
                standby: Some(sb.clone()),
                error: None,
            }),
            heartbeats: vec![],
        };
        let v = crate::checks::judged::<MirrorLag>(&p, &facts(&sb), &ctx());
        assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
        sb.unreplayed_bytes = Some(90000);
        sb.replay_paused = true;
        let v = crate::checks::judged::<MirrorLag>(&p, &facts(&sb), &ctx());
        assert_eq!(codes(&v), ["replay_paused", "lag_exceeded"]);
        sb.wal_receiver_status = None;
        sb.unreplayed_bytes = Some(0);
        sb.replay_paused = false;
        let v = crate::checks::judged::<MirrorLag>(&p, &facts(&sb), &ctx());
        assert_eq!(codes(&v), ["standby_not_streaming"]);
    }

    #[test]
    fn connection_error_is_an_error() {
        let mut f = primary(vec![]);
        if let Some(pg) = f.postgres.as_mut() {
            pg.error = Some("connection refused".into());
        }
        let v = crate::checks::judged::<MirrorLag>(&params(PG), &f, &ctx());
        assert_eq!(v.status, CheckStatus::Error);
    }

    #[test]
    fn heartbeats() {
        assert_eq!(
            parse_heartbeat("2026-11-25T07:59:30Z\n").unwrap(),
            "2026-11-25T07:59:30Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            parse_heartbeat("1795593570 written by cron").unwrap(),
            DateTime::from_timestamp(1795593570, 0).unwrap()
        );
        assert!(parse_heartbeat("").is_err());
        assert!(parse_heartbeat("yesterday").is_err());
        let p = params("heartbeat: {mirrors: [/m1/hb, /m2/hb, /m3/hb], max_lag_seconds: 120}");
        let hb = |path: &str, time: Option<&str>, missing: bool| Heartbeat {
            path: path.into(),
            time: time.map(|t| t.parse().unwrap()),
            missing,
            invalid: None,
            error: None,
        };
        let facts = Facts {
            postgres: None,
            heartbeats: vec![
                hb("/m1/hb", Some("2026-11-25T07:59:30Z"), false),
                hb("/m2/hb", Some("2026-11-25T07:00:00Z"), false),
                hb("/m3/hb", None, true),
            ],
        };
        let v = crate::checks::judged::<MirrorLag>(&p, &facts, &ctx());
        assert_eq!(codes(&v), ["heartbeat_stale", "heartbeat_missing"]);
        assert!(
            v.findings[0].message.contains("60.0 min behind"),
            "{}",
            v.findings[0].message
        );
    }

    #[test]
    fn validation() {
        assert_eq!(MirrorLag::validate(&params("{}")).len(), 1);
        assert_eq!(
            MirrorLag::validate(&params("postgres: {dsn: a, dsn_file: b}")).len(),
            1
        );
    }
}
