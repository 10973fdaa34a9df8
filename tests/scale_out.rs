//! Scale-out (issue 22 item 6): two `vigil-reporter serve` processes, each
//! with its own data directory, on one real PostgreSQL database behave as one
//! reporter. Clients post to both at once (threads, as agents behind a load
//! balancer would): one audit chain that verifies from both, every report
//! stored exactly once (the same report id sent to both at once included), a
//! closure advancing through its phases exactly once with one certificate
//! while proofs arrive at both, an export uploaded through one reporter and
//! downloaded through the other byte for byte, and no answer a 5xx.

use std::process::Command;
use std::sync::Mutex;

use serde_json::{json, Value};
use vigil_tests::*;

const AGENTS: usize = 6;
const PER_AGENT: usize = 25;

/// `psql -At -c SQL` against `url`: the output, trimmed.
fn psql(url: &str, sql: &str) -> String {
    let o = Command::new("/usr/bin/psql")
        .args([url, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .unwrap_or_else(|e| {
            panic!("this test needs psql (apt-get install postgresql-client): {e}")
        });
    assert!(
        o.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn count(url: &str, sql: &str) -> usize {
    psql(url, sql)
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: not a count: {e}"))
}

/// Two reporters on the database at `url`, with `config`: the second gets
/// the first one's audit and policy keys (the key material they share) and
/// nothing else of its data directory.
fn two_reporters(dir: &std::path::Path, url: &str, config: &str) -> (Reporter, Reporter) {
    let file = dir.join("reporter.yaml");
    std::fs::write(&file, config).unwrap();
    let args = ["--config", file.to_str().unwrap()];
    let (d1, d2) = (dir.join("one"), dir.join("two"));
    let r1 = Reporter::start(&d1, false, Some(url), &args);
    for key in ["audit/ed25519.key", "policy/ed25519.key"] {
        std::fs::create_dir_all(d2.join(key).parent().unwrap()).unwrap();
        std::fs::copy(d1.join(key), d2.join(key)).unwrap();
    }
    let r2 = Reporter::start(&d2, false, Some(url), &args);
    (r1, r2)
}

/// Every status answered, to assert that none was a 5xx.
struct Statuses(Mutex<Vec<(String, u16)>>);

impl Statuses {
    fn new() -> Self {
        Statuses(Mutex::new(Vec::new()))
    }
    fn note(&self, what: &str, resp: reqwest::blocking::Response) -> (u16, Value) {
        let s = resp.status().as_u16();
        let v = resp.json().unwrap_or(Value::Null);
        self.0.lock().unwrap().push((format!("{what}: {v}"), s));
        (s, v)
    }
    fn assert_no_5xx(&self) {
        let all = self.0.lock().unwrap();
        let bad: Vec<&(String, u16)> = all.iter().filter(|(_, s)| *s >= 500).collect();
        assert!(bad.is_empty(), "{} answers were 5xx: {bad:?}", bad.len());
    }
}

fn verify_both(r1: &Reporter, r2: &Reporter, staff: &str, url: &str) -> usize {
    let entries = count(url, "SELECT COUNT(*) FROM audit_log");
    assert_eq!(
        count(url, "SELECT COALESCE(MAX(seq), -1) + 1 FROM audit_log"),
        entries,
        "the chain has gaps"
    );
    for r in [r1, r2] {
        let (s, v) = r.get_json(staff, "/api/v1/audit/verify");
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["ok"], true, "verify from {}: {v}", r.base);
        assert_eq!(v["entries"], entries, "{v}");
        let o = Command::new(binary("vigil-reporter", "vigil-reporter"))
            .args(["audit", "verify", "--data"])
            .arg(&r.data)
            .env("VIGIL_DATABASE_URL", url)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "audit verify --data {}: {}{}",
            r.data.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Quiet now: both serve the same signed checkpoint.
    let cp = |r: &Reporter| r.get_json(staff, "/api/v1/audit/checkpoint").1;
    let (c1, c2) = (cp(r1), cp(r2));
    assert_eq!(c1["size"], entries, "{c1}");
    assert_eq!(c1, c2);
    entries
}

#[test]
fn reports_sent_to_two_reporters_are_stored_once_in_one_audit_chain() {
    let pg = PgCluster::start();
    let url = pg.database("vigil_scale");
    let dir = tempfile::tempdir().unwrap();
    let (r1, r2) = two_reporters(dir.path(), &url, "{}\n");
    let reporters = [&r1, &r2];
    let staff = r1.add_user("alice", "admin");
    let seen = Statuses::new();
    // Agents enroll through either reporter, all at once.
    let tokens: Vec<(String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..AGENTS)
            .map(|i| {
                let r = reporters[i % 2];
                s.spawn(move || {
                    let host = format!("scale-{i}");
                    (host.clone(), r.enroll(&host, 3600))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let controls = [
        ("SP-1", "tls_endpoint", "pass"),
        ("SP-2", "firewall", "fail"),
    ];
    // Every report goes to both reporters at once: one thread per agent and
    // reporter, the pair racing over the same ids.
    let results: Vec<(String, u16, Option<bool>)> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (host, token) in &tokens {
            let reports: std::sync::Arc<Vec<Value>> = std::sync::Arc::new(
                (0..PER_AGENT)
                    .map(|_| report_of(host, &controls, chrono::Utc::now()))
                    .collect(),
            );
            for r in reporters {
                let (reports, seen) = (reports.clone(), &seen);
                handles.push(s.spawn(move || {
                    let client = r.client();
                    let post = format!("{}/api/v1/reports", r.base);
                    reports
                        .iter()
                        .map(|rep| {
                            let resp = client
                                .post(&post)
                                .bearer_auth(token)
                                .json(rep)
                                .send()
                                .unwrap();
                            let (status, v) = seen.note("POST /api/v1/reports", resp);
                            let id = rep["report_id"].as_str().unwrap().to_owned();
                            (id, status, v["stored"].as_bool())
                        })
                        .collect::<Vec<_>>()
                }));
            }
        }
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    seen.assert_no_5xx();
    assert_each_report_stored_once(
        &results,
        AGENTS * PER_AGENT,
        "stored once by one reporter, a duplicate for the other",
    );
    // Stored exactly once, each with exactly one audit entry, and both
    // reporters list the same reports.
    let total = AGENTS * PER_AGENT;
    assert_eq!(count(&url, "SELECT COUNT(*) FROM reports"), total);
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(DISTINCT data) FROM audit_log WHERE kind = 'report.ingested'"
        ),
        total
    );
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'report.ingested'"
        ),
        total
    );
    for (host, _) in &tokens {
        let mut a = r1.stored_report_ids(&staff, host);
        let mut b = r2.stored_report_ids(&staff, host);
        a.sort();
        b.sort();
        assert_eq!(a.len(), PER_AGENT);
        assert_eq!(a, b);
    }
    let entries = verify_both(&r1, &r2, &staff, &url);
    assert!(entries > total, "{entries}");
}

const CLOSURE_CONFIG: &str = "erasure:\n  cooling_off: 1s\n  roles: {export: [app], site: [app], local_backups: [backup], offline_backups: [offline_backup], logs: [app, backup, offline_backup]}\n";

/// A report whose `erasure` check proves `tasks`.
fn proof(host: &str, tasks: Vec<Value>) -> Value {
    let t = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "schema": "vigil.report/v1", "report_id": uuid::Uuid::new_v4().to_string(),
        "agent": {"host": host, "version": "0.1.0"},
        "policy": {"id": "papyrs-security", "version": "1", "sha256": "c".repeat(64)},
        "started_at": t, "finished_at": t,
        "controls": [{"id": "GDPR-4", "title": "erasure", "status": "pass", "checks": [{
            "id": "erasure", "type": "erasure", "status": "pass", "summary": "s",
            "findings": [], "evidence": {"tasks": tasks}, "duration_ms": 1}]}],
        "summary": {"pass": 1, "fail": 0, "error": 0, "attested": 0, "skipped": 0, "waived": 0, "unknown": 0}
    })
}

fn task(account: &str, phase: &str, host: &str) -> Value {
    json!({"account": account, "phase": phase, "done": true, "digest": format!("{host}-{phase}"), "checked": ["x"]})
}

/// 2.5 MiB and a few bytes that do not compress or repeat: three chunks.
fn archive() -> Vec<u8> {
    use sha2::Digest;
    let mut out = Vec::with_capacity(2_621_500);
    let mut i: u64 = 0;
    while out.len() < 2_621_440 + 37 {
        out.extend_from_slice(&sha2::Sha256::digest(i.to_be_bytes()));
        i += 1;
    }
    out.truncate(2_621_440 + 37);
    out
}

#[test]
fn a_closure_advances_once_and_an_export_crosses_reporters() {
    let pg = PgCluster::start();
    let url = pg.database("vigil_scale_closure");
    let dir = tempfile::tempdir().unwrap();
    let (r1, r2) = two_reporters(dir.path(), &url, CLOSURE_CONFIG);
    let reporters = [&r1, &r2];
    let admin = r1.add_user("alice", "admin");
    let seen = Statuses::new();
    let hosts = [
        ("app-1", "app"),
        ("backup-1", "backup"),
        ("offline-1", "offline_backup"),
    ];
    let tokens: std::collections::HashMap<&str, String> = hosts
        .iter()
        .enumerate()
        .map(|(i, (h, role))| (*h, reporters[i % 2].enroll_with_roles(h, 3600, &[*role])))
        .collect();
    let resp = r2
        .client()
        .post(format!("{}/api/v1/accounts/acme/closure", r2.base))
        .bearer_auth(&admin)
        .json(&json!({"requested_by": "ticket 8812", "reason": "closed by owner", "identifiers": ["u-1842"]}))
        .send()
        .unwrap();
    assert_eq!(seen.note("open closure", resp).0, 201);
    let closure = |r: &Reporter| {
        let resp = r
            .client()
            .get(format!("{}/api/v1/accounts/acme/closure", r.base))
            .bearer_auth(&admin)
            .send()
            .unwrap();
        let (s, v) = seen.note("GET closure", resp);
        assert_eq!(s, 200, "{v}");
        v
    };
    // Each proving host sends its proof to both reporters at once (two
    // reports), while staff read the closure (which advances it) on both.
    let prove_everywhere = |phase: &str, provers: &[&str], extra: Option<Value>| {
        std::thread::scope(|s| {
            for h in provers {
                for r in reporters {
                    let (seen, token, extra) = (&seen, &tokens[*h], extra.clone());
                    s.spawn(move || {
                        let mut t = task("acme", phase, h);
                        if let Some(Value::Object(m)) = extra {
                            for (k, v) in m {
                                t[k] = v;
                            }
                        }
                        let resp = r
                            .client()
                            .post(format!("{}/api/v1/reports", r.base))
                            .bearer_auth(token)
                            .json(&proof(h, vec![t]))
                            .send()
                            .unwrap();
                        assert_eq!(seen.note("POST proof", resp).0, 201);
                    });
                }
            }
            for r in reporters {
                s.spawn(move || closure(r));
            }
        });
    };
    let data = archive();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&data))
    };
    prove_everywhere(
        "export",
        &["app-1"],
        Some(json!({"archive_sha256": sha, "archive": "/srv/exports/acme-export.tar.gz"})),
    );
    assert_eq!(closure(&r1)["state"], "export_ready");
    // The archive is uploaded through both at once: stored once.
    let uploads: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = reporters
            .iter()
            .map(|r| {
                let (seen, data, sha, token) = (&seen, &data, &sha, &tokens["app-1"]);
                s.spawn(move || {
                    let resp = r
                        .client()
                        .put(format!("{}/api/v1/exports/acme", r.base))
                        .bearer_auth(token)
                        .header("x-archive-sha256", sha.as_str())
                        .body(data.clone())
                        .send()
                        .unwrap();
                    seen.note("PUT export", resp).0
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = uploads.clone();
    sorted.sort();
    assert_eq!(sorted, [200, 201], "{uploads:?}");
    // Held in the database in 1 MiB chunks, none left by the second upload,
    // nothing on either reporter's disk.
    assert_eq!(count(&url, "SELECT COUNT(*) FROM export_chunks"), 3);
    assert_eq!(
        count(
            &url,
            "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM export_chunks"
        ),
        data.len()
    );
    for r in reporters {
        assert!(!r.data.join("exports/acme").exists());
    }
    // A link made on the second reporter works through both.
    let resp = r2
        .client()
        .post(format!("{}/api/v1/accounts/acme/export/link", r2.base))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    let (s, link) = seen.note("POST link", resp);
    assert_eq!(s, 201, "{link}");
    let path = link["path"].as_str().unwrap().to_owned();
    for r in [&r1, &r2, &r1] {
        let got = r.client().get(format!("{}{path}", r.base)).send().unwrap();
        assert_eq!(got.status().as_u16(), 200);
        assert_eq!(got.headers()["x-archive-sha256"], sha.as_str());
        assert_eq!(
            got.headers()["content-length"],
            data.len().to_string().as_str()
        );
        let body = got.bytes().unwrap();
        assert!(
            body[..] == data[..],
            "the download through {} differs",
            r.base
        );
    }

    std::thread::sleep(std::time::Duration::from_millis(1200));
    prove_everywhere("site", &["app-1"], None);
    prove_everywhere("local_backups", &["backup-1"], None);
    prove_everywhere("offline_backups", &["offline-1"], None);
    prove_everywhere("logs", &["app-1", "backup-1", "offline-1"], None);
    let (c1, c2) = (closure(&r1), closure(&r2));
    assert_eq!(c1["state"], "closed", "{c1:#}");
    assert_eq!(
        closure_history_states(&c1),
        CLOSURE_STATES_IN_ORDER,
        "each phase once"
    );
    assert_eq!(c1["history"], c2["history"]);
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'closure.transition'"
        ),
        6,
        "one audit entry per transition"
    );
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'export.deleted'"
        ),
        1
    );
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'export.uploaded'"
        ),
        1
    );
    // The closure took the archive with it, from the database.
    assert_eq!(count(&url, "SELECT COUNT(*) FROM export_chunks"), 0);
    for r in reporters {
        let s = r
            .client()
            .get(format!("{}{path}", r.base))
            .send()
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(s, 404);
    }
    // One certificate: both reporters issue the same one.
    let cert = |r: &Reporter| {
        let resp = r
            .client()
            .get(format!(
                "{}/api/v1/accounts/acme/closure/certificate",
                r.base
            ))
            .bearer_auth(&admin)
            .send()
            .unwrap();
        let (s, v) = seen.note("GET certificate", resp);
        assert_eq!(s, 200, "{v}");
        v
    };
    let (a, b) = (cert(&r1), cert(&r2));
    assert_eq!(
        a["audit"]["entries"].as_array().unwrap().len(),
        7,
        "requested and six transitions"
    );
    assert_eq!(a, b);
    let file = dir.path().join("cert.json");
    std::fs::write(&file, serde_json::to_string_pretty(&a).unwrap()).unwrap();
    let o = Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args(["audit", "verify", "--certificate"])
        .arg(&file)
        .arg("--data")
        .arg(&r2.data)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    verify_both(&r1, &r2, &admin, &url);
    seen.assert_no_5xx();
}
