//! The `with` map of a `mirror_lag` check.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Whatever the server is (`pg_is_in_recovery()`).
    #[default]
    Auto,
    Primary,
    Standby,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    /// `postgres://monitor@127.0.0.1:5432/postgres`. Prefer `dsn_file` or
    /// `dsn_env` when it holds a password.
    #[serde(default)]
    pub dsn: Option<String>,
    #[serde(default)]
    pub dsn_file: Option<String>,
    #[serde(default)]
    pub dsn_env: Option<String>,
    /// What the server must be; `auto` judges it as whatever it is.
    #[serde(default)]
    pub role: Role,
    /// Streaming replicas on distinct hosts a primary must have.
    #[serde(default = "default_min_replicas")]
    pub min_replicas: u64,
    #[serde(default = "default_max_lag")]
    pub max_lag_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSpec {
    /// The heartbeat file's path on each mirror (mounts of the mirrors, or
    /// the mirrored copy on this host).
    pub mirrors: Vec<String>,
    #[serde(default = "default_max_lag")]
    pub max_lag_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default)]
    pub postgres: Option<PostgresSpec>,
    #[serde(default)]
    pub heartbeat: Option<HeartbeatSpec>,
}

fn default_min_replicas() -> u64 {
    1
}
fn default_max_lag() -> f64 {
    60.0
}
