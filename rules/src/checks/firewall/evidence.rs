//! The evidence a `firewall` verdict carries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The layers evaluated, in the order a packet meets them.
    pub layers: Vec<LayerSeen>,
    /// Per family (`IPv4`, `IPv6`), the input chains that deny by default.
    pub default_deny_chains: BTreeMap<String, Vec<String>>,
    /// Per `proto/family` (`tcp/IPv4`), the reachable ports as ranges
    /// (`22, 80, 443`); a key only where some port is reachable.
    pub reachable: BTreeMap<String, String>,
    pub listening_checked: bool,
    /// Listening sockets off loopback that were checked.
    pub listening_sockets: u64,
}

/// One layer of rules: its name and its tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSeen {
    pub name: String,
    pub tables: Vec<String>,
}
