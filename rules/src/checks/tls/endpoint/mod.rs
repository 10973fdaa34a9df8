//! `tls_endpoint`: live TLS endpoints, each connected to by the agent.
//!
//! Facts per endpoint: the negotiated protocol, cipher suite and ALPN, whether
//! an OCSP response was stapled, the presented chain with its validation
//! outcome, and the answers to TLS 1.0/1.1 probes. Or the reason the endpoint
//! could not be reached, which makes the check `error`.

mod codes;
mod evidence;
mod facts;
mod params;

pub use codes::Code;
pub use evidence::{EndpointSeen, Evidence, HttpSeen, RedirectSeen, SessionSeen};
pub use facts::{EndpointFacts, Facts, Probe, ProbeOutcome, RedirectFacts, Session};
pub use params::{default_ec, default_min_days, default_min_hsts_max_age, default_rsa, Params};

use super::cert::{self, CertRules};
use super::http::{hsts_max_age, is_https_redirect, suite_strength, SuiteStrength};
use super::{protocol_rank, PROTOCOLS};
use crate::checks::{CheckKind, JudgeCtx};
use crate::verdict::{CheckStatus, FindingCode, Verdict};

pub struct TlsEndpoint;

impl CheckKind for TlsEndpoint {
    type Params = Params;
    type Facts = Facts;
    type Evidence = Evidence;
    type Code = Code;
    const SUMMARY: &'static str = "live TLS endpoints: chain trust, hostname, expiry, keys, signatures, protocol versions, issuer";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        if p.all_addresses().is_empty() {
            out.push((None, "give `address` or `addresses`".to_owned()));
        }
        for a in p.all_addresses() {
            if a.trim().is_empty() {
                out.push((Some("addresses"), "an address is empty".to_owned()));
            }
        }
        if protocol_rank(&p.min_protocol).is_none() {
            out.push((
                Some("min_protocol"),
                format!(
                    "`{}` is not one of {}",
                    p.min_protocol,
                    PROTOCOLS.join(", ")
                ),
            ));
        }
        if p.min_days_remaining < 0 {
            out.push((
                Some("min_days_remaining"),
                "must not be negative".to_owned(),
            ));
        }
        for a in p.all_http_addresses() {
            if a.trim().is_empty() {
                out.push((Some("http_addresses"), "an address is empty".to_owned()));
            }
        }
        if p.min_hsts_max_age != default_min_hsts_max_age() && !p.hsts {
            out.push((
                Some("min_hsts_max_age"),
                "`min_hsts_max_age` needs `hsts: true`".to_owned(),
            ));
        }
        if !p.system_roots && p.ca_file.is_none() {
            out.push((
                Some("system_roots"),
                "with `system_roots: false`, give `ca_file`: nothing would be trusted".to_owned(),
            ));
        }
        out
    }

    fn judge(p: &Params, facts: &Facts, ctx: &JudgeCtx) -> Verdict {
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let mut evidence = Vec::new();
        let mut oks = Vec::new();
        let min_rank = protocol_rank(&p.min_protocol).unwrap_or(2);
        if facts.endpoints.is_empty() {
            return Verdict::error("no endpoint was checked");
        }
        for ep in &facts.endpoints {
            let s = match &ep.result {
                Err(why) => {
                    errors.push(format!("{}: {why}", ep.address));
                    evidence.push(EndpointSeen::Unreachable {
                        address: ep.address.clone(),
                        server_name: ep.server_name.clone(),
                        error: why.clone(),
                    });
                    continue;
                }
                Ok(s) => s,
            };
            let subject = ep.address.as_str();
            if protocol_rank(&s.protocol).is_some_and(|r| r < min_rank) {
                findings.push(Code::OldProtocol.finding(
                    subject,
                    format!("negotiated TLS {} (minimum {})", s.protocol, p.min_protocol),
                ));
            }
            for probe in &s.old_protocols {
                if protocol_rank(&probe.version).is_none_or(|r| r >= min_rank) {
                    continue;
                }
                match probe.outcome {
                    ProbeOutcome::Accepted => findings.push(Code::OldProtocol.finding(
                        subject,
                        format!(
                            "accepts TLS {} (minimum {}): {}",
                            probe.version, p.min_protocol, probe.detail
                        ),
                    )),
                    ProbeOutcome::Refused => {}
                    ProbeOutcome::Unknown | ProbeOutcome::NotProbed => {
                        findings.push(Code::OldProtocolNotProbed.finding(
                            subject,
                            format!("TLS {} not known: {}", probe.version, probe.detail),
                        ))
                    }
                }
            }
            if s.protocol == "1.2" && suite_strength(&s.cipher_suite) == SuiteStrength::Weak {
                findings.push(Code::WeakCipher.finding(
                    subject,
                    format!("negotiated {} over TLS 1.2", s.cipher_suite),
                ));
            }
            match &s.weak_ciphers {
                Some(probe) => match probe.outcome {
                    ProbeOutcome::Accepted => findings.push(Code::WeakCipher.finding(
                        subject,
                        format!(
                            "accepts a TLS 1.2 suite without AEAD or forward secrecy: {}",
                            probe.detail
                        ),
                    )),
                    ProbeOutcome::Refused => {}
                    ProbeOutcome::Unknown | ProbeOutcome::NotProbed => {
                        findings.push(Code::WeakCipherNotProbed.finding(
                            subject,
                            format!("weak TLS 1.2 suites not known: {}", probe.detail),
                        ))
                    }
                },
                None if p.probe_weak_ciphers => findings.push(Code::WeakCipherNotProbed.finding(
                    subject,
                    "weak TLS 1.2 suites were not probed (facts from an older agent)",
                )),
                None => {}
            }
            if p.hsts {
                match &s.http {
                    None => {
                        errors.push(format!("{}: HSTS was not checked", ep.address));
                    }
                    Some(Err(why)) => {
                        errors.push(format!("{}: GET / for HSTS failed: {why}", ep.address));
                    }
                    Some(Ok(head)) => match head.strict_transport_security.as_deref() {
                        None => findings.push(Code::HstsMissing.finding(
                            subject,
                            format!(
                                "GET / answered {} without Strict-Transport-Security",
                                head.status
                            ),
                        )),
                        Some(v) => match hsts_max_age(v) {
                            None => findings.push(Code::HstsMissing.finding(
                                subject,
                                format!("Strict-Transport-Security `{v}` has no valid max-age, browsers ignore it"),
                            )),
                            Some(age) if age < p.min_hsts_max_age => {
                                findings.push(Code::HstsTooShort.finding(
                                    subject,
                                    format!(
                                        "Strict-Transport-Security max-age {age} s is below {} s",
                                        p.min_hsts_max_age
                                    ),
                                ))
                            }
                            Some(_) => {}
                        },
                    },
                }
            }
            if p.require_ocsp_stapling && !s.ocsp_stapled {
                findings
                    .push(Code::NoOcspStapling.finding(subject, "no OCSP response was stapled"));
            }
            let rules = CertRules {
                server_name: Some(ep.server_name.as_str()),
                min_days_remaining: p.min_days_remaining,
                issuer_contains: p.issuer_contains.as_deref(),
                min_rsa_bits: p.min_rsa_bits,
                min_ec_bits: p.min_ec_bits,
                allow_self_signed: p.allow_self_signed,
            };
            let a = cert::analyse(&s.chain, &rules, subject, ctx.now);
            findings.extend(a.findings);
            oks.push(format!(
                "TLS {}, chain {}, {} days left",
                s.protocol,
                if a.trusted { "trusted" } else { "not trusted" },
                a.leaf_days_left.unwrap_or(0)
            ));
            evidence.push(EndpointSeen::Session(Box::new(SessionSeen {
                address: ep.address.clone(),
                server_name: ep.server_name.clone(),
                protocol: s.protocol.clone(),
                cipher_suite: s.cipher_suite.clone(),
                alpn: s.alpn.clone(),
                ocsp_stapled: s.ocsp_stapled,
                old_protocols: s.old_protocols.clone(),
                weak_ciphers: s.weak_ciphers.clone(),
                http: s.http.as_ref().map(|h| match h {
                    Ok(head) => HttpSeen::Head(head.clone()),
                    Err(why) => HttpSeen::Error { error: why.clone() },
                }),
                trust: s.chain.trust.clone(),
                certificates: a.certificates,
            })));
        }
        let wanted = p.all_http_addresses();
        let mut redirects = Vec::new();
        for address in &wanted {
            let Some(r) = facts.redirects.iter().find(|r| &r.address == address) else {
                errors.push(format!("{address}: the HTTP redirect was not checked"));
                continue;
            };
            match &r.result {
                Err(why) => {
                    errors.push(format!("{address}: {why}"));
                    redirects.push(RedirectSeen::Unanswered {
                        address: address.clone(),
                        error: why.clone(),
                    });
                }
                Ok(head) => {
                    if !is_https_redirect(head) {
                        findings.push(Code::NoHttpsRedirect.finding(
                            address.as_str(),
                            match &head.location {
                                Some(l) => format!(
                                    "GET / over plain HTTP answered {} to `{l}`, not a redirect to https://",
                                    head.status
                                ),
                                None => format!(
                                    "GET / over plain HTTP answered {} without a redirect",
                                    head.status
                                ),
                            },
                        ));
                    }
                    redirects.push(RedirectSeen::Answered {
                        address: address.clone(),
                        status: head.status,
                        location: head.location.clone(),
                    });
                }
            }
        }
        let redirect_note = (!wanted.is_empty()).then(|| {
            format!(
                "{} plain-HTTP address{} redirect{} to https",
                wanted.len(),
                if wanted.len() == 1 { "" } else { "es" },
                if wanted.len() == 1 { "s" } else { "" }
            )
        });
        let mut ok_summary = match oks.as_slice() {
            [one] => one.clone(),
            many => format!("{} endpoints: {}", many.len(), many.join("; ")),
        };
        if let Some(note) = redirect_note {
            ok_summary = format!("{ok_summary}; {note}");
        }
        let mut v = Verdict::from_findings(
            findings,
            ok_summary,
            Evidence {
                endpoints: evidence,
                redirects,
            },
        );
        if !errors.is_empty() {
            v.status = CheckStatus::Error;
            v.summary = if errors.len() == 1 {
                errors.join("")
            } else {
                format!(
                    "{} endpoints could not be checked: {}",
                    errors.len(),
                    errors.join("; ")
                )
            };
        }
        v
    }
}

