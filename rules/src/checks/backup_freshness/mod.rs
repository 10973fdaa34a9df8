//! `backup_freshness`: nightly backups, several sets, several locations,
//! encrypted in transit and at rest.
//!
//! The agent runs `restic snapshots --json`, `borg list --json` / `borg info
//! --json`, or reads a directory of dated sets or a manifest, and hands the
//! output to the parsers here ([`parse_restic_snapshots`], [`parse_borg_list`],
//! [`parse_borg_encryption`], [`parse_manifest`], [`set_time_from_name`]), so
//! the facts hold only set times, ids and counts. [`judge_transport`] decides
//! from a repository string (and the mount it sits on) whether backups travel
//! encrypted. Passwords never enter the facts: the collector passes a password
//! *file* to the programs and keeps nothing of it.
//!
//! The anatomy: [`params`] (policy parameters), [`facts`] (what the agent
//! gathers), [`parse`] (pure parsers of tool output), [`location`] (which
//! host holds a repository, how backups travel), [`evidence`] (typed
//! evidence) and the judge here.

use std::collections::BTreeSet;

use super::{CheckKind, JudgeCtx};
use crate::finding_codes;
use crate::verdict::{FindingCode, Verdict};

pub mod evidence;
pub mod facts;
pub mod location;
pub mod params;
pub mod parse;

pub use evidence::*;
pub use facts::*;
pub use location::*;
pub use params::*;
pub use parse::*;

pub struct BackupFreshness;

finding_codes! {
    pub enum Code {
        Stale = ("stale", High, "the newest backup set of a location is older than `max_age_hours`"),
        NoSets = ("no_sets", High, "a location holds no backup set at all"),
        TooFewSets = ("too_few_sets", Medium, "a location keeps fewer sets than `min_sets`"),
        TooFewLocations = ("too_few_locations", High, "fewer distinct hosts than `min_locations` hold a fresh backup (a location is the host that holds the repository)"),
        UnencryptedTransport = ("unencrypted_transport", High, "backups reach a location over a connection that is not encrypted"),
        UnencryptedRepository = ("unencrypted_repository", High, "a borg repository is not encrypted (`encryption.mode` is `none`)"),
        MissingPath = ("missing_path", High, "the newest set lacks a path the policy requires"),
        DataCheckFailed = ("data_check_failed", High, "`restic check --read-data-subset` found damaged data"),
        ChecksumMismatch = ("checksum_mismatch", High, "the newest set's file does not match its manifest checksum"),
        FutureSet = ("future_set", Low, "a set is dated in the future: a clock is wrong"),
    }
}

fn hours(d: chrono::Duration) -> String {
    let h = d.num_minutes() as f64 / 60.0;
    if h >= 48.0 {
        format!("{:.1} days", h / 24.0)
    } else {
        format!("{h:.1} h")
    }
}

