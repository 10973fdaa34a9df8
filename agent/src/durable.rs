//! Files written whole or not at all, never through a planted symlink: the
//! spool's reports, the enrollment token, the last good policy.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Makes a directory's entries (a rename, a removal) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `O_NOFOLLOW` for [`OpenOptionsExt::custom_flags`](std::os::unix::fs::OpenOptionsExt).
pub fn o_nofollow() -> i32 {
    i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0)
}

/// Creates `tmp` for writing, exclusively (`O_CREAT | O_EXCL | O_NOFOLLOW`)
/// with `mode`: a symlink planted at that name is never followed, so the
/// root agent cannot be made to overwrite another file. A leftover of a
/// crash (or a planted link) is unlinked (unlinking a symlink removes the
/// link, not its target) and creation tried once more; if something is
/// planted again in between, creation fails.
pub fn create_exclusive(tmp: &Path, mode: u32) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(o_nofollow())
            .open(tmp)
    };
    match open() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            fs::remove_file(tmp)?;
            open()
        }
        r => r,
    }
}

/// Writes `bytes` to `path` atomically: temp file (created exclusively, see
/// [`create_exclusive`]), fsync, rename, fsync of the directory.
pub fn write_durable(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut created = false;
    let written = (|| {
        let mut f = create_exclusive(&tmp, mode)?;
        created = true;
        // the umask may have narrowed the mode: set it
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // a full disk must not also leave half-written temp files behind
        // (only our own: a name we could not create is not ours to remove)
        if created {
            let _ = fs::remove_file(&tmp);
        }
        return Err(e);
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        // renaming over a non-empty directory fails after the temp file is written
        let target = d.path().join("busy");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), b"x").unwrap();
        assert!(write_durable(&target, b"report", 0o600).is_err());
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from("busy")]);
    }

    /// Regression (issue 19, item 14): the temp file was opened with
    /// `O_CREAT | O_TRUNC` and no `O_NOFOLLOW`, so a symlink planted at
    /// `.NAME.tmp` made the root agent truncate and overwrite its target
    /// (any file: `/etc/shadow`), and `set_permissions` chmod it.
    #[test]
    fn a_planted_temp_symlink_never_writes_through() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        // the token file (enroll), a spool report, the dropped counter
        let token = d.path().join("token");
        std::os::unix::fs::symlink(&victim, d.path().join(".token.tmp")).unwrap();
        write_durable(&token, b"tok\n", 0o600).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(
            fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(fs::read(&token).unwrap(), b"tok\n");
        assert!(!fs::symlink_metadata(&token).unwrap().is_symlink());
        // a dangling link (O_CREAT alone would create its target)
        let created = d.path().join("created-elsewhere");
        std::os::unix::fs::symlink(&created, d.path().join(".x.json.tmp")).unwrap();
        write_durable(&d.path().join("x.json"), b"{}", 0o600).unwrap();
        assert!(!created.exists());
        // the low-level creation itself refuses to follow
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = OpenOptions::new()
            .write(true)
            .custom_flags_nofollow()
            .open(&link)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(40), "ELOOP: {e}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    trait NoFollow {
        fn custom_flags_nofollow(&mut self) -> &mut Self;
    }
    impl NoFollow for OpenOptions {
        fn custom_flags_nofollow(&mut self) -> &mut Self {
            std::os::unix::fs::OpenOptionsExt::custom_flags(self, o_nofollow())
        }
    }
}
