//! The SQLite store under many writers at once: agents posting reports and
//! enrolling, staff creating and revoking waivers, opening and cancelling
//! closures, making login links, anonymous clients polling the audit
//! checkpoint. Every answer is a success or a refusal of the request itself,
//! never a 5xx.
//!
//! Regression (issue 22, item 5): under four agents the store answered a
//! report with `database is locked` (a 500): a transaction that read before
//! it wrote could not take the write lock once another connection had
//! committed, and failed at once instead of waiting.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};
use vigil_tests::*;

fn report(host: &str) -> Value {
    report_of(
        host,
        &[
            ("SP-1", "tls_endpoint", "pass"),
            ("SP-2", "firewall", "fail"),
        ],
        chrono::Utc::now(),
    )
}

#[test]
fn many_writers_at_once_get_no_server_error() {
    const AGENTS: usize = 24;
    const PER_AGENT: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reporter.yaml");
    // The public limit is not what this test is about.
    std::fs::write(&config, "public_limit: {per_minute: 0}\n").unwrap();
    let data = dir.path().join("data");
    let mut r = Reporter::start(&data, false, None, &["--config", config.to_str().unwrap()]);
    let admin = r.add_user("alice", "admin");
    let tokens: Vec<(String, String)> = (0..AGENTS)
        .map(|i| {
            let host = format!("load-{i}");
            let t = r.enroll(&host, 3600);
            (host, t)
        })
        .collect();
    let server_errors = AtomicUsize::new(0);
    let requests = AtomicUsize::new(0);
    let check = |what: &str, status: u16, body: &str| {
        requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            server_errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("{what}: {status} {body}");
        }
    };
    let c = r.client();
    let base = r.base.clone();
    let waivers =
        |i: usize| {
            let id = format!("W-{i}");
            let resp = c
            .post(format!("{base}/api/v1/waivers"))
            .bearer_auth(&admin)
            .json(&json!({"id": id, "control": "SP-2", "hosts": ["load-1"], "justification": "load",
                "approved_by": "ciso", "approved_on": "2026-11-20", "expires": "2099-01-31"}))
            .send()
            .unwrap();
            check("waiver", resp.status().as_u16(), "");
            let resp = c
                .delete(format!("{base}/api/v1/waivers/{id}"))
                .bearer_auth(&admin)
                .send()
                .unwrap();
            check("waiver revoke", resp.status().as_u16(), "");
        };
    let closures = |i: usize| {
        let account = format!("acct{i}");
        let resp = c
            .post(format!("{base}/api/v1/accounts/{account}/closure"))
            .bearer_auth(&admin)
            .json(&json!({"requested_by": "support", "reason": "load"}))
            .send()
            .unwrap();
        let st = resp.status().as_u16();
        check("closure", st, &resp.text().unwrap_or_default());
        let resp = c
            .delete(format!("{base}/api/v1/accounts/{account}/closure"))
            .bearer_auth(&admin)
            .send()
            .unwrap();
        check("closure cancel", resp.status().as_u16(), "");
    };
    let sessions = |_: usize| {
        let resp = c
            .post(format!("{base}/api/v1/login-links"))
            .bearer_auth(&admin)
            .send()
            .unwrap();
        check("login link", resp.status().as_u16(), "");
    };
    let enrolls = |i: usize| {
        let resp = c
            .post(format!("{base}/api/v1/enroll"))
            .json(&json!({"secret": ENROLL_SECRET, "host": format!("late-{i}"), "interval_secs": 3600}))
            .send()
            .unwrap();
        check("enroll", resp.status().as_u16(), "");
    };
    let polls = |_: usize| {
        let resp = c
            .get(format!("{base}/api/v1/audit/checkpoint"))
            .send()
            .unwrap();
        check("checkpoint", resp.status().as_u16(), "");
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let mut agents = Vec::new();
        for (host, token) in &tokens {
            let (c, base, check) = (r.client(), r.base.clone(), &check);
            agents.push(s.spawn(move || {
                for _ in 0..PER_AGENT {
                    let resp = c
                        .post(format!("{base}/api/v1/reports"))
                        .bearer_auth(token)
                        .json(&report(host))
                        .send()
                        .unwrap();
                    let st = resp.status().as_u16();
                    check("report", st, &resp.text().unwrap_or_default());
                }
            }));
        }
        // Staff and anonymous writers, until the agents are done.
        let done = &done;
        let writers: [&(dyn Fn(usize) + Sync); 6] =
            [&waivers, &closures, &sessions, &enrolls, &polls, &polls];
        let others: Vec<_> = writers
            .into_iter()
            .map(|f| {
                s.spawn(move || {
                    let mut i = 0;
                    while !done.load(Ordering::Relaxed) {
                        f(i);
                        i += 1;
                    }
                })
            })
            .collect();
        for a in agents {
            a.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        for o in others {
            o.join().unwrap();
        }
    });
    let n = requests.load(Ordering::Relaxed);
    assert!(n > AGENTS * PER_AGENT, "{n} requests");
    assert_eq!(
        server_errors.load(Ordering::Relaxed),
        0,
        "server errors among {n} requests (see above)"
    );
    assert!(
        r.child.try_wait().unwrap().is_none(),
        "the reporter exited under load"
    );
    let t = std::time::Instant::now();
    let resp = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .unwrap()
        .get(format!("{}/api/v1/audit/verify", r.base))
        .bearer_auth(&admin)
        .send()
        .unwrap_or_else(|e| panic!("verify: {e:?}"));
    eprintln!("verify took {:?}", t.elapsed());
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().unwrap();
    assert_eq!(v["ok"], true, "{v}");
}
