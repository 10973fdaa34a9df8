//! What the agent gathers for `patch_level`: installed packages, what the apt
//! indices offer, apt's pins, unattended-upgrades, reboot and kernel, and the
//! advisories of a feed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::apt_policy::{PackageFile, Pin};
use super::feeds::Advisory;
use super::status::{Available, Installed};

/// unattended-upgrades as configured and as it ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unattended {
    pub installed: bool,
    /// `APT::Periodic::*` settings from apt.conf(.d), later files winning.
    pub periodic: BTreeMap<String, String>,
    /// The newest of its stamp file and log.
    pub last_run: Option<DateTime<Utc>>,
}

/// Advisories read from the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvisoryFeed {
    pub source: String,
    pub format: String,
    pub release: String,
    /// Advisories naming an installed package (source or binary).
    pub advisories: Vec<Advisory>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub installed: Vec<Installed>,
    /// Versions the apt indices offer for installed packages.
    pub available: Vec<Available>,
    /// The package files (indices with their Release fields) the
    /// `available` entries point into.
    #[serde(default)]
    pub files: Vec<PackageFile>,
    /// apt's pins, in apt's reading order (`/etc/apt/preferences`, then
    /// `preferences.d`), and what apt would warn about in them.
    #[serde(default)]
    pub pins: Vec<Pin>,
    #[serde(default)]
    pub pin_warnings: Vec<String>,
    /// `APT::Default-Release` (the target release, priority 990).
    #[serde(default)]
    pub default_release: Option<String>,
    /// How many Packages indices were read.
    pub indices: usize,
    /// When apt last refreshed its indices, and from what that was told.
    pub apt_updated: Option<DateTime<Utc>>,
    #[serde(default)]
    pub apt_updated_from: String,
    pub unattended: Unattended,
    /// `None`: no `/var/run/reboot-required`; else the packages that asked.
    pub reboot_required: Option<Vec<String>>,
    /// `uname -r` of the running kernel.
    pub running_kernel: Option<String>,
    /// `None` when no feed was configured.
    pub advisories: Option<Result<AdvisoryFeed, String>>,
    /// Inputs that could not be read or parsed: the check is then `error`.
    #[serde(default)]
    pub errors: Vec<String>,
}
