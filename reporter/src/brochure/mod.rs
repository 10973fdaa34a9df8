//! The customer-facing security brochure (`/brochure.pdf`, `vigil-reporter
//! render brochure`), its machine-readable twin (`/trust.json`), and the
//! policy as a PDF (`/policy.pdf`).
//!
//! Three steps: [`gather`] reads the store into a [`Trust`] value (pure
//! shaping in [`shape`]); [`render_pdf`] hands that value to a Typst template
//! as JSON through `sys.inputs` (never spliced into markup) and typesets it
//! with fonts embedded in the binary.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sha2::{Digest, Sha256};
use typst::foundations::{Dict, IntoValue};
use typst_as_lib::{TypstEngine, TypstTemplateMainFile};

use crate::fleet::compute_posture;
use crate::posture::{rfc3339, Posture};
use crate::state::{AppState, Shared};
use crate::store::now_ms;

pub const SCHEMA: &str = "vigil.trust/v1";
/// How long a brochure's statements stand without a newer one.
pub const VALID_DAYS: i64 = 7;

// INVARIANT: nothing in `Trust` comes from a report's free text or names an
// internal: no host names, paths, repository URLs, check summaries, finding
// messages or errors. It is built from statuses, counts, dates, control ids
// and titles of the published policy, certificate issuers and digests.

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Trust {
    pub schema: &'static str,
    pub organization: String,
    /// Whether a policy is published; without one the brochure states no commitments.
    pub published_policy: bool,
    pub policy: PolicyInfo,
    pub generated_at: String,
    pub valid_until: String,
    /// `generated_at` in words, for the cover.
    pub date: String,
    pub summary: Summary,
    pub sections: Vec<Section>,
    /// Per kind of evidence (certificates, backups, mirroring): counts only.
    pub evidence_kinds: Vec<EvidenceKind>,
    /// The latest signed audit-log checkpoint, when the reporter keeps an audit log.
    pub audit_checkpoint: Option<serde_json::Value>,
    pub evidence: Manifest,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PolicyInfo {
    pub id: String,
    pub version: String,
    pub title: String,
    pub description: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub controls: u32,
    pub verified: u32,
    pub attested: u32,
    pub not_met: u32,
    pub not_verified: u32,
    /// Controls failing under an approved, unexpired exception: never counted as met.
    pub exceptions: u32,
    pub hosts: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Section {
    pub name: String,
    pub controls: Vec<ControlLine>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ControlLine {
    pub id: String,
    pub title: String,
    pub status: String,
    /// The status in plain words.
    pub state: String,
    pub last_verified: Option<String>,
    /// Servers the commitment applies to, and those meeting it (passed or attested).
    pub hosts: u32,
    pub hosts_ok: u32,
    /// `verified on 12 of 12 servers`, in words.
    pub coverage: String,
    /// The framework requirements the commitment satisfies, as the policy maps
    /// them: `ISO 27001 A.8.24, A.8.20 · SOC 2 CC6.7`; empty when none.
    pub frameworks: String,
}

/// A framework's name as customers read it.
fn framework_label(name: &str) -> &str {
    match name {
        "iso27001" => "ISO 27001",
        "soc2" => "SOC 2",
        "cis_debian" => "CIS Debian",
        "nist_800_53" => "NIST 800-53",
        "pci_dss" => "PCI DSS",
        other => other,
    }
}

/// One kind of evidence across the fleet, without any server's detail.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EvidenceKind {
    /// `certificates`, `backups` or `mirroring`.
    pub kind: String,
    /// Checks of this kind in the servers' newest reports, and those passing.
    pub checks: u32,
    pub passing: u32,
    /// The newest report carrying one, RFC 3339.
    pub last_checked: Option<String>,
    /// Certificates only: the issuers seen and the next expiry still ahead (a date).
    pub issuers: Vec<String>,
    pub soonest_expiry: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Manifest {
    /// The newest report of every host, each with the SHA-256 of its stored body.
    pub reports: Vec<ManifestEntry>,
    /// SHA-256 of the lines `<sha256>  <report_id>\n`, in the order above.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ManifestEntry {
    pub report_id: String,
    pub finished_at: String,
    pub sha256: String,
}

pub fn plain_words(status: &str) -> &'static str {
    match status {
        "pass" => "Verified",
        "attested" => "Attested",
        "waived" => "Not met: exception approved",
        "fail" => "Not met",
        "error" => "Could not be verified",
        _ => "Not verified recently",
    }
}

/// `verified on 2 of 3 servers`, `attested`, `not checked by any server yet`.
pub fn coverage(status: &str, hosts: u32, ok: u32) -> String {
    let servers = |n: u32| if n == 1 { "server" } else { "servers" };
    if hosts == 0 {
        return "not checked by any server yet".to_owned();
    }
    if status == "attested" {
        return format!("attested for {ok} of {hosts} {}", servers(hosts));
    }
    format!("verified on {ok} of {hosts} {}", servers(hosts))
}

/// A time or date as `2 December 2026`; the input when it is neither.
pub fn date_words(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&chrono::Utc).date_naive())
        .or_else(|_| chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d"))
        .map(|d| d.format("%-d %B %Y").to_string())
        .unwrap_or_else(|_| t.to_owned())
}

/// The section a control belongs to: its `source` up to `, item`.
fn section_of(source: Option<&str>) -> String {
    source
        .map(|s| s.split(", item").next().unwrap_or(s).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "Other controls".to_owned())
}

/// Everything [`shape`] needs, read from the store.
pub struct Inputs {
    pub organization: String,
    pub policy: Option<crate::state::PolicyBlob>,
    pub posture: Posture,
    /// (report id, host, finished_at ms, body) of every host's newest report.
    pub reports: Vec<(String, String, i64, String)>,
    pub now: i64,
}

/// Shapes the brochure's content. Pure.
pub fn shape(i: &Inputs) -> Trust {
    let parsed = i
        .policy
        .as_ref()
        .and_then(|p| vigil_rules::policy::parse(p.yaml.as_bytes(), "policy").ok());
    let source_of = |id: &str| -> Option<String> {
        parsed
            .as_ref()
            .and_then(|p| p.controls.iter().find(|c| c.id == id))
            .and_then(|c| c.source.clone())
    };
    let frameworks_of = |id: &str| -> String {
        parsed
            .as_ref()
            .and_then(|p| p.controls.iter().find(|c| c.id == id))
            .map(|c| {
                c.frameworks
                    .iter()
                    .map(|(name, ids)| format!("{} {}", framework_label(name), ids.join(", ")))
                    .collect::<Vec<_>>()
                    .join(" · ")
            })
            .unwrap_or_default()
    };
    // The commitments are the published policy's controls, in its order.
    let policy_ids: Vec<&str> = i
        .policy
        .as_ref()
        .map(|p| p.controls.iter().map(|c| c.0.as_str()).collect())
        .unwrap_or_default();
    let mut sections: Vec<Section> = Vec::new();
    let mut summary = Summary {
        hosts: u32::try_from(i.posture.hosts.iter().filter(|h| !h.revoked).count())
            .unwrap_or(u32::MAX),
        ..Summary::default()
    };
    for id in &policy_ids {
        let Some(c) = i.posture.controls.iter().find(|c| c.id == *id) else {
            continue;
        };
        summary.controls += 1;
        match c.status.as_str() {
            "pass" => summary.verified += 1,
            "attested" => summary.attested += 1,
            "waived" => summary.exceptions += 1,
            "fail" => summary.not_met += 1,
            _ => summary.not_verified += 1,
        }
        // Posture counts only the hosts a control applies to.
        let hosts: u32 = c.counts.values().sum();
        // A waived host has not met the control: it is not counted as met.
        let ok: u32 = ["pass", "attested"]
            .iter()
            .filter_map(|s| c.counts.get(*s))
            .sum();
        let line = ControlLine {
            id: c.id.clone(),
            title: c.title.clone(),
            status: c.status.clone(),
            state: plain_words(&c.status).to_owned(),
            last_verified: c.last_verified.clone(),
            hosts,
            hosts_ok: ok,
            coverage: coverage(&c.status, hosts, ok),
            frameworks: frameworks_of(&c.id),
        };
        let name = section_of(source_of(&c.id).as_deref());
        match sections.iter_mut().find(|s| s.name == name) {
            Some(s) => s.controls.push(line),
            None => sections.push(Section {
                name,
                controls: vec![line],
            }),
        }
    }
    let mut kinds: Vec<EvidenceKind> = ["certificates", "backups", "mirroring"]
        .iter()
        .map(|k| EvidenceKind {
            kind: (*k).to_owned(),
            checks: 0,
            passing: 0,
            last_checked: None,
            issuers: vec![],
            soonest_expiry: None,
        })
        .collect();
    let mut last: Vec<Option<i64>> = vec![None; kinds.len()];
    let mut expiries: Vec<chrono::NaiveDate> = Vec::new();
    let mut entries = Vec::new();
    let mut reports: Vec<&(String, String, i64, String)> = i.reports.iter().collect();
    reports.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    for (id, _host, at, body) in reports {
        entries.push(ManifestEntry {
            report_id: id.clone(),
            finished_at: rfc3339(*at),
            sha256: hex::encode(Sha256::digest(body.as_bytes())),
        });
        let Ok(r) = serde_json::from_str::<vigil_rules::report::Report>(body) else {
            continue;
        };
        for c in &r.controls {
            for k in &c.checks {
                let n = match k.check_type.as_str() {
                    "tls_endpoint" | "tls_certificate_file" => 0,
                    "backup_freshness" => 1,
                    "mirror_lag" => 2,
                    _ => continue,
                };
                let (Some(kind), Some(l)) = (kinds.get_mut(n), last.get_mut(n)) else {
                    continue;
                };
                kind.checks += 1;
                if k.status.as_str() == "pass" {
                    kind.passing += 1;
                }
                *l = Some(l.map_or(*at, |x: i64| x.max(*at)));
                for leaf in vigil_rules::checks::tls::leaf_certificates(&k.check_type, &k.evidence)
                {
                    let issuer = leaf.issuer_cn().to_owned();
                    if !kind.issuers.contains(&issuer) {
                        kind.issuers.push(issuer);
                    }
                    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(&leaf.not_after) {
                        expiries.push(d.with_timezone(&chrono::Utc).date_naive());
                    }
                }
            }
        }
    }
    for (k, l) in kinds.iter_mut().zip(last) {
        k.last_checked = l.map(rfc3339);
        k.issuers.sort();
    }
    if let Some(k) = kinds.first_mut() {
        // The next to expire: an expired one is already counted as failing.
        let today = chrono::DateTime::from_timestamp_millis(i.now).map(|d| d.date_naive());
        k.soonest_expiry = expiries
            .iter()
            .filter(|d| today.is_none_or(|t| **d >= t))
            .min()
            .map(|d| d.format("%Y-%m-%d").to_string());
    }
    let mut lines = String::new();
    for e in &entries {
        lines.push_str(&format!("{}  {}\n", e.sha256, e.report_id));
    }
    let (id, version, title, description, sha) = match (&i.policy, &parsed) {
        (Some(b), Some(p)) => (
            b.id.clone(),
            b.version.clone(),
            p.meta.title.clone(),
            p.meta.description.clone().unwrap_or_default(),
            b.sha256.clone(),
        ),
        (Some(b), None) => (
            b.id.clone(),
            b.version.clone(),
            b.id.clone(),
            String::new(),
            b.sha256.clone(),
        ),
        _ => (
            String::new(),
            String::new(),
            "Security policy".to_owned(),
            String::new(),
            String::new(),
        ),
    };
    let date = chrono::DateTime::from_timestamp_millis(i.now)
        .map(|d| d.format("%-d %B %Y").to_string())
        .unwrap_or_default();
    Trust {
        schema: SCHEMA,
        organization: i.organization.clone(),
        published_policy: i.policy.is_some(),
        policy: PolicyInfo {
            id,
            version,
            title,
            description: description.trim().to_owned(),
            sha256: sha,
        },
        generated_at: rfc3339(i.now),
        valid_until: rfc3339(i.now.saturating_add(VALID_DAYS * 86_400_000)),
        date,
        summary,
        sections,
        evidence_kinds: kinds,
        audit_checkpoint: None,
        evidence: Manifest {
            reports: entries,
            sha256: hex::encode(Sha256::digest(lines.as_bytes())),
        },
    }
}

/// What the brochure's template reads: the trust content and its dates in words.
#[derive(Debug, Clone, Serialize)]
pub struct BrochureView<'a> {
    #[serde(flatten)]
    pub trust: &'a Trust,
    pub generated_on: String,
    pub valid_until_on: String,
    /// Per control id, `last_verified` in words.
    pub verified_on: BTreeMap<String, String>,
    /// Per evidence kind, `last_checked` and the soonest expiry in words.
    pub checked_on: BTreeMap<String, String>,
    pub expiry_on: Option<String>,
}

