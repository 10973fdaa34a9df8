//! Incident intake end to end: JSON and form submissions, every limit (413,
//! 400, 415, 429), the honeypot, script injection shown escaped to staff,
//! triage (forward only, with notes), the webhook notice, security.txt; on
//! SQLite and on a real PostgreSQL.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use vigil_tests::*;

/// A one-thread HTTP sink on loopback that records request bodies and answers 204.
struct Webhook {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Webhook {
    fn start() -> Webhook {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let b = bodies.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then Content-Length bytes of body.
                loop {
                    let n = s.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len = text[..i]
                            .lines()
                            .find_map(|l| {
                                let l = l.to_ascii_lowercase();
                                l.strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= i + 4 + len {
                            b.lock()
                                .unwrap()
                                .push(format!("{}\n\n{}", &text[..i], &text[i + 4..]));
                            break;
                        }
                    }
                }
                let _ = s.write_all(
                    b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Webhook { port, bodies }
    }
}

fn start(dir: &std::path::Path, db: Option<&str>, extra_config: &str) -> Reporter {
    let cfg = dir.join("reporter.yaml");
    std::fs::write(
        &cfg,
        format!(
            "public_url: https://security.example.test\norganization: Papyrs\nsecurity_contact: mailto:security@example.test\nintake:\n  max_body_bytes: 4096\n  per_address_per_hour: 14\n{extra_config}"
        ),
    )
    .unwrap();
    Reporter::start(
        &dir.join("data"),
        false,
        db,
        &["--config", cfg.to_str().unwrap()],
    )
}

struct Client<'a> {
    r: &'a Reporter,
    c: reqwest::blocking::Client,
    /// Submissions made so far (each counts toward the rate limit).
    sent: u32,
}

impl Client<'_> {
    fn post(
        &mut self,
        path: &str,
        ctype: &str,
        body: impl Into<reqwest::blocking::Body>,
    ) -> (u16, String) {
        self.sent += 1;
        let resp = self
            .c
            .post(format!("{}{path}", self.r.base))
            .header("content-type", ctype)
            .body(body)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    }
    fn json(&mut self, v: &Value) -> (u16, Value) {
        let (s, t) = self.post("/api/v1/incidents", "application/json", v.to_string());
        (s, serde_json::from_str(&t).unwrap_or(Value::Null))
    }
}

fn staff_get(r: &Reporter, token: &str, path: &str) -> (u16, String) {
    let resp = r
        .client()
        .get(format!("{}{path}", r.base))
        .bearer_auth(token)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

const PER_HOUR: u32 = 14;

fn intake_scenario(r: &Reporter, hook: Option<&Webhook>) {
    let staff = r.add_user("triage", "admin");
    let mut c = Client {
        r,
        c: r.client(),
        sent: 0,
    };

    // A valid JSON submission.
    let (s, v) = c.json(
        &json!({"contact": "alice@example.test", "summary": "XSS on the login page",
        "description": "Steps:\n1. open /login\n2. …", "affected_area": "www"}),
    );
    assert_eq!(s, 201, "{v}");
    let first = v["tracking_id"].as_str().unwrap().to_owned();
    assert!(first.starts_with("INC-") && first.len() == 16, "{first}");
    assert_eq!(v["status"], "new");

    // The form: an acknowledging page with the tracking id.
    let (s, page) = c.post(
        "/report-incident",
        "application/x-www-form-urlencoded",
        "summary=Open+port+9200&description=Elasticsearch+answers+on+%C3%A9s.example&affected_area=&contact=&website=",
    );
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains("your report was received") && page.contains("INC-"),
        "{page}"
    );

    // Script injection, through the JSON route.
    let (s, v) = c.json(&json!({"summary": "<script>alert('x')</script>", "description": "<img src=x onerror=alert(1)> & \"quotes\""}));
    assert_eq!(s, 201, "{v}");
    let injected = v["tracking_id"].as_str().unwrap().to_owned();

    // The honeypot: an ordinary answer, nothing stored.
    let (s, v) = c.json(
        &json!({"summary": "cheap pills", "description": "buy", "website": "http://spam.example"}),
    );
    assert_eq!(s, 201, "{v}");
    let (s, page) = c.post(
        "/report-incident",
        "application/x-www-form-urlencoded",
        "summary=spam&description=spam&website=x",
    );
    assert_eq!(s, 200, "{page}");

    // 415: wrong content types.
    let (s, _) = c.post(
        "/api/v1/incidents",
        "text/plain",
        json!({"summary": "a", "description": "b"}).to_string(),
    );
    assert_eq!(s, 415);
    let (s, _) = c.post(
        "/report-incident",
        "multipart/form-data; boundary=x",
        "--x--",
    );
    assert_eq!(s, 415);

    // 413: a body over max_body_bytes (4096).
    let (s, t) = c.json(&json!({"summary": "big", "description": "x".repeat(5000)}));
    assert_eq!(s, 413, "{t}");

    // 400: field lengths, missing fields, unknown fields, bad UTF-8 (JSON and form).
    let (s, t) = c.json(&json!({"summary": "s".repeat(201), "description": "d"}));
    assert_eq!(
        (s, t["error"].as_str().unwrap()),
        (400, "`summary` may be at most 200 characters")
    );
    let (s, _) = c.json(&json!({"summary": "", "description": "d"}));
    assert_eq!(s, 400);
    let (s, _) = c.json(&json!({"summary": "s", "description": "d", "severity": "high"}));
    assert_eq!(s, 400);
    let (s, _) = c.post(
        "/api/v1/incidents",
        "application/json",
        b"{\"summary\": \"\xff\xfe\", \"description\": \"d\"}".to_vec(),
    );
    assert_eq!(s, 400);
    let (s, page) = c.post(
        "/report-incident",
        "application/x-www-form-urlencoded",
        "summary=%FF%FE&description=d",
    );
    assert_eq!(s, 400);
    assert!(page.contains("not valid UTF-8"), "{page}");

    // 429: the address's budget for the hour runs out, whatever the requests were.
    let mut fillers = 0;
    while c.sent < PER_HOUR {
        fillers += 1;
        let (s, v) = c.json(&json!({"summary": format!("filler {}", c.sent), "description": "d"}));
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = c.json(&json!({"summary": "one too many", "description": "d"}));
    assert_eq!(s, 429, "{v}");
    let (s, _) = c.post(
        "/report-incident",
        "application/x-www-form-urlencoded",
        "summary=a&description=b",
    );
    assert_eq!(s, 429);

    // Staff see what was stored: not the honeypot hits, not the refused ones.
    let (s, t) = staff_get(r, &staff, "/api/v1/incidents?limit=1000");
    assert_eq!(s, 200, "{t}");
    let list: Value = serde_json::from_str(&t).unwrap();
    let summaries: Vec<&str> = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["summary"].as_str().unwrap())
        .collect();
    assert!(
        !summaries
            .iter()
            .any(|s| s.contains("pills") || *s == "spam"),
        "{summaries:?}"
    );
    assert!(summaries.contains(&"Open port 9200") && summaries.contains(&"XSS on the login page"));
    assert_eq!(summaries.len(), 3 + fillers, "{summaries:?}");
    let (s, _) = r
        .client()
        .get(format!("{}/api/v1/incidents", r.base))
        .send()
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(s, 401, "the list is for staff only");

    // Injected markup is shown escaped on the staff pages.
    let (s, page) = staff_get(r, &staff, &format!("/reports/incidents/{injected}"));
    assert_eq!(s, 200, "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt;")
            || page.contains("&lt;script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "script rendered raw");
    assert!(!page.contains("<img src=x"), "img rendered raw");
    let (_, list_page) = staff_get(r, &staff, "/reports/incidents");
    assert!(!list_page.contains("<script>alert") && list_page.contains("&lt;script&gt;"));

    // Triage: forward with notes, never backward; each step recorded with who.
    let tr = |body: Value| {
        let resp = r
            .client()
            .post(format!("{}/api/v1/incidents/{first}/transitions", r.base))
            .bearer_auth(&staff)
            .json(&body)
            .send()
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json::<Value>().unwrap_or(Value::Null),
        )
    };
    let (s, v) = tr(json!({"status": "acknowledged", "note": "reproduced on staging"}));
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("acknowledged")),
        "{v}"
    );
    let (s, v) = tr(json!({"status": "new"}));
    assert_eq!(s, 409, "{v}");
    let (s, _) = tr(json!({"status": "closed"}));
    assert_eq!(s, 400);
    let (s, _) = tr(json!({}));
    assert_eq!(s, 400);
    let (s, v) = tr(json!({"note": "patch in review"}));
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("acknowledged")),
        "{v}"
    );
    // The HTML triage form (Bearer needs no CSRF token; a session does, see staff_pages).
    let resp = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/reports/incidents/{first}", r.base))
        .bearer_auth(&staff)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("status=investigating&note=fix+deployed+to+one+host")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let (_, v) = tr(json!({"status": "resolved", "note": "fixed in 4.2.1"}));
    assert_eq!(v["status"], "resolved");
    let steps: Vec<(Value, Value, String)> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from_status"].clone(),
                e["to_status"].clone(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (Value::Null, json!("new"), "submitter".into()),
            (json!("new"), json!("acknowledged"), "triage".into()),
            (
                json!("acknowledged"),
                json!("acknowledged"),
                "triage".into()
            ),
            (
                json!("acknowledged"),
                json!("investigating"),
                "triage".into()
            ),
            (json!("investigating"), json!("resolved"), "triage".into()),
        ]
    );
    // Each step is in the tamper-evident audit log, which still verifies.
    let (s, t) = staff_get(r, &staff, "/api/v1/audit/verify");
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        serde_json::from_str::<Value>(&t).unwrap()["ok"],
        true,
        "{t}"
    );
    let mut logged = Vec::new();
    for seq in 0.. {
        let (s, t) = staff_get(r, &staff, &format!("/api/v1/audit/proof?seq={seq}"));
        if s == 404 {
            break;
        }
        assert_eq!(s, 200, "{t}");
        let e = serde_json::from_str::<Value>(&t).unwrap()["entry"].clone();
        if e["data"]["tracking_id"] == json!(first) {
            logged.push((
                e["kind"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["data"]["to"].clone(),
            ));
        }
        assert!(
            !e.to_string().contains("XSS on the login page"),
            "submitter text in the audit log"
        );
    }
    assert_eq!(
        logged,
        vec![
            ("incident.reported".into(), "submitter".into(), Value::Null),
            (
                "incident.transition".into(),
                "triage".into(),
                json!("acknowledged")
            ),
            (
                "incident.transition".into(),
                "triage".into(),
                json!("acknowledged")
            ),
            (
                "incident.transition".into(),
                "triage".into(),
                json!("investigating")
            ),
            (
                "incident.transition".into(),
                "triage".into(),
                json!("resolved")
            ),
        ]
    );
    let (s, _) = staff_get(r, &staff, "/api/v1/incidents/INC-000000000000");
    assert_eq!(s, 404);

    // The webhook heard of each stored incident, without the submitter's text.
    if let Some(hook) = hook {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while hook.bodies.lock().unwrap().len() < summaries.len()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let bodies = hook.bodies.lock().unwrap().clone();
        assert_eq!(bodies.len(), summaries.len(), "{bodies:?}");
        let with_first = bodies
            .iter()
            .find(|b| b.contains(&first))
            .expect("notice of the first incident");
        assert!(
            with_first
                .to_ascii_lowercase()
                .contains("authorization: bearer hook-token"),
            "{with_first}"
        );
        assert!(with_first.contains(&format!(
            "https://security.example.test/reports/incidents/{first}"
        )));
        assert!(
            !bodies
                .iter()
                .any(|b| b.contains("<script>") || b.contains("XSS on the login page")),
            "{bodies:?}"
        );
    }
}

