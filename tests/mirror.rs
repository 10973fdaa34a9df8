//! `mirror_lag` against real PostgreSQL streaming replication (15 or later):
//! a primary and two standbys on loopback ports, started from the installed
//! server binaries as the `postgres` user (`PgReplication`, shared with
//! fleet_papyrs.rs); then healthy, a standby with replay
//! paused falling behind, and a standby stopped. Heartbeat mirrors on a
//! fixture root.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vigil_tests::*;

/// The primary and its two standbys (`tests/support/pg.rs`), and the checks
/// this test runs against them.
struct Clusters {
    pg: PgReplication,
}

impl Clusters {
    /// A primary and two standbys, each on a free loopback port; the
    /// standbys connect as `vigil-standby-1` and `-2`.
    fn start() -> (Self, u16, u16, u16) {
        let (primary, s1, s2) = (free_port(), free_port(), free_port());
        let pg = PgReplication::start(&Streaming {
            netns: None,
            primary_port: primary,
            primary_listen: "127.0.0.1",
            standby_ports: &[s1, s2],
            application_name: "vigil-standby",
        });
        (Clusters { pg }, primary, s1, s2)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.pg.path(rel)
    }

    fn sql(&self, port: u16, sql: &str) -> String {
        self.pg.sql(port, "postgres", sql)
    }

