//! The tamper-evident audit log.
//!
//! Every report ingested, enrollment, revocation, user change, closure and
//! incident transition is an entry. Entries are canonically encoded JSON;
//! their leaf hashes form an RFC 6962 Merkle tree ([`crate::merkle`]). Each
//! entry is also signed (ed25519 over `seq || leaf hash`), so an altered,
//! swapped or re-hashed entry is named exactly; signed checkpoints (C2SP
//! `tlog-checkpoint` notes: origin, size, root) are issued as the log grows and
//! every pair of consecutive checkpoints must be consistent.
//!
//! The verifier ([`verify`]) works on an [`Export`], which is what the database
//! holds or what `vigil-reporter audit export` wrote: the same code checks both.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Executor, Row};

use crate::merkle::{self, Hash};
use crate::store::{now_ms, Backend, Store, StoreError};

/// Sorted keys at every level, no insignificant whitespace.
pub fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String((*k).clone()),
                        m.get(*k).map_or_else(String::new, canonical_json)
                    )
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical_json).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// One entry as stored and exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: i64,
    pub ts: i64,
    pub kind: String,
    pub actor: String,
    pub data: Value,
    /// Hex of the RFC 6962 leaf hash of [`Entry::encode`].
    pub leaf_hash: String,
    /// Base64 ed25519 signature over `seq (8 bytes big-endian) || leaf hash`.
    pub sig: String,
}

impl Entry {
    /// The canonical bytes the leaf hash covers.
    pub fn encode(&self) -> Vec<u8> {
        canonical_json(&serde_json::json!({
            "seq": self.seq, "ts": self.ts, "kind": self.kind, "actor": self.actor, "data": self.data,
        }))
        .into_bytes()
    }
}

fn signed_message(seq: i64, leaf: &Hash) -> Vec<u8> {
    let mut m = seq.to_be_bytes().to_vec();
    m.extend_from_slice(leaf);
    m
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub size: i64,
    /// Hex root hash.
    pub root: String,
    /// The signed note.
    pub note: String,
}

/// A whole log, as exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    pub origin: String,
    /// Base64 ed25519 public key.
    pub public_key: String,
    pub entries: Vec<Entry>,
    pub checkpoints: Vec<Checkpoint>,
}

pub struct AuditLog {
    key: SigningKey,
    pub origin: String,
    lock: tokio::sync::Mutex<()>,
}

fn key_id(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([0x01]);
    h.update(public.as_bytes());
    let d: [u8; 32] = h.finalize().into();
    let [a, b, c, e, ..] = d;
    [a, b, c, e]
}

/// A C2SP signed note carrying a checkpoint.
pub fn sign_checkpoint(key: &SigningKey, origin: &str, size: i64, root: &Hash) -> String {
    let body = format!("{origin}\n{size}\n{}\n", B64.encode(root));
    let sig = key.sign(body.as_bytes());
    let mut blob = key_id(origin, &key.verifying_key()).to_vec();
    blob.extend_from_slice(&sig.to_bytes());
    format!("{body}\n\u{2014} {origin} {}\n", B64.encode(blob))
}

/// Checks a signed note and returns (size, root).
pub fn open_checkpoint(
    note: &str,
    origin: &str,
    public: &VerifyingKey,
) -> Result<(i64, Hash), String> {
    let (body, sigs) = note
        .split_once("\n\n")
        .ok_or("the note has no signature block")?;
    let body = format!("{body}\n");
    let mut lines = body.lines();
    if lines.next() != Some(origin) {
        return Err(format!("the note is not for origin `{origin}`"));
    }
    let size: i64 = lines
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("the note has no tree size")?;
    let root: Hash = lines
        .next()
        .and_then(|s| B64.decode(s).ok())
        .and_then(|v| v.try_into().ok())
        .ok_or("the note has no root hash")?;
    let want_id = key_id(origin, public);
    for line in sigs.lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            continue;
        };
        let Some((name, b64)) = rest.split_once(' ') else {
            continue;
        };
        let Ok(blob) = B64.decode(b64) else { continue };
        if name != origin || blob.len() != 68 || blob.get(..4) != Some(&want_id[..]) {
            continue;
        }
        let sig = blob
            .get(4..)
            .and_then(|s| Signature::from_slice(s).ok())
            .ok_or("malformed signature")?;
        return public
            .verify(body.as_bytes(), &sig)
            .map(|_| (size, root))
            .map_err(|_| "the checkpoint signature does not verify".into());
    }
    Err("no signature by the audit key".into())
}

