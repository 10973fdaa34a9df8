//! `GET /` for `tls_endpoint`: over TLS for the `Strict-Transport-Security`
//! header (`hsts: true`) and over plain HTTP for the redirect to HTTPS
//! (`http_address`). Only the response head is read (at most
//! [`HEAD_LIMIT`] bytes); parsing is `vigil_rules::checks::tls::http`.
//!
//! The request is HTTP/1.1 with `Connection: close`, the `Host` header the
//! check's `server_name`, and no cookie or credential: the agent asks what
//! any browser would be told on a first visit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use vigil_rules::checks::tls::http::{parse_head, HttpHead};

use crate::collect::host::io_reason;

/// The most of a response that is read looking for the end of its head.
pub const HEAD_LIMIT: usize = 16 * 1024;

fn request(host: &str) -> Vec<u8> {
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vigil-agent/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

/// The `Host` header value for a name and a `host:port` target: the port is
/// left out when it is the scheme's default.
fn host_header(name: &str, target: &str, default_port: &str) -> String {
    let port = target.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
    let name = if name.contains(':') && !name.starts_with('[') {
        format!("[{name}]")
    } else {
        name.to_owned()
    };
    if port.is_empty() || port == default_port {
        name
    } else {
        format!("{name}:{port}")
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &str,
) -> Result<HttpHead, String> {
    stream
        .write_all(&request(host))
        .await
        .map_err(|e| format!("sending GET /: {}", io_reason(&e)))?;
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            // A server that closes without close_notify after its answer.
            Err(e) if !buf.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(format!("reading the answer to GET /: {}", io_reason(&e))),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n")
            || buf.windows(2).any(|w| w == b"\n\n")
            || buf.len() >= HEAD_LIMIT
        {
            break;
        }
    }
    parse_head(&buf).map_err(|e| format!("GET /: {e}"))
}

/// `GET /` over plain HTTP at `target` (`host:port`), with `Host` set to
/// `server_name` when given (the name a browser would type), else to the
/// target's host.
pub async fn get_plain(
    target: &str,
    server_name: Option<&str>,
    limit: Duration,
) -> Result<HttpHead, String> {
    let run = async {
        let addr: SocketAddr = tokio::net::lookup_host(target)
            .await
            .map_err(|e| format!("cannot resolve `{target}`: {e}"))?
            .next()
            .ok_or_else(|| format!("`{target}` resolves to no address"))?;
        let mut tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {}", io_reason(&e)))?;
        let host = match server_name {
            Some(n) => n,
            None => target
                .rsplit_once(':')
                .map_or(target, |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']'),
        };
        exchange(&mut tcp, &host_header(host, target, "80")).await
    };
    tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
        Err(format!(
            "no answer within {}",
            humantime::format_duration(limit)
        ))
    })
}

/// `GET /` over TLS at `addr`, with SNI and `Host` set to `server_name`.
/// `config` is the observing client configuration of the handshake (it
/// accepts any certificate: trust is judged apart) with ALPN `http/1.1`.
pub async fn get_tls(
    addr: SocketAddr,
    target: &str,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
    limit: Duration,
) -> Result<HttpHead, String> {
    let run = async {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| format!("`{server_name}` is not a valid server name"))?;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {}", io_reason(&e)))?;
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake for GET / failed: {e}"))?;
        let head = exchange(&mut tls, &host_header(server_name, target, "443")).await;
        let _ = tls.shutdown().await;
        head
    };
    tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
        Err(format!(
            "no answer within {}",
            humantime::format_duration(limit)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers() {
        assert_eq!(
            host_header("papyrs.example", "1.2.3.4:443", "443"),
            "papyrs.example"
        );
        assert_eq!(
            host_header("papyrs.example", "1.2.3.4:8443", "443"),
            "papyrs.example:8443"
        );
        assert_eq!(host_header("::1", "[::1]:80", "80"), "[::1]");
    }
}
