//! The security brochure, /trust.json and the policy PDF end to end: rendered
//! from a seeded reporter over HTTP and by `render brochure`, checked through
//! their text layer (`pdftotext`), first pages kept as PNGs under
//! `target/brochure/` for review; `export` as JSON, CSV and SARIF.

#[path = "staff/seed.rs"]
mod seed;

use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};
use vigil_tests::*;

fn pdf_text(pdf: &std::path::Path) -> String {
    let bin = require_tool("pdftotext", "poppler-utils");
    let o = Command::new(bin)
        .args(["-layout"])
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn first_pages_png(pdf: &std::path::Path, name: &str) {
    let bin = require_tool("pdftoppm", "poppler-utils");
    let out = workspace().join("target/brochure");
    std::fs::create_dir_all(&out).unwrap();
    let o = Command::new(bin)
        .args(["-png", "-r", "80", "-f", "1", "-l", "2"])
        .arg(pdf)
        .arg(out.join(name))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join(format!("{name}-1.png")).exists());
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn brochure_trust_json_and_policy_pdf() {
    let dir = tempfile::tempdir().unwrap();
    let text = workspace().join("tests/data/brochure/security-policy.txt");
    let (r, staff) = seed::seeded(dir.path(), &format!("policy_text: {}\n", text.display()));
    let c = r.client();

    // trust.json: the content, with a manifest of the evidence.
    let resp = c.get(format!("{}/trust.json", r.base)).send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let trust: Value = resp.json().unwrap();
    assert_eq!(trust["schema"], "vigil.trust/v1");
    assert_eq!(trust["policy"]["version"], "2017-11-17.1");
    let sections: Vec<&str> = trust["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        sections,
        ["Security Policy", "GDPR", "Backups and redundancy"]
    );
    let control = |id: &str| {
        trust["sections"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["controls"].as_array().unwrap())
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(control("SP-5")["state"], "Not met");
    assert_eq!(
        (
            control("SP-5")["hosts"].as_u64(),
            control("SP-5")["hosts_ok"].as_u64()
        ),
        (Some(3), Some(2))
    );
    assert_eq!(control("SP-1")["state"], "Verified");
    assert_eq!(control("SP-9")["state"], "Attested");
    assert_eq!(control("GDPR-4")["state"], "Not verified recently");
    assert_eq!(trust["summary"]["hosts"], 3);
    assert_eq!(control("SP-5")["coverage"], "verified on 2 of 3 servers");
    // Issue 26: each commitment lists the framework requirements it maps to.
    assert_eq!(
        control("SP-1")["frameworks"],
        "ISO 27001 A.8.24, A.8.20 · SOC 2 CC6.7"
    );
    assert!(control("SP-8")["frameworks"]
        .as_str()
        .unwrap()
        .contains("PCI DSS 3.2.1, 12.8"));
    // The staff overview filters by framework (Bearer works on pages).
    let page = |q: &str| {
        let resp = c
            .get(format!("{}/{q}", r.base))
            .bearer_auth(&staff)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    let (code, html) = page("?framework=pci_dss");
    assert_eq!(code, 200);
    assert!(
        html.contains(">SP-8</a>") && html.contains("pci_dss 3.2.1, 12.8"),
        "{html}"
    );
    assert!(
        !html.contains(">SP-1</a>"),
        "SP-1 maps to no PCI DSS requirement"
    );
    let (code, html) = page("?framework=iso27001");
    assert_eq!(code, 200);
    assert!(html.contains(">SP-1</a>") && html.contains(">BK-4</a>"));
    assert_eq!(page("?framework=cobit").0, 400);
    assert_eq!(control("SP-1")["coverage"], "verified on 3 of 3 servers");
    // The commitments in the policy's (the seed text's) order.
    let ids: Vec<&str> = trust["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["controls"].as_array().unwrap())
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let mut want: Vec<String> = (1..=10).map(|i| format!("SP-{i}")).collect();
    want.extend((1..=5).map(|i| format!("GDPR-{i}")));
    want.extend((1..=4).map(|i| format!("BK-{i}")));
    assert_eq!(ids, want);
    // Evidence by kind, counts only: no server names, no check summaries.
    let kind = |k: &str| {
        trust["evidence_kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == k)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            kind("certificates")["checks"].as_u64(),
            kind("certificates")["passing"].as_u64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(
        kind("certificates")["issuers"],
        serde_json::json!(["Gandi RSA Domain Validation Secure Server CA"])
    );
    assert_eq!(kind("certificates")["soonest_expiry"], "2027-01-28");
    assert_eq!(kind("backups")["checks"], 1);
    assert_eq!(kind("mirroring")["passing"], 1);
    // The latest signed audit checkpoint, the same the audit API serves.
    let cp: Value = c
        .get(format!("{}/api/v1/audit/checkpoint", r.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(trust["audit_checkpoint"]["root"], cp["root"]);
    assert_eq!(trust["audit_checkpoint"]["note"], cp["note"]);
    assert!(
        trust["audit_checkpoint"]["size"].as_i64().unwrap() >= 30,
        "30 reports were logged"
    );
    // The manifest: each host's newest report, its digest checkable against the stored body.
    let entries = trust["evidence"]["reports"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let mut lines = String::new();
    for e in entries {
        let id = e["report_id"].as_str().unwrap();
        let body = c
            .get(format!("{}/api/v1/reports/{id}", r.base))
            .bearer_auth(&staff)
            .send()
            .unwrap();
        assert_eq!(body.status().as_u16(), 200);
        lines.push_str(&format!("{}  {id}\n", e["sha256"].as_str().unwrap()));
        assert_eq!(e["sha256"].as_str().unwrap().len(), 64);
    }
    assert_eq!(
        trust["evidence"]["sha256"].as_str().unwrap(),
        hex(&Sha256::digest(lines.as_bytes()))
    );
    let generated =
        chrono::DateTime::parse_from_rfc3339(trust["generated_at"].as_str().unwrap()).unwrap();
    let valid =
        chrono::DateTime::parse_from_rfc3339(trust["valid_until"].as_str().unwrap()).unwrap();
    assert_eq!((valid - generated).num_days(), 7);

    // The brochure over HTTP.
    let resp = c.get(format!("{}/brochure.pdf", r.base)).send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    let pdf = resp.bytes().unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let path = dir.path().join("brochure.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let t = squash(&pdf_text(&path));
    for want in [
        "Security brochure",
        "PAPYRS",
        "Policy version 2017-11-17.1",
        "At a glance",
        "Our commitments and their state",
        "Security Policy",
        "GDPR",
        "Backups and redundancy",
        "Not met",
        "Verified",
        "Attested",
        "Verified on 2 of 3 servers",
        "Certificates",
        "Gandi RSA Domain Validation Secure Server CA",
        "28 January 2027",
        "Backups",
        "1 of 1 backup checks passed",
        "Mirroring",
        "1 of 1 mirroring checks passed",
        "About this document",
        "Audit checkpoint",
        trust["audit_checkpoint"]["root"].as_str().unwrap(),
        trust["evidence"]["sha256"].as_str().unwrap(),
    ] {
        assert!(t.contains(want), "the brochure lacks `{want}`:\n{t}");
    }
    // Dates in one form throughout: `9 December 2026`, never `2026-12-09`.
    let valid_words = chrono::DateTime::parse_from_rfc3339(trust["valid_until"].as_str().unwrap())
        .unwrap()
        .format("%-d %B %Y")
        .to_string();
    assert!(t.contains(&valid_words), "valid_until missing");
    assert!(
        !t.contains(&trust["valid_until"].as_str().unwrap()[..10]),
        "an ISO date in the brochure: {t}"
    );
    // The commitments in the policy's order on the page too.
    let mut at = 0;
    for id in &want {
        let i = t[at..]
            .find(&format!("{id} "))
            .unwrap_or_else(|| panic!("`{id}` missing or out of order"));
        at += i;
    }
    first_pages_png(&path, "brochure");

    // `render brochure`, from the same data directory.
    let out = dir.path().join("rendered.pdf");
    let cfg = dir.path().join("reporter.yaml");
    let o = Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args(["render", "brochure", "--output"])
        .arg(&out)
        .arg("--data")
        .arg(&r.data)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t2 = squash(&pdf_text(&out));
    assert!(t2.contains("Our commitments and their state") && t2.contains("Not met"));

    // The policy PDF: the policy's own words.
    let resp = c.get(format!("{}/policy.pdf", r.base)).send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let path = dir.path().join("policy.pdf");
    std::fs::write(&path, resp.bytes().unwrap()).unwrap();
    let t = squash(&pdf_text(&path));
    for want in [
        "Papyrs Security Policy",
        "Version 2017-11-17.1",
        "We believe that security is of paramount importance",
        "All traffic between the Papyrs service and end users is protected by strong SSL/TLS encryption.",
        "General Data Protection Regulation",
        "Backups and redundancy",
        "Backups are made of all client data every night.",
    ] {
        assert!(t.contains(want), "the policy PDF lacks `{want}`:\n{t}");
    }
    first_pages_png(&path, "policy");
}

#[test]
fn export_json_csv_sarif() {
    let dir = tempfile::tempdir().unwrap();
    let (r, _) = seed::seeded(dir.path(), "");
    let export = |format: &str| {
        let o = Command::new(binary("vigil-reporter", "vigil-reporter"))
            .args(["export", "--format", format, "--data"])
            .arg(&r.data)
            .arg("--config")
            .arg(dir.path().join("reporter.yaml"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let j: Value = serde_json::from_str(&export("json")).unwrap();
    assert_eq!(j["schema"], "vigil.export/v1");
    let sp5 = j["posture"]["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "SP-5")
        .unwrap();
    assert_eq!(sp5["hosts_failing"], serde_json::json!(["web-2"]));
    assert_eq!(j["results"].as_array().unwrap().len(), 4 + 4 + 6);

    let csv = export("csv");
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), "host,report_id,finished_at,control,check,check_type,check_status,code,severity,subject,message,file,line");
    let fail: Vec<&str> = csv.lines().filter(|l| l.contains(",fail,")).collect();
    assert_eq!(fail.len(), 1, "{csv}");
    assert!(
        fail[0].starts_with("web-2,")
            && fail[0].contains(",unexpected_open_port,high,0.0.0.0:9200,"),
        "{}",
        fail[0]
    );
    assert!(
        csv.contains("\"default deny; 22, 443 open\""),
        "a comma is quoted"
    );

    let s: Value = serde_json::from_str(&export("sarif")).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let results = s["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["ruleId"], "firewall/unexpected_open_port");
    assert_eq!(results[0]["level"], "error");
    assert_eq!(
        results[0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        "web-2/SP-5/inbound"
    );
    assert_eq!(
        s["runs"][0]["tool"]["driver"]["rules"][0]["id"],
        "firewall/unexpected_open_port"
    );
}

/// Strings of a report that name internals: hosts, paths, URLs, summaries,
/// finding messages, string evidence.
fn internals(report: &Value, out: &mut Vec<String>) {
    out.push(report["agent"]["host"].as_str().unwrap().to_owned());
    for c in report["controls"].as_array().unwrap() {
        for k in c["checks"].as_array().unwrap() {
            out.push(k["summary"].as_str().unwrap().to_owned());
            for f in k["findings"].as_array().unwrap() {
                out.push(f["message"].as_str().unwrap().to_owned());
            }
            if let Some(m) = k["evidence"].as_object() {
                for (key, v) in m {
                    // Certificate issuers and expiry dates are public facts.
                    if ["issuer", "not_after"].contains(&key.as_str()) {
                        continue;
                    }
                    if let Some(s) = v.as_str() {
                        out.push(s.to_owned());
                    }
                }
            }
        }
    }
}

/// Regression (issue 23): `/brochure.pdf` and `/trust.json` printed host names,
/// file paths (`/etc/vigil/restic.pass`), repository URLs with internal host
/// names and raw error texts to anyone. No public route may show any of them.
#[test]
fn public_routes_show_no_internals() {
    let dir = tempfile::tempdir().unwrap();
    let (r, _staff) = seed::seeded(dir.path(), "public_url: https://security.example.test\n");
    let token = r.enroll("backup-1", 86_400);
    let leaky = seed::report(
        "backup-1",
        &[
            (
                "BK-2",
                "offsite",
                "backup_freshness",
                "error",
                "cannot open /etc/vigil/restic.pass: permission denied",
                serde_json::json!({"repository": "sftp:backup@backup-1.papyrs.internal:/restic", "password_file": "/etc/vigil/restic.pass"}),
                serde_json::json!([{"code": "repository_unreadable", "severity": "high", "subject": "sftp:backup@backup-1.papyrs.internal:/restic", "message": "Fatal: unable to open config file: Lstat /restic/config: permission denied"}]),
            ),
            (
                "SP-1",
                "internal-https",
                "tls_endpoint",
                "fail",
                "https://intranet.papyrs.internal:8443/ presents an expired certificate",
                serde_json::json!({"endpoints": [{"address": "intranet.papyrs.internal:8443", "server_name": "intranet.papyrs.internal", "protocol": "1.3", "cipher_suite": "TLS13_AES_128_GCM_SHA256", "alpn": "h2", "ocsp_stapled": false, "old_protocols": [], "weak_ciphers": null, "http": null, "trust": {"anchors": "system", "outcome": "trusted"}, "certificates": [{"subject": "CN=intranet.papyrs.internal", "issuer": "C=FR, O=Gandi, CN=Gandi RSA Domain Validation Secure Server CA", "sans": ["DNS:intranet.papyrs.internal"], "serial": "01", "not_before": "2025-01-01T00:00:00Z", "not_after": "2026-01-01T00:00:00Z", "key_type": "RSA", "key_bits": 2048, "signature_algorithm": "sha256WithRSAEncryption", "sha256": "abababababababababababababababababababababababababababababababab", "self_signed": false, "is_ca": false}]}], "redirects": []}),
                serde_json::json!([{"code": "expired", "severity": "high", "subject": "intranet.papyrs.internal:8443", "message": "the certificate of intranet.papyrs.internal expired on 2026-01-01"}]),
            ),
        ],
        chrono::Utc::now(),
    );
    seed::post(&r, &token, &leaky);
    let mut needles = Vec::new();
    internals(&leaky, &mut needles);
    for host in ["db-1", "web-1", "web-2"] {
        let body = r.newest_report(&_staff, host).unwrap();
        internals(&body, &mut needles);
    }
    needles.extend(
        [
            "/etc/vigil",
            "papyrs.internal",
            "sftp:",
            "permission denied",
            "backup-1",
        ]
        .map(str::to_owned),
    );
    needles.sort();
    needles.dedup();
    needles.retain(|n| n.len() >= 4);

    let c = r.client();
    let get = |path: &str| {
        let resp = c.get(format!("{}{path}", r.base)).send().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        resp.bytes().unwrap().to_vec()
    };
    let mut pages: Vec<(&str, String)> = Vec::new();
    for path in [
        "/trust.json",
        "/.well-known/security.txt",
        "/report-incident",
        "/healthz",
        "/api/v1/audit/checkpoint",
    ] {
        pages.push((path, String::from_utf8_lossy(&get(path)).into_owned()));
    }
    for path in ["/brochure.pdf", "/policy.pdf"] {
        let f = dir.path().join(path.trim_start_matches('/'));
        std::fs::write(&f, get(path)).unwrap();
        pages.push((path, squash(&pdf_text(&f))));
        if path == "/brochure.pdf" {
            first_pages_png(&f, "brochure-public");
        }
    }
    for (path, text) in &pages {
        for n in &needles {
            assert!(
                !text.contains(n.as_str()),
                "`{n}` reaches the public route {path}:\n{text}"
            );
        }
    }
    // The counts still say what is wrong, in plain words.
    let trust: Value = serde_json::from_str(&pages[0].1).unwrap();
    let sp1 = trust["sections"][0]["controls"][0].clone();
    assert_eq!(sp1["id"], "SP-1");
    assert_eq!(sp1["coverage"], "verified on 3 of 4 servers");
    assert_eq!(sp1["state"], "Not met");
}

/// With no published policy the brochure says so plainly and states no commitments.
#[test]
fn brochure_without_a_policy_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("reporter.yaml");
    std::fs::write(&cfg, "organization: Papyrs\n").unwrap();
    let r = Reporter::start(
        &dir.path().join("data"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let token = r.enroll("web-1", 86_400);
    seed::post(
        &r,
        &token,
        &seed::report(
            "web-1",
            &[(
                "SP-5",
                "inbound",
                "firewall",
                "pass",
                "default deny",
                serde_json::json!({}),
                serde_json::json!([]),
            )],
            chrono::Utc::now(),
        ),
    );
    let trust: Value = r
        .client()
        .get(format!("{}/trust.json", r.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(trust["published_policy"], false);
    assert_eq!(trust["sections"], serde_json::json!([]));
    let pdf = r
        .client()
        .get(format!("{}/brochure.pdf", r.base))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let f = dir.path().join("b.pdf");
    std::fs::write(&f, &pdf).unwrap();
    let t = squash(&pdf_text(&f));
    assert!(
        t.contains("No security policy has been published yet"),
        "{t}"
    );
    assert!(!t.contains("Our commitments and their state"), "{t}");
    first_pages_png(&f, "brochure-no-policy");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
