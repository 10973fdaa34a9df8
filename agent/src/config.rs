//! The agent's config file (`/etc/vigil/agent.yaml`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_rules::duration::PolicyDuration;
use vigil_rules::policy::Diagnostics;
use vigil_rules::yaml;

use crate::collect::host::HostCtx;
use crate::pace::{Pace, ScanPriority, DAEMON_READ_BUDGET_MB_PER_S};

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The reporter's URL; `http://` only for loopback addresses.
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM certificate (chain) of this agent, for a reporter with mutual TLS
    /// (`agent_tls`): the agent's token is then bound to this certificate's key.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert` (readable by the agent only).
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Defaults to the hostname.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub policy: Option<PathBuf>,
    #[serde(default)]
    pub spool: Option<PathBuf>,
    #[serde(default)]
    pub interval: Option<PolicyDuration>,
    /// Where checks keep state between runs (scan caches, log offsets); the
    /// daemon also keeps the last good policy from the reporter here.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Most reports the spool keeps (default 10000); the oldest are dropped first.
    #[serde(default)]
    pub spool_max_reports: Option<u64>,
    /// Most bytes the spool keeps (default 256 MiB); the oldest are dropped first.
    #[serde(default)]
    pub spool_max_bytes: Option<u64>,
    /// Reports older than this are dropped from the spool (default 30d).
    #[serde(default)]
    pub spool_max_age: Option<PolicyDuration>,
    /// CPU and I/O priority of the file-heavy checks' reading threads
    /// (`idle` or `normal`); the daemon's default is `idle`.
    #[serde(default)]
    pub scan_priority: Option<ScanPriority>,
    /// Read budget of the file-heavy checks of one run, shared, in MB/s
    /// (10^6 bytes); 0 = unlimited; the daemon's default is 50.
    #[serde(default)]
    pub read_budget_mb_per_s: Option<u64>,
    /// The daemon's optional local metrics listener (`daemon::metrics`); off when absent.
    #[serde(default)]
    pub metrics: Option<MetricsListen>,
}

/// `metrics:` in the agent config: where the daemon serves `GET /metrics`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsListen {
    /// An address and port like `127.0.0.1:9464`.
    pub listen: String,
    /// Serve beyond loopback. Off by default: the figures reveal this host's
    /// state (which checks fail, whether it reaches its reporter) to anyone
    /// who can connect, and the listener has no authentication.
    #[serde(default)]
    pub allow_remote: bool,
}

impl MetricsListen {
    /// The address to bind, refusing a non-loopback one unless `allow_remote`.
    pub fn address(&self) -> Result<std::net::SocketAddr, ListenError> {
        let addr: std::net::SocketAddr = self
            .listen
            .parse()
            .map_err(|_| ListenError::NotAnAddress(self.listen.clone()))?;
        if !addr.ip().is_loopback() && !self.allow_remote {
            return Err(ListenError::NotLoopback(self.listen.clone()));
        }
        Ok(addr)
    }
}

/// Defaults of the daemon's paths and limits.
pub const DEFAULT_CONFIG: &str = "/etc/vigil/agent.yaml";
pub const DEFAULT_TOKEN_FILE: &str = "/var/lib/vigil/token";
pub const DEFAULT_SPOOL: &str = "/var/lib/vigil/spool";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/vigil/state";
pub const DEFAULT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15 * 60);
pub const DEFAULT_SPOOL_MAX_REPORTS: u64 = 10_000;
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 256 * 1024 * 1024;
pub const DEFAULT_SPOOL_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// A role name as policies write them in `roles:` (letters, digits, `-`, `_`, `.`).
pub fn valid_role(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 64
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl AgentConfig {
    pub fn token_file(&self) -> PathBuf {
        self.token_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_TOKEN_FILE))
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.spool
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SPOOL))
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
    }

    /// The schedule of checks that have no `every`.
    pub fn interval(&self) -> std::time::Duration {
        self.interval.map_or(DEFAULT_INTERVAL, |d| d.as_std())
    }

    /// The daemon's pacing of file-heavy checks: `idle` and 50 MB/s unless set.
    pub fn daemon_pace(&self) -> Pace {
        Pace::new(
            self.scan_priority.unwrap_or(ScanPriority::Idle),
            self.read_budget_mb_per_s
                .unwrap_or(DAEMON_READ_BUDGET_MB_PER_S),
        )
    }

    /// Where and how the daemon's runs gather facts: the live root, the state
    /// directory, and a fresh read budget for each run.
    pub fn daemon_host_ctx(&self) -> HostCtx {
        HostCtx {
            root: PathBuf::from("/"),
            state_dir: self.state_dir(),
            pace: self.daemon_pace(),
        }
    }

    /// The host name reported: `host`, else this machine's hostname.
    pub fn host_name(&self) -> String {
        self.host.clone().unwrap_or_else(crate::engine::hostname)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string()).map_err(ConfigError::Invalid)
    }

    pub fn parse(text: &str, file: &str) -> Result<Self, Diagnostics> {
        let fail = |diags| Diagnostics {
            file: file.to_owned(),
            diags,
        };
        let node = yaml::parse(text).map_err(fail)?;
        let cfg: AgentConfig = yaml::from_node(&node).map_err(fail)?;
        let mut diags = Vec::new();
        if let Some(server) = &cfg.server {
            if let Err(e) = check_server_url(server) {
                let loc = node.get("server").map_or(node.loc, |n| n.loc);
                diags.push(yaml::Diag::new(loc, e.to_string()));
            }
        }
        for (key, zero) in [
            ("spool_max_reports", cfg.spool_max_reports == Some(0)),
            ("spool_max_bytes", cfg.spool_max_bytes == Some(0)),
        ] {
            if zero {
                let loc = node.get(key).map_or(node.loc, |n| n.loc);
                diags.push(yaml::Diag::new(loc, format!("`{key}` must be at least 1")));
            }
        }
        if let Some(m) = &cfg.metrics {
            if let Err(e) = m.address() {
                let loc = node
                    .get("metrics")
                    .and_then(|n| n.get("listen"))
                    .map_or(node.loc, |n| n.loc);
                diags.push(yaml::Diag::new(loc, e.to_string()));
            }
        }
        for (i, r) in cfg.roles.iter().enumerate() {
            if !valid_role(r) {
                let loc = node
                    .get("roles")
                    .and_then(|n| n.as_seq().and_then(|s| s.get(i)).or(Some(n)))
                    .map_or(node.loc, |n| n.loc);
                diags.push(yaml::Diag::new(
                    loc,
                    format!("`roles`: `{r}` is not a valid role name (use letters, digits, `-`, `_` and `.`)"),
                ));
            }
        }
        if diags.is_empty() {
            Ok(cfg)
        } else {
            Err(fail(diags))
        }
    }
}

