//! The durable spool: one file per report, written and fsynced before it is
//! shipped, removed only after the reporter acknowledged it.
//!
//! Files are named `<20-digit sequence>-<report_id>.json`; the sequence is the
//! creation time in microseconds since the epoch, kept strictly increasing, so
//! lexical order is creation order (also across restarts). The age bound
//! uses the file's mtime. A report is written
//! to a dot-file, fsynced, renamed into place, and the directory is fsynced.
//! `quarantine/` holds files that are not JSON, `rejected/` reports the
//! reporter refused for good. The count of reports dropped to keep the spool
//! within its bounds is kept in `dropped.count`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::durable::{sync_dir, write_durable};

/// Bounds of the spool; the oldest reports go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_reports: u64,
    pub max_bytes: u64,
    pub max_age: Duration,
}

/// One spooled report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub path: PathBuf,
    pub bytes: u64,
    /// When the file was written (its mtime); the age bound uses it.
    pub written: SystemTime,
}

impl Entry {
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// What a spool file holds, once read.
#[derive(Debug)]
pub enum Loaded {
    Report(Vec<u8>),
    /// Not JSON: moved to `quarantine/`; the path it has now.
    Quarantined(PathBuf),
    /// Gone in the meantime (shipped or dropped).
    Missing,
}

pub struct Spool {
    dir: PathBuf,
    limits: Limits,
    last_seq: Mutex<u64>,
}

const DROPPED: &str = "dropped.count";

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The sequence number of a spool file name, if it is one.
fn seq_of(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".json")?;
    let (seq, id) = stem.split_once('-')?;
    if seq.len() != 20 || id.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    seq.parse().ok()
}

/// A report id as it may appear in a file name.
fn safe_id(id: &str) -> String {
    let s: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    if s.is_empty() {
        "report".into()
    } else {
        s
    }
}

