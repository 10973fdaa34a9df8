//! The HTTP client the agent talks to the reporter with: rustls, the config's
//! `ca_file` as an extra trust anchor, timeouts. Secrets (the enrollment
//! secret, the token) are kept in [`Secret`], which never prints.

use std::time::Duration;

use crate::config::{check_server_url, AgentConfig};

/// A value that must never reach a log or an error message.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Whole-request timeout (a report of a few hundred kilobytes on a slow link).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The client for `server` with the config's trust anchor.
pub fn client(server: &str, cfg: &AgentConfig) -> Result<reqwest::Client, String> {
    check_server_url(server).map_err(|e| e.to_string())?;
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(concat!("vigil-agent/", env!("CARGO_PKG_VERSION")))
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = &cfg.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| format!("cannot read `ca_file` `{}`: {e}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("`ca_file` `{}` is not PEM certificates: {e}", ca.display()))?;
        if certs.is_empty() {
            return Err(format!("`ca_file` `{}` holds no certificate", ca.display()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert), Some(key)) => {
            let mut pem = std::fs::read(cert)
                .map_err(|e| format!("cannot read `client_cert` `{}`: {e}", cert.display()))?;
            pem.push(b'\n');
            // The key's bytes are never put in a message.
            let key_pem = std::fs::read(key)
                .map_err(|e| format!("cannot read `client_key` `{}`: {e}", key.display()))?;
            pem.extend_from_slice(&key_pem);
            let id = reqwest::Identity::from_pem(&pem).map_err(|_| {
                format!(
                    "`client_cert` `{}` and `client_key` `{}` are not a PEM certificate and its private key",
                    cert.display(),
                    key.display()
                )
            })?;
            b = b.identity(id);
        }
        (None, None) => {}
        _ => return Err("`client_cert` and `client_key` go together: set both or neither".into()),
    }
    b.build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

/// `server` + `path`, with one slash between them.
pub fn endpoint(server: &str, path: &str) -> String {
    format!("{}{}", server.trim_end_matches('/'), path)
}

/// A reqwest error without the URL's query (there is none with a secret, but
/// the message stays short) and with its cause chain.
pub fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

/// The `error` field of a reporter's JSON error body, shortened.
pub fn error_message(body: &str) -> String {
    let msg = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned());
    msg.chars().take(300).collect()
}

/// Reads the token `enroll` wrote.
pub fn read_token(path: &std::path::Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the token file `{}` ({e}); run `vigil-agent enroll` first",
            path.display()
        )
    })?;
    let t = text.trim();
    if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the token file `{}` does not hold a token; run `vigil-agent enroll`",
            path.display()
        ));
    }
    Ok(Secret::new(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("vgl_0123_abcdef");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), "vgl_0123_abcdef");
    }

    #[test]
    fn endpoints_and_errors() {
        assert_eq!(
            endpoint("https://r:8443/", "/api/v1/enroll"),
            "https://r:8443/api/v1/enroll"
        );
        assert_eq!(error_message(r#"{"error":"bad secret"}"#), "bad secret");
        assert_eq!(error_message("oops\n"), "oops");
    }

    #[test]
    fn token_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("token");
        assert!(read_token(&p).unwrap_err().contains("vigil-agent enroll"));
        std::fs::write(&p, "vgl_a_b\n").unwrap();
        assert_eq!(read_token(&p).unwrap().expose(), "vgl_a_b");
        std::fs::write(&p, "two words").unwrap();
        let e = read_token(&p).unwrap_err();
        assert!(!e.contains("two words"), "{e}");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let cfg = AgentConfig::default();
        assert!(client("http://10.1.1.1:80", &cfg).is_err());
        assert!(client("http://127.0.0.1:80", &cfg).is_ok());
        let cfg = AgentConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..AgentConfig::default()
        };
        assert!(client("https://r", &cfg).unwrap_err().contains("ca_file"));
        let cfg = AgentConfig {
            client_cert: Some("/nonexistent/agent.pem".into()),
            ..Default::default()
        };
        assert!(client("https://r", &cfg)
            .unwrap_err()
            .contains("set both or neither"));
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, "not pem").unwrap();
        std::fs::write(&key, "SECRET-KEY-BYTES").unwrap();
        let cfg = AgentConfig {
            client_cert: Some(cert),
            client_key: Some(key),
            ..Default::default()
        };
        let e = client("https://r", &cfg).unwrap_err();
        assert!(
            e.contains("are not a PEM certificate") && !e.contains("SECRET"),
            "{e}"
        );
    }
}
