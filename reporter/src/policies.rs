//! Signed policies. `vigil-reporter policy publish FILE` (or the config's
//! `policy`, published at start when it changed) validates a policy, signs its
//! exact bytes with the reporter's policy key (ed25519, `DATA/policy/ed25519.key`
//! or the config's `policy_key`) and stores it; the newest published policy is
//! what `GET /api/v1/policy` hands out, with its signature. Agents receive the
//! public key at enrollment and refuse a policy whose signature does not verify.
//! Every publication is an audit entry.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::State;
use axum::Json;

use crate::error::{ApiError, ApiResult};
use crate::extract::AgentAuth;
use crate::state::{AppState, PolicyBlob, Shared};
use crate::store::{now_ms, StoreError};

/// The base64 ed25519 signature of a policy's exact bytes.
pub fn sign(key: &SigningKey, yaml: &str) -> String {
    B64.encode(key.sign(yaml.as_bytes()).to_bytes())
}

/// Validates `yaml` (named `label` in errors) into a blob, unsigned.
pub fn blob_of(yaml: &[u8], label: &str) -> anyhow::Result<PolicyBlob> {
    let p = vigil_rules::policy::parse(yaml, label).map_err(|d| anyhow::anyhow!("{d}"))?;
    let text = std::str::from_utf8(yaml)
        .map_err(|_| anyhow::anyhow!("{label}: the policy is not UTF-8"))?;
    Ok(PolicyBlob {
        id: p.meta.id.clone(),
        version: p.meta.version.clone(),
        sha256: p.sha256.clone(),
        yaml: text.to_owned(),
        signature: None,
        controls: p
            .controls
            .iter()
            .map(|c| (c.id.clone(), c.title.clone()))
            .collect(),
        control_roles: p
            .controls
            .iter()
            .map(|c| (c.id.clone(), c.effective_roles()))
            .filter(|(_, r)| !r.is_empty())
            .collect(),
        control_frameworks: p
            .controls
            .iter()
            .filter(|c| !c.frameworks.is_empty())
            .map(|c| (c.id.clone(), c.frameworks.clone()))
            .collect(),
    })
}

/// The newest published policy, signed.
pub async fn latest(state: &AppState) -> Result<Option<PolicyBlob>, StoreError> {
    let row = sqlx::query(
        "SELECT yaml, signature FROM policies ORDER BY published_at DESC, sha256 LIMIT 1",
    )
    .fetch_optional(&state.store.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let yaml: String = row.try_get("yaml")?;
    let signature: String = row.try_get("signature")?;
    // A stored policy that no longer validates (a newer build's rules) is
    // handed out anyway: the agent judges it and keeps its last good one.
    let mut blob = blob_of(yaml.as_bytes(), "<published policy>").unwrap_or_else(|_| PolicyBlob {
        id: String::new(),
        version: String::new(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(yaml.as_bytes())),
        yaml,
        signature: None,
        controls: vec![],
        control_roles: Default::default(),
        control_frameworks: Default::default(),
    });
    blob.signature = Some(signature);
    Ok(Some(blob))
}

/// Signs, stores and audits a validated policy; it becomes the one handed out.
pub async fn publish(
    state: &AppState,
    mut blob: PolicyBlob,
    by: &str,
) -> anyhow::Result<PolicyBlob> {
    let sig = sign(&state.policy_key, &blob.yaml);
    let now = now_ms();
    sqlx::query(
        "INSERT INTO policies (sha256, yaml, signature, published_by, published_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&blob.sha256)
    .bind(&blob.yaml)
    .bind(&sig)
    .bind(by)
    .bind(now)
    .execute(&state.store.pool)
    .await
    .map_err(|e| anyhow::anyhow!("cannot store the policy: {e}"))?;
    state
        .audit
        .append(
            &state.store,
            "policy.published",
            by,
            json!({"id": blob.id, "version": blob.version, "sha256": blob.sha256, "signature": sig}),
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot record the publication: {e}"))?;
    blob.signature = Some(sig);
    state.set_policy(Some(blob.clone()));
    Ok(blob)
}

/// The base64 public key agents pin at enrollment.
pub fn public_key_b64(key: &SigningKey) -> String {
    B64.encode(key.verifying_key().as_bytes())
}

/// The policy route with its documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(agent_policy))
}

/// The policy this agent should run, with its digest.
#[utoipa::path(get, path = "/api/v1/policy", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = PolicyBlob), (status = 401, description = "unknown or revoked token"), (status = 404, description = "no policy is handed out")))]
async fn agent_policy(
    State(state): State<Shared>,
    AgentAuth(_agent): AgentAuth,
) -> ApiResult<Json<PolicyBlob>> {
    // Read the store: `policy publish` may have run in another process.
    let latest = crate::policies::latest(&state).await?;
    if latest.as_ref().map(|b| &b.sha256) != state.policy().as_ref().map(|b| &b.sha256) {
        state.set_policy(latest.clone());
    }
    latest
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("this reporter hands out no policy".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier};

    #[test]
    fn signatures_cover_the_exact_bytes() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let yaml = "policy: {id: p, version: '1', title: t}\ncontrols: []\n";
        let sig = B64.decode(sign(&key, yaml)).unwrap();
        let sig = Signature::from_slice(&sig).unwrap();
        assert!(key.verifying_key().verify(yaml.as_bytes(), &sig).is_ok());
        let changed = yaml.replace("'1'", "'2'");
        assert!(key
            .verifying_key()
            .verify(changed.as_bytes(), &sig)
            .is_err());
    }
}
