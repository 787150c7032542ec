//! Abandoned uploads: an upload in UploadStarted whose lease lapsed (the process writing it was
//! killed, or stopped, and renews it no more; see [`crate::lease`]) fails with `uploadfailed`,
//! as an upload whose client went away does, and what it staged goes: its staging file or
//! spool is deleted, its S3 multipart upload aborted, by whichever replica's job gets there
//! first.
//!
//! Failing and cleaning up are two steps, so no storage call runs under a row lock: the failing
//! transaction marks the lease as taken (its holder, should it still be alive, finds that at
//! its next renewal and gives up), and the lease row stays until what it names is gone. A job
//! that dies in between leaves the row for the next round; removing what is already gone is no
//! error, so two replicas clearing one lease do no harm.

use super::{BATCH, Lifecycle};
use crate::domain::lifecycle;
use crate::store::{Due, StoreError};

/// Fails every upload whose lease lapsed and clears the leases left; returns how many uploads
/// this replica failed.
pub async fn run(jobs: &Lifecycle) -> Result<usize, StoreError> {
    let mut failed = 0;
    loop {
        let now = jobs.clock.now();
        let settled = jobs
            .store
            .settle_due(Due::Abandoned { now }, BATCH, now, &|transfer| {
                lifecycle::upload_abandoned(transfer, now)
            })
            .await?;
        for transfer in &settled {
            tracing::warn!(id = %transfer.id, "upload abandoned by its process; failed");
            jobs.delete_bytes(transfer.id).await;
        }
        failed += settled.len();
        if settled.len() < BATCH as usize {
            break;
        }
    }
    loop {
        let due = jobs.store.leases_to_clear(jobs.clock.now(), BATCH).await?;
        let mut cleared = 0;
        for (id, staging) in &due {
            match jobs.storage.abandon(staging).await {
                Ok(()) => {
                    jobs.store.lease_cleared(*id).await?;
                    cleared += 1;
                }
                Err(error) => {
                    tracing::warn!(%id, %error, "removing an abandoned upload's staging; will retry");
                }
            }
        }
        // Stop when the batch was short, or when nothing could be removed (storage down).
        if due.len() < BATCH as usize || cleared == 0 {
            return Ok(failed);
        }
    }
}
