//! The policy model and its loader.
//!
//! A policy file is parsed into located [`Node`]s, then validated into a
//! [`Policy`], the only type the engine accepts. Validation collects every
//! problem with its line and column instead of stopping at the first.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::checks::{CheckSpec, TYPE_NAMES};
use crate::duration::PolicyDuration;
use crate::yaml::{self, Diag, Loc, Node, NodeKind};

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub meta: PolicyMeta,
    pub controls: Vec<Control>,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyMeta {
    pub id: String,
    pub version: String,
    pub title: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Control {
    pub id: String,
    pub title: String,
    /// Where the control comes from in the written policy.
    pub source: Option<String>,
    pub description: Option<String>,
    /// The host roles this control applies to; empty: every host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    pub checks: Vec<Check>,
    /// Requirements of control frameworks this control satisfies, by
    /// framework (one of [`FRAMEWORKS`]): `iso27001: [A.8.24]`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub frameworks: BTreeMap<String, Vec<String>>,
}

/// The framework names a control's `frameworks` may use.
pub const FRAMEWORKS: &[&str] = &["iso27001", "soc2", "cis_debian", "nist_800_53", "pci_dss"];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub id: String,
    pub every: Option<PolicyDuration>,
    pub timeout: Option<PolicyDuration>,
    /// Narrows the control's roles for this check (one firewall port list per
    /// role, say); empty: every host the control applies to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    pub spec: CheckSpec,
    #[serde(skip)]
    pub loc: Loc,
}

impl Check {
    pub fn type_name(&self) -> &'static str {
        self.spec.type_name()
    }

    /// Whether a host with `host_roles` runs this check. A host that declares
    /// no role runs everything (`check` with no `--role` and no config).
    pub fn applies_to(&self, host_roles: &[String]) -> bool {
        roles_match(&self.roles, host_roles)
    }
}

/// `scope` empty takes in every host; an empty `host_roles` is in every scope.
pub fn roles_match(scope: &[String], host_roles: &[String]) -> bool {
    scope.is_empty() || host_roles.is_empty() || scope.iter().any(|r| host_roles.contains(r))
}

impl Control {
    /// The roles this control applies to, empty for every host: its own
    /// `roles`, else (when every check is scoped) the union of its checks'.
    pub fn effective_roles(&self) -> Vec<String> {
        if !self.roles.is_empty() {
            return self.roles.clone();
        }
        if self.checks.iter().any(|c| c.roles.is_empty()) {
            return Vec::new();
        }
        let mut all: Vec<String> = Vec::new();
        for r in self.checks.iter().flat_map(|c| &c.roles) {
            if !all.contains(r) {
                all.push(r.clone());
            }
        }
        all
    }

    /// Whether a host with `host_roles` runs this control (at least one check).
    pub fn applies_to(&self, host_roles: &[String]) -> bool {
        roles_match(&self.roles, host_roles) && self.checks.iter().any(|c| c.applies_to(host_roles))
    }

    /// The checks a host with `host_roles` runs, in policy order.
    pub fn checks_for<'a>(&'a self, host_roles: &'a [String]) -> impl Iterator<Item = &'a Check> {
        self.checks.iter().filter(move |c| c.applies_to(host_roles))
    }
}

