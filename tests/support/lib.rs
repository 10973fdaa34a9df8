//! Helpers for the end-to-end tests: the built binaries, fixture hosts, and
//! the real services a test needs (with a clear message when one is missing).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn target_dir() -> PathBuf {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        let t = PathBuf::from(t);
        return if t.is_absolute() {
            t
        } else {
            workspace().join(t)
        };
    }
    // The test executable lives in target/<profile>/deps/.
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| workspace().join("target"))
}

fn profile() -> &'static str {
    let exe = std::env::current_exe().unwrap_or_default();
    if exe.components().any(|c| c.as_os_str() == "release") {
        "release"
    } else {
        "debug"
    }
}

/// Builds (once per test process) and returns the path of a workspace binary.
pub fn binary(package: &str, name: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut done = built.lock().unwrap_or_else(|e| e.into_inner());
    if !done.iter().any(|n| n == name) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        // The whole workspace with its tests: the same feature selection as
        // `cargo test --workspace`, so nothing is rebuilt with other features
        // on every run (it is a no-op there). `package` names what we need.
        let _ = package;
        // Variables cargo set for this test process make build scripts (ring's)
        // rerun and rebuild half the tree; the nested build must not see them.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("CARGO_") && !matches!(k.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR") {
                cmd.env_remove(&k);
            }
        }
        cmd.current_dir(workspace())
            .args(["build", "--quiet", "--workspace", "--bins", "--tests"]);
        if profile() == "release" {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build {name}: {e}"));
        assert!(status.success(), "building {name} failed");
        done.push(name.to_owned());
    }
    target_dir().join(profile()).join(name)
}

pub fn agent() -> PathBuf {
    binary("vigil-agent", "vigil-agent")
}

/// Runs the agent with arguments; returns its output.
pub fn run_agent(args: &[&str]) -> Output {
    Command::new(agent())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run vigil-agent: {e}"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails with an install hint when a tool the test needs is missing.
pub fn require_tool(tool: &str, debian_package: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/bin",
        "/usr/local/sbin",
    ] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!("this test needs `{tool}`: install it with `apt-get install {debian_package}` (.ci/run does)");
}

/// A fixture host: a temporary root directory laid out by the test.
pub struct FixtureHost {
    pub dir: tempfile::TempDir,
}

