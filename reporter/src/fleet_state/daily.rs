//! Daily roll-ups per control (`control_daily`): the score, its trend and
//! posture on a past day.

use std::collections::{BTreeMap, HashMap};

use sqlx::Row;

use super::*;
use crate::posture::{self, rfc3339};
use crate::store::Store;

/// The live fleet compliance score of a posture: the share of applicable
/// host × control results that are pass or attested ([`COMPLIANT`]; stale and
/// never-reported results count as `unknown`, not compliant). None when
/// there is no result at all.
pub fn score_of(p: &posture::Posture) -> Option<f64> {
    let (mut ok, mut all) = (0u64, 0u64);
    for c in &p.controls {
        for (s, n) in &c.counts {
            all += u64::from(*n);
            if COMPLIANT.contains(&s.as_str()) {
                ok += u64::from(*n);
            }
        }
    }
    (all > 0).then(|| ok as f64 / all as f64)
}

/// One roll-up row.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyRow {
    pub control_id: String,
    pub day: i64,
    pub status: String,
    pub hosts: i64,
    pub fresh: i64,
}

/// The roll-up rows that describe days `from..=to` (epoch ms days): every
/// row in range and, per control, the last row before `from`.
pub(super) async fn daily_rows(store: &Store, from: i64, to: i64) -> Result<Vec<DailyRow>> {
    let rows = sqlx::query(
        "SELECT d.control_id, d.day, d.status, d.hosts, d.fresh FROM control_daily d \
         WHERE d.day <= $1 AND d.day >= COALESCE((SELECT MAX(p.day) FROM control_daily p WHERE p.control_id = d.control_id AND p.day <= $2), $2) \
         ORDER BY d.day",
    )
    .bind(to)
    .bind(from)
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(daily_row).collect()
}

fn daily_row(r: &sqlx::any::AnyRow) -> Result<DailyRow> {
    Ok(DailyRow {
        control_id: r.try_get("control_id")?,
        day: r.try_get("day")?,
        status: r.try_get("status")?,
        hosts: r.try_get("hosts")?,
        fresh: r.try_get("fresh")?,
    })
}

/// The roll-up rows of one control that describe days `from..=to`: its
/// rows in range and its last row before `from` (one range read of the
/// primary key).
pub async fn control_daily_rows(
    store: &Store,
    control: &str,
    from: i64,
    to: i64,
) -> Result<Vec<DailyRow>> {
    let rows = sqlx::query(
        "SELECT control_id, day, status, hosts, fresh FROM control_daily \
         WHERE control_id = $1 AND day <= $2 \
         AND day >= COALESCE((SELECT MAX(p.day) FROM control_daily p WHERE p.control_id = $1 AND p.day <= $3), $3) \
         ORDER BY day",
    )
    .bind(control)
    .bind(to)
    .bind(from)
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(daily_row).collect()
}

/// One control's hosts per status at the end of each of the `days` UTC days
/// up to the one holding `now`, oldest first: (day's midnight, counts), as
/// [`posture_on_day`] counts them, from one read.
pub async fn control_days(
    store: &Store,
    control: &str,
    now: i64,
    days: u32,
) -> Result<Vec<(i64, BTreeMap<String, u32>)>> {
    let to = day_of(now);
    let from = to - i64::from(days.max(1) - 1) * DAY_MS;
    let rows = control_daily_rows(store, control, from, to).await?;
    let mut out = Vec::with_capacity(days as usize);
    let mut d = from;
    while d <= to {
        let counts = day_counts(&rows, d).remove(control).unwrap_or_default();
        out.push((d, counts));
        d += DAY_MS;
    }
    Ok(out)
}

