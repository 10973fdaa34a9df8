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

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Router;
use minijinja::Environment;

use crate::api::Shared;
use crate::config::ReporterConfig;
use crate::intake::{IntakeConfig, NotifyConfig};

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
    pub trusted_proxies: Vec<crate::intake::ProxyNet>,
    /// The intake's limit over all clients together.
    pub intake_global: crate::intake::GlobalWindow,
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
                .map(|p| crate::intake::ProxyNet::parse(p))
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("`trusted_proxies`: {e}"))?,
            intake_global: crate::intake::GlobalWindow::default(),
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

/// A fixed-window counter per client address.
#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl RateLimiter {
    /// Counts one request of `addr` at `now_ms`; false when it is over
    /// `limit` in the current window of `window_ms`.
    pub fn allow(&self, addr: IpAddr, now_ms: i64, window_ms: i64, limit: u32) -> bool {
        self.count(addr, now_ms, window_ms) <= limit
    }

    /// Counts one request of `addr`'s network (the address for IPv4, its /64
    /// for IPv6: one host holds a whole /64) and returns the count in the
    /// current window.
    pub fn count(&self, addr: IpAddr, now_ms: i64, window_ms: i64) -> u32 {
        let addr = network_of(addr);
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() > 100_000 {
            w.retain(|_, (start, _)| now_ms.saturating_sub(*start) < window_ms);
        }
        let e = w.entry(addr).or_insert((now_ms, 0));
        if now_ms.saturating_sub(e.0) >= window_ms {
            *e = (now_ms, 0);
        }
        e.1 = e.1.saturating_add(1);
        e.1
    }
}

/// The unit a rate limit counts: an IPv4 address, an IPv6 /64.
pub fn network_of(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
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

#[cfg(test)]
mod limiter_tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let l = RateLimiter::default();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(l.count(a, 0, 1000), 1);
        assert_eq!(l.count(b, 1, 1000), 2, "same /64");
        assert_eq!(l.count(other, 2, 1000), 1);
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(l.count(v4, 3, 1000), 1);
        assert_eq!(l.count(mapped, 4, 1000), 2);
        assert!(!l.allow(mapped, 5, 1000, 2));
        assert!(l.allow(mapped, 2000, 1000, 2), "a new window");
    }
}
