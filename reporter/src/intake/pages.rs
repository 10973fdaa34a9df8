//! The intake's public pages: the form at `/report-incident`, the
//! submitter's status page and `/.well-known/security.txt`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use super::input::MAX_SHORT_CHARS;
use super::routes::*;
use super::store::*;
use crate::error::PageError;
use crate::net::Peer;
use crate::state::Shared;
use crate::store::StoreError;

// --- the submitter's status page ---------------------------------------------------

/// An incident as its submitter sees it: status and public history only.
#[derive(Debug, Serialize)]
pub struct PublicStatus {
    pub tracking_id: String,
    pub status: String,
    pub received_at: String,
    pub updated_at: String,
    /// Status changes, and notes staff chose to share.
    pub history: Vec<PublicEvent>,
}

#[derive(Debug, Serialize)]
pub struct PublicEvent {
    pub at: String,
    pub status: String,
    pub note: Option<String>,
}

pub async fn public_status(
    state: &Shared,
    token: &str,
) -> Result<Option<PublicStatus>, StoreError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM incidents WHERE status_digest = $1")
            .bind(sha256_hex(token))
            .fetch_optional(&state.store.pool)
            .await?;
    let Some(id) = id else { return Ok(None) };
    let Some((inc, events)) = get_one(state, &id).await? else {
        return Ok(None);
    };
    let history = events
        .into_iter()
        .filter(|e| e.public || e.from_status.as_deref() != Some(e.to_status.as_str()))
        .map(|e| PublicEvent {
            at: e.at,
            status: e.to_status,
            note: if e.public { e.note } else { None },
        })
        .collect();
    Ok(Some(PublicStatus {
        tracking_id: inc.tracking_id,
        status: inc.status,
        received_at: inc.created_at,
        updated_at: inc.updated_at,
        history,
    }))
}

async fn status_page(
    State(state): State<Shared>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let Some(st) = public_status(&state, &token).await? else {
        return Err(PageError::Status(
            StatusCode::NOT_FOUND,
            "no such status page".into(),
        ));
    };
    let mut resp = state
        .site
        .render(
            "incident_status.html",
            minijinja::context! {
                title => format!("Report {}", st.tracking_id),
                organization => state.site.organization,
                st => st,
            },
        )?
        .into_response();
    // The link is the secret: keep it out of caches and referrers.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("no-referrer"),
    );
    Ok(resp)
}

// --- public pages -----------------------------------------------------------------

async fn form_page(State(state): State<Shared>) -> Result<Response, PageError> {
    Ok(state
        .site
        .render(
            "report_incident.html",
            minijinja::context! {
                title => "Report a security incident",
                organization => state.site.organization,
                limits => minijinja::context! {
                    summary => state.site.intake.max_summary_chars,
                    description => state.site.intake.max_description_chars,
                    short => MAX_SHORT_CHARS,
                },
            },
        )?
        .into_response())
}

async fn form_submit(
    State(state): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PageError> {
    let r = submit(&state, peer, &headers, body, Kind::Form).await?;
    Ok(state
        .site
        .render(
            "incident_ack.html",
            minijinja::context! {
                title => "Report received",
                tracking_id => r.tracking_id,
                received_at => r.received_at,
                status_url => r.status_url,
                organization => state.site.organization,
            },
        )?
        .into_response())
}

/// RFC 9116: Contact (the configured contact, then the form; absolute URIs
/// only), Expires (a year ahead, recomputed on every request), Policy,
/// Preferred-Languages, Canonical. Without `public_url` nor
/// `security_contact` there is no absolute contact to give: a comment says so.
pub fn security_txt(site: &crate::site::Site, now: chrono::DateTime<chrono::Utc>) -> String {
    let expires =
        (now + chrono::Duration::days(365)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut s = String::new();
    s.push_str(&format!("# Security contact of {}\n", site.organization));
    let mut contacts = 0;
    if let Some(c) = &site.security_contact {
        s.push_str(&format!("Contact: {c}\n"));
        contacts += 1;
    }
    if site.public_url.is_some() {
        s.push_str(&format!("Contact: {}\n", site.url("/report-incident")));
        contacts += 1;
    }
    if contacts == 0 {
        s.push_str(
            "# No contact: the reporter's `public_url` or `security_contact` is not configured\n",
        );
    }
    s.push_str(&format!("Expires: {expires}\n"));
    if site.public_url.is_some() {
        s.push_str(&format!("Policy: {}\n", site.url("/policy.pdf")));
    }
    s.push_str("Preferred-Languages: en\n");
    if site.public_url.is_some() {
        s.push_str(&format!(
            "Canonical: {}\n",
            site.url("/.well-known/security.txt")
        ));
    }
    s
}

async fn security_txt_route(State(state): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        security_txt(&state.site, chrono::Utc::now()),
    )
        .into_response()
}

/// The public routes that are not under `/api` (the JSON routes are in `api::router`).
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/report-incident", get(form_page).post(form_submit))
        .route("/incident-status/{token}", get(status_page))
        .route("/.well-known/security.txt", get(security_txt_route))
}
