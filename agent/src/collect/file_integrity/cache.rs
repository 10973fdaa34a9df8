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

    #[test]
    fn save_is_atomic_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/dpkg.cache");
        let recs = [b"/usr/bin/a", b"/usr/bin/b", b"/usr/bin/c"].map(|path| Rec {
            key: key(path, &[7; 16]),
            ident: [1; 8],
            outcome: Outcome::Matched,
        });
        let mut recs = recs.to_vec();
        sort(&mut recs);
        save(&p, 3, &recs).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!p.with_extension("tmp").exists());
        assert_eq!(decode(std::fs::File::open(&p).unwrap()).unwrap().len(), 3);
    }
}
