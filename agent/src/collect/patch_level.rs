//! Facts for `patch_level`: dpkg's status file, the apt indices already on
//! the host (security archives told apart by their Release files), apt's
//! last refresh, unattended-upgrades' settings and last run, the reboot
//! flag, the running kernel, and an advisory feed. Parsers live in
//! `vigil_rules::checks::patch_level`; this module only reads.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use vigil_rules::checks::patch_level::apt_policy::{self, PackageFile};
use vigil_rules::checks::patch_level::status::{self, Deb822Error, Release};
use vigil_rules::checks::patch_level::{
    feeds, loopback_http, AdvisoryFeed, Facts, Params, Unattended,
};

use super::{io_reason, read_optional, HostCtx};
use crate::collect::CollectError;

pub fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, CollectError> {
    let mut facts = Facts::default();
    let status_path = ctx.path(&p.dpkg_status);
    match read_optional(&status_path) {
        Ok(Some(text)) => match status::installed(&text) {
            Ok(i) => facts.installed = i,
            Err(e) => facts.errors.push(format!("`{}` {e}", p.dpkg_status)),
        },
        Ok(None) => facts
            .errors
            .push(format!("`{}` does not exist", p.dpkg_status)),
        Err(e) => facts.errors.push(e.to_string()),
    }
    let names: HashSet<&str> = facts.installed.iter().map(|i| i.name.as_str()).collect();

    // apt indices.
    let lists = ctx.path(&p.apt_lists);
    match read_lists(&lists, &names) {
        Ok((available, files, newest)) => {
            facts.available = available;
            facts.indices = files.len();
            facts.files = files;
            facts.apt_updated = newest;
            facts.apt_updated_from = "the Release files' modification times".into();
        }
        Err(e) => facts.errors.push(e.to_string()),
    }
    if let Some(t) = mtime(&ctx.path("/var/lib/apt/periodic/update-success-stamp")) {
        facts.apt_updated = Some(t);
        facts.apt_updated_from = "/var/lib/apt/periodic/update-success-stamp".into();
    }

    // apt's pins and target release.
    match read_preferences(ctx) {
        Ok((pins, warnings)) => {
            facts.pins = pins;
            facts.pin_warnings = warnings;
        }
        Err(e) => facts.errors.push(e.to_string()),
    }
    let conf = apt_config(ctx);
    facts.default_release = conf
        .get("APT::Default-Release")
        .filter(|v| !v.is_empty())
        .cloned();

    // unattended-upgrades.
    facts.unattended = Unattended {
        installed: names.contains("unattended-upgrades"),
        periodic: conf
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("APT::Periodic::")?.to_owned(), v.clone())))
            .collect(),
        last_run: [
            "/var/lib/apt/periodic/unattended-upgrades-stamp",
            "/var/log/unattended-upgrades/unattended-upgrades.log",
        ]
        .iter()
        .filter_map(|f| mtime(&ctx.path(f)))
        .max(),
    };

    // Reboot flag.
    if ctx.path("/var/run/reboot-required").exists() {
        let pkgs = read_optional(&ctx.path("/var/run/reboot-required.pkgs"))
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut list: Vec<String> = pkgs
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        list.dedup();
        facts.reboot_required = Some(list);
    }

    // The running kernel: the live one, or what a fixture root says.
    facts.running_kernel = read_optional(&ctx.path("/proc/sys/kernel/osrelease"))
        .ok()
        .flatten()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());

    // Advisories.
    if let Some(src) = &p.advisories {
        let release = match &p.release {
            Some(r) => Ok(r.clone()),
            None => os_codename(ctx),
        };
        facts.advisories = Some(release.and_then(|release| {
            let wanted: HashSet<&str> = facts
                .installed
                .iter()
                .flat_map(|i| [i.name.as_str(), i.source.as_str()])
                .collect();
            let text = read_feed(src, ctx)?;
            let advisories = feeds::parse(&text, &release, &|n| wanted.contains(n))
                .map_err(|e| format!("`{src}`: {e}"))?;
            Ok(AdvisoryFeed {
                source: src.clone(),
                format: feeds::format_of(&text).into(),
                release,
                advisories,
            })
        }));
    }
    Ok(facts)
}

