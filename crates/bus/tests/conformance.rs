//! One behaviour, two buses: every scenario below runs against [`InProcessBus`] and against
//! [`RabbitBus`], followed by the RabbitMQ-only failure scenarios.
//!
//! The RabbitMQ runs read `BROKER_TEST_AMQP_URL` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`).
//! Without it they are skipped, unless `CI` is set: then a missing or unreachable RabbitMQ
//! fails them. Each run uses its own exchange and queue names and deletes them afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use broker_bus::{
    Bus, BusError, Delivery, InProcessBus, Message, QueueKind, RabbitBus, Subscriber, Subscription,
};
use tokio::task::JoinHandle;

/// Upper bound on anything that should happen; reached only when something is broken.
const SOON: Duration = Duration::from_secs(5);
/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(300);
/// Upper bound on one whole scenario.
const SCENARIO_LIMIT: Duration = Duration::from_secs(30);

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::on_in_process(super::$scenario).await;
                }
            )*
        }
        mod rabbitmq {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::on_rabbitmq(super::$scenario).await;
                }
            )*
        }
    };
}

conformance!(
    topic_routing_delivers_matching_keys_intact,
    competing_consumers_each_get_a_share_and_nothing_twice,
    unacked_deliveries_are_redelivered,
    exclusive_subscribers_all_get_every_message,
    shared_queue_keeps_messages_while_nobody_consumes,
    prefetch_bounds_unacked_deliveries,
    names_amqp_cannot_carry_are_rejected,
);

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

async fn topic_routing_delivers_matching_keys_intact(ctx: Arc<Ctx>) {
    let queue = ctx.shared("routing");
    let mut subscriber = ctx
        .subscribe(&queue, &["transfer.*.published", "audit.#"], 10)
        .await;
    let matching: Vec<Message> = ["transfer.abc.published", "audit", "audit.a.b"]
        .into_iter()
        .map(|key| {
            Message::new(key, &b"\x00binary\xffpayload"[..])
                .with_header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
                .with_header("x-note", "æøå")
        })
        .collect();
    let others = [
        "transfer.published",
        "transfer.a.b.published",
        "x.audit",
        "auditing",
    ]
    .map(|key| Message::new(key, "not for this queue"));
    let publish = publish_all(&ctx, matching.iter().cloned().chain(others).collect());

    let mut received = BTreeMap::new();
    for _ in &matching {
        let delivery = next(&mut subscriber).await;
        assert!(!delivery.redelivered);
        received.insert(
            delivery.message.routing_key.clone(),
            delivery.message.clone(),
        );
        delivery.ack().await.expect("ack");
    }
    let expected: BTreeMap<_, _> = matching
        .into_iter()
        .map(|m| (m.routing_key.clone(), m))
        .collect();
    assert_eq!(received, expected, "id, key, headers and payload survive");
    assert_quiet(&mut subscriber).await;
    finished(publish).await;
}

async fn competing_consumers_each_get_a_share_and_nothing_twice(ctx: Arc<Ctx>) {
    const COUNT: usize = 200;
    let queue = ctx.shared("competing");
    let (received_tx, mut received) = tokio::sync::mpsc::unbounded_channel();
    let mut consumers = Vec::new();
    for consumer in 0..2 {
        let mut subscriber = ctx.subscribe(&queue, &["work.#"], 5).await;
        let received_tx = received_tx.clone();
        consumers.push(tokio::spawn(async move {
            while let Some(delivery) = subscriber.next().await {
                let delivery = delivery.expect("delivery");
                let id = delivery.message.id.clone();
                delivery.ack().await.expect("ack");
                if received_tx.send((consumer, id)).is_err() {
                    return;
                }
            }
        }));
    }
    let sent: Vec<Message> = (0..COUNT)
        .map(|i| Message::new(format!("work.item.{i}"), format!("{i}")))
        .collect();
    let publish = publish_all(&ctx, sent.clone());

    let mut per_consumer = [0usize; 2];
    let mut ids = BTreeSet::new();
    for _ in 0..COUNT {
        let (consumer, id) = tokio::time::timeout(SOON, received.recv())
            .await
            .expect("all messages arrive in time")
            .expect("consumers running");
        per_consumer[consumer] += 1;
        assert!(ids.insert(id.clone()), "{id} delivered twice");
    }
    let nothing_more = tokio::time::timeout(QUIET, received.recv()).await;
    assert!(nothing_more.is_err(), "a message was delivered twice");
    let expected: BTreeSet<String> = sent.into_iter().map(|m| m.id).collect();
    assert_eq!(ids, expected);
    assert!(
        per_consumer.iter().all(|&n| n > 0),
        "both consumers got work: {per_consumer:?}"
    );
    finished(publish).await;
    consumers.iter().for_each(JoinHandle::abort);
}

