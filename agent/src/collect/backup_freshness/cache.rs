//! The listing cache of local restic repositories: what `restic snapshots`
//! and `restic ls` answered, kept in the state directory under a fingerprint
//! of everything their answer depends on, so that an unchanged repository is
//! not listed again (each restic start-up derives its key with scrypt:
//! ~0.4 s CPU and ~50 MB).
//!
//! The fingerprint, read without restic (see `docs/checks/backup_freshness.md`,
//! "Listing cache", for why each part is there):
//!
//! - `snapshots/`: restic stores each snapshot as a file named for the SHA-256
//!   of its content, so the names are the snapshot set; a new, deleted or
//!   rewritten (`tag`, `rewrite`) snapshot changes them. Size, mtime, ctime and
//!   inode are taken too, and the directory's own (a removal changes it).
//! - `keys/`: a key added, removed or changed (`restic key passwd`) can make
//!   the password wrong.
//! - `index/`: a `prune` or `repair index` rewrites it; a backup adds to it.
//! - `config`: its content (it is small) and metadata: a damaged or replaced
//!   repository.
//! - the password file's inode, size, mtime and ctime (never its content: a
//!   fast hash of the password kept in the state directory would let whoever
//!   reads it test guesses far faster than restic's scrypt allows; ctime cannot
//!   be set back by a program, so any write or replacement shows).
//! - the restic binary (path, size, mtime) and the `--host` filter.
//!
//! Not in it: `data/` (packs are content-addressed and only added or removed
//! with an index change; damage inside a pack is what the read-back,
//! `read_data_subset`, is for) and `locks/` (listings run with `--no-lock`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigil_rules::checks::backup_freshness::{BackupSet, PathPresence};

/// The cache file's format; another value is discarded.
const VERSION: u32 = 1;
/// `restic ls` answers kept per cache file (one per `required_paths` list
/// asked of the newest snapshot); the oldest go first.
const MAX_LS: usize = 8;

/// What the listing depends on, read without restic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// SHA-256 over every part, hex.
    pub hash: String,
    /// The newest ctime of the repository's parts: unchanged since then.
    pub unchanged_since: DateTime<Utc>,
}

/// The parts of a listing's key that are not in the repository.
pub struct Inputs<'a> {
    /// The repository's directory (under the check's root).
    pub repo: &'a Path,
    pub password_file: &'a Path,
    pub restic: &'a Path,
    /// restic's `--host` filter.
    pub host: Option<&'a str>,
}

fn ctime(md: &std::fs::Metadata) -> DateTime<Utc> {
    DateTime::from_timestamp(md.ctime(), u32::try_from(md.ctime_nsec()).unwrap_or(0))
        .unwrap_or_default()
}

fn feed(h: &mut Sha256, what: &str, name: &str, md: &std::fs::Metadata) {
    h.update(
        format!(
            "{what}\0{name}\0{}\0{}\0{}\0{}.{}\0{}.{}\n",
            md.dev(),
            md.ino(),
            md.len(),
            md.mtime(),
            md.mtime_nsec(),
            md.ctime(),
            md.ctime_nsec()
        )
        .as_bytes(),
    );
}

/// Reads the fingerprint; any error (a missing part, an unreadable directory)
/// means no cache: restic runs and reports what is wrong.
pub fn fingerprint(i: &Inputs) -> std::io::Result<Fingerprint> {
    let mut h = Sha256::new();
    h.update(format!("vigil restic listing v{VERSION}\0{:?}\n", i.host).as_bytes());
    let bin = std::fs::metadata(i.restic)?;
    feed(&mut h, "restic", &i.restic.display().to_string(), &bin);
    let pass = std::fs::metadata(i.password_file)?;
    feed(
        &mut h,
        "password_file",
        &i.password_file.display().to_string(),
        &pass,
    );
    h.update(format!("repo\0{}\n", i.repo.display()).as_bytes());

    let config = i.repo.join("config");
    let md = std::fs::symlink_metadata(&config)?;
    let mut newest = ctime(&md);
    feed(&mut h, "config", "", &md);
    h.update(Sha256::digest(std::fs::read(&config)?));
    for dir in ["keys", "snapshots", "index"] {
        let path = i.repo.join(dir);
        let md = std::fs::metadata(&path)?;
        newest = newest.max(ctime(&md));
        feed(&mut h, dir, "", &md);
        let mut entries = Vec::new();
        for e in std::fs::read_dir(&path)? {
            let e = e?;
            let md = e.metadata()?;
            entries.push((e.file_name().to_string_lossy().into_owned(), md));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, md) in &entries {
            newest = newest.max(ctime(md));
            feed(&mut h, dir, name, md);
        }
    }
    Ok(Fingerprint {
        hash: hex::encode(h.finalize()),
        unchanged_since: newest,
    })
}

