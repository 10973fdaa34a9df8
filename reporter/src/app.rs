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
    let (api_router, _openapi) = api::router().split_for_parts();
    Router::new()
        .merge(api_router)
        .merge(crate::web::router())
        .merge(crate::intake::router())
        .merge(crate::brochure::router())
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        // Bodies beyond the largest report are refused before they are read whole.
        .layer(DefaultBodyLimit::max(max.saturating_add(1024)))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(state)
}

/// Reads the policy to hand out, refusing one that does not validate.
pub fn load_policy(path: &std::path::Path) -> anyhow::Result<PolicyBlob> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("cannot read policy `{}`: {e}", path.display()))?;
    let p = vigil_rules::policy::parse(&bytes, &path.display().to_string())
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    Ok(PolicyBlob {
        id: p.meta.id.clone(),
        version: p.meta.version.clone(),
        sha256: p.sha256.clone(),
        yaml: String::from_utf8_lossy(&bytes).into_owned(),
        controls: p
            .controls
            .iter()
            .map(|c| (c.id.clone(), c.title.clone()))
            .collect(),
    })
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
    )?;
    Ok(Arc::new(AppState {
        store,
        audit,
        erasure: cfg.erasure.clone().unwrap_or_default(),
        enroll_secrets: secrets,
        policy,
        max_report_bytes: cfg.max_report_bytes.unwrap_or(DEFAULT_MAX_REPORT),
        site: crate::web::Site::new(cfg)?,
    }))
}
