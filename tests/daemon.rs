//! `vigil-agent enroll` and `vigil-agent run` against the real reporter on a
//! loopback port (SQLite): three agents enrolled with their own state
//! directories, reports flowing, the reporter stopped for a while and
//! restarted (every spooled report arrives exactly once), `kill -9` of the
//! reporter in the middle of the stream (no acknowledged report missing, none
//! doubled), TLS with `ca_file`, a corrupt spool file quarantined, the spool's
//! bounds and its drop counter, a revoked token and re-enrollment, SIGHUP,
//! sd_notify READY/WATCHDOG/STOPPING, and SIGTERM's last flush.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use vigil_tests::*;

fn policy_file() -> PathBuf {
    workspace().join("tests/data/daemon/policy.yaml")
}

type Agent = DaemonAgent;

fn staff_get(r: &Reporter, staff: &str, path: &str) -> Value {
    let (s, v) = r.get_json(staff, path);
    assert_eq!(s, 200, "{path}: {v}");
    v
}

fn stored_count(r: &Reporter, staff: &str, host: &str) -> usize {
    r.stored_report_ids(staff, host).len()
}

/// Every report the agent spooled is stored exactly once, and nothing else.
fn assert_exactly_once(r: &Reporter, staff: &str, a: &Agent) {
    let spooled = a.spooled_ids();
    let stored = r.stored_report_ids(staff, &a.host);
    let stored_set: HashSet<&String> = stored.iter().collect();
    assert_eq!(stored_set.len(), stored.len(), "a report stored twice");
    let spooled_set: HashSet<&String> = spooled.iter().collect();
    assert_eq!(
        spooled_set.len(),
        spooled.len(),
        "a report id spooled twice"
    );
    let missing: Vec<&&String> = spooled_set.difference(&stored_set).collect();
    assert!(
        missing.is_empty(),
        "{}: spooled but never stored: {missing:?}",
        a.host
    );
    let extra: Vec<&&String> = stored_set.difference(&spooled_set).collect();
    assert!(
        extra.is_empty(),
        "{}: stored but never spooled: {extra:?}",
        a.host
    );
    assert!(!spooled.is_empty());
}

fn reporter_config(dir: &Path, policy: Option<&Path>) -> PathBuf {
    let path = dir.join("reporter.yaml");
    let mut text = String::new();
    if let Some(p) = policy {
        text += &format!("policy: {}\n", p.display());
    }
    std::fs::write(&path, if text.is_empty() { "{}\n".into() } else { text }).unwrap();
    path
}

