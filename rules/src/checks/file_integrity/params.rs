//! The `with` map of a `file_integrity` check.

use serde::{Deserialize, Serialize};

use crate::duration::PolicyDuration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Verify installed packages' files against `/var/lib/dpkg/info/*.md5sums`.
    #[serde(default = "yes")]
    pub dpkg_verify: bool,
    /// dpkg's admin directory (with `status` and `info/`).
    #[serde(default = "default_admin_dir")]
    pub dpkg_admin_dir: String,
    /// Changed or missing conffiles fail the check (they are `info` otherwise).
    #[serde(default)]
    pub conffiles_fail: bool,
    /// How often every package file is hashed again, whatever the
    /// verification cache says (default 24h). Between full passes a file
    /// whose stat identity (device, inode, size, mtime, ctime) and expected
    /// MD5 are unchanged since it was last hashed keeps that outcome unread.
    #[serde(default)]
    pub full_pass_every: Option<PolicyDuration>,
    /// Files and directories (recursively) covered by the baseline.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Where the baseline of `paths` is stored (written by `vigil-agent baseline`).
    #[serde(default)]
    pub baseline: Option<String>,
    /// Paths (prefixes) left out of the baseline, such as caches.
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn yes() -> bool {
    true
}

/// `full_pass_every` when the policy does not say.
pub const DEFAULT_FULL_PASS_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// The longest `full_pass_every` accepted: what the cache cannot see (raw
/// writes to the block device, a clock set back) stays unseen at most this long.
pub const MAX_FULL_PASS_EVERY: std::time::Duration = std::time::Duration::from_secs(31 * 24 * 3600);

impl Params {
    pub fn full_pass_every(&self) -> std::time::Duration {
        self.full_pass_every
            .map_or(DEFAULT_FULL_PASS_EVERY, PolicyDuration::as_std)
    }
}
fn default_admin_dir() -> String {
    "/var/lib/dpkg".into()
}
