//! Drains the outbox: claims due notices, sends them, records the outcome.
//!
//! A notice is claimed for a minute before it is sent (`claimed_until`), so
//! two reporters sharing a PostgreSQL database do not both send it. A failed
//! delivery is retried after `retry_base_secs`, doubling to at most an hour;
//! after `max_attempts` it is given up (`failed_at`) and stays on record.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::Row;

use crate::config::notify::{parse_smtp_url, NotifyConfig, SmtpConfig, WebhookFormat};
use crate::state::{AppState, Shared};
use crate::store::{now_ms, StoreError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    #[error("webhook: {0}")]
    Webhook(String),
    #[error("smtp: {0}")]
    Smtp(String),
    #[error("not configured: {0}")]
    NotConfigured(&'static str),
}

fn transport(cfg: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let smtp = SendError::Smtp;
    let (wrapped, host, port) =
        parse_smtp_url(&cfg.url).ok_or_else(|| smtp("bad `url`".to_owned()))?;
    let mut tls = TlsParameters::builder(host.clone());
    if let Some(ca) = &cfg.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| smtp(format!("cannot read `ca_file` `{}`: {e}", ca.display())))?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| smtp(format!("`ca_file` `{}`: {e}", ca.display())))?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls.build_rustls().map_err(|e| smtp(e.to_string()))?;
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(Duration::from_secs(20)))
        // STARTTLS is required on smtp://: a relay that does not offer it gets nothing.
        .tls(if wrapped {
            Tls::Wrapper(tls)
        } else {
            Tls::Required(tls)
        });
    if let (Some(user), Some(file)) = (&cfg.username, &cfg.password_file) {
        let pass = std::fs::read_to_string(file).map_err(|e| {
            smtp(format!(
                "cannot read `password_file` `{}`: {e}",
                file.display()
            ))
        })?;
        let pass = pass.lines().next().unwrap_or_default().to_owned();
        b = b.credentials(Credentials::new(user.clone(), pass));
    }
    Ok(b.build())
}

/// Sends one plain-text e-mail.
pub async fn send_mail(
    cfg: &SmtpConfig,
    to: &[&str],
    subject: &str,
    body: String,
) -> Result<(), SendError> {
    let smtp = SendError::Smtp;
    let from: Mailbox = cfg.from.parse().map_err(|e| smtp(format!("`from`: {e}")))?;
    let mut m = Message::builder().from(from).subject(subject);
    for a in to {
        let mb: Mailbox = a.parse().map_err(|e| smtp(format!("`{a}`: {e}")))?;
        m = m.to(mb);
    }
    let msg = m
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| smtp(e.to_string()))?;
    transport(cfg)?
        .send(msg)
        .await
        .map_err(|e| smtp(e.to_string()))?;
    Ok(())
}

/// POSTs one notice to the webhook.
pub async fn send_webhook(
    cfg: &NotifyConfig,
    client: &reqwest::Client,
    payload: &serde_json::Value,
) -> Result<(), SendError> {
    let url = cfg
        .webhook
        .as_deref()
        .ok_or(SendError::NotConfigured("webhook"))?;
    let token = std::env::var("VIGIL_WEBHOOK_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .or_else(|| cfg.webhook_token.clone());
    let body = match cfg.webhook_format {
        WebhookFormat::Json => payload.clone(),
        WebhookFormat::Slack => {
            serde_json::json!({"text": payload.get("text").cloned().unwrap_or_default()})
        }
    };
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(SendError::Webhook(format!("answered {}", r.status()))),
        // Without the URL: it may hold a token in its path.
        Err(e) => Err(SendError::Webhook(e.without_url().to_string())),
    }
}

/// The staff e-mail of one notice: (subject, body).
pub fn staff_mail(payload: &serde_json::Value) -> (String, String) {
    let s = |k: &str| payload.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let mut body = format!("{}\n\n", s("text"));
    if let Some(m) = payload.as_object() {
        for (k, v) in m {
            if k == "text" {
                continue;
            }
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            body.push_str(&format!("{k}: {v}\n"));
        }
    }
    (format!("[vigil] {}: {}", s("event"), s("text")), body)
}

