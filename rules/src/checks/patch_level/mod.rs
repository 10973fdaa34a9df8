//! `patch_level`: Debian packages are up to date, security updates applied,
//! apt fresh, unattended-upgrades on, no reboot pending, the newest kernel
//! running, and no advisory of a given feed open.
//!
//! Facts: the installed packages ([`status::installed`]), the versions the
//! apt indices offer for them ([`status::packages_index`], security told apart
//! by the archive's Release file), apt's last update, unattended-upgrades'
//! settings and last run, `/var/run/reboot-required(.pkgs)`, the running
//! kernel, and advisories ([`feeds`]). Versions are ordered by
//! [`dpkg_version`], exactly as dpkg orders them.

pub mod apt_policy;
mod evidence;
mod facts;
mod params;
pub mod parse;

pub use evidence::{AdvisoriesEvidence, AdvisoryCounts, Evidence, KernelEvidence};
pub use facts::{AdvisoryFeed, Facts, Unattended};
pub use params::Params;
pub use parse::{dpkg_version, feeds, status};

use std::cmp::Ordering;
use std::collections::HashMap;

use super::{CheckKind, JudgeCtx};
use crate::finding_codes;
use crate::verdict::{Finding, FindingCode, Severity, Verdict};
use apt_policy::{AptPolicy, PackageFile, PackageRef, Pin};
use dpkg_version::compare_lenient;
use feeds::Advisory;
use status::{Available, Installed};

pub struct PatchLevel;

finding_codes! {
    pub enum Code {
        OpenAdvisory = ("open_advisory", High, "an advisory affects the installed version of a package"),
        PendingSecurityUpdate = ("pending_security_update", High, "a security archive offers a newer version of an installed package"),
        SecurityUpdateHeldBack = ("security_update_held_back", High, "a security archive offers a newer version that apt's priorities (pins, NotAutomatic) keep from being installed"),
        PendingUpdates = ("pending_updates", Medium, "more pending updates than the policy tolerates"),
        AptStale = ("apt_stale", Medium, "apt has not refreshed its package indices recently"),
        UnattendedUpgradesOff = ("unattended_upgrades_off", High, "unattended-upgrades is not installed or not enabled"),
        UnattendedUpgradesStale = ("unattended_upgrades_stale", Medium, "unattended-upgrades is enabled but has not run recently"),
        RebootRequired = ("reboot_required", Medium, "an update asked for a reboot that has not happened"),
        KernelOutdated = ("kernel_outdated", Medium, "a newer kernel is installed than the one running"),
        KernelUnmanaged = ("kernel_unmanaged", Info, "the running kernel is not from an installed package (container or custom kernel)"),
    }
}

/// Kernel image packages: `linux-image-<release>` (not the meta packages).
fn kernel_release(pkg: &str) -> Option<&str> {
    pkg.strip_prefix("linux-image-")
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|r| !r.ends_with("-dbg") && !r.ends_with("-unsigned"))
}

/// An installed package whose candidate (the version apt would install,
/// pins considered) is newer, and the newest security version up to it.
pub struct Pending<'a> {
    pub pkg: &'a Installed,
    /// The candidate.
    pub newest: &'a Available,
    /// From a security archive: the candidate or a version between the
    /// installed one and it.
    pub security: Option<&'a Available>,
}

/// Pending updates as apt's policy chooses them, and how many installed
/// packages have a newer version that the priorities keep out.
pub struct PendingSet<'a> {
    pub pending: Vec<Pending<'a>>,
    pub held_back: Vec<(&'a Installed, &'a Available)>,
    /// Security versions newer than both the installed version and the
    /// candidate: fixes apt would not install.
    pub security_held: Vec<(&'a Installed, &'a Available)>,
    /// Each package file's priority and description, as `apt-cache policy`
    /// lists them (`500 release v=12,o=Debian,a=stable,…`), without repeats.
    pub files: Vec<String>,
}

