//! Account closure end to end at the reporter: every phase gated on what the
//! hosts of the right roles prove, blocked while one fails or has not proved
//! or is stale, cancellation inside the cooling-off period only, crypto-shred
//! for offline backups, and a signed certificate that verifies offline and
//! fails once one byte changes.

use std::process::Command;

use serde_json::{json, Value};
use vigil_tests::*;

/// A report whose `erasure` check proves (or fails) one phase for one account.
fn erasure_report(host: &str, account: &str, phase: &str, done: bool) -> Value {
    let t = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let status = if done { "pass" } else { "fail" };
    json!({
        "schema": "vigil.report/v1", "report_id": uuid::Uuid::new_v4().to_string(),
        "agent": {"host": host, "version": "0.1.0"},
        "policy": {"id": "papyrs-security", "version": "1", "sha256": "c".repeat(64)},
        "started_at": t, "finished_at": t,
        "controls": [{"id": "GDPR-4", "title": "erasure", "status": status, "checks": [{
            "id": "erasure", "type": "erasure", "status": status, "summary": "s",
            "findings": if done { json!([]) } else { json!([{"code": "hook_failed", "severity": "high", "subject": account, "message": "hook exited 1"}]) },
            "evidence": {"tasks": [{"account": account, "phase": phase, "done": done, "digest": format!("{host}-{phase}"), "checked": ["x"]}]},
            "duration_ms": 1}]}],
        "summary": {"pass": u32::from(done), "fail": u32::from(!done), "error": 0, "attested": 0, "skipped": 0, "waived": 0, "unknown": 0}
    })
}

struct Fleet {
    r: Reporter,
    admin: String,
    tokens: std::collections::HashMap<String, String>,
}

impl Fleet {
    fn prove(&self, host: &str, account: &str, phase: &str, done: bool) {
        let resp = self
            .r
            .client()
            .post(format!("{}/api/v1/reports", self.r.base))
            .bearer_auth(&self.tokens[host])
            .json(&erasure_report(host, account, phase, done))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
    }

    fn closure(&self, account: &str) -> Value {
        let resp = self
            .r
            .client()
            .get(format!("{}/api/v1/accounts/{account}/closure", self.r.base))
            .bearer_auth(&self.admin)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.json().unwrap()
    }

    fn tasks(&self, host: &str) -> Vec<(String, String)> {
        let v: Value = self
            .r
            .client()
            .get(format!("{}/api/v1/erasures", self.r.base))
            .bearer_auth(&self.tokens[host])
            .send()
            .unwrap()
            .json()
            .unwrap();
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["account"].as_str().unwrap().to_owned(),
                    t["phase"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn open(&self, account: &str) -> (u16, Value) {
        let resp = self
            .r
            .client()
            .post(format!("{}/api/v1/accounts/{account}/closure", self.r.base))
            .bearer_auth(&self.admin)
            .json(&json!({"requested_by": "customer via support ticket 8812", "reason": "account closed by owner", "identifiers": ["u-1842"]}))
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json().unwrap())
    }
}

fn phase<'a>(c: &'a Value, name: &str) -> &'a Value {
    c["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == name)
        .unwrap()
}

