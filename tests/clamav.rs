//! `clamav` end to end against a real clamd (Debian `clamav-daemon`) that each
//! test starts with its own configuration and a database it writes: an `.hdb`
//! line for EICAR and an `.ndb` line for a made-up pattern.
//!
//! The EICAR string is put together at run time so that no file of this
//! repository is itself detected by a scanner.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use vigil_tests::{
    agent_check, check_of, codes, report_json, require_tool, single_check_policy, stdout,
};

fn eicar() -> String {
    [
        "X5O!P%@AP",
        "[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD",
        "-ANTIVIRUS-TEST",
        "-FILE!$H+H*",
    ]
    .concat()
}

/// The made-up pattern the `.ndb` signature matches.
fn test_pattern() -> String {
    ["vigil", "-clamav-test", "-pattern-", "7f3a"].concat()
}

const EICAR_HDB: &str = "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n";

/// A clamd started for one test; killed on drop, even when the test fails.
struct Clamd {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Clamd {
    fn start(eicar_signature: bool) -> Clamd {
        let clamd = require_tool("clamd", "clamav-daemon");
        let dir = tempfile::Builder::new()
            .prefix("clamav-test-")
            .tempdir()
            .unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir_all(&db).unwrap();
        if eicar_signature {
            std::fs::write(db.join("test.hdb"), EICAR_HDB).unwrap();
        }
        let hex: String = test_pattern().bytes().map(|b| format!("{b:02x}")).collect();
        std::fs::write(
            db.join("test.ndb"),
            format!("Vigil-Test-Pattern:0:*:{hex}\n"),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let conf = format!(
            "Foreground yes\nLocalSocket {d}/clamd.sock\nTCPSocket {port}\nTCPAddr 127.0.0.1\nDatabaseDirectory {d}/db\nTemporaryDirectory {d}\nPidFile {d}/clamd.pid\nLogFile {d}/clamd.log\nStreamMaxLength 1M\nSelfCheck 3600\n"
        );
        std::fs::write(dir.path().join("clamd.conf"), conf).unwrap();
        let child = Command::new(clamd)
            .arg("-c")
            .arg(dir.path().join("clamd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let me = Clamd { child, dir, port };
        me.wait_ready();
        me
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("clamd.sock")
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("db")
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(90) {
            if let Ok(mut s) = std::os::unix::net::UnixStream::connect(self.socket()) {
                let _ = s.write_all(b"zPING\0");
                let mut a = Vec::new();
                let _ = s.read_to_end(&mut a);
                if a.starts_with(b"PONG") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(self.dir.path().join("clamd.log")).unwrap_or_default();
        panic!("clamd did not answer PING within 90s; log:\n{log}");
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Control SP-7 holding the clamav check `scanner`, written in `dir`.
fn policy(dir: &Path, with: &str) -> String {
    single_check_policy("SP-7", "scanner", "clamav", with)
        .timeout("5m")
        .write(&dir.join("policy.yaml"))
}

/// `with` of a check scanning `tree` through clamd's unix socket.
fn scan_over_socket(clamd: &Clamd, tree: &Path) -> String {
    format!(
        "          address: unix:{}\n          database_directory: {}\n          scan_paths: [{}]\n",
        clamd.socket().display(),
        clamd.db().display(),
        tree.display()
    )
}

fn check(policy: &str, state: &Path) -> (serde_json::Value, String) {
    let o = agent_check(policy).state_dir(state).output();
    let r = report_json(&o);
    (check_of(&r, "SP-7", "scanner").clone(), stdout(&o))
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn set_mtime(dir: &Path, age: Duration) {
    let t = SystemTime::now() - age;
    for e in std::fs::read_dir(dir).unwrap() {
        let f = std::fs::File::options()
            .write(true)
            .open(e.unwrap().path())
            .unwrap();
        f.set_modified(t).unwrap();
    }
}

#[test]
fn clean_tree_is_scanned_once_then_skipped_and_stale_signatures_fail() {
    let clamd = Clamd::start(true);
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    write(&tree.join("index.html"), b"<html>hello</html>\n");
    write(&tree.join("a/b/app.js"), b"console.log('ok');\n");
    write(&tree.join("a/readme.txt"), b"nothing to see\n");
    let state = tmp.path().join("state");
    let p = policy(tmp.path(), &scan_over_socket(&clamd, &tree));

    let (c, _) = check(&p, &state);
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(codes(&c), ["custom_database_only"]);
    let ev = &c["evidence"];
    assert_eq!(ev["self_test"]["outcome"], "detected");
    assert_eq!(ev["self_test"]["detail"], "Eicar-Test-Signature.UNOFFICIAL");
    assert_eq!(ev["database_date_source"], "database_files");
    assert!(ev["database_version"].is_null());
    assert_eq!(ev["scan"]["files_seen"], 3);
    assert_eq!(ev["scan"]["files_scanned"], 3);
    assert_eq!(ev["scan"]["files_skipped_unchanged"], 0);

    // A second run (a new process: the cache is on disk) skips unchanged files.
    let (c, _) = check(&p, &state);
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(c["evidence"]["scan"]["files_scanned"], 0);
    assert_eq!(c["evidence"]["scan"]["files_skipped_unchanged"], 3);

    // An edited file is scanned again, the others are not.
    write(&tree.join("a/b/app.js"), b"console.log('changed');\n");
    let (c, _) = check(&p, &state);
    assert_eq!(c["evidence"]["scan"]["files_scanned"], 1);
    assert_eq!(c["evidence"]["scan"]["files_skipped_unchanged"], 2);

    // Stale signatures: database files from 100 hours ago, 48 allowed. New
    // signatures (other file times) also invalidate the scan cache.
    set_mtime(&clamd.db(), Duration::from_secs(100 * 3600));
    let (c, _) = check(&p, &state);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(codes(&c), ["custom_database_only", "signatures_stale"]);
    assert!(c["findings"][1]["message"]
        .as_str()
        .unwrap()
        .starts_with("signatures are 100 hours old"));
    assert_eq!(c["evidence"]["scan"]["files_scanned"], 3);
    let p2 = policy(
        tmp.path(),
        &format!(
            "          address: unix:{}\n          database_directory: {}\n          max_signature_age_hours: 200\n",
            clamd.socket().display(),
            clamd.db().display(),
        ),
    );
    let (c, _) = check(&p2, &state);
    assert_eq!(c["status"], "pass", "{c}");
}

#[test]
fn a_rewrite_that_restores_the_mtime_is_scanned_again_and_files_stream_in_chunks() {
    let clamd = Clamd::start(true);
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    // 900 KB: four INSTREAM chunks, under the test clamd's 1M stream limit
    let mut big = vec![b'a'; 900 * 1024];
    write(&tree.join("big.bin"), &big);
    write(&tree.join("page.html"), b"<p>fine</p>\n");
    let state = tmp.path().join("state");
    let p = policy(tmp.path(), &scan_over_socket(&clamd, &tree));
    let (c, _) = check(&p, &state);
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(c["evidence"]["scan"]["files_scanned"], 2);
    assert_eq!(c["evidence"]["scan"]["bytes_scanned"], 900 * 1024 + 12);

    // The same size and the old mtime, new content: the pattern at the very
    // end of the big file (its last chunk) and in the page. ctime moved, so
    // both are read and scanned again, not taken from the cache.
    let old_mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let (big_t, page_t) = (
        old_mtime(&tree.join("big.bin")),
        old_mtime(&tree.join("page.html")),
    );
    let pat = test_pattern();
    let at = big.len() - pat.len() - 1;
    big[at..at + pat.len()].copy_from_slice(pat.as_bytes());
    std::thread::sleep(Duration::from_millis(20));
    write(&tree.join("big.bin"), &big);
    write(&tree.join("page.html"), format!("{pat}\n").as_bytes());
    for (f, t) in [("big.bin", big_t), ("page.html", page_t)] {
        let file = std::fs::File::options()
            .write(true)
            .open(tree.join(f))
            .unwrap();
        file.set_modified(t).unwrap();
        assert_eq!(old_mtime(&tree.join(f)), t);
    }
    let (c, _) = check(&p, &state);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["evidence"]["scan"]["files_scanned"], 2, "{c}");
    assert_eq!(c["evidence"]["scan"]["files_skipped_unchanged"], 0);
    assert_eq!(c["evidence"]["scan"]["infected"], 2, "{c}");
    let infected: Vec<&str> = c["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "infected_file")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(infected.len(), 2, "{c}");
    assert!(infected.iter().any(|m| m.contains("/big.bin`")), "{c}");
    assert!(infected.iter().any(|m| m.contains("/page.html`")), "{c}");
}

#[test]
fn infections_deep_in_a_tree_and_inside_a_zip_over_tcp() {
    let clamd = Clamd::start(true);
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("uploads");
    write(&tree.join("ok.txt"), b"fine\n");
    write(
        &tree.join("2026/11/25/user-17/deep/payload.bin"),
        eicar().as_bytes(),
    );
    write(
        &tree.join("2026/11/24/notes.txt"),
        format!("before {} after\n", test_pattern()).as_bytes(),
    );
    // a zip holding EICAR, made with python3's zipfile
    let zip = tree.join("archive.zip");
    let mut py = Command::new(require_tool("python3", "python3"))
        .arg("-c")
        .arg("import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)\nz.writestr('docs/inner.txt', sys.stdin.read())\nz.close()")
        .arg(&zip)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin
        .take()
        .unwrap()
        .write_all(eicar().as_bytes())
        .unwrap();
    assert!(py.wait().unwrap().success());
    // over clamd's StreamMaxLength (1M): an ERROR answer, not an infection
    write(&tree.join("big.iso"), &vec![b'a'; 2 * 1024 * 1024]);

    let state = tmp.path().join("state");
    let p = policy(
        tmp.path(),
        &format!(
            "          address: tcp://127.0.0.1:{}\n          database_directory: {}\n          scan_paths: [{}, {}]\n",
            clamd.port,
            clamd.db().display(),
            tree.display(),
            tmp.path().join("not-there").display(),
        ),
    );
    let (c, raw) = check(&p, &state);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(
        codes(&c),
        [
            "custom_database_only",
            "infected_file",
            "infected_file",
            "infected_file",
            "scan_error",
            "scan_path_missing"
        ]
    );
    let t = tree.display();
    let subjects: Vec<String> = c["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["subject"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(subjects[1], format!("{t}/2026/11/24/notes.txt"));
    assert_eq!(
        subjects[2],
        format!("{t}/2026/11/25/user-17/deep/payload.bin")
    );
    assert_eq!(subjects[3], format!("{t}/archive.zip"));
    assert_eq!(subjects[4], format!("{t}/big.iso"));
    let msgs: Vec<&str> = c["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(
        msgs[1].ends_with("infected: Vigil-Test-Pattern.UNOFFICIAL"),
        "{}",
        msgs[1]
    );
    assert!(
        msgs[2].ends_with("infected: Eicar-Test-Signature.UNOFFICIAL"),
        "{}",
        msgs[2]
    );
    assert!(
        msgs[3].ends_with("infected: Eicar-Test-Signature.UNOFFICIAL"),
        "{}",
        msgs[3]
    );
    assert!(
        msgs[4].contains("size limit exceeded") || msgs[4].contains("StreamMaxLength"),
        "{}",
        msgs[4]
    );
    // neither the test string nor file contents reach the report
    assert!(!raw.contains("EICAR-STANDARD"));
    assert!(!raw.contains(&test_pattern()));
    assert!(!raw.contains("before "));

    // Infected files are never cached as clean: a second run reports them again.
    let (c, _) = check(&p, &state);
    assert_eq!(c["status"], "fail");
    assert_eq!(c["evidence"]["scan"]["files_skipped_unchanged"], 1);
    assert_eq!(c["evidence"]["scan"]["infected"], 3);
}

#[test]
fn clamd_that_does_not_detect_eicar_fails_loudly() {
    let clamd = Clamd::start(false);
    let tmp = tempfile::tempdir().unwrap();
    let p = policy(
        tmp.path(),
        &format!(
            "          address: unix:{}\n          database_directory: {}\n",
            clamd.socket().display(),
            clamd.db().display()
        ),
    );
    let (c, _) = check(&p, &tmp.path().join("state"));
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(
        codes(&c),
        ["custom_database_only", "self_test_not_detected"]
    );
    assert_eq!(c["findings"][1]["severity"], "critical");
}

#[test]
fn clamd_down_is_an_error_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("clamd.sock");
    let p = policy(
        tmp.path(),
        &format!("          address: unix:{}\n", sock.display()),
    );
    let (c, _) = check(&p, &tmp.path().join("state"));
    assert_eq!(c["status"], "error", "{c}");
    let s = c["summary"].as_str().unwrap();
    assert!(
        s.starts_with(&format!(
            "clamd at `unix:{}` is down: PING: ",
            sock.display()
        )),
        "{s}"
    );
    assert!(s.contains("no such file or directory"), "{s}");

    // A TCP port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = policy(
        tmp.path(),
        &format!("          address: tcp://127.0.0.1:{port}\n"),
    );
    let (c, _) = check(&p, &tmp.path().join("state"));
    assert_eq!(c["status"], "error", "{c}");
    assert!(c["summary"]
        .as_str()
        .unwrap()
        .contains("connection refused"));
}
