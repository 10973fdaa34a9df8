//! `erasure:` in the reporter config: account closure's cooling-off,
//! offline retention, deadline and the roles that prove each phase.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::store::AgentRow;

/// Which roles must prove each phase; `*` is every host.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureConfig {
    /// How long a closure can be cancelled; site erasure waits for it. Default 7 days.
    #[serde(default = "default_cooling")]
    pub cooling_off: vigil_rules::duration::PolicyDuration,
    /// How long offline sets are kept. Informational only: no phase advances
    /// on time alone; the offline host's agent proves rotation. Default 90 days.
    #[serde(default = "default_retention")]
    pub offline_retention: vigil_rules::duration::PolicyDuration,
    /// How long after the cooling-off a closure must be done; later it is
    /// overdue (`erasure.overdue`). Default 30 days.
    #[serde(default = "default_deadline")]
    pub deadline: vigil_rules::duration::PolicyDuration,
    #[serde(default = "default_roles")]
    pub roles: BTreeMap<String, Vec<String>>,
}

fn default_cooling() -> vigil_rules::duration::PolicyDuration {
    vigil_rules::duration::PolicyDuration(std::time::Duration::from_secs(7 * 86400))
}
fn default_retention() -> vigil_rules::duration::PolicyDuration {
    vigil_rules::duration::PolicyDuration(std::time::Duration::from_secs(90 * 86400))
}
fn default_deadline() -> vigil_rules::duration::PolicyDuration {
    vigil_rules::duration::PolicyDuration(std::time::Duration::from_secs(30 * 86400))
}
fn default_roles() -> BTreeMap<String, Vec<String>> {
    [
        ("export", "app"),
        ("site", "app"),
        ("local_backups", "backup"),
        ("offline_backups", "offline_backup"),
        // Only the app servers hold Papyrs' logs: policies/papyrs.yaml puts
        // GDPR-4's logs phase on `app` (`["*"]` makes every host prove it).
        ("logs", "app"),
    ]
    .iter()
    .map(|(p, r)| ((*p).to_owned(), vec![(*r).to_owned()]))
    .collect()
}

impl Default for ErasureConfig {
    fn default() -> Self {
        ErasureConfig {
            cooling_off: default_cooling(),
            offline_retention: default_retention(),
            deadline: default_deadline(),
            roles: default_roles(),
        }
    }
}

pub fn roles_for<'a>(cfg: &'a ErasureConfig, phase: &str) -> &'a [String] {
    cfg.roles.get(phase).map_or(&[], Vec::as_slice)
}

/// Whether `agent`'s (reporter-trusted) roles prove `phase`.
pub fn agent_proves(cfg: &ErasureConfig, phase: &str, agent: &AgentRow) -> bool {
    !hosts_for(cfg, phase, std::slice::from_ref(agent)).is_empty()
}

/// The current, active agents whose roles prove `phase`.
pub fn hosts_for<'a>(
    cfg: &ErasureConfig,
    phase: &str,
    agents: &'a [AgentRow],
) -> Vec<&'a AgentRow> {
    let roles = roles_for(cfg, phase);
    let everyone = roles.iter().any(|r| r == "*");
    agents
        .iter()
        .filter(|a| {
            a.revoked_at.is_none() && (everyone || a.roles.iter().any(|r| roles.contains(r)))
        })
        .collect()
}
