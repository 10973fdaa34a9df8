//! `tls_endpoint` and `tls_certificate_file` against real TLS servers on
//! 127.0.0.1: a certificate matrix made by `openssl` (a private root and
//! intermediate, and leaves with one defect each), served by an in-test
//! rustls server or, for what rustls will not serve (RSA-1024, SHA-1,
//! TLS 1.0), by `openssl s_server`. Every case asserts its exact codes.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use vigil_tests::*;

const HOST: &str = "vigil-tls.test";

fn openssl(args: &[&str], dir: &Path) {
    let bin = require_tool("openssl", "openssl");
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The certificate matrix, made once per test process.
struct Pki {
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

const CA_CNF: &str = "[ca]
default_ca = CA_default
[CA_default]
database = index.txt
new_certs_dir = newcerts
serial = serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied
organizationName = optional
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
";

const EXT_CA: &str = "basicConstraints = critical,CA:true\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n";

fn ext_leaf(sans: &str) -> String {
    format!("basicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth\nsubjectAltName = {sans}\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n")
}

fn key(dir: &Path, name: &str, kind: &str) {
    let k = format!("{name}.key");
    match kind {
        "ec" => openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &k,
            ],
            dir,
        ),
        "rsa1024" => openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1024",
                "-out",
                &k,
            ],
            dir,
        ),
        _ => openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                &k,
            ],
            dir,
        ),
    }
}

/// Issues `name.pem` for key `name.key`, signed by `issuer` (`.pem`/`.key`),
/// with dates in `openssl ca` form (YYYYMMDDHHMMSSZ).
#[allow(clippy::too_many_arguments)]
fn issue(
    dir: &Path,
    name: &str,
    subject: &str,
    issuer: &str,
    ext: &str,
    start: &str,
    end: &str,
    md: &str,
) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        &[
            "req",
            "-new",
            "-config",
            "ca.cnf",
            "-key",
            &format!("{name}.key"),
            "-subj",
            subject,
            "-out",
            &format!("{name}.csr"),
        ],
        dir,
    );
    openssl(
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            "ca.cnf",
            "-in",
            &format!("{name}.csr"),
            "-out",
            &format!("{name}.pem"),
            "-cert",
            &format!("{issuer}.pem"),
            "-keyfile",
            &format!("{issuer}.key"),
            "-extfile",
            &format!("{name}.ext"),
            "-startdate",
            start,
            "-enddate",
            end,
            "-md",
            md,
        ],
        dir,
    );
}

fn root(dir: &Path, name: &str, subject: &str) {
    key(dir, name, "ec");
    openssl(
        &[
            "req",
            "-new",
            "-x509",
            "-config",
            "ca.cnf",
            "-key",
            &format!("{name}.key"),
            "-subj",
            subject,
            "-days",
            "7300",
            "-sha256",
            "-addext",
            "basicConstraints=critical,CA:true",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            &format!("{name}.pem"),
        ],
        dir,
    );
}

