//! The verifier of the audit log: every entry, signature and checkpoint of
//! an [`Export`] (the database's, or a file `vigil-reporter audit export`
//! wrote), and erasure certificates offline.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::log::{canonical_json, open_checkpoint, signed_message, Checkpoint, Entry, Export};
use crate::merkle::{self, Hash};

/// What verification found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verification {
    pub ok: bool,
    pub entries: usize,
    pub checkpoints: usize,
    /// Hex root of the whole log as it is now.
    pub root: String,
    /// The first entry found altered, removed or reordered.
    pub first_bad_seq: Option<i64>,
    pub problems: Vec<String>,
    /// Base64 public key the signatures were checked against.
    pub public_key: String,
}

/// Verifies a whole log: every entry's hash and signature, the sequence's
/// continuity, every checkpoint's signature and root, and the consistency of
/// each checkpoint with the next. `pinned_key` (base64) overrides the key in
/// the export, as an auditor should.
pub fn verify(export: &Export, pinned_key: Option<&str>) -> Verification {
    verify_against(export, pinned_key, None)
}

/// [`verify`], and also against the newest checkpoint witnessed outside the
/// database: its signature, a log at least that long (the size only grows)
/// and a prefix that hashes to its root. Deleting the newest entries with the
/// checkpoints covering them passes [`verify`] but not this.
pub fn verify_against(
    export: &Export,
    pinned_key: Option<&str>,
    witnessed: Option<&Checkpoint>,
) -> Verification {
    let mut v = verify_log(export, pinned_key);
    let Some(w) = witnessed else {
        return v;
    };
    let key = B64
        .decode(&v.public_key)
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok());
    let Some(key) = key else {
        return v;
    };
    let mut problems = Vec::new();
    match open_checkpoint(&w.note, &export.origin, &key) {
        Err(e) => problems.push(format!("witnessed checkpoint at size {}: {e}", w.size)),
        Ok((size, root)) => {
            let n = usize::try_from(size).unwrap_or(usize::MAX);
            if n > export.entries.len() {
                let first = i64::try_from(export.entries.len()).unwrap_or(i64::MAX);
                problems.push(format!(
                    "the log has {} entries but checkpoint {size} was witnessed outside the database: entries were removed from the end",
                    export.entries.len()
                ));
                if v.first_bad_seq.is_none_or(|f| first < f) {
                    v.first_bad_seq = Some(first);
                }
            } else {
                let leaves: Vec<Hash> = export
                    .entries
                    .iter()
                    .take(n)
                    .map(|e| merkle::leaf_hash(&e.encode()))
                    .collect();
                if merkle::root(&leaves) != root {
                    problems.push(format!(
                        "the first {size} entries do not hash to the root of the witnessed checkpoint: the log was rewritten"
                    ));
                }
            }
        }
    }
    if !problems.is_empty() {
        v.ok = false;
        v.problems.extend(problems);
    }
    v
}

