//! Certificate files made with `openssl`, as an administrator makes them.

use std::path::Path;
use std::process::Command;

use crate::machine::require_tool;
use crate::netns::run_ok;

fn openssl(dir: &Path, args: &[&str]) {
    run_ok(
        Command::new(require_tool("openssl", "openssl"))
            .args(args)
            .current_dir(dir),
    );
}

/// A private CA (`ca.pem`, made once) and a leaf for papyrs.example and
/// www.papyrs.example valid `days` days (-1: expired a day ago), written as
/// `fullchain.pem` (leaf then CA) and `privkey.pem` in `dir`.
pub fn private_ca_certificate(dir: &Path, days: i32) {
    std::fs::create_dir_all(dir).unwrap();
    if !dir.join("ca.pem").exists() {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3650",
                "-subj",
                "/CN=Fleet Test Gandi CA",
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "privkey.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=papyrs.example",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:papyrs.example,DNS:www.papyrs.example\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            &days.to_string(),
            "-extfile",
            "ext.cnf",
        ],
    );
    let chain = std::fs::read_to_string(dir.join("leaf.pem")).unwrap()
        + &std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    std::fs::write(dir.join("fullchain.pem"), chain).unwrap();
}
