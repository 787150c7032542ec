//! Webhook delivery: claiming due deliveries from the store and POSTing them, with retries on
//! the configured schedule and dead letters after the last.
//!
//! **Durability.** A delivery is a row; scheduled retries are rows with a later `next_attempt`,
//! so nothing waits in memory and a restart loses nothing. Rows are claimed with a lease
//! (`claimed_until`), so replicas never send one row at once, and a crashed worker's rows come
//! back when the lease runs out. The lease is twice the POST timeout plus a margin, and a row
//! is only claimed when a slot to send it is free (below), so no claimed row ever waits long
//! enough for its lease to expire. Delivery is at least once: a worker that sent but crashed
//! before recording sends again after the lease, with the same event id.
//!
//! **Recording in batches.** Each outcome would otherwise be a commit (an fsync) of its own, and
//! on SQLite those are serial: they capped one endpoint at ~350 deliveries/s. So sends hand
//! their outcomes to one recorder task, which gathers them for up to [`RECORD_WINDOW`] (or
//! [`RECORD_BATCH`] of them) and records them in one transaction. A row stays leased until its
//! outcome is recorded, so it cannot be claimed twice meanwhile; the endpoint's slot is free as
//! soon as the POST is answered, while the overall slot is held until the record commits, so
//! shutdown's drain (which takes every overall slot) also waits for the last batch.
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
//! deliveries/s.) A row therefore only ever holds an overall slot while it is being sent and
//! recorded, and a slow endpoint occupies at most `max_per_endpoint` of them.
//!
//! **Tracing and metrics.** Each attempt runs in an `events.deliver` span continuing the trace
//! its event was ingested under, and the POST carries that span's `traceparent`, so the
//! subscriber's own tracing joins the trace. Each outcome is counted, and the queue's length is
//! counted at most once per [`QUEUE_COUNT`].

pub mod client;
pub mod signing;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use broker_common::Shutdown;
use broker_common::clock::Clock;
use broker_common::metrics::{self, DeliveryOutcome};
use broker_common::telemetry::propagation;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::HeaderMap;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tracing::Instrument;

use crate::config::DeliverySettings;
use crate::domain::retry::{NextStep, RetrySchedule};
use crate::store::{Attempt, Delivery, EventStore, Outcome};
use client::WebhookClient;

/// How often an idle loop looks for due rows it was not woken for.
pub const POLL: Duration = Duration::from_millis(250);
/// Pause after a store failure.
const STORE_PAUSE: Duration = Duration::from_secs(1);
/// Most rows claimed at once, so one claim stays a short statement.
const MAX_BATCH: usize = 256;
/// How long shutdown waits for POSTs in flight to finish and be recorded.
const DRAIN: Duration = Duration::from_secs(5);
/// How long the recorder gathers outcomes after the first before recording them together.
const RECORD_WINDOW: Duration = Duration::from_millis(5);
/// Most outcomes recorded in one transaction.
const RECORD_BATCH: usize = 256;
/// How often the queue gauge is brought up to date.
const QUEUE_COUNT: Duration = Duration::from_secs(1);

/// Per endpoint, rows claimed while its slots were taken, with their lease, oldest first.
type Waiting = HashMap<String, VecDeque<(Delivery, DateTime<Utc>)>>;

/// Where the last claim may have left due rows behind, so the loop knows whether another claim
/// can find any. A claim that leaves busy endpoints out has to read past all of their due rows,
/// so with a backlog it is the costly one; it is only made when rows may be due elsewhere,
/// never merely because a send finished.
struct Unclaimed {
    /// Rows were queued, a poll fell due, or the last claim was full.
    anywhere: bool,
    /// Endpoints the last claim gave their most rows, which may have more.
    capped: HashSet<String>,
}

/// The overall slot (held until the outcome is recorded) and the endpoint slot (held while
/// the POST is out) of a send.
type Permits = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// An outcome waiting for the recorder, with the overall slot it holds until recorded.
struct Unrecorded {
    attempt: Attempt,
    slot: OwnedSemaphorePermit,
}

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
    /// Notified when a send frees its endpoint slot or a record frees overall slots.
    freed: Arc<Notify>,
    /// To the recorder; unbounded because each outcome holds an overall slot, which bounds them.
    record: mpsc::UnboundedSender<Unrecorded>,
}

