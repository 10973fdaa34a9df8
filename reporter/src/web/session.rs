//! Staff authentication for the HTML pages.
//!
//! - `Authorization: Bearer vgs_…` (the staff API token) works on every page.
//! - `POST /login` with a name and argon2 password sets a session cookie
//!   (`vigil_session`: HttpOnly, SameSite=Strict, Secure over TLS) holding a
//!   random token of which only the SHA-256 digest is stored (`web_sessions`).
//! - `POST /api/v1/login-links` (Bearer) returns a one-time link valid for 60
//!   seconds; opening it sets the cookie and redirects. This is how a browser
//!   that cannot send headers (headless Chromium in the tests, or a person
//!   holding only an API token) gets a session without a token in a URL that
//!   stays valid.
//!
//! Forms that change state carry a per-session CSRF token (derived from the
//! session secret) on top of SameSite=Strict.

use axum::extract::FromRequestParts;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa::ToSchema;

use crate::error::PageError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth;
use crate::error::safe_next;
use crate::error::{ApiError, ApiResult};
use crate::extract::Staff;
use crate::state::Shared;
use crate::store::{now_ms, UserRow};

pub const COOKIE: &str = "vigil_session";
const SESSION_PREFIX: &str = "vss";
const SESSION_MS: i64 = 12 * 3600 * 1000;
const LINK_MS: i64 = 60 * 1000;

/// A staff member reading the pages, and the CSRF token of their session
/// (None with Bearer authentication: no ambient credential, nothing to forge).
pub struct WebStaff {
    pub user: UserRow,
    pub csrf: Option<String>,
}

impl WebStaff {
    /// Checks a form's CSRF token.
    pub fn check_csrf(&self, presented: &str) -> Result<(), PageError> {
        match &self.csrf {
            None => Ok(()),
            Some(t) if auth::secrets_equal(t, presented) => Ok(()),
            Some(_) => Err(PageError::Status(
                StatusCode::FORBIDDEN,
                "the form is stale or forged (CSRF token mismatch); reload the page".into(),
            )),
        }
    }
}

fn csrf_of(secret: &str) -> String {
    let d = Sha256::digest(format!("vigil-csrf\0{secret}").as_bytes());
    hex::encode(d)
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

pub async fn user_by_name(
    state: &Shared,
    name: &str,
) -> Result<Option<(UserRow, Option<String>)>, crate::store::StoreError> {
    let row = sqlx::query(
        "SELECT name, role, token_digest, disabled_at, token_issued_at, password_hash FROM users WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&state.store.pool)
    .await?;
    row.map(|r| {
        Ok((
            UserRow {
                name: r.try_get("name")?,
                role: r.try_get("role")?,
                token_digest: r.try_get("token_digest")?,
                disabled_at: r.try_get("disabled_at")?,
                token_issued_at: r.try_get("token_issued_at")?,
            },
            r.try_get("password_hash")?,
        ))
    })
    .transpose()
}

async fn session_user(state: &Shared, token: &str) -> Result<Option<WebStaff>, PageError> {
    let Some((lookup, secret)) = auth::parse_token(token, SESSION_PREFIX) else {
        return Ok(None);
    };
    let row =
        sqlx::query("SELECT digest, user_name, expires_at FROM web_sessions WHERE lookup = $1")
            .bind(lookup)
            .fetch_optional(&state.store.pool)
            .await
            .map_err(crate::store::StoreError::from)?;
    let Some(row) = row else { return Ok(None) };
    let digest: String = row
        .try_get("digest")
        .map_err(crate::store::StoreError::from)?;
    let user: String = row
        .try_get("user_name")
        .map_err(crate::store::StoreError::from)?;
    let expires: i64 = row
        .try_get("expires_at")
        .map_err(crate::store::StoreError::from)?;
    if !auth::verify(secret, &digest) || expires <= now_ms() {
        return Ok(None);
    }
    match user_by_name(state, &user).await? {
        Some((u, _)) if u.disabled_at.is_none() => Ok(Some(WebStaff {
            user: u,
            csrf: Some(csrf_of(secret)),
        })),
        _ => Ok(None),
    }
}

impl FromRequestParts<Shared> for WebStaff {
    type Rejection = PageError;
    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, PageError> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return match Staff::from_request_parts(parts, state).await {
                Ok(Staff(user)) => Ok(WebStaff { user, csrf: None }),
                Err(e) => Err(e.into()),
            };
        }
        if let Some(token) = cookie_value(&parts.headers, COOKIE) {
            if let Some(s) = session_user(state, token).await? {
                return Ok(s);
            }
        }
        let next = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        Err(PageError::Login(next))
    }
}

