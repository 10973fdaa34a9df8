//! Notices end to end, against a real SMTP server on loopback (aiosmtpd with
//! STARTTLS required and AUTH, a private CA; `.ci/run` installs it in
//! `target/notify-venv`) and a real HTTP receiver: each event once
//! (`control.failed` when a control starts failing, `control.recovered` when
//! it passes again, `expiring` once per object and day, `host.stale`,
//! `erasure.overdue`, `incident.new`), the submitter's acknowledgement with the
//! tracking id and the status link, a webhook failure retried, every notice
//! on record; and the incident lifecycle (status page, public and private
//! notes, severity, assignee, the breach clock, links, attachments).

#[path = "staff/seed.rs"]
#[allow(dead_code)]
mod seed;

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use vigil_tests::*;

fn aiosmtpd_python() -> PathBuf {
    let p = workspace().join("target/notify-venv/bin/python");
    let ok = Command::new(&p)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs aiosmtpd: `python3 -m venv target/notify-venv && \
         target/notify-venv/bin/pip install 'aiosmtpd==1.4.6'` (.ci/run does it)"
    );
    p
}

/// A private CA and a server certificate for 127.0.0.1, as PEM files in `dir`.
fn certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "notify test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    let (ca_p, cert_p, key_p) = (
        dir.join("ca.pem"),
        dir.join("smtp.pem"),
        dir.join("smtp.key"),
    );
    std::fs::write(&ca_p, ca_cert.pem()).unwrap();
    std::fs::write(&cert_p, cert.pem()).unwrap();
    std::fs::write(&key_p, key.serialize_pem()).unwrap();
    (ca_p, cert_p, key_p)
}

