//! The host inventory carried by every report: OS name and version, kernel,
//! architecture, uptime, boot time, CPU model and count, total memory.
//!
//! The OS is read from the os-release(5) file under the check's root
//! (`/etc/os-release`, else `/usr/lib/os-release`), so `--root` describes the
//! tree being checked. The machine fields come from the running kernel
//! (through `sysinfo`): a root has no kernel, CPU or memory of its own, and
//! for a container image checked on a host these are the host's. Nothing
//! here fails a run: what cannot be read is left out of the inventory.

use chrono::{DateTime, Utc};
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, System};
use vigil_rules::report::Inventory;

use super::HostCtx;

/// Gathers the inventory; reads a few small `/proc` and `/etc` files.
pub fn collect(ctx: &HostCtx) -> Inventory {
    let mut inv = Inventory::default();
    for rel in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Ok(text) = std::fs::read_to_string(ctx.path(rel)) {
            inv.read_os_release(&text);
            break;
        }
    }
    if !ctx.is_live() {
        inv.root = Some(ctx.root.display().to_string());
    }
    inv.kernel = System::kernel_version().filter(|k| !k.is_empty());
    inv.arch = Some(System::cpu_arch()).filter(|a| !a.is_empty());
    let uptime = System::uptime();
    if uptime > 0 {
        inv.uptime_seconds = Some(uptime);
    }
    inv.boot_time = i64::try_from(System::boot_time())
        .ok()
        .filter(|t| *t > 0)
        .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0));
    let mut sys = System::new();
    sys.refresh_cpu_list(CpuRefreshKind::nothing());
    sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
    let cpus = sys.cpus();
    if !cpus.is_empty() {
        inv.cpu_count = u32::try_from(cpus.len()).ok();
    }
    inv.cpu_model = cpus
        .iter()
        .map(|c| c.brand().trim())
        .find(|b| !b.is_empty())
        .map(str::to_owned);
    inv.cpu_cores = System::physical_core_count().and_then(|n| u32::try_from(n).ok());
    let mem = sys.total_memory();
    if mem > 0 {
        inv.memory_bytes = Some(mem);
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OS comes from the root's os-release; the machine fields from the
    /// running kernel, and they agree with `/proc`.
    #[test]
    fn os_from_the_root_machine_from_the_kernel() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        std::fs::write(
            dir.path().join("usr/lib/os-release"),
            "NAME=\"Testix\"\nVERSION_ID=\"7.1\"\nPRETTY_NAME=\"Testix 7.1 (lab)\"\n",
        )
        .unwrap();
        let ctx = HostCtx {
            root: dir.path().to_owned(),
            ..HostCtx::live()
        };
        let inv = collect(&ctx);
        assert_eq!(inv.os_name.as_deref(), Some("Testix"));
        assert_eq!(inv.os_version.as_deref(), Some("7.1"));
        assert_eq!(inv.root.as_deref(), Some(dir.path().to_str().unwrap()));
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(inv.kernel.as_deref(), Some(release.trim()));
        let online = std::thread::available_parallelism().unwrap().get() as u32;
        assert!(inv.cpu_count.unwrap() >= online, "{inv:?}");
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kib: u64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        assert_eq!(inv.memory_bytes, Some(kib * 1024));
        assert!(inv.uptime_seconds.unwrap() > 0);
        let boot = inv.boot_time.unwrap();
        assert!(boot < Utc::now(), "{boot}");
        assert_eq!(collect(&HostCtx::live()).root, None);
    }
}
