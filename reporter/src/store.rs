//! The reporter's store: SQLite (WAL, a file in the data directory) by default,
//! PostgreSQL by URL for a fleet that outgrows one machine. One code path over
//! sqlx's `Any` driver; one set of migrations per backend.
//! The two sets are the same file for file except where the dialects part
//! (0019's auto-increment key: `INTEGER PRIMARY KEY AUTOINCREMENT` in SQLite,
//! `BIGSERIAL` in PostgreSQL), so each backend keeps its own folder.
//!
//! INVARIANT: every statement uses `$1..$n` placeholders in increasing order of
//! first appearance, which both PostgreSQL and SQLite bind positionally; times
//! are epoch milliseconds in BIGINT columns; JSON is TEXT.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};

use sqlx::{AnyPool, Executor, Row};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_audit.sql")),
    (3, include_str!("../migrations/sqlite/0003_closures.sql")),
    (4, include_str!("../migrations/sqlite/0004_incidents.sql")),
    (5, include_str!("../migrations/sqlite/0005_exports.sql")),
    (6, include_str!("../migrations/sqlite/0006_waivers.sql")),
    (7, include_str!("../migrations/sqlite/0007_policies.sql")),
    (8, include_str!("../migrations/sqlite/0008_baselines.sql")),
    (9, include_str!("../migrations/sqlite/0009_agent_certs.sql")),
    (
        10,
        include_str!("../migrations/sqlite/0010_enrollment_approval.sql"),
    ),
    (
        11,
        include_str!("../migrations/sqlite/0011_staff_tokens.sql"),
    ),
    (
        14,
        include_str!("../migrations/sqlite/0014_closure_proofs.sql"),
    ),
    (
        15,
        include_str!("../migrations/sqlite/0015_export_requests.sql"),
    ),
    (12, include_str!("../migrations/sqlite/0012_audit_key.sql")),
    (16, include_str!("../migrations/sqlite/0016_advisories.sql")),
    (19, include_str!("../migrations/sqlite/0019_notices.sql")),
    (
        20,
        include_str!("../migrations/sqlite/0020_incident_lifecycle.sql"),
    ),
    (
        13,
        include_str!("../migrations/sqlite/0013_one_active_agent.sql"),
    ),
    (
        21,
        include_str!("../migrations/sqlite/0021_fleet_state.sql"),
    ),
    (
        22,
        include_str!("../migrations/sqlite/0022_export_chunks.sql"),
    ),
    (
        23,
        include_str!("../migrations/sqlite/0023_fleet_generation.sql"),
    ),
    (
        24,
        include_str!("../migrations/sqlite/0024_report_body_zstd.sql"),
    ),
    (
        25,
        include_str!("../migrations/sqlite/0025_drop_control_results.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_audit.sql")),
    (3, include_str!("../migrations/postgres/0003_closures.sql")),
    (4, include_str!("../migrations/postgres/0004_incidents.sql")),
    (5, include_str!("../migrations/postgres/0005_exports.sql")),
    (6, include_str!("../migrations/postgres/0006_waivers.sql")),
    (7, include_str!("../migrations/postgres/0007_policies.sql")),
    (8, include_str!("../migrations/postgres/0008_baselines.sql")),
    (
        9,
        include_str!("../migrations/postgres/0009_agent_certs.sql"),
    ),
    (
        10,
        include_str!("../migrations/postgres/0010_enrollment_approval.sql"),
    ),
    (
        11,
        include_str!("../migrations/postgres/0011_staff_tokens.sql"),
    ),
    (
        14,
        include_str!("../migrations/postgres/0014_closure_proofs.sql"),
    ),
    (
        15,
        include_str!("../migrations/postgres/0015_export_requests.sql"),
    ),
    (
        12,
        include_str!("../migrations/postgres/0012_audit_key.sql"),
    ),
    (
        16,
        include_str!("../migrations/postgres/0016_advisories.sql"),
    ),
    (19, include_str!("../migrations/postgres/0019_notices.sql")),
    (
        20,
        include_str!("../migrations/postgres/0020_incident_lifecycle.sql"),
    ),
    (
        13,
        include_str!("../migrations/postgres/0013_one_active_agent.sql"),
    ),
    (
        21,
        include_str!("../migrations/postgres/0021_fleet_state.sql"),
    ),
    (
        22,
        include_str!("../migrations/postgres/0022_export_chunks.sql"),
    ),
    (
        23,
        include_str!("../migrations/postgres/0023_fleet_generation.sql"),
    ),
    (
        24,
        include_str!("../migrations/postgres/0024_report_body_zstd.sql"),
    ),
    (
        25,
        include_str!("../migrations/postgres/0025_drop_control_results.sql"),
    ),
];