impl AuditLog {
    /// Loads the signing key from `path` (hex seed, mode 0600), creating it on first start.
    pub fn load_or_create(path: &Path, origin: &str) -> anyhow::Result<Self> {
        Ok(AuditLog {
            key: load_or_create_key(path, "audit")?,
            origin: origin.to_owned(),
            lock: tokio::sync::Mutex::new(()),
        })
    }
}

/// An ed25519 signing key from `path` (hex seed, mode 0600), created on first use.
pub fn load_or_create_key(path: &Path, what: &str) -> anyhow::Result<SigningKey> {
    let seed: [u8; 32] = match std::fs::read_to_string(path) {
        Ok(text) => hex::decode(text.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| {
                anyhow::anyhow!("{what} key `{}` is not 64 hex digits", path.display())
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            f.write_all(hex::encode(seed).as_bytes())?;
            f.sync_all()?;
            seed
        }
        Err(e) => {
            return Err(anyhow::anyhow!(
                "cannot read {what} key `{}`: {e}",
                path.display()
            ))
        }
    };
    Ok(SigningKey::from_bytes(&seed))
}

impl AuditLog {
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// A base64 ed25519 signature by the audit key.
    pub fn sign(&self, msg: &[u8]) -> String {
        B64.encode(self.key.sign(msg).to_bytes())
    }

    pub fn public_key_b64(&self) -> String {
        B64.encode(self.public_key().as_bytes())
    }

    /// Serializes writers of the log within this process (SQLite's one writer).
    pub async fn write_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    /// Appends one entry inside the caller's transaction. The caller holds
    /// [`AuditLog::write_lock`]; on PostgreSQL an advisory transaction lock
    /// also serializes reporters sharing the database.
    pub async fn append_in(
        &self,
        conn: &mut AnyConnection,
        backend: Backend,
        kind: &str,
        actor: &str,
        data: Value,
    ) -> Result<i64, StoreError> {
        let next = self.next_seq(conn, backend).await?;
        self.append_at(conn, next, kind, actor, data).await
    }

    /// The sequence number the next entry gets, inside the caller's
    /// transaction. The caller holds [`AuditLog::write_lock`]; on PostgreSQL
    /// this also takes the advisory transaction lock that serializes
    /// reporters sharing the database until the transaction ends.
    pub async fn next_seq(
        &self,
        conn: &mut AnyConnection,
        backend: Backend,
    ) -> Result<i64, StoreError> {
        if backend == Backend::Postgres {
            conn.execute("SELECT pg_advisory_xact_lock(727273)").await?;
        }
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), -1) + 1 FROM audit_log")
                .fetch_one(&mut *conn)
                .await?,
        )
    }

    /// Appends the entry numbered `seq`, which [`AuditLog::next_seq`] (plus
    /// the entries appended since in the same transaction) gave.
    pub async fn append_at(
        &self,
        conn: &mut AnyConnection,
        seq: i64,
        kind: &str,
        actor: &str,
        data: Value,
    ) -> Result<i64, StoreError> {
        let e = self.entry(seq, kind, actor, data);
        insert_entries(conn, std::slice::from_ref(&e), 1).await?;
        Ok(e.seq)
    }

    /// The signed entry numbered `seq`, not yet stored.
    pub fn entry(&self, seq: i64, kind: &str, actor: &str, data: Value) -> Entry {
        let mut e = Entry {
            seq,
            ts: now_ms(),
            kind: kind.into(),
            actor: actor.into(),
            data,
            leaf_hash: String::new(),
            sig: String::new(),
        };
        let leaf = merkle::leaf_hash(&e.encode());
        e.leaf_hash = hex::encode(leaf);
        e.sig = B64.encode(self.key.sign(&signed_message(e.seq, &leaf)).to_bytes());
        e
    }

    /// Appends one entry in its own transaction.
    pub async fn append(
        &self,
        store: &Store,
        kind: &str,
        actor: &str,
        data: Value,
    ) -> Result<i64, StoreError> {
        let _g = self.write_lock().await;
        let mut tx = store.pool.begin().await?;
        let seq = self
            .append_in(&mut tx, store.backend, kind, actor, data)
            .await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// The newest checkpoint, issuing a new one first when the log has grown.
    pub async fn checkpoint(&self, store: &Store) -> Result<Checkpoint, StoreError> {
        let _g = self.write_lock().await;
        let leaves = leaf_hashes(store).await?;
        let size = i64::try_from(leaves.len()).unwrap_or(i64::MAX);
        if let Some(last) = checkpoints(store).await?.pop() {
            if last.size == size {
                return Ok(last);
            }
        }
        let root = merkle::root(&leaves);
        let note = sign_checkpoint(&self.key, &self.origin, size, &root);
        sqlx::query("INSERT INTO audit_checkpoints (size, root, note, ts) VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING")
            .bind(size)
            .bind(hex::encode(root))
            .bind(&note)
            .bind(now_ms())
            .execute(&store.pool)
            .await?;
        Ok(Checkpoint {
            size,
            root: hex::encode(root),
            note,
        })
    }

    /// Everything, for verification or export.
    pub async fn export(&self, store: &Store) -> Result<Export, StoreError> {
        Ok(Export {
            origin: self.origin.clone(),
            public_key: self.public_key_b64(),
            entries: entries(store).await?,
            checkpoints: checkpoints(store).await?,
        })
    }
}

