//! `tls_certificate_file`: a PEM chain on disk (leaf first), held to the same
//! rules as a live endpoint, so a host can check what nginx will serve.

mod evidence;
mod facts;
mod params;

pub use evidence::Evidence;
pub use facts::Facts;
pub use params::Params;

use super::cert::{self, CertCode, CertRules};
use crate::checks::{CheckKind, JudgeCtx};
use crate::verdict::Verdict;

pub struct TlsCertificateFile;

impl CheckKind for TlsCertificateFile {
    type Params = Params;
    type Facts = Facts;
    type Evidence = Evidence;
    type Code = CertCode;
    const SUMMARY: &'static str =
        "a PEM certificate chain on disk: trust, hostname, expiry, keys, signatures, issuer";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        if p.path.trim().is_empty() {
            out.push((Some("path"), "must not be empty".to_owned()));
        }
        if p.min_days_remaining < 0 {
            out.push((
                Some("min_days_remaining"),
                "must not be negative".to_owned(),
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
        let chain = match &facts.result {
            None => return Verdict::error(format!("`{}` was not read", facts.path)),
            Some(Err(why)) => return Verdict::error(why.clone()),
            Some(Ok(c)) => c,
        };
        let rules = CertRules {
            server_name: p.server_name.as_deref(),
            min_days_remaining: p.min_days_remaining,
            issuer_contains: p.issuer_contains.as_deref(),
            min_rsa_bits: p.min_rsa_bits,
            min_ec_bits: p.min_ec_bits,
            allow_self_signed: p.allow_self_signed,
        };
        let a = cert::analyse(chain, &rules, &facts.path, ctx.now);
        let ok = format!(
            "{} certificate(s), chain {}, {} days left",
            a.certificates.len(),
            if a.trusted { "trusted" } else { "not trusted" },
            a.leaf_days_left.unwrap_or(0)
        );
        Verdict::from_findings(
            a.findings,
            ok,
            Evidence {
                path: facts.path.clone(),
                trust: chain.trust.clone(),
                certificates: a.certificates,
            },
        )
    }
}
