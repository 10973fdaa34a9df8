//! The registry of check types: one line per type, in one place.
//!
//! Each type is a module with a unit struct implementing [`CheckKind`]: its
//! parameters (the `with` map), the facts the agent collects for it, its
//! finding codes, and a pure `judge`. The agent keeps the matching list of
//! collectors; a `match` over [`CheckSpec`] makes a missing one a compile error.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

use crate::verdict::{FindingCode, Severity, Verdict};
use crate::yaml::{self, Diag, Node};

pub mod admin_access;
pub mod attestation;
pub mod backup_freshness;
pub mod clamav;
pub mod erasure;
pub mod file_integrity;
pub mod firewall;
pub mod log_secrets;
pub mod mirror_lag;
pub mod password_storage;
pub mod patch_level;
pub mod remediation;
pub mod tls;

/// Whether exactly one of a connection string's sources (`dsn`, `dsn_file`,
/// `dsn_env`) is given: the rule every check with a database follows.
pub(crate) fn one_dsn_source(
    dsn: &Option<String>,
    dsn_file: &Option<String>,
    dsn_env: &Option<String>,
) -> bool {
    [dsn.is_some(), dsn_file.is_some(), dsn_env.is_some()]
        .iter()
        .filter(|b| **b)
        .count()
        == 1
}

/// A validation problem for each of `paths` that is not absolute, located at
/// `key` (the rule `clamav`'s `scan_paths` and `file_integrity`'s `paths`
/// and `baseline` follow).
pub(crate) fn relative_paths<'a>(
    key: Option<&'static str>,
    paths: impl IntoIterator<Item = &'a String>,
) -> Vec<(Option<&'static str>, String)> {
    paths
        .into_iter()
        .filter(|s| !s.starts_with('/'))
        .map(|s| (key, format!("`{s}` is not an absolute path")))
        .collect()
}

/// What judging needs besides params and facts.
#[derive(Debug, Clone)]
pub struct JudgeCtx {
    pub now: chrono::DateTime<chrono::Utc>,
    pub host: String,
}

/// One check type.
pub trait CheckKind {
    /// The `with` map, strictly typed (`deny_unknown_fields`).
    type Params: DeserializeOwned + Serialize + Clone + Debug + PartialEq + Send + Sync + 'static;
    /// What the agent collects from a host for this type; plain data.
    type Facts: DeserializeOwned + Serialize + Clone + Debug + Send + 'static;
    /// What a verdict of this type carries as `evidence`: a struct the judge
    /// builds and the reporter and daemon decode (`Verdict.evidence` and
    /// `CheckReport.evidence` stay JSON on the wire). Debug builds assert
    /// that every verdict's evidence reads back as this type unchanged.
    type Evidence: Serialize + DeserializeOwned + Clone + Debug + Send + 'static;
    /// The stable finding codes.
    type Code: FindingCode;

    /// One line for docs and `--help`.
    const SUMMARY: &'static str;

    /// Checks beyond types: `(key, message)`, located at `key` inside `with`
    /// when given, else at `with` itself.
    fn validate(_params: &Self::Params) -> Vec<(Option<&'static str>, String)> {
        Vec::new()
    }

    /// Judges facts against params. Pure: no I/O, no clock but `ctx.now`.
    fn judge(params: &Self::Params, facts: &Self::Facts, ctx: &JudgeCtx) -> Verdict;
}

/// A check type as documentation sees it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckTypeInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub codes: Vec<CodeInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CodeInfo {
    pub code: &'static str,
    pub severity: Severity,
    /// What the finding means (the contract's name for it).
    pub meaning: &'static str,
    /// The same text under its earlier name, kept for scripts that read it.
    pub description: &'static str,
    /// What to do about it; empty only if the table lacks the code, which a
    /// unit test forbids.
    pub remediation: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<&'static str>,
}

fn codes_of<C: FindingCode>(type_name: &str) -> Vec<CodeInfo> {
    C::ALL
        .iter()
        .map(|c| {
            let fix = remediation::for_code(type_name, c.as_str());
            CodeInfo {
                code: c.as_str(),
                severity: c.severity(),
                meaning: c.description(),
                description: c.description(),
                remediation: fix.map_or("", |r| r.text),
                reference: fix.and_then(|r| r.reference),
            }
        })
        .collect()
}

/// Whether a verdict's evidence reads back as `E` and writes out as the same
/// JSON: what every judged verdict of a debug build is held to, so the
/// evidence types cannot drift from what the judges emit. Errors and skips
/// carry no evidence (`null`) and pass.
fn evidence_is_typed<E: Serialize + DeserializeOwned>(verdict: &Verdict) -> bool {
    if verdict.evidence.is_null() {
        return true;
    }
    E::deserialize(&verdict.evidence)
        .ok()
        .and_then(|e| serde_json::to_value(e).ok())
        .is_some_and(|again| again == verdict.evidence)
}

/// `K::judge`, asserting that the verdict's evidence reads back as
/// `K::Evidence` unchanged: what unit tests call instead of `K::judge`.
#[cfg(test)]
pub(crate) fn judged<K: CheckKind>(p: &K::Params, f: &K::Facts, ctx: &JudgeCtx) -> Verdict {
    let v = K::judge(p, f, ctx);
    assert!(
        evidence_is_typed::<K::Evidence>(&v),
        "evidence does not read back as its type: {}",
        v.evidence
    );
    v
}

