//! Facts for `tls_endpoint`: one rustls handshake per address (all addresses
//! concurrently, each under `endpoint_timeout`), the presented chain and its
//! validation, TLS 1.0/1.1 probes and a TLS 1.2 weak-suite probe; with
//! `hsts`, the head of `GET /` over TLS; with `http_address`, the head of
//! `GET /` over plain HTTP (see [`super::http`]).
//!
//! The handshake uses a verifier that accepts every certificate and
//! signature: the agent only observes (it sends no data but `GET /`, asked
//! for by `hsts`), and validating
//! afterwards with webpki records every problem where a normal verifier would
//! abort on the first one.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use vigil_rules::checks::tls::cert::{encode, ChainFacts};
use vigil_rules::checks::tls::endpoint::{
    EndpointFacts, Facts, Params, Probe, ProbeOutcome, RedirectFacts, Session,
};
use vigil_rules::checks::tls::protocol_rank;

use super::{http, load_anchors, probe, validate, Anchors};
use crate::collect::host::{blocking, io_reason, HostCtx};
use crate::collect::CollectError;

/// Accepts everything, remembering whether an OCSP response was stapled.
#[derive(Debug, Default)]
struct Observer {
    ocsp: Mutex<bool>,
}

impl ServerCertVerifier for Observer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut o) = self.ocsp.lock() {
            *o = !ocsp_response.is_empty();
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        // Everything, weak ones included, so that weak servers still answer.
        vec![
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ECDSA_NISTP384_SHA384,
            SignatureScheme::ECDSA_NISTP521_SHA512,
            SignatureScheme::ED25519,
            SignatureScheme::RSA_PSS_SHA256,
            SignatureScheme::RSA_PSS_SHA384,
            SignatureScheme::RSA_PSS_SHA512,
            SignatureScheme::RSA_PKCS1_SHA256,
            SignatureScheme::RSA_PKCS1_SHA384,
            SignatureScheme::RSA_PKCS1_SHA512,
            SignatureScheme::RSA_PKCS1_SHA1,
            SignatureScheme::ECDSA_SHA1_Legacy,
        ]
    }
}

/// A client configuration that completes the handshake with any certificate
/// (see [`Observer`]) and offers `alpn`.
fn observing_config(
    observer: Arc<Observer>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(observer)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Splits `host:port`, `[v6]:port` or a bare host (port 443).
pub fn split_address(address: &str) -> (String, String) {
    split_address_port(address, "443")
}

/// [`split_address`] with another default port (`80` for plain HTTP).
pub fn split_address_port(address: &str, default_port: &str) -> (String, String) {
    let a = address.trim();
    if let Some(rest) = a.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').unwrap_or(default_port);
            return (host.to_owned(), format!("[{host}]:{port}"));
        }
    }
    match a.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => {
            (host.to_owned(), a.to_owned())
        }
        _ if a.parse::<std::net::Ipv6Addr>().is_ok() => {
            (a.to_owned(), format!("[{a}]:{default_port}"))
        }
        _ => (a.to_owned(), format!("{a}:{default_port}")),
    }
}

pub async fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, CollectError> {
    let (system, ca, c) = (p.system_roots, p.ca_file.clone(), ctx.clone());
    let anchors = Arc::new(
        blocking(move || Ok::<_, CollectError>(load_anchors(system, ca.as_deref(), &c)?)).await?,
    );
    let tasks: Vec<_> = p
        .all_addresses()
        .into_iter()
        .map(|address| {
            let (p, anchors) = (p.clone(), anchors.clone());
            tokio::spawn(async move { check_one(&p, &address, &anchors).await })
        })
        .collect();
    let limit = p.endpoint_timeout.as_std();
    let redirect_tasks: Vec<_> = p
        .all_http_addresses()
        .into_iter()
        .map(|address| {
            let name = p.server_name.clone();
            tokio::spawn(async move {
                let (_, target) = split_address_port(&address, "80");
                let result = http::get_plain(&target, name.as_deref(), limit).await;
                RedirectFacts { address, result }
            })
        })
        .collect();
    let mut endpoints = Vec::with_capacity(tasks.len());
    for t in tasks {
        endpoints.push(t.await.map_err(|e| format!("endpoint task stopped: {e}"))?);
    }
    let mut redirects = Vec::with_capacity(redirect_tasks.len());
    for t in redirect_tasks {
        redirects.push(t.await.map_err(|e| format!("redirect task stopped: {e}"))?);
    }
    Ok(Facts {
        endpoints,
        redirects,
    })
}