fn stamp(days_from_now: i64) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + days_from_now * 86_400;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn cat(dir: &Path, out: &str, parts: &[&str]) {
    let mut s = String::new();
    for p in parts {
        s.push_str(&std::fs::read_to_string(dir.join(format!("{p}.pem"))).unwrap());
    }
    std::fs::write(dir.join(out), s).unwrap();
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let tmp = tempfile::Builder::new()
            .prefix("tls-pki-")
            .tempdir()
            .unwrap();
        let d = tmp.path().to_path_buf();
        std::fs::write(d.join("ca.cnf"), CA_CNF).unwrap();
        std::fs::write(d.join("index.txt"), "").unwrap();
        std::fs::write(d.join("serial"), "1000\n").unwrap();
        std::fs::create_dir(d.join("newcerts")).unwrap();

        let (past, soon, year) = (stamp(-1), stamp(5), stamp(365));
        root(&d, "root", "/CN=Vigil Test Root/O=Vigil Test");
        // The intermediate outlives every leaf, as real ones do.
        key(&d, "int", "ec");
        issue(
            &d,
            "int",
            "/CN=Vigil Test Intermediate/O=Gandi Test SAS",
            "root",
            EXT_CA,
            "20190101000000Z",
            "20450101000000Z",
            "sha256",
        );
        root(&d, "evil", "/CN=Unknown Root/O=Nobody");

        let good = ext_leaf(&format!("DNS:{HOST}, IP:127.0.0.1"));
        let leaf =
            |name: &str, kind: &str, issuer: &str, ext: &str, start: &str, end: &str, md: &str| {
                key(&d, name, kind);
                issue(
                    &d,
                    name,
                    &format!("/CN={name}.{HOST}"),
                    issuer,
                    ext,
                    start,
                    end,
                    md,
                );
            };
        leaf("valid", "rsa", "int", &good, &past, &year, "sha256");
        leaf("ec", "ec", "int", &good, &past, &year, "sha256");
        leaf(
            "expired",
            "ec",
            "int",
            &good,
            "20200101000000Z",
            "20210101000000Z",
            "sha256",
        );
        leaf(
            "future",
            "ec",
            "int",
            &good,
            "20400101000000Z",
            "20410101000000Z",
            "sha256",
        );
        leaf("soon", "ec", "int", &good, &past, &soon, "sha256");
        leaf(
            "wronghost",
            "ec",
            "int",
            &ext_leaf("DNS:other.test"),
            &past,
            &year,
            "sha256",
        );
        leaf("untrusted", "ec", "evil", &good, &past, &year, "sha256");
        leaf("rsa1024", "rsa1024", "int", &good, &past, &year, "sha256");
        leaf("sha1", "rsa", "int", &good, &past, &year, "sha1");
        key(&d, "selfsigned", "ec");
        openssl(
            &[
                "req",
                "-new",
                "-x509",
                "-config",
                "ca.cnf",
                "-key",
                "selfsigned.key",
                "-subj",
                &format!("/CN={HOST}"),
                "-days",
                "365",
                "-sha256",
                "-addext",
                &format!("subjectAltName=DNS:{HOST},IP:127.0.0.1"),
                "-out",
                "selfsigned.pem",
            ],
            &d,
        );

        for name in [
            "valid",
            "ec",
            "expired",
            "future",
            "soon",
            "wronghost",
            "rsa1024",
            "sha1",
        ] {
            cat(&d, &format!("{name}.chain"), &[name, "int"]);
        }
        cat(&d, "untrusted.chain", &["untrusted", "evil"]);
        cat(&d, "selfsigned.chain", &["selfsigned"]);
        cat(&d, "missing.chain", &["valid"]);
        cat(&d, "disorder.chain", &["valid", "root", "int"]);
        // nginx setups sometimes keep the key in the same file.
        let with_key = std::fs::read_to_string(d.join("valid.key")).unwrap()
            + &std::fs::read_to_string(d.join("valid.chain")).unwrap();
        std::fs::write(d.join("with-key.pem"), with_key).unwrap();
        Pki { _dir: tmp, dir: d }
    })
}

/// A rustls server on 127.0.0.1:0 serving one chain; stopped on drop.
struct RustlsServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl RustlsServer {
    fn start(chain_pem: &str, key_pem: &str) -> Self {
        Self::serve(chain_pem, key_pem, None)
    }

    /// Also answers an HTTP request with `answer` (a whole response head).
    fn start_http(chain_pem: &str, key_pem: &str, answer: &str) -> Self {
        Self::serve(chain_pem, key_pem, Some(answer.to_owned()))
    }