fn mtime(p: &Path) -> Option<DateTime<Utc>> {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .map(DateTime::<Utc>::from)
}

type Lists = (
    Vec<status::Available>,
    Vec<PackageFile>,
    Option<DateTime<Utc>>,
);

/// apt's preferences: `/etc/apt/preferences`, then the files of
/// `preferences.d` apt reads (no extension or `.pref`, names of letters,
/// digits, `_-.:`), sorted, as apt reads them.
fn read_preferences(ctx: &HostCtx) -> Result<(Vec<apt_policy::Pin>, Vec<String>), CollectError> {
    let mut files = vec![(
        "/etc/apt/preferences".to_owned(),
        ctx.path("/etc/apt/preferences"),
    )];
    let dir = "/etc/apt/preferences.d";
    if let Ok(entries) = std::fs::read_dir(ctx.path(dir)) {
        let mut parts: Vec<(String, PathBuf)> = entries
            .flatten()
            .filter_map(|e| Some((e.file_name().to_str()?.to_owned(), e.path())))
            .filter(|(n, p)| preferences_name(n) && p.is_file())
            .map(|(n, p)| (format!("{dir}/{n}"), p))
            .collect();
        parts.sort();
        files.extend(parts);
    }
    let mut pins = Vec::new();
    let mut warnings = Vec::new();
    for (shown, path) in files {
        let Some(text) = read_optional(&path)? else {
            continue;
        };
        let (mut p, mut w) = apt_policy::preferences(&text, &shown)?;
        pins.append(&mut p);
        warnings.append(&mut w);
    }
    Ok((pins, warnings))
}

/// Whether apt reads a `preferences.d` file of this name.
pub fn preferences_name(n: &str) -> bool {
    let ext_ok = match n.rsplit_once('.') {
        None => true,
        Some((_, ext)) => ext == "pref",
    };
    ext_ok
        && !n.starts_with('.')
        && !n.ends_with('.')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-:.".contains(c))
}

/// Reads every `*_Packages*` index in `dir`, keeping installed names only.
fn read_lists(dir: &Path, names: &HashSet<&str>) -> Result<Lists, CollectError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Vec::new(), Vec::new(), None))
        }
        Err(e) => return Err(CollectError::io("list", dir, e)),
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.to_owned(), e.path())))
        .collect();
    files.sort();
    let mut releases: Vec<(String, Release, PackageFile)> = Vec::new();
    let mut newest: Option<DateTime<Utc>> = None;
    for (name, path) in &files {
        let prefix = name
            .strip_suffix("InRelease")
            .or_else(|| name.strip_suffix("Release"));
        if let Some(prefix) = prefix {
            let text =
                std::fs::read_to_string(path).map_err(|e| CollectError::io("read", path, e))?;
            let r = Release::parse(&text).map_err(|e| CollectError::parse(path.display(), e))?;
            let pf = PackageFile::from_release(&text, name)
                .map_err(|e| CollectError::parse(path.display(), e))?;
            releases.push((prefix.to_owned(), r, pf));
            newest = newest.max(mtime(path));
        }
    }
    let mut out = Vec::new();
    let mut package_files = Vec::new();
    for (name, path) in &files {
        let Some(pos) = name.find("_Packages") else {
            continue;
        };
        let ext = name.get(pos + "_Packages".len()..).unwrap_or("");
        if !matches!(ext, "" | ".lz4" | ".gz" | ".xz" | ".bz2" | ".zst") {
            continue;
        }
        let (prefix, release, mut pf) = releases
            .iter()
            .filter(|(prefix, _, _)| name.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _, _)| prefix.len())
            .cloned()
            .unwrap_or_default();
        let (site, component, arch) = apt_policy::index_name_parts(name, &prefix);
        pf.name = name.clone();
        pf.site = site;
        pf.component = component;
        pf.arch = arch;
        let wanted = |p: &str| names.contains(p);
        let mut index =
            status::PackagesIndex::new(&wanted, &release).with_file(package_files.len());
        let parsed = |e: Deb822Error| CollectError::parse(path.display(), e);
        let read = if ext.is_empty() {
            std::fs::File::open(path)
                .map_err(|e| StreamError::Read(io_reason(&e)))
                .and_then(|mut f| stream(&mut f, &mut index))
                .map_err(|e| match e {
                    StreamError::Read(why) => {
                        StreamError::Read(format!("cannot read `{}`: {why}", path.display()))
                    }
                    parse => parse,
                })
        } else {
            apt_cat(path, &mut index)
        };
        read.map_err(|e| match e {
            StreamError::Read(why) => CollectError::Other(why),
            StreamError::Parse(why) => parsed(why),
        })?;
        let mut got = index.finish().map_err(parsed)?;
        out.append(&mut got);
        package_files.push(pf);
    }
    Ok((out, package_files, newest))
}

