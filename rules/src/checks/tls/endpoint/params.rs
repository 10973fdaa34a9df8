//! The `with` map of a `tls_endpoint` check.

use serde::{Deserialize, Serialize};

use crate::duration::PolicyDuration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// `host:port` (port 443 when left out).
    #[serde(default)]
    pub address: Option<String>,
    /// More endpoints, checked concurrently with the same rules.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The name sent as SNI and matched against the leaf's names; defaults
    /// to the host part of each address.
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default = "default_min_protocol")]
    pub min_protocol: String,
    #[serde(default = "default_min_days")]
    pub min_days_remaining: i64,
    #[serde(default)]
    pub issuer_contains: Option<String>,
    #[serde(default = "default_rsa")]
    pub min_rsa_bits: u32,
    #[serde(default = "default_ec")]
    pub min_ec_bits: u32,
    /// Extra trust anchors (PEM), besides the system's.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Trust the system store (`/etc/ssl/certs`).
    #[serde(default = "yes")]
    pub system_roots: bool,
    #[serde(default)]
    pub allow_self_signed: bool,
    #[serde(default)]
    pub require_ocsp_stapling: bool,
    /// Probe TLS 1.0 and 1.1 (below `min_protocol`) with a hand-written ClientHello.
    #[serde(default = "yes")]
    pub probe_old_protocols: bool,
    /// Probe TLS 1.2 with a ClientHello offering only suites without AEAD or
    /// without forward secrecy; a ServerHello is `weak_cipher`.
    #[serde(default = "yes")]
    pub probe_weak_ciphers: bool,
    /// Time allowed to each endpoint (connect, handshake, probes).
    #[serde(default = "default_endpoint_timeout")]
    pub endpoint_timeout: PolicyDuration,
    /// Require `Strict-Transport-Security` on `GET /` of every endpoint.
    #[serde(default)]
    pub hsts: bool,
    /// The least `max-age` accepted with `hsts: true` (180 days by default).
    #[serde(default = "default_min_hsts_max_age")]
    pub min_hsts_max_age: u64,
    /// A plain-HTTP `host:port` that must answer `GET /` with a redirect
    /// (301, 302, 307, 308) to `https://`.
    #[serde(default)]
    pub http_address: Option<String>,
    /// More such plain-HTTP addresses.
    #[serde(default)]
    pub http_addresses: Vec<String>,
}

fn yes() -> bool {
    true
}
fn default_min_protocol() -> String {
    "1.2".into()
}
pub fn default_min_days() -> i64 {
    21
}
pub fn default_rsa() -> u32 {
    2048
}
pub fn default_ec() -> u32 {
    256
}
pub fn default_min_hsts_max_age() -> u64 {
    15_552_000
}
fn default_endpoint_timeout() -> PolicyDuration {
    PolicyDuration(std::time::Duration::from_secs(10))
}

impl Params {
    /// Every address to check, in order.
    pub fn all_addresses(&self) -> Vec<String> {
        self.address
            .iter()
            .chain(self.addresses.iter())
            .cloned()
            .collect()
    }

    /// Every plain-HTTP address that must redirect, in order.
    pub fn all_http_addresses(&self) -> Vec<String> {
        self.http_address
            .iter()
            .chain(self.http_addresses.iter())
            .cloned()
            .collect()
    }
}
