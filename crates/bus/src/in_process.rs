//! The in-process bus of the embedded mode: queues in memory, topic routing, competing
//! consumers, prefetch and redelivery, with no broker to run.
//!
//! Memory does not survive a crash, so this bus must never be the only holder of an event
//! the outbox relay thinks is delivered. [`Bus::publish`] therefore resolves only when every
//! matching shared queue has had the message *acked* (the consumer committed its work); the
//! relay marks the outbox row published after that. If no consumer acks within the hand-off
//! timeout (none connected, or too slow), publish fails so the relay retries later, and the
//! message is withdrawn from any queue that still holds it, so a queue without consumers does
//! not fill up with copies. Exclusive (broadcast) queues are fed but never waited for: they
//! carry cache invalidations, which are lost with the process anyway.
//!
//! As in RabbitMQ, a queue pushes messages to its consumers round-robin, each up to its
//! prefetch, through a channel per consumer; whatever sits in that channel counts as unacked.
//! A nacked or dropped delivery, and whatever a departing subscriber had not received yet,
//! goes back to the front of the queue marked redelivered, and is dispatched again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use crate::topic::Pattern;
use crate::{
    Bus, BusError, Delivery, Message, QueueKind, Receive, Settle, Subscriber, Subscription,
};

/// How long [`InProcessBus::new`] lets publish wait for consumers to ack.
const DEFAULT_HANDOFF_TIMEOUT: Duration = Duration::from_secs(30);

/// The message bus of the embedded single-process mode; see the module docs.
#[derive(Debug)]
pub struct InProcessBus {
    topology: Arc<Mutex<Topology>>,
    handoff_timeout: Duration,
}

impl InProcessBus {
    /// A bus whose publish waits up to 30 s for consumers to ack.
    pub fn new() -> Self {
        Self::with_handoff_timeout(DEFAULT_HANDOFF_TIMEOUT)
    }

    /// A bus whose publish fails with [`BusError::HandoffTimeout`] if a matching shared queue
    /// has not acked within `timeout`.
    pub fn with_handoff_timeout(timeout: Duration) -> Self {
        Self {
            topology: Arc::default(),
            handoff_timeout: timeout,
        }
    }

    /// Puts a copy of `message` on every queue it routes to; returns one receipt per shared
    /// queue, resolved when that queue's consumer acks.
    fn route(&self, message: &Message) -> Vec<oneshot::Receiver<()>> {
        let topology = lock(&self.topology);
        let mut receipts = Vec::new();
        for binding in topology.shared.values() {
            if binding.routes(&message.routing_key) {
                let (receipt, acked) = oneshot::channel();
                binding
                    .queue
                    .push(Envelope::new(message.clone(), Some(receipt)));
                receipts.push(acked);
            }
        }
        for binding in topology.exclusive.values() {
            if binding.routes(&message.routing_key) {
                binding.queue.push(Envelope::new(message.clone(), None));
            }
        }
        receipts
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, message: Message) -> Result<(), BusError> {
        message.validate()?;
        let receipts = self.route(&message);
        // Dropping the receipts on timeout marks the copies abandoned: queues discard them.
        match tokio::time::timeout(
            self.handoff_timeout,
            futures::future::try_join_all(receipts),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(oneshot::error::RecvError { .. })) => Err(BusError::Closed),
            Err(_elapsed) => Err(BusError::HandoffTimeout(self.handoff_timeout)),
        }
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<Subscriber, BusError> {
        subscription.validate()?;
        let patterns: Vec<Pattern> = subscription
            .bindings
            .iter()
            .map(|p| Pattern::new(p))
            .collect();
        let (queue, membership) = {
            let mut topology = lock(&self.topology);
            match subscription.queue {
                QueueKind::Shared(name) => {
                    let binding = topology.shared.entry(name).or_default();
                    binding.bind(patterns);
                    (Arc::clone(&binding.queue), None)
                }
                QueueKind::Exclusive => {
                    let id = topology.next_exclusive;
                    topology.next_exclusive += 1;
                    let mut binding = Binding::default();
                    binding.bind(patterns);
                    let queue = Arc::clone(&binding.queue);
                    topology.exclusive.insert(id, binding);
                    (queue, Some(id))
                }
            }
        };
        let membership = membership.map(|id| ExclusiveMembership {
            topology: Arc::clone(&self.topology),
            id,
        });
        Ok(Subscriber {
            inner: Box::new(queue.attach(subscription.prefetch, membership)),
        })
    }
}

