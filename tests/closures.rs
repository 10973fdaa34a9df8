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
        // Every host proves the logs phase here (the default is the app servers).
        "erasure:\n  cooling_off: 2s\n  offline_retention: 365d\n  roles: {export: [app], site: [app], local_backups: [backup], offline_backups: [offline_backup], logs: [\"*\"]}\n",
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
    assert_eq!(closure_history_states(&c), CLOSURE_STATES_IN_ORDER);

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

// --- issue 19 and 21 regressions ------------------------------------------------

/// A report dated `finished` proving the given task entries.
/// How many archive chunks the SQLite store at `db` holds (the real
/// `sqlite3` shell, read only).
fn export_chunks(db: &std::path::Path) -> i64 {
    let o = Command::new("sqlite3")
        .arg("-readonly")
        .arg(db)
        .arg("SELECT COUNT(*) FROM export_chunks")
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs the sqlite3 shell (apt-get install sqlite3): {e}")
        });
    assert!(
        o.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("sqlite3 said {:?}: {e}", o.stdout))
}

fn report_with(host: &str, finished: chrono::DateTime<chrono::Utc>, tasks: Vec<Value>) -> Value {
    let t = finished.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let done = tasks.iter().all(|t| t["done"] == true);
    let status = if done { "pass" } else { "fail" };
    json!({
        "schema": "vigil.report/v1", "report_id": uuid::Uuid::new_v4().to_string(),
        "agent": {"host": host, "version": "0.1.0"},
        "policy": {"id": "papyrs-security", "version": "1", "sha256": "c".repeat(64)},
        "started_at": t, "finished_at": t,
        "controls": [{"id": "GDPR-4", "title": "erasure", "status": status, "checks": [{
            "id": "erasure", "type": "erasure", "status": status, "summary": "s",
            "findings": if done { json!([]) } else { json!([{"code": "hook_failed", "severity": "high", "subject": "x", "message": "failed"}]) },
            "evidence": {"tasks": tasks}, "duration_ms": 1}]}],
        "summary": {"pass": u32::from(done), "fail": u32::from(!done), "error": 0, "attested": 0, "skipped": 0, "waived": 0, "unknown": 0}
    })
}

fn task(account: &str, phase: &str, done: bool) -> Value {
    json!({"account": account, "phase": phase, "done": done, "digest": format!("{account}-{phase}"), "checked": ["x"]})
}

