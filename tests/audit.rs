//! The audit log end to end: every ingest is logged; tampering with one row of
//! the database, or one byte of an export, is detected and the entry named;
//! inclusion proofs verify against the signed checkpoint.

use std::process::Command;

use serde_json::{json, Value};
use vigil_tests::*;

fn report(host: &str) -> Value {
    report_of(
        host,
        &[("SP-1", "tls_endpoint", "pass")],
        chrono::Utc::now(),
    )
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
    let data = dir.path().to_str().unwrap();
    let o = reporter_cmd(&[
        "audit",
        "verify",
        "--export",
        export.to_str().unwrap(),
        "--data",
        data,
    ]);
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
    let o = reporter_cmd(&[
        "audit",
        "verify",
        "--export",
        export.to_str().unwrap(),
        "--data",
        data,
    ]);
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

/// `vigil-reporter ARGS` run in an empty directory (no `./vigil-data` to
/// find a key in).
fn reporter_cmd_elsewhere(args: &[&str]) -> std::process::Output {
    let cwd = tempfile::tempdir().unwrap();
    Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args(args)
        .current_dir(cwd.path())
        .env_remove("VIGIL_DATABASE_URL")
        .output()
        .unwrap()
}

/// Regression (issue 19, item 4): deleting the newest entries and the
/// checkpoints covering them left `audit verify` clean and the reporter
/// appending on top. Checkpoints are now witnessed in a file beside the
/// database: verification fails and the reporter refuses to start.
#[test]
fn a_tail_cut_with_its_checkpoints_fails_against_the_witness() {
    let dir = tempfile::tempdir().unwrap();
    let (mut r, _staff) = populated(dir.path(), 4);
    let cp: Value = r
        .client()
        .get(format!("{}/api/v1/audit/checkpoint", r.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(cp["size"], 6);
    let witness = dir.path().join("audit/witnessed-checkpoints.jsonl");
    let text = std::fs::read_to_string(&witness).unwrap();
    assert!(
        text.lines().last().unwrap().contains("\"size\":6"),
        "{text}"
    );
    r.kill9();
    let data = dir.path().to_str().unwrap();
    let o = reporter_cmd(&["audit", "verify", "--data", data]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let db = dir.path().join("vigil.db");
    sqlite(&db, "DELETE FROM audit_log WHERE seq >= 4");
    sqlite(&db, "DELETE FROM audit_checkpoints WHERE size > 4");
    let o = reporter_cmd(&["audit", "verify", "--data", data]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("checkpoint 6 was witnessed") && err.contains("first bad entry 4"),
        "{err}"
    );
    // The reporter does not append on top of the cut log.
    let o = Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args(["serve", "--plain-http", "--listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .args(["--data", data])
        .env_remove("VIGIL_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("entries were removed"),
        "{}",
        stderr(&o)
    );
}

/// A certificate signed by another key (here: self-consistent under the key
/// it carries), written as the reporter would.
fn forged_certificate(dir: &std::path::Path) -> Value {
    use vigil_reporter::{audit, merkle};
    let key_path = dir.join("mallory.key");
    let log = audit::AuditLog::load_or_create(&key_path, "vigil-reporter").unwrap();
    let key = audit::load_or_create_key(&key_path, "audit").unwrap();
    let entries: Vec<audit::Entry> = vigil_reporter::closures::STATES
        .iter()
        .skip(1)
        .enumerate()
        .map(|(seq, to)| {
            log.entry(
                seq as i64,
                "closure.transition",
                "mallory",
                json!({"account": "acme", "to": to}),
            )
        })
        .collect();
    let leaves: Vec<merkle::Hash> = entries
        .iter()
        .map(|e| merkle::leaf_hash(&e.encode()))
        .collect();
    let root = merkle::root(&leaves);
    let items: Vec<Value> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let proof: Vec<String> = merkle::inclusion_proof(i, &leaves)
                .iter()
                .map(hex::encode)
                .collect();
            json!({"entry": e, "proof": proof})
        })
        .collect();
    let mut cert = json!({
        "schema": "vigil.erasure-certificate/v1", "account": "acme",
        "closed_at": "2026-12-01T00:00:00Z",
        "audit": {"origin": "vigil-reporter", "public_key": log.public_key_b64(),
                  "checkpoint": audit::sign_checkpoint(&key, "vigil-reporter", leaves.len() as i64, &root),
                  "entries": items},
    });
    let sig = log.sign(audit::canonical_json(&cert).as_bytes());
    cert["signature"] = Value::String(sig);
    cert
}

/// Regression (issue 19, item 5): `audit verify --certificate` trusted the
/// public key the file carried, so a certificate made with any key exited 0.
/// It is now checked against the reporter's key only, and refused when no
/// such key is given.
#[test]
fn a_forged_certificate_does_not_verify_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = populated(dir.path(), 0);
    drop(r);
    let file = dir.path().join("forged.json");
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(&forged_certificate(dir.path())).unwrap(),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let data = dir.path().join("data-of-reporter");
    std::fs::create_dir_all(&data).unwrap();
    // Against the reporter's key (its data directory, or printed by `audit key`).
    let o = reporter_cmd(&[
        "audit",
        "verify",
        "--certificate",
        f,
        "--data",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("signature does not verify"),
        "{}",
        stderr(&o)
    );
    let o = reporter_cmd(&["audit", "key", "--data", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let key = stdout(&o).trim().to_owned();
    assert_eq!(key.len(), 44, "{key}");
    let o = reporter_cmd_elsewhere(&["audit", "verify", "--certificate", f, "--public-key", &key]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // No key of the reporter's at hand: refused, not checked with the file's.
    let o = reporter_cmd_elsewhere(&["audit", "verify", "--certificate", f]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no audit key"), "{}", stderr(&o));
    // The same for an export.
    let export = dir.path().join("audit.json");
    let o = reporter_cmd(&[
        "audit",
        "export",
        "--output",
        export.to_str().unwrap(),
        "--data",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = reporter_cmd_elsewhere(&["audit", "verify", "--export", export.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = reporter_cmd_elsewhere(&[
        "audit",
        "verify",
        "--export",
        export.to_str().unwrap(),
        "--public-key",
        &key,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

fn waiver(id: &str) -> Value {
    json!({"id": id, "control": "SP-6", "hosts": ["legacy-*"], "justification": "vendor kernel",
           "approved_by": "ciso@example.test", "approved_on": "2026-11-20", "expires": "2099-01-31"})
}

/// Regression (issue 19, item 15): a waiver and its audit entry were two
/// transactions, so a failed audit append left a waiver in force with no
/// entry. A trigger makes the append fail: nothing of the change remains.
#[test]
fn a_waiver_change_commits_with_its_audit_entry_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let (r, staff) = populated(dir.path(), 0);
    let db = dir.path().join("vigil.db");
    let c = r.client();
    let post = |id: &str| {
        c.post(format!("{}/api/v1/waivers", r.base))
            .bearer_auth(&staff)
            .json(&waiver(id))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let waivers = || {
        let (s, v) = r.get_json(&staff, "/api/v1/waivers");
        assert_eq!(s, 200);
        v["waivers"].as_array().unwrap().clone()
    };
    sqlite(&db, "CREATE TRIGGER refuse_waiver_entries BEFORE INSERT ON audit_log WHEN NEW.kind LIKE 'waiver.%' BEGIN SELECT RAISE(ABORT, 'refused by test'); END");
    assert_eq!(post("W-1"), 500);
    assert!(
        waivers().is_empty(),
        "a waiver without its audit entry: {:?}",
        waivers()
    );
    sqlite(&db, "DROP TRIGGER refuse_waiver_entries");
    assert_eq!(post("W-1"), 201);
    sqlite(&db, "CREATE TRIGGER refuse_waiver_entries BEFORE INSERT ON audit_log WHEN NEW.kind LIKE 'waiver.%' BEGIN SELECT RAISE(ABORT, 'refused by test'); END");
    let del = |id: &str| {
        c.delete(format!("{}/api/v1/waivers/{id}", r.base))
            .bearer_auth(&staff)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(del("W-1"), 500);
    assert_eq!(
        waivers()[0]["state"],
        "active",
        "revoked without its audit entry"
    );
    sqlite(&db, "DROP TRIGGER refuse_waiver_entries");
    assert_eq!(del("W-1"), 200);
    assert_eq!(del("W-1"), 409);
    assert_eq!(del("W-404"), 404);
    assert_eq!(waivers()[0]["state"], "revoked");
    assert_eq!(verify_api(&r, &staff)["ok"], true);
}

/// Regression (issue 22, item 6): two reporters on one PostgreSQL database,
/// each with its own audit key, both signed the shared log, which then
/// failed verification from both. The second now refuses to start; with the
/// first one's key it starts and the log verifies from both.
#[test]
fn a_second_reporter_with_another_audit_key_refuses_to_start() {
    let pg = PgCluster::start();
    let url = pg.database("vigil_two_keys");
    let d1 = tempfile::tempdir().unwrap();
    let r1 = Reporter::start(d1.path(), false, Some(&url), &[]);
    let staff = r1.add_user("alice", "admin");
    let token = r1.enroll("web-1", 3600);
    let d2 = tempfile::tempdir().unwrap();
    let o = Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args(["serve", "--plain-http", "--listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--data")
        .arg(d2.path())
        .env("VIGIL_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("same `audit_key`"), "{}", stderr(&o));
    std::fs::copy(
        d1.path().join("audit/ed25519.key"),
        d2.path().join("audit/ed25519.key"),
    )
    .unwrap();
    let r2 = Reporter::start(d2.path(), false, Some(&url), &[]);
    for (r, n) in [(&r1, 3), (&r2, 3)] {
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
    }
    for r in [&r1, &r2] {
        let v = verify_api(r, &staff);
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["entries"], 8);
    }
}