/// Every queue and what it is bound with; locked before any queue's own lock.
#[derive(Debug, Default)]
struct Topology {
    shared: HashMap<String, Binding>,
    exclusive: HashMap<u64, Binding>,
    next_exclusive: u64,
}

/// A queue and the patterns that route messages to it.
#[derive(Debug, Default)]
struct Binding {
    patterns: Vec<Pattern>,
    queue: Arc<Queue>,
}

impl Binding {
    /// Adds patterns not bound yet; bindings accumulate as in AMQP.
    fn bind(&mut self, patterns: Vec<Pattern>) {
        for pattern in patterns {
            if !self.patterns.contains(&pattern) {
                self.patterns.push(pattern);
            }
        }
    }

    /// Whether a message with this routing key goes to this queue.
    fn routes(&self, routing_key: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(routing_key))
    }
}

/// One queue: messages waiting, and the consumers they are handed to.
#[derive(Debug, Default)]
struct Queue {
    state: Mutex<QueueState>,
}

impl Queue {
    /// Appends a fresh message, discarding copies whose publisher gave up.
    fn push(&self, envelope: Envelope) {
        let mut state = lock(&self.state);
        state.ready.retain(|e| !e.abandoned());
        state.ready.push_back(envelope);
        state.dispatch();
    }

    /// Adds a consumer that may hold `prefetch` unacked deliveries (0: unlimited).
    fn attach(
        self: &Arc<Self>,
        prefetch: u16,
        membership: Option<ExclusiveMembership>,
    ) -> Consumer {
        let (outbox, deliveries) = mpsc::unbounded_channel();
        let mut state = lock(&self.state);
        let id = state.next_consumer_id;
        state.next_consumer_id += 1;
        state.consumers.push(ConsumerSlot {
            id,
            limit: usize::from(prefetch),
            unacked: 0,
            outbox,
        });
        state.dispatch();
        Consumer {
            queue: Arc::clone(self),
            id,
            deliveries,
            _membership: membership,
        }
    }
}

/// The mutable part of a [`Queue`], under its lock.
#[derive(Debug, Default)]
struct QueueState {
    /// Oldest first; requeued messages go back to the front.
    ready: VecDeque<Envelope>,
    consumers: Vec<ConsumerSlot>,
    /// Index in `consumers` to offer the next message to first (round-robin).
    cursor: usize,
    next_consumer_id: u64,
}

impl QueueState {
    /// Hands ready messages round-robin to consumers with prefetch room; called after
    /// every change that can make a message or room available.
    fn dispatch(&mut self) {
        while let Some(envelope) = self.ready.pop_front() {
            if envelope.abandoned() {
                continue;
            }
            let Some(index) = self.next_with_room() else {
                self.ready.push_front(envelope);
                return;
            };
            let slot = &mut self.consumers[index];
            match slot.outbox.send(envelope) {
                Ok(()) => slot.unacked += 1,
                // The consumer's receiver is gone, so is the consumer.
                Err(mpsc::error::SendError(envelope)) => {
                    self.consumers.remove(index);
                    self.ready.push_front(envelope);
                }
            }
        }
    }

    /// The next consumer in round-robin order that may take one more delivery.
    fn next_with_room(&mut self) -> Option<usize> {
        let count = self.consumers.len();
        let index = (0..count)
            .map(|offset| (self.cursor + offset) % count)
            .find(|&index| self.consumers[index].has_room())?;
        self.cursor = index + 1;
        Some(index)
    }

