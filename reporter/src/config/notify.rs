//! `notify:` in the reporter config: webhook and e-mail notices to staff.

use std::path::PathBuf;

use serde::Deserialize;

/// `notify:` in the reporter config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// POSTed a JSON notice of every event (no submitter text in it).
    pub webhook: Option<String>,
    /// Sent as `Authorization: Bearer …` to the webhook. `VIGIL_WEBHOOK_TOKEN` overrides it.
    pub webhook_token: Option<String>,
    /// `json` (default: the event's fields and a `text` line) or `slack`
    /// (only `{"text": …}`, what a Slack incoming webhook takes).
    pub webhook_format: WebhookFormat,
    /// E-mail notices.
    pub smtp: Option<SmtpConfig>,
    /// Hold e-mailed notices other than `incident.new` and `breach.deadline`
    /// and send them as one e-mail a day, at `digest_hour` (UTC). Webhooks
    /// are never held.
    pub digest: bool,
    pub digest_hour: u32,
    /// How often the store is looked at for new events (default 60 s).
    pub scan_every_secs: u64,
    /// How often the outbox is drained (default 5 s).
    pub drain_every_secs: u64,
    /// The first retry after a failed delivery (default 30 s), doubling up
    /// to an hour; after `max_attempts` (default 12) the notice is given up.
    pub retry_base_secs: u64,
    pub max_attempts: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            webhook: None,
            webhook_token: None,
            webhook_format: WebhookFormat::Json,
            smtp: None,
            digest: false,
            digest_hour: 8,
            scan_every_secs: 60,
            drain_every_secs: 5,
            retry_base_secs: 30,
            max_attempts: 12,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    #[default]
    Json,
    Slack,
}

/// `notify.smtp:`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `smtp://HOST:PORT` (STARTTLS, required) or `smtps://HOST:PORT` (implicit TLS).
    pub url: String,
    pub from: String,
    /// Staff addresses notices go to.
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the password (its first line), never the password itself.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A PEM CA to trust besides the system's (a private mail relay).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl NotifyConfig {
    /// Problems with the values (the keys are checked by serde), as
    /// (key, message) pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(w) = &self.webhook {
            if !(w.starts_with("https://") || w.starts_with("http://")) {
                out.push(("webhook", format!("`{w}` is not an http(s) URL")));
            }
        }
        if let Some(s) = &self.smtp {
            if parse_smtp_url(&s.url).is_none() {
                out.push((
                    "smtp",
                    format!(
                        "`url`: `{}` is not smtp://HOST:PORT or smtps://HOST:PORT",
                        s.url
                    ),
                ));
            }
            for a in std::iter::once(&s.from).chain(&s.to) {
                if a.parse::<lettre::message::Mailbox>().is_err() {
                    out.push(("smtp", format!("`{a}` is not an e-mail address")));
                }
            }
            if s.username.is_some() != s.password_file.is_some() {
                out.push((
                    "smtp",
                    "`username` and `password_file` go together".to_owned(),
                ));
            }
        }
        if self.digest_hour > 23 {
            out.push(("digest_hour", "must be 0 to 23".to_owned()));
        }
        if self.scan_every_secs == 0 || self.drain_every_secs == 0 || self.retry_base_secs == 0 {
            out.push((
                "scan_every_secs",
                "intervals must be at least 1 second".to_owned(),
            ));
        }
        out
    }
}

/// (implicit TLS, host, port) of `smtp://HOST:PORT` or `smtps://HOST:PORT`.
pub fn parse_smtp_url(url: &str) -> Option<(bool, String, u16)> {
    let (wrapped, rest) = if let Some(r) = url.strip_prefix("smtps://") {
        (true, r)
    } else {
        (false, url.strip_prefix("smtp://")?)
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
        _ => (rest, if wrapped { 465 } else { 587 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return None;
    }
    Some((wrapped, host.to_owned(), port))
}
