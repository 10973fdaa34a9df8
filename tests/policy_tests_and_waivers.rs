//! `vigil-agent test` (policy unit tests) and `check --waivers` on real
//! fixture hosts.

use vigil_tests::*;

#[test]
fn the_papyrs_policy_tests_pass_and_a_flipped_expectation_fails() {
    let policy = workspace().join("policies/papyrs.yaml");
    let o = run_agent(&["test", "--policy", policy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains(" passed, 0 failed"), "{}", stdout(&o));

    // The same tests with one expectation flipped.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&workspace().join("policies"), dir.path());
    let tests = dir.path().join("papyrs.test.yaml");
    let text = std::fs::read_to_string(&tests).unwrap();
    let flipped = text.replacen(
        "facts_file: facts/logs-clean.json\n    expect: {status: pass}",
        "facts_file: facts/logs-clean.json\n    expect: {status: fail}",
        1,
    );
    assert_ne!(flipped, text);
    std::fs::write(&tests, flipped).unwrap();
    let o = run_agent(&[
        "test",
        "--policy",
        dir.path().join("papyrs.yaml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(
            "FAIL  logs without secrets pass (SP-3/password-free-logs): expected fail, got pass"
        ),
        "{out}"
    );
    assert!(out.contains(" passed, 1 failed"));

    // A case naming a check the policy lacks is an invalid file.
    std::fs::write(
        &tests,
        text.replacen("check: password-free-logs", "check: nope", 1),
    )
    .unwrap();
    let o = run_agent(&[
        "test",
        "--policy",
        dir.path().join("papyrs.yaml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("policy has no check `SP-3/nope`"),
        "{}",
        stderr(&o)
    );
}

/// What `policies/papyrs.test.yaml` must hold for each check a machine
/// verifies (every type but `attestation`): a case expecting `pass` and a case
/// expecting `fail`, and every failing case naming its finding codes. Returns
/// one line per gap, naming the check.
fn coverage_gaps(
    policy: &vigil_rules::policy::Policy,
    cases: &[vigil_rules::policytest::Case],
) -> Vec<String> {
    use vigil_rules::verdict::CheckStatus;
    let mut gaps = Vec::new();
    for control in &policy.controls {
        for check in &control.checks {
            if check.type_name() == "attestation" {
                continue;
            }
            let of_check: Vec<_> = cases
                .iter()
                .filter(|c| c.control == control.id && c.check == check.id)
                .collect();
            let name = format!("{}/{} ({})", control.id, check.id, check.type_name());
            if !of_check.iter().any(|c| c.status == CheckStatus::Pass) {
                gaps.push(format!("{name}: no case expecting pass"));
            }
            if !of_check.iter().any(|c| c.status == CheckStatus::Fail) {
                gaps.push(format!("{name}: no case expecting fail"));
            }
            for c in of_check.iter().filter(|c| c.status == CheckStatus::Fail) {
                if c.codes.as_ref().is_none_or(|codes| codes.is_empty()) {
                    gaps.push(format!(
                        "{name}: the failing case `{}` names no finding codes",
                        c.name
                    ));
                }
            }
        }
    }
    gaps
}

fn load_cases(
    policy_path: &std::path::Path,
) -> (
    vigil_rules::policy::Policy,
    Vec<vigil_rules::policytest::Case>,
) {
    use vigil_rules::{policy, policytest};
    let policy = policy::parse(
        &std::fs::read(policy_path).unwrap(),
        &policy_path.display().to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let tests = policytest::test_file_for(policy_path);
    let cases = policytest::parse(&std::fs::read_to_string(&tests).unwrap(), &tests, &policy)
        .unwrap_or_else(|e| panic!("{e}"));
    (policy, cases)
}

#[test]
fn every_machine_verified_check_of_papyrs_has_a_passing_and_a_failing_case() {
    let (policy, cases) = load_cases(&workspace().join("policies/papyrs.yaml"));
    let gaps = coverage_gaps(&policy, &cases);
    assert!(
        gaps.is_empty(),
        "policies/papyrs.test.yaml must have a passing and a failing case (with codes) for every check that is not an attestation:\n{}",
        gaps.join("\n")
    );
    // Every case names a check of the policy (`parse` refuses others), so the
    // machine-verified checks are exactly those above; make sure some are.
    assert!(
        policy
            .controls
            .iter()
            .flat_map(|c| &c.checks)
            .filter(|k| k.type_name() != "attestation")
            .count()
            >= 15
    );
}

#[test]
fn the_coverage_rule_names_each_check_without_a_pass_or_fail_case() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        "policy: {id: p, version: '1', title: t}\ncontrols:\n  - id: SP-3\n    title: hashes\n    checks:\n      - {id: shadow, type: password_storage, with: {shadow: /etc/shadow}}\n      - {id: logs, type: log_secrets, with: {paths: [/var/log/*.log]}}\n  - id: SP-9\n    title: physical\n    checks:\n      - {id: dc, type: attestation, with: {by: ops, on: 2026-11-25, valid_for: 365d, evidence: e, statement: s}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("p.test.yaml"),
        "tests:\n  - name: locked passes\n    control: SP-3\n    check: shadow\n    facts: {sources: [{name: /etc/shadow, entries: [{subject: a, place: x, stored: {kind: locked}}]}]}\n    expect: {status: pass}\n  - name: empty fails\n    control: SP-3\n    check: shadow\n    facts: {sources: [{name: /etc/shadow, entries: [{subject: a, place: x, stored: {kind: empty}}]}]}\n    expect: {status: fail}\n",
    )
    .unwrap();
    let (policy, cases) = load_cases(&policy);
    assert_eq!(
        coverage_gaps(&policy, &cases),
        [
            "SP-3/shadow (password_storage): the failing case `empty fails` names no finding codes",
            "SP-3/logs (log_secrets): no case expecting pass",
            "SP-3/logs (log_secrets): no case expecting fail",
        ]
    );
}

/// Whether a check type has a case expecting `pass` and one expecting `fail`.
#[derive(Debug, Default, Clone, Copy)]
struct Tested {
    pass: bool,
    fail: bool,
}

/// What every check type must have besides its code: a docs page
/// `docs/checks/TYPE.md` naming each of its finding codes, a row in the
/// README's table of check types, and policy tests with a passing and a
/// failing case. `types` is what `vigil-agent types --format json` prints,
/// `root` holds README.md and docs/. Returns one line per gap, naming the type.
fn check_type_gaps(
    types: &serde_json::Value,
    root: &std::path::Path,
    tested: &std::collections::BTreeMap<String, Tested>,
) -> Vec<String> {
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
    let mut gaps = Vec::new();
    for t in types.as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let page = format!("docs/checks/{name}.md");
        match std::fs::read_to_string(root.join(&page)) {
            Err(_) => gaps.push(format!("{name}: no docs page `{page}`")),
            Ok(doc) => {
                for code in t["codes"].as_array().unwrap() {
                    let code = code["code"].as_str().unwrap();
                    if !doc.contains(&format!("`{code}`")) {
                        gaps.push(format!("{name}: `{page}` does not name the code `{code}`"));
                    }
                }
            }
        }
        let row = format!("| [`{name}`]({page}) |");
        if !readme.lines().any(|l| l.starts_with(&row)) {
            gaps.push(format!("{name}: no README row `{row} ... |`"));
        }
        let t = tested.get(name).copied().unwrap_or_default();
        if !t.pass {
            gaps.push(format!("{name}: no policy test case expecting pass"));
        }
        if !t.fail {
            gaps.push(format!("{name}: no policy test case expecting fail"));
        }
    }
    gaps
}

/// The check types the policy tests exercise: every `NAME.test.yaml` under
/// `dirs` (recursively), read against its policy `NAME.yaml`.
fn tested_types(dirs: &[std::path::PathBuf]) -> std::collections::BTreeMap<String, Tested> {
    use vigil_rules::verdict::CheckStatus;
    let mut files = Vec::new();
    let mut stack = dirs.to_vec();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".test.yaml") {
                files.push(p);
            }
        }
    }
    let mut tested = std::collections::BTreeMap::<String, Tested>::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let policy_path = file.with_file_name(name.replace(".test.yaml", ".yaml"));
        assert!(
            policy_path.exists(),
            "{}: a policy test file without its policy `{}`",
            file.display(),
            policy_path.display()
        );
        let (policy, cases) = load_cases(&policy_path);
        for c in &cases {
            let kind = policy
                .control(&c.control)
                .and_then(|k| k.checks.iter().find(|k| k.id == c.check))
                .map(|k| k.type_name())
                .unwrap_or_else(|| panic!("{}: case `{}` names no check", file.display(), c.name));
            let t = tested.entry(kind.to_owned()).or_default();
            t.pass |= c.status == CheckStatus::Pass;
            t.fail |= c.status == CheckStatus::Fail;
        }
    }
    tested
}

