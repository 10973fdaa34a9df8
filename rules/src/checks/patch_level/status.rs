//! Parsers for dpkg's `status` file, apt's `Packages` indices and
//! `Release`/`InRelease` files: all deb822 paragraphs.

use serde::{Deserialize, Serialize};

/// One deb822 paragraph: fields in order, with the line it starts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    pub line: usize,
    pub fields: Vec<(String, String)>,
}

impl Paragraph {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits deb822 text into paragraphs; `Err` names the first bad line.
/// `keep` selects the fields to keep (all when `None`), which keeps big
/// indices cheap.
pub fn paragraphs(text: &str, keep: Option<&[&str]>) -> Result<Vec<Paragraph>, String> {
    let mut out = Vec::new();
    let mut cur = Paragraph::default();
    let mut last_kept = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            if !cur.fields.is_empty() || cur.line != 0 {
                out.push(std::mem::take(&mut cur));
            }
            last_kept = false;
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if cur.line == 0 {
                return Err(format!("line {n}: a continuation line outside any field"));
            }
            if last_kept {
                if let Some((_, v)) = cur.fields.last_mut() {
                    v.push('\n');
                    v.push_str(line.trim());
                }
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!(
                "line {n}: `{}` is not a `Field: value` line",
                excerpt(line)
            ));
        };
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Err(format!("line {n}: `{}` is not a field name", excerpt(k)));
        }
        if cur.line == 0 {
            cur.line = n;
        }
        last_kept = keep.is_none_or(|ks| ks.iter().any(|x| x.eq_ignore_ascii_case(k)));
        if last_kept {
            cur.fields.push((k.to_owned(), v.trim().to_owned()));
        }
    }
    if cur.line != 0 {
        out.push(cur);
    }
    Ok(out)
}

fn excerpt(s: &str) -> String {
    s.chars().take(60).collect()
}

/// An installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub name: String,
    pub arch: String,
    pub version: String,
    /// The source package, and its version when it differs from `version`.
    pub source: String,
    pub source_version: String,
}

/// The installed packages of a dpkg `status` file (`Status: install ok installed`
/// and the other states where files are on disk: half-configured, unpacked...).
pub fn installed(text: &str) -> Result<Vec<Installed>, String> {
    const KEEP: &[&str] = &["Package", "Status", "Version", "Architecture", "Source"];
    let mut out = Vec::new();
    for p in paragraphs(text, Some(KEEP))? {
        let name = p
            .get("Package")
            .ok_or_else(|| format!("line {}: a paragraph without `Package`", p.line))?;
        let status = p.get("Status").unwrap_or_default();
        let state = status.split_whitespace().nth(2).unwrap_or_default();
        if !matches!(
            state,
            "installed" | "half-configured" | "unpacked" | "triggers-awaited" | "triggers-pending"
        ) {
            continue;
        }
        let version = p.get("Version").ok_or_else(|| {
            format!(
                "line {}: installed package `{name}` has no `Version`",
                p.line
            )
        })?;
        super::dpkg_version::parse(version)
            .map_err(|e| format!("line {}: package `{name}`: {e}", p.line))?;
        let (source, source_version) = match p.get("Source") {
            Some(s) => match s.split_once('(') {
                Some((n, v)) => (
                    n.trim().to_owned(),
                    v.trim_end_matches(')').trim().to_owned(),
                ),
                None => (s.trim().to_owned(), version.to_owned()),
            },
            None => (name.to_owned(), version.to_owned()),
        };
        out.push(Installed {
            name: name.to_owned(),
            arch: p.get("Architecture").unwrap_or("all").to_owned(),
            version: version.to_owned(),
            source,
            source_version,
        });
    }
    Ok(out)
}

/// A package version an apt index offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Available {
    pub name: String,
    pub arch: String,
    pub version: String,
    /// From a security archive (told by its Release file).
    pub security: bool,
    /// The archive, e.g. `Debian bookworm-security`.
    pub origin: String,
}

/// The entries of a `Packages` index whose name passes `wanted`.
pub fn packages_index(
    text: &str,
    wanted: &dyn Fn(&str) -> bool,
    release: &Release,
) -> Result<Vec<Available>, String> {
    const KEEP: &[&str] = &["Package", "Version", "Architecture"];
    let mut out = Vec::new();
    for p in paragraphs(text, Some(KEEP))? {
        let (Some(name), Some(version)) = (p.get("Package"), p.get("Version")) else {
            return Err(format!(
                "line {}: an entry without `Package` or `Version`",
                p.line
            ));
        };
        if !wanted(name) {
            continue;
        }
        out.push(Available {
            name: name.to_owned(),
            arch: p.get("Architecture").unwrap_or("all").to_owned(),
            version: version.to_owned(),
            security: release.is_security(),
            origin: release.describe(),
        });
    }
    Ok(out)
}

/// The fields of a `Release`/`InRelease` file that say what an archive is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub origin: String,
    pub label: String,
    pub suite: String,
    pub codename: String,
}

impl Release {
    /// Reads the first paragraph (after an OpenPGP armour header, if any).
    pub fn parse(text: &str) -> Result<Release, String> {
        let body = match text.find("-----BEGIN PGP SIGNED MESSAGE-----") {
            Some(_) => {
                // The signed text starts after the armour headers' blank line.
                text.split_once("\n\n").map_or(text, |(_, rest)| rest)
            }
            None => text,
        };
        let body = body
            .split("-----BEGIN PGP SIGNATURE-----")
            .next()
            .unwrap_or(body);
        let first = paragraphs(body, Some(&["Origin", "Label", "Suite", "Codename"]))?
            .into_iter()
            .next()
            .unwrap_or_default();
        let f = |k: &str| first.get(k).unwrap_or_default().to_owned();
        Ok(Release {
            origin: f("Origin"),
            label: f("Label"),
            suite: f("Suite"),
            codename: f("Codename"),
        })
    }

    /// Debian and Ubuntu security archives: a `-security` suite or codename
    /// (older: `/updates`), or a label naming security.
    pub fn is_security(&self) -> bool {
        let sec = |s: &str| s.ends_with("-security") || s.ends_with("/updates");
        sec(&self.suite)
            || sec(&self.codename)
            || self.label.to_ascii_lowercase().contains("security")
    }

    pub fn describe(&self) -> String {
        let name = if self.codename.is_empty() {
            &self.suite
        } else {
            &self.codename
        };
        format!("{} {}", self.origin, name).trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_file() {
        let text = "Package: a\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\nSource: asrc (0.9-1)\nDescription: x\n more\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: c\nStatus: install ok installed\nVersion: 2:3\nArchitecture: all\n";
        let got = installed(text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].source, "asrc");
        assert_eq!(got[0].source_version, "0.9-1");
        assert_eq!(got[1].source, "c");
    }

    #[test]
    fn corrupt_status_is_located() {
        let e = installed("Package: a\nStatus: install ok installed\nVersion: 1\ngarbage here\n")
            .unwrap_err();
        assert!(e.starts_with("line 4:"), "{e}");
        let e = installed("Package: a\nStatus: install ok installed\nVersion: x:1\n").unwrap_err();
        assert!(e.contains("epoch"), "{e}");
    }

    #[test]
    fn release_security() {
        let r = Release::parse("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nLabel: Debian-Security\nSuite: stable-security\nCodename: bookworm-security\n").unwrap();
        assert!(r.is_security());
        assert_eq!(r.describe(), "Debian bookworm-security");
        assert!(
            !Release::parse("Origin: Debian\nSuite: stable\nCodename: bookworm\n")
                .unwrap()
                .is_security()
        );
    }
}
