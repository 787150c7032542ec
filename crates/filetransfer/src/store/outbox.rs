//! The file-transfer store's outbox as the relay in `broker_common::outbox` sees it.

use std::sync::Arc;

use async_trait::async_trait;
use broker_common::outbox::{OutboxMessage, OutboxSource};

use super::FileTransferStore;

/// Adapts a [`FileTransferStore`] to [`OutboxSource`].
pub struct StoreOutbox(pub Arc<dyn FileTransferStore>);

#[async_trait]
impl OutboxSource for StoreOutbox {
    async fn claim(&self, limit: u32) -> anyhow::Result<Vec<OutboxMessage>> {
        let rows = self
            .0
            .claim_unpublished_outbox(limit, chrono::Utc::now())
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| OutboxMessage::stored(row.id, row.routing_key, row.payload, row.traceparent))
            .collect())
    }

    async fn mark_published(&self, ids: &[String]) -> anyhow::Result<()> {
        self.0
            .mark_outbox_published(ids, chrono::Utc::now())
            .await?;
        Ok(())
    }
}
