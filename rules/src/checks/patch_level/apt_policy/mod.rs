//! apt's pinning: which version of a package apt would install (its
//! *candidate*), chosen as apt 2.6's `pkgPolicy` chooses it, so that the
//! pending updates vigil counts are the ones `apt list --upgradable` shows.
//!
//! - Every package file (a `Packages` index, or dpkg's status file) has a
//!   priority: 500 by default, 100 for the status file, 100 for an archive
//!   whose Release file says `ButAutomaticUpgrades: yes` (with `NotAutomatic:
//!   yes`, as backports do), 1 for `NotAutomatic: yes` alone; then the first
//!   matching *general* pin (`Package: *`) sets it, `APT::Default-Release`
//!   (990) before the preferences files.
//! - A version's priority is that of the first *specific* pin (`Package:
//!   NAME`, globs and `/regex/` too) that matches it, else the highest
//!   priority of the files it comes from.
//! - The candidate is the version of the highest priority, the highest
//!   version among equals; a priority of 0 or below is never chosen, and
//!   below 1000 no version older than the installed one is.
//!
//! Parsers ([`preferences`], [`PackageFile::from_release`]) and the choice
//! ([`AptPolicy`]) are pure; the agent reads the files.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::dpkg_version::compare_lenient;
use super::status::{paragraphs, Deb822Error};

/// Why a preferences file, a Release file or `APT::Default-Release` was
/// refused, naming the file and line (apt refuses the same).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AptError {
    #[error("`{file}` {source}")]
    Deb822 {
        file: String,
        #[source]
        source: Deb822Error,
    },
    #[error("`{file}` line {line}: a stanza without `Package`")]
    NoPackage { file: String, line: usize },
    #[error("`{file}` line {line}: `Pin-Priority: never` is only allowed with `Package: *`")]
    NeverOnSpecific { file: String, line: usize },
    #[error("`{file}` line {line}: Pin-Priority `{raw}` is not a number from -32768 to 32767")]
    BadPriority {
        file: String,
        line: usize,
        raw: String,
    },
    #[error("`{file}` line {line}: no Pin-Priority (or 0) given")]
    NoPriority { file: String, line: usize },
    #[error("APT::Default-Release `{0}` names no release in the sources (apt refuses it too)")]
    UnknownDefaultRelease(String),
}

/// `Pin-Priority: never` (only for `Package: *`): the file is never used.
pub const NEVER: i32 = i16::MIN as i32;

/// One package file as apt's cache knows it: an index with its archive's
/// Release fields, or dpkg's status file. Fields apt did not find are empty
/// (apt stores no empty field either, so empty means absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PackageFile {
    /// The list file's name, for messages.
    pub name: String,
    /// dpkg's status file (archive `now`), not an index.
    pub status: bool,
    pub origin: String,
    pub label: String,
    /// The Release file's `Suite` (apt calls it the archive, `a=`).
    pub suite: String,
    pub codename: String,
    pub version: String,
    pub not_automatic: bool,
    pub but_automatic_upgrades: bool,
    /// The host of the archive's URI; empty for `file:` archives.
    pub site: String,
    /// The index's component (`main`) and architecture (`amd64`, `all`).
    pub component: String,
    pub arch: String,
}

impl PackageFile {
    /// The Release/InRelease text's first paragraph (after an OpenPGP
    /// armour header) with the list file's name; site, component and
    /// architecture come from the index's name ([`index_name_parts`]).
    pub fn from_release(text: &str, name: &str) -> Result<PackageFile, Deb822Error> {
        let body = match text.find("-----BEGIN PGP SIGNED MESSAGE-----") {
            Some(_) => text.split_once("\n\n").map_or(text, |(_, rest)| rest),
            None => text,
        };
        let body = body
            .split("-----BEGIN PGP SIGNATURE-----")
            .next()
            .unwrap_or(body);
        const KEEP: &[&str] = &[
            "Origin",
            "Label",
            "Suite",
            "Codename",
            "Version",
            "NotAutomatic",
            "ButAutomaticUpgrades",
        ];
        let first = paragraphs(body, Some(KEEP))?
            .into_iter()
            .next()
            .unwrap_or_default();
        let f = |k: &str| first.get(k).unwrap_or_default().to_owned();
        Ok(PackageFile {
            name: name.to_owned(),
            origin: f("Origin"),
            label: f("Label"),
            suite: f("Suite"),
            codename: f("Codename"),
            version: f("Version"),
            not_automatic: first.get("NotAutomatic").is_some_and(apt_bool),
            but_automatic_upgrades: first.get("ButAutomaticUpgrades").is_some_and(apt_bool),
            ..PackageFile::default()
        })
    }

