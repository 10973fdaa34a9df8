//! An incident submission (`POST /api/v1/incidents` JSON, the
//! `/report-incident` form) as outsiders send it, and how it is decoded and
//! checked: no I/O, no state, no clock. The reporter's intake routes use it
//! (`reporter/src/intake/input.rs`), and the fuzz crate feeds it untrusted
//! bodies without linking the reporter. With the `openapi` feature the
//! submission derives utoipa's `ToSchema` for the reporter's OpenAPI document.

use serde::Deserialize;

/// Why a submission was refused. The messages are the ones the reporter
/// answers with (`{"error": …}`, or the form's page).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IncidentError {
    /// `summary` or `description` is empty once trimmed.
    #[error("`{field}` is required")]
    Required { field: &'static str },
    #[error("`{field}` may be at most {max} characters")]
    TooLong { field: String, max: usize },
    #[error("`{field}` holds control characters")]
    ControlCharacters { field: String },
    #[error("the form has a bad percent-escape")]
    BadPercentEscape,
    #[error("the form is not valid UTF-8")]
    FormNotUtf8,
    #[error("field `{0}` given twice")]
    DuplicateField(String),
    #[error("unknown field `{0}`")]
    UnknownField(String),
    #[error("the body is not valid UTF-8")]
    BodyNotUtf8,
    #[error("invalid incident report: {0}")]
    Json(#[source] serde_json::Error),
}

/// The longest `contact` and `affected_area`, in characters.
pub const MAX_SHORT_CHARS: usize = 200;

/// What a submitter sends (JSON field names; the form uses the same names).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

pub fn check_text(name: &str, v: &str, max: usize, multiline: bool) -> Result<(), IncidentError> {
    if v.chars().count() > max {
        return Err(IncidentError::TooLong {
            field: name.to_owned(),
            max,
        });
    }
    let bad = v
        .chars()
        .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')));
    if bad {
        return Err(IncidentError::ControlCharacters {
            field: name.to_owned(),
        });
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
) -> Result<Option<ValidIncident>, IncidentError> {
    if s.website.as_deref().is_some_and(|w| !w.trim().is_empty()) {
        return Ok(None);
    }
    let summary = s.summary.trim().to_owned();
    let description = s.description.trim().to_owned();
    if summary.is_empty() {
        return Err(IncidentError::Required { field: "summary" });
    }
    if description.is_empty() {
        return Err(IncidentError::Required {
            field: "description",
        });
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
pub fn decode_form(body: &[u8]) -> Result<Vec<(String, String)>, IncidentError> {
    fn unescape(part: &[u8]) -> Result<String, IncidentError> {
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
                        .ok_or(IncidentError::BadPercentEscape)?;
                    out.push(hex);
                    i += 2;
                }
                _ => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).map_err(|_| IncidentError::FormNotUtf8)
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

pub fn submission_from_form(
    pairs: Vec<(String, String)>,
) -> Result<IncidentSubmission, IncidentError> {
    let mut s = IncidentSubmission::default();
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in pairs {
        if seen.contains(&k) {
            return Err(IncidentError::DuplicateField(k));
        }
        match k.as_str() {
            "contact" => s.contact = Some(v),
            "summary" => s.summary = v,
            "description" => s.description = v,
            "affected_area" => s.affected_area = Some(v),
            "website" => s.website = Some(v),
            other => return Err(IncidentError::UnknownField(other.to_owned())),
        }
        seen.push(k);
    }
    Ok(s)
}

/// A JSON body: UTF-8, then the fields above and no others.
pub fn from_json(body: &[u8]) -> Result<IncidentSubmission, IncidentError> {
    if std::str::from_utf8(body).is_err() {
        return Err(IncidentError::BodyNotUtf8);
    }
    serde_json::from_slice(body).map_err(IncidentError::Json)
}

/// A form body (`application/x-www-form-urlencoded`), decoded strictly.
pub fn from_form(body: &[u8]) -> Result<IncidentSubmission, IncidentError> {
    submission_from_form(decode_form(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reporter answers with these messages (`{"error": …}`); they read as
    // they did when the intake built them as strings.
    #[test]
    fn messages_read_as_the_intake_wrote_them() {
        let e = |r: Result<IncidentSubmission, IncidentError>| r.unwrap_err().to_string();
        assert_eq!(
            e(from_form(b"summary=%zz")),
            "the form has a bad percent-escape"
        );
        assert_eq!(e(from_form(b"summary=%ff")), "the form is not valid UTF-8");
        assert_eq!(
            e(from_form(b"summary=a&summary=b")),
            "field `summary` given twice"
        );
        assert_eq!(e(from_form(b"name=a")), "unknown field `name`");
        assert_eq!(e(from_json(b"\xff")), "the body is not valid UTF-8");
        assert!(e(from_json(b"{}")).starts_with("invalid incident report: missing field"));
        let sub = |s: &str, d: &str| IncidentSubmission {
            summary: s.into(),
            description: d.into(),
            ..Default::default()
        };
        let v = |s| validate(s, 10, 100).unwrap_err().to_string();
        assert_eq!(v(sub(" ", "d")), "`summary` is required");
        assert_eq!(v(sub("s", "")), "`description` is required");
        assert_eq!(
            v(sub("01234567890", "d")),
            "`summary` may be at most 10 characters"
        );
        assert_eq!(v(sub("a\tb", "d")), "`summary` holds control characters");
        assert!(validate(sub("s", "line\none"), 10, 100).is_ok());
    }
}
