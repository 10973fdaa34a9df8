//! The evidence an `erasure` verdict carries: what the reporter's closure
//! workflow and the daemon's export upload read (`tasks[]` with `done`,
//! `checked` and its digest, and the export archive).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::facts::{Action, Outcome, Probe};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub tasks: Vec<TaskEvidence>,
    /// With no task pending: whether the host could carry out its phases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ReadinessSeen>,
}

/// One task as judged. Read leniently (what an older agent left out is
/// empty), written out whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskEvidence {
    pub account: String,
    pub phase: String,
    /// Everything was deleted and verified absent (for `export`: the archive
    /// verifies).
    #[serde(default)]
    pub done: bool,
    /// [`checked_digest`] of `checked`.
    #[serde(default)]
    pub digest: String,
    /// One line per earlier run, action and verification.
    #[serde(default)]
    pub checked: Vec<String>,
    /// What the deleters did, with their details ("3 removed", "2 snapshots
    /// rewritten"): the certificate records the deletion run itself, not
    /// only a later verification.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// For phase `export`: the archive built, its SHA-256 and how many
    /// entries its manifest lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_entries: Option<u64>,
}

/// The tasks of an `erasure` verdict's evidence, each decoded beside its JSON
/// as received (what the reporter keeps as the proof of a run). A task that
/// does not decode (no `account` or `phase`) is left out.
pub fn tasks(evidence: &serde_json::Value) -> Vec<(TaskEvidence, &serde_json::Value)> {
    evidence
        .get("tasks")
        .and_then(serde_json::Value::as_array)
        .map(|tasks| {
            tasks
                .iter()
                .filter_map(|t| Some((TaskEvidence::deserialize(t).ok()?, t)))
                .collect()
        })
        .unwrap_or_default()
}

/// What the readiness proof showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessSeen {
    /// The phases proved, in the order first met.
    pub phases: Vec<String>,
    /// Whether every prerequisite holds.
    pub ready: bool,
    /// One line per prerequisite.
    pub checked: Vec<String>,
}

/// One line per verification, as the evidence's `checked` list shows it.
pub fn checked_line(p: &Probe) -> String {
    match &p.outcome {
        Outcome::Clean { detail } | Outcome::Remaining { detail } => {
            format!("{}: {detail}", p.target)
        }
        Outcome::Error { reason } => format!("{}: not verified: {reason}", p.target),
    }
}

/// One line per action, as the evidence's `checked` list shows it.
pub fn action_line(a: &Action) -> String {
    let mut s = format!("{}: {}", a.what, if a.ok { "ok" } else { "failed" });
    if let Some(d) = a.detail.as_deref().filter(|d| !d.is_empty()) {
        s.push_str(&format!(" ({d})"));
    }
    if let Some(at) = &a.at {
        s.push_str(&format!(" at {at}"));
    }
    s
}

/// SHA-256 (hex) of the canonical `checked` list: its compact JSON array.
pub fn checked_digest(checked: &[String]) -> String {
    let canonical = serde_json::to_string(checked).unwrap_or_default();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}
