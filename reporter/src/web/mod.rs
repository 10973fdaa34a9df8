//! Server-rendered HTML for security staff (`/`, `/reports/...`), the login
//! form and one-time login links, and the public incident form's pages.
//!
//! Templates are minijinja files embedded in the binary; their names end in
//! `.html`, so everything they print is HTML-escaped unless a template says
//! otherwise (only the server-built SVG chart does, via `|safe`). No page needs
//! JavaScript.

pub mod chart;
pub mod fleet_data;
pub mod fleet_pages;
pub mod pages;
pub mod session;
pub mod views;

use axum::Router;

use crate::state::Shared;

/// The staff pages, the login routes and the public incident pages.
pub fn router() -> Router<Shared> {
    Router::new()
        .merge(fleet_pages::router())
        .merge(pages::router())
        .merge(session::router())
}