/// The acknowledgement to a submitter: (subject, body). Only the tracking id
/// and the status link; nothing they wrote is echoed.
pub fn ack_mail(payload: &serde_json::Value) -> (String, String) {
    let s = |k: &str| payload.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    (
        format!("Your security report {} was received", s("tracking_id")),
        format!(
            "Thank you for your report to {org}.\n\n\
             Tracking id: {id}\n\
             Follow its status (keep this link to yourself; anyone holding it can read the status):\n{url}\n\n\
             Quote the tracking id in any follow-up.\n",
            org = s("organization"),
            id = s("tracking_id"),
            url = s("status_url"),
        ),
    )
}

/// The daily digest: one e-mail listing several notices.
pub fn digest_mail(payloads: &[serde_json::Value]) -> (String, String) {
    let mut body = format!("{} notices since the last digest:\n\n", payloads.len());
    for p in payloads {
        let s = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        body.push_str(&format!("- {} {}: {}\n", s("at"), s("event"), s("text")));
    }
    (
        format!("[vigil] daily digest: {} notices", payloads.len()),
        body,
    )
}

struct Due {
    id: i64,
    channel: String,
    recipient: String,
    payload: String,
    digest: bool,
    attempts: i64,
}

async fn claim(state: &AppState, id: i64, now: i64) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE notices SET claimed_until = $1 WHERE id = $2 AND claimed_until <= $3 AND sent_at IS NULL AND failed_at IS NULL",
    )
    .bind(now.saturating_add(60_000))
    .bind(id)
    .bind(now)
    .execute(&state.store.pool)
    .await?
    .rows_affected()
        == 1)
}

async fn record(
    state: &AppState,
    cfg: &NotifyConfig,
    due: &Due,
    outcome: &Result<(), SendError>,
) -> Result<(), StoreError> {
    let now = now_ms();
    let attempts = due.attempts.saturating_add(1);
    match outcome {
        Ok(()) => {
            sqlx::query("UPDATE notices SET sent_at = $1, attempts = $2, claimed_until = 0, last_error = NULL WHERE id = $3")
                .bind(now)
                .bind(attempts)
                .bind(due.id)
                .execute(&state.store.pool)
                .await?;
        }
        Err(e) => {
            let give_up = attempts >= i64::from(cfg.max_attempts.max(1));
            let shift = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
            let wait = i64::try_from(cfg.retry_base_secs)
                .unwrap_or(30)
                .saturating_mul(1000)
                .saturating_mul(1_i64 << shift)
                .min(3_600_000);
            sqlx::query("UPDATE notices SET attempts = $1, last_error = $2, next_attempt_at = $3, failed_at = $4, claimed_until = 0 WHERE id = $5")
                .bind(attempts)
                .bind(e.to_string())
                .bind(now.saturating_add(wait))
                .bind(give_up.then_some(now))
                .bind(due.id)
                .execute(&state.store.pool)
                .await?;
            if give_up {
                tracing::error!(notice = due.id, error = %e, attempts, "notice given up");
            } else {
                tracing::warn!(notice = due.id, error = %e, attempts, "notice not delivered; will retry");
            }
        }
    }
    Ok(())
}

async fn send_one(state: &AppState, due: &Due) -> Result<(), SendError> {
    let cfg = &state.site.notify;
    let payload: serde_json::Value = serde_json::from_str(&due.payload).unwrap_or_default();
    match due.channel.as_str() {
        "webhook" => {
            let client = state
                .site
                .http
                .as_ref()
                .ok_or(SendError::NotConfigured("http client"))?;
            send_webhook(cfg, client, &payload).await
        }
        "email" | "ack" => {
            let smtp = cfg.smtp.as_ref().ok_or(SendError::NotConfigured("smtp"))?;
            let (subject, body) = if due.channel == "ack" {
                ack_mail(&payload)
            } else {
                staff_mail(&payload)
            };
            let to: Vec<&str> = due.recipient.split(", ").collect();
            send_mail(smtp, &to, &subject, body).await
        }
        _ => Err(SendError::NotConfigured("channel")),
    }
}

