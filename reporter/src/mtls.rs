//! Optional mutual TLS for agents.
//!
//! With `agent_tls` in the config, the reporter asks every client for a
//! certificate and verifies any it gets against the configured CA and CRLs
//! (rustls' `WebPkiClientVerifier`; a revoked, expired or foreign certificate
//! fails the handshake). Clients without one still connect: staff browsers
//! and the public intake have none. The agent routes then decide:
//!
//! - enrollment needs a certificate that names the host being enrolled (its
//!   CN or a DNS name in its SAN); the SHA-256 of its public key (SPKI) is
//!   stored with the agent, so the token is bound to that key (a renewed
//!   certificate with the same key keeps working);
//! - every agent request must present the key its token is bound to: a
//!   stolen token is useless without the agent's private key;
//! - with `require: true` (the default) an agent enrolled without a
//!   certificate (before mTLS was turned on) is told to enroll again;
//! - with `require: false`, an enrollment without a certificate never
//!   replaces an active agent bound to a key, even when an admin allowed the
//!   host's re-enrollment (enrollment's `decide`).
//!
//! The judgement ([`check_binding`], [`check_enrollment`]) is pure; the
//! certificate reading ([`presented`]) only parses what rustls verified.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

pub use crate::config::mtls::AgentTls;

/// What the agent routes need to know about the presented certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// Hex SHA-256 of the DER SubjectPublicKeyInfo.
    pub spki_sha256: String,
    /// The subject's CNs and the SAN's DNS names, lower-case.
    pub names: Vec<String>,
}

/// The leaf certificate of the connection, if the client presented one (and
/// so rustls verified it). `Err` only for a certificate that does not parse.
pub fn presented(
    tls: Option<&Arc<axum_server::tls::TlsInfo>>,
) -> Result<Option<Presented>, String> {
    let Some(der) = tls.and_then(|t| t.peer_certificates.first()) else {
        return Ok(None);
    };
    leaf(der).map(Some)
}

/// Names and key digest of a DER certificate.
pub fn leaf(der: &[u8]) -> Result<Presented, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the client certificate does not parse: {e}"))?;
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_ascii_lowercase)
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    Ok(Presented {
        spki_sha256: hex::encode(Sha256::digest(cert.tbs_certificate.subject_pki.raw)),
        names,
    })
}

/// Why an agent request or enrollment is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no certificate, or the wrong one.
    Unauthenticated(String),
    /// 403: a valid certificate for another host.
    Forbidden(String),
}

/// May an agent enroll as `host` with this certificate? `Ok` carries the key
/// digest to bind the token to (`None`: mTLS is off, or optional and unused).
pub fn check_enrollment(
    cfg: Option<&AgentTls>,
    host: &str,
    cert: Option<&Presented>,
) -> Result<Option<String>, Refusal> {
    let Some(cfg) = cfg else { return Ok(None) };
    match cert {
        None if cfg.require => Err(Refusal::Unauthenticated(
            "this reporter requires an agent certificate: set `client_cert` and `client_key` in the agent's config".into(),
        )),
        None => Ok(None),
        Some(c) if c.names.iter().any(|n| n.eq_ignore_ascii_case(host)) => {
            Ok(Some(c.spki_sha256.clone()))
        }
        Some(c) => Err(Refusal::Forbidden(format!(
            "the client certificate names {}, not host `{host}`",
            if c.names.is_empty() {
                "nothing".to_owned()
            } else {
                c.names.join(", ")
            }
        ))),
    }
}

/// May this agent (bound to `bound`, if at all) make a request with `cert`?
pub fn check_binding(
    cfg: Option<&AgentTls>,
    bound: Option<&str>,
    cert: Option<&Presented>,
) -> Result<(), Refusal> {
    // mTLS off: clients are not asked for certificates; tokens stand alone.
    let Some(cfg) = cfg else { return Ok(()) };
    match (bound, cert) {
        (Some(b), Some(c)) if c.spki_sha256 == b => Ok(()),
        (Some(_), Some(_)) => Err(Refusal::Unauthenticated(
            "this agent's token is bound to another certificate's key".into(),
        )),
        (Some(_), None) => Err(Refusal::Unauthenticated(
            "this agent's token is bound to its certificate: present it (`client_cert`, `client_key`)".into(),
        )),
        (None, _) if cfg.require => Err(Refusal::Unauthenticated(
            "this reporter requires agent certificates; enroll again with `client_cert` and `client_key` set".into(),
        )),
        (None, _) => Ok(()),
    }
}

