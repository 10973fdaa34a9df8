//! The fleet as staff read it through `/api/v1`: posture per control
//! (now or at a past time), hosts with their newest status, and the stored
//! reports.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::extract::Staff;
use crate::fleet_state;
use crate::posture::{self, Posture};
use crate::state::{AppState, Shared};

/// The fleet routes with their documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(get_posture))
        .routes(routes!(list_hosts))
        .routes(routes!(get_host))
        .routes(routes!(list_reports))
        .routes(routes!(get_report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AtQuery {
    /// Posture as it stood at the end of the UTC day holding this time
    /// (RFC 3339), read from the daily roll-ups: day resolution, per control
    /// counts and status only (host lists empty), a host whose result was not
    /// received that day counted as `unknown`. The live posture when absent.
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

/// The live posture at `at` (normally now) from the maintained state
/// (`fleet_state`), with the score, its 30-day trend and the waivers in force.
pub async fn compute_posture(state: &AppState, at: i64) -> ApiResult<Posture> {
    let (controls, control_roles) = state
        .policy()
        .map(|p| (p.controls, p.control_roles))
        .unwrap_or_default();
    let view = fleet_state::view(&state.store, &state.fleet_cache).await?;
    let fleet = view.fleet();
    let mut p = posture::judge(&fleet, at, &controls, &control_roles, None).posture();
    p.score = fleet_state::score_of(&p);
    p.trend = fleet_state::score_trend(&state.store, at, 30).await?;
    with_waivers(state, p).await
}

/// The posture at the end of the UTC day holding `at`, from the roll-ups.
pub async fn posture_on_day(state: &AppState, at: i64) -> ApiResult<Posture> {
    let (controls, control_roles) = state
        .policy()
        .map(|p| (p.controls, p.control_roles))
        .unwrap_or_default();
    let mut p = fleet_state::posture_on_day(&state.store, at, &controls, &control_roles).await?;
    p.trend = fleet_state::score_trend(&state.store, at, 30).await?;
    p.score = p.trend.last().and_then(|t| t.score);
    Ok(p)
}

async fn with_waivers(state: &AppState, mut p: Posture) -> ApiResult<Posture> {
    p.waivers = crate::waivers::in_force(state).await?;
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
    match q.at.as_deref() {
        None => Ok(Json(compute_posture(&state, crate::store::now_ms()).await?)),
        Some(_) => {
            let at = parse_at(q.at.as_deref())?;
            Ok(Json(posture_on_day(&state, at).await?))
        }
    }
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

fn host_summary(h: fleet_state::FleetHost) -> HostSummary {
    HostSummary {
        host: h.host,
        agent_id: h.agent_id,
        roles: h.roles,
        last_report_at: h.last_report_at,
        last_report_id: h.last_report_id,
        stale: h.stale,
        revoked: h.revoked,
    }
}

async fn host_summaries(state: &AppState) -> ApiResult<Vec<HostSummary>> {
    let view = fleet_state::view(&state.store, &state.fleet_cache).await?;
    Ok(fleet_state::fleet_hosts(&view, crate::store::now_ms())
        .into_iter()
        .map(host_summary)
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
    /// Each control's latest result on this host (across reports, kept
    /// after the reports are pruned), in the policy's order.
    pub controls: Vec<HostControl>,
    pub recent_reports: Vec<ReportListItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HostControl {
    pub id: String,
    pub title: String,
    /// `unknown` while the host is stale.
    pub status: String,
    /// The agent's finished_at of the report the result came in.
    pub verified_at: String,
    /// The status the host reported (staleness not applied).
    pub reported_status: String,
    pub report_id: String,
    /// The control's checks with their findings.
    pub checks: Vec<fleet_state::CheckBrief>,
}

/// One host: its last reports and each control's newest status.
#[utoipa::path(get, path = "/api/v1/hosts/{host}", tag = "staff", security(("bearer" = [])), params(("host" = String, Path, description = "host name")),
    responses((status = 200, body = HostDetail), (status = 401, description = "not staff"), (status = 404, description = "unknown host")))]
async fn get_host(
    State(state): State<Shared>,
    _staff: Staff,
    Path(host): Path<String>,
) -> ApiResult<Json<HostDetail>> {
    let summary = fleet_state::one_host(&state.store, &host, crate::store::now_ms())
        .await?
        .map(host_summary)
        .ok_or_else(|| ApiError::NotFound(format!("no host `{host}`")))?;
    let policy = state.policy().map(|p| p.controls).unwrap_or_default();
    let stale = summary.stale;
    let controls = fleet_state::host_results(&state.store, &host, &policy)
        .await?
        .into_iter()
        .map(|r| HostControl {
            id: r.control_id,
            title: r.title,
            status: if stale {
                "unknown".into()
            } else {
                r.status.clone()
            },
            verified_at: r.finished_at,
            reported_status: r.status,
            report_id: r.report_id,
            checks: r.checks,
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
