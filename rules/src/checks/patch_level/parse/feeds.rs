//! Advisory feeds: the Debian security tracker's JSON
//! (`https://security-tracker.debian.org/tracker/data/json`) and debsecan's
//! per-release feed (`VERSION 1` text, zlib-decompressed by the caller).
//! Both are reduced to [`Advisory`] entries; [`parse`] tells them apart by content.

use serde::{Deserialize, Serialize};

/// One advisory for one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    /// `CVE-…`, `DSA-…`, `TEMP-…`.
    pub id: String,
    /// The package it names: a source package unless `binary`.
    pub package: String,
    #[serde(default)]
    pub binary: bool,
    /// The first fixed version in the release; `None` when no fix exists yet.
    pub fixed: Option<String>,
    /// Versions known not to be affected although older than `fixed`
    /// (debsecan's "other versions": fixes in stable updates).
    #[serde(default)]
    pub also_fixed: Vec<String>,
    /// `low`, `medium`, `high`, `unimportant`, `not yet assigned`, or empty.
    pub urgency: String,
    #[serde(default)]
    pub description: String,
}

/// Which format a feed was in.
pub fn format_of(text: &str) -> &'static str {
    if text.starts_with("VERSION 1") {
        "debsecan"
    } else {
        "security-tracker-json"
    }
}

/// Why an advisory feed was refused: the line or the JSON position where
/// there is one; the caller names the feed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    #[error("debsecan feed: line 1 is not `VERSION 1`")]
    NotDebsecan,
    #[error("debsecan feed line {line}: expected `NAME,FLAGS,DESCRIPTION`")]
    VulnerabilityLine { line: usize },
    #[error("debsecan feed is truncated: no package list")]
    NoPackageList,
    #[error("debsecan feed line {line}: expected 5 comma-separated fields")]
    PackageLine { line: usize },
    #[error("debsecan feed line {line}: `{index}` is not a vulnerability index")]
    NotAnIndex { line: usize, index: String },
    #[error("debsecan feed line {line}: vulnerability index {index} out of range")]
    IndexOutOfRange { line: usize, index: usize },
    #[error("debsecan feed line {line}: flags `{flags}` are not 4 characters")]
    Flags { line: usize, flags: String },
    #[error("debsecan feed is truncated: the package list does not end")]
    PackageListUnended,
    #[error("security tracker JSON is not valid at line {} column {}: {source}", source.line(), source.column())]
    TrackerJson {
        #[source]
        source: serde_json::Error,
    },
    #[error("security tracker JSON is not an object of packages")]
    TrackerNotObject,
    #[error("security tracker JSON: `{package}` is not an object of issues")]
    TrackerPackage { package: String },
    #[error("not valid zlib data: {0}")]
    Zlib(#[source] std::io::Error),
    #[error("it inflates past {max} bytes")]
    InflatesPast { max: u64 },
    #[error("it is larger than {max} bytes")]
    TooLarge { max: u64 },
    #[error("it is not UTF-8 text")]
    NotUtf8,
    #[error("it holds no advisory")]
    NoAdvisory,
}

