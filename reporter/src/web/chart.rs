//! A small stacked-bar SVG chart of one control over time: per day, how many
//! hosts were in each status at the end of that day. Pure: rows in, markup out.
//! The markup holds only numbers, dates and fixed words, so it is safe to
//! embed unescaped; a table beside it carries the same figures as text.

use std::collections::BTreeMap;

use serde::Serialize;

/// Statuses in stacking order (worst on top), with fill colours.
pub const STATUSES: &[(&str, &str)] = &[
    ("pass", "#2e7d32"),
    ("attested", "#1565c0"),
    ("waived", "#6a1b9a"),
    ("unknown", "#9e9e9e"),
    ("error", "#ef6c00"),
    ("fail", "#c62828"),
];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Day {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Hosts per status.
    pub counts: BTreeMap<String, u32>,
}

/// Buckets (host, status, finished_at ms) rows into days from `from_ms` to
/// `to_ms`: each host counts once per day, with its last status of that day;
/// a day without a report carries each host's previous status forward.
pub fn days(rows: &[(String, String, i64)], from_ms: i64, to_ms: i64) -> Vec<Day> {
    const DAY: i64 = 86_400_000;
    let first = from_ms.div_euclid(DAY);
    let last = to_ms.div_euclid(DAY);
    let mut sorted: Vec<&(String, String, i64)> = rows.iter().collect();
    sorted.sort_by_key(|r| r.2);
    let mut current: BTreeMap<&str, &str> = BTreeMap::new();
    let mut i = 0usize;
    let mut out = Vec::new();
    let mut day = first;
    while day <= last {
        let end = (day + 1) * DAY;
        while let Some(r) = sorted.get(i) {
            if r.2 >= end {
                break;
            }
            current.insert(r.0.as_str(), r.1.as_str());
            i += 1;
        }
        let mut counts = BTreeMap::new();
        for s in current.values() {
            *counts.entry((*s).to_owned()).or_insert(0u32) += 1;
        }
        let date = chrono::DateTime::from_timestamp_millis(day * DAY)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        out.push(Day { date, counts });
        day += 1;
    }
    out
}

/// The SVG of `days`, `width` × `height` pixels.
pub fn svg(days: &[Day], title: &str) -> String {
    let (w, h, left, bottom, top) = (640.0_f64, 200.0_f64, 36.0_f64, 28.0_f64, 10.0_f64);
    let max = days
        .iter()
        .map(|d| d.counts.values().sum::<u32>())
        .max()
        .unwrap_or(0)
        .max(1);
    let n = days.len().max(1) as f64;
    let slot = (w - left - 8.0) / n;
    let bar = (slot * 0.8).max(1.0);
    let plot_h = h - bottom - top;
    let mut s = String::new();
    s.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-labelledby=\"chart-title\" class=\"chart\">"
    ));
    s.push_str(&format!(
        "<title id=\"chart-title\">{}</title>",
        escape(title)
    ));
    // Axis and grid at 0, max/2, max.
    for frac in [0.0, 0.5, 1.0] {
        let y = top + plot_h * (1.0 - frac);
        let v = (f64::from(max) * frac).round();
        s.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{v}</text>",
            w - 4.0,
            left - 4.0,
            y + 3.0
        ));
    }
    for (i, d) in days.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        for (status, colour) in STATUSES {
            let c = d.counts.get(*status).copied().unwrap_or(0);
            if c == 0 {
                continue;
            }
            let bh = plot_h * f64::from(c) / f64::from(max);
            y -= bh;
            s.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"{colour}\"><title>{} {status}: {c}</title></rect>",
                escape(&d.date)
            ));
        }
    }
    // First and last date under the axis.
    if let (Some(f), Some(l)) = (days.first(), days.last()) {
        s.push_str(&format!(
            "<text x=\"{left}\" y=\"{:.1}\" font-size=\"10\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            h - 10.0,
            escape(&f.date),
            w - 4.0,
            h - 10.0,
            escape(&l.date)
        ));
    }
    s.push_str("</svg>");
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_carry_status_forward_and_count_hosts_once() {
        let d = 86_400_000;
        let rows = vec![
            ("a".to_string(), "fail".to_string(), 10),
            ("a".to_string(), "pass".to_string(), 20),
            ("b".to_string(), "fail".to_string(), d + 5),
        ];
        let days = days(&rows, 0, 2 * d);
        assert_eq!(days.len(), 3);
        assert_eq!(days[0].counts.get("pass"), Some(&1));
        assert_eq!(days[0].counts.get("fail"), None);
        assert_eq!(days[1].counts.get("fail"), Some(&1));
        assert_eq!(days[2].counts.values().sum::<u32>(), 2);
        let svg = svg(&days, "SP-1 <x>");
        assert!(svg.starts_with("<svg") && svg.contains("SP-1 &lt;x&gt;"));
        assert_eq!(svg.matches("<rect").count(), 5);
    }
}
