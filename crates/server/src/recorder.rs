//! The generation recorder: records are queued in memory and written in batches by one task, so the
//! request path never waits on the database.
//!
//! A record stays visible to `/generation` look-ups from the moment it is queued (the `pending` map)
//! until its batch is committed. A failed batch is retried until it commits; the store ignores
//! records it already has, so a retry never charges twice. On shutdown the queue is drained.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_core::generation::GenerationRecord;
use switchyard_store::Store;
use tokio::sync::mpsc;

const MAX_BATCH: usize = 512;

/// Handle used by requests to queue records.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Arc<GenerationRecord>>,
    pending: Arc<Mutex<HashMap<String, Arc<GenerationRecord>>>>,
}

/// The writer task's end; await [`Writer::run`] to drain on shutdown.
pub struct Writer {
    rx: mpsc::UnboundedReceiver<Arc<GenerationRecord>>,
    pending: Arc<Mutex<HashMap<String, Arc<GenerationRecord>>>>,
    store: Store,
    /// Slept before every batch write (`[testing] store_write_delay_ms`, benchmark only).
    write_delay: Duration,
}

/// A recorder and its writer; `write_delay` (zero outside benchmarks) is slept before every
/// batch write, which is where every store write of the request path's background work goes.
pub fn recorder(store: Store, write_delay: Duration) -> (Recorder, Writer) {
    let (tx, rx) = mpsc::unbounded_channel();
    let pending = Arc::new(Mutex::new(HashMap::new()));
    (
        Recorder {
            tx,
            pending: pending.clone(),
        },
        Writer {
            rx,
            pending,
            store,
            write_delay,
        },
    )
}

impl Recorder {
    /// Queues a record for writing (never blocks).
    pub fn record(&self, record: GenerationRecord) {
        let record = Arc::new(record);
        self.lock().insert(record.id.clone(), record.clone());
        if self.tx.send(record).is_err() {
            tracing::error!("generation writer is gone; record kept in memory only");
        }
    }

    /// A record not yet committed, if it is queued.
    pub fn pending(&self, id: &str) -> Option<GenerationRecord> {
        self.lock().get(id).map(|r| GenerationRecord::clone(r))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<GenerationRecord>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Writer {
    /// Writes batches until `stop` fires (or every [`Recorder`] is gone), then drains the queue.
    pub async fn run(mut self, mut stop: tokio::sync::oneshot::Receiver<()>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut stopping = false;
        loop {
            if stopping {
                match self.rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => return,
                }
            } else {
                tokio::select! {
                    received = self.rx.recv() => match received {
                        Some(r) => batch.push(r),
                        None => return,
                    },
                    _ = &mut stop => {
                        stopping = true;
                        continue;
                    }
                }
            }
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.write(&mut batch).await;
        }
    }

    async fn write(&self, batch: &mut Vec<Arc<GenerationRecord>>) {
        let mut delay = Duration::from_millis(50);
        loop {
            if !self.write_delay.is_zero() {
                tokio::time::sleep(self.write_delay).await;
            }
            let Err(e) = self.store.write_batch(batch).await else {
                break;
            };
            tracing::error!(error = %e, records = batch.len(), "writing generation records failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for r in batch.drain(..) {
            pending.remove(&r.id);
        }
    }
}
