//! `firewall` end to end: real nftables and iptables rulesets loaded into a
//! network namespace each test creates, the agent run inside it with
//! `ip netns exec`, and a real listener for the socket cross-check.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use vigil_tests::*;

/// A network namespace deleted on drop, with the processes started in it.
struct Netns {
    name: String,
    children: Vec<Child>,
}

impl Netns {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        require_tool("ip", "iproute2");
        let name = format!(
            "fwtest-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(
            st.success(),
            "ip netns add {name} failed (tests run as root)"
        );
        Netns {
            name,
            children: Vec::new(),
        }
    }

    fn exec(&self, prog: &Path, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(prog)
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn nft(&self, ruleset: &Path) {
        let nft = require_tool("nft", "nftables");
        let o = self.exec(&nft, &["-f", ruleset.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "nft -f {}: {}",
            ruleset.display(),
            stderr(&o)
        );
    }

    fn restore(&self, tool: &str, rules: &Path) {
        let prog = require_tool(tool, "iptables");
        let o = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(prog)
            .stdin(std::fs::File::open(rules).unwrap())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{tool} {}: {}",
            rules.display(),
            stderr(&o)
        );
    }

    /// Starts a TCP listener on `[::]:port` inside the namespace; returns its pid.
    fn listen(&mut self, port: u16) -> u32 {
        let python = require_tool("python3", "python3");
        let script = format!(
            "import socket,time\ns=socket.socket(socket.AF_INET6)\ns.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\ns.bind(('::',{port}))\ns.listen()\nprint('ready',flush=True)\ntime.sleep(120)\n"
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(python)
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Runs the agent's firewall check inside the namespace.
    fn check(&self, with: &str) -> serde_json::Value {
        let dir = tempfile::tempdir().unwrap();
        let policy = single_check_policy("SP-5", "fw", "firewall", with)
            .write(&dir.path().join("policy.yaml"));
        let o = self.exec(
            &agent(),
            &["check", "--policy", &policy, "--format", "json"],
        );
        let report = report_json(&o);
        check_of(&report, "SP-5", "fw").clone()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn data(case: &str, file: &str) -> PathBuf {
    workspace()
        .join("tests/data/firewall")
        .join(case)
        .join(file)
}

const WEB: &str = "          allowed_tcp: [22, 80, 443]\n";

fn subjects(check: &serde_json::Value, code: &str) -> Vec<String> {
    check["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == code)
        .map(|f| f["subject"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn open_policy_fails_for_both_families() {
    let ns = Netns::new();
    ns.nft(&data("open_policy", "ruleset.nft"));
    let c = ns.check(WEB);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(subjects(&c, "no_default_deny"), ["IPv4", "IPv6"]);
    assert_eq!(
        subjects(&c, "port_not_allowed"),
        ["tcp/1-21, 23-79, 81-442, 444-65535", "udp/1-65535"]
    );
}

#[test]
fn empty_namespace_has_no_firewall() {
    let ns = Netns::new();
    let c = ns.check(WEB);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(subjects(&c, "no_default_deny"), ["IPv4", "IPv6"]);
}

#[test]
fn default_deny_passes() {
    let mut ns = Netns::new();
    ns.nft(&data("default_deny", "ruleset.nft"));
    ns.listen(443);
    let c = ns.check(WEB);
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(codes(&c), Vec::<String>::new());
    assert_eq!(c["evidence"]["reachable"]["tcp/IPv6"], "22, 80, 443");
    assert_eq!(c["evidence"]["listening_sockets"], 1);
}

#[test]
fn a_port_opened_too_many_and_its_listener() {
    let mut ns = Netns::new();
    ns.nft(&data("port_too_many", "ruleset.nft"));
    let pid = ns.listen(8080);
    let c = ns.check(WEB);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(
        codes(&c),
        [
            "port_not_allowed",
            "port_not_allowed",
            "listening_port_exposed"
        ]
    );
    assert_eq!(subjects(&c, "port_not_allowed"), ["tcp/8080", "udp/5353"]);
    let exposed = &c["findings"][2];
    assert_eq!(exposed["subject"], "tcp/8080");
    let msg = exposed["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("(pid {pid})")) && msg.contains("python3"),
        "{msg}"
    );
    assert!(msg.contains("IPv4 and IPv6"), "{msg}");
}

#[test]
fn ipv6_open_while_ipv4_closed() {
    let ns = Netns::new();
    ns.nft(&data("ipv6_open", "ruleset.nft"));
    let c = ns.check(WEB);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(subjects(&c, "no_default_deny"), ["IPv6"]);
    for f in c["findings"].as_array().unwrap().iter().skip(1) {
        assert!(
            f["message"].as_str().unwrap().contains("over IPv6 but"),
            "{f}"
        );
    }
    assert_eq!(c["evidence"]["reachable"]["tcp/IPv4"], "22, 80, 443");
}

#[test]
fn catch_all_reject_counts_as_default_deny() {
    let ns = Netns::new();
    ns.nft(&data("catch_all_reject", "ruleset.nft"));
    let c = ns.check(WEB);
    assert_eq!(c["status"], "pass", "{c}");
    let chains = &c["evidence"]["default_deny_chains"]["IPv4"];
    assert_eq!(chains[0], "inet filter input");
}

#[test]
fn named_set_with_a_range_and_a_jump() {
    let ns = Netns::new();
    ns.nft(&data("named_set", "ruleset.nft"));
    let c = ns.check("          allowed_tcp: [22, 80, 443]\n          allowed_udp: [123]\n");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(codes(&c), ["port_not_allowed"]);
    assert_eq!(subjects(&c, "port_not_allowed"), ["tcp/8000-8010"]);
    assert_eq!(c["evidence"]["reachable"]["udp/IPv4"], "123");
}

#[test]
fn unknown_expression_is_an_error() {
    let ns = Netns::new();
    ns.nft(&data("unknown_expression", "ruleset.nft"));
    let c = ns.check(WEB);
    assert_eq!(c["status"], "error", "{c}");
    let s = c["summary"].as_str().unwrap();
    assert!(
        s.contains("concat") && s.contains("inet filter input rule 2"),
        "{s}"
    );
}

#[test]
fn iptables_backend() {
    let mut ns = Netns::new();
    ns.restore("iptables-restore", &data("iptables_backend", "rules.v4"));
    ns.restore("ip6tables-restore", &data("iptables_backend", "rules.v6"));
    ns.listen(22);
    for backend in ["auto", "iptables"] {
        let c = ns.check(&format!("          backend: {backend}\n{WEB}"));
        assert_eq!(c["status"], "fail", "{backend}: {c}");
        assert_eq!(codes(&c), ["port_not_allowed"], "{backend}");
        assert_eq!(subjects(&c, "port_not_allowed"), ["tcp/9000-9001"]);
        assert_eq!(c["evidence"]["reachable"]["tcp/IPv6"], "22, 80, 443");
    }
    // nft sees iptables-nft's xt matches, which it cannot evaluate.
    let c = ns.check(&format!("          backend: nftables\n{WEB}"));
    assert_eq!(c["status"], "error", "{c}");
    assert!(c["summary"].as_str().unwrap().contains("xt"), "{c}");
}

/// The JSON fixtures are what nft prints for the `.nft` rulesets: reloading
/// each one must give the same rules (handles and metainfo aside).
#[test]
fn json_fixtures_match_nft_output() {
    for case in [
        "open_policy",
        "default_deny",
        "port_too_many",
        "ipv6_open",
        "catch_all_reject",
        "named_set",
        "unknown_expression",
    ] {
        let ns = Netns::new();
        ns.nft(&data(case, "ruleset.nft"));
        let o = ns.exec(&require_tool("nft", "nftables"), &["-j", "list", "ruleset"]);
        let live: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(data(case, "ruleset.json")).unwrap())
                .unwrap();
        assert_eq!(strip(&live), strip(&fixture), "{case}");
    }
}

fn strip(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .filter(|(k, _)| *k != "handle" && *k != "metainfo")
            .map(|(k, v)| (k.clone(), strip(v)))
            .collect(),
        serde_json::Value::Array(a) => a
            .iter()
            .map(strip)
            .filter(|x| x != &serde_json::json!({}))
            .collect(),
        other => other.clone(),
    }
}

/// Legacy iptables tables beside nftables: both layers filter, a packet must
/// pass both, and the report names both.
#[test]
fn legacy_iptables_layer_beside_nftables() {
    let ns = Netns::new();
    ns.nft(&data("legacy_and_nft", "ruleset.nft"));
    ns.restore(
        "iptables-legacy-restore",
        &data("legacy_and_nft", "legacy.v4"),
    );
    let c = ns.check(WEB);
    // nft opens tcp 8080 and udp 5353 (IPv4 only); legacy iptables drops both for IPv4.
    assert_eq!(codes(&c), ["port_not_allowed"], "{c}");
    assert_eq!(subjects(&c, "port_not_allowed"), ["tcp/8080"]);
    assert!(c["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("over IPv6 but"));
    let layers: Vec<&str> = c["evidence"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(layers, ["iptables (legacy)", "nftables"]);
}
