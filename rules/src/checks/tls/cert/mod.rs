//! Certificate chain analysis shared by `tls_endpoint` and
//! `tls_certificate_file`: pure, over DER bytes the agent collected.

mod evidence;
mod facts;
mod parse;

pub use evidence::CertInfo;
pub use facts::{ChainFacts, Trust, TrustOutcome};
pub use parse::{decode, describe, encode, CertError};
use parse::{info_of, ip_text, parse_der, sig_name};

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::X509Certificate;

use crate::finding_codes;
use crate::verdict::{Finding, FindingCode};

finding_codes! {
    /// Codes of the certificate analysis; `tls_endpoint` repeats them.
    pub enum CertCode {
        Expired = ("expired", Critical, "a presented certificate is past its not-after date"),
        NotYetValid = ("not_yet_valid", High, "a presented certificate is before its not-before date"),
        ExpiringSoon = ("expiring_soon", Medium, "a presented certificate expires within `min_days_remaining` days"),
        SelfSigned = ("self_signed", High, "the leaf certificate is self-signed"),
        UntrustedChain = ("untrusted_chain", High, "no path from the chain to a trusted root"),
        IncompleteChain = ("incomplete_chain", High, "the chain stops at a certificate whose issuer was not sent and is not a trusted root (an intermediate is missing)"),
        ChainOrder = ("chain_order", Medium, "the chain is not in order: a certificate is not followed by its issuer"),
        HostnameMismatch = ("hostname_mismatch", High, "the leaf certificate's names do not cover `server_name`"),
        WeakKey = ("weak_key", High, "a key below `min_rsa_bits` / `min_ec_bits`, or a DSA key"),
        WeakSignature = ("weak_signature", High, "a certificate signed with SHA-1, MD5 or MD2"),
        IssuerMismatch = ("issuer_mismatch", High, "the leaf's issuer does not contain `issuer_contains`"),
        Unparsable = ("unparsable_certificate", High, "a presented certificate is not valid X.509 DER"),
        NoCertificate = ("no_certificate", High, "no certificate was presented or found"),
    }
}

/// The rules a chain is held to.
#[derive(Debug, Clone)]
pub struct CertRules<'a> {
    pub server_name: Option<&'a str>,
    pub min_days_remaining: i64,
    pub issuer_contains: Option<&'a str>,
    pub min_rsa_bits: u32,
    pub min_ec_bits: u32,
    pub allow_self_signed: bool,
}

/// The outcome of [`analyse`].
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub findings: Vec<Finding>,
    pub certificates: Vec<CertInfo>,
    /// Whole days left on the leaf.
    pub leaf_days_left: Option<i64>,
    pub trusted: bool,
}

struct Parsed<'a> {
    index: usize,
    cert: X509Certificate<'a>,
    info: CertInfo,
    not_before: i64,
    not_after: i64,
    weak_sig: bool,
}

/// Whether `pattern` (a SAN DNS name, maybe `*.` wildcard) covers `host`.
pub fn name_matches(pattern: &str, host: &str) -> bool {
    let p = pattern.trim_end_matches('.').to_ascii_lowercase();
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if let Some(rest) = p.strip_prefix("*.") {
        // A wildcard covers exactly one leftmost label.
        match h.split_once('.') {
            Some((label, tail)) => !label.is_empty() && tail == rest && rest.contains('.'),
            None => false,
        }
    } else {
        p == h
    }
}

fn hostname_covered(cert: &X509Certificate<'_>, host: &str) -> bool {
    let ip: Option<std::net::IpAddr> = host.trim_matches(['[', ']']).parse().ok();
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return false;
    };
    ext.value.general_names.iter().any(|n| match (n, ip) {
        (GeneralName::DNSName(d), None) => name_matches(d, host),
        (GeneralName::IPAddress(bytes), Some(ip)) => ip_text(bytes) == ip.to_string(),
        _ => false,
    })
}

