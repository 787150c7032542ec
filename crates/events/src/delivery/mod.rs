//! Webhook delivery: claiming due deliveries from the store and POSTing them, with retries on
//! the configured schedule and dead letters after the last.
//!
//! **Durability.** A delivery is a row; scheduled retries are rows with a later `next_attempt`,
//! so nothing waits in memory and a restart loses nothing. Rows are claimed with a lease
//! (`claimed_until`), so replicas never send one row at once, and a crashed worker's rows come
//! back when the lease runs out. The lease is twice the POST timeout plus a margin, and a row
//! is only claimed when a slot to send it is free (below), so no claimed row ever waits long
//! enough for its lease to expire. Delivery is at least once: a worker that sent but crashed
//! before recording sends again after the lease.
//!
//! **Latency.** The replica that enqueues wakes its loop at once (a [`Notify`]); the others
//! poll every [`POLL`] while idle, which also picks up retries that fell due. So an event
//! reaches its webhook one store round trip after it was ingested.
//!
//! **Fairness.** Concurrency is bounded overall (`max_in_flight`) and per endpoint URL
//! (`max_per_endpoint`). A slow endpoint must not delay the others, so a claim asks only for
//! as many rows as there are free overall slots, *excludes endpoints whose slots are all
//! taken*, and takes at most `max_per_endpoint` rows of any one endpoint (the store does all
//! three in its claim statement). An endpoint with some slots busy may still get more rows than
//! it has free slots; those few wait in memory under their lease and go out as its slots free,
//! before anything more is claimed for it. (Releasing them to the store instead cost a write
//! per surplus row and held one busy endpoint to a batch per claim round trip: 380
//! deliveries/s.) A row therefore only ever holds an overall slot while it is being sent, and a
//! slow endpoint occupies at most `max_per_endpoint` of them.

pub mod client;
pub mod signing;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use broker_common::Shutdown;
use broker_common::clock::Clock;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::config::DeliverySettings;
use crate::domain::retry::{NextStep, RetrySchedule};
use crate::store::{Delivery, EventStore, Outcome};
use client::WebhookClient;

/// How often an idle loop looks for due rows it was not woken for.
pub const POLL: Duration = Duration::from_millis(250);
/// Pause after a store failure.
const STORE_PAUSE: Duration = Duration::from_secs(1);
/// Most rows claimed at once, so one claim stays a short statement.
const MAX_BATCH: usize = 256;
/// How long shutdown waits for POSTs in flight to finish and be recorded.
const DRAIN: Duration = Duration::from_secs(5);

/// Per endpoint, rows claimed while its slots were taken, with their lease, oldest first.
type Waiting = HashMap<String, VecDeque<(Delivery, DateTime<Utc>)>>;

/// The overall slot and the endpoint slot a send holds until its outcome is recorded.
type Permits = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// The delivery loop and what its sends share.
pub struct Deliverer {
    shared: Arc<Shared>,
    max_per_endpoint: usize,
    max_in_flight: usize,
    wake: Arc<Notify>,
}

struct Shared {
    store: Arc<dyn EventStore>,
    client: WebhookClient,
    clock: Arc<dyn Clock>,
    schedule: RetrySchedule,
    lease: TimeDelta,
    slots: Arc<Semaphore>,
    wake: Arc<Notify>,
}

impl Deliverer {
    /// Delivers from `store` with `client`; `wake` is notified when rows are queued.
    pub fn new(
        store: Arc<dyn EventStore>,
        client: WebhookClient,
        clock: Arc<dyn Clock>,
        settings: &DeliverySettings,
        wake: Arc<Notify>,
    ) -> Self {
        let timeout = TimeDelta::from_std(settings.timeout).unwrap_or(TimeDelta::MAX / 4);
        Self {
            shared: Arc::new(Shared {
                store,
                client,
                clock,
                schedule: settings.retry.clone(),
                lease: timeout * 2 + TimeDelta::seconds(30),
                slots: Arc::new(Semaphore::new(settings.max_in_flight)),
                wake: wake.clone(),
            }),
            max_per_endpoint: settings.max_per_endpoint,
            max_in_flight: settings.max_in_flight,
            wake,
        }
    }

