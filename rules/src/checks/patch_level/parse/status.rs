//! Parsers for dpkg's `status` file, apt's `Packages` indices and
//! `Release`/`InRelease` files: all deb822 paragraphs.

use serde::{Deserialize, Serialize};

use super::dpkg_version::VersionError;

/// Why deb822 text (dpkg's `status`, a `Packages` index, a `Release` file)
/// was refused, with the line; the caller names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Deb822Error {
    #[error("line {line}: a continuation line outside any field")]
    ContinuationOutsideField { line: usize },
    #[error("line {line}: `{text}` is not a `Field: value` line")]
    NotAField { line: usize, text: String },
    #[error("line {line}: `{name}` is not a field name")]
    BadFieldName { line: usize, name: String },
    #[error("line {line}: a paragraph without `Package`")]
    NoPackage { line: usize },
    #[error("line {line}: installed package `{package}` has no `Version`")]
    NoVersion { line: usize, package: String },
    #[error("line {line}: package `{package}`: {source}")]
    BadVersion {
        line: usize,
        package: String,
        #[source]
        source: VersionError,
    },
    #[error("line {line}: an entry without `Package` or `Version`")]
    IncompleteEntry { line: usize },
}

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
pub fn paragraphs(text: &str, keep: Option<&[&str]>) -> Result<Vec<Paragraph>, Deb822Error> {
    let mut out = Vec::new();
    let mut lines = Deb822Lines::new(keep);
    for line in text.lines() {
        if let Some(p) = lines.line(line)? {
            out.push(p);
        }
    }
    out.extend(lines.finish());
    Ok(out)
}

/// The deb822 reader behind [`paragraphs`], one line at a time, so that a
/// big index can be parsed as it is read and never held whole.
#[derive(Debug)]
pub struct Deb822Lines<'k> {
    keep: Option<&'k [&'k str]>,
    cur: Paragraph,
    last_kept: bool,
    /// Lines seen so far.
    n: usize,
}

impl<'k> Deb822Lines<'k> {
    pub fn new(keep: Option<&'k [&'k str]>) -> Self {
        Deb822Lines {
            keep,
            cur: Paragraph::default(),
            last_kept: false,
            n: 0,
        }
    }

    /// Takes the next line (without its line end); a paragraph is returned
    /// when a blank line ends it.
    pub fn line(&mut self, line: &str) -> Result<Option<Paragraph>, Deb822Error> {
        self.n += 1;
        let n = self.n;
        if line.trim().is_empty() {
            self.last_kept = false;
            if !self.cur.fields.is_empty() || self.cur.line != 0 {
                return Ok(Some(std::mem::take(&mut self.cur)));
            }
            return Ok(None);
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if self.cur.line == 0 {
                return Err(Deb822Error::ContinuationOutsideField { line: n });
            }
            if self.last_kept {
                if let Some((_, v)) = self.cur.fields.last_mut() {
                    v.push('\n');
                    v.push_str(line.trim());
                }
            }
            return Ok(None);
        }
        if line.starts_with('#') {
            return Ok(None);
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(Deb822Error::NotAField {
                line: n,
                text: excerpt(line),
            });
        };
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Err(Deb822Error::BadFieldName {
                line: n,
                name: excerpt(k),
            });
        }
        if self.cur.line == 0 {
            self.cur.line = n;
        }
        self.last_kept = self
            .keep
            .is_none_or(|ks| ks.iter().any(|x| x.eq_ignore_ascii_case(k)));
        if self.last_kept {
            self.cur.fields.push((k.to_owned(), v.trim().to_owned()));
        }
        Ok(None)
    }

    /// The last paragraph, when the text does not end with a blank line.
    pub fn finish(self) -> Option<Paragraph> {
        (self.cur.line != 0).then_some(self.cur)
    }
}

/// Bytes cut into lines as they arrive in chunks of any size: a line split
/// across two chunks is put together again. Lines end at `\n` (a `\r` before
/// it is dropped, as `str::lines` does); invalid UTF-8 is replaced.
#[derive(Debug, Default)]
pub struct ChunkLines {
    partial: Vec<u8>,
}

