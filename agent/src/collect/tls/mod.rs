//! Facts for the TLS check types: trust anchors, chain validation that
//! records its outcome instead of failing, and the two collectors.
//!
//! Trust anchors come from the system store through `rustls-native-certs`
//! (`/etc/ssl/certs`, kept by Debian's `ca-certificates`), plus an optional
//! `ca_file`. The system store, not the compiled-in `webpki-roots`, because
//! operators add and remove anchors with `update-ca-certificates` and expect
//! every tool on the host to agree, and because a compiled-in list ages with
//! the binary.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::RootCertStore;
use vigil_rules::checks::tls::cert::{Trust, TrustOutcome};

use super::host::{io_reason, HostCtx};

pub mod endpoint;
pub mod file;
pub mod http;
pub mod probe;

/// Why the trust anchors could not be loaded: the check cannot judge trust.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// `why` is the first error of the store, or `none found`.
    #[error("no system trust anchors could be loaded: {why}")]
    NoSystemAnchors { why: String },
    #[error("cannot read ca_file `{ca_file}`: {}", io_reason(source))]
    Read {
        ca_file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ca_file `{ca_file}`: {source}")]
    Pem {
        ca_file: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("ca_file `{ca_file}`: a certificate is not usable as a trust anchor: {source}")]
    Unusable {
        ca_file: String,
        #[source]
        source: rustls::Error,
    },
    #[error("ca_file `{ca_file}` holds no PEM certificate")]
    Empty { ca_file: String },
}

/// The anchors a check trusts, and how to say where they came from.
pub struct Anchors {
    pub store: RootCertStore,
    pub description: String,
}

/// Loads the system store (when asked) and `ca_file` (under the host root).
pub fn load_anchors(
    system: bool,
    ca_file: Option<&str>,
    ctx: &HostCtx,
) -> Result<Anchors, AnchorError> {
    let mut store = RootCertStore::empty();
    let mut parts = Vec::new();
    if system {
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = store.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found
                .errors
                .first()
                .map_or_else(|| "none found".to_owned(), |e| e.to_string());
            return Err(AnchorError::NoSystemAnchors { why });
        }
        parts.push(format!("system ({added} roots)"));
    }
    if let Some(ca) = ca_file {
        let path = ctx.path(ca);
        let pem = std::fs::read(&path).map_err(|source| AnchorError::Read {
            ca_file: ca.to_owned(),
            source,
        })?;
        let mut n = 0;
        for der in CertificateDer::pem_slice_iter(&pem) {
            let der = der.map_err(|source| AnchorError::Pem {
                ca_file: ca.to_owned(),
                source,
            })?;
            store.add(der).map_err(|source| AnchorError::Unusable {
                ca_file: ca.to_owned(),
                source,
            })?;
            n += 1;
        }
        if n == 0 {
            return Err(AnchorError::Empty {
                ca_file: ca.to_owned(),
            });
        }
        parts.push(format!("{ca} ({n})"));
    }
    Ok(Anchors {
        store,
        description: parts.join(" + "),
    })
}

/// Validates a chain (leaf first) for server use, without the hostname (the
/// judge matches names itself) and recording the failure.
///
/// When the only failure is time, validation is repeated at the middle of the
/// leaf's validity, so an expired certificate does not hide an untrusted chain
/// (expiry is reported from the dates by the judge).
pub fn validate(chain: &[CertificateDer<'_>], anchors: &Anchors) -> Trust {
    let outcome = |e: Option<webpki::Error>| -> Trust {
        match e {
            None => Trust {
                anchors: anchors.description.clone(),
                outcome: TrustOutcome::Trusted,
                detail: None,
            },
            Some(e) => {
                let detail = format!("{e:?}");
                let outcome = match e {
                    webpki::Error::UnknownIssuer => TrustOutcome::UnknownIssuer,
                    _ if detail.contains("UnsupportedSignatureAlgorithm")
                        || detail.contains("InvalidSignatureForPublicKey") =>
                    {
                        TrustOutcome::WeakAlgorithm
                    }
                    _ => TrustOutcome::Invalid,
                };
                Trust {
                    anchors: anchors.description.clone(),
                    outcome,
                    detail: Some(detail),
                }
            }
        }
    };
    let Some((leaf, rest)) = chain.split_first() else {
        return outcome(Some(webpki::Error::BadDer));
    };
    let ee = match webpki::EndEntityCert::try_from(leaf) {
        Ok(ee) => ee,
        Err(e) => return outcome(Some(e)),
    };
    let algs = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    let at = |time: UnixTime| {
        ee.verify_for_usage(
            algs,
            &anchors.store.roots,
            rest,
            time,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|_| ())
    };
    match at(UnixTime::now()) {
        Ok(()) => outcome(None),
        Err(
            webpki::Error::CertExpired { .. }
            | webpki::Error::CertNotValidYet { .. }
            | webpki::Error::InvalidCertValidity,
        ) => {
            let mid = vigil_rules::checks::tls::cert::describe(leaf)
                .ok()
                .and_then(|info| {
                    let nb = chrono::DateTime::parse_from_rfc3339(&info.not_before).ok()?;
                    let na = chrono::DateTime::parse_from_rfc3339(&info.not_after).ok()?;
                    let mid = nb.timestamp() + (na.timestamp() - nb.timestamp()) / 2;
                    u64::try_from(mid).ok()
                });
            match mid {
                Some(t) => outcome(
                    at(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                        t,
                    )))
                    .err(),
                ),
                None => outcome(Some(webpki::Error::InvalidCertValidity)),
            }
        }
        Err(e) => outcome(Some(e)),
    }
}