/// aiosmtpd on loopback, writing each message it accepts as a JSON line.
struct SmtpSink {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl SmtpSink {
    fn start(dir: &Path, mode: &str, cert: &Path, key: &Path, creds: Option<&str>) -> SmtpSink {
        let port = free_port();
        let out = dir.join(format!("mail-{mode}.jsonl"));
        let mut cmd = Command::new(aiosmtpd_python());
        cmd.arg(workspace().join("tests/notify/smtp_sink.py"))
            .arg(&out)
            .arg(port.to_string())
            .arg(mode)
            .arg(cert)
            .arg(key);
        if let Some(c) = creds {
            cmd.arg(c);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        SmtpSink { child, port, out }
    }

    fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP receiver on loopback: answers 500 to its first `fail_first`
/// requests, then 204; keeps the bodies it accepted and counts every request.
struct Receiver {
    port: u16,
    accepted: Arc<Mutex<Vec<(String, Value)>>>,
    requests: Arc<Mutex<u32>>,
}

impl Receiver {
    fn start(fail_first: u32) -> Receiver {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let (a, n) = (accepted.clone(), requests.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let k = s.read(&mut chunk).unwrap_or(0);
                    if k == 0 {
                        break (String::new(), String::new());
                    }
                    buf.extend_from_slice(&chunk[..k]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len = text[..i]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= i + 4 + len {
                            break (text[..i].to_owned(), text[i + 4..].to_owned());
                        }
                    }
                };
                let seen = {
                    let mut g = n.lock().unwrap();
                    *g += 1;
                    *g
                };
                if seen <= fail_first {
                    let _ = s.write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
                a.lock()
                    .unwrap()
                    .push((head, serde_json::from_str(&body).unwrap_or(Value::Null)));
                let _ = s.write_all(
                    b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Receiver {
            port,
            accepted,
            requests,
        }
    }

    fn events(&self, event: &str) -> Vec<Value> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, b)| b["event"] == event)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

fn notices(r: &Reporter, staff: &str, event: &str) -> Vec<Value> {
    let (s, v) = r.get_json(staff, &format!("/api/v1/notices?event={event}&limit=1000"));
    assert_eq!(s, 200, "{v}");
    v["notices"].as_array().unwrap().clone()
}

fn days_from_now(d: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(d))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// web-1's report: SP-5 passing or failing, a certificate ending in 5 days,
/// an attestation ending in 10.
fn web_report(sp5: &str, at: chrono::DateTime<chrono::Utc>) -> Value {
    seed::report(
        "web-1",
        &[
            (
                "SP-1",
                "public-https",
                "tls_endpoint",
                "pass",
                "TLS 1.3",
                json!({"endpoints": [{"address": "127.0.0.1:443", "server_name": "web-1.example", "protocol": "1.3", "cipher_suite": "TLS13_AES_128_GCM_SHA256", "alpn": "h2", "ocsp_stapled": false, "old_protocols": [], "weak_ciphers": null, "http": null, "trust": {"anchors": "system", "outcome": "trusted"}, "certificates": [{"subject": "CN=web-1.example", "issuer": "CN=Test CA", "sans": ["DNS:web-1.example"], "serial": "01", "not_before": "2025-01-01T00:00:00Z", "not_after": days_from_now(5), "key_type": "RSA", "key_bits": 2048, "signature_algorithm": "sha256WithRSAEncryption", "sha256": "abababababababababababababababababababababababababababababababab", "self_signed": false, "is_ca": false}]}], "redirects": []}),
                json!([]),
            ),
            (
                "SP-5",
                "inbound",
                "firewall",
                sp5,
                "firewall",
                json!({}),
                json!([]),
            ),
            (
                "SP-9",
                "datacentre-attestation",
                "attestation",
                "pass",
                "attested",
                json!({"by": "dpo@papyrs.example", "on": "2026-11-25", "evidence": "https://wiki.papyrs.example/dpa", "statement": null, "expires": (chrono::Utc::now() + chrono::Duration::days(10)).format("%Y-%m-%d").to_string()}),
                json!([]),
            ),
        ],
        at,
    )
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    wait_until(30, what, &mut cond);
}

#[test]
fn notices_by_webhook_and_smtp_each_once_and_on_record() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certs(dir.path());
    let smtp = SmtpSink::start(
        dir.path(),
        "starttls",
        &cert,
        &key,
        Some("vigil:s3cret-pass"),
    );
    // The first webhook delivery fails: it must be retried, not lost.
    let hook = Receiver::start(1);
    let pass_file = dir.path().join("smtp.pass");
    std::fs::write(&pass_file, "s3cret-pass\n").unwrap();
    let cfg = dir.path().join("reporter.yaml");
    std::fs::write(
        &cfg,
        format!(
            "public_url: https://security.example.test\n\
             notify:\n  webhook: http://127.0.0.1:{}/hook\n  webhook_token: hook-token\n\
             \x20 smtp:\n    url: smtp://127.0.0.1:{}\n    from: vigil@example.test\n    to: [security@example.test]\n\
             \x20   username: vigil\n    password_file: {}\n    ca_file: {}\n\
             \x20 scan_every_secs: 1\n  drain_every_secs: 1\n  retry_base_secs: 1\n\
             erasure:\n  cooling_off: 1s\n  deadline: 1s\n",
            hook.port,
            smtp.port,
            pass_file.display(),
            ca.display()
        ),
    )
    .unwrap();
    let r = Reporter::start(
        &dir.path().join("data"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let staff = r.add_user("sec", "admin");
    let web = r.enroll("web-1", 3600);
    // db-1 promises a report a second and sends one: it goes stale at once.
    let db = r.enroll("db-1", 1);
    seed::post(&r, &db, &seed::report("db-1", &[], chrono::Utc::now()));

    // SP-5 fails twice in a row, then passes.
    seed::post(&r, &web, &web_report("fail", chrono::Utc::now()));
    wait_for("control.failed by webhook", || {
        !hook.events("control.failed").is_empty()
    });
    seed::post(&r, &web, &web_report("fail", chrono::Utc::now()));
    std::thread::sleep(Duration::from_secs(3));
    seed::post(&r, &web, &web_report("pass", chrono::Utc::now()));
    wait_for("control.recovered by webhook", || {
        !hook.events("control.recovered").is_empty()
    });

    // An erasure past its deadline (`erasure.deadline: 1s` here).
    let resp = r
        .client()
        .post(format!("{}/api/v1/accounts/acme/closure", r.base))
        .bearer_auth(&staff)
        .json(&json!({"requested_by": "ticket 1", "reason": "closed", "identifiers": ["u-1842"]}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap());

    for e in ["host.stale", "expiring", "erasure.overdue"] {
        wait_for(e, || !hook.events(e).is_empty());
    }
    // A few more scans: nothing is told twice.
    std::thread::sleep(Duration::from_secs(4));

    let failed = hook.events("control.failed");
    assert_eq!(failed.len(), 1, "one control.failed: {failed:?}");
    assert_eq!(failed[0]["host"], "web-1");
    assert_eq!(failed[0]["control"], "SP-5");
    assert_eq!(hook.events("control.recovered").len(), 1);
    let stale = hook.events("host.stale");
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert_eq!(stale[0]["host"], "db-1");
    let expiring = hook.events("expiring");
    let kinds: Vec<&str> = expiring
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "certificate").count(),
        1,
        "the certificate once today: {expiring:?}"
    );
    assert_eq!(kinds.iter().filter(|k| **k == "attestation").count(), 1);
    assert_eq!(hook.events("erasure.overdue").len(), 1);
    assert_eq!(hook.events("erasure.overdue")[0]["account"], "acme");
    let head = hook.accepted.lock().unwrap()[0].0.to_ascii_lowercase();
    assert!(head.contains("authorization: bearer hook-token"), "{head}");

    // The failed delivery was retried and its record says so.
    assert!(*hook.requests.lock().unwrap() > hook.accepted.lock().unwrap().len() as u32);
    let all = notices(&r, &staff, "control.failed");
    let by_hook = all.iter().find(|n| n["channel"] == "webhook").unwrap();
    assert!(by_hook["sent_at"].is_string(), "{by_hook}");
    let retried: Vec<Value> = [
        "control.failed",
        "host.stale",
        "expiring",
        "erasure.overdue",
    ]
    .iter()
    .flat_map(|e| notices(&r, &staff, e))
    .filter(|n| n["attempts"].as_i64().unwrap() >= 2)
    .collect();
    assert_eq!(retried.len(), 1, "exactly the first delivery failed once");
    assert!(retried[0]["sent_at"].is_string());

    // E-mail: the same events, through STARTTLS and AUTH, to the staff address.
    wait_for("e-mails for every event", || {
        let m = smtp.messages();
        [
            "control.failed",
            "control.recovered",
            "host.stale",
            "expiring",
            "erasure.overdue",
        ]
        .iter()
        .all(|e| {
            m.iter()
                .any(|x| x["data"].as_str().unwrap().contains(&format!("event: {e}")))
        })
    });
    let mails = smtp.messages();
    assert!(
        mails.iter().all(|m| m["tls"] == true && m["auth"] == true),
        "{mails:?}"
    );
    assert!(mails
        .iter()
        .all(|m| m["to"] == json!(["security@example.test"])));
    let count = |e: &str| {
        mails
            .iter()
            .filter(|m| {
                m["data"]
                    .as_str()
                    .unwrap()
                    .replace("\r\n", "\n")
                    .contains(&format!("event: {e}\n"))
            })
            .count()
    };
    assert_eq!(count("control.failed"), 1);
    assert_eq!(count("control.recovered"), 1);
    assert_eq!(count("host.stale"), 1);
    let email_records = notices(&r, &staff, "control.recovered");
    assert!(email_records
        .iter()
        .any(|n| n["channel"] == "email" && n["sent_at"].is_string()));

    // --- an incident: acknowledgement, status page, triage, breach clock ---
    let resp = r
        .client()
        .post(format!("{}/api/v1/incidents", r.base))
        .json(&json!({"summary": "Customer data visible to others", "description": "I saw another customer's invoice.", "contact": "reporter@example.org"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let receipt: Value = resp.json().unwrap();
    let id = receipt["tracking_id"].as_str().unwrap().to_owned();
    let status_url = receipt["status_url"].as_str().unwrap().to_owned();
    assert!(
        status_url.starts_with("https://security.example.test/incident-status/"),
        "{status_url}"
    );
    wait_for("the acknowledgement e-mail", || {
        smtp.messages()
            .iter()
            .any(|m| m["to"] == json!(["reporter@example.org"]))
    });
    let ack = smtp
        .messages()
        .into_iter()
        .find(|m| m["to"] == json!(["reporter@example.org"]))
        .unwrap();
    let text = ack["data"]
        .as_str()
        .unwrap()
        .replace("=\r\n", "")
        .replace("=\n", "");
    assert!(text.contains(&id), "{text}");
    assert!(text.contains(&status_url), "{text}");
    assert!(
        !text.contains("another customer's invoice"),
        "nothing submitted is echoed"
    );
    wait_for("incident.new", || {
        hook.events("incident.new")
            .iter()
            .any(|e| e["tracking_id"] == id.as_str())
    });

    // The status page: no login, status and public notes only.
    let path = status_url.trim_start_matches("https://security.example.test");
    let page = |r: &Reporter| {
        let resp = r.client().get(format!("{}{path}", r.base)).send().unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        resp.text().unwrap()
    };
    assert!(page(&r).contains(&id) && page(&r).contains("new"));
    let wrong = r
        .client()
        .get(format!("{}/incident-status/{}", r.base, "0".repeat(64)))
        .send()
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 404);
    let triage = |body: Value| {
        let resp = r
            .client()
            .post(format!("{}/api/v1/incidents/{id}/transitions", r.base))
            .bearer_auth(&staff)
            .json(&body)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().unwrap())
    };
    let (s, v) = triage(
        json!({"status": "acknowledged", "note": "We are looking into it.", "public": true}),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = triage(
        json!({"note": "suspect the invoice cache on web-1", "severity": "high", "assignee": "sec",
        "hosts": ["web-1"], "controls": ["SP-5"]}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["severity"], "high");
    assert_eq!(v["assignee"], "sec");
    assert_eq!(
        v["links"],
        json!([{"kind": "control", "target": "SP-5"}, {"kind": "host", "target": "web-1"}])
    );
    assert!(v["breach_notify_by"].is_null());
    let (s, v) = triage(json!({"hosts": ["nowhere-1"]}));
    assert_eq!(s, 400, "{v}");
    let (s, v) = triage(json!({"severity": "apocalyptic"}));
    assert_eq!(s, 400, "{v}");
    let status = page(&r);
    assert!(status.contains("We are looking into it.") && status.contains("acknowledged"));
    assert!(
        !status.contains("invoice cache"),
        "a private note stays private"
    );
    assert!(!status.contains("web-1"));

    // The personal-data breach mark: 72 hours from now, kept when marked again.
    let before = chrono::Utc::now();
    let (s, v) = triage(json!({"personal_data_breach": true}));
    assert_eq!(s, 200, "{v}");
    let by = chrono::DateTime::parse_from_rfc3339(v["breach_notify_by"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let hours = (by - before).num_minutes();
    assert!(
        (72 * 60 - 1..=72 * 60 + 1).contains(&hours),
        "{hours} minutes"
    );
    assert!(
        v["breach_time_left"]
            .as_str()
            .unwrap()
            .starts_with("71 h 59 min left")
            || v["breach_time_left"]
                .as_str()
                .unwrap()
                .starts_with("72 h 0 min left")
    );
    let (_, v2) = triage(json!({"personal_data_breach": true, "note": "again"}));
    assert_eq!(v2["breach_notify_by"], v["breach_notify_by"]);
    let html = {
        let resp = r
            .client()
            .get(format!("{}/reports/incidents/{id}", r.base))
            .bearer_auth(&staff)
            .send()
            .unwrap();
        resp.text().unwrap()
    };
    assert!(
        html.contains("notify the supervisory authority by"),
        "{html}"
    );
    assert!(html.contains(" left)"), "the time left is shown");

    // An attachment: stored under its digest; too large refused.
    let file = b"screenshot bytes".to_vec();
    let resp = r
        .client()
        .post(format!(
            "{}/api/v1/incidents/{id}/attachments?name=shot.png",
            r.base
        ))
        .bearer_auth(&staff)
        .header("content-type", "image/png")
        .body(file.clone())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let a: Value = resp.json().unwrap();
    let digest = a["sha256"].as_str().unwrap();
    assert_eq!(a["scan"], "not_scanned");
    assert_eq!(
        std::fs::read(r.data.join("attachments").join(digest)).unwrap(),
        file
    );
    let resp = r
        .client()
        .post(format!(
            "{}/api/v1/incidents/{id}/attachments?name=../x",
            r.base
        ))
        .bearer_auth(&staff)
        .body("x")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

#[test]
fn implicit_tls_and_slack_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certs(dir.path());
    let smtp = SmtpSink::start(dir.path(), "implicit", &cert, &key, None);
    let hook = Receiver::start(0);
    let cfg = dir.path().join("reporter.yaml");
    std::fs::write(
        &cfg,
        format!(
            "notify:\n  webhook: http://127.0.0.1:{}/slack\n  webhook_format: slack\n\
             \x20 smtp:\n    url: smtps://127.0.0.1:{}\n    from: vigil@example.test\n    to: [security@example.test]\n    ca_file: {}\n\
             \x20 drain_every_secs: 1\n",
            hook.port,
            smtp.port,
            ca.display()
        ),
    )
    .unwrap();
    let r = Reporter::start(
        &dir.path().join("data"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let resp = r
        .client()
        .post(format!("{}/api/v1/incidents", r.base))
        .json(&json!({"summary": "s", "description": "d"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let id = resp.json::<Value>().unwrap()["tracking_id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for("the Slack-shaped webhook", || {
        !hook.accepted.lock().unwrap().is_empty()
    });
    let body = hook.accepted.lock().unwrap()[0].1.clone();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["text"], "{body}");
    assert!(body["text"].as_str().unwrap().contains(&id));
    wait_for("the e-mail over implicit TLS", || {
        !smtp.messages().is_empty()
    });
    assert!(smtp.messages()[0]["data"].as_str().unwrap().contains(&id));
}

#[test]
fn bad_notify_config_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("reporter.yaml");
    std::fs::write(
        &cfg,
        "notify:\n  smtp:\n    url: ftp://mail\n    from: vigil@example.test\n",
    )
    .unwrap();
    let o = Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args(["serve", "--plain-http", "--config"])
        .arg(&cfg)
        .arg("--data")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("reporter.yaml:2:")
            && err.contains("`notify.smtp`")
            && err.contains("ftp://mail"),
        "{err}"
    );
}
