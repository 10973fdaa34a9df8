//! The evidence a `tls_endpoint` verdict carries.

use serde::{Deserialize, Serialize};

use super::facts::Probe;
use crate::checks::tls::cert::{CertInfo, Trust};
use crate::checks::tls::http::HttpHead;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub endpoints: Vec<EndpointSeen>,
    pub redirects: Vec<RedirectSeen>,
}

/// One endpoint: why it could not be reached, or its session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EndpointSeen {
    Unreachable {
        address: String,
        server_name: String,
        error: String,
    },
    Session(Box<SessionSeen>),
}

/// A negotiated session and the chain it presented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSeen {
    pub address: String,
    pub server_name: String,
    pub protocol: String,
    pub cipher_suite: String,
    pub alpn: Option<String>,
    pub ocsp_stapled: bool,
    pub old_protocols: Vec<Probe>,
    pub weak_ciphers: Option<Probe>,
    /// The answer to `GET /` over TLS, when asked for (`hsts`).
    pub http: Option<HttpSeen>,
    pub trust: Trust,
    /// The chain as presented, leaf first.
    pub certificates: Vec<CertInfo>,
}

impl SessionSeen {
    /// The leaf certificate, when one was presented.
    pub fn leaf(&self) -> Option<&CertInfo> {
        self.certificates.first()
    }
}

/// The answer to `GET /`, or why there was none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HttpSeen {
    Error { error: String },
    Head(HttpHead),
}

/// One plain-HTTP address: why it did not answer, or what it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RedirectSeen {
    Unanswered {
        address: String,
        error: String,
    },
    Answered {
        address: String,
        status: u16,
        location: Option<String>,
    },
}
