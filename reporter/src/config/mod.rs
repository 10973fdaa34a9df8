//! The reporter's config file, with located errors like a policy's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod advisories;
pub mod erasure;
pub mod intake;
pub mod metrics;
pub mod mtls;
pub mod notify;
pub mod public;
use vigil_rules::policy::Diagnostics;
use vigil_rules::yaml;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReporterConfig {
    /// Default 127.0.0.1:8443.
    #[serde(default)]
    pub listen: Option<String>,
    /// Default `./vigil-data`.
    #[serde(default)]
    pub data: Option<PathBuf>,
    /// `postgres://…` for a shared database; the SQLite file in `data` when absent.
    /// `VIGIL_DATABASE_URL` overrides it (keeps a password out of the file).
    #[serde(default)]
    pub database: Option<String>,
    /// Serve plain HTTP (behind a TLS-terminating proxy, or on loopback for tests).
    #[serde(default)]
    pub plain_http: bool,
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Optional mutual TLS: agents present certificates from this CA and
    /// their tokens are bound to them (`mtls`).
    #[serde(default)]
    pub agent_tls: Option<mtls::AgentTls>,
    /// Enrollment secrets; several at once so they can be rotated.
    /// `VIGIL_ENROLL_SECRET` adds one.
    #[serde(default)]
    pub enroll_secrets: Vec<String>,
    /// Role-scoped enrollment secrets: an agent enrolling with one is trusted
    /// with the roles it requests that the secret lists (the enrollment feature).
    /// Roles requested with a plain secret wait for an admin's approval.
    #[serde(default)]
    pub enroll_role_secrets: Vec<RoleSecret>,
    /// Staff API tokens expire this long after they were issued (`90d`);
    /// never when absent. `vigil-reporter user rotate` issues a new one.
    #[serde(default)]
    pub staff_token_lifetime: Option<vigil_rules::duration::PolicyDuration>,
    /// The policy handed out to agents.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// The audit log's signing key (hex seed, created on first start);
    /// default `DATA/audit/ed25519.key`. Reporters sharing a database share it.
    #[serde(default)]
    pub audit_key: Option<PathBuf>,
    /// The audit log's name in its signed checkpoints (default `vigil-reporter`).
    #[serde(default)]
    pub audit_origin: Option<String>,
    /// Where each new audit checkpoint is appended (fsync), outside the
    /// database; default `DATA/audit/witnessed-checkpoints.jsonl`.
    #[serde(default)]
    pub witness_file: Option<PathBuf>,
    /// Optional: each new audit checkpoint is also POSTed here (JSON with
    /// `origin`, `size`, `root`, `note`, `public_key`), best effort.
    #[serde(default)]
    pub witness_url: Option<String>,
    /// Per-client limit of the public routes (`/brochure.pdf`, `/trust.json`,
    /// `/policy.pdf`, `/api/v1/audit/checkpoint`).
    #[serde(default)]
    pub public_limit: Option<public::PublicLimit>,
    /// Account closure: cooling-off, offline retention, roles per phase.
    #[serde(default)]
    pub erasure: Option<erasure::ErasureConfig>,
    /// Largest report accepted, in bytes (default 4 MiB).
    #[serde(default)]
    pub max_report_bytes: Option<usize>,
    /// The key that signs published policies (default DATA/policy/ed25519.key).
    #[serde(default)]
    pub policy_key: Option<PathBuf>,
    /// Largest export archive an agent may upload, in bytes (default 2 GiB).
    #[serde(default)]
    pub max_export_bytes: Option<u64>,
    /// The public base URL (`https://security.example`): security.txt, links in notices.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Who publishes the brochure and security.txt (default `Papyrs`).
    #[serde(default)]
    pub organization: Option<String>,
    /// security.txt's first `Contact:`, an absolute URI (`mailto:`, `https:`
    /// or `tel:`); the form at `public_url` + `/report-incident` follows it.
    #[serde(default)]
    pub security_contact: Option<String>,
    /// Proxies (addresses or networks like `10.0.0.0/8`) whose
    /// `Forwarded`/`X-Forwarded-For` headers name the client for the intake's
    /// per-client limit; from any other peer those headers are ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The policy's own wording as plain text, typeset as `/policy.pdf`
    /// (the policy's control titles when absent).
    #[serde(default)]
    pub policy_text: Option<PathBuf>,
    /// Limits of the incident intake.
    #[serde(default)]
    pub intake: intake::IntakeConfig,
    /// Notices to staff by webhook and e-mail (`notify`).
    #[serde(default)]
    pub notify: notify::NotifyConfig,
    /// The advisory feed fetched for agents (`advisories`).
    #[serde(default)]
    pub advisories: Option<advisories::FeedConfig>,
    /// Who may scrape `GET /metrics` besides staff (`metrics`).
    #[serde(default)]
    pub metrics: metrics::MetricsConfig,
    /// How long stored reports are kept (`retention`).
    #[serde(default)]
    pub retention: Option<RetentionConfig>,
}

