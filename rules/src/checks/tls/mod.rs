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

use serde::Deserialize;

/// TLS protocol versions as policies spell them, oldest first.
pub const PROTOCOLS: &[&str] = &["1.0", "1.1", "1.2", "1.3"];

/// The rank of a protocol version (`"1.2"` → 2), `None` when unknown.
pub fn protocol_rank(v: &str) -> Option<usize> {
    PROTOCOLS.iter().position(|p| *p == v)
}

/// The leaf certificates a `tls_endpoint` verdict (one per endpoint reached)
/// or a `tls_certificate_file` verdict shows in its evidence; empty for
/// another type or evidence that is not that type's.
pub fn leaf_certificates(check_type: &str, evidence: &serde_json::Value) -> Vec<cert::CertInfo> {
    match check_type {
        "tls_endpoint" => endpoint::Evidence::deserialize(evidence)
            .map(|e| {
                e.endpoints
                    .into_iter()
                    .filter_map(|ep| match ep {
                        endpoint::EndpointSeen::Session(s) => s.certificates.into_iter().next(),
                        endpoint::EndpointSeen::Unreachable { .. } => None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        "tls_certificate_file" => file::Evidence::deserialize(evidence)
            .ok()
            .and_then(|e| e.certificates.into_iter().next())
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail by panicking")]
mod tests {
    use super::*;
    use serde_json::json;

    fn cert(issuer: &str, not_after: &str) -> serde_json::Value {
        json!({"subject": "CN=papyrs.example", "issuer": issuer, "sans": ["DNS:papyrs.example"],
               "serial": "01", "not_before": "2026-01-01T00:00:00Z", "not_after": not_after,
               "key_type": "RSA", "key_bits": 2048, "signature_algorithm": "sha256WithRSAEncryption",
               "sha256": "00", "self_signed": false, "is_ca": false})
    }

    #[test]
    fn leaf_certificates_of_both_types() {
        let gandi = "C=FR, O=Gandi, CN=Gandi RSA Domain Validation Secure Server CA";
        let trust = json!({"anchors": "system", "outcome": "trusted"});
        let endpoint = json!({"endpoints": [
            {"address": "a:443", "server_name": "a", "protocol": "1.3", "cipher_suite": "TLS13_AES_128_GCM_SHA256",
             "alpn": null, "ocsp_stapled": false, "old_protocols": [], "weak_ciphers": null, "http": null,
             "trust": trust, "certificates": [cert(gandi, "2027-01-28T00:00:00Z"), cert("CN=Root", "2030-01-01T00:00:00Z")]},
            {"address": "b:443", "server_name": "b", "error": "connection refused"}],
            "redirects": []});
        let leaves = leaf_certificates("tls_endpoint", &endpoint);
        assert_eq!(leaves.len(), 1);
        assert_eq!(
            leaves[0].issuer_cn(),
            "Gandi RSA Domain Validation Secure Server CA"
        );
        assert_eq!(leaves[0].not_after, "2027-01-28T00:00:00Z");

        let file = json!({"path": "/etc/ssl/a.pem", "trust": trust, "certificates": [cert("O=No Name", "2027-02-01T00:00:00Z")]});
        let leaves = leaf_certificates("tls_certificate_file", &file);
        assert_eq!(leaves[0].issuer_cn(), "O=No Name");
        // Another type's evidence, or one of the wrong shape: nothing.
        assert!(leaf_certificates("tls_endpoint", &file).is_empty());
        assert!(leaf_certificates("clamav", &endpoint).is_empty());
    }
}