impl Policy {
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.id == id)
    }

    /// Every role some control or check names, sorted.
    pub fn roles(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .controls
            .iter()
            .flat_map(|c| c.roles.iter().chain(c.checks.iter().flat_map(|k| &k.roles)))
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Problems found in one file, each `FILE:LINE:COLUMN: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    pub file: String,
    pub diags: Vec<Diag>,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diags.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, d.loc.line, d.loc.col, d.message
            )?;
        }
        Ok(())
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Reads and validates a policy file.
pub fn load(path: &Path) -> Result<Policy, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&bytes, &path.display().to_string()).map_err(LoadError::Invalid)
}

/// Validates policy text; `file` names it in diagnostics.
pub fn parse(bytes: &[u8], file: &str) -> Result<Policy, Diagnostics> {
    let fail = |diags: Vec<Diag>| Diagnostics {
        file: file.to_owned(),
        diags,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        fail(vec![Diag::new(
            Loc { line: 1, col: 1 },
            format!(
                "the file is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )])
    })?;
    let root = yaml::parse(text).map_err(fail)?;
    let mut v = Validator::default();
    let policy = v.policy(&root, hex::encode(Sha256::digest(bytes)));
    v.diags.sort_by_key(|d| d.loc);
    match policy {
        Some(p) if v.diags.is_empty() => Ok(p),
        _ => Err(fail(v.diags)),
    }
}

#[derive(Default)]
struct Validator {
    diags: Vec<Diag>,
}

/// The keys of one mapping, checked against what is allowed.
struct Fields<'a> {
    node: &'a Node,
    map: &'a [(Node, Node)],
}

impl Validator {
    fn err(&mut self, loc: Loc, msg: impl Into<String>) {
        self.diags.push(Diag::new(loc, msg));
    }

    fn mapping<'a>(&mut self, node: &'a Node, what: &str, allowed: &[&str]) -> Option<Fields<'a>> {
        let Some(map) = node.as_map() else {
            self.err(
                node.loc,
                format!("{what} must be a mapping, found {}", node.describe()),
            );
            return None;
        };
        for (k, _) in map {
            let key = k.as_scalar().unwrap_or("");
            if !allowed.contains(&key) {
                self.err(
                    k.loc,
                    format!(
                        "unknown key `{key}` in {what} (expected one of: {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
        Some(Fields { node, map })
    }

    fn get<'a>(f: &Fields<'a>, key: &str) -> Option<&'a Node> {
        f.map
            .iter()
            .find(|(k, _)| k.as_scalar() == Some(key))
            .map(|(_, v)| v)
    }

    fn text(&mut self, f: &Fields<'_>, key: &str, what: &str, required: bool) -> Option<String> {
        match Self::get(f, key) {
            None
            | Some(Node {
                kind: NodeKind::Null,
                ..
            }) if required => {
                let loc = Self::get(f, key).map_or(f.node.loc, |n| n.loc);
                self.err(loc, format!("{what} is missing `{key}`"));
                None
            }
            None
            | Some(Node {
                kind: NodeKind::Null,
                ..
            }) => None,
            Some(n) => match n.as_scalar() {
                Some(s) if s.trim().is_empty() && required => {
                    self.err(n.loc, format!("`{key}` must not be empty"));
                    None
                }
                Some(s) => Some(s.to_owned()),
                None => {
                    self.err(
                        n.loc,
                        format!("`{key}` must be text, found {}", n.describe()),
                    );
                    None
                }
            },
        }
    }

    fn ident(&mut self, f: &Fields<'_>, key: &str, what: &str) -> Option<(String, Loc)> {
        let s = self.text(f, key, what, true)?;
        let loc = Self::get(f, key).map_or(f.node.loc, |n| n.loc);
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            self.err(
                loc,
                format!("`{s}` is not a valid id (use letters, digits, `-`, `_` and `.`)"),
            );
            return None;
        }
        Some((s, loc))
    }

    /// `roles: [ROLE, …]`: a non-empty list of distinct role names.
    fn roles(&mut self, f: &Fields<'_>, what: &str) -> Option<Vec<(String, Loc)>> {
        let n = Self::get(f, "roles")?;
        let Some(items) = n.as_seq() else {
            self.err(
                n.loc,
                format!(
                    "`roles` of {what} must be a list of role names like `[app, db]`, found {}",
                    n.describe()
                ),
            );
            return None;
        };
        if items.is_empty() {
            self.err(
                n.loc,
                format!("`roles` of {what} is empty, so it would apply to no host; remove the key to apply to every host"),
            );
            return None;
        }
        let mut out: Vec<(String, Loc)> = Vec::new();
        let mut ok = true;
        for item in items {
            match item.as_scalar() {
                Some(r)
                    if !r.is_empty()
                        && r.chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
                {
                    if out.iter().any(|(o, _)| o == r) {
                        self.err(item.loc, format!("role `{r}` is listed twice in {what}"));
                        ok = false;
                    } else {
                        out.push((r.to_owned(), item.loc));
                    }
                }
                Some(r) => {
                    self.err(
                        item.loc,
                        format!("`{r}` is not a valid role name (use letters, digits, `-`, `_` and `.`)"),
                    );
                    ok = false;
                }
                None => {
                    self.err(
                        item.loc,
                        format!("a role must be a name, found {}", item.describe()),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn duration(&mut self, f: &Fields<'_>, key: &str) -> Option<PolicyDuration> {
        let n = Self::get(f, key)?;
        match n.as_scalar().map(PolicyDuration::parse) {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                self.err(n.loc, format!("`{key}`: {e}"));
                None
            }
            None => {
                self.err(
                    n.loc,
                    format!(
                        "`{key}` must be a duration like `1h`, found {}",
                        n.describe()
                    ),
                );
                None
            }
        }
    }

    fn policy(&mut self, root: &Node, sha256: String) -> Option<Policy> {
        if root.kind == NodeKind::Null {
            self.err(root.loc, "the policy file is empty");
            return None;
        }
        let top = self.mapping(root, "the policy file", &["policy", "controls"])?;
        let meta = match Self::get(&top, "policy") {
            Some(n) => self.meta(n),
            None => {
                self.err(
                    root.loc,
                    "the policy file is missing `policy` (id, version, title)",
                );
                None
            }
        };
        let controls = match Self::get(&top, "controls") {
            Some(n) => self.controls(n),
            None => {
                self.err(root.loc, "the policy file is missing `controls`");
                None
            }
        };
        Some(Policy {
            meta: meta?,
            controls: controls?,
            sha256,
        })
    }

    fn meta(&mut self, node: &Node) -> Option<PolicyMeta> {
        let f = self.mapping(node, "`policy`", &["id", "version", "title", "description"])?;
        let id = self.ident(&f, "id", "`policy`");
        let version = self.text(&f, "version", "`policy`", true);
        let title = self.text(&f, "title", "`policy`", true);
        let description = self.text(&f, "description", "`policy`", false);
        Some(PolicyMeta {
            id: id?.0,
            version: version?,
            title: title?,
            description,
        })
    }

    fn controls(&mut self, node: &Node) -> Option<Vec<Control>> {
        let Some(items) = node.as_seq() else {
            self.err(
                node.loc,
                format!("`controls` must be a list, found {}", node.describe()),
            );
            return None;
        };
        if items.is_empty() {
            self.err(
                node.loc,
                "`controls` is empty; a policy needs at least one control",
            );
        }
        let mut seen: HashMap<String, Loc> = HashMap::new();
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            match self.control(item, &mut seen) {
                Some(c) => out.push(c),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn control(&mut self, node: &Node, seen: &mut HashMap<String, Loc>) -> Option<Control> {
        let f = self.mapping(
            node,
            "a control",
            &[
                "id",
                "title",
                "source",
                "description",
                "roles",
                "checks",
                "frameworks",
            ],
        )?;
        let id = self.ident(&f, "id", "a control");
        if let Some((id, loc)) = &id {
            if let Some(first) = seen.get(id) {
                self.err(
                    *loc,
                    format!("duplicate control id `{id}` (first at line {})", first.line),
                );
            } else {
                seen.insert(id.clone(), *loc);
            }
        }
        let what = id
            .as_ref()
            .map_or("a control".to_owned(), |(i, _)| format!("control `{i}`"));
        let title = self.text(&f, "title", &what, true);
        let source = self.text(&f, "source", &what, false);
        let description = self.text(&f, "description", &what, false);
        let frameworks = match Self::get(&f, "frameworks") {
            Some(n) => self.frameworks(n, &what),
            None => Some(BTreeMap::new()),
        };
        let roles_given = Self::get(&f, "roles").is_some();
        let roles = self.roles(&f, &what);
        let checks = match Self::get(&f, "checks") {
            Some(n) => self.checks(n, &what),
            None => {
                self.err(
                    node.loc,
                    format!("{what} has no `checks`; add one (an `attestation` where no machine can verify it)"),
                );
                None
            }
        };
        if roles_given && roles.is_none() {
            return None;
        }
        let roles = roles.unwrap_or_default();
        let checks = checks?;
        self.check_roles_fit(&what, node.loc, &roles, &checks);
        Some(Control {
            id: id?.0,
            title: title?,
            source,
            description,
            roles: roles.into_iter().map(|(r, _)| r).collect(),
            checks: checks.into_iter().map(|(c, _)| c).collect(),
            frameworks: frameworks?,
        })
    }

    /// `frameworks: {NAME: [ID, …]}`: known names, non-empty lists of text ids.
    fn frameworks(&mut self, node: &Node, what: &str) -> Option<BTreeMap<String, Vec<String>>> {
        let Some(map) = node.as_map() else {
            self.err(
                node.loc,
                format!(
                    "`frameworks` of {what} must be a mapping of framework to requirement ids, found {}",
                    node.describe()
                ),
            );
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (k, v) in map {
            let name = k.as_scalar().unwrap_or("");
            if !FRAMEWORKS.contains(&name) {
                self.err(
                    k.loc,
                    format!(
                        "unknown framework `{name}` in {what} (known: {})",
                        FRAMEWORKS.join(", ")
                    ),
                );
                ok = false;
                continue;
            }
            let Some(items) = v.as_seq() else {
                self.err(
                    v.loc,
                    format!(
                        "`{name}` of {what} must be a list of requirement ids, found {}",
                        v.describe()
                    ),
                );
                ok = false;
                continue;
            };
            if items.is_empty() {
                self.err(v.loc, format!("`{name}` of {what} lists no requirement"));
                ok = false;
            }
            let mut ids = Vec::new();
            for item in items {
                match item.as_scalar().map(str::trim) {
                    Some(id) if !id.is_empty() && id.len() <= 64 => ids.push(id.to_owned()),
                    _ => {
                        self.err(
                            item.loc,
                            format!("a requirement id in `{name}` of {what} must be short text, found {}", item.describe()),
                        );
                        ok = false;
                    }
                }
            }
            out.insert(name.to_owned(), ids);
        }
        ok.then_some(out)
    }

    /// A check's roles must narrow its control's, and when every check is
    /// scoped, every role of the control must run at least one of them.
    fn check_roles_fit(
        &mut self,
        what: &str,
        loc: Loc,
        control_roles: &[(String, Loc)],
        checks: &[(Check, Vec<Loc>)],
    ) {
        if control_roles.is_empty() {
            return;
        }
        for (c, locs) in checks {
            for (r, l) in c.roles.iter().zip(locs) {
                if !control_roles.iter().any(|(cr, _)| cr == r) {
                    self.err(
                        *l,
                        format!(
                            "role `{r}` of check `{}` is not among the roles of {what} ({}): the check would never run",
                            c.id,
                            control_roles.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
        }
        if checks.iter().any(|(c, _)| c.roles.is_empty()) {
            return;
        }
        for (r, l) in control_roles {
            if !checks.iter().any(|(c, _)| c.roles.contains(r)) {
                self.err(
                    if l.line > 0 { *l } else { loc },
                    format!("{what} applies to role `{r}` but none of its checks does: such a host would run nothing of it"),
                );
            }
        }
    }

    fn checks(&mut self, node: &Node, control: &str) -> Option<Vec<(Check, Vec<Loc>)>> {
        let Some(items) = node.as_seq() else {
            self.err(
                node.loc,
                format!("`checks` must be a list, found {}", node.describe()),
            );
            return None;
        };
        if items.is_empty() {
            self.err(node.loc, format!("{control} has an empty `checks` list"));
        }
        let mut seen: HashMap<String, Loc> = HashMap::new();
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            match self.check(item, control, &mut seen) {
                Some(c) => out.push(c),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn check(
        &mut self,
        node: &Node,
        control: &str,
        seen: &mut HashMap<String, Loc>,
    ) -> Option<(Check, Vec<Loc>)> {
        let f = self.mapping(
            node,
            "a check",
            &["id", "type", "every", "timeout", "roles", "with"],
        )?;
        let id = self.ident(&f, "id", "a check");
        if let Some((id, loc)) = &id {
            if let Some(first) = seen.get(id) {
                self.err(
                    *loc,
                    format!(
                        "duplicate check id `{id}` in {control} (first at line {})",
                        first.line
                    ),
                );
            } else {
                seen.insert(id.clone(), *loc);
            }
        }
        let every = self.duration(&f, "every");
        let timeout = self.duration(&f, "timeout");
        let check_what = id
            .as_ref()
            .map_or("a check".to_owned(), |(i, _)| format!("check `{i}`"));
        let roles_given = Self::get(&f, "roles").is_some();
        let roles = self.roles(&f, &check_what);
        let ty = self.text(&f, "type", "a check", true);
        let empty = Node {
            kind: NodeKind::Map(Vec::new()),
            loc: node.loc,
        };
        let with = match Self::get(&f, "with") {
            Some(Node {
                kind: NodeKind::Null,
                ..
            })
            | None => &empty,
            Some(n) => n,
        };
        let spec = match ty {
            None => None,
            Some(ty) => match CheckSpec::parse(&ty, with) {
                None => {
                    let loc = Self::get(&f, "type").map_or(node.loc, |n| n.loc);
                    self.err(
                        loc,
                        format!(
                            "unknown check type `{ty}` (this build has: {})",
                            TYPE_NAMES.join(", ")
                        ),
                    );
                    None
                }
                Some(Ok(spec)) => Some(spec),
                Some(Err(diags)) => {
                    for d in diags {
                        self.err(d.loc, format!("`{ty}` check: {}", d.message));
                    }
                    None
                }
            },
        };
        if roles_given && roles.is_none() {
            return None;
        }
        let (roles, locs): (Vec<String>, Vec<Loc>) = roles.unwrap_or_default().into_iter().unzip();
        Some((
            Check {
                id: id?.0,
                every,
                timeout,
                roles,
                spec: spec?,
                loc: node.loc,
            },
            locs,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
policy:
  id: demo
  version: "1"
  title: Demo
controls:
  - id: C-1
    title: Physical security
    source: "item 9"
    checks:
      - id: att
        type: attestation
        every: 24h
        with:
          by: ops@example.com
          on: 2026-11-01
          evidence: "ticket OPS-1"
          valid_for: 365d
"#;

    #[test]
    fn good_policy_loads() {
        let p = parse(GOOD.as_bytes(), "p.yaml").unwrap();
        assert_eq!(p.meta.id, "demo");
        assert_eq!(p.controls.len(), 1);
        let c = &p.controls[0].checks[0];
        assert_eq!(c.type_name(), "attestation");
        assert_eq!(c.every.unwrap().as_std().as_secs(), 86400);
        assert_eq!(c.loc.line, 11);
        assert_eq!(p.sha256.len(), 64);
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text.as_bytes(), "p.yaml")
            .unwrap_err()
            .to_string()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn three_mistakes_three_located_errors() {
        let text = GOOD
            .replace(
                "    title: Physical security\n",
                "    titel: Physical security\n",
            )
            .replace("every: 24h", "every: daily")
            .replace("valid_for: 365d", "valid_for: 365d\n          colour: red");
        let errs = errors(&text);
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert_eq!(errs[0], "p.yaml:7:7: control `C-1` is missing `title`");
        assert_eq!(errs[1], "p.yaml:8:5: unknown key `titel` in a control (expected one of: id, title, source, description, roles, checks, frameworks)");
        assert!(
            errs[2].starts_with("p.yaml:13:16: `every`: `daily` is not a duration"),
            "{}",
            errs[2]
        );
        assert!(
            errs[3].starts_with("p.yaml:19:11: `attestation` check: unknown key `colour`"),
            "{}",
            errs[3]
        );
    }

    /// Issue 26: `frameworks` maps known framework names to requirement ids;
    /// an unknown name, a non-list and an empty list are located errors.
    #[test]
    fn frameworks_are_validated_and_located() {
        let with = |fw: &str| {
            GOOD.replace(
                "    title: Physical security\n",
                &format!("    title: Physical security\n    frameworks: {fw}\n"),
            )
        };
        let p = parse(
            with("{iso27001: [A.7.1, A.7.4], soc2: [CC6.4], cis_debian: [\"5.2.10\"]}").as_bytes(),
            "p.yaml",
        )
        .unwrap();
        let fw = &p.controls[0].frameworks;
        assert_eq!(fw["iso27001"], vec!["A.7.1", "A.7.4"]);
        assert_eq!(fw["cis_debian"], vec!["5.2.10"]);
        let errs = errors(&with(
            "{iso27001: [A.7.1], iso9001: [x], soc2: CC6.4, pci_dss: []}",
        ));
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs[0].starts_with("p.yaml:9:37: unknown framework `iso9001` in control `C-1` (known: iso27001, soc2, cis_debian, nist_800_53, pci_dss)"), "{}", errs[0]);
        assert!(
            errs[1].contains("`soc2` of control `C-1` must be a list"),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].contains("`pci_dss` of control `C-1` lists no requirement"),
            "{}",
            errs[2]
        );
    }

    #[test]
    fn unknown_type_lists_what_exists() {
        let errs = errors(&GOOD.replace("type: attestation", "type: telepathy"));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with(
                "p.yaml:12:15: unknown check type `telepathy` (this build has: attestation,"
            ),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn duplicate_ids_are_errors() {
        let dup = GOOD.to_owned()
            + "  - id: C-1\n    title: again\n    checks:\n      - id: a\n        type: attestation\n        with: {by: x, on: 2026-01-01, evidence: e, valid_for: 1d}\n      - id: a\n        type: attestation\n        with: {by: x, on: 2026-01-01, evidence: e, valid_for: 1d}\n";
        let errs = errors(&dup);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs[0].contains("duplicate control id `C-1` (first at line 7)"));
        assert!(errs[1].contains("duplicate check id `a` in control `C-1`"));
    }

    #[test]
    fn wrong_types_and_missing_parts() {
        let errs = errors("policy: {id: x, version: '1', title: t}\ncontrols: {}\n");
        assert_eq!(
            errs,
            vec!["p.yaml:2:11: `controls` must be a list, found a mapping"]
        );
        let errs = errors("");
        assert_eq!(errs, vec!["p.yaml:1:1: the policy file is empty"]);
        let errs = errors(
            "policy: {id: 'bad id', version: '1', title: t}\ncontrols:\n  - id: c\n    title: t\n",
        );
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs[0].contains("`bad id` is not a valid id"));
        assert!(errs[1].contains("control `c` has no `checks`"));
    }

    #[test]
    fn parameter_type_errors_are_located_at_the_value() {
        let errs = errors(&GOOD.replace("on: 2026-11-01", "on: yesterday"));
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0],
            "p.yaml:16:15: `attestation` check: `yesterday` is not a date (write it as YYYY-MM-DD)"
        );
    }

    const SCOPED: &str = r#"
policy: {id: demo, version: "1", title: Demo}
controls:
  - id: BK-1
    title: Backups
    roles: [backup, offline_backup]
    checks:
      - {id: a, type: attestation, with: {by: x, on: 2026-01-01, evidence: e, valid_for: 1d}}
  - id: FW
    title: Firewall
    checks:
      - {id: app, type: attestation, roles: [app], with: {by: x, on: 2026-01-01, evidence: e, valid_for: 1d}}
      - {id: db, type: attestation, roles: [db], with: {by: x, on: 2026-01-01, evidence: e, valid_for: 1d}}
  - id: ALL
    title: Everywhere
    checks:
      - {id: a, type: attestation, with: {by: x, on: 2026-01-01, evidence: e, valid_for: 1d}}
"#;

    #[test]
    fn roles_scope_controls_and_checks() {
        let p = parse(SCOPED.as_bytes(), "p.yaml").unwrap();
        let roles = |r: &[&str]| r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (bk, fw, all) = (&p.controls[0], &p.controls[1], &p.controls[2]);
        assert!(bk.applies_to(&roles(&["offline_backup"])));
        assert!(!bk.applies_to(&roles(&["app"])));
        assert!(bk.applies_to(&[]), "no role given: everything runs");
        assert_eq!(fw.effective_roles(), ["app", "db"]);
        assert!(fw.applies_to(&roles(&["db"])));
        assert!(!fw.applies_to(&roles(&["backup"])));
        let db = roles(&["db"]);
        let ids: Vec<_> = fw.checks_for(&db).map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["db"]);
        assert!(all.applies_to(&roles(&["backup"])));
        assert!(all.effective_roles().is_empty());
        assert_eq!(p.roles(), ["app", "backup", "db", "offline_backup"]);
    }

    #[test]
    fn bad_roles_are_located_errors() {
        let errs = errors(&SCOPED.replace("roles: [backup, offline_backup]", "roles: backup"));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].starts_with("p.yaml:6:12: `roles` of control `BK-1` must be a list"),
            "{}",
            errs[0]
        );
        let errs = errors(&SCOPED.replace("roles: [backup, offline_backup]", "roles: []"));
        assert!(
            errs[0].contains("is empty, so it would apply to no host"),
            "{errs:#?}"
        );
        let errs = errors(&SCOPED.replace(
            "roles: [backup, offline_backup]",
            "roles: [backup, backup, 'a b']",
        ));
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(
            errs[0].contains("role `backup` is listed twice"),
            "{errs:#?}"
        );
        assert!(
            errs[1].contains("`a b` is not a valid role name"),
            "{errs:#?}"
        );
        let errs = errors(&SCOPED.replace("roles: [db]", "roles: [{x: 1}]"));
        assert!(
            errs[0].contains("a role must be a name, found a mapping"),
            "{errs:#?}"
        );
    }

    #[test]
    fn check_roles_must_fit_the_control_s() {
        let text = SCOPED.replace(
            "    title: Firewall\n",
            "    title: Firewall\n    roles: [app, db, backup]\n",
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].contains("control `FW` applies to role `backup` but none of its checks does"),
            "{errs:#?}"
        );
        let text = SCOPED.replace(
            "    title: Firewall\n",
            "    title: Firewall\n    roles: [app]\n",
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0]
                .contains("role `db` of check `db` is not among the roles of control `FW` (app)"),
            "{errs:#?}"
        );
        assert!(errs[0].starts_with("p.yaml:14:"), "{errs:#?}");
    }
}