/// Why an index could not be read.
enum StreamError {
    /// Reading failed (the reason).
    Read(String),
    /// The parser's complaint (the caller names the file).
    Parse(Deb822Error),
}

/// Feeds what `r` gives to the index parser, 64 KiB at a time.
fn stream(r: &mut dyn Read, index: &mut status::PackagesIndex<'_>) -> Result<(), StreamError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StreamError::Read(io_reason(&e))),
        };
        index
            .push(buf.get(..n).unwrap_or_default())
            .map_err(StreamError::Parse)?;
    }
}

/// Decompresses an apt list with apt's own helper, which knows every
/// compressor apt uses, parsing its output as it comes: an uncompressed
/// index (~90 MB for Debian's main) is never held whole.
fn apt_cat(path: &Path, index: &mut status::PackagesIndex<'_>) -> Result<(), StreamError> {
    let helper = Path::new("/usr/lib/apt/apt-helper");
    if !helper.exists() {
        return Err(StreamError::Read(format!(
            "cannot read the compressed index `{}`: /usr/lib/apt/apt-helper is missing",
            path.display()
        )));
    }
    let mut child = Command::new(helper)
        .arg("cat-file")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| StreamError::Read(format!("cannot run apt-helper: {}", io_reason(&e))))?;
    // stderr is drained beside stdout, so a chatty helper cannot block.
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = (&mut e).take(64 * 1024).read_to_end(&mut text);
            let _ = std::io::copy(&mut e, &mut std::io::sink());
            String::from_utf8_lossy(&text).trim().to_owned()
        })
    });
    let streamed = match child.stdout.take() {
        Some(mut out) => stream(&mut out, index),
        None => Err(StreamError::Read("apt-helper has no output pipe".into())),
    };
    if streamed.is_err() {
        let _ = child.kill();
    }
    let status = child.wait();
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    let failed = |why: String| {
        StreamError::Read(format!(
            "apt-helper cat-file `{}` failed: {why}",
            path.display()
        ))
    };
    match status {
        Ok(s) if s.success() => streamed.map_err(|e| match e {
            StreamError::Read(io) => failed(io),
            parse => parse,
        }),
        // A parse error killed it: the parser's complaint is the news.
        Ok(_) | Err(_) if matches!(streamed, Err(StreamError::Parse(_))) => streamed,
        Ok(_) => Err(failed(stderr)),
        Err(e) => Err(failed(io_reason(&e))),
    }
}

/// apt's settings from apt.conf.d and apt.conf, in apt's reading order
/// (later files win).
fn apt_config(ctx: &HostCtx) -> BTreeMap<String, String> {
    let mut files = vec![ctx.path("/etc/apt/apt.conf")];
    if let Ok(entries) = std::fs::read_dir(ctx.path("/etc/apt/apt.conf.d")) {
        let mut parts: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                // apt skips names with other characters (e.g. `.dpkg-old`).
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                        && !n.contains(".dpkg-")
                        && !n.contains(".ucf-")
                        && (!n.contains('.') || n.ends_with(".conf"))
                })
            })
            .collect();
        parts.sort();
        // apt.conf.d is read before apt.conf.
        parts.push(files.remove(0));
        files = parts;
    }
    let mut out = BTreeMap::new();
    for f in files {
        if let Ok(Some(text)) = read_optional(&f) {
            for (k, v) in apt_conf(&text) {
                out.insert(k, v);
            }
        }
    }
    out
}

