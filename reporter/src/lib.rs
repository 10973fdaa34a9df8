//! `vigil-reporter`: the central service agents report to.
//!
//! - [`store`] keeps agents, reports and users in SQLite or PostgreSQL
//!   (one code path over sqlx's `Any` driver, migrations per backend).
//! - [`api`] holds the `/api/v1` routes, their authentication (agent tokens,
//!   staff tokens) and the OpenAPI document generated from them; [`app`]
//!   assembles the router with limits and timeouts.
//! - [`posture`] computes the fleet's standing per control, pure over stored rows.
//! - [`web`] renders the staff HTML pages; [`intake`] takes incident reports;
//!   [`brochure`] typesets the security brochure and the policy PDF; [`export`]
//!   writes JSON, CSV and SARIF.
//! - [`notify`] tells staff of events (webhook, e-mail) through an outbox
//!   drained in the background.
//! - [`auth`] makes and checks tokens (SHA-256 digests) and staff passwords (argon2id);
//!   [`throttle`] bounds and rate-limits login and enrollment attempts;
//!   [`enrollment`] decides who may enroll as a host and which roles the
//!   reporter trusts; [`users`] lists, disables and rotates staff tokens.

pub mod api;
pub mod app;
pub mod audit;
pub mod audit_routes;
pub mod auth;
pub mod baselines;
pub mod brochure;
pub mod closures;
pub mod config;
pub mod enrollment;
pub mod error;
pub mod export;
pub mod exports;
pub mod extract;
pub mod fleet;
pub mod ingest;
pub mod intake;
pub mod merkle;
pub mod mtls;
pub mod net;
pub mod notify;
pub mod policies;
pub mod posture;
pub mod public;
pub mod queue;
pub mod site;
pub mod state;
pub mod store;
pub mod throttle;
pub mod tls;
pub mod users;
pub mod waivers;
pub mod web;
