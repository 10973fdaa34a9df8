//! Staff users: list, disable, enable, rotate a token (issue 19, item 9: a
//! leaked staff token could not be revoked). Every change is audited in the
//! same transaction; disabling or rotating also ends the user's web sessions
//! and login links. With `staff_token_lifetime` in the config a token stops
//! working that long after it was issued.
//!
//! The same operations back `vigil-reporter user list|disable|enable|rotate`
//! and the admin routes under `/api/v1/users`.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::AuditLog;
use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::Admin;
use crate::posture::rfc3339;
use crate::state::{Audit, Shared};
use crate::store::{now_ms, Store, StoreError};

/// How long a staff token lives after issue, in milliseconds (config
/// `staff_token_lifetime`; none: for ever). Built in `app.rs`.
#[derive(Clone, Copy)]
pub struct TokenLifetime(pub Option<i64>);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub disabled_at: Option<String>,
    pub token_issued_at: Option<String>,
    /// When the token stops working (`staff_token_lifetime`), if it does.
    pub token_expires_at: Option<String>,
    /// Can sign in to the web pages with a password.
    pub has_password: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

pub async fn list_users(
    store: &Store,
    lifetime_ms: Option<i64>,
) -> Result<Vec<UserView>, StoreError> {
    let rows = sqlx::query(
        "SELECT name, role, created_at, disabled_at, token_issued_at, password_hash FROM users ORDER BY name",
    )
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let issued: Option<i64> = r.try_get("token_issued_at")?;
            let pw: Option<String> = r.try_get("password_hash")?;
            let disabled: Option<i64> = r.try_get("disabled_at")?;
            Ok(UserView {
                name: r.try_get("name")?,
                role: r.try_get("role")?,
                created_at: rfc3339(r.try_get("created_at")?),
                disabled_at: disabled.map(rfc3339),
                token_issued_at: issued.map(rfc3339),
                token_expires_at: lifetime_ms
                    .zip(issued)
                    .map(|(l, i)| rfc3339(i.saturating_add(l))),
                has_password: pw.is_some(),
            })
        })
        .collect()
}

async fn end_sessions(conn: &mut sqlx::AnyConnection, name: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM web_sessions WHERE user_name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM login_links WHERE user_name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Disables (`true`) or enables a user; false when no such user, or already so.
pub async fn set_disabled(
    store: &Store,
    audit: &AuditLog,
    name: &str,
    disabled: bool,
    by: &str,
) -> Result<bool, StoreError> {
    let _g = audit.write_lock().await;
    let mut tx = store.begin_write().await?;
    let r = if disabled {
        sqlx::query("UPDATE users SET disabled_at = $1 WHERE name = $2 AND disabled_at IS NULL")
            .bind(now_ms())
            .bind(name)
            .execute(&mut *tx)
            .await?
    } else {
        sqlx::query(
            "UPDATE users SET disabled_at = NULL WHERE name = $1 AND disabled_at IS NOT NULL",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?
    };
    if r.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    if disabled {
        end_sessions(&mut tx, name).await?;
    }
    audit
        .append_in(
            &mut tx,
            store.backend,
            if disabled {
                "user.disabled"
            } else {
                "user.enabled"
            },
            by,
            serde_json::json!({"name": name}),
        )
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Gives `name` a new API token (the old one stops working at once) and
/// returns it; None when there is no such user.
pub async fn rotate_token(
    store: &Store,
    audit: &AuditLog,
    name: &str,
    by: &str,
) -> Result<Option<String>, StoreError> {
    let t = auth::new_token(auth::STAFF_PREFIX);
    let _g = audit.write_lock().await;
    let mut tx = store.begin_write().await?;
    let r = sqlx::query(
        "UPDATE users SET token_lookup = $1, token_digest = $2, token_issued_at = $3 WHERE name = $4",
    )
    .bind(&t.lookup)
    .bind(&t.digest)
    .bind(now_ms())
    .bind(name)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(None);
    }
    end_sessions(&mut tx, name).await?;
    audit
        .append_in(
            &mut tx,
            store.backend,
            "user.token_rotated",
            by,
            serde_json::json!({"name": name}),
        )
        .await?;
    tx.commit().await?;
    Ok(Some(t.token))
}

// --- admin routes -------------------------------------------------------------

/// Every staff user, with token issue and expiry times.
#[utoipa::path(get, path = "/api/v1/users", tag = "staff", security(("bearer" = [])),
    responses((status = 200, body = UserList), (status = 401, description = "not staff"), (status = 403, description = "not an admin")))]