/// The pending updates of `installed`, each candidate chosen by apt's
/// policy over the package `files`, `pins` and default release. Entries
/// without a file are of an unknown archive (priority 500).
pub fn pending<'a>(
    installed: &'a [Installed],
    available: &'a [Available],
    files: &[PackageFile],
    pins: &[Pin],
    default_release: Option<&str>,
) -> Result<PendingSet<'a>, apt_policy::AptError> {
    let mut all = files.to_vec();
    let status = all.len();
    all.push(PackageFile::dpkg_status());
    let unknown = all.len();
    all.push(PackageFile {
        name: "an index of unknown archive".into(),
        ..PackageFile::default()
    });
    let policy = AptPolicy::new(&all, pins, default_release)?;
    let native = installed
        .iter()
        .find(|i| i.name == "dpkg")
        .map(|i| i.arch.as_str());
    let mut by_name: HashMap<&str, Vec<&Available>> = HashMap::new();
    for a in available {
        by_name.entry(a.name.as_str()).or_default().push(a);
    }
    let mut listed: Vec<String> = Vec::new();
    for (i, f) in all.iter().enumerate() {
        let line = format!("{} {}", policy.file_priority(i), f.describe());
        if i != unknown && !listed.contains(&line) {
            listed.push(line);
        }
    }
    let mut out = PendingSet {
        pending: Vec::new(),
        held_back: Vec::new(),
        security_held: Vec::new(),
        files: listed,
    };
    for pkg in installed {
        let Some(cands) = by_name.get(pkg.name.as_str()) else {
            continue;
        };
        // The versions apt knows for this package, each with its entries.
        let mut versions: Vec<apt_policy::Version> = Vec::new();
        let mut entries: Vec<Vec<&Available>> = Vec::new();
        for a in cands
            .iter()
            .filter(|a| a.arch == pkg.arch || a.arch == "all" || pkg.arch == "all")
        {
            let file = a.file.filter(|f| *f < files.len()).unwrap_or(unknown);
            match versions
                .iter()
                .position(|v| compare_lenient(v.version, &a.version) == Ordering::Equal)
            {
                Some(i) => {
                    if let (Some(v), Some(e)) = (versions.get_mut(i), entries.get_mut(i)) {
                        v.files.push(file);
                        e.push(a);
                    }
                }
                None => {
                    let (source, source_version) = if a.source.is_empty() {
                        (pkg.source.as_str(), a.version.as_str())
                    } else if a.source_version.is_empty() {
                        (a.source.as_str(), a.version.as_str())
                    } else {
                        (a.source.as_str(), a.source_version.as_str())
                    };
                    versions.push(apt_policy::Version {
                        version: &a.version,
                        source,
                        source_version,
                        files: vec![file],
                    });
                    entries.push(vec![a]);
                }
            }
        }
        match versions
            .iter_mut()
            .find(|v| compare_lenient(v.version, &pkg.version) == Ordering::Equal)
        {
            Some(v) => v.files.push(status),
            None => versions.push(apt_policy::Version {
                version: &pkg.version,
                source: &pkg.source,
                source_version: &pkg.source_version,
                files: vec![status],
            }),
        }
        let me = PackageRef {
            name: &pkg.name,
            arch: &pkg.arch,
            native,
        };
        let cand = policy
            .candidate(&me, &versions, Some(&pkg.version))
            .and_then(|i| Some((versions.get(i)?.version, entries.get(i)?)));
        let newer = |v: &str| compare_lenient(v, &pkg.version) == Ordering::Greater;
        let newest_offered = cands
            .iter()
            .filter(|a| a.arch == pkg.arch || a.arch == "all" || pkg.arch == "all")
            .filter(|a| newer(&a.version))
            .max_by(|a, b| compare_lenient(&a.version, &b.version))
            .copied();
        let top = cand
            .map(|(v, _)| v)
            .filter(|v| newer(v))
            .unwrap_or(pkg.version.as_str());
        if let Some(sec) = entries
            .iter()
            .flatten()
            .filter(|a| a.security && compare_lenient(&a.version, top) == Ordering::Greater)
            .max_by(|a, b| compare_lenient(&a.version, &b.version))
        {
            out.security_held.push((pkg, sec));
        }
        let Some((cv, centries)) = cand.filter(|(v, _)| newer(v)) else {
            if let Some(n) = newest_offered {
                out.held_back.push((pkg, n));
            }
            continue;
        };
        if let Some(n) =
            newest_offered.filter(|n| compare_lenient(&n.version, cv) == Ordering::Greater)
        {
            out.held_back.push((pkg, n));
        }
        let security = entries
            .iter()
            .flatten()
            .filter(|a| a.security && newer(&a.version))
            .filter(|a| compare_lenient(&a.version, cv) != Ordering::Greater)
            .max_by(|a, b| compare_lenient(&a.version, &b.version))
            .copied();
        let Some(newest) = centries
            .iter()
            .find(|a| a.security)
            .or_else(|| centries.first())
            .copied()
        else {
            continue;
        };
        out.pending.push(Pending {
            pkg,
            newest,
            security,
        });
    }
    Ok(out)
}