#[test]
fn intake_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Webhook::start();
    let r = start(
        dir.path(),
        None,
        &format!(
            "notify:\n  webhook: http://127.0.0.1:{}/hook\n  webhook_token: hook-token\n  drain_every_secs: 1\n",
            hook.port
        ),
    );
    intake_scenario(&r, Some(&hook));
}

#[test]
fn intake_on_postgres() {
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let url = pg.database("intake");
    let r = start(dir.path(), Some(&url), "");
    intake_scenario(&r, None);
}

#[test]
fn security_txt_follows_rfc_9116() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path(), None, "");
    let resp = r
        .client()
        .get(format!("{}/.well-known/security.txt", r.base))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().unwrap();
    let fields: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("not a field: {l}"));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let get = |k: &str| {
        fields
            .iter()
            .filter(|f| f.0 == k)
            .map(|f| f.1.as_str())
            .collect::<Vec<_>>()
    };
    // Absolute URIs only (RFC 9116 2.5.3): the configured contact first, then the form.
    assert_eq!(
        get("Contact"),
        [
            "mailto:security@example.test",
            "https://security.example.test/report-incident"
        ]
    );
    assert_eq!(get("Policy"), ["https://security.example.test/policy.pdf"]);
    assert_eq!(get("Preferred-Languages"), ["en"]);
    assert_eq!(
        get("Canonical"),
        ["https://security.example.test/.well-known/security.txt"]
    );
    let expires = get("Expires");
    assert_eq!(expires.len(), 1, "exactly one Expires");
    let t = chrono::DateTime::parse_from_rfc3339(expires[0]).unwrap();
    let days = (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!(
        (300..=366).contains(&days),
        "Expires less than a year ahead: {days} days"
    );

    // The form it points at is plain HTML with a hidden honeypot.
    let page = r
        .client()
        .get(format!("{}/report-incident", r.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("name=\"summary\"")
            && page.contains("name=\"website\"")
            && page.contains("class=\"hp\"")
    );
    assert!(!page.contains("<script"), "no JavaScript needed");
}

/// Regression (issue 19 item 10): behind a TLS-terminating proxy every
/// submitter shared the proxy's one bucket. With `trusted_proxies`, the client
/// comes from `Forwarded`/`X-Forwarded-For` when the peer is such a proxy, and
/// only then; a global limit stands beside the per-client one.
#[test]
fn intake_limits_behind_a_trusted_proxy() {
    let post = |r: &Reporter, headers: &[(&str, &str)]| {
        let mut req = r
            .client()
            .post(format!("{}/api/v1/incidents", r.base))
            .json(&json!({"summary": "s", "description": "d"}));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().unwrap().status().as_u16()
    };
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path(), None, "trusted_proxies: [127.0.0.0/8, '::1']\n");
    // `start` sets 14 per address; the global limit is set below in a second reporter.
    let a = [("x-forwarded-for", "203.0.113.7")];
    let b = [("forwarded", "for=\"[2001:db8::5]:4711\";proto=https")];
    for _ in 0..14 {
        assert_eq!(post(&r, &a), 201);
    }
    assert_eq!(post(&r, &a), 429, "203.0.113.7 used its own bucket");
    assert_eq!(post(&r, &b), 201, "another client behind the same proxy");
    // A client cannot pick its address by prepending one: the nearest
    // untrusted hop counts.
    assert_eq!(
        post(&r, &[("x-forwarded-for", "198.51.100.1, 203.0.113.7")]),
        429
    );
    drop(r);

    // Without trust, the headers are ignored: everyone is the peer.
    let dir2 = tempfile::tempdir().unwrap();
    let r2 = start(dir2.path(), None, "");
    for i in 0..14 {
        let xff = format!("203.0.113.{i}");
        assert_eq!(post(&r2, &[("x-forwarded-for", xff.as_str())]), 201);
    }
    assert_eq!(post(&r2, &[("x-forwarded-for", "198.51.100.99")]), 429);
    drop(r2);

    // The global limit.
    let dir3 = tempfile::tempdir().unwrap();
    let cfg = dir3.path().join("reporter.yaml");
    std::fs::write(
        &cfg,
        "trusted_proxies: [127.0.0.1]\nintake:\n  per_address_per_hour: 2\n  global_per_hour: 5\n",
    )
    .unwrap();
    let r3 = Reporter::start(
        &dir3.path().join("data"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    for i in 0..5 {
        let xff = format!("192.0.2.{i}");
        assert_eq!(post(&r3, &[("x-forwarded-for", xff.as_str())]), 201);
    }
    assert_eq!(
        post(&r3, &[("x-forwarded-for", "192.0.2.200")]),
        429,
        "a sixth client in the hour meets the global limit"
    );
}
