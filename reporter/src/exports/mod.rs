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
//! the rows of archives, links and requests, and the sweep), [`types`] the
//! limits and the shapes of requests and answers.

use axum::routing::get;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::Shared;

pub mod routes;
pub mod store;
pub mod types;

pub use routes::upload;
pub use store::{
    drop_in, ended_requests, open_requests, record_request_proof, remove_files, sweep, Dropped,
    OpenRequest,
};
pub use types::{
    ExportLink, ExportRequestBody, ExportRequestView, Exports, LinkRequest, Uploaded, CHUNK,
    DEFAULT_LINK, DEFAULT_MAX_EXPORT, MAX_LINK, SHA_HEADER,
};

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
