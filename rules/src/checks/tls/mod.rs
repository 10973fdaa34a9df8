//! The TLS check types, `tls_endpoint` and `tls_certificate_file`, and the
//! certificate analysis they share.
//!
//! The agent collects the presented chain as DER (base64 in the facts) and the
//! outcome of chain validation against the trust store; [`cert::analyse`]
//! parses the DER here, purely, and finds every problem of the chain at once:
//! dates, names, keys, signatures, order, trust and issuer.

pub mod cert;
pub mod endpoint;
pub mod file;
pub mod http;

/// TLS protocol versions as policies spell them, oldest first.
pub const PROTOCOLS: &[&str] = &["1.0", "1.1", "1.2", "1.3"];

/// The rank of a protocol version (`"1.2"` → 2), `None` when unknown.
pub fn protocol_rank(v: &str) -> Option<usize> {
    PROTOCOLS.iter().position(|p| *p == v)
}
