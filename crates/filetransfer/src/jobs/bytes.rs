//! The byte sweep: transfers that reached Purged or Failed more than [`SETTLE`] ago and whose
//! bytes are still marked as present (the deletion after the transition failed, or the
//! process stopped before it) have them deleted now. Deleting what is already gone is no
//! error, so two replicas sweeping the same transfer do no harm.

use chrono::TimeDelta;

use super::{BATCH, Lifecycle};
use crate::store::StoreError;

/// How long the job or request that failed or purged a transfer has to delete its bytes itself
/// before the sweep does.
pub const SETTLE: TimeDelta = TimeDelta::minutes(1);

/// Deletes leftover bytes; returns for how many transfers.
pub async fn run(jobs: &Lifecycle) -> Result<usize, StoreError> {
    let mut swept = 0;
    loop {
        let before = jobs.clock.now() - SETTLE;
        let due = jobs.store.bytes_to_delete(before, BATCH).await?;
        let mut deleted = 0;
        for id in &due {
            if jobs.delete_bytes(*id).await {
                deleted += 1;
            }
        }
        swept += deleted;
        // Stop when the batch was short, or when nothing could be deleted (storage down).
        if due.len() < BATCH as usize || deleted == 0 {
            return Ok(swept);
        }
    }
}
