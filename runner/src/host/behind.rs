//! Write-behind (contract 0.2's `put-batch-behind` and `flush`): a batch is
//! written on a thread of its own while the plugin goes on, say
//! transforming the next page. The tenant's storage goes with the batch and
//! comes back with its result, so one batch is written at a time and every
//! other storage call waits for it: a read sees every batch handed over,
//! and nothing is shared between threads. A batch is written all or
//! nothing (`put_batch`), in the call's transaction and under its deadline.

use crate::storage::{StoreError, StoreResult, TenantStore, WriteEffect};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Written = (Box<dyn TenantStore>, StoreResult<Vec<WriteEffect>>);

/// A batch handed over: being written on its thread, or written already
/// (where no thread could be started).
enum Batch {
    Away(JoinHandle<Written>),
    Done(Written),
}

/// The batch being written, and what the batches written did.
#[derive(Default)]
pub struct Behind {
    batch: Option<Batch>,
    /// Each record's effect, of the batches written since the last flush.
    effects: Vec<WriteEffect>,
    /// The error of a batch, until the plugin is told.
    error: Option<StoreError>,
}

impl Behind {
    /// Write a batch on a thread of its own, taking the storage with it.
    /// The batch waits in a slot the thread takes it from, so that where no
    /// thread can be started it is written here.
    pub fn send(
        &mut self,
        store: Box<dyn TenantStore>,
        module: &str,
        collection: &str,
        records: Vec<(String, String)>,
    ) {
        let slot = Arc::new(Mutex::new(Some((store, records))));
        let theirs = slot.clone();
        let (m, c) = (module.to_string(), collection.to_string());
        let spawned = std::thread::Builder::new()
            .name("graft-write".into())
            .spawn(move || {
                let (mut store, records) = theirs.lock().unwrap().take().expect("taken once");
                let written = store.put_batch(&m, &c, &records);
                (store, written)
            });
        self.batch = Some(match spawned {
            Ok(handle) => Batch::Away(handle),
            Err(e) => {
                tracing::warn!(
                    "cannot start a thread for a write-behind batch ({e}); writing it here"
                );
                let (mut store, records) = slot.lock().unwrap().take().expect("not taken");
                let written = store.put_batch(module, collection, &records);
                Batch::Done((store, written))
            }
        });
    }

    /// Wait for the batch handed over, if any: the storage it took back,
    /// with the effects of the batch (also kept for the next flush; an
    /// error is kept for the plugin). `Some(None)`: the storage was lost
    /// with a writing thread that panicked.
    pub fn reclaim(&mut self) -> Option<Option<(Box<dyn TenantStore>, Vec<WriteEffect>)>> {
        let written = match self.batch.take()? {
            Batch::Done(written) => written,
            Batch::Away(handle) => match handle.join() {
                Ok(written) => written,
                Err(_) => {
                    self.error.get_or_insert(StoreError::Backend(
                        "the write-behind thread failed".into(),
                    ));
                    return Some(None);
                }
            },
        };
        Some(Some(match written {
            (store, Ok(effects)) => {
                self.effects.extend_from_slice(&effects);
                (store, effects)
            }
            (store, Err(e)) => {
                self.error.get_or_insert(e);
                (store, Vec::new())
            }
        }))
    }

    /// The error of a batch the plugin has not been told of, once.
    pub fn take_error(&mut self) -> Option<StoreError> {
        self.error.take()
    }

    /// The effects of the batches written since the last flush.
    pub fn take_effects(&mut self) -> Vec<WriteEffect> {
        std::mem::take(&mut self.effects)
    }
}
