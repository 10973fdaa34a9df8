//! Pure parsers of clamd's answers.

/// clamd's VERSION answer, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub engine: String,
    /// The official database version; `None` with only custom databases.
    pub database: Option<u64>,
    pub date: Option<chrono::DateTime<chrono::Utc>>,
}

/// An answer to VERSION that is not clamd's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected VERSION answer `{0}`")]
pub struct VersionError(pub String);

/// Parses clamd's VERSION answer: `ClamAV 1.4.6/27467/Wed Nov 25 08:45:02 2026`,
/// or `ClamAV 1.4.6` when only custom databases are loaded.
pub fn parse_version(answer: &str) -> Result<VersionInfo, VersionError> {
    let answer = answer.trim_end_matches(['\0', '\n', '\r']).trim();
    let rest = answer
        .strip_prefix("ClamAV ")
        .ok_or_else(|| VersionError(answer.to_owned()))?;
    let mut parts = rest.splitn(3, '/');
    let engine = parts.next().unwrap_or_default().trim().to_owned();
    let database = parts.next().and_then(|s| s.trim().parse::<u64>().ok());
    let date = parts.next().and_then(|s| {
        chrono::NaiveDateTime::parse_from_str(s.trim(), "%a %b %e %H:%M:%S %Y")
            .ok()
            .map(|d| d.and_utc())
    });
    Ok(VersionInfo {
        engine,
        database,
        date,
    })
}
