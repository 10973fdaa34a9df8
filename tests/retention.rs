//! Retention (CONTRACT.md "Retention", issue 22 item 3): `vigil-reporter
//! prune` deletes old stored reports while the latest result of every
//! (host, control) with its findings, the daily roll-ups and the audit log
//! stay valid; bad durations are refused naming the flag or the config file.

use std::process::Command;

use serde_json::{json, Value};
use vigil_tests::*;

fn post(r: &Reporter, token: &str, body: &Value) -> u16 {
    r.client()
        .post(format!("{}/api/v1/reports", r.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn reporter_cmd(args: &[&str]) -> std::process::Output {
    Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args(args)
        .env_remove("VIGIL_DATABASE_URL")
        .output()
        .unwrap()
}

#[test]
fn prune_keeps_latest_results_rollups_and_a_verifying_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut r = Reporter::start(&data, false, None, &[]);
    let staff = r.add_user("alice", "admin");
    let web1 = r.enroll("web-1", 3600);
    let db1 = r.enroll("db-1", 3600);
    // web-1's old report holds SP-2's finding; its newer reports leave SP-2 out.
    let t0 = chrono::Utc::now() - chrono::Duration::minutes(30);
    let mut old = report_of(
        "web-1",
        &[
            ("SP-1", "tls_endpoint", "pass"),
            ("SP-2", "patch_level", "fail"),
        ],
        t0,
    );
    old["controls"][1]["checks"][0]["findings"] = json!([{"code": "open_advisory", "severity": "high",
        "subject": "openssl", "message": "CVE-2026-0001 in openssl 3.0.1 (fixed in 3.0.2)"}]);
    assert_eq!(post(&r, &web1, &old), 201);
    for i in 1..=3 {
        let rep = report_of(
            "web-1",
            &[("SP-1", "tls_endpoint", "pass")],
            t0 + chrono::Duration::minutes(i),
        );
        assert_eq!(post(&r, &web1, &rep), 201);
    }
    assert_eq!(
        post(
            &r,
            &db1,
            &report_of("db-1", &[("SP-1", "tls_endpoint", "error")], t0)
        ),
        201
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Received after the cutoff: kept.
    let fresh = report_of(
        "web-1",
        &[("SP-1", "tls_endpoint", "pass")],
        t0 + chrono::Duration::minutes(10),
    );
    assert_eq!(post(&r, &web1, &fresh), 201);
    assert_eq!(r.stored_report_ids(&staff, "web-1").len(), 5);

    // Refused before anything is deleted: a bad flag, a bad config field.
    let o = reporter_cmd(&[
        "prune",
        "--older-than",
        "soon",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`--older-than`") && err.contains("`soon`"),
        "{err}"
    );
    let cfg = dir.path().join("reporter.yaml");
    std::fs::write(&cfg, "retention:\n  reports: someday\n").unwrap();
    let o = reporter_cmd(&[
        "prune",
        "--older-than",
        "1s",
        "--data",
        data.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{}:2:", cfg.display())) && err.contains("`someday`"),
        "{err}"
    );

    let o = reporter_cmd(&[
        "prune",
        "--older-than",
        "1s",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("pruned 4 reports"), "{err}");

    // web-1 keeps only the fresh report; db-1 its newest (and only) one.
    assert_eq!(
        r.stored_report_ids(&staff, "web-1"),
        [fresh["report_id"].as_str().unwrap()]
    );
    assert_eq!(r.stored_report_ids(&staff, "db-1").len(), 1);
    assert_eq!(
        r.get_json(
            &staff,
            &format!("/api/v1/reports/{}", old["report_id"].as_str().unwrap())
        )
        .0,
        404
    );

    // The host page still shows SP-2's latest result with its finding.
    let (s, host) = r.get_json(&staff, "/api/v1/hosts/web-1");
    assert_eq!(s, 200, "{host}");
    let sp2 = host["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "SP-2")
        .unwrap_or_else(|| panic!("SP-2 gone from the host page: {host}"));
    assert_eq!(sp2["status"], "fail");
    assert_eq!(sp2["report_id"], old["report_id"]);
    assert_eq!(sp2["checks"][0]["findings"][0]["code"], "open_advisory");
    // Posture and today's roll-up still count it.
    let (_, p) = r.get_json(&staff, "/api/v1/posture");
    let c = |p: &Value, id: &str| {
        p["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(c(&p, "SP-2")["hosts_failing"], json!(["web-1"]));
    assert_eq!(c(&p, "SP-1")["counts"], json!({"pass": 1, "error": 1}));
    let today = chrono::Utc::now().format("%Y-%m-%dT12:00:00Z").to_string();
    let (_, d) = r.get_json(&staff, &format!("/api/v1/posture?at={today}"));
    assert_eq!(c(&d, "SP-2")["counts"], json!({"fail": 1}), "{d}");
    assert_eq!(p["trend"].as_array().unwrap().len(), 30);
    assert!(p["score"].as_f64().is_some(), "{p}");

    // The audit log verifies, from the API and from the command line (the
    // server stopped, so the file is quiet).
    let (s, v) = r.get_json(&staff, "/api/v1/audit/verify");
    assert_eq!((s, &v["ok"]), (200, &json!(true)), "{v}");
    r.kill9();
    let o = reporter_cmd(&["audit", "verify", "--data", data.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