#[test]
fn three_agents_report_and_the_spool_survives_a_reporter_outage() {
    let data = tempfile::tempdir().unwrap();
    let cfg = reporter_config(data.path(), Some(&policy_file()));
    let mut r = Reporter::start(
        &data.path().join("data"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let staff = r.add_user("daemon-staff", "auditor");

    // A wrong secret: exit 2, no token written, the secret not echoed.
    let mut agents: Vec<Agent> = ["web-1", "web-2", "db-1"]
        .iter()
        .map(|h| Agent::new(h, &r.base, ""))
        .collect();
    let o = agents[0].enroll("wrong-secret-value-42");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("refused"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("wrong-secret-value-42"));
    assert!(!agents[0].token_file().exists());

    // Enroll all three; the token file is 0600 and the token is not printed.
    for a in &agents {
        let o = a.enroll(ENROLL_SECRET);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let token = std::fs::read_to_string(a.token_file()).unwrap();
        assert!(token.starts_with("vgl_"), "{token}");
        let mode = std::fs::metadata(a.token_file())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!stdout(&o).contains(token.trim()) && !stderr(&o).contains(token.trim()));
        assert!(!stderr(&o).contains(ENROLL_SECRET) && !stdout(&o).contains(ENROLL_SECRET));
    }
    for a in &mut agents {
        a.start(&[]);
    }

    // Reports flow, under the policy the reporter hands out.
    for a in &agents {
        wait_until(20, &format!("reports from {}", a.host), || {
            stored_count(&r, &staff, &a.host) >= 2
        });
    }
    let sha = {
        use std::io::Read;
        let mut b = Vec::new();
        std::fs::File::open(policy_file())
            .unwrap()
            .read_to_end(&mut b)
            .unwrap();
        let out = Command::new("sha256sum")
            .arg(policy_file())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    let id = &r.stored_report_ids(&staff, "db-1")[0];
    let body = staff_get(&r, &staff, &format!("/api/v1/reports/{id}"));
    assert_eq!(body["policy"]["sha256"], sha.as_str(), "{body}");
    assert_eq!(body["agent"]["host"], "db-1");
    assert_eq!(body["agent"]["roles"][0], "app");
    assert!(
        agents[2].log().contains("from the reporter"),
        "{}",
        agents[2].log()
    );
    assert!(agents[2]
        .dir
        .path()
        .join("state/checks/reporter-policy.yaml")
        .is_file());
    let posture = staff_get(&r, &staff, "/api/v1/hosts");
    assert_eq!(posture["hosts"].as_array().unwrap().len(), 3, "{posture}");

    // The reporter goes away for a while: reports wait in the spools.
    r.kill9();
    std::thread::sleep(Duration::from_secs(3));
    for a in &agents {
        assert!(a.spool_len() >= 2, "{}: {} spooled", a.host, a.spool_len());
    }
    // SIGHUP while the reporter is away: the config is read again.
    agents[1].signal("HUP");
    r.restart();

    // Back: every spool drains, in order, and each report arrives once.
    for a in &agents {
        wait_until(30, &format!("{} spool drained", a.host), || {
            a.spool_len() == 0
        });
    }
    for a in &mut agents {
        assert_eq!(a.stop(), 0, "{}", a.log());
    }
    // the last flush on SIGTERM delivered what was spooled meanwhile
    for a in &agents {
        assert_eq!(a.spool_len(), 0, "{}", a.log());
        assert_exactly_once(&r, &staff, a);
        let log = a.log();
        assert!(!log.contains(ENROLL_SECRET));
        let token = std::fs::read_to_string(a.token_file()).unwrap();
        assert!(!log.contains(token.trim()), "token in the log");
    }
    assert!(agents[1].log().contains("reloaded"), "{}", agents[1].log());
}

#[test]
fn kill_9_mid_stream_over_tls_loses_and_doubles_nothing() {
    let data = tempfile::tempdir().unwrap();
    let mut r = Reporter::start(&data.path().join("data"), true, None, &[]);
    let staff = r.add_user("daemon-staff", "auditor");
    let ca = data.path().join("data/tls/cert.pem");
    let extra = format!("ca_file: {}\n", ca.display());
    let mut agents: Vec<Agent> = ["tls-1", "tls-2"]
        .iter()
        .map(|h| Agent::new(h, &r.base, &extra))
        .collect();

    // Without the trust anchor the reporter's self-signed certificate is refused.
    let plain = Agent::new("tls-x", &r.base, "");
    let o = plain.enroll(ENROLL_SECRET);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!plain.token_file().exists());

    for a in &agents {
        let o = a.enroll(ENROLL_SECRET);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }

    // A corrupt report in a spool: quarantined, the agent keeps going.
    std::fs::create_dir_all(agents[0].spool()).unwrap();
    std::fs::write(
        agents[0].spool().join("00000000000000000001-corrupt.json"),
        "{\"schema\": \"vigil.report/v1\", \"truncat",
    )
    .unwrap();

    // sd_notify on agent 0: READY, WATCHDOG, STOPPING.
    let sock_path = data.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    agents[0].start(&[
        ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
        ("WATCHDOG_USEC", "400000"),
    ]);
    agents[1].start(&[]);
    // read every notification as systemd does, so none is dropped
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = sock.recv(&mut buf) {
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
    }
    let recv = |want: &str| {
        wait_until(15, want, || seen.lock().unwrap().iter().any(|m| m == want));
    };
    recv("READY=1");
    recv("WATCHDOG=1");

    for a in &agents {
        wait_until(20, &format!("reports from {}", a.host), || {
            stored_count(&r, &staff, &a.host) >= 1
        });
    }
    // kill -9 in the middle of the stream, several times
    for pause in [700u64, 1100, 400] {
        std::thread::sleep(Duration::from_millis(pause));
        r.kill9();
        std::thread::sleep(Duration::from_millis(300));
        r.restart();
    }
    for a in &agents {
        wait_until(30, &format!("{} spool drained", a.host), || {
            a.spool_len() == 0
        });
    }
    for a in &mut agents {
        assert_eq!(a.stop(), 0, "{}", a.log());
    }
    recv("STOPPING=1");
    for a in &agents {
        assert_exactly_once(&r, &staff, a);
    }
    let q = agents[0]
        .spool()
        .join("quarantine/00000000000000000001-corrupt.json");
    assert!(q.is_file(), "{}", agents[0].log());
    assert!(
        agents[0]
            .log()
            .contains("not valid JSON; moved to quarantine"),
        "{}",
        agents[0].log()
    );
    // the local policy (this reporter hands out none)
    assert!(
        agents[1].log().contains("from the local policy"),
        "{}",
        agents[1].log()
    );
}

#[test]
fn spool_bounds_drop_counter_and_re_enrollment() {
    let data = tempfile::tempdir().unwrap();
    let mut r = Reporter::start(&data.path().join("data"), false, None, &[]);
    let admin = r.add_user("daemon-admin", "admin");
    let mut a = Agent::new("bounded-1", &r.base, "spool_max_reports: 3\n");
    let o = a.enroll(ENROLL_SECRET);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let agent_id = stdout(&o)
        .split(" as agent ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap()
        .to_owned();
    a.start(&[]);
    wait_until(20, "a first report", || {
        stored_count(&r, &admin, &a.host) >= 1
    });

    // Reporter away long enough for more than 3 reports: the oldest are dropped.
    r.kill9();
    wait_until(20, "a dropped report", || {
        a.log().contains("dropped the oldest report")
    });
    assert!(a.spool_len() <= 3);
    r.restart();
    wait_until(30, "a report carrying the drop counter", || {
        r.stored_report_ids(&admin, &a.host).iter().any(|id| {
            let body = staff_get(&r, &admin, &format!("/api/v1/reports/{id}"));
            body["agent"]["spool_dropped"]
                .as_u64()
                .is_some_and(|n| n >= 1)
        })
    });

    // Revoked: the agent keeps its spool and says to enroll again.
    let resp = r
        .client()
        .delete(format!("{}/api/v1/agents/{agent_id}", r.base))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    wait_until(20, "the re-enroll message", || {
        a.log().contains("run `vigil-agent enroll`")
    });
    wait_until(10, "reports kept in the spool", || a.spool_len() >= 2);
    let before = stored_count(&r, &admin, &a.host);

    // Enrolled again: shipping resumes without a restart.
    let o = a.enroll(ENROLL_SECRET);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    wait_until(20, "the spool drained after re-enrollment", || {
        a.spool_len() == 0 && stored_count(&r, &admin, &a.host) > before
    });
    assert!(a.log().contains("a new token is in"), "{}", a.log());
    assert_eq!(a.stop(), 0);
    // nothing spooled twice, nothing stored twice; dropped reports are gone for good
    let stored = r.stored_report_ids(&admin, &a.host);
    let set: HashSet<&String> = stored.iter().collect();
    assert_eq!(set.len(), stored.len());
    let spooled: HashSet<String> = a.spooled_ids().into_iter().collect();
    assert!(set.iter().all(|id| spooled.contains(*id)));
    assert!(
        std::fs::read_to_string(a.spool().join("dropped.count"))
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
}

#[test]
fn run_refuses_to_start_without_a_token_and_enroll_without_a_secret() {
    let a = Agent::new("lonely", "http://127.0.0.1:9", "");
    let o = Command::new(agent())
        .args(["run", "--config"])
        .arg(a.config())
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("vigil-agent enroll"), "{}", stderr(&o));
    let o = Command::new(agent())
        .args(["enroll", "--config"])
        .arg(a.config())
        .env_remove("VIGIL_ENROLL_SECRET")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no enrollment secret"),
        "{}",
        stderr(&o)
    );
    // the reporter is not there: exit 2 with the reason
    let o = a.enroll("s3cret-value");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot reach the reporter"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("s3cret-value"));
    // plain http to a non-loopback address is refused by the config
    std::fs::write(a.config(), "server: http://10.1.2.3:80\n").unwrap();
    let o = a.enroll("x");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("plain http"), "{}", stderr(&o));
}