/// Per control, hosts per status at the end of `day`, with hosts whose
/// result was not received that day counted as `unknown`. Pure over rows
/// sorted by day.
pub fn day_counts(rows: &[DailyRow], day: i64) -> BTreeMap<String, BTreeMap<String, u32>> {
    // Each control's newest day <= `day`.
    let mut newest: HashMap<&str, i64> = HashMap::new();
    for r in rows.iter().filter(|r| r.day <= day) {
        let e = newest.entry(r.control_id.as_str()).or_insert(r.day);
        *e = (*e).max(r.day);
    }
    let mut out: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for r in rows {
        if newest.get(r.control_id.as_str()) != Some(&r.day) || r.hosts <= 0 {
            continue;
        }
        let fresh = if r.day == day {
            r.fresh.clamp(0, r.hosts)
        } else {
            0
        };
        let counts = out.entry(r.control_id.clone()).or_default();
        if fresh > 0 {
            *counts.entry(r.status.clone()).or_default() +=
                u32::try_from(fresh).unwrap_or(u32::MAX);
        }
        if r.hosts > fresh {
            *counts.entry("unknown".into()).or_default() +=
                u32::try_from(r.hosts - fresh).unwrap_or(u32::MAX);
        }
    }
    out
}

/// The score of one day's [`day_counts`].
pub fn day_score(counts: &BTreeMap<String, BTreeMap<String, u32>>) -> (Option<f64>, u64) {
    let (mut ok, mut all) = (0u64, 0u64);
    for c in counts.values() {
        for (s, n) in c {
            all += u64::from(*n);
            if COMPLIANT.contains(&s.as_str()) {
                ok += u64::from(*n);
            }
        }
    }
    ((all > 0).then(|| ok as f64 / all as f64), all)
}

fn day_name(day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The score of each of the last `days` UTC days up to the one holding
/// `now`, oldest first (from the roll-ups; see the module doc).
pub async fn score_trend(store: &Store, now: i64, days: u32) -> Result<Vec<TrendPoint>> {
    let to = day_of(now);
    let from = to - i64::from(days.max(1) - 1) * DAY_MS;
    let rows = daily_rows(store, from, to).await?;
    let mut out = Vec::with_capacity(days as usize);
    let mut d = from;
    while d <= to {
        let (score, results) = day_score(&day_counts(&rows, d));
        out.push(TrendPoint {
            day: day_name(d),
            score,
            results,
        });
        d += DAY_MS;
    }
    Ok(out)
}

/// The posture at the end of the UTC day holding `at`, from the roll-ups
/// (day resolution): per control its counts and status; host lists, hosts
/// and `last_verified` are empty (not kept per day). Controls in policy
/// order, then others by id.
pub async fn posture_on_day(
    store: &Store,
    at: i64,
    policy: &[(String, String)],
    control_roles: &BTreeMap<String, Vec<String>>,
) -> Result<posture::Posture> {
    let day = day_of(at);
    let rows = daily_rows(store, day, day).await?;
    Ok(posture_from_day_counts(
        at,
        day_counts(&rows, day),
        policy,
        control_roles,
    ))
}

/// Pure part of [`posture_on_day`].
pub fn posture_from_day_counts(
    at: i64,
    mut counts: BTreeMap<String, BTreeMap<String, u32>>,
    policy: &[(String, String)],
    control_roles: &BTreeMap<String, Vec<String>>,
) -> posture::Posture {
    let mut ids: Vec<(String, String)> = policy.to_vec();
    let mut extra: Vec<&String> = counts
        .keys()
        .filter(|k| !policy.iter().any(|p| &p.0 == *k))
        .collect();
    let order = HashMap::new();
    extra.sort_by(|a, b| order_key(&order, a).cmp(&order_key(&order, b)));
    ids.extend(extra.into_iter().map(|k| (k.clone(), k.clone())));
    let controls = ids
        .into_iter()
        .map(|(id, title)| {
            let c = counts.remove(&id).unwrap_or_default();
            let status = worst(c.keys().map(String::as_str)).to_owned();
            posture::ControlPosture {
                applicable_hosts: c.values().sum(),
                roles: control_roles.get(&id).cloned().unwrap_or_default(),
                id,
                title,
                status,
                counts: c,
                hosts_failing: vec![],
                hosts_error: vec![],
                hosts_unknown: vec![],
                last_verified: None,
                hosts_not_applicable: vec![],
            }
        })
        .collect();
    posture::Posture {
        at: rfc3339(at),
        controls,
        hosts: vec![],
        waivers: vec![],
        score: None,
        trend: vec![],
        resolution: "day".into(),
    }
}
