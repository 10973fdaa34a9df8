//! The agent's config file (`/etc/vigil/agent.yaml`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vigil_rules::duration::PolicyDuration;
use vigil_rules::policy::Diagnostics;
use vigil_rules::yaml;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The reporter's URL; `http://` only for loopback addresses.
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
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
    /// Where checks keep state between runs (scan caches, log offsets).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
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
                diags.push(yaml::Diag::new(loc, e));
            }
        }
        if diags.is_empty() {
            Ok(cfg)
        } else {
            Err(fail(diags))
        }
    }
}

/// `https://` anywhere; `http://` only to a loopback address.
pub fn check_server_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") {
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let hostport = rest.split('/').next().unwrap_or("");
        let host = if let Some(h) = hostport.strip_prefix('[') {
            h.split(']').next().unwrap_or("")
        } else {
            hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            return Ok(());
        }
        return Err(format!(
            "`server`: `{url}` is plain http to a non-loopback address; use https://"
        ));
    }
    Err(format!("`server`: `{url}` must start with https://"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
