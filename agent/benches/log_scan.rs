//! `log_secrets` throughput, beside ripgrep with equivalent patterns.
//!
//! ```text
//! cargo bench -p vigil-agent --bench log_scan -- [--size-mib 2048] [--gzip-mib 512] [--dir /tmp/vigil-log-secrets-bench]
//! ```
//!
//! Generates a realistic log (nginx, sshd, PostgreSQL, Rails, JSON-logger
//! lines, a few secrets), then measures, in the same run:
//! - the scanner on one file on one thread, cold (page cache dropped for the
//!   file with `dd iflag=nocache`) and warm;
//! - the same file split into segments across all cores, and the same bytes
//!   as two files scanned in parallel;
//! - `rg -c -f patterns.txt` with equivalent patterns, warm, with and without
//!   the card-number candidate pattern;
//! - a gzip-compressed slice: the scanner vs `zcat > /dev/null`.
//!
//! Everything generated is deleted at the end. Run by `cargo test --benches`
//! (without `--bench`), it is a smoke run on 8 MiB.

// A benchmark fails loudly; indices are taken modulo the lengths.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use vigil_agent::collect::log_secrets::collect_with_threads;
use vigil_agent::collect::HostCtx;
use vigil_rules::checks::log_secrets::Params;

#[expect(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark fails loudly"
)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| default.to_owned())
    };
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then
    // this is a smoke run on a few MiB.
    let smoke = !args.iter().any(|a| a == "--bench");
    let (size_default, gzip_default) = if smoke { ("8", "2") } else { ("2048", "512") };
    let size_mib: u64 = arg("--size-mib", size_default).parse().expect("--size-mib");
    let gzip_mib: u64 = arg("--gzip-mib", gzip_default).parse().expect("--gzip-mib");
    let dir = PathBuf::from(arg("--dir", "/tmp/vigil-log-secrets-bench"));
    let _ = std::fs::remove_dir_all(&dir);
    let logdir = dir.join("root/var/log");
    std::fs::create_dir_all(logdir.join("split")).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "# log_secrets benchmark: {size_mib} MiB plain, {gzip_mib} MiB gzip slice, {cores} cores"
    );

    let t = Instant::now();
    let big = logdir.join("big.log");
    let (lines, secrets) = generate(&big, size_mib << 20, 0x5eed);
    let bytes = std::fs::metadata(&big).unwrap().len();
    println!(
        "generated {bytes} bytes, {lines} lines, {secrets} planted secrets in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    split(&big, &logdir.join("split"), 2);
    let patterns = dir.join("patterns.txt");
    std::fs::write(&patterns, RG_PATTERNS.join("\n") + "\n").unwrap();
    let patterns_nocard = dir.join("patterns-nocard.txt");
    std::fs::write(
        &patterns_nocard,
        RG_PATTERNS[..RG_PATTERNS.len() - 1].join("\n") + "\n",
    )
    .unwrap();

    let ctx = HostCtx {
        root: dir.join("root"),
        state_dir: dir.join("state"),
        pace: Default::default(),
    };
    let params = |paths: &str, extra: &str| -> Params {
        serde_yaml::from_str(&format!(
            "paths: [{paths}]\nincremental: false\nmax_findings_per_file: 1000000\n{extra}"
        ))
        .unwrap()
    };
    let all = params("/var/log/big.log", "");
    let cards_only = params("/var/log/big.log", "detectors: [card_number]");
    let no_cards = params(
        "/var/log/big.log",
        "detectors: [password_assignment, basic_auth_header, url_credentials, bearer_token, private_key_block, password_hash, aws_access_key_id, aws_secret_access_key, github_token, slack_token, stripe_secret_key]",
    );
    let split_all = params("/var/log/split/*.log", "");

    let mut rows: Vec<(String, f64, f64, usize, String)> = Vec::new();
    let ours = |name: &str,
                p: &Params,
                cold: bool,
                threads: usize,
                rows: &mut Vec<(String, f64, f64, usize, String)>| {
        if cold {
            // Only the file this row reads: the split copies stay warm for
            // the rows that say so.
            drop_cache(&big);
        }
        let t = Instant::now();
        let cpu0 = cpu_seconds().0;
        let facts = collect_with_threads(p, &ctx, threads).expect("scan");
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu_seconds().0 - cpu0;
        let scanned: u64 = facts.files.iter().map(|f| f.bytes_scanned).sum();
        let hits: u64 = facts.files.iter().map(|f| f.hits_total).sum();
        assert!(facts.files.iter().all(|f| f.error.is_none()));
        rows.push((
            name.to_owned(),
            secs,
            cpu,
            threads,
            format!("{hits} hits, {scanned} bytes"),
        ));
    };
    ours(
        "vigil, all detectors, 1 file, cold",
        &all,
        true,
        1,
        &mut rows,
    );
    ours(
        "vigil, all detectors, 1 file, warm",
        &all,
        false,
        1,
        &mut rows,
    );
    ours(
        "vigil, all detectors, 1 file, warm (again)",
        &all,
        false,
        1,
        &mut rows,
    );
    ours(
        "vigil, without card_number, 1 file, warm",
        &no_cards,
        false,
        1,
        &mut rows,
    );
    ours(
        "vigil, card_number only, 1 file, warm",
        &cards_only,
        false,
        1,
        &mut rows,
    );
    ours(
        &format!("vigil, all detectors, 1 file split across {cores} cores, warm"),
        &all,
        false,
        cores,
        &mut rows,
    );
    ours(
        &format!("vigil, all detectors, 2 files in parallel, warm ({cores} cores)"),
        &split_all,
        false,
        cores.min(2),
        &mut rows,
    );

    if let Some(rg) = which("rg") {
        let rg_run =
            |name: &str, pats: &Path, rows: &mut Vec<(String, f64, f64, usize, String)>| {
                let t = Instant::now();
                let cpu0 = cpu_seconds().1;
                let out = Command::new(&rg)
                    .arg("-c")
                    .arg("-f")
                    .arg(pats)
                    .arg(&big)
                    .output()
                    .unwrap();
                let secs = t.elapsed().as_secs_f64();
                let cpu = cpu_seconds().1 - cpu0;
                let count = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                rows.push((
                    name.to_owned(),
                    secs,
                    cpu,
                    1,
                    format!("{count} matching lines"),
                ));
            };
        rg_run(
            "rg -c -f patterns.txt (with card pattern), warm",
            &patterns,
            &mut rows,
        );
        rg_run(
            "rg -c -f patterns-nocard.txt, warm",
            &patterns_nocard,
            &mut rows,
        );
    } else {
        println!("rg not found: install ripgrep to compare");
    }

    // gzip: a slice of the log, compressed at gzip's default level.
    let slice = logdir.join("slice.log");
    let gz = logdir.join("slice.log.1.gz");
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c {} {} > {} && gzip -c {} > {}",
            gzip_mib << 20,
            big.display(),
            slice.display(),
            slice.display(),
            gz.display()
        ))
        .status()
        .unwrap();
    let _ = std::fs::remove_file(&slice);
    let t = Instant::now();
    let cpu0 = cpu_seconds().1;
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("zcat {} > /dev/null", gz.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let zsecs = t.elapsed().as_secs_f64();
    let zcpu = cpu_seconds().1 - cpu0;
    rows.push((
        format!("zcat > /dev/null ({gzip_mib} MiB)"),
        zsecs,
        zcpu,
        1,
        String::new(),
    ));
    let gzp = params("/var/log/slice.log.1.gz", "");
    ours(
        &format!("vigil, all detectors, .gz ({gzip_mib} MiB)"),
        &gzp,
        false,
        1,
        &mut rows,
    );

    println!();
    println!(
        "| run | wall s | CPU s | MB/s (wall) | MB/s per core (wall) | MB per CPU-second | notes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    for (name, secs, cpu, threads, notes) in &rows {
        let b = if name.contains(".gz") || name.contains("zcat") {
            (gzip_mib << 20) as f64
        } else {
            bytes as f64
        };
        let mbs = b / secs / 1e6;
        let per_cpu = if *cpu > 0.0 {
            format!("{:.0}", b / cpu / 1e6)
        } else {
            "-".into()
        };
        println!(
            "| {name} | {secs:.2} | {cpu:.2} | {mbs:.0} | {:.0} | {per_cpu} | {notes} |",
            mbs / *threads as f64
        );
    }
    println!(
        "\nload average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Equivalent patterns for ripgrep: the same detectors as regexes (ripgrep
/// cannot check Luhn or decode Basic credentials, so these find candidates).
const RG_PATTERNS: &[&str] = &[
    r#"(?i)(password|passwd|passphrase|pwd|pass)\\?["']?[ \t]*(=>|=|:)[ \t]*\S"#,
    r#"(?i)(password|identified\s+by)\s+'[^']*'"#,
    r"(?i)\bbasic\s+[A-Za-z0-9+/]{6,}={0,2}",
    r#"(?i)\b[a-z][a-z0-9+.\-]{1,15}://[^\s/:@?#"'<>]*:[^\s/@?#"'<>]+@"#,
    r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{16,}",
    r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY",
    r"\$(2[abxy]|[156]|g?y|7|argon2(id|i|d))\$|pbkdf2[-_]sha\d+\$",
    r"\b(AKIA|ASIA)[A-Z0-9]{16}\b",
    r"(?i)aws_secret_access_key",
    r"\bgh[pousr]_[A-Za-z0-9]{36,}|github_pat_",
    r"\bxox[abposr]-|hooks\.slack\.com/services/",
    r"\b(sk|rk)_live_[A-Za-z0-9]{20,}",
    r"\b\d(?:[ -]?\d){12,18}\b",
];

/// CPU seconds used so far by this process (`self`) and by its waited-for
/// children, from /proc/self/stat: on a shared machine CPU time says more
/// than wall time.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // After the `)`: state is field 0, utime 11, stime 12, cutime 13, cstime 14.
    let tick = 100.0;
    let get = |i: usize| f.get(i).copied().unwrap_or(0.0) / tick;
    (get(11) + get(12), get(13) + get(14))
}

fn which(tool: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/local/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
}

/// Drops a file from the page cache (GNU dd's `nocache`).
fn drop_cache(path: &Path) {
    let _ = Command::new("dd")
        .arg(format!("if={}", path.display()))
        .args(["iflag=nocache", "count=0", "status=none"])
        .stderr(Stdio::null())
        .status();
}

/// Splits a file into `n` files at line boundaries.
fn split(big: &Path, dir: &Path, n: u64) {
    let st = Command::new("split")
        .arg("-n")
        .arg(format!("l/{n}"))
        .arg("--additional-suffix=.log")
        .arg(big)
        .arg(dir.join("part-"))
        .status()
        .unwrap();
    assert!(st.success());
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PATHS: &[&str] = &[
    "/",
    "/static/app.9f3c1e.css",
    "/static/app.9f3c1e.js",
    "/api/v1/pages/",
    "/sites/",
    "/users/sign_in",
    "/favicon.ico",
    "/api/v1/attachments/",
    "/search?q=quarterly+report",
    "/users/password/new",
];
const UAS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "curl/8.5.0",
];
const SECRETS: &[&str] = &[
    "GET /login?user=bob&password=Gen3rated-Pw HTTP/1.1",
    "charge failed card=4111111111111111 amount=1900",
    "connecting to postgres://app:Gen3rated-Db@db:5432/app",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.Gen3ratedSignature123",
    "{\"msg\":\"login\",\"password\":\"Gen3rated-Js\"}",
];

/// Writes about `target` bytes of log lines; returns (lines, secrets planted).
fn generate(path: &Path, target: u64, seed: u64) -> (u64, u64) {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut r = Rng(seed);
    let (mut written, mut lines, mut secrets) = (0u64, 0u64, 0u64);
    let mut line = String::with_capacity(512);
    while written < target {
        line.clear();
        let (h, m, s) = (r.below(24), r.below(60), r.below(60));
        let ip = format!(
            "{}.{}.{}.{}",
            1 + r.below(223),
            r.below(256),
            r.below(256),
            1 + r.below(254)
        );
        use std::fmt::Write as _;
        match r.below(100) {
            0..=39 => {
                let p = PATHS[r.below(PATHS.len() as u64) as usize];
                let id = if p.ends_with('/') {
                    r.below(100_000).to_string()
                } else {
                    String::new()
                };
                let _ = write!(
                    line,
                    "{ip} - - [25/Nov/2026:{h:02}:{m:02}:{s:02} +0000] \"GET {p}{id} HTTP/2.0\" {} {} \"https://papyrs.example/sites/{}\" \"{}\" rt={}.{:03}",
                    [200, 200, 200, 304, 302, 404][r.below(6) as usize],
                    r.below(90_000),
                    r.below(5000),
                    UAS[r.below(UAS.len() as u64) as usize],
                    r.below(2),
                    r.below(1000)
                );
            }
            40..=54 => {
                let user = ["root", "admin", "deploy", "alice", "oracle"][r.below(5) as usize];
                let what = match r.below(4) {
                    0 => format!("Failed password for invalid user {user} from {ip} port {} ssh2", 1024 + r.below(60_000)),
                    1 => format!("Accepted publickey for deploy from {ip} port {} ssh2: ED25519 SHA256:Xq3Vb0dPm7Lk2s9Q1wErTyUiOp4aSdFgHjKlZxCvBnM", 1024 + r.below(60_000)),
                    2 => format!("pam_unix(sshd:session): session opened for user {user}(uid={}) by (uid=0)", 1000 + r.below(50)),
                    _ => format!("Disconnected from authenticating user {user} {ip} port {} [preauth]", 1024 + r.below(60_000)),
                };
                let _ = write!(
                    line,
                    "Nov 25 {h:02}:{m:02}:{s:02} web-1 sshd[{}]: {what}",
                    r.below(99_999)
                );
            }
            55..=64 => {
                let _ = write!(
                    line,
                    "2026-11-25 {h:02}:{m:02}:{s:02}.{:03} UTC [{}] app@papyrs LOG:  duration: {}.{:03} ms  statement: SELECT pages.* FROM pages WHERE pages.site_id = {} ORDER BY updated_at DESC LIMIT 50",
                    r.below(1000), r.below(99_999), r.below(5000), r.below(1000), r.below(1_000_000)
                );
            }
            65..=79 => {
                let _ = write!(
                    line,
                    "I, [2026-11-25T{h:02}:{m:02}:{s:02}.{:06} #{}]  INFO -- : [req-{:08x}] Completed 200 OK in {}ms (Views: {}.{}ms | ActiveRecord: {}.{}ms | Allocations: {})",
                    r.below(1_000_000), r.below(99_999), r.next() as u32, r.below(900), r.below(500), r.below(10), r.below(100), r.below(10), r.below(90_000)
                );
            }
            _ => {
                let _ = write!(
                    line,
                    "{{\"level\":30,\"time\":17641{:08},\"pid\":{},\"hostname\":\"web-1\",\"reqId\":\"req-{:x}\",\"req\":{{\"method\":\"GET\",\"url\":\"/api/v1/pages/{}\",\"remoteAddress\":\"::ffff:{ip}\"}},\"res\":{{\"statusCode\":200}},\"responseTime\":{}.{},\"msg\":\"request completed\"}}",
                    r.below(100_000_000), r.below(99_999), r.next() as u32, r.below(100_000), r.below(300), r.below(10)
                );
            }
        }
        // A few secrets: about one line in 200,000.
        if r.below(200_000) == 0 {
            line.push(' ');
            line.push_str(SECRETS[r.below(SECRETS.len() as u64) as usize]);
            secrets += 1;
        }
        line.push('\n');
        w.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        lines += 1;
    }
    w.flush().unwrap();
    (lines, secrets)
}