    /// dpkg's status file as apt sees it: archive `now`, priority 100.
    pub fn dpkg_status() -> PackageFile {
        PackageFile {
            name: "/var/lib/dpkg/status".into(),
            status: true,
            component: "now".into(),
            ..PackageFile::default()
        }
    }

    /// apt's default priority for the file, before any pin.
    pub fn default_priority(&self) -> i32 {
        if self.status || self.but_automatic_upgrades {
            100
        } else if self.not_automatic {
            1
        } else {
            500
        }
    }

    /// A Debian or Ubuntu security archive.
    pub fn is_security(&self) -> bool {
        let sec = |s: &str| s.ends_with("-security") || s.ends_with("/updates");
        sec(&self.suite)
            || sec(&self.codename)
            || self.label.to_ascii_lowercase().contains("security")
    }

    /// As `apt-cache policy` names it: `release v=12,o=Debian,a=stable,…`.
    pub fn describe(&self) -> String {
        if self.status {
            return "release a=now".into();
        }
        let parts: Vec<String> = [
            ("v", &self.version),
            ("o", &self.origin),
            ("a", &self.suite),
            ("n", &self.codename),
            ("l", &self.label),
            ("c", &self.component),
            ("b", &self.arch),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
        format!("release {}", parts.join(","))
    }
}

/// apt's `StringToBool` for the flags it reads.
fn apt_bool(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "yes" | "true" | "with" | "on" | "enable" | "1"
    )
}

