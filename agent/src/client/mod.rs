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

use crate::config::AgentConfig;
use http::Secret;

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
pub fn connect(cfg: &AgentConfig) -> Result<Conn, String> {
    let server = cfg.server.clone().ok_or("the config names no `server`")?;
    let client = http::client(&server, cfg)?;
    let token = http::read_token(&cfg.token_file())?;
    Ok(Conn {
        client,
        server,
        token: Some(token),
        token_file: Some(cfg.token_file()),
    })
}

/// `GET path` with the agent's token: the status and body, or why there was
/// no answer. The policy, erasure and waiver polls all go through here.
pub(crate) async fn get(conn: &Conn, path: &str) -> Result<(reqwest::StatusCode, String), String> {
    let token = conn.token.as_ref().ok_or("no token")?;
    let resp = conn
        .client
        .get(http::endpoint(&conn.server, path))
        .bearer_auth(token.expose())
        .timeout(POLICY_TIMEOUT)
        .send()
        .await
        .map_err(|e| http::describe(&e))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| http::describe(&e))?;
    Ok((status, text))
}

/// Why an answer other than the expected ones is no answer.
pub(crate) fn unexpected(status: reqwest::StatusCode, text: &str) -> String {
    match status.as_u16() {
        401 => "the token was refused; run `vigil-agent enroll` again".into(),
        _ => format!(
            "the reporter answered {status}: {}",
            http::error_message(text)
        ),
    }
}

/// `POST /api/v1/reports` of one report (JSON): the status and body, or why
/// there was no answer. `Err` also when there is no token.
pub async fn send_report(
    conn: &Conn,
    body: Vec<u8>,
) -> Result<(reqwest::StatusCode, String), String> {
    let token = conn.token.as_ref().ok_or("no token")?;
    let resp = conn
        .client
        .post(http::endpoint(&conn.server, "/api/v1/reports"))
        .bearer_auth(token.expose())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{}: {}", conn.server, http::describe(&e)))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    Ok((status, text))
}
