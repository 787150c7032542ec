//! The message bus of Broker: one [`Bus`] trait, two implementations.
//!
//! - [`RabbitBus`] (production) publishes to one durable topic exchange with publisher
//!   confirms and consumes with manual acks and bounded prefetch. Shared queues are quorum
//!   queues: they are replicated and fsync'd before the broker confirms a publish, so a
//!   confirmed message survives the loss of a RabbitMQ node, and they redeliver unacked
//!   messages marked as redelivered. Invariant 1 ("nothing acknowledged is lost") needs both.
//! - [`InProcessBus`] (embedded single-process mode) keeps queues in memory. Memory does not
//!   survive a crash, so the database outbox is the only durable copy of an event; for the
//!   outbox to stay correct, [`Bus::publish`] returns only after every matching shared queue's
//!   consumer has *acked* the message (that is, committed its own work). The outbox relay then
//!   marks the row published knowing the event is safe in the consumer's database, which gives
//!   the same guarantee as a publisher confirm from a durable broker.
//!
//! Both route with AMQP topic semantics (`topic.rs` for the in-process matcher) and share one behaviour, proven by
//! the conformance suite in `tests/conformance.rs`:
//! - a [`QueueKind::Shared`] queue is consumed by competing subscribers and keeps messages
//!   while nobody consumes; a [`QueueKind::Exclusive`] queue belongs to one subscriber, so
//!   every exclusive subscriber bound to a key gets every message (broadcast);
//! - a [`Delivery`] that is nacked with `requeue` or dropped without an ack goes back to its
//!   queue and is delivered again with `redelivered == true`; delivery is at least once, so
//!   consumers deduplicate by [`Message::id`].
//!
//! This crate knows nothing of Broker's events; it moves bytes with an id, a routing key and
//! string headers.

#![warn(missing_docs)]

mod in_process;
mod rabbit;
mod topic;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use in_process::InProcessBus;
pub use rabbit::RabbitBus;

/// The longest routing key, pattern, queue name, message id or header name AMQP carries.
const MAX_NAME_LEN: usize = 255;

/// One message on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Stable id that survives redelivery and republishing (AMQP `message_id`); consumers
    /// deduplicate by it.
    pub id: String,
    /// Dot-separated words that bindings are matched against, e.g. `filetransfer.published`.
    pub routing_key: String,
    /// String headers such as the W3C `traceparent` (AMQP headers table).
    pub headers: BTreeMap<String, String>,
    /// The body, opaque to the bus.
    pub payload: Bytes,
}

impl Message {
    /// A message with a fresh time-ordered id (UUID v7) and no headers.
    pub fn new(routing_key: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            routing_key: routing_key.into(),
            headers: BTreeMap::new(),
            payload: payload.into(),
        }
    }

    /// This message with one more header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Rejects what AMQP cannot carry, so both implementations refuse the same messages.
    fn validate(&self) -> Result<(), BusError> {
        check_name("message id", &self.id)?;
        check_name("routing key", &self.routing_key)?;
        self.headers
            .keys()
            .try_for_each(|name| check_name("header name", name))
    }
}

/// Which queue a subscription consumes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueKind {
    /// A durable queue shared by every subscriber with this name (competing consumers);
    /// RabbitMQ: a quorum queue. Messages wait in it while no consumer is connected.
    Shared(String),
    /// A queue of this subscriber alone, gone when it goes: every exclusive subscriber bound
    /// to a key gets every message (broadcast). RabbitMQ: server-named exclusive auto-delete
    /// classic queue.
    Exclusive,
}

/// What to consume: a queue, the patterns it is bound with, and how many unacked deliveries
/// a subscriber may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The queue to declare (if missing) and consume.
    pub queue: QueueKind,
    /// AMQP topic patterns: words separated by `.`, `*` matches one word, `#` zero or more.
    /// Bindings add up: a shared queue keeps every binding any subscriber declared.
    pub bindings: Vec<String>,
    /// Most unacked deliveries this subscriber holds at once; 0 means unlimited (AMQP).
    pub prefetch: u16,
}