async fn unacked_deliveries_are_redelivered(ctx: Arc<Ctx>) {
    let queue = ctx.shared("redelivery");
    let mut first_consumer = ctx.subscribe(&queue, &["job.#"], 1).await;
    let message = Message::new("job.run", "payload").with_header("attempt", "any");
    let publish = publish_all(&ctx, vec![message.clone()]);

    let delivery = next(&mut first_consumer).await;
    assert!(!delivery.redelivered);
    drop(delivery);

    let delivery = next(&mut first_consumer).await;
    assert!(delivery.redelivered, "a dropped delivery comes back marked");
    assert_eq!(delivery.message, message);
    delivery.nack(true).await.expect("nack");

    let delivery = next(&mut first_consumer).await;
    assert!(delivery.redelivered, "a nacked delivery comes back marked");

    // A consumer that goes away with a delivery unacked hands it to the next one.
    let mut second_consumer = ctx.subscribe(&queue, &["job.#"], 1).await;
    drop(first_consumer);
    drop(delivery);
    let delivery = next(&mut second_consumer).await;
    assert!(delivery.redelivered);
    assert_eq!(delivery.message, message);
    delivery.ack().await.expect("ack");

    finished(publish).await;
    assert_quiet(&mut second_consumer).await;
}

async fn exclusive_subscribers_all_get_every_message(ctx: Arc<Ctx>) {
    // Cache invalidation must reach every process within a second.
    const WITHIN: Duration = Duration::from_secs(1);
    let mut caches = Vec::new();
    for _ in 0..2 {
        caches.push(
            ctx.subscribe(&QueueKind::Exclusive, &["access.changed.#"], 0)
                .await,
        );
    }
    let sent: Vec<Message> = (0..10)
        .map(|i| Message::new(format!("access.changed.party{i}"), "{}"))
        .collect();
    let publish = publish_all(&ctx, sent.clone());
    let expected: BTreeSet<String> = sent.into_iter().map(|m| m.id).collect();

    for cache in &mut caches {
        let mut ids = BTreeSet::new();
        for _ in 0..expected.len() {
            let delivery = tokio::time::timeout(WITHIN, cache.next())
                .await
                .expect("broadcast within a second")
                .expect("subscriber open")
                .expect("delivery");
            ids.insert(delivery.message.id.clone());
            delivery.ack().await.expect("ack");
        }
        assert_eq!(ids, expected);
    }
    finished(publish).await;
    for cache in &mut caches {
        assert_quiet(cache).await;
    }
}

async fn shared_queue_keeps_messages_while_nobody_consumes(ctx: Arc<Ctx>) {
    let queue = ctx.shared("buffer");
    drop(ctx.subscribe(&queue, &["buffer.#"], 1).await);
    let message = Message::new("buffer.kept", "wait for me");
    let publish = publish_all(&ctx, vec![message.clone()]);

    tokio::time::sleep(QUIET).await;
    assert_eq!(
        publish.is_finished(),
        !ctx.publish_awaits_ack,
        "RabbitMQ confirms at once; in-process publish waits for a consumer's ack"
    );
    let mut late = ctx.subscribe(&queue, &["buffer.#"], 1).await;
    let delivery = next(&mut late).await;
    assert_eq!(delivery.message, message);
    if ctx.publish_awaits_ack {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!publish.is_finished(), "publish resolved before the ack");
    }
    delivery.ack().await.expect("ack");
    finished(publish).await;
}

