//! Parsing and judging throughput of `backup_freshness` and `mirror_lag`.
//! Run: `cargo bench -p vigil-rules --bench backup`.

use std::time::Instant;

use vigil_rules::checks::backup_freshness::{
    self, parse_borg_list, parse_restic_snapshots, parse_zone, set_time_from_name, BackupFreshness,
    Kind, SourceFacts,
};
use vigil_rules::checks::mirror_lag::{self, MirrorLag, PostgresFacts, Replica};
use vigil_rules::checks::{CheckKind, JudgeCtx};

fn time<T>(label: &str, n: usize, mut f: impl FnMut() -> T) {
    // One warm-up, then the best of five.
    std::hint::black_box(f());
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{label:<48} {:>10.3} ms  {:>12.0} items/s",
        best * 1e3,
        n as f64 / best
    );
}

fn main() -> Result<(), String> {
    let n = 10_000;
    let restic: String = format!(
        "[{}]",
        (0..n)
            .map(|i| format!(
                r#"{{"time":"2026-{:02}-{:02}T02:00:00.123456789+01:00","tree":"ab","paths":["/srv/www"],"hostname":"papyrs","username":"root","id":"{i:064x}","short_id":"{:08x}"}}"#,
                1 + (i % 12),
                1 + (i % 28),
                i
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    let borg = format!(
        r#"{{"archives":[{}],"encryption":{{"mode":"repokey"}}}}"#,
        (0..n)
            .map(|i| format!(
                r#"{{"name":"papyrs-{i}","id":"{i:064x}","start":"2026-{:02}-{:02}T03:00:00.000000","time":"2026-{:02}-{:02}T03:00:00.000000"}}"#,
                1 + (i % 12),
                1 + (i % 28),
                1 + (i % 12),
                1 + (i % 28)
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    let zone = parse_zone("Europe/Amsterdam").map_err(|e| e.to_string())?;
    time("restic snapshots --json, 10k snapshots", n, || {
        parse_restic_snapshots(&restic)
    });
    time("borg list --json, 10k archives (IANA zone)", n, || {
        parse_borg_list(&borg, zone)
    });
    let names: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "papyrs-sites-2026-{:02}-{:02}T02-30-00.tar.gz",
                1 + (i % 12),
                1 + (i % 28)
            )
        })
        .collect();
    time("dated set names, 10k", n, || {
        names
            .iter()
            .filter_map(|s| set_time_from_name(s, zone))
            .count()
    });

    let sets = parse_restic_snapshots(&restic).map_err(|e| e.to_string())?;
    let params: backup_freshness::Params = serde_json::from_str(
        r#"{"sources":[{"kind":"restic","location":"/a"},{"kind":"restic","location":"sftp:b@h:/r"}],"min_sets":7,"min_locations":2}"#,
    )
    .map_err(|e| e.to_string())?;
    let source = |loc: &str, site: &str| SourceFacts {
        kind: Kind::Restic,
        location: loc.into(),
        site: site.into(),
        local: false,
        mount: None,
        sets: sets.clone(),
        encryption_mode: None,
        required_paths: vec![],
        data_check: None,
        checksum: None,
        cached_listing: None,
        error: None,
    };
    let facts = backup_freshness::Facts {
        sources: vec![source("/a", "local"), source("sftp:b@h:/r", "h")],
        host_names: vec![],
    };
    let ctx = JudgeCtx {
        now: chrono::Utc::now(),
        host: "bench".into(),
    };
    time("judge backup_freshness, 2 x 10k sets", 2 * n, || {
        BackupFreshness::judge(&params, &facts, &ctx)
    });

    let mparams: mirror_lag::Params = serde_json::from_str(
        r#"{"postgres":{"dsn":"postgres://m@h/db","min_replicas":2,"max_lag_seconds":60}}"#,
    )
    .map_err(|e| e.to_string())?;
    let replicas: Vec<Replica> = (0..1000)
        .map(|i| Replica {
            application_name: format!("standby-{i}"),
            client_addr: Some(format!("10.0.{}.{}", i / 250, i % 250)),
            client_hostname: None,
            state: "streaming".into(),
            sync_state: "async".into(),
            replay_lag_seconds: Some(0.5),
            replay_lag_bytes: Some(1024),
        })
        .collect();
    let mfacts = mirror_lag::Facts {
        postgres: Some(PostgresFacts {
            target: "postgres://m@h/db".into(),
            server_version: "15".into(),
            role: "primary".into(),
            replicas,
            standby: None,
            error: None,
        }),
        heartbeats: vec![],
    };
    time("judge mirror_lag, 1000 replicas", 1000, || {
        MirrorLag::judge(&mparams, &mfacts, &ctx)
    });
    Ok(())
}
