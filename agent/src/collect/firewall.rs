//! Facts for `firewall`: the rulesets as the kernel holds them (`nft -j list
//! ruleset`, `iptables-save`, `ip6tables-save`) and the listening sockets of
//! this network namespace with their owning processes. Parsing and judging
//! happen in `vigil_rules::checks::firewall`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_rules::checks::firewall::{proc_net, Facts, Output, Params, Socket};

use super::host::{io_reason, HostCtx};
use crate::collect::CollectError;

pub fn collect(_p: &Params, ctx: &HostCtx) -> Result<Facts, CollectError> {
    if !ctx.is_live() {
        return Err("the firewall is read from the running kernel: run with --root /".into());
    }
    let nft = run(find("nft"), &["-j", "list", "ruleset"]);
    let iptables_variant = find("iptables").and_then(|p| {
        let out = Command::new(p).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("nf_tables") {
            Some("nf_tables".to_owned())
        } else if text.contains("legacy") {
            Some("legacy".to_owned())
        } else {
            None
        }
    });
    let iptables = run(find("iptables-save"), &[]);
    let ip6tables = run(find("ip6tables-save"), &[]);
    // With iptables-nft as `iptables`, legacy tables may still filter.
    let (iptables_legacy, ip6tables_legacy) = if iptables_variant.as_deref() == Some("nf_tables") {
        (
            run(find("iptables-legacy-save"), &[]),
            run(find("ip6tables-legacy-save"), &[]),
        )
    } else {
        (Output::Absent, Output::Absent)
    };
    Ok(Facts {
        nft,
        iptables_variant,
        iptables,
        ip6tables,
        iptables_legacy,
        ip6tables_legacy,
        // The facts carry the message (they are JSON).
        sockets: sockets(Path::new("/proc")).map_err(|e| e.to_string()),
    })
}

fn find(tool: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
}

fn run(prog: Option<PathBuf>, args: &[&str]) -> Output {
    let Some(prog) = prog else {
        return Output::Absent;
    };
    match Command::new(&prog).args(args).output() {
        Err(e) => Output::Failed(format!("cannot run {}: {}", prog.display(), io_reason(&e))),
        Ok(o) if !o.status.success() => {
            let err = String::from_utf8_lossy(&o.stderr);
            Output::Failed(format!(
                "{} exited with {}: {}",
                prog.display(),
                o.status,
                err.lines().next().unwrap_or("").trim()
            ))
        }
        Ok(o) => Output::Text(String::from_utf8_lossy(&o.stdout).into_owned()),
    }
}

/// Listening TCP sockets and bound UDP sockets of the current network
/// namespace, from `/proc/net/*`, with owners from `/proc/*/fd`.
pub fn sockets(proc_root: &Path) -> Result<Vec<Socket>, CollectError> {
    let mut out: Vec<(Socket, u64)> = Vec::new();
    for (file, proto, v6) in [
        ("tcp", "tcp", false),
        ("tcp6", "tcp", true),
        ("udp", "udp", false),
        ("udp6", "udp", true),
    ] {
        let path = proc_root.join("net").join(file);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            // No IPv6 in this kernel: nothing listens on it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && v6 => continue,
            Err(e) => return Err(CollectError::io("read", path, e)),
        };
        out.extend(
            proc_net::parse_proc_net(&text, proto, v6)
                .map_err(|e| CollectError::parse(path.display(), e))?,
        );
    }
    let owners = socket_owners(proc_root);
    Ok(out
        .into_iter()
        .map(|(mut s, inode)| {
            if let Some((pid, name)) = owners.get(&inode) {
                s.pid = Some(*pid);
                s.process = Some(name.clone());
            }
            s
        })
        .collect())
}

/// Socket inode → (pid, process name), from every process's open files.
fn socket_owners(proc_root: &Path) -> HashMap<u64, (u32, String)> {
    let mut map = HashMap::new();
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return map;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        let mut name: Option<String> = None;
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            let n = name.get_or_insert_with(|| {
                std::fs::read_to_string(e.path().join("comm"))
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_else(|_| "?".into())
            });
            map.entry(inode).or_insert((pid, n.clone()));
        }
    }
    map
}