/// The certificate codes are the same words in both TLS types.
#[cfg(test)]
#[test]
fn cert_codes_are_endpoint_codes() {
    use super::cert::CertCode;
    for c in CertCode::ALL {
        assert!(Code::ALL
            .iter()
            .any(|e| e.as_str() == c.as_str() && e.severity() == c.severity()));
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests fail by panicking"
)]
mod tests {
    use super::*;
    use crate::checks::tls::cert::tests::{at, chain};
    use crate::checks::tls::cert::TrustOutcome;
    use crate::checks::tls::http::HttpHead;
    use serde_json::json;

    fn params() -> Params {
        serde_json::from_value(json!({"address": "127.0.0.1:443", "server_name": "papyrs.example"}))
            .unwrap()
    }

    fn session(probes: &[(&str, ProbeOutcome)]) -> Session {
        Session {
            protocol: "1.3".into(),
            cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
            alpn: Some("h2".into()),
            ocsp_stapled: false,
            chain: chain(&["leaf", "int"], TrustOutcome::Trusted),
            old_protocols: probes
                .iter()
                .map(|(v, o)| Probe {
                    version: (*v).into(),
                    outcome: *o,
                    detail: "d".into(),
                })
                .collect(),
            weak_ciphers: Some(Probe {
                version: "1.2".into(),
                outcome: ProbeOutcome::Refused,
                detail: "alert 40 (handshake_failure)".into(),
            }),
            http: None,
        }
    }

