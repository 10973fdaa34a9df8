//! The portable export's way to the customer (GDPR item 5).
//!
//! The app server that holds a site writes the archive and proves its
//! manifest in the `export` phase of the `erasure` check; its daemon then
//! uploads the archive (`PUT /api/v1/exports/{account}`, streamed into the
//! database in chunks of [`CHUNK`] bytes and hashed on the way, so that every
//! reporter sharing the database serves it; issue 22 item 6). Staff make a
//! download link (`POST /api/v1/accounts/{account}/export/link`) only for the
//! archive whose digest the agent proved: a random token of 256 bits, stored
//! as its SHA-256 digest, valid for a chosen time (default 7 days, at most
//! 30). `GET /exports/{token}` serves the archive to whoever holds the link
//! until it expires (410 afterwards). Uploads, links and downloads go into
//! the audit log, each in the same transaction as its row; the token never does.
//!
//! Exports on request (issue 21): staff open one with
//! `POST /api/v1/accounts/{account}/export` outside any closure; the app hosts
//! get an `export` task until one proves an archive, upload it, staff make a
//! link for that archive, and once the request's validity ends the archive,
//! its rows and links are deleted (audited) and the app hosts are told to
//! delete their copy.
//!
//! INVARIANT: after a closure ends (`closed` or `cancelled`) nothing of the
//! account's export remains here ([`drop_in`], called in the transition's
//! transaction), and no upload or link is accepted for it unless a new export
//! request was opened after a cancellation. A link's digest is the one the
//! closure's own `export_ready` evidence names, or the one an open request's
//! proof set; never any host's earlier result.

use std::path::{Path as FsPath, PathBuf};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use futures_util::StreamExt;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, AgentAuth, Staff};
use crate::posture::rfc3339;
use crate::state::{AppState, Shared};
use crate::store::{now_ms, Store, StoreError};
use sqlx::AnyConnection;

/// Largest archive accepted by default.
pub const DEFAULT_MAX_EXPORT: u64 = 2 * 1024 * 1024 * 1024;
/// How long a link lives unless staff say otherwise.
pub const DEFAULT_LINK: std::time::Duration = std::time::Duration::from_secs(7 * 86400);
/// The longest a link may live.
pub const MAX_LINK: std::time::Duration = std::time::Duration::from_secs(30 * 86400);
/// The header carrying the archive's SHA-256 (hex) on upload and download.
pub const SHA_HEADER: &str = "x-archive-sha256";

fn valid_account(a: &str) -> bool {
    crate::extract::valid_account(a)
}

