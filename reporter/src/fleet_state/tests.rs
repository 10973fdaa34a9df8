use std::collections::BTreeMap;

use super::daily::daily_rows;
use super::*;
use crate::posture;
use crate::store::{NewReport, Store};

#[test]
fn worst_status_and_days() {
    assert_eq!(worst(["pass", "waived", "attested"]), "attested");
    assert_eq!(worst(["pass", "error", "fail"]), "fail");
    assert_eq!(worst(std::iter::empty()), "unknown");
    assert_eq!(day_of(DAY_MS + 5), DAY_MS);
    assert_eq!(day_of(-1), -DAY_MS);
}

#[test]
fn deltas_move_one_host_and_its_freshness() {
    let now = 10 * DAY_MS + 100;
    assert_eq!(deltas(None, "pass", now), vec![("pass".into(), 1, 1)]);
    // replaced the same day: it was fresh already
    assert_eq!(
        deltas(Some(("fail", now - 50)), "pass", now),
        vec![("pass".into(), 1, 1), ("fail".into(), -1, -1)]
    );
    // replaced a result of an earlier day: carried rows had it not fresh
    assert_eq!(
        deltas(Some(("pass", now - DAY_MS)), "pass", now),
        vec![("pass".into(), 1, 1), ("pass".into(), -1, 0)]
    );
}

fn row(c: &str, day: i64, s: &str, hosts: i64, fresh: i64) -> DailyRow {
    DailyRow {
        control_id: c.into(),
        day: day * DAY_MS,
        status: s.into(),
        hosts,
        fresh,
    }
}

#[test]
fn a_day_without_rows_repeats_the_last_one_as_stale() {
    let rows = vec![
        row("SP-1", 1, "pass", 3, 3),
        row("SP-1", 1, "fail", 1, 1),
        row("SP-2", 1, "pass", 4, 2),
        row("SP-1", 3, "pass", 4, 1),
        row("SP-1", 3, "fail", 0, 0),
    ];
    let d1 = day_counts(&rows, DAY_MS);
    assert_eq!(d1["SP-1"]["pass"], 3);
    assert_eq!(d1["SP-1"]["fail"], 1);
    assert_eq!(d1["SP-2"]["unknown"], 2);
    assert_eq!(day_score(&d1), (Some(5.0 / 8.0), 8));
    let d2 = day_counts(&rows, 2 * DAY_MS);
    assert_eq!(d2["SP-1"]["unknown"], 4);
    assert_eq!(day_score(&d2).0, Some(0.0));
    let d3 = day_counts(&rows, 3 * DAY_MS);
    assert_eq!(d3["SP-1"].get("pass"), Some(&1));
    assert_eq!(d3["SP-1"].get("unknown"), Some(&3));
    assert!(!d3["SP-1"].contains_key("fail"));
    assert!(day_counts(&rows, 0).is_empty());
}

#[test]
fn controls_sort_in_policy_then_natural_order() {
    let policy = vec![
        ("SP-2".to_owned(), String::new()),
        ("SP-1".to_owned(), String::new()),
    ];
    let order = policy_order(&policy);
    let mut ids = vec!["X-10", "SP-1", "X-2", "SP-2"];
    ids.sort_by(|a, b| order_key(&order, a).cmp(&order_key(&order, b)));
    assert_eq!(ids, ["SP-2", "SP-1", "X-2", "X-10"]);
}

#[test]
fn a_past_day_posture_keeps_policy_order() {
    let mut counts = BTreeMap::new();
    counts.insert("SP-10".to_owned(), BTreeMap::from([("pass".to_owned(), 2)]));
    counts.insert(
        "SP-2".to_owned(),
        BTreeMap::from([("fail".to_owned(), 1), ("pass".to_owned(), 1)]),
    );
    let policy = vec![
        ("SP-2".to_owned(), "two".to_owned()),
        ("SP-10".to_owned(), "ten".to_owned()),
    ];
    let p = posture_from_day_counts(0, counts, &policy, &BTreeMap::new());
    let ids: Vec<&str> = p.controls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["SP-2", "SP-10"]);
    assert_eq!(p.controls[0].status, "fail");
    assert_eq!(p.controls[0].applicable_hosts, 2);
    assert_eq!(p.controls[1].status, "pass");
}

