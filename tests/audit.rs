//! The audit log end to end: every ingest is logged; tampering with one row of
//! the database, or one byte of an export, is detected and the entry named;
//! inclusion proofs verify against the signed checkpoint.

use std::process::Command;

use serde_json::{json, Value};
use vigil_tests::*;

fn report(host: &str) -> Value {
    let t = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "schema": "vigil.report/v1", "report_id": uuid::Uuid::new_v4().to_string(),
        "agent": {"host": host, "version": "0.1.0"},
        "policy": {"id": "p", "version": "1", "sha256": "b".repeat(64)},
        "started_at": t, "finished_at": t,
        "controls": [{"id": "SP-1", "title": "t", "status": "pass", "checks": [{"id": "c", "type": "tls_endpoint", "status": "pass", "summary": "ok", "findings": [], "evidence": {}, "duration_ms": 1}]}],
        "summary": {"pass": 1, "fail": 0, "error": 0, "attested": 0, "skipped": 0, "waived": 0, "unknown": 0}
    })
}

fn reporter_cmd(args: &[&str]) -> std::process::Output {
    Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args(args)
        .env_remove("VIGIL_DATABASE_URL")
        .output()
        .unwrap()
}

fn sqlite(db: &std::path::Path, sql: &str) {
    let python = require_tool("python3", "python3");
    let script = format!(
        "import sqlite3; c=sqlite3.connect({:?}); c.execute({sql:?}); c.commit()",
        db.to_str().unwrap()
    );
    let st = Command::new(python).arg("-c").arg(script).status().unwrap();
    assert!(st.success());
}

/// A reporter with an admin, one agent and `n` reports; returns it, the staff token.
fn populated(dir: &std::path::Path, n: usize) -> (Reporter, String) {
    let r = Reporter::start(dir, false, None, &[]);
    let staff = r.add_user("alice", "admin");
    let token = r.enroll("web-1", 3600);
    for _ in 0..n {
        let resp = r
            .client()
            .post(format!("{}/api/v1/reports", r.base))
            .bearer_auth(&token)
            .json(&report("web-1"))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
    }
    (r, staff)
}

fn verify_api(r: &Reporter, staff: &str) -> Value {
    let resp = r
        .client()
        .get(format!("{}/api/v1/audit/verify", r.base))
        .bearer_auth(staff)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().unwrap()
}

#[test]
fn an_intact_log_verifies_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (r, staff) = populated(dir.path(), 5);
    let cp: Value = r
        .client()
        .get(format!("{}/api/v1/audit/checkpoint", r.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    // user.added, agent.enrolled, five report.ingested
    assert_eq!(cp["size"], 7);
    assert!(cp["note"]
        .as_str()
        .unwrap()
        .starts_with("vigil-reporter\n7\n"));
    let v = verify_api(&r, &staff);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["entries"], 7);

    // An inclusion proof of the third entry verifies against the checkpoint's root.
    let p: Value = r
        .client()
        .get(format!("{}/api/v1/audit/proof?seq=2", r.base))
        .bearer_auth(&staff)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(p["entry"]["kind"], "report.ingested");
    let entry: vigil_reporter::audit::Entry = serde_json::from_value(p["entry"].clone()).unwrap();
    let leaf = vigil_reporter::merkle::leaf_hash(&entry.encode());
    let proof: Vec<[u8; 32]> = p["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            hex::decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    let root: [u8; 32] = hex::decode(cp["root"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    assert!(vigil_reporter::merkle::verify_inclusion(
        &leaf, 2, 7, &proof, &root
    ));
    assert!(!vigil_reporter::merkle::verify_inclusion(
        &leaf, 3, 7, &proof, &root
    ));

    // Offline: export, verify, then change one byte.
    drop(r);
    let export = dir.path().join("audit.json");
    let o = reporter_cmd(&[
        "audit",
        "export",
        "--output",
        export.to_str().unwrap(),
        "--data",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = reporter_cmd(&["audit", "verify", "--export", export.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("audit log verified: 7 entries"));
    let text = std::fs::read_to_string(&export).unwrap();
    let tampered = text.replacen("\"actor\": \"web-1\"", "\"actor\": \"web-2\"", 1);
    assert_ne!(text, tampered);
    std::fs::write(&export, tampered).unwrap();
    let o = reporter_cmd(&["audit", "verify", "--export", export.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("entry 1 was altered"), "{err}");
    assert!(err.contains("first bad entry 1"), "{err}");
}

#[test]
fn an_altered_database_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (mut r, staff) = populated(dir.path(), 6);
    r.kill9();
    sqlite(
        &dir.path().join("vigil.db"),
        "UPDATE audit_log SET data = replace(data, 'report_id', 'report_xx') WHERE seq = 4",
    );
    let o = reporter_cmd(&["audit", "verify", "--data", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("first bad entry 4"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    r.restart();
    let v = verify_api(&r, &staff);
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_bad_seq"], 4);
}

#[test]
fn a_removed_row_is_named_even_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let (r, staff) = populated(dir.path(), 4);
    // Sign a checkpoint over all six entries, then drop the last one.
    let cp: Value = r
        .client()
        .get(format!("{}/api/v1/audit/checkpoint", r.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(cp["size"], 6);
    drop(r);
    sqlite(
        &dir.path().join("vigil.db"),
        "DELETE FROM audit_log WHERE seq = 5",
    );
    let o = reporter_cmd(&["audit", "verify", "--data", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("entries were removed") && err.contains("first bad entry 5"),
        "{err}"
    );
    let _ = staff;
}
