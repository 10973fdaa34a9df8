//! What the agent collects for `file_integrity`: dpkg's verification of
//! every package file and the diff of chosen paths against their baseline.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    Changed,
    Missing,
    Unreadable,
}

/// One file of a package that is not as dpkg installed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpkgProblem {
    pub package: String,
    pub path: String,
    pub kind: ProblemKind,
    pub conffile: bool,
    /// Why the file could not be read, for `unreadable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dpkg {
    pub packages: u64,
    pub files_checked: u64,
    pub conffiles_checked: u64,
    pub bytes_read: u64,
    pub problems: Vec<DpkgProblem>,
    /// Files (and conffiles) read and hashed this run.
    #[serde(default)]
    pub files_hashed: u64,
    /// Files (and conffiles) whose stat identity and expected MD5 were the
    /// same as when they were last hashed: their outcome then, not read now.
    #[serde(default)]
    pub files_from_cache: u64,
    /// Whether every file was hashed this run (no cached outcome used).
    #[serde(default)]
    pub full_pass: bool,
    /// Why this run was a full pass (no cache yet, the last one too old, a
    /// cache that could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_pass_reason: Option<String>,
    /// When every file was last hashed (this run, on a full pass).
    #[serde(default)]
    pub last_full_pass: Option<DateTime<Utc>>,
    /// The verification cache could not be written: this run verified
    /// everything it says, and the next run is a full pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_warning: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub path: String,
    pub kind: DiffKind,
    /// What changed: `content`, `mode 0755 -> 0777`, `owner 0:0 -> 1000:1000`, `size 10 -> 12`, `type`.
    #[serde(default)]
    pub changes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub path: String,
    /// SHA-256 of the baseline file as read this run.
    pub sha256: String,
    /// The hash `vigil-agent baseline` recorded in the state directory, if any.
    pub recorded_sha256: Option<String>,
    pub created_at: Option<String>,
    pub entries: u64,
    pub files_now: u64,
    pub diffs: Vec<Diff>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub dpkg: Option<Dpkg>,
    pub baseline: Option<Baseline>,
    /// Problems that keep the check from a verdict (no dpkg database, no baseline).
    #[serde(default)]
    pub errors: Vec<String>,
}
