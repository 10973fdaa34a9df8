//! The export feature's handlers: upload, link, download, and exports on
//! request.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use rand::RngCore;
use serde_json::json;
use sqlx::Row;

use super::store::{
    chunk_stream, delete_upload, export_open, export_open_in, proved_archive, receive, request_view,
};
use super::types::{
    archive_path, valid_account, valid_sha, ExportLink, ExportRequestBody, ExportRequestView,
    Exports, LinkRequest, Uploaded, DEFAULT_LINK, MAX_LINK, SHA_HEADER,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, AgentAuth, Staff};
use crate::posture::rfc3339;
use crate::store::{now_ms, StoreError};

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
    State(state): State<Exports>,
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
    let (upload, sha, size) = receive(&state.store, body, state.max_bytes).await?;
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
        let mut w = state.audit.begin(&state.store).await?;
        if !export_open_in(&mut w.tx, &account).await? {
            w.rollback().await?;
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
        .execute(&mut *w.tx)
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        if inserted > 0 {
            w.append("export.uploaded",
                    &agent.host,
                    json!({"account": account, "sha256": sha, "size": size}),
                )
                .await?;
        }
        w.commit().await?;
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

/// Makes a download link for the archive the export phase proved.
#[utoipa::path(post, path = "/api/v1/accounts/{account}/export/link", tag = "staff", security(("bearer" = [])),
    params(("account" = String, Path, description = "account id")),
    request_body(content = LinkRequest, description = "optional `valid_for`"),
    responses((status = 201, body = ExportLink), (status = 400, description = "bad account or `valid_for`"),
        (status = 401, description = "not staff"), (status = 403, description = "not an admin"),
        (status = 409, description = "no proved export yet, or its archive not uploaded yet"),
        (status = 410, description = "the closure ended: the export was deleted")))]
pub async fn create_link(
    State(state): State<Exports>,
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
    let valid_for = valid_for(req.valid_for.as_deref())?;
    let (sha, host, request_expiry) = proved_archive(&state.store, &account).await?;
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
        let mut w = state.audit.begin(&state.store).await?;
        if !export_open_in(&mut w.tx, &account).await? {
            w.rollback().await?;
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
        .execute(&mut *w.tx)
        .await
        .map_err(StoreError::from)?;
        w.append(
            "export.link_created",
            &user.name,
            json!({"account": account, "sha256": sha, "expires_at": rfc3339(expires_at),
                       "link": digest.get(..16).unwrap_or_default()}),
        )
        .await?;
        w.commit().await?;
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
pub(super) async fn download(State(state): State<Exports>, Path(token): Path<String>) -> Response {
    match serve(&state, &token).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn serve(state: &Exports, token: &str) -> ApiResult<Response> {
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
            let path = archive_path(&state.dir, &account, &sha);
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
        let mut w = state.audit.begin(&state.store).await?;
        sqlx::query("UPDATE export_links SET downloads = downloads + 1 WHERE digest = $1")
            .bind(&digest)
            .execute(&mut *w.tx)
            .await
            .map_err(StoreError::from)?;
        w.append("export.downloaded",
                "link",
                json!({"account": account, "sha256": sha, "link": digest.get(..16).unwrap_or_default()}),
            )
            .await?;
        w.commit().await?;
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

/// Starts an export of an account on request, outside any closure (201), or
/// returns the open one (200).
#[utoipa::path(post, path = "/api/v1/accounts/{account}/export", tag = "staff", security(("bearer" = [])),
    params(("account" = String, Path, description = "account id")),
    request_body = ExportRequestBody,
    responses((status = 201, body = ExportRequestView), (status = 200, body = ExportRequestView, description = "already open"),
        (status = 400, description = "bad account or body"), (status = 401, description = "not staff"), (status = 403, description = "not an admin"),
        (status = 409, description = "the account's closure is closed")))]
pub async fn request_export(
    State(state): State<Exports>,
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
    let valid_for = valid_for(req.valid_for.as_deref())?;
    let now = now_ms();
    let expires_at = now.saturating_add(i64::try_from(valid_for.as_millis()).unwrap_or(i64::MAX));
    {
        let mut w = state.audit.begin(&state.store).await?;
        let closure: Option<String> =
            sqlx::query_scalar("SELECT state FROM closures WHERE account = $1")
                .bind(&account)
                .fetch_optional(&mut *w.tx)
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
        .fetch_optional(&mut *w.tx)
        .await
        .map_err(StoreError::from)?;
        if open.is_some() {
            w.rollback().await?;
            let v = request_view(&state.store, &account)
                .await?
                .ok_or_else(|| ApiError::Internal("the export request vanished".into()))?;
            return Ok((StatusCode::OK, Json(v)));
        }
        sqlx::query("DELETE FROM export_requests WHERE account = $1")
            .bind(&account)
            .execute(&mut *w.tx)
            .await
            .map_err(StoreError::from)?;
        sqlx::query("INSERT INTO export_requests (account, requested_by, reason, requested_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&account)
            .bind(&req.requested_by)
            .bind(&reason)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *w.tx)
            .await
            .map_err(StoreError::from)?;
        w.append("export.requested",
                &user.name,
                json!({"account": account, "requested_by": req.requested_by, "reason": reason, "expires_at": rfc3339(expires_at)}),
            )
            .await?;
        w.commit().await?;
    }
    let v = request_view(&state.store, &account)
        .await?
        .ok_or_else(|| ApiError::Internal("the export request vanished".into()))?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// The export request of an account and how far it got.
#[utoipa::path(get, path = "/api/v1/accounts/{account}/export", tag = "staff", security(("bearer" = [])),
    params(("account" = String, Path, description = "account id")),
    responses((status = 200, body = ExportRequestView), (status = 401, description = "not staff"), (status = 404, description = "no export request")))]
pub async fn export_status(
    State(state): State<Exports>,
    _staff: Staff,
    Path(account): Path<String>,
) -> ApiResult<Json<ExportRequestView>> {
    if !crate::extract::valid_account(&account) {
        return Err(ApiError::BadRequest(format!(
            "`{account}` is not an account id"
        )));
    }
    request_view(&state.store, &account)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no export request for `{account}`")))
}

/// A link's or a request's `valid_for`: default 7 days, more than 0 and at
/// most 30 days.
fn valid_for(given: Option<&str>) -> ApiResult<std::time::Duration> {
    let valid_for = match given {
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
    Ok(valid_for)
}
