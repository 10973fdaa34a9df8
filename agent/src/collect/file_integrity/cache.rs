//! The verification cache of `dpkg_verify` on disk: its format, decoding
//! and encoding are pure and live in rules
//! ([`vigil_rules::checks::file_integrity::cache`]); the agent reads the file
//! from its state directory and writes it back here.

use std::path::Path;

pub use vigil_rules::checks::file_integrity::cache::{
    decode, encode, key, last_full_pass, sort, Cache, Outcome, Rec, Unusable, VERSION,
};

/// Writes the cache file atomically: a private temporary file beside it,
/// synced, then renamed over it.
pub fn save(path: &Path, last_full_pass: i64, recs: &[Rec]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let written = encode(&f, last_full_pass, recs)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(n: u8) -> Vec<Rec> {
        let mut v: Vec<Rec> = (0..n)
            .map(|i| Rec {
                key: key(format!("/usr/bin/f{i}").as_bytes(), &[i; 16]),
                ident: [i; 8],
                outcome: Outcome::Matched,
            })
            .collect();
        sort(&mut v);
        v
    }

    #[test]
    fn save_is_atomic_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/dpkg.cache");
        save(&p, 3, &recs(3)).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!p.with_extension("tmp").exists());
        assert_eq!(decode(std::fs::File::open(&p).unwrap()).unwrap().len(), 3);
    }
}
