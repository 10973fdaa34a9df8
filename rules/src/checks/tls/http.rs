//! What `tls_endpoint` reads over HTTP, and the TLS 1.2 cipher suites it
//! judges: pure parsers, so the agent only moves bytes.
//!
//! - [`parse_head`] reads an HTTP/1.x response head (status line and
//!   headers) into an [`HttpHead`].
//! - [`hsts_max_age`] reads `max-age` out of a `Strict-Transport-Security`
//!   value as RFC 6797 §6.1 spells it.
//! - [`suite_strength`] tells whether a TLS 1.2 suite is an AEAD with forward
//!   secrecy (ECDHE or DHE key exchange with GCM, CCM or ChaCha20-Poly1305).

use serde::{Deserialize, Serialize};

/// The status and the headers `tls_endpoint` judges, from one response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpHead {
    pub status: u16,
    /// `Strict-Transport-Security`, the first one when several were sent
    /// (browsers honour only the first, RFC 6797 §8.1).
    #[serde(default)]
    pub strict_transport_security: Option<String>,
    /// `Location`, for redirects.
    #[serde(default)]
    pub location: Option<String>,
}

/// Why bytes are not an HTTP/1.x response head.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    #[error("no HTTP answer")]
    Empty,
    #[error("the answer is not HTTP/1.x")]
    NotHttp1,
    #[error("the HTTP status line has no valid status code")]
    NoStatus,
}

/// Reads a response head: `HTTP/1.x NNN reason` then `Name: value` lines up
/// to the first empty line. Bytes after the head are ignored.
pub fn parse_head(bytes: &[u8]) -> Result<HttpHead, HeadError> {
    let text = String::from_utf8_lossy(bytes);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .split("\n\n")
        .next()
        .unwrap_or_default();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default().trim_end();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(if status_line.is_empty() {
            HeadError::Empty
        } else {
            HeadError::NotHttp1
        });
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..=599).contains(s))
        .ok_or(HeadError::NoStatus)?;
    let mut out = HttpHead {
        status,
        strict_transport_security: None,
        location: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("strict-transport-security") {
            out.strict_transport_security
                .get_or_insert_with(|| value.to_owned());
        } else if name.eq_ignore_ascii_case("location") {
            out.location.get_or_insert_with(|| value.to_owned());
        }
    }
    Ok(out)
}

/// `max-age` of a `Strict-Transport-Security` value; `None` when the value
/// has no valid `max-age` directive (a browser then ignores the header).
pub fn hsts_max_age(value: &str) -> Option<u64> {
    let mut found = None;
    for directive in value.split(';') {
        let Some((name, v)) = directive.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("max-age") {
            if found.is_some() {
                // A directive twice makes the header invalid (RFC 6797 §6.1).
                return None;
            }
            found = Some(v.trim().trim_matches('"').parse::<u64>().ok()?);
        }
    }
    found
}

/// A redirect to HTTPS: status 301, 302, 307 or 308 and a `Location`
/// starting with `https://`.
pub fn is_https_redirect(head: &HttpHead) -> bool {
    matches!(head.status, 301 | 302 | 307 | 308)
        && head.location.as_deref().is_some_and(|l| {
            l.get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        })
}

/// How a TLS 1.2 cipher suite is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteStrength {
    /// AEAD with forward secrecy (and every TLS 1.3 suite).
    Strong,
    /// No forward secrecy (RSA key exchange) or no AEAD (CBC, RC4, 3DES).
    Weak,
}

/// Judges a suite by its IANA or rustls name (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`,
/// `TLS13_AES_128_GCM_SHA256`) or its OpenSSL name (`ECDHE-RSA-AES128-GCM-SHA256`).
pub fn suite_strength(name: &str) -> SuiteStrength {
    let n = name.to_ascii_uppercase();
    if n.starts_with("TLS13_") || n.starts_with("TLS_AES_") || n.starts_with("TLS_CHACHA20_") {
        return SuiteStrength::Strong;
    }
    let fs = n.contains("ECDHE") || n.contains("DHE");
    let aead = n.contains("GCM") || n.contains("CHACHA20") || n.contains("CCM");
    if fs && aead {
        SuiteStrength::Strong
    } else {
        SuiteStrength::Weak
    }
}

/// The TLS 1.2 suites without forward secrecy or without AEAD that a server
/// might still accept, by code point, with their IANA names. The agent offers
/// exactly these in its weak-suite probe.
pub const WEAK_TLS12_SUITES: &[(u16, &str)] = &[
    (0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    (0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
    (0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
    (0x006b, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
    (0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
    (0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    (0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    (0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    (0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
];

/// The IANA name of a suite code point, when it is one of [`WEAK_TLS12_SUITES`].
pub fn weak_suite_name(code: u16) -> Option<&'static str> {
    WEAK_TLS12_SUITES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, n)| *n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail by panicking")]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nServer: x\r\nstrict-transport-security:  max-age=63072000; includeSubDomains\r\nStrict-Transport-Security: max-age=1\r\n\r\nbody: no",
        )
        .unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(
            h.strict_transport_security.as_deref(),
            Some("max-age=63072000; includeSubDomains")
        );
        let r =
            parse_head(b"HTTP/1.0 301 Moved\r\nLocation: https://papyrs.example/\r\n\r\n").unwrap();
        assert!(is_https_redirect(&r));
        let r = parse_head(b"HTTP/1.1 302 Found\nLocation: http://papyrs.example/\n\n").unwrap();
        assert!(!is_https_redirect(&r));
        let r = parse_head(b"HTTP/1.1 200 OK\r\nLocation: https://x/\r\n\r\n").unwrap();
        assert!(!is_https_redirect(&r));
        assert!(parse_head(b"").is_err());
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc\r\n\r\n").is_err());
    }

    #[test]
    fn max_age() {
        assert_eq!(hsts_max_age("max-age=31536000"), Some(31536000));
        assert_eq!(
            hsts_max_age("includeSubDomains; MAX-AGE=\"600\"; preload"),
            Some(600)
        );
        assert_eq!(hsts_max_age("includeSubDomains"), None);
        assert_eq!(hsts_max_age("max-age=-1"), None);
        assert_eq!(hsts_max_age("max-age=1; max-age=2"), None);
    }

    #[test]
    fn suites() {
        use SuiteStrength::*;
        for (name, want) in [
            ("TLS13_AES_128_GCM_SHA256", Strong),
            ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Strong),
            ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", Strong),
            ("DHE-RSA-AES256-GCM-SHA384", Strong),
            ("TLS_RSA_WITH_AES_128_GCM_SHA256", Weak),
            ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", Weak),
            ("ECDHE-RSA-AES128-SHA", Weak),
        ] {
            assert_eq!(suite_strength(name), want, "{name}");
        }
        for (code, name) in WEAK_TLS12_SUITES {
            assert_eq!(suite_strength(name), Weak, "{name}");
            assert_eq!(weak_suite_name(*code), Some(*name));
        }
    }
}