    fn serve(chain_pem: &str, key_pem: &str, answer: Option<String>) -> Self {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(chain_pem)
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_file(key_pem).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut tcp) = stream else { continue };
                let config = config.clone();
                let answer = answer.clone();
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls = rustls::StreamOwned::new(conn, &mut tcp);
                    let mut buf = [0u8; 1024];
                    let mut request = Vec::new();
                    // Handshake, then read until the client goes away (or,
                    // with an answer, until a request head is complete).
                    while let Ok(n @ 1..) = tls.read(&mut buf) {
                        request.extend_from_slice(&buf[..n]);
                        if let Some(a) = &answer {
                            if request.windows(4).any(|w| w == b"\r\n\r\n") {
                                let _ = std::io::Write::write_all(&mut tls, a.as_bytes());
                                tls.conn.send_close_notify();
                                let _ = std::io::Write::flush(&mut tls);
                                break;
                            }
                        }
                    }
                });
            }
        });
        RustlsServer { port, stop }
    }
}

impl Drop for RustlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// `openssl s_server` on 127.0.0.1:0; killed on drop.
struct OpensslServer {
    port: u16,
    child: Child,
}

impl OpensslServer {
    /// Serves `name.pem` with the intermediate after it.
    fn start(name: &str, extra: &[&str]) -> Self {
        let p = pki();
        let (cert, key) = (
            p.path(&format!("{name}.pem")),
            p.path(&format!("{name}.key")),
        );
        let bin = require_tool("openssl", "openssl");
        let mut child = Command::new(bin)
            .args([
                "s_server",
                "-accept",
                "127.0.0.1:0",
                "-www",
                "-cert",
                &cert,
                "-key",
                &key,
            ])
            .args([
                "-cert_chain",
                &p.path("int.pem"),
                "-cipher",
                "DEFAULT:@SECLEVEL=0",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut port = 0;
        let mut line = String::new();
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(p) = line.trim().strip_prefix("ACCEPT 127.0.0.1:") {
                port = p.parse().unwrap();
                break;
            }
            line.clear();
        }
        assert!(port != 0, "openssl s_server did not start");
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        OpensslServer { port, child }
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain-HTTP server on 127.0.0.1:0 answering every request with
/// `answer`, and keeping the `Host` header of the last request.
fn plain_http(answer: &'static str) -> (u16, Arc<std::sync::Mutex<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while let Ok(n @ 1..) = s.read(&mut buf) {
                req.extend_from_slice(&buf[..n]);
                if req.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            *keep.lock().unwrap() = String::from_utf8_lossy(&req).into_owned();
            let _ = std::io::Write::write_all(&mut s, answer.as_bytes());
        }
    });
    (port, seen)
}

/// A `tls_endpoint` check item probing 127.0.0.1:`port` as [`HOST`];
/// `extra` adds `with` lines (at ten spaces).
fn endpoint_check(id: &str, port: u16, extra: &str) -> String {
    check_yaml(
        id,
        "tls_endpoint",
        None,
        &format!(
            "          address: 127.0.0.1:{port}\n          server_name: {HOST}\n          ca_file: {}\n{extra}",
            pki().path("root.pem")
        ),
    )
}

/// A policy of one control `TLS` holding `checks`; the folder lives as long as the policy.
fn policy(checks: &[String]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = write_policy(
        &dir.path().join("policy.yaml"),
        &policy_yaml(&control_yaml("TLS", &checks.join(""))),
    );
    (dir, p)
}

fn run(policy_path: &str) -> serde_json::Value {
    let o = agent_check(policy_path).output();
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "agent failed: {}",
        stderr(&o)
    );
    report_json(&o)
}

fn expect(report: &serde_json::Value, check: &str, status: &str, want: &[&str]) {
    let c = check_of(report, "TLS", check);
    assert_eq!(
        (c["status"].as_str().unwrap(), codes(c)),
        (
            status,
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        ),
        "check `{check}`: {}",
        serde_json::to_string_pretty(c).unwrap()
    );
}

