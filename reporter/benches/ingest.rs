//! Reports ingested per second and latency with many concurrent agents on
//! loopback: `cargo bench -p vigil-reporter --bench ingest`.
//! Set `VIGIL_BENCH_PG_URL=postgres://…` to measure PostgreSQL too;
//! `VIGIL_BENCH_AGENTS` (default 100) and `VIGIL_BENCH_REPORTS` (per agent, default 40).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a benchmark: a failure must stop it loudly"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn report(host: &str, controls: usize) -> Value {
    let t = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let cs: Vec<Value> = (0..controls)
        .map(|i| {
            json!({"id": format!("SP-{i}"), "title": "a control of the policy", "status": "pass", "checks": [
                {"id": "c", "type": "tls_endpoint", "status": "pass", "summary": "TLS 1.3, chain trusted, 64 days left",
                 "findings": [], "evidence": {"subject": "CN=papyrs.example", "issuer": "Gandi RSA Domain Validation Secure Server CA", "days_left": 64}, "duration_ms": 12}]})
        })
        .collect();
    json!({
        "schema": "vigil.report/v1", "report_id": uuid::Uuid::new_v4().to_string(),
        "agent": {"host": host, "version": "0.1.0"},
        "policy": {"id": "papyrs-security", "version": "1", "sha256": "d".repeat(64)},
        "started_at": t, "finished_at": t, "controls": cs,
        "summary": {"pass": controls, "fail": 0, "error": 0, "attested": 0, "skipped": 0, "waived": 0, "unknown": 0}
    })
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

async fn run(label: &str, database: Option<String>, agents: usize, per_agent: usize) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = vigil_reporter::config::ReporterConfig {
        database,
        enroll_secrets: vec!["bench".into()],
        ..Default::default()
    };
    let state = vigil_reporter::app::state(&cfg, dir.path()).await.unwrap();
    let app = vigil_reporter::app::build(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let base = format!("http://{addr}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(agents)
        .build()
        .unwrap();
    let mut tokens = Vec::new();
    for i in 0..agents {
        let v: Value = client
            .post(format!("{base}/api/v1/enroll"))
            .json(&json!({"secret": "bench", "host": format!("web-{i}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(v["token"].as_str().unwrap().to_owned());
    }
    // Bodies are made before the clock starts: we measure the reporter.
    let bodies: Vec<Vec<String>> = (0..agents)
        .map(|i| {
            (0..per_agent)
                .map(|_| report(&format!("web-{i}"), 20).to_string())
                .collect()
        })
        .collect();
    let bytes = bodies
        .first()
        .and_then(|b| b.first())
        .map_or(0, String::len);
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(
        agents * per_agent,
    )));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (token, reports) in tokens.into_iter().zip(bodies) {
        let (client, base, lat) = (client.clone(), base.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            for body in reports {
                let t = Instant::now();
                let r = client
                    .post(format!("{base}/api/v1/reports"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
                lat.lock().unwrap().push(t.elapsed());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let mut l = latencies.lock().unwrap().clone();
    l.sort();
    let n = l.len();
    println!(
        "{label}: {n} reports ({bytes} bytes, 20 controls) from {agents} concurrent agents in {:.2} s: {:.0} reports/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        pct(&l, 0.5).as_secs_f64() * 1e3,
        pct(&l, 0.99).as_secs_f64() * 1e3,
        l.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn main() {
    let agents: usize = std::env::var("VIGIL_BENCH_AGENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let per: usize = std::env::var("VIGIL_BENCH_REPORTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        run("sqlite", None, agents, per).await;
        if let Ok(url) = std::env::var("VIGIL_BENCH_PG_URL") {
            run("postgresql", Some(url), agents, per).await;
        }
    });
}
