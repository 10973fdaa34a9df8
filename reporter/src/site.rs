//! What the public and staff pages need beyond the store: the site's
//! config, its templates, the intake's limiters and the HTTP client of
//! notices. Built once at start ([`Site::new`]).

use axum::response::Html;
use minijinja::Environment;

use crate::config::intake::IntakeConfig;
use crate::config::notify::NotifyConfig;
use crate::config::ReporterConfig;
use crate::error::PageError;
use crate::net::RateLimiter;

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
        ("base.html", include_str!("web/templates/base.html")),
        ("login.html", include_str!("web/templates/login.html")),
        ("macros.html", include_str!("web/templates/macros.html")),
        ("overview.html", include_str!("web/templates/overview.html")),
        ("hosts.html", include_str!("web/templates/hosts.html")),
        ("closures.html", include_str!("web/templates/closures.html")),
        ("closure.html", include_str!("web/templates/closure.html")),
        ("control.html", include_str!("web/templates/control.html")),
        ("host.html", include_str!("web/templates/host.html")),
        ("report.html", include_str!("web/templates/report.html")),
        (
            "incidents.html",
            include_str!("web/templates/incidents.html"),
        ),
        ("incident.html", include_str!("web/templates/incident.html")),
        (
            "report_incident.html",
            include_str!("web/templates/report_incident.html"),
        ),
        (
            "incident_ack.html",
            include_str!("web/templates/incident_ack.html"),
        ),
        (
            "incident_status.html",
            include_str!("web/templates/incident_status.html"),
        ),
        ("error.html", include_str!("web/templates/error.html")),
    ] {
        env.add_template(name, text)
            .map_err(|e| anyhow::anyhow!("template `{name}`: {e}"))?;
    }
    Ok(env)
}