pub async fn list(
    State(store): State<Store>,
    State(lifetime): State<TokenLifetime>,
    _admin: Admin,
) -> ApiResult<Json<UserList>> {
    Ok(Json(UserList {
        users: list_users(&store, lifetime.0).await?,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserChange {
    pub name: String,
    /// `disabled`, `enabled` or `token_rotated`.
    pub action: String,
    /// The new token after `token_rotated`, shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Disables a user: their token, web sessions and login links stop working (audited).
#[utoipa::path(post, path = "/api/v1/users/{name}/disable", tag = "staff", security(("bearer" = [])), params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserChange), (status = 401, description = "not staff"), (status = 403, description = "not an admin"), (status = 404, description = "no such enabled user"), (status = 409, description = "an admin cannot disable themself")))]
pub async fn disable(
    State(store): State<Store>,
    State(audit): State<Audit>,
    Admin(user): Admin,
    Path(name): Path<String>,
) -> ApiResult<Json<UserChange>> {
    if name == user.name {
        return Err(ApiError::Conflict(
            "you cannot disable yourself; ask another admin, or use `vigil-reporter user disable`"
                .into(),
        ));
    }
    if set_disabled(&store, &audit, &name, true, &user.name).await? {
        tracing::info!(%name, by = %user.name, "staff user disabled");
        Ok(Json(UserChange {
            name,
            action: "disabled".into(),
            token: None,
        }))
    } else {
        Err(ApiError::NotFound(format!("no enabled user `{name}`")))
    }
}

/// Enables a disabled user again (audited).
#[utoipa::path(post, path = "/api/v1/users/{name}/enable", tag = "staff", security(("bearer" = [])), params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserChange), (status = 401, description = "not staff"), (status = 403, description = "not an admin"), (status = 404, description = "no such disabled user")))]
pub async fn enable(
    State(store): State<Store>,
    State(audit): State<Audit>,
    Admin(user): Admin,
    Path(name): Path<String>,
) -> ApiResult<Json<UserChange>> {
    if set_disabled(&store, &audit, &name, false, &user.name).await? {
        Ok(Json(UserChange {
            name,
            action: "enabled".into(),
            token: None,
        }))
    } else {
        Err(ApiError::NotFound(format!("no disabled user `{name}`")))
    }
}

/// Issues a new API token for a user; the old one stops working (audited).
#[utoipa::path(post, path = "/api/v1/users/{name}/rotate", tag = "staff", security(("bearer" = [])), params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserChange), (status = 401, description = "not staff"), (status = 403, description = "not an admin"), (status = 404, description = "no such user")))]
pub async fn rotate(
    State(store): State<Store>,
    State(audit): State<Audit>,
    Admin(user): Admin,
    Path(name): Path<String>,
) -> ApiResult<Json<UserChange>> {
    let token = rotate_token(&store, &audit, &name, &user.name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user `{name}`")))?;
    tracing::info!(%name, by = %user.name, "staff token rotated");
    Ok(Json(UserChange {
        name,
        action: "token_rotated".into(),
        token: Some(token),
    }))
}

/// Adds a staff member (audited as done by `cli`); false when the name is taken.
pub async fn add_user(
    store: &Store,
    audit: &AuditLog,
    name: &str,
    role: &str,
    password_hash: Option<&str>,
    lookup: &str,
    digest: &str,
) -> Result<bool, StoreError> {
    let _g = audit.write_lock().await;
    let mut tx = store.begin_write().await?;
    let r = sqlx::query(
        "INSERT INTO users (name, role, password_hash, token_lookup, token_digest, created_at, token_issued_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(role)
    .bind(password_hash)
    .bind(lookup)
    .bind(digest)
    .bind(now_ms())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    audit
        .append_in(
            &mut tx,
            store.backend,
            "user.added",
            "cli",
            serde_json::json!({"name": name, "role": role}),
        )
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// This feature's `/api/v1` routes with their documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(disable))
        .routes(routes!(enable))
        .routes(routes!(rotate))
}

#[cfg(test)]
mod tests {
    use crate::extract::token_expired;
    use crate::store::UserRow;

    #[test]
    fn lifetime() {
        let u = |issued| UserRow {
            name: "a".into(),
            role: "admin".into(),
            token_digest: String::new(),
            disabled_at: None,
            token_issued_at: issued,
        };
        assert!(!token_expired(&u(Some(0)), None, i64::MAX));
        assert!(!token_expired(&u(Some(1000)), Some(500), 1499));
        assert!(token_expired(&u(Some(1000)), Some(500), 1500));
        assert!(token_expired(&u(None), Some(500), 0));
    }
}
