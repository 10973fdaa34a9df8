//! `policy publish`: a policy signed and handed out.

use std::path::PathBuf;

use vigil_reporter::app;

use super::{actor, config_of, data_dir};

/// `policy publish`: validates, signs and publishes `file`.
pub async fn publish(
    file: PathBuf,
    data: Option<PathBuf>,
    config: Option<PathBuf>,
    by: Option<String>,
) -> anyhow::Result<()> {
    let cfg = config_of(config.as_ref())?;
    let data = data_dir(data, &cfg);
    let blob = app::load_policy(&file)?;
    let state = app::state(&cfg, &data).await?;
    let by = actor(by);
    let published = vigil_reporter::policies::publish(&state, blob, &by).await?;
    println!(
        "published policy `{}` version {} (sha256 {}), signed by key {}",
        published.id,
        published.version,
        published.sha256,
        vigil_reporter::policies::public_key_b64(&state.policy_key)
    );
    Ok(())
}
