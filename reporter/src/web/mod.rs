//! Server-rendered HTML for security staff (`/`, `/reports/...`), the login
//! form and one-time login links, and the public incident form's pages.
//!
//! Templates are minijinja files embedded in the binary; their names end in
//! `.html`, so everything they print is HTML-escaped unless a template says
//! otherwise (only the server-built SVG chart does, via `|safe`). No page needs
//! JavaScript.

pub mod chart;
pub mod pages;
pub mod session;

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Router;
use minijinja::Environment;

use crate::config::intake::IntakeConfig;
use crate::config::notify::NotifyConfig;
use crate::config::ReporterConfig;
pub use crate::net::{network_of, RateLimiter};
use crate::state::Shared;

/// What the public and staff pages need beyond the store: config, templates,
/// the intake's rate limiter, the notification client.
pub struct Site {
    /// `https://security.example`, no trailing slash; None when not configured.
    pub public_url: Option<String>,
    pub organization: String,
    pub security_contact: Option<String>,
    pub intake: IntakeConfig,
    pub notify: NotifyConfig,
    /// Cookies get `Secure` when the service is reached over TLS.
    pub secure_cookies: bool,
    /// The policy's own wording (a text file), for `/policy.pdf`.
    pub policy_text: Option<String>,
    pub templates: Environment<'static>,
    pub limiter: RateLimiter,
    pub http: Option<reqwest::Client>,
    /// Peers whose `Forwarded`/`X-Forwarded-For` name the client (config `trusted_proxies`).
    pub trusted_proxies: Vec<crate::net::ProxyNet>,
    /// The intake's limit over all clients together.
    pub intake_global: crate::net::GlobalWindow,
}

impl Site {
    pub fn new(cfg: &ReporterConfig) -> anyhow::Result<Site> {
        let policy_text = cfg
            .policy_text
            .as_ref()
            .map(|p| {
                std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("cannot read policy text `{}`: {e}", p.display()))
            })
            .transpose()?;
        let public_url = cfg
            .public_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_owned());
        let secure_cookies = !cfg.plain_http
            || public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https:"));
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .ok();
        Ok(Site {
            public_url,
            organization: cfg
                .organization
                .clone()
                .unwrap_or_else(|| "Papyrs".to_owned()),
            security_contact: cfg.security_contact.clone(),
            intake: cfg.intake.clone(),
            notify: cfg.notify.clone(),
            secure_cookies,
            policy_text,
            templates: templates()?,
            limiter: RateLimiter::default(),
            http,
            trusted_proxies: cfg
                .trusted_proxies
                .iter()
                .map(|p| crate::net::ProxyNet::parse(p))
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("`trusted_proxies`: {e}"))?,
            intake_global: crate::net::GlobalWindow::default(),
        })
    }

    /// An absolute URL of `path` when the public URL is known, else `path`.
    pub fn url(&self, path: &str) -> String {
        match &self.public_url {
            Some(base) => format!("{base}{path}"),
            None => path.to_owned(),
        }
    }

    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Result<Html<String>, PageError> {
        let t = self
            .templates
            .get_template(name)
            .map_err(|e| PageError::Internal(e.to_string()))?;
        t.render(ctx)
            .map(Html)
            .map_err(|e| PageError::Internal(format!("template `{name}`: {e:#}")))
    }
}

fn templates() -> anyhow::Result<Environment<'static>> {
    let mut env = Environment::new();
    for (name, text) in [
        ("base.html", include_str!("templates/base.html")),
        ("login.html", include_str!("templates/login.html")),
        ("overview.html", include_str!("templates/overview.html")),
        ("closures.html", include_str!("templates/closures.html")),
        ("closure.html", include_str!("templates/closure.html")),
        ("control.html", include_str!("templates/control.html")),
        ("host.html", include_str!("templates/host.html")),
        ("report.html", include_str!("templates/report.html")),
        ("incidents.html", include_str!("templates/incidents.html")),
        ("incident.html", include_str!("templates/incident.html")),
        (
            "report_incident.html",
            include_str!("templates/report_incident.html"),
        ),
        (
            "incident_ack.html",
            include_str!("templates/incident_ack.html"),
        ),
        (
            "incident_status.html",
            include_str!("templates/incident_status.html"),
        ),
        ("error.html", include_str!("templates/error.html")),
    ] {
        env.add_template(name, text)
            .map_err(|e| anyhow::anyhow!("template `{name}`: {e}"))?;
    }
    Ok(env)
}

/// An error of an HTML page: a page saying what went wrong, or a redirect to
/// the login form.
#[derive(Debug)]
pub enum PageError {
    Login(String),
    Status(StatusCode, String),
    Internal(String),
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl From<crate::error::ApiError> for PageError {
    fn from(e: crate::error::ApiError) -> Self {
        use crate::error::ApiError as E;
        match e {
            E::BadRequest(m) => PageError::Status(StatusCode::BAD_REQUEST, m),
            E::NotFound(m) => PageError::Status(StatusCode::NOT_FOUND, m),
            E::Forbidden(m) => PageError::Status(StatusCode::FORBIDDEN, m),
            E::Conflict(m) => PageError::Status(StatusCode::CONFLICT, m),
            E::TooLarge(m) => PageError::Status(StatusCode::PAYLOAD_TOO_LARGE, m),
            E::Unauthorized(m) | E::ReEnroll(m) => PageError::Status(StatusCode::UNAUTHORIZED, m),
            other => PageError::Internal(other.to_string()),
        }
    }
}

/// The error page, escaped like every other page; 5xx say nothing internal.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let env = ERROR_ENV.get_or_init(|| {
        let mut env = Environment::new();
        let _ = env.add_template("base.html", include_str!("templates/base.html"));
        let _ = env.add_template("error.html", include_str!("templates/error.html"));
        env
    });
    let body = env
        .get_template("error.html")
        .and_then(|t| {
            t.render(minijinja::context! {
                title => status.canonical_reason().unwrap_or("error"),
                status => status.as_u16(),
                message => message,
            })
        })
        .unwrap_or_else(|_| "error".to_owned());
    (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

static ERROR_ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Login(next) => {
                let next = if session::safe_next(&next) {
                    next
                } else {
                    "/".into()
                };
                let q = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
                Redirect::to(&format!("/login?{q}")).into_response()
            }
            PageError::Status(s, m) => error_page(s, &m),
            PageError::Internal(detail) => {
                tracing::error!(%detail, "page failed");
                error_page(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

/// The staff pages, the login routes and the public incident pages.
pub fn router() -> Router<Shared> {
    Router::new()
        .merge(pages::router())
        .merge(session::router())
}
