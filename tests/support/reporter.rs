//! A running `vigil-reporter serve` and what tests ask of it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::binaries::binary;
use crate::machine::free_port;

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

    /// Ids of the reports stored for `host` (up to 1,000); the listing must
    /// answer 200.
    pub fn stored_report_ids(&self, staff: &str, host: &str) -> Vec<String> {
        let path = format!("/api/v1/reports?host={host}&limit=1000");
        let (s, v) = self.get_json(staff, &path);
        assert_eq!(s, 200, "{path}: {v}");
        v["reports"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no `reports` in {v}"))
            .iter()
            .map(|r| {
                r["report_id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{path}: a report without `report_id` in {v}"))
                    .to_owned()
            })
            .collect()
    }

    /// The newest stored report of `host`, whole (`None` while there is none).
    pub fn newest_report(&self, staff: &str, host: &str) -> Option<serde_json::Value> {
        let (_, list) = self.get_json(staff, &format!("/api/v1/reports?host={host}&limit=1"));
        let id = list["reports"][0]["report_id"].as_str()?;
        let (s, report) = self.get_json(staff, &format!("/api/v1/reports/{id}"));
        (s == 200).then_some(report)
    }

    /// Adds a staff user and returns their token.
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
