//! The closure routes of `/api/v1`: staff open, read, cancel and certify an
//! account's closure; agents fetch the erasure tasks of their roles.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_json, Admin, AgentAuth, Staff};
use crate::state::Shared;

/// The closure routes with their documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(closure_open, closure_get, closure_cancel))
        .routes(routes!(closure_offline))
        .routes(routes!(closure_certificate))
        .routes(routes!(closure_certificate_pdf))
        .routes(routes!(erasure_tasks))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosureRequest {
    pub requested_by: String,
    pub reason: String,
    /// Pseudonymous identifiers of the account in logs (the account id is always one).
    #[serde(default)]
    pub identifiers: Vec<String>,
}

/// Opens the closure of an account (201), or returns the open one (200).
#[utoipa::path(post, path = "/api/v1/accounts/{account}/closure", tag = "staff", security(("bearer" = [])), params(("account" = String, Path, description = "account id")),
    request_body = ClosureRequest,
    responses((status = 201, body = crate::closures::ClosureView), (status = 200, body = crate::closures::ClosureView, description = "already open"),
        (status = 400, description = "bad account or body"), (status = 401, description = "not staff"), (status = 403, description = "not an admin")))]
async fn closure_open(
    State(state): State<Shared>,
    Admin(user): Admin,
    Path(account): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<crate::closures::ClosureView>)> {
    let req: ClosureRequest = parse_json(&body, "closure request")?;
    if req.identifiers.len() > 100
        || req
            .identifiers
            .iter()
            .any(|i| i.is_empty() || i.len() > 256)
    {
        return Err(ApiError::BadRequest(
            "`identifiers`: at most 100 non-empty identifiers of up to 256 characters".into(),
        ));
    }
    match crate::closures::open(
        &state,
        &account,
        &req.requested_by,
        &req.reason,
        req.identifiers,
        &user.name,
    )
    .await
    .map_err(ApiError::BadRequest)?
    {
        crate::closures::OpenOutcome::Created(v) => Ok((StatusCode::CREATED, Json(*v))),
        crate::closures::OpenOutcome::Existing(v) => Ok((StatusCode::OK, Json(*v))),
    }
}

/// A closure's state, each phase's hosts and evidence, and its history.
#[utoipa::path(get, path = "/api/v1/accounts/{account}/closure", tag = "staff", security(("bearer" = [])), params(("account" = String, Path, description = "account id")),
    responses((status = 200, body = crate::closures::ClosureView), (status = 401, description = "not staff"), (status = 404, description = "no closure")))]
async fn closure_get(
    State(state): State<Shared>,
    _staff: Staff,
    Path(account): Path<String>,
) -> ApiResult<Json<crate::closures::ClosureView>> {
    crate::closures::get(&state, &account)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no closure for `{account}`")))
}

/// Cancels a closure during its cooling-off period.
#[utoipa::path(delete, path = "/api/v1/accounts/{account}/closure", tag = "staff", security(("bearer" = [])), params(("account" = String, Path, description = "account id")),
    responses((status = 200, body = crate::closures::ClosureView), (status = 401, description = "not staff"), (status = 403, description = "not an admin"),
        (status = 404, description = "no closure"), (status = 409, description = "past the cooling-off period")))]
