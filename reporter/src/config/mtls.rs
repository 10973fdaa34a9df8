//! `agent_tls:` in the reporter config: optional mutual TLS with agent certificates.

use std::path::PathBuf;

use serde::Deserialize;

/// The `agent_tls` config section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentTls {
    /// PEM: the CA(s) that issue agent certificates.
    pub ca: PathBuf,
    /// PEM CRLs of those CAs; with any, every certificate's revocation
    /// status must be known (a CA without a CRL here fails closed).
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// Agents must enroll and report with a certificate (default true); with
    /// false, only agents that enrolled with one are held to it.
    #[serde(default = "yes")]
    pub require: bool,
}

fn yes() -> bool {
    true
}
