//! Stuck work: an upload in UploadStarted for longer than `BROKER_STUCK_UPLOAD_AFTER` (its
//! client went away without the service noticing, or the process died mid-upload), and a
//! transfer in UploadProcessing for longer than `BROKER_STUCK_PROCESSING_AFTER` (no malware
//! verdict came) fail with `uploadfailed`, and whatever bytes were written go.
//!
//! An upload that finishes after it was failed here finds its transfer Failed and deletes the
//! bytes it wrote (the compare-and-set refuses its UploadProcessing).

use super::{BATCH, Lifecycle};
use crate::domain::lifecycle;
use crate::store::{Due, StoreError};

/// Fails every stuck transfer; returns how many this replica failed.
pub async fn run(jobs: &Lifecycle) -> Result<usize, StoreError> {
    let mut failed = 0;
    loop {
        let now = jobs.clock.now();
        let due = Due::Stuck {
            upload_started_before: now - jobs.settings.stuck_upload_after,
            processing_before: now - jobs.settings.stuck_processing_after,
        };
        let settled = jobs
            .store
            .settle_due(due, BATCH, now, &|transfer| {
                lifecycle::fail_stuck(transfer, now)
            })
            .await?;
        for transfer in &settled {
            tracing::info!(id = %transfer.id, "stuck upload failed");
            jobs.delete_bytes(transfer.id).await;
        }
        failed += settled.len();
        if settled.len() < BATCH as usize {
            return Ok(failed);
        }
    }
}
