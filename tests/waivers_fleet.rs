//! Waivers kept by the reporter, end to end: an admin creates them through
//! `/api/v1/waivers` (validated against the reporter's policy, every change in
//! the audit log), a running agent fetches the ones for its host and applies
//! them: its failing control comes in `waived` with the waiver's id, the
//! underlying `fail` and findings kept; a waiver never hides `error`; posture
//! and the overview page list waivers in force and those expiring soon;
//! revoked, the control fails again at the next run.

use std::process::Command;

use serde_json::{json, Value};
use vigil_tests::*;

fn waiver(id: &str, control: &str, hosts: &[&str], expires_in_days: i64) -> Value {
    let today = chrono::Utc::now().date_naive();
    json!({
        "id": id, "control": control, "hosts": hosts,
        "justification": "vendor fix due next sprint",
        "approved_by": "ciso@papyrs.example",
        "approved_on": (today - chrono::Duration::days(1)).to_string(),
        "expires": (today + chrono::Duration::days(expires_in_days)).to_string(),
    })
}

fn control<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no control {id} in {report:#}"))
}

/// The newest report of `host` that ran `W-FAIL`, once `cond` holds for it.
fn wait_for_report(
    r: &Reporter,
    staff: &str,
    host: &str,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let mut found = None;
    wait_until(60, what, || {
        let Some(report) = r.newest_report(staff, host) else {
            return false;
        };
        if cond(&report) {
            found = Some(report);
            true
        } else {
            false
        }
    });
    found.unwrap()
}

#[test]
fn reporter_waivers_reach_running_agents_and_never_hide_errors() {
    let dir = tempfile::tempdir().unwrap();
    let policy = workspace().join("tests/data/waivers/policy.yaml");
    let cfg = dir.path().join("reporter.yaml");
    std::fs::write(&cfg, format!("policy: {}\n", policy.display())).unwrap();
    let data = dir.path().join("data");
    let r = Reporter::start(&data, false, None, &["--config", cfg.to_str().unwrap()]);
    let admin = r.add_user("alice", "admin");
    let auditor = r.add_user("bob", "auditor");
    let post = |who: &str, body: &Value| {
        r.client()
            .post(format!("{}/api/v1/waivers", r.base))
            .bearer_auth(who)
            .json(body)
            .send()
            .unwrap()
    };

    // Validated against the reporter's policy; only admins create.
    let bad = post(&admin, &waiver("W-9", "SP-99", &["*"], 30));
    assert_eq!(bad.status().as_u16(), 400);
    let msg = bad.text().unwrap();
    assert!(msg.contains("SP-99"), "{msg}");
    assert_eq!(
        post(&auditor, &waiver("W-1", "W-FAIL", &["web-*"], 10))
            .status()
            .as_u16(),
        403
    );
    let made = post(&admin, &waiver("W-1", "W-FAIL", &["web-*"], 10));
    assert_eq!(made.status().as_u16(), 201);
    let made: Value = made.json().unwrap();
    assert_eq!(
        (made["state"].as_str(), made["expiring_soon"].as_bool()),
        (Some("active"), Some(true))
    );
    assert_eq!(
        post(&admin, &waiver("W-1", "W-FAIL", &["web-*"], 10))
            .status()
            .as_u16(),
        409
    );
    assert_eq!(
        post(&admin, &waiver("W-2", "W-ERROR", &["*"], 60))
            .status()
            .as_u16(),
        201
    );
    // Another host's waiver does not reach web-1.
    assert_eq!(
        post(&admin, &waiver("W-3", "W-FAIL", &["db-*"], 60))
            .status()
            .as_u16(),
        201
    );

    let mut agent = DaemonAgent::with_policy("web-1", &r.base, &["app"], &policy, "");
    let o = agent.enroll(ENROLL_SECRET);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    agent.start(&[]);

    let report = wait_for_report(&r, &auditor, "web-1", "a waived report", |rep| {
        rep["controls"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["id"] == "W-FAIL"))
    });
    let fail = control(&report, "W-FAIL");
    assert_eq!(fail["status"], "waived", "{report:#}\n{}", agent.log());
    let check = &fail["checks"][0];
    assert_eq!(check["status"], "fail");
    assert_eq!(check["waived_by"], "W-1");
    assert_eq!(check["findings"][0]["code"], "expired");
    // W-2 covers W-ERROR, but a waiver never turns an error into anything else.
    let err = control(&report, "W-ERROR");
    assert_eq!(err["status"], "error", "{report:#}");
    assert!(err["checks"][0]["waived_by"].is_null());
    assert_eq!(control(&report, "W-PASS")["status"], "attested");

    // Posture keeps waived controls apart and lists the waivers in force.
    let (_, posture) = r.get_json(&auditor, "/api/v1/posture");
    let c = posture["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "W-FAIL")
        .unwrap();
    assert_eq!(c["status"], "waived", "{posture:#}");
    let ids: Vec<&str> = posture["waivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["W-1", "W-2", "W-3"]);
    assert_eq!(posture["waivers"][0]["expiring_soon"], true);
    assert_eq!(posture["waivers"][1]["expiring_soon"], false);
    let page = r
        .client()
        .get(format!("{}/", r.base))
        .bearer_auth(&auditor)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("Waivers in force") && page.contains("W-1"),
        "{page}"
    );
    assert!(page.contains("1 expires within 14 days"), "{page}");

    // Revoked: the next run fails again.
    let del = |who: &str| {
        r.client()
            .delete(format!("{}/api/v1/waivers/W-1", r.base))
            .bearer_auth(who)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(del(&auditor), 403);
    assert_eq!(del(&admin), 200);
    assert_eq!(del(&admin), 409);
    let (_, list) = r.get_json(&auditor, "/api/v1/waivers");
    assert_eq!(list["waivers"][0]["state"], "revoked", "{list:#}");
    let report = wait_for_report(
        &r,
        &auditor,
        "web-1",
        "a failing report after revocation",
        |rep| {
            rep["controls"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["id"] == "W-FAIL" && c["status"] == "fail")
            })
        },
    );
    assert!(control(&report, "W-FAIL")["checks"][0]["waived_by"].is_null());
    assert_eq!(agent.stop(), 0);

    // Every change is in the audit log.
    let export = dir.path().join("audit.json");
    let o = Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args(["audit", "export", "--data"])
        .arg(&data)
        .arg("--output")
        .arg(&export)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = std::fs::read_to_string(&export).unwrap();
    assert_eq!(log.matches("waiver.created").count(), 3, "{log}");
    assert_eq!(log.matches("waiver.revoked").count(), 1);
}