/// A fleet on a fresh reporter with `config`; returns it and the agents' ids.
fn fleet(
    dir: &std::path::Path,
    config: &str,
    hosts: &[(&str, u64, &[&str])],
) -> (Fleet, std::collections::HashMap<String, String>) {
    let file = dir.join("reporter.yaml");
    std::fs::write(&file, config).unwrap();
    let r = Reporter::start(
        &dir.join("data"),
        false,
        None,
        &["--config", file.to_str().unwrap()],
    );
    let admin = r.add_user("alice", "admin");
    let mut tokens = std::collections::HashMap::new();
    let mut ids = std::collections::HashMap::new();
    for (host, interval, roles) in hosts {
        let v: Value = r
            .client()
            .post(format!("{}/api/v1/enroll", r.base))
            .json(&json!({"secret": r.secret, "host": host, "interval_secs": interval, "roles": roles}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        tokens.insert((*host).to_owned(), v["token"].as_str().unwrap().to_owned());
        // Requested roles count only once an admin approves them (issue 19).
        if !roles.is_empty() {
            r.approve_roles(host);
        }
        ids.insert(
            (*host).to_owned(),
            v["agent_id"].as_str().unwrap().to_owned(),
        );
    }
    (Fleet { r, admin, tokens }, ids)
}

impl Fleet {
    fn send(&self, host: &str, report: &Value) {
        let resp = self
            .r
            .client()
            .post(format!("{}/api/v1/reports", self.r.base))
            .bearer_auth(&self.tokens[host])
            .json(report)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap());
    }

    fn open_with(&self, account: &str, body: Value) -> (u16, Value) {
        let resp = self
            .r
            .client()
            .post(format!("{}/api/v1/accounts/{account}/closure", self.r.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
    }

    fn staff(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .r
            .client()
            .request(method, format!("{}{path}", self.r.base))
            .bearer_auth(&self.admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap();
        (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
    }

    fn upload(&self, host: &str, account: &str, bytes: &[u8]) -> u16 {
        use sha2::Digest;
        self.r
            .client()
            .put(format!("{}/api/v1/exports/{account}", self.r.base))
            .bearer_auth(&self.tokens[host])
            .header("x-archive-sha256", hex::encode(sha2::Sha256::digest(bytes)))
            .body(bytes.to_vec())
            .send()
            .unwrap()
            .status()
            .as_u16()
    }

    fn delete_exports(&self, host: &str) -> Vec<String> {
        let v: Value = self
            .r
            .client()
            .get(format!("{}/api/v1/erasures", self.r.base))
            .bearer_auth(&self.tokens[host])
            .send()
            .unwrap()
            .json()
            .unwrap();
        v["delete_exports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }
}

const OPEN: fn() -> Value = || json!({"requested_by": "customer via support ticket 8812", "reason": "account closed by owner", "identifiers": ["u-1842"]});

#[test]
fn a_revoked_host_frozen_into_a_phase_cannot_be_skipped() {
    // Regression (issue 19 item 1): revoking (or re-enrolling) `backup-2`
    // dropped it from the hosts that must prove `local_backups`, so
    // `backup-1`'s proof alone erased the phase.
    let dir = tempfile::tempdir().unwrap();
    let (f, ids) = fleet(
        dir.path(),
        "erasure:\n  cooling_off: 1s\n",
        &[
            ("app-1", 3600, &["app"]),
            ("backup-1", 3600, &["backup"]),
            ("backup-2", 3600, &["backup"]),
        ],
    );
    assert_eq!(f.open_with("acme", OPEN()).0, 201);
    f.prove("app-1", "acme", "export", true);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    f.prove("app-1", "acme", "site", true);
    assert_eq!(f.closure("acme")["state"], "site_erased");
    let (s, _) = f.staff(
        reqwest::Method::DELETE,
        &format!("/api/v1/agents/{}", ids["backup-2"]),
        None,
    );
    assert_eq!(s, 200);
    f.prove("backup-1", "acme", "local_backups", true);
    let c = f.closure("acme");
    assert_eq!(c["state"], "site_erased", "{c:#}");
    let p = phase(&c, "local_backups");
    assert!(
        p["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "backup-2"),
        "{p}"
    );
    assert!(p["note"].as_str().unwrap().contains("backup-2"), "{p}");
}

#[test]
fn only_the_pending_phase_is_proved_and_never_by_a_future_dated_report() {
    // Regression (issue 19 item 7): a report dated ~50 min ahead proved a
    // phase that was not yet pending (its agent-side date was later than
    // the phase's start), and results for any phase were recorded.
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = fleet(
        dir.path(),
        "erasure:\n  cooling_off: 1s\n",
        &[("app-1", 3600, &["app"]), ("backup-1", 3600, &["backup"])],
    );
    assert_eq!(f.open_with("acme", OPEN()).0, 201);
    let ahead = chrono::Utc::now() + chrono::Duration::minutes(50);
    // Sent while `export` is pending: neither the future-dated export nor
    // the early site proof may count.
    f.send(
        "app-1",
        &report_with("app-1", ahead, vec![task("acme", "export", true)]),
    );
    assert_eq!(f.closure("acme")["state"], "requested");
    f.send(
        "app-1",
        &report_with(
            "app-1",
            chrono::Utc::now(),
            vec![task("acme", "site", true)],
        ),
    );
    // A host whose roles do not prove export cannot prove it.
    f.send(
        "backup-1",
        &report_with(
            "backup-1",
            chrono::Utc::now(),
            vec![task("acme", "export", true)],
        ),
    );
    assert_eq!(f.closure("acme")["state"], "requested");
    f.prove("app-1", "acme", "export", true);
    let c = f.closure("acme");
    assert_eq!(c["state"], "export_ready");
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let c = f.closure("acme");
    assert_eq!(
        c["state"], "export_ready",
        "an early site proof counted: {c:#}"
    );
    assert!(
        phase(&c, "site")["evidence"].as_array().unwrap().is_empty(),
        "{c:#}"
    );
}

#[test]
fn a_report_cannot_flood_the_erasure_results() {
    // Regression (issue 19 item 18): the erasure results of one report were unbounded.
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = fleet(
        dir.path(),
        "erasure:\n  cooling_off: 1s\n",
        &[("app-1", 3600, &["app"])],
    );
    assert_eq!(f.open_with("acme", OPEN()).0, 201);
    let mut tasks: Vec<Value> = (0..64)
        .map(|i| task(&format!("other{i}"), "export", true))
        .collect();
    tasks.push(task("acme", "export", true));
    f.send("app-1", &report_with("app-1", chrono::Utc::now(), tasks));
    assert_eq!(f.closure("acme")["state"], "requested");
}

#[test]
fn identifiers_and_account_ids_are_checked_and_the_approver_named() {
    // Regression (issue 19 items 17 and 18): `sshd` was accepted as an
    // identifier (the purge would blank every sshd line), `..` as an account.
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = fleet(dir.path(), "erasure:\n  cooling_off: 1s\n", &[]);
    let (s, v) = f.open_with(
        "acme",
        json!({"requested_by": "x", "reason": "y", "identifiers": ["sshd"]}),
    );
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("sshd"), "{v}");
    // (`.` and `..` never reach the route through a normalising client; the
    // unit test `path_like_account_ids_are_refused` covers them.)
    for bad in ["%2E%2E", "%2E"] {
        let (s, v) = f.open_with(bad, OPEN());
        assert!(s == 400 || s == 404, "`{bad}`: {s} {v}");
    }
    for bad in [".hidden", "-rf", "x..%2F..%2Fetc"] {
        let (s, v) = f.open_with(bad, OPEN());
        assert_eq!(s, 400, "`{bad}`: {v}");
    }
    let (s, c) = f.open_with("acme", OPEN());
    assert_eq!(s, 201);
    assert_eq!(c["approved_by"], "alice");
    assert!(!c["due_by"].as_str().unwrap().is_empty());
    assert_eq!(c["overdue"], false);
}

#[test]
fn the_offline_phase_never_advances_on_time_alone() {
    // Regression (issue 21): past `offline_retention` the offline phase
    // closed without any agent proving the data gone.
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = fleet(
        dir.path(),
        "erasure:\n  cooling_off: 1s\n  offline_retention: 1s\n  deadline: 1s\n",
        &[
            ("app-1", 3600, &["app"]),
            ("backup-1", 3600, &["backup"]),
            ("offline-1", 3600, &["offline_backup"]),
        ],
    );
    assert_eq!(f.open_with("acme", OPEN()).0, 201);
    f.prove("app-1", "acme", "export", true);
    std::thread::sleep(std::time::Duration::from_millis(2200));
    f.prove("app-1", "acme", "site", true);
    f.prove("backup-1", "acme", "local_backups", true);
    let c = f.closure("acme");
    assert_eq!(c["state"], "local_backups_erased", "{c:#}");
    let p = phase(&c, "offline_backups");
    assert_eq!(p["state"], "waiting");
    assert!(p["note"].as_str().unwrap().contains("offline-1"), "{p}");
    // Deadlines: 1 s after the cooling-off, the closure is overdue.
    assert_eq!(c["overdue"], true, "{c:#}");
    f.prove("offline-1", "acme", "offline_backups", true);
    assert_eq!(f.closure("acme")["state"], "offline_backups_erased");
}

#[test]
fn a_reopened_closure_certifies_with_its_deletion_runs_and_leaves_no_export() {
    // Regressions: a closure cancelled and reopened could not get a
    // verifiable certificate (issue 19 item 18); the certificate showed the
    // verification run, not the run that deleted (issue 21); the export
    // outlived the closure (issue 19 item 6).
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = fleet(
        dir.path(),
        "erasure:\n  cooling_off: 1s\n",
        &[
            ("app-1", 3600, &["app"]),
            ("backup-1", 3600, &["backup"]),
            ("offline-1", 3600, &["offline_backup"]),
        ],
    );
    assert_eq!(f.open_with("acme", OPEN()).0, 201);
    let (s, _) = f.staff(
        reqwest::Method::DELETE,
        "/api/v1/accounts/acme/closure",
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(f.open_with("acme", OPEN()).0, 201);

    // Export: the proof names the archive; the upload and the link follow it.
    let archive = b"not really a tarball, but hashed all the same".to_vec();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&archive))
    };
    let mut t = task("acme", "export", true);
    t["archive_sha256"] = json!(sha);
    t["archive"] = json!("/srv/exports/acme-export.tar.gz");
    f.send("app-1", &report_with("app-1", chrono::Utc::now(), vec![t]));
    assert_eq!(f.closure("acme")["state"], "export_ready");
    assert_eq!(f.upload("app-1", "acme", &archive), 201);
    let (s, link) = f.staff(
        reqwest::Method::POST,
        "/api/v1/accounts/acme/export/link",
        None,
    );
    assert_eq!(s, 201, "{link}");
    assert_eq!(link["sha256"], sha.as_str());
    let download = |path: &str| {
        f.r.client()
            .get(format!("{}{path}", f.r.base))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let path = link["path"].as_str().unwrap().to_owned();
    assert_eq!(download(&path), 200);
    // The archive lives in the database (issue 22 item 6), not on this
    // reporter's disk: any reporter sharing the database serves it.
    let db = dir.path().join("data/vigil.db");
    assert!(!dir.path().join("data/exports/acme").exists());
    assert_eq!(export_chunks(&db), 1);

    std::thread::sleep(std::time::Duration::from_millis(1200));
    // Site: a run that deleted but could not verify, then a verifying run.
    let mut deleting = task("acme", "site", false);
    deleting["actions"] =
        json!([{"what": "remove /srv/papyrs/sites/acme", "ok": true, "detail": "214 removed"}]);
    deleting["checked"] = json!([
        "remove /srv/papyrs/sites/acme: ok",
        "sql: not verified: database down"
    ]);
    f.send(
        "app-1",
        &report_with("app-1", chrono::Utc::now(), vec![deleting]),
    );
    assert_eq!(f.closure("acme")["state"], "blocked");
    let mut verifying = task("acme", "site", true);
    verifying["actions"] =
        json!([{"what": "remove /srv/papyrs/sites/acme", "ok": true, "detail": "0 removed"}]);
    f.send(
        "app-1",
        &report_with("app-1", chrono::Utc::now(), vec![verifying]),
    );
    assert_eq!(f.closure("acme")["state"], "site_erased");
    f.prove("backup-1", "acme", "local_backups", true);
    f.prove("offline-1", "acme", "offline_backups", true);
    for h in ["app-1", "backup-1", "offline-1"] {
        f.prove(h, "acme", "logs", true);
    }
    let c = f.closure("acme");
    assert_eq!(c["state"], "closed", "{c:#}");

    // Nothing of the export is left, and nothing new is accepted.
    assert_eq!(
        export_chunks(&db),
        0,
        "the export archive outlived the closure"
    );
    assert_eq!(download(&path), 404);
    assert_eq!(f.upload("app-1", "acme", &archive), 404);
    let (s, _) = f.staff(
        reqwest::Method::POST,
        "/api/v1/accounts/acme/export/link",
        None,
    );
    assert_eq!(s, 410);
    assert_eq!(f.delete_exports("app-1"), ["acme"]);
    assert!(f.delete_exports("backup-1").is_empty());

    let (s, cert) = f.staff(
        reqwest::Method::GET,
        "/api/v1/accounts/acme/closure/certificate",
        None,
    );
    assert_eq!(s, 200);
    let site = cert["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["to"] == "site_erased")
        .unwrap();
    let runs = site["evidence"]["hosts"][0]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{site:#}");
    assert_eq!(runs[0]["actions"][0]["detail"], "214 removed", "{site:#}");
    let file = dir.path().join("cert.json");
    std::fs::write(&file, serde_json::to_string(&cert).unwrap()).unwrap();
    let o = Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args([
            "audit",
            "verify",
            "--public-key",
            cert["audit"]["public_key"].as_str().unwrap(),
        ])
        .arg("--certificate")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn an_export_on_request_is_proved_uploaded_linked_and_deleted_after_its_validity() {
    // Issue 21: customers can get their export at any time, outside a closure.
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = fleet(
        dir.path(),
        "erasure:\n  cooling_off: 1s\n",
        &[("app-1", 3600, &["app"]), ("backup-1", 3600, &["backup"])],
    );
    let (s, v) = f.staff(
        reqwest::Method::POST,
        "/api/v1/accounts/beta/export",
        Some(json!({"requested_by": "owner, ticket 9001", "valid_for": "3s"})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "pending");
    assert_eq!(f.tasks("app-1"), [("beta".to_owned(), "export".to_owned())]);
    assert!(f.tasks("backup-1").is_empty());
    // No link before a proof.
    assert_eq!(
        f.staff(
            reqwest::Method::POST,
            "/api/v1/accounts/beta/export/link",
            None
        )
        .0,
        409
    );
    let archive = b"beta's export".to_vec();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&archive))
    };
    let mut t = task("beta", "export", true);
    t["archive_sha256"] = json!(sha);
    f.send("app-1", &report_with("app-1", chrono::Utc::now(), vec![t]));
    assert!(
        f.tasks("app-1").is_empty(),
        "the export is proved: no more task"
    );
    assert_eq!(f.upload("app-1", "beta", &archive), 201);
    let (_, v) = f.staff(reqwest::Method::GET, "/api/v1/accounts/beta/export", None);
    assert_eq!(v["state"], "ready", "{v}");
    let (s, link) = f.staff(
        reqwest::Method::POST,
        "/api/v1/accounts/beta/export/link",
        None,
    );
    assert_eq!(s, 201, "{link}");
    assert_eq!(link["sha256"], sha.as_str());
    let url = format!("{}{}", f.r.base, link["path"].as_str().unwrap());
    let got = f.r.client().get(&url).send().unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.bytes().unwrap().to_vec(), archive);
    // Past its validity the archive, its rows and links are deleted (the
    // reporter sweeps every 10 s) and the app host is told to delete its copy.
    let db = dir.path().join("data/vigil.db");
    assert_eq!(export_chunks(&db), 1);
    wait_until(20, "the expired export to be deleted", || {
        export_chunks(&db) == 0
    });
    assert_ne!(
        f.r.client().get(&url).send().unwrap().status().as_u16(),
        200
    );
    assert_eq!(f.delete_exports("app-1"), ["beta"]);
    assert_eq!(f.upload("app-1", "beta", &archive), 404);
    let (_, v) = f.staff(reqwest::Method::GET, "/api/v1/accounts/beta/export", None);
    assert_eq!(v["state"], "ended", "{v}");
    let (_, verify) = f.staff(reqwest::Method::GET, "/api/v1/audit/verify", None);
    assert_eq!(verify["ok"], true, "{verify}");
}