/// One pass: every due notice, digests grouped into one e-mail per recipient list.
pub async fn drain_once(state: &AppState) -> Result<usize, StoreError> {
    let now = now_ms();
    let rows = sqlx::query("SELECT id, channel, recipient, payload, digest, attempts FROM notices WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 AND claimed_until <= $2 ORDER BY id LIMIT 100")
        .bind(now)
        .bind(now)
        .fetch_all(&state.store.pool)
        .await?;
    let mut due = Vec::new();
    for r in &rows {
        due.push(Due {
            id: r.try_get("id")?,
            channel: r.try_get("channel")?,
            recipient: r.try_get("recipient")?,
            payload: r.try_get("payload")?,
            digest: r.try_get::<i64, _>("digest")? != 0,
            attempts: r.try_get("attempts")?,
        });
    }
    let mut sent = 0;
    let (held, single): (Vec<Due>, Vec<Due>) = due.into_iter().partition(|d| d.digest);
    for d in single {
        if !claim(state, d.id, now).await? {
            continue;
        }
        let outcome = send_one(state, &d).await;
        if outcome.is_ok() {
            sent += 1;
            tracing::info!(notice = d.id, channel = %d.channel, "notice sent");
        }
        record(state, &state.site.notify, &d, &outcome).await?;
    }
    // The digest: everything held for the same recipients, in one e-mail.
    let mut groups: Vec<(String, Vec<Due>)> = Vec::new();
    for d in held {
        match groups.iter_mut().find(|g| g.0 == d.recipient) {
            Some(g) => g.1.push(d),
            None => groups.push((d.recipient.clone(), vec![d])),
        }
    }
    for (recipient, items) in groups {
        let mut claimed = Vec::new();
        for d in items {
            if claim(state, d.id, now).await? {
                claimed.push(d);
            }
        }
        if claimed.is_empty() {
            continue;
        }
        let payloads: Vec<serde_json::Value> = claimed
            .iter()
            .map(|d| serde_json::from_str(&d.payload).unwrap_or_default())
            .collect();
        let (subject, body) = digest_mail(&payloads);
        let outcome = match &state.site.notify.smtp {
            Some(smtp) => {
                let to: Vec<&str> = recipient.split(", ").collect();
                send_mail(smtp, &to, &subject, body).await
            }
            None => Err(SendError::NotConfigured("smtp")),
        };
        if outcome.is_ok() {
            sent += claimed.len();
            tracing::info!(notices = claimed.len(), "daily digest sent");
        }
        for d in &claimed {
            record(state, &state.site.notify, d, &outcome).await?;
        }
    }
    Ok(sent)
}

/// The drainer's loop.
pub async fn run(state: Shared) {
    let every = Duration::from_secs(state.site.notify.drain_every_secs.max(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = drain_once(&state).await {
            tracing::error!(error = %e, "cannot drain the notice outbox");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        assert_eq!(
            parse_smtp_url("smtp://mail.example:2525"),
            Some((false, "mail.example".into(), 2525))
        );
        assert_eq!(
            parse_smtp_url("smtps://mail.example"),
            Some((true, "mail.example".into(), 465))
        );
        assert_eq!(
            parse_smtp_url("smtp://[::1]:25"),
            Some((false, "::1".into(), 25))
        );
        assert_eq!(parse_smtp_url("http://x"), None);
        assert_eq!(parse_smtp_url("smtp://u@x:25"), None);
    }

    #[test]
    fn ack_echoes_nothing_submitted() {
        let (subject, body) = ack_mail(&serde_json::json!({
            "tracking_id": "INC-0123456789AB", "status_url": "https://s/x", "organization": "Papyrs"
        }));
        assert!(subject.contains("INC-0123456789AB"));
        assert!(body.contains("https://s/x"));
    }
}
