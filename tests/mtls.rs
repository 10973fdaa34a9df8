//! Optional mutual TLS between agents and the reporter (`agent_tls`): a real
//! reporter over rustls verifies agent certificates against a CA and a CRL
//! the test issues (rcgen), a real `vigil-agent` daemon enrolls and reports
//! with its certificate, and its token is useless without that certificate's
//! key. Staff and public routes still work without a client certificate. A
//! CRL replaced on disk is picked up without a restart.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SerialNumber,
};
use serde_json::{json, Value};
use vigil_tests::*;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// Writes `DIR/NAME.pem` and `DIR/NAME.key` for a client certificate naming `host`.
fn agent_cert(dir: &Path, name: &str, host: &str, serial: u64, ca: &Ca) -> (PathBuf, PathBuf) {
    let mut p = CertificateParams::new(vec![host.to_owned()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, host);
    p.serial_number = Some(SerialNumber::from(serial));
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

fn write_crl(path: &Path, ca: &Ca, number: u64, revoked: &[u64]) {
    let crl = CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2025, 1, 1),
        next_update: rcgen::date_time_ymd(2035, 1, 1),
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: rcgen::date_time_ymd(2025, 6, 1),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca.cert, &ca.key)
    .unwrap();
    // Replaced atomically, as an operator's tooling would.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, crl.pem().unwrap()).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

/// A client trusting the reporter's self-signed certificate, presenting
/// `identity` (certificate, key) if given.
fn client(r: &Reporter, identity: Option<&(PathBuf, PathBuf)>) -> reqwest::blocking::Client {
    let pem = std::fs::read(r.data.join("tls/cert.pem")).unwrap();
    let mut b = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    if let Some((c, k)) = identity {
        let mut both = std::fs::read(c).unwrap();
        both.extend(std::fs::read(k).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&both).unwrap());
    }
    b.build().unwrap()
}

fn enroll(c: &reqwest::blocking::Client, r: &Reporter, host: &str) -> Result<(u16, Value), String> {
    c.post(format!("{}/api/v1/enroll", r.base))
        .json(&json!({"secret": r.secret, "host": host, "interval_secs": 60}))
        .send()
        .map(|resp| {
            let s = resp.status().as_u16();
            (s, resp.json().unwrap_or(Value::Null))
        })
        .map_err(|e| format!("{e:?}"))
}

fn get_policy(
    c: &reqwest::blocking::Client,
    r: &Reporter,
    token: &str,
) -> Result<(u16, String), String> {
    c.get(format!("{}/api/v1/policy", r.base))
        .bearer_auth(token)
        .send()
        .map(|resp| (resp.status().as_u16(), resp.text().unwrap_or_default()))
        .map_err(|e| format!("{e:?}"))
}

