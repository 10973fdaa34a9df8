//! The `with` map of a `clamav` check.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// `unix:/path/to/clamd.ctl` or `tcp://host:port`.
    pub address: String,
    #[serde(default = "default_max_age")]
    pub max_signature_age_hours: u64,
    /// Stream the EICAR test string and require clamd to find it.
    #[serde(default = "yes")]
    pub self_test: bool,
    /// Files and directories (recursively) to scan through clamd.
    #[serde(default)]
    pub scan_paths: Vec<String>,
    /// clamd's `DatabaseDirectory`, read for file times when VERSION carries no date.
    #[serde(default = "default_db_dir")]
    pub database_directory: String,
    /// Files larger than this are not streamed (clamd would refuse them anyway).
    #[serde(default = "default_max_file_mb")]
    pub max_file_size_mb: u64,
}

fn default_max_age() -> u64 {
    48
}
fn yes() -> bool {
    true
}
fn default_db_dir() -> String {
    "/var/lib/clamav".into()
}
fn default_max_file_mb() -> u64 {
    25
}
