//! The outbox relay: moves committed outbox rows to the bus.
//!
//! A service writes a state change and its outbox row in one transaction; this loop claims
//! unpublished rows (leased, so replicas never publish the same row at once), publishes each
//! with the bus's confirmation, and only then marks it published. A crash anywhere in between
//! leaves the row to be claimed again: delivery is at least once, with the row's id as the
//! message id so consumers can deduplicate.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use broker_bus::{Bus, Message};

use crate::Shutdown;

/// One row waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Stable id; becomes the message id.
    pub id: String,
    /// Bus routing key.
    pub routing_key: String,
    /// The payload, usually JSON.
    pub payload: String,
    /// Headers such as a W3C `traceparent`.
    pub headers: Vec<(String, String)>,
}

impl OutboxMessage {
    /// A stored row's message: the trace context it was written in becomes its `traceparent`.
    pub fn stored(
        id: String,
        routing_key: String,
        payload: String,
        traceparent: Option<String>,
    ) -> Self {
        let headers = traceparent
            .map(|value| (crate::telemetry::propagation::TRACEPARENT.to_owned(), value))
            .into_iter()
            .collect();
        Self {
            id,
            routing_key,
            payload,
            headers,
        }
    }
}

/// A service's outbox table, as the relay sees it.
#[async_trait]
pub trait OutboxSource: Send + Sync + 'static {
    /// Claims up to `limit` unpublished rows, oldest first.
    async fn claim(&self, limit: u32) -> anyhow::Result<Vec<OutboxMessage>>;
    /// Marks rows as published.
    async fn mark_published(&self, ids: &[String]) -> anyhow::Result<()>;
}

/// The statements of the `outbox` table every service's store keeps (`id`, `routing_key`,
/// `payload`, `created_at`, `claimed_until`, `published_at`, `traceparent`), for PostgreSQL and
/// SQLite alike.
pub mod sql {
    /// Writes one row: `$1` id, `$2` routing key, `$3` payload, `$4` created, `$5` traceparent.
    pub const INSERT: &str =
        "INSERT INTO outbox (id, routing_key, payload, created_at, traceparent)
                              VALUES ($1, $2, $3, $4, $5)";
    /// Claims and leases in one statement, so SQLite never upgrades a read to a write lock;
    /// the lock clause goes inside the sub-select.
    macro_rules! claim {
        ($lock:literal) => {
            concat!(
                "UPDATE outbox SET claimed_until = $3 WHERE id IN (
                   SELECT id FROM outbox
                   WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until <= $1)
                   ORDER BY id LIMIT $2 ",
                $lock,
                ") RETURNING id, routing_key, payload, created_at, traceparent"
            )
        };
    }
    /// Claims up to `$2` rows free at `$1` until `$3`; replicas skip each other's rows.
    pub const CLAIM_POSTGRES: &str = claim!("FOR UPDATE SKIP LOCKED");
    /// The same on SQLite, where one writer at a time needs no row lock.
    pub const CLAIM_SQLITE: &str = claim!("");
    /// Marks row `$1` published at `$2`.
    pub const MARK_PUBLISHED: &str =
        "UPDATE outbox SET published_at = $2 WHERE id = $1 AND published_at IS NULL";
}

/// How often the relay looks for new rows when the last look found none. Short, because
/// decision caches elsewhere must hear of a change within a second.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Rows claimed per round.
const BATCH: u32 = 100;
/// Pause after a failure, so a broken bus or database is not hammered.
const BACKOFF: Duration = Duration::from_secs(1);

/// Runs the relay until shutdown.
pub async fn relay(source: Arc<dyn OutboxSource>, bus: Arc<dyn Bus>, shutdown: Shutdown) {
    loop {
        // A publish waits for the bus to confirm, and the in-process bus confirms only once a
        // consumer acknowledges; on shutdown the consumer may be gone already. A round cut
        // short leaves its unpublished rows claimed, published again after their lease.
        let round = tokio::select! {
            _ = shutdown.cancelled() => return,
            round = relay_once(source.as_ref(), bus.as_ref()) => round,
        };
        let pause = match round {
            Ok(0) => POLL_INTERVAL,
            Ok(_) => Duration::ZERO,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "outbox relay failed; retrying");
                BACKOFF
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Publishes one batch; returns how many rows were published.
pub async fn relay_once(source: &dyn OutboxSource, bus: &dyn Bus) -> anyhow::Result<usize> {
    let rows = source.claim(BATCH).await?;
    let mut published = Vec::with_capacity(rows.len());
    let mut failure = None;
    for row in rows {
        let mut message = Message::new(row.routing_key, row.payload.into_bytes());
        message.id = row.id.clone();
        for (name, value) in row.headers {
            message = message.with_header(name, value);
        }
        let routing_key = message.routing_key.clone();
        match bus.publish(message).await {
            Ok(()) => {
                crate::metrics::bus_published(&routing_key);
                published.push(row.id);
            }
            Err(error) => {
                // Keep order: stop at the first failure; the rest stay claimed until their
                // lease ends and are published on a later round.
                failure = Some(error);
                break;
            }
        }
    }
    if !published.is_empty() {
        source.mark_published(&published).await?;
    }
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(published.len()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use broker_bus::{InProcessBus, QueueKind, Subscription};

    use super::*;

    /// One row that is never marked published.
    struct OneRow(Mutex<Vec<String>>);

    #[async_trait]
    impl OutboxSource for OneRow {
        async fn claim(&self, _limit: u32) -> anyhow::Result<Vec<OutboxMessage>> {
            Ok(vec![OutboxMessage {
                id: "row-1".to_owned(),
                routing_key: "test.waiting".to_owned(),
                payload: "{}".to_owned(),
                headers: Vec::new(),
            }])
        }

        async fn mark_published(&self, ids: &[String]) -> anyhow::Result<()> {
            self.0.lock().unwrap().extend_from_slice(ids);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_relay_waiting_on_an_unconfirmed_publish_stops_at_shutdown() {
        // The in-process bus confirms a publish only once a consumer acknowledges it, and
        // nothing consumes here: the round waits until the shutdown cuts it short.
        let source = Arc::new(OneRow(Mutex::new(Vec::new())));
        let bus = Arc::new(InProcessBus::new());
        let _never_read = bus
            .subscribe(Subscription {
                queue: QueueKind::Shared("stopped-consumer".to_owned()),
                bindings: vec!["test.#".to_owned()],
                prefetch: 1,
            })
            .await
            .expect("subscribing");
        let shutdown = Shutdown::new();
        let relay = tokio::spawn(relay(source.clone(), bus, shutdown.clone()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(2), relay)
            .await
            .expect("the relay stops within 2 s of shutdown")
            .expect("the relay ran");
        assert!(
            source.0.lock().unwrap().is_empty(),
            "an unconfirmed row stays unpublished, to be relayed again"
        );
    }
}
