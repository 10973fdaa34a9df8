//! The audit log's routes of `/api/v1` (the log itself is [`crate::audit`]): verification and inclusion proofs
//! for staff, the newest signed checkpoint for anyone.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::extract::Staff;
use crate::state::{Audit, Shared};
use crate::store::Store;

/// The audit routes with their documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(audit_verify))
        .routes(routes!(audit_checkpoint))
        .routes(routes!(audit_proof))
}

/// Verifies the whole audit log: every entry, signature and checkpoint.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = crate::audit::Verification, description = "`ok` is false and `first_bad_seq` names the first entry altered, removed or reordered when tampering is found"), (status = 401, description = "not staff")))]
async fn audit_verify(
    State(store): State<Store>,
    State(audit): State<Audit>,
    _staff: Staff,
) -> ApiResult<Json<crate::audit::Verification>> {
    let export = audit.export(&store).await?;
    Ok(Json(crate::audit::verify(&export, None)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointResponse {
    pub origin: String,
    pub size: i64,
    pub root: String,
    /// The C2SP signed note.
    pub note: String,
    /// Base64 ed25519 key that signs checkpoints.
    pub public_key: String,
}

/// The newest signed checkpoint of the audit log (issued now if the log grew).
#[utoipa::path(get, path = "/api/v1/audit/checkpoint", tag = "agents", responses((status = 200, body = CheckpointResponse)))]
async fn audit_checkpoint(
    State(store): State<Store>,
    State(audit): State<Audit>,
) -> ApiResult<Json<CheckpointResponse>> {
    let cp = audit.checkpoint(&store).await?;
    Ok(Json(CheckpointResponse {
        origin: audit.origin.clone(),
        size: cp.size,
        root: cp.root,
        note: cp.note,
        public_key: audit.public_key_b64(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    pub seq: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    pub entry: serde_json::Value,
    pub leaf_index: i64,
    pub tree_size: i64,
    /// Hex hashes of the audit path, leaf to root (RFC 9162).
    pub proof: Vec<String>,
    pub checkpoint: String,
}

/// An entry with its inclusion proof against a fresh signed checkpoint.
#[utoipa::path(get, path = "/api/v1/audit/proof", tag = "staff", security(("bearer" = [])), params(ProofQuery),
    responses((status = 200, body = InclusionProof), (status = 400, description = "missing or bad `seq`"), (status = 401, description = "not staff"), (status = 404, description = "no such entry")))]
async fn audit_proof(
    State(store): State<Store>,
    State(audit): State<Audit>,
    _staff: Staff,
    Query(q): Query<ProofQuery>,
) -> ApiResult<Json<InclusionProof>> {
    let cp = audit.checkpoint(&store).await?;
    let entries = crate::audit::entries(&store).await?;
    let idx = usize::try_from(q.seq)
        .map_err(|_| ApiError::NotFound(format!("no audit entry {}", q.seq)))?;
    let entry = entries
        .get(idx)
        .filter(|e| e.seq == q.seq)
        .ok_or_else(|| ApiError::NotFound(format!("no audit entry {}", q.seq)))?;
    let size = usize::try_from(cp.size).unwrap_or(0);
    let leaves: Vec<crate::merkle::Hash> = entries
        .iter()
        .take(size)
        .map(|e| crate::merkle::leaf_hash(&e.encode()))
        .collect();
    let proof = crate::merkle::inclusion_proof(idx, &leaves)
        .iter()
        .map(hex::encode)
        .collect();
    Ok(Json(InclusionProof {
        entry: serde_json::to_value(entry).map_err(|e| ApiError::Internal(e.to_string()))?,
        leaf_index: q.seq,
        tree_size: cp.size,
        proof,
        checkpoint: cp.note,
    }))
}
