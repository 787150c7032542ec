//! Persistence of the event service: one trait, implemented for PostgreSQL and SQLite.
//!
//! Both implementations share their SQL (see [`sql`]): times are Unix milliseconds, JSON is
//! TEXT and parameters are written `$n`. The event log is append-only and keyed by the
//! CloudEvent id, so a redelivered bus message cannot add a second event; deliveries are keyed
//! by (event, subscription), so re-enqueueing is harmless. An event and its deliveries are
//! written in one transaction, and so are many events at once: every commit is an fsync, so the
//! writes that run often ([`EventStore::append`], [`EventStore::record`]) take batches. Due
//! deliveries are claimed with a lease, so concurrent delivery workers (and replicas) never send
//! the same row at once, and a crashed worker's rows come back when the lease runs out.
//! Validation handshakes are leased the same way, on the subscription row itself, so they too
//! survive restarts.

mod sql;

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use postgres::PostgresEventStore;
pub use sqlite::SqliteEventStore;

use crate::delivery::signing::SigningSecret;
use crate::domain::cloud_event::CloudEvent;
use crate::domain::subscription::{Subscription, SubscriptionRequest};

/// A store failure; never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back, or a value cannot be stored.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A transaction shared with other writers failed; each of them gets the cause.
    #[error("{0}")]
    Batch(Arc<StoreError>),
}

/// An event to append, with the subscriptions it is queued for and the trace it came in on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The event, as subscribers get it.
    pub event: CloudEvent,
    /// The W3C `traceparent` of the span that ingested it, which its deliveries continue.
    pub traceparent: Option<String>,
    /// The subscriptions to deliver it to.
    pub subscriptions: Vec<i64>,
}

/// What an append added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Appended {
    /// Events that were not in the log yet.
    pub events: usize,
    /// Deliveries that were not queued yet.
    pub deliveries: usize,
}

/// A page of the event log for pull, as Altinn's `getevents` selects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullQuery {
    /// `urn:altinn:resource:<id>`, exact.
    pub resource: String,
    /// The id of the last event the caller saw; an id not in the log starts at the beginning.
    pub after: String,
    /// At most this many events.
    pub size: u32,
    /// Only events with this subject.
    pub subject: Option<String>,
    /// Only events whose type matches one of these SQL `LIKE` patterns (`%` any text, `_` any
    /// character, `\` escaping either); every type when empty.
    pub types: Vec<String>,
}

/// A subscription to create; the store assigns the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// The validated request.
    pub request: SubscriptionRequest,
    /// The owner, named as Altinn names callers.
    pub consumer: String,
    /// The organisation number the owner acts for.
    pub consumer_org: String,
    /// The creator.
    pub created_by: String,
    /// When; the first validation handshake is due then.
    pub created: DateTime<Utc>,
    /// The Standard Webhooks secret (`whsec_…`) to sign deliveries with, if asked for.
    pub signing_secret: Option<SigningSecret>,
}

/// A subscription whose validation handshake is due, leased to one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingValidation {
    /// The subscription.
    pub subscription: Subscription,
    /// Handshakes attempted before this one.
    pub attempts: u32,
}

/// What a validation handshake came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationOutcome {
    /// The endpoint answered 2xx: the subscription is validated.
    Validated,
    /// It failed; try again then.
    RetryAt(DateTime<Utc>),
    /// It failed and no tries are left: the subscription stays unvalidated for good.
    GiveUp,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// An attempt succeeded.
    Delivered,
    /// Every attempt failed; waits for an operator.
    Dead,
}

impl DeliveryState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// One event for one subscription, with what sending it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The delivery's id.
    pub id: i64,
    /// The subscription.
    pub subscription_id: i64,
    /// Where to POST.
    pub end_point: String,
    /// What to POST.
    pub event: CloudEvent,
    /// Attempts made so far.
    pub attempts: u32,
    /// Where it stands.
    pub state: DeliveryState,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it last changed (for a dead letter: when it died).
    pub updated: DateTime<Utc>,
    /// The subscription's signing secret, if it signs deliveries.
    pub signing_secret: Option<SigningSecret>,
    /// The `traceparent` its event was ingested under, if it was traced.
    pub traceparent: Option<String>,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// It failed; try again at `next_attempt`.
    Retry {
        /// When to try again.
        next_attempt: DateTime<Utc>,
        /// Why it failed.
        error: String,
    },
    /// It failed and no tries are left.
    DeadLetter {
        /// Why it failed.
        error: String,
    },
}