/// Parses either format for `release` (a codename, e.g. `bookworm`; the
/// debsecan feed is already per release). `wanted` filters package names.
pub fn parse(
    text: &str,
    release: &str,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Advisory>, FeedError> {
    if format_of(text) == "debsecan" {
        debsecan(text, wanted)
    } else {
        tracker_json(text, release, wanted)
    }
}

/// debsecan's format: `VERSION 1`, the vulnerability list
/// (`NAME,FLAGS,DESCRIPTION`), a blank line, the package list
/// (`PACKAGE,VULN_INDEX,FLAGS,UNSTABLE_VERSION,OTHER_VERSIONS`), a blank line,
/// then source-to-binary lines. FLAGS: `B`inary or `S`ource, urgency
/// (`L`/`M`/`H`/space), remote (`R`/`?`/space), `F`ix available.
pub fn debsecan(text: &str, wanted: &dyn Fn(&str) -> bool) -> Result<Vec<Advisory>, FeedError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, "VERSION 1")) => {}
        _ => return Err(FeedError::NotDebsecan),
    }
    let mut vulns: Vec<(String, String)> = Vec::new();
    let mut ended = false;
    for (i, line) in lines.by_ref() {
        if line.is_empty() {
            ended = true;
            break;
        }
        let mut parts = line.splitn(3, ',');
        let (Some(name), Some(_flags)) = (parts.next(), parts.next()) else {
            return Err(FeedError::VulnerabilityLine { line: i + 1 });
        };
        vulns.push((name.to_owned(), parts.next().unwrap_or_default().to_owned()));
    }
    if !ended {
        return Err(FeedError::NoPackageList);
    }
    let mut out = Vec::new();
    ended = false;
    for (i, line) in lines {
        let n = i + 1;
        if line.is_empty() {
            ended = true;
            break;
        }
        let parts: Vec<&str> = line.splitn(5, ',').collect();
        let [package, vnum, flags, unstable, other] = parts.as_slice() else {
            return Err(FeedError::PackageLine { line: n });
        };
        let idx: usize = vnum.parse().map_err(|_| FeedError::NotAnIndex {
            line: n,
            index: (*vnum).to_owned(),
        })?;
        let (id, desc) = vulns.get(idx).ok_or(FeedError::IndexOutOfRange {
            line: n,
            index: idx,
        })?;
        let f: Vec<char> = flags.chars().collect();
        if f.len() < 4 {
            return Err(FeedError::Flags {
                line: n,
                flags: (*flags).to_owned(),
            });
        }
        if !wanted(package) {
            continue;
        }
        let urgency = match f.get(1) {
            Some('L') => "low",
            Some('M') => "medium",
            Some('H') => "high",
            _ => "",
        };
        let fix_available = f.get(3) == Some(&'F');
        let also: Vec<String> = other
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        out.push(Advisory {
            id: id.clone(),
            package: (*package).to_owned(),
            binary: f.first() == Some(&'B'),
            fixed: if unstable.is_empty() {
                None
            } else {
                Some((*unstable).to_owned())
            },
            also_fixed: also,
            urgency: urgency.into(),
            description: desc.clone(),
        });
        if !fix_available {
            if let Some(a) = out.last_mut() {
                // No fix in this release yet: the unstable version is not one.
                if a.also_fixed.is_empty() {
                    a.fixed = None;
                }
            }
        }
    }
    if !ended {
        return Err(FeedError::PackageListUnended);
    }
    Ok(out)
}

