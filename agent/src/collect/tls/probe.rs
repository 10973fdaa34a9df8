//! Does a server still accept TLS 1.0 or 1.1? rustls cannot speak them, so
//! this sends a minimal hand-written ClientHello offering only the old
//! version and reads the first record of the answer: a ServerHello for that
//! version means accepted; an alert, another version or a closed connection
//! means refused. Nothing is negotiated further; the connection is dropped.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vigil_rules::checks::tls::endpoint::{Probe, ProbeOutcome};
use vigil_rules::checks::tls::http::{weak_suite_name, WEAK_TLS12_SUITES};

/// Cipher suites a TLS 1.0/1.1 server would pick from (ECDHE and RSA key
/// exchange, AES-CBC and 3DES), and the renegotiation SCSV.
const SUITES: &[u16] = &[
    0xc014, 0xc013, 0xc00a, 0xc009, 0x0039, 0x0033, 0x0035, 0x002f, 0x000a, 0x00ff,
];

fn push_u16(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u16).to_be_bytes());
}

/// The ClientHello record offering exactly `version` (0x0301 or 0x0302).
pub fn client_hello(version: u16, sni: Option<&str>) -> Vec<u8> {
    client_hello_with(version, SUITES, sni)
}

/// A TLS 1.2 ClientHello offering only the suites without AEAD or forward
/// secrecy ([`WEAK_TLS12_SUITES`]).
pub fn weak_suites_hello(sni: Option<&str>) -> Vec<u8> {
    let suites: Vec<u16> = WEAK_TLS12_SUITES.iter().map(|(c, _)| *c).collect();
    client_hello_with(0x0303, &suites, sni)
}

/// The ClientHello record offering exactly `version` and `suites`. A TLS 1.2
/// hello also carries `signature_algorithms`, without which servers assume
/// SHA-1 and (at OpenSSL's default security level) refuse.
fn client_hello_with(version: u16, suites: &[u16], sni: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(160);
    body.extend_from_slice(&version.to_be_bytes());
    // The random need not be secret: nothing is negotiated past the ServerHello.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut random = [0u8; 32];
    for (i, b) in random.iter_mut().enumerate() {
        *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
    }
    body.extend_from_slice(&random);
    body.push(0); // no session id
    push_u16(&mut body, suites.len() * 2);
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null only

    let mut ext = Vec::new();
    if let Some(name) = sni.filter(|n| n.parse::<std::net::IpAddr>().is_err() && !n.is_empty()) {
        let name = name.as_bytes();
        ext.extend_from_slice(&[0x00, 0x00]);
        push_u16(&mut ext, name.len() + 5);
        push_u16(&mut ext, name.len() + 3);
        ext.push(0); // host_name
        push_u16(&mut ext, name.len());
        ext.extend_from_slice(name);
    }
    // supported_groups: x25519, secp256r1, secp384r1
    ext.extend_from_slice(&[
        0x00, 0x0a, 0x00, 0x08, 0x00, 0x06, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18,
    ]);
    // ec_point_formats: uncompressed
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    if version >= 0x0303 {
        // signature_algorithms: ECDSA and RSA-PSS/PKCS#1 with SHA-2, then SHA-1.
        let algs: [u16; 11] = [
            0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201,
        ];
        ext.extend_from_slice(&[0x00, 0x0d]);
        push_u16(&mut ext, algs.len() * 2 + 2);
        push_u16(&mut ext, algs.len() * 2);
        for a in algs {
            ext.extend_from_slice(&a.to_be_bytes());
        }
    }
    push_u16(&mut body, ext.len());
    body.extend_from_slice(&ext);

    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);

    let mut rec = vec![0x16, 0x03, 0x01];
    push_u16(&mut rec, hs.len());
    rec.extend_from_slice(&hs);
    rec
}

fn version_name(v: u16) -> String {
    match v {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v => format!("0x{v:04x}"),
    }
}