/// One attempt of a delivery claimed with `lease_until`, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The delivery.
    pub delivery: i64,
    /// The lease it was claimed with.
    pub lease_until: DateTime<Utc>,
    /// What the attempt came to.
    pub outcome: Outcome,
    /// When.
    pub at: DateTime<Utc>,
}

/// The event service's persistence.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends events and queues each for its subscriptions, due at `at`, all in one
    /// transaction; an id already in the log is left as it is, and so is a pair already queued
    /// or a subscription that no longer exists.
    async fn append(&self, events: &[NewEvent], at: DateTime<Utc>) -> Result<Appended, StoreError>;
    /// One event by id.
    async fn event(&self, id: Uuid) -> Result<Option<CloudEvent>, StoreError>;
    /// A page of a resource's events in append order.
    async fn pull(&self, query: &PullQuery) -> Result<Vec<CloudEvent>, StoreError>;

    /// Stores a new, unvalidated subscription.
    async fn create_subscription(
        &self,
        subscription: &NewSubscription,
    ) -> Result<Subscription, StoreError>;
    /// The subscription `new` would duplicate, as Altinn's `find_subscription` finds it: the
    /// same resource, source, subject and type filters (absent matching absent), consumer,
    /// endpoint and `includeSubunits`, and (Broker's extension) signed the same way.
    async fn find_subscription(
        &self,
        new: &NewSubscription,
    ) -> Result<Option<Subscription>, StoreError>;
    /// Makes a subscription's validation handshake due again at `at`, with fresh attempts, as
    /// Altinn sends a duplicate's handshake again; whether it exists. A validated subscription
    /// stays validated whatever the handshake answers.
    async fn rearm_validation(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// One subscription.
    async fn subscription(&self, id: i64) -> Result<Option<Subscription>, StoreError>;
    /// A consumer's subscriptions, oldest first.
    async fn subscriptions_of(&self, consumer: &str) -> Result<Vec<Subscription>, StoreError>;
    /// The validated subscriptions of a resource, the candidates for its events.
    async fn validated_subscriptions(
        &self,
        resource: &str,
    ) -> Result<Vec<Subscription>, StoreError>;
    /// Deletes a subscription and its deliveries; whether it existed.
    async fn delete_subscription(&self, id: i64) -> Result<bool, StoreError>;
    /// Marks a subscription validated; whether it exists.
    async fn mark_validated(&self, id: i64) -> Result<bool, StoreError>;

    /// Leases pending deliveries due at `now` until `lease_until`, oldest due first: of the
    /// first `limit` due rows (leaving out those whose endpoint is in `exclude_endpoints`), at
    /// most `per_endpoint` for any one endpoint.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease_until: DateTime<Utc>,
        per_endpoint: u32,
        exclude_endpoints: &[String],
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Gives back a delivery claimed with `lease_until` without attempting it, so any worker
    /// may claim it again at once; whether that lease still held it.
    async fn release(&self, delivery: i64, lease_until: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Records attempts in one transaction; for each, whether its lease still held the delivery
    /// (a worker whose lease ran out and was claimed again records nothing).
    async fn record(&self, attempts: &[Attempt]) -> Result<Vec<bool>, StoreError>;
    /// How many deliveries wait to be attempted (pending, including those being sent).
    async fn pending_count(&self) -> Result<u64, StoreError>;
    /// Up to `limit` dead letters with ids above `after`, oldest first.
    async fn dead_letters(&self, after: i64, limit: u32) -> Result<Vec<Delivery>, StoreError>;
    /// Makes a dead letter pending again with fresh attempts, due at `at`; whether it was dead.
    async fn redrive(&self, delivery: i64, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Makes every dead letter pending again, due at `at`; how many there were.
    async fn redrive_all(&self, at: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Leases up to `limit` subscriptions whose validation handshake is due at `now` until
    /// `lease_until`.
    async fn claim_validations(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<PendingValidation>, StoreError>;
    /// Records a handshake attempt of a subscription (a failure leaves a validated one
    /// validated); whether it still exists.
    async fn record_validation(
        &self,
        subscription: i64,
        outcome: ValidationOutcome,
    ) -> Result<bool, StoreError>;
}
