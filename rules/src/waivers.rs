//! Waivers: accepted exceptions with a scope, a justification, an approver and
//! an expiry.
//!
//! A failing check covered by a waiver in date makes its control `waived`; the
//! report keeps the underlying status, findings and evidence, and the waiver's
//! id. A waiver never turns `error` into anything else. An expired waiver is
//! gone: the control fails again, with a `waiver_expired` finding naming it.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::policy::{Diagnostics, Policy};
use crate::report::{self, ControlStatus, Report};
use crate::verdict::{CheckStatus, Finding, Severity};
use crate::yaml::{self, Diag, Loc};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    waivers: Vec<RawWaiver>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiver {
    id: String,
    control: String,
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    justification: String,
    approved_by: String,
    #[serde(with = "crate::duration::date")]
    approved_on: NaiveDate,
    #[serde(with = "crate::duration::date")]
    expires: NaiveDate,
}

/// A validated waiver. Serialized, it has the shape of one entry of a
/// waivers file (how the reporter hands waivers to agents).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Waiver {
    pub id: String,
    pub control: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// Host name globs (`*` and `?`).
    pub hosts: Vec<String>,
    pub roles: Vec<String>,
    pub justification: String,
    pub approved_by: String,
    #[serde(with = "crate::duration::date")]
    pub approved_on: NaiveDate,
    #[serde(with = "crate::duration::date")]
    pub expires: NaiveDate,
}

impl Waiver {
    /// Whether this waiver's scope takes in a host with these roles.
    pub fn applies_to(&self, host: &str, roles: &[String]) -> bool {
        self.hosts.iter().any(|g| glob_match(g, host))
            || self.roles.iter().any(|r| roles.contains(r))
    }

    pub fn in_date(&self, today: NaiveDate) -> bool {
        self.approved_on <= today && today <= self.expires
    }
}

/// `*` matches any run of characters, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            Some(c) if *c == '?' || Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

/// Reads and validates a waivers file against the policy it waives.
pub fn parse(text: &str, file: &str, policy: &Policy) -> Result<Vec<Waiver>, Diagnostics> {
    parse_checked(text, file, Some(policy))
}

