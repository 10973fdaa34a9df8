//! Assembles the service: API routes, public routes, limits and timeouts.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::timeout::TimeoutLayer;

use crate::api;
use crate::config::ReporterConfig;
use crate::state::{AppState, PolicyBlob, Shared};
use crate::store::Store;

pub const DEFAULT_MAX_REPORT: usize = 4 * 1024 * 1024;

// What each feature's routes reach, taken from the application state: the
// features see these, never `AppState`.

impl FromRef<Shared> for Store {
    fn from_ref(s: &Shared) -> Self {
        s.store.clone()
    }
}

impl FromRef<Shared> for crate::state::Audit {
    fn from_ref(s: &Shared) -> Self {
        crate::state::Audit(s.audit.clone())
    }
}

impl FromRef<Shared> for crate::users::TokenLifetime {
    fn from_ref(s: &Shared) -> Self {
        crate::users::TokenLifetime(s.staff_token_lifetime_ms)
    }
}

impl FromRef<Shared> for crate::exports::Exports {
    fn from_ref(s: &Shared) -> Self {
        Self {
            store: s.store.clone(),
            audit: s.audit.clone(),
            erasure: s.erasure.clone(),
            dir: s.exports_dir.clone(),
            max_bytes: s.max_export_bytes,
        }
    }
}

/// A client must send a request's headers (the first one from the moment it
/// connects, later ones on a kept-alive connection) within this time, or the
/// connection is closed: slow clients cannot hold connections open for ever.
/// Bodies are bounded by the 30 s request timeout below.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The router and its OpenAPI document.
pub fn build(state: Shared) -> Router {
    let metrics = state.metrics.clone();
    let max = state.max_report_bytes;
    let max_export = usize::try_from(state.max_export_bytes).unwrap_or(usize::MAX);
    let (api_router, _openapi) = api::router().split_for_parts();
    // Archive uploads stream to disk: their own size limit and a longer timeout.
    let uploads = Router::new()
        .route(
            "/api/v1/exports/{account}",
            axum::routing::put(crate::exports::routes::upload),
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
        .merge(crate::scrape::router())
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        // Public routes: per-client rate limit and a short response cache.
        .layer(axum::middleware::from_fn_with_state(
            state.public.clone(),
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
        .layer(axum::middleware::map_response(security_headers))
        // Outermost: every answer is counted, timeouts and size refusals too.
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::track,
        ))
}

/// The Content-Security-Policy of HTML pages: no script at all, styles only
/// inline (the pages' one `<style>` block), images from here or inline SVG,
/// forms post back here, and no framing.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `nosniff` on every response; on HTML pages also a CSP, no framing and no
/// referrer (issue 19, item 18). Headers a route set itself are kept.
pub async fn security_headers(mut resp: axum::response::Response) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let h = resp.headers_mut();
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        h.entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(PAGE_CSP));
        h.entry(header::X_FRAME_OPTIONS)
            .or_insert(HeaderValue::from_static("DENY"));
        h.entry(header::REFERRER_POLICY)
            .or_insert(HeaderValue::from_static("no-referrer"));
    }
    resp
}

/// Creates the data directory 0700 whatever the umask (issue 19, item 16:
/// outside systemd it was 0755); an existing one readable by others is
/// tightened to 0700, with a warning.
pub fn private_data_dir(data: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let fail = |e: std::io::Error| {
        anyhow::anyhow!("cannot create data directory `{}`: {e}", data.display())
    };
    if !data.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data)
            .map_err(fail)?;
        // The umask may have taken bits away, never added: set it exactly.
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
        return Ok(());
    }
    let mode = std::fs::metadata(data).map_err(fail)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %data.display(), mode = format!("{:o}", mode & 0o777), "the data directory was open to other users: setting it to 0700");
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    Ok(())
}

/// Creates `path` 0600 if it is missing, and takes group and other bits off
/// an existing one (the SQLite database holds token digests and password
/// hashes; SQLite gives its `-wal` and `-shm` files the database's mode).
pub fn private_file(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| anyhow::anyhow!("cannot secure `{}`: {e}", path.display());
    // A planted symlink must not make us chmod another file.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        anyhow::bail!(
            "`{}` is a symbolic link; refusing to use it",
            path.display()
        );
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    let mode = f.metadata().map_err(fail)?.permissions().mode();
    if mode & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))
            .map_err(fail)?;
    }
    Ok(())
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
    private_data_dir(data)?;
    let url = database_url(cfg, data);
    if url.starts_with("sqlite://") {
        private_file(&data.join("vigil.db"))?;
    }
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
        audit: Arc::new(audit),
        erasure: Arc::new(cfg.erasure.clone().unwrap_or_default()),
        enroll_secrets: secrets,
        policy: std::sync::RwLock::new(None),
        policy_key,
        max_report_bytes: cfg.max_report_bytes.unwrap_or(DEFAULT_MAX_REPORT),
        exports_dir: data.join("exports"),
        max_export_bytes: cfg
            .max_export_bytes
            .unwrap_or(crate::exports::DEFAULT_MAX_EXPORT),
        site: crate::site::Site::new(cfg)?,
        ingest: crate::queue::Ingest::default(),
        agent_tls: cfg.agent_tls.clone(),
        enroll_role_secrets: cfg.enroll_role_secrets.clone(),
        throttle: crate::throttle::Throttle::default(),
        staff_token_lifetime_ms: cfg
            .staff_token_lifetime
            .map(|d| i64::try_from(d.as_std().as_millis()).unwrap_or(i64::MAX)),
        public: Arc::new(crate::public::Public::new(
            cfg.public_limit.clone().unwrap_or_default(),
        )),
        metrics: Arc::new(crate::metrics::Metrics::new(cfg.metrics.scrape_token()?)?),
        fleet_cache: Default::default(),
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
