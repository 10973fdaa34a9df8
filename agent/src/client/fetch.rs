//! What the agent asks the reporter for (`GET`): the policy, the erasure
//! tasks with the export archives to delete, and the waivers. Each answer is
//! checked here (signature, digest, validity, account ids) before the daemon
//! uses any of it.

use std::time::Duration;

use sha2::{Digest, Sha256};
use vigil_rules::checks::erasure::{self, Task};
use vigil_rules::checks::CheckKind;
use vigil_rules::policy::{self, Policy};
use vigil_rules::waivers::Waiver;

use super::{get, unexpected, ClientError, Conn};
use crate::engine::ErasureTasks;

/// What the reporter said about the policy.
#[derive(Debug)]
pub enum Fetched {
    /// Valid, digest checked.
    Policy(Box<Policy>, String),
    /// The reporter hands out no policy (404).
    NoPolicy,
    /// The reporter sent a policy we refuse (invalid, wrong digest).
    Refused(ClientError),
    /// No answer (down, 5xx, 401).
    Unavailable(ClientError),
}

#[derive(serde::Deserialize)]
struct PolicyBlob {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    version: Option<String>,
    sha256: String,
    yaml: String,
    #[serde(default)]
    signature: Option<String>,
}

/// Checks a policy the reporter handed out: its signature by the key pinned
/// at enrollment (when there is one), its digest, then its validity.
pub fn accept_policy(
    sha256: &str,
    yaml: &str,
    signature: Option<&str>,
    key: Option<&ed25519_dalek::VerifyingKey>,
) -> Result<Policy, ClientError> {
    let refused = |why: &str| ClientError::Refused(why.to_owned());
    if let Some(key) = key {
        use base64::Engine as _;
        let sig = signature.ok_or_else(|| {
            refused("it is not signed, and this agent pinned the reporter's policy key")
        })?;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig.trim())
            .ok()
            .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
            .ok_or_else(|| refused("its signature is not a base64 ed25519 signature"))?;
        key.verify_strict(yaml.as_bytes(), &sig).map_err(|_| {
            refused(
                "its signature does not verify with the reporter's policy key pinned at enrollment",
            )
        })?;
    }
    let digest = hex::encode(Sha256::digest(yaml.as_bytes()));
    if !digest.eq_ignore_ascii_case(sha256.trim()) {
        return Err(ClientError::Refused(format!(
            "its sha256 is {digest} but the reporter announced {}",
            sha256.trim()
        )));
    }
    policy::parse(yaml.as_bytes(), "<reporter policy>").map_err(|d| {
        let lines: Vec<String> = d.to_string().lines().take(5).map(str::to_owned).collect();
        ClientError::Refused(format!("it is invalid: {}", lines.join("; ")))
    })
}

pub async fn fetch_policy(conn: &Conn, key: Option<&ed25519_dalek::VerifyingKey>) -> Fetched {
    let (status, text) = match get(conn, "/api/v1/policy").await {
        Ok(answer) => answer,
        Err(why) => return Fetched::Unavailable(why),
    };
    match status.as_u16() {
        200 => match serde_json::from_str::<PolicyBlob>(&text) {
            Ok(b) => match accept_policy(&b.sha256, &b.yaml, b.signature.as_deref(), key) {
                Ok(p) => {
                    let _ = (&b.id, &b.version);
                    Fetched::Policy(Box::new(p), b.yaml)
                }
                Err(why) => Fetched::Refused(why),
            },
            Err(e) => Fetched::Refused(ClientError::Refused(format!(
                "the answer is not a policy: {e}"
            ))),
        },
        404 => Fetched::NoPolicy,
        _ => Fetched::Unavailable(unexpected(status, &text)),
    }
}

#[derive(serde::Deserialize)]
struct TaskList {
    tasks: Vec<Task>,
    /// Accounts whose export archive this host must delete (their closure
    /// ended, or their export on request expired).
    #[serde(default)]
    delete_exports: Vec<String>,
}

/// The accounts whose export archive the reporter says to delete; an
/// account id that could escape a path refuses them all.
pub fn accept_export_deletions(body: &str) -> Result<Vec<String>, ClientError> {
    let list: TaskList = serde_json::from_str(body)
        .map_err(|e| ClientError::Refused(format!("the answer is not a task list: {e}")))?;
    if let Some(bad) = list
        .delete_exports
        .iter()
        .find(|a| !erasure::valid_account(a))
    {
        return Err(ClientError::Refused(format!(
            "the reporter asked to delete the export of `{bad}`, which is not an account id"
        )));
    }
    Ok(list.delete_exports)
}

/// Checks the tasks the reporter handed out: an account id that could escape
/// a path template, an unknown phase or an empty identifier refuses them all.
pub fn accept_tasks(body: &str) -> Result<Vec<Task>, ClientError> {
    let list: TaskList = serde_json::from_str(body)
        .map_err(|e| ClientError::Refused(format!("the answer is not a task list: {e}")))?;
    let params = erasure::Params {
        tasks: list.tasks,
        site: None,
        local_backups: None,
        offline_backups: None,
        logs: None,
        export: None,
        hook_timeout: vigil_rules::duration::PolicyDuration(Duration::from_secs(1)),
    };
    let problems = <erasure::Erasure as CheckKind>::validate(&params);
    if let Some((_, why)) = problems.first() {
        return Err(ClientError::Refused(format!(
            "the reporter sent an invalid erasure task: {why}"
        )));
    }
    Ok(params.tasks)
}