pub fn view(t: &Trust) -> BrochureView<'_> {
    BrochureView {
        trust: t,
        generated_on: date_words(&t.generated_at),
        valid_until_on: date_words(&t.valid_until),
        verified_on: t
            .sections
            .iter()
            .flat_map(|s| &s.controls)
            .filter_map(|c| {
                c.last_verified
                    .as_ref()
                    .map(|v| (c.id.clone(), date_words(v)))
            })
            .collect(),
        checked_on: t
            .evidence_kinds
            .iter()
            .filter_map(|k| {
                k.last_checked
                    .as_ref()
                    .map(|v| (k.kind.clone(), date_words(v)))
            })
            .collect(),
        expiry_on: t
            .evidence_kinds
            .first()
            .and_then(|k| k.soonest_expiry.as_deref())
            .map(date_words),
    }
}

/// Reads the store and shapes the brochure's content as of now.
pub async fn gather(state: &AppState) -> anyhow::Result<Trust> {
    let now = now_ms();
    let posture = compute_posture(state, now)
        .await
        .map_err(|e| anyhow::anyhow!("cannot compute the posture: {e}"))?;
    let mut reports = Vec::new();
    for (host, at, id) in crate::fleet_state::last_reports(&state.store).await? {
        if let Some(body) = state.store.report_body(&id).await? {
            reports.push((id, host, at, body));
        }
    }
    let mut trust = shape(&Inputs {
        organization: state.site.organization.clone(),
        policy: state.policy(),
        posture,
        reports,
        now,
    });
    // The latest signed checkpoint (issued now if the log grew), so a reader
    // can check that the statuses summarised here were logged.
    let cp = state.audit.checkpoint(&state.store).await?;
    trust.audit_checkpoint = Some(serde_json::json!({
        "origin": state.audit.origin,
        "size": cp.size,
        "root": cp.root,
        "note": cp.note,
        "public_key": state.audit.public_key_b64(),
    }));
    Ok(trust)
}