/// The advisory lock key that serializes audited writers across reporters
/// sharing one PostgreSQL database ([`Store::begin_write`]).
pub const WRITE_LOCK: i64 = 727_273;
/// Takes [`WRITE_LOCK`] until the transaction ends (re-entrant within it).
pub const WRITE_LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(727273)";

#[derive(Clone)]
pub struct Store {
    pub pool: AnyPool,
    pub backend: Backend,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A stored agent (token digest aside).
#[derive(Debug, Clone)]
pub struct AgentRow {
    pub id: String,
    pub host: String,
    pub roles: Vec<String>,
    pub interval_secs: i64,
    pub revoked_at: Option<i64>,
    pub last_seen: Option<i64>,
    pub token_digest: String,
    /// Hex SHA-256 of the public key of the certificate the agent enrolled
    /// with (optional mutual TLS).
    pub cert_spki_sha256: Option<String>,
}

/// The columns [`Store::agent_from`] reads.
pub const AGENT_COLUMNS: &str =
    "id, host, roles, interval_secs, revoked_at, last_seen, token_digest, cert_spki_sha256";

/// An agent being enrolled.
pub struct NewAgent<'a> {
    pub id: &'a str,
    pub host: &'a str,
    pub roles: &'a [String],
    pub interval_secs: i64,
    pub token_lookup: &'a str,
    pub token_digest: &'a str,
    pub cert_spki_sha256: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub name: String,
    pub role: String,
    pub token_digest: String,
    pub disabled_at: Option<i64>,
    /// When the current API token was issued (it expires with
    /// `staff_token_lifetime`).
    pub token_issued_at: Option<i64>,
}

/// The newest result of one control on one host.
#[derive(Debug, Clone)]
pub struct ControlRow {
    pub host: String,
    pub control_id: String,
    pub title: String,
    pub status: String,
    pub finished_at: i64,
}

#[derive(Debug, Clone)]
pub struct ReportRow {
    pub report_id: String,
    pub host: String,
    pub finished_at: i64,
    pub summary: String,
}

/// Outcome of storing a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
    /// The id is taken by another agent's report.
    Conflict,
}

/// A report to store, owned so it can wait in the group-commit queue
/// (the ingest feature).
#[derive(Debug, Clone)]
pub struct NewReport {
    pub report_id: String,
    pub agent_id: String,
    pub host: String,
    pub policy_id: String,
    pub policy_version: String,
    pub policy_sha256: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub summary: String,
    /// The body as posted, compressed ([`compress_body`]) by the route, in
    /// parallel, not by the one flusher.
    pub body_zstd: Vec<u8>,
    /// Hex SHA-256 of the body as posted (before compression) for its audit
    /// entry, computed by the route (in parallel), not by the one flusher.
    pub body_sha256: String,
    /// (control id, title, status)
    pub controls: Vec<(String, String, String)>,
    /// Whether each control of `controls` applies to the host, by the
    /// reporter's roles of its agent and the published policy's control
    /// roles at ingest (`posture::applies`); a missing entry applies. The
    /// maintained state keeps and counts only results that apply, as the
    /// live posture does.
    pub applies: Vec<bool>,
    /// Each control's checks in compact JSON, in `controls` order
    /// (`fleet_state::compact_checks`).
    pub checks: Vec<String>,
    /// The file_integrity baselines the report carries, remembered in the
    /// same transaction (the baselines feature).
    pub baselines: Vec<Seen>,
}

/// One baseline hash seen in a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub control_id: String,
    pub check_id: String,
    pub path: String,
    pub sha256: String,
}

/// zstd level of stored report bodies: level 1 makes a papyrs report about
/// 17 times smaller at ~500 MB/s on this machine's cores (level 3 gains 2 %
/// for 20 % more CPU); decompression runs at ~1.5 GB/s.
pub const BODY_ZSTD_LEVEL: i32 = 1;

