//! Who may enroll as a host, and which roles the reporter trusts.
//!
//! Issue 19, item 1: anyone holding the shared enrollment secret could enroll
//! as an existing host (`backup-2`), which revoked the real agent, and could
//! claim any roles (or none), which decided which closure phases the host had
//! to prove. Now:
//!
//! - A host whose agent is active (not revoked) cannot be enrolled again
//!   (409) until an admin revokes that agent or allows one re-enrollment
//!   (both audited). The active agent's token keeps working meanwhile.
//!   The database holds at most one active agent per host (the partial
//!   unique index `agents_one_active`, migration 0013), so two reporters
//!   sharing a PostgreSQL database cannot both enroll a new host: the
//!   second insert fails and is answered 409 like any other refusal.
//! - With optional mutual TLS, an active agent bound to a certificate key is
//!   replaced only by an enrollment that presents a certificate for the host,
//!   even with `require: false` and an allowance.
//! - The roles an agent asks for are kept as `requested_roles`. The roles the
//!   reporter trusts (`agents.roles`, read by closures and posture) are only
//!   those an admin approved (`vigil-reporter agent approve HOST`, or
//!   `POST /api/v1/hosts/{host}/roles`), those a role-scoped enrollment
//!   secret grants (`enroll_role_secrets`), and, on an allowed re-enrollment,
//!   the roles the replaced agent was trusted with.
//!
//! [`decide`] and [`trusted_roles`] are pure; the rest runs them inside one
//! transaction with the audit entry.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::AuditLog;
use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_json, refusal, valid_host, Admin, Staff};
use crate::posture::rfc3339;
use crate::state::Shared;
use crate::store::{now_ms, NewAgent, Store, StoreError, AGENT_COLUMNS};

/// How long an admin's permission to re-enroll a host stays usable.
pub const ALLOWANCE_MS: i64 = 24 * 3600 * 1000;

/// The host's active agent, as far as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub agent_id: String,
    pub roles: Vec<String>,
    pub cert_spki_sha256: Option<String>,
}

/// Why an enrollment is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 409: the host has an active agent and no allowance.
    Active { host: String },
    /// 403: the active agent is bound to a certificate key and none was presented.
    KeyBound { host: String },
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Active { host } => ApiError::Conflict(format!(
                "host `{host}` has an active agent; an admin must revoke it (`vigil-reporter agent revoke {host}`) or allow its re-enrollment (`vigil-reporter agent allow-reenroll {host}`)"
            )),
            Refusal::KeyBound { host } => ApiError::Forbidden(format!(
                "the active agent of `{host}` is bound to a certificate key: enroll with a certificate for `{host}`"
            )),
        }
    }
}

/// May `host` be enrolled now? `Ok(Some(agent))` names the active agent the
/// enrollment replaces (only with an admin's allowance).
pub fn decide<'a>(
    host: &str,
    active: Option<&'a Active>,
    allowed: bool,
    presented_spki: Option<&str>,
) -> Result<Option<&'a Active>, Refusal> {
    let Some(a) = active else { return Ok(None) };
    if !allowed {
        return Err(Refusal::Active {
            host: host.to_owned(),
        });
    }
    if a.cert_spki_sha256.is_some() && presented_spki.is_none() {
        return Err(Refusal::KeyBound {
            host: host.to_owned(),
        });
    }
    Ok(Some(a))
}

/// The roles the reporter trusts for a new agent: those of the agent it
/// replaces (an admin allowed the re-enrollment), plus the requested roles a
/// role-scoped secret grants. Requested roles beyond those wait for approval.
pub fn trusted_roles(
    replaced: Option<&Active>,
    requested: &[String],
    granted_by_secret: &[String],
) -> Vec<String> {
    let mut out: BTreeSet<String> = replaced
        .map(|a| a.roles.iter().cloned().collect())
        .unwrap_or_default();
    out.extend(
        requested
            .iter()
            .filter(|r| granted_by_secret.contains(r))
            .cloned(),
    );
    out.into_iter().collect()
}