impl FixtureHost {
    pub fn new() -> Self {
        FixtureHost {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` at the host path `path` (absolute, as on the host).
    pub fn write(&self, path: &str, text: &str) -> PathBuf {
        let full = self.root().join(path.trim_start_matches('/'));
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        std::fs::write(&full, text).unwrap_or_else(|e| panic!("write {}: {e}", full.display()));
        full
    }

    /// Copies a scenario folder (`tests/data/<case>/root`) into this root.
    pub fn copy_tree(&self, from: &Path) {
        copy_dir(from, self.root());
    }
}

impl Default for FixtureHost {
    fn default() -> Self {
        Self::new()
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
    {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// Parses a JSON report and returns it.
pub fn report_json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "report is not JSON ({e}): {}\nstderr: {}",
            stdout(o),
            stderr(o)
        )
    })
}

/// The status of check `check` of control `control` in a JSON report.
pub fn check_of<'a>(
    report: &'a serde_json::Value,
    control: &str,
    check: &str,
) -> &'a serde_json::Value {
    report["controls"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == control))
        .and_then(|c| c["checks"].as_array()?.iter().find(|k| k["id"] == check))
        .unwrap_or_else(|| panic!("no check {control}/{check} in {report}"))
}

/// Finding codes of a check, in order.
pub fn codes(check: &serde_json::Value) -> Vec<String> {
    check["findings"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .filter_map(|f| f["code"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    l.local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A running `vigil-reporter serve`, killed on drop.
pub struct Reporter {
    pub child: std::process::Child,
    pub port: u16,
    pub data: PathBuf,
    pub tls: bool,
    pub base: String,
    pub secret: String,
    pub database: Option<String>,
    extra_args: Vec<String>,
}

pub const ENROLL_SECRET: &str = "test-enroll-secret-0123456789";

impl Reporter {
    /// Starts a reporter with plain HTTP (`tls == false`) or its self-signed TLS.
    pub fn start(data: &Path, tls: bool, database: Option<&str>, extra_args: &[&str]) -> Reporter {
        let port = free_port();
        let mut r = Reporter {
            child: Self::spawn(data, port, tls, database, extra_args),
            port,
            data: data.to_owned(),
            tls,
            base: format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" }),
            secret: ENROLL_SECRET.into(),
            database: database.map(String::from),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        r.wait_ready();
        r
    }

    fn spawn(
        data: &Path,
        port: u16,
        tls: bool,
        database: Option<&str>,
        extra: &[impl AsRef<str>],
    ) -> std::process::Child {
        let mut cmd = Command::new(binary("vigil-reporter", "vigil-reporter"));
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data);
        if !tls {
            cmd.arg("--plain-http");
        }
        for a in extra {
            cmd.arg(a.as_ref());
        }
        cmd.env("VIGIL_ENROLL_SECRET", ENROLL_SECRET)
            .env("VIGIL_LOG", "warn");
        match database {
            Some(url) => cmd.env("VIGIL_DATABASE_URL", url),
            None => cmd.env_remove("VIGIL_DATABASE_URL"),
        };
        cmd.stdout(std::process::Stdio::null());
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start vigil-reporter: {e}"))
    }

    pub fn client(&self) -> reqwest::blocking::Client {
        let mut b =
            reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(20));
        if self.tls {
            let pem = std::fs::read(self.data.join("tls/cert.pem"))
                .unwrap_or_else(|e| panic!("reporter cert: {e}"));
            let cert = reqwest::Certificate::from_pem(&pem).unwrap_or_else(|e| panic!("{e}"));
            b = b.add_root_certificate(cert);
        }
        b.build().unwrap_or_else(|e| panic!("client: {e}"))
    }

    pub fn wait_ready(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("vigil-reporter exited early: {status}");
            }
            // The client needs the certificate, which exists once the server wrote it.
            let ready = (!self.tls || self.data.join("tls/cert.pem").exists())
                && self
                    .client()
                    .get(format!("{}/healthz", self.base))
                    .send()
                    .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "vigil-reporter did not become ready on port {}",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// `kill -9`, as a crash would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts again on the same port and data.
    pub fn restart(&mut self) {
        self.kill9();
        self.child = Self::spawn(
            &self.data,
            self.port,
            self.tls,
            self.database.as_deref(),
            &self.extra_args,
        );
        self.wait_ready();
    }

    /// Adds a staff user and returns their token.
    /// `GET path` with a bearer token: the status and the JSON body (null
    /// when the body is not JSON).
    pub fn get_json(&self, token: &str, path: &str) -> (u16, serde_json::Value) {
        let resp = self
            .client()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(serde_json::Value::Null))
    }

    /// The newest stored report of `host`, whole (`None` while there is none).
    pub fn newest_report(&self, staff: &str, host: &str) -> Option<serde_json::Value> {
        let (_, list) = self.get_json(staff, &format!("/api/v1/reports?host={host}&limit=1"));
        let id = list["reports"][0]["report_id"].as_str()?;
        let (s, report) = self.get_json(staff, &format!("/api/v1/reports/{id}"));
        (s == 200).then_some(report)
    }

    pub fn add_user(&self, name: &str, role: &str) -> String {
        let mut cmd = Command::new(binary("vigil-reporter", "vigil-reporter"));
        cmd.args(["user", "add", name, "--role", role, "--data"])
            .arg(&self.data);
        if let Some(url) = &self.database {
            cmd.env("VIGIL_DATABASE_URL", url);
        }
        let o = cmd.output().unwrap_or_else(|e| panic!("user add: {e}"));
        assert!(
            o.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    /// Enrolls `host` and returns its token.
    pub fn enroll(&self, host: &str, interval_secs: u64) -> String {
        self.enroll_with_roles(host, interval_secs, &[])
    }

    /// Enrolls `host` with roles and returns its token.
    pub fn enroll_with_roles(&self, host: &str, interval_secs: u64, roles: &[&str]) -> String {
        let r = self
            .client()
            .post(format!("{}/api/v1/enroll", self.base))
            .json(&serde_json::json!({"secret": self.secret, "host": host, "interval_secs": interval_secs, "roles": roles}))
            .send()
            .unwrap_or_else(|e| panic!("enroll: {e}"));
        assert_eq!(r.status().as_u16(), 201);
        let v: serde_json::Value = r.json().unwrap_or_else(|e| panic!("{e}"));
        let token = v["token"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| panic!("no token in {v}"));
        if !roles.is_empty() {
            self.approve_roles(host);
        }
        token
    }

    /// Trusts `host`'s agent with the roles it requested, as an admin would
    /// (`vigil-reporter agent approve HOST`): requested roles count only once
    /// approved (issue 19, item 1).
    pub fn approve_roles(&self, host: &str) {
        let mut cmd = Command::new(binary("vigil-reporter", "vigil-reporter"));
        cmd.args(["agent", "approve", host, "--by", "test", "--data"])
            .arg(&self.data);
        if let Some(url) = &self.database {
            cmd.env("VIGIL_DATABASE_URL", url);
        }
        let o = cmd
            .output()
            .unwrap_or_else(|e| panic!("agent approve: {e}"));
        assert!(
            o.status.success(),
            "agent approve {host} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway PostgreSQL cluster on a free loopback port, run as the
/// `postgres` user, stopped on drop.
pub struct PgCluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
}

impl PgCluster {
    pub fn start() -> PgCluster {
        let bin = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.join("initdb").exists())
            .unwrap_or_else(|| panic!("this test needs PostgreSQL's server binaries: apt-get install postgresql (.ci/run does)"));
        let dir = tempfile::Builder::new()
            .prefix("vigil-pg")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        let run_as_postgres = |args: &[&str]| {
            let o = Command::new("runuser")
                .arg("-u")
                .arg("postgres")
                .arg("--")
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("runuser: {e}"));
            assert!(
                o.status.success(),
                "{args:?} failed: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        };
        let st = Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(st.success());
        let data = dir.path().join("data");
        let initdb = bin.join("initdb");
        run_as_postgres(&[
            initdb.to_str().unwrap_or_default(),
            "-D",
            data.to_str().unwrap_or_default(),
            "--auth=trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        let port = free_port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.path().display()
        );
        let pg_ctl = bin.join("pg_ctl");
        let log = dir.path().join("log");
        run_as_postgres(&[
            pg_ctl.to_str().unwrap_or_default(),
            "-D",
            data.to_str().unwrap_or_default(),
            "-l",
            log.to_str().unwrap_or_default(),
            "-o",
            &opts,
            "-w",
            "start",
        ]);
        PgCluster { dir, port, bin }
    }

    /// Creates a database and returns its URL.
    pub fn database(&self, name: &str) -> String {
        let psql = "/usr/bin/psql";
        let o = Command::new(psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-c",
                &format!("CREATE DATABASE {name}"),
            ])
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(
            o.status.success(),
            "create database: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D"])
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// Polls `cond` until it holds or `secs` pass.
pub fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One `vigil-agent run` with its own config, token, spool and state directory.
pub struct DaemonAgent {
    pub host: String,
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    roles: Vec<String>,
    policy: PathBuf,
}

impl DaemonAgent {
    /// An `app` host running tests/data/daemon/policy.yaml.
    pub fn new(host: &str, server: &str, extra: &str) -> DaemonAgent {
        Self::with_policy(
            host,
            server,
            &["app"],
            &workspace().join("tests/data/daemon/policy.yaml"),
            extra,
        )
    }

    /// A host with `roles` running the local policy `policy` (when the reporter hands out none).
    pub fn with_policy(
        host: &str,
        server: &str,
        roles: &[&str],
        policy: &Path,
        extra: &str,
    ) -> DaemonAgent {
        let dir = tempfile::Builder::new()
            .prefix("vigil-daemon-test-")
            .tempdir()
            .unwrap();
        let a = DaemonAgent {
            host: host.into(),
            dir,
            child: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            policy: policy.to_owned(),
        };
        a.write_config(server, extra);
        a
    }

    pub fn write_config(&self, server: &str, extra: &str) {
        let d = self.dir.path();
        let text = format!(
            "server: {server}\nhost: {}\nroles: [{}]\ntoken_file: {}\npolicy: {}\nspool: {}\nstate_dir: {}\ninterval: 1s\n{extra}",
            self.host,
            self.roles.join(", "),
            d.join("state/token").display(),
            self.policy.display(),
            d.join("state/spool").display(),
            d.join("state/checks").display(),
        );
        std::fs::write(self.config(), text).unwrap();
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("agent.yaml")
    }

    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("state/spool")
    }

    pub fn token_file(&self) -> PathBuf {
        self.dir.path().join("state/token")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    pub fn enroll(&self, secret: &str) -> std::process::Output {
        Command::new(agent())
            .args(["enroll", "--config"])
            .arg(self.config())
            .env("VIGIL_ENROLL_SECRET", secret)
            .output()
            .unwrap()
    }

    pub fn start(&mut self, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut cmd = Command::new(agent());
        cmd.args(["run", "--config"])
            .arg(self.config())
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().unwrap());
    }

    pub fn signal(&self, sig: &str) {
        let kill = require_tool("kill", "procps");
        let pid = self.child.as_ref().unwrap().id().to_string();
        let ok = Command::new(kill)
            .args([&format!("-{sig}"), &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGTERM; returns the exit code.
    pub fn stop(&mut self) -> i32 {
        self.signal("TERM");
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{} did not stop on SIGTERM:\n{}", self.host, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Ids of the reports this agent spooled, from its log.
    pub fn spooled_ids(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("report spooled"))
            .filter_map(|l| {
                let rest = l.split("report_id=").nth(1)?;
                Some(rest.split_whitespace().next()?.to_owned())
            })
            .collect()
    }

    pub fn spool_len(&self) -> usize {
        std::fs::read_dir(self.spool())
            .map(|d| {
                d.filter(|e| {
                    let e = e.as_ref().unwrap();
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.ends_with(".json") && !n.starts_with('.') && e.path().is_file()
                })
                .count()
            })
            .unwrap_or(0)
    }
}

impl Drop for DaemonAgent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A restic repository the test drives with the real `restic` (Debian's
/// `restic`): no cache, times in UTC, every command checked.
pub struct Restic {
    pub bin: PathBuf,
    pub repo: PathBuf,
    pub pass: PathBuf,
    /// Where relative paths given to `backup` are read from (default: the
    /// test's working directory).
    pub cwd: Option<PathBuf>,
}

impl Restic {
    /// `repo` with the password in the file `pass`; fails with an install
    /// hint when restic is missing.
    pub fn new(repo: &Path, pass: &Path) -> Restic {
        Restic {
            bin: require_tool("restic", "restic"),
            repo: repo.to_owned(),
            pass: pass.to_owned(),
            cwd: None,
        }
    }

    /// Runs `restic ARGS` on the repository, whatever its outcome.
    pub fn output(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-r")
            .arg(&self.repo)
            .arg("--password-file")
            .arg(&self.pass)
            .arg("--no-cache")
            .args(args)
            .env_remove("RESTIC_REPOSITORY")
            .env_remove("RESTIC_PASSWORD_FILE")
            .env("TZ", "UTC");
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run restic: {e}"))
    }

    /// Runs `restic ARGS`, which must succeed, and returns its stdout.
    pub fn cmd(&self, args: &[&str]) -> String {
        let o = self.output(args);
        assert!(
            o.status.success(),
            "restic {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// A read-only command; `None` while another process (the agent) holds
    /// the repository's lock.
    pub fn read(&self, args: &[&str]) -> Option<String> {
        let o = self.output(args);
        if !o.status.success() && stderr(&o).contains("locked") {
            return None;
        }
        assert!(o.status.success(), "restic {args:?}: {}", stderr(&o));
        Some(stdout(&o))
    }

    /// Paths of every snapshot's tree, all snapshots together. Read with
    /// `--no-lock`: a test polling the repository must not hold the shared
    /// lock an agent's `rewrite` or `prune` needs exclusively.
    pub fn all_paths(&self) -> String {
        for _ in 0..600 {
            let Some(snaps) = self.read(&["--no-lock", "snapshots", "--json"]) else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            let snaps: serde_json::Value = serde_json::from_str(&snaps).unwrap();
            let mut out = String::new();
            let mut complete = true;
            for s in snaps.as_array().unwrap() {
                // A snapshot listed a moment ago may be gone: an agent's
                // `rewrite --forget` replaced it meanwhile. Look again.
                let o = self.output(&["--no-lock", "ls", s["id"].as_str().unwrap()]);
                let err = stderr(&o);
                if o.status.success() {
                    out.push_str(&stdout(&o));
                } else if err.contains("locked") || err.contains("no such file or directory") {
                    complete = false;
                } else {
                    panic!("restic ls: {err}");
                }
            }
            if complete {
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("restic repository {} stayed locked", self.repo.display());
    }
}
