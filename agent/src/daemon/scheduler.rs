//! When each control runs.
//!
//! The unit of scheduling is the control: its period is the smallest `every`
//! of its checks, else the config's `interval`. Controls sharing a period form
//! a group that fires together, at its nominal time plus a random jitter of up
//! to 10% of the period (drawn afresh each cycle), so a fleet started at the
//! same moment spreads out instead of hitting the reporter at the top of the
//! hour. The first run after start waits a jitter of at most 10% of the period
//! and never more than [`FIRST_RUN_MAX_DELAY`]. All controls due at one tick
//! go into one report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vigil_rules::policy::Policy;

/// The first run after start comes at most this late.
pub const FIRST_RUN_MAX_DELAY: Duration = Duration::from_secs(60);

/// The share of a period its jitter may reach: one tenth.
pub const JITTER_DIVISOR: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    period: Duration,
    /// Control ids in policy order.
    controls: Vec<String>,
    /// The schedule without jitter.
    nominal: Instant,
    /// When the group fires: `nominal` plus this cycle's jitter.
    fire_at: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduler {
    groups: Vec<Group>,
}

/// A control's period: the smallest `every` of its checks, else `interval`.
pub fn period_of(control: &vigil_rules::policy::Control, interval: Duration) -> Duration {
    control
        .checks
        .iter()
        .filter_map(|c| c.every.map(|e| e.as_std()))
        .min()
        .unwrap_or(interval)
}

/// The largest jitter of a period.
pub fn max_jitter(period: Duration) -> Duration {
    period / JITTER_DIVISOR
}

fn jitter(rng: &mut fastrand::Rng, max: Duration) -> Duration {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.u64(0..=max_ms))
}

impl Scheduler {
    /// Schedules every control of `policy`, the first runs from `now`.
    pub fn new(policy: &Policy, interval: Duration, now: Instant, rng: &mut fastrand::Rng) -> Self {
        let mut by_period: BTreeMap<Duration, Vec<String>> = BTreeMap::new();
        for c in &policy.controls {
            by_period
                .entry(period_of(c, interval))
                .or_default()
                .push(c.id.clone());
        }
        let groups = by_period
            .into_iter()
            .map(|(period, controls)| {
                let first = max_jitter(period).min(FIRST_RUN_MAX_DELAY);
                Group {
                    period,
                    controls,
                    nominal: now,
                    fire_at: now + jitter(rng, first),
                }
            })
            .collect();
        Scheduler { groups }
    }

    /// When the next group fires (`None` for an empty policy).
    pub fn next_wake(&self) -> Option<Instant> {
        self.groups.iter().map(|g| g.fire_at).min()
    }

    /// Control ids due at `now` (policy order within a group, shorter periods
    /// first), and reschedules their groups.
    pub fn take_due(&mut self, now: Instant, rng: &mut fastrand::Rng) -> Vec<String> {
        let mut due = Vec::new();
        for g in &mut self.groups {
            if g.fire_at > now {
                continue;
            }
            due.extend(g.controls.iter().cloned());
            let mut next = g.nominal + g.period;
            if next <= now {
                // a period or more behind (suspend, a long run): no catch-up
                // runs, the next one is a period from now
                next = now + g.period;
            }
            g.nominal = next;
            g.fire_at = (next + jitter(rng, max_jitter(g.period))).max(now);
        }
        due
    }

    /// The periods and their controls, for the log.
    pub fn describe(&self) -> Vec<(Duration, usize)> {
        self.groups
            .iter()
            .map(|g| (g.period, g.controls.len()))
            .collect()
    }

    /// The shortest period (how often reports are expected).
    pub fn shortest_period(&self) -> Option<Duration> {
        self.groups.iter().map(|g| g.period).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        vigil_rules::policy::parse(text.as_bytes(), "p.yaml").unwrap()
    }