/// Finds every problem of a chain under `rules`. `subject` names the thing
/// checked (an address, a file) in the findings.
pub fn analyse(
    facts: &ChainFacts,
    rules: &CertRules<'_>,
    subject: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Analysis {
    let mut out = Analysis::default();
    let ders: Vec<(usize, Result<Vec<u8>, CertError>)> = facts
        .chain
        .iter()
        .enumerate()
        .map(|(i, b)| (i, decode(b)))
        .collect();
    let mut parsed: Vec<Parsed<'_>> = Vec::new();
    for (i, der) in &ders {
        let res = der
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|d| parse_der(d).map(|c| (c, d)));
        match res {
            Ok((cert, d)) => {
                let info = info_of(&cert, d);
                let (_, weak_sig) = sig_name(&cert.signature_algorithm.algorithm.to_id_string());
                parsed.push(Parsed {
                    index: *i,
                    not_before: cert.validity().not_before.timestamp(),
                    not_after: cert.validity().not_after.timestamp(),
                    cert,
                    info,
                    weak_sig,
                });
            }
            Err(why) => out.findings.push(
                CertCode::Unparsable
                    .finding(subject, format!("certificate #{i} of the chain: {why}")),
            ),
        }
    }
    out.certificates = parsed.iter().map(|p| p.info.clone()).collect();
    let Some(leaf) = parsed.first() else {
        if facts.chain.is_empty() {
            out.findings
                .push(CertCode::NoCertificate.finding(subject, "no certificate was presented"));
        }
        return out;
    };
    let now_ts = now.timestamp();
    out.leaf_days_left = Some((leaf.not_after - now_ts).div_euclid(86_400));

    for p in &parsed {
        // A self-signed certificate after the leaf is a root sent along: clients
        // use their own copy (or none), so its dates, key and signature do not count.
        if p.index > 0 && p.info.self_signed {
            continue;
        }
        let who = if p.index == 0 {
            format!("leaf `{}`", p.info.subject)
        } else {
            format!("certificate #{} `{}`", p.index, p.info.subject)
        };
        if p.not_after < now_ts {
            out.findings.push(
                CertCode::Expired
                    .finding(subject, format!("{who} expired on {}", p.info.not_after)),
            );
        } else if p.not_before > now_ts {
            out.findings.push(CertCode::NotYetValid.finding(
                subject,
                format!("{who} is not valid before {}", p.info.not_before),
            ));
        } else {
            let days = (p.not_after - now_ts).div_euclid(86_400);
            if days < rules.min_days_remaining {
                out.findings.push(CertCode::ExpiringSoon.finding(
                    subject,
                    format!(
                        "{who} expires on {} ({days} days left, minimum {})",
                        p.info.not_after, rules.min_days_remaining
                    ),
                ));
            }
        }
        let (kt, bits) = (p.info.key_type.as_str(), p.info.key_bits);
        let weak_key = if kt == "RSA" {
            (bits < rules.min_rsa_bits)
                .then(|| format!("RSA {bits} bits, minimum {}", rules.min_rsa_bits))
        } else if kt.starts_with("EC") {
            (bits < rules.min_ec_bits)
                .then(|| format!("{kt} ({bits} bits), minimum {}", rules.min_ec_bits))
        } else if kt == "DSA" {
            Some("a DSA key".to_owned())
        } else {
            None
        };
        if let Some(why) = weak_key {
            out.findings
                .push(CertCode::WeakKey.finding(subject, format!("{who} has a weak key: {why}")));
        }
        if p.weak_sig {
            out.findings.push(CertCode::WeakSignature.finding(
                subject,
                format!("{who} is signed with {}", p.info.signature_algorithm),
            ));
        }
    }

    // Order: each certificate is followed by its issuer.
    for pair in parsed.windows(2) {
        if let [a, b] = pair {
            if a.cert.issuer().as_raw() != b.cert.subject().as_raw() {
                out.findings.push(CertCode::ChainOrder.finding(
                    subject,
                    format!(
                        "certificate #{} `{}` is followed by `{}`, not by its issuer `{}`",
                        a.index, a.info.subject, b.info.subject, a.info.issuer
                    ),
                ));
                break;
            }
        }
    }

    // Trust.
    let leaf_self_signed = leaf.info.self_signed;
    let weak_found = out
        .findings
        .iter()
        .any(|f| f.code == "weak_signature" || f.code == "weak_key");
    let detail = facts.trust.detail.clone().unwrap_or_default();
    out.trusted = facts.trust.outcome == TrustOutcome::Trusted;
    if leaf_self_signed && !rules.allow_self_signed {
        out.findings.push(CertCode::SelfSigned.finding(
            subject,
            format!("leaf `{}` is self-signed", leaf.info.subject),
        ));
    } else if !leaf_self_signed || !out.trusted {
        match facts.trust.outcome {
            TrustOutcome::Trusted => {}
            TrustOutcome::WeakAlgorithm if weak_found => {}
            TrustOutcome::UnknownIssuer => {
                let top = parsed.last().unwrap_or(leaf);
                if !top.info.self_signed {
                    out.findings.push(CertCode::IncompleteChain.finding(
                        subject,
                        format!(
                            "the chain stops at `{}`, whose issuer `{}` was not sent and is not a trusted root ({})",
                            top.info.subject, top.info.issuer, facts.trust.anchors
                        ),
                    ));
                }
                out.findings.push(CertCode::UntrustedChain.finding(
                    subject,
                    format!(
                        "no path from leaf `{}` to a trusted root ({}): {detail}",
                        leaf.info.subject, facts.trust.anchors
                    ),
                ));
            }
            TrustOutcome::WeakAlgorithm | TrustOutcome::Invalid => {
                out.findings.push(CertCode::UntrustedChain.finding(
                    subject,
                    format!(
                        "chain of `{}` does not validate: {detail}",
                        leaf.info.subject
                    ),
                ));
            }
        }
    }

    if let Some(host) = rules.server_name {
        if !hostname_covered(&leaf.cert, host) {
            out.findings.push(CertCode::HostnameMismatch.finding(
                subject,
                format!(
                    "leaf names [{}] do not cover `{host}`",
                    leaf.info.sans.join(", ")
                ),
            ));
        }
    }
    if let Some(needle) = rules.issuer_contains {
        if !leaf
            .info
            .issuer
            .to_lowercase()
            .contains(&needle.to_lowercase())
        {
            out.findings.push(CertCode::IssuerMismatch.finding(
                subject,
                format!(
                    "leaf issuer `{}` does not contain `{needle}`",
                    leaf.info.issuer
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests fail by panicking"
)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Fixed certificates from `tests/data/tls/unit/make.sh` (leaves valid
    /// 2026-01-01 .. 2027-01-01; the intermediate's O is "Gandi Test SAS").
    pub fn pem(name: &str) -> String {
        let text = match name {
            "root" => include_str!("../../../../../tests/data/tls/unit/root.pem"),
            "int" => include_str!("../../../../../tests/data/tls/unit/int.pem"),
            "leaf" => include_str!("../../../../../tests/data/tls/unit/leaf.pem"),
            "sha1" => include_str!("../../../../../tests/data/tls/unit/sha1.pem"),
            "rsa1024" => include_str!("../../../../../tests/data/tls/unit/rsa1024.pem"),
            "self" => include_str!("../../../../../tests/data/tls/unit/self.pem"),
            _ => unreachable!(),
        };
        text.lines().filter(|l| !l.starts_with("-----")).collect()
    }

    pub fn chain(names: &[&str], outcome: TrustOutcome) -> ChainFacts {
        ChainFacts {
            chain: names.iter().map(|n| pem(n)).collect(),
            trust: Trust {
                anchors: "test".into(),
                outcome,
                detail: None,
            },
        }
    }

    pub fn at(y: i32, m: u32, d: u32) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    fn rules() -> CertRules<'static> {
        CertRules {
            server_name: Some("papyrs.example"),
            min_days_remaining: 21,
            issuer_contains: Some("gandi"),
            min_rsa_bits: 2048,
            min_ec_bits: 256,
            allow_self_signed: false,
        }
    }

    fn codes(c: &ChainFacts, r: &CertRules<'_>, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
        analyse(c, r, "x", now)
            .findings
            .into_iter()
            .map(|f| f.code)
            .collect()
    }

    #[test]
    fn a_clean_chain_has_no_findings_and_full_evidence() {
        let c = chain(&["leaf", "int"], TrustOutcome::Trusted);
        let a = analyse(&c, &rules(), "x", at(2026, 6, 1));
        assert!(a.findings.is_empty(), "{:?}", a.findings);
        assert!(a.trusted);
        let leaf = &a.certificates[0];
        assert_eq!(leaf.key_type, "EC P-256");
        assert_eq!(leaf.key_bits, 256);
        assert_eq!(leaf.signature_algorithm, "ecdsa-with-SHA256");
        assert_eq!(leaf.not_after, "2027-01-01T00:00:00Z");
        assert!(leaf.sans.contains(&"DNS:*.papyrs.example".to_owned()));
        assert!(leaf.sans.contains(&"IP:127.0.0.1".to_owned()));
        assert_eq!(leaf.sha256.len(), 64);
        assert_eq!(a.leaf_days_left, Some(213));
    }

    #[test]
    fn dates() {
        let c = chain(&["leaf", "int"], TrustOutcome::Trusted);
        assert_eq!(codes(&c, &rules(), at(2027, 2, 1)), ["expired"]);
        assert_eq!(codes(&c, &rules(), at(2025, 12, 1)), ["not_yet_valid"]);
        assert_eq!(codes(&c, &rules(), at(2026, 12, 27)), ["expiring_soon"]);
        let lax = CertRules {
            min_days_remaining: 3,
            ..rules()
        };
        assert!(codes(&c, &lax, at(2026, 12, 27)).is_empty());
    }

    #[test]
    fn names_issuer_and_order() {
        let c = chain(&["leaf", "int"], TrustOutcome::Trusted);
        let now = at(2026, 6, 1);
        for ok in [
            "papyrs.example",
            "www.papyrs.example",
            "PAPYRS.example.",
            "127.0.0.1",
        ] {
            let r = CertRules {
                server_name: Some(ok),
                ..rules()
            };
            assert!(codes(&c, &r, now).is_empty(), "{ok}");
        }
        for bad in [
            "a.b.papyrs.example",
            "papyrs.example.org",
            "127.0.0.2",
            "example",
        ] {
            let r = CertRules {
                server_name: Some(bad),
                ..rules()
            };
            assert_eq!(codes(&c, &r, now), ["hostname_mismatch"], "{bad}");
        }
        let r = CertRules {
            issuer_contains: Some("Sectigo"),
            ..rules()
        };
        assert_eq!(codes(&c, &r, now), ["issuer_mismatch"]);
        let c = chain(&["leaf", "root", "int"], TrustOutcome::Trusted);
        assert_eq!(codes(&c, &rules(), now), ["chain_order"]);
    }

    #[test]
    fn keys_and_signatures() {
        let now = at(2026, 6, 1);
        let c = chain(&["rsa1024", "int"], TrustOutcome::Trusted);
        assert_eq!(codes(&c, &rules(), now), ["weak_key"]);
        assert_eq!(
            analyse(&c, &rules(), "x", now).certificates[0].key_bits,
            1024
        );
        let r = CertRules {
            min_rsa_bits: 1024,
            ..rules()
        };
        assert!(codes(&c, &r, now).is_empty());
        // The validator refuses SHA-1: that is the weak signature, not a second problem.
        let c = chain(&["sha1", "int"], TrustOutcome::WeakAlgorithm);
        assert_eq!(codes(&c, &rules(), now), ["weak_signature"]);
        let r = CertRules {
            min_ec_bits: 384,
            ..rules()
        };
        let c = chain(&["leaf", "int"], TrustOutcome::Trusted);
        assert_eq!(codes(&c, &r, now), ["weak_key", "weak_key"]);
    }

    #[test]
    fn trust() {
        let now = at(2026, 11, 30);
        let c = chain(&["leaf"], TrustOutcome::UnknownIssuer);
        assert_eq!(
            codes(&c, &rules(), now),
            ["incomplete_chain", "untrusted_chain"]
        );
        let c = chain(&["leaf", "int", "root"], TrustOutcome::UnknownIssuer);
        assert_eq!(codes(&c, &rules(), now), ["untrusted_chain"]);
        let c = chain(&["leaf", "int"], TrustOutcome::Invalid);
        assert_eq!(codes(&c, &rules(), now), ["untrusted_chain"]);
        let r = CertRules {
            issuer_contains: None,
            ..rules()
        };
        let c = chain(&["self"], TrustOutcome::Invalid);
        assert_eq!(codes(&c, &r, now), ["self_signed"]);
        let pinned = CertRules {
            allow_self_signed: true,
            ..r.clone()
        };
        let c = chain(&["self"], TrustOutcome::Trusted);
        assert!(codes(&c, &pinned, now).is_empty());
    }

    #[test]
    fn garbage_is_reported_not_panicked_on() {
        let mut c = chain(&["leaf", "int"], TrustOutcome::Trusted);
        c.chain.push("not base64!".into());
        c.chain.push(encode(b"\x30\x03\x02\x01\x01"));
        let r = analyse(&c, &rules(), "x", at(2026, 6, 1));
        let got: Vec<_> = r.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(got, ["unparsable_certificate", "unparsable_certificate"]);
        let empty = chain(&[], TrustOutcome::Invalid);
        assert_eq!(codes(&empty, &rules(), at(2026, 6, 1)), ["no_certificate"]);
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_matches("*.a.example", "b.a.example"));
        assert!(!name_matches("*.a.example", "a.example"));
        assert!(!name_matches("*.example", "a.example"));
        assert!(!name_matches("*.a.example", "c.b.a.example"));
    }
}