    /// Waits until `sql` on `port` prints `want`.
    fn wait_for(&self, port: u16, sql: &str, want: &str) {
        let start = Instant::now();
        loop {
            let got = self.sql(port, sql);
            if got == want {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "waited 30 s for `{sql}` to print `{want}`, last `{got}`"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs the agent on one `mirror_lag` check with `with` as given.
    fn check(&self, with: &str) -> (Output, serde_json::Value) {
        let policy = mirror_policy(with).write(&self.path("policy.yaml"));
        let o = agent_check(&policy).output();
        let report = report_json(&o);
        let check = check_of(&report, "BK-M", "pg").clone();
        (o, check)
    }
}

/// Control BK-M holding the mirror_lag check `pg` with `with`.
fn mirror_policy(with: &str) -> SingleCheckPolicy {
    single_check_policy("BK-M", "pg", "mirror_lag", with).timeout("2m")
}

fn status(check: &serde_json::Value) -> &str {
    check["status"].as_str().unwrap_or("")
}

const CAUGHT_UP: &str = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND replay_lsn = pg_current_wal_lsn()";

#[test]
fn streaming_replicas_healthy_paused_and_stopped() {
    let (c, primary, s1, s2) = Clusters::start();
    c.sql(
        primary,
        "CREATE TABLE pages (id serial PRIMARY KEY, body text); INSERT INTO pages (body) SELECT 'page ' || g FROM generate_series(1, 100) g",
    );
    c.wait_for(primary, CAUGHT_UP, "2");

    let on_primary = format!(
        "postgres: {{dsn: \"postgres://postgres@127.0.0.1:{primary}/postgres\", min_replicas: 2, max_lag_seconds: 2}}"
    );
    // Healthy: two streaming replicas, told apart on loopback by application_name.
    let (o, check) = c.check(&on_primary);
    assert_eq!(status(&check), "pass", "{check}");
    assert_eq!(o.status.code(), Some(0));
    assert!(
        check["summary"]
            .as_str()
            .unwrap()
            .starts_with("2 streaming replicas"),
        "{check}"
    );
    // The standby's own view: caught up, even with an idle primary.
    let on_standby = format!(
        "postgres: {{dsn: \"postgres://postgres@127.0.0.1:{s1}/postgres\", max_lag_seconds: 2}}"
    );
    std::thread::sleep(Duration::from_millis(2500));
    let (_, check) = c.check(&on_standby);
    assert_eq!(status(&check), "pass", "{check}");
    assert_eq!(check["summary"], "standby caught up");

    // Paused: standby 2 stops replaying while the primary keeps writing.
    c.sql(s2, "SELECT pg_wal_replay_pause()");
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        c.sql(primary, "INSERT INTO pages (body) VALUES ('more')");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (o, check) = c.check(&on_primary);
    assert_eq!(status(&check), "fail", "{check}");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(codes(&check), ["lag_exceeded", "too_few_replicas"]);
    let msg = check["findings"][0]["message"].as_str().unwrap();
    assert!(msg.contains("vigil-standby-2 (127.0.0.1)"), "{msg}");
    assert!(msg.contains("the policy allows 2.0 s"), "{msg}");
    assert_eq!(
        check["findings"][0]["subject"],
        "vigil-standby-2 (127.0.0.1)"
    );
    let on_s2 = format!(
        "postgres: {{dsn: \"postgres://postgres@127.0.0.1:{s2}/postgres\", max_lag_seconds: 2}}"
    );
    let (_, check) = c.check(&on_s2);
    assert_eq!(status(&check), "fail", "{check}");
    assert_eq!(codes(&check), ["replay_paused", "lag_exceeded"]);

    // Resume and catch up, then stop standby 1: too few replicas.
    c.sql(s2, "SELECT pg_wal_replay_resume()");
    c.wait_for(primary, CAUGHT_UP, "2");
    c.pg.stop(&c.path("standby1"));
    c.wait_for(primary, "SELECT count(*) FROM pg_stat_replication", "1");
    let (_, check) = c.check(&on_primary);
    assert_eq!(status(&check), "fail", "{check}");
    assert_eq!(codes(&check), ["too_few_replicas"]);
    let msg = check["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("has 1 healthy streaming replica on distinct hosts, the policy asks for at least 2 (connected: vigil-standby-2 (127.0.0.1))"),
        "{msg}"
    );

    // A password in the connection string never reaches the report.
    let secret = "mirror-Pw-Falcon-5521";
    std::fs::write(
        c.path("monitor.dsn"),
        format!("postgres://no_such_role:{secret}@127.0.0.1:{primary}/postgres\n"),
    )
    .unwrap();
    let (o, check) = c.check(&format!(
        "postgres: {{dsn_file: \"{}\", min_replicas: 1}}",
        c.path("monitor.dsn").display()
    ));
    assert_eq!(status(&check), "error", "{check}");
    assert!(
        check["summary"].as_str().unwrap().contains("no_such_role"),
        "{check}"
    );
    for out in [stdout(&o), stderr(&o)] {
        assert!(!out.contains(secret), "{out}");
    }
}

#[test]
fn nothing_listening_is_an_error_not_a_pass() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let policy = mirror_policy(&format!(
        "postgres: {{dsn: \"postgres://monitor:Sekr1t-x@127.0.0.1:{port}/postgres\", min_replicas: 2}}"
    ))
    .write(&dir.path().join("p.yaml"));
    let o = agent_check(&policy).output();
    let report = report_json(&o);
    let check = check_of(&report, "BK-M", "pg");
    assert_eq!(status(check), "error", "{check}");
    assert!(!stdout(&o).contains("Sekr1t-x"));
    assert!(
        check["summary"].as_str().unwrap().contains("[REDACTED]"),
        "{check}"
    );
}

#[test]
fn heartbeat_mirrors_fresh_stale_missing() {
    let host = FixtureHost::new();
    host.copy_tree(&workspace().join("tests/data/mirror/heartbeat/root"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    host.write(
        "/srv/mirror-1/papyrs/.vigil-heartbeat",
        &format!("{}\n", now - 5),
    );
    let policy = mirror_policy(
        "heartbeat:\n  mirrors: [/srv/mirror-1/papyrs/.vigil-heartbeat, /srv/mirror-2/papyrs/.vigil-heartbeat, /srv/mirror-3/papyrs/.vigil-heartbeat]\n  max_lag_seconds: 300",
    )
    .write(&host.root().join("etc/vigil/policy.yaml"));
    let o = agent_check(&policy).root(host.root()).output();
    let report = report_json(&o);
    let check = check_of(&report, "BK-M", "pg");
    assert_eq!(status(check), "fail", "{check}");
    assert_eq!(codes(check), ["heartbeat_stale", "heartbeat_missing"]);
    let msg = check["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("/srv/mirror-2/papyrs/.vigil-heartbeat` is from 2026-11-20 02:00:00 UTC"),
        "{msg}"
    );
}
