//! The export feature's SQL: archives streamed into chunks and read back,
//! the rows of archives, links and requests, and the sweep of expired ones.

use axum::body::Body;
use futures_util::StreamExt;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use super::types::{valid_account, valid_sha, ExportRequestView, CHUNK, ORPHAN_MS};
use crate::audit::AuditLog;
use crate::error::{ApiError, ApiResult};
use crate::posture::rfc3339;
use crate::store::{now_ms, Backend, Store, StoreError};

/// Streams the body into `export_chunks` under a fresh upload id, hashing
/// it; returns (upload id, digest, size). At most one chunk is in memory.
/// On any error the chunks written so far are deleted.
pub(super) async fn receive(
    store: &Store,
    body: Body,
    max: u64,
) -> Result<(String, String, u64), ApiError> {
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let upload = hex::encode(id);
    match receive_chunks(store, &upload, body, max).await {
        Ok((sha, size)) => Ok((upload, sha, size)),
        Err(e) => {
            delete_upload(store, &upload).await;
            Err(e)
        }
    }
}

pub(super) async fn receive_chunks(
    store: &Store,
    upload: &str,
    body: Body,
    max: u64,
) -> Result<(String, u64), ApiError> {
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut n: i64 = 0;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("upload interrupted: {e}")))?;
        size = size.saturating_add(chunk.len() as u64);
        if size > max {
            return Err(ApiError::TooLarge(format!(
                "the archive is larger than {max} bytes (`max_export_bytes`)"
            )));
        }
        hasher.update(&chunk);
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let take = rest.len().min(CHUNK - buf.len());
            let (head, tail) = rest.split_at(take);
            buf.extend_from_slice(head);
            rest = tail;
            if buf.len() == CHUNK {
                let full = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK));
                put_chunk(store, upload, n, full).await?;
                n += 1;
            }
        }
    }
    if !buf.is_empty() || n == 0 {
        put_chunk(store, upload, n, buf).await?;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

pub(super) async fn put_chunk(
    store: &Store,
    upload: &str,
    n: i64,
    data: Vec<u8>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO export_chunks (upload, n, data, created_at) VALUES ($1, $2, $3, $4)")
        .bind(upload)
        .bind(n)
        .bind(data)
        .bind(now_ms())
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// Deletes an upload's chunks (best effort: [`sweep`] gets what is left).
pub(super) async fn delete_upload(store: &Store, upload: &str) {
    if let Err(e) = sqlx::query("DELETE FROM export_chunks WHERE upload = $1")
        .bind(upload)
        .execute(&store.pool)
        .await
    {
        tracing::warn!(error = %e, "cannot delete the chunks of a refused upload; the sweep will");
    }
}

/// The archive's chunks in order, read one at a time: the response body of
/// a download. A chunk missing before `size` bytes were sent is an error
/// (the archive was deleted meanwhile), which cuts the response short.
pub(super) fn chunk_stream(
    store: Store,
    upload: String,
    size: u64,
) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    futures_util::stream::unfold((0_i64, 0_u64), move |(n, sent)| {
        let (store, upload) = (store.clone(), upload.clone());
        async move {
            if sent >= size && n > 0 {
                return None;
            }
            let row: Result<Option<Vec<u8>>, sqlx::Error> =
                sqlx::query_scalar("SELECT data FROM export_chunks WHERE upload = $1 AND n = $2")
                    .bind(&upload)
                    .bind(n)
                    .fetch_optional(&store.pool)
                    .await;
            match row {
                Ok(Some(data)) if !data.is_empty() => {
                    let sent = sent.saturating_add(data.len() as u64);
                    Some((Ok(axum::body::Bytes::from(data)), (n + 1, sent)))
                }
                Ok(_) if sent >= size => None,
                Ok(_) => Some((
                    Err(std::io::Error::other(
                        "the archive was deleted while it was sent",
                    )),
                    (n + 1, u64::MAX),
                )),
                Err(e) => Some((Err(std::io::Error::other(e)), (n + 1, u64::MAX))),
            }
        }
    })
}

/// The archive proved for `account`: (sha256, host, latest expiry). From the
/// open closure's own `export_ready` transition evidence, else from an open
/// export request's proof; never from any host's earlier result (issue 19
/// item 6).
pub(super) async fn proved_archive(
    store: &Store,
    account: &str,
) -> ApiResult<(String, String, Option<i64>)> {
    let closure = sqlx::query("SELECT state, history FROM closures WHERE account = $1")
        .bind(account)
        .fetch_optional(&store.pool)
        .await
        .map_err(StoreError::from)?;
    if let Some(row) = closure {
        let st: String = row.try_get("state").map_err(StoreError::from)?;
        let history: String = row.try_get("history").map_err(StoreError::from)?;
        if st == "closed" {
            return Err(ApiError::Gone(format!(
                "the closure of `{account}` is closed: its export was deleted"
            )));
        }
        if st != "cancelled" {
            let history: Vec<serde_json::Value> =
                serde_json::from_str(&history).unwrap_or_default();
            let proof = history
                .iter()
                .rev()
                .find(|h| h.get("to").and_then(|v| v.as_str()) == Some("export_ready"))
                .and_then(|h| h.pointer("/evidence/hosts"))
                .and_then(|h| h.as_array())
                .and_then(|hosts| {
                    hosts.iter().find_map(|p| {
                        let sha = p.get("archive_sha256")?.as_str().filter(|s| valid_sha(s))?;
                        let host = p.get("host")?.as_str()?;
                        Some((sha.to_owned(), host.to_owned()))
                    })
                });
            if let Some((sha, host)) = proof {
                return Ok((sha, host, None));
            }
        }
    }
    let req = sqlx::query("SELECT sha256, host, expires_at FROM export_requests WHERE account = $1 AND ended_at IS NULL AND expires_at > $2")
        .bind(account)
        .bind(now_ms())
        .fetch_optional(&store.pool)
        .await
        .map_err(StoreError::from)?;
    if let Some(row) = req {
        let sha: Option<String> = row.try_get("sha256").map_err(StoreError::from)?;
        let host: Option<String> = row.try_get("host").map_err(StoreError::from)?;
        let expires: i64 = row.try_get("expires_at").map_err(StoreError::from)?;
        if let (Some(sha), Some(host)) = (sha.filter(|s| valid_sha(s)), host) {
            return Ok((sha, host, Some(expires)));
        }
    }
    Err(ApiError::Conflict(format!(
        "no export of `{account}` is proved: the closure has not reached `export_ready` and no export request has been proved"
    )))
}

/// Whether an upload or a link is allowed for `account`: a closure is open
/// (not `closed` or `cancelled`), or an export request is open.
pub(super) async fn export_open(store: &Store, account: &str) -> Result<bool, StoreError> {
    let mut conn = store.pool.acquire().await?;
    export_open_in(&mut conn, account).await
}

pub(super) async fn export_open_in(
    conn: &mut AnyConnection,
    account: &str,
) -> Result<bool, StoreError> {
    let closure: Option<String> =
        sqlx::query_scalar("SELECT state FROM closures WHERE account = $1")
            .bind(account)
            .fetch_optional(&mut *conn)
            .await?;
    if closure.as_deref() == Some("closed") {
        return Ok(false);
    }
    if closure.is_some_and(|s| s != "cancelled") {
        return Ok(true);
    }
    let req: Option<String> = sqlx::query_scalar(
        "SELECT account FROM export_requests WHERE account = $1 AND ended_at IS NULL AND expires_at > $2",
    )
    .bind(account)
    .bind(now_ms())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(req.is_some())
}

/// What [`drop_in`] deleted: the archives' digests.
#[derive(Debug, Default)]
pub struct Dropped {
    pub archives: Vec<String>,
    pub links: i64,
}

/// Deletes the rows of every export archive and link of `account` and ends
/// its export request, inside the caller's transaction (which holds the
/// audit write lock), with one `export.deleted` audit entry. The files go
/// after the commit ([`remove_files`]).
pub async fn drop_in(
    conn: &mut AnyConnection,
    audit: &AuditLog,
    backend: Backend,
    account: &str,
    actor: &str,
    why: &str,
) -> Result<Dropped, StoreError> {
    let archives: Vec<String> =
        sqlx::query_scalar("SELECT sha256 FROM exports WHERE account = $1 ORDER BY sha256")
            .bind(account)
            .fetch_all(&mut *conn)
            .await?;
    sqlx::query("DELETE FROM export_chunks WHERE upload IN (SELECT upload FROM exports WHERE account = $1 AND upload IS NOT NULL)")
        .bind(account)
        .execute(&mut *conn)
        .await?;
    let links = sqlx::query("DELETE FROM export_links WHERE account = $1")
        .bind(account)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM exports WHERE account = $1")
        .bind(account)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE export_requests SET ended_at = $1 WHERE account = $2 AND ended_at IS NULL")
        .bind(now_ms())
        .bind(account)
        .execute(&mut *conn)
        .await?;
    let links = i64::try_from(links).unwrap_or(i64::MAX);
    audit
        .append_in(
            conn,
            backend,
            "export.deleted",
            actor,
            json!({"account": account, "why": why, "archives": archives, "links": links}),
        )
        .await?;
    Ok(Dropped { archives, links })
}

/// Removes `DATA/exports/ACCOUNT/`: archives stored on disk before migration
/// 0022 (the chunks in the database went with [`drop_in`]'s transaction).
pub async fn remove_files(exports_dir: &std::path::Path, account: &str, d: &Dropped) {
    if !valid_account(account) {
        return;
    }
    let dir = exports_dir.join(account);
    match tokio::fs::remove_dir_all(&dir).await {
        Ok(()) => {
            tracing::info!(%account, archives = d.archives.len(), links = d.links, "export archives deleted");
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::error!(%account, error = %e, dir = %dir.display(), "cannot delete the export archives")
        }
    }
}

/// An open export request.
pub struct OpenRequest {
    pub account: String,
    /// A host proved its archive: no more tasks are handed out.
    pub proved: bool,
}

pub async fn open_requests(store: &Store, now: i64) -> Result<Vec<OpenRequest>, StoreError> {
    let rows = sqlx::query("SELECT account, sha256 FROM export_requests WHERE ended_at IS NULL AND expires_at > $1 ORDER BY account")
        .bind(now)
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(OpenRequest {
                account: r.try_get("account")?,
                proved: r.try_get::<Option<String>, _>("sha256")?.is_some(),
            })
        })
        .collect()
}