async fn closure_cancel(
    State(state): State<Shared>,
    Admin(user): Admin,
    Path(account): Path<String>,
) -> ApiResult<Json<crate::closures::ClosureView>> {
    match crate::closures::cancel(&state, &account, &user.name).await? {
        crate::closures::CancelOutcome::Cancelled(v) => Ok(Json(*v)),
        crate::closures::CancelOutcome::TooLate(why) => Err(ApiError::Conflict(why)),
        crate::closures::CancelOutcome::Missing => {
            Err(ApiError::NotFound(format!("no closure for `{account}`")))
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineDeclaration {
    /// `crypto_shred`: the account's backup key was destroyed.
    pub method: String,
    /// Where the proof of destruction is (ticket, key-management log).
    pub evidence: String,
}

/// Declares the offline backups erased by crypto-shredding, with evidence.
#[utoipa::path(post, path = "/api/v1/accounts/{account}/closure/offline", tag = "staff", security(("bearer" = [])), params(("account" = String, Path, description = "account id")),
    request_body = OfflineDeclaration,
    responses((status = 200, body = crate::closures::ClosureView), (status = 400, description = "bad declaration"), (status = 401, description = "not staff"), (status = 403, description = "not an admin"), (status = 404, description = "no closure")))]
async fn closure_offline(
    State(state): State<Shared>,
    Admin(user): Admin,
    Path(account): Path<String>,
    body: Bytes,
) -> ApiResult<Json<crate::closures::ClosureView>> {
    let d: OfflineDeclaration = parse_json(&body, "declaration")?;
    if d.method != "crypto_shred" {
        return Err(ApiError::BadRequest(
            "`method` must be `crypto_shred` (rotation is automatic after the offline retention)"
                .into(),
        ));
    }
    if d.evidence.trim().is_empty() || d.evidence.len() > 2000 {
        return Err(ApiError::BadRequest(
            "`evidence` must say where the proof of key destruction is".into(),
        ));
    }
    crate::closures::declare_offline(&state, &account, &d.method, &d.evidence, &user.name)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no closure for `{account}`")))
}

/// The signed erasure certificate of a closed account.
#[utoipa::path(get, path = "/api/v1/accounts/{account}/closure/certificate", tag = "staff", security(("bearer" = [])), params(("account" = String, Path, description = "account id")),
    responses((status = 200, body = serde_json::Value, description = "vigil.erasure-certificate/v1"), (status = 401, description = "not staff"), (status = 404, description = "no closed closure")))]
async fn closure_certificate(
    State(state): State<Shared>,
    _staff: Staff,
    Path(account): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    crate::closures::certificate(&state, &account)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no closed closure for `{account}`")))
}

/// The same certificate typeset as a PDF for people (its JSON is what verifies).
#[utoipa::path(get, path = "/api/v1/accounts/{account}/closure/certificate.pdf", tag = "staff", security(("bearer" = [])), params(("account" = String, Path, description = "account id")),
    responses((status = 200, content_type = "application/pdf", description = "the certificate as PDF"), (status = 401, description = "not staff"), (status = 404, description = "no closed closure")))]
async fn closure_certificate_pdf(
    State(state): State<Shared>,
    _staff: Staff,
    Path(account): Path<String>,
) -> ApiResult<axum::response::Response> {
    let cert = crate::closures::certificate(&state, &account)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no closed closure for `{account}`")))?;
    let data = crate::brochure::certificate_data(&cert, &state.site.organization);
    let bytes =
        tokio::task::spawn_blocking(move || crate::brochure::render_pdf("certificate", &data))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Internal(format!("{e:#}")))?;
    Ok(crate::brochure::pdf_response(
        bytes,
        &format!("erasure-certificate-{account}.pdf"),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErasureTasks {
    /// `{"account", "phase", "identifiers"}` for each erasure this agent must carry out and prove.
    pub tasks: Vec<serde_json::Value>,
    /// Accounts whose export archive this host must delete: their closure
    /// ended or their export on request expired.
    #[serde(default)]
    pub delete_exports: Vec<String>,
}

/// The erasure tasks pending for the calling agent's roles.
#[utoipa::path(get, path = "/api/v1/erasures", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = ErasureTasks), (status = 401, description = "unknown or revoked token")))]
async fn erasure_tasks(
    State(state): State<Shared>,
    AgentAuth(agent): AgentAuth,
) -> ApiResult<Json<ErasureTasks>> {
    let t = crate::closures::tasks_for(&state, &agent).await?;
    Ok(Json(ErasureTasks {
        tasks: t.tasks,
        delete_exports: t.delete_exports,
    }))
}
