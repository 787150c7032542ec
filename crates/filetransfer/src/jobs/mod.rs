//! The lifecycle jobs every file-transfer replica runs on an interval: [`purge`] (time to live,
//! and all recipients confirmed plus the grace period), [`stuck`] (uploads that stopped, and
//! processing that never got a verdict), [`leases`] (uploads whose process died: their lease
//! lapsed), [`bytes`] (deleting what purged and failed transfers left in storage) and [`tus`]
//! (resumable uploads that expired or whose transfer failed).
//!
//! No job state lives in memory: what is due is read from the database each round, and a due
//! transfer is taken under its row lock (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the write gate
//! on SQLite) in the transaction that applies its compare-and-set transition and writes its
//! outbox rows. So with any number of replicas a transfer is purged or failed once, with its
//! events once.
//!
//! Bytes are deleted after the commit, not before: the transition marks them (`bytes_pending`),
//! the job deletes them at once and clears the mark, and should it crash in between, the byte
//! sweep finds the mark and deletes them later. Deleting first would either remove the bytes
//! of an upload that just got published (stuck jobs race the uploader) or hold a row lock
//! across storage calls; marking first costs one column and leaks nothing for good.
//!
//! Every job reads the time from the injected [`Clock`], so tests move time forward.

pub mod bytes;
pub mod leases;
pub mod purge;
pub mod stuck;
pub mod tus;

use std::sync::Arc;

use broker_common::Shutdown;
use broker_common::clock::Clock;
use uuid::Uuid;

use crate::config::LifecycleSettings;
use crate::storage::Storage;
use crate::store::{FileTransferStore, StoreError};

/// Transfers taken per transaction.
const BATCH: u32 = 100;

/// What one round of the jobs did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Transfers moved to Purged.
    pub purged: usize,
    /// Stuck transfers moved to Failed.
    pub failed: usize,
    /// Uploads whose lease lapsed moved to Failed.
    pub abandoned: usize,
    /// Transfers whose leftover bytes the sweep deleted.
    pub swept: usize,
    /// Resumable uploads removed (expired, or of failed transfers).
    pub resumable: usize,
}

/// The lifecycle jobs over one store and storage.
#[derive(Clone)]
pub struct Lifecycle {
    store: Arc<dyn FileTransferStore>,
    storage: Storage,
    clock: Arc<dyn Clock>,
    settings: LifecycleSettings,
}

impl Lifecycle {
    /// The jobs over `store` and `storage`, reading the time from `clock`.
    pub fn new(
        store: Arc<dyn FileTransferStore>,
        storage: Storage,
        clock: Arc<dyn Clock>,
        settings: LifecycleSettings,
    ) -> Self {
        Self {
            store,
            storage,
            clock,
            settings,
        }
    }

    /// Runs a round every interval (at least every half upload lease) until `shutdown`; a
    /// failed round is logged and the next one tries again.
    pub async fn run(self, shutdown: Shutdown) {
        loop {
            match self.run_once().await {
                Ok(report) if report != Report::default() => {
                    tracing::info!(?report, "lifecycle round");
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "lifecycle round failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.settings.round_every()) => {}
            }
        }
    }

    /// One round of every job, at the clock's current time.
    pub async fn run_once(&self) -> Result<Report, StoreError> {
        Ok(Report {
            purged: purge::run(self).await?,
            failed: stuck::run(self).await?,
            abandoned: leases::run(self).await?,
            swept: bytes::run(self).await?,
            resumable: tus::run(self).await?,
        })
    }

    /// Deletes the bytes of `id` and records it; a failure is logged and left to the sweep.
    async fn delete_bytes(&self, id: Uuid) -> bool {
        if let Err(error) = self.storage.delete(id).await {
            tracing::warn!(%id, %error, "deleting bytes; the sweep will retry");
            return false;
        }
        match self.store.bytes_deleted(id).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%id, %error, "recording deleted bytes; the sweep will retry");
                false
            }
        }
    }
}
