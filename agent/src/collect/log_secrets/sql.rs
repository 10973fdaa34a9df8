//! Rows of a database query scanned like log lines: each row one line of
//! its cells (` | ` between them), numbered from 1; at most `sample_rows`.

use std::time::Duration;

use crate::collect::dsn::Dsn;
use crate::collect::host::HostCtx;
use futures_util::TryStreamExt;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::Row;
use vigil_rules::checks::log_secrets::detect::Scanner;
use vigil_rules::checks::log_secrets::{FileFacts, HitFact, Params, SqlScan};

pub(super) fn scan(q: &SqlScan, scanner: &Scanner, p: &Params, ctx: &HostCtx) -> FileFacts {
    let mut ff = FileFacts {
        path: format!("sql `{}`", q.query.trim()),
        ..Default::default()
    };
    let dsn = match Dsn::read(
        q.dsn.as_deref(),
        q.dsn_file.as_deref(),
        q.dsn_env.as_deref(),
        ctx,
    ) {
        Ok(d) => d,
        Err(e) => {
            ff.error = Some(e.to_string());
            return ff;
        }
    };
    let fut = rows(dsn.expose(), &q.query, q.sample_rows, p.max_line_bytes);
    // The collector runs on a blocking thread of the agent's runtime (or
    // none, in benchmarks): wait for the query there.
    let got = match tokio::runtime::Handle::try_current() {
        Ok(h) => h.block_on(fut),
        Err(_) => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(fut),
            Err(e) => Err(format!("cannot start a runtime for the query: {e}")),
        },
    };
    let text = match got {
        Ok(t) => t,
        Err(e) => {
            ff.error = Some(dsn.scrub(&e));
            return ff;
        }
    };
    ff.bytes_scanned = text.len() as u64;
    let mut hits = Vec::new();
    let n = scanner.scan(&text, 1, &mut hits);
    ff.to_offset = n;
    for h in hits {
        ff.hits_total += 1;
        if ff.hits.len() < p.max_findings_per_file {
            let mut f = HitFact::from(h);
            f.detail = Some(match f.detail.take() {
                Some(d) => format!("{d}, row {}", f.line),
                None => format!("row {}", f.line),
            });
            ff.hits.push(f);
        }
    }
    ff
}

/// The rows as lines of text.
async fn rows(dsn: &str, query: &str, max: u64, max_cell: usize) -> Result<Vec<u8>, String> {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(dsn)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    let mut out = Vec::new();
    let mut stream = sqlx::query(query).fetch(&pool);
    let mut n = 0u64;
    while n < max {
        let Some(row) = stream
            .try_next()
            .await
            .map_err(|e| format!("query failed: {e}"))?
        else {
            break;
        };
        n += 1;
        for i in 0..row.columns().len() {
            if i > 0 {
                out.extend_from_slice(b" | ");
            }
            let cell = cell(&row, i);
            let cell = cell.get(..max_cell.min(cell.len())).unwrap_or(&[]);
            out.extend(cell.iter().map(|c| if *c == b'\n' { b' ' } else { *c }));
        }
        out.push(b'\n');
    }
    drop(stream);
    pool.close().await;
    Ok(out)
}

fn cell(row: &AnyRow, i: usize) -> Vec<u8> {
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return v.unwrap_or_default().into_bytes();
    }
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return v.map(|v| v.to_string()).unwrap_or_default().into_bytes();
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
        return v.map(|v| v.to_string()).unwrap_or_default().into_bytes();
    }
    if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
        return v.unwrap_or_default();
    }
    Vec::new()
}
