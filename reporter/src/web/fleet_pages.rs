//! The fleet pages staff read at any fleet size: the overview (`/`), the host
//! list (`/reports/hosts`), a control (`/reports/controls/{id}`) and a host
//! (`/reports/hosts/{host}`). Each asks [`super::fleet_data`] one narrow
//! question, shapes the answer with [`super::views`], and renders it; none
//! lists every host, so a page costs the same at 10 hosts as at 10,000.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use super::chart;
use super::fleet_data::{self, HostLine};
use super::session::WebStaff;
use super::views::{self, HostFilter, HostQuery, Page, When};
use crate::error::PageError;
use crate::intake;
use crate::state::Shared;
use crate::store::now_ms;

/// Failing hosts the overview names per control before "and N more".
const FIRST_FAILING: usize = 5;

fn user_ctx(s: &WebStaff) -> minijinja::Value {
    minijinja::context! { name => s.user.name, role => s.user.role, csrf => s.csrf }
}

fn bad(m: impl Into<String>) -> PageError {
    PageError::Status(StatusCode::BAD_REQUEST, m.into())
}

fn not_found(m: String) -> PageError {
    PageError::Status(StatusCode::NOT_FOUND, m)
}

/// The published policy's control ids in its order.
fn policy_ids(state: &Shared) -> Vec<String> {
    state
        .policy()
        .map(|p| p.controls.into_iter().map(|(id, _)| id).collect())
        .unwrap_or_default()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverviewQuery {
    /// Only controls whose fleet status is this.
    status: Option<String>,
    control: Option<String>,
    /// Only the controls mapped to this framework (`iso27001`, `soc2`, …).
    framework: Option<String>,
}

#[derive(Serialize)]
struct OverviewControl {
    id: String,
    title: String,
    /// The control's fleet status: its worst host's.
    status: String,
    /// `iso27001 A.8.24, A.8.20 · soc2 CC6.7`, from the published policy.
    frameworks: String,
    /// Active hosts outside the control's roles.
    na: u64,
    /// (status, hosts) in [`views::WORST_FIRST`] order, zero counts left out.
    counts: Vec<(String, u64)>,
    applicable: u64,
    failing: Vec<String>,
    more: u64,
    score: String,
}

fn ordered_counts(counts: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = views::WORST_FIRST
        .iter()
        .filter_map(|s| {
            counts
                .get(*s)
                .filter(|n| **n > 0)
                .map(|n| ((*s).to_owned(), *n))
        })
        .collect();
    for (s, n) in counts {
        if !views::WORST_FIRST.contains(&s.as_str()) && *n > 0 {
            v.push((s.clone(), *n));
        }
    }
    v
}

async fn overview(
    State(state): State<Shared>,
    staff: WebStaff,
    Query(q): Query<OverviewQuery>,
) -> Result<Html<String>, PageError> {
    let status = views::status_filter(q.status).map_err(bad)?;
    let control = q.control.filter(|s| !s.trim().is_empty());
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
    let (mut lines, hosts) = fleet_data::overview(&state, now, FIRST_FAILING).await?;
    views::policy_order(&mut lines, &policy_ids(&state), |c| c.id.as_str());
    let active = hosts.total - hosts.revoked;
    let mut fleet_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let all_ids: Vec<String> = lines.iter().map(|c| c.id.clone()).collect();
    let controls: Vec<OverviewControl> = lines
        .into_iter()
        .filter_map(|c| {
            for (s, n) in &c.counts {
                *fleet_counts.entry(s.clone()).or_default() += n;
            }
            let fleet_status = views::control_status(&c.counts).to_owned();
            *by_status.entry(fleet_status.clone()).or_default() += 1;
            let keep = status.as_ref().is_none_or(|s| *s == fleet_status)
                && control
                    .as_ref()
                    .is_none_or(|f| c.id.eq_ignore_ascii_case(f.trim()))
                && framework
                    .as_ref()
                    .is_none_or(|f| mapped.get(&c.id).is_some_and(|m| m.contains_key(f)));
            if !keep {
                return None;
            }
            let frameworks = mapped
                .get(&c.id)
                .map(|m| {
                    m.iter()
                        .filter(|(name, _)| framework.as_ref().is_none_or(|f| f == *name))
                        .map(|(name, ids)| format!("{name} {}", ids.join(", ")))
                        .collect::<Vec<_>>()
                        .join(" · ")
                })
                .unwrap_or_default();
            let applicable: u64 = c.counts.values().sum();
            Some(OverviewControl {
                status: fleet_status,
                frameworks,
                na: active.saturating_sub(applicable),
                score: views::score_text(views::score(&c.counts)),
                applicable: c.counts.values().sum(),
                counts: ordered_counts(&c.counts),
                more: c.failing_total.saturating_sub(c.failing.len() as u64),
                failing: c.failing,
                id: c.id,
                title: c.title,
            })
        })
        .collect();
    let points = fleet_data::trend(&state, now, 30).await?;
    let score = views::score(&fleet_counts);
    let week_ago = points
        .len()
        .checked_sub(8)
        .and_then(|i| points.get(i))
        .and_then(|p| p.1);
    let change = match (score, week_ago) {
        (Some(a), Some(b)) => Some(format!("{:+.1} points in 7 days", a - b)),
        _ => None,
    };
    let svg = chart::score_svg(&points, "Fleet compliance score per day, last 30 days");
    let policy = state.policy();
    let open_incidents = intake::list(&state, None, 1000)
        .await?
        .iter()
        .filter(|i| i.status != "resolved")
        .count();
    let waivers = fleet_data::waivers(&state).await?;
    state.site.render(
        "overview.html",
        minijinja::context! {
            title => "Fleet overview",
            user => user_ctx(&staff),
            at => When::at(now, now),
            policy => policy.map(|p| minijinja::context! { id => p.id, version => p.version }),
            score => views::score_text(score),
            change => change,
            svg => svg,
            points => points.iter().map(|(d, s)| (d.clone(), views::score_text(*s))).collect::<Vec<_>>(),
            controls => controls,
            hosts => hosts,
            by_worst => ordered_counts(&hosts.by_worst),
            open_incidents => open_incidents,
            expiring => waivers.iter().filter(|w| w.expiring_soon).count(),
            waivers => waivers,
            by_status => ordered_counts(&by_status),
            statuses => views::STATUS_FILTERS,
            filter_status => status,
            filter_control => control,
            filter_framework => framework,
            frameworks => vigil_rules::policy::FRAMEWORKS,
            control_ids => all_ids,
        },
    )
}

#[derive(Serialize)]
struct HostRow {
    host: String,
    roles: Vec<String>,
    worst: String,
    stale: bool,
    revoked: bool,
    last: Option<When>,
}

fn host_row(h: HostLine, now: i64) -> HostRow {
    HostRow {
        last: When::maybe(h.last_report_ms, now),
        host: h.host,
        roles: h.roles,
        worst: h.worst,
        stale: h.stale,
        revoked: h.revoked,
    }
}

async fn host_list(
    State(state): State<Shared>,
    staff: WebStaff,
    Query(q): Query<HostQuery>,
) -> Result<Html<String>, PageError> {
    let f = HostFilter::parse(q).map_err(bad)?;
    let now = now_ms();
    let (rows, total) = fleet_data::hosts(&state, now, &f).await?;
    let page = Page::new(f.page, f.per, total);
    let roles: Vec<String> = state
        .policy()
        .map(|p| {
            let mut r: Vec<String> = p.control_roles.into_values().flatten().collect();
            r.sort();
            r.dedup();
            r
        })
        .unwrap_or_default();
    state.site.render(
        "hosts.html",
        minijinja::context! {
            title => "Hosts",
            user => user_ctx(&staff),
            rows => rows.into_iter().map(|h| host_row(h, now)).collect::<Vec<_>>(),
            page => page,
            prev => page.prev.map(|p| f.query(p)),
            next => page.next.map(|p| f.query(p)),
            filter => f,
            statuses => views::STATUS_FILTERS,
            sizes => views::PAGE_SIZES,
            roles => roles,
        },
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlQuery {
    status: Option<String>,
    page: Option<u32>,
    per: Option<u32>,
    days: Option<i64>,
}

#[derive(Serialize)]
struct CodeHelp {
    check: String,
    check_type: String,
    code: String,
    meaning: String,
    remediation: String,
    reference: Option<String>,
}

/// The published policy parsed once per published policy (by its sha256),
/// not once per page view.
fn parsed_policy(state: &Shared) -> Option<Arc<vigil_rules::policy::Policy>> {
    static PARSED: Mutex<Option<(String, Arc<vigil_rules::policy::Policy>)>> = Mutex::new(None);
    let p = state.policy()?;
    if let Ok(g) = PARSED.lock() {
        if let Some((_, parsed)) = g.as_ref().filter(|(sha, _)| *sha == p.sha256) {
            return Some(parsed.clone());
        }
    }
    let parsed = Arc::new(vigil_rules::policy::parse(p.yaml.as_bytes(), "published policy").ok()?);
    if let Ok(mut g) = PARSED.lock() {
        *g = Some((p.sha256, parsed.clone()));
    }
    Some(parsed)
}

/// The finding codes of the control's checks with what to do about each.
fn remediation_of(state: &Shared, id: &str) -> (Option<String>, Vec<CodeHelp>) {
    let Some(policy) = parsed_policy(state) else {
        return (None, Vec::new());
    };
    let Some(c) = policy.control(id) else {
        return (None, Vec::new());
    };
    let types = vigil_rules::checks::check_types();
    let mut out = Vec::new();
    for k in &c.checks {
        let Some(t) = types.iter().find(|t| t.name == k.type_name()) else {
            continue;
        };
        for code in &t.codes {
            out.push(CodeHelp {
                check: k.id.clone(),
                check_type: t.name.to_owned(),
                code: code.code.to_owned(),
                meaning: code.meaning.to_owned(),
                remediation: code.remediation.to_owned(),
                reference: code.reference.map(str::to_owned),
            });
        }
    }
    (c.description.clone(), out)
}

async fn control_page(
    State(state): State<Shared>,
    staff: WebStaff,
    Path(id): Path<String>,
    Query(q): Query<ControlQuery>,
) -> Result<Html<String>, PageError> {
    let status = views::status_filter(q.status).map_err(bad)?;
    let per = views::page_size(q.per).map_err(bad)?;
    let days = q.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(bad("`days` must be between 1 and 366"));
    }
    let now = now_ms();
    let first = Page::new(q.page.unwrap_or(1), per, u64::MAX / 2);
    let Some((c, rows, total)) =
        fleet_data::control_hosts(&state, now, &id, status.as_deref(), first.offset(), per).await?
    else {
        return Err(not_found(format!("no control `{id}`")));
    };
    let page = Page::new(q.page.unwrap_or(1), per, total);
    let link = |p: u32| {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(s) = &status {
            pairs.push(("status", s.clone()));
        }
        if per != views::PAGE_SIZES.first().copied().unwrap_or(50) {
            pairs.push(("per", per.to_string()));
        }
        if p > 1 {
            pairs.push(("page", p.to_string()));
        }
        views::query_string(&pairs)
    };
    let series = fleet_data::control_trend(&state, now, &id, days).await?;
    let svg = chart::svg(
        &series,
        &format!("{id}: hosts per status per day, last {days} days"),
    );
    let (description, codes) = remediation_of(&state, &id);
    state.site.render(
        "control.html",
        minijinja::context! {
            title => format!("Control {id}"),
            user => user_ctx(&staff),
            control => minijinja::context! {
                id => c.id, title => c.title, description => description,
                score => views::score_text(views::score(&c.counts)),
                applicable => c.counts.values().sum::<u64>(),
            },
            counts => ordered_counts(&c.counts),
            rows => rows.into_iter().map(|r| minijinja::context! {
                host => r.host, status => r.status, at => When::maybe(Some(r.at_ms), now),
            }).collect::<Vec<_>>(),
            page => page,
            prev => page.prev.map(link),
            next => page.next.map(link),
            filter_status => status,
            statuses => views::STATUS_FILTERS,
            svg => svg,
            series => series,
            chart_statuses => chart::STATUSES.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            days => days,
            codes => codes,
        },
    )
}

#[derive(Serialize)]
struct FindingView {
    code: String,
    severity: String,
    subject: String,
    message: String,
    remediation: Option<String>,
    reference: Option<String>,
}

#[derive(Serialize)]
struct CheckView {
    id: String,
    check_type: String,
    status: String,
    summary: String,
    waived_by: Option<String>,
    findings: Vec<FindingView>,
    /// Findings not kept in the latest results, none more severe than the
    /// kept ones (the report has them all).
    findings_omitted: usize,
}

#[derive(Serialize)]
struct HostControl {
    id: String,
    title: String,
    status: String,
    at: When,
    report_id: String,
    checks: Vec<CheckView>,
}

fn checks_view(checks: Vec<crate::fleet_state::CheckBrief>) -> Vec<CheckView> {
    checks
        .into_iter()
        .map(|k| CheckView {
            findings: k
                .findings
                .into_iter()
                .map(|f| {
                    let fix = vigil_rules::checks::remediation::for_code(&k.check_type, &f.code);
                    FindingView {
                        code: f.code,
                        severity: f.severity,
                        subject: f.subject,
                        message: f.message,
                        remediation: fix.map(|r| r.text.to_owned()),
                        reference: fix.and_then(|r| r.reference).map(str::to_owned),
                    }
                })
                .collect(),
            findings_omitted: k.findings_omitted,
            id: k.id,
            check_type: k.check_type,
            status: k.status,
            summary: k.summary,
            waived_by: k.waived_by,
        })
        .collect()
}

fn ms_of(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map_or(0, |t| t.timestamp_millis())
}

async fn host_page(
    State(state): State<Shared>,
    staff: WebStaff,
    Path(host): Path<String>,
) -> Result<Html<String>, PageError> {
    let now = now_ms();
    let Some(h) = fleet_data::host(&state, now, &host).await? else {
        return Err(not_found(format!("no host `{host}`")));
    };
    let latest = fleet_data::host_latest(&state, &host).await?;
    let (policy, roles) = state
        .policy()
        .map(|p| (p.controls, p.control_roles))
        .unwrap_or_default();
    let no_roles = Vec::new();
    let mut controls: Vec<HostControl> = Vec::new();
    let mut not_applicable = Vec::new();
    for l in latest {
        let scope = roles.get(&l.control_id).unwrap_or(&no_roles);
        if !crate::posture::applies(scope, &h.roles) {
            not_applicable.push(minijinja::context! { id => l.control_id, roles => scope });
            continue;
        }
        controls.push(HostControl {
            status: if h.stale { "unknown".into() } else { l.status },
            at: When::at(ms_of(&l.finished_at), now),
            // The published policy's wording, else what the agent sent.
            title: policy
                .iter()
                .find(|(id, _)| *id == l.control_id)
                .map_or(l.title, |(_, t)| t.clone()),
            id: l.control_id,
            report_id: l.report_id,
            checks: checks_view(l.checks),
        });
    }
    // Controls of the policy the host should run but never reported.
    for (id, title) in &policy {
        let scope = roles.get(id).unwrap_or(&no_roles);
        if crate::posture::applies(scope, &h.roles) && !controls.iter().any(|c| &c.id == id) {
            controls.push(HostControl {
                id: id.clone(),
                title: title.clone(),
                status: "unknown".into(),
                at: When {
                    exact: String::new(),
                    ago: "never reported".into(),
                },
                report_id: String::new(),
                checks: Vec::new(),
            });
        }
    }
    views::policy_order(&mut controls, &policy_ids(&state), |c| c.id.as_str());
    let reports = state.store.reports(Some(&host), 10).await?;
    // The host inventory its newest stored report carries.
    let inventory = match reports.first() {
        Some(r) => match state.store.report_body(&r.report_id).await? {
            Some(body) => serde_json::from_str::<vigil_rules::report::Report>(&body)
                .ok()
                .and_then(|r| r.inventory.map(|i| i.rows()))
                .unwrap_or_default(),
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    let reports: Vec<_> = reports
        .iter()
        .map(|r| minijinja::context! {
            id => r.report_id, at => When::at(r.finished_at, now),
            summary => serde_json::from_str::<serde_json::Value>(&r.summary).unwrap_or_default(),
        })
        .collect();
    let counts = {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for c in &controls {
            *m.entry(c.status.clone()).or_default() += 1;
        }
        m
    };
    state.site.render(
        "host.html",
        minijinja::context! {
            title => format!("Host {host}"),
            user => user_ctx(&staff),
            host => host_row(h, now),
            counts => ordered_counts(&counts),
            controls => controls,
            not_applicable => not_applicable,
            reports => reports,
            inventory => inventory,
        },
    )
}

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/", get(overview))
        .route(
            "/reports",
            get(|| async { axum::response::Redirect::to("/") }),
        )
        .route("/reports/hosts", get(host_list))
        .route("/reports/controls/{id}", get(control_page))
        .route("/reports/hosts/{host}", get(host_page))
}