    fn judge(p: &Params, results: Vec<Result<Session, String>>) -> Verdict {
        judge_with(p, results, vec![])
    }

    fn judge_with(
        p: &Params,
        results: Vec<Result<Session, String>>,
        redirects: Vec<RedirectFacts>,
    ) -> Verdict {
        let facts = Facts {
            redirects,
            endpoints: results
                .into_iter()
                .map(|result| EndpointFacts {
                    address: "127.0.0.1:443".into(),
                    server_name: "papyrs.example".into(),
                    result,
                })
                .collect(),
        };
        let ctx = JudgeCtx {
            now: at(2026, 6, 1),
            host: "h".into(),
        };
        crate::checks::judged::<TlsEndpoint>(p, &facts, &ctx)
    }

    fn codes(v: &Verdict) -> Vec<&str> {
        v.findings.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn clean_endpoint_passes() {
        let v = judge(
            &params(),
            vec![Ok(session(&[
                ("1.0", ProbeOutcome::Refused),
                ("1.1", ProbeOutcome::Refused),
            ]))],
        );
        assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
        assert!(v.findings.is_empty());
        assert_eq!(v.summary, "TLS 1.3, chain trusted, 213 days left");
    }

    #[test]
    fn protocols() {
        let v = judge(
            &params(),
            vec![Ok(session(&[
                ("1.0", ProbeOutcome::Accepted),
                ("1.1", ProbeOutcome::Refused),
            ]))],
        );
        assert_eq!(codes(&v), ["old_protocol"]);
        // Not knowing is said, but is no failure.
        let v = judge(
            &params(),
            vec![Ok(session(&[
                ("1.0", ProbeOutcome::Unknown),
                ("1.1", ProbeOutcome::NotProbed),
            ]))],
        );
        assert_eq!(
            codes(&v),
            ["old_protocol_not_probed", "old_protocol_not_probed"]
        );
        assert_eq!(v.status, CheckStatus::Pass);
        let mut s = session(&[]);
        s.protocol = "1.2".into();
        let p = Params {
            min_protocol: "1.3".into(),
            ..params()
        };
        assert_eq!(codes(&judge(&p, vec![Ok(s)])), ["old_protocol"]);
    }

    #[test]
    fn ocsp_when_required() {
        let p = Params {
            require_ocsp_stapling: true,
            ..params()
        };
        assert_eq!(
            codes(&judge(&p, vec![Ok(session(&[]))])),
            ["no_ocsp_stapling"]
        );
        let mut s = session(&[]);
        s.ocsp_stapled = true;
        assert!(codes(&judge(&p, vec![Ok(s)])).is_empty());
    }

    fn head(status: u16, hsts: Option<&str>, location: Option<&str>) -> HttpHead {
        HttpHead {
            status,
            strict_transport_security: hsts.map(String::from),
            location: location.map(String::from),
        }
    }

    #[test]
    fn cipher_suites() {
        let mut s = session(&[]);
        s.protocol = "1.2".into();
        s.cipher_suite = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into();
        assert!(codes(&judge(&params(), vec![Ok(s.clone())])).is_empty());
        s.cipher_suite = "TLS_RSA_WITH_AES_128_CBC_SHA".into();
        assert_eq!(codes(&judge(&params(), vec![Ok(s)])), ["weak_cipher"]);
        let mut s = session(&[]);
        s.weak_ciphers = Some(Probe {
            version: "1.2".into(),
            outcome: ProbeOutcome::Accepted,
            detail: "ServerHello TLS 1.2, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".into(),
        });
        let v = judge(&params(), vec![Ok(s.clone())]);
        assert_eq!(codes(&v), ["weak_cipher"]);
        assert_eq!(v.status, CheckStatus::Fail);
        assert!(v.findings[0].message.contains("AES_128_CBC"));
        // Not knowing is said but is no failure.
        s.weak_ciphers = None;
        let v = judge(&params(), vec![Ok(s)]);
        assert_eq!(codes(&v), ["weak_cipher_not_probed"]);
        assert_eq!(v.status, CheckStatus::Pass);
    }

    #[test]
    fn hsts() {
        let p = Params {
            hsts: true,
            ..params()
        };
        let with = |h: Option<Result<HttpHead, String>>| {
            let mut s = session(&[]);
            s.http = h;
            judge(&p, vec![Ok(s)])
        };
        let good = with(Some(Ok(head(
            200,
            Some("max-age=31536000; includeSubDomains"),
            None,
        ))));
        assert_eq!(good.status, CheckStatus::Pass, "{good:?}");
        assert_eq!(
            codes(&with(Some(Ok(head(200, None, None))))),
            ["hsts_missing"]
        );
        assert_eq!(
            codes(&with(Some(Ok(head(200, Some("includeSubDomains"), None))))),
            ["hsts_missing"]
        );
        let short = with(Some(Ok(head(200, Some("max-age=86400"), None))));
        assert_eq!(codes(&short), ["hsts_too_short"]);
        assert!(short.findings[0].message.contains("15552000"));
        // Exactly the minimum passes.
        assert!(codes(&with(Some(Ok(head(200, Some("max-age=15552000"), None))))).is_empty());
        // Not asked: not judged.
        let mut s = session(&[]);
        s.http = Some(Ok(head(200, None, None)));
        assert!(codes(&judge(&params(), vec![Ok(s)])).is_empty());
        // Asked and not known: error, never pass.
        assert_eq!(with(None).status, CheckStatus::Error);
        let v = with(Some(Err("connection reset".into())));
        assert_eq!(v.status, CheckStatus::Error);
        assert!(v.summary.contains("reset"), "{}", v.summary);
    }

    #[test]
    fn https_redirects() {
        let p = Params {
            http_address: Some("127.0.0.1:80".into()),
            ..params()
        };
        let r = |result| {
            judge_with(
                &p,
                vec![Ok(session(&[]))],
                vec![RedirectFacts {
                    address: "127.0.0.1:80".into(),
                    result,
                }],
            )
        };
        let ok = r(Ok(head(301, None, Some("https://papyrs.example/"))));
        assert_eq!(ok.status, CheckStatus::Pass);
        assert!(ok.summary.contains("redirects to https"), "{}", ok.summary);
        for bad in [
            head(200, None, None),
            head(302, None, Some("http://papyrs.example/")),
            head(303, None, Some("https://papyrs.example/")),
        ] {
            assert_eq!(codes(&r(Ok(bad.clone()))), ["no_https_redirect"], "{bad:?}");
        }
        assert_eq!(
            r(Err("connection refused".into())).status,
            CheckStatus::Error
        );
        // Facts that lack the address: error.
        assert_eq!(
            judge_with(&p, vec![Ok(session(&[]))], vec![]).status,
            CheckStatus::Error
        );
    }

    #[test]
    fn unreachable_is_error_not_fail() {
        let v = judge(
            &params(),
            vec![Err("cannot connect: connection refused".into())],
        );
        assert_eq!(v.status, CheckStatus::Error);
        assert!(v.summary.contains("refused"));
        let v = judge(
            &params(),
            vec![Ok(session(&[])), Err("timed out after 10s".into())],
        );
        assert_eq!(v.status, CheckStatus::Error);
        assert_eq!(judge(&params(), vec![]).status, CheckStatus::Error);
    }

    #[test]
    fn validation() {
        let bad: Params = serde_json::from_value(
            json!({"min_protocol": "1.4", "system_roots": false, "min_hsts_max_age": 5}),
        )
        .unwrap();
        let problems = TlsEndpoint::validate(&bad);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(serde_json::from_value::<Params>(json!({"address": "a:1", "nope": 1})).is_err());
    }
}
