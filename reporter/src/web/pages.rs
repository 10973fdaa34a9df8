//! The staff pages besides the fleet's (those are in `fleet_pages`). Each handler gathers rows, shapes them into plain
//! serializable values, and hands them to a template.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use super::session::WebStaff;
use crate::error::PageError;
use crate::intake;
use crate::state::Shared;

fn user_ctx(s: &WebStaff) -> minijinja::Value {
    minijinja::context! { name => s.user.name, role => s.user.role, csrf => s.csrf }
}

fn bad(m: impl Into<String>) -> PageError {
    PageError::Status(StatusCode::BAD_REQUEST, m.into())
}

#[derive(Serialize)]
struct CheckView {
    control: String,
    id: String,
    check_type: String,
    status: String,
    summary: String,
    findings: Vec<vigil_rules::verdict::Finding>,
}

fn checks_of(body: &str) -> Result<(vigil_rules::report::Report, Vec<CheckView>), PageError> {
    let r: vigil_rules::report::Report = serde_json::from_str(body)
        .map_err(|e| PageError::Internal(format!("stored report: {e}")))?;
    let checks = r
        .controls
        .iter()
        .flat_map(|c| {
            c.checks.iter().map(|k| CheckView {
                control: c.id.clone(),
                id: k.id.clone(),
                check_type: k.check_type.clone(),
                status: serde_json::to_value(k.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                summary: k.summary.clone(),
                findings: k.findings.clone(),
            })
        })
        .collect();
    Ok((r, checks))
}

async fn report_page(
    State(state): State<Shared>,
    staff: WebStaff,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let Some(body) = state.store.report_body(&id).await? else {
        return Err(PageError::Status(
            StatusCode::NOT_FOUND,
            format!("no report `{id}`"),
        ));
    };
    let (r, checks) = checks_of(&body)?;
    state.site.render(
        "report.html",
        minijinja::context! {
            title => format!("Report {id}"),
            user => user_ctx(&staff),
            report_id => r.report_id,
            host => r.agent.host,
            policy => r.policy,
            started_at => r.started_at.to_rfc3339(),
            finished_at => r.finished_at.to_rfc3339(),
            summary => r.summary,
            checks => checks,
        },
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentsFilter {
    status: Option<String>,
}

async fn incidents_page(
    State(state): State<Shared>,
    staff: WebStaff,
    Query(q): Query<IncidentsFilter>,
) -> Result<Html<String>, PageError> {
    let status = q.status.filter(|s| !s.is_empty());
    if let Some(s) = &status {
        if !intake::STATUSES.contains(&s.as_str()) {
            return Err(bad(format!(
                "`status` must be one of {}",
                intake::STATUSES.join(", ")
            )));
        }
    }
    let list = intake::list(&state, status.as_deref(), 1000).await?;
    state.site.render(
        "incidents.html",
        minijinja::context! {
            title => "Incidents",
            user => user_ctx(&staff),
            incidents => list,
            statuses => intake::STATUSES,
            filter_status => status,
        },
    )
}

async fn incident_page(
    State(state): State<Shared>,
    staff: WebStaff,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let Some((inc, events)) = intake::get_one(&state, &id).await? else {
        return Err(PageError::Status(
            StatusCode::NOT_FOUND,
            format!("no incident `{id}`"),
        ));
    };
    let next: Vec<&str> = intake::STATUSES
        .iter()
        .copied()
        .filter(|s| intake::transition_allowed(&inc.status, s))
        .collect();
    state.site.render(
        "incident.html",
        minijinja::context! {
            title => format!("Incident {id}"),
            user => user_ctx(&staff),
            incident => inc,
            events => events,
            next => next,
        },
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriageForm {
    #[serde(default)]
    csrf: String,
    status: String,
    #[serde(default)]
    note: String,
}

async fn incident_triage(
    State(state): State<Shared>,
    staff: WebStaff,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let pairs = intake::decode_form(&body).map_err(bad)?;
    let form: TriageForm = serde_urlencoded::from_str(
        &serde_urlencoded::to_string(&pairs).map_err(|e| bad(e.to_string()))?,
    )
    .map_err(|e| bad(format!("invalid triage form: {e}")))?;
    staff.check_csrf(&form.csrf)?;
    let note = Some(form.note.as_str()).filter(|n| !n.trim().is_empty());
    intake::transition(&state, &id, Some(&form.status), note, &staff.user.name).await?;
    Ok(Redirect::to(&format!("/reports/incidents/{id}")).into_response())
}

async fn closures_page(
    State(state): State<Shared>,
    staff: WebStaff,
) -> Result<Html<String>, PageError> {
    let list = crate::closures::all(&state).await?;
    state.site.render(
        "closures.html",
        minijinja::context! {
            title => "Account closures",
            user => user_ctx(&staff),
            closures => list,
        },
    )
}

async fn closure_page(
    State(state): State<Shared>,
    staff: WebStaff,
    Path(account): Path<String>,
) -> Result<Html<String>, PageError> {
    let Some(c) = crate::closures::get(&state, &account).await? else {
        return Err(PageError::Status(
            axum::http::StatusCode::NOT_FOUND,
            format!("no closure for `{account}`"),
        ));
    };
    state.site.render(
        "closure.html",
        minijinja::context! {
            title => format!("Closure of {account}"),
            user => user_ctx(&staff),
            c => c,
        },
    )
}

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/reports/closures", get(closures_page))
        .route("/reports/closures/{account}", get(closure_page))
        .route("/reports/runs/{id}", get(report_page))
        .route("/reports/incidents", get(incidents_page))
        .route(
            "/reports/incidents/{id}",
            get(incident_page).post(incident_triage),
        )
}