/// Config `retention:` (the retention feature).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Stored reports are deleted this long after they were received
    /// (`90d`), daily; kept forever when absent.
    #[serde(default)]
    pub reports: Option<vigil_rules::duration::PolicyDuration>,
}

/// An enrollment secret that also approves the roles it lists.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleSecret {
    pub secret: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ReporterConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config `{}`: {e}", path.display()))?;
        Self::parse(&text, &path.display().to_string()).map_err(|d| anyhow::anyhow!("{d}"))
    }

    pub fn parse(text: &str, file: &str) -> Result<Self, Diagnostics> {
        let fail = |diags| Diagnostics {
            file: file.to_owned(),
            diags,
        };
        let node = yaml::parse(text).map_err(fail)?;
        let cfg: ReporterConfig = yaml::from_node(&node).map_err(fail)?;
        if let Some(l) = &cfg.listen {
            if l.parse::<SocketAddr>().is_err() {
                let loc = node.get("listen").map_or(node.loc, |n| n.loc);
                return Err(fail(vec![yaml::Diag::new(
                    loc,
                    format!("`listen`: `{l}` is not an address like 127.0.0.1:8443"),
                )]));
            }
        }
        let key_loc = |key: &str| {
            node.as_map()
                .and_then(|m| m.iter().find(|(k, _)| k.as_scalar() == Some(key)))
                .map_or(node.loc, |(_, v)| v.loc)
        };
        let mut diags = Vec::new();
        if let Some(u) = &cfg.public_url {
            if !(u.starts_with("https://") || u.starts_with("http://")) || u.len() < 10 {
                diags.push(yaml::Diag::new(
                    key_loc("public_url"),
                    format!(
                        "`public_url`: `{u}` is not an absolute URL like https://security.example"
                    ),
                ));
            }
        }
        if let Some(c) = &cfg.security_contact {
            let ok = ["mailto:", "https://", "tel:"]
                .iter()
                .any(|p| c.starts_with(p) && c.len() > p.len() + 2)
                && !c.contains(char::is_whitespace);
            if !ok {
                diags.push(yaml::Diag::new(
                    key_loc("security_contact"),
                    format!("`security_contact`: `{c}` is not an absolute mailto:, https: or tel: URI (RFC 9116)"),
                ));
            }
        }
        for p in &cfg.trusted_proxies {
            if let Err(e) = crate::net::ProxyNet::parse(p) {
                diags.push(yaml::Diag::new(
                    key_loc("trusted_proxies"),
                    format!("`trusted_proxies`: {e}"),
                ));
            }
        }
        for (key, msg) in cfg.notify.problems() {
            diags.push(yaml::Diag::new(
                key_loc("notify"),
                format!("`notify.{key}`: {msg}"),
            ));
        }
        if !diags.is_empty() {
            return Err(fail(diags));
        }
        if cfg.plain_http && cfg.agent_tls.is_some() {
            // The key itself, not its value.
            let loc = node
                .as_map()
                .and_then(|m| m.iter().find(|(k, _)| k.as_scalar() == Some("agent_tls")))
                .map_or(node.loc, |(k, _)| k.loc);
            return Err(fail(vec![yaml::Diag::new(
                loc,
                "`agent_tls` needs TLS: it cannot be used with `plain_http`".to_owned(),
            )]));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn located_errors() {
        let e = ReporterConfig::parse("listen: nowhere\n", "r.yaml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.yaml:1:9: `listen`: `nowhere` is not an address like 127.0.0.1:8443"
        );
        let e = ReporterConfig::parse("lisen: 1.2.3.4:5\n", "r.yaml").unwrap_err();
        assert!(e.to_string().starts_with("r.yaml:1:1: unknown key `lisen`"));
        let c =
            ReporterConfig::parse("enroll_secrets: [a, b]\nplain_http: true\n", "r.yaml").unwrap();
        assert_eq!(c.enroll_secrets.len(), 2);
        let e = ReporterConfig::parse(
            "plain_http: true\nagent_tls:\n  ca: /etc/vigil/agent-ca.pem\n",
            "r.yaml",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.yaml:2:1: `agent_tls` needs TLS: it cannot be used with `plain_http`"
        );
        let e =
            ReporterConfig::parse("agent_tls:\n  ca: a.pem\n  crl: b.pem\n", "r.yaml").unwrap_err();
        assert!(
            e.to_string().starts_with("r.yaml:3:3: unknown key `crl`"),
            "{e}"
        );
        let c = ReporterConfig::parse("agent_tls:\n  ca: a.pem\n", "r.yaml").unwrap();
        assert!(c.agent_tls.unwrap().require);
        let e = ReporterConfig::parse("retention:\n  reports: soon\n", "r.yaml").unwrap_err();
        assert!(
            e.to_string().starts_with("r.yaml:2:12: ")
                && e.to_string().contains("`soon` is not a duration"),
            "{e}"
        );
        let c = ReporterConfig::parse("retention:\n  reports: 90d\n", "r.yaml").unwrap();
        assert_eq!(
            c.retention
                .and_then(|r| r.reports)
                .map(|d| d.as_std().as_secs()),
            Some(90 * 86_400)
        );
    }
}
