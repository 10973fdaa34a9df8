//! The bodies of the command line's subcommands, one module per group;
//! `main.rs` keeps the clap definitions and the dispatch.

use std::path::PathBuf;

use anyhow::Context;
use vigil_reporter::app;
use vigil_reporter::config::ReporterConfig;

pub mod agents;
pub mod audit;
pub mod policy;
pub mod reports;
pub mod serve;
pub mod users;

/// Where a command finds the store, and who does it.
#[derive(clap::Args)]
pub struct StoreArgs {
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Who does this, for the audit log (default: the Unix user).
    #[arg(long)]
    by: Option<String>,
}

fn actor(by: Option<String>) -> String {
    by.or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".into())
}

async fn state_at(at: &StoreArgs) -> anyhow::Result<vigil_reporter::state::Shared> {
    let cfg = config_of(at.config.as_ref())?;
    let data = data_dir(at.data.clone(), &cfg);
    app::state(&cfg, &data).await
}

fn config_of(path: Option<&PathBuf>) -> anyhow::Result<ReporterConfig> {
    match path {
        Some(p) => ReporterConfig::load(p),
        None => Ok(ReporterConfig::default()),
    }
}

fn data_dir(data: Option<PathBuf>, cfg: &ReporterConfig) -> PathBuf {
    data.or(cfg.data.clone())
        .unwrap_or_else(|| PathBuf::from("vigil-data"))
}

fn write_out(output: Option<&PathBuf>, bytes: &[u8]) -> anyhow::Result<()> {
    match output {
        Some(p) => {
            // Written beside, then renamed: a reader never sees half a file.
            let tmp = p.with_extension("partial");
            std::fs::write(&tmp, bytes)
                .and_then(|()| std::fs::rename(&tmp, p))
                .with_context(|| format!("cannot write `{}`", p.display()))
        }
        None => std::io::Write::write_all(&mut std::io::stdout(), bytes)
            .context("cannot write to standard output"),
    }
}
