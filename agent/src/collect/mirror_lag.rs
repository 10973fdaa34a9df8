//! Facts for `mirror_lag`: PostgreSQL's replication views through sqlx, and
//! heartbeat files at each mirror path.
//!
//! The connection string may hold a password; every message leaving here
//! passes through [`Dsn::scrub`] first.

use std::time::Duration;

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};
use vigil_rules::checks::mirror_lag::{
    parse_heartbeat, Facts, Heartbeat, Params, PostgresFacts, PostgresSpec, Replica, Standby,
};

use super::dsn::Dsn;
use super::host::{blocking, io_reason, HostCtx};
use crate::collect::CollectError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, CollectError> {
    let mut facts = Facts::default();
    if let Some(pg) = &p.postgres {
        facts.postgres = Some(postgres(pg, ctx).await);
    }
    if let Some(hb) = &p.heartbeat {
        let (mirrors, ctx) = (hb.mirrors.clone(), ctx.clone());
        facts.heartbeats = blocking(move || {
            Ok::<_, CollectError>(mirrors.iter().map(|m| heartbeat(m, &ctx)).collect())
        })
        .await?;
    }
    Ok(facts)
}

fn heartbeat(path: &str, ctx: &HostCtx) -> Heartbeat {
    let mut hb = Heartbeat {
        path: path.to_owned(),
        time: None,
        missing: false,
        invalid: None,
        error: None,
    };
    match std::fs::read(ctx.path(path)) {
        Ok(bytes) => match parse_heartbeat(&String::from_utf8_lossy(&bytes)) {
            Ok(t) => hb.time = Some(t),
            Err(e) => hb.invalid = Some(e.to_string()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => hb.missing = true,
        Err(e) => hb.error = Some(format!("cannot read it: {}", io_reason(&e))),
    }
    hb
}

async fn postgres(spec: &PostgresSpec, ctx: &HostCtx) -> PostgresFacts {
    let mut facts = PostgresFacts {
        target: String::new(),
        server_version: String::new(),
        role: String::new(),
        replicas: vec![],
        standby: None,
        error: None,
    };
    let dsn = match Dsn::read(
        spec.dsn.as_deref(),
        spec.dsn_file.as_deref(),
        spec.dsn_env.as_deref(),
        ctx,
    ) {
        Ok(d) => d,
        Err(e) => {
            facts.target = spec
                .dsn_file
                .clone()
                .or_else(|| spec.dsn_env.as_ref().map(|v| format!("${v}")))
                .unwrap_or_default();
            facts.error = Some(e.to_string());
            return facts;
        }
    };
    facts.target = dsn.to_string();
    if let Err(e) = query(dsn.expose(), &mut facts).await {
        facts.error = Some(dsn.scrub(&e));
    }
    facts
}

async fn query(dsn: &str, facts: &mut PostgresFacts) -> Result<(), String> {
    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(dsn)).await {
        Err(_) => {
            return Err(format!(
                "no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))
        }
        Ok(Err(e)) => return Err(format!("cannot connect: {e}")),
        Ok(Ok(c)) => c,
    };
    let q = |e: sqlx::Error| format!("query failed: {e}");
    let row = sqlx::query("SELECT pg_is_in_recovery(), current_setting('server_version')")
        .fetch_one(&mut conn)
        .await
        .map_err(q)?;
    let in_recovery: bool = row.try_get(0).map_err(q)?;
    facts.server_version = row.try_get(1).map_err(q)?;
    if in_recovery {
        facts.role = "standby".into();
        let row = sqlx::query(
            "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, \
                    pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::int8, \
                    extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8, \
                    pg_is_wal_replay_paused()",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(q)?;
        let mut sb = Standby {
            receive_lsn: row.try_get(0).map_err(q)?,
            replay_lsn: row.try_get(1).map_err(q)?,
            unreplayed_bytes: row.try_get(2).map_err(q)?,
            since_last_replay_seconds: row.try_get(3).map_err(q)?,
            replay_paused: row.try_get(4).map_err(q)?,
            wal_receiver_status: None,
            sender_host: None,
        };
        if let Some(r) = sqlx::query("SELECT status, sender_host FROM pg_stat_wal_receiver")
            .fetch_optional(&mut conn)
            .await
            .map_err(q)?
        {
            sb.wal_receiver_status = r.try_get(0).map_err(q)?;
            sb.sender_host = r.try_get(1).map_err(q)?;
        }
        facts.standby = Some(sb);
    } else {
        facts.role = "primary".into();
        let rows = sqlx::query(
            "SELECT coalesce(application_name, ''), host(client_addr), client_hostname, state, \
                    coalesce(sync_state, ''), extract(epoch FROM replay_lag)::float8, \
                    pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::int8 \
             FROM pg_stat_replication ORDER BY application_name, client_addr",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(q)?;
        for r in rows {
            let state: Option<String> = r.try_get(3).map_err(q)?;
            let Some(state) = state else {
                return Err("the monitoring role cannot see replication details in `pg_stat_replication`: grant it `pg_monitor`".into());
            };
            facts.replicas.push(Replica {
                application_name: r.try_get(0).map_err(q)?,
                client_addr: r.try_get(1).map_err(q)?,
                client_hostname: r.try_get(2).map_err(q)?,
                state,
                sync_state: r.try_get(4).map_err(q)?,
                replay_lag_seconds: r.try_get(5).map_err(q)?,
                replay_lag_bytes: r.try_get(6).map_err(q)?,
            });
        }
    }
    let _ = conn.close().await;
    Ok(())
}