#[test]
fn a_closure_runs_every_phase_to_a_verifiable_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reporter.yaml");
    std::fs::write(
        &config,
        "erasure:\n  cooling_off: 2s\n  offline_retention: 365d\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let r = Reporter::start(&data, false, None, &["--config", config.to_str().unwrap()]);
    let admin = r.add_user("alice", "admin");
    let auditor = r.add_user("bob", "auditor");
    let mut tokens = std::collections::HashMap::new();
    for (host, interval, roles) in [
        ("app-1", 3600, vec!["app"]),
        ("backup-1", 3600, vec!["backup"]),
        ("backup-2", 3600, vec!["backup"]),
        ("offline-1", 3600, vec!["offline_backup"]),
        ("quiet-1", 1, vec![]),
    ] {
        tokens.insert(host.to_owned(), r.enroll_with_roles(host, interval, &roles));
    }
    let f = Fleet { r, admin, tokens };

    // Open; opening again returns the same closure; an auditor may not open one.
    let (s, c) = f.open("acme");
    assert_eq!((s, c["state"].as_str()), (201, Some("requested")), "{c}");
    assert_eq!(f.open("acme").0, 200);
    let resp =
        f.r.client()
            .post(format!("{}/api/v1/accounts/zeta/closure", f.r.base))
            .bearer_auth(&auditor)
            .json(&json!({"requested_by": "x", "reason": "y"}))
            .send()
            .unwrap();
    assert_eq!(resp.status().as_u16(), 403);

    // Export first: only the app host is asked, and proving it moves one step.
    assert_eq!(f.tasks("app-1"), [("acme".to_owned(), "export".to_owned())]);
    assert!(f.tasks("backup-1").is_empty());
    f.prove("app-1", "acme", "export", true);
    let c = f.closure("acme");
    assert_eq!(c["state"], "export_ready", "{c:#}");

    // Inside the cooling-off period no site erasure is handed out, and a
    // second closure can still be cancelled.
    assert!(
        f.tasks("app-1").is_empty(),
        "site erasure before the cooling-off ended"
    );
    let (s, _) = f.open("beta");
    assert_eq!(s, 201);
    let resp =
        f.r.client()
            .delete(format!("{}/api/v1/accounts/beta/closure", f.r.base))
            .bearer_auth(&f.admin)
            .send()
            .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(f.closure("beta")["state"], "cancelled");
    assert!(f.tasks("app-1").iter().all(|(a, _)| a != "beta"));

    std::thread::sleep(std::time::Duration::from_millis(2200));
    // Past the cooling-off: cancelling is refused.
    let resp =
        f.r.client()
            .delete(format!("{}/api/v1/accounts/acme/closure", f.r.base))
            .bearer_auth(&f.admin)
            .send()
            .unwrap();
    assert_eq!(resp.status().as_u16(), 409);

    // Site: a failing hook blocks the closure, then a proof moves it on.
    assert_eq!(f.tasks("app-1"), [("acme".to_owned(), "site".to_owned())]);
    f.prove("app-1", "acme", "site", false);
    let c = f.closure("acme");
    assert_eq!(c["state"], "blocked", "{c:#}");
    assert_eq!(c["progress"], "export_ready");
    assert!(c["blocked_reason"].as_str().unwrap().contains("app-1"));
    f.prove("app-1", "acme", "site", true);
    assert_eq!(f.closure("acme")["state"], "site_erased");

    // Local backups: both backup hosts must prove it.
    f.prove("backup-1", "acme", "local_backups", true);
    let c = f.closure("acme");
    assert_eq!(c["state"], "site_erased");
    let p = phase(&c, "local_backups");
    assert_eq!(p["state"], "waiting");
    assert!(p["note"].as_str().unwrap().contains("backup-2"), "{p}");
    // A proof for the wrong phase does not count.
    f.prove("backup-2", "acme", "site", true);
    assert_eq!(f.closure("acme")["state"], "site_erased");
    f.prove("backup-2", "acme", "local_backups", true);
    assert_eq!(f.closure("acme")["state"], "local_backups_erased");

    // Offline backups: crypto-shredding with evidence.
    assert_eq!(
        f.tasks("offline-1"),
        [("acme".to_owned(), "offline_backups".to_owned())]
    );
    let resp = f
        .r
        .client()
        .post(format!("{}/api/v1/accounts/acme/closure/offline", f.r.base))
        .bearer_auth(&f.admin)
        .json(&json!({"method": "crypto_shred", "evidence": "KMS key acme-backup destroyed, change CHG-2231"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(f.closure("acme")["state"], "offline_backups_erased");

    // Logs: every host; a stale host blocks the phase even after proving it.
    f.prove("quiet-1", "acme", "logs", true);
    std::thread::sleep(std::time::Duration::from_millis(2300));
    for h in ["app-1", "backup-1", "backup-2", "offline-1"] {
        f.prove(h, "acme", "logs", true);
    }
    let c = f.closure("acme");
    assert_eq!(c["state"], "offline_backups_erased", "{c:#}");
    assert!(
        phase(&c, "logs")["note"]
            .as_str()
            .unwrap()
            .contains("`quiet-1` is stale"),
        "{c:#}"
    );
    f.prove("quiet-1", "acme", "logs", true);
    let c = f.closure("acme");
    assert_eq!(c["state"], "closed", "{c:#}");
    let states: Vec<&str> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "requested",
            "export_ready",
            "site_erased",
            "local_backups_erased",
            "offline_backups_erased",
            "logs_purged",
            "closed"
        ]
    );

    // The certificate verifies offline, and fails once one byte changes.
    let resp =
        f.r.client()
            .get(format!(
                "{}/api/v1/accounts/acme/closure/certificate",
                f.r.base
            ))
            .bearer_auth(&auditor)
            .send()
            .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let cert: Value = resp.json().unwrap();
    assert_eq!(cert["schema"], "vigil.erasure-certificate/v1");
    assert_eq!(
        cert["audit"]["entries"].as_array().unwrap().len(),
        8,
        "requested, the crypto-shred declaration, six transitions"
    );
    let file = dir.path().join("cert.json");
    let text = serde_json::to_string_pretty(&cert).unwrap();
    std::fs::write(&file, &text).unwrap();
    let verify = |path: &std::path::Path| {
        Command::new(binary("vigil-reporter", "vigil-reporter"))
            .args(["audit", "verify", "--certificate"])
            .arg(path)
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap()
    };
    let o = verify(&file);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let tampered = text.replacen(
        "customer via support ticket 8812",
        "customer via support ticket 8813",
        1,
    );
    assert_ne!(tampered, text);
    std::fs::write(&file, tampered).unwrap();
    let o = verify(&file);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("signature does not verify"));

    // Staff pages: the list and the closure with its phases and evidence.
    let page = |path: &str| {
        let r =
            f.r.client()
                .get(format!("{}{path}", f.r.base))
                .bearer_auth(&auditor)
                .send()
                .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let (s, list) = page("/reports/closures");
    assert_eq!(s, 200);
    assert!(
        list.contains(">acme</a>") && list.contains("st-closed") && list.contains(">beta</a>"),
        "{list}"
    );
    assert!(list.contains("st-cancelled"), "{list}");
    let (s, one) = page("/reports/closures/acme");
    assert_eq!(s, 200);
    for needle in [
        "local_backups",
        "backup-2",
        "certificate.pdf",
        "customer via support ticket 8812",
        "logs_purged",
    ] {
        assert!(
            one.contains(needle),
            "`{needle}` not on the closure page:\n{one}"
        );
    }
    assert_eq!(page("/reports/closures/nobody").0, 404);

    // The same certificate for people: a PDF naming the account, every phase's
    // hosts and the JSON's digest, with a PNG of its first page for review.
    let resp =
        f.r.client()
            .get(format!(
                "{}/api/v1/accounts/acme/closure/certificate.pdf",
                f.r.base
            ))
            .bearer_auth(&auditor)
            .send()
            .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    let pdf = workspace().join("target/brochure/erasure-certificate.pdf");
    std::fs::create_dir_all(pdf.parent().unwrap()).unwrap();
    std::fs::write(&pdf, resp.bytes().unwrap()).unwrap();
    let o = Command::new(require_tool("pdftotext", "poppler-utils"))
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(o.status.success());
    let words = String::from_utf8_lossy(&o.stdout).into_owned();
    for needle in [
        "Certificate of erasure",
        "acme",
        "customer via support ticket 8812",
        "local_backups_erased",
        "backup-2",
        "crypto_shred",
        "Signed checkpoint",
        "Verify it offline",
    ] {
        assert!(
            words.contains(needle),
            "`{needle}` not in the PDF:\n{words}"
        );
    }
    let png = Command::new(require_tool("pdftoppm", "poppler-utils"))
        .args(["-png", "-r", "60", "-f", "1", "-l", "1"])
        .arg(&pdf)
        .arg(workspace().join("target/brochure/erasure-certificate"))
        .status()
        .unwrap();
    assert!(png.success());

    // And the whole audit log, closure transitions included, still verifies.
    let v: Value =
        f.r.client()
            .get(format!("{}/api/v1/audit/verify", f.r.base))
            .bearer_auth(&auditor)
            .send()
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(v["ok"], true, "{v}");
}
