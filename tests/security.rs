//! Issue 19's defences against the real `vigil-reporter` binary on loopback:
//! host takeover through the enrollment secret (item 1), the login flood
//! (item 3), staff tokens that can be revoked (item 9), waivers an agent
//! cannot claim (item 12), private file modes (item 16) and security headers
//! (item 18). Each test names the bug it covers; each failed before the fix.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use vigil_tests::*;

fn report(host: &str, status: &str, waived_by: Option<&str>) -> Value {
    let t = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (control_status, key) = match (status, waived_by) {
        ("fail", Some(_)) => ("waived", "waived"),
        ("fail", None) => ("fail", "fail"),
        _ => ("pass", "pass"),
    };
    let mut summary = json!({"pass": 0, "fail": 0, "error": 0, "attested": 0, "skipped": 0, "waived": 0, "unknown": 0});
    summary[key] = json!(1);
    let mut check = json!({"id": "advisories", "type": "patch_level", "status": status, "summary": "s",
        "findings": [], "evidence": {}, "duration_ms": 1});
    if let Some(w) = waived_by {
        check["waived_by"] = json!(w);
    }
    json!({
        "schema": "vigil.report/v1",
        "report_id": uuid::Uuid::new_v4().to_string(),
        "agent": {"host": host, "version": "0.1.0"},
        "policy": {"id": "papyrs-security", "version": "1", "sha256": "a".repeat(64)},
        "started_at": t, "finished_at": t,
        "controls": [{"id": "SP-6", "title": "patches", "status": control_status, "checks": [check]}],
        "summary": summary
    })
}

fn post(r: &Reporter, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = r.client().post(format!("{}{path}", r.base)).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn enroll(r: &Reporter, secret: &str, host: &str, roles: &[&str]) -> (u16, Value) {
    post(
        r,
        "/api/v1/enroll",
        None,
        &json!({"secret": secret, "host": host, "roles": roles, "interval_secs": 3600}),
    )
}

fn agent_of(r: &Reporter, staff: &str, host: &str) -> Value {
    let (s, v) = r.get_json(staff, "/api/v1/agents");
    assert_eq!(s, 200, "{v}");
    v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["host"] == host)
        .cloned()
        .unwrap_or_else(|| panic!("no agent for {host} in {v}"))
}