/// Reads the first answer record to a ClientHello offering `version`.
pub fn interpret(version: u16, answer: &[u8]) -> (ProbeOutcome, String) {
    match answer {
        [] => (
            ProbeOutcome::Refused,
            "the server closed the connection".into(),
        ),
        [0x15, _, _, _, _, _level, desc, ..] => (
            ProbeOutcome::Refused,
            format!("alert {desc} ({})", alert_name(*desc)),
        ),
        [0x16, _, _, _, _, 0x02, _, _, _, hi, lo, rest @ ..] => {
            let v = u16::from_be_bytes([*hi, *lo]);
            if v == version {
                // After the random (32) and session id comes the chosen suite.
                let suite = rest.get(32).and_then(|&sid| {
                    let at = 33 + sid as usize;
                    Some(u16::from_be_bytes([*rest.get(at)?, *rest.get(at + 1)?]))
                });
                let suite = suite.map_or_else(String::new, |s| match weak_suite_name(s) {
                    Some(name) => format!(", cipher suite {name} (0x{s:04x})"),
                    None => format!(", cipher suite 0x{s:04x}"),
                });
                (
                    ProbeOutcome::Accepted,
                    format!("ServerHello {}{suite}", version_name(v)),
                )
            } else {
                (
                    ProbeOutcome::Refused,
                    format!("answered with {}", version_name(v)),
                )
            }
        }
        [0x16, ..] | [0x15, ..] if answer.len() < 11 => {
            (ProbeOutcome::Unknown, "a truncated answer".into())
        }
        _ => (ProbeOutcome::Unknown, "an answer that is not TLS".into()),
    }
}

fn alert_name(desc: u8) -> &'static str {
    match desc {
        40 => "handshake_failure",
        47 => "illegal_parameter",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        112 => "unrecognized_name",
        _ => "other",
    }
}

/// Probes one old version. `label` is the policy spelling (`1.0`).
pub async fn probe(
    addr: SocketAddr,
    version: u16,
    label: &str,
    sni: Option<&str>,
    limit: Duration,
) -> Probe {
    exchange(addr, version, label, client_hello(version, sni), limit).await
}

/// Does the server accept a TLS 1.2 suite without AEAD or forward secrecy?
pub async fn probe_weak_suites(addr: SocketAddr, sni: Option<&str>, limit: Duration) -> Probe {
    exchange(addr, 0x0303, "1.2", weak_suites_hello(sni), limit).await
}

async fn exchange(
    addr: SocketAddr,
    version: u16,
    label: &str,
    hello: Vec<u8>,
    limit: Duration,
) -> Probe {
    let run = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.write_all(&hello)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::with_capacity(128);
        let mut chunk = [0u8; 512];
        // Enough of the first record for an alert or the ServerHello's head.
        while buf.len() < 80 {
            match s.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if buf.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {
                    break
                }
                Err(e) => return Err(format!("read: {e}")),
            }
            if matches!(buf.first(), Some(0x15)) && buf.len() >= 7 {
                break;
            }
        }
        Ok(buf)
    };
    let (outcome, detail) = match tokio::time::timeout(limit, run).await {
        Ok(Ok(buf)) => interpret(version, &buf),
        Ok(Err(why)) => (ProbeOutcome::Unknown, why),
        Err(_) => (ProbeOutcome::Unknown, format!("no answer within {limit:?}")),
    };
    Probe {
        version: label.to_owned(),
        outcome,
        detail,
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

    #[test]
    fn hello_lengths_are_consistent() {
        let h = client_hello(0x0301, Some("papyrs.example"));
        let rec_len = u16::from_be_bytes([h[3], h[4]]) as usize;
        assert_eq!(rec_len, h.len() - 5);
        let hs_len = u32::from_be_bytes([0, h[6], h[7], h[8]]) as usize;
        assert_eq!(hs_len, h.len() - 9);
        assert_eq!(&h[9..11], &[3, 1]);
    }

    #[test]
    fn answers() {
        assert_eq!(
            interpret(0x0301, &[0x15, 3, 1, 0, 2, 2, 70]).0,
            ProbeOutcome::Refused
        );
        let mut hello = vec![0x16, 3, 1, 0, 60, 2, 0, 0, 56, 3, 1];
        hello.extend_from_slice(&[0; 32]);
        hello.extend_from_slice(&[0, 0xc0, 0x13, 0]);
        let (o, d) = interpret(0x0301, &hello);
        assert_eq!(o, ProbeOutcome::Accepted);
        assert!(d.contains("0xc013"), "{d}");
        hello[10] = 3;
        assert_eq!(interpret(0x0301, &hello).0, ProbeOutcome::Refused);
        assert_eq!(interpret(0x0301, &[]).0, ProbeOutcome::Refused);
    }
}