impl Subscription {
    /// Rejects what AMQP cannot carry, so both implementations refuse the same subscriptions.
    fn validate(&self) -> Result<(), BusError> {
        if let QueueKind::Shared(name) = &self.queue {
            if name.is_empty() {
                return Err(BusError::Invalid {
                    what: "queue name",
                    reason: "a shared queue needs a name".into(),
                });
            }
            check_name("queue name", name)?;
        }
        self.bindings
            .iter()
            .try_for_each(|pattern| check_name("binding pattern", pattern))
    }
}

/// Fails if `value` is longer than an AMQP short string.
fn check_name(what: &'static str, value: &str) -> Result<(), BusError> {
    if value.len() > MAX_NAME_LEN {
        return Err(BusError::Invalid {
            what,
            reason: format!("{} bytes, at most {MAX_NAME_LEN} allowed", value.len()),
        });
    }
    Ok(())
}

/// A message bus: publish to one topic exchange, subscribe queues bound to it.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Returns once the message is safely with the bus (RabbitMQ: publisher confirm ack;
    /// in-process: acked by every matching shared queue). An error means the caller (an
    /// outbox relay) must retry; the message may still have been delivered (at least once).
    async fn publish(&self, message: Message) -> Result<(), BusError>;

    /// Declares the subscription's queue and bindings and starts consuming it.
    async fn subscribe(&self, subscription: Subscription) -> Result<Subscriber, BusError>;
}

/// A stream of deliveries from one queue.
///
/// Dropping it returns its unacked deliveries to the queue (RabbitMQ: closes its channel).
/// After a RabbitMQ connection loss [`Subscriber::next`] yields one `Some(Err(..))` and then
/// `None`; the consumer should then subscribe again (the bus reconnects on demand) and will
/// receive whatever its shared queue kept meanwhile.
pub struct Subscriber {
    inner: Box<dyn Receive>,
}

impl Subscriber {
    /// The next delivery; `None` once the subscription is closed. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        self.inner.next().await
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").finish_non_exhaustive()
    }
}

/// One received message, to be acked after the consumer's own work is committed.
///
/// Dropping it without [`Delivery::ack`] is a [`Delivery::nack`] with requeue.
pub struct Delivery {
    /// The message as published.
    pub message: Message,
    /// True if this message was handed out before and not acked then.
    pub redelivered: bool,
    settle: Box<dyn Settle>,
}

impl Delivery {
    /// Confirms the message is handled; the bus forgets it.
    pub async fn ack(self) -> Result<(), BusError> {
        self.settle.ack().await
    }

    /// Rejects the message: back to the queue if `requeue`, otherwise discarded.
    pub async fn nack(self, requeue: bool) -> Result<(), BusError> {
        self.settle.nack(requeue).await
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}

/// A boxed error from the implementation underneath (lapin for RabbitMQ).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker could not be reached or the connection dropped; retry later.
    #[error("message broker connection failed: {0}")]
    Connection(#[source] BoxError),
    /// The broker refused an operation (e.g. a queue redeclared with other arguments).
    #[error("message broker refused the operation: {0}")]
    Protocol(#[source] BoxError),
    /// The broker could not take responsibility for a published message; retry later.
    #[error("message broker nacked the published message")]
    Nacked,
    /// The subscription or channel is closed; an unacked delivery will be redelivered.
    #[error("the bus channel is closed")]
    Closed,
    /// In-process: not every matching shared queue acked within the hand-off timeout.
    #[error("no consumer acked the message within {0:?}")]
    HandoffTimeout(Duration),
    /// A name, key or id the bus cannot carry.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which part of the message or subscription.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// How an implementation yields deliveries; behind [`Subscriber`].
#[async_trait]
trait Receive: Send {
    /// See [`Subscriber::next`].
    async fn next(&mut self) -> Option<Result<Delivery, BusError>>;
}

/// How an implementation settles one delivery; behind [`Delivery`]. Implementations requeue
/// in `Drop` when neither method was called.
#[async_trait]
trait Settle: Send {
    /// See [`Delivery::ack`].
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    /// See [`Delivery::nack`].
    async fn nack(self: Box<Self>, requeue: bool) -> Result<(), BusError>;
}
