//! A throwaway PostgreSQL cluster.

use std::path::PathBuf;
use std::process::Command;

use crate::machine::free_port;

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
