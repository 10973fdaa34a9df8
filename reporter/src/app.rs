//! Assembles the service: API routes, public routes, limits and timeouts.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use tower_http::timeout::TimeoutLayer;

use crate::api::{self, AppState, PolicyBlob, Shared};
use crate::config::ReporterConfig;
use crate::store::Store;

pub const DEFAULT_MAX_REPORT: usize = 4 * 1024 * 1024;

/// A client must send a request's headers (the first one from the moment it
/// connects, later ones on a kept-alive connection) within this time, or the
/// connection is closed: slow clients cannot hold connections open for ever.
/// Bodies are bounded by the 30 s request timeout below.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The router and its OpenAPI document.
pub fn build(state: Shared) -> Router {
    let max = state.max_report_bytes;
    let max_export = usize::try_from(state.max_export_bytes).unwrap_or(usize::MAX);
    let (api_router, _openapi) = api::router().split_for_parts();
    // Archive uploads stream to disk: their own size limit and a longer timeout.
    let uploads = Router::new()
        .route(
            "/api/v1/exports/{account}",
            axum::routing::put(crate::exports::upload),
        )
        .layer(DefaultBodyLimit::max(max_export))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(3600),
        ))
        .with_state(state.clone());
    Router::new()
        .merge(api_router)
        .merge(crate::exports::router())
        .merge(crate::web::router())
        .merge(crate::intake::router())
        .merge(crate::brochure::router())
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        // Public routes: per-client rate limit and a short response cache.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::public::guard,
        ))
        // Bodies beyond the largest report are refused before they are read whole.
        .layer(DefaultBodyLimit::max(max.saturating_add(1024)))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(state)
        .merge(uploads)
}

/// Reads the policy to hand out, refusing one that does not validate.
pub fn load_policy(path: &std::path::Path) -> anyhow::Result<PolicyBlob> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("cannot read policy `{}`: {e}", path.display()))?;
    crate::policies::blob_of(&bytes, &path.display().to_string())
}

pub fn database_url(cfg: &ReporterConfig, data: &std::path::Path) -> String {
    std::env::var("VIGIL_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| cfg.database.clone())
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data.join("vigil.db").display()))
}

pub async fn state(cfg: &ReporterConfig, data: &std::path::Path) -> anyhow::Result<Shared> {
    std::fs::create_dir_all(data)
        .map_err(|e| anyhow::anyhow!("cannot create data directory `{}`: {e}", data.display()))?;
    let url = database_url(cfg, data);
    let store = Store::open(&url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the store: {e}"))?;
    let mut secrets = cfg.enroll_secrets.clone();
    if let Ok(s) = std::env::var("VIGIL_ENROLL_SECRET") {
        if !s.is_empty() {
            secrets.push(s);
        }
    }
    let policy = cfg.policy.as_deref().map(load_policy).transpose()?;
    let key_path = cfg
        .audit_key
        .clone()
        .unwrap_or_else(|| data.join("audit/ed25519.key"));
    let audit = crate::audit::AuditLog::load_or_create(
        &key_path,
        cfg.audit_origin.as_deref().unwrap_or("vigil-reporter"),
    )?
    .with_witness(crate::audit::Witness {
        file: Some(
            cfg.witness_file
                .clone()
                .unwrap_or_else(|| crate::audit::witness_file(data)),
        ),
        url: cfg.witness_url.clone(),
    });
    // One log, one key: a reporter with another key refuses to start.
    audit.claim_key(&store, &key_path).await?;
    let policy_key = crate::audit::load_or_create_key(
        &cfg.policy_key
            .clone()
            .unwrap_or_else(|| data.join("policy/ed25519.key")),
        "policy",
    )?;
    let state = Arc::new(AppState {
        store,
        audit,
        erasure: cfg.erasure.clone().unwrap_or_default(),
        enroll_secrets: secrets,
        policy: std::sync::RwLock::new(None),
        policy_key,
        max_report_bytes: cfg.max_report_bytes.unwrap_or(DEFAULT_MAX_REPORT),
        exports_dir: data.join("exports"),
        max_export_bytes: cfg
            .max_export_bytes
            .unwrap_or(crate::exports::DEFAULT_MAX_EXPORT),
        site: crate::web::Site::new(cfg)?,
        ingest: crate::ingest::Ingest::default(),
        agent_tls: cfg.agent_tls.clone(),
        public: crate::public::Public::new(cfg.public_limit.clone().unwrap_or_default()),
    });
    // The config's policy is published (signed, audited) when it is not the
    // newest published one already.
    let latest = crate::policies::latest(&state)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the published policies: {e}"))?;
    match policy {
        Some(p) if latest.as_ref().map(|l| &l.sha256) != Some(&p.sha256) => {
            crate::policies::publish(&state, p, "config").await?;
        }
        _ => state.set_policy(latest),
    }
    Ok(state)
}
