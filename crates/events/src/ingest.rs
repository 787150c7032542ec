//! Turning file-transfer events from the bus into CloudEvents and queued deliveries.
//!
//! Every replica consumes the one shared queue `<exchange>.events.ingest` (a quorum queue on
//! RabbitMQ; `broker.events.ingest` with the default exchange), so each message is handled by
//! one of them. The name follows the exchange so that brokers sharing a RabbitMQ server on
//! different exchanges never take each other's events. A message is acked only after its
//! CloudEvents are appended *and* their deliveries enqueued, in one committed transaction; a
//! crash before the commit leaves it unacked and it comes back. Redelivery is harmless:
//! CloudEvent ids are deterministic, the log ignores an id it has, and enqueueing ignores a pair
//! it has.
//!
//! **Group commit.** Up to `prefetch` messages are handled at once (the bus never hands out
//! more), and so are concurrent `Publish` calls. Each works out its events' subscribers on its
//! own, then hands its events to one committer task, which writes whatever has gathered while
//! its previous transaction committed as the next transaction, and answers each waiter after
//! that commit. So one fsync covers many messages when they arrive faster than commits, and a
//! lone message waits for nothing but its own commit. A transaction's failure fails every
//! message in it; each is requeued, and redelivery makes the retry harmless.
//!
//! **Tracing.** Each message is handled in a span that continues the `traceparent` in its bus
//! headers (the request that caused the event), and that span's `traceparent` is stored with
//! the event, so each delivery attempt can continue the trace.
//!
//! A message that cannot be decoded can never succeed, so it is logged and dropped; a store or
//! registry failure requeues the message after a pause instead. When the bus fails, the
//! consumer subscribes again after a pause, as [`broker_common::changes`] does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use broker_bus::{Bus, QueueKind, Subscription as BusSubscription};
use broker_common::Shutdown;
use broker_common::clock::Clock;
use broker_common::telemetry::propagation;
use broker_common::transfer_event::{BINDING, TransferEvent};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::domain::cloud_event::CloudEvent;
use crate::domain::error::EventsError;
use crate::domain::subscription::resource_id;
use crate::owners::{Ownership, ResourceOwners};
use crate::store::{EventStore, NewEvent, StoreError};

/// The shared queue every replica's ingest consumes, for the bus `exchange`.
pub fn queue_name(exchange: &str) -> String {
    format!("{exchange}.events.ingest")
}
/// Pause before subscribing again after the bus failed, and before requeueing a message whose
/// handling failed (so a store outage does not become a hot loop).
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How long shutdown waits for messages being handled to commit and ack.
const DRAIN: Duration = Duration::from_secs(5);
/// Most events one group commit writes, so one transaction stays short.
const MAX_GROUP: usize = 512;
/// Hand-overs that may queue for the committer before callers wait to hand over; more than the
/// prefetch and the gRPC calls in flight ever need.
const COMMIT_QUEUE: usize = 1024;

/// Events handed to the committer, and who waits for their commit.
struct Waiting {
    events: Vec<NewEvent>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// Appends CloudEvents and enqueues their deliveries.
pub struct Ingest {
    store: Arc<dyn EventStore>,
    owners: Arc<dyn ResourceOwners>,
    public_url: String,
    commits: mpsc::Sender<Waiting>,
}

impl Ingest {
    /// Ingests into `store`, waking `deliveries` when something was queued; CloudEvent sources
    /// are derived from `public_url`. Starts the committer task, which ends with the last
    /// handle, so this must be called within a Tokio runtime.
    pub fn new(
        store: Arc<dyn EventStore>,
        owners: Arc<dyn ResourceOwners>,
        clock: Arc<dyn Clock>,
        public_url: String,
        deliveries: Arc<Notify>,
    ) -> Self {
        let (commits, queue) = mpsc::channel(COMMIT_QUEUE);
        tokio::spawn(commit_in_groups(store.clone(), clock, deliveries, queue));
        Self {
            store,
            owners,
            public_url,
            commits,
        }
    }

    /// Appends `events` (an id already in the log is kept as it is) and enqueues each for every
    /// validated subscription that matches it and whose consumer may receive it, in one
    /// transaction, with the current span's trace; returns once that is committed.
    pub async fn accept(&self, events: &[CloudEvent]) -> Result<(), EventsError> {
        if events.is_empty() {
            return Ok(());
        }
        let traceparent = propagation::current_traceparent();
        let mut batch = Vec::with_capacity(events.len());
        let mut candidates = HashMap::new();
        let mut owners = HashMap::new();
        for event in events {
            if !candidates.contains_key(&event.resource) {
                let found = self.store.validated_subscriptions(&event.resource).await?;
                candidates.insert(event.resource.clone(), found);
            }
            let mut targets = Vec::new();
            for subscription in &candidates[&event.resource] {
                if !subscription.matches(event) {
                    continue;
                }
                // Most subscribers are the event's subject; only others need the owner.
                let allowed = subscription.is_subject_of(event) || {
                    let owner = match owners.get(&event.resource) {
                        Some(owner) => *owner,
                        None => {
                            let owner = self.owner(&event.resource).await?;
                            owners.insert(event.resource.clone(), owner);
                            owner
                        }
                    };
                    let owner = owner.map(|org| org.to_string());
                    subscription.may_receive(event, owner.as_deref())
                };
                if allowed {
                    targets.push(subscription.id);
                } else {
                    tracing::info!(
                        subscription = subscription.id,
                        event = %event.id,
                        "consumer may not receive the event; not delivered"
                    );
                }
            }
            batch.push(NewEvent {
                event: event.clone(),
                traceparent: traceparent.clone(),
                subscriptions: targets,
            });
        }
        let (done, committed) = oneshot::channel();
        let waiting = Waiting {
            events: batch,
            done,
        };
        // Either fails only if the committer is gone, which only a panic does.
        self.commits
            .send(waiting)
            .await
            .map_err(|_| EventsError::Unavailable)?;
        committed.await.map_err(|_| EventsError::Unavailable)??;
        Ok(())
    }