#[test]
fn agent_certificates_bind_tokens_and_revocation_is_enforced() {
    let pki = tempfile::tempdir().unwrap();
    let d = pki.path();
    let agents_ca = ca("vigil test agent CA");
    std::fs::write(d.join("ca.pem"), agents_ca.cert.pem()).unwrap();
    let web1 = agent_cert(d, "web-1", "web-1", 11, &agents_ca);
    let web2 = agent_cert(d, "web-2", "web-2", 12, &agents_ca);
    let revoked = agent_cert(d, "web-3", "web-3", 13, &agents_ca);
    let rogue_ca = ca("someone else's CA");
    let rogue = agent_cert(d, "rogue", "web-1", 11, &rogue_ca);
    let crl = d.join("agents.crl.pem");
    write_crl(&crl, &agents_ca, 1, &[13]);
    let cfg = d.join("reporter.yaml");
    std::fs::write(
        &cfg,
        format!(
            "agent_tls:\n  ca: {}\n  crls: [{}]\n",
            d.join("ca.pem").display(),
            crl.display()
        ),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let cfg_arg = cfg.display().to_string();
    let r = Reporter::start(data.path(), true, None, &["--config", &cfg_arg]);
    let staff = r.add_user("alice", "auditor");

    // Without a client certificate: public and staff routes work, agent ones do not.
    let anon = client(&r, None);
    assert_eq!(
        anon.get(format!("{}/healthz", r.base))
            .send()
            .unwrap()
            .status(),
        200
    );
    let hosts = anon
        .get(format!("{}/api/v1/hosts", r.base))
        .bearer_auth(&staff)
        .send()
        .unwrap();
    assert_eq!(hosts.status(), 200);
    let (s, v) = enroll(&anon, &r, "web-1").unwrap();
    assert_eq!(s, 401, "{v}");
    assert!(v.to_string().contains("client_cert"), "{v}");

    // A valid certificate for another host: 403, nothing enrolled.
    let (s, v) = enroll(&client(&r, Some(&web2)), &r, "web-1").unwrap();
    assert_eq!(s, 403, "{v}");
    assert!(v.to_string().contains("names web-2"), "{v}");

    // A revoked certificate and one from a foreign CA fail the handshake.
    let e = enroll(&client(&r, Some(&revoked)), &r, "web-3").unwrap_err();
    assert!(
        e.to_lowercase().contains("revoked") || e.contains("Certificate"),
        "{e}"
    );
    assert!(enroll(&client(&r, Some(&rogue)), &r, "web-1").is_err());

    // The real agent daemon enrolls and reports with its certificate.
    let mut agent = DaemonAgent::new(
        "web-1",
        &r.base,
        &format!(
            "ca_file: {}\nclient_cert: {}\nclient_key: {}\n",
            r.data.join("tls/cert.pem").display(),
            web1.0.display(),
            web1.1.display()
        ),
    );
    let out = agent.enroll(ENROLL_SECRET);
    assert!(out.status.success(), "{}", stderr(&out));
    agent.start(&[]);
    wait_until(60, "a report of web-1 over mutual TLS", || {
        let v: Value = anon
            .get(format!("{}/api/v1/reports?host=web-1", r.base))
            .bearer_auth(&staff)
            .send()
            .unwrap()
            .json()
            .unwrap();
        v["reports"].as_array().is_some_and(|a| !a.is_empty())
    });
    agent.stop();

    // The token alone is not enough: it is bound to web-1's key.
    let token = std::fs::read_to_string(agent.token_file()).unwrap();
    let token = token.trim();
    let (s, body) = get_policy(&anon, &r, token).unwrap();
    assert_eq!(s, 401, "{body}");
    assert!(body.contains("bound to its certificate"), "{body}");
    let (s, body) = get_policy(&client(&r, Some(&web2)), &r, token).unwrap();
    assert_eq!(s, 401, "{body}");
    assert!(body.contains("another certificate"), "{body}");
    let (s, body) = get_policy(&client(&r, Some(&web1)), &r, token).unwrap();
    assert_ne!(s, 401, "{body}");

    // web-2 enrolls; then its certificate is revoked by a new CRL on disk,
    // which the running reporter picks up within seconds.
    let (s, v) = enroll(&client(&r, Some(&web2)), &r, "web-2").unwrap();
    assert_eq!(s, 201, "{v}");
    let token2 = v["token"].as_str().unwrap().to_owned();
    assert_ne!(
        get_policy(&client(&r, Some(&web2)), &r, &token2).unwrap().0,
        401
    );
    write_crl(&crl, &agents_ca, 2, &[12, 13]);
    wait_until(30, "the new CRL to be enforced", || {
        get_policy(&client(&r, Some(&web2)), &r, &token2).is_err()
    });
    // web-1 is untouched by it.
    assert_ne!(
        get_policy(&client(&r, Some(&web1)), &r, token).unwrap().0,
        401
    );

    // Every enrollment bound its key, in the audit log too.
    let (s, v) = {
        let resp = anon
            .get(format!("{}/api/v1/audit/verify", r.base))
            .bearer_auth(&staff)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().unwrap())
    };
    assert_eq!((s, &v["ok"]), (200, &json!(true)), "{v}");
}

