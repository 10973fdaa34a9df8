//! What the agent collects for `firewall`: the rulesets as the tools print
//! them and the listening sockets.

use serde::{Deserialize, Serialize};

use super::eval::Family;

/// What running one program gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// The program is not installed.
    #[default]
    Absent,
    /// It ran and failed, with the reason.
    Failed(String),
    /// Its standard output.
    Text(String),
}

/// A listening socket (TCP in LISTEN, or a bound UDP socket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    /// `tcp` or `udp`.
    pub proto: String,
    /// Whether it came from `/proc/net/tcp6` or `udp6`.
    pub v6: bool,
    /// The local address, e.g. `0.0.0.0`, `::`, `127.0.0.1`.
    pub address: String,
    pub port: u16,
    /// The owning process's name, when it could be found.
    #[serde(default)]
    pub process: Option<String>,
    #[serde(default)]
    pub pid: Option<u32>,
}

impl Socket {
    pub fn is_loopback(&self) -> bool {
        let a = self.address.as_str();
        a.starts_with("127.") || a == "::1" || a.starts_with("::ffff:127.")
    }

    /// The families a packet may reach it over. A socket on `::` may take
    /// IPv4 too (unless IPV6_V6ONLY, which /proc does not show).
    pub(crate) fn families(&self) -> Vec<Family> {
        if !self.v6 {
            vec![Family::V4]
        } else if self.address == "::" {
            vec![Family::V4, Family::V6]
        } else if self.address.starts_with("::ffff:") {
            vec![Family::V4]
        } else {
            vec![Family::V6]
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// `nft -j list ruleset`.
    pub nft: Output,
    /// `legacy` or `nf_tables`, from `iptables --version`.
    #[serde(default)]
    pub iptables_variant: Option<String>,
    /// `iptables-save`.
    pub iptables: Output,
    /// `ip6tables-save`.
    pub ip6tables: Output,
    /// `iptables-legacy-save` when `iptables` is the nf_tables variant:
    /// legacy tables filter too, in their own layer.
    #[serde(default)]
    pub iptables_legacy: Output,
    /// `ip6tables-legacy-save`, likewise.
    #[serde(default)]
    pub ip6tables_legacy: Output,
    /// Listening sockets, or why they could not be read.
    pub sockets: Result<Vec<Socket>, String>,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            nft: Output::Absent,
            iptables_variant: None,
            iptables: Output::Absent,
            ip6tables: Output::Absent,
            iptables_legacy: Output::Absent,
            ip6tables_legacy: Output::Absent,
            sockets: Ok(Vec::new()),
        }
    }
}
