//! What the agent reports for `erasure`: per task, the deletions it ran and
//! every verification of absence; with no task, its readiness.

use serde::{Deserialize, Serialize};

/// One deletion action the collector ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// `hook papyrs-admin`, `remove /srv/…`, `restic forget …`, `purge /var/log/…`.
    pub what: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The last line of stderr (scrubbed) or the reason it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When it ran (RFC 3339), for deletion runs kept between runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

impl Action {
    /// A deletion step that ran and succeeded, stamped with `at`.
    pub fn succeeded(what: String, detail: Option<String>, at: String) -> Action {
        Action {
            what,
            ok: true,
            exit_code: Some(0),
            detail,
            at: Some(at),
        }
    }

    /// A deletion step that failed or could not run.
    pub fn failed(what: String, detail: String) -> Action {
        Action {
            what,
            ok: false,
            exit_code: None,
            detail: Some(detail),
            at: None,
        }
    }
}

/// What kind of data one verification looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    Path,
    Sql,
    Backup,
    Log,
    Export,
}

/// One verification of absence (or, for `export`, of the archive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub kind: ProbeKind,
    /// What was looked at: `path /srv/…`, `sql`, `restic /srv/backup/restic`, `log /var/log/…`.
    pub target: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing of the account there (for `export`: the archive verifies).
    Clean { detail: String },
    /// Something remains (for `export`: the archive does not verify).
    Remaining { detail: String },
    /// Could not be verified.
    Error { reason: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportFacts {
    pub archive: String,
    pub archive_sha256: String,
    pub manifest_entries: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFacts {
    pub account: String,
    pub phase: String,
    /// Whether this host has a section for the phase.
    pub handled: bool,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub probes: Vec<Probe>,
    /// Deletion runs of earlier checks for this task that did something: the
    /// evidence of a later, verify-only run still names the deletion that made
    /// the data go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportFacts>,
    /// Why the task could not be run at all (an invalid account id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub tasks: Vec<TaskFacts>,
    /// Gathered when no task is pending for this host: whether it could
    /// carry out its phases now ([`super::readiness`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Readiness>,
}

/// What the agent found, per phase this host handles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    pub prerequisites: Vec<Prerequisite>,
}

/// One thing a phase needs, and whether it holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prerequisite {
    /// `site`, `local_backups`, `offline_backups`, `logs` or `export`.
    pub phase: String,
    /// What was proved: `hook /usr/local/bin/papyrs-admin executable`,
    /// `restic /srv/backup/restic-local opens and locks`, `write /var/log/papyrs`.
    pub what: String,
    pub ready: bool,
    /// How it was proved, or what stops it (never a secret).
    pub detail: String,
}
