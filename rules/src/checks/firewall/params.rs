//! The `with` map of a `firewall` check.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// What the host really uses; both layers when both hold rules.
    #[default]
    Auto,
    Nftables,
    Iptables,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default)]
    pub backend: Backend,
    /// TCP ports that may be reachable from outside.
    #[serde(default)]
    pub allowed_tcp: Vec<u16>,
    /// UDP ports that may be reachable from outside.
    #[serde(default)]
    pub allowed_udp: Vec<u16>,
    /// Inbound traffic must be dropped unless a rule accepts it, for IPv4 and IPv6.
    #[serde(default = "yes")]
    pub require_default_deny: bool,
    /// Cross-check the listening sockets against the rules.
    #[serde(default = "yes")]
    pub check_listening: bool,
}

fn yes() -> bool {
    true
}
