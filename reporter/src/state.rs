//! The reporter's shared state: what every route may reach. The state is
//! assembled in `app::state` only.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use crate::store::Store;

/// The policy the reporter hands out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyBlob {
    pub id: String,
    pub version: String,
    pub sha256: String,
    pub yaml: String,
    /// Base64 ed25519 signature of `yaml`'s exact bytes by the policy key.
    pub signature: Option<String>,
    #[serde(skip)]
    pub controls: Vec<(String, String)>,
    /// The roles of each control that has them (its effective roles).
    #[serde(skip)]
    pub control_roles: std::collections::BTreeMap<String, Vec<String>>,
    /// The framework requirements each control that has them satisfies.
    #[serde(skip)]
    pub control_frameworks: std::collections::BTreeMap<String, Frameworks>,
}

/// Requirement ids by framework name (`iso27001` → `[A.8.24]`).
pub type Frameworks = std::collections::BTreeMap<String, Vec<String>>;

pub struct AppState {
    pub store: Store,
    pub audit: Arc<crate::audit::log::AuditLog>,
    pub erasure: Arc<crate::config::erasure::ErasureConfig>,
    pub enroll_secrets: Vec<String>,
    /// The policy handed out (the newest published), cached.
    pub policy: std::sync::RwLock<Option<PolicyBlob>>,
    /// Signs published policies; agents pin its public key at enrollment.
    pub policy_key: ed25519_dalek::SigningKey,
    pub max_report_bytes: usize,
    /// Where uploaded export archives are kept (`DATA/exports`).
    pub exports_dir: std::path::PathBuf,
    pub max_export_bytes: u64,
    /// The HTML pages' and the intake's config and state.
    pub site: crate::site::Site,
    /// Reports waiting for the next group commit.
    pub ingest: crate::queue::Ingest,
    /// Optional mutual TLS with agent certificates.
    pub agent_tls: Option<crate::mtls::AgentTls>,
    /// Enrollment secrets that approve the roles they list (the enrollment feature).
    pub enroll_role_secrets: Vec<crate::config::RoleSecret>,
    /// Login and enrollment attempts (the throttle).
    pub throttle: crate::throttle::Throttle,
    /// Staff tokens expire this long after issue (config `staff_token_lifetime`).
    pub staff_token_lifetime_ms: Option<i64>,
    /// Rate limit and response cache of the public routes.
    pub public: Arc<crate::public::Public>,
    /// The Prometheus registry of `GET /metrics` (the metrics module).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The fleet views' cache of the maintained state (`fleet_state::view`).
    pub fleet_cache: crate::fleet_state::Cache,
}

pub type Shared = Arc<AppState>;

/// The audit log as a route takes it (`State<Audit>`, built in `app.rs`);
/// it derefs to the log.
#[derive(Clone)]
pub struct Audit(pub Arc<crate::audit::log::AuditLog>);

impl std::ops::Deref for Audit {
    type Target = crate::audit::log::AuditLog;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl AppState {
    /// The policy handed out now.
    pub fn policy(&self) -> Option<PolicyBlob> {
        self.policy.read().ok().and_then(|p| p.clone())
    }

    pub fn set_policy(&self, p: Option<PolicyBlob>) {
        if let Ok(mut g) = self.policy.write() {
            *g = p;
        }
    }
}
