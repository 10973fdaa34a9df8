//! Helpers for the end-to-end tests: the built binaries, fixture hosts, and
//! the real services a test needs (with a clear message when one is missing).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

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
        cmd.current_dir(workspace())
            .args(["build", "--quiet", "-p", package, "--bin", name]);
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