impl CheckKind for BackupFreshness {
    type Params = Params;
    type Facts = Facts;
    type Evidence = Evidence;
    type Code = Code;
    const SUMMARY: &'static str =
        "nightly backups: newest set age, set count and distinct locations, encrypted transport";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        if p.sources.is_empty() {
            out.push((
                Some("sources"),
                "give at least one backup source".to_owned(),
            ));
        }
        for s in &p.sources {
            if s.location.trim().is_empty() {
                out.push((
                    Some("sources"),
                    "a source has an empty `location`".to_owned(),
                ));
            }
            match s.kind {
                Kind::Restic | Kind::Borg => {
                    if s.manifest.is_some() {
                        out.push((
                            Some("sources"),
                            format!(
                                "`manifest` is for `directory` sources, not `{}`",
                                s.kind.as_str()
                            ),
                        ));
                    }
                }
                Kind::Directory => {
                    if s.password_file.is_some() || s.host.is_some() {
                        out.push((
                            Some("sources"),
                            "`password_file` and `host` are for restic and borg sources".to_owned(),
                        ));
                    }
                    if !s.location.starts_with('/') {
                        out.push((
                            Some("sources"),
                            format!(
                                "a `directory` location must be an absolute path, not `{}`",
                                s.location
                            ),
                        ));
                    }
                }
            }
            if s.kind == Kind::Borg && s.host.is_some() {
                out.push((Some("sources"), "`host` is for restic sources".to_owned()));
            }
        }
        if p.max_age_hours == 0 {
            out.push((Some("max_age_hours"), "must be at least 1".to_owned()));
        }
        if p.min_locations as usize > p.sources.len() && !p.sources.is_empty() {
            out.push((
                Some("min_locations"),
                format!(
                    "asks for {} locations but only {} sources are listed",
                    p.min_locations,
                    p.sources.len()
                ),
            ));
        }
        if let Err(e) = parse_zone(&p.time_zone) {
            out.push((Some("time_zone"), e.to_string()));
        }
        if p.command_timeout_seconds == 0 {
            out.push((
                Some("command_timeout_seconds"),
                "must be at least 1".to_owned(),
            ));
        }
        if let Some(s) = &p.read_data_subset {
            if s.trim().is_empty() || s.starts_with('-') {
                out.push((
                    Some("read_data_subset"),
                    format!("`{s}` is not a subset like `5%` or `1/20`"),
                ));
            }
        }
        out
    }

    fn judge(p: &Params, facts: &Facts, ctx: &JudgeCtx) -> Verdict {
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let max_age = chrono::Duration::hours(p.max_age_hours as i64);
        let mut fresh_hosts: BTreeSet<String> = BTreeSet::new();
        let mut evidence_sources = Vec::new();
        let this = ThisHost::new(&ctx.host, &facts.host_names);
        // Each source's host; names of one host (short and dotted) are
        // folded into the first seen.
        let mut known: Vec<String> = Vec::new();
        let holders: Vec<String> = facts
            .sources
            .iter()
            .map(|s| {
                let h = host_of_source(s, &this);
                match known.iter().find(|k| same_host(k, &h)) {
                    Some(k) => k.clone(),
                    None => {
                        known.push(h.clone());
                        h
                    }
                }
            })
            .collect();
        for (s, holder) in facts.sources.iter().zip(&holders) {
            let subject = s.location.clone();
            let transport = judge_transport(s.kind, &s.location, s.mount.as_ref());
            evidence_sources.push(SourceEvidence {
                kind: s.kind.as_str().to_owned(),
                location: s.location.clone(),
                site: s.site.clone(),
                host: holder.clone(),
                sets: s.sets.len(),
                newest: s.sets.iter().map(|x| x.time).max(),
                transport: transport.clone(),
                encryption_mode: s.encryption_mode.clone(),
                error: s.error.clone(),
                listing: s.cached_listing.as_ref().map(|c| ListingEvidence {
                    from_cache: true,
                    listed_at: c.listed_at,
                    unchanged_since: c.unchanged_since,
                    required_paths_cached: c.required_paths_cached,
                }),
            });
            if p.require_encrypted_transport {
                if let Transport::Plain { why } = &transport {
                    if !s.local {
                        findings.push(Code::UnencryptedTransport.finding(
                            &subject,
                            format!("{} location `{subject}`: {why} (the policy requires encrypted transport; mark the source `local: true` if it is on this host)", s.kind.as_str()),
                        ));
                    }
                }
            }
            if let Some(e) = &s.error {
                errors.push(format!("{} `{subject}`: {e}", s.kind.as_str()));
                continue;
            }
            if p.require_encrypted_repository {
                if let Some(mode) = &s.encryption_mode {
                    if mode == "none" || mode.is_empty() {
                        findings.push(Code::UnencryptedRepository.finding(
                            &subject,
                            format!("{} repository `{subject}` is not encrypted (encryption mode `{mode}`)", s.kind.as_str()),
                        ));
                    }
                }
            }
            let newest = s.sets.iter().max_by_key(|x| x.time);
            let mut fresh = false;
            match newest {
                None => findings.push(Code::NoSets.finding(
                    &subject,
                    format!("{} location `{subject}` holds no backup set (the policy asks for one younger than {} h)", s.kind.as_str(), p.max_age_hours),
                )),
                Some(n) => {
                    let age = ctx.now - n.time;
                    if age > max_age {
                        findings.push(Code::Stale.finding(
                            &subject,
                            format!(
                                "newest set `{}` at `{subject}` is from {} ({} old), older than the policy's {} h",
                                n.id,
                                n.time.format("%Y-%m-%d %H:%M UTC"),
                                hours(age),
                                p.max_age_hours
                            ),
                        ));
                    } else {
                        fresh = true;
                    }
                    if age < -chrono::Duration::minutes(10) {
                        findings.push(Code::FutureSet.finding(
                            &subject,
                            format!("set `{}` at `{subject}` is dated {}, {} in the future", n.id, n.time.format("%Y-%m-%d %H:%M UTC"), hours(-age)),
                        ));
                    }
                }
            }
            if !s.sets.is_empty() && (s.sets.len() as u64) < p.min_sets {
                findings.push(Code::TooFewSets.finding(
                    &subject,
                    format!(
                        "`{subject}` keeps {} set{}, the policy asks for at least {}",
                        s.sets.len(),
                        if s.sets.len() == 1 { "" } else { "s" },
                        p.min_sets
                    ),
                ));
            }
            for rp in s.required_paths.iter().filter(|r| !r.present) {
                findings.push(Code::MissingPath.finding(
                    &subject,
                    format!(
                        "the newest set{} at `{subject}` does not contain `{}`",
                        newest.map(|n| format!(" `{}`", n.id)).unwrap_or_default(),
                        rp.path
                    ),
                ));
            }
            // An incomplete or damaged newest set does not make a location good.
            let mut damaged = s.required_paths.iter().any(|r| !r.present);
            if let Some(dc) = &s.data_check {
                if !dc.ok {
                    damaged = true;
                    findings.push(Code::DataCheckFailed.finding(
                        &subject,
                        format!(
                            "`restic check --read-data-subset {}` failed at `{subject}`: {}",
                            dc.subset, dc.detail
                        ),
                    ));
                }
            }
            if let Some(cs) = &s.checksum {
                if !cs.ok {
                    damaged = true;
                    findings.push(Code::ChecksumMismatch.finding(
                        &subject,
                        format!("set `{}` at `{subject}`: {}", cs.set, cs.detail),
                    ));
                }
            }
            if fresh && !damaged {
                fresh_hosts.insert(holder.clone());
            }
        }
        let evidence = Evidence {
            sources: evidence_sources,
            fresh_hosts: fresh_hosts.clone(),
            max_age_hours: p.max_age_hours,
            min_sets: p.min_sets,
            min_locations: p.min_locations,
        };
        if !errors.is_empty() {
            let mut v = Verdict::error(errors.join("; "));
            v.findings = findings;
            v.evidence = crate::verdict::to_json(&evidence);
            return v;
        }
        if facts.sources.is_empty() {
            return Verdict::error("no backup source was read");
        }
        if (fresh_hosts.len() as u64) < p.min_locations {
            let n = fresh_hosts.len();
            let listed = if n == 0 {
                String::new()
            } else {
                format!(
                    " ({})",
                    fresh_hosts.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            let wheres = facts
                .sources
                .iter()
                .zip(&holders)
                .map(|(s, h)| format!("`{}` on {h}", s.location))
                .collect::<Vec<_>>()
                .join(", ");
            findings.push(Code::TooFewLocations.finding(
                "backups",
                format!(
                    "{n} distinct host{} hold{} a fresh backup{listed}, the policy asks for at least {} (a location is the host that holds it: {wheres})",
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "s" } else { "" },
                    p.min_locations,
                ),
            ));
        }
        let newest_overall = facts
            .sources
            .iter()
            .flat_map(|s| s.sets.iter().map(|x| x.time))
            .max();
        let ok = format!(
            "{} host{} with fresh backups, newest {}",
            fresh_hosts.len(),
            if fresh_hosts.len() == 1 { "" } else { "s" },
            newest_overall.map_or_else(
                || "none".to_owned(),
                |t| format!("{} old", hours(ctx.now - t))
            )
        );
        Verdict::from_findings(findings, ok, evidence)
    }
}

/// The sites of a policy's sources, in order (for collectors).
pub fn site_of(spec: &SourceSpec) -> String {
    spec.site
        .clone()
        .unwrap_or_else(|| default_site(spec.kind, &spec.location))
}

#[cfg(test)]
mod tests;
