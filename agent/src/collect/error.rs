//! Why a collector could not gather its facts. The engine turns it into an
//! `error` verdict whose text is this error's `Display`, so the messages read
//! as they did when collectors returned strings.

use std::path::PathBuf;

use crate::act::nofollow::NofollowError;
use crate::collect::host::io_reason;

/// Why facts could not be gathered: the check becomes `error` with this text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    /// A file or directory could not be read: `cannot read `/etc/x`: permission denied`.
    #[error("cannot {what} `{}`: {}", path.display(), io_reason(source))]
    Io {
        /// The verb phrase: `read`, `list`, `open`.
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file was read but refused by its parser (in `vigil_rules`), which
    /// names the line: `` `/var/lib/dpkg/status` line 3: … ``.
    #[error("`{file}` {source}")]
    Parse {
        file: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The blocking task behind a collector panicked or was cancelled.
    #[error("collector stopped unexpectedly: {0}")]
    Stopped(#[source] tokio::task::JoinError),
    /// The check ran past its timeout and its readers stopped.
    #[error(transparent)]
    Cancelled(#[from] crate::pace::Stopped),
    /// apt's preferences (or `APT::Default-Release`) refused, with the file and line.
    #[error(transparent)]
    Apt(#[from] vigil_rules::checks::patch_level::apt_policy::AptError),
    /// The check's reading threads could not be started.
    #[error(transparent)]
    Threads(#[from] crate::pace::PoolError),
    /// The TLS checks' trust anchors could not be loaded.
    #[error(transparent)]
    Anchors(#[from] crate::collect::tls::AnchorError),
    /// A path could not be resolved or opened without following a link.
    #[error(transparent)]
    Nofollow(#[from] NofollowError),
    /// The collector's own words: a tool's answer, a refused setting, a
    /// message built from several facts.
    #[error("{0}")]
    Other(String),
}

impl CollectError {
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CollectError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub fn parse(
        file: impl std::fmt::Display,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        CollectError::Parse {
            file: file.to_string(),
            source: Box::new(source),
        }
    }
}

impl From<String> for CollectError {
    fn from(s: String) -> Self {
        CollectError::Other(s)
    }
}

impl From<&str> for CollectError {
    fn from(s: &str) -> Self {
        CollectError::Other(s.to_owned())
    }
}

/// For the helpers that still build their message as a string.
impl From<CollectError> for String {
    fn from(e: CollectError) -> String {
        e.to_string()
    }
}