/// A small apt.conf reader: `A::B "v";` and `A { B "v"; };` with comments.
pub fn apt_conf(text: &str) -> Vec<(String, String)> {
    let mut clean = String::new();
    for line in text.lines() {
        let l = line.trim_start();
        if l.starts_with('#') {
            continue;
        }
        let mut quoted = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' {
                quoted = !quoted;
            }
            if !quoted && prev == '/' && c == '/' {
                clean.pop();
                break;
            }
            clean.push(c);
            prev = c;
        }
        clean.push('\n');
    }
    let mut out = Vec::new();
    let mut scope: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = clean.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut v = String::new();
                for d in chars.by_ref() {
                    if d == '"' {
                        break;
                    }
                    v.push(d);
                }
                let key = word.trim().to_owned();
                word.clear();
                let full = scope
                    .iter()
                    .cloned()
                    .chain(std::iter::once(key))
                    .collect::<Vec<_>>()
                    .join("::");
                out.push((full, v));
            }
            '{' => {
                scope.push(word.trim().to_owned());
                word.clear();
            }
            '}' => {
                scope.pop();
                word.clear();
            }
            ';' => word.clear(),
            c => word.push(c),
        }
    }
    out
}

fn os_codename(ctx: &HostCtx) -> Result<String, String> {
    let text = read_optional(&ctx.path("/etc/os-release"))?
        .ok_or("no `release` given and /etc/os-release does not exist")?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| "no `release` given and /etc/os-release has no VERSION_CODENAME".into())
}

pub use vigil_rules::checks::patch_level::feeds::{inflate_bounded, MAX_FEED};

/// `advisories: reporter`: the feed the reporter keeps, as the daemon last
/// fetched it (`GET /api/v1/advisories`), under the state directory.
pub const FROM_REPORTER: &str = "reporter";

pub fn reporter_feed_path(state_dir: &Path) -> PathBuf {
    state_dir.join("advisories").join("feed")
}

/// Fetches the reporter's advisory feed when it changed (`If-None-Match`
/// with the ETag of the copy kept), checks it with the parser the check
/// uses, and keeps it for `advisories: reporter`. `Ok(true)`: a new feed;
/// `Ok(false)`: unchanged. A reporter without a feed (404) removes the
/// copy, so the check says so (`error`) rather than judge an old feed.
pub async fn refresh_from_reporter(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    state_dir: &Path,
) -> Result<bool, String> {
    let path = reporter_feed_path(state_dir);
    let etag_path = path.with_file_name("etag");
    let etag = std::fs::read_to_string(&etag_path)
        .ok()
        .filter(|_| path.exists());
    let mut req = client
        .get(url)
        .bearer_auth(token)
        .timeout(std::time::Duration::from_secs(120));
    if let Some(e) = &etag {
        req = req.header("If-None-Match", e.trim());
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    match resp.status().as_u16() {
        304 => Ok(false),
        404 => {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(&etag_path);
            Ok(false)
        }
        200 => {
            let tag = resp
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
            let checked = vigil_rules::checks::patch_level::feeds::check(&bytes, MAX_FEED)
                .map_err(|e| format!("the reporter's advisory feed is refused: {e}"))?;
            let dir = path.parent().unwrap_or(state_dir);
            std::fs::create_dir_all(dir).map_err(|e| io_reason(&e))?;
            let tmp = dir.join("feed.new");
            std::fs::write(&tmp, checked.text.as_bytes()).map_err(|e| io_reason(&e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io_reason(&e))?;
            match tag {
                Some(t) => std::fs::write(&etag_path, t).map_err(|e| io_reason(&e))?,
                None => {
                    let _ = std::fs::remove_file(&etag_path);
                }
            }
            Ok(true)
        }
        s => Err(format!("the reporter answered {s} for the advisory feed")),
    }
}

/// Reads a feed from a path or `file://` URL; zlib-compressed feeds (as
/// debsecan downloads them) are inflated.
fn read_feed(src: &str, ctx: &HostCtx) -> Result<String, String> {
    let bytes = if src == FROM_REPORTER {
        std::fs::read(reporter_feed_path(&ctx.state_dir)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "the policy takes its advisories from the reporter (`advisories: reporter`) and none is here: the reporter has no feed yet (an admin uploads one, or its config `advisories.url` fetches it), or this agent has not reached it".to_owned()
            } else {
                format!("cannot read the reporter's advisory feed: {}", io_reason(&e))
            }
        })?
    } else if let Some((addr, path)) = loopback_http(src) {
        http_get(&addr, &path)
            .map_err(|e| format!("cannot fetch the advisories feed `{src}`: {e}"))?
    } else {
        let path = src.strip_prefix("file://").unwrap_or(src);
        std::fs::read(ctx.path(path))
            .map_err(|e| format!("cannot read the advisories feed `{src}`: {}", io_reason(&e)))?
    };
    let bytes = if bytes.first() == Some(&0x78) {
        inflate_bounded(&bytes, MAX_FEED)
            .map_err(|e| format!("the advisories feed `{src}` is refused: {e}"))?
    } else {
        bytes
    };
    String::from_utf8(bytes).map_err(|_| format!("the advisories feed `{src}` is not UTF-8 text"))
}

