//! The `/api/v1` routes. The OpenAPI document is generated from the
//! `#[utoipa::path]` annotations here, so it cannot drift from the router.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_rules::report::{self, Report};

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::posture::{self, Posture};
use crate::store::{AgentRow, NewReport, Store, Stored, UserRow};

/// The policy the reporter hands out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyBlob {
    pub id: String,
    pub version: String,
    pub sha256: String,
    pub yaml: String,
    /// Base64 ed25519 signature of `yaml`'s exact bytes by the policy key.
    pub signature: Option<String>,
    #[serde(skip)]
    pub controls: Vec<(String, String)>,
    /// The roles of each control that has them (its effective roles).
    #[serde(skip)]
    pub control_roles: std::collections::BTreeMap<String, Vec<String>>,
    /// The framework requirements each control that has them satisfies.
    #[serde(skip)]
    pub control_frameworks: std::collections::BTreeMap<String, Frameworks>,
}

/// Requirement ids by framework name (`iso27001` → `[A.8.24]`).
pub type Frameworks = std::collections::BTreeMap<String, Vec<String>>;

pub struct AppState {
    pub store: Store,
    pub audit: crate::audit::AuditLog,
    pub erasure: crate::closures::ErasureConfig,
    pub enroll_secrets: Vec<String>,
    /// The policy handed out (the newest published), cached.
    pub policy: std::sync::RwLock<Option<PolicyBlob>>,
    /// Signs published policies; agents pin its public key at enrollment.
    pub policy_key: ed25519_dalek::SigningKey,
    pub max_report_bytes: usize,
    /// Where uploaded export archives are kept (`DATA/exports`).
    pub exports_dir: std::path::PathBuf,
    pub max_export_bytes: u64,
    /// The HTML pages' and the intake's config and state.
    pub site: crate::web::Site,
    /// Reports waiting for the next group commit.
    pub ingest: crate::ingest::Ingest,
    /// Optional mutual TLS with agent certificates.
    pub agent_tls: Option<crate::mtls::AgentTls>,
    /// Enrollment secrets that approve the roles they list ([`crate::enrollment`]).
    pub enroll_role_secrets: Vec<crate::config::RoleSecret>,
    /// Login and enrollment attempts ([`crate::throttle`]).
    pub throttle: crate::throttle::Throttle,
    /// Staff tokens expire this long after issue (config `staff_token_lifetime`).
    pub staff_token_lifetime_ms: Option<i64>,
    /// Rate limit and response cache of the public routes.
    pub public: crate::public::Public,
}

pub type Shared = Arc<AppState>;

impl AppState {
    /// The policy handed out now.
    pub fn policy(&self) -> Option<PolicyBlob> {
        self.policy.read().ok().and_then(|p| p.clone())
    }

