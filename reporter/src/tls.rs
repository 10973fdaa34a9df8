//! The reporter's TLS identity: the configured certificate, or a self-signed
//! one generated on first start and kept in the data directory.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Set when this start generated the certificate.
    pub generated: bool,
}

pub fn self_signed(data: &Path) -> anyhow::Result<Identity> {
    let dir = data.join("tls");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if cert.exists() && key.exists() {
        return Ok(Identity {
            cert,
            key,
            generated: false,
        });
    }
    std::fs::create_dir_all(&dir)?;
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim().to_owned();
        if !h.is_empty() && !names.contains(&h) {
            names.push(h);
        }
    }
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| anyhow::anyhow!("cannot generate a certificate: {e}"))?;
    write_private(&key, ck.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&cert, ck.cert.pem())?;
    Ok(Identity {
        cert,
        key,
        generated: true,
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The SHA-256 fingerprint of the first certificate in a PEM file.
pub fn fingerprint(cert: &Path) -> anyhow::Result<String> {
    use base64::Engine as _;
    let pem = std::fs::read_to_string(cert)?;
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64)?;
    let fp = Sha256::digest(der);
    Ok(fp
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}
