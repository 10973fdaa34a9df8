//! `vigil-rules`: the pure half of vigil.
//!
//! - [`policy`] loads a YAML policy into a validated [`policy::Policy`]; every
//!   problem comes back located (`FILE:LINE:COLUMN: message`), all at once.
//! - [`checks`] is the registry of check types. Each type pairs its parameters
//!   with the facts an agent collects and a pure `judge` that turns facts into a
//!   [`verdict::Verdict`] with stable finding codes.
//! - [`report`] holds the `vigil.report/v1` types and the roll-up of check
//!   statuses into control statuses; [`format`] renders a report as a table,
//!   JSON, JUnit or SARIF.
//!
//! Nothing here opens a socket, spawns a process or reads the clock on its own,
//! so every judgement can be tested from a fixture of facts.
//!
//! ```
//! use vigil_rules::{checks::{Facts, JudgeCtx}, policy, verdict::CheckStatus};
//! let text = br#"
//! policy: {id: demo, version: "1", title: Demo}
//! controls:
//!   - id: C-1
//!     title: Servers are physically secured
//!     checks:
//!       - id: datacentre
//!         type: attestation
//!         with: {by: ops@example.com, on: 2026-11-01, evidence: "audit 7", valid_for: 365d}
//! "#;
//! let p = policy::parse(text, "demo.yaml").unwrap();
//! let check = &p.controls[0].checks[0];
//! let ctx = JudgeCtx { now: "2026-11-25T00:00:00Z".parse().unwrap(), host: "web-1".into() };
//! let facts = Facts::Attestation(Default::default());
//! assert_eq!(check.spec.judge(&facts, &ctx).status, CheckStatus::Pass);
//! ```

//!
//! # The surface
//!
//! What the agent and the reporter use is named at the crate root:
//!
//! - loading: [`Policy`] (with its [`Control`]s and [`Check`]s) from
//!   [`policy::parse`] or [`policy::load`], whose problems come back as
//!   [`Diagnostics`] ([`LoadError`] when the file cannot be read), and
//!   [`Waiver`]s from [`waivers::parse_checked`];
//! - judging: [`CheckSpec`] (a check's validated parameters), [`Facts`] (what
//!   an agent collected, tagged by type) and [`JudgeCtx`] give a [`Verdict`]
//!   of a [`CheckStatus`] with [`Finding`]s of a [`Severity`]; [`CheckKind`]
//!   is the trait each check type implements, [`TYPE_NAMES`] and
//!   [`check_types`] list them;
//! - reporting: a [`Report`] of [`ControlReport`]s and [`CheckReport`]s, whose
//!   `evidence` is read back as a check type's `Evidence` struct with
//!   [`CheckReport::evidence_as`]; [`Format`] names a printer of
//!   [`format`];
//! - time: [`PolicyDuration`] (`30d`, `6h`) as policies write it.
//!
//! Each check type's own parameters, facts, evidence and parsers live under
//! `checks::<type>` (for example [`checks::erasure::Evidence`] or
//! [`checks::firewall::proc_net`]); the collectors of the agent use those.

pub mod checks;
pub mod duration;
pub mod format;
pub mod incident;
pub mod policy;
pub mod policytest;
pub mod report;
pub mod verdict;
pub mod waivers;
pub mod yaml;

pub use checks::{check_types, CheckKind, CheckSpec, Facts, JudgeCtx, TYPE_NAMES};
pub use duration::PolicyDuration;
pub use format::Format;
pub use policy::{Check, Control, Diagnostics, LoadError, Policy};
pub use report::{CheckReport, ControlReport, ControlStatus, Report};
pub use verdict::{CheckStatus, Finding, Severity, Verdict};
pub use waivers::Waiver;
