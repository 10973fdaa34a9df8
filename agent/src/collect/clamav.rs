//! Facts for `clamav`: clamd's PING and VERSION answers, the database files'
//! times, an EICAR self-test through INSTREAM, and a scan of the configured
//! paths with a content-hash cache kept in the state directory.
//!
//! The scan paths are listed and read on a thread of their own, at the
//! configured priority and through the run's read budget, and each file is
//! streamed to clamd in chunks as it is read (a few chunks in memory, whatever
//! the file's size). A file whose identity (device, inode, size, mtime,
//! ctime) is the one it had when last scanned clean with the same signature
//! set is not read again. A stopped
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

use super::host::{io_reason, stat_identity, HostCtx};
use crate::collect::CollectError;

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

    /// INSTREAM of chunks as they arrive (a file being read).
    async fn scan_stream(
        &self,
        chunks: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    ) -> std::io::Result<Vec<u8>> {
        let stream = futures_util::stream::unfold(chunks, |mut rx| async move {
            rx.recv().await.map(|c| (c, rx))
        });
        match self {
            Conn::Unix(p) => {
                clam::scan_stream(stream, clam::Socket { socket_path: p }, Some(CHUNK)).await
            }
            Conn::Tcp(a) => {
                clam::scan_stream(
                    stream,
                    clam::Tcp {
                        host_address: a.as_str(),
                    },
                    Some(CHUNK),
                )
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

pub async fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, CollectError> {
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
        .and_then(|a| parse_version(&String::from_utf8_lossy(&a)).map_err(|e| e.to_string()));
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
        super::host::blocking(move || Ok::<_, CollectError>(database_files(&dir))).await?
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

/// The scan cache: what was judged clean with one signature set.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    signatures: String,
    /// Host path to the SHA-256 of the content that was scanned clean.
    clean: BTreeMap<String, String>,
    /// Host path to the identity the file had when it was read for that scan
    /// (absent from caches written before identities were kept: those files
    /// are read and scanned once more).
    #[serde(default)]
    identity: BTreeMap<String, Identity>,
}

/// A file's [`stat_identity`], in hex. What it does not see (raw block
/// device writes, a clock set back) a new signature set (freshclam, daily)
/// covers: it rescans everything.
type Identity = String;

fn identity(md: &std::fs::Metadata) -> Identity {
    hex::encode(stat_identity(md))
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

/// How reading a streamed file ended.
enum ReadEnd {
    /// Read to the end: the SHA-256 of what was streamed, and its length.
    Read(String, u64),
    Failed(std::io::Error),
    /// The scanner stopped taking chunks (clamd closed the stream).
    Abandoned,
}

/// What the reading thread hands the scanner, in order: the listing's
/// outcome first, then one item per file.
enum Item {
    Listed(Scan),
    /// Same identity as when it was last scanned clean with this signature
    /// set: not read.
    Unchanged(String, Identity),
    TooLarge(String),
    Unreadable(String, std::io::Error),
    /// Being read: its chunks as they are read, then how the read ended.
    Stream {
        host: String,
        identity: Identity,
        chunks: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
        end: tokio::sync::oneshot::Receiver<ReadEnd>,
    },
}

/// The reading thread: lists the scan paths, then hands each file over as
/// unchanged, too large, unreadable, or a stream of chunks. At most a few
/// chunks of one file are in memory, whatever the files' sizes.
fn read_files(
    p: &Params,
    ctx: &HostCtx,
    known: &BTreeMap<String, Identity>,
    items: &tokio::sync::mpsc::Sender<Item>,
) {
    ctx.pace.enter_thread();
    let mut listed = Scan::default();
    let files = list_files(p, ctx, &mut listed);
    ctx.pace.expect_items(files.len() as u64, "files");
    if items.blocking_send(Item::Listed(listed)).is_err() {
        return;
    }
    let limit = p.max_file_size_mb.saturating_mul(1024 * 1024);
    let mut buf = vec![0u8; CHUNK];
    for (host, real) in files {
        if ctx.pace.is_stopped() {
            return;
        }
        // Counted when handed over; clamd answers a file or two later.
        ctx.pace.items_done(1);
        let opened = ctx
            .pace
            .check()
            .and_then(|()| std::fs::File::open(&real))
            .and_then(|f| f.metadata().map(|md| (f, md)));
        let (file, md) = match opened {
            Ok(x) => x,
            Err(e) => {
                if items.blocking_send(Item::Unreadable(host, e)).is_err() {
                    return;
                }
                continue;
            }
        };
        let id = identity(&md);
        let item = if known.get(&host) == Some(&id) {
            Item::Unchanged(host, id)
        } else if md.len() > limit {
            Item::TooLarge(host)
        } else {
            let (chunk_tx, chunks) = tokio::sync::mpsc::channel(2);
            let (end_tx, end) = tokio::sync::oneshot::channel();
            let item = Item::Stream {
                host,
                identity: id,
                chunks,
                end,
            };
            if items.blocking_send(item).is_err() {
                return;
            }
            let _ = end_tx.send(stream_file(file, limit, ctx, &mut buf, &chunk_tx));
            continue;
        };
        if items.blocking_send(item).is_err() {
            return;
        }
    }
}

/// Reads `file` (up to `limit` bytes) in chunks into `chunks`, hashing what
/// it sends.
fn stream_file(
    file: std::fs::File,
    limit: u64,
    ctx: &HostCtx,
    buf: &mut [u8],
    chunks: &tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
) -> ReadEnd {
    let mut reader = ctx.pace.reader(file).take(limit);
    let mut hash = Sha256::new();
    let mut total = 0u64;
    loop {
        match reader.read(buf) {
            Ok(0) => return ReadEnd::Read(hex::encode(hash.finalize()), total),
            Ok(n) => {
                let Some(chunk) = buf.get(..n) else {
                    return ReadEnd::Abandoned;
                };
                hash.update(chunk);
                total += n as u64;
                if chunks
                    .blocking_send(Ok(bytes::Bytes::copy_from_slice(chunk)))
                    .is_err()
                {
                    return ReadEnd::Abandoned;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // ends the stream to clamd; the reason goes through `end`
                let _ = chunks.blocking_send(Err(std::io::Error::new(e.kind(), "read failed")));
                return ReadEnd::Failed(e);
            }
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
        old.identity.clear();
    }
    // Identities count only for files whose clean hash is still known.
    let clean = std::mem::take(&mut old.clean);
    let known: BTreeMap<String, Identity> = std::mem::take(&mut old.identity)
        .into_iter()
        .filter(|(path, _)| clean.contains_key(path))
        .collect();
    let mut new = Cache {
        signatures: signatures.to_owned(),
        ..Cache::default()
    };
    let (item_tx, mut item_rx) = tokio::sync::mpsc::channel::<Item>(1);
    let (p2, ctx2) = (p.clone(), ctx.clone());
    let started = std::thread::Builder::new()
        .name("vigil-clamav-read".into())
        .spawn(move || read_files(&p2, &ctx2, &known, &item_tx));
    if let Err(e) = started {
        scan.errors.push(ScanError {
            path: p.scan_paths.join(", "),
            reason: format!("cannot start the reading thread: {}", io_reason(&e)),
        });
        return scan;
    }
    while let Some(item) = item_rx.recv().await {
        let (host, identity, chunks, end) = match item {
            Item::Listed(listed) => {
                scan.missing_paths = listed.missing_paths;
                scan.errors.extend(listed.errors);
                continue;
            }
            Item::Unchanged(host, identity) => {
                scan.files_seen += 1;
                scan.files_skipped_unchanged += 1;
                if let Some(hash) = clean.get(&host) {
                    new.clean.insert(host.clone(), hash.clone());
                    new.identity.insert(host, identity);
                }
                continue;
            }
            Item::TooLarge(host) => {
                scan.files_seen += 1;
                scan.too_large.push(host);
                continue;
            }
            Item::Unreadable(host, e) => {
                scan.files_seen += 1;
                scan.errors.push(ScanError {
                    path: host,
                    reason: format!("cannot read: {}", io_reason(&e)),
                });
                continue;
            }
            Item::Stream {
                host,
                identity,
                chunks,
                end,
            } => (host, identity, chunks, end),
        };
        scan.files_seen += 1;
        let answer = timed("INSTREAM", conn.scan_stream(chunks)).await;
        let (hash, len) = match end.await {
            Ok(ReadEnd::Read(hash, len)) => (hash, len),
            Ok(ReadEnd::Failed(e)) => {
                scan.errors.push(ScanError {
                    path: host,
                    reason: format!("cannot read: {}", io_reason(&e)),
                });
                continue;
            }
            Ok(ReadEnd::Abandoned) | Err(_) => {
                scan.errors.push(ScanError {
                    path: host,
                    reason: match answer {
                        Err(reason) => stream_failure(reason),
                        Ok(raw) => format!(
                            "clamd answered before the whole file was sent: {}",
                            String::from_utf8_lossy(&raw).trim_end_matches('\0')
                        ),
                    },
                });
                continue;
            }
        };
        scan.files_scanned += 1;
        scan.bytes_scanned += len;
        match answer {
            Ok(raw) => match parse_answer(&raw) {
                Answer::Clean => {
                    new.clean.insert(host.clone(), hash);
                    new.identity.insert(host, identity);
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