/// Takes the database's write lock (SQLite) or the host's rows (PostgreSQL)
/// before reading: on SQLite a transaction that read first and then writes
/// fails at once with `database is locked` when another process (the CLI
/// beside a running reporter) wrote in between.
async fn lock_host(conn: &mut sqlx::AnyConnection, host: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE agents SET host = host WHERE host = $1")
        .bind(host)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn active_of(
    conn: &mut sqlx::AnyConnection,
    host: &str,
) -> Result<Option<Active>, StoreError> {
    let row = sqlx::query(
        "SELECT id, roles, cert_spki_sha256 FROM agents WHERE host = $1 AND revoked_at IS NULL ORDER BY created_at DESC",
    )
    .bind(host)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        let roles: String = r.try_get("roles")?;
        Ok(Active {
            agent_id: r.try_get("id")?,
            roles: serde_json::from_str(&roles)
                .map_err(|e| StoreError::Corrupt(format!("agent roles: {e}")))?,
            cert_spki_sha256: r.try_get("cert_spki_sha256")?,
        })
    })
    .transpose()
}

/// Enrolls an agent if [`decide`] lets it; returns the trusted roles.
pub async fn enroll(
    store: &Store,
    audit: &AuditLog,
    a: &NewAgent<'_>,
    granted_by_secret: &[String],
) -> ApiResult<Vec<String>> {
    let now = now_ms();
    let _g = audit.write_lock().await;
    let mut tx = store.begin_write().await?;
    lock_host(&mut tx, a.host).await?;
    let active = active_of(&mut tx, a.host).await?;
    let allowed: Option<String> = sqlx::query_scalar(
        "SELECT allowed_by FROM enroll_allowances WHERE host = $1 AND expires_at > $2",
    )
    .bind(a.host)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let replaced = decide(
        a.host,
        active.as_ref(),
        allowed.is_some(),
        a.cert_spki_sha256,
    )?;
    let roles = trusted_roles(replaced, a.roles, granted_by_secret);
    if let Some(r) = replaced {
        sqlx::query("UPDATE agents SET revoked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&r.agent_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        sqlx::query("DELETE FROM enroll_allowances WHERE host = $1")
            .bind(a.host)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
    }
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    sqlx::query("INSERT INTO agents (id, host, roles, requested_roles, interval_secs, token_lookup, token_digest, created_at, cert_spki_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(a.id)
        .bind(a.host)
        .bind(json(&roles))
        .bind(json(a.roles))
        .bind(a.interval_secs)
        .bind(a.token_lookup)
        .bind(a.token_digest)
        .bind(now)
        .bind(a.cert_spki_sha256)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            // `agents_one_active` (migration 0013): another reporter on the
            // same database enrolled this host between our read and insert.
            sqlx::Error::Database(d) if d.is_unique_violation() => ApiError::from(Refusal::Active {
                host: a.host.to_owned(),
            }),
            _ => StoreError::from(e).into(),
        })?;
    audit
        .append_in(
            &mut tx,
            store.backend,
            "agent.enrolled",
            a.host,
            serde_json::json!({"agent_id": a.id, "host": a.host, "roles": roles,
                "requested_roles": a.roles, "cert_spki_sha256": a.cert_spki_sha256,
                "replaced_agent_id": replaced.map(|r| &r.agent_id), "allowed_by": allowed.filter(|_| replaced.is_some())}),
        )
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(roles)
}

/// Revokes the active agent of `host`; its id, or None when there is none.
pub async fn revoke_host(
    store: &Store,
    audit: &AuditLog,
    host: &str,
    by: &str,
) -> Result<Option<String>, StoreError> {
    let _g = audit.write_lock().await;
    let mut tx = store.begin_write().await?;
    lock_host(&mut tx, host).await?;
    let Some(a) = active_of(&mut tx, host).await? else {
        tx.rollback().await?;
        return Ok(None);
    };
    sqlx::query("UPDATE agents SET revoked_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(&a.agent_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM enroll_allowances WHERE host = $1")
        .bind(host)
        .execute(&mut *tx)
        .await?;
    audit
        .append_in(
            &mut tx,
            store.backend,
            "agent.revoked",
            by,
            serde_json::json!({"agent_id": a.agent_id, "host": host}),
        )
        .await?;
    tx.commit().await?;
    Ok(Some(a.agent_id))
}

