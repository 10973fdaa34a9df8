//! A database connection string, as a policy gives it (`dsn`, `dsn_file` or
//! `dsn_env`), with the house's one redaction of its password: part of the
//! collectors' toolbox, used by `password_storage`, `mirror_lag`,
//! `log_secrets` (its `sql` source) and the `erasure` deleters.
//!
//! INVARIANT: a [`Dsn`] never prints its password. `Display` and `Debug`
//! show it redacted, [`Dsn::scrub`] takes it out of a driver's message, and
//! [`DsnError`] never holds the connection string; only [`Dsn::expose`]
//! hands it to a driver.

use std::fmt;

use super::host::{io_reason, HostCtx};

/// What stands where a password was.
pub const REDACTED: &str = "[REDACTED]";

/// A connection string (URL or `key=value` form).
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn(String);

/// Why there is no connection string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DsnError {
    #[error("cannot read `dsn_file` `{file}`: {reason}")]
    File { file: String, reason: String },
    #[error("environment variable `{0}` is not set")]
    Env(String),
    #[error("no connection string")]
    Missing,
}

impl Dsn {
    pub fn new(s: impl Into<String>) -> Dsn {
        Dsn(s.into())
    }

    /// The connection string a policy names: `dsn` itself, else the trimmed
    /// content of `dsn_file` (a host path, read under `ctx`'s root), else the
    /// environment variable `dsn_env`.
    pub fn read(
        dsn: Option<&str>,
        dsn_file: Option<&str>,
        dsn_env: Option<&str>,
        ctx: &HostCtx,
    ) -> Result<Dsn, DsnError> {
        if let Some(d) = dsn {
            return Ok(Dsn::new(d));
        }
        if let Some(f) = dsn_file {
            return std::fs::read_to_string(ctx.path(f))
                .map(|s| Dsn::new(s.trim()))
                .map_err(|e| DsnError::File {
                    file: f.to_owned(),
                    reason: io_reason(&e),
                });
        }
        if let Some(v) = dsn_env {
            return std::env::var(v)
                .map(Dsn::new)
                .map_err(|_| DsnError::Env(v.to_owned()));
        }
        Err(DsnError::Missing)
    }

    /// The connection string itself, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The password: `scheme://user:password@host…` or a `password=` word
    /// (of a `key=value` string or a URL's query).
    fn password(&self) -> Option<String> {
        let dsn = self.0.as_str();
        if let Some((_, rest)) = dsn.split_once("://") {
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                if let Some((_, pass)) = userinfo.split_once(':') {
                    if !pass.is_empty() {
                        return Some(pass.to_owned());
                    }
                }
            }
        }
        for part in dsn.split(['?', '&', ' ']) {
            if let Some(v) = part.strip_prefix("password=") {
                if !v.is_empty() {
                    return Some(v.trim_matches('\'').to_owned());
                }
            }
        }
        None
    }

    /// `msg` with this string's password (raw and percent-decoded) replaced
    /// by [`REDACTED`]: for a driver's error, which may quote it.
    pub fn scrub(&self, msg: &str) -> String {
        let mut out = msg.to_owned();
        if let Some(pass) = self.password() {
            let decoded = percent_decode(&pass);
            for s in [pass, decoded] {
                if !s.is_empty() {
                    out = out.replace(&s, REDACTED);
                }
            }
        }
        out
    }
}

/// The connection string with its password redacted.
impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scrub(&self.0))
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({self})")
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t";

    fn forms() -> Vec<Dsn> {
        [
            "postgres://app:s3cr3t@db-1:5432/papyrs",
            "postgres://app:s3cr3t@db-1/papyrs?sslmode=require",
            "postgres://app@db-1/papyrs?password=s3cr3t",
            "host=db-1 user=app password=s3cr3t dbname=papyrs",
            "host=db-1 user=app password='s3cr3t'",
            "postgres://app:s3%63r3t@db-1/papyrs",
        ]
        .into_iter()
        .map(Dsn::new)
        .collect()
    }

    #[test]
    fn display_and_debug_never_show_the_password() {
        for d in forms() {
            let shown = d.to_string();
            let debug = format!("{d:?}");
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!debug.contains(SECRET), "{debug}");
            assert!(shown.contains(REDACTED), "{shown}");
            assert!(!format!("{d:#?}").contains(SECRET));
        }
        assert_eq!(
            Dsn::new("postgres://app:s3cr3t@db-1/papyrs").to_string(),
            "postgres://app:[REDACTED]@db-1/papyrs"
        );
        // Nothing to hide: shown as it is.
        assert_eq!(
            Dsn::new("sqlite:///var/app.db").to_string(),
            "sqlite:///var/app.db"
        );
        assert_eq!(
            Dsn::new("postgres://m@h/db").to_string(),
            "postgres://m@h/db"
        );
    }

    #[test]
    fn a_password_with_an_at_sign_is_hidden_whole() {
        let d = Dsn::new("postgres://app:p@ss@db-1/x");
        assert_eq!(d.to_string(), "postgres://app:[REDACTED]@db-1/x");
    }

    #[test]
    fn scrub_hides_the_password_raw_and_percent_decoded() {
        assert_eq!(
            Dsn::new("postgres://m:p%40ss@h/db").scrub("bad postgres://m:p%40ss@h/db p@ss"),
            "bad postgres://m:[REDACTED]@h/db [REDACTED]"
        );
        assert_eq!(
            Dsn::new("host=h password=s3cr3t").scrub("x s3cr3t y"),
            "x [REDACTED] y"
        );
        for d in forms() {
            let msg = format!(
                "error connecting to {}: password s3cr3t refused",
                d.expose()
            );
            assert!(!d.scrub(&msg).contains(SECRET), "{}", d.scrub(&msg));
        }
    }

    #[test]
    fn errors_name_where_the_string_was_never_the_string() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = HostCtx {
            root: dir.path().to_path_buf(),
            state_dir: dir.path().join("state"),
            pace: Default::default(),
        };
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/app.dsn"),
            "postgres://app:s3cr3t@db-1/papyrs\n",
        )
        .unwrap();
        let d = Dsn::read(None, Some("/etc/app.dsn"), None, &ctx).unwrap();
        assert_eq!(d.expose(), "postgres://app:s3cr3t@db-1/papyrs");
        assert!(!format!("{d} {d:?}").contains(SECRET));
        let e = Dsn::read(None, Some("/etc/missing.dsn"), None, &ctx).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot read `dsn_file` `/etc/missing.dsn`: no such file or directory"
        );
        let e = Dsn::read(None, None, Some("VIGIL_TEST_NO_SUCH_VARIABLE"), &ctx).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable `VIGIL_TEST_NO_SUCH_VARIABLE` is not set"
        );
        assert_eq!(
            Dsn::read(None, None, None, &ctx).unwrap_err().to_string(),
            "no connection string"
        );
        // A `dsn` given inline is taken as it is.
        let d = Dsn::read(Some("sqlite://x.db"), Some("/etc/app.dsn"), None, &ctx).unwrap();
        assert_eq!(d.expose(), "sqlite://x.db");
    }
}