/// A plain HTTP/1.0 GET to a loopback address (validation refuses others).
fn http_get(addr: &str, path: &str) -> Result<Vec<u8>, String> {
    use std::io::Write as _;
    use std::net::ToSocketAddrs as _;
    let timeout = std::time::Duration::from_secs(20);
    let target = addr
        .to_socket_addrs()
        .map_err(|e| io_reason(&e))?
        .next()
        .ok_or("no address")?;
    let mut s =
        std::net::TcpStream::connect_timeout(&target, timeout).map_err(|e| io_reason(&e))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| io_reason(&e))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: vigil-agent\r\n\r\n"
    )
    .map_err(|e| io_reason(&e))?;
    let mut raw = Vec::new();
    (&mut s)
        .take(MAX_FEED.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(|e| io_reason(&e))?;
    if raw.len() as u64 > MAX_FEED {
        return Err(format!("the answer is larger than {MAX_FEED} bytes"));
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response has no header end")?;
    let head = String::from_utf8_lossy(raw.get(..split).unwrap_or_default());
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("the server answered `{status}`"));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err("chunked responses are not supported".into());
    }
    Ok(raw.get(split + 4..).unwrap_or_default().to_vec())
}

#[cfg(test)]
mod tests {

    #[test]
    fn feeds_that_inflate_past_the_cap_are_refused() {
        use std::io::Write as _;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![b'a'; 1 << 20]).unwrap();
        let small = z.finish().unwrap();
        assert!(small.len() < 10_000, "a zip bomb in miniature");
        assert_eq!(inflate_bounded(&small, 1 << 20).unwrap().len(), 1 << 20);
        let e = inflate_bounded(&small, 1000).unwrap_err();
        assert!(e.to_string().contains("inflates past 1000"), "{e}");
        assert!(inflate_bounded(b"\x78not zlib", 1000).is_err());
    }

    use super::*;

    #[test]
    fn apt_conf_forms() {
        let got = apt_conf(
            "// comment\nAPT::Periodic::Update-Package-Lists \"1\";\nAPT {\n  Periodic {\n    Unattended-Upgrade \"1\"; // on\n  };\n};\n# old\n",
        );
        assert_eq!(
            got,
            vec![
                (
                    "APT::Periodic::Update-Package-Lists".to_owned(),
                    "1".to_owned()
                ),
                (
                    "APT::Periodic::Unattended-Upgrade".to_owned(),
                    "1".to_owned()
                )
            ]
        );
    }
}