    /// Claims and sends due deliveries until shutdown, then waits briefly for sends in flight.
    pub async fn run(self, shutdown: Shutdown) {
        let mut endpoints: HashMap<String, Arc<Semaphore>> = HashMap::new();
        let mut waiting = Waiting::new();
        while !shutdown.is_triggered() {
            let busy = match self.claim_and_send(&mut endpoints, &mut waiting).await {
                Ok(busy) => busy,
                Err(error) => {
                    tracing::warn!(%error, "claiming deliveries failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(STORE_PAUSE) => {}
                    }
                    continue;
                }
            };
            if busy {
                // A full batch: more may be due at once.
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        // Rows still waiting go back now rather than when their lease runs out.
        for (delivery, lease_until) in waiting.into_values().flatten() {
            if let Err(error) = self.shared.store.release(delivery.id, lease_until).await {
                tracing::warn!(delivery = delivery.id, %error, "releasing a delivery failed");
            }
        }
        let all = u32::try_from(self.max_in_flight).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(DRAIN, self.shared.slots.acquire_many(all)).await;
    }

    /// An endpoint slot and an overall slot, if both are free.
    fn permits(&self, endpoint: &Arc<Semaphore>) -> Option<Permits> {
        let endpoint = endpoint.clone().try_acquire_owned().ok()?;
        let overall = self.shared.slots.clone().try_acquire_owned().ok()?;
        Some((overall, endpoint))
    }

    /// Sends `delivery` on its own task.
    fn spawn_send(&self, delivery: Delivery, lease_until: DateTime<Utc>, permits: Permits) {
        let shared = self.shared.clone();
        tokio::spawn(async move { shared.send(delivery, lease_until, permits).await });
    }

    /// Sends waiting rows whose endpoints have slots again.
    fn start_waiting(&self, endpoints: &HashMap<String, Arc<Semaphore>>, waiting: &mut Waiting) {
        waiting.retain(|end_point, queue| {
            let Some(slots) = endpoints.get(end_point) else {
                return false;
            };
            while !queue.is_empty() {
                let Some(permits) = self.permits(slots) else {
                    break;
                };
                if let Some((delivery, lease_until)) = queue.pop_front() {
                    self.spawn_send(delivery, lease_until, permits);
                }
            }
            !queue.is_empty()
        });
    }

    /// Most rows of one endpoint a claim may take: its slots, at most.
    fn per_endpoint_claim(&self) -> u32 {
        u32::try_from(self.max_per_endpoint).unwrap_or(u32::MAX)
    }

    /// One claim; whether it filled every free slot (so another claim may find more).
    async fn claim_and_send(
        &self,
        endpoints: &mut HashMap<String, Arc<Semaphore>>,
        waiting: &mut Waiting,
    ) -> Result<bool, crate::store::StoreError> {
        self.start_waiting(endpoints, waiting);
        let free = self.shared.slots.available_permits().min(MAX_BATCH);
        if free == 0 {
            return Ok(false);
        }
        // An endpoint with every permit back and nothing waiting has nobody sending to it:
        // forget it, so the map only holds endpoints in use (and a new semaphore can never
        // coexist with old permits).
        endpoints.retain(|end_point, slots| {
            slots.available_permits() < self.max_per_endpoint || waiting.contains_key(end_point)
        });
        // Endpoints with rows already waiting get nothing more until those are out.
        let saturated: Vec<String> = endpoints
            .iter()
            .filter(|(end_point, slots)| {
                slots.available_permits() == 0 || waiting.contains_key(*end_point)
            })
            .map(|(end_point, _)| end_point.clone())
            .collect();
        let now = self.shared.clock.now();
        let lease_until = now + self.shared.lease;
        let limit = u32::try_from(free).unwrap_or(u32::MAX);
        let batch = self
            .shared
            .store
            .claim_due(
                now,
                limit,
                lease_until,
                self.per_endpoint_claim(),
                &saturated,
            )
            .await?;
        let full = batch.len() == free;
        for delivery in batch {
            let endpoint = endpoints
                .entry(delivery.end_point.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.max_per_endpoint)))
                .clone();
            match self.permits(&endpoint) {
                Some(permits) => self.spawn_send(delivery, lease_until, permits),
                None => waiting
                    .entry(delivery.end_point.clone())
                    .or_default()
                    .push_back((delivery, lease_until)),
            }
        }
        Ok(full)
    }
}

impl Shared {
    /// Sends one delivery and records the outcome under its lease, holding its slots.
    async fn send(&self, delivery: Delivery, lease_until: DateTime<Utc>, permits: Permits) {
        let result = self.attempt(&delivery).await;
        let now = self.clock.now();
        let outcome = match result {
            Ok(()) => Outcome::Delivered,
            Err(error) => match self.schedule.after_failure(delivery.attempts + 1, now) {
                NextStep::RetryAt(next_attempt) => Outcome::Retry {
                    next_attempt,
                    error,
                },
                NextStep::DeadLetter => {
                    tracing::warn!(
                        delivery = delivery.id,
                        subscription = delivery.subscription_id,
                        event = %delivery.event.id,
                        %error,
                        "delivery failed for the last time; dead letter"
                    );
                    Outcome::DeadLetter { error }
                }
            },
        };
        match self
            .store
            .record(delivery.id, lease_until, &outcome, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::debug!(
                delivery = delivery.id,
                "the lease ran out or the subscription is gone; outcome not recorded"
            ),
            Err(error) => tracing::warn!(
                delivery = delivery.id,
                %error,
                "recording a delivery failed; it is sent again when its lease runs out"
            ),
        }
        // Held until recorded, so shutdown's drain also waits for the record.
        drop(permits);
        self.wake.notify_one();
    }

    /// One POST of the delivery's CloudEvent, signed when the subscription has a secret.
    async fn attempt(&self, delivery: &Delivery) -> Result<(), String> {
        let body = serde_json::to_string(&delivery.event).map_err(|error| error.to_string())?;
        let headers = match &delivery.signing_secret {
            Some(secret) => signing::headers(
                secret.expose(),
                &delivery.event.id.to_string(),
                self.clock.unix(),
                &body,
            )
            .ok_or_else(|| "the subscription's signing secret is unusable".to_owned())?,
            None => Vec::new(),
        };
        self.client
            .post(&delivery.end_point, body, headers)
            .await
            .map(drop)
            .map_err(|error| {
                tracing::debug!(
                    delivery = delivery.id,
                    subscription = delivery.subscription_id,
                    attempt = delivery.attempts + 1,
                    %error,
                    "delivery attempt failed"
                );
                error.to_string()
            })
    }
}