/// Accounts whose export request ended since `since`.
pub async fn ended_requests(store: &Store, since: i64) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT account FROM export_requests WHERE ended_at IS NOT NULL AND ended_at >= $1 ORDER BY account",
    )
    .bind(since)
    .fetch_all(&store.pool)
    .await?)
}

/// Records an app host's proof of an export on request (the first one
/// wins); audited with the proof in one transaction.
pub async fn record_request_proof(
    store: &Store,
    audit: &AuditLog,
    account: &str,
    host: &str,
    done: bool,
    task: &serde_json::Value,
    received_at: i64,
) -> Result<bool, StoreError> {
    let Some(sha) = task
        .get("archive_sha256")
        .and_then(|v| v.as_str())
        .filter(|s| valid_sha(s))
    else {
        return Ok(false);
    };
    if !done {
        return Ok(false);
    }
    let mut w = audit.begin(store).await?;
    let r = sqlx::query("UPDATE export_requests SET sha256 = $1, host = $2, proved_at = $3 WHERE account = $4 AND ended_at IS NULL AND expires_at > $3 AND sha256 IS NULL")
        .bind(sha)
        .bind(host)
        .bind(received_at)
        .bind(account)
        .execute(&mut *w.tx)
        .await?;
    if r.rows_affected() == 0 {
        w.rollback().await?;
        return Ok(false);
    }
    w.append(
        "export.proved",
        host,
        json!({"account": account, "sha256": sha}),
    )
    .await?;
    w.commit().await?;
    Ok(true)
}