/// One `restic ls` of a snapshot, reduced to what the judge needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LsEntry {
    pub snapshot: String,
    /// `required_paths` as asked, in order, and whether each was found.
    pub required: Vec<PathPresence>,
}

/// One cache file: the listing of one repository, password file and `--host`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub version: u32,
    pub fingerprint: String,
    /// When restic listed the repository.
    pub listed_at: DateTime<Utc>,
    pub sets: Vec<BackupSet>,
    #[serde(default)]
    pub ls: Vec<LsEntry>,
}

impl Entry {
    pub fn new(fingerprint: String, listed_at: DateTime<Utc>, sets: Vec<BackupSet>) -> Self {
        Entry {
            version: VERSION,
            fingerprint,
            listed_at,
            sets,
            ls: Vec::new(),
        }
    }

    /// The presence of `required` in `snapshot`, if that `ls` is cached.
    pub fn ls(&self, snapshot: &str, required: &[String]) -> Option<Vec<PathPresence>> {
        self.ls
            .iter()
            .find(|e| {
                e.snapshot == snapshot
                    && e.required.len() == required.len()
                    && e.required.iter().zip(required).all(|(p, r)| &p.path == r)
            })
            .map(|e| e.required.clone())
    }

    pub fn add_ls(&mut self, snapshot: &str, required: Vec<PathPresence>) {
        let paths: Vec<String> = required.iter().map(|p| p.path.clone()).collect();
        self.ls
            .retain(|e| !(e.snapshot == snapshot && e.required.iter().map(|p| &p.path).eq(&paths)));
        self.ls.push(LsEntry {
            snapshot: snapshot.to_owned(),
            required,
        });
        let excess = self.ls.len().saturating_sub(MAX_LS);
        self.ls.drain(..excess);
    }
}

/// The cache file of a repository (as restic is given it), password file and
/// `--host`; the name hashes them so no path needs escaping.
pub fn file(state_dir: &Path, repo: &str, password_file: &Path, host: Option<&str>) -> PathBuf {
    let key = hex::encode(Sha256::digest(
        format!("{repo}\0{}\0{host:?}", password_file.display()).as_bytes(),
    ));
    state_dir
        .join("backup_freshness")
        .join(format!("restic-{}.json", key.get(..32).unwrap_or(&key)))
}

/// Reads a cache file: `Ok(None)` when there is none, `Err` when it cannot
/// be read or is not a cache of this version (the caller discards it).
pub fn load(path: &Path) -> Result<Option<Entry>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(super::io_reason(&e)),
    };
    let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if entry.version != VERSION {
        return Err(format!("format version {}, not {VERSION}", entry.version));
    }
    Ok(Some(entry))
}