#[test]
fn endpoint_matrix() {
    let p = pki();
    let rustls_cases = [
        ("valid", "valid.chain", "valid.key"),
        ("ec", "ec.chain", "ec.key"),
        ("expired", "expired.chain", "expired.key"),
        ("future", "future.chain", "future.key"),
        ("soon", "soon.chain", "soon.key"),
        ("selfsigned", "selfsigned.chain", "selfsigned.key"),
        ("untrusted", "untrusted.chain", "untrusted.key"),
        ("wronghost", "wronghost.chain", "wronghost.key"),
        ("missing", "missing.chain", "valid.key"),
        ("disorder", "disorder.chain", "valid.key"),
    ];
    let mut servers = Vec::new();
    let mut checks = Vec::new();
    for (id, chain, key) in rustls_cases {
        let s = RustlsServer::start(&p.path(chain), &p.path(key));
        checks.push(endpoint_check(id, s.port, ""));
        servers.push(s);
    }
    // Issuer: the leaves are issued by "Gandi Test SAS".
    let gandi = RustlsServer::start(&p.path("valid.chain"), &p.path("valid.key"));
    checks.push(endpoint_check(
        "issuer-ok",
        gandi.port,
        "          issuer_contains: gandi\n",
    ));
    checks.push(endpoint_check(
        "issuer-wrong",
        gandi.port,
        "          issuer_contains: Sectigo\n",
    ));
    checks.push(endpoint_check(
        "ocsp",
        gandi.port,
        "          require_ocsp_stapling: true\n",
    ));
    checks.push(endpoint_check(
        "tls13-ok",
        gandi.port,
        "          min_protocol: \"1.3\"\n",
    ));

    // TLS 1.2 with AEAD and forward secrecy only (OpenSSL's DEFAULT list
    // would also accept CBC suites: `weak_cipher`, tried below).
    let strong = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:@SECLEVEL=0";
    let modern = ["-no_tls1", "-no_tls1_1", "-cipher", strong];
    let weak_key = OpensslServer::start("rsa1024", &modern);
    checks.push(endpoint_check("rsa1024", weak_key.port, ""));
    let sha1 = OpensslServer::start("sha1", &modern);
    checks.push(endpoint_check("sha1", sha1.port, ""));
    let old = OpensslServer::start("valid", &[]);
    checks.push(endpoint_check("tls10", old.port, ""));
    // A server for TLS 1.0 has CBC suites (1.0 has nothing else): with the
    // suite probe off, that is said (info) and the check passes.
    checks.push(endpoint_check(
        "tls10-allowed",
        old.port,
        "          min_protocol: \"1.0\"\n          probe_weak_ciphers: false\n",
    ));
    let tls12 = OpensslServer::start(
        "ec",
        &["-no_tls1", "-no_tls1_1", "-no_tls1_3", "-cipher", strong],
    );
    checks.push(endpoint_check(
        "tls13-only",
        tls12.port,
        "          min_protocol: \"1.3\"\n",
    ));
    checks.push(endpoint_check("tls12-ok", tls12.port, ""));
    let openssl_modern = OpensslServer::start("ec", &modern);
    checks.push(endpoint_check("openssl-clean", openssl_modern.port, ""));
    // OpenSSL's default list: GCM first (what rustls negotiates), but
    // ECDHE-ECDSA-AES128-SHA and friends are still accepted over TLS 1.2.
    let cbc = OpensslServer::start("ec", &["-no_tls1", "-no_tls1_1"]);
    checks.push(endpoint_check("tls12-cbc", cbc.port, ""));
    // `s_server -www` answers GET / with a status page and no HSTS header.
    checks.push(endpoint_check(
        "openssl-no-hsts",
        openssl_modern.port,
        "          hsts: true\n",
    ));

    // HSTS, from a server answering GET / with these headers.
    let hsts = |age: &str| {
        format!("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nStrict-Transport-Security: {age}\r\n\r\n")
    };
    let hsts_year = RustlsServer::start_http(
        &p.path("valid.chain"),
        &p.path("valid.key"),
        &hsts("max-age=31536000; includeSubDomains"),
    );
    checks.push(endpoint_check(
        "hsts-ok",
        hsts_year.port,
        "          hsts: true\n",
    ));
    let hsts_day = RustlsServer::start_http(
        &p.path("valid.chain"),
        &p.path("valid.key"),
        &hsts("max-age=86400"),
    );
    checks.push(endpoint_check(
        "hsts-short",
        hsts_day.port,
        "          hsts: true\n",
    ));
    checks.push(endpoint_check(
        "hsts-short-allowed",
        hsts_day.port,
        "          hsts: true\n          min_hsts_max_age: 3600\n",
    ));
    let no_hsts = RustlsServer::start_http(
        &p.path("valid.chain"),
        &p.path("valid.key"),
        "HTTP/1.1 302 Found\r\nLocation: /login\r\nContent-Length: 0\r\n\r\n",
    );
    checks.push(endpoint_check(
        "hsts-missing",
        no_hsts.port,
        "          hsts: true\n",
    ));
    // TLS but no HTTP answer: HSTS unknown, so `error`.
    checks.push(endpoint_check(
        "hsts-no-answer",
        gandi.port,
        "          hsts: true\n          endpoint_timeout: 2s\n",
    ));

    // Port 80: a redirect to https, one to http, a page, and nothing.
    let (to_https, seen_host) = plain_http(
        "HTTP/1.1 301 Moved Permanently\r\nLocation: https://vigil-tls.test/\r\nContent-Length: 0\r\n\r\n",
    );
    let (to_http, _) = plain_http(
        "HTTP/1.1 302 Found\r\nLocation: http://vigil-tls.test/login\r\nContent-Length: 0\r\n\r\n",
    );
    let (page, _) = plain_http("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    for (id, port) in [
        ("redirect-ok", to_https),
        ("redirect-to-http", to_http),
        ("redirect-page", page),
    ] {
        checks.push(endpoint_check(
            id,
            gandi.port,
            &format!("          http_address: 127.0.0.1:{port}\n"),
        ));
    }

    // Several endpoints in one check, concurrently.
    let many: Vec<String> = servers
        .iter()
        .take(2)
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect();
    checks.push(format!(
        "      - id: two-clean\n        type: tls_endpoint\n        with:\n          addresses: [{}]\n          server_name: {HOST}\n          ca_file: {}\n",
        many.join(", "),
        p.path("root.pem")
    ));

    // Not reachable: `error`, never `fail`.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    checks.push(endpoint_check("refused", closed_port, ""));
    checks.push(endpoint_check(
        "redirect-refused",
        gandi.port,
        &format!("          http_address: 127.0.0.1:{closed_port}\n"),
    ));
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    checks.push(endpoint_check(
        "timeout",
        silent.local_addr().unwrap().port(),
        "          endpoint_timeout: 1s\n",
    ));
    // Something that is not TLS: the handshake fails.
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in plain.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = std::io::Write::write_all(&mut s, b"HTTP/1.0 400 Bad Request\r\n\r\n");
        }
    });
    checks.push(endpoint_check("not-tls", plain_port, ""));
    checks.push(
        "      - id: dns\n        type: tls_endpoint\n        with:\n          address: no-such-host.invalid:443\n          endpoint_timeout: 5s\n".to_owned(),
    );
    checks.push(format!(
        "      - id: mixed\n        type: tls_endpoint\n        with:\n          addresses: [{}, 127.0.0.1:{closed_port}]\n          server_name: {HOST}\n          ca_file: {}\n",
        many[0],
        p.path("root.pem")
    ));

    let (_dir, path) = policy(&checks);
    let r = run(&path);

    expect(&r, "valid", "pass", &[]);
    expect(&r, "ec", "pass", &[]);
    expect(&r, "openssl-clean", "pass", &[]);
    expect(&r, "two-clean", "pass", &[]);
    expect(&r, "issuer-ok", "pass", &[]);
    expect(&r, "expired", "fail", &["expired"]);
    expect(&r, "future", "fail", &["not_yet_valid"]);
    expect(&r, "soon", "fail", &["expiring_soon"]);
    expect(&r, "selfsigned", "fail", &["self_signed"]);
    expect(&r, "untrusted", "fail", &["untrusted_chain"]);
    expect(&r, "wronghost", "fail", &["hostname_mismatch"]);
    expect(
        &r,
        "missing",
        "fail",
        &["incomplete_chain", "untrusted_chain"],
    );
    expect(&r, "disorder", "fail", &["chain_order"]);
    expect(&r, "issuer-wrong", "fail", &["issuer_mismatch"]);
    expect(&r, "ocsp", "fail", &["no_ocsp_stapling"]);
    expect(&r, "tls13-only", "fail", &["old_protocol"]);
    expect(&r, "tls13-ok", "pass", &[]);
    expect(&r, "tls12-ok", "pass", &[]);
    expect(&r, "rsa1024", "fail", &["weak_key"]);
    expect(&r, "sha1", "fail", &["weak_signature"]);
    expect(
        &r,
        "tls10",
        "fail",
        &["old_protocol", "old_protocol", "weak_cipher"],
    );
    expect(&r, "tls10-allowed", "pass", &["weak_cipher_not_probed"]);
    expect(&r, "tls12-cbc", "fail", &["weak_cipher"]);
    let cbc_check = check_of(&r, "TLS", "tls12-cbc");
    let msg = cbc_check["findings"][0]["message"].as_str().unwrap();
    assert!(msg.contains("_CBC_"), "{msg}");
    // The negotiated suite is the strong one; the probe found the weak one.
    assert_eq!(
        cbc_check["evidence"]["endpoints"][0]["protocol"], "1.3",
        "{cbc_check}"
    );
    expect(&r, "openssl-no-hsts", "fail", &["hsts_missing"]);
    expect(&r, "hsts-ok", "pass", &[]);
    expect(&r, "hsts-short", "fail", &["hsts_too_short"]);
    expect(&r, "hsts-short-allowed", "pass", &[]);
    expect(&r, "hsts-missing", "fail", &["hsts_missing"]);
    expect(&r, "hsts-no-answer", "error", &[]);
    expect(&r, "redirect-ok", "pass", &[]);
    // The request named the site, as a browser would.
    assert_eq!(
        seen_host
            .lock()
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Host: "))
            .map(str::trim),
        Some(format!("{HOST}:{to_https}").as_str())
    );
    expect(&r, "redirect-to-http", "fail", &["no_https_redirect"]);
    expect(&r, "redirect-page", "fail", &["no_https_redirect"]);
    expect(&r, "redirect-refused", "error", &[]);
    expect(&r, "refused", "error", &[]);
    expect(&r, "timeout", "error", &[]);
    expect(&r, "dns", "error", &[]);
    expect(&r, "not-tls", "error", &[]);
    let not_tls = check_of(&r, "TLS", "not-tls");
    assert!(
        not_tls["summary"].as_str().unwrap().contains("handshake"),
        "{not_tls}"
    );
    // One endpoint down makes the whole check `error`; the other is still judged.
    let mixed = check_of(&r, "TLS", "mixed");
    assert_eq!(mixed["status"], "error");
    assert_eq!(mixed["evidence"]["endpoints"][0]["protocol"], "1.3");

    let refused = check_of(&r, "TLS", "refused");
    assert!(
        refused["summary"].as_str().unwrap().contains("refused"),
        "{refused}"
    );
    let timeout = check_of(&r, "TLS", "timeout");
    assert!(
        timeout["summary"].as_str().unwrap().contains("timed out"),
        "{timeout}"
    );

    // Evidence: every certificate described, the probes' answers recorded.
    let v = check_of(&r, "TLS", "valid");
    let ep = &v["evidence"]["endpoints"][0];
    assert_eq!(ep["trust"]["outcome"], "trusted");
    let leaf = &ep["certificates"][0];
    assert_eq!(leaf["key_type"], "RSA");
    assert_eq!(leaf["key_bits"], 2048);
    assert_eq!(leaf["signature_algorithm"], "ecdsa-with-SHA256");
    assert_eq!(leaf["sha256"].as_str().unwrap().len(), 64);
    assert!(leaf["issuer"].as_str().unwrap().contains("Gandi Test SAS"));
    assert_eq!(ep["old_protocols"][0]["outcome"], "refused");
    assert_eq!(ep["old_protocols"][1]["outcome"], "refused");
    let t10 = &check_of(&r, "TLS", "tls10")["evidence"]["endpoints"][0];
    assert_eq!(t10["old_protocols"][0]["outcome"], "accepted");

    drop((
        servers,
        gandi,
        weak_key,
        sha1,
        old,
        tls12,
        openssl_modern,
        silent,
    ));
    drop((cbc, hsts_year, hsts_day, no_hsts));
}

