//! Facts for `tls_certificate_file`: the PEM chain and its validation.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use vigil_rules::checks::tls::cert::{encode, ChainFacts};
use vigil_rules::checks::tls::file::{Facts, Params};

use super::{load_anchors, validate};
use crate::collect::host::{io_reason, HostCtx};
use crate::collect::CollectError;

pub fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, CollectError> {
    let path = ctx.path(&p.path);
    let pem =
        std::fs::read(&path).map_err(|e| format!("cannot read `{}`: {}", p.path, io_reason(&e)))?;
    let mut chain = Vec::new();
    for der in CertificateDer::pem_slice_iter(&pem) {
        chain.push(der.map_err(|e| format!("`{}` is not a PEM certificate chain: {e}", p.path))?);
    }
    if chain.is_empty() {
        return Err(format!("`{}` holds no PEM certificate", p.path).into());
    }
    let anchors = load_anchors(p.system_roots, p.ca_file.as_deref(), ctx)?;
    let trust = validate(&chain, &anchors);
    Ok(Facts {
        path: p.path.clone(),
        result: Some(Ok(ChainFacts {
            chain: chain.iter().map(|c| encode(c)).collect(),
            trust,
        })),
    })
}
