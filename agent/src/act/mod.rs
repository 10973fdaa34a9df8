//! What changes the host, kept apart from [`crate::collect`], which only
//! looks: the `erasure` deleters.
//!
//! - [`erasure`] carries out one erasure task: the phase's hook, then the
//!   enabled built-in deleter, then the probes that verify absence.
//! - The deleters: [`hooks`] (an operator's program), [`nofollow`] (paths
//!   removed without following a link), [`purge`] (log lines rewritten),
//!   [`restic`] (snapshots rewritten, then pruned), [`journald`] (the
//!   systemd journal rotated and vacuumed), [`export`] (an account's archive
//!   made, verified and, after the erasure, removed).
//! - [`preflight`] refuses a task before anything is deleted when the sandbox
//!   would stop part of it; [`journal`] keeps the record of what was deleted.

pub mod erasure;
pub mod export;
pub mod hooks;
mod journal;
mod journald;
pub mod nofollow;
pub mod preflight;
pub mod purge;
mod restic;

/// Now, as the time a deletion step ran.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