    pub fn set_policy(&self, p: Option<PolicyBlob>) {
        if let Ok(mut g) = self.policy.write() {
            *g = p;
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "vigil reporter", description = "Agents report here; staff read the fleet's posture."),
    modifiers(&SecurityAddon),
    // Routed apart (its own body limit and timeout, see app.rs), documented here.
    paths(crate::exports::upload),
    tags((name = "agents", description = "routes agents call"), (name = "staff", description = "routes for security staff (Bearer token)"),
        (name = "incidents", description = "incident intake (anyone) and triage (staff)"))
)]
pub struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every `/api/v1` route with its documentation.
pub fn router() -> OpenApiRouter<Shared> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(enroll))
        .routes(routes!(ingest))
        .routes(routes!(agent_policy))
        .routes(routes!(get_posture))
        .routes(routes!(list_hosts))
        .routes(routes!(get_host))
        .routes(routes!(list_reports))
        .routes(routes!(get_report))
        .routes(routes!(revoke_agent))
        .routes(routes!(crate::enrollment::list_agents))
        .routes(routes!(crate::enrollment::revoke))
        .routes(routes!(crate::enrollment::allow))
        .routes(routes!(crate::enrollment::approve))
        .routes(routes!(crate::users::list))
        .routes(routes!(crate::users::disable))
        .routes(routes!(crate::users::enable))
        .routes(routes!(crate::users::rotate))
        .routes(routes!(openapi_json))
        .routes(routes!(
            crate::intake::submit_json,
            crate::intake::list_json
        ))
        .routes(routes!(crate::intake::get_json))
        .routes(routes!(crate::intake::transition_json))
        .routes(routes!(crate::intake::attach))
        .routes(routes!(crate::notify::list_json))
        .routes(routes!(crate::web::session::create_login_link))
        .routes(routes!(closure_open, closure_get, closure_cancel))
        .routes(routes!(closure_offline))
        .routes(routes!(closure_certificate))
        .routes(routes!(closure_certificate_pdf))
        .routes(routes!(crate::exports::create_link))
        .routes(routes!(
            crate::exports::request_export,
            crate::exports::export_status
        ))
        .routes(routes!(crate::waivers::create, crate::waivers::list))
        .routes(routes!(crate::waivers::revoke))
        .routes(routes!(crate::waivers::for_agent))
        .routes(routes!(crate::baselines::list))
        .routes(routes!(
            crate::advisories::upload,
            crate::advisories::for_agent
        ))
        .routes(routes!(erasure_tasks))
        .routes(routes!(audit_verify))
        .routes(routes!(audit_checkpoint))
        .routes(routes!(audit_proof))
}

/// Verifies the whole audit log: every entry, signature and checkpoint.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = crate::audit::Verification, description = "`ok` is false and `first_bad_seq` names the first entry altered, removed or reordered when tampering is found"), (status = 401, description = "not staff")))]
async fn audit_verify(
    State(state): State<Shared>,
    _staff: Staff,
) -> ApiResult<Json<crate::audit::Verification>> {
    let export = state.audit.export(&state.store).await?;
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
async fn audit_checkpoint(State(state): State<Shared>) -> ApiResult<Json<CheckpointResponse>> {
    let cp = state.audit.checkpoint(&state.store).await?;
    Ok(Json(CheckpointResponse {
        origin: state.audit.origin.clone(),
        size: cp.size,
        root: cp.root,
        note: cp.note,
        public_key: state.audit.public_key_b64(),
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
    State(state): State<Shared>,
    _staff: Staff,
    Query(q): Query<ProofQuery>,
) -> ApiResult<Json<InclusionProof>> {
    let cp = state.audit.checkpoint(&state.store).await?;
    let entries = crate::audit::entries(&state.store).await?;
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

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "agents", responses((status = 200, body = serde_json::Value, description = "the OpenAPI 3.1 document of every /api route")))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    Json(DOC.get_or_init(|| router().split_for_parts().1).clone())
}

// --- authentication ---------------------------------------------------------

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// An enrolled, unrevoked agent.
pub struct AgentAuth(pub AgentRow);

impl FromRequestParts<Shared> for AgentAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::ReEnroll("missing agent token (Authorization: Bearer …)".into())
        })?;
        let (lookup, secret) = auth::parse_token(token, auth::AGENT_PREFIX)
            .ok_or_else(|| ApiError::ReEnroll("malformed agent token".into()))?;
        let agent = state.store.agent_by_lookup(lookup).await?;
        match agent {
            Some(a) if auth::verify(secret, &a.token_digest) => {
                if a.revoked_at.is_some() {
                    Err(ApiError::ReEnroll(
                        "this agent's token was revoked; enroll again".into(),
                    ))
                } else {
                    let cert = crate::mtls::presented(parts.extensions.get())
                        .map_err(ApiError::ReEnroll)?;
                    crate::mtls::check_binding(
                        state.agent_tls.as_ref(),
                        a.cert_spki_sha256.as_deref(),
                        cert.as_ref(),
                    )
                    .map_err(|r| {
                        tracing::warn!(host = %a.host, "agent request refused: certificate binding");
                        refusal(r)
                    })?;
                    Ok(AgentAuth(a))
                }
            }
            _ => Err(ApiError::ReEnroll(
                "unknown agent token; enroll again".into(),
            )),
        }
    }
}