fn verify_log(export: &Export, pinned_key: Option<&str>) -> Verification {
    let mut problems = Vec::new();
    let mut first_bad: Option<i64> = None;
    let mut bad = |seq: i64, msg: String, problems: &mut Vec<String>| {
        if first_bad.is_none_or(|f| seq < f) {
            first_bad = Some(seq);
        }
        problems.push(msg);
    };
    let key_b64 = pinned_key.unwrap_or(&export.public_key).to_owned();
    let key = B64
        .decode(&key_b64)
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok());
    let Some(key) = key else {
        return Verification {
            ok: false,
            entries: export.entries.len(),
            checkpoints: export.checkpoints.len(),
            root: String::new(),
            first_bad_seq: None,
            problems: vec!["the public key is not a base64 ed25519 key".into()],
            public_key: key_b64,
        };
    };
    let mut leaves: Vec<Hash> = Vec::with_capacity(export.entries.len());
    for (i, e) in export.entries.iter().enumerate() {
        let expected_seq = i64::try_from(i).unwrap_or(i64::MAX);
        if e.seq != expected_seq {
            bad(
                expected_seq.min(e.seq),
                format!(
                    "entry {expected_seq} is missing or out of order (found {} in its place)",
                    e.seq
                ),
                &mut problems,
            );
        }
        let leaf = merkle::leaf_hash(&e.encode());
        if hex::encode(leaf) != e.leaf_hash {
            bad(
                e.seq,
                format!(
                    "entry {} was altered: its content does not match its leaf hash",
                    e.seq
                ),
                &mut problems,
            );
        }
        let sig_ok = B64
            .decode(&e.sig)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .is_some_and(|s| key.verify(&signed_message(e.seq, &leaf), &s).is_ok());
        if !sig_ok {
            bad(
                e.seq,
                format!(
                    "entry {}: its signature does not verify (altered, moved or forged)",
                    e.seq
                ),
                &mut problems,
            );
        }
        leaves.push(leaf);
    }
    // Every checkpoint's root is compared with the root of the log's prefix
    // of its size, all prefixes computed in one pass over the leaves (a
    // Merkle frontier): linear in the log, however many checkpoints. Two
    // checkpoints that both match prefixes of the same log are consistent
    // by construction; a fork fails the prefix check of one of them.
    let prefix_roots: std::collections::HashMap<usize, Hash> = {
        let mut wanted: Vec<usize> = export
            .checkpoints
            .iter()
            .filter_map(|c| usize::try_from(c.size).ok())
            .filter(|n| *n <= leaves.len())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut out = std::collections::HashMap::new();
        let mut tree = merkle::Frontier::new();
        let mut next = wanted.iter().peekable();
        while next.peek() == Some(&&0) {
            out.insert(0, tree.root());
            next.next();
        }
        for (i, leaf) in leaves.iter().enumerate() {
            if next.peek().is_none() {
                break;
            }
            tree.push(*leaf);
            while next.peek() == Some(&&(i + 1)) {
                out.insert(i + 1, tree.root());
                next.next();
            }
        }
        out
    };
    let mut previous: Option<(i64, Hash)> = None;
    for cp in &export.checkpoints {
        match open_checkpoint(&cp.note, &export.origin, &key) {
            Err(e) => problems.push(format!("checkpoint at size {}: {e}", cp.size)),
            Ok((size, root)) => {
                if size != cp.size || hex::encode(root) != cp.root {
                    problems.push(format!("checkpoint at size {}: the stored size or root differs from the signed note", cp.size));
                }
                let n = usize::try_from(size).unwrap_or(usize::MAX);
                match leaves.get(..n) {
                    None => bad(
                        i64::try_from(leaves.len()).unwrap_or(i64::MAX),
                        format!("the log has {} entries but a signed checkpoint covers {size}: entries were removed", leaves.len()),
                        &mut problems,
                    ),
                    Some(_) => {
                        if prefix_roots.get(&n) != Some(&root) {
                            problems.push(format!("the first {size} entries do not hash to the signed root of that checkpoint"));
                        }
                    }
                }
                if let Some((psize, _)) = previous {
                    if size < psize {
                        problems.push(format!("checkpoints out of order: {size} after {psize}"));
                    }
                }
                previous = Some((size, root));
            }
        }
    }
    Verification {
        ok: problems.is_empty(),
        entries: export.entries.len(),
        checkpoints: export.checkpoints.len(),
        root: hex::encode(merkle::root(&leaves)),
        first_bad_seq: first_bad,
        problems,
        public_key: key_b64,
    }
}

