//! The portable export's way to the customer (GDPR item 5).
//!
//! The app server that holds a site writes the archive and proves its
//! manifest in the `export` phase of the `erasure` check; its daemon then
//! uploads the archive (`PUT /api/v1/exports/{account}`, streamed to
//! `DATA/exports/ACCOUNT/SHA256.tar.gz` and hashed on the way). Staff make a
//! download link (`POST /api/v1/accounts/{account}/export/link`) only for the
//! archive whose digest the agent proved: a random token of 256 bits, stored
//! as its SHA-256 digest, valid for a chosen time (default 7 days, at most
//! 30). `GET /exports/{token}` serves the archive to whoever holds the link
//! until it expires (410 afterwards). Uploads, links and downloads go into
//! the audit log; the token never does.

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
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

use crate::api::{Admin, AgentAuth, Shared};
use crate::error::{ApiError, ApiResult};
use crate::posture::rfc3339;
use crate::store::{now_ms, StoreError};

/// Largest archive accepted by default.
pub const DEFAULT_MAX_EXPORT: u64 = 2 * 1024 * 1024 * 1024;
/// How long a link lives unless staff say otherwise.
pub const DEFAULT_LINK: std::time::Duration = std::time::Duration::from_secs(7 * 86400);
/// The longest a link may live.
pub const MAX_LINK: std::time::Duration = std::time::Duration::from_secs(30 * 86400);
/// The header carrying the archive's SHA-256 (hex) on upload and download.
pub const SHA_HEADER: &str = "x-archive-sha256";

fn valid_account(a: &str) -> bool {
    vigil_rules::checks::erasure::valid_account(a)
}

fn valid_sha(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn archive_path(dir: &FsPath, account: &str, sha: &str) -> PathBuf {
    dir.join(account).join(format!("{sha}.tar.gz"))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Uploaded {
    pub account: String,
    pub sha256: String,
    pub size: u64,
    /// False when the same archive was already stored.
    pub created: bool,
}

/// Streams the body to a temporary file beside its final place, hashing it;
/// returns (temporary path, digest, size).
async fn receive(
    dir: &FsPath,
    body: Body,
    max: u64,
) -> Result<(tempfile::TempPath, String, u64), ApiError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot create `{}`: {e}", dir.display())))?;
    let tmp = tempfile::Builder::new()
        .prefix(".upload-")
        .tempfile_in(dir)
        .map_err(|e| ApiError::Internal(format!("cannot create a temporary file: {e}")))?
        .into_temp_path();
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot open the temporary file: {e}")))?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
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
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::Internal(format!("cannot write the archive: {e}")))?;
    }
    file.sync_all()
        .await
        .map_err(|e| ApiError::Internal(format!("cannot sync the archive: {e}")))?;
    Ok((tmp, hex::encode(hasher.finalize()), size))
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
    if !crate::closures::agent_proves(&state.erasure, "export", &agent) {
        return Err(ApiError::Forbidden(format!(
            "`{}` has no role that exports sites",
            agent.host
        )));
    }
    let open: Option<String> = sqlx::query_scalar("SELECT state FROM closures WHERE account = $1")
        .bind(&account)
        .fetch_optional(&state.store.pool)
        .await
        .map_err(StoreError::from)?;
    if open.is_none_or(|s| s == "cancelled") {
        return Err(ApiError::NotFound(format!(
            "no closure or export is open for `{account}`"
        )));
    }
    let dir = state.exports_dir.join(&account);
    let (tmp, sha, size) = receive(&dir, body, state.max_export_bytes).await?;
    if sha != claimed {
        return Err(ApiError::BadRequest(format!(
            "the body's SHA-256 is {sha}, not the {claimed} announced"
        )));
    }
    let dest = archive_path(&state.exports_dir, &account, &sha);
    tmp.persist(&dest)
        .map_err(|e| ApiError::Internal(format!("cannot keep the archive: {e}")))?;
    let size_i = i64::try_from(size).unwrap_or(i64::MAX);
    let inserted = sqlx::query(
        "INSERT INTO exports (account, sha256, size, host, uploaded_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account, sha256) DO NOTHING",
    )
    .bind(&account)
    .bind(&sha)
    .bind(size_i)
    .bind(&agent.host)
    .bind(now_ms())
    .execute(&state.store.pool)
    .await
    .map_err(StoreError::from)?
    .rows_affected();
    let created = inserted > 0;
    if created {
        state
            .audit
            .append(
                &state.store,
                "export.uploaded",
                &agent.host,
                json!({"account": account, "sha256": sha, "size": size}),
            )
            .await?;
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

/// The archive the export phase proved for `account`: (sha256, host).
async fn proved_archive(state: &Shared, account: &str) -> ApiResult<(String, String)> {
    let rows = sqlx::query(
        "SELECT host, detail FROM erasure_results WHERE account = $1 AND phase = 'export' AND done = 1",
    )
    .bind(account)
    .fetch_all(&state.store.pool)
    .await
    .map_err(StoreError::from)?;
    for row in rows {
        let host: String = row.try_get("host").map_err(StoreError::from)?;
        let detail: String = row.try_get("detail").map_err(StoreError::from)?;
        let detail: serde_json::Value = serde_json::from_str(&detail).unwrap_or_default();
        if let Some(sha) = detail
            .get("archive_sha256")
            .and_then(|v| v.as_str())
            .filter(|s| valid_sha(s))
        {
            return Ok((sha.to_owned(), host));
        }
    }
    Err(ApiError::Conflict(format!(
        "no host has proved an export of `{account}` yet"
    )))
}

/// Makes a download link for the archive the export phase proved.
#[utoipa::path(post, path = "/api/v1/accounts/{account}/export/link", tag = "staff", security(("bearer" = [])),
    params(("account" = String, Path, description = "account id")),
    request_body(content = LinkRequest, description = "optional `valid_for`"),
    responses((status = 201, body = ExportLink), (status = 400, description = "bad account or `valid_for`"),
        (status = 401, description = "not staff"), (status = 403, description = "not an admin"),
        (status = 409, description = "no proved export yet, or its archive not uploaded yet")))]
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
        crate::api::parse_json(&body, "link request")?
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
    let (sha, host) = proved_archive(&state, &account).await?;
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
    let expires_at = now.saturating_add(ms);
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
    .execute(&state.store.pool)
    .await
    .map_err(StoreError::from)?;
    state
        .audit
        .append(
            &state.store,
            "export.link_created",
            &user.name,
            json!({"account": account, "sha256": sha, "expires_at": rfc3339(expires_at),
                   "link": digest.get(..16).unwrap_or_default()}),
        )
        .await?;
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
    let path = archive_path(&state.exports_dir, &account, &sha);
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        ApiError::Internal(format!("cannot open the archive `{}`: {e}", path.display()))
    })?;
    let len = file.metadata().await.map(|m| m.len()).ok();
    // The count and its audit entry are one transaction: a download is
    // counted exactly when it is in the log.
    {
        let _g = state.audit.write_lock().await;
        let mut tx = state.store.pool.begin().await.map_err(StoreError::from)?;
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
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
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

/// The public download route.
pub fn router() -> Router<Shared> {
    Router::new().route("/exports/{token}", get(download))
}
