//! Policy unit tests: `papyrs.yaml` → `papyrs.test.yaml`.
//!
//! Each case names a control and check, gives the facts as a host would
//! produce them (inline, or `facts_file` relative to the test file: JSON or
//! YAML, as `vigil-agent facts` prints them), and expects a status and,
//! optionally, finding codes. Judging is pure, so a threshold can be tried
//! before it pages anyone.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::checks::{Facts, JudgeCtx};
use crate::policy::{Diagnostics, Policy};
use crate::verdict::CheckStatus;
use crate::yaml::{self, Diag, Loc, Node};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    status: CheckStatus,
    #[serde(default)]
    codes: Option<Vec<String>>,
}

/// One validated case.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub control: String,
    pub check: String,
    pub now: DateTime<Utc>,
    pub host: String,
    pub facts: Facts,
    pub status: CheckStatus,
    /// The codes expected, as a set; `None` when not checked.
    pub codes: Option<Vec<String>>,
    pub loc: Loc,
}

/// What a case gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub name: String,
    pub passed: bool,
    pub got_status: CheckStatus,
    pub got_codes: Vec<String>,
    pub detail: String,
}

/// The test file beside a policy: `x.yaml` → `x.test.yaml`.
pub fn test_file_for(policy: &Path) -> std::path::PathBuf {
    let stem = policy
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    policy.with_file_name(format!("{stem}.test.yaml"))
}

/// Reads and validates a test file against its policy.
pub fn parse(text: &str, file: &Path, policy: &Policy) -> Result<Vec<Case>, Diagnostics> {
    let name = file.display().to_string();
    let fail = |diags: Vec<Diag>| Diagnostics {
        file: name.clone(),
        diags,
    };
    let root = yaml::parse(text).map_err(fail)?;
    let mut diags = Vec::new();
    let items = match root.get("tests").and_then(Node::as_seq) {
        Some(items) => items,
        None => {
            return Err(fail(vec![Diag::new(
                root.loc,
                "the test file needs a `tests` list",
            )]))
        }
    };
    if let Some(map) = root.as_map() {
        for (k, _) in map {
            if k.as_scalar() != Some("tests") {
                diags.push(Diag::new(
                    k.loc,
                    format!(
                        "unknown key `{}` (expected: tests)",
                        k.as_scalar().unwrap_or("")
                    ),
                ));
            }
        }
    }
    let mut cases = Vec::new();
    for item in items {
        const KEYS: &[&str] = &[
            "name",
            "control",
            "check",
            "now",
            "host",
            "facts",
            "facts_file",
            "expect",
        ];
        let Some(map) = item.as_map() else {
            diags.push(Diag::new(item.loc, "a test case must be a mapping"));
            continue;
        };
        for (k, _) in map {
            let key = k.as_scalar().unwrap_or("");
            if !KEYS.contains(&key) {
                diags.push(Diag::new(
                    k.loc,
                    format!(
                        "unknown key `{key}` in a test case (expected one of: {})",
                        KEYS.join(", ")
                    ),
                ));
            }
        }
        let text = |key: &str| item.get(key).and_then(Node::as_scalar).map(str::to_owned);
        let (Some(case_name), Some(control), Some(check)) =
            (text("name"), text("control"), text("check"))
        else {
            diags.push(Diag::new(
                item.loc,
                "a test case needs `name`, `control` and `check`",
            ));
            continue;
        };
        let Some(ty) = policy
            .control(&control)
            .and_then(|c| c.checks.iter().find(|k| k.id == check))
            .map(|k| k.type_name())
        else {
            let at = item.get("check").map_or(item.loc, |n| n.loc);
            diags.push(Diag::new(
                at,
                format!("`{case_name}`: policy has no check `{control}/{check}`"),
            ));
            continue;
        };
        let now = match text("now") {
            None => Utc::now(),
            Some(s) => match DateTime::parse_from_rfc3339(&s) {
                Ok(t) => t.to_utc(),
                Err(_) => {
                    diags.push(Diag::new(
                        item.get("now").map_or(item.loc, |n| n.loc),
                        format!("`now`: `{s}` is not an RFC 3339 time"),
                    ));
                    continue;
                }
            },
        };
        let loaded;
        let facts_node = match (item.get("facts"), text("facts_file")) {
            (Some(n), None) => n,
            (None, Some(f)) => {
                let path = file.parent().unwrap_or(Path::new(".")).join(&f);
                let at = item.get("facts_file").map_or(item.loc, |n| n.loc);
                let parsed = std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| {
                        yaml::parse(&t).map_err(|d| {
                            d.into_iter()
                                .map(|d| format!("{}:{}: {}", d.loc.line, d.loc.col, d.message))
                                .collect::<Vec<_>>()
                                .join("; ")
                        })
                    });
                match parsed {
                    Ok(n) => {
                        loaded = n;
                        &loaded
                    }
                    Err(e) => {
                        diags.push(Diag::new(
                            at,
                            format!("`facts_file` `{}`: {e}", path.display()),
                        ));
                        continue;
                    }
                }
            }
            _ => {
                diags.push(Diag::new(
                    item.loc,
                    format!("`{case_name}`: give exactly one of `facts` and `facts_file`"),
                ));
                continue;
            }
        };
        let facts = match Facts::parse(ty, facts_node) {
            Some(Ok(f)) => f,
            Some(Err(ds)) => {
                diags.extend(ds.into_iter().map(|d| {
                    Diag::new(d.loc, format!("`{case_name}`: `{ty}` facts: {}", d.message))
                }));
                continue;
            }
            None => continue,
        };
        let expect: RawExpect = match item.get("expect").map(yaml::from_node) {
            Some(Ok(e)) => e,
            Some(Err(ds)) => {
                diags.extend(ds);
                continue;
            }
            None => {
                diags.push(Diag::new(
                    item.loc,
                    format!("`{case_name}` has no `expect`"),
                ));
                continue;
            }
        };
        cases.push(Case {
            name: case_name,
            control,
            check,
            now,
            host: text("host").unwrap_or_else(|| "test-host".into()),
            facts,
            status: expect.status,
            codes: expect.codes,
            loc: item.loc,
        });
    }
    if diags.is_empty() {
        Ok(cases)
    } else {
        diags.sort_by_key(|d| d.loc);
        Err(fail(diags))
    }
}