    /// Puts a message handed out before back at the front, marked redelivered.
    fn requeue(&mut self, mut envelope: Envelope) {
        envelope.redelivered = true;
        self.ready.push_front(envelope);
    }
}

/// A consumer as its queue sees it.
#[derive(Debug)]
struct ConsumerSlot {
    id: u64,
    /// 0 means unlimited, as AMQP's `basic.qos`.
    limit: usize,
    /// Handed out (in the channel or in the consumer's hands) and not settled yet.
    unacked: usize,
    outbox: mpsc::UnboundedSender<Envelope>,
}

impl ConsumerSlot {
    fn has_room(&self) -> bool {
        self.limit == 0 || self.unacked < self.limit
    }
}

/// A message in a queue or in a consumer's hands.
#[derive(Debug)]
struct Envelope {
    message: Message,
    redelivered: bool,
    /// Shared queues: resolves the publisher's wait on ack. `None` for exclusive queues.
    receipt: Option<oneshot::Sender<()>>,
}

impl Envelope {
    fn new(message: Message, receipt: Option<oneshot::Sender<()>>) -> Self {
        Self {
            message,
            redelivered: false,
            receipt,
        }
    }

    /// The publisher stopped waiting (timed out or cancelled) and will publish again.
    fn abandoned(&self) -> bool {
        self.receipt
            .as_ref()
            .is_some_and(oneshot::Sender::is_closed)
    }
}

/// Removes an exclusive queue from routing when its subscriber goes.
#[derive(Debug)]
struct ExclusiveMembership {
    topology: Arc<Mutex<Topology>>,
    id: u64,
}

impl Drop for ExclusiveMembership {
    fn drop(&mut self) {
        lock(&self.topology).exclusive.remove(&self.id);
    }
}

/// The in-process side of a [`Subscriber`].
#[derive(Debug)]
struct Consumer {
    queue: Arc<Queue>,
    id: u64,
    deliveries: mpsc::UnboundedReceiver<Envelope>,
    /// Held only to unroute an exclusive queue when the consumer drops.
    _membership: Option<ExclusiveMembership>,
}

#[async_trait]
impl Receive for Consumer {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        let envelope = self.deliveries.recv().await?;
        Some(Ok(Delivery {
            message: envelope.message.clone(),
            redelivered: envelope.redelivered,
            settle: Box::new(Unsettled {
                queue: Arc::clone(&self.queue),
                consumer: self.id,
                envelope: Some(envelope),
            }),
        }))
    }
}

impl Drop for Consumer {
    /// Leaves the queue and returns what was handed to it but not yet received, in order.
    fn drop(&mut self) {
        let mut state = lock(&self.queue.state);
        state.consumers.retain(|slot| slot.id != self.id);
        self.deliveries.close();
        let mut buffered = Vec::new();
        while let Ok(envelope) = self.deliveries.try_recv() {
            buffered.push(envelope);
        }
        for envelope in buffered.into_iter().rev() {
            state.requeue(envelope);
        }
        state.dispatch();
    }
}

/// The in-process side of a [`Delivery`]: requeues on drop unless settled.
#[derive(Debug)]
struct Unsettled {
    queue: Arc<Queue>,
    consumer: u64,
    envelope: Option<Envelope>,
}

impl Unsettled {
    /// Frees the consumer's prefetch slot and either requeues or completes the message.
    fn settle(&mut self, requeue: bool) {
        let Some(envelope) = self.envelope.take() else {
            return;
        };
        let mut state = lock(&self.queue.state);
        if let Some(slot) = state.consumers.iter_mut().find(|s| s.id == self.consumer) {
            slot.unacked -= 1;
        }
        if requeue {
            state.requeue(envelope);
        } else if let Some(receipt) = envelope.receipt {
            // An error means the publisher gave up; it publishes again and the consumer
            // deduplicates by id.
            let _ = receipt.send(());
        }
        state.dispatch();
    }
}