/// The files the server's TLS config is built from (watched for changes).
pub fn watched_files(cert: &Path, key: &Path, agent: Option<&AgentTls>) -> Vec<PathBuf> {
    let mut v = vec![cert.to_owned(), key.to_owned()];
    if let Some(a) = agent {
        v.push(a.ca.clone());
        v.extend(a.crls.iter().cloned());
    }
    v
}

/// The rustls server config: our identity, and the agent CA and CRLs when
/// mutual TLS is on. Every error names its file.
pub fn server_config(
    cert: &Path,
    key: &Path,
    agent: Option<&AgentTls>,
) -> anyhow::Result<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| anyhow::anyhow!("TLS certificate `{}`: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("TLS certificate `{}` holds no certificate", cert.display());
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("TLS key `{}`: {e}", key.display()))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match agent {
        None => builder.with_no_client_auth(),
        Some(a) => {
            let mut roots = rustls::RootCertStore::empty();
            let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&a.ca)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| anyhow::anyhow!("`agent_tls.ca` `{}`: {e}", a.ca.display()))?;
            let (added, _) = roots.add_parsable_certificates(cas);
            if added == 0 {
                anyhow::bail!(
                    "`agent_tls.ca` `{}` holds no usable CA certificate",
                    a.ca.display()
                );
            }
            let mut crls = Vec::new();
            for p in &a.crls {
                let list: Vec<CertificateRevocationListDer<'static>> =
                    CertificateRevocationListDer::pem_file_iter(p)
                        .and_then(|it| it.collect::<Result<_, _>>())
                        .map_err(|e| anyhow::anyhow!("`agent_tls.crls` `{}`: {e}", p.display()))?;
                if list.is_empty() {
                    anyhow::bail!("`agent_tls.crls` `{}` holds no CRL", p.display());
                }
                crls.extend(list);
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .with_crls(crls)
                .allow_unauthenticated()
                .build()
                .map_err(|e| anyhow::anyhow!("agent certificate verifier: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder
        .with_single_cert(chain, key_der)
        .map_err(|e| anyhow::anyhow!("TLS certificate `{}` and key: {e}", cert.display()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(require: bool) -> AgentTls {
        AgentTls {
            ca: "ca.pem".into(),
            crls: vec![],
            require,
        }
    }

    fn cert(spki: &str, names: &[&str]) -> Presented {
        Presented {
            spki_sha256: spki.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn enrollment() {
        let c = cert("aa", &["web-1", "web-1.example"]);
        assert_eq!(check_enrollment(None, "web-1", None), Ok(None));
        assert_eq!(check_enrollment(None, "web-1", Some(&c)), Ok(None));
        assert_eq!(
            check_enrollment(Some(&cfg(true)), "WEB-1", Some(&c)),
            Ok(Some("aa".into()))
        );
        assert!(matches!(
            check_enrollment(Some(&cfg(true)), "web-1", None),
            Err(Refusal::Unauthenticated(_))
        ));
        assert_eq!(check_enrollment(Some(&cfg(false)), "web-1", None), Ok(None));
        let Err(Refusal::Forbidden(m)) = check_enrollment(Some(&cfg(false)), "web-2", Some(&c))
        else {
            panic!("another host's certificate must be refused")
        };
        assert!(
            m.contains("web-1, web-1.example") && m.contains("web-2"),
            "{m}"
        );
    }

    #[test]
    fn binding() {
        let c = cert("aa", &["web-1"]);
        let other = cert("bb", &["web-1"]);
        for require in [true, false] {
            let g = cfg(require);
            assert_eq!(check_binding(Some(&g), Some("aa"), Some(&c)), Ok(()));
            assert!(check_binding(Some(&g), Some("aa"), Some(&other)).is_err());
            assert!(check_binding(Some(&g), Some("aa"), None).is_err());
        }
        assert!(check_binding(Some(&cfg(true)), None, Some(&c)).is_err());
        assert!(check_binding(Some(&cfg(true)), None, None).is_err());
        assert_eq!(check_binding(Some(&cfg(false)), None, None), Ok(()));
        // mTLS off: certificates are never asked for, so never checked.
        assert_eq!(check_binding(None, Some("aa"), None), Ok(()));
    }

    #[test]
    fn leaf_reads_names_and_key() {
        let ck = rcgen::generate_simple_self_signed(vec!["web-1.example".into()]).unwrap();
        let p = leaf(ck.cert.der()).unwrap();
        assert!(p.names.contains(&"web-1.example".to_owned()), "{p:?}");
        assert_eq!(
            p.spki_sha256,
            hex::encode(Sha256::digest(ck.key_pair.public_key_der()))
        );
        assert!(leaf(b"not a certificate").is_err());
    }
}
