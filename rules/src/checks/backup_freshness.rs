//! `backup_freshness`: nightly backups, several sets, several locations,
//! encrypted in transit and at rest.
//!
//! The agent runs `restic snapshots --json`, `borg list --json` / `borg info
//! --json`, or reads a directory of dated sets or a manifest, and hands the
//! output to the parsers here ([`parse_restic_snapshots`], [`parse_borg_list`],
//! [`parse_borg_encryption`], [`parse_manifest`], [`set_time_from_name`]), so
//! the facts hold only set times, ids and counts. [`judge_transport`] decides
//! from a repository string (and the mount it sits on) whether backups travel
//! encrypted. Passwords never enter the facts: the collector passes a password
//! *file* to the programs and keeps nothing of it.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::{CheckKind, JudgeCtx};
use crate::finding_codes;
use crate::verdict::{FindingCode, Verdict};

pub struct BackupFreshness;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Restic,
    Borg,
    Directory,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Restic => "restic",
            Kind::Borg => "borg",
            Kind::Directory => "directory",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub kind: Kind,
    /// The repository string (`sftp:user@host:/path`, `rest:https://…`,
    /// `/srv/backup/restic`, `ssh://user@host/./repo`) or the directory.
    pub location: String,
    /// A file holding the repository password (restic, borg). It is handed
    /// to the program as a file, never on its command line.
    #[serde(default)]
    pub password_file: Option<String>,
    /// The host holding this copy, for `min_locations`, when the location
    /// does not show it. Defaults to the host in the repository string, or
    /// this host for a path (see [`default_site`]).
    #[serde(default)]
    pub site: Option<String>,
    /// The policy vouches that this location is on this host (or a trusted
    /// link), so an unencrypted transport is accepted.
    #[serde(default)]
    pub local: bool,
    /// restic: only snapshots of this host (`--host`).
    #[serde(default)]
    pub host: Option<String>,
    /// directory: a manifest file listing `TIME SHA256 FILE` lines, instead
    /// of dated set folders.
    #[serde(default)]
    pub manifest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub sources: Vec<SourceSpec>,
    /// The newest set of each location must be younger than this.
    #[serde(default = "default_max_age")]
    pub max_age_hours: u64,
    /// Sets each location must keep.
    #[serde(default = "one")]
    pub min_sets: u64,
    /// Distinct hosts holding a fresh backup (a location is the host that
    /// holds the repository: [`host_of_source`]).
    #[serde(default = "one")]
    pub min_locations: u64,
    #[serde(default = "yes")]
    pub require_encrypted_transport: bool,
    /// restic and borg repositories must be encrypted at rest.
    #[serde(default = "yes")]
    pub require_encrypted_repository: bool,
    /// Paths the newest set must contain (restic: `ls` of the newest snapshot).
    #[serde(default)]
    pub required_paths: Vec<String>,
    /// restic: run `restic check --read-data-subset` with this subset
    /// (`5%`, `1/20`, `500M`).
    #[serde(default)]
    pub read_data_subset: Option<String>,
    /// The zone of times that carry none (borg, directory names, manifests):
    /// `UTC`, an IANA name like `Europe/Amsterdam`, or an offset `+01:00`.
    #[serde(default = "default_tz")]
    pub time_zone: String,
    /// Each program run (snapshots, ls, check) is stopped after this long.
    #[serde(default = "default_cmd_timeout")]
    pub command_timeout_seconds: u64,
    /// directory manifests: verify the newest set's SHA-256.
    #[serde(default = "yes")]
    pub verify_checksums: bool,
}

fn default_max_age() -> u64 {
    26
}
fn one() -> u64 {
    1
}
fn yes() -> bool {
    true
}
fn default_tz() -> String {
    "UTC".into()
}
fn default_cmd_timeout() -> u64 {
    300
}

/// One backup set (snapshot, archive, dated folder, manifest entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSet {
    pub id: String,
    pub time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// How backups travel to a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum Transport {
    /// Encrypted in transit (ssh, https, kerberos-sealed NFS, sealed SMB).
    Encrypted { how: String },
    /// A path on this host's own disks.
    Local,
    /// Plain text on the wire (or unknown, which is not proof).
    Plain { why: String },
}

/// A mount a location sits on, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub mount_point: String,
    pub fs_type: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub options: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathPresence {
    pub path: String,
    pub present: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataCheck {
    pub subset: String,
    pub ok: bool,
    /// The last lines of the program's output on failure (no secrets: restic
    /// never prints the password).
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    pub set: String,
    pub ok: bool,
    #[serde(default)]
    pub detail: String,
}

/// What was observed at one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFacts {
    pub kind: Kind,
    /// The location with any password in it redacted.
    pub location: String,
    /// The site this location counts as.
    pub site: String,
    #[serde(default)]
    pub local: bool,
    /// The mount the location's path sits on (paths only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<Mount>,
    #[serde(default)]
    pub sets: Vec<BackupSet>,
    /// Encryption at rest: restic always, borg per `encryption.mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_mode: Option<String>,
    #[serde(default)]
    pub required_paths: Vec<PathPresence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_check: Option<DataCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// restic, local repositories: the sets (and required paths) were taken
    /// from the agent's listing cache, restic was not started to list them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_listing: Option<CachedListing>,
    /// Why this source could not be read; the check is then `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where a listing taken from the agent's cache came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedListing {
    /// When restic last listed the repository (and the cache was written).
    pub listed_at: DateTime<Utc>,
    /// The last change to the repository's snapshots, keys, index or config
    /// (their newest ctime): it has not changed since.
    pub unchanged_since: DateTime<Utc>,
    /// `required_paths` came from the cache too (else `restic ls` ran).
    #[serde(default)]
    pub required_paths_cached: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub sources: Vec<SourceFacts>,
    /// The names this host goes by besides the agent's host name (kernel
    /// hostname, `/etc/hostname`, loopback names in `/etc/hosts`): a
    /// repository reached at one of them is on this host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_names: Vec<String>,
}