/// Whether `a` affects an installed package; the installed package it hits.
fn affected<'a>(a: &Advisory, installed: &'a [Installed]) -> Vec<(&'a Installed, String)> {
    let mut out = Vec::new();
    for p in installed {
        let (name, version) = if a.binary {
            (&p.name, &p.version)
        } else {
            (&p.source, &p.source_version)
        };
        if *name != a.package {
            continue;
        }
        // debsecan lists the release's fixed versions besides unstable's;
        // a later update of the release carries the fix as well.
        if a.also_fixed
            .iter()
            .any(|v| compare_lenient(version, v) != Ordering::Less)
        {
            continue;
        }
        let open = match &a.fixed {
            Some(f) => compare_lenient(version, f) == Ordering::Less,
            None => true,
        };
        if open && !out.iter().any(|(_, v): &(&Installed, String)| v == version) {
            out.push((p, version.clone()));
        }
    }
    out
}

fn urgency_severity(u: &str) -> Severity {
    match u.trim_end_matches('*').trim_end_matches(" (probably)") {
        "high" | "critical" => Severity::High,
        "medium" | "not yet assigned" | "" => Severity::Medium,
        "low" => Severity::Low,
        _ => Severity::Info,
    }
}

fn truthy(v: &str) -> bool {
    let v = v.trim().trim_matches('"').to_ascii_lowercase();
    matches!(v.as_str(), "true" | "yes" | "on" | "always")
        || v.parse::<i64>().is_ok_and(|n| n > 0)
        || humantime::parse_duration(&v).is_ok_and(|d| !d.is_zero())
}

/// `http://127.0.0.1:PORT/path` (or `localhost`, `[::1]`): the host and port
/// to connect to and the path; `None` for any other URL.
pub fn loopback_http(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => (rest, "/"),
    };
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() && !h.is_empty() => h,
        _ if authority.ends_with(']') || !authority.contains(':') => authority,
        _ => return None,
    };
    let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
    if !loopback {
        return None;
    }
    let addr = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Some((addr, path.to_owned()))
}

