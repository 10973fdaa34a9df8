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

/// A line of the fleet's compliance score (0 to 100 %) per day, `points`
/// being (date, score); a day without a score leaves a gap.
pub fn score_svg(points: &[(String, Option<f64>)], title: &str) -> String {
    let (w, h, left, bottom, top) = (640.0_f64, 160.0_f64, 40.0_f64, 28.0_f64, 10.0_f64);
    let plot_h = h - bottom - top;
    let n = points.len().max(2) as f64;
    let step = (w - left - 8.0) / (n - 1.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-labelledby=\"score-title\" class=\"chart\"><title id=\"score-title\">{}</title>",
        escape(title)
    );
    for pct in [0.0, 50.0, 100.0] {
        let y = top + plot_h * (1.0 - pct / 100.0);
        s.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{pct} %</text>",
            w - 4.0,
            left - 4.0,
            y + 3.0
        ));
    }
    let mut path = String::new();
    let mut pen_down = false;
    for (i, (date, score)) in points.iter().enumerate() {
        let x = left + step * i as f64;
        let Some(v) = score else {
            pen_down = false;
            continue;
        };
        let y = top + plot_h * (1.0 - v.clamp(0.0, 100.0) / 100.0);
        path.push_str(&format!(
            "{}{x:.1},{y:.1} ",
            if pen_down { "L" } else { "M" }
        ));
        pen_down = true;
        s.push_str(&format!(
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"#17324d\"><title>{}: {v:.1} %</title></circle>",
            escape(date)
        ));
    }
    if !path.is_empty() {
        s.push_str(&format!(
            "<path d=\"{}\" fill=\"none\" stroke=\"#17324d\" stroke-width=\"1.5\"/>",
            path.trim_end()
        ));
    }
    if let (Some(f), Some(l)) = (points.first(), points.last()) {
        s.push_str(&format!(
            "<text x=\"{left}\" y=\"{:.1}\" font-size=\"10\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            h - 10.0,
            escape(&f.0),
            w - 4.0,
            h - 10.0,
            escape(&l.0)
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

    #[test]
    fn score_line_leaves_gaps_and_escapes() {
        let pts = vec![
            ("d1".to_string(), Some(50.0)),
            ("d2".to_string(), None),
            ("d3".to_string(), Some(100.0)),
            ("<d4>".to_string(), Some(90.0)),
        ];
        let svg = score_svg(&pts, "score");
        assert_eq!(svg.matches("<circle").count(), 3);
        // one move for the first point, one after the gap
        assert_eq!(svg.matches(" d=\"M").count(), 1);
        assert!(svg.contains(" M"), "{svg}");
        assert!(svg.contains("&lt;d4&gt;") && !svg.contains("<d4>"));
    }
}
