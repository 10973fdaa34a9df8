//! The built-in log purge and the scan that verifies it.
//!
//! Which lines go: a line carries an identifier when the identifier occurs in
//! it as a whole token, that is, not preceded or followed by a letter, a digit,
//! `_` or `-` (so `acme` matches `/sites/acme/`, `user=acme` and
//! `acme.papyrs.example`, never `acmecorp` or `acme-corp`).
//!
//! Which files: each is opened with `O_NOFOLLOW` from its directory's
//! descriptor (see `nofollow`): symbolic links, non-regular files, files
//! with more than one hard link and files of a third user are left alone
//! and reported, never rewritten.
//!
//! How files are rewritten:
//! - gzip'd rotations (`*.gz`) are not written by anyone: they are decompressed,
//!   filtered and recompressed into a temporary file in the same directory
//!   (`O_CREAT | O_EXCL | O_NOFOLLOW`),
//!   fsync'd, given the original owner, group and mode, and renamed over the
//!   original (then the directory is fsync'd).
//! - Uncompressed files may be the live file a logging daemon holds open with
//!   `O_APPEND`. Renaming would leave the daemon writing to the old inode, and
//!   any shrinking of the file (copy-truncate) races with its appends: a line
//!   written between reading the tail and truncating is lost. So the purge
//!   overwrites each complete line carrying an identifier *in place* with as
//!   many spaces (its newline kept), with positioned writes below the size it
//!   read. The daemon's appends land at the end of the file and never overlap
//!   these writes, so no unrelated line can be lost, whatever the timing; the
//!   file keeps its inode, owner, mode and size, and the blank lines disappear
//!   at the next rotation. A line still being written (no newline yet) is left
//!   for the next pass; passes repeat while they find something.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::nofollow::{self, Entry, NofollowError};
use crate::collect::host::io_reason;

fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Whether a line carries one of the identifiers as a whole token.
pub fn carries(line: &[u8], ids: &[String]) -> bool {
    ids.iter().any(|id| {
        let id = id.as_bytes();
        if id.is_empty() || id.len() > line.len() {
            return false;
        }
        let mut start = 0;
        while let Some(pos) = find(line.get(start..).unwrap_or_default(), id) {
            let at = start + pos;
            let end = at + id.len();
            let before_ok = at == 0 || line.get(at - 1).is_none_or(|b| !token_byte(*b));
            let after_ok = line.get(end).is_none_or(|b| !token_byte(*b));
            if before_ok && after_ok {
                return true;
            }
            start = at + 1;
        }
        false
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

/// Why a log file could not be scanned or purged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PurgeError {
    /// Opening it without following a link, or replacing it, was refused.
    #[error(transparent)]
    Nofollow(#[from] NofollowError),
    /// `cannot read `/var/log/x`: …` (scan) or `cannot purge `…`: …`.
    #[error("cannot {what} `{}`: {}", path.display(), io_reason(source))]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> PurgeError + Copy + 'a {
    move |source| PurgeError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// What a scan found in one file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    pub lines: u64,
    pub carrying: u64,
}

/// Counts the lines of a file (gzip'd or not) and those carrying an
/// identifier; the file is opened without following a link, regular only.
pub fn scan(e: &Entry, ids: &[String]) -> Result<Scan, PurgeError> {
    let file = nofollow::open_file(e, false)?;
    let path = e.path.as_path();
    let reader: Box<dyn Read> = if is_gz(path) {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut reader = BufReader::new(reader);
    let mut s = Scan::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(io("read", path))?;
        if n == 0 {
            return Ok(s);
        }
        s.lines += 1;
        if carries(&buf, ids) {
            s.carrying += 1;
        }
    }
}

/// Purges one file; returns how many lines were removed (gzip) or blanked.
/// The file is opened without following a link and must be a regular file
/// with one link, owned as [`nofollow::owner_ok`] allows.
pub fn purge(e: &Entry, ids: &[String]) -> Result<u64, PurgeError> {
    if is_gz(&e.path) {
        purge_gz(e, ids)
    } else {
        let mut total = 0;
        // A pass finds lines completed since the last one; stop when one finds none.
        for _ in 0..16 {
            let file = nofollow::open_file(e, true)?;
            let n = blank_in_place(&file, &e.path, ids)?;
            total += n;
            if n == 0 {
                break;
            }
        }
        Ok(total)
    }
}

fn blank_in_place(file: &File, path: &Path, ids: &[String]) -> Result<u64, PurgeError> {
    let what = io("purge", path);
    let size = file.metadata().map_err(what)?.len();
    let mut reader = BufReader::new(file.take(size));
    let mut offset = 0u64;
    let mut buf = Vec::new();
    let mut hits = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(what)?;
        if n == 0 {
            break;
        }
        // Only complete lines: a line without its newline may still be written.
        if buf.last() == Some(&b'\n') && carries(&buf, ids) {
            hits.push((offset, n - 1));
        }
        offset += n as u64;
    }
    for (at, len) in &hits {
        file.write_all_at(&vec![b' '; *len], *at).map_err(what)?;
    }
    if !hits.is_empty() {
        file.sync_data().map_err(what)?;
    }
    Ok(hits.len() as u64)
}

fn purge_gz(e: &Entry, ids: &[String]) -> Result<u64, PurgeError> {
    let path = e.path.as_path();
    let what = io("purge", path);
    let file = nofollow::open_file(e, true)?;
    let meta = file.metadata().map_err(what)?;
    let mut input = BufReader::new(MultiGzDecoder::new(file));
    let (tmp_name, tmp) = nofollow::temp_beside(e)?;
    let r = (|| {
        let mut out = GzEncoder::new(tmp, flate2::Compression::default());
        let mut removed = 0u64;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = input.read_until(b'\n', &mut buf).map_err(what)?;
            if n == 0 {
                break;
            }
            if carries(&buf, ids) {
                removed += 1;
            } else {
                out.write_all(&buf).map_err(what)?;
            }
        }
        let mut f = out.finish().map_err(what)?;
        if removed == 0 {
            return Ok(0);
        }
        f.flush().map_err(what)?;
        std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid())).map_err(what)?;
        f.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(what)?;
        f.sync_all().map_err(what)?;
        nofollow::replace(e, &tmp_name)?;
        Ok(removed)
    })();
    if !matches!(r, Ok(n) if n > 0) {
        nofollow::discard(e, &tmp_name);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &Path) -> Entry {
        let root = p.parent().unwrap();
        let name = p.file_name().unwrap().to_str().unwrap();
        let mut r = nofollow::resolve(root, &format!("/{name}")).unwrap();
        r.found.remove(0)
    }

    fn ids() -> Vec<String> {
        vec!["acme".into(), "u-1842".into(), "acme.papyrs.example".into()]
    }

    #[test]
    fn whole_tokens_only() {
        let ids = ids();
        for yes in [
            "GET /sites/acme/page 200",
            "user=u-1842 login",
            "host acme.papyrs.example",
            "acme",
            "[acme]",
        ] {
            assert!(carries(yes.as_bytes(), &ids), "{yes}");
        }
        for no in ["acmecorp", "acme-corp", "u-18420", "my_acme", "nothing"] {
            assert!(!carries(no.as_bytes(), &ids), "{no}");
        }
    }

    #[test]
    fn gz_rotation_is_rewritten_without_the_lines_keeping_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log.2.gz");
        let mut enc = GzEncoder::new(File::create(&p).unwrap(), flate2::Compression::default());
        enc.write_all(b"a acme\nb keep\nc u-1842\nd acmecorp\n")
            .unwrap();
        enc.finish().unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(purge(&entry(&p), &ids()).unwrap(), 2);
        let mut s = String::new();
        MultiGzDecoder::new(File::open(&p).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "b keep\nd acmecorp\n");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(
            scan(&entry(&p), &ids()).unwrap(),
            Scan {
                lines: 2,
                carrying: 0
            }
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn live_file_is_blanked_in_place_leaving_a_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        std::fs::write(&p, "keep 1\nacme x\nkeep 2\npartial acme").unwrap();
        let ino = std::fs::metadata(&p).unwrap().ino();
        assert_eq!(purge(&entry(&p), &ids()).unwrap(), 1);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "keep 1\n      \nkeep 2\npartial acme"
        );
        assert_eq!(std::fs::metadata(&p).unwrap().ino(), ino);
    }
}