// --- Typst --------------------------------------------------------------------

const BROCHURE_TYP: &str = include_str!("brochure.typ");
const POLICY_TYP: &str = include_str!("policy.typ");
const CERTIFICATE_TYP: &str = include_str!("certificate.typ");

fn engine(which: &'static str) -> &'static TypstEngine<TypstTemplateMainFile> {
    static BROCHURE: OnceLock<TypstEngine<TypstTemplateMainFile>> = OnceLock::new();
    static POLICY: OnceLock<TypstEngine<TypstTemplateMainFile>> = OnceLock::new();
    static CERTIFICATE: OnceLock<TypstEngine<TypstTemplateMainFile>> = OnceLock::new();
    let (cell, src) = match which {
        "policy" => (&POLICY, POLICY_TYP),
        "certificate" => (&CERTIFICATE, CERTIFICATE_TYP),
        _ => (&BROCHURE, BROCHURE_TYP),
    };
    cell.get_or_init(|| {
        TypstEngine::builder()
            .main_file(src)
            .fonts(typst_assets::fonts())
            .build()
    })
}

/// Typesets `template` (`brochure` or `policy`) with `data` as
/// `sys.inputs.data` (a JSON string the template decodes).
pub fn render_pdf(template: &'static str, data: &impl Serialize) -> anyhow::Result<Vec<u8>> {
    let json = serde_json::to_string(data)?;
    let mut inputs = Dict::new();
    inputs.insert("data".into(), json.as_str().into_value());
    let doc: typst_layout::PagedDocument = engine(template)
        .compile_with_input(inputs)
        .output
        .map_err(|e| anyhow::anyhow!("typesetting the {template} failed: {e}"))?;
    typst_pdf::pdf(&doc, &typst_pdf::PdfOptions::default())
        .map_err(|e| anyhow::anyhow!("writing the {template} PDF failed: {e:?}"))
}

/// The brochure of `state` as PDF bytes.
pub async fn brochure_pdf(state: &AppState) -> anyhow::Result<Vec<u8>> {
    let trust = gather(state).await?;
    tokio::task::spawn_blocking(move || render_pdf("brochure", &view(&trust))).await?
}

// --- the policy document ----------------------------------------------------------

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PolicyDoc {
    pub organization: String,
    pub title: String,
    pub version: String,
    pub sha256: String,
    pub generated_at: String,
    /// `heading`, `para` or `item` (with its number).
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Block {
    pub kind: &'static str,
    pub text: String,
    pub number: Option<String>,
}

/// Splits the policy's plain text into headings, paragraphs and numbered
/// items: a short line without a final period that stands alone is a heading.
pub fn text_blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let paras: Vec<&str> = text
        .split("\n\n")
        .flat_map(|p| {
            // Numbered items one per line form one paragraph each.
            if p.lines().filter(|l| !l.trim().is_empty()).count() > 1
                && p.lines()
                    .all(|l| l.trim().is_empty() || item_number(l.trim()).is_some())
            {
                p.lines().collect::<Vec<_>>()
            } else {
                vec![p]
            }
        })
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    for p in paras {
        let joined = p.lines().map(str::trim).collect::<Vec<_>>().join(" ");
        if let Some((n, rest)) = item_number(&joined) {
            out.push(Block {
                kind: "item",
                text: rest.to_owned(),
                number: Some(n.to_owned()),
            });
        } else if joined.chars().count() < 60 && !joined.ends_with(['.', ':']) {
            out.push(Block {
                kind: "heading",
                text: joined,
                number: None,
            });
        } else {
            out.push(Block {
                kind: "para",
                text: joined,
                number: None,
            });
        }
    }
    out
}

fn item_number(line: &str) -> Option<(&str, &str)> {
    let (n, rest) = line.split_once(". ")?;
    (!n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()))
        .then_some((n, rest.trim()))
}

