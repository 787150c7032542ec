//! What the delivery scenarios share: a real webhook receiver on loopback, an event service's
//! background loops (ingest, validation, delivery) over a real store and the in-process bus,
//! and stores on SQLite or on a fresh PostgreSQL database.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use broker_bus::{Bus, InProcessBus, Message};
use broker_common::Shutdown;
use broker_common::authz::Authorizer;
use broker_common::clock::{Clock, SystemClock};
use broker_common::identity::OrgNumber;
use broker_common::transfer_event::{EventParty, PartyRole, TransferEvent, TransferEventKind};
use broker_events::config::EventsConfig;
use broker_events::delivery::Deliverer;
use broker_events::delivery::client::WebhookClient;
use broker_events::domain::error::EventsError;
use broker_events::domain::subscription::{Subscription, SubscriptionRequest};
use broker_events::ingest::{self, Ingest};
use broker_events::owners::{Ownership, ResourceOwners};
use broker_events::service::EventsCore;
use broker_events::store::{EventStore, NewSubscription, PostgresEventStore, SqliteEventStore};
use broker_events::validation::Validator;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_tests::database::{self, TestDatabase};
use chrono::Utc;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use uuid::Uuid;

/// The sender of every transfer.
pub const SENDER: &str = "991825827";
/// The recipient of every transfer.
pub const RECIPIENT: &str = "974760673";
/// The owner of every resource.
pub const OWNER: &str = "910753614";
/// Where the broker says it is.
pub const PUBLIC_URL: &str = "https://broker.example";

/// `urn:altinn:organization:identifier-no:<org>`.
pub fn subject(org: &str) -> String {
    format!("urn:altinn:organization:identifier-no:{org}")
}

/// One POST a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived.
    pub at: Instant,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body as sent.
    pub raw: Bytes,
    /// Its body as JSON.
    pub body: Value,
    /// What the receiver answered.
    pub answered: StatusCode,
}