/// What an index's list file name says (`deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4`
/// after the Release file's prefix `deb.debian.org_debian_dists_bookworm_`):
/// the site (the name's first part, without port, percent-decoded; empty
/// for `file:` archives), the component (`main`; `updates/main` for the
/// old security layout) and the architecture.
pub fn index_name_parts(name: &str, release_prefix: &str) -> (String, String, String) {
    let host = name.split('_').next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let site = percent_decode(host);
    let rest = name.strip_prefix(release_prefix).unwrap_or(name);
    let rest = rest.split("_Packages").next().unwrap_or_default();
    let (component, arch) = match rest.rsplit_once("binary-") {
        Some((c, a)) => (c.trim_end_matches('_').replace('_', "/"), a.to_owned()),
        None => (String::new(), String::new()),
    };
    (site, percent_decode(&component), arch)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b.get(i), hex) {
            (Some(b'%'), Some(v)) => {
                out.push(v);
                i += 3;
            }
            (Some(c), _) => {
                out.push(*c);
                i += 1;
            }
            (None, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One stanza of `/etc/apt/preferences` or a `preferences.d` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// The names of `Package:` (globs, `/regex/`, `src:NAME`, `NAME:ARCH`);
    /// empty for `Package: *`, a general pin.
    pub packages: Vec<String>,
    /// `version`, `source-version`, `release` or `origin`.
    pub kind: String,
    /// What follows the kind: `a=bookworm-backports`, `1.2*`, `deb.example`.
    pub data: String,
    /// The priority; [`NEVER`] for `never`.
    pub priority: i32,
    /// Where it was read: file and line.
    pub file: String,
    pub line: usize,
}

impl Pin {
    pub fn general(&self) -> bool {
        self.packages.is_empty()
    }
}

/// Parses a preferences file as apt does: stanzas of `Package`, `Pin` and
/// `Pin-Priority` (with `Explanation` and `#` comments beside). A stanza
/// without `Pin` is skipped; a pin kind apt does not know is a warning (and
/// skipped), as in apt; no `Package`, no priority, 0, or one outside
/// -32768..=32767 is an error naming the line, as it makes apt fail.
pub fn preferences(text: &str, file: &str) -> Result<(Vec<Pin>, Vec<String>), AptError> {
    let mut pins = Vec::new();
    let mut warnings = Vec::new();
    let paras = paragraphs(text, None).map_err(|source| AptError::Deb822 {
        file: file.to_owned(),
        source,
    })?;
    for p in paras {
        if p.fields.is_empty() {
            continue;
        }
        let at = format!("`{file}` line {}", p.line);
        let name = p.get("Package").map(str::trim).unwrap_or_default();
        if name.is_empty() {
            return Err(AptError::NoPackage {
                file: file.to_owned(),
                line: p.line,
            });
        }
        let general = name == "*";
        let Some(pin) = p.get("Pin") else {
            continue;
        };
        let pin = pin.trim();
        let (kind, data) = pin
            .split_once(char::is_whitespace)
            .map_or((pin, ""), |(k, d)| (k, d.trim_start()));
        let kind = kind.to_ascii_lowercase();
        let known = match kind.as_str() {
            "version" | "source-version" => !general,
            "release" | "origin" => true,
            _ => false,
        };
        if !known {
            warnings.push(format!(
                "{at}: apt does not understand the pin type `{kind}` here; the stanza is ignored"
            ));
            continue;
        }
        let raw = p.get("Pin-Priority").map(str::trim).unwrap_or_default();
        let priority = if raw == "never" {
            if !general {
                return Err(AptError::NeverOnSpecific {
                    file: file.to_owned(),
                    line: p.line,
                });
            }
            NEVER
        } else if raw.is_empty() {
            0
        } else {
            match raw.parse::<i64>() {
                Ok(n) if n >= i64::from(i16::MIN) && n <= i64::from(i16::MAX) => {
                    // apt clamps a numeric -32768 to just above `never`.
                    (n as i32).max(NEVER + 1)
                }
                _ => {
                    return Err(AptError::BadPriority {
                        file: file.to_owned(),
                        line: p.line,
                        raw: raw.to_owned(),
                    })
                }
            }
        };
        if priority == 0 {
            return Err(AptError::NoPriority {
                file: file.to_owned(),
                line: p.line,
            });
        }
        pins.push(Pin {
            packages: if general {
                Vec::new()
            } else {
                name.split_whitespace().map(String::from).collect()
            },
            kind,
            data: data.trim_end().to_owned(),
            priority,
            file: file.to_owned(),
            line: p.line,
        });
    }
    Ok((pins, warnings))
}

/// A glob (fnmatch, case-insensitive) or `/regex/` (extended, case-insensitive),
/// as apt's `ExpressionMatches`.
#[derive(Debug, Clone)]
enum Pattern {
    Glob(String),
    Regex(Option<regex::Regex>),
}

impl Pattern {
    fn new(p: &str) -> Pattern {
        if p.len() >= 2 && p.starts_with('/') && p.ends_with('/') {
            let inner = p.get(1..p.len() - 1).unwrap_or_default();
            Pattern::Regex(regex::Regex::new(&format!("(?i){inner}")).ok())
        } else {
            Pattern::Glob(p.to_lowercase())
        }
    }

    /// `None` is a field apt does not have: nothing matches it.
    fn matches(&self, s: Option<&str>) -> bool {
        let Some(s) = s else {
            return false;
        };
        match self {
            Pattern::Glob(g) => fnmatch(g, &s.to_lowercase()),
            Pattern::Regex(r) => r.as_ref().is_some_and(|r| r.is_match(s)),
        }
    }
}

fn present(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// fnmatch(3) without flags: `*`, `?`, `[...]` (`!`/`^`, ranges), `\` escapes.
pub fn fnmatch(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    // Backtracking over the last `*` only: linear in practice.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let tc = t.get(ti).copied().unwrap_or_default();
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => class(&p, pi, tc),
            Some('\\') if pi + 1 < p.len() => (p.get(pi + 1) == Some(&tc)).then_some(pi + 2),
            Some(c) => (*c == tc).then_some(pi + 1),
            None => None,
        };
        match step {
            Some(next) => {
                pi = next;
                ti += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|c| *c == '*')
}

/// A bracket expression at `p[at]`: the index after it when `c` is in it.
/// An unclosed `[` is a literal.
fn class(p: &[char], at: usize, c: char) -> Option<usize> {
    let mut i = at + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut hit = false;
    loop {
        let Some(&ch) = p.get(i) else {
            // No closing bracket: `[` matches itself.
            return (c == '[').then_some(at + 1);
        };
        if ch == ']' && i > start {
            break;
        }
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
            let end = *p.get(i + 2)?;
            if ch <= c && c <= end {
                hit = true;
            }
            i += 3;
        } else {
            if ch == c {
                hit = true;
            }
            i += 1;
        }
    }
    (hit != negate).then_some(i + 1)
}

/// apt's `pkgVersionMatch`: what a pin's data selects.
#[derive(Debug, Clone)]
enum Matcher {
    Nothing,
    Version {
        ver: String,
        prefix: bool,
        pat: Pattern,
        source: bool,
    },
    All,
    Release(Box<ReleaseSpec>),
    Origin(Pattern),
}

#[derive(Debug, Clone, Default)]
struct ReleaseSpec {
    version: Option<(String, bool, Pattern)>,
    origin: Option<Pattern>,
    archive: Option<Pattern>,
    codename: Option<Pattern>,
    release: Option<Pattern>,
    label: Option<Pattern>,
    component: Option<Pattern>,
    arch: Option<Pattern>,
}

/// apt's `MatchVer`: equal, or a prefix with `prefix`, ignoring case.
fn match_ver(v: &str, want: &str, prefix: bool) -> bool {
    let (v, want) = (v.to_ascii_lowercase(), want.to_ascii_lowercase());
    if prefix {
        v.starts_with(&want)
    } else {
        v == want
    }
}

impl Matcher {
    fn new(kind: &str, data: &str) -> Matcher {
        if data.is_empty() {
            return Matcher::Nothing;
        }
        match kind {
            "version" | "source-version" => {
                let (ver, prefix) = match data.strip_suffix('*') {
                    Some(v) => (v.to_owned(), true),
                    None => (data.to_owned(), false),
                };
                let pat = Pattern::new(&ver);
                Matcher::Version {
                    ver,
                    prefix,
                    pat,
                    source: kind == "source-version",
                }
            }
            "release" => {
                if data == "*" {
                    return Matcher::All;
                }
                let mut spec = ReleaseSpec::default();
                let ver = |v: &str| match v.strip_suffix('*') {
                    Some(p) => (p.to_owned(), true, Pattern::new(p)),
                    None => (v.to_owned(), false, Pattern::new(v)),
                };
                if !data.contains('=') {
                    if data.starts_with(|c: char| c.is_ascii_digit()) {
                        spec.version = Some(ver(data));
                    } else {
                        spec.release = Some(Pattern::new(data));
                    }
                    return Matcher::Release(Box::new(spec));
                }
                // apt cuts the spec at 299 bytes into at most 19 fragments.
                let cut: String = data.chars().take(299).collect();
                let frags: Vec<&str> = cut
                    .split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .collect();
                if frags.len() >= 20 {
                    return Matcher::Nothing;
                }
                for f in frags {
                    let (Some(k), Some(v)) = (f.get(..2), f.get(2..)) else {
                        continue;
                    };
                    if v.is_empty() {
                        continue;
                    }
                    match k.to_ascii_lowercase().as_str() {
                        "v=" => spec.version = Some(ver(v)),
                        "o=" => spec.origin = Some(Pattern::new(v)),
                        "a=" => spec.archive = Some(Pattern::new(v)),
                        "n=" => spec.codename = Some(Pattern::new(v)),
                        "l=" => spec.label = Some(Pattern::new(v)),
                        "c=" => spec.component = Some(Pattern::new(v)),
                        "b=" => spec.arch = Some(Pattern::new(v)),
                        _ => {}
                    }
                }
                Matcher::Release(Box::new(spec))
            }
            "origin" => {
                let site = data
                    .strip_prefix('"')
                    .and_then(|d| d.strip_suffix('"'))
                    .unwrap_or(data);
                Matcher::Origin(Pattern::new(site))
            }
            _ => Matcher::Nothing,
        }
    }

    /// apt's `FileMatch`: does the pin select this package file?
    fn file_match(&self, f: &PackageFile) -> bool {
        match self {
            Matcher::Nothing | Matcher::Version { .. } => false,
            Matcher::All => true,
            Matcher::Origin(site) => !f.status && site.matches(Some(&f.site)),
            Matcher::Release(r) => {
                let set = [
                    r.version.is_some(),
                    r.origin.is_some(),
                    r.archive.is_some(),
                    r.codename.is_some(),
                    r.release.is_some(),
                    r.label.is_some(),
                    r.component.is_some(),
                    r.arch.is_some(),
                ];
                if !set.contains(&true) {
                    return false;
                }
                if f.status {
                    // No Release file: the status file's component is `now`.
                    if r.archive
                        .as_ref()
                        .is_some_and(|p| !p.matches(present(&f.component)))
                    {
                        return false;
                    }
                    if r.release
                        .as_ref()
                        .is_some_and(|p| !p.matches(present(&f.component)))
                    {
                        return false;
                    }
                    if r.origin.is_some()
                        || r.label.is_some()
                        || r.version.is_some()
                        || r.codename.is_some()
                    {
                        return false;
                    }
                } else {
                    if let Some((v, prefix, pat)) = &r.version {
                        let have = present(&f.version);
                        if !have.is_some_and(|h| match_ver(h, v, *prefix)) && !pat.matches(have) {
                            return false;
                        }
                    }
                    let fails = |p: &Option<Pattern>, v: &str| {
                        p.as_ref().is_some_and(|p| !p.matches(present(v)))
                    };
                    if fails(&r.origin, &f.origin)
                        || fails(&r.archive, &f.suite)
                        || fails(&r.codename, &f.codename)
                        || fails(&r.label, &f.label)
                    {
                        return false;
                    }
                    if let Some(p) = &r.release {
                        if !p.matches(present(&f.suite)) && !p.matches(present(&f.codename)) {
                            return false;
                        }
                    }
                }
                let fails = |p: &Option<Pattern>, v: &str| {
                    p.as_ref().is_some_and(|p| !p.matches(present(v)))
                };
                !(fails(&r.component, &f.component) || fails(&r.arch, &f.arch))
            }
        }
    }
}

/// A package name of `Package:`: `src:` and `:ARCH` split off.
#[derive(Debug, Clone)]
struct NameSpec {
    source: bool,
    name: Pattern,
    literal: Option<String>,
    arch: Option<String>,
}

impl NameSpec {
    fn new(raw: &str) -> NameSpec {
        let (source, rest) = match raw.strip_prefix("src:") {
            Some(r) => (true, r),
            None => (false, raw),
        };
        let (name, arch) = match rest.rsplit_once(':') {
            Some((n, a)) => (n, Some(a.to_owned())),
            None => (rest, None),
        };
        let wild = (name.len() >= 2 && name.starts_with('/') && name.ends_with('/'))
            || name.contains(['*', '[', '?']);
        NameSpec {
            source,
            name: Pattern::new(name),
            literal: (!wild).then(|| name.to_owned()),
            arch,
        }
    }

    fn matches(&self, pkg: &PackageRef<'_>, source_name: &str) -> bool {
        // apt keeps `all` packages with the native ones.
        let arch = if pkg.arch == "all" {
            pkg.native.unwrap_or("all")
        } else {
            pkg.arch
        };
        let arch_ok = match &self.arch {
            None => pkg.native.is_none_or(|n| n == arch),
            Some(a) => a == "any" || a == arch,
        };
        if !arch_ok {
            return false;
        }
        let name = if self.source { source_name } else { pkg.name };
        match &self.literal {
            Some(l) => l == name,
            None => self.name.matches(Some(name)),
        }
    }
}

/// The package a choice is made for.
#[derive(Debug, Clone, Copy)]
pub struct PackageRef<'a> {
    pub name: &'a str,
    pub arch: &'a str,
    /// dpkg's native architecture, when known: pins without `:ARCH` apply
    /// to it (and to `all`) only.
    pub native: Option<&'a str>,
}

