//! Helpers shared by the fuzz targets: splitting one input into several,
//! the policy every waiver and policy-test input is read against, and the
//! policy re-serializer behind the policy target's round-trip property.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};
use vigil_rules::checks::JudgeCtx;
use vigil_rules::policy::{self, Policy};

/// The shipped policy, parsed once.
pub fn papyrs() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| {
        policy::parse(include_bytes!("../../policies/papyrs.yaml"), "papyrs.yaml")
            .unwrap_or_else(|d| panic!("policies/papyrs.yaml does not parse: {d}"))
    })
}

/// A fixed judging context (fuzzing must be deterministic: no clock).
pub fn ctx() -> JudgeCtx {
    JudgeCtx {
        now: chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default(),
        host: "web-1".into(),
    }
}

/// The first byte picks a variant (`selector % n`); the rest is the input.
pub fn select(data: &[u8], n: u8) -> Option<(u8, &[u8])> {
    let (first, rest) = data.split_first()?;
    Some((first % n, rest))
}

/// Splits at `\n` into at most `n` parts (the last keeps the rest).
pub fn split_lines(text: &str, n: usize) -> Vec<&str> {
    text.splitn(n, '\n').collect()
}

/// A validated policy written back as policy text. JSON is YAML, so the
/// loader reads it back; `None` fields are left out as a writer would.
pub fn policy_text(p: &Policy) -> String {
    fn put(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    }
    let mut meta = Map::new();
    meta.insert("id".into(), json!(p.meta.id));
    meta.insert("version".into(), json!(p.meta.version));
    meta.insert("title".into(), json!(p.meta.title));
    put(
        &mut meta,
        "description",
        p.meta.description.as_ref().map(|d| json!(d)),
    );
    let controls: Vec<Value> = p
        .controls
        .iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("id".into(), json!(c.id));
            m.insert("title".into(), json!(c.title));
            put(&mut m, "source", c.source.as_ref().map(|s| json!(s)));
            put(
                &mut m,
                "description",
                c.description.as_ref().map(|s| json!(s)),
            );
            let checks: Vec<Value> = c
                .checks
                .iter()
                .map(|k| {
                    let mut m = Map::new();
                    m.insert("id".into(), json!(k.id));
                    m.insert("type".into(), json!(k.type_name()));
                    put(&mut m, "every", k.every.map(|d| json!(d)));
                    put(&mut m, "timeout", k.timeout.map(|d| json!(d)));
                    m.insert("with".into(), json!(k.spec));
                    Value::Object(m)
                })
                .collect();
            m.insert("checks".into(), Value::Array(checks));
            Value::Object(m)
        })
        .collect();
    json!({"policy": meta, "controls": controls}).to_string()
}

/// A policy with what differs between two texts of it (digest, locations) cleared.
pub fn normalized(mut p: Policy) -> Policy {
    p.sha256.clear();
    for c in &mut p.controls {
        for k in &mut c.checks {
            k.loc = Default::default();
        }
    }
    p
}
