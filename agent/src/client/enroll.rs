//! `vigil-agent enroll`: trades the enrollment secret for this agent's token
//! and writes the token to `token_file` (mode 0600). Neither the secret nor
//! the token ever appears in a message.

use std::path::PathBuf;

use serde::Deserialize;

use super::http::{self, Secret};
use crate::config::AgentConfig;
use crate::durable::write_durable;

#[derive(Debug)]
pub struct Enrolled {
    pub agent_id: String,
    pub host: String,
    pub token_file: PathBuf,
}

#[derive(Deserialize)]
struct EnrollResponse {
    agent_id: String,
    token: String,
    #[serde(default)]
    host: Option<String>,
    /// The key that signs the reporter's policies (base64 ed25519).
    #[serde(default)]
    policy_key: Option<String>,
}

/// Where the reporter's policy key is pinned, in the state directory.
pub const POLICY_KEY_FILE: &str = "reporter-policy-key.pub";

/// Why the pinned policy key cannot be used (policy checking must not turn
/// itself off silently).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyKeyError {
    #[error("cannot read the policy key `{}`: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the policy key `{}` is not a base64 ed25519 key", .0.display())]
    NotAKey(std::path::PathBuf),
    #[error("the policy key `{}` is invalid: {source}", path.display())]
    Invalid {
        path: std::path::PathBuf,
        #[source]
        source: ed25519_dalek::SignatureError,
    },
}

/// The pinned policy key, if enrollment gave one. A file that is there but
/// unreadable or malformed is an error: it must not silently turn checking off.
pub fn pinned_policy_key(
    state_dir: &std::path::Path,
) -> Result<Option<ed25519_dalek::VerifyingKey>, PolicyKeyError> {
    use base64::Engine as _;
    let path = state_dir.join(POLICY_KEY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PolicyKeyError::Read { path, source }),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| PolicyKeyError::NotAKey(path.clone()))?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map(Some)
        .map_err(|source| PolicyKeyError::Invalid { path, source })
}

/// Enrolls with `server` (the config's when `None`).
pub async fn enroll(
    cfg: &AgentConfig,
    server: Option<&str>,
    secret: &Secret,
) -> Result<Enrolled, String> {
    let server = server
        .map(str::to_owned)
        .or_else(|| cfg.server.clone())
        .ok_or("no reporter: pass --server URL or set `server` in the config")?;
    if secret.expose().trim().is_empty() {
        return Err("the enrollment secret is empty".into());
    }
    let client = http::client(&server, cfg)?;
    let host = cfg.host_name();
    let body = serde_json::json!({
        "secret": secret.expose(),
        "host": host,
        "roles": cfg.roles,
        "interval_secs": cfg.interval().as_secs(),
    });
    let url = http::endpoint(&server, "/api/v1/enroll");
    let resp = client.post(&url).json(&body).send().await.map_err(|e| {
        format!(
            "cannot reach the reporter at {server}: {}",
            http::describe(&e)
        )
    })?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("cannot read the reporter's answer: {}", http::describe(&e)))?;
    if status.as_u16() != 201 && status.as_u16() != 200 {
        let why = match status.as_u16() {
            401 => "the enrollment secret was refused".to_owned(),
            _ => format!("the reporter answered {status}"),
        };
        // the reporter's message never echoes the secret, but be sure
        let msg = http::error_message(&text).replace(secret.expose(), "<redacted>");
        return Err(format!("enrollment of `{host}` failed: {why}: {msg}"));
    }
    let answer: EnrollResponse = serde_json::from_str(&text)
        .map_err(|e| format!("the reporter's answer is not an enrollment: {e}"))?;
    let token = answer.token.trim();
    if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the reporter's answer holds no usable token".into());
    }
    let token_file = cfg.token_file();
    if let Some(dir) = token_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    write_durable(&token_file, format!("{token}\n").as_bytes(), 0o600)
        .map_err(|e| format!("cannot write the token to `{}`: {e}", token_file.display()))?;
    if let Some(key) = answer
        .policy_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        let dir = cfg.state_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
        let path = dir.join(POLICY_KEY_FILE);
        write_durable(&path, format!("{key}\n").as_bytes(), 0o644)
            .map_err(|e| format!("cannot write the policy key to `{}`: {e}", path.display()))?;
        pinned_policy_key(&dir).map_err(|e| e.to_string())?;
    }
    Ok(Enrolled {
        agent_id: answer.agent_id,
        host: answer.host.unwrap_or(host),
        token_file,
    })
}