/// A `tls_certificate_file` check item reading `path`; `extra` adds `with`
/// lines (at ten spaces).
fn file_check(id: &str, path: &str, extra: &str) -> String {
    check_yaml(
        id,
        "tls_certificate_file",
        None,
        &format!(
            "          path: {path}\n          ca_file: {}\n{extra}",
            pki().path("root.pem")
        ),
    )
}

#[test]
fn certificate_files() {
    let p = pki();
    let checks = vec![
        file_check(
            "valid",
            &p.path("valid.chain"),
            &format!("          issuer_contains: Gandi\n          server_name: {HOST}\n"),
        ),
        file_check("with-key", &p.path("with-key.pem"), ""),
        file_check("expired", &p.path("expired.chain"), ""),
        file_check("soon", &p.path("soon.chain"), ""),
        file_check("sha1", &p.path("sha1.chain"), ""),
        file_check("rsa1024", &p.path("rsa1024.chain"), ""),
        file_check("selfsigned", &p.path("selfsigned.chain"), ""),
        file_check("missing-intermediate", &p.path("missing.chain"), ""),
        file_check(
            "wronghost",
            &p.path("wronghost.chain"),
            &format!("          server_name: {HOST}\n"),
        ),
        file_check(
            "issuer-wrong",
            &p.path("valid.chain"),
            "          issuer_contains: Gandi Standard SSL CA\n",
        ),
        file_check("absent", "/nonexistent/vigil-tls/fullchain.pem", ""),
        file_check("not-pem", &p.path("ca.cnf"), ""),
    ];
    let (_dir, path) = policy(&checks);
    let r = run(&path);
    expect(&r, "valid", "pass", &[]);
    expect(&r, "with-key", "pass", &[]);
    // The key never reaches the report.
    let key_body: String = std::fs::read_to_string(p.dir.join("valid.key"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(!r.to_string().contains(&key_body));
    expect(&r, "expired", "fail", &["expired"]);
    expect(&r, "soon", "fail", &["expiring_soon"]);
    expect(&r, "sha1", "fail", &["weak_signature"]);
    expect(&r, "rsa1024", "fail", &["weak_key"]);
    expect(&r, "selfsigned", "fail", &["self_signed"]);
    expect(
        &r,
        "missing-intermediate",
        "fail",
        &["incomplete_chain", "untrusted_chain"],
    );
    expect(&r, "wronghost", "fail", &["hostname_mismatch"]);
    expect(&r, "issuer-wrong", "fail", &["issuer_mismatch"]);
    expect(&r, "absent", "error", &[]);
    expect(&r, "not-pem", "error", &[]);
}

/// The papyrs policy's TLS controls run and, on a machine without the
/// papyrs web server, say `error` rather than `pass`.
#[test]
fn papyrs_policy_tls_controls_are_real_checks() {
    let policy = workspace().join("policies/papyrs.yaml");
    let r = agent_check(&policy)
        .args(["--control", "SP-1", "--control", "SP-2"])
        .report();
    for (control, check, kind) in [
        ("SP-1", "public-https", "tls_endpoint"),
        ("SP-2", "served-certificate", "tls_certificate_file"),
    ] {
        let c = check_of(&r, control, check);
        assert_eq!(c["type"], kind);
        assert_ne!(c["status"], "pass", "{c}");
    }
}
