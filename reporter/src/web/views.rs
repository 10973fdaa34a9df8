//! Pure view models of the fleet pages: relative times, the policy's order of
//! controls, pagination, the compliance score, the worst status of a host and
//! the host list's filters. No IO and no clock but the `now` passed in, so
//! every rule of how the pages read is tested here without a reporter.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Control statuses from worst to best: a host's status on the host list is
/// the first of these any of its controls has (the order `fleet_state` and
/// the posture judge in).
pub const WORST_FIRST: &[&str] = &["fail", "error", "unknown", "attested", "waived", "pass"];

/// The statuses a host or a control's hosts can be filtered by.
pub const STATUS_FILTERS: &[&str] = WORST_FIRST;

/// Page sizes the lists accept (the first is the default).
pub const PAGE_SIZES: &[u32] = &[50, 100, 200, 20];

/// A point in time as the pages show it: relative to the reporter's clock,
/// with the exact RFC 3339 time for `<time datetime title>`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct When {
    pub exact: String,
    pub ago: String,
}

impl When {
    pub fn at(ms: i64, now_ms: i64) -> Self {
        When {
            exact: crate::posture::rfc3339(ms),
            ago: relative(ms, now_ms),
        }
    }

    pub fn maybe(ms: Option<i64>, now_ms: i64) -> Option<Self> {
        ms.filter(|t| *t > 0).map(|t| When::at(t, now_ms))
    }
}

/// "just now", "12 min ago", "3 h ago", "2 d ago", "5 mo ago", "2 y ago";
/// a time ahead of the clock reads "in 3 h".
pub fn relative(then_ms: i64, now_ms: i64) -> String {
    let delta = now_ms.saturating_sub(then_ms);
    let secs = delta.unsigned_abs() / 1000;
    let amount = if secs < 60 {
        return if delta >= 0 {
            "just now".into()
        } else {
            "in under a minute".into()
        };
    } else if secs < 3600 {
        format!("{} min", secs / 60)
    } else if secs < 86_400 {
        format!("{} h", secs / 3600)
    } else if secs < 60 * 86_400 {
        format!("{} d", secs / 86_400)
    } else if secs < 365 * 86_400 {
        format!("{} mo", secs / (30 * 86_400))
    } else {
        format!("{} y", secs / (365 * 86_400))
    };
    if delta >= 0 {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

/// Compares two control ids as people number them: `SP-2` before `SP-10`,
/// runs of digits by value, the rest by text.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.len() - a.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let db = b.len() - b.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let (na, ra) = a.split_at(da);
                let (nb, rb) = b.split_at(db);
                let (ta, tb) = (na.trim_start_matches('0'), nb.trim_start_matches('0'));
                let o = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                if o != Ordering::Equal {
                    return o;
                }
                (a, b) = (ra, rb);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]);
            }
        }
    }
}

/// Sorts items by their control id in the published policy's order; ids the
/// policy does not list (older policies' controls) follow, in natural order.
pub fn policy_order<T>(items: &mut [T], policy: &[String], id: impl Fn(&T) -> &str) {
    let rank = |x: &str| policy.iter().position(|p| p == x).unwrap_or(usize::MAX);
    items.sort_by(|a, b| {
        let (a, b) = (id(a), id(b));
        rank(a).cmp(&rank(b)).then_with(|| natural_cmp(a, b))
    });
}

/// The worst status among `statuses` ([`WORST_FIRST`]); none: `unknown`.
pub fn worst<'a>(statuses: impl IntoIterator<Item = &'a str>) -> &'static str {
    let mut best = WORST_FIRST.len();
    let mut seen = false;
    for s in statuses {
        seen = true;
        let i = WORST_FIRST
            .iter()
            .position(|w| *w == s)
            .unwrap_or(WORST_FIRST.len());
        best = best.min(i);
    }
    if !seen {
        return "unknown";
    }
    WORST_FIRST.get(best).copied().unwrap_or("unknown")
}