pub fn policy_doc(state: &AppState) -> PolicyDoc {
    let parsed = state
        .policy()
        .as_ref()
        .and_then(|p| vigil_rules::policy::parse(p.yaml.as_bytes(), "policy").ok());
    let blocks = match (&state.site.policy_text, &parsed) {
        (Some(text), _) => text_blocks(text),
        (None, Some(p)) => {
            let mut b = Vec::new();
            if let Some(d) = &p.meta.description {
                b.push(Block {
                    kind: "para",
                    text: d.trim().to_owned(),
                    number: None,
                });
            }
            let mut current = String::new();
            for c in &p.controls {
                let section = section_of(c.source.as_deref());
                if section != current {
                    b.push(Block {
                        kind: "heading",
                        text: section.clone(),
                        number: None,
                    });
                    current = section;
                }
                let number = c
                    .source
                    .as_deref()
                    .and_then(|s| s.rsplit("item ").next())
                    .filter(|n| n.bytes().all(|x| x.is_ascii_digit()))
                    .map(str::to_owned);
                b.push(Block {
                    kind: "item",
                    text: format!("{}.", c.title.trim_end_matches('.')),
                    number,
                });
            }
            b
        }
        (None, None) => vec![Block {
            kind: "para",
            text: "This reporter has no policy configured.".into(),
            number: None,
        }],
    };
    PolicyDoc {
        organization: state.site.organization.clone(),
        title: parsed
            .as_ref()
            .map_or_else(|| "Security Policy".to_owned(), |p| p.meta.title.clone()),
        version: state
            .policy()
            .as_ref()
            .map(|p| p.version.clone())
            .unwrap_or_default(),
        sha256: state
            .policy()
            .as_ref()
            .map(|p| p.sha256.clone())
            .unwrap_or_default(),
        generated_at: rfc3339(now_ms()),
        blocks,
    }
}

