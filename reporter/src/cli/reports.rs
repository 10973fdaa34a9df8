//! `render`, `prune` and `export`: documents and data read from the store.

use std::path::PathBuf;

use anyhow::Context;
use vigil_reporter::app;

use super::{config_of, data_dir, write_out};

/// The formats of `export`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Json,
    Csv,
    Sarif,
}

/// `render brochure`: the security brochure PDF.
pub async fn brochure(
    output: PathBuf,
    data: Option<PathBuf>,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let cfg = config_of(config.as_ref())?;
    let state = app::state(&cfg, &data_dir(data, &cfg)).await?;
    let pdf = vigil_reporter::brochure::brochure_pdf(&state).await?;
    write_out(Some(&output), &pdf)?;
    eprintln!(
        "wrote the brochure to `{}` ({} bytes)",
        output.display(),
        pdf.len()
    );
    Ok(())
}

/// `prune`: deletes stored reports older than `older_than`.
pub async fn prune(
    older_than: String,
    data: Option<PathBuf>,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let keep = vigil_rules::duration::PolicyDuration::parse(&older_than)
        .map_err(|e| anyhow::anyhow!("`--older-than`: {e}"))?;
    let cfg = config_of(config.as_ref())?;
    let state = app::state(&cfg, &data_dir(data, &cfg)).await?;
    let keep_ms = i64::try_from(keep.as_std().as_millis()).unwrap_or(i64::MAX);
    let cutoff = vigil_reporter::store::now_ms().saturating_sub(keep_ms);
    let started = std::time::Instant::now();
    let done = vigil_reporter::retention::prune(&state.store, &state.audit, cutoff, |p| {
        if p.batches % 20 == 0 {
            eprintln!("pruned {} reports so far", p.reports);
        }
    })
    .await
    .context("cannot prune stored reports")?;
    eprintln!(
        "pruned {} reports received before {} in {:.1} s",
        done.reports,
        vigil_reporter::posture::rfc3339(cutoff),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `export`: the posture and every host's newest results.
pub async fn export(
    format: ExportFormat,
    output: Option<PathBuf>,
    data: Option<PathBuf>,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    use vigil_reporter::export;
    let cfg = config_of(config.as_ref())?;
    let state = app::state(&cfg, &data_dir(data, &cfg)).await?;
    let now = vigil_reporter::store::now_ms();
    let posture = vigil_reporter::fleet::compute_posture(&state, now)
        .await
        .map_err(|e| anyhow::anyhow!("cannot compute the posture: {e}"))?;
    let mut reports = Vec::new();
    for (host, at, id) in vigil_reporter::fleet_state::last_reports(&state.store).await? {
        if let Some(body) = state.store.report_body(&id).await? {
            reports.push((host, at, body));
        }
    }
    let rows = export::rows_of(&reports);
    let text = match format {
        ExportFormat::Json => export::json(&posture, &rows),
        ExportFormat::Csv => export::csv(&rows),
        ExportFormat::Sarif => export::sarif(&rows, env!("CARGO_PKG_VERSION")),
    };
    write_out(output.as_ref(), text.as_bytes())
}