async fn new_session(state: &Shared, user: &str) -> Result<String, PageError> {
    let t = auth::new_token(SESSION_PREFIX);
    let now = now_ms();
    // Expired sessions go when new ones come.
    sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&state.store.pool)
        .await
        .map_err(crate::store::StoreError::from)?;
    sqlx::query("INSERT INTO web_sessions (lookup, digest, user_name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&t.lookup)
        .bind(&t.digest)
        .bind(user)
        .bind(now)
        .bind(now.saturating_add(SESSION_MS))
        .execute(&state.store.pool)
        .await
        .map_err(crate::store::StoreError::from)?;
    Ok(t.token)
}

fn session_cookie(state: &Shared, value: &str, max_age: i64) -> Result<HeaderValue, PageError> {
    let secure = if state.site.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .map_err(|e| PageError::Internal(e.to_string()))
}

async fn logged_in(state: &Shared, user: &str, next: &str) -> Result<Response, PageError> {
    let token = new_session(state, user).await?;
    let cookie = session_cookie(state, &token, SESSION_MS / 1000)?;
    let next = if safe_next(next) { next } else { "/" };
    let mut resp = Redirect::to(next).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(resp)
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_form(
    State(state): State<Shared>,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    let next = q
        .next
        .filter(|n| safe_next(n))
        .unwrap_or_else(|| "/".into());
    Ok(state
        .site
        .render(
            "login.html",
            minijinja::context! { title => "Sign in", next => next, error => None::<String> },
        )?
        .into_response())
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// A refused login: 429 with `Retry-After`, as a page.
fn throttled(
    state: &Shared,
    next: &str,
    t: crate::throttle::Throttled,
) -> Result<Response, PageError> {
    let page = state.site.render(
        "login.html",
        minijinja::context! { title => "Sign in", next => next, error => t.message },
    )?;
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
    if let Ok(v) = HeaderValue::from_str(&t.retry_after_secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Ok(resp)
}

/// Password sign-in. Issue 19, item 3: each argon2 check takes 19 MiB, and
/// 256 concurrent wrong logins took the reporter to 5.7 GB. Attempts are
/// throttled per client network and per user name, failures lock both out
/// for a while, and at most two hashes run at once ([`crate::throttle`]);
/// past those bounds the answer is 429.
async fn login(
    State(state): State<Shared>,
    ext: axum::http::Extensions,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let form: LoginForm = serde_urlencoded::from_bytes(&body).map_err(|e| {
        PageError::Status(StatusCode::BAD_REQUEST, format!("invalid login form: {e}"))
    })?;
    let next = form
        .next
        .filter(|n| safe_next(n))
        .unwrap_or_else(|| "/".into());
    let client =
        crate::throttle::client_of(&ext).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let name_key: String = form.name.chars().take(256).collect();
    let keys = [
        format!("login-ip:{client}"),
        format!("login-user:{name_key}"),
    ];
    if let Err(t) = state.throttle.check(&keys, now_ms()) {
        tracing::warn!(user = %form.name, %client, "web login throttled");
        return throttled(&state, &next, t);
    }
    let found = user_by_name(&state, &form.name).await?;
    let pw = form.password.clone();
    let hashed = match found {
        Some((u, Some(hash))) if u.disabled_at.is_none() => {
            state
                .throttle
                .hash(move || auth::verify_password(&pw, &hash))
                .await
        }
        _ => {
            // Same cost whether or not the user exists.
            state
                .throttle
                .hash(move || {
                    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
                    let dummy = DUMMY
                        .get_or_init(|| auth::hash_password("vigil-dummy").unwrap_or_default());
                    let _ = auth::verify_password(&pw, dummy);
                    false
                })
                .await
        }
    };
    let ok = match hashed {
        Ok(v) => v.unwrap_or(false),
        Err(t) => {
            tracing::warn!(user = %form.name, %client, "web login refused: too many at once");
            return throttled(&state, &next, t);
        }
    };
    state.throttle.record(&keys, ok, now_ms());
    if !ok {
        tracing::warn!(user = %form.name, %client, "web login refused");
        let page = state.site.render(
            "login.html",
            minijinja::context! { title => "Sign in", next => next, error => "wrong name or password" },
        )?;
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    }
    tracing::info!(user = %form.name, "web login");
    logged_in(&state, &form.name, &next).await
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    csrf: String,
}

async fn logout(
    State(state): State<Shared>,
    staff: WebStaff,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let form: LogoutForm = serde_urlencoded::from_bytes(&body)
        .map_err(|e| PageError::Status(StatusCode::BAD_REQUEST, format!("invalid form: {e}")))?;
    staff.check_csrf(&form.csrf)?;
    if let Some((lookup, _)) =
        cookie_value(&headers, COOKIE).and_then(|t| auth::parse_token(t, SESSION_PREFIX))
    {
        sqlx::query("DELETE FROM web_sessions WHERE lookup = $1")
            .bind(lookup)
            .execute(&state.store.pool)
            .await
            .map_err(crate::store::StoreError::from)?;
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, "", 0)?);
    Ok(resp)
}

async fn follow_link(
    State(state): State<Shared>,
    Path(secret): Path<String>,
    Query(q): Query<NextQuery>,
) -> Result<Response, PageError> {
    let digest = auth::digest(&secret);
    let row = sqlx::query("SELECT user_name, expires_at FROM login_links WHERE digest = $1")
        .bind(&digest)
        .fetch_optional(&state.store.pool)
        .await
        .map_err(crate::store::StoreError::from)?;
    // Used once: whoever deletes the row uses the link.
    let used = sqlx::query("DELETE FROM login_links WHERE digest = $1")
        .bind(&digest)
        .execute(&state.store.pool)
        .await
        .map_err(crate::store::StoreError::from)?
        .rows_affected();
    let user = match row {
        Some(r) if used == 1 => {
            let expires: i64 = r
                .try_get("expires_at")
                .map_err(crate::store::StoreError::from)?;
            let user: String = r
                .try_get("user_name")
                .map_err(crate::store::StoreError::from)?;
            (expires > now_ms()).then_some(user)
        }
        _ => None,
    };
    let Some(user) = user else {
        return Err(PageError::Status(
            StatusCode::UNAUTHORIZED,
            "this login link is unknown, used or expired".into(),
        ));
    };
    logged_in(&state, &user, q.next.as_deref().unwrap_or("/")).await
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginLink {
    /// Open this path on the reporter within `expires_in_secs`; it works once.
    pub path: String,
    pub expires_in_secs: u32,
}

/// A one-time login link for the HTML pages, for the calling staff member.
#[utoipa::path(post, path = "/api/v1/login-links", tag = "staff", security(("bearer" = [])),
    responses((status = 201, body = LoginLink), (status = 401, description = "not staff")))]
pub async fn create_login_link(
    State(state): State<Shared>,
    Staff(user): Staff,
) -> ApiResult<(StatusCode, Json<LoginLink>)> {
    let t = auth::new_token("vsl");
    let secret = t
        .token
        .rsplit('_')
        .next()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Internal("token shape".into()))?;
    sqlx::query("DELETE FROM login_links WHERE expires_at <= $1")
        .bind(now_ms())
        .execute(&state.store.pool)
        .await
        .map_err(crate::store::StoreError::from)?;
    sqlx::query("INSERT INTO login_links (digest, user_name, expires_at) VALUES ($1, $2, $3)")
        .bind(auth::digest(&secret))
        .bind(&user.name)
        .bind(now_ms().saturating_add(LINK_MS))
        .execute(&state.store.pool)
        .await
        .map_err(crate::store::StoreError::from)?;
    Ok((
        StatusCode::CREATED,
        Json(LoginLink {
            path: format!("/login/link/{secret}"),
            expires_in_secs: 60,
        }),
    ))
}

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/login/link/{secret}", get(follow_link))
}

/// This feature's `/api/v1` routes with their documentation.
pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(create_login_link))
}
