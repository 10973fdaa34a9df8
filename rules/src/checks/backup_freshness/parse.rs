//! Pure parsers of what restic and borg print, of dated set names and
//! manifests, and of times with or without a zone (fuzzed in `fuzz/`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::BackupSet;

/// What the backup parsers reject; the messages name the tool, the line or
/// the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("`{0}` is not an offset like `+01:00`")]
    NotAnOffset(String),
    #[error("unknown time zone `{0}` (use `UTC`, `+01:00` or a name like `Europe/Amsterdam`)")]
    UnknownZone(String),
    /// A tool printed something that is not the JSON it prints.
    #[error("`{tool}` printed something unexpected: {detail}")]
    Unexpected { tool: &'static str, detail: String },
    #[error("`borg info --json` names no `encryption.mode`")]
    NoEncryptionMode,
    #[error("restic snapshot time `{0}` is not a time")]
    ResticTime(String),
    #[error("borg archive `{name}` has no readable time (`{raw}`)")]
    BorgTime { name: String, raw: String },
    #[error("manifest line {0}: expected `TIME SHA256 FILE`")]
    ManifestShape(usize),
    #[error("manifest line {line}: `{time}` is not a time")]
    ManifestTime { line: usize, time: String },
    #[error("manifest line {line}: `{sum}` is not a SHA-256 in hex")]
    ManifestSum { line: usize, sum: String },
    #[error("manifest line {0}: no file name")]
    ManifestNoFile(usize),
}

/// UTC as a fixed offset.
fn utc_zone() -> Zone {
    Zone::Fixed(chrono::Offset::fix(&Utc))
}

/// A time zone for naive times.
#[derive(Debug, Clone, Copy)]
pub enum Zone {
    Fixed(chrono::FixedOffset),
    Named(chrono_tz::Tz),
}

/// Parses `UTC`, `Z`, `+01:00`, `-0530` or an IANA zone name.
pub fn parse_zone(s: &str) -> Result<Zone, ParseError> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return Ok(utc_zone());
    }
    if let Some(rest) = t.strip_prefix('+').or_else(|| t.strip_prefix('-')) {
        let sign = if t.starts_with('-') { -1 } else { 1 };
        let digits: String = rest.chars().filter(|c| *c != ':').collect();
        if digits.len() == 4 && digits.chars().all(|c| c.is_ascii_digit()) {
            let h: i32 = digits.get(0..2).and_then(|d| d.parse().ok()).unwrap_or(99);
            let m: i32 = digits.get(2..4).and_then(|d| d.parse().ok()).unwrap_or(99);
            if h < 24 && m < 60 {
                if let Some(off) = chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60)) {
                    return Ok(Zone::Fixed(off));
                }
            }
        }
        return Err(ParseError::NotAnOffset(s.to_owned()));
    }
    t.parse::<chrono_tz::Tz>()
        .map(Zone::Named)
        .map_err(|_| ParseError::UnknownZone(s.to_owned()))
}

impl Zone {
    /// The instant a naive local time names; in a DST gap or fold the
    /// earlier reading, which makes a set look older, never fresher.
    pub fn to_utc(self, t: NaiveDateTime) -> Option<DateTime<Utc>> {
        fn pick<Z: TimeZone>(r: chrono::LocalResult<DateTime<Z>>) -> Option<DateTime<Utc>> {
            match r {
                chrono::LocalResult::Single(d) => Some(d.with_timezone(&Utc)),
                chrono::LocalResult::Ambiguous(a, b) => {
                    Some(a.with_timezone(&Utc).min(b.with_timezone(&Utc)))
                }
                chrono::LocalResult::None => None,
            }
        }
        match self {
            Zone::Fixed(o) => pick(o.from_local_datetime(&t)),
            Zone::Named(z) => pick(z.from_local_datetime(&t)).or_else(|| {
                // A time inside a spring-forward gap: an hour earlier exists.
                pick(z.from_local_datetime(&(t - chrono::Duration::hours(1))))
            }),
        }
    }
}

