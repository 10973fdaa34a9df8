//! The log itself: entries, their signatures, checkpoints and the witness.

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

pub(crate) fn signed_message(seq: i64, leaf: &Hash) -> Vec<u8> {
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
    /// The committed log's Merkle frontier, built once from the stored leaves
    /// and then caught up from the rows appended since: a checkpoint reads
    /// only new entries and never waits for [`AuditLog::write_lock`].
    tree: tokio::sync::Mutex<Option<merkle::Frontier>>,
    /// The newest checkpoint issued or found, served to public routes.
    latest: std::sync::RwLock<Option<Checkpoint>>,
    /// Where checkpoints are witnessed outside the database.
    witness: Witness,
}

/// Checkpoints witnessed outside the database: appended (fsync) to a file
/// beside it and optionally POSTed to a URL, so that deleting the newest
/// entries and the checkpoints covering them is still detected
/// ([`verify_against`]).
#[derive(Debug, Clone, Default)]
pub struct Witness {
    pub file: Option<std::path::PathBuf>,
    pub url: Option<String>,
}

pub(crate) fn key_id(name: &str, public: &VerifyingKey) -> [u8; 4] {
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
            tree: tokio::sync::Mutex::new(None),
            latest: std::sync::RwLock::new(None),
            witness: Witness::default(),
        })
    }

    /// Witnesses every checkpoint issued from now on.
    pub fn with_witness(mut self, witness: Witness) -> Self {
        self.witness = witness;
        self
    }
}

/// The public half of an ed25519 key stored as a hex seed at `path`, read
/// only (never created): what `audit verify` trusts.
pub fn public_key_of_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read audit key `{}`: {e}", path.display()))?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("audit key `{}` is not 64 hex digits", path.display()))?;
    Ok(B64.encode(SigningKey::from_bytes(&seed).verifying_key().as_bytes()))
}

/// The default witness file of a data directory.
pub fn witness_file(data: &Path) -> std::path::PathBuf {
    data.join("audit/witnessed-checkpoints.jsonl")
}

/// Appends one checkpoint as a JSON line to the witness file and syncs it
/// before returning: a checkpoint is served only once witnessed.
fn append_witness(file: &Path, cp: &Checkpoint) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_vec(cp).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(file)?;
    f.write_all(&line)?;
    f.sync_all()
}

