//! Throwaway PostgreSQL: one cluster ([`PgCluster`]), or a primary with
//! streaming standbys ([`PgReplication`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
        let bin = server_bin();
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

/// The newest installed PostgreSQL server binaries (17, 16 or 15).
fn server_bin() -> PathBuf {
    ["17", "16", "15"]
        .iter()
        .map(|v| PathBuf::from(format!("/usr/lib/postgresql/{v}/bin")))
        .find(|p| p.join("initdb").exists())
        .unwrap_or_else(|| panic!("this test needs PostgreSQL's server binaries: apt-get install postgresql (.ci/run does)"))
}

/// Where a primary and its streaming standbys listen, and what the standbys
/// call themselves.
#[derive(Debug, Clone)]
pub struct Streaming<'a> {
    /// Run every cluster inside this network namespace (`ip netns exec`).
    pub netns: Option<&'a str>,
    pub primary_port: u16,
    /// The primary's `listen_addresses` (`*` as on a database server, or
    /// `127.0.0.1`); standbys listen on 127.0.0.1.
    pub primary_listen: &'a str,
    /// One standby per port.
    pub standby_ports: &'a [u16],
    /// Standby N connects as `application_name` `PREFIX-N`.
    pub application_name: &'a str,
}

/// A PostgreSQL primary and its streaming standbys, run as the `postgres`
/// user, each a data folder (`primary`, `standby1`, …) in one temporary
/// directory; every cluster started is stopped on drop.
pub struct PgReplication {
    dir: tempfile::TempDir,
    bin: PathBuf,
    netns: Option<String>,
    started: Vec<PathBuf>,
    pub primary_port: u16,
}

impl PgReplication {
    /// Starts the primary, then each standby from a `pg_basebackup` of it
    /// (replication slot `standbyN`), each started and waited for.
    pub fn start(s: &Streaming<'_>) -> PgReplication {
        crate::machine::require_tool("runuser", "util-linux");
        let dir = tempfile::Builder::new()
            .prefix("vigil-pg-repl-")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        let st = Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status()
            .unwrap_or_else(|e| panic!("chown: {e}"));
        assert!(st.success(), "chown postgres {}", dir.path().display());
        let mut pg = PgReplication {
            dir,
            bin: server_bin(),
            netns: s.netns.map(str::to_owned),
            started: vec![],
            primary_port: s.primary_port,
        };
        let data = pg.path("primary");
        pg.as_postgres(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        pg.conf(&data, s.primary_port, s.primary_listen, "");
        pg.start_cluster(&data);
        for (n, port) in (1..).zip(s.standby_ports) {
            let data = pg.path(&format!("standby{n}"));
            pg.as_postgres(
                "pg_basebackup",
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &s.primary_port.to_string(),
                    "-U",
                    "postgres",
                    "-D",
                    data.to_str().unwrap_or_default(),
                    "-R",
                    "-X",
                    "stream",
                    "-C",
                    "-S",
                    &format!("standby{n}"),
                    "--no-sync",
                ],
            );
            pg.conf(
                &data,
                *port,
                "127.0.0.1",
                &format!(
                    "primary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name={}-{n}'\n",
                    s.primary_port, s.application_name
                ),
            );
            pg.start_cluster(&data);
        }
        pg
    }

    /// A path in the clusters' directory (`primary`, `standbyN`, or a file
    /// of the test's own).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "runuser"]);
                c
            }
            None => Command::new("runuser"),
        };
        c.args(["-u", "postgres", "--"])
            .arg(program)
            .current_dir(self.dir.path());
        c
    }

    /// Runs one of the server's programs as `postgres`; it must succeed.
    pub fn as_postgres(&self, program: &str, args: &[&str]) -> Output {
        let o = self
            .command(&self.bin.join(program))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            o.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    fn conf(&self, data: &Path, port: u16, listen: &str, extra: &str) {
        let text = format!(
            "\nport = {port}\nlisten_addresses = '{listen}'\nunix_socket_directories = '{}'\n\
             wal_level = replica\nmax_wal_senders = 6\nmax_replication_slots = 6\nhot_standby = on\n\
             wal_receiver_status_interval = 1s\nfsync = off\nsynchronous_commit = off\nshared_buffers = 16MB\n{extra}",
            self.dir.path().display()
        );
        let file = data.join("postgresql.auto.conf");
        let old = std::fs::read_to_string(&file).unwrap_or_default();
        std::fs::write(&file, old + &text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }

    fn start_cluster(&mut self, data: &Path) {
        let log = data.with_extension("log");
        self.as_postgres(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                data.to_str().unwrap_or_default(),
                "-l",
                log.to_str().unwrap_or_default(),
            ],
        );
        if !self.started.contains(&data.to_path_buf()) {
            self.started.push(data.to_path_buf());
        }
    }

    /// Stops one cluster (`pg_ctl stop -m fast`), e.g. `path("standby1")`.
    pub fn stop(&self, data: &Path) {
        self.as_postgres(
            "pg_ctl",
            &[
                "stop",
                "-m",
                "fast",
                "-w",
                "-D",
                data.to_str().unwrap_or_default(),
            ],
        );
    }

    /// Runs `sql` with psql on the cluster at `port`, database `db`; its
    /// output, trimmed.
    pub fn sql(&self, port: u16, db: &str, sql: &str) -> String {
        let o = self.as_postgres(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-XAtq",
                "-c",
                sql,
            ],
        );
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }
}

impl Drop for PgReplication {
    fn drop(&mut self) {
        for data in self.started.iter().rev() {
            let _ = self
                .command(&self.bin.join("pg_ctl"))
                .args(["stop", "-m", "immediate", "-D"])
                .arg(data)
                .output();
        }
    }
}
