//! The one-shot agent (`vigil-agent check`, `validate`, `test`...) and
//! reading what it prints.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::binaries::binary;

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

/// `vigil-agent check --policy POLICY --format json`, with `NO_COLOR=1`;
/// add a root, a state directory or more arguments, then run it. Build it
/// with [`agent_check`].
pub struct AgentCheck {
    cmd: Command,
}

/// `vigil-agent check` of `policy` with a JSON report (see [`AgentCheck`]).
pub fn agent_check(policy: impl AsRef<OsStr>) -> AgentCheck {
    let mut cmd = Command::new(agent());
    cmd.arg("check")
        .arg("--policy")
        .arg(policy)
        .args(["--format", "json"])
        .env("NO_COLOR", "1");
    AgentCheck { cmd }
}

impl AgentCheck {
    /// `--root ROOT`: the fixture host to check instead of this machine.
    pub fn root(mut self, root: impl AsRef<OsStr>) -> Self {
        self.cmd.arg("--root").arg(root);
        self
    }

    /// `--state-dir DIR`: where the checks keep their state.
    pub fn state_dir(mut self, dir: impl AsRef<OsStr>) -> Self {
        self.cmd.arg("--state-dir").arg(dir);
        self
    }

    /// More arguments, as given.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.cmd.args(args);
        self
    }

    /// An environment variable for the agent.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// The command, to spawn or run otherwise.
    pub fn command(self) -> Command {
        self.cmd
    }

    /// Runs the agent to its end; its output, whatever its exit code.
    pub fn output(mut self) -> Output {
        self.cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run vigil-agent: {e}"))
    }

    /// Runs the agent; the JSON report it printed.
    pub fn report(self) -> serde_json::Value {
        report_json(&self.output())
    }

    /// Runs the agent; check `check` of control `control` of its report.
    pub fn check_of(self, control: &str, check: &str) -> serde_json::Value {
        check_of(&self.report(), control, check).clone()
    }
}
