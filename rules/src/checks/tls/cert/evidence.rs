//! One certificate as the TLS verdicts' evidence shows it.

use serde::{Deserialize, Serialize};

/// What one certificate is, for the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub key_type: String,
    pub key_bits: u32,
    pub signature_algorithm: String,
    pub sha256: String,
    pub self_signed: bool,
    pub is_ca: bool,
}

impl CertInfo {
    /// The issuer's common name (`CN=`), or the whole issuer name when it
    /// has none.
    pub fn issuer_cn(&self) -> &str {
        self.issuer
            .split(',')
            .find_map(|part| part.trim().strip_prefix("CN="))
            .unwrap_or(&self.issuer)
    }
}
