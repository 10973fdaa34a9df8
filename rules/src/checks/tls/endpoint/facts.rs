//! What the agent collects for `tls_endpoint`: per endpoint the session it
//! negotiated (or why there was none), and the plain-HTTP answers.

use serde::{Deserialize, Serialize};

use crate::checks::tls::cert::ChainFacts;
use crate::checks::tls::http::HttpHead;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub endpoints: Vec<EndpointFacts>,
    /// The answers of the plain-HTTP addresses (`http_address`).
    #[serde(default)]
    pub redirects: Vec<RedirectFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectFacts {
    pub address: String,
    /// The head of the answer to `GET /`, or why there was none.
    pub result: Result<HttpHead, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointFacts {
    pub address: String,
    /// The name sent as SNI and checked against the certificate.
    pub server_name: String,
    /// The session, or why there was none (refused, DNS, handshake, timeout).
    pub result: Result<Session, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// `1.2` or `1.3`.
    pub protocol: String,
    pub cipher_suite: String,
    #[serde(default)]
    pub alpn: Option<String>,
    pub ocsp_stapled: bool,
    pub chain: ChainFacts,
    /// Answers to handshakes offering only an old protocol.
    #[serde(default)]
    pub old_protocols: Vec<Probe>,
    /// The answer to a TLS 1.2 handshake offering only weak suites
    /// (`version` is `1.2`); absent when not probed.
    #[serde(default)]
    pub weak_ciphers: Option<Probe>,
    /// The head of the answer to `GET /` over TLS, or why there was none;
    /// absent unless `hsts` is asked for.
    #[serde(default)]
    pub http: Option<Result<HttpHead, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// `1.0` or `1.1`.
    pub version: String,
    pub outcome: ProbeOutcome,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// The server answered with a ServerHello for this version.
    Accepted,
    /// An alert, another version, or the connection closed.
    Refused,
    /// No usable answer (timeout, reset mid-way): not known.
    Unknown,
    /// Not attempted (`probe_old_protocols: false`).
    NotProbed,
}
