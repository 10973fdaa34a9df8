//! Policies written by a test on the fly, most often one control holding
//! one check of the type under test.

use std::path::Path;

/// The policy text around `controls` (YAML list items at two spaces):
/// a header with id `test`, version `1`.
pub fn policy_yaml(controls: &str) -> String {
    format!("policy: {{id: test, version: \"1\", title: test}}\ncontrols:\n{controls}")
}

/// One control `control` holding `checks` (list items at six spaces, as
/// [`check_yaml`] writes them).
pub fn control_yaml(control: &str, checks: &str) -> String {
    format!("  - id: {control}\n    title: {control}\n    checks:\n{checks}")
}

/// One check item of a control: `id`, `kind`, an optional `timeout`, and
/// `with` as YAML at any indentation (block lines are re-indented under
/// `with:`, so a flow map such as `{paths: [a]}` or a JSON object works
/// too; nothing is `{}`).
pub fn check_yaml(id: &str, kind: &str, timeout: Option<&str>, with: &str) -> String {
    let mut s = format!("      - id: {id}\n        type: {kind}\n");
    if let Some(t) = timeout {
        s.push_str(&format!("        timeout: {t}\n"));
    }
    s.push_str("        with:");
    let lines: Vec<&str> = with.lines().filter(|l| !l.trim().is_empty()).collect();
    let indent = lines
        .iter()
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    if lines.is_empty() {
        s.push_str(" {}\n");
        return s;
    }
    s.push('\n');
    for l in lines {
        s.push_str("          ");
        s.push_str(&l[indent..]);
        s.push('\n');
    }
    s
}

/// A policy of one control holding one check: what the end-to-end tests of
/// a check type run. Build it with [`single_check_policy`].
#[derive(Debug, Clone)]
pub struct SingleCheckPolicy {
    control: String,
    check: String,
    kind: String,
    timeout: Option<String>,
    with: String,
}

/// Control `control` holding check `check` of type `kind` with the `with`
/// map `with` (see [`check_yaml`] for its forms).
pub fn single_check_policy(
    control: &str,
    check: &str,
    kind: &str,
    with: &str,
) -> SingleCheckPolicy {
    SingleCheckPolicy {
        control: control.into(),
        check: check.into(),
        kind: kind.into(),
        timeout: None,
        with: with.into(),
    }
}

impl SingleCheckPolicy {
    /// The check's `timeout` (the default is the engine's).
    pub fn timeout(mut self, timeout: &str) -> Self {
        self.timeout = Some(timeout.into());
        self
    }

    /// The policy as YAML.
    pub fn yaml(&self) -> String {
        policy_yaml(&control_yaml(
            &self.control,
            &check_yaml(&self.check, &self.kind, self.timeout.as_deref(), &self.with),
        ))
    }

    /// Writes the policy at `path` (making its folder) and returns the path
    /// as a string, ready for `--policy`.
    pub fn write(&self, path: &Path) -> String {
        write_policy(path, &self.yaml())
    }
}

/// Writes `text` at `path`, making its folder; returns the path as a string.
pub fn write_policy(path: &Path, text: &str) -> String {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.to_string_lossy().into_owned()
}