/// Verifies an erasure certificate offline: its signature, its checkpoint's
/// signature, every entry's inclusion proof, and that the transitions walk
/// every state of `states` (the closure's, from `requested` to `closed`) in
/// order. Returns the problems.
///
/// `reporter_key` (base64) is the reporter's audit key, which the verifier
/// got from the reporter, never from the certificate: a certificate carries a
/// public key for reference only, and one signed by any other key fails.
pub fn verify_certificate(cert: &Value, reporter_key: &str, states: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(key) = B64
        .decode(reporter_key)
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
    else {
        return vec!["the reporter's public key is not a base64 ed25519 key".into()];
    };
    let mut unsigned = cert.clone();
    let sig = unsigned
        .as_object_mut()
        .and_then(|o| o.remove("signature"))
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let sig_ok = B64
        .decode(&sig)
        .ok()
        .and_then(|s| Signature::from_slice(&s).ok())
        .is_some_and(|s| key.verify(canonical_json(&unsigned).as_bytes(), &s).is_ok());
    if !sig_ok {
        problems.push(
            "the certificate's signature does not verify: it was altered or not signed by this key"
                .into(),
        );
    }
    let origin = cert
        .pointer("/audit/origin")
        .and_then(Value::as_str)
        .unwrap_or("");
    let note = cert
        .pointer("/audit/checkpoint")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (size, root) = match open_checkpoint(note, origin, &key) {
        Ok(x) => x,
        Err(e) => {
            problems.push(format!("checkpoint: {e}"));
            return problems;
        }
    };
    let entries = cert
        .pointer("/audit/entries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if entries.is_empty() {
        problems.push("the certificate carries no audit entries".into());
    }
    let mut logged = vec!["requested".to_owned()];
    for item in &entries {
        let Ok(e) = serde_json::from_value::<Entry>(item.get("entry").cloned().unwrap_or_default())
        else {
            problems.push("an audit entry is malformed".into());
            continue;
        };
        let proof: Vec<Hash> = item
            .get("proof")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|h| {
                        h.as_str()
                            .and_then(|h| hex::decode(h).ok())
                            .and_then(|v| v.try_into().ok())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let leaf = merkle::leaf_hash(&e.encode());
        if !merkle::verify_inclusion(
            &leaf,
            u64::try_from(e.seq).unwrap_or(u64::MAX),
            u64::try_from(size).unwrap_or(0),
            &proof,
            &root,
        ) {
            problems.push(format!(
                "audit entry {} is not included in the signed log",
                e.seq
            ));
        }
        if e.kind == "closure.transition" {
            if let Some(to) = e.data.get("to").and_then(Value::as_str) {
                logged.push(to.to_owned());
            }
        }
    }
    if logged.iter().map(String::as_str).collect::<Vec<_>>() != states {
        problems.push(format!(
            "the logged transitions are not every state in order: {}",
            logged.join(" → ")
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::log::*;
    use crate::store::Store;
    use ed25519_dalek::{Signer, SigningKey};
    use std::path::Path;

    fn sample(n: i64, key: &SigningKey) -> Export {
        let origin = "vigil-test".to_owned();
        let mut entries = Vec::new();
        let mut checkpoints = Vec::new();
        for seq in 0..n {
            let mut e = Entry {
                seq,
                ts: 1000 + seq,
                kind: "report.ingested".into(),
                actor: "web-1".into(),
                data: serde_json::json!({"report_id": seq, "b": [1, {"z": 1, "a": 2}]}),
                leaf_hash: String::new(),
                sig: String::new(),
            };
            let leaf = merkle::leaf_hash(&e.encode());
            e.leaf_hash = hex::encode(leaf);
            e.sig = B64.encode(key.sign(&signed_message(seq, &leaf)).to_bytes());
            entries.push(e);
            if seq % 4 == 3 {
                let leaves: Vec<Hash> = entries
                    .iter()
                    .map(|e| merkle::leaf_hash(&e.encode()))
                    .collect();
                let root = merkle::root(&leaves);
                checkpoints.push(Checkpoint {
                    size: seq + 1,
                    root: hex::encode(root),
                    note: sign_checkpoint(key, &origin, seq + 1, &root),
                });
            }
        }
        Export {
            origin,
            public_key: B64.encode(key.verifying_key().as_bytes()),
            entries,
            checkpoints,
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    async fn store_and_log(dir: &Path) -> (Store, AuditLog) {
        let url = format!("sqlite://{}?mode=rwc", dir.join("vigil.db").display());
        let store = Store::open(&url).await.unwrap();
        let log = AuditLog::load_or_create(&dir.join("audit.key"), "vigil-test")
            .unwrap()
            .with_witness(Witness {
                file: Some(witness_file(dir)),
                url: None,
            });
        (store, log)
    }

    /// Regression (issue 19, item 2): a checkpoint read every leaf under the
    /// audit write lock, so anonymous pollers starved ingest. Now it is
    /// served while the write lock is held, and the incremental root equals
    /// the full recomputation as the log grows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_checkpoint_is_served_while_the_write_lock_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let (store, log) = store_and_log(dir.path()).await;
        for round in 0..3 {
            for i in 0..(7 + round * 5) {
                log.append(&store, "test.entry", "t", serde_json::json!({"i": i}))
                    .await
                    .unwrap();
            }
            let held = log.write_lock().await;
            let cp =
                tokio::time::timeout(std::time::Duration::from_secs(10), log.checkpoint(&store))
                    .await
                    .expect("the checkpoint waited for the write lock")
                    .unwrap();
            drop(held);
            let all = entries(&store).await.unwrap();
            let leaves: Vec<Hash> = all.iter().map(|e| merkle::leaf_hash(&e.encode())).collect();
            assert_eq!(cp.size, all.len() as i64);
            assert_eq!(cp.root, hex::encode(merkle::root(&leaves)));
            let (size, root) = open_checkpoint(&cp.note, "vigil-test", &log.public_key()).unwrap();
            assert_eq!((size, hex::encode(root)), (cp.size, cp.root.clone()));
            // Witnessed outside the database.
            let w = newest_witnessed(&witness_file(dir.path()))
                .unwrap()
                .unwrap();
            assert_eq!(w, cp);
        }
        // A fresh process (a new tree, built once) agrees.
        let (store2, log2) = store_and_log(dir.path()).await;
        assert_eq!(
            log2.checkpoint(&store2).await.unwrap(),
            log.checkpoint(&store).await.unwrap()
        );
    }

    /// Regression (issue 19, item 4): deleting the newest entries and the
    /// checkpoints covering them passed verification. The witnessed
    /// checkpoint catches it, and a reporter refuses to build on that log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cut_tail_fails_against_the_witnessed_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (store, log) = store_and_log(dir.path()).await;
        for i in 0..10 {
            log.append(&store, "test.entry", "t", serde_json::json!({"i": i}))
                .await
                .unwrap();
            if i == 5 {
                log.checkpoint(&store).await.unwrap();
            }
        }
        log.checkpoint(&store).await.unwrap();
        sqlx::query("DELETE FROM audit_log WHERE seq >= 8")
            .execute(&store.pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM audit_checkpoints WHERE size > 8")
            .execute(&store.pool)
            .await
            .unwrap();
        let x = log.export(&store).await.unwrap();
        assert!(
            verify(&x, None).ok,
            "without the witness the cut is invisible"
        );
        let w = newest_witnessed(&witness_file(dir.path())).unwrap();
        let v = verify_against(&x, None, w.as_ref());
        assert!(!v.ok);
        assert_eq!(v.first_bad_seq, Some(8));
        assert!(
            v.problems.iter().any(|p| p.contains("witnessed")),
            "{:?}",
            v.problems
        );
        let (store2, log2) = store_and_log(dir.path()).await;
        let e = log2.warm_up(&store2).await.unwrap_err().to_string();
        assert!(e.contains("entries were removed"), "{e}");
    }

    /// Regression (issue 22, item 6): two reporters with different audit keys
    /// on one database each signed the shared log; the second now refuses.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_key_on_one_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, log) = store_and_log(dir.path()).await;
        log.claim_key(&store, &dir.path().join("audit.key"))
            .await
            .unwrap();
        log.claim_key(&store, &dir.path().join("audit.key"))
            .await
            .unwrap();
        let other = AuditLog::load_or_create(&dir.path().join("other.key"), "vigil-test").unwrap();
        let e = other
            .claim_key(&store, &dir.path().join("other.key"))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("same `audit_key`"), "{e}");
        // A log from before the key was recorded: entry 0 decides.
        sqlx::query("DELETE FROM audit_key")
            .execute(&store.pool)
            .await
            .unwrap();
        log.append(&store, "test.entry", "t", serde_json::json!({}))
            .await
            .unwrap();
        assert!(other
            .claim_key(&store, &dir.path().join("other.key"))
            .await
            .is_err());
        log.claim_key(&store, &dir.path().join("audit.key"))
            .await
            .unwrap();
    }

    /// Regression (issue 19, item 5): a certificate forged with any key
    /// verified, because the verifier trusted the key the file carried.
    #[test]
    fn a_certificate_is_checked_against_the_reporters_key_only() {
        let mallory = SigningKey::from_bytes(&[9u8; 32]);
        let x = sample(0, &mallory);
        let mut entries = Vec::new();
        let states = &["requested", "export_ready", "closed"];
        for (seq, to) in states.iter().skip(1).enumerate() {
            let mut e = Entry {
                seq: seq as i64,
                ts: 1,
                kind: "closure.transition".into(),
                actor: "m".into(),
                data: serde_json::json!({"to": to}),
                leaf_hash: String::new(),
                sig: String::new(),
            };
            let leaf = merkle::leaf_hash(&e.encode());
            e.leaf_hash = hex::encode(leaf);
            e.sig = B64.encode(mallory.sign(&signed_message(e.seq, &leaf)).to_bytes());
            entries.push(e);
        }
        let leaves: Vec<Hash> = entries
            .iter()
            .map(|e| merkle::leaf_hash(&e.encode()))
            .collect();
        let root = merkle::root(&leaves);
        let items: Vec<Value> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                serde_json::json!({"entry": e, "proof": merkle::inclusion_proof(i, &leaves).iter().map(hex::encode).collect::<Vec<_>>()})
            })
            .collect();
        let mut cert = serde_json::json!({
            "schema": "vigil.erasure-certificate/v1", "account": "acme",
            "audit": {"origin": x.origin, "public_key": x.public_key,
                      "checkpoint": sign_checkpoint(&mallory, &x.origin, leaves.len() as i64, &root),
                      "entries": items},
        });
        let sig = B64.encode(mallory.sign(canonical_json(&cert).as_bytes()).to_bytes());
        cert["signature"] = Value::String(sig);
        // Self-consistent under the key it carries...
        assert_eq!(
            verify_certificate(&cert, &x.public_key, states),
            Vec::<String>::new()
        );
        // ...and refused under the reporter's.
        let reporter = B64.encode(key().verifying_key().as_bytes());
        let problems = verify_certificate(&cert, &reporter, states);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("signature does not verify")),
            "{problems:?}"
        );
    }

    #[test]
    fn canonical_json_sorts_keys_everywhere() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, {"y": 2, "x": 1}], "c": "é"}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"é","d":[1,{"x":1,"y":2}]},"b":1}"#
        );
    }

    #[test]
    fn an_intact_log_verifies() {
        let v = verify(&sample(10, &key()), None);
        assert!(v.ok, "{:?}", v.problems);
        assert_eq!((v.entries, v.checkpoints), (10, 2));
    }

    #[test]
    fn an_altered_entry_is_named() {
        let mut x = sample(10, &key());
        x.entries[5].actor = "mallory".into();
        let v = verify(&x, None);
        assert!(!v.ok);
        assert_eq!(v.first_bad_seq, Some(5));
    }

    #[test]
    fn an_altered_and_rehashed_entry_is_named_by_its_signature() {
        let mut x = sample(10, &key());
        x.entries[2].data = serde_json::json!({"report_id": "forged"});
        x.entries[2].leaf_hash = hex::encode(merkle::leaf_hash(&x.entries[2].encode()));
        let v = verify(&x, None);
        assert_eq!(v.first_bad_seq, Some(2));
        assert!(v.problems.iter().any(|p| p.contains("signature")));
        assert!(
            v.problems.iter().any(|p| p.contains("signed root")),
            "{:?}",
            v.problems
        );
    }

    #[test]
    fn removed_and_reordered_entries_are_named() {
        let mut x = sample(10, &key());
        x.entries.remove(3);
        assert_eq!(verify(&x, None).first_bad_seq, Some(3));
        let mut x = sample(10, &key());
        x.entries.swap(6, 7);
        assert_eq!(verify(&x, None).first_bad_seq, Some(6));
        let mut x = sample(10, &key());
        x.entries.truncate(6);
        let v = verify(&x, None);
        assert!(!v.ok);
        assert_eq!(v.first_bad_seq, Some(6), "{:?}", v.problems);
    }

    #[test]
    fn a_forged_key_or_checkpoint_fails() {
        let forged = sample(10, &SigningKey::from_bytes(&[9u8; 32]));
        let real_key = B64.encode(key().verifying_key().as_bytes());
        let v = verify(&forged, Some(&real_key));
        assert!(!v.ok);
        let mut x = sample(10, &key());
        x.checkpoints[0].note = x.checkpoints[0].note.replacen("4\n", "5\n", 1);
        assert!(!verify(&x, None).ok);
    }
}