/// `GET /api/v1/erasures`: what this host must erase and prove, and the
/// accounts whose export archive it must delete.
pub async fn fetch_erasures(conn: &Conn) -> (ErasureTasks, Vec<String>) {
    let (status, text) = match get(conn, "/api/v1/erasures").await {
        Ok(answer) => answer,
        Err(why) => return (ErasureTasks::Unavailable(why.to_string()), vec![]),
    };
    match status.as_u16() {
        200 => {
            let deletions = accept_export_deletions(&text).unwrap_or_else(|why| {
                tracing::warn!("{why}");
                vec![]
            });
            match accept_tasks(&text) {
                Ok(tasks) => (ErasureTasks::FromReporter(tasks), deletions),
                Err(why) => (ErasureTasks::Unavailable(why.to_string()), deletions),
            }
        }
        _ => (
            ErasureTasks::Unavailable(unexpected(status, &text).to_string()),
            vec![],
        ),
    }
}

/// `GET /api/v1/agent/waivers`: the waivers whose scope takes this host in.
/// Control names are not checked against the running policy (a waiver for a
/// control this host does not run never matches).
pub async fn fetch_waivers(conn: &Conn) -> Result<Vec<Waiver>, ClientError> {
    let (status, text) = get(conn, "/api/v1/agent/waivers").await?;
    match status.as_u16() {
        200 => accept_waivers(&text),
        404 => Ok(vec![]),
        _ => Err(unexpected(status, &text)),
    }
}

/// Checks the waivers the reporter handed out, like a waivers file.
pub fn accept_waivers(body: &str) -> Result<Vec<Waiver>, ClientError> {
    vigil_rules::waivers::parse_checked(body, "<reporter waivers>", None).map_err(|d| {
        let lines: Vec<String> = d.to_string().lines().take(5).map(str::to_owned).collect();
        ClientError::Refused(format!(
            "the reporter's waivers are invalid: {}",
            lines.join("; ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "policy: {id: p, version: \"1\", title: P}\ncontrols:\n  - id: A\n    title: a\n    checks:\n      - {id: a1, type: attestation, with: {by: x, on: 2026-01-01, valid_for: 3650d, evidence: e}}\n";

    #[test]
    fn policies_from_the_reporter_are_checked() {
        let sha = hex::encode(Sha256::digest(P.as_bytes()));
        let p = accept_policy(&sha, P, None, None).unwrap();
        assert_eq!(p.meta.id, "p");
        assert_eq!(p.sha256, sha);
        let e = accept_policy(&"0".repeat(64), P, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sha256"), "{e}");
        let bad = P.replace("attestation", "no_such_type");
        let e = accept_policy(
            &hex::encode(Sha256::digest(bad.as_bytes())),
            &bad,
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("it is invalid: <reporter policy>:"), "{e}");
    }

    #[test]
    fn erasure_tasks_from_the_reporter_are_checked() {
        let ok = accept_tasks(
            r#"{"tasks": [{"account": "acme", "phase": "site", "identifiers": ["u-1842"]}]}"#,
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].account, "acme");
        assert!(accept_tasks(r#"{"tasks": []}"#).unwrap().is_empty());
        for (bad, says) in [
            (
                r#"{"tasks": [{"account": "../etc", "phase": "site"}]}"#,
                "account",
            ),
            (r#"{"tasks": [{"account": "a", "phase": "all"}]}"#, "phase"),
            (
                r#"{"tasks": [{"account": "a", "phase": "logs", "identifiers": [" "]}]}"#,
                "identifier",
            ),
            (
                r#"{"tasks": [{"account": "a", "phase": "logs", "extra": 1}]}"#,
                "task list",
            ),
            ("<html>", "task list"),
        ] {
            let e = accept_tasks(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_pinned_key_requires_a_valid_signature() {
        use base64::Engine as _;
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let pinned = key.verifying_key();
        let sha = hex::encode(Sha256::digest(P.as_bytes()));
        let b64 = |s: ed25519_dalek::Signature| {
            base64::engine::general_purpose::STANDARD.encode(s.to_bytes())
        };
        let good = b64(key.sign(P.as_bytes()));
        assert!(accept_policy(&sha, P, Some(&good), Some(&pinned)).is_ok());
        // unsigned, signed by another key, signature of other bytes, garbage
        let e = accept_policy(&sha, P, None, Some(&pinned))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not signed"), "{e}");
        let other = ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]);
        let e = accept_policy(&sha, P, Some(&b64(other.sign(P.as_bytes()))), Some(&pinned))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not verify"), "{e}");
        let forged = P.replace("title: a", "title: b");
        let fsha = hex::encode(Sha256::digest(forged.as_bytes()));
        assert!(accept_policy(&fsha, &forged, Some(&good), Some(&pinned)).is_err());
        assert!(accept_policy(&sha, P, Some("!!"), Some(&pinned)).is_err());
        // without a pinned key the signature is not required
        assert!(accept_policy(&sha, P, None, None).is_ok());
    }
}
