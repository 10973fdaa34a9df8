//! Timings of the firewall and patch_level judges and parsers.
//! Run: `cargo bench -p vigil-rules --bench firewall_patch`.

#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark fails loudly on a missing fixture"
)]
use std::hint::black_box;
use std::time::{Duration, Instant};

use vigil_rules::checks::firewall::{self, Firewall};
use vigil_rules::checks::patch_level::{dpkg_version, status};
use vigil_rules::checks::{CheckKind, JudgeCtx};

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs.get(runs.len() / 2).copied().unwrap_or_default()
}

fn time<T>(n: usize, mut f: impl FnMut() -> T) -> Duration {
    let runs = (0..n)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    median(runs)
}

fn fixture(case: &str, file: &str) -> String {
    let p = format!(
        "{}/../tests/data/firewall/{case}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn main() {
    let ctx = JudgeCtx {
        now: chrono::Utc::now(),
        host: "bench".into(),
    };
    let params: firewall::Params =
        serde_json::from_str(r#"{"allowed_tcp":[22,80,443]}"#).unwrap_or_else(|e| panic!("{e}"));
    for case in ["default_deny", "named_set", "open_policy"] {
        let json = fixture(case, "ruleset.json");
        let facts = firewall::Facts {
            nft: firewall::Output::Text(json.clone()),
            ..firewall::Facts::default()
        };
        let parse = time(200, || firewall::nft::parse(&json, &[]));
        let judge = time(50, || Firewall::judge(&params, &facts, &ctx));
        println!("firewall {case:<14} nft JSON parse {parse:>10.1?}   full judge {judge:>10.1?}");
    }
    let facts = firewall::Facts {
        iptables: firewall::Output::Text(fixture("iptables_backend", "iptables-save.txt")),
        ip6tables: firewall::Output::Text(fixture("iptables_backend", "ip6tables-save.txt")),
        ..firewall::Facts::default()
    };
    let judge = time(50, || Firewall::judge(&params, &facts, &ctx));
    println!("firewall iptables_backend full judge {judge:>10.1?}");

    // A large synthetic nft ruleset: 2000 single-port accept rules.
    let mut rules = String::new();
    for i in 0..2000 {
        rules.push_str(&format!(
            r#",{{"rule":{{"family":"inet","table":"filter","chain":"input","handle":{i},"expr":[{{"match":{{"op":"==","left":{{"payload":{{"protocol":"tcp","field":"dport"}}}},"right":{}}}}},{{"accept":null}}]}}}}"#,
            10000 + i
        ));
    }
    let big = format!(
        r#"{{"nftables":[{{"table":{{"family":"inet","name":"filter"}}}},{{"chain":{{"family":"inet","table":"filter","name":"input","type":"filter","hook":"input","prio":0,"policy":"drop"}}}}{rules}]}}"#
    );
    let facts = firewall::Facts {
        nft: firewall::Output::Text(big),
        ..firewall::Facts::default()
    };
    let judge = time(5, || Firewall::judge(&params, &facts, &ctx));
    println!("firewall 2000-rule chain  full judge {judge:>10.1?}");

    // dpkg version comparison.
    let pairs = [
        ("7.88.1-10+deb12u8", "7.88.1-10+deb12u12"),
        ("1:2.38.1-5+deb12u3", "1:2.38.1-5+deb12u2"),
        ("3.0.15-1~deb12u1", "3.0.15-1"),
        ("6.1.112-1", "6.1.115-1"),
    ];
    let n = 1_000_000;
    let t = Instant::now();
    for i in 0..n {
        let (a, b) = pairs[i % pairs.len()];
        black_box(dpkg_version::compare(black_box(a), black_box(b)).ok());
    }
    let per = t.elapsed() / n as u32;
    println!("dpkg version compare: {per:.1?} per pair ({n} pairs)");

    // This machine's dpkg status file.
    if let Ok(text) = std::fs::read_to_string("/var/lib/dpkg/status") {
        let mut count = 0;
        let d = time(20, || {
            let v = status::installed(&text).unwrap_or_default();
            count = v.len();
            v
        });
        println!(
            "dpkg status parse: {d:.1?} for {count} installed packages ({} KiB)",
            text.len() / 1024
        );
    }
}
