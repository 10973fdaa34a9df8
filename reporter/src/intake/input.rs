//! What an incident submission is and how it is checked, apart from the
//! routes: no I/O, no state, so the fuzz crate (`fuzz/`) includes this file by
//! path and feeds it untrusted bodies. The routes in `intake.rs` use it.

use serde::Deserialize;
use utoipa::ToSchema;

/// The longest `contact` and `affected_area`, in characters.
pub const MAX_SHORT_CHARS: usize = 200;

/// What a submitter sends (JSON field names; the form uses the same names).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentSubmission {
    /// How to reach the reporter (optional): an e-mail address or anything else.
    #[serde(default)]
    pub contact: Option<String>,
    /// One line.
    pub summary: String,
    pub description: String,
    /// Which service, host or page is affected (optional).
    #[serde(default)]
    pub affected_area: Option<String>,
    /// Leave empty. (A honeypot: forms hide it from people; bots fill it.)
    #[serde(default)]
    pub website: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ValidIncident {
    pub contact: Option<String>,
    pub summary: String,
    pub description: String,
    pub affected_area: Option<String>,
}

pub fn check_text(name: &str, v: &str, max: usize, multiline: bool) -> Result<(), String> {
    if v.chars().count() > max {
        return Err(format!("`{name}` may be at most {max} characters"));
    }
    let bad = v
        .chars()
        .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')));
    if bad {
        return Err(format!("`{name}` holds control characters"));
    }
    Ok(())
}

fn optional(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Checks lengths and characters; Ok(None) for a honeypot hit.
/// `max_summary` and `max_description` count characters.
pub fn validate(
    s: IncidentSubmission,
    max_summary: usize,
    max_description: usize,
) -> Result<Option<ValidIncident>, String> {
    if s.website.as_deref().is_some_and(|w| !w.trim().is_empty()) {
        return Ok(None);
    }
    let summary = s.summary.trim().to_owned();
    let description = s.description.trim().to_owned();
    if summary.is_empty() {
        return Err("`summary` is required".into());
    }
    if description.is_empty() {
        return Err("`description` is required".into());
    }
    check_text("summary", &summary, max_summary, false)?;
    check_text("description", &description, max_description, true)?;
    let contact = optional(s.contact);
    let affected_area = optional(s.affected_area);
    if let Some(c) = &contact {
        check_text("contact", c, MAX_SHORT_CHARS, false)?;
    }
    if let Some(a) = &affected_area {
        check_text("affected_area", a, MAX_SHORT_CHARS, false)?;
    }
    Ok(Some(ValidIncident {
        contact,
        summary,
        description,
        affected_area,
    }))
}

/// Decodes `application/x-www-form-urlencoded` strictly: bad percent-escapes
/// and invalid UTF-8 are errors, not replacement characters.
pub fn decode_form(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    fn unescape(part: &[u8]) -> Result<String, String> {
        let mut out = Vec::with_capacity(part.len());
        let mut i = 0;
        while let Some(&b) = part.get(i) {
            match b {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = part
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or("the form has a bad percent-escape")?;
                    out.push(hex);
                    i += 2;
                }
                _ => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).map_err(|_| "the form is not valid UTF-8".to_owned())
    }
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = unescape(it.next().unwrap_or_default())?;
            let v = unescape(it.next().unwrap_or_default())?;
            Ok((k, v))
        })
        .collect()
}

pub fn submission_from_form(pairs: Vec<(String, String)>) -> Result<IncidentSubmission, String> {
    let mut s = IncidentSubmission::default();
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in pairs {
        if seen.contains(&k) {
            return Err(format!("field `{k}` given twice"));
        }
        match k.as_str() {
            "contact" => s.contact = Some(v),
            "summary" => s.summary = v,
            "description" => s.description = v,
            "affected_area" => s.affected_area = Some(v),
            "website" => s.website = Some(v),
            other => return Err(format!("unknown field `{other}`")),
        }
        seen.push(k);
    }
    Ok(s)
}

/// A JSON body: UTF-8, then the fields above and no others.
pub fn from_json(body: &[u8]) -> Result<IncidentSubmission, String> {
    if std::str::from_utf8(body).is_err() {
        return Err("the body is not valid UTF-8".into());
    }
    serde_json::from_slice(body).map_err(|e| format!("invalid incident report: {e}"))
}

/// A form body (`application/x-www-form-urlencoded`), decoded strictly.
pub fn from_form(body: &[u8]) -> Result<IncidentSubmission, String> {
    submission_from_form(decode_form(body)?)
}
