//! Network namespaces and the processes a test starts in them.

use std::process::{Child, Command, Output};

use crate::agent::{stderr, stdout};
use crate::machine::require_tool;

/// Runs `cmd`, which must succeed; its output.
pub fn run_ok(cmd: &mut Command) -> Output {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?}: {}{}", stdout(&o), stderr(&o));
    o
}

/// A network namespace with its loopback up, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(host: &str) -> Netns {
        let ip = require_tool("ip", "iproute2");
        let name = format!("vf{}-{host}", std::process::id());
        run_ok(Command::new(&ip).args(["netns", "add", &name]));
        let ns = Netns { name };
        run_ok(Command::new(&ip).args(["-n", &ns.name, "link", "set", "lo", "up"]));
        ns
    }

    /// `prog` run inside the namespace (`ip netns exec` execs it: the
    /// child's pid is the program's).
    pub fn cmd(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name])
            .arg(prog)
            .env("NO_COLOR", "1");
        c
    }

    pub fn nft(&self, args: &[&str]) {
        run_ok(self.cmd(require_tool("nft", "nftables")).args(args));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Processes the test started, killed on drop.
#[derive(Default)]
pub struct Children(pub Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
