//! `audit verify`, `audit key` and `audit export`: the tamper-evident log,
//! checked in the database or offline in an exported file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use vigil_reporter::app;

use super::{config_of, data_dir};

/// `audit verify` against the database and its witness file; exits 1 when
/// the log fails.
pub async fn verify(
    data: Option<PathBuf>,
    config: Option<PathBuf>,
    public_key: Option<String>,
    witness: Option<PathBuf>,
) -> anyhow::Result<()> {
    let cfg = config_of(config.as_ref())?;
    let data = data_dir(data, &cfg);
    let witness = witness
        .or_else(|| cfg.witness_file.clone())
        .unwrap_or_else(|| vigil_reporter::audit::witness_file(&data));
    let witnessed = vigil_reporter::audit::newest_witnessed(&witness)
        .with_context(|| format!("cannot read the witness file `{}`", witness.display()))?;
    if witnessed.is_none() {
        eprintln!(
            "note: no witnessed checkpoint in `{}`: a log cut at its end cannot be detected",
            witness.display()
        );
    }
    let state = app::state(&cfg, &data).await?;
    let export = state.audit.export(&state.store).await?;
    if !print_verification(&vigil_reporter::audit::verify_against(
        &export,
        public_key.as_deref(),
        witnessed.as_ref(),
    )) {
        std::process::exit(1);
    }
    Ok(())
}

/// `audit key`: the audit log's public key (base64).
pub fn key(data: Option<PathBuf>, config: Option<PathBuf>) -> anyhow::Result<()> {
    println!(
        "{}",
        reporter_public_key(None, data.as_ref(), config.as_ref())?
    );
    Ok(())
}

/// `audit export`: the whole log as JSON, after a fresh checkpoint.
pub async fn export(
    output: PathBuf,
    data: Option<PathBuf>,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let cfg = config_of(config.as_ref())?;
    let data = data_dir(data, &cfg);
    let state = app::state(&cfg, &data).await?;
    state.audit.checkpoint(&state.store).await?;
    let export = state.audit.export(&state.store).await?;
    std::fs::write(&output, serde_json::to_vec_pretty(&export)?)
        .with_context(|| format!("cannot write `{}`", output.display()))?;
    eprintln!(
        "wrote {} entries and {} checkpoints to {}",
        export.entries.len(),
        export.checkpoints.len(),
        output.display()
    );
    Ok(())
}

/// Exit code of an offline verification: 0 verified, 1 failed, 2 could not run.
fn offline_exit(result: anyhow::Result<bool>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("vigil-reporter: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `audit verify --certificate FILE` or `--export FILE`: offline, no
/// runtime, no database; the key is the reporter's own.
pub fn verify_offline(
    file: &std::path::Path,
    certificate: bool,
    public_key: Option<&str>,
    data: Option<&PathBuf>,
    config: Option<&PathBuf>,
) -> ExitCode {
    offline_exit(
        reporter_public_key(public_key, data, config).and_then(|key| match certificate {
            true => verify_certificate_file(file, &key),
            false => verify_export_file(file, &key),
        }),
    )
}

fn print_verification(v: &vigil_reporter::audit::Verification) -> bool {
    if v.ok {
        println!(
            "audit log verified: {} entries, {} checkpoints, root {}, key {}",
            v.entries, v.checkpoints, v.root, v.public_key
        );
    } else {
        for p in &v.problems {
            eprintln!("{p}");
        }
        match v.first_bad_seq {
            Some(seq) => eprintln!("audit log FAILED verification: first bad entry {seq}"),
            None => eprintln!("audit log FAILED verification"),
        }
    }
    v.ok
}

/// The audit public key offline checks trust: `--public-key` (base64, or a
/// file holding it), else the one derived from the reporter's key file (the
/// config's `audit_key`, or `DATA/audit/ed25519.key`). Never one that the
/// checked file carries: with none of these, the check refuses to run.
fn reporter_public_key(
    given: Option<&str>,
    data: Option<&PathBuf>,
    config: Option<&PathBuf>,
) -> anyhow::Result<String> {
    use base64::Engine as _;
    let decodes = |k: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(k.trim())
            .is_ok_and(|b| b.len() == 32)
    };
    if let Some(k) = given {
        if decodes(k) {
            return Ok(k.trim().to_owned());
        }
        let text = std::fs::read_to_string(k).with_context(|| {
            format!("`--public-key`: `{k}` is neither a base64 ed25519 key nor a readable file")
        })?;
        if decodes(&text) {
            return Ok(text.trim().to_owned());
        }
        anyhow::bail!("`--public-key`: `{k}` does not hold a base64 ed25519 key");
    }
    let cfg = config_of(config)?;
    let key_file = cfg
        .audit_key
        .clone()
        .unwrap_or_else(|| data_dir(data.cloned(), &cfg).join("audit/ed25519.key"));
    if !key_file.exists() {
        anyhow::bail!(
            "no audit key to verify against: give `--public-key KEY` (the reporter prints it with `vigil-reporter audit key`), or `--data DIR`/`--config FILE` of the reporter; a key the file carries is never trusted (`{}` does not exist)",
            key_file.display()
        );
    }
    vigil_reporter::audit::public_key_of_file(&key_file)
}

fn verify_certificate_file(file: &std::path::Path, key: &str) -> anyhow::Result<bool> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read `{}`", file.display()))?;
    let cert: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("`{}` is not JSON", file.display()))?;
    let problems =
        vigil_reporter::audit::verify_certificate(&cert, key, vigil_reporter::closures::STATES);
    if problems.is_empty() {
        println!(
            "erasure certificate verified: account `{}` closed at {}",
            cert.get("account").and_then(|v| v.as_str()).unwrap_or("?"),
            cert.get("closed_at")
                .and_then(|v| v.as_str())
                .unwrap_or("?")
        );
        return Ok(true);
    }
    for p in &problems {
        eprintln!("{p}");
    }
    eprintln!("erasure certificate FAILED verification");
    Ok(false)
}

fn verify_export_file(file: &std::path::Path, key: &str) -> anyhow::Result<bool> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read `{}`", file.display()))?;
    let export: vigil_reporter::audit::Export = serde_json::from_slice(&bytes)
        .with_context(|| format!("`{}` is not an audit export", file.display()))?;
    Ok(print_verification(&vigil_reporter::audit::verify(
        &export,
        Some(key),
    )))
}