async fn check_one(p: &Params, address: &str, anchors: &Anchors) -> EndpointFacts {
    let (host, target) = split_address(address);
    let server_name = p.server_name.clone().unwrap_or_else(|| host.clone());
    let limit = p.endpoint_timeout.as_std();
    let result = match tokio::time::timeout(
        limit,
        session(p, &target, &server_name, anchors, limit),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(format!(
            "timed out after {}",
            humantime::format_duration(limit)
        )),
    };
    EndpointFacts {
        address: address.to_owned(),
        server_name,
        result,
    }
}

async fn session(
    p: &Params,
    target: &str,
    server_name: &str,
    anchors: &Anchors,
    limit: Duration,
) -> Result<Session, String> {
    let addr: SocketAddr = tokio::net::lookup_host(target)
        .await
        .map_err(|e| format!("cannot resolve `{target}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{target}` resolves to no address"))?;
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|_| format!("`{server_name}` is not a valid server name"))?;

    let observer = Arc::new(Observer::default());
    let config = observing_config(observer.clone(), &[b"h2", b"http/1.1"])?;
    let connector = tokio_rustls::TlsConnector::from(config);

    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {}", io_reason(&e)))?;
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {addr} failed: {e}"))?;
    let (_, conn) = tls.get_ref();
    let protocol = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "1.2".to_owned(),
        Some(v) => format!("{v:?}"),
        None => return Err("handshake finished without a protocol version".into()),
    };
    let cipher_suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    let alpn = conn
        .alpn_protocol()
        .map(|a| String::from_utf8_lossy(a).into_owned());
    let chain: Vec<CertificateDer<'static>> = conn
        .peer_certificates()
        .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
        .unwrap_or_default();
    let ocsp_stapled = observer.ocsp.lock().map(|o| *o).unwrap_or(false);
    // A polite close; the answer does not matter.
    let _ = tls.shutdown().await;

    let trust = validate(&chain, anchors);

    let min_rank = protocol_rank(&p.min_protocol).unwrap_or(2);
    let mut old_protocols: Vec<Probe> = Vec::new();
    let wanted = [(0x0301u16, "1.0"), (0x0302u16, "1.1")]
        .into_iter()
        .filter(|(_, l)| protocol_rank(l).is_some_and(|r| r < min_rank));
    if p.probe_old_protocols {
        let probes: Vec<_> = wanted
            .map(|(v, l)| {
                let sni = server_name.to_owned();
                tokio::spawn(async move { probe::probe(addr, v, l, Some(&sni), limit).await })
            })
            .collect();
        for h in probes {
            old_protocols.push(h.await.map_err(|e| format!("probe task stopped: {e}"))?);
        }
    } else {
        old_protocols.extend(wanted.map(|(_, l)| Probe {
            version: l.to_owned(),
            outcome: ProbeOutcome::NotProbed,
            detail: "probe_old_protocols is off".into(),
        }));
    }
    let sni = Some(server_name);
    let weak_ciphers = Some(if p.probe_weak_ciphers {
        probe::probe_weak_suites(addr, sni, limit).await
    } else {
        Probe {
            version: "1.2".to_owned(),
            outcome: ProbeOutcome::NotProbed,
            detail: "probe_weak_ciphers is off".into(),
        }
    });
    let http = if p.hsts {
        let config = observing_config(Arc::new(Observer::default()), &[b"http/1.1"])?;
        Some(http::get_tls(addr, target, server_name, config, limit).await)
    } else {
        None
    };
    Ok(Session {
        weak_ciphers,
        http,
        protocol,
        cipher_suite,
        alpn,
        ocsp_stapled,
        chain: ChainFacts {
            chain: chain.iter().map(|c| encode(c)).collect(),
            trust,
        },
        old_protocols,
    })
}