finding_codes! {
    pub enum Code {
        Stale = ("stale", High, "the newest backup set of a location is older than `max_age_hours`"),
        NoSets = ("no_sets", High, "a location holds no backup set at all"),
        TooFewSets = ("too_few_sets", Medium, "a location keeps fewer sets than `min_sets`"),
        TooFewLocations = ("too_few_locations", High, "fewer distinct hosts than `min_locations` hold a fresh backup (a location is the host that holds the repository)"),
        UnencryptedTransport = ("unencrypted_transport", High, "backups reach a location over a connection that is not encrypted"),
        UnencryptedRepository = ("unencrypted_repository", High, "a borg repository is not encrypted (`encryption.mode` is `none`)"),
        MissingPath = ("missing_path", High, "the newest set lacks a path the policy requires"),
        DataCheckFailed = ("data_check_failed", High, "`restic check --read-data-subset` found damaged data"),
        ChecksumMismatch = ("checksum_mismatch", High, "the newest set's file does not match its manifest checksum"),
        FutureSet = ("future_set", Low, "a set is dated in the future: a clock is wrong"),
    }
}

/// A time zone for naive times.
#[derive(Debug, Clone, Copy)]
pub enum Zone {
    Fixed(chrono::FixedOffset),
    Named(chrono_tz::Tz),
}