/// Allows one re-enrollment of `host` within [`ALLOWANCE_MS`]; false when
/// the host has no active agent (it may enroll anyway).
pub async fn allow_reenroll(
    store: &Store,
    audit: &AuditLog,
    host: &str,
    by: &str,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let _g = audit.write_lock().await;
    let mut tx = store.begin_write().await?;
    lock_host(&mut tx, host).await?;
    let Some(a) = active_of(&mut tx, host).await? else {
        tx.rollback().await?;
        return Ok(false);
    };
    sqlx::query("DELETE FROM enroll_allowances WHERE host = $1")
        .bind(host)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO enroll_allowances (host, allowed_by, allowed_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(host)
        .bind(by)
        .bind(now)
        .bind(now.saturating_add(ALLOWANCE_MS))
        .execute(&mut *tx)
        .await?;
    audit
        .append_in(
            &mut tx,
            store.backend,
            "agent.reenroll_allowed",
            by,
            serde_json::json!({"host": host, "agent_id": a.agent_id, "expires_at": rfc3339(now.saturating_add(ALLOWANCE_MS))}),
        )
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Sets the trusted roles of `host`'s active agent: `roles`, or the roles it
/// requested when `None`. Returns the roles set, or None without an active agent.
pub async fn approve_roles(
    store: &Store,
    audit: &AuditLog,
    host: &str,
    roles: Option<Vec<String>>,
    by: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let _g = audit.write_lock().await;
    let mut tx = store.begin_write().await?;
    lock_host(&mut tx, host).await?;
    let row = sqlx::query(
        "SELECT id, roles, requested_roles FROM agents WHERE host = $1 AND revoked_at IS NULL",
    )
    .bind(host)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(None);
    };
    let id: String = row.try_get("id")?;
    let parse = |col: &str| -> Result<Vec<String>, StoreError> {
        let s: String = row.try_get(col)?;
        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("agent {col}: {e}")))
    };
    let previous = parse("roles")?;
    let mut roles: Vec<String> = match roles {
        Some(r) => r,
        None => parse("requested_roles")?,
    };
    roles.sort();
    roles.dedup();
    sqlx::query("UPDATE agents SET roles = $1 WHERE id = $2")
        .bind(serde_json::to_string(&roles).unwrap_or_else(|_| "[]".into()))
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    audit
        .append_in(
            &mut tx,
            store.backend,
            "agent.roles_approved",
            by,
            serde_json::json!({"host": host, "agent_id": id, "roles": roles, "previous": previous}),
        )
        .await?;
    tx.commit().await?;
    Ok(Some(roles))
}

/// One agent as staff see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentView {
    pub agent_id: String,
    pub host: String,
    /// The roles the reporter trusts.
    pub roles: Vec<String>,
    /// The roles the agent asked for at enrollment.
    pub requested_roles: Vec<String>,
    /// Requested roles not (yet) trusted: they wait for an admin's approval.
    pub pending_roles: Vec<String>,
    pub enrolled_at: String,
    pub revoked_at: Option<String>,
    pub last_seen: Option<String>,
    /// The token is bound to a certificate key (mutual TLS).
    pub cert_bound: bool,
    /// Until when an admin allowed this host's re-enrollment.
    pub reenroll_allowed_until: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
}

/// Every host's newest agent (active or revoked).
pub async fn list(store: &Store) -> Result<Vec<AgentView>, StoreError> {
    let now = now_ms();
    let rows = sqlx::query(&format!(
        "SELECT {AGENT_COLUMNS}, requested_roles, created_at FROM agents ORDER BY host, created_at DESC"
    ))
    .fetch_all(&store.pool)
    .await?;
    let allowances =
        sqlx::query("SELECT host, expires_at FROM enroll_allowances WHERE expires_at > $1")
            .bind(now)
            .fetch_all(&store.pool)
            .await?;
    let mut out: Vec<AgentView> = Vec::new();
    for r in &rows {
        let a = Store::agent_from(r)?;
        if out.iter().any(|o| o.host == a.host) {
            continue;
        }
        let req: String = r.try_get("requested_roles")?;
        let requested: Vec<String> = serde_json::from_str(&req)
            .map_err(|e| StoreError::Corrupt(format!("agent requested_roles: {e}")))?;
        let created: i64 = r.try_get("created_at")?;
        let mut allowed = None;
        for al in &allowances {
            let h: String = al.try_get("host")?;
            if h == a.host {
                allowed = Some(rfc3339(al.try_get("expires_at")?));
            }
        }
        out.push(AgentView {
            pending_roles: requested
                .iter()
                .filter(|r| !a.roles.contains(r))
                .cloned()
                .collect(),
            requested_roles: requested,
            agent_id: a.id,
            host: a.host,
            roles: a.roles,
            enrolled_at: rfc3339(created),
            revoked_at: a.revoked_at.map(rfc3339),
            last_seen: a.last_seen.map(rfc3339),
            cert_bound: a.cert_spki_sha256.is_some(),
            reenroll_allowed_until: allowed,
        });
    }
    Ok(out)
}