#[test]
fn agent_tls_config_errors_name_the_file() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("reporter.yaml");
    std::fs::write(
        &cfg,
        format!(
            "agent_tls:\n  ca: {}\n",
            d.path().join("missing-ca.pem").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(binary("vigil-reporter", "vigil-reporter"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data",
        ])
        .arg(d.path().join("data"))
        .arg("--config")
        .arg(&cfg)
        .env("VIGIL_ENROLL_SECRET", ENROLL_SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("agent_tls.ca") && err.contains("missing-ca.pem"),
        "{err}"
    );
}

fn allow_reenroll(c: &reqwest::blocking::Client, r: &Reporter, admin: &str, host: &str) -> u16 {
    c.post(format!("{}/api/v1/hosts/{host}/allow-reenroll", r.base))
        .bearer_auth(admin)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

// Issue 19, item 1: with `require: false`, an enrollment without a
// certificate must never replace an agent whose token is bound to a key,
// even when an admin allowed the host's re-enrollment; the key-bound agent
// keeps working, and an enrollment with a certificate for the host does
// replace it once allowed.
#[test]
fn optional_mtls_never_lets_an_enrollment_without_a_certificate_replace_a_key_bound_agent() {
    let pki = tempfile::tempdir().unwrap();
    let d = pki.path();
    let agents_ca = ca("vigil test agent CA");
    std::fs::write(d.join("ca.pem"), agents_ca.cert.pem()).unwrap();
    let web1 = agent_cert(d, "web-1", "web-1", 21, &agents_ca);
    let web1_new = agent_cert(d, "web-1-new", "web-1", 22, &agents_ca);
    let cfg = d.join("reporter.yaml");
    std::fs::write(
        &cfg,
        format!(
            "agent_tls:\n  ca: {}\n  require: false\n",
            d.join("ca.pem").display()
        ),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let cfg_arg = cfg.display().to_string();
    let r = Reporter::start(data.path(), true, None, &["--config", &cfg_arg]);
    let admin = r.add_user("alice", "admin");
    let anon = client(&r, None);
    let with_cert = client(&r, Some(&web1));

    // web-1 enrolls with its certificate: its token is bound to that key.
    let (s, v) = enroll(&with_cert, &r, "web-1").unwrap();
    assert_eq!(s, 201, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    let (s, body) = get_policy(&anon, &r, &token).unwrap();
    assert_eq!(s, 401, "{body}");
    assert!(body.contains("bound to its certificate"), "{body}");
    let works = |token: &str| get_policy(&with_cert, &r, token).unwrap().0 != 401;
    assert!(works(&token));

    // Without a certificate (allowed by `require: false`): refused while the
    // agent is active, and still refused after an admin allowed the host's
    // re-enrollment, because the active agent is bound to a key.
    let (s, v) = enroll(&anon, &r, "web-1").unwrap();
    assert_eq!(s, 409, "{v}");
    assert!(works(&token));
    assert_eq!(allow_reenroll(&anon, &r, &admin, "web-1"), 200);
    let (s, v) = enroll(&anon, &r, "web-1").unwrap();
    assert_eq!(s, 403, "{v}");
    assert!(v.to_string().contains("bound to a certificate key"), "{v}");
    assert!(works(&token));
    let (s, v) = r.get_json(&admin, "/api/v1/agents");
    assert_eq!(s, 200, "{v}");
    let agents = v["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{v}");
    assert_eq!(
        (&agents[0]["cert_bound"], &agents[0]["revoked_at"]),
        (&json!(true), &Value::Null),
        "{v}"
    );

    // A host without a bound agent may still enroll without a certificate.
    let (s, v) = enroll(&anon, &r, "web-9").unwrap();
    assert_eq!(s, 201, "{v}");
    let plain = v["token"].as_str().unwrap().to_owned();
    assert_ne!(get_policy(&anon, &r, &plain).unwrap().0, 401);

    // With a certificate for web-1 (a renewed one, new key) and the admin's
    // allowance still open: the new agent replaces the old one, bound to the
    // new key; the old token stops working.
    let renewed = client(&r, Some(&web1_new));
    let (s, v) = enroll(&renewed, &r, "web-1").unwrap();
    assert_eq!(s, 201, "{v}");
    let new_token = v["token"].as_str().unwrap().to_owned();
    assert_ne!(get_policy(&renewed, &r, &new_token).unwrap().0, 401);
    assert_eq!(get_policy(&with_cert, &r, &new_token).unwrap().0, 401);
    assert_eq!(get_policy(&with_cert, &r, &token).unwrap().0, 401);
    // The allowance was used up: a third enrollment is refused again.
    let (s, v) = enroll(&renewed, &r, "web-1").unwrap();
    assert_eq!(s, 409, "{v}");

    // Every step is in the audit log, and it verifies.
    let resp = anon
        .get(format!("{}/api/v1/audit/verify", r.base))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json::<Value>().unwrap()["ok"], json!(true));
}