async fn prefetch_bounds_unacked_deliveries(ctx: Arc<Ctx>) {
    let queue = ctx.shared("prefetch");
    let mut subscriber = ctx.subscribe(&queue, &["p.#"], 1).await;
    let sent = vec![Message::new("p.one", "1"), Message::new("p.two", "2")];
    let publish = publish_all(&ctx, sent.clone());

    let first = next(&mut subscriber).await;
    assert_quiet(&mut subscriber).await;
    let first_id = first.message.id.clone();
    first.ack().await.expect("ack");
    let second = next(&mut subscriber).await;
    let second_id = second.message.id.clone();
    second.ack().await.expect("ack");

    let received = BTreeSet::from([first_id, second_id]);
    let expected: BTreeSet<String> = sent.into_iter().map(|m| m.id).collect();
    assert_eq!(received, expected);
    finished(publish).await;
}

async fn names_amqp_cannot_carry_are_rejected(ctx: Arc<Ctx>) {
    let too_long = "k".repeat(256);
    let error = ctx
        .bus
        .publish(Message::new(too_long.clone(), "x"))
        .await
        .expect_err("a 256-byte routing key");
    assert!(matches!(error, BusError::Invalid { .. }), "{error:?}");
    let error = ctx
        .bus
        .subscribe(subscription(&QueueKind::Exclusive, &[&too_long], 1))
        .await
        .expect_err("a 256-byte pattern");
    assert!(matches!(error, BusError::Invalid { .. }), "{error:?}");
    let error = ctx
        .bus
        .subscribe(subscription(&QueueKind::Shared(String::new()), &["a"], 1))
        .await
        .expect_err("a shared queue without a name");
    assert!(matches!(error, BusError::Invalid { .. }), "{error:?}");
}

// ---------------------------------------------------------------------------------------
// RabbitMQ only: what happens when the broker is unreachable, goes away, or refuses
// ---------------------------------------------------------------------------------------

mod rabbitmq_only {
    use super::*;

