//! Pure parsers for `admin_access`: the roster file and authorized_keys
//! lines (sudoers has its own module, [`super::sudoers`]).

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::params::Person;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterFile {
    roster: Vec<Person>,
}

/// A roster file that does not read: every problem, each
/// `FILE:LINE:COLUMN: message`, joined by `; `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RosterError(pub String);

/// Why an authorized_keys line is not a public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("no known key type on the line")]
    NoKeyType,
    #[error("`{0}` without key data")]
    NoKeyData(String),
    #[error("key data is not base64")]
    NotBase64,
    #[error("key data is truncated")]
    Truncated,
    #[error("key data does not match its type")]
    TypeMismatch,
}

/// Parses a `roster_file`; errors are `FILE:LINE:COLUMN: message`.
pub fn parse_roster_file(text: &str, file: &str) -> Result<Vec<Person>, RosterError> {
    let located = |diags: Vec<crate::yaml::Diag>| {
        RosterError(
            diags
                .iter()
                .map(|d| format!("{file}:{}:{}: {}", d.loc.line, d.loc.col, d.message))
                .collect::<Vec<_>>()
                .join("; "),
        )
    };
    let node = crate::yaml::parse(text).map_err(located)?;
    let r: RosterFile = crate::yaml::from_node(&node).map_err(located)?;
    Ok(r.roster)
}

/// The SHA256 fingerprint of one authorized_keys line, as `ssh-keygen -lf`
/// prints it. Options before the key type are skipped.
pub fn key_fingerprint(line: &str) -> Result<(String, String), KeyError> {
    const TYPES: &[&str] = &[
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "ssh-ed25519-cert-v01@openssh.com",
        "ssh-rsa-cert-v01@openssh.com",
    ];
    let tokens = split_options_aware(line);
    let pos = tokens
        .iter()
        .position(|t| TYPES.contains(&t.as_str()))
        .ok_or(KeyError::NoKeyType)?;
    let key_type = tokens.get(pos).cloned().unwrap_or_default();
    let blob = tokens
        .get(pos + 1)
        .ok_or_else(|| KeyError::NoKeyData(key_type.clone()))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| KeyError::NotBase64)?;
    // The blob starts with the key type as an SSH string; check it agrees.
    let inner = raw
        .get(4..)
        .and_then(|rest| {
            let len = u32::from_be_bytes(raw.get(..4)?.try_into().ok()?) as usize;
            rest.get(..len)
        })
        .ok_or(KeyError::Truncated)?;
    if inner != key_type.as_bytes() {
        return Err(KeyError::TypeMismatch);
    }
    let fp = base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&raw));
    Ok((key_type, format!("SHA256:{fp}")))
}

/// Splits on whitespace outside double quotes (options like `command="a b"`).
fn split_options_aware(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in line.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
