//! `patch_level`'s parameters: the tolerated backlog, where apt's files are
//! and which advisory feed to read.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Pending security updates tolerated.
    #[serde(default)]
    pub max_pending_security: u32,
    /// Pending updates of any kind tolerated; unlimited when absent.
    #[serde(default)]
    pub max_pending: Option<u32>,
    /// Days since apt last refreshed its indices.
    #[serde(default = "default_days")]
    pub max_days_since_update: u32,
    #[serde(default = "yes")]
    pub require_unattended_upgrades: bool,
    /// A debsecan feed or security tracker JSON: a path or `file://` URL,
    /// or `reporter`: the feed the reporter keeps for every host.
    #[serde(default)]
    pub advisories: Option<String>,
    /// Advisories of these urgencies are not findings.
    #[serde(default = "default_ignored")]
    pub ignore_urgencies: Vec<String>,
    /// Also report advisories that have no fix in the release yet.
    #[serde(default)]
    pub include_unfixed: bool,
    /// The release codename; from `/etc/os-release` when absent.
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default = "default_status")]
    pub dpkg_status: String,
    #[serde(default = "default_lists")]
    pub apt_lists: String,
    #[serde(default = "yes")]
    pub check_reboot: bool,
    #[serde(default = "yes")]
    pub check_kernel: bool,
}

fn yes() -> bool {
    true
}
fn default_days() -> u32 {
    7
}
fn default_ignored() -> Vec<String> {
    vec!["unimportant".into(), "end-of-life".into()]
}
fn default_status() -> String {
    "/var/lib/dpkg/status".into()
}
fn default_lists() -> String {
    "/var/lib/apt/lists".into()
}