/// A staff member (admin or auditor).
pub struct Staff(pub UserRow);

impl FromRequestParts<Shared> for Staff {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::Unauthorized("missing staff token (Authorization: Bearer …)".into())
        })?;
        let (lookup, secret) = auth::parse_token(token, auth::STAFF_PREFIX)
            .ok_or_else(|| ApiError::Unauthorized("malformed staff token".into()))?;
        match state.store.user_by_lookup(lookup).await? {
            Some(u) if auth::verify(secret, &u.token_digest) && u.disabled_at.is_none() => {
                if crate::users::token_expired(
                    &u,
                    state.staff_token_lifetime_ms,
                    crate::store::now_ms(),
                ) {
                    return Err(ApiError::Unauthorized(
                        "this staff token expired; an admin can issue a new one (`vigil-reporter user rotate`)".into(),
                    ));
                }
                Ok(Staff(u))
            }
            _ => Err(ApiError::Unauthorized("unknown staff token".into())),
        }
    }
}

/// A staff member with the admin role.
pub struct Admin(pub UserRow);

impl FromRequestParts<Shared> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let Staff(u) = Staff::from_request_parts(parts, state).await?;
        if u.role == "admin" {
            Ok(Admin(u))
        } else {
            Err(ApiError::Forbidden(format!(
                "`{}` is an {}; this needs an admin",
                u.name, u.role
            )))
        }
    }
}

// --- agents -----------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub secret: String,
    pub host: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// The agent's schedule; the host is stale after twice this without a report.
    #[serde(default)]
    pub interval_secs: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    pub agent_id: String,
    /// Shown once; the reporter keeps only its digest.
    pub token: String,
    pub host: String,
    /// Base64 ed25519 key that signs the policies this reporter hands out;
    /// the agent refuses a policy it does not verify.
    pub policy_key: String,
    /// The roles the reporter trusts this agent with.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Requested roles waiting for an admin's approval.
    #[serde(default)]
    pub pending_roles: Vec<String>,
}

pub fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid {what}: {e}")))
}

fn refusal(r: crate::mtls::Refusal) -> ApiError {
    match r {
        crate::mtls::Refusal::Unauthenticated(m) => ApiError::Unauthorized(m),
        crate::mtls::Refusal::Forbidden(m) => ApiError::Forbidden(m),
    }
}

/// Enrolls an agent with the enrollment secret and returns its own token.
/// A host whose agent is active is refused until an admin revokes that agent
/// or allows the re-enrollment ([`crate::enrollment`]); requested roles are
/// trusted only once approved.
#[utoipa::path(post, path = "/api/v1/enroll", tag = "agents", request_body = EnrollRequest,
    responses((status = 201, body = EnrollResponse), (status = 400, description = "malformed request"), (status = 401, description = "wrong enrollment secret, or (mutual TLS) no agent certificate"),
        (status = 403, description = "(mutual TLS) the agent certificate names another host, or the active agent is bound to a certificate and none was presented"),
        (status = 409, description = "the host has an active agent: an admin must revoke it or allow the re-enrollment"),
        (status = 429, description = "too many wrong secrets from this client")))]