// --- routes -----------------------------------------------------------------------

/// The human-readable page of an erasure certificate (its JSON is what verifies).
pub fn certificate_data(cert: &serde_json::Value, organization: &str) -> serde_json::Value {
    let s = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let transitions: Vec<serde_json::Value> = cert
        .get("transitions")
        .and_then(|t| t.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|t| {
            let ev = t.get("evidence").cloned().unwrap_or_default();
            let lines: Vec<String> = match ev.get("hosts").and_then(|h| h.as_array()) {
                Some(hosts) => hosts
                    .iter()
                    .map(|h| {
                        format!(
                            "{}: report {}, evidence sha256 {}",
                            s(h, "host"),
                            s(h, "report_id"),
                            s(h, "digest")
                        )
                    })
                    .collect(),
                None if ev.is_null() => vec![],
                None => vec![ev.to_string()],
            };
            serde_json::json!({"to": s(t, "to"), "at": s(t, "at"), "by": s(t, "by"), "evidence": lines})
        })
        .collect();
    let audit = cert.get("audit").cloned().unwrap_or_default();
    let digest = hex::encode(sha2::Sha256::digest(
        crate::audit::canonical_json(cert).as_bytes(),
    ));
    serde_json::json!({
        "organization": organization,
        "account": s(cert, "account"),
        "requested_by": s(cert, "requested_by"),
        "reason": s(cert, "reason"),
        "requested_at": s(cert, "requested_at"),
        "closed_at": s(cert, "closed_at"),
        "generated_at": crate::posture::rfc3339(crate::store::now_ms()),
        "transitions": transitions,
        "json_sha256": digest,
        "signature": s(cert, "signature"),
        "public_key": s(&audit, "public_key"),
        "checkpoint": s(&audit, "checkpoint"),
        "tree_size": audit.get("tree_size").cloned().unwrap_or_default(),
        "entries": audit.get("entries").and_then(|e| e.as_array()).map_or(0, Vec::len),
    })
}

