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
    assert_eq!(trust["certificates"].as_array().unwrap().len(), 3);
    assert_eq!(
        trust["certificates"][0]["issuer"],
        "Gandi RSA Domain Validation Secure Server CA"
    );
    assert_eq!(trust["backups"][0]["host"], "db-1");
    assert_eq!(
        trust["mirroring"][0]["summary"],
        "2 replicas on distinct hosts, lag 0.4 s"
    );
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
        "2/3 servers",
        "Certificates",
        "Gandi RSA Domain Validation Secure Server CA",
        "2027-01-28",
        "Backups",
        "newest set 7 hours old in 2 locations",
        "Mirroring",
        "2 replicas on distinct hosts, lag 0.4 s",
        "About this document",
        "Audit checkpoint",
        trust["audit_checkpoint"]["root"].as_str().unwrap(),
        trust["evidence"]["sha256"].as_str().unwrap(),
    ] {
        assert!(t.contains(want), "the brochure lacks `{want}`:\n{t}");
    }
    assert!(
        t.contains(&trust["valid_until"].as_str().unwrap()[..10]),
        "valid_until missing"
    );
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
