//! Facts for `password_storage`: each stored password is classified where it
//! is read; the hash itself goes no further than [`classify`].

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::Row;
use vigil_rules::checks::password_storage::{classify, Entry, Facts, Params, Source, SqlSource};

use super::{blocking, read_optional, HostCtx};

pub async fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, String> {
    let mut facts = Facts::default();
    if let Some(shadow) = &p.shadow {
        let (shadow, ctx) = (shadow.clone(), ctx.clone());
        facts
            .sources
            .push(blocking(move || Ok(read_shadow(&shadow, &ctx))).await?);
    }
    if let Some(sql) = &p.sql {
        facts.sources.push(read_sql(sql).await);
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
            src.error = Some(e);
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

pub fn dsn_of(sql: &SqlSource) -> Result<String, String> {
    if let Some(d) = &sql.dsn {
        return Ok(d.clone());
    }
    if let Some(f) = &sql.dsn_file {
        return std::fs::read_to_string(f)
            .map(|s| s.trim().to_owned())
            .map_err(|e| format!("cannot read `dsn_file` `{f}`: {}", super::io_reason(&e)));
    }
    if let Some(v) = &sql.dsn_env {
        return std::env::var(v).map_err(|_| format!("environment variable `{v}` is not set"));
    }
    Err("no connection string".into())
}

/// Removes the password of a connection string from a message.
pub fn scrub(msg: &str, dsn: &str) -> String {
    let mut out = msg.to_owned();
    if let Some((_, rest)) = dsn.split_once("://") {
        if let Some((userinfo, _)) = rest.split_once('@') {
            if let Some((_, pass)) = userinfo.split_once(':') {
                if !pass.is_empty() {
                    out = out.replace(pass, "[REDACTED]");
                }
            }
        }
    }
    out
}

async fn read_sql(sql: &SqlSource) -> Source {
    let mut src = Source {
        name: "sql".into(),
        entries: vec![],
        error: None,
        malformed: vec![],
    };
    let dsn = match dsn_of(sql) {
        Ok(d) => d,
        Err(e) => {
            src.error = Some(e);
            return src;
        }
    };
    sqlx::any::install_default_drivers();
    let pool = match AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&dsn)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            src.error = Some(scrub(&format!("cannot connect to the database: {e}"), &dsn));
            return src;
        }
    };
    let rows = match sqlx::query(&sql.query).fetch_all(&pool).await {
        Ok(r) => r,
        Err(e) => {
            src.error = Some(scrub(&format!("query failed: {e}"), &dsn));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_hides_the_password() {
        assert_eq!(
            scrub(
                "failed for postgres://u:s3cret@h/db",
                "postgres://u:s3cret@h/db"
            ),
            "failed for postgres://u:[REDACTED]@h/db"
        );
    }
}
