//! `backup_freshness`'s evidence, typed: what each source showed and which
//! hosts hold a fresh backup. Serialized to the same JSON as before.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How backups travel to a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum Transport {
    /// Encrypted in transit (ssh, https, kerberos-sealed NFS, sealed SMB).
    Encrypted { how: String },
    /// A path on this host's own disks.
    Local,
    /// Plain text on the wire (or unknown, which is not proof).
    Plain { why: String },
}

/// The check's evidence.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    pub sources: Vec<SourceEvidence>,
    /// Hosts holding a fresh, complete, undamaged backup.
    pub fresh_hosts: BTreeSet<String>,
    pub max_age_hours: u64,
    pub min_sets: u64,
    pub min_locations: u64,
}

/// One source as judged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SourceEvidence {
    pub kind: String,
    pub location: String,
    pub site: String,
    /// The host holding this copy (see `host_of_source`).
    pub host: String,
    /// How many sets it holds.
    pub sets: usize,
    pub newest: Option<DateTime<Utc>>,
    pub transport: Transport,
    pub encryption_mode: Option<String>,
    pub error: Option<String>,
    /// Present when the listing came from the agent's cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<ListingEvidence>,
}

/// A listing taken from the agent's cache.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ListingEvidence {
    pub from_cache: bool,
    pub listed_at: DateTime<Utc>,
    pub unchanged_since: DateTime<Utc>,
    pub required_paths_cached: bool,
}