impl Deliverer {
    /// Delivers from `store` with `client`; `wake` is notified when rows are queued. Starts the
    /// recorder task, which ends with the last send, so this must be called within a Tokio
    /// runtime.
    pub fn new(
        store: Arc<dyn EventStore>,
        client: WebhookClient,
        clock: Arc<dyn Clock>,
        settings: &DeliverySettings,
        wake: Arc<Notify>,
    ) -> Self {
        let timeout = TimeDelta::from_std(settings.timeout).unwrap_or(TimeDelta::MAX / 4);
        let (record, outcomes) = mpsc::unbounded_channel();
        let freed = Arc::new(Notify::new());
        tokio::spawn(record_in_batches(store.clone(), freed.clone(), outcomes));
        Self {
            shared: Arc::new(Shared {
                store,
                client,
                clock,
                schedule: settings.retry.clone(),
                lease: timeout * 2 + TimeDelta::seconds(30),
                slots: Arc::new(Semaphore::new(settings.max_in_flight)),
                freed,
                record,
            }),
            max_per_endpoint: settings.max_per_endpoint,
            max_in_flight: settings.max_in_flight,
            wake,
        }
    }

    /// Claims and sends due deliveries until shutdown, then waits briefly for sends in flight
    /// and their records.
    pub async fn run(self, shutdown: Shutdown) {
        let gauge = tokio::spawn(count_queue(self.shared.store.clone(), shutdown.clone()));
        let mut endpoints: HashMap<String, Arc<Semaphore>> = HashMap::new();
        let mut waiting = Waiting::new();
        let mut unclaimed = Unclaimed {
            anywhere: true,
            capped: HashSet::new(),
        };
        // An interval rather than a sleep per wait, so that sends finishing all the time do
        // not keep postponing the poll.
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !shutdown.is_triggered() {
            match self
                .claim_and_send(&mut endpoints, &mut waiting, &mut unclaimed)
                .await
            {
                // A full batch: more may be due at once.
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "claiming deliveries failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(STORE_PAUSE) => {}
                    }
                    continue;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => unclaimed.anywhere = true,
                _ = poll.tick() => unclaimed.anywhere = true,
                _ = self.shared.freed.notified() => {}
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
        let _ = gauge.await;
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

    /// Starts waiting rows, then claims if a claim may find rows it could send now, noting in
    /// `unclaimed` what it may have left behind; whether it claimed every free slot's worth.
    async fn claim_and_send(
        &self,
        endpoints: &mut HashMap<String, Arc<Semaphore>>,
        waiting: &mut Waiting,
        unclaimed: &mut Unclaimed,
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
        let worth_it = saturated.is_empty()
            || unclaimed.anywhere
            || unclaimed
                .capped
                .iter()
                .any(|end_point| !saturated.contains(end_point));
        if !worth_it {
            return Ok(false);
        }
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
        unclaimed.anywhere = full;
        let mut per_endpoint: HashMap<&str, usize> = HashMap::new();
        for delivery in &batch {
            *per_endpoint.entry(&delivery.end_point).or_default() += 1;
        }
        unclaimed.capped = per_endpoint
            .into_iter()
            .filter(|(_, rows)| *rows >= self.max_per_endpoint)
            .map(|(end_point, _)| end_point.to_owned())
            .collect();
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
    /// Sends one delivery in its own span and hands the outcome to the recorder, freeing the
    /// endpoint slot as soon as the POST is answered.
    async fn send(&self, delivery: Delivery, lease_until: DateTime<Utc>, permits: Permits) {
        let (slot, endpoint_slot) = permits;
        let span = tracing::info_span!(
            "deliver",
            otel.name = "events.deliver",
            otel.kind = "producer",
            otel.status_code = tracing::field::Empty,
            subscription = delivery.subscription_id,
            event = %delivery.event.id,
            delivery = delivery.id,
            attempt = delivery.attempts + 1,
        );
        if let Some(traceparent) = &delivery.traceparent {
            propagation::continue_from_traceparent(&span, traceparent);
        }
        let result = self.attempt(&delivery).instrument(span.clone()).await;
        drop(endpoint_slot);
        let now = self.clock.now();
        let outcome = match result {
            Ok(()) => Outcome::Delivered,
            Err(error) => {
                span.record("otel.status_code", "error");
                match self.schedule.after_failure(delivery.attempts + 1, now) {
                    NextStep::RetryAt(next_attempt) => Outcome::Retry {
                        next_attempt,
                        error,
                    },
                    NextStep::DeadLetter => {
                        tracing::warn!(
                            parent: &span,
                            delivery = delivery.id,
                            subscription = delivery.subscription_id,
                            event = %delivery.event.id,
                            %error,
                            "delivery failed for the last time; dead letter"
                        );
                        Outcome::DeadLetter { error }
                    }
                }
            }
        };
        metrics::event_delivery(match outcome {
            Outcome::Delivered => DeliveryOutcome::Delivered,
            Outcome::Retry { .. } => DeliveryOutcome::Retry,
            Outcome::DeadLetter { .. } => DeliveryOutcome::DeadLettered,
        });
        let attempt = Attempt {
            delivery: delivery.id,
            lease_until,
            outcome,
            at: now,
        };
        if self.record.send(Unrecorded { attempt, slot }).is_err() {
            // Only after shutdown's drain gave up on this send.
            tracing::debug!(
                delivery = delivery.id,
                "the recorder has stopped; the delivery is sent again when its lease runs out"
            );
        }
        // The endpoint slot is free: its waiting rows may go out.
        self.freed.notify_one();
    }

    /// One POST of the delivery's CloudEvent, signed when the subscription has a secret, with
    /// the current span's trace context.
    async fn attempt(&self, delivery: &Delivery) -> Result<(), String> {
        let body = serde_json::to_string(&delivery.event).map_err(|error| error.to_string())?;
        let mut headers = HeaderMap::new();
        propagation::inject_headers(&mut headers);
        if let Some(secret) = &delivery.signing_secret {
            headers.extend(
                signing::headers(
                    secret.expose(),
                    &delivery.event.id.to_string(),
                    self.clock.unix(),
                    &body,
                )
                .ok_or_else(|| "the subscription's signing secret is unusable".to_owned())?,
            );
        }
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

/// Records outcomes from `queue` in batches: after the first, gathers more for up to
/// [`RECORD_WINDOW`] or [`RECORD_BATCH`] of them, records them in one transaction, then frees
/// their overall slots and tells the loop. Ends when every sender is gone.
async fn record_in_batches(
    store: Arc<dyn EventStore>,
    freed: Arc<Notify>,
    mut queue: mpsc::UnboundedReceiver<Unrecorded>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        let window = tokio::time::sleep(RECORD_WINDOW);
        tokio::pin!(window);
        while batch.len() < RECORD_BATCH {
            tokio::select! {
                next = queue.recv() => match next {
                    Some(next) => batch.push(next),
                    None => break,
                },
                _ = &mut window => break,
            }
        }
        let (attempts, slots): (Vec<Attempt>, Vec<OwnedSemaphorePermit>) = batch
            .into_iter()
            .map(|unrecorded| (unrecorded.attempt, unrecorded.slot))
            .unzip();
        match store.record(&attempts).await {
            Ok(held) => {
                for (attempt, _) in attempts.iter().zip(held).filter(|(_, held)| !held) {
                    tracing::debug!(
                        delivery = attempt.delivery,
                        "the lease ran out or the subscription is gone; outcome not recorded"
                    );
                }
            }
            Err(error) => tracing::warn!(
                deliveries = attempts.len(),
                %error,
                "recording deliveries failed; they are sent again when their leases run out"
            ),
        }
        drop(slots);
        freed.notify_one();
    }
}

/// Keeps the queue gauge current, counting at most once per [`QUEUE_COUNT`], until shutdown.
async fn count_queue(store: Arc<dyn EventStore>, shutdown: Shutdown) {
    while !shutdown.is_triggered() {
        match store.pending_count().await {
            Ok(waiting) => {
                metrics::set_event_delivery_queue(i64::try_from(waiting).unwrap_or(i64::MAX))
            }
            Err(error) => tracing::debug!(%error, "counting waiting deliveries failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(QUEUE_COUNT) => {}
        }
    }
}
