//! Facts for `clamav`: clamd's PING and VERSION answers, the database files'
//! times, an EICAR self-test through INSTREAM, and a scan of the configured
//! paths with a content-hash cache kept in the state directory.
//!
//! The scan paths are listed and read on a thread of their own, at the
//! configured priority and through the run's read budget, one file ahead of
//! the stream to clamd (so at most two files are in memory). A stopped
//! (timed-out) check ends that thread at its next file or buffer; clamd's own
//! work is clamd's (its priority is its unit's).
//!
//! Nothing read from a scanned file (nor the test string) reaches the facts:
//! only paths, signature names and counts.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clamav_client::tokio as clam;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigil_rules::checks::clamav::{
    parse_version, DateSource, Facts, Infected, Params, Scan, ScanError, SelfTest,
};

use super::{io_reason, HostCtx};
use crate::pace::Pace;

/// How long one clamd command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// INSTREAM chunk size.
const CHUNK: usize = 256 * 1024;

/// Where clamd listens.
#[derive(Debug, Clone)]
pub enum Conn {
    Unix(PathBuf),
    Tcp(String),
}

impl Conn {
    pub fn parse(address: &str) -> Result<Conn, String> {
        if let Some(p) = address.strip_prefix("unix:") {
            Ok(Conn::Unix(PathBuf::from(p)))
        } else if let Some(a) = address.strip_prefix("tcp://") {
            Ok(Conn::Tcp(a.to_owned()))
        } else {
            Err(format!(
                "`{address}` is not `unix:PATH` or `tcp://HOST:PORT`"
            ))
        }
    }

    async fn ping(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Conn::Unix(p) => clam::ping(clam::Socket { socket_path: p }).await,
            Conn::Tcp(a) => {
                clam::ping(clam::Tcp {
                    host_address: a.as_str(),
                })
                .await
            }
        }
    }

    async fn version(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Conn::Unix(p) => clam::get_version(clam::Socket { socket_path: p }).await,
            Conn::Tcp(a) => {
                clam::get_version(clam::Tcp {
                    host_address: a.as_str(),
                })
                .await
            }
        }
    }

    async fn scan(&self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Conn::Unix(p) => {
                clam::scan_buffer(data, clam::Socket { socket_path: p }, Some(CHUNK)).await
            }
            Conn::Tcp(a) => {
                clam::scan_buffer(
                    data,
                    clam::Tcp {
                        host_address: a.as_str(),
                    },
                    Some(CHUNK),
                )
                .await
            }
        }
    }
}

async fn timed<T>(
    what: &str,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(COMMAND_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {}", io_reason(&e))),
        Err(_) => Err(format!(
            "{what}: no answer within {}s",
            COMMAND_TIMEOUT.as_secs()
        )),
    }
}

/// One INSTREAM answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Clean,
    Found(String),
    Error(String),
}

/// Reads `stream: OK`, `stream: NAME FOUND` or `… ERROR`. clamav-client's
/// `clean()` lumps ERROR with infections; they mean different things here.
pub fn parse_answer(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end_matches(['\0', '\n', '\r']).trim();
    let body = text.strip_prefix("stream:").map_or(text, str::trim);
    if body == "OK" {
        Answer::Clean
    } else if let Some(name) = body.strip_suffix(" FOUND") {
        Answer::Found(name.trim().to_owned())
    } else if let Some(e) = body.strip_suffix("ERROR") {
        Answer::Error(e.trim().trim_end_matches('.').to_owned())
    } else if body.is_empty() {
        Answer::Error("empty answer".into())
    } else {
        Answer::Error(format!("unexpected answer `{body}`"))
    }
}

/// clamd answers `INSTREAM size limit exceeded. ERROR` and closes the
/// connection while the client is still writing; the client then sees a
/// broken pipe, not the answer. Say what that most likely means.
fn stream_failure(reason: String) -> String {
    if reason.contains("broken pipe") || reason.contains("connection reset") {
        format!("{reason}: clamd closed the stream early (the file is probably over clamd's StreamMaxLength)")
    } else {
        reason
    }
}

/// The EICAR anti-virus test string, put together at run time so that no file
/// of this project is itself detected by a scanner.
fn eicar() -> Vec<u8> {
    let parts = [
        "X5O!P%@AP",
        "[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD",
        "-ANTIVIRUS-TEST",
        "-FILE!$H+H*",
    ];
    parts.concat().into_bytes()
}