/// A control's fleet status from its hosts per status, as the posture
/// judges it: fail if any host fails; else error; else unknown; else
/// attested; else waived; else pass (no host at all: unknown).
pub fn control_status(counts: &BTreeMap<String, u64>) -> &'static str {
    let has = |s: &str| counts.get(s).is_some_and(|n| *n > 0);
    if counts.values().sum::<u64>() == 0 {
        return "unknown";
    }
    ["fail", "error", "unknown", "attested", "waived"]
        .into_iter()
        .find(|s| has(s))
        .unwrap_or("pass")
}

/// The fleet compliance score: the share of (host, control) results that
/// are met (pass or attested) among every counted one (waived, unknown,
/// error and fail are not met). None when nothing is counted.
pub fn score(counts: &BTreeMap<String, u64>) -> Option<f64> {
    let total: u64 = counts.values().sum();
    if total == 0 {
        return None;
    }
    let met =
        counts.get("pass").copied().unwrap_or(0) + counts.get("attested").copied().unwrap_or(0);
    Some(met as f64 * 100.0 / total as f64)
}

/// "87.5 %", or "–" without a score; never rounds a partial fleet up to 100.
pub fn score_text(score: Option<f64>) -> String {
    match score {
        None => "–".into(),
        Some(s) if s < 100.0 && s > 99.95 => "99.9 %".into(),
        Some(s) if s > 0.0 && s < 0.05 => "0.1 %".into(),
        Some(s) => format!("{s:.1} %"),
    }
}

/// One page of a list: which rows, and the links around it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Page {
    /// 1-based.
    pub page: u32,
    pub per: u32,
    pub total: u64,
    pub pages: u32,
    /// 1-based index of the first row shown (0 when none).
    pub first: u64,
    pub last: u64,
    pub prev: Option<u32>,
    pub next: Option<u32>,
}

impl Page {
    /// Page `page` (clamped to the last page) of `total` rows, `per` a page.
    pub fn new(page: u32, per: u32, total: u64) -> Self {
        let per = per.max(1);
        let pages = u32::try_from(total.div_ceil(u64::from(per)))
            .unwrap_or(u32::MAX)
            .max(1);
        let page = page.clamp(1, pages);
        let offset = u64::from(page - 1) * u64::from(per);
        Page {
            page,
            per,
            total,
            pages,
            first: if total == 0 { 0 } else { offset + 1 },
            last: (offset + u64::from(per)).min(total),
            prev: (page > 1).then(|| page - 1),
            next: (page < pages).then(|| page + 1),
        }
    }

    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.per)
    }
}

/// The host list's query string as it arrives.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostQuery {
    pub status: Option<String>,
    pub role: Option<String>,
    pub q: Option<String>,
    pub stale: Option<String>,
    pub page: Option<u32>,
    pub per: Option<u32>,
}

/// What `stale=` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Staleness {
    Stale,
    Fresh,
}

/// The host list's filters, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFilter {
    /// A host's worst control status.
    pub status: Option<String>,
    pub role: Option<String>,
    /// Part of the host name, case-insensitive.
    pub q: Option<String>,
    pub stale: Option<Staleness>,
    pub page: u32,
    pub per: u32,
}

