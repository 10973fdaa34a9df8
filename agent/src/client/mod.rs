//! The agent's side of the reporter's API, all of it: [`enroll`] trades the
//! enrollment secret for a token; [`fetch`] asks for the policy, the erasure
//! tasks and the waivers, and checks what comes back before anything uses it;
//! [`send_report`] posts one report (the daemon's shipper decides, from the
//! status, what becomes of the spooled file); [`exports`] hands proved export
//! archives over. [`http`] is the TLS client and the [`http::Secret`] that
//! never prints.

pub mod enroll;
pub mod exports;
pub mod fetch;
pub mod http;

use std::time::Duration;

use reqwest::StatusCode;

use crate::config::AgentConfig;
use http::Secret;

/// Why the reporter gave no usable answer, or why this agent refuses what it
/// sent. Messages say what happened in the operator's words; none holds the
/// token or the enrollment secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// This agent has no token (it is not enrolled).
    #[error("no token")]
    NoToken,
    /// The config does not say how to reach the reporter, or its trust
    /// anchor or token cannot be read.
    #[error("{0}")]
    Setup(String),
    /// No answer: connection, TLS, timeout.
    #[error("{0}")]
    NoAnswer(String),
    /// 401: the token is unknown or revoked.
    #[error("the token was refused; run `vigil-agent enroll` again")]
    TokenRefused,
    /// A status the request does not expect.
    #[error("the reporter answered {status}: {message}")]
    Status { status: StatusCode, message: String },
    /// An answer this agent refuses: not what was asked for, unsigned,
    /// a wrong digest, an invalid policy, task or waiver.
    #[error("{0}")]
    Refused(String),
}

/// The policy GET gives up after this long (the loop waits for it).
pub const POLICY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the reporter is and who we are.
#[derive(Clone, Debug)]
pub struct Conn {
    pub client: reqwest::Client,
    pub server: String,
    pub token: Option<Secret>,
    /// Where the token came from: read again while the token is refused, so
    /// a `vigil-agent enroll` resumes shipping without a restart.
    pub token_file: Option<std::path::PathBuf>,
}

/// The connection for a config: the client with its trust anchor, the token.
pub fn connect(cfg: &AgentConfig) -> Result<Conn, ClientError> {
    let server = cfg
        .server
        .clone()
        .ok_or_else(|| ClientError::Setup("the config names no `server`".into()))?;
    let client = http::client(&server, cfg).map_err(ClientError::Setup)?;
    let token = http::read_token(&cfg.token_file()).map_err(ClientError::Setup)?;
    Ok(Conn {
        client,
        server,
        token: Some(token),
        token_file: Some(cfg.token_file()),
    })
}

/// `GET path` with the agent's token: the status and body, or why there was
/// no answer. The policy, erasure and waiver polls all go through here.
pub(crate) async fn get(conn: &Conn, path: &str) -> Result<(StatusCode, String), ClientError> {
    let token = conn.token.as_ref().ok_or(ClientError::NoToken)?;
    let no_answer = |e: reqwest::Error| ClientError::NoAnswer(http::describe(&e));
    let resp = conn
        .client
        .get(http::endpoint(&conn.server, path))
        .bearer_auth(token.expose())
        .timeout(POLICY_TIMEOUT)
        .send()
        .await
        .map_err(no_answer)?;
    let status = resp.status();
    let text = resp.text().await.map_err(no_answer)?;
    Ok((status, text))
}

/// Why an answer other than the expected ones is no answer.
pub(crate) fn unexpected(status: StatusCode, text: &str) -> ClientError {
    match status {
        StatusCode::UNAUTHORIZED => ClientError::TokenRefused,
        _ => ClientError::Status {
            status,
            message: http::error_message(text),
        },
    }
}

/// `POST /api/v1/reports` of one report (JSON): the status and body, or why
/// there was no answer. `Err` also when there is no token.
pub async fn send_report(conn: &Conn, body: Vec<u8>) -> Result<(StatusCode, String), ClientError> {
    let token = conn.token.as_ref().ok_or(ClientError::NoToken)?;
    let resp = conn
        .client
        .post(http::endpoint(&conn.server, "/api/v1/reports"))
        .bearer_auth(token.expose())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| ClientError::NoAnswer(format!("{}: {}", conn.server, http::describe(&e))))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    Ok((status, text))
}