pub async fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, String> {
    let conn = Conn::parse(&p.address)?;
    let mut facts = Facts {
        address: p.address.clone(),
        ..Default::default()
    };
    match timed("PING", conn.ping()).await {
        Ok(a) if a.starts_with(b"PONG") => {}
        Ok(a) => {
            facts.down = Some(format!(
                "PING answered `{}` instead of PONG",
                String::from_utf8_lossy(&a).trim_end_matches('\0')
            ));
            return Ok(facts);
        }
        Err(e) => {
            facts.down = Some(e);
            return Ok(facts);
        }
    }
    let version = timed("VERSION", conn.version())
        .await
        .and_then(|a| parse_version(&String::from_utf8_lossy(&a)));
    let vigil_rules::checks::clamav::VersionInfo {
        engine,
        database: dbver,
        date,
    } = match version {
        Ok(v) => v,
        Err(e) => {
            facts.errors.push(e);
            return Ok(facts);
        }
    };
    facts.engine_version = Some(engine.clone());
    facts.database_version = dbver;

    let db_dir = ctx.path(&p.database_directory);
    let (db_files, db_newest, db_fingerprint) = {
        let dir = db_dir.clone();
        super::blocking(move || Ok(database_files(&dir))).await?
    };
    facts.database_files = db_files;
    match date {
        Some(d) => {
            facts.database_date = Some(d);
            facts.database_date_source = Some(DateSource::Version);
        }
        None => {
            facts.database_date = db_newest;
            facts.database_date_source = db_newest.map(|_| DateSource::DatabaseFiles);
        }
    }

    if p.self_test {
        facts.self_test = Some(match timed("INSTREAM", conn.scan(&eicar())).await {
            Ok(raw) => match parse_answer(&raw) {
                Answer::Found(sig) => SelfTest::Detected(sig),
                Answer::Clean => SelfTest::NotDetected,
                Answer::Error(e) => SelfTest::ClamdError(e),
            },
            Err(e) => SelfTest::Failed(e),
        });
    }

    if !p.scan_paths.is_empty() {
        // The signature set the cache entries were judged with.
        let sigs = format!(
            "{engine}/{}/{}/{db_fingerprint}",
            dbver.unwrap_or(0),
            date.map(|d| d.to_rfc3339()).unwrap_or_default()
        );
        facts.scan = Some(scan_paths(p, ctx, &conn, &sigs).await);
    }
    Ok(facts)
}

/// Database files (names), their newest mtime, and a fingerprint of names,
/// sizes and times.
fn database_files(dir: &Path) -> (Vec<String>, Option<chrono::DateTime<chrono::Utc>>, String) {
    const EXT: &[&str] = &[
        "cvd", "cld", "cud", "hdb", "hsb", "hdu", "hsu", "mdb", "msb", "mdu", "msu", "ndb", "ndu",
        "ldb", "ldu", "idb", "cdb", "crb", "cat", "fp", "sfp", "ign", "ign2", "ftm", "pdb", "gdb",
        "wdb", "yar", "yara", "info", "cfg", "imp",
    ];
    let mut names = Vec::new();
    let mut newest: Option<std::time::SystemTime> = None;
    let mut h = Sha256::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (names, None, String::new());
    };
    let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let ext = name.rsplit_once('.').map(|(_, x)| x).unwrap_or_default();
        if !EXT.contains(&ext) {
            continue;
        }
        let Ok(md) = e.metadata() else { continue };
        if !md.is_file() {
            continue;
        }
        if let Ok(m) = md.modified() {
            newest = Some(newest.map_or(m, |n| n.max(m)));
            let secs = m
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            h.update(format!("{name}\0{}\0{secs}\n", md.len()));
        }
        names.push(name);
    }
    (
        names,
        newest.map(chrono::DateTime::<chrono::Utc>::from),
        hex::encode(h.finalize()),
    )
}

/// The scan cache: content hashes judged clean with one signature set.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    signatures: String,
    /// Host path to the SHA-256 of the content that was scanned clean.
    clean: BTreeMap<String, String>,
}

fn cache_path(ctx: &HostCtx, p: &Params) -> PathBuf {
    let key = hex::encode(Sha256::digest(
        format!("{}\n{}", p.address, p.scan_paths.join("\n")).as_bytes(),
    ));
    ctx.state_dir
        .join("clamav")
        .join(format!("scan-cache-{}.json", key.get(..16).unwrap_or(&key)))
}

/// Lists regular files under the scan paths (host path, real path).
fn list_files(p: &Params, ctx: &HostCtx, scan: &mut Scan) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for sp in &p.scan_paths {
        let real = ctx.path(sp);
        if !real.exists() {
            scan.missing_paths.push(sp.clone());
            continue;
        }
        for entry in walkdir::WalkDir::new(&real)
            .follow_links(false)
            .sort_by_file_name()
        {
            if ctx.pace.is_stopped() {
                return files;
            }
            match entry {
                Ok(e) if e.file_type().is_file() => {
                    files.push((ctx.display(e.path()), e.path().to_path_buf()));
                }
                Ok(_) => {}
                Err(e) => scan.errors.push(ScanError {
                    path: e.path().map_or(sp.clone(), |p| ctx.display(p)),
                    reason: e.io_error().map_or_else(|| e.to_string(), io_reason),
                }),
            }
        }
    }
    files
}

/// Reads a file up to `limit` bytes; `Ok(None)` when it is larger.
fn read_limited(path: &Path, limit: u64, pace: &Pace) -> std::io::Result<Option<Vec<u8>>> {
    pace.check()?;
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    pace.reader(f).take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Ok(None);
    }
    Ok(Some(buf))
}

/// What the reading thread hands the scanner, in order: the listing's
/// outcome first, then each file's bytes.
enum Item {
    Listed(Scan),
    File(String, std::io::Result<Option<Vec<u8>>>),
}