impl Spool {
    /// Opens (creating) the spool directory.
    pub fn open(dir: &Path, limits: Limits) -> std::io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let spool = Spool {
            dir: dir.to_owned(),
            limits,
            last_seq: Mutex::new(0),
        };
        let last = spool.entries()?.last().map_or(0, |e| e.seq);
        *spool.lock_seq() = last;
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    fn lock_seq(&self) -> std::sync::MutexGuard<'_, u64> {
        self.last_seq.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spooled reports, oldest first.
    pub fn entries(&self) -> std::io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for item in fs::read_dir(&self.dir)? {
            let item = item?;
            let name = item.file_name();
            let Some(seq) = name.to_str().and_then(seq_of) else {
                continue;
            };
            let Ok(meta) = item.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            out.push(Entry {
                seq,
                path: item.path(),
                bytes: meta.len(),
                written: meta.modified().unwrap_or_else(|_| SystemTime::now()),
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Writes a report durably; returns its entry. The caller then keeps the
    /// spool within its bounds with [`Spool::enforce_limits`].
    pub fn push(&self, report_id: &str, bytes: &[u8]) -> std::io::Result<Entry> {
        let seq = {
            let mut last = self.lock_seq();
            let seq = now_micros().max(last.saturating_add(1));
            *last = seq;
            seq
        };
        let path = self
            .dir
            .join(format!("{seq:020}-{}.json", safe_id(report_id)));
        write_durable(&path, bytes, 0o600)?;
        Ok(Entry {
            seq,
            written: fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or_else(|_| SystemTime::now()),
            path,
            bytes: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
        })
    }

    /// Drops the oldest reports until the spool is within its bounds; returns
    /// the names dropped (each logged by the caller) and counts them.
    pub fn enforce_limits(&self) -> std::io::Result<Vec<String>> {
        let entries = self.entries()?;
        let now = SystemTime::now();
        let mut count = u64::try_from(entries.len()).unwrap_or(u64::MAX);
        let mut bytes: u64 = entries.iter().map(|e| e.bytes).sum();
        let mut dropped = Vec::new();
        for e in entries {
            let too_old = now
                .duration_since(e.written)
                .is_ok_and(|age| age > self.limits.max_age);
            if !too_old && count <= self.limits.max_reports && bytes <= self.limits.max_bytes {
                break;
            }
            match fs::remove_file(&e.path) {
                Ok(()) => dropped.push(e.name()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
            count = count.saturating_sub(1);
            bytes = bytes.saturating_sub(e.bytes);
        }
        if !dropped.is_empty() {
            sync_dir(&self.dir)?;
            let n = self.dropped() + u64::try_from(dropped.len()).unwrap_or(u64::MAX);
            write_durable(&self.dir.join(DROPPED), format!("{n}\n").as_bytes(), 0o600)?;
        }
        Ok(dropped)
    }

    /// Reports dropped to keep within bounds, over the spool's life.
    pub fn dropped(&self) -> u64 {
        fs::read_to_string(self.dir.join(DROPPED))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Reads a spooled report; a file that is not JSON is moved to `quarantine/`.
    pub fn load(&self, entry: &Entry) -> std::io::Result<Loaded> {
        let bytes = match fs::read(&entry.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
            Err(e) => return Err(e),
        };
        if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() {
            return Ok(Loaded::Report(bytes));
        }
        let to = self.move_to(entry, "quarantine")?;
        Ok(Loaded::Quarantined(to))
    }

    /// Removes an acknowledged report (a missing file is fine).
    pub fn remove(&self, entry: &Entry) -> std::io::Result<()> {
        match fs::remove_file(&entry.path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Moves a report the reporter will never accept to `rejected/`.
    pub fn reject(&self, entry: &Entry) -> std::io::Result<PathBuf> {
        self.move_to(entry, "rejected")
    }

    fn move_to(&self, entry: &Entry, sub: &str) -> std::io::Result<PathBuf> {
        let dir = self.dir.join(sub);
        fs::create_dir_all(&dir)?;
        let to = dir.join(entry.name());
        fs::rename(&entry.path, &to)?;
        sync_dir(&dir)?;
        sync_dir(&self.dir)?;
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_reports: 100,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(3600),
        }
    }

    #[test]
    fn names_sort_in_creation_order_across_reopen() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path(), limits()).unwrap();
        let mut ids = Vec::new();
        for i in 0..50 {
            // ids that sort the other way round: order must come from the sequence
            let id = format!("{}", 999 - i);
            s.push(&id, b"{}").unwrap();
            ids.push(id);
        }
        drop(s);
        let s = Spool::open(d.path(), limits()).unwrap();
        s.push("last", b"{}").unwrap();
        ids.push("last".into());
        let names: Vec<String> = s.entries().unwrap().iter().map(Entry::name).collect();
        let got: Vec<String> = names
            .iter()
            .map(|n| n[21..n.len() - 5].to_owned())
            .collect();
        assert_eq!(got, ids);
        let seqs: Vec<u64> = s.entries().unwrap().iter().map(|e| e.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        assert!(names.iter().all(|n| n.len() == 20 + 1 + n[21..].len()));
    }

    #[test]
    fn writes_are_complete_files_and_temp_files_are_ignored() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path(), limits()).unwrap();
        let e = s.push("a/../b", br#"{"x":1}"#).unwrap();
        assert!(e.name().ends_with("-ab.json"), "{}", e.name());
        assert_eq!(fs::read(&e.path).unwrap(), br#"{"x":1}"#);
        // a crash between create and rename leaves a dot-file: never shipped
        fs::write(d.path().join(".00000000000000000001-x.json.tmp"), "{").unwrap();
        fs::write(d.path().join("notes.txt"), "x").unwrap();
        assert_eq!(s.entries().unwrap(), vec![e.clone()]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&e.path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let no_tmp = fs::read_dir(d.path())
            .unwrap()
            .filter(|f| {
                let n = f.as_ref().unwrap().file_name();
                n.to_string_lossy().ends_with("-ab.json.tmp")
            })
            .count();
        assert_eq!(no_tmp, 0);
    }

    #[test]
    fn bounds_drop_the_oldest_and_count_them() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Spool::open(d.path(), limits()).unwrap();
        s.set_limits(Limits {
            max_reports: 3,
            ..limits()
        });
        for i in 0..5 {
            s.push(&format!("r{i}"), b"{}").unwrap();
        }
        let dropped = s.enforce_limits().unwrap();
        assert_eq!(dropped.len(), 2);
        assert!(dropped[0].ends_with("-r0.json") && dropped[1].ends_with("-r1.json"));
        assert_eq!(s.dropped(), 2);
        let left: Vec<String> = s.entries().unwrap().iter().map(Entry::name).collect();
        assert!(left[0].ends_with("-r2.json") && left.len() == 3);

        // bytes: 10 bytes each, at most 25
        s.set_limits(Limits {
            max_bytes: 25,
            ..limits()
        });
        s.push("big", b"[1,2,3,4,5]").unwrap();
        let dropped = s.enforce_limits().unwrap();
        // 3*2 + 11 = 17 bytes: within bounds, nothing dropped
        assert!(dropped.is_empty());
        s.push("big2", b"[1,2,3,4,5]").unwrap();
        let dropped = s.enforce_limits().unwrap();
        assert_eq!(dropped.len(), 2, "{dropped:?}");
        assert_eq!(s.dropped(), 4);
    }

    #[test]
    fn old_reports_are_dropped() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path(), limits()).unwrap();
        // a report written two hours ago
        let old = 1u64;
        let path = d.path().join(format!("{old:020}-old.json"));
        fs::write(&path, "{}").unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        // a low sequence alone is not age
        fs::write(d.path().join(format!("{:020}-low.json", 2)), "{}").unwrap();
        s.push("new", b"{}").unwrap();
        let dropped = s.enforce_limits().unwrap();
        assert_eq!(dropped, vec![format!("{old:020}-old.json")]);
        assert_eq!(s.entries().unwrap().len(), 2);
        assert_eq!(s.dropped(), 1);
    }

    #[test]
    fn corrupt_files_are_quarantined_and_rejects_moved() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path(), limits()).unwrap();
        let bad = s.push("bad", b"{\"truncated\": ").unwrap();
        let good = s.push("good", b"{}").unwrap();
        match s.load(&bad).unwrap() {
            Loaded::Quarantined(p) => {
                assert_eq!(p, d.path().join("quarantine").join(bad.name()));
                assert!(p.is_file());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(s.load(&good).unwrap(), Loaded::Report(b) if b == b"{}"));
        assert!(matches!(s.load(&bad).unwrap(), Loaded::Missing));
        let r = s.reject(&good).unwrap();
        assert!(r.starts_with(d.path().join("rejected")));
        assert!(s.entries().unwrap().is_empty());
        s.remove(&good).unwrap();
    }

    #[test]
    fn sequence_parsing() {
        assert_eq!(seq_of("00000000000000000042-abc.json"), Some(42));
        assert_eq!(seq_of("0000000000000000042-abc.json"), None);
        assert_eq!(seq_of("00000000000000000042-.json"), None);
        assert_eq!(seq_of("00000000000000000042-abc.json.tmp"), None);
        assert_eq!(seq_of("dropped.count"), None);
    }
}
