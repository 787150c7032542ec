//! Purge: Published or AllConfirmedDownloaded transfers whose time to live has passed, and
//! AllConfirmedDownloaded ones whose resource purges after all recipients confirmed, once its
//! grace period has passed, become Purged (`filepurged`, and `fileneverconfirmeddownloaded` to
//! the sender and every recipient that never confirmed) and lose their bytes. The metadata
//! stays, as in Altinn.

use super::{BATCH, Lifecycle};
use crate::domain::lifecycle;
use crate::store::{Due, StoreError};

/// Purges every transfer due now; returns how many this replica purged.
pub async fn run(jobs: &Lifecycle) -> Result<usize, StoreError> {
    let mut purged = 0;
    loop {
        let now = jobs.clock.now();
        let settled = jobs
            .store
            .settle_due(Due::Purge { now }, BATCH, now, &|transfer| {
                lifecycle::purge(transfer, now)
            })
            .await?;
        for transfer in &settled {
            jobs.delete_bytes(transfer.id).await;
        }
        purged += settled.len();
        if settled.len() < BATCH as usize {
            return Ok(purged);
        }
    }
}
