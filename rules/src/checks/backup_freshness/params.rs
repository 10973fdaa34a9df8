//! `backup_freshness`'s policy parameters: the sources and the thresholds.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Restic,
    Borg,
    Directory,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Restic => "restic",
            Kind::Borg => "borg",
            Kind::Directory => "directory",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub kind: Kind,
    /// The repository string (`sftp:user@host:/path`, `rest:https://…`,
    /// `/srv/backup/restic`, `ssh://user@host/./repo`) or the directory.
    pub location: String,
    /// A file holding the repository password (restic, borg). It is handed
    /// to the program as a file, never on its command line.
    #[serde(default)]
    pub password_file: Option<String>,
    /// The host holding this copy, for `min_locations`, when the location
    /// does not show it. Defaults to the host in the repository string, or
    /// this host for a path (see [`default_site`]).
    #[serde(default)]
    pub site: Option<String>,
    /// The policy vouches that this location is on this host (or a trusted
    /// link), so an unencrypted transport is accepted.
    #[serde(default)]
    pub local: bool,
    /// restic: only snapshots of this host (`--host`).
    #[serde(default)]
    pub host: Option<String>,
    /// directory: a manifest file listing `TIME SHA256 FILE` lines, instead
    /// of dated set folders.
    #[serde(default)]
    pub manifest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub sources: Vec<SourceSpec>,
    /// The newest set of each location must be younger than this.
    #[serde(default = "default_max_age")]
    pub max_age_hours: u64,
    /// Sets each location must keep.
    #[serde(default = "one")]
    pub min_sets: u64,
    /// Distinct hosts holding a fresh backup (a location is the host that
    /// holds the repository: [`host_of_source`]).
    #[serde(default = "one")]
    pub min_locations: u64,
    #[serde(default = "yes")]
    pub require_encrypted_transport: bool,
    /// restic and borg repositories must be encrypted at rest.
    #[serde(default = "yes")]
    pub require_encrypted_repository: bool,
    /// Paths the newest set must contain (restic: `ls` of the newest snapshot).
    #[serde(default)]
    pub required_paths: Vec<String>,
    /// restic: run `restic check --read-data-subset` with this subset
    /// (`5%`, `1/20`, `500M`).
    #[serde(default)]
    pub read_data_subset: Option<String>,
    /// The zone of times that carry none (borg, directory names, manifests):
    /// `UTC`, an IANA name like `Europe/Amsterdam`, or an offset `+01:00`.
    #[serde(default = "default_tz")]
    pub time_zone: String,
    /// Each program run (snapshots, ls, check) is stopped after this long.
    #[serde(default = "default_cmd_timeout")]
    pub command_timeout_seconds: u64,
    /// directory manifests: verify the newest set's SHA-256.
    #[serde(default = "yes")]
    pub verify_checksums: bool,
}

fn default_max_age() -> u64 {
    26
}
fn one() -> u64 {
    1
}
fn yes() -> bool {
    true
}
fn default_tz() -> String {
    "UTC".into()
}
fn default_cmd_timeout() -> u64 {
    300
}