impl ChunkLines {
    /// Calls `each` with every line `chunk` completes.
    pub fn push<E>(
        &mut self,
        chunk: &[u8],
        each: &mut dyn FnMut(&str) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = rest.split_at(i);
            rest = tail.get(1..).unwrap_or_default();
            if self.partial.is_empty() {
                each(&line_text(head))?;
            } else {
                self.partial.extend_from_slice(head);
                let line = std::mem::take(&mut self.partial);
                each(&line_text(&line))?;
            }
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// The last line, when the bytes do not end with a line end.
    pub fn finish<E>(self, each: &mut dyn FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        if self.partial.is_empty() {
            return Ok(());
        }
        each(&line_text(&self.partial))
    }
}

fn line_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes.strip_suffix(b"\r").unwrap_or(bytes))
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
pub fn installed(text: &str) -> Result<Vec<Installed>, Deb822Error> {
    const KEEP: &[&str] = &["Package", "Status", "Version", "Architecture", "Source"];
    let mut out = Vec::new();
    for p in paragraphs(text, Some(KEEP))? {
        let name = p
            .get("Package")
            .ok_or(Deb822Error::NoPackage { line: p.line })?;
        let status = p.get("Status").unwrap_or_default();
        let state = status.split_whitespace().nth(2).unwrap_or_default();
        if !matches!(
            state,
            "installed" | "half-configured" | "unpacked" | "triggers-awaited" | "triggers-pending"
        ) {
            continue;
        }
        let version = p.get("Version").ok_or_else(|| Deb822Error::NoVersion {
            line: p.line,
            package: name.to_owned(),
        })?;
        super::dpkg_version::parse(version).map_err(|source| Deb822Error::BadVersion {
            line: p.line,
            package: name.to_owned(),
            source,
        })?;
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
    /// The package file it is from (an index into the facts' `files`);
    /// `None`: an index of unknown archive, priority 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<usize>,
    /// The source package and its version, when they differ from the
    /// package's (`Source:` of the index).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_version: String,
}

/// The entries of a `Packages` index whose name passes `wanted`.
pub fn packages_index(
    text: &str,
    wanted: &dyn Fn(&str) -> bool,
    release: &Release,
) -> Result<Vec<Available>, Deb822Error> {
    let mut index = PackagesIndex::new(wanted, release);
    index.push(text.as_bytes())?;
    index.finish()
}

/// [`packages_index`] fed in chunks of bytes as they are read (e.g. from a
/// decompressor's pipe): only the wanted entries are kept, never the index.
pub struct PackagesIndex<'a> {
    bytes: ChunkLines,
    lines: Deb822Lines<'static>,
    wanted: &'a dyn Fn(&str) -> bool,
    release: &'a Release,
    file: Option<usize>,
    out: Vec<Available>,
}