/// Like [`parse`]; without a policy the control and check names are not
/// checked (waivers handed out for a fleet whose hosts run several policies:
/// a waiver for a control a host does not run never matches there).
pub fn parse_checked(
    text: &str,
    file: &str,
    policy: Option<&Policy>,
) -> Result<Vec<Waiver>, Diagnostics> {
    let fail = |diags| Diagnostics {
        file: file.to_owned(),
        diags,
    };
    let root = yaml::parse(text).map_err(fail)?;
    let raw: RawFile = yaml::from_node(&root).map_err(fail)?;
    let items = root.get("waivers").and_then(|n| n.as_seq()).unwrap_or(&[]);
    let mut diags = Vec::new();
    let mut out: Vec<Waiver> = Vec::new();
    for (i, w) in raw.waivers.into_iter().enumerate() {
        let node = items.get(i);
        let at = |key: &str| {
            node.and_then(|n| n.get(key))
                .or(node)
                .map_or(Loc { line: 1, col: 1 }, |n| n.loc)
        };
        if out.iter().any(|o| o.id == w.id) {
            diags.push(Diag::new(
                at("id"),
                format!("duplicate waiver id `{}`", w.id),
            ));
        }
        match policy.map(|p| (p, p.control(&w.control))) {
            None => {}
            Some((policy, None)) => diags.push(Diag::new(
                at("control"),
                format!(
                    "waiver `{}` names no control of policy `{}`: `{}`",
                    w.id, policy.meta.id, w.control
                ),
            )),
            Some((_, Some(c))) => {
                // A role scope the control (or the named check) never runs on
                // would match nothing: say so rather than let it sit unused.
                let scope = match w
                    .check
                    .as_ref()
                    .and_then(|k| c.checks.iter().find(|x| &x.id == k))
                {
                    Some(k) if !k.roles.is_empty() => k.roles.clone(),
                    _ => c.effective_roles(),
                };
                if !w.roles.is_empty()
                    && !scope.is_empty()
                    && !w.roles.iter().any(|r| scope.contains(r))
                {
                    diags.push(Diag::new(
                        at("roles"),
                        format!(
                            "waiver `{}`: roles {} share none with where `{}` applies ({}), so it would never match",
                            w.id,
                            w.roles.join(", "),
                            w.check.as_ref().map_or(w.control.clone(), |k| format!("{}/{k}", w.control)),
                            scope.join(", ")
                        ),
                    ));
                }
                if let Some(check) = &w.check {
                    if !c.checks.iter().any(|k| &k.id == check) {
                        diags.push(Diag::new(
                            at("check"),
                            format!(
                                "waiver `{}`: control `{}` has no check `{check}`",
                                w.id, w.control
                            ),
                        ));
                    }
                }
            }
        }
        if w.hosts.is_empty() && w.roles.is_empty() {
            diags.push(Diag::new(
                at("id"),
                format!(
                    "waiver `{}` needs `hosts` or `roles` (write `hosts: [\"*\"]` for every host)",
                    w.id
                ),
            ));
        }
        if w.justification.trim().is_empty() {
            diags.push(Diag::new(
                at("justification"),
                format!("waiver `{}` needs a justification", w.id),
            ));
        }
        if w.approved_by.trim().is_empty() {
            diags.push(Diag::new(
                at("approved_by"),
                format!("waiver `{}` needs an approver", w.id),
            ));
        }
        if w.expires < w.approved_on {
            diags.push(Diag::new(
                at("expires"),
                format!("waiver `{}` expires before it was approved", w.id),
            ));
        }
        out.push(Waiver {
            id: w.id,
            control: w.control,
            check: w.check,
            hosts: w.hosts,
            roles: w.roles,
            justification: w.justification,
            approved_by: w.approved_by,
            approved_on: w.approved_on,
            expires: w.expires,
        });
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        diags.sort_by_key(|d| d.loc);
        Err(fail(diags))
    }
}

/// What applying waivers did, for the caller to tell the user.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// Waivers that made a failing check acceptable.
    pub used: Vec<String>,
    /// Waivers in scope that matched no failing check.
    pub unused: Vec<String>,
    /// Expired waivers that would have covered a failing check.
    pub expired: Vec<String>,
}