/// A report body as stored: one zstd frame (with its content size) of the
/// bytes as posted.
pub fn compress_body(body: &str) -> Result<Vec<u8>> {
    thread_local! {
        // One compression context per thread, made once: a fresh one per
        // report (`zstd::bulk::compress`) allocated and zeroed its tables
        // every time (seen in the ingest profile).
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let failed =
        |e: std::io::Error| StoreError::Corrupt(format!("cannot compress a report body: {e}"));
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        let compressor = match c.as_mut() {
            Some(compressor) => compressor,
            None => c.insert(zstd::bulk::Compressor::new(BODY_ZSTD_LEVEL).map_err(failed)?),
        };
        compressor.compress(body.as_bytes()).map_err(failed)
    })
}

/// The body as posted from a `reports` row: `body_zstd` when set (rows
/// since migration 0024), else the text in `body` (rows before it).
pub fn decode_body(text: String, zstd: Option<&[u8]>) -> Result<String> {
    let Some(frame) = zstd else {
        return Ok(text);
    };
    let bytes = zstd::stream::decode_all(frame)
        .map_err(|e| StoreError::Corrupt(format!("stored report body (body_zstd): {e}")))?;
    String::from_utf8(bytes)
        .map_err(|_| StoreError::Corrupt("stored report body (body_zstd) is not UTF-8".into()))
}

impl Backend {
    /// Rows of `per_row` parameters per multi-row statement. SQLite finds a
    /// named parameter (`$N`, `?N`) by walking a list (sqlx asks for every
    /// one), so binding them costs the square of a statement's parameters
    /// (profiled: at 1,100 parameters, 43 % of ingest CPU went to
    /// `sqlite3_bind_parameter_name`). The multi-row statements therefore
    /// use SQLite's anonymous `?` ([`Backend::placeholders`]), which are not
    /// in that list, and can be large: each statement is a round trip to
    /// sqlx's SQLite worker thread that the one writer waits for. SQLite
    /// takes up to 32,766 parameters, PostgreSQL 65,535.
    pub fn rows_per_statement(self, per_row: usize) -> usize {
        let params = match self {
            Backend::Sqlite => 4000,
            Backend::Postgres => 6000,
        };
        (params / per_row.max(1)).max(1)
    }

    /// `rows` tuples of `per_row` placeholders for a multi-row statement
    /// whose only parameters they are: `(?, ?), (?, ?)` on SQLite (see
    /// [`Backend::rows_per_statement`]), `($1, $2), ($3, $4)` on PostgreSQL.
    /// Never mix them with `$N` in one statement: sqlx numbers anonymous
    /// parameters from 1 whatever named ones precede them.
    pub fn placeholders(self, rows: usize, per_row: usize) -> String {
        match self {
            Backend::Postgres => placeholders(rows, per_row),
            Backend::Sqlite => {
                let tuple = format!("({})", vec!["?"; per_row].join(", "));
                vec![tuple.as_str(); rows].join(", ")
            }
        }
    }

    /// `n` placeholders separated by commas, numbered from `from` on
    /// PostgreSQL and anonymous on SQLite (then `from` must be 1: the same
    /// rule as [`Backend::placeholders`]).
    pub fn list(self, from: usize, n: usize) -> String {
        match self {
            Backend::Postgres => (0..n)
                .map(|i| format!("${}", from + i))
                .collect::<Vec<_>>()
                .join(", "),
            Backend::Sqlite => {
                debug_assert_eq!(from, 1, "anonymous parameters are numbered from 1");
                vec!["?"; n].join(", ")
            }
        }
    }
}

