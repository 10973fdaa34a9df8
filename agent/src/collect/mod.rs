//! Collectors: one per check type, gathering plain facts from the host.
//!
//! This `match` is the agent's half of the registry in
//! `vigil_rules::checks`; a check type without a collector does not compile.
//! The collectors' toolbox is [`host`].

use vigil_rules::checks::{CheckSpec, Facts};

// The toolbox's names, for callers outside `collect` (the engine, benches,
// tests) and for the collectors that still take them from here.
pub use host::{blocking, io_reason, read_optional, stat_identity, HostCtx, RunMemo};

pub mod admin_access;
pub mod backup_freshness;
pub mod clamav;
pub mod dsn;
pub mod erasure;
pub mod error;
pub mod file_integrity;
pub mod firewall;
pub mod host;
pub mod inventory;
pub mod log_secrets;
pub mod mirror_lag;
pub mod password_storage;
pub mod patch_level;
pub mod tls;

pub use error::CollectError;

/// Gathers the facts one check needs.
///
/// The check gets its own stop switch: when this future is dropped before it
/// finishes (the engine's `timeout`), the switch is thrown and the blocking
/// readers it started stop at their next file or buffer.
pub async fn collect(spec: &CheckSpec, ctx: &HostCtx) -> Result<Facts, CollectError> {
    let ctx = &HostCtx {
        pace: ctx.pace.for_check(spec.type_name()),
        ..ctx.clone()
    };
    collect_paced(spec, ctx).await
}

/// [`collect`] with a pace the caller already made for this check (with
/// [`crate::pace::Pace::for_check`]), so the caller can watch its progress.
pub async fn collect_paced(spec: &CheckSpec, ctx: &HostCtx) -> Result<Facts, CollectError> {
    let stop = ctx.pace.stop_on_drop();
    let facts = collect_one(spec, ctx).await;
    stop.disarm();
    facts
}

async fn collect_one(spec: &CheckSpec, ctx: &HostCtx) -> Result<Facts, CollectError> {
    match spec {
        CheckSpec::Attestation(_) => Ok(Facts::Attestation(Default::default())),
        CheckSpec::AdminAccess(p) => {
            let (p, ctx) = (p.clone(), ctx.clone());
            blocking(move || admin_access::collect(&p, &ctx))
                .await
                .map(Facts::AdminAccess)
        }
        CheckSpec::LogSecrets(p) => {
            let (p, ctx) = (p.clone(), ctx.clone());
            blocking(move || log_secrets::collect(&p, &ctx))
                .await
                .map(Facts::LogSecrets)
        }
        CheckSpec::PasswordStorage(p) => password_storage::collect(p, ctx)
            .await
            .map(Facts::PasswordStorage),
        CheckSpec::BackupFreshness(p) => backup_freshness::collect(p, ctx)
            .await
            .map(Facts::BackupFreshness),
        CheckSpec::MirrorLag(p) => mirror_lag::collect(p, ctx).await.map(Facts::MirrorLag),
        CheckSpec::TlsEndpoint(p) => tls::endpoint::collect(p, ctx).await.map(Facts::TlsEndpoint),
        CheckSpec::TlsCertificateFile(p) => {
            let (p, ctx) = (p.clone(), ctx.clone());
            blocking(move || tls::file::collect(&p, &ctx))
                .await
                .map(Facts::TlsCertificateFile)
        }
        CheckSpec::Firewall(p) => {
            let (p, ctx) = (p.clone(), ctx.clone());
            blocking(move || firewall::collect(&p, &ctx))
                .await
                .map(Facts::Firewall)
        }
        CheckSpec::PatchLevel(p) => {
            let (p, ctx) = (p.clone(), ctx.clone());
            blocking(move || patch_level::collect(&p, &ctx))
                .await
                .map(Facts::PatchLevel)
        }
        CheckSpec::Clamav(p) => clamav::collect(p, ctx).await.map(Facts::Clamav),
        CheckSpec::FileIntegrity(p) => {
            let (p, ctx) = (p.clone(), ctx.clone());
            blocking(move || file_integrity::collect(&p, &ctx))
                .await
                .map(Facts::FileIntegrity)
        }
        CheckSpec::Erasure(p) => erasure::collect(p, ctx).await.map(Facts::Erasure),
    }
}
