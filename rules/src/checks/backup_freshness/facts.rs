//! What the agent gathers for `backup_freshness`: per source, its sets,
//! encryption, mount, read-back results; and this host's names.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Kind;

/// One backup set (snapshot, archive, dated folder, manifest entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSet {
    pub id: String,
    pub time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A mount a location sits on, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub mount_point: String,
    pub fs_type: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub options: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathPresence {
    pub path: String,
    pub present: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataCheck {
    pub subset: String,
    pub ok: bool,
    /// The last lines of the program's output on failure (no secrets: restic
    /// never prints the password).
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    pub set: String,
    pub ok: bool,
    #[serde(default)]
    pub detail: String,
}

/// What was observed at one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFacts {
    pub kind: Kind,
    /// The location with any password in it redacted.
    pub location: String,
    /// The site this location counts as.
    pub site: String,
    #[serde(default)]
    pub local: bool,
    /// The mount the location's path sits on (paths only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<Mount>,
    #[serde(default)]
    pub sets: Vec<BackupSet>,
    /// Encryption at rest: restic always, borg per `encryption.mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_mode: Option<String>,
    #[serde(default)]
    pub required_paths: Vec<PathPresence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_check: Option<DataCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// restic, local repositories: the sets (and required paths) were taken
    /// from the agent's listing cache, restic was not started to list them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_listing: Option<CachedListing>,
    /// Why this source could not be read; the check is then `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where a listing taken from the agent's cache came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedListing {
    /// When restic last listed the repository (and the cache was written).
    pub listed_at: DateTime<Utc>,
    /// The last change to the repository's snapshots, keys, index or config
    /// (their newest ctime): it has not changed since.
    pub unchanged_since: DateTime<Utc>,
    /// `required_paths` came from the cache too (else `restic ls` ran).
    #[serde(default)]
    pub required_paths_cached: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub sources: Vec<SourceFacts>,
    /// The names this host goes by besides the agent's host name (kernel
    /// hostname, `/etc/hostname`, loopback names in `/etc/hosts`): a
    /// repository reached at one of them is on this host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_names: Vec<String>,
}
