//! The fleet's state, maintained at ingest instead of scanned from stored
//! reports (issue 22, item 2): the latest result of every (host, control)
//! with its checks in compact form (`latest_results`), every host's newest
//! report and worst status (`latest_hosts`), and daily roll-ups per control
//! (`control_daily`). Migration 0021 makes the tables; this module owns
//! their SQL.
//!
//! Writing: [`apply`] runs inside the ingest transaction
//! (`ingest::insert_reports_locked`), in a few multi-row statements per
//! batch. A result replaces the stored one only when its `finished_at` is
//! newer (a late spool delivery never rolls a host back; on a tie the
//! smaller report id wins, as the scans did). Roll-ups move by deltas.
//!
//! Reading: narrow functions over `&Store`, for the API (`fleet`), the
//! pages (`web`), notifications and exports. Staleness is applied at read
//! time: a host whose newest report is older than twice its agent's interval
//! counts every control as `unknown` ([`crate::posture::is_stale`]).
//!
//! Roll-up semantics: the row (`control_id`, `day`, `status`) says how many
//! hosts' latest result of the control was `status` at the end of UTC day
//! `day` (by the reporter's receive time), and how many of them (`fresh`)
//! were received that very day. A control's rows are carried into a new day
//! on its first change that day; a day without rows repeats the previous one
//! with nothing fresh. The fleet **compliance score** of a day is the share
//! of host × control results that are `pass` or `attested` (see [`COMPLIANT`];
//! a waiver is not compliance) and fresh; a result not received that day counts as stale, i.e. `unknown`.
//! Today's live score ([`score_of`]) judges staleness exactly instead.
//!
//! INVARIANT: for every control, the newest `control_daily` day's `hosts`
//! per status equals the count of `latest_results` rows of that control per
//! status (both written in one transaction).

mod cache;
mod daily;
mod order;
mod read;
mod upkeep;

pub use crate::posture::TrendPoint;
pub use cache::*;
pub use daily::*;
pub use order::*;
pub use read::*;
pub use upkeep::*;

use crate::store::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

/// One UTC day in epoch milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Epoch ms of the UTC midnight that starts the day holding `ms`.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// Statuses that count as compliant in the score. Not `waived`: a waived
/// control failed and is accepted for a while, never counted as met (as the
/// overview and the brochure say).
pub const COMPLIANT: [&str; 2] = ["pass", "attested"];

/// Worst first: the order a host's or a control's overall status is taken in.
const WORST_FIRST: [&str; 6] = ["fail", "error", "unknown", "attested", "waived", "pass"];

/// The worst of `statuses` (`unknown` when there are none).
pub fn worst<'a>(statuses: impl IntoIterator<Item = &'a str>) -> &'static str {
    let mut best = WORST_FIRST.len();
    let mut any = false;
    for s in statuses {
        any = true;
        let i = WORST_FIRST.iter().position(|w| *w == s).unwrap_or(2);
        best = best.min(i);
    }
    if !any {
        return "unknown";
    }
    WORST_FIRST.get(best).copied().unwrap_or("unknown")
}

#[cfg(test)]
mod tests;