// --- admin routes -------------------------------------------------------------

/// Every host's newest agent, with trusted, requested and pending roles.
#[utoipa::path(get, path = "/api/v1/agents", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = AgentList), (status = 401, description = "not staff")))]
pub async fn list_agents(State(state): State<Shared>, _staff: Staff) -> ApiResult<Json<AgentList>> {
    Ok(Json(AgentList {
        agents: list(&state.store).await?,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HostAgentResponse {
    pub host: String,
    pub agent_id: Option<String>,
    /// What was done: `revoked`, `reenroll_allowed` or `roles_approved`.
    pub action: String,
    /// The trusted roles after `roles_approved`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// Revokes the active agent of a host (audited); the host may then enroll again.
#[utoipa::path(delete, path = "/api/v1/hosts/{host}/agent", tag = "staff", security(("bearer" = [])), params(("host" = String, Path, description = "host name")),
    responses((status = 200, body = HostAgentResponse), (status = 401, description = "not staff"), (status = 403, description = "not an admin"), (status = 404, description = "no active agent")))]
pub async fn revoke(
    State(state): State<Shared>,
    Admin(user): Admin,
    Path(host): Path<String>,
) -> ApiResult<Json<HostAgentResponse>> {
    match revoke_host(&state.store, &state.audit, &host, &user.name).await? {
        Some(id) => {
            tracing::info!(%host, agent_id = %id, by = %user.name, "agent revoked");
            Ok(Json(HostAgentResponse {
                host,
                agent_id: Some(id),
                action: "revoked".into(),
                roles: None,
            }))
        }
        None => Err(ApiError::NotFound(format!(
            "host `{host}` has no active agent"
        ))),
    }
}

/// Allows one re-enrollment of a host within 24 hours (audited); the active
/// agent keeps working until the new one enrolls.
#[utoipa::path(post, path = "/api/v1/hosts/{host}/allow-reenroll", tag = "staff", security(("bearer" = [])), params(("host" = String, Path, description = "host name")),
    responses((status = 200, body = HostAgentResponse), (status = 401, description = "not staff"), (status = 403, description = "not an admin"), (status = 404, description = "no active agent: the host may enroll anyway")))]
pub async fn allow(
    State(state): State<Shared>,
    Admin(user): Admin,
    Path(host): Path<String>,
) -> ApiResult<Json<HostAgentResponse>> {
    if allow_reenroll(&state.store, &state.audit, &host, &user.name).await? {
        Ok(Json(HostAgentResponse {
            host,
            agent_id: None,
            action: "reenroll_allowed".into(),
            roles: None,
        }))
    } else {
        Err(ApiError::NotFound(format!(
            "host `{host}` has no active agent; it may enroll"
        )))
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRoles {
    /// The roles to trust; the agent's requested roles when absent.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
}

/// Sets the roles the reporter trusts for a host's active agent (audited).
#[utoipa::path(post, path = "/api/v1/hosts/{host}/roles", tag = "staff", security(("bearer" = [])), params(("host" = String, Path, description = "host name")),
    request_body = ApproveRoles,
    responses((status = 200, body = HostAgentResponse), (status = 400, description = "bad roles"), (status = 401, description = "not staff"), (status = 403, description = "not an admin"), (status = 404, description = "no active agent")))]
pub async fn approve(
    State(state): State<Shared>,
    Admin(user): Admin,
    Path(host): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<HostAgentResponse>> {
    // The body is required, as the OpenAPI document says: `{}` approves
    // the roles the agent requested.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "send a JSON body: `{}` approves the requested roles, `{\"roles\": [...]}` sets them"
                .into(),
        ));
    }
    let req: ApproveRoles = crate::extract::parse_json(&body, "role approval")?;
    if let Some(r) = &req.roles {
        if !valid_roles(r) {
            return Err(ApiError::BadRequest(
                "`roles` must be at most 32 short words".into(),
            ));
        }
    }
    let roles = approve_roles(&state.store, &state.audit, &host, req.roles, &user.name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("host `{host}` has no active agent")))?;
    tracing::info!(%host, ?roles, by = %user.name, "agent roles approved");
    Ok(Json(HostAgentResponse {
        host,
        agent_id: None,
        action: "roles_approved".into(),
        roles: Some(roles),
    }))
}

