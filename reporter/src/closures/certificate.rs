//! What a closure leaves behind: the signed erasure certificate of a closed
//! account, and the overdue closures staff are told of.

use serde::Serialize;
use serde_json::{json, Value};

use super::rows::{load, open_closures, ClosureRow};
use crate::posture::rfc3339;
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// A closure past its deadline, newly found by [`overdue`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overdue {
    pub account: String,
    /// The closure's state when found late.
    pub state: String,
    pub due_by: String,
    pub requested_at: String,
}

/// The open closures that passed their deadline since the last call: each is
/// returned, and recorded as `erasure.overdue` in the audit log, once. The
/// notification helper calls this on its schedule and sends one
/// `erasure.overdue` event per item.
pub async fn overdue(
    store: &Store,
    audit: &crate::audit::AuditLog,
    now: i64,
) -> Result<Vec<Overdue>, StoreError> {
    let late: Vec<ClosureRow> = open_closures(store)
        .await?
        .into_iter()
        .filter(|c| c.due_at > 0 && now > c.due_at && c.overdue_at.is_none())
        .collect();
    let mut out = Vec::new();
    for c in late {
        let _g = audit.write_lock().await;
        let mut tx = store.begin_write().await?;
        let r = sqlx::query("UPDATE closures SET overdue_at = $1 WHERE account = $2 AND overdue_at IS NULL AND state = $3")
            .bind(now)
            .bind(&c.account)
            .bind(&c.state)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            tx.rollback().await?;
            continue;
        }
        let item = Overdue {
            account: c.account.clone(),
            state: c.state.clone(),
            due_by: rfc3339(c.due_at),
            requested_at: rfc3339(c.requested_at),
        };
        audit
            .append_in(
                &mut tx,
                store.backend,
                "erasure.overdue",
                "reporter",
                json!({"account": item.account, "state": item.state, "due_by": item.due_by}),
            )
            .await?;
        tx.commit().await?;
        out.push(item);
    }
    Ok(out)
}

/// The erasure certificate of a closed account: every transition with its
/// evidence (the runs that deleted included), the audit entries that
/// recorded them with inclusion proofs against a signed checkpoint, all
/// signed with the audit key. Verifiable offline with
/// `vigil-reporter audit verify --certificate FILE`. Only the entries of the
/// closure that closed count: a closure cancelled and reopened still gets a
/// certificate that verifies (issue 19 item 18).
pub async fn certificate(state: &AppState, account: &str) -> Result<Option<Value>, StoreError> {
    let Some(c) = load(state, account).await? else {
        return Ok(None);
    };
    if c.state != "closed" {
        return Ok(None);
    }
    let cp = state.audit.checkpoint(&state.store).await?;
    let entries = crate::audit::entries(&state.store).await?;
    let size = usize::try_from(cp.size).unwrap_or(0);
    let leaves: Vec<crate::merkle::Hash> = entries
        .iter()
        .take(size)
        .map(|e| crate::merkle::leaf_hash(&e.encode()))
        .collect();
    let ours = |e: &crate::audit::Entry| {
        e.kind.starts_with("closure.")
            && e.data.get("account").and_then(Value::as_str) == Some(account)
    };
    // The newest `closure.requested` of the account opens the closure that closed.
    let start = entries
        .iter()
        .take(size)
        .enumerate()
        .filter(|(_, e)| ours(e) && e.kind == "closure.requested")
        .map(|(i, _)| i)
        .next_back()
        .unwrap_or(0);
    let mut proven = Vec::new();
    for (i, e) in entries.iter().enumerate().take(size).skip(start) {
        if ours(e) {
            let proof: Vec<String> = crate::merkle::inclusion_proof(i, &leaves)
                .iter()
                .map(hex::encode)
                .collect();
            proven.push(json!({"entry": e, "proof": proof}));
        }
    }
    let mut cert = json!({
        "schema": "vigil.erasure-certificate/v1",
        "account": c.account,
        "requested_by": c.requested_by,
        "reason": c.reason,
        "approved_by": c.approved_by,
        "requested_at": rfc3339(c.requested_at),
        "closed_at": rfc3339(c.state_since),
        "transitions": c.history,
        "audit": {"origin": state.audit.origin, "public_key": state.audit.public_key_b64(), "checkpoint": cp.note, "tree_size": cp.size, "entries": proven},
    });
    let sig = state
        .audit
        .sign(crate::audit::canonical_json(&cert).as_bytes());
    if let Some(o) = cert.as_object_mut() {
        o.insert("signature".into(), Value::String(sig));
    }
    Ok(Some(cert))
}
