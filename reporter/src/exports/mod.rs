//! The portable export's way to the customer (GDPR item 5).
//!
//! The app server that holds a site writes the archive and proves its
//! manifest in the `export` phase of the `erasure` check; its daemon then
//! uploads the archive (`PUT /api/v1/exports/{account}`, streamed into the
//! database in chunks of [`CHUNK`] bytes and hashed on the way, so that every
//! reporter sharing the database serves it; issue 22 item 6). Staff make a
//! download link (`POST /api/v1/accounts/{account}/export/link`) only for the
//! archive whose digest the agent proved: a random token of 256 bits, stored
//! as its SHA-256 digest, valid for a chosen time (default 7 days, at most
//! 30). `GET /exports/{token}` serves the archive to whoever holds the link
//! until it expires (410 afterwards). Uploads, links and downloads go into
//! the audit log, each in the same transaction as its row; the token never does.
//!
//! Exports on request (issue 21): staff open one with
//! `POST /api/v1/accounts/{account}/export` outside any closure; the app hosts
//! get an `export` task until one proves an archive, upload it, staff make a
//! link for that archive, and once the request's validity ends the archive,
//! its rows and links are deleted (audited) and the app hosts are told to
//! delete their copy.
//!
//! INVARIANT: after a closure ends (`closed` or `cancelled`) nothing of the
//! account's export remains here ([`drop_in`], called in the transition's
//! transaction), and no upload or link is accepted for it unless a new export
//! request was opened after a cancellation. A link's digest is the one the
//! closure's own `export_ready` evidence names, or the one an open request's
//! proof set; never any host's earlier result.
//!
//! [`routes`] holds the handlers, [`store`] the SQL (the archive's chunks,
//! the rows of archives, links and requests, and the sweep).

use std::path::{Path as FsPath, PathBuf};

use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::Shared;

pub mod routes;
pub mod store;

pub use routes::upload;
pub use store::{
    drop_in, ended_requests, open_requests, record_request_proof, remove_files, sweep, Dropped,
    OpenRequest,
};

/// Largest archive accepted by default.
pub const DEFAULT_MAX_EXPORT: u64 = 2 * 1024 * 1024 * 1024;
/// How long a link lives unless staff say otherwise.
pub const DEFAULT_LINK: std::time::Duration = std::time::Duration::from_secs(7 * 86400);
/// The longest a link may live.
pub const MAX_LINK: std::time::Duration = std::time::Duration::from_secs(30 * 86400);
/// The header carrying the archive's SHA-256 (hex) on upload and download.
pub const SHA_HEADER: &str = "x-archive-sha256";

fn valid_account(a: &str) -> bool {
    crate::extract::valid_account(a)
}

fn valid_sha(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// An archive from before migration 0022, kept on the disk of the reporter
/// that received it (its `exports` row names no upload).
fn archive_path(dir: &FsPath, account: &str, sha: &str) -> PathBuf {
    dir.join(account).join(format!("{sha}.tar.gz"))
}

/// The largest piece of an archive held in memory or in one row.
pub const CHUNK: usize = 1024 * 1024;
/// Chunks no `exports` row names (an upload cut off, a reporter killed)
/// are deleted by [`sweep`] once this old.
const ORPHAN_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Uploaded {
    pub account: String,
    pub sha256: String,
    pub size: u64,
    /// False when the same archive was already stored.
    pub created: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// How long the link works (`72h`, `7d`); default 7 days, at most 30.
    #[serde(default)]
    pub valid_for: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportLink {
    /// The download path, relative to the reporter's public URL; shown once.
    pub path: String,
    pub expires_at: String,
    pub sha256: String,
    pub size: u64,
    /// The host that proved and uploaded the archive.
    pub host: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequestBody {
    /// Who asked (the customer's ticket, or the admin).
    pub requested_by: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// How long the export stays available (`72h`, `7d`); default 7 days, at most 30.
    #[serde(default)]
    pub valid_for: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportRequestView {
    pub account: String,
    /// `pending` (no host proved an archive yet), `proved` (not uploaded yet),
    /// `ready` (uploaded: a link can be made), or `ended`.
    pub state: String,
    pub requested_by: String,
    pub reason: String,
    pub requested_at: String,
    pub expires_at: String,
    pub sha256: Option<String>,
    pub host: Option<String>,
}

/// The public download route.
pub fn router() -> Router<Shared> {
    Router::new().route("/exports/{token}", get(routes::download))
}

/// This feature's `/api/v1` routes with their documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(routes::create_link))
        .routes(routes!(routes::request_export, routes::export_status))
}