impl<'a> PackagesIndex<'a> {
    const KEEP: &'static [&'static str] = &["Package", "Version", "Architecture", "Source"];

    pub fn new(wanted: &'a dyn Fn(&str) -> bool, release: &'a Release) -> Self {
        PackagesIndex {
            bytes: ChunkLines::default(),
            lines: Deb822Lines::new(Some(Self::KEEP)),
            wanted,
            release,
            file: None,
            out: Vec::new(),
        }
    }

    /// Marks the entries as coming from package file `i` (see `apt_policy`).
    pub fn with_file(mut self, i: usize) -> Self {
        self.file = Some(i);
        self
    }

    /// The next bytes of the index, cut anywhere.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), Deb822Error> {
        let PackagesIndex {
            bytes,
            lines,
            wanted,
            release,
            file,
            out,
        } = self;
        bytes.push(chunk, &mut |line| {
            if let Some(p) = lines.line(line)? {
                Self::entry(&p, *wanted, (release, *file), out)?;
            }
            Ok(())
        })
    }

    /// The wanted entries, once every byte was pushed.
    pub fn finish(self) -> Result<Vec<Available>, Deb822Error> {
        let PackagesIndex {
            bytes,
            mut lines,
            wanted,
            release,
            file,
            mut out,
        } = self;
        bytes.finish(&mut |line| {
            if let Some(p) = lines.line(line)? {
                Self::entry(&p, wanted, (release, file), &mut out)?;
            }
            Ok(())
        })?;
        if let Some(p) = lines.finish() {
            Self::entry(&p, wanted, (release, file), &mut out)?;
        }
        Ok(out)
    }

    fn entry(
        p: &Paragraph,
        wanted: &dyn Fn(&str) -> bool,
        (release, file): (&Release, Option<usize>),
        out: &mut Vec<Available>,
    ) -> Result<(), Deb822Error> {
        let (Some(name), Some(version)) = (p.get("Package"), p.get("Version")) else {
            return Err(Deb822Error::IncompleteEntry { line: p.line });
        };
        if wanted(name) {
            let (source, source_version) = match p.get("Source") {
                Some(s) => match s.split_once('(') {
                    Some((n, v)) => (
                        n.trim().to_owned(),
                        v.trim_end_matches(')').trim().to_owned(),
                    ),
                    None => (s.trim().to_owned(), String::new()),
                },
                None => (String::new(), String::new()),
            };
            out.push(Available {
                name: name.to_owned(),
                arch: p.get("Architecture").unwrap_or("all").to_owned(),
                version: version.to_owned(),
                security: release.is_security(),
                origin: release.describe(),
                file,
                source,
                source_version,
            });
        }
        Ok(())
    }
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
    pub fn parse(text: &str) -> Result<Release, Deb822Error> {
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
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 4:"), "{e}");
        let e = installed("Package: a\nStatus: install ok installed\nVersion: x:1\n")
            .unwrap_err()
            .to_string();
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

    fn sec() -> Release {
        Release::parse("Origin: Debian\nLabel: Debian-Security\nCodename: bookworm-security\n")
            .unwrap()
    }

    const INDEX: &str = "Package: a\nVersion: 1.0-1\nArchitecture: amd64\nDescription: x\n more \u{e9}t\u{e9}\n\nPackage: b\nVersion: 2\n\n\nPackage: c\r\nVersion: 3\r\nArchitecture: all\r\n\r\nPackage: d\nVersion: 4";

    #[test]
    fn streamed_index_matches_the_whole_text_for_any_chunk_size() {
        let wanted = |n: &str| n != "b";
        let whole = packages_index(INDEX, &wanted, &sec()).unwrap();
        assert_eq!(
            whole.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["a", "c", "d"]
        );
        assert_eq!(whole[1].arch, "all");
        assert_eq!(whole[2].version, "4");
        assert!(whole.iter().all(|a| a.security));
        let bytes = INDEX.as_bytes();
        let sec = sec();
        // Chunks of every size: paragraphs, lines, `\r\n` and the two bytes
        // of `é` all get split somewhere.
        for size in 1..=bytes.len() {
            let mut index = PackagesIndex::new(&wanted, &sec);
            for chunk in bytes.chunks(size) {
                index.push(chunk).unwrap();
            }
            assert_eq!(index.finish().unwrap(), whole, "chunks of {size}");
        }
    }

    #[test]
    fn streamed_index_errors_name_the_line() {
        let none = |_: &str| false;
        let r = Release::default();
        let text = "Package: a\nVersion: 1\n\nPackage: b\nno colon here\n";
        let whole = packages_index(text, &none, &r).unwrap_err();
        assert!(whole.to_string().starts_with("line 5:"), "{whole}");
        let mut index = PackagesIndex::new(&none, &r);
        let e = text
            .as_bytes()
            .chunks(3)
            .try_for_each(|c| index.push(c))
            .unwrap_err();
        assert_eq!(e, whole);
        // The last entry without a line end, missing its version.
        let mut index = PackagesIndex::new(&none, &r);
        index.push(b"Package: a\nVersion: 1\n\nPackage: b").unwrap();
        assert!(index
            .finish()
            .unwrap_err()
            .to_string()
            .starts_with("line 4:"));
    }

    #[test]
    fn paragraphs_unchanged_by_the_line_reader() {
        let got = paragraphs("# c\nA: 1\n b\nC: 2\n\n\nD: 3\n", None).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].line, 2);
        assert_eq!(got[0].get("a"), Some("1\nb"));
        assert_eq!(got[1].line, 7);
        assert!(paragraphs(" x\n", None)
            .unwrap_err()
            .to_string()
            .starts_with("line 1:"));
    }
}