    #[tokio::test]
    async fn connecting_to_nothing_is_a_connection_error() {
        let error = RabbitBus::connect("amqp://guest:guest@127.0.0.1:1/%2f", "broker")
            .await
            .expect_err("nothing listens on port 1");
        assert!(matches!(error, BusError::Connection(_)), "{error:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_connection_fails_publish_and_ends_subscribers_until_it_is_back() {
        on_rabbitmq(|ctx| async move {
            let upstream: lapin::uri::AMQPUri = ctx.url.parse().expect("AMQP URL");
            let proxy = Proxy::start(&upstream).await;
            let mut via_proxy = upstream.clone();
            via_proxy.authority.host = proxy.addr.ip().to_string();
            via_proxy.authority.port = proxy.addr.port();
            let bus = RabbitBus::connect(&via_proxy.to_string(), &ctx.run)
                .await
                .expect("connect through the proxy");
            let queue = ctx.shared("restart");
            let mut subscriber = bus
                .subscribe(subscription(&queue, &["restart.#"], 1))
                .await
                .expect("subscribe");

            // RabbitMQ goes away: the subscriber ends with an error, publishing fails.
            proxy.sever();
            let ended = tokio::time::timeout(SOON, subscriber.next()).await;
            assert!(matches!(ended, Ok(Some(Err(_)))), "{ended:?}");
            assert!(
                subscriber.next().await.is_none(),
                "an error ends the stream"
            );
            let error = bus
                .publish(Message::new("restart.lost", "x"))
                .await
                .expect_err("publishing without a connection");
            assert!(matches!(error, BusError::Connection(_)), "{error:?}");

            // RabbitMQ is back: the bus reconnects on the next call, re-subscribing works.
            proxy.restore();
            let mut subscriber = bus
                .subscribe(subscription(&queue, &["restart.#"], 1))
                .await
                .expect("re-subscribe");
            let message = Message::new("restart.back", "y");
            bus.publish(message.clone()).await.expect("publish again");
            let delivery = next(&mut subscriber).await;
            assert_eq!(delivery.message, message);
            delivery.ack().await.expect("ack");
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_nacked_publish_is_an_error() {
        on_rabbitmq(|ctx| async move {
            // A queue that refuses everything makes RabbitMQ nack the publisher confirm.
            let queue = ctx.shared("full");
            let QueueKind::Shared(name) = &queue else {
                unreachable!("ctx.shared names a shared queue")
            };
            let admin = Admin::connect(&ctx.url).await;
            let mut arguments = lapin::types::FieldTable::default();
            arguments.insert("x-max-length".into(), lapin::types::AMQPValue::LongInt(0));
            arguments.insert(
                "x-overflow".into(),
                lapin::types::AMQPValue::LongString("reject-publish".into()),
            );
            admin
                .channel
                .queue_declare(name.as_str().into(), Default::default(), arguments)
                .await
                .expect("declare a full queue");
            admin
                .channel
                .queue_bind(
                    name.as_str().into(),
                    ctx.run.as_str().into(),
                    "full.#".into(),
                    Default::default(),
                    Default::default(),
                )
                .await
                .expect("bind the full queue");

            let error = ctx
                .bus
                .publish(Message::new("full.now", "x"))
                .await
                .expect_err("the queue rejects it");
            assert!(matches!(error, BusError::Nacked), "{error:?}");
        })
        .await;
    }
}

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// What a scenario gets: the bus under test and names unique to this run.
struct Ctx {
    bus: Arc<dyn Bus>,
    /// Unique per run; the RabbitMQ exchange name and the prefix of every queue name.
    run: String,
    /// The RabbitMQ URL; empty for the in-process bus.
    url: String,
    /// In-process publish resolves after the consumer's ack; RabbitMQ's after the confirm.
    publish_awaits_ack: bool,
    /// Shared queues declared, deleted after the run.
    shared_queues: Mutex<Vec<String>>,
}

impl Ctx {
    fn new(bus: Arc<dyn Bus>, run: String, url: String, publish_awaits_ack: bool) -> Self {
        Self {
            bus,
            run,
            url,
            publish_awaits_ack,
            shared_queues: Mutex::default(),
        }
    }

    /// A shared queue name unique to this run.
    fn shared(&self, name: &str) -> QueueKind {
        let name = format!("{}.{name}", self.run);
        self.shared_queues.lock().unwrap().push(name.clone());
        QueueKind::Shared(name)
    }

    async fn subscribe(&self, queue: &QueueKind, bindings: &[&str], prefetch: u16) -> Subscriber {
        self.bus
            .subscribe(subscription(queue, bindings, prefetch))
            .await
            .expect("subscribe")
    }
}

fn subscription(queue: &QueueKind, bindings: &[&str], prefetch: u16) -> Subscription {
    Subscription {
        queue: queue.clone(),
        bindings: bindings.iter().map(|b| b.to_string()).collect(),
        prefetch,
    }
}

/// Publishes concurrently in the background: in-process publish waits for acks, so the
/// scenario must be free to consume meanwhile.
fn publish_all(ctx: &Ctx, messages: Vec<Message>) -> JoinHandle<Result<(), BusError>> {
    let bus = Arc::clone(&ctx.bus);
    tokio::spawn(async move {
        futures::future::try_join_all(messages.into_iter().map(|m| bus.publish(m)))
            .await
            .map(drop)
    })
}

/// Waits for background publishing to succeed.
async fn finished(publish: JoinHandle<Result<(), BusError>>) {
    tokio::time::timeout(SOON, publish)
        .await
        .expect("publish finishes in time")
        .expect("publish task")
        .expect("publish succeeds");
}

async fn next(subscriber: &mut Subscriber) -> Delivery {
    tokio::time::timeout(SOON, subscriber.next())
        .await
        .expect("a delivery in time")
        .expect("subscriber open")
        .expect("delivery")
}

async fn assert_quiet(subscriber: &mut Subscriber) {
    if let Ok(unexpected) = tokio::time::timeout(QUIET, subscriber.next()).await {
        panic!("nothing more expected, got {unexpected:?}");
    }
}

async fn on_in_process<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<Ctx>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let bus = Arc::new(InProcessBus::with_handoff_timeout(SOON));
    let ctx = Arc::new(Ctx::new(bus, unique_run(), String::new(), true));
    supervise(scenario(ctx)).await;
}

async fn on_rabbitmq<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<Ctx>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = rabbitmq_url() else {
        return;
    };
    let run = unique_run();
    let bus = RabbitBus::connect(&url, &run)
        .await
        .unwrap_or_else(|error| panic!("RabbitMQ at {url} unreachable: {error}"));
    let ctx = Arc::new(Ctx::new(Arc::new(bus), run, url, false));
    let outcome = tokio::spawn(tokio::time::timeout(
        SCENARIO_LIMIT,
        scenario(Arc::clone(&ctx)),
    ))
    .await;
    Admin::connect(&ctx.url).await.clean_up(&ctx).await;
    finish(outcome);
}

/// Runs a scenario with a time limit, propagating its panic.
async fn supervise(scenario: impl Future<Output = ()> + Send + 'static) {
    finish(tokio::spawn(tokio::time::timeout(SCENARIO_LIMIT, scenario)).await);
}

fn finish(outcome: Result<Result<(), tokio::time::error::Elapsed>, tokio::task::JoinError>) {
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_elapsed)) => panic!("scenario took longer than {SCENARIO_LIMIT:?}"),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("scenario task failed: {error}"),
    }
}

