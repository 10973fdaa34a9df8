//! `serve`: the service itself, its background ticks and its TLS files
//! watched for changes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use vigil_reporter::config::ReporterConfig;
use vigil_reporter::{app, tls};

use super::{config_of, data_dir};

/// Shortest enrollment secret `serve` accepts (issue 19, item 3).
const MIN_SECRET_LEN: usize = 16;

pub async fn serve(
    config: Option<PathBuf>,
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    plain_http: bool,
) -> anyhow::Result<()> {
    let mut cfg = config_of(config.as_ref())?;
    cfg.plain_http |= plain_http;
    let data = data_dir(data, &cfg);
    let listen: SocketAddr = match listen {
        Some(l) => l,
        None => cfg
            .listen
            .as_deref()
            .unwrap_or("127.0.0.1:8443")
            .parse()
            .context("`listen`")?,
    };
    check_secrets(&cfg)?;
    let state = app::state(&cfg, &data).await?;
    // The tree is built once, now, and checked against the newest
    // witnessed checkpoint: a log cut below it is not served.
    let cp = state
        .audit
        .warm_up(&state.store)
        .await
        .context("the audit log does not match its witnessed checkpoints")?;
    tracing::info!(size = cp.size, "audit log loaded");
    if state.enroll_secrets.is_empty() && state.enroll_role_secrets.is_empty() {
        tracing::warn!("no enrollment secret (config `enroll_secrets` or VIGIL_ENROLL_SECRET): agents cannot enroll");
    }
    // Notices: the event scan and the outbox's drainer.
    vigil_reporter::notify::spawn(state.clone());
    vigil_reporter::advisories::spawn(
        state.store.clone(),
        vigil_reporter::state::Audit(state.audit.clone()),
        cfg.advisories.clone(),
    );
    vigil_reporter::retention::spawn(
        state.clone(),
        cfg.retention.as_ref().and_then(|r| r.reports),
    );
    // Signed checkpoints at intervals, whenever the log has grown.
    let st = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            // Staleness moves closures with time (never proves a phase).
            if let Err(e) = vigil_reporter::closures::advance_all(&st, "reporter").await {
                tracing::error!(error = %e, "cannot advance closures");
            }
            // Exports on request past their validity are deleted (audited).
            if let Err(e) = vigil_reporter::exports::sweep(
                &st.store,
                &st.audit,
                &st.exports_dir,
                vigil_reporter::store::now_ms(),
            )
            .await
            {
                tracing::error!(error = %e, "cannot delete expired exports");
            }
            if let Err(e) = st.audit.checkpoint(&st.store).await {
                tracing::error!(error = %e, "cannot issue an audit checkpoint");
            }
        }
    });
    let router = app::build(state);
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests in flight");
        h.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    if cfg.plain_http {
        tracing::info!(%listen, "serving plain HTTP");
        let mut server = axum_server::bind(listen)
            .handle(handle)
            .first_request_timeout(app::HEADER_READ_TIMEOUT);
        server
            .http_builder()
            .http1()
            .header_read_timeout(app::HEADER_READ_TIMEOUT);
        server.serve(service).await.context("server failed")?;
    } else {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let id = match &cfg.tls {
            Some(t) => tls::Identity {
                cert: t.cert.clone(),
                key: t.key.clone(),
                generated: false,
            },
            None => tls::self_signed(&data)?,
        };
        if id.generated {
            tracing::warn!(cert = %id.cert.display(), fingerprint = %tls::fingerprint(&id.cert)?,
                "generated a self-signed certificate; give agents this file as `ca_file`, or configure `tls` with a real one");
        }
        let agent_tls = cfg.agent_tls.clone();
        let server_config =
            vigil_reporter::mtls::server_config(&id.cert, &id.key, agent_tls.as_ref())?;
        let rustls_config =
            axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(server_config));
        // A renewed certificate, a new CA bundle or CRL is picked up
        // within seconds, without a restart; a broken one is refused
        // and the running config kept.
        let watched = vigil_reporter::mtls::watched_files(&id.cert, &id.key, agent_tls.as_ref());
        let reload = rustls_config.clone();
        tokio::spawn(async move {
            let stamp = |files: &[PathBuf]| -> Vec<Option<std::time::SystemTime>> {
                files
                    .iter()
                    .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
                    .collect()
            };
            let mut seen = stamp(&watched);
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                let now = stamp(&watched);
                if now == seen {
                    continue;
                }
                seen = now;
                match vigil_reporter::mtls::server_config(&id.cert, &id.key, agent_tls.as_ref()) {
                    Ok(c) => {
                        reload.reload_from_config(Arc::new(c));
                        tracing::info!(
                            "TLS files changed: certificate, agent CA and CRLs reloaded"
                        );
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS files changed but do not load; keeping the running config")
                    }
                }
            }
        });
        if let Some(a) = &cfg.agent_tls {
            tracing::info!(ca = %a.ca.display(), crls = a.crls.len(), require = a.require, "agent certificates (mutual TLS) on");
        }
        tracing::info!(%listen, "serving HTTPS");
        let mut server = axum_server::bind_rustls(listen, rustls_config)
            .handle(handle)
            .first_request_timeout(app::HEADER_READ_TIMEOUT);
        server
            .http_builder()
            .http1()
            .header_read_timeout(app::HEADER_READ_TIMEOUT);
        server.serve(service).await.context("server failed")?;
    }
    Ok(())
}

/// Refuses to serve with a short enrollment secret (issue 19, item 3): the
/// secret is all that stands between anyone and an enrolled agent.
fn check_secrets(cfg: &ReporterConfig) -> anyhow::Result<()> {
    let env = std::env::var("VIGIL_ENROLL_SECRET")
        .ok()
        .filter(|s| !s.is_empty());
    if env
        .as_ref()
        .is_some_and(|s| s.chars().count() < MIN_SECRET_LEN)
    {
        anyhow::bail!("VIGIL_ENROLL_SECRET is shorter than {MIN_SECRET_LEN} characters; use a long random secret (`openssl rand -base64 24`)");
    }
    for (i, s) in cfg.enroll_secrets.iter().enumerate() {
        if s.chars().count() < MIN_SECRET_LEN {
            anyhow::bail!("config `enroll_secrets[{i}]` is shorter than {MIN_SECRET_LEN} characters; use a long random secret (`openssl rand -base64 24`)");
        }
    }
    for (i, s) in cfg.enroll_role_secrets.iter().enumerate() {
        if s.secret.chars().count() < MIN_SECRET_LEN {
            anyhow::bail!("config `enroll_role_secrets[{i}].secret` is shorter than {MIN_SECRET_LEN} characters; use a long random secret (`openssl rand -base64 24`)");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}