    async fn owner(
        &self,
        resource: &str,
    ) -> Result<Option<broker_common::identity::OrgNumber>, EventsError> {
        let Some(id) = resource_id(resource) else {
            return Ok(None);
        };
        Ok(match self.owners.ownership(id).await? {
            Ownership::Owned(owner) => owner,
            Ownership::Unknown => None,
        })
    }

    /// Handles one bus message in a span continuing the trace in its headers.
    async fn handle(&self, delivery: broker_bus::Delivery) {
        let span = tracing::info_span!(
            "ingest",
            otel.name = "events.ingest",
            otel.kind = "consumer",
            messaging.message.id = %delivery.message.id,
            messaging.destination.name = %delivery.message.routing_key,
        );
        propagation::continue_from_map(&span, &delivery.message.headers);
        self.settle(delivery).instrument(span).await;
    }

    /// Ingests one bus message: ack after commit, drop if undecodable, requeue on failure.
    async fn settle(&self, delivery: broker_bus::Delivery) {
        let message_id = delivery.message.id.clone();
        let event: TransferEvent = match serde_json::from_slice(&delivery.message.payload) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(
                    message = %message_id,
                    routing_key = %delivery.message.routing_key,
                    %error,
                    "undecodable file-transfer event; dropped"
                );
                if let Err(error) = delivery.nack(false).await {
                    tracing::warn!(%error, "dropping an undecodable event failed");
                }
                return;
            }
        };
        let events = CloudEvent::from_transfer_event(&event, &self.public_url);
        match self.accept(&events).await {
            Ok(()) => {
                if let Err(error) = delivery.ack().await {
                    // The work is committed; the redelivery this causes is harmless.
                    tracing::warn!(message = %message_id, %error, "acking an ingested event failed");
                }
            }
            Err(error) => {
                tracing::warn!(message = %message_id, %error, "ingesting an event failed; requeued");
                tokio::time::sleep(RETRY_PAUSE).await;
                if let Err(error) = delivery.nack(true).await {
                    tracing::warn!(%error, "requeueing an event failed; it returns anyway");
                }
            }
        }
    }
}

/// Writes what callers of [`Ingest::accept`] hand over, in groups: everything that gathered
/// while the previous transaction committed (up to [`MAX_GROUP`] events) goes into the next,
/// and each caller hears after that commit. Ends when every [`Ingest`] handle is gone.
async fn commit_in_groups(
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    deliveries: Arc<Notify>,
    mut queue: mpsc::Receiver<Waiting>,
) {
    while let Some(first) = queue.recv().await {
        let mut size = first.events.len();
        let mut group = vec![first];
        while size < MAX_GROUP {
            let Ok(next) = queue.try_recv() else {
                break;
            };
            size += next.events.len();
            group.push(next);
        }
        let events: Vec<NewEvent> = group
            .iter_mut()
            .flat_map(|waiting| std::mem::take(&mut waiting.events))
            .collect();
        let result = store.append(&events, clock.now()).await;
        let answer = match result {
            Ok(appended) => {
                tracing::debug!(
                    events = appended.events,
                    deliveries = appended.deliveries,
                    handed_over = group.len(),
                    "group committed"
                );
                if appended.deliveries > 0 {
                    deliveries.notify_one();
                }
                Ok(())
            }
            Err(error) => Err(Arc::new(error)),
        };
        for waiting in group {
            // A caller that stopped waiting (its task aborted at shutdown) needs no answer.
            let _ = waiting.done.send(answer.clone().map_err(StoreError::Batch));
        }
    }
}

/// Consumes file-transfer events from `queue` on `bus` into `ingest` until shutdown.
pub async fn consume(
    ingest: Arc<Ingest>,
    bus: Arc<dyn Bus>,
    queue: String,
    prefetch: u16,
    shutdown: Shutdown,
) {
    let mut handling = JoinSet::new();
    while !shutdown.is_triggered() {
        let subscription = BusSubscription {
            queue: QueueKind::Shared(queue.clone()),
            bindings: vec![BINDING.to_owned()],
            prefetch,
        };
        match bus.subscribe(subscription).await {
            Ok(mut subscriber) => loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    Some(_) = handling.join_next(), if !handling.is_empty() => continue,
                    next = subscriber.next() => next,
                };
                match next {
                    Some(Ok(delivery)) => {
                        let ingest = ingest.clone();
                        handling.spawn(async move { ingest.handle(delivery).await });
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "ingest subscription failed; subscribing again");
                        break;
                    }
                    None => break,
                }
            },
            Err(error) => {
                tracing::warn!(%error, "cannot subscribe to file-transfer events; retrying")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(RETRY_PAUSE) => {}
        }
    }
    // Let messages being handled commit and ack; what does not finish is requeued by the bus.
    if tokio::time::timeout(DRAIN, async {
        while handling.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        handling.abort_all();
    }
}