pub fn valid_roles(r: &[String]) -> bool {
    r.len() <= 32 && r.iter().all(|x| x.len() <= 64 && valid_host(x))
}

// --- enrollment, the route ------------------------------------------------------

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

/// Enrolls an agent with the enrollment secret and returns its own token.
/// A host whose agent is active is refused until an admin revokes that agent
/// or allows the re-enrollment ([`crate::enrollment`]); requested roles are
/// trusted only once approved.
#[utoipa::path(post, path = "/api/v1/enroll", tag = "agents", request_body = EnrollRequest,
    responses((status = 201, body = EnrollResponse), (status = 400, description = "malformed request"), (status = 401, description = "wrong enrollment secret, or (mutual TLS) no agent certificate"),
        (status = 403, description = "(mutual TLS) the agent certificate names another host, or the active agent is bound to a certificate and none was presented"),
        (status = 409, description = "the host has an active agent: an admin must revoke it or allow the re-enrollment"),
        (status = 429, description = "too many wrong secrets from this client")), operation_id = "enroll")]
async fn enroll_route(
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

// --- revocation ---------------------------------------------------------------

/// Revokes agent `id`'s token, audited as done `by`; false when no active agent has that id.
pub async fn revoke_token(
    store: &Store,
    audit: &AuditLog,
    id: &str,
    by: &str,
) -> Result<bool, StoreError> {
    let _g = audit.write_lock().await;
    let mut tx = store.begin_write().await?;
    let r = sqlx::query("UPDATE agents SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if r.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    audit
        .append_in(
            &mut tx,
            store.backend,
            "agent.revoked",
            by,
            serde_json::json!({"agent_id": id}),
        )
        .await?;
    tx.commit().await?;
    Ok(true)
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
    if revoke_token(&state.store, &state.audit, &agent_id, &user.name).await? {
        tracing::info!(%agent_id, by = %user.name, "agent token revoked");
        Ok(Json(RevokeResponse {
            agent_id,
            revoked: true,
        }))
    } else {
        Err(ApiError::NotFound(format!("no active agent `{agent_id}`")))
    }
}

/// This feature's `/api/v1` routes with their documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(enroll_route))
        .routes(routes!(revoke_agent))
        .routes(routes!(list_agents))
        .routes(routes!(revoke))
        .routes(routes!(allow))
        .routes(routes!(approve))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(bound: bool) -> Active {
        Active {
            agent_id: "a1".into(),
            roles: vec!["backup".into()],
            cert_spki_sha256: bound.then(|| "aa".into()),
        }
    }

    // Regression (issue 19, item 1): enrolling as a host with an active agent
    // replaced it; now only an admin's allowance lets it, and a key-bound
    // agent is replaced only by an enrollment with a certificate.
    #[test]
    fn decisions() {
        assert_eq!(decide("h", None, false, None), Ok(None));
        let a = active(false);
        assert!(matches!(
            decide("h", Some(&a), false, Some("bb")),
            Err(Refusal::Active { .. })
        ));
        assert_eq!(decide("h", Some(&a), true, None), Ok(Some(&a)));
        let b = active(true);
        assert!(matches!(
            decide("h", Some(&b), true, None),
            Err(Refusal::KeyBound { .. })
        ));
        assert_eq!(decide("h", Some(&b), true, Some("cc")), Ok(Some(&b)));
    }

    #[test]
    fn roles_come_from_approval() {
        let req = vec!["app".to_owned(), "backup".to_owned()];
        assert!(trusted_roles(None, &req, &[]).is_empty());
        assert_eq!(
            trusted_roles(None, &req, &["backup".into()]),
            vec!["backup"]
        );
        // a re-enrollment an admin allowed keeps the trusted roles, even
        // when the new agent asks for none
        assert_eq!(
            trusted_roles(Some(&active(false)), &[], &[]),
            vec!["backup"]
        );
    }
}