impl CheckKind for PatchLevel {
    type Params = Params;
    type Facts = Facts;
    type Evidence = Evidence;
    type Code = Code;
    const SUMMARY: &'static str = "no pending security updates or open advisories, apt fresh, unattended-upgrades on, no reboot or newer kernel pending";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        if let Some(a) = &p.advisories {
            if a != "reporter"
                && a.contains("://")
                && !a.starts_with("file://")
                && loopback_http(a).is_none()
            {
                out.push((
                    Some("advisories"),
                    format!("`{a}`: only file paths, file:// URLs and http:// on the loopback address are read (no network is assumed); download the feed to a file"),
                ));
            }
        }
        if p.max_days_since_update == 0 {
            out.push((
                Some("max_days_since_update"),
                "must be at least 1 day".into(),
            ));
        }
        out
    }

    fn judge(p: &Params, f: &Facts, ctx: &JudgeCtx) -> Verdict {
        if !f.errors.is_empty() {
            return Verdict::error(f.errors.join("; "));
        }
        if f.installed.is_empty() {
            return Verdict::error(format!("`{}` lists no installed package", p.dpkg_status));
        }
        let mut findings: Vec<Finding> = Vec::new();
        let mut not_checked: Vec<&str> = Vec::new();

        // Pending updates, as apt's policy chooses the candidates.
        let set = match pending(
            &f.installed,
            &f.available,
            &f.files,
            &f.pins,
            f.default_release.as_deref(),
        ) {
            Ok(s) => s,
            Err(e) => return Verdict::error(e.to_string()),
        };
        let pend = &set.pending;
        let security: Vec<&Pending> = pend.iter().filter(|x| x.security.is_some()).collect();
        let over = security.len() > p.max_pending_security as usize;
        for x in &security {
            let s = x
                .security
                .map(|s| (s.version.as_str(), s.origin.as_str()))
                .unwrap_or_default();
            let mut fd = Code::PendingSecurityUpdate.finding(
                &x.pkg.name,
                format!(
                    "{} {} installed, {} available from {}",
                    x.pkg.name, x.pkg.version, s.0, s.1
                ),
            );
            if !over {
                fd.severity = Severity::Info;
            }
            findings.push(fd);
        }
        for (pkg, sec) in &set.security_held {
            findings.push(Code::SecurityUpdateHeldBack.finding(
                &pkg.name,
                format!(
                    "{} {} installed, {} available from {} but apt's priorities keep it out (see `apt-cache policy {}`)",
                    pkg.name, pkg.version, sec.version, sec.origin, pkg.name
                ),
            ));
        }
        if let Some(max) = p.max_pending {
            if pend.len() > max as usize {
                let names: Vec<&str> = pend.iter().take(10).map(|x| x.pkg.name.as_str()).collect();
                findings.push(Code::PendingUpdates.finding(
                    "apt",
                    format!(
                        "{} pending updates (at most {max} tolerated): {}{}",
                        pend.len(),
                        names.join(", "),
                        if pend.len() > 10 { ", …" } else { "" }
                    ),
                ));
            }
        }

        // apt freshness.
        if f.indices == 0 {
            findings.push(Code::AptStale.finding(
                &p.apt_lists,
                format!(
                    "no package indices in `{}`: pending updates cannot be determined",
                    p.apt_lists
                ),
            ));
        } else {
            match f.apt_updated {
                None => findings
                    .push(Code::AptStale.finding("apt", "apt has never refreshed its indices")),
                Some(t) => {
                    let days = (ctx.now - t).num_hours() as f64 / 24.0;
                    if days > f64::from(p.max_days_since_update) {
                        findings.push(Code::AptStale.finding(
                            "apt",
                            format!("apt last refreshed its indices {days:.1} days ago ({}; at most {} days)", f.apt_updated_from, p.max_days_since_update),
                        ));
                    }
                }
            }
        }

        // unattended-upgrades.
        if p.require_unattended_upgrades {
            let u = &f.unattended;
            let enabled = u
                .periodic
                .get("Unattended-Upgrade")
                .is_some_and(|v| truthy(v));
            if !u.installed {
                findings.push(Code::UnattendedUpgradesOff.finding(
                    "unattended-upgrades",
                    "the unattended-upgrades package is not installed",
                ));
            } else if !enabled {
                findings.push(Code::UnattendedUpgradesOff.finding(
                    "unattended-upgrades",
                    format!(
                            "APT::Periodic::Unattended-Upgrade is {}",
                            u.periodic
                                .get("Unattended-Upgrade")
                                .map_or("not set".into(), |v| format!("`{v}`"))
                        ),
                ));
            } else {
                let limit = i64::from(p.max_days_since_update.max(2));
                match u.last_run {
                    None => findings.push(Code::UnattendedUpgradesStale.finding(
                        "unattended-upgrades",
                        "unattended-upgrades is enabled but has never run",
                    )),
                    Some(t) if (ctx.now - t).num_days() > limit => {
                        findings.push(Code::UnattendedUpgradesStale.finding(
                            "unattended-upgrades",
                            format!(
                                "unattended-upgrades last ran {} days ago",
                                (ctx.now - t).num_days()
                            ),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }

        // Reboot.
        if p.check_reboot {
            if let Some(pkgs) = &f.reboot_required {
                findings.push(Code::RebootRequired.finding(
                    "/var/run/reboot-required",
                    if pkgs.is_empty() {
                        "a reboot is required".to_owned()
                    } else {
                        format!("a reboot is required by {}", pkgs.join(", "))
                    },
                ));
            }
        }

        // Kernel.
        let mut kernel_ev = None;
        if p.check_kernel {
            let kernels: Vec<(&Installed, &str)> = f
                .installed
                .iter()
                .filter_map(|i| kernel_release(&i.name).map(|r| (i, r)))
                .collect();
            let newest = kernels
                .iter()
                .max_by(|a, b| compare_lenient(&a.0.version, &b.0.version));
            match (&f.running_kernel, newest) {
                (None, _) => not_checked.push("running kernel (unknown)"),
                (Some(run), Some((newest, newest_rel))) => {
                    match kernels.iter().find(|(_, r)| r == run) {
                        Some((pkg, _)) if compare_lenient(&pkg.version, &newest.version) == Ordering::Less || (pkg.version == newest.version && run != newest_rel && compare_lenient(newest_rel, run) == Ordering::Greater) => {
                            findings.push(Code::KernelOutdated.finding(
                                run.clone(),
                                format!("running kernel {run} ({}) but {} {} is installed: reboot into it", pkg.version, newest.name, newest.version),
                            ));
                        }
                        Some(_) => {}
                        None => findings.push(Code::KernelUnmanaged.finding(
                            run.clone(),
                            format!("running kernel {run} is not from an installed package (newest installed: {} {})", newest.name, newest.version),
                        )),
                    }
                }
                (Some(run), None) => findings.push(Code::KernelUnmanaged.finding(
                    run.clone(),
                    format!("running kernel {run} and no linux-image package installed (container or custom kernel): not compared"),
                )),
            }
            kernel_ev = Some(KernelEvidence {
                running: f.running_kernel.clone(),
                installed: kernels
                    .iter()
                    .map(|(i, _)| format!("{} {}", i.name, i.version))
                    .collect(),
            });
        }

        // Advisories.
        let mut adv_ev = AdvisoriesEvidence::NotChecked(
            "not checked: no `advisories` feed configured".to_owned(),
        );
        match &f.advisories {
            None => not_checked.push("advisories (no feed configured)"),
            Some(Err(e)) => return Verdict::error(format!("advisories: {e}")),
            Some(Ok(feed)) => {
                let mut open = 0;
                let mut unfixed = 0;
                for a in &feed.advisories {
                    if p.ignore_urgencies
                        .iter()
                        .any(|u| a.urgency.trim_end_matches('*') == u)
                    {
                        continue;
                    }
                    for (pkg, version) in affected(a, &f.installed) {
                        if a.fixed.is_none() {
                            unfixed += 1;
                            if !p.include_unfixed {
                                continue;
                            }
                        }
                        open += 1;
                        let mut fd = Code::OpenAdvisory.finding(
                            format!("{} {}", a.id, a.package),
                            format!(
                                "{} affects {} {} (installed {}{}); fixed in {}; urgency {}",
                                a.id,
                                if a.binary {
                                    "package"
                                } else {
                                    "source package"
                                },
                                a.package,
                                pkg.name,
                                if version == pkg.version {
                                    format!(" {version}")
                                } else {
                                    format!(" {}, source {version}", pkg.version)
                                },
                                match (a.also_fixed.last(), &a.fixed) {
                                    (Some(rel), Some(unstable)) =>
                                        format!("{rel} (unstable: {unstable})"),
                                    (Some(rel), None) => rel.clone(),
                                    (None, Some(f)) => f.clone(),
                                    (None, None) => "no version yet".into(),
                                },
                                if a.urgency.is_empty() {
                                    "unassigned"
                                } else {
                                    &a.urgency
                                },
                            ),
                        );
                        fd.severity = urgency_severity(&a.urgency);
                        findings.push(fd);
                    }
                }
                adv_ev = AdvisoriesEvidence::Checked(AdvisoryCounts {
                    source: feed.source.clone(),
                    format: feed.format.clone(),
                    release: feed.release.clone(),
                    entries_for_installed: feed.advisories.len(),
                    open,
                    unfixed,
                });
            }
        }

        const LISTED: usize = 200;
        let listed: Vec<String> = pend
            .iter()
            .take(LISTED)
            .map(|x| {
                format!(
                    "{} {} -> {} ({})",
                    x.pkg.name, x.pkg.version, x.newest.version, x.newest.origin
                )
            })
            .collect();
        let held: Vec<String> = set
            .held_back
            .iter()
            .take(LISTED)
            .map(|(p, a)| {
                format!(
                    "{} {} ({} {} not chosen)",
                    p.name, p.version, a.version, a.origin
                )
            })
            .collect();
        let evidence = Evidence {
            installed: f.installed.len(),
            indices: f.indices,
            pending: pend.len(),
            pending_security: security.len(),
            pending_list: listed,
            pins: f.pins.len(),
            package_files: set.files.clone(),
            pin_warnings: f.pin_warnings.clone(),
            default_release: f.default_release.clone(),
            held_back_by_priority: set.held_back.len(),
            held_back_list: held,
            apt_updated: f.apt_updated,
            apt_updated_from: f.apt_updated_from.clone(),
            unattended_upgrades: f.unattended.clone(),
            reboot_required: f.reboot_required.clone(),
            kernel: kernel_ev,
            advisories: adv_ev,
            not_checked: not_checked.iter().map(|s| (*s).to_owned()).collect(),
        };
        let mut ok = format!(
            "{} packages, {} pending ({} security), apt fresh",
            f.installed.len(),
            pend.len(),
            security.len()
        );
        if !not_checked.is_empty() {
            ok.push_str(&format!("; not checked: {}", not_checked.join(", ")));
        }
        Verdict::from_findings(findings, ok, evidence)
    }
}

#[cfg(test)]
mod tests;
