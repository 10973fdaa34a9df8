//! DER and base64 in, [`CertInfo`] out: the pure reading of one certificate.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::evidence::CertInfo;

/// Why a certificate of the facts could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("not base64")]
    NotBase64,
    /// x509-parser's reason.
    #[error("not X.509 DER: {0}")]
    NotDer(String),
}

/// Parses DER, or says why it is not a certificate.
pub(super) fn parse_der(der: &[u8]) -> Result<X509Certificate<'_>, CertError> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| CertError::NotDer(e.to_string()))
}

/// Parses one DER certificate into its evidence, for collectors and tests.
pub fn describe(der: &[u8]) -> Result<CertInfo, CertError> {
    Ok(info_of(&parse_der(der)?, der))
}

/// Decodes base64 DER as carried in facts.
pub fn decode(b64: &str) -> Result<Vec<u8>, CertError> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| CertError::NotBase64)
}

/// Encodes DER for facts.
pub fn encode(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

pub(super) fn sig_name(oid: &str) -> (&'static str, bool) {
    match oid {
        "1.2.840.113549.1.1.2" => ("md2WithRSAEncryption", true),
        "1.2.840.113549.1.1.4" => ("md5WithRSAEncryption", true),
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => ("sha1WithRSAEncryption", true),
        "1.2.840.10045.4.1" => ("ecdsa-with-SHA1", true),
        "1.2.840.10040.4.3" => ("dsa-with-sha1", true),
        "1.2.840.113549.1.1.11" => ("sha256WithRSAEncryption", false),
        "1.2.840.113549.1.1.12" => ("sha384WithRSAEncryption", false),
        "1.2.840.113549.1.1.13" => ("sha512WithRSAEncryption", false),
        "1.2.840.113549.1.1.10" => ("rsassa-pss", false),
        "1.2.840.10045.4.3.2" => ("ecdsa-with-SHA256", false),
        "1.2.840.10045.4.3.3" => ("ecdsa-with-SHA384", false),
        "1.2.840.10045.4.3.4" => ("ecdsa-with-SHA512", false),
        "1.3.101.112" => ("ed25519", false),
        "1.3.101.113" => ("ed448", false),
        _ => ("", false),
    }
}

pub(super) fn key_of(cert: &X509Certificate<'_>) -> (String, u32) {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        "1.3.101.112" => return ("Ed25519".into(), 256),
        "1.3.101.113" => return ("Ed448".into(), 456),
        _ => {}
    }
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let m: Vec<u8> = rsa
                .modulus
                .iter()
                .copied()
                .skip_while(|b| *b == 0)
                .collect();
            let bits = m
                .first()
                .map_or(0, |b| (m.len() as u32) * 8 - b.leading_zeros());
            ("RSA".into(), bits)
        }
        Ok(PublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            let (name, bits) = match curve.as_str() {
                "1.2.840.10045.3.1.7" => ("EC P-256", 256),
                "1.3.132.0.34" => ("EC P-384", 384),
                "1.3.132.0.35" => ("EC P-521", 521),
                "1.3.132.0.10" => ("EC secp256k1", 256),
                "1.2.840.10045.3.1.1" => ("EC P-192", 192),
                "1.3.132.0.33" => ("EC P-224", 224),
                _ => ("EC", point.key_size() as u32),
            };
            (name.into(), bits)
        }
        Ok(PublicKey::DSA(y)) => ("DSA".into(), (y.len() as u32) * 8),
        Ok(other) => (format!("{:?}", std::mem::discriminant(&other)), 0),
        Err(_) => (format!("unknown ({alg})"), 0),
    }
}

pub(super) fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| ts.to_string())
}

pub(super) fn info_of(cert: &X509Certificate<'_>, der: &[u8]) -> CertInfo {
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::DNSName(d) => format!("DNS:{d}"),
                GeneralName::IPAddress(ip) => format!("IP:{}", ip_text(ip)),
                other => format!("{other}"),
            })
            .collect(),
        _ => Vec::new(),
    };
    let (key_type, key_bits) = key_of(cert);
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let (name, _) = sig_name(&oid);
    CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        serial: cert.raw_serial_as_string(),
        not_before: rfc3339(cert.validity().not_before.timestamp()),
        not_after: rfc3339(cert.validity().not_after.timestamp()),
        key_type,
        key_bits,
        signature_algorithm: if name.is_empty() {
            oid
        } else {
            name.to_owned()
        },
        sha256: hex::encode(Sha256::digest(der)),
        self_signed: self_signed(cert),
        is_ca: cert.is_ca(),
    }
}

pub(super) fn ip_text(ip: &[u8]) -> String {
    match ip.len() {
        4 => {
            let a: [u8; 4] = ip.try_into().unwrap_or_default();
            std::net::Ipv4Addr::from(a).to_string()
        }
        16 => {
            let a: [u8; 16] = ip.try_into().unwrap_or_default();
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => hex::encode(ip),
    }
}

/// Subject equals issuer. (Whether the self-signature verifies is left to
/// the chain validation; a certificate naming itself as issuer is what
/// clients and testssl call self-signed.)
pub(super) fn self_signed(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw()
}