impl Received {
    /// Whether it is the validation handshake.
    pub fn is_validation(&self) -> bool {
        self.body["type"] == "platform.events.validatesubscription"
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Behaviour {
    received: Mutex<Vec<Received>>,
    failures_left: AtomicUsize,
    refuse_validation: AtomicBool,
    delay_ms: AtomicU64,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// A webhook receiver on its own loopback port (so its own endpoint) until dropped.
pub struct Receiver {
    addr: SocketAddr,
    behaviour: Arc<Behaviour>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// A receiver that accepts everything.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let behaviour = Arc::new(Behaviour::default());
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(behaviour.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self {
            addr,
            behaviour,
            server,
        }
    }

    /// The endpoint.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answer the next `count` event POSTs with 503.
    pub fn fail_next_events(&self, count: usize) {
        self.behaviour.failures_left.store(count, Ordering::SeqCst);
    }

    /// Answer validation handshakes with 500.
    pub fn refuse_validation(&self) {
        self.behaviour
            .refuse_validation
            .store(true, Ordering::SeqCst);
    }

    /// Wait this long before answering.
    pub fn answer_after(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap();
        self.behaviour.delay_ms.store(millis, Ordering::SeqCst);
    }

    /// The most POSTs it was answering at once.
    pub fn most_in_flight(&self) -> usize {
        self.behaviour.most_in_flight.load(Ordering::SeqCst)
    }

    /// Every POST so far.
    pub fn received(&self) -> Vec<Received> {
        self.behaviour
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every event POST (handshakes left out).
    pub fn attempts(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|post| !post.is_validation())
            .collect()
    }

    /// The events accepted.
    pub fn delivered(&self) -> Vec<Received> {
        self.attempts()
            .into_iter()
            .filter(|post| post.answered.is_success())
            .collect()
    }

    /// The handshakes received.
    pub fn validations(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(Received::is_validation)
            .collect()
    }

    /// Polls until `done`, panicking with `what` after `timeout`.
    pub async fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what} did not happen within {timeout:?}; received {:?}",
                self.received()
                    .iter()
                    .map(|post| (post.body["type"].clone(), post.answered))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(behaviour): State<Arc<Behaviour>>,
    headers: HeaderMap,
    raw: Bytes,
) -> StatusCode {
    let in_flight = behaviour.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    behaviour
        .most_in_flight
        .fetch_max(in_flight, Ordering::SeqCst);
    let delay = behaviour.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    behaviour.in_flight.fetch_sub(1, Ordering::SeqCst);
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let answered = if body["type"] == "platform.events.validatesubscription" {
        if behaviour.refuse_validation.load(Ordering::SeqCst) {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    } else if behaviour
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok()
    {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    behaviour
        .received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Received {
            at: Instant::now(),
            headers,
            raw,
            body,
            answered,
        });
    answered
}

/// Every resource is owned by [`OWNER`].
pub struct OneOwner;

#[async_trait]
impl ResourceOwners for OneOwner {
    async fn ownership(&self, _resource_id: &str) -> Result<Ownership, EventsError> {
        Ok(Ownership::Owned(Some(OrgNumber::parse(OWNER).unwrap())))
    }
}

/// A store for one scenario, and what keeps it alive.
pub struct TestStore {
    /// The store.
    pub store: Arc<dyn EventStore>,
    _database: Option<TestDatabase>,
    _dir: Option<TempDir>,
}

/// A directory removed when dropped.
pub struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh SQLite store.
pub async fn sqlite() -> TestStore {
    let dir = std::env::temp_dir().join(format!("broker-events-{}", Uuid::new_v4()));
    let store = SqliteEventStore::open(&dir.join("events.db"))
        .await
        .unwrap();
    TestStore {
        store: Arc::new(store),
        _database: None,
        _dir: Some(TempDir(dir)),
    }
}

/// A store on a fresh PostgreSQL database, or `None` when PostgreSQL tests skip (never in CI).
pub async fn postgres() -> Option<TestStore> {
    let database = database::postgres().await?;
    let store = PostgresEventStore::connect(database.url()).await.unwrap();
    Some(TestStore {
        store: Arc::new(store),
        _database: Some(database),
        _dir: None,
    })
}

/// Settings with short schedules and private endpoints allowed.
pub fn fast_config() -> EventsConfig {
    EventsConfig {
        events_allow_private_endpoints: true,
        events_retry_schedule: "100ms,200ms,300ms".into(),
        events_validation_schedule: "100ms,100ms".into(),
        events_delivery_timeout: "5s".into(),
        ..EventsConfig::default()
    }
}

/// The event service's loops running over a store and an in-process bus.
pub struct Service {
    /// The store.
    pub store: Arc<dyn EventStore>,
    /// The bus file-transfer events are published on.
    pub bus: Arc<dyn Bus>,
    /// The operations (the access registry behind its authorizer is unreachable, so only
    /// owners' and admin operations work).
    pub core: EventsCore,
    shutdown: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Service {
    /// Starts ingest, validation and delivery over `store` with `config` and an in-process bus.
    pub async fn start(store: Arc<dyn EventStore>, config: &EventsConfig) -> Self {
        let bus = Arc::new(InProcessBus::with_handoff_timeout(Duration::from_secs(10)));
        Self::start_on(store, config, bus, "broker").await
    }

    /// Starts ingest, validation and delivery over `store` with `config`, consuming `bus`
    /// through the ingest queue of `exchange`.
    pub async fn start_on(
        store: Arc<dyn EventStore>,
        config: &EventsConfig,
        bus: Arc<dyn Bus>,
        exchange: &str,
    ) -> Self {
        let settings = config.parsed().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let client = WebhookClient::new(
            settings.timeout,
            settings.allow_private_endpoints,
            settings.max_per_endpoint,
        )
        .unwrap();
        let deliveries = Arc::new(Notify::new());
        let validations = Arc::new(Notify::new());
        let ingest = Arc::new(Ingest::new(
            store.clone(),
            Arc::new(OneOwner),
            clock.clone(),
            PUBLIC_URL.to_owned(),
            deliveries.clone(),
        ));
        let unreachable = broker_common::grpc::channel("http://127.0.0.1:9").unwrap();
        let core = EventsCore::new(
            store.clone(),
            Authorizer::new(
                AccessRegistryClient::new(unreachable),
                Duration::from_secs(1),
            ),
            Arc::new(OneOwner),
            ingest.clone(),
            clock.clone(),
            settings.allow_private_endpoints,
            validations.clone(),
            deliveries.clone(),
        );
        let shutdown = Shutdown::new();
        let deliverer = Deliverer::new(
            store.clone(),
            client.clone(),
            clock.clone(),
            &settings,
            deliveries,
        );
        let validator = Validator::new(
            store.clone(),
            client,
            clock,
            settings.validation.clone(),
            settings.timeout,
            PUBLIC_URL.to_owned(),
            validations,
        );
        let tasks = vec![
            tokio::spawn(ingest::consume(
                ingest,
                bus.clone(),
                ingest::queue_name(exchange),
                config.events_prefetch,
                shutdown.clone(),
            )),
            tokio::spawn(deliverer.run(shutdown.clone())),
            tokio::spawn(validator.run(shutdown.clone())),
        ];
        // Publishing needs the ingest queue to exist (RabbitMQ: declared and bound).
        tokio::time::sleep(Duration::from_millis(300)).await;
        Self {
            store,
            bus,
            core,
            shutdown,
            tasks,
        }
    }

    /// Stops every loop and waits for them.
    pub async fn stop(self) {
        self.shutdown.trigger();
        for task in self.tasks {
            task.await.unwrap();
        }
    }

    /// Creates a subscription of `consumer` as the store would after the API accepted it.
    pub async fn subscribe(
        &self,
        consumer: &str,
        resource: &str,
        subject_filter: Option<&str>,
        end_point: &str,
        signing_secret: Option<String>,
    ) -> Subscription {
        self.store
            .create_subscription(&NewSubscription {
                request: SubscriptionRequest {
                    end_point: end_point.to_owned(),
                    resource_filter: format!("urn:altinn:resource:{resource}"),
                    subject_filter: subject_filter.map(str::to_owned),
                    source_filter: None,
                    type_filter: None,
                    include_subunits: false,
                },
                consumer: format!("/organisation/{consumer}"),
                created_by: format!("/organisation/{consumer}"),
                created: Utc::now(),
                signing_secret,
            })
            .await
            .unwrap()
    }

    /// Waits until subscription `id` is validated.
    pub async fn wait_validated(&self, id: i64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let subscription = self.store.subscription(id).await.unwrap().unwrap();
            if subscription.validated {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "subscription {id} never validated"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Publishes a file-transfer event on the bus; in-process, returns once ingest committed
    /// and acked it.
    pub async fn publish(&self, event: &TransferEvent) {
        let message = Message {
            id: event.id.to_string(),
            ..Message::new(event.kind.routing_key(), serde_json::to_vec(event).unwrap())
        };
        self.bus.publish(message).await.unwrap();
    }

    /// Publishes a message ingest cannot decode.
    pub async fn publish_poison(&self) {
        let message = Message::new("filetransfer.published", b"{not json".to_vec());
        self.bus.publish(message).await.unwrap();
    }
}

/// A published transfer of `resource` from [`SENDER`] to [`RECIPIENT`].
pub fn published(resource: &str) -> TransferEvent {
    TransferEvent {
        id: Uuid::now_v7(),
        kind: TransferEventKind::Published,
        resource_id: resource.to_owned(),
        file_transfer_id: Uuid::now_v7(),
        time: Utc::now(),
        parties: vec![
            EventParty {
                org_number: SENDER.to_owned(),
                role: PartyRole::Sender,
            },
            EventParty {
                org_number: RECIPIENT.to_owned(),
                role: PartyRole::Recipient,
            },
        ],
    }
}
