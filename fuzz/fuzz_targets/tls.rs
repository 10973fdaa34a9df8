//! Certificates through the TLS evidence code: a PEM chain split as the
//! agent's collectors split it (`CertificateDer::pem_slice_iter`), or one raw
//! DER certificate; then `cert::describe` on each and the whole
//! `tls_certificate_file` judgement (X.509 parsing, names, keys, dates).
//! Input: the first byte picks PEM or DER, and whether the chain is trusted.
//! Properties: no panic, no hang; base64 evidence decodes back to the DER.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use vigil_fuzz::{ctx, select};
use vigil_rules::checks::tls::cert::{decode, describe, encode, ChainFacts, Trust, TrustOutcome};
use vigil_rules::checks::tls::file::{Facts, Params, TlsCertificateFile};
use vigil_rules::checks::CheckKind;

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = select(data, 4) else {
        return;
    };
    let chain: Vec<Vec<u8>> = if which & 1 == 0 {
        let mut out = Vec::new();
        for der in CertificateDer::pem_slice_iter(rest) {
            match der {
                Ok(d) => out.push(d.to_vec()),
                Err(_) => return,
            }
        }
        out
    } else {
        vec![rest.to_vec()]
    };
    if chain.is_empty() {
        return;
    }
    for der in &chain {
        let _ = describe(der);
        assert_eq!(decode(&encode(der)).ok().as_deref(), Some(der.as_slice()));
    }
    let facts = Facts {
        path: "/etc/ssl/fuzz.pem".into(),
        result: Some(Ok(ChainFacts {
            chain: chain.iter().map(|d| encode(d)).collect(),
            trust: Trust {
                anchors: "fuzz".into(),
                outcome: if which & 2 == 0 {
                    TrustOutcome::Trusted
                } else {
                    TrustOutcome::UnknownIssuer
                },
                detail: None,
            },
        })),
    };
    let params = Params {
        path: "/etc/ssl/fuzz.pem".into(),
        server_name: Some("www.example.com".into()),
        min_days_remaining: 14,
        issuer_contains: Some("Example".into()),
        min_rsa_bits: 2048,
        min_ec_bits: 256,
        ca_file: None,
        system_roots: true,
        allow_self_signed: false,
    };
    let _ = TlsCertificateFile::judge(&params, &facts, &ctx());
});