/// Why the config's `server` is refused. The URL is not echoed when it
/// carries user-info (it may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerUrlError {
    #[error("`server`: `{url}` is not a valid URL: {source}")]
    Invalid {
        url: String,
        #[source]
        source: <reqwest::Url as std::str::FromStr>::Err,
    },
    #[error("`server` carries user-info (`user@` or `user:password@` before the host); remove it")]
    UserInfo,
    #[error("`server`: `{0}` is plain http to a non-loopback address; use https://")]
    PlainHttp(String),
    #[error("`server`: `{0}` must start with https://")]
    Scheme(String),
}

/// Why `metrics.listen` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    #[error("`metrics.listen`: `{0}` is not an address like 127.0.0.1:9464")]
    NotAnAddress(String),
    #[error(
        "`metrics.listen`: `{0}` is not a loopback address; the metrics reveal this host's state \
             (failing checks, undelivered reports) to anyone who connects, without authentication: \
             listen on 127.0.0.1 or ::1, or set `metrics.allow_remote: true`"
    )]
    NotLoopback(String),
}

/// `https://` anywhere; `http://` only to a loopback address. The URL is
/// parsed and its parsed host judged: `http://localhost:1@evil.example/`
/// names the host `evil.example` (the rest is user-info), so a prefix test
/// on the text is fooled. User-info is refused outright: the agent
/// authenticates with its token, never with credentials in the URL.
pub fn check_server_url(url: &str) -> Result<(), ServerUrlError> {
    let parsed = reqwest::Url::parse(url).map_err(|source| ServerUrlError::Invalid {
        url: url.to_owned(),
        source,
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // The URL is not echoed: its user-info may be a password.
        return Err(ServerUrlError::UserInfo);
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            // `host_str` is the parsed host: IPv4 forms normalized
            // (`2130706433` is `127.0.0.1`), IPv6 in brackets.
            let host = parsed.host_str().unwrap_or("");
            let bare = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let loopback = host.eq_ignore_ascii_case("localhost")
                || bare
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(ServerUrlError::PlainHttp(url.to_owned()))
            }
        }
        _ => Err(ServerUrlError::Scheme(url.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_priority_and_read_budget() {
        let c = AgentConfig::parse("scan_priority: normal\nread_budget_mb_per_s: 0\n", "a.yaml")
            .unwrap();
        assert_eq!(c.scan_priority, Some(ScanPriority::Normal));
        let pace = c.daemon_host_ctx().pace;
        assert_eq!(pace.priority(), ScanPriority::Normal);
        assert_eq!(pace.budget(), None);
        let c =
            AgentConfig::parse("scan_priority: idle\nread_budget_mb_per_s: 8\n", "a.yaml").unwrap();
        assert_eq!(c.daemon_pace().budget(), Some(8_000_000));
        let e = AgentConfig::parse("scan_priority: low\n", "a.yaml").unwrap_err();
        assert!(e.to_string().starts_with("a.yaml:1:"), "{e}");
        assert!(AgentConfig::parse("read_budget_mb_per_s: -1\n", "a.yaml").is_err());
    }

    #[test]
    fn reads_the_contract_example() {
        let c = AgentConfig::parse(
            "server: https://reporter.internal:8443\nhost: web-1\nroles: [app]\ninterval: 15m\n",
            "a.yaml",
        )
        .unwrap();
        assert_eq!(c.host.as_deref(), Some("web-1"));
        assert_eq!(c.interval.unwrap().as_std().as_secs(), 900);
    }

    #[test]
    fn unknown_keys_and_plain_http_are_located() {
        let e =
            AgentConfig::parse("server: http://10.0.0.1:8080\nhots: x\n", "a.yaml").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("a.yaml:2:1: unknown key `hots`"), "{s}");
        let e = AgentConfig::parse("server: http://10.0.0.1:8080\n", "a.yaml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("a.yaml:1:9: `server`: `http://10.0.0.1:8080` is plain http"),
            "{e}"
        );
        assert!(AgentConfig::parse("server: http://127.0.0.1:8080\n", "a.yaml").is_ok());
        assert!(AgentConfig::parse("server: http://[::1]:8080\n", "a.yaml").is_ok());
    }

    /// Regression (issue 19, item 13): the loopback test looked at the text
    /// before the first `:`/`/`, so `http://localhost:1@evil.example/`
    /// (host `evil.example`, user `localhost`, password `1`) passed as
    /// loopback and the token went out in clear.
    #[test]
    fn user_info_cannot_disguise_a_remote_host() {
        for url in [
            "http://localhost:1@evil.example/",
            "http://127.0.0.1:8443@evil.example:80/",
            "http://[::1]@evil.example/",
            "http://localhost@evil.example/",
        ] {
            let e = check_server_url(url).unwrap_err().to_string();
            assert!(e.contains("user-info"), "{url}: {e}");
        }
        // user-info is refused on https too
        assert!(check_server_url("https://u:p@reporter.internal/").is_err());
        assert!(check_server_url("http://localhost.evil.example/").is_err());
        assert!(check_server_url("http://127.0.0.1.nip.io/").is_err());
        assert!(check_server_url("http:/\\evil.example/").is_err());
        assert!(check_server_url("ftp://127.0.0.1/").is_err());
        assert!(check_server_url("http://localhost:8443/").is_ok());
        assert!(check_server_url("http://LOCALHOST/").is_ok());
        assert!(check_server_url("http://127.0.0.2:80/").is_ok());
        assert!(check_server_url("https://reporter.internal:8443").is_ok());
    }

    #[test]
    fn metrics_listen_is_loopback_unless_allowed() {
        let c = AgentConfig::parse("metrics:\n  listen: 127.0.0.1:9464\n", "a.yaml").unwrap();
        assert_eq!(c.metrics.unwrap().address().unwrap().port(), 9464);
        assert!(AgentConfig::parse("metrics: {listen: \"[::1]:9464\"}\n", "a.yaml").is_ok());
        let e = AgentConfig::parse("host: a\nmetrics:\n  listen: 0.0.0.0:9464\n", "a.yaml")
            .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "a.yaml:3:11: `metrics.listen`: `0.0.0.0:9464` is not a loopback address"
            ),
            "{e}"
        );
        let c = AgentConfig::parse(
            "metrics:\n  listen: 0.0.0.0:9464\n  allow_remote: true\n",
            "a.yaml",
        )
        .unwrap();
        assert!(c.metrics.unwrap().address().is_ok());
        let e = AgentConfig::parse("metrics:\n  listen: localhost\n", "a.yaml").unwrap_err();
        assert!(
            e.to_string()
                .contains("`metrics.listen`: `localhost` is not an address"),
            "{e}"
        );
        assert!(AgentConfig::parse("metrics:\n  port: 1\n", "a.yaml").is_err());
        assert!(AgentConfig::parse("host: a\n", "a.yaml")
            .unwrap()
            .metrics
            .is_none());
    }

    #[test]
    fn roles_are_names() {
        let c = AgentConfig::parse("roles: [app, db]\n", "a.yaml").unwrap();
        assert_eq!(c.roles, ["app", "db"]);
        let e = AgentConfig::parse("roles: [app, 'web server']\n", "a.yaml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("a.yaml:1:14: `roles`: `web server` is not a valid role name"),
            "{e}"
        );
        assert!(AgentConfig::parse("roles: app\n", "a.yaml").is_err());
    }

    #[test]
    fn spool_limits_and_defaults() {
        let c = AgentConfig::parse(
            "spool_max_reports: 5\nspool_max_bytes: 1000\nspool_max_age: 2h\n",
            "a.yaml",
        )
        .unwrap();
        assert_eq!(c.spool_max_reports, Some(5));
        assert_eq!(c.spool_max_age.unwrap().as_std().as_secs(), 7200);
        assert_eq!(c.interval().as_secs(), 900);
        assert_eq!(c.token_file(), PathBuf::from(DEFAULT_TOKEN_FILE));
        assert_eq!(c.daemon_pace().priority(), ScanPriority::Idle);
        assert_eq!(c.daemon_pace().budget(), Some(50_000_000));
        let e = AgentConfig::parse("host: a\nspool_max_reports: 0\n", "a.yaml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("a.yaml:2:20: `spool_max_reports` must be at least 1"),
            "{e}"
        );
    }
}