fn unique_run() -> String {
    format!("bus-test-{}", uuid::Uuid::new_v4())
}

/// `BROKER_TEST_AMQP_URL`, or `None` to skip; in CI a missing URL fails the test.
fn rabbitmq_url() -> Option<String> {
    match std::env::var("BROKER_TEST_AMQP_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("BROKER_TEST_AMQP_URL must be set when CI is set")
        }
        Err(_) => {
            eprintln!("skipping: BROKER_TEST_AMQP_URL not set");
            None
        }
    }
}

/// A plain lapin connection for what the bus does not offer: test set-up and clean-up.
struct Admin {
    _connection: lapin::Connection,
    channel: lapin::Channel,
}

impl Admin {
    async fn connect(url: &str) -> Self {
        let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
            .await
            .expect("admin connection");
        let channel = connection.create_channel().await.expect("admin channel");
        Self {
            _connection: connection,
            channel,
        }
    }

    /// Deletes the run's queues and exchange, best-effort.
    async fn clean_up(&self, ctx: &Ctx) {
        let queues = std::mem::take(&mut *ctx.shared_queues.lock().unwrap());
        for queue in queues {
            let _ = self
                .channel
                .queue_delete(queue.as_str().into(), Default::default())
                .await;
        }
        let _ = self
            .channel
            .exchange_delete(ctx.run.as_str().into(), Default::default())
            .await;
    }
}

/// A TCP proxy in front of RabbitMQ that can cut every connection and refuse new ones,
/// which is what clients see while RabbitMQ restarts.
struct Proxy {
    addr: SocketAddr,
    accepting: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    listener: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: &lapin::uri::AMQPUri) -> Self {
        let upstream = format!("{}:{}", upstream.authority.host, upstream.authority.port);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let accepting = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::spawn({
            let accepting = Arc::clone(&accepting);
            let links = Arc::clone(&links);
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !accepting.load(Ordering::SeqCst) {
                        continue; // dropping the socket refuses the client
                    }
                    let upstream = upstream.clone();
                    links.lock().unwrap().push(tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    }));
                }
            }
        });
        Self {
            addr,
            accepting,
            links,
            listener,
        }
    }

    /// Closes every proxied connection and refuses new ones.
    fn sever(&self) {
        self.accepting.store(false, Ordering::SeqCst);
        self.links
            .lock()
            .unwrap()
            .drain(..)
            .for_each(|link| link.abort());
    }

    /// Accepts connections again.
    fn restore(&self) {
        self.accepting.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.sever();
        self.listener.abort();
    }
}