/// Parses a time that may or may not carry a zone; naive times are read in `zone`.
pub fn parse_time(s: &str, zone: Zone) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f %z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return zone.to_utc(t);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return zone.to_utc(d.and_hms_opt(0, 0, 0)?);
    }
    None
}

/// restic's `snapshots --json`: an array of `{time, id, short_id, hostname, paths}`.
pub fn parse_restic_snapshots(json: &str) -> Result<Vec<BackupSet>, ParseError> {
    #[derive(Deserialize)]
    struct Snap {
        time: String,
        #[serde(default)]
        id: String,
        #[serde(default)]
        short_id: Option<String>,
        #[serde(default)]
        hostname: Option<String>,
    }
    let snaps: Vec<Snap> =
        serde_json::from_str(json.trim()).map_err(|e| ParseError::Unexpected {
            tool: "restic snapshots --json",
            detail: e.to_string(),
        })?;
    let utc = utc_zone();
    snaps
        .into_iter()
        .map(|s| {
            let time =
                parse_time(&s.time, utc).ok_or_else(|| ParseError::ResticTime(s.time.clone()))?;
            Ok(BackupSet {
                id: s.short_id.unwrap_or_else(|| s.id.chars().take(8).collect()),
                time,
                host: s.hostname,
            })
        })
        .collect()
}

/// borg's `list --json`: `{"archives": [{"name", "time" | "start"}]}`, times
/// without a zone (the borg host's local time), read in `zone`.
pub fn parse_borg_list(json: &str, zone: Zone) -> Result<Vec<BackupSet>, ParseError> {
    #[derive(Deserialize)]
    struct Archive {
        #[serde(default)]
        name: String,
        #[serde(default)]
        time: Option<String>,
        #[serde(default)]
        start: Option<String>,
        #[serde(default)]
        hostname: Option<String>,
    }
    #[derive(Deserialize)]
    struct List {
        archives: Vec<Archive>,
    }
    let list: List = serde_json::from_str(json.trim()).map_err(|e| ParseError::Unexpected {
        tool: "borg list --json",
        detail: e.to_string(),
    })?;
    list.archives
        .into_iter()
        .map(|a| {
            let raw = a.time.or(a.start).unwrap_or_default();
            let time = parse_time(&raw, zone).ok_or_else(|| ParseError::BorgTime {
                name: a.name.clone(),
                raw: raw.clone(),
            })?;
            Ok(BackupSet {
                id: a.name,
                time,
                host: a.hostname,
            })
        })
        .collect()
}

/// borg's `info --json`: the repository's `encryption.mode`.
pub fn parse_borg_encryption(json: &str) -> Result<String, ParseError> {
    let v: serde_json::Value =
        serde_json::from_str(json.trim()).map_err(|e| ParseError::Unexpected {
            tool: "borg info --json",
            detail: e.to_string(),
        })?;
    v.get("encryption")
        .and_then(|e| e.get("mode"))
        .and_then(|m| m.as_str())
        .map(str::to_owned)
        .ok_or(ParseError::NoEncryptionMode)
}

/// One line of `restic ls --json`: the node's path, if the line is a node.
pub fn restic_ls_path(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    if v.get("struct_type").and_then(|s| s.as_str()) == Some("node") {
        return v.get("path")?.as_str().map(str::to_owned);
    }
    None
}

/// Whether a listed path shows `required` present (the path itself or
/// something beneath it).
pub fn path_covers(listed: &str, required: &str) -> bool {
    let req = required.trim_end_matches('/');
    let req = if req.is_empty() { "/" } else { req };
    listed == req
        || (req == "/" && listed.starts_with('/'))
        || listed
            .strip_prefix(req)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// One entry of a directory manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub time: DateTime<Utc>,
    pub sha256: String,
    pub file: String,
}

