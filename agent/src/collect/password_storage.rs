//! Facts for `password_storage`: each stored password is classified where it
//! is read; the hash itself goes no further than [`classify`].

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::Row;
use vigil_rules::checks::password_storage::{classify, Entry, Facts, Params, Source, SqlSource};

use super::dsn::Dsn;
use super::host::{blocking, read_optional, HostCtx};
use crate::collect::CollectError;

pub async fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, CollectError> {
    let mut facts = Facts::default();
    if let Some(shadow) = &p.shadow {
        let (shadow, ctx) = (shadow.clone(), ctx.clone());
        facts
            .sources
            .push(blocking(move || Ok::<_, CollectError>(read_shadow(&shadow, &ctx))).await?);
    }
    if let Some(sql) = &p.sql {
        facts.sources.push(read_sql(sql, ctx).await);
    }
    Ok(facts)
}

fn read_shadow(shadow: &str, ctx: &HostCtx) -> Source {
    let mut src = Source {
        name: shadow.to_owned(),
        entries: vec![],
        error: None,
        malformed: vec![],
    };
    let text = match read_optional(&ctx.path(shadow)) {
        Ok(Some(t)) => t,
        Ok(None) => {
            src.error = Some(format!("`{shadow}` does not exist"));
            return src;
        }
        Err(e) => {
            src.error = Some(e.to_string());
            return src;
        }
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.splitn(3, ':');
        match (fields.next(), fields.next()) {
            (Some(name), Some(field)) if !name.is_empty() => src.entries.push(Entry {
                subject: name.to_owned(),
                place: format!("{shadow}:{}", i + 1),
                file: Some(shadow.to_owned()),
                line: Some((i + 1) as u64),
                stored: classify(field),
            }),
            _ => src
                .malformed
                .push(((i + 1) as u64, "expected `name:password:…`".into())),
        }
    }
    src
}

async fn read_sql(sql: &SqlSource, ctx: &HostCtx) -> Source {
    let mut src = Source {
        name: "sql".into(),
        entries: vec![],
        error: None,
        malformed: vec![],
    };
    let dsn = match Dsn::read(
        sql.dsn.as_deref(),
        sql.dsn_file.as_deref(),
        sql.dsn_env.as_deref(),
        ctx,
    ) {
        Ok(d) => d,
        Err(e) => {
            src.error = Some(e.to_string());
            return src;
        }
    };
    sqlx::any::install_default_drivers();
    let pool = match AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(dsn.expose())
        .await
    {
        Ok(p) => p,
        Err(e) => {
            src.error = Some(dsn.scrub(&format!("cannot connect to the database: {e}")));
            return src;
        }
    };
    let rows = match sqlx::query(&sql.query).fetch_all(&pool).await {
        Ok(r) => r,
        Err(e) => {
            src.error = Some(dsn.scrub(&format!("query failed: {e}")));
            return src;
        }
    };
    for (i, row) in rows.iter().enumerate() {
        let label = match row.try_get::<String, _>(1) {
            Ok(s) => s,
            Err(_) => row
                .try_get::<i64, _>(1)
                .map(|n| n.to_string())
                .unwrap_or_else(|_| format!("row {}", i + 1)),
        };
        let stored = match row.try_get::<Option<String>, _>(0) {
            Ok(v) => classify(v.as_deref().unwrap_or("")),
            Err(e) => {
                src.error = Some(format!(
                    "the query's first column must be text (the stored hash): {e}"
                ));
                return src;
            }
        };
        src.entries.push(Entry {
            subject: label,
            place: format!("sql row {}", i + 1),
            file: None,
            line: None,
            stored,
        });
    }
    if rows.is_empty() && !sql.allow_empty {
        src.error = Some("the query returned no rows; nothing found is not proof (set `allow_empty: true` if that is expected)".into());
    }
    pool.close().await;
    src
}