async fn enroll(
    State(state): State<Shared>,
    tls: Option<axum::Extension<Arc<axum_server::tls::TlsInfo>>>,
    parts: axum::http::Extensions,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<EnrollResponse>)> {
    let req: EnrollRequest = parse_json(&body, "enrollment request")?;
    if !valid_host(&req.host) {
        return Err(ApiError::BadRequest(
            "`host` must be a host name (letters, digits, `-`, `.`, `_`)".into(),
        ));
    }
    if !crate::enrollment::valid_roles(&req.roles) {
        return Err(ApiError::BadRequest(
            "`roles` must be at most 32 short words".into(),
        ));
    }
    // Wrong secrets are throttled per client network (issue 19, item 3).
    let client = crate::throttle::client_of(&parts)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let keys = [format!("enroll:{client}")];
    let now = crate::store::now_ms();
    state.throttle.check_failures(&keys, now)?;
    let plain = state
        .enroll_secrets
        .iter()
        .any(|s| auth::secrets_equal(s, &req.secret));
    let mut granted: Vec<String> = Vec::new();
    let mut scoped = false;
    for rs in &state.enroll_role_secrets {
        if auth::secrets_equal(&rs.secret, &req.secret) {
            scoped = true;
            granted.extend(rs.roles.iter().cloned());
        }
    }
    if !plain && !scoped {
        state.throttle.record(&keys, false, now);
        tracing::warn!(host = %req.host, %client, "enrollment refused: wrong secret");
        return Err(ApiError::Unauthorized("wrong enrollment secret".into()));
    }
    state.throttle.record(&keys, true, now);
    let cert =
        crate::mtls::presented(tls.as_ref().map(|t| &t.0)).map_err(ApiError::Unauthorized)?;
    let spki = crate::mtls::check_enrollment(state.agent_tls.as_ref(), &req.host, cert.as_ref())
        .map_err(|r| {
            tracing::warn!(host = %req.host, "enrollment refused: agent certificate");
            refusal(r)
        })?;
    let token = auth::new_token(auth::AGENT_PREFIX);
    let id = uuid::Uuid::new_v4().to_string();
    let interval =
        i64::try_from(req.interval_secs.unwrap_or(900).clamp(1, 7 * 86400)).unwrap_or(900);
    let roles = crate::enrollment::enroll(
        &state.store,
        &state.audit,
        &crate::store::NewAgent {
            id: &id,
            host: &req.host,
            roles: &req.roles,
            interval_secs: interval,
            token_lookup: &token.lookup,
            token_digest: &token.digest,
            cert_spki_sha256: spki.as_deref(),
        },
        &granted,
    )
    .await
    .inspect_err(|e| {
        if !matches!(e, ApiError::Internal(_)) {
            tracing::warn!(host = %req.host, %client, error = %e, "enrollment refused");
        }
    })?;
    let pending: Vec<String> = req
        .roles
        .iter()
        .filter(|r| !roles.contains(r))
        .cloned()
        .collect();
    tracing::info!(host = %req.host, agent_id = %id, ?roles, ?pending, "agent enrolled");
    Ok((
        StatusCode::CREATED,
        Json(EnrollResponse {
            agent_id: id,
            token: token.token,
            host: req.host,
            policy_key: crate::policies::public_key_b64(&state.policy_key),
            roles,
            pending_roles: pending,
        }),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IngestResponse {
    pub report_id: String,
    /// False when this report id was already stored: acknowledged all the same.
    pub stored: bool,
}

/// Checks a report beyond its shape: ids, times, and that statuses and the
/// summary agree with the checks ([`report::validate`], pure, fuzzed).
pub fn validate_report(r: &Report) -> Result<(), String> {
    report::validate(r, chrono::Utc::now())
}

/// Stores one report of the calling agent; idempotent by `report_id`.
#[utoipa::path(post, path = "/api/v1/reports", tag = "agents", security(("bearer" = [])),
    request_body(content = serde_json::Value, description = "one vigil.report/v1 object", content_type = "application/json"),
    responses((status = 201, body = IngestResponse, description = "stored"), (status = 200, body = IngestResponse, description = "already stored"),
        (status = 400, description = "invalid report"), (status = 401, description = "unknown or revoked token; re-enroll"),
        (status = 403, description = "report of another host"), (status = 409, description = "report id used by another host"), (status = 413, description = "too large")))]
async fn ingest(
    State(state): State<Shared>,
    AgentAuth(agent): AgentAuth,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<IngestResponse>)> {
    // The reporter's own clock dates erasure proofs, not the agent's (issue 19 item 7).
    let received_at = crate::store::now_ms();
    if body.len() > state.max_report_bytes {
        return Err(ApiError::TooLarge(format!(
            "a report may be at most {} bytes",
            state.max_report_bytes
        )));
    }
    let mut r: Report = parse_json(&body, "report")?;
    validate_report(&r).map_err(|e| ApiError::BadRequest(format!("invalid report: {e}")))?;
    if r.agent.host != agent.host {
        return Err(ApiError::Forbidden(format!(
            "this agent reports for `{}`, not `{}`",
            agent.host, r.agent.host
        )));
    }
    let body_text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("report is not UTF-8".into()))?;
    // Waivers the agent claims hold only where the reporter's own cover them.
    let mut vetted: Option<String> = None;
    let claims_waiver = r.controls.iter().any(|c| {
        c.status == report::ControlStatus::Waived || c.checks.iter().any(|k| k.waived_by.is_some())
    });
    if claims_waiver {
        let waivers = crate::ingest::reporter_waivers(&state.store).await?;
        let refused = crate::ingest::vet_waivers(
            &mut r,
            &agent.host,
            &agent.roles,
            &waivers,
            chrono::Utc::now().date_naive(),
        );
        if !refused.is_empty() {
            tracing::warn!(host = %agent.host, controls = ?refused, "waivers claimed without a reporter waiver: stored as their underlying status");
            vetted =
                Some(serde_json::to_string(&r).map_err(|e| ApiError::Internal(e.to_string()))?);
        }
    }
    let body_text = vetted.as_deref().unwrap_or(body_text);
    let summary =
        serde_json::to_string(&r.summary).map_err(|e| ApiError::Internal(e.to_string()))?;
    let new = NewReport {
        report_id: r.report_id.clone(),
        agent_id: agent.id.clone(),
        host: agent.host.clone(),
        policy_id: r.policy.id.clone(),
        policy_version: r.policy.version.clone(),
        policy_sha256: r.policy.sha256.clone(),
        started_at: r.started_at.timestamp_millis(),
        finished_at: r.finished_at.timestamp_millis(),
        summary,
        body: body_text.to_owned(),
        controls: r
            .controls
            .iter()
            .map(|c| (c.id.clone(), c.title.clone(), c.status.as_str().to_owned()))
            .collect(),
        baselines: crate::baselines::seen_in(&r),
    };
    match crate::ingest::store(&state, new).await? {
        Stored::New => {
            // Erasure proofs move closures; a failure here does not un-store the report.
            match crate::closures::record_results(&state, &agent, &r, received_at).await {
                Ok(true) => {
                    if let Err(e) = crate::closures::advance_all(&state, &agent.host).await {
                        tracing::error!(error = %e, "cannot advance closures");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "cannot record erasure results"),
            }
            Ok((
                StatusCode::CREATED,
                Json(IngestResponse {
                    report_id: r.report_id.clone(),
                    stored: true,
                }),
            ))
        }
        Stored::Duplicate => Ok((
            StatusCode::OK,
            Json(IngestResponse {
                report_id: r.report_id.clone(),
                stored: false,
            }),
        )),
        Stored::Conflict => Err(ApiError::Conflict(
            "this report id is taken by another host's report".into(),
        )),
    }
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

// --- staff ------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AtQuery {
    /// Posture as it stood at this time (RFC 3339); now when absent.
    pub at: Option<String>,
}

fn parse_at(at: Option<&str>) -> ApiResult<i64> {
    match at {
        None => Ok(crate::store::now_ms()),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| ApiError::BadRequest(format!("`at`: `{s}` is not an RFC 3339 time"))),
    }
}

