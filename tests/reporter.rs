//! The reporter end to end, on SQLite and on a real PostgreSQL: enrollment,
//! ingest (idempotent, strict, authenticated), posture over time and
//! staleness, staff authentication, the OpenAPI document, TLS, and crashes
//! (`kill -9`) in the middle of a stream of reports.

use std::collections::HashSet;

use serde_json::{json, Value};
use vigil_tests::*;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn post_report(r: &Reporter, token: &str, body: &Value) -> (u16, Value) {
    let resp = r
        .client()
        .post(format!("{}/api/v1/reports", r.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// Entries of the audit log, which must verify.
fn audit_entries(r: &Reporter, staff: &str) -> usize {
    let (s, v) = r.get_json(staff, "/api/v1/audit/verify");
    assert_eq!(s, 200);
    assert_eq!(v["ok"], true, "{v}");
    v["entries"].as_u64().unwrap() as usize
}

fn stored_count(r: &Reporter, staff: &str) -> usize {
    let (s, v) = r.get_json(staff, "/api/v1/reports?limit=1000");
    assert_eq!(s, 200, "{v}");
    v["reports"].as_array().unwrap().len()
}

/// The whole API contract against one reporter.
fn api_contract(r: &Reporter) {
    let c = r.client();
    let admin = r.add_user("alice", "admin");
    let auditor = r.add_user("bob", "auditor");
    assert!(admin.starts_with("vgs_"));

    // Enrollment: wrong secret, bad host, then three agents.
    let resp = c
        .post(format!("{}/api/v1/enroll", r.base))
        .json(&json!({"secret": "nope", "host": "web-1"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = c
        .post(format!("{}/api/v1/enroll", r.base))
        .json(&json!({"secret": r.secret, "host": "../etc"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let web1 = r.enroll("web-1", 3600);
    let web2 = r.enroll("web-2", 3600);
    let db1 = r.enroll("db-1", 3600);
    assert!(web1.starts_with("vgl_") && web1 != web2);

    // Ingest, then the same report again: stored once, acknowledged twice.
    let rep = report_of(
        "web-1",
        &[
            ("SP-1", "tls_endpoint", "pass"),
            ("SP-9", "attestation", "pass"),
        ],
        now(),
    );
    let (s, v) = post_report(r, &web1, &rep);
    assert_eq!((s, v["stored"].as_bool()), (201, Some(true)), "{v}");
    let (s, v) = post_report(r, &web1, &rep);
    assert_eq!((s, v["stored"].as_bool()), (200, Some(false)), "{v}");
    let (s, _) = post_report(
        r,
        &web2,
        &report_of(
            "web-2",
            &[
                ("SP-1", "tls_endpoint", "fail"),
                ("SP-9", "attestation", "pass"),
            ],
            now(),
        ),
    );
    assert_eq!(s, 201);
    let (s, _) = post_report(
        r,
        &db1,
        &report_of(
            "db-1",
            &[
                ("SP-1", "tls_endpoint", "error"),
                ("SP-9", "attestation", "pass"),
            ],
            now(),
        ),
    );
    assert_eq!(s, 201);
    assert_eq!(stored_count(r, &admin), 3);

    // Refused, and nothing stored: forged token, another host's report, the
    // same id from another host, oversized body, malformed JSON, lying summary.
    let forged = format!("vgl_{}_{}", "0123456789abcdef", "A".repeat(43));
    let (s, v) = post_report(
        r,
        &forged,
        &report_of("web-1", &[("SP-1", "tls_endpoint", "pass")], now()),
    );
    assert_eq!((s, v["re_enroll"].as_bool()), (401, Some(true)), "{v}");
    let (s, v) = post_report(
        r,
        &web1,
        &report_of("web-2", &[("SP-1", "tls_endpoint", "pass")], now()),
    );
    assert_eq!(s, 403, "{v}");
    let mut stolen = rep.clone();
    stolen["agent"]["host"] = json!("web-2");
    let (s, _) = post_report(r, &web2, &stolen);
    assert_eq!(s, 409);
    let mut huge = report_of("web-1", &[("SP-1", "tls_endpoint", "pass")], now());
    huge["controls"][0]["checks"][0]["summary"] = json!("x".repeat(5 * 1024 * 1024));
    let (s, _) = post_report(r, &web1, &huge);
    assert_eq!(s, 413);
    let resp = c
        .post(format!("{}/api/v1/reports", r.base))
        .bearer_auth(&web1)
        .header("content-type", "application/json")
        .body("{\"schema\": ")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let mut lying = report_of("web-1", &[("SP-1", "tls_endpoint", "fail")], now());
    lying["controls"][0]["status"] = json!("pass");
    let (s, v) = post_report(r, &web1, &lying);
    assert_eq!(s, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("its checks make it `fail`"),
        "{v}"
    );
    assert_eq!(stored_count(r, &admin), 3, "a refused report was stored");

    // Posture across the fleet.
    let (s, p) = r.get_json(&auditor, "/api/v1/posture");
    assert_eq!(s, 200);
    let sp1 = p["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "SP-1")
        .unwrap();
    assert_eq!(sp1["status"], "fail");
    assert_eq!(sp1["hosts_failing"], json!(["web-2"]));
    assert_eq!(sp1["hosts_error"], json!(["db-1"]));
    assert!(sp1["last_verified"].is_string());
    let sp9 = p["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "SP-9")
        .unwrap();
    assert_eq!(sp9["status"], "attested");
    assert_eq!(sp9["counts"]["attested"], 3);

    // A newer report changes the posture; the old posture can still be asked for.
    let before = now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (s, _) = post_report(
        r,
        &web2,
        &report_of(
            "web-2",
            &[
                ("SP-1", "tls_endpoint", "pass"),
                ("SP-9", "attestation", "pass"),
            ],
            now(),
        ),
    );
    assert_eq!(s, 201);
    let (_, p) = r.get_json(&auditor, "/api/v1/posture");
    let sp1 = p["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "SP-1")
        .unwrap();
    assert_eq!(sp1["status"], "error", "web-2 recovered; db-1 still errors");
    // `?at=` reads the daily roll-ups (day resolution): the posture at the
    // end of the UTC day holding `at`, today's as of now, so the sub-second
    // `before` already sees web-2's recovery; the day before saw nothing.
    let at_of = |t: chrono::DateTime<chrono::Utc>| {
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .replace('+', "%2B")
    };
    let (s, p) = r.get_json(&auditor, &format!("/api/v1/posture?at={}", at_of(before)));
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["resolution"], "day");
    let sp1 = p["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "SP-1")
        .unwrap();
    assert_eq!(sp1["status"], "error", "today's roll-up: {p}");
    assert_eq!(sp1["counts"], json!({"pass": 2, "error": 1}), "{p}");
    let (s, p) = r.get_json(
        &auditor,
        &format!(
            "/api/v1/posture?at={}",
            at_of(before - chrono::Duration::days(1))
        ),
    );
    assert_eq!(s, 200, "{p}");
    assert!(
        p["controls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["counts"] == json!({}) && c["status"] == "unknown"),
        "posture in the past, before any report: {p}"
    );
    assert!(p["score"].is_null(), "no result known that day: {p}");
    let (s, _) = r.get_json(&auditor, "/api/v1/posture?at=yesterday");
    assert_eq!(s, 400);

    // Hosts and reports.
    let (s, h) = r.get_json(&auditor, "/api/v1/hosts");
    assert_eq!(s, 200);
    let names: Vec<&str> = h["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db-1", "web-1", "web-2"]);
    let (s, one) = r.get_json(&auditor, "/api/v1/hosts/web-2");
    assert_eq!(s, 200);
    assert_eq!(one["recent_reports"].as_array().unwrap().len(), 2);
    assert_eq!(r.get_json(&auditor, "/api/v1/hosts/nope").0, 404);
    let (_, list) = r.get_json(&auditor, "/api/v1/reports?host=web-2&limit=1");
    let reports = list["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["summary"]["pass"], 1);
    let (s, full) = r.get_json(
        &auditor,
        &format!("/api/v1/reports/{}", rep["report_id"].as_str().unwrap()),
    );
    assert_eq!(s, 200);
    assert_eq!(full, rep);

    // Staff routes need staff; revoking needs an admin; a revoked agent is told to re-enroll.
    assert_eq!(
        r.get_json(&web1, "/api/v1/posture").0,
        401,
        "an agent token is not a staff token"
    );
    assert_eq!(
        c.get(format!("{}/api/v1/posture", r.base))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let agent_id = h["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "db-1")
        .unwrap()["agent_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let del = |tok: &str| {
        c.delete(format!("{}/api/v1/agents/{agent_id}", r.base))
            .bearer_auth(tok)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(del(&auditor), 403);
    assert_eq!(del(&admin), 200);
    let (s, v) = post_report(
        r,
        &db1,
        &report_of("db-1", &[("SP-1", "tls_endpoint", "pass")], now()),
    );
    assert_eq!((s, v["re_enroll"].as_bool()), (401, Some(true)));
    // Enrolling again gives a working token.
    let db1b = r.enroll("db-1", 3600);
    assert_eq!(
        post_report(
            r,
            &db1b,
            &report_of("db-1", &[("SP-1", "tls_endpoint", "pass")], now())
        )
        .0,
        201
    );
}

#[test]
fn api_contract_on_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let r = Reporter::start(data.path(), false, None, &[]);
    api_contract(&r);
    assert!(data.path().join("vigil.db").exists());
}

#[test]
fn api_contract_on_postgres_with_two_reporters_sharing_it() {
    let pg = PgCluster::start();
    let url = pg.database("vigil_api");
    let data = tempfile::tempdir().unwrap();
    let r = Reporter::start(data.path(), false, Some(&url), &[]);
    api_contract(&r);
    // A second instance on the same database sees the same fleet; it holds
    // the same audit key (a foreign one is refused: tests/audit.rs).
    let data2 = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data2.path().join("audit")).unwrap();
    std::fs::copy(
        data.path().join("audit/ed25519.key"),
        data2.path().join("audit/ed25519.key"),
    )
    .unwrap();
    let r2 = Reporter::start(data2.path(), false, Some(&url), &[]);
    let staff = r2.add_user("carol", "auditor");
    let (s, h) = r2.get_json(&staff, "/api/v1/hosts");
    assert_eq!(s, 200);
    assert_eq!(h["hosts"].as_array().unwrap().len(), 3);
    let token = r2.enroll("web-9", 60);
    assert_eq!(
        post_report(
            &r,
            &token,
            &report_of("web-9", &[("SP-1", "tls_endpoint", "pass")], now())
        )
        .0,
        201
    );
}

#[test]
fn silent_hosts_become_stale_and_their_controls_unknown() {
    let data = tempfile::tempdir().unwrap();
    let r = Reporter::start(data.path(), false, None, &[]);
    let staff = r.add_user("alice", "auditor");
    let quick = r.enroll("quick-1", 1);
    let slow = r.enroll("slow-1", 3600);
    assert_eq!(
        post_report(
            &r,
            &quick,
            &report_of("quick-1", &[("SP-5", "firewall", "pass")], now())
        )
        .0,
        201
    );
    assert_eq!(
        post_report(
            &r,
            &slow,
            &report_of("slow-1", &[("SP-5", "firewall", "pass")], now())
        )
        .0,
        201
    );
    let (_, p) = r.get_json(&staff, "/api/v1/posture");
    assert_eq!(p["controls"][0]["status"], "pass");
    // Twice the 1 s schedule passes with no report from quick-1.
    std::thread::sleep(std::time::Duration::from_millis(2300));
    let (_, p) = r.get_json(&staff, "/api/v1/posture");
    assert_eq!(p["controls"][0]["status"], "unknown");
    assert_eq!(p["controls"][0]["hosts_unknown"], json!(["quick-1"]));
    let hosts = p["hosts"].as_array().unwrap();
    assert_eq!(
        hosts.iter().find(|h| h["host"] == "quick-1").unwrap()["stale"],
        true
    );
    assert_eq!(
        hosts.iter().find(|h| h["host"] == "slow-1").unwrap()["stale"],
        false
    );
}

/// Reports stream in while the reporter is killed with SIGKILL; afterwards
/// every acknowledged report is there, and re-sending everything stores each
/// exactly once.
fn crash_mid_stream(database: Option<&str>) {
    let data = tempfile::tempdir().unwrap();
    let mut r = Reporter::start(data.path(), false, database, &[]);
    let staff = r.add_user("alice", "auditor");
    let token = r.enroll("web-1", 3600);
    let reports: Vec<Value> = (0..200)
        .map(|_| report_of("web-1", &[("SP-1", "tls_endpoint", "pass")], now()))
        .collect();
    let mut acked: HashSet<String> = HashSet::new();
    let client = r.client();
    let url = format!("{}/api/v1/reports", r.base);
    for (i, rep) in reports.iter().enumerate() {
        if i == 80 {
            r.kill9();
            // In flight while the reporter is dead: refused, not acknowledged.
            assert!(client
                .post(&url)
                .bearer_auth(&token)
                .json(rep)
                .send()
                .is_err());
            r.restart();
        }
        if let Ok(resp) = client.post(&url).bearer_auth(&token).json(rep).send() {
            if resp.status().is_success() {
                acked.insert(rep["report_id"].as_str().unwrap().to_owned());
            }
        }
    }
    let stored: HashSet<String> = {
        let (_, v) = r.get_json(&staff, "/api/v1/reports?limit=1000");
        v["reports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["report_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        acked.is_subset(&stored),
        "an acknowledged report is missing"
    );
    // The agent re-sends whatever it still holds: everything is stored once.
    for rep in &reports {
        let resp = client
            .post(&url)
            .bearer_auth(&token)
            .json(rep)
            .send()
            .unwrap();
        assert!(resp.status().is_success());
    }
    assert_eq!(stored_count(&r, &staff), 200);
}

#[test]
fn kill_9_mid_stream_loses_and_doubles_nothing_on_sqlite() {
    crash_mid_stream(None);
}

#[test]
fn kill_9_mid_stream_loses_and_doubles_nothing_on_postgres() {
    let pg = PgCluster::start();
    let url = pg.database("vigil_crash");
    crash_mid_stream(Some(&url));
}

/// Many agents at once: reports are group-committed (several per
/// transaction), yet each is acknowledged only once stored, stored exactly
/// once even when sent twice at the same moment, a report id taken by another
/// host is refused, every control row is there, and the audit log has one
/// entry per stored report with unbroken sequence numbers that verify.
fn concurrent_burst(database: Option<&str>) {
    const AGENTS: usize = 12;
    const PER_AGENT: usize = 25;
    let data = tempfile::tempdir().unwrap();
    let r = Reporter::start(data.path(), false, database, &[]);
    let staff = r.add_user("alice", "auditor");
    let tokens: Vec<(String, String)> = (0..AGENTS)
        .map(|i| {
            let host = format!("burst-{i}");
            let t = r.enroll(&host, 3600);
            (host, t)
        })
        .collect();
    let controls = [
        ("SP-1", "tls_endpoint", "pass"),
        ("SP-2", "firewall", "fail"),
        ("SP-3", "patch_level", "pass"),
    ];
    let audit_entries = || audit_entries(&r, &staff);
    let entries_before = audit_entries();
    let url = format!("{}/api/v1/reports", r.base);
    // Each report is posted by two threads at once (an agent's retry racing
    // its original), so both copies often land in the same batch.
    let results: Vec<(String, u16, Option<bool>)> = std::thread::scope(|s| {
        let handles: Vec<_> = tokens
            .iter()
            .flat_map(|(host, token)| {
                let reports: Vec<Value> = (0..PER_AGENT)
                    .map(|_| report_of(host, &controls, now()))
                    .collect();
                let reports = std::sync::Arc::new(reports);
                (0..2)
                    .map({
                        let url = url.clone();
                        let client = r.client();
                        move |_| {
                            let reports = reports.clone();
                            let (url, client, token) = (url.clone(), client.clone(), token.clone());
                            s.spawn(move || {
                                reports
                                    .iter()
                                    .map(|rep| {
                                        let resp = client
                                            .post(&url)
                                            .bearer_auth(&token)
                                            .json(rep)
                                            .send()
                                            .unwrap();
                                        let status = resp.status().as_u16();
                                        let v: Value = resp.json().unwrap_or(Value::Null);
                                        (
                                            rep["report_id"].as_str().unwrap().to_owned(),
                                            status,
                                            v["stored"].as_bool(),
                                        )
                                    })
                                    .collect::<Vec<_>>()
                            })
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(results.len(), AGENTS * PER_AGENT * 2);
    assert_each_report_stored_once(
        &results,
        AGENTS * PER_AGENT,
        "stored once, acknowledged twice",
    );
    // Another host reusing burst-0's stored id: refused, nothing stored.
    let mut stolen = report_of("burst-1", &controls, now());
    stolen["report_id"] = json!(results[0].0);
    let (s, v) = post_report(&r, &tokens[1].1, &stolen);
    assert_eq!(s, 409, "{v}");
    assert_eq!(stored_count(&r, &staff), AGENTS * PER_AGENT);
    // Every host's newest report is in the posture with all three controls.
    let (_, p) = r.get_json(&staff, "/api/v1/posture");
    for c in p["controls"].as_array().unwrap() {
        let failing = c["hosts_failing"].as_array().map_or(0, Vec::len);
        if c["id"] == "SP-2" {
            assert_eq!(failing, AGENTS, "{c}");
        } else {
            assert_eq!(failing, 0, "{c}");
        }
    }
    // Exactly one audit entry per stored report, none for duplicates or the
    // refused id, and the whole log still verifies.
    assert_eq!(audit_entries(), entries_before + AGENTS * PER_AGENT);
}

#[test]
fn concurrent_burst_is_stored_exactly_once_on_sqlite() {
    concurrent_burst(None);
}

#[test]
fn concurrent_burst_is_stored_exactly_once_on_postgres() {
    let pg = PgCluster::start();
    let url = pg.database("vigil_burst");
    concurrent_burst(Some(&url));
}

/// The reporter remembers each file_integrity baseline's hash: the same hash
/// again changes nothing; a new one is counted, keeps the previous one, and
/// adds a `baseline.changed` entry to the audit log.
#[test]
fn baseline_hash_changes_are_remembered_and_audited() {
    let data = tempfile::tempdir().unwrap();
    let r = Reporter::start(data.path(), false, None, &[]);
    let staff = r.add_user("alice", "auditor");
    let token = r.enroll("files-1", 3600);
    let audit_entries = || audit_entries(&r, &staff);
    let with_baseline = |sha: &str| {
        let mut rep = report_of("files-1", &[("SP-7", "file_integrity", "pass")], now());
        rep["controls"][0]["checks"][0]["evidence"] = json!({"baseline": {
            "path": "/var/lib/vigil/baseline.json", "sha256": sha, "recorded_sha256": sha,
            "entries": 3, "files_now": 3, "diffs": 0}});
        rep
    };
    let (a, b) = ("a".repeat(64), "b".repeat(64));
    assert_eq!(post_report(&r, &token, &with_baseline(&a)).0, 201);
    let before = audit_entries();
    assert_eq!(post_report(&r, &token, &with_baseline(&a)).0, 201);
    assert_eq!(
        audit_entries(),
        before + 1,
        "the same hash: only the report"
    );
    let (s, v) = r.get_json(&staff, "/api/v1/baselines");
    assert_eq!(s, 200);
    assert_eq!(v["baselines"][0]["changes"], 0, "{v}");
    assert_eq!(v["baselines"][0]["sha256"], json!(a));
    assert_eq!(post_report(&r, &token, &with_baseline(&b)).0, 201);
    assert_eq!(
        audit_entries(),
        before + 3,
        "the report and baseline.changed"
    );
    let (_, v) = r.get_json(&staff, "/api/v1/baselines");
    let row = &v["baselines"][0];
    assert_eq!(
        (
            &row["host"],
            &row["control"],
            &row["check"],
            &row["changes"]
        ),
        (&json!("files-1"), &json!("SP-7"), &json!("c"), &json!(1)),
        "{v}"
    );
    assert_eq!(
        (&row["sha256"], &row["previous_sha256"]),
        (&json!(b), &json!(a))
    );
    // Staff only.
    assert_eq!(r.get_json("vgs_bogus", "/api/v1/baselines").0, 401);
}

#[test]
fn tls_by_default_with_a_self_signed_certificate() {
    let data = tempfile::tempdir().unwrap();
    let r = Reporter::start(data.path(), true, None, &[]);
    assert!(r.base.starts_with("https://"));
    let key = data.path().join("tls/key.pem");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the private key is readable by others");
    // Trusted with the generated certificate as CA.
    let token = r.enroll("web-1", 60);
    assert_eq!(
        post_report(
            &r,
            &token,
            &report_of("web-1", &[("SP-1", "tls_endpoint", "pass")], now())
        )
        .0,
        201
    );
    // Not trusted without it.
    let plain = reqwest::blocking::Client::new();
    assert!(plain.get(format!("{}/healthz", r.base)).send().is_err());
}

#[test]
fn openapi_covers_every_api_route() {
    let data = tempfile::tempdir().unwrap();
    let r = Reporter::start(data.path(), false, None, &[]);
    let (s, doc) = r.get_json("", "/api/v1/openapi.json");
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/enroll",
        "/api/v1/reports",
        "/api/v1/posture",
        "/api/v1/hosts",
        "/api/v1/hosts/{host}",
        "/api/v1/policy",
        "/api/v1/openapi.json",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    // Every documented route and method exists on the server (no 404/405).
    let c = r.client();
    for (path, item) in paths {
        let concrete = path
            .replace("{host}", "web-1")
            .replace("{report_id}", "x")
            .replace("{agent_id}", "x");
        for method in item.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = c
                .request(m, format!("{}{concrete}", r.base))
                .send()
                .unwrap();
            let code = resp.status().as_u16();
            assert!(
                code != 405 && !(code == 404 && resp.headers().get("content-type").is_none()),
                "{method} {path}: {code}"
            );
        }
    }
}

/// Issue 22, item 4: a papyrs report of a real host is 300+ kB (85
/// patch-level findings, a file_integrity tree). One that size is accepted
/// and stored byte for byte, and the body limit still answers 413 while a
/// too-large body arrives, before it is buffered whole.
#[test]
fn a_large_report_is_stored_intact_and_a_huge_body_refused_early() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let r = Reporter::start(dir.path(), false, None, &[]);
    let token = r.enroll("big-1", 3600);
    let admin = r.add_user("admin", "admin");

    let mut rep = report_of(
        "big-1",
        &[
            ("SP-6", "patch_level", "fail"),
            ("SP-9", "attestation", "pass"),
        ],
        now(),
    );
    let findings: Vec<Value> = (0..2200)
        .map(|i| {
            json!({"code": "outdated", "severity": "high", "subject": format!("libpäckage-{i}"),
                "message": format!("libpäckage-{i} 1.2.{i}-1 has a security update 1.2.{i}-2 (DSA-{i}-1, “quoted”, ✓)")})
        })
        .collect();
    rep["controls"][0]["checks"][0]["findings"] = json!(findings);
    let body = serde_json::to_vec(&rep).unwrap();
    assert!(body.len() > 300 * 1024, "{} bytes", body.len());
    let resp = r
        .client()
        .post(format!("{}/api/v1/reports", r.base))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let id = rep["report_id"].as_str().unwrap();
    // The stored body is the posted bytes, compressed (one zstd frame in
    // `body_zstd`, the text column empty: migration 0024), read here with
    // sqlite3 and the zstd tool, and the API answers the same JSON.
    let stored = std::process::Command::new("sh")
        .args([
            "-c",
            "python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); b, z = c.execute('SELECT body, body_zstd FROM reports WHERE report_id = ?', (sys.argv[2],)).fetchone(); assert b == '', 'the text column holds the body'; sys.stdout.buffer.write(z)\" \"$1\" \"$2\" | zstd -dcq",
            "sh",
        ])
        .arg(dir.path().join("vigil.db"))
        .arg(id)
        .output()
        .unwrap();
    assert!(
        stored.status.success(),
        "python3 + zstd (apt-get install zstd): {}",
        String::from_utf8_lossy(&stored.stderr)
    );
    assert!(
        stored.stdout == body,
        "the stored body differs from the posted one"
    );
    let (s, got) = r.get_json(&admin, &format!("/api/v1/reports/{id}"));
    assert_eq!(s, 200);
    assert_eq!(got, rep);
    assert_eq!(stored_count(&r, &admin), 1);

    // A declared length beyond the limit: 413 with no byte of the body sent.
    let connect = || {
        let s = std::net::TcpStream::connect(("127.0.0.1", r.port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(15)))
            .unwrap();
        s
    };
    let answer = |s: &mut std::net::TcpStream| {
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let head = |extra: &str| {
        format!("POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n{extra}\r\n")
    };
    let mut s = connect();
    s.write_all(head("Content-Length: 1073741824\r\n").as_bytes())
        .unwrap();
    let a = answer(&mut s);
    assert!(a.starts_with("HTTP/1.1 413"), "{a:?}");
    // Chunked, no length: refused once the limit is passed, without waiting
    // for the end of the body (which never comes).
    let mut s = connect();
    s.write_all(head("Transfer-Encoding: chunked\r\n").as_bytes())
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
    for _ in 0..(4 * 1024 / 64 + 2) {
        if s.write_all(chunk.as_bytes()).is_err() {
            break;
        }
    }
    let a = answer(&mut s);
    assert!(a.starts_with("HTTP/1.1 413"), "{a:?}");
    assert_eq!(stored_count(&r, &admin), 1);
}