/// Ends the export requests whose validity passed: their archives, rows and
/// links are deleted (audited as `export.deleted`, why `export expired`)
/// unless a closure of the account is open (it deletes them when it ends).
pub async fn sweep(
    store: &Store,
    audit: &AuditLog,
    exports_dir: &std::path::Path,
    now: i64,
) -> Result<usize, StoreError> {
    let due: Vec<String> = sqlx::query_scalar(
        "SELECT account FROM export_requests WHERE ended_at IS NULL AND expires_at <= $1",
    )
    .bind(now)
    .fetch_all(&store.pool)
    .await?;
    let mut n = 0;
    for account in due {
        let mut w = audit.begin(store).await?;
        let closure: Option<String> =
            sqlx::query_scalar("SELECT state FROM closures WHERE account = $1")
                .bind(&account)
                .fetch_optional(&mut *w.tx)
                .await?;
        let dropped = if closure.is_some_and(|s| s != "closed" && s != "cancelled") {
            sqlx::query(
                "UPDATE export_requests SET ended_at = $1 WHERE account = $2 AND ended_at IS NULL",
            )
            .bind(now)
            .bind(&account)
            .execute(&mut *w.tx)
            .await?;
            None
        } else {
            Some(
                drop_in(
                    &mut w.tx,
                    audit,
                    store.backend,
                    &account,
                    "reporter",
                    "export expired",
                )
                .await?,
            )
        };
        w.commit().await?;
        if let Some(d) = dropped {
            remove_files(exports_dir, &account, &d).await;
        }
        n += 1;
    }
    // Interrupted uploads: chunks that no archive row names.
    sqlx::query("DELETE FROM export_chunks WHERE created_at < $1 AND upload NOT IN (SELECT upload FROM exports WHERE upload IS NOT NULL)")
        .bind(now.saturating_sub(ORPHAN_MS))
        .execute(&store.pool)
        .await?;
    Ok(n)
}

