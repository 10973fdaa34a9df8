//! `vigil-reporter`: the central service agents report to.
//!
//! The modules stand in layers; each imports only those below it.
//!
//! - Ground: [`store`] keeps agents, reports and users in SQLite or PostgreSQL
//!   (one code path over sqlx's `Any` driver, migrations per backend);
//!   [`audit`] is the tamper-evident log over it ([`merkle`]); [`config`]
//!   holds every config section, each feature's own included; [`net`],
//!   [`auth`], [`throttle`], [`error`], [`site`], [`queue`].
//! - [`state`] is what every route may reach (assembled in [`app`] only);
//!   [`extract`] takes the calling agent, the staff member and the JSON body
//!   from a request.
//! - Features own their routes and their SQL: [`enrollment`], [`ingest`],
//!   [`policies`], [`fleet`], [`users`], [`waivers`], [`baselines`],
//!   [`exports`], [`closures`], [`intake`], [`notify`], [`audit_routes`]; each
//!   has a `routes()` that [`api`] merges into the `/api/v1` router and its
//!   OpenAPI document; [`app`] assembles the service with limits and timeouts.
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
//! - [`metrics`] keeps the Prometheus registry (counted by a middleware,
//!   store figures read at scrape time) and serves `GET /metrics` to staff
//!   or the configured scrape token.

pub mod advisories;
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
pub mod fleet_state;
pub mod ingest;
pub mod intake;
pub mod merkle;
pub mod metrics;
pub mod mtls;
pub mod net;
pub mod notify;
pub mod policies;
pub mod posture;
pub mod public;
pub mod queue;
pub mod retention;
pub mod scrape;
pub mod site;
pub mod state;
pub mod store;
pub mod throttle;
pub mod tls;
pub mod users;
pub mod waivers;
pub mod web;
