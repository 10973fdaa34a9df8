//! `patch_level`'s evidence, typed: the counts and lists behind the verdict.
//! Serialized to the same JSON as before.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::facts::Unattended;

/// The check's evidence.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// Installed packages.
    pub installed: usize,
    /// Packages indices read.
    pub indices: usize,
    /// Pending updates, as apt's policy chooses the candidates.
    pub pending: usize,
    pub pending_security: usize,
    /// `name installed -> candidate (origin)`, at most 200.
    pub pending_list: Vec<String>,
    /// How many pins apt's preferences hold.
    pub pins: usize,
    /// Each package file's priority and description, as `apt-cache policy`
    /// lists them.
    pub package_files: Vec<String>,
    pub pin_warnings: Vec<String>,
    pub default_release: Option<String>,
    /// Installed packages with a newer version that the priorities keep out.
    pub held_back_by_priority: usize,
    /// `name installed (version origin not chosen)`, at most 200.
    pub held_back_list: Vec<String>,
    pub apt_updated: Option<DateTime<Utc>>,
    pub apt_updated_from: String,
    pub unattended_upgrades: Unattended,
    pub reboot_required: Option<Vec<String>>,
    /// `None` (`null`) when the kernel is not checked.
    pub kernel: Option<KernelEvidence>,
    pub advisories: AdvisoriesEvidence,
    /// What could not be checked (no feed, unknown running kernel).
    pub not_checked: Vec<String>,
}

/// The running kernel and the kernel images installed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct KernelEvidence {
    pub running: Option<String>,
    /// `linux-image-<release> <version>`.
    pub installed: Vec<String>,
}

/// The advisory feed as read, or why it was not (a sentence).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum AdvisoriesEvidence {
    Checked(AdvisoryCounts),
    NotChecked(String),
}

/// What the feed held for this host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AdvisoryCounts {
    pub source: String,
    pub format: String,
    pub release: String,
    /// Advisories naming an installed package.
    pub entries_for_installed: usize,
    /// Open advisories reported as findings.
    pub open: usize,
    /// Advisories without a fixed version yet.
    pub unfixed: usize,
}
