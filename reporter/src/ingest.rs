//! Group commit for ingested reports.
//!
//! Every report is stored with its audit entry under the audit log's one
//! writer lock, and each commit is an fsync (SQLite `synchronous = FULL`,
//! PostgreSQL `fsync`). One transaction per report capped ingest at the disk's
//! fsync rate. Here a request queues its report and waits; one flusher task
//! drains the queue and stores everything waiting in one transaction, so
//! reports that arrive during a commit share the next one. A report is still
//! acknowledged only after the transaction holding it has committed.
//!
//! The flusher is a spawned task, not the request that happened to arrive
//! first: a client that disconnects mid-request (hyper drops its future) must
//! not cancel a commit that other agents' reports are part of.
//!
//! If a batch fails (a database error), nothing of it was stored; its reports
//! are then stored one by one so that one bad report fails alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::api::AppState;
use crate::store::{NewReport, StoreError, Stored};

/// Most reports in one transaction; the rest wait for the next one.
pub const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Stored, StoreError>>;

#[derive(Default)]
pub struct Ingest {
    queue: Mutex<Vec<(NewReport, Reply)>>,
    /// A flusher task is running (or about to).
    flushing: AtomicBool,
}

impl Ingest {
    fn push(&self, report: NewReport, reply: Reply) -> Result<(), StoreError> {
        self.queue
            .lock()
            .map_err(|_| StoreError::Corrupt("the ingest queue's lock is poisoned".into()))?
            .push((report, reply));
        Ok(())
    }

    fn take(&self) -> Vec<(NewReport, Reply)> {
        match self.queue.lock() {
            Ok(mut q) => {
                let n = q.len().min(MAX_BATCH);
                q.drain(..n).collect()
            }
            Err(_) => Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.queue.lock().map(|q| q.is_empty()).unwrap_or(true)
    }
}

/// Stores `report` (idempotently by its id) and returns once the
/// transaction holding it has committed.
pub async fn store(state: &Arc<AppState>, report: NewReport) -> Result<Stored, StoreError> {
    let (tx, rx) = oneshot::channel();
    state.ingest.push(report, tx)?;
    if !state.ingest.flushing.swap(true, Ordering::AcqRel) {
        tokio::spawn(flush(state.clone()));
    }
    rx.await
        .map_err(|_| StoreError::Corrupt("the ingest flusher stopped before answering".into()))?
}

async fn flush(state: Arc<AppState>) {
    loop {
        let batch = state.ingest.take();
        if batch.is_empty() {
            state.ingest.flushing.store(false, Ordering::Release);
            // A report queued after `take` but before the store above saw
            // `flushing` still true and spawned nothing: take it on.
            if state.ingest.is_empty() || state.ingest.flushing.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        }
        let _g = state.audit.write_lock().await;
        let (reports, replies): (Vec<NewReport>, Vec<Reply>) = batch.into_iter().unzip();
        match state
            .store
            .insert_reports_locked(&state.audit, &reports)
            .await
        {
            Ok(results) if results.len() == replies.len() => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // The requester may have gone (client disconnected): the
                    // report is stored all the same and a retry is a duplicate.
                    let _ = reply.send(Ok(result));
                }
            }
            outcome => {
                if let Err(e) = &outcome {
                    tracing::warn!(error = %e, reports = reports.len(), "a batched commit failed; storing its reports one by one");
                }
                for (report, reply) in reports.iter().zip(replies) {
                    let result = state
                        .store
                        .insert_reports_locked(&state.audit, std::slice::from_ref(report))
                        .await
                        .and_then(|mut v| {
                            v.pop().ok_or_else(|| {
                                StoreError::Corrupt("a batch of one stored nothing".into())
                            })
                        });
                    let _ = reply.send(result);
                }
            }
        }
    }
}