    const P: &str = r#"
policy: {id: p, version: "1", title: P}
controls:
  - id: A
    title: a
    checks:
      - {id: a1, type: attestation, every: 1h, with: {by: x, on: 2026-01-01, valid_for: 3650d, evidence: e}}
      - {id: a2, type: attestation, every: 10m, with: {by: x, on: 2026-01-01, valid_for: 3650d, evidence: e}}
  - id: B
    title: b
    checks:
      - {id: b1, type: attestation, with: {by: x, on: 2026-01-01, valid_for: 3650d, evidence: e}}
  - id: C
    title: c
    checks:
      - {id: c1, type: attestation, every: 10m, with: {by: x, on: 2026-01-01, valid_for: 3650d, evidence: e}}
"#;

    #[test]
    fn periods_come_from_the_smallest_every_else_the_interval() {
        let p = policy(P);
        let iv = Duration::from_secs(900);
        let periods: Vec<u64> = p
            .controls
            .iter()
            .map(|c| period_of(c, iv).as_secs())
            .collect();
        assert_eq!(periods, vec![600, 900, 600]);
        let s = Scheduler::new(&p, iv, Instant::now(), &mut fastrand::Rng::with_seed(1));
        assert_eq!(
            s.describe(),
            vec![(Duration::from_secs(600), 2), (Duration::from_secs(900), 1)]
        );
        assert_eq!(s.shortest_period(), Some(Duration::from_secs(600)));
    }

    #[test]
    fn due_controls_run_together_and_jitter_stays_within_a_tenth() {
        let p = policy(P);
        let iv = Duration::from_secs(900);
        let t0 = Instant::now();
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut s = Scheduler::new(&p, iv, t0, &mut rng);
            let first = s.next_wake().unwrap();
            // first run: at most 10% of the period and at most a minute
            assert!(first >= t0 && first <= t0 + Duration::from_secs(60));
            // nothing due before its time
            assert!(s.take_due(t0, &mut rng).is_empty() || first == t0);
            // everything is due after the first-run window
            let mut s = Scheduler::new(&p, iv, t0, &mut rng);
            let t1 = t0 + Duration::from_secs(90);
            assert_eq!(s.take_due(t1, &mut rng), vec!["A", "C", "B"]);
            // next cycles: nominal + period + jitter in [0, period/10]
            let g = &s.groups;
            assert!(g[0].fire_at >= t0 + Duration::from_secs(600));
            assert!(g[0].fire_at <= t0 + Duration::from_secs(660));
            assert!(g[1].fire_at >= t0 + Duration::from_secs(900));
            assert!(g[1].fire_at <= t0 + Duration::from_secs(990));
            // a tick between the two runs only the 10-minute group
            let t2 = t0 + Duration::from_secs(661);
            assert_eq!(s.take_due(t2, &mut rng), vec!["A", "C"]);
            assert!(s.groups[0].fire_at >= t0 + Duration::from_secs(1200));
        }
    }

    #[test]
    fn jitter_spreads_a_fleet() {
        let p = policy(P);
        let iv = Duration::from_secs(900);
        let t0 = Instant::now();
        let mut wakes: Vec<Instant> = (0..100)
            .map(|seed| {
                Scheduler::new(&p, iv, t0, &mut fastrand::Rng::with_seed(seed))
                    .next_wake()
                    .unwrap()
            })
            .collect();
        wakes.sort();
        wakes.dedup();
        assert!(wakes.len() > 90, "{} distinct start times", wakes.len());
    }

    #[test]
    fn a_scheduler_far_behind_restarts_from_now() {
        let p = policy(P);
        let t0 = Instant::now();
        let mut rng = fastrand::Rng::with_seed(7);
        let mut s = Scheduler::new(&p, Duration::from_secs(900), t0, &mut rng);
        let late = t0 + Duration::from_secs(5 * 3600);
        assert_eq!(s.take_due(late, &mut rng).len(), 3);
        // not 30 catch-up runs: the next is one period after now
        assert!(s.next_wake().unwrap() >= late + Duration::from_secs(600));
        assert!(s
            .take_due(late + Duration::from_secs(1), &mut rng)
            .is_empty());
    }
}