/// Item 7 of the brief: the maintained state gives the posture that
/// scanning every stored report gives, for reports delivered out of
/// order (late spool deliveries, ties of finished_at) in several batches.
#[tokio::test]
async fn maintained_state_matches_a_scan_of_the_stored_reports() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("v.db").display());
    let store = Store::open(&url).await.unwrap();
    let audit = crate::audit::AuditLog::load_or_create(&dir.path().join("audit.key"), "t").unwrap();
    let statuses = ["pass", "fail", "error", "attested", "waived", "unknown"];
    let mut seed: u64 = 7;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let base = 1_800_000_000_000_i64;
    let mut reports = Vec::new();
    for _ in 0..240 {
        let host = format!("h-{}", next(9));
        // Coarse times make ties between reports of one host.
        let finished_at = base + i64::try_from(next(40)).unwrap() * 60_000;
        let mut controls: Vec<(String, String, String)> = Vec::new();
        for c in 1..=6 {
            if next(4) > 0 {
                let s = statuses[usize::try_from(next(6)).unwrap()];
                controls.push((format!("SP-{c}"), format!("t{c}"), s.to_owned()));
            }
        }
        let checks = controls.iter().map(|_| "[]".to_owned()).collect();
        reports.push(NewReport {
            report_id: format!("r-{:04}", next(10_000)),
            agent_id: host.clone(),
            host,
            policy_id: "p".into(),
            policy_version: "1".into(),
            policy_sha256: "0".into(),
            started_at: finished_at,
            finished_at,
            summary: "{}".into(),
            body_zstd: crate::store::compress_body("{}").unwrap(),
            body_sha256: String::new(),
            controls,
            applies: vec![],
            checks,
            baselines: vec![],
        });
    }
    // Delivered in batches of varying size, in this (unsorted) order.
    let mut rest = reports.as_slice();
    while !rest.is_empty() {
        let n = usize::try_from(1 + next(30)).unwrap().min(rest.len());
        let (batch, tail) = rest.split_at(n);
        let _g = audit.write_lock().await;
        crate::ingest::insert_reports_locked(&store, &audit, batch)
            .await
            .unwrap();
        rest = tail;
    }
    let policy: Vec<(String, String)> = (1..=7)
        .map(|c| (format!("SP-{c}"), format!("t{c}")))
        .collect();
    for at in [base + 41 * 60_000, base + 60 * 60_000 + 1_800_000] {
        let scanned = posture::compute(
            at,
            &store.latest_controls(at).await.unwrap(),
            &store.last_report_times(at).await.unwrap(),
            &[],
            &policy,
            &BTreeMap::new(),
        );
        let maintained = snapshot(&store, at)
            .await
            .unwrap()
            .posture(&policy, &BTreeMap::new());
        assert_eq!(maintained, scanned, "at {at}");
        assert!(
            scanned.controls.iter().any(|c| !c.hosts_failing.is_empty()) || at > base + 3_600_000
        );
    }
    // The roll-ups agree with the latest results (the module's INVARIANT).
    let today = day_of(crate::store::now_ms());
    let rows = daily_rows(&store, today, today).await.unwrap();
    let latest = latest(&store).await.unwrap();
    for (c, _) in &policy {
        for s in statuses {
            let want = latest
                .iter()
                .filter(|r| &r.control_id == c && r.status == s)
                .count();
            let got: i64 = rows
                .iter()
                .filter(|r| &r.control_id == c && r.status == s && r.day == today)
                .map(|r| r.hosts)
                .sum();
            assert_eq!(got, i64::try_from(want).unwrap(), "{c} {s}");
        }
    }
}