/// The newest checkpoint in a witness file (its last complete line), or
/// `None` when the file does not exist or is empty. Reads only the file's end.
pub fn newest_witnessed(file: &Path) -> std::io::Result<Option<Checkpoint>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let start = len.saturating_sub(64 * 1024);
    f.seek(SeekFrom::Start(start))?;
    let mut tail = String::new();
    f.read_to_string(&mut tail)?;
    // A torn last line (a crash mid-append) is skipped, not trusted.
    for line in tail.lines().rev() {
        if let Ok(cp) = serde_json::from_str::<Checkpoint>(line) {
            return Ok(Some(cp));
        }
    }
    if len > 0 {
        return Err(std::io::Error::other(format!(
            "`{}` holds no readable checkpoint",
            file.display()
        )));
    }
    Ok(None)
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

    /// Binds the database's audit log to this reporter's key, or refuses a
    /// foreign one. The first reporter records its public key in the
    /// database (with a log from before that record, only when entry 0 is
    /// signed by this key); every reporter after it must hold the same key:
    /// two keys signing one log make it fail verification from both. The
    /// private key itself never enters the database, which the log must be
    /// able to accuse.
    pub async fn claim_key(&self, store: &Store, key_path: &Path) -> anyhow::Result<()> {
        let mine = self.public_key_b64();
        let recorded: Option<String> =
            sqlx::query_scalar("SELECT public_key FROM audit_key WHERE id = 1")
                .fetch_optional(&store.pool)
                .await?;
        let recorded = match recorded {
            Some(k) => k,
            None => {
                let first: Option<(String, String, i64)> =
                    sqlx::query_as("SELECT leaf_hash, sig, seq FROM audit_log WHERE seq = 0")
                        .fetch_optional(&store.pool)
                        .await?;
                if let Some((leaf, sig, seq)) = first {
                    let ok = hex::decode(&leaf)
                        .ok()
                        .and_then(|v| <Hash>::try_from(v).ok())
                        .zip(
                            B64.decode(&sig)
                                .ok()
                                .and_then(|s| Signature::from_slice(&s).ok()),
                        )
                        .is_some_and(|(leaf, sig)| {
                            self.public_key()
                                .verify(&signed_message(seq, &leaf), &sig)
                                .is_ok()
                        });
                    if !ok {
                        anyhow::bail!(
                            "the audit log in this database was not signed by this reporter's audit key `{}` ({mine}): every reporter sharing a database needs the same `audit_key` file; copy it from the reporter that started the log",
                            key_path.display()
                        );
                    }
                }
                sqlx::query("INSERT INTO audit_key (id, public_key, origin, created_at) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING")
                    .bind(&mine)
                    .bind(&self.origin)
                    .bind(now_ms())
                    .execute(&store.pool)
                    .await?;
                sqlx::query_scalar("SELECT public_key FROM audit_key WHERE id = 1")
                    .fetch_one(&store.pool)
                    .await?
            }
        };
        if recorded != mine {
            anyhow::bail!(
                "the audit log in this database is signed by key {recorded}, but this reporter's audit key `{}` is {mine}: every reporter sharing a database needs the same `audit_key` file; copy it from the first reporter (or point `audit_key` at it) and start again",
                key_path.display()
            );
        }
        Ok(())
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
            // Already held when the transaction began with
            // `Store::begin_write` (then this costs one round trip); taken
            // here for a transaction that did not.
            conn.execute(crate::store::WRITE_LOCK_SQL).await?;
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
        insert_entry(conn, &e).await?;
        Ok(e.seq)
    }

    /// The signed entry numbered `seq`, not yet stored.
    pub fn entry(&self, seq: i64, kind: &str, actor: &str, data: Value) -> Entry {
        sign_entry(&self.key, seq, kind, actor, data)
    }

    /// What signs entries away from the log (on another thread, while the
    /// transaction they go into runs other statements): the caller holds
    /// [`AuditLog::write_lock`] and numbers them as [`AuditLog::entry`]'s
    /// callers do.
    pub fn signer(&self) -> EntrySigner {
        EntrySigner {
            key: self.key.clone(),
        }
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
        let mut tx = store.begin_write().await?;
        let seq = self
            .append_in(&mut tx, store.backend, kind, actor, data)
            .await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// The newest checkpoint, issuing a new one first when the log has grown.
    ///
    /// Never takes [`AuditLog::write_lock`]: the tree is caught up from the
    /// entries committed since the last call (the first call reads every
    /// leaf once), so anonymous callers cannot hold ingest up.
    pub async fn checkpoint(&self, store: &Store) -> Result<Checkpoint, StoreError> {
        let mut guard = self.tree.lock().await;
        let tree = match guard.as_mut() {
            Some(t) => t,
            None => guard.insert(self.build_tree(store).await?),
        };
        catch_up(store, tree).await?;
        let size = i64::try_from(tree.size()).unwrap_or(i64::MAX);
        let root = tree.root();
        if let Some(c) = self.latest() {
            if c.size == size {
                return Ok(c);
            }
        }
        // Issued already (by another reporter sharing the database, or before
        // a restart): served as it is when it agrees with the log.
        let stored = sqlx::query("SELECT size, root, note FROM audit_checkpoints WHERE size = $1")
            .bind(size)
            .fetch_optional(&store.pool)
            .await?;
        let cp = match stored {
            Some(r) => {
                let cp = Checkpoint {
                    size: r.try_get("size")?,
                    root: r.try_get("root")?,
                    note: r.try_get("note")?,
                };
                if cp.root != hex::encode(root) {
                    return Err(StoreError::Corrupt(format!(
                        "the stored checkpoint at size {size} does not match the log: run `vigil-reporter audit verify`"
                    )));
                }
                cp
            }
            None => {
                let cp = Checkpoint {
                    size,
                    root: hex::encode(root),
                    note: sign_checkpoint(&self.key, &self.origin, size, &root),
                };
                sqlx::query("INSERT INTO audit_checkpoints (size, root, note, ts) VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING")
                    .bind(size)
                    .bind(&cp.root)
                    .bind(&cp.note)
                    .bind(now_ms())
                    .execute(&store.pool)
                    .await?;
                cp
            }
        };
        self.witness(&cp).await?;
        if let Ok(mut l) = self.latest.write() {
            *l = Some(cp.clone());
        }
        Ok(cp)
    }

    /// The newest checkpoint this process issued or served, without touching
    /// the store.
    pub fn latest(&self) -> Option<Checkpoint> {
        self.latest.read().ok().and_then(|l| l.clone())
    }

    /// Builds the tree from every stored leaf (once per process) and checks
    /// it against the newest witnessed checkpoint: a log shorter than that,
    /// or whose prefix hashes to another root, was cut or rewritten.
    async fn build_tree(&self, store: &Store) -> Result<merkle::Frontier, StoreError> {
        let witnessed = match &self.witness.file {
            Some(f) => newest_witnessed(f).map_err(|e| {
                StoreError::Corrupt(format!(
                    "cannot read the witness file `{}`: {e}",
                    f.display()
                ))
            })?,
            None => None,
        };
        let mut tree = merkle::Frontier::new();
        let stop = witnessed.as_ref().and_then(|w| u64::try_from(w.size).ok());
        catch_up_to(store, &mut tree, stop).await?;
        if let Some(w) = &witnessed {
            if i64::try_from(tree.size()).unwrap_or(i64::MAX) < w.size {
                return Err(StoreError::Corrupt(format!(
                    "the audit log has {} entries but checkpoint {} was witnessed in `{}`: entries were removed; restore the database (`vigil-reporter audit verify` names the gap)",
                    tree.size(),
                    w.size,
                    self.witness.file.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default()
                )));
            }
            if hex::encode(tree.root()) != w.root {
                return Err(StoreError::Corrupt(format!(
                    "the first {} audit entries do not hash to the witnessed checkpoint's root: the log was rewritten; restore the database",
                    w.size
                )));
            }
        }
        Ok(tree)
    }

    /// Builds the tree now (at start, so the first checkpoint is quick) and
    /// refuses a log cut below its newest witnessed checkpoint.
    pub async fn warm_up(&self, store: &Store) -> Result<Checkpoint, StoreError> {
        self.checkpoint(store).await
    }

    async fn witness(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        if let Some(file) = &self.witness.file {
            let seen = newest_witnessed(file).ok().flatten().map_or(-1, |w| w.size);
            if cp.size > seen {
                let (file, c) = (file.clone(), cp.clone());
                tokio::task::spawn_blocking(move || append_witness(&file, &c))
                    .await
                    .map_err(|e| StoreError::Corrupt(format!("witness task: {e}")))?
                    .map_err(|e| {
                        StoreError::Corrupt(format!("cannot append to the witness file: {e}"))
                    })?;
            }
        }
        if let Some(url) = &self.witness.url {
            let body = serde_json::json!({
                "origin": self.origin, "size": cp.size, "root": cp.root, "note": cp.note,
                "public_key": self.public_key_b64(),
            });
            let url = url.clone();
            // Best effort and off the caller's path: a witness that is down
            // must not stop the log; the file above is the durable copy.
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build();
                let sent = match client {
                    Ok(c) => c.post(&url).json(&body).send().await.map(|r| r.status()),
                    Err(e) => Err(e),
                };
                match sent {
                    Ok(st) if st.is_success() => {}
                    Ok(st) => {
                        tracing::warn!(status = %st, "the audit witness refused a checkpoint")
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot reach the audit witness"),
                }
            });
        }
        Ok(())
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

/// The audit key's half that signs entries ([`AuditLog::signer`]).
#[derive(Clone)]
pub struct EntrySigner {
    key: SigningKey,
}

impl EntrySigner {
    /// The signed entry numbered `seq`, as [`AuditLog::entry`] makes it.
    pub fn entry(&self, seq: i64, kind: &str, actor: &str, data: Value) -> Entry {
        sign_entry(&self.key, seq, kind, actor, data)
    }
}

fn sign_entry(key: &SigningKey, seq: i64, kind: &str, actor: &str, data: Value) -> Entry {
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
    e.sig = B64.encode(key.sign(&signed_message(e.seq, &leaf)).to_bytes());
    e
}

/// Stores signed entries (from [`AuditLog::entry`], numbered on from
/// [`AuditLog::next_seq`]) in the caller's transaction, in as few
/// statements as `backend` takes ([`Backend::rows_per_statement`]).
pub async fn insert_entries(
    conn: &mut AnyConnection,
    entries: &[Entry],
    backend: Backend,
) -> Result<(), StoreError> {
    for chunk in entries.chunks(backend.rows_per_statement(7)) {
        let tuples = backend.placeholders(chunk.len(), 7);
        insert_rows(conn, chunk, &tuples).await?;
    }
    Ok(())
}

/// One entry, with the numbered placeholders both engines take.
async fn insert_entry(conn: &mut AnyConnection, entry: &Entry) -> Result<(), StoreError> {
    insert_rows(
        conn,
        std::slice::from_ref(entry),
        "($1, $2, $3, $4, $5, $6, $7)",
    )
    .await
}

/// `entries` stored in one INSERT whose VALUES are `tuples`.
async fn insert_rows(
    conn: &mut AnyConnection,
    entries: &[Entry],
    tuples: &str,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO audit_log (seq, ts, kind, actor, data, leaf_hash, sig) VALUES {tuples}"
    );
    let mut q = sqlx::query(&sql);
    for e in entries {
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
    Ok(())
}

/// Appends to `tree` the leaves committed after its size.
async fn catch_up(store: &Store, tree: &mut merkle::Frontier) -> Result<(), StoreError> {
    catch_up_to(store, tree, None).await
}

/// [`catch_up`], stopping at `stop` leaves when given (to compare a prefix).
/// Reads in pages so that a million leaves never sit in memory at once.
async fn catch_up_to(
    store: &Store,
    tree: &mut merkle::Frontier,
    stop: Option<u64>,
) -> Result<(), StoreError> {
    const PAGE: i64 = 20_000;
    loop {
        let from = i64::try_from(tree.size()).unwrap_or(i64::MAX);
        let limit = match stop {
            Some(s) => {
                let left = i64::try_from(s).unwrap_or(i64::MAX).saturating_sub(from);
                if left <= 0 {
                    return Ok(());
                }
                left.min(PAGE)
            }
            None => PAGE,
        };
        let rows = sqlx::query(
            "SELECT seq, leaf_hash FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(from)
        .bind(limit)
        .fetch_all(&store.pool)
        .await?;
        let n = rows.len();
        for r in &rows {
            let seq: i64 = r.try_get("seq")?;
            let expected = i64::try_from(tree.size()).unwrap_or(i64::MAX);
            if seq != expected {
                return Err(StoreError::Corrupt(format!(
                    "audit entry {expected} is missing (found {seq} next): run `vigil-reporter audit verify`"
                )));
            }
            let h: String = r.try_get("leaf_hash")?;
            let leaf: Hash = hex::decode(&h)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "the leaf hash of audit entry {seq} is not 32 bytes of hex"
                    ))
                })?;
            tree.push(leaf);
        }
        if i64::try_from(n).unwrap_or(0) < limit {
            return Ok(());
        }
    }
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