#[async_trait]
impl Settle for Unsettled {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        self.settle(false);
        Ok(())
    }

    /// Without requeue the message is gone, and its publisher is released as after an ack:
    /// the consumer decided, and a relay retrying a poison message forever helps nobody.
    async fn nack(mut self: Box<Self>, requeue: bool) -> Result<(), BusError> {
        self.settle(requeue);
        Ok(())
    }
}

impl Drop for Unsettled {
    fn drop(&mut self) {
        self.settle(true);
    }
}

/// Locks, ignoring poisoning: no critical section here leaves state half-updated on panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOON: Duration = Duration::from_secs(5);

    fn shared(name: &str, prefetch: u16) -> Subscription {
        Subscription {
            queue: QueueKind::Shared(name.into()),
            bindings: vec!["event.#".into()],
            prefetch,
        }
    }

    async fn next(subscriber: &mut Subscriber) -> Delivery {
        tokio::time::timeout(SOON, subscriber.next())
            .await
            .expect("a delivery in time")
            .expect("subscriber open")
            .expect("delivery ok")
    }

    #[tokio::test]
    async fn publish_resolves_only_after_the_consumer_acks() {
        let bus = Arc::new(InProcessBus::new());
        let mut subscriber = bus.subscribe(shared("q", 1)).await.unwrap();
        let publish = tokio::spawn({
            let bus = Arc::clone(&bus);
            async move { bus.publish(Message::new("event.a", "x")).await }
        });
        let delivery = next(&mut subscriber).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!publish.is_finished(), "publish resolved before the ack");
        delivery.ack().await.unwrap();
        tokio::time::timeout(SOON, publish)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn publish_without_a_consumer_times_out_and_is_withdrawn() {
        let bus = InProcessBus::with_handoff_timeout(Duration::from_millis(100));
        drop(bus.subscribe(shared("q", 1)).await.unwrap());
        let error = bus.publish(Message::new("event.a", "x")).await.unwrap_err();
        assert!(matches!(error, BusError::HandoffTimeout(_)), "{error:?}");

        let mut subscriber = bus.subscribe(shared("q", 1)).await.unwrap();
        let late = tokio::time::timeout(Duration::from_millis(100), subscriber.next()).await;
        assert!(late.is_err(), "a withdrawn message was delivered");
    }

    #[tokio::test]
    async fn unroutable_and_broadcast_messages_are_not_waited_for() {
        let bus = InProcessBus::with_handoff_timeout(Duration::from_secs(60));
        let mut broadcast = bus
            .subscribe(Subscription {
                queue: QueueKind::Exclusive,
                bindings: vec!["access.#".into()],
                prefetch: 0,
            })
            .await
            .unwrap();
        let publishes = async {
            bus.publish(Message::new("nobody.listens", "x")).await?;
            bus.publish(Message::new("access.changed", "y")).await
        };
        tokio::time::timeout(SOON, publishes)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            next(&mut broadcast).await.message.routing_key,
            "access.changed"
        );
    }

    #[tokio::test]
    async fn nack_without_requeue_discards_and_releases_the_publisher() {
        let bus = Arc::new(InProcessBus::new());
        let mut subscriber = bus.subscribe(shared("q", 1)).await.unwrap();
        let publish = tokio::spawn({
            let bus = Arc::clone(&bus);
            async move { bus.publish(Message::new("event.a", "x")).await }
        });
        next(&mut subscriber).await.nack(false).await.unwrap();
        tokio::time::timeout(SOON, publish)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let again = tokio::time::timeout(Duration::from_millis(100), subscriber.next()).await;
        assert!(again.is_err(), "a discarded message came back");
    }

    #[tokio::test]
    async fn an_exclusive_queue_goes_with_its_subscriber() {
        let bus = InProcessBus::new();
        let subscriber = bus
            .subscribe(Subscription {
                queue: QueueKind::Exclusive,
                bindings: vec!["#".into()],
                prefetch: 0,
            })
            .await
            .unwrap();
        assert_eq!(lock(&bus.topology).exclusive.len(), 1);
        drop(subscriber);
        assert!(lock(&bus.topology).exclusive.is_empty());
    }
}
