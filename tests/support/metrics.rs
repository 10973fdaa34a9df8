//! Scraping a `/metrics` endpoint and reading it back: promtool (Debian's
//! `prometheus` package) validates the exposition format; values are then
//! read by name and labels.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::machine::require_tool;

/// One scraped exposition, validated by `promtool check metrics`.
pub struct Exposition {
    pub text: String,
}

impl Exposition {
    /// Validates `text` with `promtool check metrics` (format and lint).
    pub fn checked(text: String) -> Exposition {
        let promtool = require_tool("promtool", "prometheus");
        let mut child = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run promtool: {e}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "promtool check metrics refused the exposition ({}):\n{}{}\n--- exposition ---\n{text}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        Exposition { text }
    }

    /// The value of the sample `name` with exactly `labels` (in any order);
    /// None when there is no such sample.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.sort();
        self.text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (n, mut got) = match series.split_once('{') {
                    Some((n, rest)) => (n, parse_labels(rest.strip_suffix('}')?)),
                    None => (series, vec![]),
                };
                got.sort();
                (n == name && got == want).then(|| value.parse().ok())?
            })
    }

    /// Like [`Exposition::get`], failing with the exposition when absent.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample `{name}` {labels:?} in\n{}", self.text))
    }
}

/// `a="x",b="y"` (values without escapes: the tests' label values have none).
fn parse_labels(s: &str) -> Vec<(String, String)> {
    s.split("\",")
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once("=\"")?;
            Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
        })
        .collect()
}

/// `GET url` with an optional bearer token: the status and the body.
pub fn scrape(url: &str, token: Option<&str>) -> (u16, String) {
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().unwrap_or_default())
}
