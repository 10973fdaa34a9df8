//! `agent list|revoke|allow-reenroll|approve`: enrolled agents.

use vigil_reporter::enrollment;

use super::{actor, state_at, StoreArgs};

/// `agent list`.
pub async fn list(at: StoreArgs) -> anyhow::Result<()> {
    let state = state_at(&at).await?;
    for a in enrollment::list(&state.store).await? {
        println!(
            "{}\t{}\troles [{}]\tpending [{}]\t{}{}{}",
            a.host,
            a.agent_id,
            a.roles.join(", "),
            a.pending_roles.join(", "),
            match &a.revoked_at {
                Some(r) => format!("revoked {r}"),
                None => "active".into(),
            },
            if a.cert_bound {
                "\tcertificate-bound"
            } else {
                ""
            },
            a.reenroll_allowed_until
                .map(|u| format!("\tre-enrollment allowed until {u}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// `agent revoke`.
pub async fn revoke(host: String, at: StoreArgs) -> anyhow::Result<()> {
    let state = state_at(&at).await?;
    let id = enrollment::revoke_host(&state.store, &state.audit, &host, &actor(at.by))
        .await?
        .ok_or_else(|| anyhow::anyhow!("host `{host}` has no active agent"))?;
    eprintln!("revoked agent {id} of `{host}`; the host may enroll again");
    Ok(())
}

/// `agent allow-reenroll`.
pub async fn allow_reenroll(host: String, at: StoreArgs) -> anyhow::Result<()> {
    let state = state_at(&at).await?;
    if !enrollment::allow_reenroll(&state.store, &state.audit, &host, &actor(at.by)).await? {
        anyhow::bail!("host `{host}` has no active agent; it may enroll without permission");
    }
    eprintln!("`{host}` may enroll again within 24 hours; its agent works until then");
    Ok(())
}

/// `agent approve`.
pub async fn approve(
    host: String,
    roles: Option<Vec<String>>,
    at: StoreArgs,
) -> anyhow::Result<()> {
    if let Some(r) = &roles {
        if !enrollment::valid_roles(r) {
            anyhow::bail!("`--roles` must be at most 32 short words");
        }
    }
    let state = state_at(&at).await?;
    let set = enrollment::approve_roles(&state.store, &state.audit, &host, roles, &actor(at.by))
        .await?
        .ok_or_else(|| anyhow::anyhow!("host `{host}` has no active agent"))?;
    eprintln!("`{host}` is trusted with roles [{}]", set.join(", "));
    Ok(())
}