/// Parses `UTC`, `Z`, `+01:00`, `-0530` or an IANA zone name.
pub fn parse_zone(s: &str) -> Result<Zone, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return Ok(Zone::Fixed(
            chrono::FixedOffset::east_opt(0).ok_or("offset")?,
        ));
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
        return Err(format!("`{s}` is not an offset like `+01:00`"));
    }
    t.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
        format!("unknown time zone `{s}` (use `UTC`, `+01:00` or a name like `Europe/Amsterdam`)")
    })
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
pub fn parse_restic_snapshots(json: &str) -> Result<Vec<BackupSet>, String> {
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
    let snaps: Vec<Snap> = serde_json::from_str(json.trim())
        .map_err(|e| format!("`restic snapshots --json` printed something unexpected: {e}"))?;
    let utc = Zone::Fixed(chrono::FixedOffset::east_opt(0).ok_or("offset")?);
    snaps
        .into_iter()
        .map(|s| {
            let time = parse_time(&s.time, utc)
                .ok_or_else(|| format!("restic snapshot time `{}` is not a time", s.time))?;
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
pub fn parse_borg_list(json: &str, zone: Zone) -> Result<Vec<BackupSet>, String> {
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
    let list: List = serde_json::from_str(json.trim())
        .map_err(|e| format!("`borg list --json` printed something unexpected: {e}"))?;
    list.archives
        .into_iter()
        .map(|a| {
            let raw = a.time.or(a.start).unwrap_or_default();
            let time = parse_time(&raw, zone).ok_or_else(|| {
                format!("borg archive `{}` has no readable time (`{raw}`)", a.name)
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
pub fn parse_borg_encryption(json: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(json.trim())
        .map_err(|e| format!("`borg info --json` printed something unexpected: {e}"))?;
    v.get("encryption")
        .and_then(|e| e.get("mode"))
        .and_then(|m| m.as_str())
        .map(str::to_owned)
        .ok_or_else(|| "`borg info --json` names no `encryption.mode`".to_owned())
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
pub fn parse_manifest(text: &str, zone: Zone) -> Result<Vec<ManifestEntry>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let mut parts = l.splitn(3, char::is_whitespace);
        let (t, sum, file) = match (parts.next(), parts.next(), parts.next()) {
            (Some(t), Some(s), Some(f)) => (t, s, f.trim()),
            _ => {
                return Err(format!(
                    "manifest line {}: expected `TIME SHA256 FILE`",
                    i + 1
                ))
            }
        };
        let time = parse_time(t, zone)
            .ok_or_else(|| format!("manifest line {}: `{t}` is not a time", i + 1))?;
        if sum.len() != 64 || !sum.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "manifest line {}: `{sum}` is not a SHA-256 in hex",
                i + 1
            ));
        }
        if file.is_empty() {
            return Err(format!("manifest line {}: no file name", i + 1));
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

fn host_of_url(rest: &str) -> String {
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(h) = host.strip_prefix('[') {
        return h.split(']').next().unwrap_or(h).to_owned();
    }
    host.split(':').next().unwrap_or(host).to_owned()
}

/// Where a location is, as a site name: the host in the repository string
/// (lower case), the cloud provider (`b2`, `azure`, `gs`, `swift`), or
/// `local` for a path (resolved to this host, or a network mount's server,
/// by [`host_of_source`]).
pub fn default_site(kind: Kind, location: &str) -> String {
    let l = location.trim();
    if let Some(i) = l.find("://") {
        if l.starts_with("file://") {
            return "local".into();
        }
        return host_of_url(l.get(i + 3..).unwrap_or("")).to_ascii_lowercase();
    }
    if kind == Kind::Restic {
        if let Some(rest) = l.strip_prefix("sftp:") {
            let before_colon = rest.split(':').next().unwrap_or(rest);
            return before_colon
                .rsplit('@')
                .next()
                .unwrap_or(before_colon)
                .to_ascii_lowercase();
        }
        for p in ["rest:", "s3:"] {
            if let Some(rest) = l.strip_prefix(p) {
                let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
                return host_of_url(rest).to_ascii_lowercase();
            }
        }
        // Cloud stores: the provider is the place (the bucket is not a host).
        for p in ["swift:", "b2:", "azure:", "gs:"] {
            if l.starts_with(p) {
                return p.trim_end_matches(':').to_owned();
            }
        }
        if let Some(rest) = l.strip_prefix("rclone:") {
            return format!("rclone:{}", rest.split(':').next().unwrap_or(rest));
        }
        if l.starts_with("local:") {
            return "local".into();
        }
    }
    if !l.starts_with('/') {
        // scp-like `user@host:path` (borg, rsync).
        if let Some((host, _)) = l.split_once(':') {
            return host.rsplit('@').next().unwrap_or(host).to_ascii_lowercase();
        }
    }
    "local".into()
}

/// The names that always mean this host.
const LOOPBACK_NAMES: &[&str] = &["localhost", "localhost.localdomain", "127.0.0.1", "::1"];

/// This host, as `min_locations` sees it: its name and every alias.
#[derive(Debug, Clone)]
pub struct ThisHost {
    pub name: String,
    pub aliases: Vec<String>,
}

impl ThisHost {
    /// `name` (the agent's host name) and the facts' `host_names`.
    pub fn new(name: &str, host_names: &[String]) -> Self {
        let mut aliases: Vec<String> = host_names.iter().map(|n| canonical_host(n)).collect();
        aliases.extend(LOOPBACK_NAMES.iter().map(|n| (*n).to_owned()));
        aliases.push(canonical_host(name));
        aliases.retain(|a| !a.is_empty());
        ThisHost {
            name: canonical_host(name),
            aliases,
        }
    }

    pub fn is(&self, host: &str) -> bool {
        let h = canonical_host(host);
        h.starts_with("127.") || self.aliases.iter().any(|a| same_host(a, &h))
    }
}

/// Lower case, no trailing dot, no IPv6 brackets.
pub fn canonical_host(h: &str) -> String {
    h.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn is_ip(h: &str) -> bool {
    h.parse::<std::net::IpAddr>().is_ok()
}

/// Whether two host names name one host: equal (without case and trailing
/// dot), or one is a bare name and the other's first label (`backup-1` and
/// `backup-1.papyrs.internal`). IP addresses compare whole.
pub fn same_host(a: &str, b: &str) -> bool {
    let (a, b) = (canonical_host(a), canonical_host(b));
    if a == b {
        return true;
    }
    if a.is_empty() || b.is_empty() || is_ip(&a) || is_ip(&b) {
        return false;
    }
    let first = |h: &str| h.split('.').next().unwrap_or("").to_owned();
    match (a.contains('.'), b.contains('.')) {
        (false, true) => first(&b) == a,
        (true, false) => first(&a) == b,
        _ => false,
    }
}

/// The names `/etc/hosts` gives to loopback addresses (`127.0.0.0/8`,
/// `::1`): Debian writes `127.0.1.1 host.example host` for the host itself.
pub fn loopback_host_names(hosts: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(addr) = fields.next() else { continue };
        let loopback = match addr.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => false,
        };
        if !loopback {
            continue;
        }
        for name in fields {
            let n = canonical_host(name);
            if !n.is_empty() && !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// The server a network mount's source names: `nas-1` for `nas-1:/export`
/// (NFS, GlusterFS, sshfs `user@host:/path`), `//nas-1/share` (SMB/CIFS),
/// `mon1,mon2:/` (CephFS: the first). `None` for a local filesystem.
pub fn mount_server(m: &Mount) -> Option<String> {
    if !(NETWORK_FS.contains(&m.fs_type.as_str()) || m.fs_type == "fuse.sshfs") {
        return None;
    }
    let src = m.source.trim();
    let host = if let Some(rest) = src.strip_prefix("//") {
        rest.split('/').next().unwrap_or("")
    } else if let Some(rest) = src.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        let before = src.split(":/").next().unwrap_or(src);
        let before = before.rsplit('@').next().unwrap_or(before);
        let first = before.split(',').next().unwrap_or(before);
        // `mon1:6789` (CephFS) or `host:` (scp-like): the name before the port.
        match first.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => first.trim_end_matches(':'),
        }
    };
    let host = canonical_host(host);
    (!host.is_empty()).then_some(host)
}

/// The host that holds a source's copy: its `site` when that names a host,
/// this host for a path (`local`) unless the path is on a network mount,
/// then the mount's server; a name of this host becomes this host's name.
pub fn host_of_source(s: &SourceFacts, this: &ThisHost) -> String {
    let named = if s.site == "local" {
        match s.mount.as_ref().and_then(mount_server) {
            Some(server) => server,
            None => return this.name.clone(),
        }
    } else {
        canonical_host(&s.site)
    };
    if this.is(&named) {
        this.name.clone()
    } else {
        named
    }
}

const NETWORK_FS: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "glusterfs",
    "ceph",
    "fuse.glusterfs",
    "fuse.cephfs",
    "afs",
    "davfs",
    "fuse.davfs2",
    "fuse.rclone",
    "lustre",
    "beegfs",
];

/// How backups reach `location` (with `mount` the mount its path sits on).
pub fn judge_transport(kind: Kind, location: &str, mount: Option<&Mount>) -> Transport {
    let l = location.trim();
    let enc = |how: &str| Transport::Encrypted { how: how.into() };
    let plain = |why: String| Transport::Plain { why };
    let lower = l.to_ascii_lowercase();
    for (prefix, verdict) in [
        ("sftp:", Some("ssh (sftp)")),
        ("ssh://", Some("ssh")),
        ("rest:https://", Some("https")),
        ("s3:https://", Some("https")),
        ("https://", Some("https")),
        ("swift:", Some("https (swift)")),
        ("b2:", Some("https (b2)")),
        ("azure:", Some("https (azure)")),
        ("gs:", Some("https (gcs)")),
        ("rest:http://", None),
        ("s3:http://", None),
        ("http://", None),
        ("ftp://", None),
        ("rsync://", None),
        ("smb://", None),
        ("nfs://", None),
    ] {
        if lower.starts_with(prefix) {
            return match verdict {
                Some(how) => enc(how),
                None => plain(format!("`{prefix}` sends backups unencrypted")),
            };
        }
    }
    if lower.starts_with("s3:") {
        // restic talks https to S3 unless told `http://`.
        return enc("https (s3)");
    }
    if lower.starts_with("rclone:") {
        return plain("`rclone:` hides the transport; vigil cannot tell it is encrypted".into());
    }
    let path = if kind == Kind::Restic {
        l.strip_prefix("local:").unwrap_or(l)
    } else {
        l
    };
    if !path.starts_with('/') {
        if let Some(i) = path.find("://") {
            let scheme = path.get(..i).unwrap_or("");
            return plain(format!(
                "the scheme `{scheme}://` is not known to be encrypted"
            ));
        }
        if kind != Kind::Restic && path.contains(':') && !path.starts_with('.') {
            return enc("ssh (host:path)");
        }
    }
    match mount {
        Some(m) if NETWORK_FS.contains(&m.fs_type.as_str()) => {
            let opts: Vec<&str> = m.options.split(',').collect();
            let nfs_sealed = m.fs_type.starts_with("nfs") && opts.contains(&"sec=krb5p");
            let smb_sealed =
                matches!(m.fs_type.as_str(), "cifs" | "smb3") && opts.contains(&"seal");
            if nfs_sealed {
                enc("nfs with sec=krb5p")
            } else if smb_sealed {
                enc("smb with seal")
            } else {
                plain(format!(
                    "`{}` is on a {} mount of `{}` without encryption",
                    m.mount_point, m.fs_type, m.source
                ))
            }
        }
        Some(m) if m.fs_type == "fuse.sshfs" => enc("sshfs"),
        _ => Transport::Local,
    }
}

fn hours(d: chrono::Duration) -> String {
    let h = d.num_minutes() as f64 / 60.0;
    if h >= 48.0 {
        format!("{:.1} days", h / 24.0)
    } else {
        format!("{h:.1} h")
    }
}

impl CheckKind for BackupFreshness {
    type Params = Params;
    type Facts = Facts;
    type Evidence = serde_json::Value;
    type Code = Code;
    const SUMMARY: &'static str =
        "nightly backups: newest set age, set count and distinct locations, encrypted transport";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        if p.sources.is_empty() {
            out.push((
                Some("sources"),
                "give at least one backup source".to_owned(),
            ));
        }
        for s in &p.sources {
            if s.location.trim().is_empty() {
                out.push((
                    Some("sources"),
                    "a source has an empty `location`".to_owned(),
                ));
            }
            match s.kind {
                Kind::Restic | Kind::Borg => {
                    if s.manifest.is_some() {
                        out.push((
                            Some("sources"),
                            format!(
                                "`manifest` is for `directory` sources, not `{}`",
                                s.kind.as_str()
                            ),
                        ));
                    }
                }
                Kind::Directory => {
                    if s.password_file.is_some() || s.host.is_some() {
                        out.push((
                            Some("sources"),
                            "`password_file` and `host` are for restic and borg sources".to_owned(),
                        ));
                    }
                    if !s.location.starts_with('/') {
                        out.push((
                            Some("sources"),
                            format!(
                                "a `directory` location must be an absolute path, not `{}`",
                                s.location
                            ),
                        ));
                    }
                }
            }
            if s.kind == Kind::Borg && s.host.is_some() {
                out.push((Some("sources"), "`host` is for restic sources".to_owned()));
            }
        }
        if p.max_age_hours == 0 {
            out.push((Some("max_age_hours"), "must be at least 1".to_owned()));
        }
        if p.min_locations as usize > p.sources.len() && !p.sources.is_empty() {
            out.push((
                Some("min_locations"),
                format!(
                    "asks for {} locations but only {} sources are listed",
                    p.min_locations,
                    p.sources.len()
                ),
            ));
        }
        if let Err(e) = parse_zone(&p.time_zone) {
            out.push((Some("time_zone"), e));
        }
        if p.command_timeout_seconds == 0 {
            out.push((
                Some("command_timeout_seconds"),
                "must be at least 1".to_owned(),
            ));
        }
        if let Some(s) = &p.read_data_subset {
            if s.trim().is_empty() || s.starts_with('-') {
                out.push((
                    Some("read_data_subset"),
                    format!("`{s}` is not a subset like `5%` or `1/20`"),
                ));
            }
        }
        out
    }

    fn judge(p: &Params, facts: &Facts, ctx: &JudgeCtx) -> Verdict {
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let max_age = chrono::Duration::hours(p.max_age_hours as i64);
        let mut fresh_hosts: BTreeSet<String> = BTreeSet::new();
        let mut evidence_sources = Vec::new();
        let this = ThisHost::new(&ctx.host, &facts.host_names);
        // Each source's host; names of one host (short and dotted) are
        // folded into the first seen.
        let mut known: Vec<String> = Vec::new();
        let holders: Vec<String> = facts
            .sources
            .iter()
            .map(|s| {
                let h = host_of_source(s, &this);
                match known.iter().find(|k| same_host(k, &h)) {
                    Some(k) => k.clone(),
                    None => {
                        known.push(h.clone());
                        h
                    }
                }
            })
            .collect();
        for (s, holder) in facts.sources.iter().zip(&holders) {
            let subject = s.location.clone();
            let transport = judge_transport(s.kind, &s.location, s.mount.as_ref());
            evidence_sources.push(serde_json::json!({
                "kind": s.kind.as_str(),
                "location": s.location,
                "site": s.site,
                "host": holder,
                "sets": s.sets.len(),
                "newest": s.sets.iter().map(|x| x.time).max(),
                "transport": transport,
                "encryption_mode": s.encryption_mode,
                "error": s.error,
            }));
            if let (Some(c), Some(e)) = (&s.cached_listing, evidence_sources.last_mut()) {
                e["listing"] = serde_json::json!({
                    "from_cache": true,
                    "listed_at": c.listed_at,
                    "unchanged_since": c.unchanged_since,
                    "required_paths_cached": c.required_paths_cached,
                });
            }
            if p.require_encrypted_transport {
                if let Transport::Plain { why } = &transport {
                    if !s.local {
                        findings.push(Code::UnencryptedTransport.finding(
                            &subject,
                            format!("{} location `{subject}`: {why} (the policy requires encrypted transport; mark the source `local: true` if it is on this host)", s.kind.as_str()),
                        ));
                    }
                }
            }
            if let Some(e) = &s.error {
                errors.push(format!("{} `{subject}`: {e}", s.kind.as_str()));
                continue;
            }
            if p.require_encrypted_repository {
                if let Some(mode) = &s.encryption_mode {
                    if mode == "none" || mode.is_empty() {
                        findings.push(Code::UnencryptedRepository.finding(
                            &subject,
                            format!("{} repository `{subject}` is not encrypted (encryption mode `{mode}`)", s.kind.as_str()),
                        ));
                    }
                }
            }
            let newest = s.sets.iter().max_by_key(|x| x.time);
            let mut fresh = false;
            match newest {
                None => findings.push(Code::NoSets.finding(
                    &subject,
                    format!("{} location `{subject}` holds no backup set (the policy asks for one younger than {} h)", s.kind.as_str(), p.max_age_hours),
                )),
                Some(n) => {
                    let age = ctx.now - n.time;
                    if age > max_age {
                        findings.push(Code::Stale.finding(
                            &subject,
                            format!(
                                "newest set `{}` at `{subject}` is from {} ({} old), older than the policy's {} h",
                                n.id,
                                n.time.format("%Y-%m-%d %H:%M UTC"),
                                hours(age),
                                p.max_age_hours
                            ),
                        ));
                    } else {
                        fresh = true;
                    }
                    if age < -chrono::Duration::minutes(10) {
                        findings.push(Code::FutureSet.finding(
                            &subject,
                            format!("set `{}` at `{subject}` is dated {}, {} in the future", n.id, n.time.format("%Y-%m-%d %H:%M UTC"), hours(-age)),
                        ));
                    }
                }
            }
            if !s.sets.is_empty() && (s.sets.len() as u64) < p.min_sets {
                findings.push(Code::TooFewSets.finding(
                    &subject,
                    format!(
                        "`{subject}` keeps {} set{}, the policy asks for at least {}",
                        s.sets.len(),
                        if s.sets.len() == 1 { "" } else { "s" },
                        p.min_sets
                    ),
                ));
            }
            for rp in s.required_paths.iter().filter(|r| !r.present) {
                findings.push(Code::MissingPath.finding(
                    &subject,
                    format!(
                        "the newest set{} at `{subject}` does not contain `{}`",
                        newest.map(|n| format!(" `{}`", n.id)).unwrap_or_default(),
                        rp.path
                    ),
                ));
            }
            // An incomplete or damaged newest set does not make a location good.
            let mut damaged = s.required_paths.iter().any(|r| !r.present);
            if let Some(dc) = &s.data_check {
                if !dc.ok {
                    damaged = true;
                    findings.push(Code::DataCheckFailed.finding(
                        &subject,
                        format!(
                            "`restic check --read-data-subset {}` failed at `{subject}`: {}",
                            dc.subset, dc.detail
                        ),
                    ));
                }
            }
            if let Some(cs) = &s.checksum {
                if !cs.ok {
                    damaged = true;
                    findings.push(Code::ChecksumMismatch.finding(
                        &subject,
                        format!("set `{}` at `{subject}`: {}", cs.set, cs.detail),
                    ));
                }
            }
            if fresh && !damaged {
                fresh_hosts.insert(holder.clone());
            }
        }
        let evidence = serde_json::json!({
            "sources": evidence_sources,
            "fresh_hosts": fresh_hosts,
            "max_age_hours": p.max_age_hours,
            "min_sets": p.min_sets,
            "min_locations": p.min_locations,
        });
        if !errors.is_empty() {
            let mut v = Verdict::error(errors.join("; "));
            v.findings = findings;
            v.evidence = evidence;
            return v;
        }
        if facts.sources.is_empty() {
            return Verdict::error("no backup source was read");
        }
        if (fresh_hosts.len() as u64) < p.min_locations {
            let n = fresh_hosts.len();
            let listed = if n == 0 {
                String::new()
            } else {
                format!(
                    " ({})",
                    fresh_hosts.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            let wheres = facts
                .sources
                .iter()
                .zip(&holders)
                .map(|(s, h)| format!("`{}` on {h}", s.location))
                .collect::<Vec<_>>()
                .join(", ");
            findings.push(Code::TooFewLocations.finding(
                "backups",
                format!(
                    "{n} distinct host{} hold{} a fresh backup{listed}, the policy asks for at least {} (a location is the host that holds it: {wheres})",
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "s" } else { "" },
                    p.min_locations,
                ),
            ));
        }
        let newest_overall = facts
            .sources
            .iter()
            .flat_map(|s| s.sets.iter().map(|x| x.time))
            .max();
        let ok = format!(
            "{} host{} with fresh backups, newest {}",
            fresh_hosts.len(),
            if fresh_hosts.len() == 1 { "" } else { "s" },
            newest_overall.map_or_else(
                || "none".to_owned(),
                |t| format!("{} old", hours(ctx.now - t))
            )
        );
        Verdict::from_findings(findings, ok, evidence)
    }
}

/// The sites of a policy's sources, in order (for collectors).
pub fn site_of(spec: &SourceSpec) -> String {
    spec.site
        .clone()
        .unwrap_or_else(|| default_site(spec.kind, &spec.location))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::CheckStatus;

    fn utc() -> Zone {
        parse_zone("UTC").unwrap()
    }

    fn ctx() -> JudgeCtx {
        JudgeCtx {
            now: "2026-11-25T08:00:00Z".parse().unwrap(),
            host: "h".into(),
        }
    }

    fn params(yaml: &str) -> Params {
        crate::yaml::from_node(&crate::yaml::parse(yaml).unwrap()).unwrap()
    }

    fn source(loc: &str, site: &str, times: &[&str]) -> SourceFacts {
        SourceFacts {
            kind: Kind::Restic,
            location: loc.into(),
            site: site.into(),
            local: false,
            mount: None,
            sets: times
                .iter()
                .enumerate()
                .map(|(i, t)| BackupSet {
                    id: format!("s{i}"),
                    time: t.parse().unwrap(),
                    host: None,
                })
                .collect(),
            encryption_mode: Some("repokey".into()),
            required_paths: vec![],
            data_check: None,
            checksum: None,
            cached_listing: None,
            error: None,
        }
    }

    fn codes(v: &Verdict) -> Vec<&str> {
        v.findings.iter().map(|f| f.code.as_str()).collect()
    }

    const TWO: &str = "sources: [{kind: restic, location: /a}, {kind: restic, location: 'sftp:b@h:/r'}]\nmin_sets: 2\nmin_locations: 2";

    #[test]
    fn restic_fixture_parses() {
        let json = include_str!("../../../tests/data/backup/restic_snapshots/snapshots.json");
        let sets = parse_restic_snapshots(json).unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(
            sets[0].time,
            "2026-11-24T02:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(sets[1].id, "4c5b8f12");
        assert_eq!(sets[1].host.as_deref(), Some("papyrs"));
        assert!(parse_restic_snapshots("Fatal: wrong password").is_err());
    }

    #[test]
    fn borg_times_take_the_policy_zone() {
        let json = include_str!("../../../tests/data/backup/borg_list/list.json");
        let z = parse_zone("Europe/Amsterdam").unwrap();
        let sets = parse_borg_list(json, z).unwrap();
        // 03:00 in Amsterdam in November is 02:00 UTC.
        assert_eq!(
            sets[0].time,
            "2026-11-24T02:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let sets = parse_borg_list(json, utc()).unwrap();
        assert_eq!(
            sets[0].time,
            "2026-11-24T03:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let info = include_str!("../../../tests/data/backup/borg_list/info.json");
        assert_eq!(parse_borg_encryption(info).unwrap(), "repokey-blake2");
        let z = parse_zone("+01:00").unwrap();
        assert_eq!(
            parse_time("2026-11-24T03:00:00", z).unwrap(),
            "2026-11-24T02:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert!(parse_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn dated_names_and_manifests() {
        let z = utc();
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            set_time_from_name("site-2026-11-24T02-30-00.tar.gz", z),
            Some(t("2026-11-24T02:30:00Z"))
        );
        assert_eq!(
            set_time_from_name("2026-11-24_023000", z),
            Some(t("2026-11-24T02:30:00Z"))
        );
        assert_eq!(
            set_time_from_name("backup-20261124-0230", z),
            Some(t("2026-11-24T02:30:00Z"))
        );
        assert_eq!(
            set_time_from_name("20261124", z),
            Some(t("2026-11-24T00:00:00Z"))
        );
        assert_eq!(
            set_time_from_name("2026-11-24", z),
            Some(t("2026-11-24T00:00:00Z"))
        );
        assert_eq!(set_time_from_name("lost+found", z), None);
        assert_eq!(set_time_from_name("v12345678901", z), None);
        let m = include_str!("../../../tests/data/backup/manifest/MANIFEST");
        let entries = parse_manifest(m, z).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].file, "sites 2026-11-24.tar");
        assert!(parse_manifest("2026-11-24 nothex f", z).is_err());
    }

    #[test]
    fn restic_ls_lines() {
        assert_eq!(
            restic_ls_path(r#"{"name":"www","type":"dir","path":"/srv/www","struct_type":"node"}"#),
            Some("/srv/www".into())
        );
        assert_eq!(
            restic_ls_path(r#"{"time":"x","struct_type":"snapshot"}"#),
            None
        );
        assert!(path_covers("/srv/www/a", "/srv/www"));
        assert!(path_covers("/srv/www", "/srv/www/"));
        assert!(!path_covers("/srv/www2", "/srv/www"));
    }

    #[test]
    fn transport_by_scheme_and_mount() {
        let t = |k, l| judge_transport(k, l, None);
        assert!(matches!(
            t(Kind::Restic, "sftp:backup@b1:/restic"),
            Transport::Encrypted { .. }
        ));
        assert!(matches!(
            t(Kind::Restic, "rest:https://b1:8000/"),
            Transport::Encrypted { .. }
        ));
        assert!(matches!(
            t(Kind::Restic, "s3:https://s3.example/b"),
            Transport::Encrypted { .. }
        ));
        assert!(matches!(
            t(Kind::Restic, "s3:s3.amazonaws.com/b"),
            Transport::Encrypted { .. }
        ));
        assert!(matches!(
            t(Kind::Restic, "rest:http://b1:8000/"),
            Transport::Plain { .. }
        ));
        assert!(matches!(
            t(Kind::Directory, "ftp://b1/x"),
            Transport::Plain { .. }
        ));
        assert!(matches!(
            t(Kind::Directory, "rsync://b1/x"),
            Transport::Plain { .. }
        ));
        assert!(matches!(
            t(Kind::Borg, "ssh://borg@b1/./repo"),
            Transport::Encrypted { .. }
        ));
        assert!(matches!(
            t(Kind::Borg, "borg@b1:repo"),
            Transport::Encrypted { .. }
        ));
        assert_eq!(t(Kind::Restic, "/srv/backup/restic"), Transport::Local);
        let nfs = Mount {
            mount_point: "/mnt/nas".into(),
            fs_type: "nfs4".into(),
            source: "nas:/export".into(),
            options: "rw,vers=4.2,sec=sys".into(),
        };
        assert!(matches!(
            judge_transport(Kind::Restic, "/mnt/nas/r", Some(&nfs)),
            Transport::Plain { .. }
        ));
        let sealed = Mount {
            options: "rw,sec=krb5p".into(),
            ..nfs
        };
        assert!(matches!(
            judge_transport(Kind::Restic, "/mnt/nas/r", Some(&sealed)),
            Transport::Encrypted { .. }
        ));
        assert_eq!(
            default_site(Kind::Restic, "sftp:backup@backup-1.papyrs.internal:/restic"),
            "backup-1.papyrs.internal"
        );
        assert_eq!(default_site(Kind::Restic, "/srv/backup/r"), "local");
        assert_eq!(
            default_site(Kind::Restic, "rest:https://u:p@b2.example:8000/r"),
            "b2.example"
        );
        assert_eq!(default_site(Kind::Borg, "ssh://borg@b3:22/./repo"), "b3");
        assert_eq!(
            redact_location("rest:https://u:s3cret@h:8000/r"),
            "rest:https://u:[REDACTED]@h:8000/r"
        );
    }

    #[test]
    fn fresh_everywhere_passes() {
        let p = params(TWO);
        let facts = Facts {
            host_names: vec![],
            sources: vec![
                source(
                    "/a",
                    "local",
                    &["2026-11-24T02:00:00Z", "2026-11-25T02:00:00Z"],
                ),
                source(
                    "sftp:b@b1:/r",
                    "b1",
                    &["2026-11-24T02:00:00Z", "2026-11-25T02:00:00Z"],
                ),
            ],
        };
        let v = BackupFreshness::judge(&p, &facts, &ctx());
        assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
        assert_eq!(v.summary, "2 hosts with fresh backups, newest 6.0 h old");
        assert_eq!(v.evidence["fresh_hosts"], serde_json::json!(["b1", "h"]));
        assert_eq!(v.evidence["sources"][0]["host"], "h");
    }

    #[test]
    fn stale_few_and_one_location_fail_with_details() {
        let p = params(TWO);
        let facts = Facts {
            host_names: vec![],
            sources: vec![
                source("/a", "local", &["2026-11-25T02:00:00Z"]),
                source(
                    "sftp:b@b1:/r",
                    "b1",
                    &["2026-11-20T02:00:00Z", "2026-11-21T02:00:00Z"],
                ),
            ],
        };
        let v = BackupFreshness::judge(&p, &facts, &ctx());
        assert_eq!(v.status, CheckStatus::Fail);
        assert_eq!(codes(&v), ["too_few_sets", "stale", "too_few_locations"]);
        assert!(
            v.findings[1].message.contains("4.2 days old"),
            "{}",
            v.findings[1].message
        );
        assert!(v.findings[1].message.contains("26 h"));
        assert!(v.findings[0]
            .message
            .contains("keeps 1 set, the policy asks for at least 2"));
    }

    #[test]
    fn plain_transport_fails_unless_local() {
        let p = params("sources: [{kind: restic, location: 'rest:http://b:8000/'}]");
        let mut s = source("rest:http://b:8000/", "rest:b", &["2026-11-25T02:00:00Z"]);
        let v = BackupFreshness::judge(
            &p,
            &Facts {
                host_names: vec![],
                sources: vec![s.clone()],
            },
            &ctx(),
        );
        assert_eq!(codes(&v), ["unencrypted_transport"]);
        s.local = true;
        let v = BackupFreshness::judge(
            &p,
            &Facts {
                host_names: vec![],
                sources: vec![s],
            },
            &ctx(),
        );
        assert_eq!(v.status, CheckStatus::Pass);
    }

    #[test]
    fn unreadable_source_is_an_error() {
        let p = params(TWO);
        let mut bad = source("/a", "local", &[]);
        bad.error = Some("wrong password or no key found".into());
        let v = BackupFreshness::judge(
            &p,
            &Facts {
                host_names: vec![],
                sources: vec![bad],
            },
            &ctx(),
        );
        assert_eq!(v.status, CheckStatus::Error);
        assert!(v.summary.contains("wrong password"));
    }

    #[test]
    fn unencrypted_borg_and_missing_paths_fail() {
        let p = params("sources: [{kind: borg, location: /b}]\nrequired_paths: [/srv/www]");
        let mut s = source("/b", "local", &["2026-11-25T02:00:00Z"]);
        s.kind = Kind::Borg;
        s.encryption_mode = Some("none".into());
        s.required_paths = vec![PathPresence {
            path: "/srv/www".into(),
            present: false,
        }];
        let v = BackupFreshness::judge(
            &p,
            &Facts {
                host_names: vec![],
                sources: vec![s],
            },
            &ctx(),
        );
        assert_eq!(
            codes(&v),
            [
                "unencrypted_repository",
                "missing_path",
                "too_few_locations"
            ]
        );
    }

    /// Issue 24, BK-2: `min_locations` counts hosts. A path is this host,
    /// a URL its host, a name of this host (short or dotted, loopback, one of
    /// `host_names`) is this host, a path on a network mount is the server's.
    #[test]
    fn locations_are_hosts_not_paths() {
        let p = params(TWO);
        let ctx = JudgeCtx {
            now: "2026-11-25T08:00:00Z".parse().unwrap(),
            host: "backup-1".into(),
        };
        let times = ["2026-11-24T02:00:00Z", "2026-11-25T02:00:00Z"];
        let remote = |loc: &str| source(loc, &default_site(Kind::Restic, loc), &times);
        let judge = |sources: Vec<SourceFacts>, names: &[&str]| {
            BackupFreshness::judge(
                &p,
                &Facts {
                    host_names: names.iter().map(|n| (*n).to_owned()).collect(),
                    sources,
                },
                &ctx,
            )
        };
        // The papyrs layout before issue 24: sftp to the backup server itself.
        let v = judge(
            vec![
                source("/srv/backup/restic-local", "local", &times),
                remote("sftp:backup@backup-1.papyrs.internal:/restic"),
            ],
            &[],
        );
        assert_eq!(codes(&v), ["too_few_locations"], "{v:?}");
        let m = &v.findings[0].message;
        assert!(
            m.starts_with(
                "1 distinct host holds a fresh backup (backup-1), the policy asks for at least 2"
            ),
            "{m}"
        );
        assert!(
            m.contains("`/srv/backup/restic-local` on backup-1, `sftp:backup@backup-1.papyrs.internal:/restic` on backup-1"),
            "{m}"
        );
        assert_eq!(v.evidence["sources"][1]["host"], "backup-1");
        // The offline host is another host.
        let v = judge(
            vec![
                source("/srv/backup/restic-local", "local", &times),
                remote("sftp:backup@offline-1.papyrs.internal:/srv/backup/restic-offline"),
            ],
            &[],
        );
        assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
        assert_eq!(
            v.evidence["fresh_hosts"],
            serde_json::json!(["backup-1", "offline-1.papyrs.internal"])
        );
        // Loopback and the host's other names are this host.
        for (loc, names) in [
            ("sftp:backup@localhost:/r", &[][..]),
            ("sftp:backup@127.0.1.1:/r", &[][..]),
            ("rest:https://[::1]:8000/r", &[][..]),
            ("sftp:backup@bk.example.org:/r", &["bk.example.org"][..]),
            ("sftp:backup@BACKUP-1.:/r", &[][..]),
        ] {
            let v = judge(vec![source("/a", "local", &times), remote(loc)], names);
            assert_eq!(codes(&v), ["too_few_locations"], "{loc}: {v:?}");
        }
        // Two names of one remote host count once.
        let v = judge(
            vec![
                remote("sftp:b@b1:/r"),
                remote("rest:https://B1.example.:8000/"),
            ],
            &[],
        );
        assert_eq!(codes(&v), ["too_few_locations"], "{v:?}");
        // A path on an NFS mount is on the NFS server.
        let mut nfs = source("/mnt/nas/r", "local", &times);
        nfs.local = true;
        nfs.mount = Some(Mount {
            mount_point: "/mnt/nas".into(),
            fs_type: "nfs4".into(),
            source: "nas-1.example:/export".into(),
            options: "rw,sec=sys".into(),
        });
        let v = judge(vec![source("/a", "local", &times), nfs], &[]);
        assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
        assert_eq!(
            v.evidence["fresh_hosts"],
            serde_json::json!(["backup-1", "nas-1.example"])
        );
        // Facts of older agents (no host_names) still judge.
        let old: Facts = serde_json::from_value(serde_json::json!({"sources": []})).unwrap();
        assert!(old.host_names.is_empty());
    }

    #[test]
    fn host_names_and_mount_servers() {
        assert!(same_host("backup-1", "backup-1.papyrs.internal"));
        assert!(same_host(
            "Backup-1.Papyrs.Internal.",
            "backup-1.papyrs.internal"
        ));
        assert!(!same_host("backup-1.a.example", "backup-1.b.example"));
        assert!(!same_host("backup-1", "backup-2.papyrs.internal"));
        assert!(!same_host("10", "10.0.0.1"));
        let this = ThisHost::new("web-1", &["web-1.example".into()]);
        assert!(this.is("WEB-1") && this.is("web-1.example") && this.is("localhost"));
        assert!(this.is("127.0.0.1") && this.is("::1") && !this.is("web-2"));
        let m = |fs: &str, src: &str| Mount {
            mount_point: "/mnt".into(),
            fs_type: fs.into(),
            source: src.into(),
            options: String::new(),
        };
        assert_eq!(
            mount_server(&m("nfs4", "nas-1:/export")).as_deref(),
            Some("nas-1")
        );
        assert_eq!(
            mount_server(&m("cifs", "//NAS-2/share")).as_deref(),
            Some("nas-2")
        );
        assert_eq!(
            mount_server(&m("fuse.sshfs", "u@h3.example:/x")).as_deref(),
            Some("h3.example")
        );
        assert_eq!(
            mount_server(&m("ceph", "mon1:6789,mon2:6789:/")).as_deref(),
            Some("mon1")
        );
        assert_eq!(
            mount_server(&m("nfs", "[fd00::5]:/e")).as_deref(),
            Some("fd00::5")
        );
        assert_eq!(mount_server(&m("ext4", "/dev/sda1")), None);
        assert_eq!(
            default_site(Kind::Restic, "s3:s3.amazonaws.com/bucket"),
            "s3.amazonaws.com"
        );
        assert_eq!(default_site(Kind::Restic, "b2:bucket:path"), "b2");
        assert_eq!(
            default_site(Kind::Restic, "rclone:remote:path"),
            "rclone:remote"
        );
        assert_eq!(default_site(Kind::Directory, "file:///srv/x"), "local");
        assert_eq!(
            loopback_host_names(
                "127.0.0.1\tlocalhost\n127.0.1.1 Backup-1.papyrs.internal backup-1 # me\n10.0.0.5 offline-1\n::1 ip6-localhost ip6-loopback\nbad line\n"
            ),
            ["localhost", "backup-1.papyrs.internal", "backup-1", "ip6-localhost", "ip6-loopback"]
        );
    }

    #[test]
    fn validation_catches_mistakes() {
        let p = params("sources: [{kind: directory, location: rel, password_file: /x}]\nmin_locations: 3\ntime_zone: Nowhere/Land");
        let problems = BackupFreshness::validate(&p);
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    /// A listing from the agent's cache is judged against now like any other
    /// (a set that was fresh when cached goes stale) and says so in evidence.
    #[test]
    fn cached_listing_is_judged_against_now_and_shown() {
        let p = params("sources: [{kind: restic, location: /a}]");
        let mut s = source("/a", "local", &["2026-11-24T02:00:00Z"]);
        s.cached_listing = Some(CachedListing {
            listed_at: "2026-11-24T03:00:00Z".parse().unwrap(),
            unchanged_since: "2026-11-24T02:05:00Z".parse().unwrap(),
            required_paths_cached: false,
        });
        let v = BackupFreshness::judge(
            &p,
            &Facts {
                host_names: vec![],
                sources: vec![s],
            },
            &ctx(),
        );
        assert_eq!(codes(&v), ["stale", "too_few_locations"]);
        let l = &v.evidence["sources"][0]["listing"];
        assert_eq!(l["from_cache"], true);
        assert_eq!(l["unchanged_since"], "2026-11-24T02:05:00Z");
        let plain = source("/a", "local", &["2026-11-25T02:00:00Z"]);
        let v = BackupFreshness::judge(
            &p,
            &Facts {
                host_names: vec![],
                sources: vec![plain],
            },
            &ctx(),
        );
        assert_eq!(v.status, CheckStatus::Pass);
        assert!(v.evidence["sources"][0].get("listing").is_none());
    }
}