/// Issue 25: a check type is whole with its docs page, its README row and
/// its policy tests, not only its code.
#[test]
fn every_check_type_has_a_docs_page_a_readme_row_and_policy_tests() {
    let o = run_agent(&["types", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let types: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(types.as_array().unwrap().len() >= 13, "{types}");
    let root = workspace();
    let tested = tested_types(&[root.join("policies"), root.join("tests/data")]);
    let gaps = check_type_gaps(&types, &root, &tested);
    assert!(
        gaps.is_empty(),
        "every check type needs what docs/adding-a-check-type.md lists:\n{}",
        gaps.join("\n")
    );
}

#[test]
fn the_check_type_rule_names_each_missing_page_code_row_and_case() {
    let dir = tempfile::tempdir().unwrap();
    let types = serde_json::json!([
        {"name": "whole", "codes": [{"code": "a"}]},
        {"name": "half", "codes": [{"code": "b"}, {"code": "c"}]},
        {"name": "bare", "codes": []},
    ]);
    std::fs::write(
        dir.path().join("README.md"),
        "| type | verifies |\n|---|---|\n| [`whole`](docs/checks/whole.md) | w |\n| [`half`](docs/checks/other.md) | h |\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("docs/checks")).unwrap();
    std::fs::write(dir.path().join("docs/checks/whole.md"), "- `a`: A\n").unwrap();
    std::fs::write(dir.path().join("docs/checks/half.md"), "- `b`: B, c\n").unwrap();
    let tested = [
        (
            "whole".to_owned(),
            Tested {
                pass: true,
                fail: true,
            },
        ),
        (
            "half".to_owned(),
            Tested {
                pass: true,
                fail: false,
            },
        ),
    ]
    .into();
    assert_eq!(
        check_type_gaps(&types, dir.path(), &tested),
        [
            "half: `docs/checks/half.md` does not name the code `c`",
            "half: no README row `| [`half`](docs/checks/half.md) | ... |`",
            "half: no policy test case expecting fail",
            "bare: no docs page `docs/checks/bare.md`",
            "bare: no README row `| [`bare`](docs/checks/bare.md) | ... |`",
            "bare: no policy test case expecting pass",
            "bare: no policy test case expecting fail",
        ]
    );
    // The papyrs policy tests exercise every type of the papyrs policy.
    let tested = tested_types(&[workspace().join("policies")]);
    assert!(
        tested["log_secrets"].pass && tested["log_secrets"].fail,
        "{tested:?}"
    );
}

fn waivers_file(dir: &std::path::Path, control: &str, expires: &str) -> String {
    let p = dir.join("waivers.yaml");
    std::fs::write(
        &p,
        format!(
            "waivers:\n  - id: W-1\n    control: {control}\n    hosts: [\"*\"]\n    justification: legacy sshd until the migration\n    approved_by: ciso@papyrs.example\n    approved_on: 2026-01-01\n    expires: {expires}\n"
        ),
    )
    .unwrap();
    p.to_string_lossy().into_owned()
}

fn check_with_waivers(case: &str, waivers: &str) -> std::process::Output {
    let c = workspace().join("tests/data/hosts").join(case);
    agent_check(c.join("policy.yaml"))
        .root(c.join("root"))
        .args(["--waivers", waivers])
        .output()
}

#[test]
fn waivers_accept_a_failure_until_they_expire_and_never_hide_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // In date: the failing SP-4 becomes waived, the check keeps its findings, exit 0.
    let o = check_with_waivers("weak-sshd", &waivers_file(dir.path(), "SP-4", "2099-12-31"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report_json(&o);
    let sp4 = r["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "SP-4")
        .unwrap();
    assert_eq!(sp4["status"], "waived");
    assert_eq!(sp4["checks"][0]["status"], "fail");
    assert_eq!(sp4["checks"][0]["waived_by"], "W-1");
    assert!(!codes(&sp4["checks"][0]).is_empty());
    assert_eq!(r["summary"]["waived"], 1);

    // Expired yesterday: the control fails again with `waiver_expired`.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let o = check_with_waivers("weak-sshd", &waivers_file(dir.path(), "SP-4", &yesterday));
    assert_eq!(o.status.code(), Some(1));
    let r = report_json(&o);
    let c = check_of(&r, "SP-4", "ssh");
    assert!(codes(c).contains(&"waiver_expired".to_owned()), "{c}");
    assert!(stderr(&o).contains("waiver `W-1` has expired"));

    // An error is never waived.
    let o = check_with_waivers(
        "unreadable",
        &waivers_file(dir.path(), "SP-3", "2099-12-31"),
    );
    assert_eq!(o.status.code(), Some(1));
    let r = report_json(&o);
    assert_eq!(
        r["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "SP-3")
            .unwrap()["status"],
        "error"
    );

    // A waiver for a control the policy lacks is a located error; nothing runs.
    let w = waivers_file(dir.path(), "SP-99", "2099-12-31");
    let o = check_with_waivers("weak-sshd", &w);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("{w}:3:14: waiver `W-1` names no control")),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty());
}