/// Names each finding's remediation (`TYPE/CODE`) where the table has one.
fn with_remediation_ids(type_name: &str, mut verdict: Verdict) -> Verdict {
    for f in &mut verdict.findings {
        if f.remediation.is_none() {
            f.remediation = remediation::for_code(type_name, &f.code).map(|r| r.id.to_owned());
        }
    }
    verdict
}

fn parse_params<K: CheckKind>(with: &Node) -> Result<K::Params, Vec<Diag>> {
    let params: K::Params = yaml::from_node(with)?;
    let problems = K::validate(&params);
    if problems.is_empty() {
        return Ok(params);
    }
    Err(problems
        .into_iter()
        .map(|(key, msg)| {
            let loc = key.and_then(|k| with.get(k)).map_or(with.loc, |n| n.loc);
            Diag::new(loc, msg)
        })
        .collect())
}

macro_rules! registry {
    ($($name:literal => $variant:ident($kind:ty)),* $(,)?) => {
        /// The names of every check type this build has.
        pub const TYPE_NAMES: &[&str] = &[$($name),*];

        /// A check's validated parameters, by type.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum CheckSpec {
            $($variant(<$kind as CheckKind>::Params)),*
        }

        /// Facts collected for one check, tagged by type.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(tag = "type", content = "facts")]
        pub enum Facts {
            $(#[serde(rename = $name)] $variant(<$kind as CheckKind>::Facts)),*
        }

        impl CheckSpec {
            /// Parses `with` for the type `name`; `None` for a type this build lacks.
            pub fn parse(name: &str, with: &Node) -> Option<Result<Self, Vec<Diag>>> {
                match name {
                    $($name => Some(parse_params::<$kind>(with).map(CheckSpec::$variant)),)*
                    _ => None,
                }
            }

            pub fn type_name(&self) -> &'static str {
                match self { $(CheckSpec::$variant(_) => $name),* }
            }

            /// Judges facts; facts of another type are an error, never a pass.
            pub fn judge(&self, facts: &Facts, ctx: &JudgeCtx) -> Verdict {
                match (self, facts) {
                    $((CheckSpec::$variant(p), Facts::$variant(f)) => {
                        let verdict = <$kind as CheckKind>::judge(p, f, ctx);
                        debug_assert!(
                            evidence_is_typed::<<$kind as CheckKind>::Evidence>(&verdict),
                            "the evidence of a `{}` verdict does not read back as its Evidence type: {}",
                            $name, verdict.evidence
                        );
                        with_remediation_ids($name, verdict)
                    })*
                    #[allow(unreachable_patterns)]
                    _ => Verdict::error(format!("facts of type `{}` given to a `{}` check", facts.type_name(), self.type_name())),
                }
            }
        }

        impl Facts {
            pub fn type_name(&self) -> &'static str {
                match self { $(Facts::$variant(_) => $name),* }
            }

            /// Reads facts of the type `name` from YAML (policy unit tests);
            /// `None` for a type this build lacks.
            pub fn parse(name: &str, node: &Node) -> Option<Result<Self, Vec<Diag>>> {
                match name {
                    $($name => Some(yaml::from_node::<<$kind as CheckKind>::Facts>(node).map(Facts::$variant)),)*
                    _ => None,
                }
            }
        }

        /// Every check type with its finding codes.
        pub fn check_types() -> Vec<CheckTypeInfo> {
            vec![$(CheckTypeInfo { name: $name, summary: <$kind as CheckKind>::SUMMARY, codes: codes_of::<<$kind as CheckKind>::Code>($name) }),*]
        }
    };
}

registry! {
    "attestation" => Attestation(attestation::Attestation),
    "admin_access" => AdminAccess(admin_access::AdminAccess),
    "password_storage" => PasswordStorage(password_storage::PasswordStorage),
    "backup_freshness" => BackupFreshness(backup_freshness::BackupFreshness),
    "mirror_lag" => MirrorLag(mirror_lag::MirrorLag),
    "tls_endpoint" => TlsEndpoint(tls::endpoint::TlsEndpoint),
    "tls_certificate_file" => TlsCertificateFile(tls::file::TlsCertificateFile),
    "firewall" => Firewall(firewall::Firewall),
    "patch_level" => PatchLevel(patch_level::PatchLevel),
    "log_secrets" => LogSecrets(log_secrets::LogSecrets),
    "clamav" => Clamav(clamav::Clamav),
    "file_integrity" => FileIntegrity(file_integrity::FileIntegrity),
    "erasure" => Erasure(erasure::Erasure),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_within_each_type_and_snake_case() {
        for t in check_types() {
            let mut seen = HashSet::new();
            for c in &t.codes {
                assert!(seen.insert(c.code), "{}: code `{}` twice", t.name, c.code);
                assert!(
                    c.code
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                    "{}: `{}` is not snake_case",
                    t.name,
                    c.code
                );
                assert!(!c.description.is_empty());
            }
        }
        let names: HashSet<_> = TYPE_NAMES.iter().collect();
        assert_eq!(names.len(), TYPE_NAMES.len());
    }

    /// The full list of codes is a contract: codes are never renamed or reused.
    /// Adding one means adding it here; removing one is a breaking change.
    #[test]
    fn code_list_snapshot() {
        let mut listed: Vec<String> = check_types()
            .iter()
            .flat_map(|t| {
                t.codes
                    .iter()
                    .map(move |c| format!("{}/{}", t.name, c.code))
            })
            .collect();
        listed.sort();
        let expected = include_str!("codes.snapshot.txt");
        let expected: Vec<String> = expected
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        assert_eq!(
            listed, expected,
            "finding codes changed: update rules/src/checks/codes.snapshot.txt deliberately"
        );
    }
}
