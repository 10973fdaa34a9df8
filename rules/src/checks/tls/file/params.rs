//! The `with` map of a `tls_certificate_file` check.

use serde::{Deserialize, Serialize};

use crate::checks::tls::endpoint::{default_ec, default_min_days, default_rsa};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The PEM file: leaf first, then the intermediates.
    pub path: String,
    /// When given, the leaf's names must cover it.
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default = "default_min_days")]
    pub min_days_remaining: i64,
    #[serde(default)]
    pub issuer_contains: Option<String>,
    #[serde(default = "default_rsa")]
    pub min_rsa_bits: u32,
    #[serde(default = "default_ec")]
    pub min_ec_bits: u32,
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default = "yes")]
    pub system_roots: bool,
    #[serde(default)]
    pub allow_self_signed: bool,
}

fn yes() -> bool {
    true
}
