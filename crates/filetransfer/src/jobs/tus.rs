//! Resumable uploads that will never finish: those of failed transfers (their transfer expired,
//! or its upload failed otherwise), and incomplete ones past their sliding expiry with no PATCH
//! writing them. Their bytes go (staging file or S3 multipart upload, tails, partials' objects),
//! then their rows. The transfer itself is failed by the abandoned-upload job, as its lease
//! (held by `tus`) expires with the upload.

use super::{BATCH, Lifecycle};
use crate::service::resumable;
use crate::store::StoreError;

/// Removes every due upload's bytes and row; returns how many this replica removed.
pub async fn run(jobs: &Lifecycle) -> Result<usize, StoreError> {
    let mut removed = 0;
    loop {
        let due = jobs.store.tus_due(jobs.clock.now(), BATCH).await?;
        let mut cleared = 0;
        for record in &due {
            match jobs.storage.discard_resumable(&resumable(record)).await {
                Ok(()) => {
                    jobs.store
                        .tus_delete(record.transfer_id, &record.part)
                        .await?;
                    cleared += 1;
                }
                Err(error) => tracing::warn!(
                    id = %record.transfer_id, part = record.part, %error,
                    "removing an expired resumable upload; will retry"
                ),
            }
        }
        removed += cleared;
        // Stop when the batch was short, or when nothing could be removed (storage down).
        if due.len() < BATCH as usize || cleared == 0 {
            return Ok(removed);
        }
    }
}