/// The security tracker JSON: `{source: {id: {description, releases:
/// {codename: {status, fixed_version, urgency}}}}}`.
pub fn tracker_json(
    text: &str,
    release: &str,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<Advisory>, FeedError> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|source| FeedError::TrackerJson { source })?;
    let pkgs = doc.as_object().ok_or(FeedError::TrackerNotObject)?;
    let mut out = Vec::new();
    for (pkg, issues) in pkgs {
        if !wanted(pkg) {
            continue;
        }
        let issues = issues
            .as_object()
            .ok_or_else(|| FeedError::TrackerPackage {
                package: pkg.clone(),
            })?;
        for (id, issue) in issues {
            let Some(rel) = issue.get("releases").and_then(|r| r.get(release)) else {
                continue;
            };
            let status = rel
                .get("status")
                .and_then(|s| s.as_str())
                .unwrap_or_default();
            let fixed = rel
                .get("fixed_version")
                .and_then(|s| s.as_str())
                .map(String::from);
            let fixed = match status {
                "resolved" => match fixed {
                    // Version 0: never affected in this release.
                    Some(v) if v == "0" => continue,
                    Some(v) => Some(v),
                    None => continue,
                },
                "open" | "undetermined" => None,
                _ => continue,
            };
            out.push(Advisory {
                id: id.clone(),
                package: pkg.clone(),
                binary: false,
                fixed,
                also_fixed: Vec::new(),
                urgency: rel
                    .get("urgency")
                    .and_then(|s| s.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                description: issue
                    .get("description")
                    .and_then(|s| s.as_str())
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debsecan_feed() {
        let text = "VERSION 1\nCVE-2024-1,,first\nCVE-2024-2,,second\n\nopenssl,0,SH F,3.0.15-1,3.0.14-1~deb12u2\nbash,1,BL  ,,\n\nopenssl,libssl3 openssl\n";
        let got = debsecan(text, &|_| true).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].fixed.as_deref(), Some("3.0.15-1"));
        assert_eq!(got[0].also_fixed, vec!["3.0.14-1~deb12u2"]);
        assert_eq!(got[0].urgency, "high");
        assert!(got[1].binary && got[1].fixed.is_none());
        assert!(
            debsecan("VERSION 1\nCVE-1,,x\n\nopenssl,7,S  F,1,\n\n", &|_| true)
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert!(debsecan("VERSION 1\nCVE-1,,x\n", &|_| true)
            .unwrap_err()
            .to_string()
            .contains("truncated"));
    }

    #[test]
    fn tracker() {
        let text = r#"{"curl":{"CVE-1":{"releases":{"bookworm":{"status":"resolved","fixed_version":"7.88.1-10+deb12u9","urgency":"medium"}}},
                       "CVE-2":{"releases":{"bookworm":{"status":"resolved","fixed_version":"0","urgency":"low"}}},
                       "CVE-3":{"releases":{"bookworm":{"status":"open","urgency":"unimportant"}}}}}"#;
        let got = tracker_json(text, "bookworm", &|_| true).unwrap();
        assert_eq!(got.len(), 2);
        assert!(tracker_json(&text[..40], "bookworm", &|_| true)
            .unwrap_err()
            .to_string()
            .contains("line 1"));
    }
}

/// The largest feed accepted (after inflating): debsecan's full feed
/// inflates to tens of MB, the tracker's JSON to about 70 MB.
pub const MAX_FEED: u64 = 256 * 1024 * 1024;

/// Inflates a zlib stream, refusing one that inflates past `max` bytes.
pub fn inflate_bounded(bytes: &[u8], max: u64) -> Result<Vec<u8>, FeedError> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(bytes)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(FeedError::Zlib)?;
    if out.len() as u64 > max {
        return Err(FeedError::InflatesPast { max });
    }
    Ok(out)
}

/// A feed checked whole, as the reporter keeps it and agents read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The feed's text (inflated when it came zlib-compressed, as debsecan
    /// serves it).
    pub text: String,
    pub format: &'static str,
    /// Advisory entries (debsecan: package lines; tracker: issues).
    pub entries: usize,
}

/// Decodes and parses a whole feed (any release, every package): what the
/// agent's parser would refuse is refused here too.
pub fn check(bytes: &[u8], max: u64) -> Result<Checked, FeedError> {
    let bytes = if bytes.first() == Some(&0x78) {
        std::borrow::Cow::Owned(inflate_bounded(bytes, max)?)
    } else {
        if bytes.len() as u64 > max {
            return Err(FeedError::TooLarge { max });
        }
        std::borrow::Cow::Borrowed(bytes)
    };
    let text = String::from_utf8(bytes.into_owned()).map_err(|_| FeedError::NotUtf8)?;
    let format = format_of(&text);
    let entries = if format == "debsecan" {
        debsecan(&text, &|_| true)?.len()
    } else {
        tracker_json(&text, "", &|_| true)?;
        let doc: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| FeedError::TrackerJson { source })?;
        doc.as_object().map_or(0, |o| {
            o.values()
                .filter_map(|v| v.as_object())
                .map(|i| i.len())
                .sum()
        })
    };
    if entries == 0 {
        return Err(FeedError::NoAdvisory);
    }
    Ok(Checked {
        text,
        format,
        entries,
    })
}