fn audit_kinds(r: &Reporter, staff: &str) -> Vec<String> {
    let (s, v) = r.get_json(staff, "/api/v1/audit/verify");
    assert_eq!((s, &v["ok"]), (200, &json!(true)), "{v}");
    let n = v["entries"].as_u64().unwrap();
    (0..n)
        .map(|seq| {
            let (_, p) = r.get_json(staff, &format!("/api/v1/audit/proof?seq={seq}"));
            p["entry"]["kind"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

fn cli(r: &Reporter, args: &[&str]) -> std::process::Output {
    Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args(args)
        .arg("--data")
        .arg(&r.data)
        .output()
        .unwrap()
}

// Regression (issue 19, item 1): anyone with the shared secret enrolled as an
// existing host (`backup-2`), which revoked the real agent, and chose the
// host's roles, which decided the closure phases it had to prove.
#[test]
fn enrolling_an_active_host_is_refused_and_roles_need_approval() {
    let data = tempfile::tempdir().unwrap();
    let r = Reporter::start(data.path(), false, None, &[]);
    let admin = r.add_user("alice", "admin");

    // Requested roles wait for approval.
    let (s, v) = enroll(&r, ENROLL_SECRET, "backup-2", &["backup"]);
    assert_eq!(s, 201, "{v}");
    let real = v["token"].as_str().unwrap().to_owned();
    assert_eq!(
        (&v["roles"], &v["pending_roles"]),
        (&json!([]), &json!(["backup"]))
    );
    let a = agent_of(&r, &admin, "backup-2");
    assert_eq!(
        (&a["roles"], &a["pending_roles"]),
        (&json!([]), &json!(["backup"])),
        "{a}"
    );
    let (s, v) = post(&r, "/api/v1/hosts/backup-2/roles", Some(&admin), &json!({}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(agent_of(&r, &admin, "backup-2")["roles"], json!(["backup"]));

    // The impostor (with the secret, asking for no roles) is refused, 409 JSON.
    let (s, v) = enroll(&r, ENROLL_SECRET, "backup-2", &[]);
    assert_eq!(s, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("active agent"), "{v}");
    // ...and the real agent's token keeps working.
    let (s, v) = post(
        &r,
        "/api/v1/reports",
        Some(&real),
        &report("backup-2", "pass", None),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(agent_of(&r, &admin, "backup-2")["roles"], json!(["backup"]));

    // An admin allows one re-enrollment: the new agent keeps the trusted
    // roles even when it asks for none; the allowance is used up.
    let (s, v) = post(
        &r,
        "/api/v1/hosts/backup-2/allow-reenroll",
        Some(&admin),
        &json!({}),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = enroll(&r, ENROLL_SECRET, "backup-2", &[]);
    assert_eq!(s, 201, "{v}");
    let second = v["token"].as_str().unwrap().to_owned();
    assert_eq!(v["roles"], json!(["backup"]), "{v}");
    let (s, _) = post(
        &r,
        "/api/v1/reports",
        Some(&real),
        &report("backup-2", "pass", None),
    );
    assert_eq!(s, 401, "the replaced agent's token must stop working");
    assert_eq!(enroll(&r, ENROLL_SECRET, "backup-2", &[]).0, 409);

    // The CLI revokes; the host may then enroll, and starts with no trusted roles.
    let o = cli(&r, &["agent", "revoke", "backup-2", "--by", "ops"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (s, _) = post(
        &r,
        "/api/v1/reports",
        Some(&second),
        &report("backup-2", "pass", None),
    );
    assert_eq!(s, 401);
    let (s, v) = enroll(&r, ENROLL_SECRET, "backup-2", &["backup"]);
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["roles"], json!([]), "{v}");
    let o = cli(&r, &["agent", "list"]);
    assert!(stdout(&o).contains("pending [backup]"), "{}", stdout(&o));

    let kinds = audit_kinds(&r, &admin);
    for k in [
        "agent.roles_approved",
        "agent.reenroll_allowed",
        "agent.revoked",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in {kinds:?}");
    }
}

// Role-scoped enrollment secrets approve the roles they list, and no others.
#[test]
fn role_scoped_secret_grants_its_roles() {
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("reporter.yaml");
    std::fs::write(
        &cfg,
        "enroll_role_secrets:\n  - secret: backup-enrollment-secret-0123\n    roles: [backup]\n",
    )
    .unwrap();
    let r = Reporter::start(
        &data.path().join("data"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let (s, v) = enroll(
        &r,
        "backup-enrollment-secret-0123",
        "backup-1",
        &["backup", "app"],
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (&v["roles"], &v["pending_roles"]),
        (&json!(["backup"]), &json!(["app"]))
    );
}

/// `psql -At -c SQL` on the cluster's database `db`.
fn psql(pg: &PgCluster, db: &str, sql: &str) -> String {
    let o = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
        ])
        .args(["-At", "-c", sql])
        .output()
        .unwrap();
    assert!(o.status.success(), "{sql}: {}", stderr(&o));
    stdout(&o)
}

// Issue 19, item 1, on PostgreSQL: two reporters sharing one database each
// read "no active agent" for a new host before either inserted, so two
// enrollments of one host at the same moment both got 201 and the host had
// two active agents. The partial unique index `agents_one_active` (migration
// 0013) now lets exactly one win; the other is answered 409.
#[test]
fn concurrent_enrollments_of_one_host_leave_one_active_agent_on_postgres() {
    const HOSTS: usize = 16;
    let pg = PgCluster::start();
    let url = pg.database("vigil_enroll_race");
    let d1 = tempfile::tempdir().unwrap();
    let r1 = Reporter::start(d1.path(), false, Some(&url), &[]);
    let d2 = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d2.path().join("audit")).unwrap();
    std::fs::copy(
        d1.path().join("audit/ed25519.key"),
        d2.path().join("audit/ed25519.key"),
    )
    .unwrap();
    let r2 = Reporter::start(d2.path(), false, Some(&url), &[]);
    let outcomes: Vec<(String, Vec<u16>)> = (0..HOSTS)
        .map(|i| {
            let host = format!("race-{i}");
            let barrier = std::sync::Barrier::new(2);
            let mut statuses: Vec<u16> = std::thread::scope(|s| {
                let hs: Vec<_> = [&r1, &r2]
                    .into_iter()
                    .map(|r| {
                        let (host, barrier) = (&host, &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            enroll(r, ENROLL_SECRET, host, &[]).0
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            statuses.sort();
            (host, statuses)
        })
        .collect();
    for (host, statuses) in &outcomes {
        assert_eq!(statuses, &[201, 409], "{host}: {outcomes:?}");
    }
    assert_eq!(
        psql(
            &pg,
            "vigil_enroll_race",
            "SELECT host FROM agents WHERE revoked_at IS NULL GROUP BY host HAVING count(*) > 1"
        ),
        ""
    );
    assert_eq!(
        psql(
            &pg,
            "vigil_enroll_race",
            "SELECT count(*) FROM agents WHERE revoked_at IS NULL"
        )
        .trim(),
        HOSTS.to_string()
    );
    // The database refuses a second active agent whoever inserts it.
    let o = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", "postgres", "-d", "vigil_enroll_race"])
        .args(["-c", "INSERT INTO agents (id, host, roles, requested_roles, interval_secs, token_lookup, token_digest, created_at) VALUES ('x', 'race-0', '[]', '[]', 60, 'x', 'x', 0)"])
        .output()
        .unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("agents_one_active"),
        "{}",
        stderr(&o)
    );
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

// Regression (issue 19, item 3): each argon2 check takes 19 MiB and nothing
// bounded them; 256 concurrent wrong logins took the reporter to 5.7 GB.
#[test]
fn login_flood_stays_small_and_is_throttled() {
    let data = tempfile::tempdir().unwrap();
    let r = Reporter::start(data.path(), false, None, &[]);
    let mut add = Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args([
            "user",
            "add",
            "carol",
            "--role",
            "admin",
            "--password-stdin",
            "--data",
        ])
        .arg(&r.data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        add.stdin.as_mut().unwrap(),
        b"correct horse battery staple\n",
    )
    .unwrap();
    let staff = String::from_utf8(add.wait_with_output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    let url = format!("{}/login", r.base);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..256)
            .map(|i| {
                let url = url.clone();
                let c = r.client();
                s.spawn(move || {
                    c.post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(format!("name=user{}&password=wrong-{i}", i % 8))
                        .send()
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let peak_mib = peak_rss_kib(r.child.id()) / 1024;
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    let refused = statuses.iter().filter(|s| **s == 401).count();
    eprintln!("login flood: {throttled} answered 429, {refused} 401, peak RSS {peak_mib} MiB");
    assert!(peak_mib < 400, "peak RSS {peak_mib} MiB");
    assert!(throttled > 0, "{statuses:?}");
    assert_eq!(throttled + refused, statuses.len(), "{statuses:?}");

    // Wrong enrollment secrets lock the client out: even the right one is 429.
    for _ in 0..10 {
        assert_eq!(enroll(&r, "a-wrong-secret-0123456789", "web-1", &[]).0, 401);
    }
    let (s, v) = enroll(&r, ENROLL_SECRET, "web-1", &[]);
    assert_eq!(s, 429, "{v}");
    // The staff API, which takes a high-entropy token, is not throttled.
    assert_eq!(r.get_json(&staff, "/api/v1/hosts").0, 200);
}

// Issue 19, item 3: a short enrollment secret is refused at start.
#[test]
fn short_enrollment_secret_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let o = Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args([
            "serve",
            "--plain-http",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data",
        ])
        .arg(data.path())
        .env("VIGIL_ENROLL_SECRET", "short")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("shorter than 16 characters"),
        "{}",
        stderr(&o)
    );
    assert!(
        !stderr(&o).contains("short\n"),
        "the secret must not be printed"
    );
}

// Regression (issue 19, item 9): a staff token could not be revoked.
#[test]
fn staff_tokens_can_be_disabled_rotated_and_expire() {
    let data = tempfile::tempdir().unwrap();
    let r = Reporter::start(data.path(), false, None, &[]);
    let admin = r.add_user("alice", "admin");
    let bob = r.add_user("bob", "auditor");
    assert_eq!(r.get_json(&bob, "/api/v1/hosts").0, 200);

    // rotate (CLI): the old token stops, the new one works
    let o = cli(&r, &["user", "rotate", "bob"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bob2 = stdout(&o).trim().to_owned();
    assert_eq!(r.get_json(&bob, "/api/v1/hosts").0, 401);
    assert_eq!(r.get_json(&bob2, "/api/v1/hosts").0, 200);

    // disable (API, admin only)
    assert_eq!(
        post(&r, "/api/v1/users/alice/disable", Some(&bob2), &json!({})).0,
        403
    );
    let (s, v) = post(&r, "/api/v1/users/bob/disable", Some(&admin), &json!({}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(r.get_json(&bob2, "/api/v1/hosts").0, 401);
    let (s, v) = r.get_json(&admin, "/api/v1/users");
    assert_eq!(s, 200);
    let b = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "bob")
        .unwrap();
    assert!(b["disabled_at"].is_string(), "{v}");
    let o = cli(&r, &["user", "list"]);
    assert!(
        stdout(&o).contains("bob\tauditor\tdisabled"),
        "{}",
        stdout(&o)
    );
    // rotate via the API gives a token that is still refused while disabled
    let (s, v) = post(&r, "/api/v1/users/bob/rotate", Some(&admin), &json!({}));
    assert_eq!(s, 200, "{v}");
    let bob3 = v["token"].as_str().unwrap().to_owned();
    assert_eq!(r.get_json(&bob3, "/api/v1/hosts").0, 401);
    let o = cli(&r, &["user", "enable", "bob"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(r.get_json(&bob3, "/api/v1/hosts").0, 200);
    let kinds = audit_kinds(&r, &admin);
    for k in ["user.token_rotated", "user.disabled", "user.enabled"] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in {kinds:?}");
    }
    drop(r);

    // A token lifetime from the config.
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("reporter.yaml");
    std::fs::write(&cfg, "staff_token_lifetime: 2s\n").unwrap();
    let r = Reporter::start(
        &data.path().join("data"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let t = r.add_user("carol", "admin");
    assert_eq!(r.get_json(&t, "/api/v1/hosts").0, 200);
    std::thread::sleep(Duration::from_millis(2500));
    let (s, v) = r.get_json(&t, "/api/v1/hosts");
    assert_eq!(s, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");
}

fn control_status(r: &Reporter, staff: &str, host: &str) -> String {
    let (s, v) = r.get_json(staff, &format!("/api/v1/hosts/{host}"));
    assert_eq!(s, 200, "{v}");
    v["controls"][0]["status"].as_str().unwrap().to_owned()
}

// Regression (issue 19, item 12): an agent sent `waived` for a failing
// control with a made-up `waived_by`, and the fleet's posture showed it waived.
#[test]
fn agents_cannot_claim_waivers() {
    let data = tempfile::tempdir().unwrap();
    let r = Reporter::start(data.path(), false, None, &[]);
    let admin = r.add_user("alice", "admin");
    let token = r.enroll("web-1", 3600);
    let (s, v) = post(
        &r,
        "/api/v1/reports",
        Some(&token),
        &report("web-1", "fail", Some("W-MADE-UP")),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(control_status(&r, &admin, "web-1"), "fail");
    let stored = r.newest_report(&admin, "web-1").unwrap();
    assert_eq!(stored["controls"][0]["status"], "fail", "{stored}");
    assert!(
        stored["controls"][0]["checks"][0]["waived_by"].is_null(),
        "{stored}"
    );

    // A reporter waiver covering the host, control and check: waived.
    let today = chrono::Utc::now().date_naive();
    let w = json!({"id": "W-1", "control": "SP-6", "check": "advisories", "hosts": ["web-*"],
        "justification": "vendor kernel", "approved_by": "ciso@example",
        "approved_on": (today - chrono::Duration::days(1)).to_string(),
        "expires": (today + chrono::Duration::days(30)).to_string()});
    let (s, v) = post(&r, "/api/v1/waivers", Some(&admin), &w);
    assert_eq!(s, 201, "{v}");
    std::thread::sleep(Duration::from_millis(5));
    let (s, v) = post(
        &r,
        "/api/v1/reports",
        Some(&token),
        &report("web-1", "fail", Some("W-1")),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(control_status(&r, &admin, "web-1"), "waived");
}

// Regression (issue 19, item 16): outside systemd the data directory was
// 0755 and vigil.db 0644 (the umask's choice).
#[test]
fn data_dir_and_database_are_private_whatever_the_umask() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("fresh/vigil-data");
    let port = free_port();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000; exec '{}' serve --plain-http --listen 127.0.0.1:{port} --data '{}'",
            binary("vigil-reporter", "vigil-reporter").display(),
            data.display()
        ))
        .env("VIGIL_ENROLL_SECRET", ENROLL_SECRET)
        .env("VIGIL_LOG", "warn")
        .spawn()
        .unwrap();
    let c = reqwest::blocking::Client::new();
    wait_until(30, "the reporter to serve", || {
        c.get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .is_ok_and(|r| r.status().is_success())
    });
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let result = std::panic::catch_unwind(|| {
        assert_eq!(mode(&data), 0o700, "data dir");
        for f in [
            "vigil.db",
            "vigil.db-wal",
            "audit/ed25519.key",
            "policy/ed25519.key",
        ] {
            let p = data.join(f);
            if p.exists() {
                assert_eq!(mode(&p) & 0o077, 0, "{f} is {:o}", mode(&p));
            } else {
                assert_ne!(f, "vigil.db", "no database");
            }
        }
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

// Issue 19, item 18: pages carried no CSP, framing or sniffing protection.
#[test]
fn pages_carry_security_headers() {
    let data = tempfile::tempdir().unwrap();
    let r = Reporter::start(data.path(), false, None, &[]);
    let resp = r.client().get(format!("{}/login", r.base)).send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let h = resp.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let resp = r
        .client()
        .get(format!("{}/healthz", r.base))
        .send()
        .unwrap();
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(resp.headers().get("content-security-policy").is_none());
}