/// Applies waivers to a report of `host` (with `roles`) on `today`.
pub fn apply(report: &mut Report, waivers: &[Waiver], today: NaiveDate) -> Applied {
    let mut applied = Applied::default();
    let host = report.agent.host.clone();
    let roles = report.agent.roles.clone();
    let scoped: Vec<&Waiver> = waivers
        .iter()
        .filter(|w| w.applies_to(&host, &roles))
        .collect();
    for control in &mut report.controls {
        let mut all_failures_waived = true;
        let mut any_failure = false;
        for check in &mut control.checks {
            if check.status != CheckStatus::Fail {
                continue;
            }
            any_failure = true;
            let covering: Vec<&&Waiver> = scoped
                .iter()
                .filter(|w| {
                    w.control == control.id && w.check.as_ref().is_none_or(|c| *c == check.id)
                })
                .collect();
            match covering.iter().find(|w| w.in_date(today)) {
                Some(w) => {
                    check.waived_by = Some(w.id.clone());
                    if !applied.used.contains(&w.id) {
                        applied.used.push(w.id.clone());
                    }
                }
                None => {
                    all_failures_waived = false;
                    for w in covering.iter().filter(|w| w.expires < today) {
                        check.findings.push(Finding {
                            code: "waiver_expired".into(),
                            severity: Severity::Medium,
                            subject: w.id.clone(),
                            message: format!(
                                "waiver `{}` ({}) expired on {}; approved by {}",
                                w.id, w.justification, w.expires, w.approved_by
                            ),
                            location: None,
                            excerpt: None,
                            remediation: None,
                        });
                        if !applied.expired.contains(&w.id) {
                            applied.expired.push(w.id.clone());
                        }
                    }
                }
            }
        }
        let computed = report::control_status(&control.checks);
        // Only a control that fails solely through waived checks becomes waived:
        // an error stays an error.
        control.status = if computed == ControlStatus::Fail && any_failure && all_failures_waived {
            let errors = control
                .checks
                .iter()
                .any(|k| k.status == CheckStatus::Error);
            if errors {
                ControlStatus::Error
            } else {
                ControlStatus::Waived
            }
        } else {
            computed
        };
    }
    for w in scoped {
        if !applied.used.contains(&w.id) && !applied.expired.contains(&w.id) {
            applied.unused.push(w.id.clone());
        }
    }
    report.summary = report::summarize(&report.controls);
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::check;
    use crate::report::{AgentInfo, ControlReport, PolicyRef};

    const POLICY: &str = "policy: {id: p, version: '1', title: t}\ncontrols:\n  - id: SP-6\n    title: patches\n    checks:\n      - {id: advisories, type: attestation, with: {by: a, on: 2026-01-01, evidence: e, valid_for: 1d}}\n      - {id: other, type: attestation, with: {by: a, on: 2026-01-01, evidence: e, valid_for: 1d}}\n";

    fn policy() -> Policy {
        crate::policy::parse(POLICY.as_bytes(), "p.yaml").unwrap()
    }

    const WAIVERS: &str = "waivers:\n  - id: W-2026-014\n    control: SP-6\n    check: advisories\n    hosts: [\"legacy-*\"]\n    justification: vendor kernel pinned until the 2027-01 migration\n    approved_by: ciso@papyrs.example\n    approved_on: 2026-11-20\n    expires: 2027-01-31\n";

    #[test]
    fn a_role_scope_outside_the_control_s_roles_is_a_located_error() {
        let scoped = POLICY.replace(
            "    title: patches\n",
            "    title: patches\n    roles: [app, db]\n",
        );
        let p = crate::policy::parse(scoped.as_bytes(), "p.yaml").unwrap();
        let w = WAIVERS.replace("hosts: [\"legacy-*\"]", "roles: [backup]");
        let e = parse(&w, "w.yaml", &p).unwrap_err().to_string();
        assert!(
            e.starts_with("w.yaml:5:12: waiver `W-2026-014`: roles backup share none with where `SP-6/advisories` applies (app, db)"),
            "{e}"
        );
        let w = WAIVERS.replace("hosts: [\"legacy-*\"]", "roles: [db]");
        assert!(parse(&w, "w.yaml", &p).is_ok());
    }

    fn report(host: &str, statuses: &[(&str, CheckStatus)]) -> Report {
        let checks: Vec<_> = statuses
            .iter()
            .map(|(id, s)| {
                let mut c = check("patch_level", *s);
                c.id = (*id).into();
                c
            })
            .collect();
        let controls = vec![ControlReport {
            id: "SP-6".into(),
            title: "t".into(),
            status: report::control_status(&checks),
            source: None,
            checks,
        }];
        let t = chrono::Utc::now();
        Report {
            schema: report::SCHEMA.into(),
            report_id: "x".into(),
            agent: AgentInfo {
                host: host.into(),
                version: "0".into(),
                roles: vec![],
                spool_dropped: None,
                policy_refused: None,
            },
            policy: PolicyRef {
                id: "p".into(),
                version: "1".into(),
                sha256: "0".into(),
            },
            started_at: t,
            finished_at: t,
            summary: report::summarize(&controls),
            controls,
            inventory: None,
        }
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_waiver_in_date_makes_the_control_waived_and_keeps_the_evidence() {
        let w = parse(WAIVERS, "w.yaml", &policy()).unwrap();
        let mut r = report(
            "legacy-db-1",
            &[
                ("advisories", CheckStatus::Fail),
                ("other", CheckStatus::Pass),
            ],
        );
        let a = apply(&mut r, &w, day("2026-12-01"));
        assert_eq!(r.controls[0].status, ControlStatus::Waived);
        assert_eq!(
            r.controls[0].checks[0].status,
            CheckStatus::Fail,
            "the underlying status stays"
        );
        assert_eq!(
            r.controls[0].checks[0].waived_by.as_deref(),
            Some("W-2026-014")
        );
        assert_eq!(r.summary.waived, 1);
        assert!(r.all_ok());
        assert_eq!(a.used, ["W-2026-014"]);
    }

    #[test]
    fn an_expired_waiver_fails_with_waiver_expired() {
        let w = parse(WAIVERS, "w.yaml", &policy()).unwrap();
        let mut r = report("legacy-db-1", &[("advisories", CheckStatus::Fail)]);
        let a = apply(&mut r, &w, day("2027-02-01"));
        assert_eq!(r.controls[0].status, ControlStatus::Fail);
        assert_eq!(
            r.controls[0].checks[0].findings.last().unwrap().code,
            "waiver_expired"
        );
        assert_eq!(a.expired, ["W-2026-014"]);
        assert!(!r.all_ok());
    }

    #[test]
    fn a_waiver_never_hides_an_error_or_another_check_or_host() {
        let w = parse(WAIVERS, "w.yaml", &policy()).unwrap();
        let mut r = report(
            "legacy-db-1",
            &[
                ("advisories", CheckStatus::Fail),
                ("other", CheckStatus::Error),
            ],
        );
        apply(&mut r, &w, day("2026-12-01"));
        assert_eq!(r.controls[0].status, ControlStatus::Error);
        let mut r = report(
            "legacy-db-1",
            &[
                ("advisories", CheckStatus::Fail),
                ("other", CheckStatus::Fail),
            ],
        );
        apply(&mut r, &w, day("2026-12-01"));
        assert_eq!(
            r.controls[0].status,
            ControlStatus::Fail,
            "`other` is not waived"
        );
        let mut r = report("web-1", &[("advisories", CheckStatus::Fail)]);
        let a = apply(&mut r, &w, day("2026-12-01"));
        assert_eq!(
            r.controls[0].status,
            ControlStatus::Fail,
            "web-1 is not in scope"
        );
        assert!(a.used.is_empty() && a.unused.is_empty());
    }

    #[test]
    fn unknown_controls_and_checks_are_located_errors() {
        let bad = WAIVERS.replace("control: SP-6", "control: SP-99");
        let e = parse(&bad, "w.yaml", &policy()).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "w.yaml:3:14: waiver `W-2026-014` names no control of policy `p`: `SP-99`"
            ),
            "{e}"
        );
        let bad = WAIVERS.replace("check: advisories", "check: kernel");
        let e = parse(&bad, "w.yaml", &policy()).unwrap_err().to_string();
        assert!(
            e.starts_with("w.yaml:4:12: waiver `W-2026-014`: control `SP-6` has no check `kernel`"),
            "{e}"
        );
        let bad = WAIVERS
            .replace("    hosts: [\"legacy-*\"]\n", "")
            .replace("justification: vendor", "justificaton: vendor");
        let e = parse(&bad, "w.yaml", &policy()).unwrap_err().to_string();
        assert!(e.contains("unknown key `justificaton`"), "{e}");
    }

    #[test]
    fn globs() {
        assert!(glob_match("legacy-*", "legacy-db-1"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("web-?", "web-1"));
        assert!(!glob_match("web-?", "web-10"));
        assert!(!glob_match("legacy-*", "web-1"));
        assert!(glob_match("*-db-*", "legacy-db-1"));
    }
}