/// Judges one case.
pub fn run(case: &Case, policy: &Policy) -> Outcome {
    let check = policy
        .control(&case.control)
        .and_then(|c| c.checks.iter().find(|k| k.id == case.check));
    let Some(check) = check else {
        return Outcome {
            name: case.name.clone(),
            passed: false,
            got_status: CheckStatus::Error,
            got_codes: vec![],
            detail: "no such check".into(),
        };
    };
    let v = check.spec.judge(
        &case.facts,
        &JudgeCtx {
            now: case.now,
            host: case.host.clone(),
        },
    );
    let mut got: Vec<String> = v.findings.iter().map(|f| f.code.clone()).collect();
    got.sort();
    got.dedup();
    let codes_ok = case.codes.as_ref().is_none_or(|want| {
        let mut w = want.clone();
        w.sort();
        w.dedup();
        w == got
    });
    let passed = v.status == case.status && codes_ok;
    let detail = if passed {
        String::new()
    } else {
        format!(
            "expected {}{}, got {} with codes [{}]: {}",
            case.status.as_str(),
            case.codes
                .as_ref()
                .map(|c| format!(" with codes [{}]", c.join(", ")))
                .unwrap_or_default(),
            v.status.as_str(),
            got.join(", "),
            v.summary
        )
    };
    Outcome {
        name: case.name.clone(),
        passed,
        got_status: v.status,
        got_codes: got,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "policy: {id: p, version: '1', title: t}\ncontrols:\n  - id: SP-3\n    title: hashes\n    checks:\n      - {id: shadow, type: password_storage, with: {shadow: /etc/shadow}}\n";

    #[test]
    fn cases_pass_fail_and_are_located() {
        let policy = crate::policy::parse(POLICY.as_bytes(), "p.yaml").unwrap();
        let text = r#"
tests:
  - name: md5 fails
    control: SP-3
    check: shadow
    facts:
      sources:
        - name: /etc/shadow
          entries:
            - {subject: bob, place: "shadow:1", stored: {kind: hash, scheme: md5_crypt, salted: true}}
    expect: {status: fail, codes: [weak_scheme]}
  - name: flipped expectation
    control: SP-3
    check: shadow
    facts: {sources: [{name: /etc/shadow, entries: [{subject: a, place: "x", stored: {kind: locked}}]}]}
    expect: {status: fail}
"#;
        let cases = parse(text, Path::new("p.test.yaml"), &policy).unwrap();
        assert_eq!(cases.len(), 2);
        let a = run(&cases[0], &policy);
        assert!(a.passed, "{a:?}");
        let b = run(&cases[1], &policy);
        assert!(!b.passed);
        assert!(
            b.detail.starts_with("expected fail, got pass"),
            "{}",
            b.detail
        );

        let bad = text.replace(
            "check: shadow\n    facts:\n      sources",
            "check: shadoww\n    facts:\n      sources",
        );
        let e = parse(&bad, Path::new("p.test.yaml"), &policy)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.test.yaml:5:12: `md5 fails`: policy has no check `SP-3/shadoww`"),
            "{e}"
        );
    }
}
