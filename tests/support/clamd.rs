//! A real clamd with a test signature database.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::machine::{require_tool, wait_until};

/// A clamd on a unix socket with a database of two test signatures
/// (EICAR's digest and a made-up pattern); killed on drop.
pub struct Clamd {
    child: Child,
    dir: PathBuf,
}

impl Clamd {
    /// Starts clamd with its files in `dir` and waits until it answers.
    pub fn start(dir: &Path) -> Clamd {
        let clamd = require_tool("clamd", "clamav-daemon");
        let db = dir.join("db");
        std::fs::create_dir_all(&db).unwrap();
        // EICAR's MD5 and size (the self test scans EICAR), and a made-up
        // pattern; no file of this repository holds EICAR itself.
        std::fs::write(
            db.join("test.hdb"),
            "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n",
        )
        .unwrap();
        let hex: String = "vigil-fleet-test-pattern"
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(db.join("test.ndb"), format!("Vigil-Fleet-Test:0:*:{hex}\n")).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("clamd.conf"),
            format!("Foreground yes\nLocalSocket {d}/clamd.sock\nDatabaseDirectory {d}/db\nTemporaryDirectory {d}\nPidFile {d}/clamd.pid\nLogFile {d}/clamd.log\nStreamMaxLength 1M\nSelfCheck 3600\n"),
        )
        .unwrap();
        let child = Command::new(clamd)
            .arg("-c")
            .arg(dir.join("clamd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let me = Clamd {
            child,
            dir: dir.to_owned(),
        };
        let sock = me.socket();
        wait_until(90, "clamd to answer PING", || {
            use std::io::{Read, Write};
            let Ok(mut s) = std::os::unix::net::UnixStream::connect(&sock) else {
                return false;
            };
            let _ = s.write_all(b"zPING\0");
            let mut a = Vec::new();
            let _ = s.read_to_end(&mut a);
            a.starts_with(b"PONG")
        });
        me
    }

    /// Its signature database directory.
    pub fn database(&self) -> PathBuf {
        self.dir.join("db")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("clamd.sock")
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