pub(super) async fn request_view(
    store: &Store,
    account: &str,
) -> ApiResult<Option<ExportRequestView>> {
    let Some(r) = sqlx::query("SELECT requested_by, reason, requested_at, expires_at, sha256, host, ended_at FROM export_requests WHERE account = $1")
        .bind(account)
        .fetch_optional(&store.pool)
        .await
        .map_err(StoreError::from)?
    else {
        return Ok(None);
    };
    let g = |e: sqlx::Error| ApiError::from(StoreError::from(e));
    let sha: Option<String> = r.try_get("sha256").map_err(g)?;
    let ended: Option<i64> = r.try_get("ended_at").map_err(g)?;
    let expires: i64 = r.try_get("expires_at").map_err(g)?;
    let uploaded = match &sha {
        Some(s) => sqlx::query_scalar::<_, String>(
            "SELECT sha256 FROM exports WHERE account = $1 AND sha256 = $2",
        )
        .bind(account)
        .bind(s)
        .fetch_optional(&store.pool)
        .await
        .map_err(StoreError::from)?
        .is_some(),
        None => false,
    };
    let st = if ended.is_some() || expires <= now_ms() {
        "ended"
    } else if uploaded {
        "ready"
    } else if sha.is_some() {
        "proved"
    } else {
        "pending"
    };
    Ok(Some(ExportRequestView {
        account: account.to_owned(),
        state: st.into(),
        requested_by: r.try_get("requested_by").map_err(g)?,
        reason: r.try_get("reason").map_err(g)?,
        requested_at: rfc3339(r.try_get("requested_at").map_err(g)?),
        expires_at: rfc3339(expires),
        sha256: sha,
        host: r.try_get("host").map_err(g)?,
    }))
}