fn valid_sha(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// An archive from before migration 0022, kept on the disk of the reporter
/// that received it (its `exports` row names no upload).
fn archive_path(dir: &FsPath, account: &str, sha: &str) -> PathBuf {
    dir.join(account).join(format!("{sha}.tar.gz"))
}

/// The largest piece of an archive held in memory or in one row.
pub const CHUNK: usize = 1024 * 1024;
/// Chunks no `exports` row names (an upload cut off, a reporter killed)
/// are deleted by [`sweep`] once this old.
const ORPHAN_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Uploaded {
    pub account: String,
    pub sha256: String,
    pub size: u64,
    /// False when the same archive was already stored.
    pub created: bool,
}

/// Streams the body into `export_chunks` under a fresh upload id, hashing
/// it; returns (upload id, digest, size). At most one chunk is in memory.
/// On any error the chunks written so far are deleted.
async fn receive(store: &Store, body: Body, max: u64) -> Result<(String, String, u64), ApiError> {
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

async fn receive_chunks(
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

async fn put_chunk(store: &Store, upload: &str, n: i64, data: Vec<u8>) -> Result<(), StoreError> {
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
async fn delete_upload(store: &Store, upload: &str) {
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
fn chunk_stream(
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

/// An app server hands in the export archive it proved.
#[utoipa::path(put, path = "/api/v1/exports/{account}", tag = "agents", security(("bearer" = [])),
    params(("account" = String, Path, description = "account id"),
           ("x-archive-sha256" = String, Header, description = "SHA-256 (lower-case hex) of the body")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the tar.gz archive (sent as application/gzip or application/octet-stream; the type is not checked, the digest is)"),
    responses((status = 201, body = Uploaded, description = "stored"), (status = 200, body = Uploaded, description = "already stored"),
        (status = 400, description = "bad account, digest header missing or not matching the body"),
        (status = 401, description = "unknown or revoked token"), (status = 403, description = "this agent's roles do not export"),
        (status = 404, description = "no closure for the account"), (status = 413, description = "larger than `max_export_bytes`")))]
pub async fn upload(
    State(state): State<Shared>,
    AgentAuth(agent): AgentAuth,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Uploaded>)> {
    if !valid_account(&account) {
        return Err(ApiError::BadRequest(format!(
            "`{account}` is not an account id"
        )));
    }
    let claimed = headers
        .get(SHA_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .filter(|s| valid_sha(s))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "the `{SHA_HEADER}` header (64 hex digits) is required"
            ))
        })?;
    if !crate::config::erasure::agent_proves(&state.erasure, "export", &agent) {
        return Err(ApiError::Forbidden(format!(
            "`{}` has no role that exports sites",
            agent.host
        )));
    }
    if !export_open(&state.store, &account).await? {
        return Err(ApiError::NotFound(format!(
            "no closure or export is open for `{account}`"
        )));
    }
    let (upload, sha, size) = receive(&state.store, body, state.max_export_bytes).await?;
    if sha != claimed {
        delete_upload(&state.store, &upload).await;
        return Err(ApiError::BadRequest(format!(
            "the body's SHA-256 is {sha}, not the {claimed} announced"
        )));
    }
    let size_i = i64::try_from(size).unwrap_or(i64::MAX);
    // The row and its audit entry are one transaction (issue 19 item 15), and
    // the closure is checked again inside it: one that ended meanwhile wins.
    let stored = async {
        let _g = state.audit.write_lock().await;
        let mut tx = state.store.begin_write().await?;
        if !export_open_in(&mut tx, &account).await? {
            tx.rollback().await.map_err(StoreError::from)?;
            return Err(ApiError::NotFound(format!(
                "no closure or export is open for `{account}`"
            )));
        }
        let inserted = sqlx::query(
            "INSERT INTO exports (account, sha256, size, host, uploaded_at, upload) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (account, sha256) DO NOTHING",
        )
        .bind(&account)
        .bind(&sha)
        .bind(size_i)
        .bind(&agent.host)
        .bind(now_ms())
        .bind(&upload)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        if inserted > 0 {
            state
                .audit
                .append_in(
                    &mut tx,
                    state.store.backend,
                    "export.uploaded",
                    &agent.host,
                    json!({"account": account, "sha256": sha, "size": size}),
                )
                .await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<bool, ApiError>(inserted > 0)
    }
    .await;
    // The same archive stored before (by this reporter or another) keeps
    // its own chunks; a refused one leaves none.
    let created = match stored {
        Ok(true) => true,
        Ok(false) => {
            delete_upload(&state.store, &upload).await;
            false
        }
        Err(e) => {
            delete_upload(&state.store, &upload).await;
            return Err(e);
        }
    };
    if created {
        tracing::info!(%account, host = %agent.host, size, "export archive stored");
    }
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(Uploaded {
            account,
            sha256: sha,
            size,
            created,
        }),
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// How long the link works (`72h`, `7d`); default 7 days, at most 30.
    #[serde(default)]
    pub valid_for: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportLink {
    /// The download path, relative to the reporter's public URL; shown once.
    pub path: String,
    pub expires_at: String,
    pub sha256: String,
    pub size: u64,
    /// The host that proved and uploaded the archive.
    pub host: String,
}

/// The archive proved for `account`: (sha256, host, latest expiry). From the
/// open closure's own `export_ready` transition evidence, else from an open
/// export request's proof; never from any host's earlier result (issue 19
/// item 6).
async fn proved_archive(state: &Shared, account: &str) -> ApiResult<(String, String, Option<i64>)> {
    let closure = sqlx::query("SELECT state, history FROM closures WHERE account = $1")
        .bind(account)
        .fetch_optional(&state.store.pool)
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
        .fetch_optional(&state.store.pool)
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

/// Makes a download link for the archive the export phase proved.
#[utoipa::path(post, path = "/api/v1/accounts/{account}/export/link", tag = "staff", security(("bearer" = [])),
    params(("account" = String, Path, description = "account id")),
    request_body(content = LinkRequest, description = "optional `valid_for`"),
    responses((status = 201, body = ExportLink), (status = 400, description = "bad account or `valid_for`"),
        (status = 401, description = "not staff"), (status = 403, description = "not an admin"),
        (status = 409, description = "no proved export yet, or its archive not uploaded yet"),
        (status = 410, description = "the closure ended: the export was deleted")))]
pub async fn create_link(
    State(state): State<Shared>,
    Admin(user): Admin,
    Path(account): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<ExportLink>)> {
    if !valid_account(&account) {
        return Err(ApiError::BadRequest(format!(
            "`{account}` is not an account id"
        )));
    }
    let req: LinkRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LinkRequest::default()
    } else {
        crate::extract::parse_json(&body, "link request")?
    };
    let valid_for = match req.valid_for.as_deref() {
        None => DEFAULT_LINK,
        Some(s) => vigil_rules::duration::PolicyDuration::parse(s)
            .map_err(|e| ApiError::BadRequest(format!("`valid_for`: {e}")))?
            .as_std(),
    };
    if valid_for.is_zero() || valid_for > MAX_LINK {
        return Err(ApiError::BadRequest(
            "`valid_for` must be more than 0 and at most 30 days".into(),
        ));
    }
    let (sha, host, request_expiry) = proved_archive(&state, &account).await?;
    let size: Option<i64> =
        sqlx::query_scalar("SELECT size FROM exports WHERE account = $1 AND sha256 = $2")
            .bind(&account)
            .bind(&sha)
            .fetch_optional(&state.store.pool)
            .await
            .map_err(StoreError::from)?;
    let Some(size) = size else {
        return Err(ApiError::Conflict(format!(
            "`{host}` proved the archive {sha} but has not uploaded it yet"
        )));
    };
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let digest = crate::auth::digest(&token);
    let now = now_ms();
    let ms = i64::try_from(valid_for.as_millis()).unwrap_or(i64::MAX);
    // A link to an export on request lives no longer than the request.
    let expires_at =
        request_expiry.map_or(now.saturating_add(ms), |e| e.min(now.saturating_add(ms)));
    {
        let _g = state.audit.write_lock().await;
        let mut tx = state.store.begin_write().await?;
        if !export_open_in(&mut tx, &account).await? {
            tx.rollback().await.map_err(StoreError::from)?;
            return Err(ApiError::Gone(format!(
                "no closure or export is open for `{account}` any more"
            )));
        }
        sqlx::query(
            "INSERT INTO export_links (digest, account, sha256, created_by, created_at, expires_at, downloads) \
             VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(&digest)
        .bind(&account)
        .bind(&sha)
        .bind(&user.name)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        state
            .audit
            .append_in(
                &mut tx,
                state.store.backend,
                "export.link_created",
                &user.name,
                json!({"account": account, "sha256": sha, "expires_at": rfc3339(expires_at),
                       "link": digest.get(..16).unwrap_or_default()}),
            )
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
    }
    Ok((
        StatusCode::CREATED,
        Json(ExportLink {
            path: format!("/exports/{token}"),
            expires_at: rfc3339(expires_at),
            sha256: sha,
            size: u64::try_from(size).unwrap_or(0),
            host,
        }),
    ))
}

/// `GET /exports/{token}`: the archive, to whoever holds an unexpired link.
async fn download(State(state): State<Shared>, Path(token): Path<String>) -> Response {
    match serve(&state, &token).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn serve(state: &Shared, token: &str) -> ApiResult<Response> {
    let unknown = || ApiError::NotFound("no such download link".into());
    if token.len() != 43
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(unknown());
    }
    let digest = crate::auth::digest(token);
    let row = sqlx::query("SELECT account, sha256, expires_at FROM export_links WHERE digest = $1")
        .bind(&digest)
        .fetch_optional(&state.store.pool)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(unknown)?;
    let account: String = row.try_get("account").map_err(StoreError::from)?;
    let sha: String = row.try_get("sha256").map_err(StoreError::from)?;
    let expires_at: i64 = row.try_get("expires_at").map_err(StoreError::from)?;
    if now_ms() >= expires_at {
        return Err(ApiError::Gone(format!(
            "this link expired at {}; ask for a new one",
            rfc3339(expires_at)
        )));
    }
    if !valid_account(&account) || !valid_sha(&sha) {
        return Err(ApiError::Internal(
            "a stored link names a bad archive".into(),
        ));
    }
    let stored = sqlx::query("SELECT size, upload FROM exports WHERE account = $1 AND sha256 = $2")
        .bind(&account)
        .bind(&sha)
        .fetch_optional(&state.store.pool)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| ApiError::Gone("the archive of this link was deleted".into()))?;
    let size: i64 = stored.try_get("size").map_err(StoreError::from)?;
    let upload: Option<String> = stored.try_get("upload").map_err(StoreError::from)?;
    let (body, len) = match upload {
        Some(u) => {
            let size = u64::try_from(size).unwrap_or(0);
            (
                Body::from_stream(chunk_stream(state.store.clone(), u, size)),
                Some(size),
            )
        }
        None => {
            let path = archive_path(&state.exports_dir, &account, &sha);
            let file = tokio::fs::File::open(&path).await.map_err(|e| {
                ApiError::Internal(format!("cannot open the archive `{}`: {e}", path.display()))
            })?;
            let len = file.metadata().await.map(|m| m.len()).ok();
            (
                Body::from_stream(tokio_util::io::ReaderStream::new(file)),
                len,
            )
        }
    };
    // The count and its audit entry are one transaction: a download is
    // counted exactly when it is in the log.
    {
        let _g = state.audit.write_lock().await;
        let mut tx = state.store.begin_write().await?;
        sqlx::query("UPDATE export_links SET downloads = downloads + 1 WHERE digest = $1")
            .bind(&digest)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        state
            .audit
            .append_in(
                &mut tx,
                state.store.backend,
                "export.downloaded",
                "link",
                json!({"account": account, "sha256": sha, "link": digest.get(..16).unwrap_or_default()}),
            )
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
    }
    let mut resp = (
        [
            (header::CONTENT_TYPE, "application/gzip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{account}-export.tar.gz\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response();
    if let Ok(v) = sha.parse() {
        resp.headers_mut().insert(SHA_HEADER, v);
    }
    if let Some(Ok(v)) = len.map(|l| l.to_string().parse()) {
        resp.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    Ok(resp)
}

/// Whether an upload or a link is allowed for `account`: a closure is open
/// (not `closed` or `cancelled`), or an export request is open.
async fn export_open(store: &Store, account: &str) -> Result<bool, StoreError> {
    let mut conn = store.pool.acquire().await?;
    export_open_in(&mut conn, account).await
}

async fn export_open_in(conn: &mut AnyConnection, account: &str) -> Result<bool, StoreError> {
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
    state: &AppState,
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
    state
        .audit
        .append_in(
            conn,
            state.store.backend,
            "export.deleted",
            actor,
            json!({"account": account, "why": why, "archives": archives, "links": links}),
        )
        .await?;
    Ok(Dropped { archives, links })
}

/// Removes `DATA/exports/ACCOUNT/`: archives stored on disk before migration
/// 0022 (the chunks in the database went with [`drop_in`]'s transaction).
pub async fn remove_files(state: &AppState, account: &str, d: &Dropped) {
    if !valid_account(account) {
        return;
    }
    let dir = state.exports_dir.join(account);
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
    state: &AppState,
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
    let _g = state.audit.write_lock().await;
    let mut tx = state.store.begin_write().await?;
    let r = sqlx::query("UPDATE export_requests SET sha256 = $1, host = $2, proved_at = $3 WHERE account = $4 AND ended_at IS NULL AND expires_at > $3 AND sha256 IS NULL")
        .bind(sha)
        .bind(host)
        .bind(received_at)
        .bind(account)
        .execute(&mut *tx)
        .await?;
    if r.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    state
        .audit
        .append_in(
            &mut tx,
            state.store.backend,
            "export.proved",
            host,
            json!({"account": account, "sha256": sha}),
        )
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Ends the export requests whose validity passed: their archives, rows and
/// links are deleted (audited as `export.deleted`, why `export expired`)
/// unless a closure of the account is open (it deletes them when it ends).
pub async fn sweep(state: &AppState, now: i64) -> Result<usize, StoreError> {
    let due: Vec<String> = sqlx::query_scalar(
        "SELECT account FROM export_requests WHERE ended_at IS NULL AND expires_at <= $1",
    )
    .bind(now)
    .fetch_all(&state.store.pool)
    .await?;
    let mut n = 0;
    for account in due {
        let _g = state.audit.write_lock().await;
        let mut tx = state.store.begin_write().await?;
        let closure: Option<String> =
            sqlx::query_scalar("SELECT state FROM closures WHERE account = $1")
                .bind(&account)
                .fetch_optional(&mut *tx)
                .await?;
        let dropped = if closure.is_some_and(|s| s != "closed" && s != "cancelled") {
            sqlx::query(
                "UPDATE export_requests SET ended_at = $1 WHERE account = $2 AND ended_at IS NULL",
            )
            .bind(now)
            .bind(&account)
            .execute(&mut *tx)
            .await?;
            None
        } else {
            Some(drop_in(&mut tx, state, &account, "reporter", "export expired").await?)
        };
        tx.commit().await?;
        drop(_g);
        if let Some(d) = dropped {
            remove_files(state, &account, &d).await;
        }
        n += 1;
    }
    // Interrupted uploads: chunks that no archive row names.
    sqlx::query("DELETE FROM export_chunks WHERE created_at < $1 AND upload NOT IN (SELECT upload FROM exports WHERE upload IS NOT NULL)")
        .bind(now.saturating_sub(ORPHAN_MS))
        .execute(&state.store.pool)
        .await?;
    Ok(n)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequestBody {
    /// Who asked (the customer's ticket, or the admin).
    pub requested_by: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// How long the export stays available (`72h`, `7d`); default 7 days, at most 30.
    #[serde(default)]
    pub valid_for: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportRequestView {
    pub account: String,
    /// `pending` (no host proved an archive yet), `proved` (not uploaded yet),
    /// `ready` (uploaded: a link can be made), or `ended`.
    pub state: String,
    pub requested_by: String,
    pub reason: String,
    pub requested_at: String,
    pub expires_at: String,
    pub sha256: Option<String>,
    pub host: Option<String>,
}

async fn request_view(state: &Shared, account: &str) -> ApiResult<Option<ExportRequestView>> {
    let Some(r) = sqlx::query("SELECT requested_by, reason, requested_at, expires_at, sha256, host, ended_at FROM export_requests WHERE account = $1")
        .bind(account)
        .fetch_optional(&state.store.pool)
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
        .fetch_optional(&state.store.pool)
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

/// Starts an export of an account on request, outside any closure (201), or
/// returns the open one (200).
#[utoipa::path(post, path = "/api/v1/accounts/{account}/export", tag = "staff", security(("bearer" = [])),
    params(("account" = String, Path, description = "account id")),
    request_body = ExportRequestBody,
    responses((status = 201, body = ExportRequestView), (status = 200, body = ExportRequestView, description = "already open"),
        (status = 400, description = "bad account or body"), (status = 401, description = "not staff"), (status = 403, description = "not an admin"),
        (status = 409, description = "the account's closure is closed")))]
pub async fn request_export(
    State(state): State<Shared>,
    Admin(user): Admin,
    Path(account): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<ExportRequestView>)> {
    if !crate::extract::valid_account(&account) {
        return Err(ApiError::BadRequest(format!(
            "`{account}` is not an account id"
        )));
    }
    let req: ExportRequestBody = crate::extract::parse_json(&body, "export request")?;
    if req.requested_by.trim().is_empty() || req.requested_by.len() > 500 {
        return Err(ApiError::BadRequest(
            "`requested_by` must say who asked (at most 500 characters)".into(),
        ));
    }
    let reason = req.reason.unwrap_or_default();
    if reason.len() > 2000 {
        return Err(ApiError::BadRequest(
            "`reason`: at most 2000 characters".into(),
        ));
    }
    let valid_for = match req.valid_for.as_deref() {
        None => DEFAULT_LINK,
        Some(s) => vigil_rules::duration::PolicyDuration::parse(s)
            .map_err(|e| ApiError::BadRequest(format!("`valid_for`: {e}")))?
            .as_std(),
    };
    if valid_for.is_zero() || valid_for > MAX_LINK {
        return Err(ApiError::BadRequest(
            "`valid_for` must be more than 0 and at most 30 days".into(),
        ));
    }
    let now = now_ms();
    let expires_at = now.saturating_add(i64::try_from(valid_for.as_millis()).unwrap_or(i64::MAX));
    {
        let _g = state.audit.write_lock().await;
        let mut tx = state.store.begin_write().await?;
        let closure: Option<String> =
            sqlx::query_scalar("SELECT state FROM closures WHERE account = $1")
                .bind(&account)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        if closure.as_deref() == Some("closed") {
            return Err(ApiError::Conflict(format!(
                "the account `{account}` is closed: nothing of it is exported any more"
            )));
        }
        let open: Option<String> = sqlx::query_scalar(
            "SELECT account FROM export_requests WHERE account = $1 AND ended_at IS NULL AND expires_at > $2",
        )
        .bind(&account)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        if open.is_some() {
            tx.rollback().await.map_err(StoreError::from)?;
            drop(_g);
            let v = request_view(&state, &account)
                .await?
                .ok_or_else(|| ApiError::Internal("the export request vanished".into()))?;
            return Ok((StatusCode::OK, Json(v)));
        }
        sqlx::query("DELETE FROM export_requests WHERE account = $1")
            .bind(&account)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        sqlx::query("INSERT INTO export_requests (account, requested_by, reason, requested_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&account)
            .bind(&req.requested_by)
            .bind(&reason)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        state
            .audit
            .append_in(
                &mut tx,
                state.store.backend,
                "export.requested",
                &user.name,
                json!({"account": account, "requested_by": req.requested_by, "reason": reason, "expires_at": rfc3339(expires_at)}),
            )
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
    }
    let v = request_view(&state, &account)
        .await?
        .ok_or_else(|| ApiError::Internal("the export request vanished".into()))?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// The export request of an account and how far it got.
#[utoipa::path(get, path = "/api/v1/accounts/{account}/export", tag = "staff", security(("bearer" = [])),
    params(("account" = String, Path, description = "account id")),
    responses((status = 200, body = ExportRequestView), (status = 401, description = "not staff"), (status = 404, description = "no export request")))]
pub async fn export_status(
    State(state): State<Shared>,
    _staff: Staff,
    Path(account): Path<String>,
) -> ApiResult<Json<ExportRequestView>> {
    if !crate::extract::valid_account(&account) {
        return Err(ApiError::BadRequest(format!(
            "`{account}` is not an account id"
        )));
    }
    request_view(&state, &account)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no export request for `{account}`")))
}

/// The public download route.
pub fn router() -> Router<Shared> {
    Router::new().route("/exports/{token}", get(download))
}

/// This feature's `/api/v1` routes with their documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(create_link))
        .routes(routes!(request_export, export_status))
}
