//! Incident intake: outsiders report an incident through `POST
//! /api/v1/incidents` (JSON) or the plain form at `/report-incident`; staff
//! triage it (new → acknowledged → investigating → resolved, with notes), and
//! a webhook hears of each new one. `/.well-known/security.txt` (RFC 9116)
//! points at the form.
//!
//! Limits, in the order they are applied: per-address rate limit (429),
//! content type (415), body size (413), UTF-8 and field lengths (400). A
//! filled honeypot field gets an ordinary-looking answer and is not stored.

pub mod input;
pub mod pages;
pub mod routes;
pub mod store;

pub use crate::config::intake::IntakeConfig;
pub use crate::config::notify::NotifyConfig;
pub use crate::net::{client_addr, GlobalWindow, Peer, ProxyNet};
pub use input::{
    check_text, decode_form, from_form, from_json, submission_from_form, IncidentSubmission,
    ValidIncident, MAX_SHORT_CHARS,
};
pub use pages::*;
pub use routes::*;
pub use store::*;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, HeaderMap};
    use std::net::IpAddr;

    fn sub(summary: &str, description: &str) -> IncidentSubmission {
        IncidentSubmission {
            summary: summary.into(),
            description: description.into(),
            ..Default::default()
        }
    }

    #[test]
    fn validation_limits_and_honeypot() {
        let c = IntakeConfig::default();
        assert!(validate(sub("x", "y"), &c).unwrap().is_some());
        assert!(validate(sub("", "y"), &c).is_err());
        assert!(validate(sub(&"x".repeat(201), "y"), &c).is_err());
        assert!(validate(sub("a\u{7}b", "y"), &c).is_err());
        assert!(validate(sub("a", "line\nline"), &c).unwrap().is_some());
        let mut s = sub("x", "y");
        s.website = Some("http://spam".into());
        assert_eq!(validate(s, &c).unwrap(), None);
    }

    #[test]
    fn strict_form_decoding() {
        let p = decode_form(b"summary=a+b%21&description=%C3%A9").unwrap();
        assert_eq!(p[0], ("summary".into(), "a b!".into()));
        assert_eq!(p[1].1, "é");
        assert!(decode_form(b"summary=%FF").is_err());
        assert!(decode_form(b"summary=%G1").is_err());
        assert!(submission_from_form(decode_form(b"nope=1").unwrap()).is_err());
    }

    #[test]
    fn client_behind_trusted_proxies_only() {
        let trusted = [
            ProxyNet::parse("10.0.0.0/8").unwrap(),
            ProxyNet::parse("::1").unwrap(),
        ];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.7, 10.1.2.3".parse().unwrap(),
        );
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        // The nearest untrusted hop, not what the client prepended.
        assert_eq!(
            client_addr(Some(peer), &h, &trusted),
            "203.0.113.7".parse().ok()
        );
        let stranger: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(client_addr(Some(stranger), &h, &trusted), Some(stranger));
        let mut f = HeaderMap::new();
        f.insert(
            header::FORWARDED,
            "for=\"[2001:db8::5]:4711\";proto=https".parse().unwrap(),
        );
        assert_eq!(
            client_addr(Some("::1".parse().unwrap()), &f, &trusted),
            "2001:db8::5".parse().ok()
        );
        assert!(ProxyNet::parse("10.0.0.0/33").is_err());
        assert!(ProxyNet::parse("proxy").is_err());
        assert_eq!(time_left(3_600_000 * 2 + 60_000, 0), "2 h 1 min left");
        assert_eq!(time_left(0, 3_600_000), "passed 1 h 0 min ago");
    }

    #[test]
    fn triage_goes_forward_only() {
        assert!(transition_allowed("new", "acknowledged"));
        assert!(transition_allowed("new", "resolved"));
        assert!(transition_allowed("investigating", "investigating"));
        assert!(!transition_allowed("resolved", "new"));
        assert!(!transition_allowed("new", "closed"));
        assert!(valid_tracking_id(&new_tracking_id()));
    }
}