/// The reading thread: lists the scan paths, then reads one file per credit.
fn read_files(
    p: &Params,
    ctx: &HostCtx,
    credits: &std::sync::mpsc::Receiver<()>,
    items: &tokio::sync::mpsc::Sender<Item>,
) {
    ctx.pace.enter_thread();
    let mut listed = Scan::default();
    let files = list_files(p, ctx, &mut listed);
    if items.blocking_send(Item::Listed(listed)).is_err() {
        return;
    }
    let limit = p.max_file_size_mb.saturating_mul(1024 * 1024);
    for (host, real) in files {
        // no credit: the scan is over (or was dropped)
        if credits.recv().is_err() || ctx.pace.is_stopped() {
            return;
        }
        let data = read_limited(&real, limit, &ctx.pace);
        if items.blocking_send(Item::File(host, data)).is_err() {
            return;
        }
    }
}

async fn scan_paths(p: &Params, ctx: &HostCtx, conn: &Conn, signatures: &str) -> Scan {
    let mut scan = Scan::default();
    let cache_file = cache_path(ctx, p);
    let mut old: Cache = match std::fs::read(&cache_file) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|_| {
            scan.cache_note = Some("scan cache unreadable; rescanning everything".into());
            Cache::default()
        }),
        Err(_) => Cache::default(),
    };
    if old.signatures != signatures {
        old.clean.clear();
    }
    let mut new = Cache {
        signatures: signatures.to_owned(),
        clean: BTreeMap::new(),
    };
    let (credit_tx, credit_rx) = std::sync::mpsc::channel::<()>();
    let (item_tx, mut item_rx) = tokio::sync::mpsc::channel::<Item>(1);
    let (p2, ctx2) = (p.clone(), ctx.clone());
    let started = std::thread::Builder::new()
        .name("vigil-clamav-read".into())
        .spawn(move || read_files(&p2, &ctx2, &credit_rx, &item_tx));
    if let Err(e) = started {
        scan.errors.push(ScanError {
            path: p.scan_paths.join(", "),
            reason: format!("cannot start the reading thread: {}", io_reason(&e)),
        });
        return scan;
    }
    // One file read ahead of the one being streamed to clamd.
    let _ = credit_tx.send(());
    while let Some(item) = item_rx.recv().await {
        let (host, data) = match item {
            Item::Listed(listed) => {
                scan.missing_paths = listed.missing_paths;
                scan.errors.extend(listed.errors);
                continue;
            }
            Item::File(host, data) => (host, data),
        };
        let _ = credit_tx.send(());
        scan.files_seen += 1;
        let data = match data {
            Ok(Some(d)) => d,
            Ok(None) => {
                scan.too_large.push(host);
                continue;
            }
            Err(e) => {
                scan.errors.push(ScanError {
                    path: host,
                    reason: format!("cannot read: {}", io_reason(&e)),
                });
                continue;
            }
        };
        let hash = hex::encode(Sha256::digest(&data));
        if old.clean.get(&host) == Some(&hash) {
            scan.files_skipped_unchanged += 1;
            new.clean.insert(host, hash);
            continue;
        }
        scan.files_scanned += 1;
        scan.bytes_scanned += data.len() as u64;
        match timed("INSTREAM", conn.scan(&data)).await {
            Ok(raw) => match parse_answer(&raw) {
                Answer::Clean => {
                    new.clean.insert(host, hash);
                }
                Answer::Found(signature) => scan.infected.push(Infected {
                    path: host,
                    signature,
                }),
                Answer::Error(reason) => scan.errors.push(ScanError {
                    path: host,
                    reason: format!("clamd: {reason}"),
                }),
            },
            Err(reason) => scan.errors.push(ScanError {
                path: host,
                reason: stream_failure(reason),
            }),
        }
    }
    let saved = cache_file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|_| {
            let tmp = cache_file.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(&new).unwrap_or_default())?;
            std::fs::rename(&tmp, &cache_file)
        });
    if let Err(e) = saved {
        scan.cache_note = Some(format!(
            "cannot save the scan cache `{}`: {}",
            cache_file.display(),
            io_reason(&e)
        ));
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_told_apart() {
        assert_eq!(parse_answer(b"stream: OK\0"), Answer::Clean);
        assert_eq!(
            parse_answer(b"stream: Eicar-Test-Signature.UNOFFICIAL FOUND\0"),
            Answer::Found("Eicar-Test-Signature.UNOFFICIAL".into())
        );
        assert_eq!(
            parse_answer(b"INSTREAM size limit exceeded. ERROR\0"),
            Answer::Error("INSTREAM size limit exceeded".into())
        );
        assert!(matches!(parse_answer(b""), Answer::Error(_)));
    }

    #[test]
    fn eicar_is_the_standard_string() {
        let e = eicar();
        assert_eq!(e.len(), 68);
        assert_eq!(
            format!("{:x}", md5::Md5::digest(&e)),
            "44d88612fea8a8f36de82e1278abb02f"
        );
    }
}
