//! `user add|list|disable|enable|rotate`: staff users.

use std::path::PathBuf;

use anyhow::Context;
use vigil_reporter::{app, auth, users};

use super::{actor, config_of, data_dir, state_at, StoreArgs};

/// A staff user's role, as `user add --role` takes it.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Role {
    Admin,
    Auditor,
}

/// `user add`: adds a user and prints their API token once.
pub async fn add(
    name: String,
    role: Role,
    data: Option<PathBuf>,
    config: Option<PathBuf>,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let cfg = config_of(config.as_ref())?;
    let data = data_dir(data, &cfg);
    if !vigil_reporter::extract::valid_host(&name) {
        anyhow::bail!("user name `{name}` must be letters, digits, `-`, `.` or `_`");
    }
    let state = app::state(&cfg, &data).await?;
    let password_hash = if password_stdin {
        let mut pw = String::new();
        std::io::stdin()
            .read_line(&mut pw)
            .context("cannot read the password from standard input")?;
        let pw = pw.trim_end_matches(['\n', '\r']);
        if pw.chars().count() < 12 {
            anyhow::bail!("the password must have at least 12 characters");
        }
        Some(auth::hash_password(pw).map_err(anyhow::Error::msg)?)
    } else {
        None
    };
    let token = auth::new_token(auth::STAFF_PREFIX);
    let role = match role {
        Role::Admin => "admin",
        Role::Auditor => "auditor",
    };
    if !users::add_user(
        &state.store,
        &state.audit,
        &name,
        role,
        password_hash.as_deref(),
        &token.lookup,
        &token.digest,
    )
    .await?
    {
        anyhow::bail!("user `{name}` already exists");
    }
    eprintln!("added {role} `{name}`; their API token (shown once):");
    println!("{}", token.token);
    Ok(())
}

/// `user list`.
pub async fn list(at: StoreArgs) -> anyhow::Result<()> {
    let state = state_at(&at).await?;
    for u in users::list_users(&state.store, state.staff_token_lifetime_ms).await? {
        println!(
            "{}\t{}\t{}\ttoken issued {}{}",
            u.name,
            u.role,
            match &u.disabled_at {
                Some(d) => format!("disabled {d}"),
                None => "enabled".into(),
            },
            u.token_issued_at.as_deref().unwrap_or("?"),
            u.token_expires_at
                .map(|e| format!(", expires {e}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// `user disable`.
pub async fn disable(name: String, at: StoreArgs) -> anyhow::Result<()> {
    let state = state_at(&at).await?;
    if !users::set_disabled(&state.store, &state.audit, &name, true, &actor(at.by)).await? {
        anyhow::bail!("no enabled user `{name}`");
    }
    eprintln!("disabled `{name}`: their token, sessions and login links no longer work");
    Ok(())
}

/// `user enable`.
pub async fn enable(name: String, at: StoreArgs) -> anyhow::Result<()> {
    let state = state_at(&at).await?;
    if !users::set_disabled(&state.store, &state.audit, &name, false, &actor(at.by)).await? {
        anyhow::bail!("no disabled user `{name}`");
    }
    eprintln!("enabled `{name}`");
    Ok(())
}

/// `user rotate`.
pub async fn rotate(name: String, at: StoreArgs) -> anyhow::Result<()> {
    let state = state_at(&at).await?;
    let token = users::rotate_token(&state.store, &state.audit, &name, &actor(at.by))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user `{name}`"))?;
    eprintln!("new API token of `{name}` (shown once; the old one no longer works):");
    println!("{token}");
    Ok(())
}