/// One version of a package and the files that offer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version<'a> {
    pub version: &'a str,
    pub source: &'a str,
    pub source_version: &'a str,
    /// Indices into [`AptPolicy`]'s files.
    pub files: Vec<usize>,
}

#[derive(Debug)]
struct Specific {
    names: Vec<NameSpec>,
    matcher: Matcher,
    priority: i32,
}

/// The priorities of the package files and the specific pins: apt's policy.
#[derive(Debug)]
pub struct AptPolicy<'a> {
    files: &'a [PackageFile],
    file_priority: Vec<i32>,
    specific: Vec<Specific>,
}

impl<'a> AptPolicy<'a> {
    /// `files` are every package file (the status file among them);
    /// `pins` in apt's reading order (`preferences`, then `preferences.d`
    /// sorted); `default_release` is `APT::Default-Release`. An unknown
    /// default release is an error, as apt refuses to run with one.
    pub fn new(
        files: &'a [PackageFile],
        pins: &[Pin],
        default_release: Option<&str>,
    ) -> Result<Self, AptError> {
        let mut general: Vec<(Matcher, i32)> = Vec::new();
        if let Some(rel) = default_release.filter(|r| !r.is_empty()) {
            let p = Pattern::new(rel);
            let found = files.iter().filter(|f| !f.status).any(|f| {
                p.matches(present(&f.suite))
                    || p.matches(present(&f.codename))
                    || p.matches(present(&f.version))
            }) || rel.as_bytes().get(1) == Some(&b'=')
                || p.matches(Some("now"));
            if !found {
                return Err(AptError::UnknownDefaultRelease(rel.to_owned()));
            }
            general.push((Matcher::new("release", rel), 990));
        }
        let mut specific = Vec::new();
        for pin in pins {
            let matcher = Matcher::new(&pin.kind, &pin.data);
            if pin.general() {
                general.push((matcher, pin.priority));
            } else {
                specific.push(Specific {
                    names: pin.packages.iter().map(|n| NameSpec::new(n)).collect(),
                    matcher,
                    priority: pin.priority,
                });
            }
        }
        let mut file_priority: Vec<i32> = files.iter().map(PackageFile::default_priority).collect();
        let mut fixed = vec![false; files.len()];
        for (m, prio) in &general {
            for (i, f) in files.iter().enumerate() {
                let (Some(cur), Some(done)) = (file_priority.get_mut(i), fixed.get_mut(i)) else {
                    continue;
                };
                if (!*done || *prio == NEVER) && *cur != NEVER && m.file_match(f) {
                    *cur = *prio;
                    *done = true;
                }
            }
        }
        Ok(AptPolicy {
            files,
            file_priority,
            specific,
        })
    }