pub async fn compute_posture(state: &AppState, at: i64) -> ApiResult<Posture> {
    let rows = state.store.latest_controls(at).await?;
    let last = state.store.last_report_times(at).await?;
    let agents = state.store.agents().await?;
    let (controls, control_roles) = state
        .policy()
        .map(|p| (p.controls, p.control_roles))
        .unwrap_or_default();
    let mut p = posture::compute(at, &rows, &last, &agents, &controls, &control_roles);
    p.waivers = crate::waivers::list_views(state)
        .await?
        .into_iter()
        .filter(|v| v.state == "active")
        .map(|v| {
            let field = |k: &str| {
                v.waiver
                    .get(k)
                    .and_then(|x| x.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            posture::WaiverSummary {
                id: field("id"),
                control: field("control"),
                check: v
                    .waiver
                    .get("check")
                    .and_then(|x| x.as_str())
                    .map(str::to_owned),
                expires: field("expires"),
                days_left: v.days_left,
                expiring_soon: v.expiring_soon,
                approved_by: field("approved_by"),
                justification: field("justification"),
            }
        })
        .collect();
    Ok(p)
}

/// Per control across the fleet: status, hosts failing, last verified.
#[utoipa::path(get, path = "/api/v1/posture", tag = "staff", security(("bearer" = [])), params(AtQuery),
    responses((status = 200, body = Posture), (status = 400, description = "bad `at`"), (status = 401, description = "not staff")))]
