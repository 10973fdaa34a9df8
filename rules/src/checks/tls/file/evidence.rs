//! The evidence a `tls_certificate_file` verdict carries.

use serde::{Deserialize, Serialize};

use crate::checks::tls::cert::{CertInfo, Trust};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub path: String,
    pub trust: Trust,
    /// The chain as read, leaf first.
    pub certificates: Vec<CertInfo>,
}

impl Evidence {
    /// The leaf certificate, when the file held one.
    pub fn leaf(&self) -> Option<&CertInfo> {
        self.certificates.first()
    }
}