/// Writes a cache file atomically (a temporary file beside it, mode 0600,
/// renamed over it), so a reader sees the old or the new one whole.
pub fn save(path: &Path, entry: &Entry) -> Result<(), String> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| super::io_reason(&e))?;
    let bytes = serde_json::to_vec(entry).map_err(|e| e.to_string())?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".restic-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| super::io_reason(&e))?;
    tmp.write_all(&bytes).map_err(|e| super::io_reason(&e))?;
    tmp.persist(path).map_err(|e| super::io_reason(&e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Repo {
        dir: tempfile::TempDir,
    }

    impl Repo {
        fn new() -> Repo {
            let dir = tempfile::tempdir().unwrap();
            let r = dir.path().join("repo");
            for d in ["keys", "snapshots", "index", "data", "locks"] {
                std::fs::create_dir_all(r.join(d)).unwrap();
            }
            std::fs::write(r.join("config"), b"encrypted config").unwrap();
            std::fs::write(r.join("keys/k1"), b"key one").unwrap();
            std::fs::write(r.join("snapshots/aaaa"), b"snap a").unwrap();
            std::fs::write(r.join("index/i1"), b"index one").unwrap();
            std::fs::write(dir.path().join("pass"), b"secret\n").unwrap();
            std::fs::write(dir.path().join("restic"), b"#!/bin/sh\n").unwrap();
            Repo { dir }
        }
        fn p(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }
        fn fp(&self, host: Option<&str>) -> Fingerprint {
            let (repo, pass, bin) = (self.p("repo"), self.p("pass"), self.p("restic"));
            fingerprint(&Inputs {
                repo: &repo,
                password_file: &pass,
                restic: &bin,
                host,
            })
            .unwrap()
        }
    }

    #[test]
    fn fingerprint_is_stable_until_something_listed_changes() {
        let r = Repo::new();
        let first = r.fp(None);
        assert_eq!(first, r.fp(None));
        assert_ne!(first.hash, r.fp(Some("papyrs")).hash);
        // Locks and packs do not change what is listed.
        std::fs::write(r.p("repo/locks/l1"), b"lock").unwrap();
        std::fs::create_dir_all(r.p("repo/data/00")).unwrap();
        assert_eq!(first.hash, r.fp(None).hash);

        let mut seen = vec![first.hash.clone()];
        let mut changed = |what: &str| {
            let h = r.fp(None).hash;
            assert!(!seen.contains(&h), "{what} did not change the fingerprint");
            seen.push(h);
        };
        std::fs::write(r.p("repo/snapshots/bbbb"), b"snap b").unwrap();
        changed("a new snapshot");
        std::fs::remove_file(r.p("repo/snapshots/aaaa")).unwrap();
        changed("a deleted snapshot");
        std::fs::write(r.p("repo/keys/k1"), b"key 1 new").unwrap();
        changed("a changed key");
        std::fs::write(r.p("repo/index/i2"), b"index two").unwrap();
        changed("a new index");
        std::fs::write(r.p("repo/config"), b"other config!!!!").unwrap();
        changed("the config");
        std::fs::write(r.p("pass"), b"other\n").unwrap();
        changed("the password file");
    }

    #[test]
    fn ctime_bounds_unchanged_since() {
        let r = Repo::new();
        let before = Utc::now() - chrono::Duration::seconds(5);
        let fp = r.fp(None);
        assert!(fp.unchanged_since >= before && fp.unchanged_since <= Utc::now());
    }

    #[test]
    fn fingerprint_fails_on_a_missing_part() {
        let r = Repo::new();
        std::fs::remove_dir_all(r.p("repo/keys")).unwrap();
        let (repo, pass, bin) = (r.p("repo"), r.p("pass"), r.p("restic"));
        let i = Inputs {
            repo: &repo,
            password_file: &pass,
            restic: &bin,
            host: None,
        };
        assert!(fingerprint(&i).is_err());
        // Nor does a missing password file give a fingerprint.
        std::fs::create_dir_all(r.p("repo/keys")).unwrap();
        std::fs::remove_file(r.p("pass")).unwrap();
        assert!(fingerprint(&i).is_err());
    }

    #[test]
    fn saves_loads_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), "/srv/r", Path::new("/etc/p"), None);
        assert_ne!(f, file(dir.path(), "/srv/r", Path::new("/etc/q"), None));
        assert_ne!(
            f,
            file(dir.path(), "/srv/r", Path::new("/etc/p"), Some("h"))
        );
        assert_eq!(load(&f).unwrap(), None);
        let mut e = Entry::new(
            "ab".into(),
            Utc::now(),
            vec![BackupSet {
                id: "1234abcd".into(),
                time: Utc::now(),
                host: Some("papyrs".into()),
            }],
        );
        let req = vec!["/srv".to_owned(), "/var".to_owned()];
        let pres = vec![
            PathPresence {
                path: "/srv".into(),
                present: true,
            },
            PathPresence {
                path: "/var".into(),
                present: false,
            },
        ];
        e.add_ls("1234abcd", pres.clone());
        e.add_ls("1234abcd", pres.clone());
        assert_eq!(e.ls.len(), 1);
        save(&f, &e).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let back = load(&f).unwrap().unwrap();
        assert_eq!(back, e);
        assert_eq!(back.ls("1234abcd", &req), Some(pres));
        // Another snapshot or another list of paths is not cached.
        assert_eq!(back.ls("99999999", &req), None);
        assert_eq!(back.ls("1234abcd", &req[..1]), None);
        let reversed: Vec<String> = req.iter().rev().cloned().collect();
        assert_eq!(back.ls("1234abcd", &reversed), None);
        // No temporary file is left beside it.
        assert_eq!(std::fs::read_dir(f.parent().unwrap()).unwrap().count(), 1);

        std::fs::write(&f, b"{\"version\": 1, \"fingerp").unwrap();
        assert!(load(&f).is_err());
        std::fs::write(
            &f,
            serde_json::to_vec(&Entry {
                version: 0,
                ..e.clone()
            })
            .unwrap(),
        )
        .unwrap();
        assert!(load(&f).unwrap_err().contains("version 0"));
    }

    #[test]
    fn keeps_a_bounded_number_of_listings() {
        let mut e = Entry::new("x".into(), Utc::now(), vec![]);
        for i in 0..20 {
            e.add_ls(&format!("{i:08}"), vec![]);
        }
        assert_eq!(e.ls.len(), MAX_LS);
        assert!(e.ls("00000019", &[]).is_some());
        assert!(e.ls("00000000", &[]).is_none());
    }
}
