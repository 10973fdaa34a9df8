//! Metrics (issue 22, item 7): the reporter's `GET /metrics` after real
//! reports, scraped and validated with promtool; the agent's optional local
//! listener scraped while the daemon runs.

use std::time::Duration;

use serde_json::json;
use vigil_tests::*;

/// The reporter counts what was posted, judges staleness, counts closures
/// by state and refuses anonymous scrapes.
#[test]
fn reporter_metrics_count_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let token = "metrics-scrape-token-0123456789abcdef0123";
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let config = dir.path().join("reporter.yaml");
    std::fs::write(
        &config,
        format!("metrics:\n  token_file: {}\n", token_file.display()),
    )
    .unwrap();
    let data = dir.path().join("data");
    let r = Reporter::start(&data, false, None, &["--config", config.to_str().unwrap()]);
    let url = format!("{}/metrics", r.base);

    // Nobody anonymous, with a wrong token or with an agent's token.
    let (s, body) = scrape(&url, None);
    assert_eq!(s, 401, "{body}");
    assert!(
        !body.contains("vigil_"),
        "a refusal shows no metric: {body}"
    );
    let (s, body) = scrape(&url, Some("metrics-scrape-token-0123456789abcdef0124"));
    assert_eq!(s, 401, "{body}");
    assert!(!body.contains("vigil_"), "{body}");

    // `quiet` reports every hour; `busy` every 2 s, so it goes stale after 4 s.
    let quiet = r.enroll("quiet", 3600);
    let busy = r.enroll("busy", 2);
    let (s, body) = scrape(&url, Some(&busy));
    assert_eq!(s, 401, "an agent's token does not scrape: {body}");

    let c = r.client();
    let post = |tok: &str, body: &serde_json::Value| {
        c.post(format!("{}/api/v1/reports", r.base))
            .bearer_auth(tok)
            .json(body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let now = chrono::Utc::now();
    let controls = [("SP-1", "attestation", "pass"), ("SP-2", "tls", "fail")];
    assert_eq!(post(&quiet, &report_of("quiet", &controls, now)), 201);
    // Refused: another host's report (403) and an invalid one (400).
    assert_eq!(post(&quiet, &report_of("busy", &controls, now)), 403);
    assert_eq!(post(&quiet, &json!({"schema": "vigil.report/v1"})), 400);
    let mut last = json!(null);
    for _ in 0..3 {
        last = report_of("busy", &controls, chrono::Utc::now());
        assert_eq!(post(&busy, &last), 201);
    }
    // The same report again: acknowledged, not stored twice.
    assert_eq!(post(&busy, &last), 200);

    let m = Exposition::checked(scraped(&url, token));
    let ingest = |outcome: &str, class: &str| {
        m.value(
            "vigil_reporter_ingest_reports_total",
            &[("outcome", outcome), ("class", class)],
        )
    };
    assert_eq!(ingest("stored", "2xx"), 4.0);
    assert_eq!(ingest("duplicate", "2xx"), 1.0);
    assert_eq!(ingest("refused", "4xx"), 2.0);
    assert_eq!(ingest("refused", "5xx"), 0.0);
    assert_eq!(
        m.value("vigil_reporter_ingest_duration_seconds_count", &[]),
        7.0
    );
    assert_eq!(m.value("vigil_reporter_reports_stored", &[]), 4.0);
    assert_eq!(m.value("vigil_reporter_hosts", &[("state", "fresh")]), 2.0);
    assert_eq!(m.value("vigil_reporter_hosts", &[("state", "stale")]), 0.0);
    assert_eq!(
        m.value("vigil_reporter_hosts", &[("state", "revoked")]),
        0.0
    );
    assert_eq!(
        m.value("vigil_reporter_closures", &[("state", "requested")]),
        0.0
    );
    assert!(
        m.value(
            "vigil_reporter_http_requests_total",
            &[("route", "metrics"), ("class", "4xx")]
        ) >= 3.0,
        "the refused scrapes are counted"
    );

    // A staff member may scrape too; open a closure as an admin.
    let admin = r.add_user("ada", "admin");
    let auditor = r.add_user("aud", "auditor");
    let (s, _) = scrape(&url, Some(&auditor));
    assert_eq!(s, 200, "an auditor may scrape");
    let resp = c
        .post(format!("{}/api/v1/accounts/acme/closure", r.base))
        .bearer_auth(&admin)
        .json(&json!({"requested_by": "customer", "reason": "contract ended"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap());

    // `busy` stops reporting: past twice its interval it counts as stale
    // (the figures are at most 2 s old, so 6 s is past both).
    std::thread::sleep(Duration::from_secs(6));
    let m = Exposition::checked(scraped(&url, &admin));
    assert_eq!(m.value("vigil_reporter_hosts", &[("state", "fresh")]), 1.0);
    assert_eq!(m.value("vigil_reporter_hosts", &[("state", "stale")]), 1.0);
    assert_eq!(
        m.value("vigil_reporter_closures", &[("state", "requested")]),
        1.0
    );
    assert_eq!(
        m.value("vigil_reporter_closures", &[("state", "closed")]),
        0.0
    );
    assert_eq!(
        m.value("vigil_reporter_closures", &[("state", "cancelled")]),
        0.0
    );

    // A revoked host leaves fresh/stale for revoked.
    let o = std::process::Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args(["agent", "revoke", "busy", "--by", "test", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The audit log stops growing; its newest checkpoint (every 10 s) then
    // covers all of it.
    let mut last = None;
    wait_until(40, "a checkpoint covering the whole audit log", || {
        std::thread::sleep(Duration::from_millis(500));
        let m = Exposition::checked(scraped(&url, token));
        let entries = m.value("vigil_reporter_audit_entries", &[]);
        let size = m.value("vigil_reporter_audit_checkpoint_size", &[]);
        last = Some(m);
        entries > 0.0 && size == entries
    });
    let m = last.unwrap();
    assert_eq!(
        m.value("vigil_reporter_hosts", &[("state", "revoked")]),
        1.0
    );
    assert_eq!(m.value("vigil_reporter_hosts", &[("state", "stale")]), 0.0);
    assert_eq!(m.value("vigil_reporter_hosts", &[("state", "fresh")]), 1.0);
    // Counters only grow; stored reports are what was stored.
    assert_eq!(m.value("vigil_reporter_reports_stored", &[]), 4.0);
    assert_eq!(
        m.value(
            "vigil_reporter_ingest_reports_total",
            &[("outcome", "stored"), ("class", "2xx")]
        ),
        4.0
    );
}

/// A scrape that must succeed.
fn scraped(url: &str, token: &str) -> String {
    let (s, body) = scrape(url, Some(token));
    assert_eq!(s, 200, "{body}");
    body
}

/// The agent's listener: check durations and statuses after a cycle; the
/// spool's depth and the failure counter grow while the reporter is away,
/// and the shipped counter catches up when it is back.
#[test]
fn agent_metrics_follow_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Reporter::start(&dir.path().join("data"), false, None, &[]);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut a = DaemonAgent::new(
        "metrics-agent",
        &r.base,
        &format!("metrics:\n  listen: 127.0.0.1:{port}\n"),
    );
    let o = a.enroll(ENROLL_SECRET);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    a.start(&[]);

    let agent_scrape = || {
        let (s, body) = scrape(&url, None);
        assert_eq!(s, 200, "{body}");
        Exposition::checked(body)
    };
    // The listener is up once the daemon runs; wait for a delivered report.
    let mut m = None;
    wait_until(60, "a report shipped by the agent", || {
        let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if up {
            let e = agent_scrape();
            let shipped = e.value("vigil_agent_reports_shipped_total", &[]);
            m = Some(e);
            shipped >= 1.0
        } else {
            false
        }
    });
    let m = m.unwrap();
    let d1 = m.value(
        "vigil_agent_check_duration_seconds",
        &[("control", "D-1"), ("check", "d1"), ("type", "attestation")],
    );
    assert!((0.0..60.0).contains(&d1), "{d1}");
    assert_eq!(
        m.value(
            "vigil_agent_check_status",
            &[("control", "D-1"), ("check", "d1"), ("status", "pass")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "vigil_agent_check_status",
            &[("control", "D-1"), ("check", "d1"), ("status", "fail")]
        ),
        0.0
    );
    assert!(m.value("vigil_agent_last_shipment_timestamp_seconds", &[]) > 1.7e9);
    assert_eq!(m.value("vigil_agent_ship_failures_total", &[]), 0.0);
    // Not found elsewhere; not for other methods.
    assert_eq!(scrape(&format!("http://127.0.0.1:{port}/"), None).0, 404);

    // The reporter goes away: reports pile up in the spool, deliveries fail.
    r.kill9();
    wait_until(60, "reports waiting in the spool", || {
        let e = agent_scrape();
        e.value("vigil_agent_spool_reports", &[]) >= 2.0
            && e.value("vigil_agent_ship_failures_total", &[]) >= 1.0
    });
    let before = agent_scrape().value("vigil_agent_reports_shipped_total", &[]);
    // Back again: the spool drains and the shipped counter catches up.
    r.restart();
    wait_until(90, "the spool delivered", || {
        let e = agent_scrape();
        e.value("vigil_agent_spool_reports", &[]) == 0.0
            && e.value("vigil_agent_reports_shipped_total", &[]) >= before + 2.0
    });
    assert_eq!(a.stop(), 0, "{}", a.log());
}

/// A non-loopback listen address is refused at start, naming the file and
/// the field, unless `allow_remote` says so.
#[test]
fn agent_refuses_a_remote_metrics_listener() {
    let a = DaemonAgent::new(
        "metrics-remote",
        "http://127.0.0.1:9",
        "metrics:\n  listen: 0.0.0.0:9464\n",
    );
    let o = std::process::Command::new(agent())
        .args(["run", "--config"])
        .arg(a.config())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    let want = format!(
        "{}:10:11: `metrics.listen`: `0.0.0.0:9464` is not a loopback address",
        a.config().display()
    );
    assert!(err.contains(&want), "no `{want}` in:\n{err}");
    assert!(
        err.contains("allow_remote"),
        "the error says how to allow it: {err}"
    );
}
