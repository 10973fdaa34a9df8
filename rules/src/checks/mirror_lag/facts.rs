//! What the agent collects for `mirror_lag`: PostgreSQL's replication views
//! and the heartbeat file at each mirror.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One row of `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replica {
    pub application_name: String,
    /// `None` for a unix-socket connection.
    #[serde(default)]
    pub client_addr: Option<String>,
    #[serde(default)]
    pub client_hostname: Option<String>,
    pub state: String,
    #[serde(default)]
    pub sync_state: String,
    /// `replay_lag` in seconds; `None` when the server has no measurement
    /// (a caught-up idle standby).
    #[serde(default)]
    pub replay_lag_seconds: Option<f64>,
    /// Bytes of WAL the primary has written that the replica has not replayed.
    #[serde(default)]
    pub replay_lag_bytes: Option<i64>,
}

impl Replica {
    /// How replicas are told apart as hosts: the client address, and on
    /// loopback or a unix socket (where every replica shares the address)
    /// the application name.
    pub fn host_key(&self) -> String {
        match self.client_addr.as_deref() {
            None => format!("local socket/{}", self.application_name),
            Some(a) if is_loopback(a) => format!("{a}/{}", self.application_name),
            Some(a) => a.to_owned(),
        }
    }

    pub(crate) fn label(&self) -> String {
        let addr = self.client_addr.as_deref().unwrap_or("local socket");
        if self.application_name.is_empty() {
            addr.to_owned()
        } else {
            format!("{} ({addr})", self.application_name)
        }
    }
}

fn is_loopback(a: &str) -> bool {
    let a = a.split('/').next().unwrap_or(a);
    a.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// A standby's own view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standby {
    #[serde(default)]
    pub receive_lsn: Option<String>,
    #[serde(default)]
    pub replay_lsn: Option<String>,
    /// Bytes received but not replayed (`pg_wal_lsn_diff(receive, replay)`).
    #[serde(default)]
    pub unreplayed_bytes: Option<i64>,
    /// `now() - pg_last_xact_replay_timestamp()`, by the server's clock.
    #[serde(default)]
    pub since_last_replay_seconds: Option<f64>,
    pub replay_paused: bool,
    /// `pg_stat_wal_receiver.status`; `None` when no WAL receiver runs.
    #[serde(default)]
    pub wal_receiver_status: Option<String>,
    #[serde(default)]
    pub sender_host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostgresFacts {
    /// The connection string with any password redacted.
    pub target: String,
    #[serde(default)]
    pub server_version: String,
    /// `primary` or `standby`.
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub replicas: Vec<Replica>,
    #[serde(default)]
    pub standby: Option<Standby>,
    #[serde(default)]
    pub error: Option<String>,
}

/// One mirror's heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub path: String,
    #[serde(default)]
    pub time: Option<DateTime<Utc>>,
    /// The file does not exist at this mirror.
    #[serde(default)]
    pub missing: bool,
    /// The file exists but holds no readable time.
    #[serde(default)]
    pub invalid: Option<String>,
    /// The file could not be read (permissions, I/O): `error`.
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    #[serde(default)]
    pub postgres: Option<PostgresFacts>,
    #[serde(default)]
    pub heartbeats: Vec<Heartbeat>,
}