async fn get_posture(
    State(state): State<Shared>,
    _staff: Staff,
    Query(q): Query<AtQuery>,
) -> ApiResult<Json<Posture>> {
    let at = parse_at(q.at.as_deref())?;
    Ok(Json(compute_posture(&state, at).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HostSummary {
    pub host: String,
    pub agent_id: Option<String>,
    pub roles: Vec<String>,
    pub last_report_at: Option<String>,
    pub last_report_id: Option<String>,
    pub stale: bool,
    pub revoked: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HostsResponse {
    pub hosts: Vec<HostSummary>,
}

async fn host_summaries(state: &AppState) -> ApiResult<Vec<HostSummary>> {
    let at = crate::store::now_ms();
    let p = compute_posture(state, at).await?;
    let agents = state.store.agents().await?;
    Ok(p.hosts
        .into_iter()
        .map(|h| {
            let a = agents.iter().find(|a| a.host == h.host);
            HostSummary {
                agent_id: a.map(|a| a.id.clone()),
                roles: a.map(|a| a.roles.clone()).unwrap_or_default(),
                host: h.host,
                last_report_at: h.last_report_at,
                last_report_id: h.last_report_id,
                stale: h.stale,
                revoked: h.revoked,
            }
        })
        .collect())
}

/// Hosts, their last report and staleness.
#[utoipa::path(get, path = "/api/v1/hosts", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = HostsResponse), (status = 401, description = "not staff")))]
async fn list_hosts(State(state): State<Shared>, _staff: Staff) -> ApiResult<Json<HostsResponse>> {
    Ok(Json(HostsResponse {
        hosts: host_summaries(&state).await?,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HostDetail {
    #[serde(flatten)]
    pub summary: HostSummary,
    /// The newest status of each control on this host.
    pub controls: Vec<HostControl>,
    pub recent_reports: Vec<ReportListItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HostControl {
    pub id: String,
    pub title: String,
    pub status: String,
    pub verified_at: String,
}

/// One host: its last reports and each control's newest status.
#[utoipa::path(get, path = "/api/v1/hosts/{host}", tag = "staff", security(("bearer" = [])), params(("host" = String, Path, description = "host name")),
    responses((status = 200, body = HostDetail), (status = 401, description = "not staff"), (status = 404, description = "unknown host")))]
async fn get_host(
    State(state): State<Shared>,
    _staff: Staff,
    Path(host): Path<String>,
) -> ApiResult<Json<HostDetail>> {
    let summary = host_summaries(&state)
        .await?
        .into_iter()
        .find(|h| h.host == host)
        .ok_or_else(|| ApiError::NotFound(format!("no host `{host}`")))?;
    let rows = state.store.latest_controls(crate::store::now_ms()).await?;
    let stale = summary.stale;
    let controls = rows
        .into_iter()
        .filter(|r| r.host == host)
        .map(|r| HostControl {
            id: r.control_id,
            title: r.title,
            status: if stale { "unknown".into() } else { r.status },
            verified_at: posture::rfc3339(r.finished_at),
        })
        .collect();
    let recent_reports = report_items(&state, Some(&host), 10).await?;
    Ok(Json(HostDetail {
        summary,
        controls,
        recent_reports,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportsQuery {
    pub host: Option<String>,
    /// 1 to 1000, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportListItem {
    pub report_id: String,
    pub host: String,
    pub finished_at: String,
    pub summary: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportsResponse {
    pub reports: Vec<ReportListItem>,
}

async fn report_items(
    state: &AppState,
    host: Option<&str>,
    limit: i64,
) -> ApiResult<Vec<ReportListItem>> {
    let rows = state.store.reports(host, limit).await?;
    rows.into_iter()
        .map(|r| {
            Ok(ReportListItem {
                summary: serde_json::from_str(&r.summary)
                    .map_err(|e| ApiError::Internal(format!("stored summary: {e}")))?,
                report_id: r.report_id,
                host: r.host,
                finished_at: posture::rfc3339(r.finished_at),
            })
        })
        .collect()
}

/// Stored reports, newest first.
#[utoipa::path(get, path = "/api/v1/reports", tag = "staff", security(("bearer" = [])), params(ReportsQuery),
    responses((status = 200, body = ReportsResponse), (status = 400, description = "bad limit"), (status = 401, description = "not staff")))]
async fn list_reports(
    State(state): State<Shared>,
    _staff: Staff,
    Query(q): Query<ReportsQuery>,
) -> ApiResult<Json<ReportsResponse>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "`limit` must be between 1 and 1000".into(),
        ));
    }
    Ok(Json(ReportsResponse {
        reports: report_items(&state, q.host.as_deref(), limit).await?,
    }))
}

/// One stored report, as the agent sent it.
#[utoipa::path(get, path = "/api/v1/reports/{report_id}", tag = "staff", security(("bearer" = [])), params(("report_id" = String, Path, description = "report id")),
    responses((status = 200, body = serde_json::Value, description = "the vigil.report/v1 object"), (status = 401, description = "not staff"), (status = 404, description = "unknown report")))]
async fn get_report(
    State(state): State<Shared>,
    _staff: Staff,
    Path(report_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let body = state
        .store
        .report_body(&report_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no report `{report_id}`")))?;
    Ok(Json(serde_json::from_str(&body).map_err(|e| {
        ApiError::Internal(format!("stored report: {e}"))
    })?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokeResponse {
    pub agent_id: String,
    pub revoked: bool,
}

/// Revokes an agent's token; the agent is told to enroll again.
#[utoipa::path(delete, path = "/api/v1/agents/{agent_id}", tag = "staff", security(("bearer" = [])), params(("agent_id" = String, Path, description = "agent id")),
    responses((status = 200, body = RevokeResponse), (status = 401, description = "not staff"), (status = 403, description = "not an admin"), (status = 404, description = "no such active agent")))]
async fn revoke_agent(
    State(state): State<Shared>,
    Admin(user): Admin,
    Path(agent_id): Path<String>,
) -> ApiResult<Json<RevokeResponse>> {
    if state
        .store
        .revoke_agent(&state.audit, &agent_id, &user.name)
        .await?
    {
        tracing::info!(%agent_id, by = %user.name, "agent token revoked");
        Ok(Json(RevokeResponse {
            agent_id,
            revoked: true,
        }))
    } else {
        Err(ApiError::NotFound(format!("no active agent `{agent_id}`")))
    }
}

// --- closures -----------------------------------------------------------------

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
