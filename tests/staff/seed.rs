//! Seeded fleet for the staff pages and brochure tests: three hosts reporting
//! daily for ten days against `policies/papyrs.yaml`, with one firewall that
//! starts failing, a TLS certificate, backups and mirroring evidence.

use serde_json::{json, Value};
use vigil_tests::*;

/// (control id, check id, check type, status, summary, evidence, findings)
pub type Check<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, Value, Value);

pub fn report(host: &str, checks: &[Check], finished: chrono::DateTime<chrono::Utc>) -> Value {
    let mut controls: Vec<Value> = Vec::new();
    let mut summary = json!({"pass": 0, "fail": 0, "error": 0, "attested": 0, "skipped": 0, "waived": 0, "unknown": 0});
    for (control, id, ty, status, text, evidence, findings) in checks {
        let cs = match (*ty, *status) {
            (_, "fail") => "fail",
            (_, "error") => "error",
            ("attestation", "pass") => "attested",
            _ => "pass",
        };
        summary[cs] = json!(summary[cs].as_u64().unwrap() + 1);
        controls.push(json!({
            "id": control, "title": format!("{control} title"), "status": cs,
            "checks": [{"id": id, "type": ty, "status": status, "summary": text, "findings": findings, "evidence": evidence, "duration_ms": 3}]
        }));
    }
    let t = finished.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "schema": "vigil.report/v1",
        "report_id": uuid::Uuid::new_v4().to_string(),
        "agent": {"host": host, "version": "0.1.0"},
        "policy": {"id": "papyrs-security", "version": "2017-11-17.1", "sha256": "b".repeat(64)},
        "started_at": t, "finished_at": t,
        "controls": controls,
        "summary": summary,
    })
}

pub fn post(r: &Reporter, token: &str, body: &Value) {
    let resp = r
        .client()
        .post(format!("{}/api/v1/reports", r.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        201,
        "{}",
        resp.text().unwrap_or_default()
    );
}

fn checks(host: &str, day: i64) -> Vec<Check<'static>> {
    let firewall_fails = host == "web-2" && day >= 6;
    let mut v: Vec<Check> = vec![
        (
            "SP-1",
            "public-https",
            "tls_endpoint",
            "pass",
            "TLS 1.3, chain trusted, 64 days left",
            json!({"endpoints": [{"address": "papyrs.example:443", "server_name": "papyrs.example", "protocol": "1.3", "cipher_suite": "TLS13_AES_128_GCM_SHA256", "alpn": "h2", "ocsp_stapled": false, "old_protocols": [], "weak_ciphers": null, "http": null, "trust": {"anchors": "system", "outcome": "trusted"}, "certificates": [{"subject": "CN=papyrs.example", "issuer": "C=FR, O=Gandi, CN=Gandi RSA Domain Validation Secure Server CA", "sans": ["DNS:papyrs.example"], "serial": "01", "not_before": "2025-01-01T00:00:00Z", "not_after": "2027-01-28T23:59:59Z", "key_type": "RSA", "key_bits": 2048, "signature_algorithm": "sha256WithRSAEncryption", "sha256": "abababababababababababababababababababababababababababababababab", "self_signed": false, "is_ca": false}]}], "redirects": []}),
            json!([]),
        ),
        (
            "SP-3",
            "system-password-hashes",
            "password_storage",
            "pass",
            "12 accounts, all yescrypt",
            json!({}),
            json!([]),
        ),
        if firewall_fails {
            (
                "SP-5",
                "inbound",
                "firewall",
                "fail",
                "port 9200 open to the world",
                json!({}),
                json!([{"code": "unexpected_open_port", "severity": "high", "subject": "0.0.0.0:9200", "message": "tcp/9200 (elasticsearch) accepts connections from anywhere"}]),
            )
        } else {
            (
                "SP-5",
                "inbound",
                "firewall",
                "pass",
                "default deny; 22, 443 open",
                json!({}),
                json!([]),
            )
        },
        (
            "SP-9",
            "datacentre-attestation",
            "attestation",
            "pass",
            "attested by ops on 2026-11-01",
            json!({}),
            json!([]),
        ),
    ];
    if host == "db-1" {
        v.push((
            "BK-1",
            "nightly",
            "backup_freshness",
            "pass",
            "newest set 7 hours old in 2 locations",
            json!({"newest_age_hours": 7, "locations": 2}),
            json!([]),
        ));
        v.push((
            "BK-4",
            "replicas",
            "mirror_lag",
            "pass",
            "2 replicas on distinct hosts, lag 0.4 s",
            json!({"replicas": 2, "max_lag_seconds": 0.4}),
            json!([]),
        ));
    }
    v
}

/// Starts a reporter with the papyrs policy and ten days of history.
pub fn seeded(dir: &std::path::Path, extra_config: &str) -> (Reporter, String) {
    let cfg = dir.join("reporter.yaml");
    let policy = workspace().join("policies/papyrs.yaml");
    std::fs::write(
        &cfg,
        format!(
            "policy: {}\norganization: Papyrs\n{extra_config}",
            policy.display()
        ),
    )
    .unwrap();
    let r = Reporter::start(
        &dir.join("data"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let staff = r.add_user("alice", "admin");
    let now = chrono::Utc::now();
    for host in ["db-1", "web-1", "web-2"] {
        let token = r.enroll(host, 86_400);
        for day in 0..10 {
            let at = now - chrono::Duration::days(9 - day) - chrono::Duration::minutes(5);
            post(&r, &token, &report(host, &checks(host, day), at));
        }
    }
    (r, staff)
}
