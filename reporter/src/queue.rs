//! The reports waiting for the next group commit of the ingest feature: a
//! queue and a flag saying a flusher task is running. It lives in the shared
//! state; the ingest feature fills and drains it.

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::store::{NewReport, StoreError, Stored};

/// Most reports in one transaction; the rest wait for the next one.
pub const MAX_BATCH: usize = 256;

pub type Reply = oneshot::Sender<Result<Stored, StoreError>>;

#[derive(Default)]
pub struct Ingest {
    queue: Mutex<Vec<(NewReport, Reply)>>,
    /// A flusher task is running (or about to).
    pub flushing: AtomicBool,
}

impl Ingest {
    pub fn push(&self, report: NewReport, reply: Reply) -> Result<(), StoreError> {
        self.queue
            .lock()
            .map_err(|_| StoreError::Corrupt("the ingest queue's lock is poisoned".into()))?
            .push((report, reply));
        Ok(())
    }

    pub fn take(&self) -> Vec<(NewReport, Reply)> {
        match self.queue.lock() {
            Ok(mut q) => {
                let n = q.len().min(MAX_BATCH);
                q.drain(..n).collect()
            }
            Err(_) => Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.lock().map(|q| q.is_empty()).unwrap_or(true)
    }
}