/// A manifest: `#` comments and lines `TIME SHA256 FILE`, where TIME is
/// RFC 3339 or `YYYY-MM-DDTHH:MM:SS` (read in `zone`) and FILE is relative to
/// the manifest's folder (it may contain spaces).
pub fn parse_manifest(text: &str, zone: Zone) -> Result<Vec<ManifestEntry>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let mut parts = l.splitn(3, char::is_whitespace);
        let (t, sum, file) = match (parts.next(), parts.next(), parts.next()) {
            (Some(t), Some(s), Some(f)) => (t, s, f.trim()),
            _ => return Err(ParseError::ManifestShape(i + 1)),
        };
        let time = parse_time(t, zone).ok_or_else(|| ParseError::ManifestTime {
            line: i + 1,
            time: t.to_owned(),
        })?;
        if sum.len() != 64 || !sum.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ParseError::ManifestSum {
                line: i + 1,
                sum: sum.to_owned(),
            });
        }
        if file.is_empty() {
            return Err(ParseError::ManifestNoFile(i + 1));
        }
        out.push(ManifestEntry {
            time,
            sha256: sum.to_ascii_lowercase(),
            file: file.to_owned(),
        });
    }
    Ok(out)
}

/// The time a dated set folder or file is named for: the first
/// `YYYY-MM-DD[ T_]HH[:-]MM[:-]SS`, `YYYYMMDD[-T_]HHMMSS`, `YYYY-MM-DD` or
/// `YYYYMMDD` in its name, read in `zone`. A date alone counts from midnight,
/// which can only make a set look older.
pub fn set_time_from_name(name: &str, zone: Zone) -> Option<DateTime<Utc>> {
    let b = name.as_bytes();
    let digits = |from: usize, n: usize| -> Option<u32> {
        let s = name.get(from..from + n)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let sep = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    for start in 0..b.len() {
        if start > 0 && b.get(start - 1).is_some_and(|c| c.is_ascii_digit()) {
            continue;
        }
        // `YYYY-MM-DD` or `YYYYMMDD`.
        let (date, mut at) = if let (Some(y), true, Some(m), true, Some(d)) = (
            digits(start, 4),
            sep(start + 4, b"-"),
            digits(start + 5, 2),
            sep(start + 7, b"-"),
            digits(start + 8, 2),
        ) {
            (NaiveDate::from_ymd_opt(y as i32, m, d), start + 10)
        } else if let (Some(y), Some(m), Some(d)) =
            (digits(start, 4), digits(start + 4, 2), digits(start + 6, 2))
        {
            (NaiveDate::from_ymd_opt(y as i32, m, d), start + 8)
        } else {
            continue;
        };
        let Some(date) = date else { continue };
        if b.get(at).is_some_and(|c| c.is_ascii_digit()) {
            continue;
        }
        let mut time = chrono::NaiveTime::from_hms_opt(0, 0, 0)?;
        if sep(at, b" T_-") {
            at += 1;
            let t = if sep(at + 2, b":-") {
                match (digits(at, 2), sep(at + 2, b":-"), digits(at + 3, 2)) {
                    (Some(h), true, Some(m)) => {
                        let s = if sep(at + 5, b":-") {
                            digits(at + 6, 2)
                        } else {
                            None
                        };
                        chrono::NaiveTime::from_hms_opt(h, m, s.unwrap_or(0))
                    }
                    _ => None,
                }
            } else {
                match (digits(at, 2), digits(at + 2, 2), digits(at + 4, 2)) {
                    (Some(h), Some(m), Some(s)) => chrono::NaiveTime::from_hms_opt(h, m, s),
                    (Some(h), Some(m), None) => chrono::NaiveTime::from_hms_opt(h, m, 0),
                    _ => None,
                }
            };
            if let Some(t) = t {
                time = t;
            }
        }
        return zone.to_utc(date.and_time(time));
    }
    None
}

/// Removes a password from `scheme://user:password@host/…` repository strings.
pub fn redact_location(loc: &str) -> String {
    if let Some(idx) = loc.find("://") {
        let (head, rest) = loc.split_at(idx + 3);
        let end = rest.find('/').unwrap_or(rest.len());
        let authority = rest.get(..end).unwrap_or("");
        if let Some(at) = authority.rfind('@') {
            let userinfo = authority.get(..at).unwrap_or("");
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{head}{user}:[REDACTED]{}", rest.get(at..).unwrap_or(""));
            }
        }
    }
    loc.to_owned()
}
