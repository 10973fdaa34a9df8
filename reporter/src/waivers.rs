//! Waivers kept by the reporter: admins create and revoke them, every change
//! goes into the audit log, agents under `run` fetch the ones whose scope
//! takes them in and apply them to their reports (`vigil_rules::waivers`).
//!
//! A waiver is validated like a waivers file (`../shared/CONTRACT.md`): against
//! the policy the reporter hands out when it has one (an unknown control or
//! check is refused, named), else for its shape only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigil_rules::waivers::{self, Waiver};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, AgentAuth, Staff};
use crate::posture::rfc3339;
use crate::state::Shared;
use crate::store::{now_ms, StoreError};

/// Waivers expiring within this many days are listed as expiring soon.
pub const EXPIRING_SOON_DAYS: i64 = 14;

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Validates one waiver (the JSON of a waivers-file entry).
pub fn validate(body: &Value, policy_yaml: Option<&str>) -> Result<Waiver, String> {
    let text = serde_json::to_string(&json!({ "waivers": [body] })).map_err(|e| e.to_string())?;
    let policy = match policy_yaml {
        Some(y) => Some(
            vigil_rules::policy::parse(y.as_bytes(), "<reporter policy>")
                .map_err(|d| format!("the reporter's policy is invalid: {d}"))?,
        ),
        None => None,
    };
    let mut list = waivers::parse_checked(&text, "<request>", policy.as_ref()).map_err(|d| {
        d.diags
            .iter()
            .map(|x| x.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let w = list.pop().ok_or("no waiver in the request")?;
    if !valid_id(&w.id) {
        return Err(format!(
            "waiver id `{}` must be 1 to 64 of `A-Z a-z 0-9 - _ .`",
            w.id
        ));
    }
    Ok(w)
}

/// Where a waiver stands on `today`.
pub fn state_of(w: &Waiver, revoked: bool, today: NaiveDate) -> &'static str {
    if revoked {
        "revoked"
    } else if today > w.expires {
        "expired"
    } else if today < w.approved_on {
        "not_yet_valid"
    } else {
        "active"
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WaiverView {
    /// The waiver as a waivers-file entry.
    #[schema(value_type = Object)]
    pub waiver: Value,
    /// `active`, `expired`, `not_yet_valid` or `revoked`.
    pub state: String,
    /// Active and expiring within 14 days.
    pub expiring_soon: bool,
    pub days_left: i64,
    pub created_by: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WaiverList {
    pub waivers: Vec<WaiverView>,
}

struct Stored {
    waiver: Waiver,
    body: Value,
    created_by: String,
    created_at: i64,
    revoked_at: Option<i64>,
    revoked_by: Option<String>,
}

async fn load_all(state: &crate::state::AppState) -> ApiResult<Vec<Stored>> {
    let rows = sqlx::query(
        "SELECT body, created_by, created_at, revoked_at, revoked_by FROM waivers ORDER BY expires, id",
    )
    .fetch_all(&state.store.pool)
    .await
    .map_err(StoreError::from)?;
    let mut out = Vec::new();
    for r in rows {
        let body: String = r.try_get("body").map_err(StoreError::from)?;
        let body: Value = serde_json::from_str(&body)
            .map_err(|e| ApiError::Internal(format!("stored waiver: {e}")))?;
        let waiver =
            validate(&body, None).map_err(|e| ApiError::Internal(format!("stored waiver: {e}")))?;
        out.push(Stored {
            waiver,
            body,
            created_by: r.try_get("created_by").map_err(StoreError::from)?,
            created_at: r.try_get("created_at").map_err(StoreError::from)?,
            revoked_at: r.try_get("revoked_at").map_err(StoreError::from)?,
            revoked_by: r.try_get("revoked_by").map_err(StoreError::from)?,
        });
    }
    Ok(out)
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

fn view(s: Stored, today: NaiveDate) -> WaiverView {
    let st = state_of(&s.waiver, s.revoked_at.is_some(), today);
    let days_left = (s.waiver.expires - today).num_days();
    WaiverView {
        expiring_soon: st == "active" && days_left <= EXPIRING_SOON_DAYS,
        days_left,
        state: st.to_owned(),
        waiver: s.body,
        created_by: s.created_by,
        created_at: rfc3339(s.created_at),
        revoked_at: s.revoked_at.map(rfc3339),
        revoked_by: s.revoked_by,
    }
}

/// Every waiver, soonest expiry first, with its state.
pub async fn list_views(state: &crate::state::AppState) -> ApiResult<Vec<WaiverView>> {
    let t = today();
    Ok(load_all(state)
        .await?
        .into_iter()
        .map(|s| view(s, t))
        .collect())
}

/// The waivers in force now, as posture and the overview summarize them,
/// soonest expiry first (the store's order).
pub async fn in_force(
    state: &crate::state::AppState,
) -> ApiResult<Vec<crate::posture::WaiverSummary>> {
    Ok(list_views(state)
        .await?
        .into_iter()
        .filter(|v| v.state == "active")
        .map(|v| {
            let text = |k: &str| v.waiver.get(k).and_then(|x| x.as_str());
            let field = |k: &str| text(k).unwrap_or_default().to_owned();
            crate::posture::WaiverSummary {
                id: field("id"),
                control: field("control"),
                check: text("check").map(str::to_owned),
                expires: field("expires"),
                days_left: v.days_left,
                expiring_soon: v.expiring_soon,
                approved_by: field("approved_by"),
                justification: field("justification"),
            }
        })
        .collect())
}

/// Creates a waiver (admin). Validated against the reporter's policy.
#[utoipa::path(post, path = "/api/v1/waivers", tag = "staff", security(("bearer" = [])),
    request_body(content = Object, description = "one waiver, shaped like a waivers-file entry: id, control, check?, hosts/roles, justification, approved_by, approved_on, expires"),
    responses((status = 201, body = WaiverView), (status = 400, description = "invalid waiver, with every problem named"),
        (status = 401, description = "not staff"), (status = 403, description = "not an admin"), (status = 409, description = "the id exists")))]
pub async fn create(
    State(state): State<Shared>,
    Admin(user): Admin,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<WaiverView>)> {
    let body: Value = crate::extract::parse_json(&body, "waiver")?;
    let policy = state.policy();
    let w =
        validate(&body, policy.as_ref().map(|p| p.yaml.as_str())).map_err(ApiError::BadRequest)?;
    if w.expires < today() {
        return Err(ApiError::BadRequest(format!(
            "waiver `{}` expired on {}",
            w.id, w.expires
        )));
    }
    let canonical = serde_json::to_value(&w).map_err(|e| ApiError::Internal(e.to_string()))?;
    let now = now_ms();
    // The waiver and its audit entry commit together or not at all: a
    // waiver is never in force without its entry (issue 19, item 15).
    let _g = state.audit.write_lock().await;
    let mut tx = state.store.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO waivers (id, control, body, expires, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&w.id)
    .bind(&w.control)
    .bind(canonical.to_string())
    .bind(w.expires.format("%Y-%m-%d").to_string())
    .bind(&user.name)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if inserted == 0 {
        tx.rollback().await.map_err(StoreError::from)?;
        return Err(ApiError::Conflict(format!(
            "a waiver `{}` exists; revoke it or pick another id",
            w.id
        )));
    }
    state
        .audit
        .append_in(
            &mut tx,
            state.store.backend,
            "waiver.created",
            &user.name,
            canonical.clone(),
        )
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    drop(_g);
    let v = view(
        Stored {
            waiver: w,
            body: canonical,
            created_by: user.name,
            created_at: now,
            revoked_at: None,
            revoked_by: None,
        },
        today(),
    );
    Ok((StatusCode::CREATED, Json(v)))
}

/// Every waiver with its state; those expiring within 14 days are flagged.
#[utoipa::path(get, path = "/api/v1/waivers", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = WaiverList), (status = 401, description = "not staff")))]
pub async fn list(State(state): State<Shared>, _staff: Staff) -> ApiResult<Json<WaiverList>> {
    Ok(Json(WaiverList {
        waivers: list_views(&state).await?,
    }))
}

/// Revokes a waiver (admin): agents stop applying it at their next run.
#[utoipa::path(delete, path = "/api/v1/waivers/{id}", tag = "staff", security(("bearer" = [])),
    params(("id" = String, Path, description = "waiver id")),
    responses((status = 200, body = WaiverView), (status = 401, description = "not staff"), (status = 403, description = "not an admin"),
        (status = 404, description = "no such waiver"), (status = 409, description = "already revoked")))]
pub async fn revoke(
    State(state): State<Shared>,
    Admin(user): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<WaiverView>> {
    if !valid_id(&id) {
        return Err(ApiError::NotFound(format!("no waiver `{id}`")));
    }
    let now = now_ms();
    // The revocation and its audit entry commit together (issue 19, item 15).
    let _g = state.audit.write_lock().await;
    let mut tx = state.store.begin_write().await?;
    let n = sqlx::query(
        "UPDATE waivers SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(&user.name)
    .bind(&id)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    if n == 0 {
        tx.rollback().await.map_err(StoreError::from)?;
        drop(_g);
        return Err(
            match load_all(&state).await?.iter().any(|s| s.waiver.id == id) {
                true => ApiError::Conflict(format!("waiver `{id}` is already revoked")),
                false => ApiError::NotFound(format!("no waiver `{id}`")),
            },
        );
    }
    let control: Option<String> = sqlx::query_scalar("SELECT control FROM waivers WHERE id = $1")
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    state
        .audit
        .append_in(
            &mut tx,
            state.store.backend,
            "waiver.revoked",
            &user.name,
            json!({"id": id, "control": control}),
        )
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    drop(_g);
    let found = load_all(&state)
        .await?
        .into_iter()
        .find(|s| s.waiver.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no waiver `{id}`")))?;
    Ok(Json(view(found, today())))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentWaivers {
    /// Waivers-file entries whose scope takes in the calling agent, not revoked
    /// (expired ones included: the agent reports `waiver_expired` for them).
    #[schema(value_type = Vec<Object>)]
    pub waivers: Vec<Value>,
}

/// The waivers that apply to the calling agent.
#[utoipa::path(get, path = "/api/v1/agent/waivers", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = AgentWaivers), (status = 401, description = "unknown or revoked token")))]
pub async fn for_agent(
    State(state): State<Shared>,
    AgentAuth(agent): AgentAuth,
) -> ApiResult<Json<AgentWaivers>> {
    let waivers = load_all(&state)
        .await?
        .into_iter()
        .filter(|s| s.revoked_at.is_none() && s.waiver.applies_to(&agent.host, &agent.roles))
        .map(|s| s.body)
        .collect();
    Ok(Json(AgentWaivers { waivers }))
}

/// This feature's `/api/v1` routes with their documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
        .routes(routes!(for_agent))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "policy: {id: p, version: '1', title: t}\ncontrols:\n  - id: SP-6\n    title: patches\n    checks:\n      - {id: advisories, type: attestation, with: {by: x, on: 2026-01-01, valid_for: 10d, evidence: e}}\n";

    fn body() -> Value {
        json!({"id": "W-1", "control": "SP-6", "check": "advisories", "hosts": ["legacy-*"],
               "justification": "vendor kernel", "approved_by": "ciso", "approved_on": "2026-11-20", "expires": "2027-01-31"})
    }

    #[test]
    fn waivers_are_checked_against_the_policy_when_there_is_one() {
        assert_eq!(validate(&body(), Some(POLICY)).unwrap().id, "W-1");
        let mut b = body();
        b["control"] = json!("SP-99");
        let e = validate(&b, Some(POLICY)).unwrap_err();
        assert!(e.contains("SP-99"), "{e}");
        assert!(validate(&b, None).is_ok());
        let mut b = body();
        b["hosts"] = json!([]);
        b["justification"] = json!(" ");
        let e = validate(&b, None).unwrap_err();
        assert!(e.contains("hosts") && e.contains("justification"), "{e}");
        let mut b = body();
        b["id"] = json!("../x");
        assert!(validate(&b, None).unwrap_err().contains("waiver id"));
        let mut b = body();
        b["extra"] = json!(1);
        assert!(validate(&b, None).is_err());
    }

    #[test]
    fn states_and_expiry() {
        let w = validate(&body(), None).unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(state_of(&w, false, d("2026-12-01")), "active");
        assert_eq!(state_of(&w, false, d("2027-01-31")), "active");
        assert_eq!(state_of(&w, false, d("2027-02-01")), "expired");
        assert_eq!(state_of(&w, false, d("2026-11-19")), "not_yet_valid");
        assert_eq!(state_of(&w, true, d("2026-12-01")), "revoked");
    }
}