/// Stores signed entries (from [`AuditLog::entry`], numbered on from
/// [`AuditLog::next_seq`]) in the caller's transaction, `per_statement` rows
/// per INSERT (see [`Backend::rows_per_statement`]).
pub async fn insert_entries(
    conn: &mut AnyConnection,
    entries: &[Entry],
    per_statement: usize,
) -> Result<(), StoreError> {
    for chunk in entries.chunks(per_statement.max(1)) {
        let sql = format!(
            "INSERT INTO audit_log (seq, ts, kind, actor, data, leaf_hash, sig) VALUES {}",
            crate::store::placeholders(chunk.len(), 7)
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q
                .bind(e.seq)
                .bind(e.ts)
                .bind(e.kind.as_str())
                .bind(e.actor.as_str())
                .bind(canonical_json(&e.data))
                .bind(e.leaf_hash.as_str())
                .bind(e.sig.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn leaf_hashes(store: &Store) -> Result<Vec<Hash>, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar("SELECT leaf_hash FROM audit_log ORDER BY seq")
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| StoreError::Corrupt("a leaf hash is not 32 bytes of hex".into()))
        })
        .collect()
}

pub async fn entries(store: &Store) -> Result<Vec<Entry>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, ts, kind, actor, data, leaf_hash, sig FROM audit_log ORDER BY seq",
    )
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let data: String = r.try_get("data")?;
            Ok(Entry {
                seq: r.try_get("seq")?,
                ts: r.try_get("ts")?,
                kind: r.try_get("kind")?,
                actor: r.try_get("actor")?,
                // Unparseable data is kept as a string so the verifier names the entry.
                data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
                leaf_hash: r.try_get("leaf_hash")?,
                sig: r.try_get("sig")?,
            })
        })
        .collect()
}

pub async fn checkpoints(store: &Store) -> Result<Vec<Checkpoint>, StoreError> {
    let rows = sqlx::query("SELECT size, root, note FROM audit_checkpoints ORDER BY size")
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Checkpoint {
                size: r.try_get("size")?,
                root: r.try_get("root")?,
                note: r.try_get("note")?,
            })
        })
        .collect()
}

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
                    Some(prefix) => {
                        if merkle::root(prefix) != root {
                            problems.push(format!("the first {size} entries do not hash to the signed root of that checkpoint"));
                        }
                        if let Some((psize, proot)) = previous {
                            let proof = merkle::consistency_proof(usize::try_from(psize).unwrap_or(0), prefix);
                            if !merkle::verify_consistency(psize as u64, size as u64, &proot, &root, &proof) {
                                problems.push(format!("checkpoint {size} is not consistent with checkpoint {psize}: the log was forked"));
                            }
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
/// every state from `requested` to `closed` in order. Returns the problems.
pub fn verify_certificate(cert: &Value, pinned_key: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    let key_b64 = pinned_key
        .map(String::from)
        .or_else(|| {
            cert.pointer("/audit/public_key")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_default();
    let Some(key) = B64
        .decode(&key_b64)
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
    else {
        return vec!["no usable public key".into()];
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
    let mut states = vec!["requested".to_owned()];
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
                states.push(to.to_owned());
            }
        }
    }
    if states.iter().map(String::as_str).collect::<Vec<_>>() != crate::closures::STATES.to_vec() {
        problems.push(format!(
            "the logged transitions are not every state in order: {}",
            states.join(" → ")
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

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