/// `($1, …, $k), ($k+1, …), …`: `rows` tuples of `per_row` placeholders.
pub fn placeholders(rows: usize, per_row: usize) -> String {
    let mut s = String::with_capacity(rows * per_row * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..per_row {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(r * per_row + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

impl Store {
    /// Opens (creating if needed) and migrates the store.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let mut opts = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        opts = match backend {
            Backend::Sqlite => opts.max_connections(4).after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL: readers do not block the writer; FULL: an acknowledged
                    // report survives power loss, not only a crash.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    // Writers that begin with a write (`begin_write`, single
                    // statements) wait here for the one writer; the longest
                    // holder is a group commit of `queue::MAX_BATCH` reports.
                    conn.execute("PRAGMA busy_timeout = 20000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            }),
            Backend::Postgres => opts.max_connections(16),
        };
        let pool = opts.connect(url).await?;
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    /// Begins a transaction that writes. On SQLite it is `BEGIN IMMEDIATE`:
    /// the write lock is taken at once, waiting up to the busy timeout. A
    /// plain (deferred) `BEGIN` whose first statement reads (the audit log's
    /// next sequence number) holds a read snapshot; when another connection
    /// commits in between, its first write cannot upgrade and SQLite answers
    /// `database is locked` at once, without waiting: the 500s agents saw
    /// under load. Every transaction that reads before it writes begins here.
    ///
    /// On PostgreSQL it takes [`WRITE_LOCK`], an advisory transaction lock,
    /// as its first statement: reporters sharing the database (scale-out,
    /// issue 22 item 6) then serialize their audited writes as SQLite's one
    /// writer does, so that everything such a transaction reads (the audit
    /// log's next sequence number, a closure's state, a feed's digest, a
    /// duplicate report id) is what it commits against. Taken first, before
    /// any row lock, it cannot deadlock against another holder.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                tx.execute(WRITE_LOCK_SQL).await?;
                tx
            }
        })
    }

    async fn migrate(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Postgres {
            // Several reporters may start at once against one database.
            conn.execute("SELECT pg_advisory_lock(727272)").await?;
        }
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)").await?;
        let migrations = match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let mut result = Ok(());
        for (version, sql) in migrations {
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(*version)
                    .fetch_optional(&mut *conn)
                    .await?;
            if done.is_some() {
                continue;
            }
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                if let Err(e) = tx.execute(stmt).await {
                    result = Err(e.into());
                    break;
                }
            }
            if result.is_err() {
                tx.rollback().await?;
                break;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        if self.backend == Backend::Postgres {
            conn.execute("SELECT pg_advisory_unlock(727272)").await?;
        }
        result
    }

    // --- agents -------------------------------------------------------------

    /// Reads an agent row (`SELECT` [`AGENT_COLUMNS`]).
    pub fn agent_from(row: &AnyRow) -> Result<AgentRow> {
        let roles: String = row.try_get("roles")?;
        Ok(AgentRow {
            id: row.try_get("id")?,
            host: row.try_get("host")?,
            roles: serde_json::from_str(&roles)
                .map_err(|e| StoreError::Corrupt(format!("agent roles: {e}")))?,
            interval_secs: row.try_get("interval_secs")?,
            revoked_at: row.try_get("revoked_at")?,
            last_seen: row.try_get("last_seen")?,
            token_digest: row.try_get("token_digest")?,
            cert_spki_sha256: row.try_get("cert_spki_sha256")?,
        })
    }

    pub async fn agent_by_lookup(&self, lookup: &str) -> Result<Option<AgentRow>> {
        let row =
            sqlx::query("SELECT id, host, roles, interval_secs, revoked_at, last_seen, token_digest, cert_spki_sha256 FROM agents WHERE token_lookup = $1")
                .bind(lookup)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(Self::agent_from).transpose()
    }

    /// The current (unrevoked) agent of every host, and revoked ones with no successor.
    pub async fn agents(&self) -> Result<Vec<AgentRow>> {
        let rows = sqlx::query(
            "SELECT id, host, roles, interval_secs, revoked_at, last_seen, token_digest, cert_spki_sha256 FROM agents ORDER BY host, created_at DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<AgentRow> = Vec::new();
        for r in &rows {
            let a = Self::agent_from(r)?;
            if !out.iter().any(|o| o.host == a.host) {
                out.push(a);
            }
        }
        Ok(out)
    }

    // --- reports ------------------------------------------------------------

    /// Reports, newest first, optionally of one host.
    pub async fn reports(&self, host: Option<&str>, limit: i64) -> Result<Vec<ReportRow>> {
        let rows = match host {
            Some(h) => sqlx::query(
                "SELECT report_id, host, finished_at, summary FROM reports WHERE host = $1 ORDER BY finished_at DESC, report_id LIMIT $2",
            )
            .bind(h)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?,
            None => {
                sqlx::query("SELECT report_id, host, finished_at, summary FROM reports ORDER BY finished_at DESC, report_id LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(ReportRow {
                    report_id: r.try_get("report_id")?,
                    host: r.try_get("host")?,
                    finished_at: r.try_get("finished_at")?,
                    summary: r.try_get("summary")?,
                })
            })
            .collect()
    }

    /// A stored report's body, byte for byte as the agent posted it: every
    /// reader of a report body (the report API, host and report pages,
    /// exports, notices, the brochure) goes through here, so rows stored
    /// compressed (`body_zstd`, migration 0024) and older rows stored as
    /// text (`body`) read alike.
    pub async fn report_body(&self, report_id: &str) -> Result<Option<String>> {
        let row: Option<(String, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT body, body_zstd FROM reports WHERE report_id = $1")
                .bind(report_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(text, zstd)| decode_body(text, zstd.as_deref()))
            .transpose()
    }

    pub async fn count_reports(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM reports")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The newest report time of every host at or before `at`.
    pub async fn last_report_times(&self, at: i64) -> Result<Vec<(String, i64, String)>> {
        let rows = sqlx::query(
            "SELECT r.host, r.finished_at, r.report_id FROM reports r \
             JOIN (SELECT host, MAX(finished_at) AS f FROM reports WHERE finished_at <= $1 GROUP BY host) l \
             ON r.host = l.host AND r.finished_at = l.f ORDER BY r.host, r.report_id",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<(String, i64, String)> = Vec::new();
        for r in &rows {
            let host: String = r.try_get("host")?;
            if out.last().is_some_and(|l| l.0 == host) {
                continue;
            }
            out.push((host, r.try_get("finished_at")?, r.try_get("report_id")?));
        }
        Ok(out)
    }

    // --- users --------------------------------------------------------------

    pub async fn user_by_lookup(&self, lookup: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT name, role, token_digest, disabled_at, token_issued_at FROM users WHERE token_lookup = $1",
        )
        .bind(lookup)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(UserRow {
                name: r.try_get("name")?,
                role: r.try_get("role")?,
                token_digest: r.try_get("token_digest")?,
                disabled_at: r.try_get("disabled_at")?,
                token_issued_at: r.try_get("token_issued_at")?,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_rows_in_order() {
        assert_eq!(super::placeholders(1, 2), "($1, $2)");
        assert_eq!(super::placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::placeholders(0, 3), "");
        use super::Backend;
        assert_eq!(Backend::Sqlite.placeholders(2, 2), "(?, ?), (?, ?)");
        assert_eq!(Backend::Postgres.placeholders(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(Backend::Sqlite.list(1, 3), "?, ?, ?");
        assert_eq!(Backend::Postgres.list(2, 2), "$2, $3");
    }

    /// The SQLite statements as large as [`Backend::rows_per_statement`]
    /// allows bind every anonymous parameter to its own row and column.
    #[tokio::test]
    async fn a_full_anonymous_statement_binds_in_order_on_sqlite() {
        use sqlx::Executor as _;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("v.db").display());
        let store = super::Store::open(&url).await.unwrap();
        store
            .pool
            .execute("CREATE TABLE t (a BIGINT, b TEXT, c BIGINT)")
            .await
            .unwrap();
        let backend = super::Backend::Sqlite;
        let rows = backend.rows_per_statement(3);
        assert!(rows > 1000);
        let sql = format!(
            "INSERT INTO t (a, b, c) VALUES {}",
            backend.placeholders(rows, 3)
        );
        let mut q = sqlx::query(&sql);
        for i in 0..rows {
            let i = i64::try_from(i).unwrap();
            q = q.bind(i).bind(format!("row {i}")).bind(-i);
        }
        q.execute(&store.pool).await.unwrap();
        let got: Vec<(i64, String, i64)> = sqlx::query_as("SELECT a, b, c FROM t ORDER BY rowid")
            .fetch_all(&store.pool)
            .await
            .unwrap();
        assert_eq!(got.len(), rows);
        for (i, (a, b, c)) in got.into_iter().enumerate() {
            let i = i64::try_from(i).unwrap();
            assert_eq!((a, b, c), (i, format!("row {i}"), -i));
        }
        let list = format!(
            "SELECT COUNT(*) FROM t WHERE a IN ({})",
            backend.list(1, 2000)
        );
        let mut q = sqlx::query_scalar::<_, i64>(&list);
        for i in 0..2000_i64 {
            q = q.bind(i * 2);
        }
        let want = (0..2000_i64)
            .filter(|i| i * 2 < i64::try_from(rows).unwrap())
            .count();
        assert_eq!(
            q.fetch_one(&store.pool).await.unwrap(),
            i64::try_from(want).unwrap()
        );
    }

    /// Regression (issue 22, item 5): a transaction that reads before it
    /// writes (the audit log's next sequence number) failed at once with
    /// `database is locked` when another connection committed in between.
    /// `begin_write` takes the write lock first; the other writer waits
    /// within the busy timeout instead of failing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reading_writer_is_never_told_the_database_is_locked() {
        use sqlx::Executor as _;
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("vigil.db").display()
        );
        let store = super::Store::open(&url).await.unwrap();
        store
            .pool
            .execute("CREATE TABLE t (n BIGINT PRIMARY KEY)")
            .await
            .unwrap();
        // The failure, shown with a deferred transaction.
        let mut tx = store.pool.begin().await.unwrap();
        let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (1)")
            .execute(&store.pool)
            .await
            .unwrap();
        let e = sqlx::query("INSERT INTO t (n) VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("locked"), "{e}");
        drop(tx);
        // The same interleaving through begin_write: both commit.
        let mut tx = store.begin_write().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let other = {
            let pool = store.pool.clone();
            tokio::spawn(async move {
                sqlx::query("INSERT INTO t (n) VALUES (100)")
                    .execute(&pool)
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        sqlx::query("INSERT INTO t (n) VALUES ($1)")
            .bind(n + 10)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        other.await.unwrap().unwrap();
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(total, 3);
    }

    /// Bodies are stored compressed (migration 0024) and read back byte
    /// for byte; a row stored as text before the migration still reads.
    #[tokio::test]
    async fn bodies_read_back_byte_identical_compressed_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("vigil.db").display()
        );
        let store = super::Store::open(&url).await.unwrap();
        let body = format!(
            "{{\"schema\":\"vigil.report/v1\",\"x\":\"{}\",\"u\":\"päckage “quoted” ✓ \\u00e9\"}}",
            "0123456789abcdef".repeat(4000)
        );
        let zstd = super::compress_body(&body).unwrap();
        assert!(zstd.len() * 10 < body.len(), "{} bytes", zstd.len());
        for (id, text, frame) in [
            ("new", String::new(), Some(zstd)),
            ("old", body.clone(), None),
        ] {
            sqlx::query("INSERT INTO reports (report_id, agent_id, host, policy_id, policy_version, policy_sha256, started_at, finished_at, received_at, summary, body, body_zstd) VALUES ($1, 'a', 'h', 'p', '1', 's', 0, 0, 0, '{}', $2, $3)")
                .bind(id)
                .bind(text)
                .bind(frame)
                .execute(&store.pool)
                .await
                .unwrap();
        }
        assert_eq!(
            store.report_body("new").await.unwrap().as_deref(),
            Some(body.as_str())
        );
        assert_eq!(
            store.report_body("old").await.unwrap().as_deref(),
            Some(body.as_str())
        );
        assert_eq!(store.report_body("none").await.unwrap(), None);
        // A damaged frame is an error naming the column, never a wrong body.
        sqlx::query("UPDATE reports SET body_zstd = $1 WHERE report_id = 'new'")
            .bind(vec![0x28_u8, 0xb5, 0x2f, 0xfd, 1, 2, 3])
            .execute(&store.pool)
            .await
            .unwrap();
        let e = store.report_body("new").await.unwrap_err();
        assert!(e.to_string().contains("body_zstd"), "{e}");
    }

    #[test]
    fn statements_stay_within_each_engines_parameter_limit() {
        use super::Backend;
        assert_eq!(Backend::Sqlite.rows_per_statement(6), 666);
        assert_eq!(Backend::Sqlite.rows_per_statement(5000), 1);
        assert!(Backend::Sqlite.rows_per_statement(1) <= 32_766);
        assert_eq!(Backend::Postgres.rows_per_statement(11), 545);
        assert!(Backend::Postgres.rows_per_statement(7) * 7 <= 65_535);
    }
}
