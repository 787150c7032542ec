//! Upload leases: every upload in UploadStarted is held by the process writing it, for a while
//! ([`FileTransferConfig::upload_lease_seconds`](crate::config::FileTransferConfig)) that the
//! process extends while the upload runs. A process that dies (or stops) stops extending; once
//! the lease lapses, the lifecycle job of any replica fails the transfer and removes what the
//! lease says the upload staged (`crate::jobs::leases`).
//!
//! The lease is granted in the transaction that moves the transfer to UploadStarted and
//! released in the one that moves it on, so no upload is ever in UploadStarted without one. It
//! belongs to the transfer and names a holder process, not a request or a connection: a
//! resumable (tus) upload can [`keep`](Leases::keep) the same lease across its PATCH requests
//! (a PATCH reaching another replica would first make that replica the holder of the live
//! lease, one UPDATE on the same row), and what it staged stays findable from the row.
//!
//! Renewal is one small UPDATE every third of a lease, from a timer beside the upload while it
//! runs, never per chunk. It stops when the upload's work ends, or when the store says the lease
//! is no longer this process's (the job took it after a renewal came too late): the upload is
//! then given up, as the job has failed its transfer already.

use std::future::Future;
use std::sync::Arc;

use broker_common::clock::Clock;
use chrono::TimeDelta;
use uuid::Uuid;

use crate::storage::Staging;
use crate::store::{FileTransferStore, LeaseChange, UploadLease};

/// This process's upload leases.
pub struct Leases {
    store: Arc<dyn FileTransferStore>,
    clock: Arc<dyn Clock>,
    /// Names this process among the replicas: host, process id and a random part (a restarted
    /// process with the same id never holds its predecessor's leases).
    holder: String,
    duration: TimeDelta,
}

/// The lease was taken from this process: its upload is given up.
#[derive(Debug, thiserror::Error)]
#[error("the upload's lease lapsed and was taken by the lifecycle job")]
pub struct LeaseLost;

impl Leases {
    /// Leases of `duration` in `store`, for this process.
    pub fn new(
        store: Arc<dyn FileTransferStore>,
        clock: Arc<dyn Clock>,
        duration: TimeDelta,
    ) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
        let holder = format!(
            "{host}/{}/{}",
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            store,
            clock,
            holder,
            duration,
        }
    }

    /// The lease to grant with the move to UploadStarted, for an upload staged at `staging`.
    pub fn grant(&self, staging: Staging) -> LeaseChange {
        LeaseChange::Grant(UploadLease {
            holder: self.holder.clone(),
            expires: self.clock.now() + self.duration,
            staging,
        })
    }

    /// Runs `work` (the upload of transfer `id`) while renewing its lease every third of the
    /// lease; [`LeaseLost`] (and `work` dropped) as soon as the lease turns out to be taken.
    pub async fn keep<T>(&self, id: Uuid, work: impl Future<Output = T>) -> Result<T, LeaseLost> {
        let every = (self.duration / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(1));
        let renewals = async {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                let expires = self.clock.now() + self.duration;
                match self.store.renew_lease(id, &self.holder, expires).await {
                    Ok(true) => {}
                    Ok(false) => return LeaseLost,
                    // The lease still runs for two more thirds: the next tick tries again.
                    Err(error) => tracing::warn!(%id, %error, "renewing an upload lease"),
                }
            }
        };
        tokio::select! {
            biased;
            done = work => Ok(done),
            lost = renewals => {
                tracing::warn!(%id, "upload lease lost; the upload is given up");
                Err(lost)
            }
        }
    }
}