pub fn pdf_response(bytes: Vec<u8>, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

fn failed(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "rendering failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(serde_json::json!({"error": "internal error"})),
    )
        .into_response()
}

async fn brochure_route(State(state): State<Shared>) -> Response {
    match brochure_pdf(&state).await {
        Ok(b) => pdf_response(b, "security-brochure.pdf"),
        Err(e) => failed(e),
    }
}

async fn trust_route(State(state): State<Shared>) -> Response {
    match gather(&state).await {
        Ok(t) => Json(t).into_response(),
        Err(e) => failed(e),
    }
}

async fn policy_route(State(state): State<Shared>) -> Response {
    let doc = policy_doc(&state);
    match tokio::task::spawn_blocking(move || render_pdf("policy", &doc)).await {
        Ok(Ok(b)) => pdf_response(b, "security-policy.pdf"),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e.into()),
    }
}

/// Public: `/brochure.pdf`, `/trust.json`, `/policy.pdf`.
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/brochure.pdf", get(brochure_route))
        .route("/trust.json", get(trust_route))
        .route("/policy.pdf", get(policy_route))
}

/// Counts by status, for tests and the docs.
pub fn status_counts(t: &Trust) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    for s in &t.sections {
        for c in &s.controls {
            *m.entry(c.status.clone()).or_insert(0) += 1;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_text_becomes_headings_paragraphs_and_items() {
        let b = text_blocks("Security Policy\n\nWe believe security matters a great deal to all of us.\n\n  1. All traffic is protected.\n  2. Certificates by GANDI.\n\nBackups and redundancy\n\n  1. Nightly backups.\n");
        let kinds: Vec<_> = b.iter().map(|b| b.kind).collect();
        assert_eq!(
            kinds,
            ["heading", "para", "item", "item", "heading", "item"]
        );
        assert_eq!(b[3].number.as_deref(), Some("2"));
        assert_eq!(b[3].text, "Certificates by GANDI.");
    }

    #[test]
    fn sections_from_sources() {
        assert_eq!(
            section_of(Some("Security Policy, item 1")),
            "Security Policy"
        );
        assert_eq!(section_of(None), "Other controls");
    }

    #[test]
    fn typst_renders_with_data_as_json_not_markup() {
        let doc = PolicyDoc {
            organization: "Org #let x = 1 *bold* $math$".into(),
            title: "T".into(),
            version: "1".into(),
            sha256: "ab".into(),
            generated_at: "2026-01-01T00:00:00Z".into(),
            blocks: vec![Block {
                kind: "item",
                text: "A ] ) #panic()".into(),
                number: Some("1".into()),
            }],
        };
        let pdf = render_pdf("policy", &doc).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
    }
}
