//! The staff pages. Each handler gathers rows, shapes them into plain
//! serializable values, and hands them to a template.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::chart;
use super::session::WebStaff;
use crate::error::PageError;
use crate::fleet::compute_posture;
use crate::intake;
use crate::posture::rfc3339;
use crate::state::Shared;
use crate::store::now_ms;

const STATUS_WORDS: &[&str] = &["pass", "fail", "error", "attested", "waived", "unknown"];

fn user_ctx(s: &WebStaff) -> minijinja::Value {
    minijinja::context! { name => s.user.name, role => s.user.role, csrf => s.csrf }
}

fn bad(m: impl Into<String>) -> PageError {
    PageError::Status(StatusCode::BAD_REQUEST, m.into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverviewQuery {
    status: Option<String>,
    control: Option<String>,
    /// Only the controls mapped to this framework (`iso27001`, `soc2`, …).
    framework: Option<String>,
}

#[derive(Serialize)]
struct Cell {
    host: String,
    status: String,
    at: Option<String>,
}

#[derive(Serialize)]
struct MatrixRow {
    id: String,
    title: String,
    /// `iso27001 A.8.24, A.8.20 · soc2 CC6.7`, from the published policy.
    frameworks: String,
    status: String,
    last_verified: Option<String>,
    cells: Vec<Cell>,
}

async fn overview(
    State(state): State<Shared>,
    staff: WebStaff,
    Query(q): Query<OverviewQuery>,
) -> Result<Html<String>, PageError> {
    let status = q.status.filter(|s| !s.is_empty());
    let control = q.control.filter(|s| !s.is_empty());
    if let Some(s) = &status {
        if !STATUS_WORDS.contains(&s.as_str()) {
            return Err(bad(format!(
                "`status` must be one of {}",
                STATUS_WORDS.join(", ")
            )));
        }
    }
    let framework = q.framework.filter(|s| !s.is_empty());
    if let Some(f) = &framework {
        if !vigil_rules::policy::FRAMEWORKS.contains(&f.as_str()) {
            return Err(bad(format!(
                "`framework` must be one of {}",
                vigil_rules::policy::FRAMEWORKS.join(", ")
            )));
        }
    }
    let mapped = state
        .policy()
        .map(|p| p.control_frameworks)
        .unwrap_or_default();
    let now = now_ms();
    let posture = compute_posture(&state, now).await?;
    let latest = state.store.latest_controls(now).await?;
    let hosts: Vec<&crate::posture::HostState> = posture.hosts.iter().collect();
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    let rows: Vec<MatrixRow> = posture
        .controls
        .iter()
        .inspect(|c| *counts.entry(c.status.clone()).or_default() += 1)
        .filter(|c| status.as_ref().is_none_or(|s| &c.status == s))
        .filter(|c| {
            control
                .as_ref()
                .is_none_or(|f| c.id.eq_ignore_ascii_case(f))
        })
        .filter(|c| {
            framework
                .as_ref()
                .is_none_or(|f| mapped.get(&c.id).is_some_and(|m| m.contains_key(f)))
        })
        .map(|c| MatrixRow {
            id: c.id.clone(),
            title: c.title.clone(),
            frameworks: mapped
                .get(&c.id)
                .map(|m| {
                    m.iter()
                        .filter(|(name, _)| framework.as_ref().is_none_or(|f| f == *name))
                        .map(|(name, ids)| format!("{name} {}", ids.join(", ")))
                        .collect::<Vec<_>>()
                        .join(" · ")
                })
                .unwrap_or_default(),
            status: c.status.clone(),
            last_verified: c.last_verified.clone(),
            cells: hosts
                .iter()
                .map(|h| {
                    let r = latest
                        .iter()
                        .find(|r| r.host == h.host && r.control_id == c.id);
                    Cell {
                        host: h.host.clone(),
                        status: match r {
                            // outside the control's roles: not counted
                            _ if c.hosts_not_applicable.contains(&h.host) => "na".into(),
                            None if c.hosts_unknown.contains(&h.host) => "unknown".into(),
                            None => "none".into(),
                            Some(_) if h.stale => "unknown".into(),
                            Some(r) => r.status.clone(),
                        },
                        at: r.map(|r| rfc3339(r.finished_at)),
                    }
                })
                .collect(),
        })
        .collect();
    let open_incidents = intake::list(&state, None, 1000)
        .await?
        .iter()
        .filter(|i| i.status != "resolved")
        .count();
    state.site.render(
        "overview.html",
        minijinja::context! {
            title => "Fleet overview",
            user => user_ctx(&staff),
            at => posture.at,
            hosts => posture.hosts,
            rows => rows,
            counts => counts,
            statuses => STATUS_WORDS,
            filter_status => status,
            filter_control => control,
            filter_framework => framework,
            frameworks => vigil_rules::policy::FRAMEWORKS,
            controls => posture.controls.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
            open_incidents => open_incidents,
            waivers => posture.waivers,
            expiring => posture.waivers.iter().filter(|w| w.expiring_soon).count(),
            policy => state.policy().map(|p| minijinja::context! { id => p.id, version => p.version }),
        },
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DaysQuery {
    days: Option<i64>,
}

async fn control_page(
    State(state): State<Shared>,
    staff: WebStaff,
    Path(id): Path<String>,
    Query(q): Query<DaysQuery>,
) -> Result<Html<String>, PageError> {
    let days = q.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(bad("`days` must be between 1 and 366"));
    }
    let now = now_ms();
    let posture = compute_posture(&state, now).await?;
    let Some(c) = posture.controls.iter().find(|c| c.id == id) else {
        return Err(PageError::Status(
            StatusCode::NOT_FOUND,
            format!("no control `{id}`"),
        ));
    };
    let from = now - days * 86_400_000;
    // The status each host had when the window opened, then every change in it.
    let rows = sqlx::query(
        "SELECT host, status, finished_at FROM control_results WHERE control_id = $1 AND finished_at <= $2 ORDER BY finished_at",
    )
    .bind(&id)
    .bind(now)
    .fetch_all(&state.store.pool)
    .await
    .map_err(crate::store::StoreError::from)?;
    let mut history: Vec<(String, String, i64)> = Vec::with_capacity(rows.len());
    for r in &rows {
        history.push((
            r.try_get("host").map_err(crate::store::StoreError::from)?,
            r.try_get("status")
                .map_err(crate::store::StoreError::from)?,
            r.try_get("finished_at")
                .map_err(crate::store::StoreError::from)?,
        ));
    }
    let series = chart::days(&history, from, now);
    let svg = chart::svg(
        &series,
        &format!("{id}: hosts per status per day, last {days} days"),
    );
    let latest = state.store.latest_controls(now).await?;
    let per_host: Vec<Cell> = posture
        .hosts
        .iter()
        .filter(|h| !c.hosts_not_applicable.contains(&h.host))
        .filter_map(|h| {
            latest
                .iter()
                .find(|r| r.host == h.host && r.control_id == id)
                .map(|r| Cell {
                    host: h.host.clone(),
                    status: if h.stale {
                        "unknown".into()
                    } else {
                        r.status.clone()
                    },
                    at: Some(rfc3339(r.finished_at)),
                })
        })
        .collect();
    let recent: Vec<_> = history
        .iter()
        .rev()
        .take(50)
        .map(|(h, s, t)| minijinja::context! { host => h, status => s, at => rfc3339(*t) })
        .collect();
    state.site.render(
        "control.html",
        minijinja::context! {
            title => format!("Control {id}"),
            user => user_ctx(&staff),
            control => c,
            svg => svg,
            series => series,
            statuses => chart::STATUSES.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            per_host => per_host,
            recent => recent,
            days => days,
        },
    )
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

async fn host_page(
    State(state): State<Shared>,
    staff: WebStaff,
    Path(host): Path<String>,
) -> Result<Html<String>, PageError> {
    let now = now_ms();
    let posture = compute_posture(&state, now).await?;
    let Some(h) = posture.hosts.iter().find(|h| h.host == host) else {
        return Err(PageError::Status(
            StatusCode::NOT_FOUND,
            format!("no host `{host}`"),
        ));
    };
    let latest = state.store.latest_controls(now).await?;
    // The controls that apply to the host (its roles as the reporter holds
    // them); the others are listed apart as not applicable.
    let mut controls = Vec::new();
    let mut not_applicable = Vec::new();
    for c in &posture.controls {
        if c.hosts_not_applicable.contains(&host) {
            not_applicable
                .push(minijinja::context! { id => c.id, title => c.title, roles => c.roles });
            continue;
        }
        match latest
            .iter()
            .find(|r| r.host == host && r.control_id == c.id)
        {
            Some(r) => controls.push(minijinja::context! {
                id => r.control_id, title => r.title,
                status => if h.stale { "unknown" } else { r.status.as_str() },
                at => rfc3339(r.finished_at),
            }),
            None if c.hosts_unknown.contains(&host) => controls.push(minijinja::context! {
                id => c.id, title => c.title, status => "unknown", at => "never reported",
            }),
            None => {}
        }
    }
    let reports = state.store.reports(Some(&host), 10).await?;
    let reports: Vec<_> = reports
        .iter()
        .map(|r| minijinja::context! {
            id => r.report_id, at => rfc3339(r.finished_at),
            summary => serde_json::from_str::<serde_json::Value>(&r.summary).unwrap_or_default(),
        })
        .collect();
    // The last report's findings and the host inventory it carries.
    let (findings, inventory) = match &h.last_report_id {
        Some(id) => match state.store.report_body(id).await? {
            Some(body) => {
                let (r, checks) = checks_of(&body)?;
                let findings: Vec<CheckView> = checks
                    .into_iter()
                    .filter(|c| c.status != "pass" || !c.findings.is_empty())
                    .collect();
                (findings, r.inventory.map(|i| i.rows()).unwrap_or_default())
            }
            None => (Vec::new(), Vec::new()),
        },
        None => (Vec::new(), Vec::new()),
    };
    state.site.render(
        "host.html",
        minijinja::context! {
            title => format!("Host {host}"),
            user => user_ctx(&staff),
            host => h,
            controls => controls,
            not_applicable => not_applicable,
            reports => reports,
            findings => findings,
            inventory => inventory,
        },
    )
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
        .route("/", get(overview))
        .route("/reports", get(|| async { Redirect::to("/") }))
        .route("/reports/controls/{id}", get(control_page))
        .route("/reports/hosts/{host}", get(host_page))
        .route("/reports/runs/{id}", get(report_page))
        .route("/reports/incidents", get(incidents_page))
        .route(
            "/reports/incidents/{id}",
            get(incident_page).post(incident_triage),
        )
}
