//! One write that goes into the audit log with its rows: the log's writer
//! lock first, then one transaction (the order the log keeps), the caller's
//! rows and the entry in it, one commit.

use serde_json::Value;

use super::log::AuditLog;
use crate::store::{Backend, Store, StoreError};

/// A transaction whose rows are audited: the caller writes its rows through
/// [`AuditedWrite::tx`], appends the entry with [`AuditedWrite::append`] and
/// commits. Dropped without a commit, nothing is written and the lock is
/// released after the rollback.
pub struct AuditedWrite<'a> {
    /// The open write transaction.
    pub tx: sqlx::Transaction<'static, sqlx::Any>,
    audit: &'a AuditLog,
    backend: Backend,
    // INVARIANT: declared after `tx`, so a dropped transaction ends before the lock.
    _lock: tokio::sync::MutexGuard<'a, ()>,
}

impl AuditLog {
    /// Takes the writer lock and opens a write transaction on `store`.
    pub async fn begin(&self, store: &Store) -> Result<AuditedWrite<'_>, StoreError> {
        let lock = self.write_lock().await;
        let tx = store.begin_write().await?;
        Ok(AuditedWrite {
            tx,
            audit: self,
            backend: store.backend,
            _lock: lock,
        })
    }
}

impl AuditedWrite<'_> {
    /// Appends one entry inside the transaction.
    pub async fn append(
        &mut self,
        kind: &str,
        actor: &str,
        data: Value,
    ) -> Result<i64, StoreError> {
        self.audit
            .append_in(&mut self.tx, self.backend, kind, actor, data)
            .await
    }

    /// Commits the rows and their entries, then releases the lock.
    pub async fn commit(self) -> Result<(), StoreError> {
        let AuditedWrite { tx, _lock, .. } = self;
        tx.commit().await?;
        Ok(())
    }

    /// Rolls back, then releases the lock.
    pub async fn rollback(self) -> Result<(), StoreError> {
        let AuditedWrite { tx, _lock, .. } = self;
        tx.rollback().await?;
        Ok(())
    }
}
