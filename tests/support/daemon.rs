//! The agent as a daemon (`vigil-agent run`) talking to a reporter.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::agent::agent;
use crate::binaries::workspace;
use crate::machine::require_tool;

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