    /// A file's priority, as `apt-cache policy` lists it.
    pub fn file_priority(&self, i: usize) -> i32 {
        self.file_priority.get(i).copied().unwrap_or(0)
    }

    /// The priority of `ver` of `pkg` (apt's `GetPriority(Ver)`).
    pub fn priority(&self, pkg: &PackageRef<'_>, ver: &Version<'_>) -> i32 {
        let pinned = self.specific.iter().find(|s| {
            s.names.iter().any(|n| n.matches(pkg, ver.source))
                && match &s.matcher {
                    Matcher::Version {
                        ver: want,
                        prefix,
                        pat,
                        source,
                    } => {
                        let v = if *source {
                            ver.source_version
                        } else {
                            ver.version
                        };
                        match_ver(v, want, *prefix) || pat.matches(Some(v))
                    }
                    m => ver
                        .files
                        .iter()
                        .filter_map(|i| self.files.get(*i))
                        .any(|f| m.file_match(f)),
                }
        });
        if let Some(s) = pinned {
            if s.priority == NEVER {
                return NEVER;
            }
            if ver.files.iter().any(|i| self.file_priority(*i) != NEVER) {
                return s.priority;
            }
        }
        ver.files
            .iter()
            .map(|i| self.file_priority(*i))
            .max()
            .unwrap_or(0)
    }

    /// The candidate among `versions` (apt's `GetCandidateVer`), given the
    /// installed version: an index into `versions`, `None` when apt has none.
    pub fn candidate(
        &self,
        pkg: &PackageRef<'_>,
        versions: &[Version<'_>],
        installed: Option<&str>,
    ) -> Option<usize> {
        let mut order: Vec<usize> = (0..versions.len()).collect();
        // apt walks the versions from the highest down.
        order.sort_by(|a, b| match (versions.get(*a), versions.get(*b)) {
            (Some(x), Some(y)) => compare_lenient(y.version, x.version),
            _ => Ordering::Equal,
        });
        let mut best: Option<(usize, i32)> = None;
        for i in order {
            let Some(v) = versions.get(i) else {
                continue;
            };
            let prio = self.priority(pkg, v);
            if prio == 0 || prio <= best.map_or(-1, |b| b.1) {
                continue;
            }
            if let Some(cur) = installed {
                if prio < 1000 && compare_lenient(v.version, cur) == Ordering::Less {
                    continue;
                }
            }
            best = Some((i, prio));
        }
        best.map(|b| b.0)
    }
}

#[cfg(test)]
mod tests;
