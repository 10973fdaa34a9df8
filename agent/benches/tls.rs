//! Times `tls_endpoint` (collect + judge, as the agent runs it) against
//! rustls servers on 127.0.0.1: one endpoint many times (median, p99), with
//! and without the TLS 1.0/1.1 probes, and one check listing 50 endpoints.
//!
//! `cargo bench -p vigil-agent --bench tls` (needs `openssl` for the
//! certificates). Figures go to docs/benchmarks/tls.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a benchmark fails by panicking"
)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use vigil_agent::collect::{collect, HostCtx};
use vigil_rules::checks::{CheckSpec, JudgeCtx};

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian package `openssl`)")
        .status
        .success();
    assert!(ok, "openssl {args:?} failed");
}

fn make_pki(dir: &Path) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "root.key",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "root.key",
            "-subj",
            "/CN=Bench Root",
            "-days",
            "30",
            "-out",
            "root.pem",
        ],
    );
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "leaf.key",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            "/CN=bench.test",
            "-out",
            "leaf.csr",
        ],
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=critical,CA:false\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:bench.test\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
    );
}

async fn serve(config: Arc<rustls::ServerConfig>, listener: TcpListener) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let mut buf = [0u8; 256];
                while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
            }
        });
    }
}

fn spec(addresses: &[String], root: &str, probes: bool) -> CheckSpec {
    let with = serde_json::json!({
        "addresses": addresses,
        "server_name": "bench.test",
        "ca_file": root,
        "probe_old_protocols": probes,
    });
    CheckSpec::TlsEndpoint(serde_json::from_value(with).unwrap())
}

async fn once(spec: &CheckSpec, ctx: &HostCtx) -> Duration {
    let t = Instant::now();
    let facts = collect(spec, ctx).await.unwrap();
    let v = spec.judge(
        &facts,
        &JudgeCtx {
            now: chrono::Utc::now(),
            host: "bench".into(),
        },
    );
    let took = t.elapsed();
    assert_eq!(v.status.as_str(), "pass", "{}", v.summary);
    took
}

fn stats(name: &str, mut d: Vec<Duration>) {
    d.sort();
    let pick = |q: f64| d[((d.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name}: runs {}, median {:.2} ms, p99 {:.2} ms, min {:.2} ms, max {:.2} ms",
        d.len(),
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.99).as_secs_f64() * 1e3,
        d[0].as_secs_f64() * 1e3,
        d[d.len() - 1].as_secs_f64() * 1e3
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // else: run a short version then.
    let full = std::env::args().any(|a| a == "--bench");
    let runs = if full { 300 } else { 5 };
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.path().join("leaf.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(dir.path().join("leaf.key")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap(),
    );
    let root = dir.path().join("root.pem").display().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut addresses = Vec::new();
        for _ in 0..50 {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addresses.push(l.local_addr().unwrap().to_string());
            tokio::spawn(serve(config.clone(), l));
        }
        let ctx = HostCtx::live();
        for (name, probes) in [
            ("one endpoint, with TLS 1.0/1.1 probes", true),
            ("one endpoint, no probes", false),
        ] {
            let s = spec(&addresses[..1], &root, probes);
            once(&s, &ctx).await; // warm-up
            let mut d = Vec::with_capacity(runs);
            for _ in 0..runs {
                d.push(once(&s, &ctx).await);
            }
            stats(name, d);
        }
        let s = spec(&addresses, &root, true);
        once(&s, &ctx).await;
        let mut d = Vec::new();
        for _ in 0..(runs / 10).max(2) {
            d.push(once(&s, &ctx).await);
        }
        stats("50 endpoints in one check, with probes", d);
    });
}