impl Default for HostFilter {
    fn default() -> Self {
        HostFilter {
            status: None,
            role: None,
            q: None,
            stale: None,
            page: 1,
            per: PAGE_SIZES.first().copied().unwrap_or(50),
        }
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Validates a status filter against [`STATUS_FILTERS`].
pub fn status_filter(s: Option<String>) -> Result<Option<String>, String> {
    match non_empty(s) {
        None => Ok(None),
        Some(s) if STATUS_FILTERS.contains(&s.as_str()) => Ok(Some(s)),
        Some(s) => Err(format!(
            "`status` `{s}` is not one of {}",
            STATUS_FILTERS.join(", ")
        )),
    }
}

/// Validates a page size against [`PAGE_SIZES`].
pub fn page_size(per: Option<u32>) -> Result<u32, String> {
    match per {
        None => Ok(PAGE_SIZES.first().copied().unwrap_or(50)),
        Some(p) if PAGE_SIZES.contains(&p) => Ok(p),
        Some(p) => Err(format!(
            "`per` `{p}` is not one of {}",
            PAGE_SIZES
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

impl HostFilter {
    pub fn parse(q: HostQuery) -> Result<Self, String> {
        let stale = match non_empty(q.stale).as_deref() {
            None => None,
            Some("yes" | "true" | "1" | "stale") => Some(Staleness::Stale),
            Some("no" | "false" | "0" | "fresh") => Some(Staleness::Fresh),
            Some(s) => return Err(format!("`stale` `{s}` is not one of yes, no")),
        };
        let role = non_empty(q.role);
        if let Some(r) = &role {
            if r.len() > 64 {
                return Err("`role` is longer than 64 characters".into());
            }
        }
        let name = non_empty(q.q);
        if let Some(n) = &name {
            if n.len() > 253 {
                return Err("`q` is longer than 253 characters (a host name)".into());
            }
        }
        Ok(HostFilter {
            status: status_filter(q.status)?,
            role,
            q: name,
            stale,
            page: q.page.unwrap_or(1).max(1),
            per: page_size(q.per)?,
        })
    }

    /// The query string of these filters at `page` (`?` included; page 1
    /// and the default size left out), so a link can be shared.
    pub fn query(&self, page: u32) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(s) = &self.status {
            pairs.push(("status", s.clone()));
        }
        if let Some(r) = &self.role {
            pairs.push(("role", r.clone()));
        }
        if let Some(q) = &self.q {
            pairs.push(("q", q.clone()));
        }
        match self.stale {
            Some(Staleness::Stale) => pairs.push(("stale", "yes".into())),
            Some(Staleness::Fresh) => pairs.push(("stale", "no".into())),
            None => {}
        }
        if Some(&self.per) != PAGE_SIZES.first() {
            pairs.push(("per", self.per.to_string()));
        }
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        query_string(&pairs)
    }
}

/// `?a=1&b=x%20y`, or "" when there is nothing to say.
pub fn query_string(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let encoded = serde_urlencoded::to_string(pairs).unwrap_or_default();
    format!("?{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn relative_times_read_as_people_say_them() {
        let now = 1_800_000_000_000;
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(now - 59_000, now), "just now");
        assert_eq!(relative(now - 60_000, now), "1 min ago");
        assert_eq!(relative(now - 59 * 60_000, now), "59 min ago");
        assert_eq!(relative(now - 3 * H, now), "3 h ago");
        assert_eq!(relative(now - 47 * H, now), "1 d ago");
        assert_eq!(relative(now - 48 * H, now), "2 d ago");
        assert_eq!(relative(now - 90 * 24 * H, now), "3 mo ago");
        assert_eq!(relative(now - 800 * 24 * H, now), "2 y ago");
        assert_eq!(relative(now + 3 * H, now), "in 3 h");
        let w = When::at(now - 3 * H, now);
        assert_eq!(w.exact, crate::posture::rfc3339(now - 3 * H));
        assert!(w.exact.ends_with('Z'), "{}", w.exact);
        assert_eq!(When::maybe(Some(0), now), None);
    }

    #[test]
    fn controls_follow_the_policy_then_natural_order() {
        assert_eq!(natural_cmp("SP-2", "SP-10"), Ordering::Less);
        assert_eq!(natural_cmp("SP-10", "SP-9"), Ordering::Greater);
        assert_eq!(natural_cmp("SP-02", "SP-2"), Ordering::Equal);
        assert_eq!(natural_cmp("BK-1", "SP-1"), Ordering::Less);
        let policy: Vec<String> = ["SP-1", "SP-2", "SP-10", "GDPR-1", "BK-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut ids = vec!["BK-1", "SP-10", "OLD-10", "SP-1", "OLD-9", "GDPR-1", "SP-2"];
        policy_order(&mut ids, &policy, |s| s);
        assert_eq!(
            ids,
            ["SP-1", "SP-2", "SP-10", "GDPR-1", "BK-1", "OLD-9", "OLD-10"]
        );
    }

    #[test]
    fn pages_clamp_and_link_around() {
        let p = Page::new(1, 50, 0);
        assert_eq!(
            (p.pages, p.first, p.last, p.prev, p.next),
            (1, 0, 0, None, None)
        );
        let p = Page::new(2, 50, 120);
        assert_eq!(
            (p.pages, p.first, p.last, p.prev, p.next),
            (3, 51, 100, Some(1), Some(3))
        );
        assert_eq!(p.offset(), 50);
        let p = Page::new(9, 50, 120);
        assert_eq!((p.page, p.first, p.last, p.next), (3, 101, 120, None));
        let p = Page::new(0, 50, 10);
        assert_eq!(p.page, 1);
    }

    #[test]
    fn worst_status_and_score() {
        assert_eq!(worst(["pass", "attested", "fail", "error"]), "fail");
        assert_eq!(worst(["pass", "waived"]), "waived");
        assert_eq!(worst(["waived", "attested"]), "attested");
        assert_eq!(worst(["pass", "unknown", "attested"]), "unknown");
        assert_eq!(worst([]), "unknown");
        let c: BTreeMap<String, u64> = [
            ("pass".to_owned(), 3),
            ("waived".to_owned(), 1),
            ("attested".to_owned(), 1),
        ]
        .into();
        assert_eq!(control_status(&c), "attested");
        assert_eq!(control_status(&BTreeMap::new()), "unknown");
        let c: BTreeMap<String, u64> = [("pass".to_owned(), 3), ("fail".to_owned(), 0)].into();
        assert_eq!(control_status(&c), "pass");
        let mut c = BTreeMap::new();
        assert_eq!(score(&c), None);
        assert_eq!(score_text(score(&c)), "–");
        c.insert("pass".to_owned(), 6u64);
        c.insert("attested".to_owned(), 1);
        c.insert("error".to_owned(), 1);
        assert_eq!(score_text(score(&c)), "87.5 %");
        c.insert("waived".to_owned(), 1);
        assert_eq!(score_text(score(&c)), "77.8 %", "waived is not met");
        let mut nearly = BTreeMap::new();
        nearly.insert("pass".to_owned(), 9999u64);
        nearly.insert("fail".to_owned(), 1);
        assert_eq!(score_text(score(&nearly)), "99.9 %");
    }

    #[test]
    fn host_filters_parse_and_round_trip_to_a_shareable_query() {
        let f = HostFilter::parse(HostQuery::default()).unwrap();
        assert_eq!(f, HostFilter::default());
        assert_eq!(f.query(1), "");
        let f = HostFilter::parse(HostQuery {
            status: Some("fail".into()),
            role: Some("app".into()),
            q: Some(" web & co ".into()),
            stale: Some("yes".into()),
            page: Some(3),
            per: Some(100),
        })
        .unwrap();
        assert_eq!(f.q.as_deref(), Some("web & co"));
        assert_eq!(f.stale, Some(Staleness::Stale));
        assert_eq!(
            f.query(4),
            "?status=fail&role=app&q=web+%26+co&stale=yes&per=100&page=4"
        );
        for bad in [
            HostQuery {
                status: Some("broken".into()),
                ..Default::default()
            },
            HostQuery {
                stale: Some("maybe".into()),
                ..Default::default()
            },
            HostQuery {
                per: Some(7),
                ..Default::default()
            },
            HostQuery {
                q: Some("x".repeat(300)),
                ..Default::default()
            },
        ] {
            assert!(HostFilter::parse(bad).is_err());
        }
        let e = HostFilter::parse(HostQuery {
            status: Some("<b>".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("`<b>`"), "{e}");
    }
}
