//! `vigil-agent`: gathers facts from a host, has `vigil-rules` judge them, and
//! reports.
//!
//! - [`collect`] holds one collector per check type (the twin of the registry in
//!   `vigil_rules::checks`): it reads files, runs programs and opens sockets, and
//!   returns plain facts; [`act`] holds what changes the host (the
//!   `erasure` deleters), apart from what only looks.
//! - [`engine`] runs the selected checks concurrently, each under its timeout,
//!   and builds the `vigil.report/v1` report.
//! - [`config`] reads the agent's YAML config with located errors.
//! - [`pace`] keeps file-heavy checks gentle: a stop switch for timed-out
//!   checks, a shared read budget, idle CPU and I/O priority.
//! - [`progress`] shows a `check`'s running controls and how far the long
//!   ones are, on a terminal only.
//! - [`daemon`] is `vigil-agent run`: the schedule, the durable spool, the
//!   shipper.
//! - [`client`] is the agent's side of the reporter's API: enrollment (a
//!   token for the enrollment secret), reports sent, the policy, erasure
//!   tasks and waivers fetched and checked, export archives handed over.
//! - [`durable`] writes a file whole or not at all, never through a symlink.

pub mod act;
pub mod client;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod durable;
pub mod engine;
pub mod pace;
pub mod progress;
