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

/// The newest result of every control on every host at or before `at`
/// among the stored reports (the first copy of each report id), as a scan
/// of every stored report finds it: of results finished at the same time,
/// the smaller report id's.
fn scan_latest(reports: &[NewReport], at: i64) -> Vec<crate::store::ControlRow> {
    let mut stored = std::collections::HashSet::new();
    let mut best: BTreeMap<(&str, &str), (&NewReport, &str, &str)> = BTreeMap::new();
    for r in reports {
        if !stored.insert(r.report_id.as_str()) || r.finished_at > at {
            continue;
        }
        for (id, title, status) in &r.controls {
            let better = best
                .get(&(r.host.as_str(), id.as_str()))
                .is_none_or(|(o, _, _)| {
                    r.finished_at > o.finished_at
                        || (r.finished_at == o.finished_at && r.report_id < o.report_id)
                });
            if better {
                best.insert((r.host.as_str(), id.as_str()), (r, title, status));
            }
        }
    }
    best.into_iter()
        .map(
            |((host, control), (r, title, status))| crate::store::ControlRow {
                host: host.into(),
                control_id: control.into(),
                title: title.into(),
                status: status.into(),
                finished_at: r.finished_at,
            },
        )
        .collect()
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
    let cache = Cache::default();
    let policy: Vec<(String, String)> = (1..=7)
        .map(|c| (format!("SP-{c}"), format!("t{c}")))
        .collect();
    for at in [base + 41 * 60_000, base + 60 * 60_000 + 1_800_000] {
        let scanned = posture::compute(
            at,
            &scan_latest(&reports, at),
            &store.last_report_times(at).await.unwrap(),
            &[],
            &policy,
            &BTreeMap::new(),
        );
        let no_roles = BTreeMap::new();
        let view = view(&store, &cache).await.unwrap();
        let fleet = view.fleet();
        let maintained = posture::judge(&fleet, at, &policy, &no_roles, None).posture();
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

async fn temp_store(dir: &std::path::Path) -> Store {
    let url = format!("sqlite://{}?mode=rwc", dir.join("v.db").display());
    Store::open(&url).await.unwrap()
}

async fn add_agent(store: &Store, host: &str, roles: &[&str], interval: i64, created: i64) {
    let id = format!("a-{host}-{created}");
    sqlx::query("INSERT INTO agents (id, host, roles, interval_secs, token_lookup, token_digest, created_at) VALUES ($1, $2, $3, $4, $5, '', $6)")
        .bind(&id)
        .bind(host)
        .bind(serde_json::to_string(roles).unwrap())
        .bind(interval)
        .bind(&id)
        .bind(created)
        .execute(&store.pool)
        .await
        .unwrap();
}

fn new_report(host: &str, id: &str, finished_at: i64, controls: &[(&str, &str)]) -> NewReport {
    NewReport {
        report_id: id.into(),
        agent_id: host.into(),
        host: host.into(),
        policy_id: "p".into(),
        policy_version: "1".into(),
        policy_sha256: "0".into(),
        started_at: finished_at,
        finished_at,
        summary: "{}".into(),
        body_zstd: crate::store::compress_body("{}").unwrap(),
        body_sha256: String::new(),
        controls: controls
            .iter()
            .map(|(c, s)| ((*c).into(), format!("{c} title"), (*s).into()))
            .collect(),
        applies: vec![],
        checks: controls.iter().map(|_| "[]".to_owned()).collect(),
        baselines: vec![],
    }
}

async fn ingest(store: &Store, audit: &crate::audit::AuditLog, reports: &[NewReport]) {
    let _g = audit.write_lock().await;
    crate::ingest::insert_reports_locked(store, audit, reports)
        .await
        .unwrap();
}

/// The SQL form of staleness (host list, metrics) agrees with
/// `posture::is_stale` (posture, overview, control page) at its edges.
#[tokio::test]
async fn staleness_in_sql_is_staleness_in_rust() {
    let dir = tempfile::tempdir().unwrap();
    let store = temp_store(dir.path()).await;
    let at = 10_000_000_i64;
    for (last, iv) in [
        (Some(at - 120_000), 60),
        (Some(at - 120_001), 60),
        (Some(at - 1_999), 0),
        (Some(at - 2_001), 0),
        (Some(at - 2_001), -5),
        (Some(at + 5_000), 60),
        (None, 60),
    ] {
        let q = format!(
            "SELECT CASE WHEN {} THEN 1 ELSE 0 END FROM (SELECT CAST($2 AS BIGINT) AS last, CAST($3 AS BIGINT) AS iv) t",
            stale_sql("t.last", "t.iv")
        );
        let got: i64 = sqlx::query_scalar(&q)
            .bind(at)
            .bind(last)
            .bind(iv)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(
            got == 1,
            posture::is_stale(last, iv, at),
            "last {last:?} interval {iv}"
        );
    }
}

/// The views' cache: a second view without an ingest in between reads
/// nothing again, and a report ingested after a view is in the next view.
#[tokio::test]
async fn a_report_ingested_after_a_view_is_in_the_next_view() {
    let dir = tempfile::tempdir().unwrap();
    let store = temp_store(dir.path()).await;
    let audit = crate::audit::AuditLog::load_or_create(&dir.path().join("audit.key"), "t").unwrap();
    let cache = Cache::default();
    let now = crate::store::now_ms();
    add_agent(&store, "web-1", &[], 3600, 1).await;
    ingest(
        &store,
        &audit,
        &[new_report("web-1", "r1", now - 1000, &[("SP-1", "pass")])],
    )
    .await;
    let policy = vec![("SP-1".to_owned(), "one".to_owned())];
    let roles = BTreeMap::new();
    let v = view(&store, &cache).await.unwrap();
    let f = v.fleet();
    let p = posture::judge(&f, now, &policy, &roles, None).posture();
    assert_eq!(p.controls[0].status, "pass");
    let _ = view(&store, &cache).await.unwrap();
    assert_eq!(cache.loads(), 1, "nothing was ingested: the cache serves");
    ingest(
        &store,
        &audit,
        &[new_report("web-1", "r2", now - 500, &[("SP-1", "fail")])],
    )
    .await;
    let v = view(&store, &cache).await.unwrap();
    let f = v.fleet();
    let p = posture::judge(&f, now, &policy, &roles, None).posture();
    assert_eq!(p.controls[0].status, "fail", "the new report is seen");
    assert_eq!(p.controls[0].hosts_failing, ["web-1"]);
    assert_eq!(cache.loads(), 2);
    // An agent enrolled after the cached read is seen at once (agents are
    // read on every view) and counts as unknown for the policy's control.
    add_agent(&store, "web-2", &[], 3600, 2).await;
    let v = view(&store, &cache).await.unwrap();
    let f = v.fleet();
    let p = posture::judge(&f, now, &policy, &roles, None).posture();
    assert_eq!(p.controls[0].hosts_unknown, ["web-2"]);
    assert_eq!(cache.loads(), 2);
    // Staleness moves with the clock, not with the cache.
    let later = now + 3 * 3_600_000;
    let p = posture::judge(&f, later, &policy, &roles, None).posture();
    assert_eq!(p.controls[0].counts.get("unknown"), Some(&2));
}

/// The host list's SQL (filters, worst-first order, pagination at the
/// edges, staleness) gives what filtering every host in memory gives.
#[tokio::test]
async fn the_host_list_in_sql_matches_every_host_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let store = temp_store(dir.path()).await;
    let audit = crate::audit::AuditLog::load_or_create(&dir.path().join("audit.key"), "t").unwrap();
    let now = crate::store::now_ms();
    let roles: [&[&str]; 4] = [&["app"], &["db"], &["app", "backup"], &[]];
    let statuses = ["pass", "fail", "error", "attested", "waived"];
    let mut reports = Vec::new();
    for i in 0..37 {
        let host = format!("Host-{i:02}");
        if i % 9 != 8 {
            add_agent(
                &store,
                &host,
                roles[i % 4],
                if i % 5 == 0 { 60 } else { 3600 },
                10,
            )
            .await;
        }
        if i % 11 == 3 {
            // A re-enrolled host: the newest agent counts.
            sqlx::query("UPDATE agents SET revoked_at = 1 WHERE host = $1")
                .bind(&host)
                .execute(&store.pool)
                .await
                .unwrap();
            add_agent(&store, &host, &["db"], 3600, 20).await;
        }
        if i % 7 == 6 {
            continue; // never reported
        }
        // Every fifth host reported 10 minutes ago with a 60 s interval: stale.
        reports.push(new_report(
            &host,
            &format!("r{i}"),
            now - 600_000,
            &[("SP-1", statuses[i % 5]), ("SP-2", statuses[(i / 2) % 5])],
        ));
    }
    ingest(&store, &audit, &reports).await;
    sqlx::query("UPDATE agents SET revoked_at = 5 WHERE host = 'Host-04'")
        .execute(&store.pool)
        .await
        .unwrap();
    let cache = Cache::default();
    let all = fleet_hosts(&view(&store, &cache).await.unwrap(), now);
    assert!(all.iter().any(|h| h.stale && h.last_report_ms.is_some()));
    assert!(all.iter().any(|h| h.status == "fail"));
    let rank = |s: &str| WORST_FIRST.iter().position(|w| *w == s).unwrap_or(9);
    let filters = [
        HostFilter::default(),
        HostFilter {
            status: Some("fail".into()),
            ..Default::default()
        },
        HostFilter {
            status: Some("unknown".into()),
            ..Default::default()
        },
        HostFilter {
            role: Some("app".into()),
            ..Default::default()
        },
        HostFilter {
            role: Some("backup".into()),
            stale: Some(false),
            ..Default::default()
        },
        HostFilter {
            name: Some("host-1".into()),
            ..Default::default()
        },
        HostFilter {
            name: Some("nothing".into()),
            ..Default::default()
        },
        HostFilter {
            stale: Some(true),
            ..Default::default()
        },
        HostFilter {
            stale: Some(false),
            status: Some("pass".into()),
            ..Default::default()
        },
    ];
    for f in &filters {
        let mut want: Vec<&FleetHost> = all
            .iter()
            .filter(|h| f.status.as_ref().is_none_or(|s| *s == h.status))
            .filter(|h| f.role.as_ref().is_none_or(|r| h.roles.contains(r)))
            .filter(|h| f.stale.is_none_or(|s| s == h.stale))
            .filter(|h| {
                f.name
                    .as_ref()
                    .is_none_or(|n| h.host.to_lowercase().contains(n.as_str()))
            })
            .collect();
        want.sort_by(|a, b| {
            rank(&a.status)
                .cmp(&rank(&b.status))
                .then(a.host.cmp(&b.host))
        });
        for per in [1u32, 5, 50] {
            let pages = u32::try_from(want.len().div_ceil(per as usize))
                .unwrap()
                .max(1);
            for page in [1, 2, pages, pages + 3] {
                let (items, total, given) = hosts_page(&store, now, f, page, per).await.unwrap();
                assert_eq!(total, want.len() as u64, "{f:?}");
                assert_eq!(given, page.min(pages), "{f:?} page {page}");
                let from = (given as usize - 1) * per as usize;
                let expect: Vec<FleetHost> = want
                    .iter()
                    .skip(from)
                    .take(per as usize)
                    .map(|h| (*h).clone())
                    .collect();
                assert_eq!(items, expect, "{f:?} page {page} per {per}");
            }
        }
    }
    // One host by key is the same host as in the list.
    for h in &all {
        assert_eq!(
            one_host(&store, &h.host, now).await.unwrap().as_ref(),
            Some(h)
        );
    }
    assert_eq!(one_host(&store, "nobody", now).await.unwrap(), None);
    // Metrics' fresh hosts are the list's fresh, unrevoked hosts.
    let (active, fresh) = staleness_counts(&store, now).await.unwrap();
    assert_eq!(
        active as usize,
        all.iter()
            .filter(|h| h.agent_id.is_some() && !h.revoked)
            .count()
    );
    assert_eq!(
        fresh as usize,
        all.iter()
            .filter(|h| h.agent_id.is_some() && !h.revoked && !h.stale)
            .count()
    );
}
