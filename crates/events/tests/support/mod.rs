//! What the delivery scenarios share: the test kit's webhook receiver on loopback, an event
//! service's background loops (ingest, validation, delivery) over a real store and the in-process bus,
//! and stores on SQLite or on a fresh PostgreSQL database.

#![allow(dead_code)] // Each test binary uses its own subset of these helpers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use broker_bus::{Bus, InProcessBus, Message};
use broker_common::Shutdown;
use broker_common::authz::Authorizer;
use broker_common::clock::{Clock, SystemClock};
use broker_common::identity::OrgNumber;
use broker_common::telemetry::propagation::TRACEPARENT;
use broker_common::transfer_event::{EventParty, PartyRole, TransferEvent, TransferEventKind};
use broker_events::config::EventsConfig;
use broker_events::delivery::Deliverer;
use broker_events::delivery::client::WebhookClient;
use broker_events::delivery::signing::SigningSecret;
use broker_events::domain::error::EventsError;
use broker_events::domain::subscription::{Subscription, SubscriptionRequest};
use broker_events::ingest::{self, Ingest};
use broker_events::owners::{Ownership, ResourceOwners};
use broker_events::service::EventsCore;
use broker_events::store::{EventStore, NewSubscription, PostgresEventStore, SqliteEventStore};
use broker_events::validation::Validator;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_tests::database::{self, TestDatabase};
pub use broker_tests::webhook::Webhook as Receiver;
use chrono::Utc;
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
                consumer_org: consumer.to_owned(),
                created_by: format!("/organisation/{consumer}"),
                created: Utc::now(),
                signing_secret: signing_secret.map(SigningSecret::new),
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

    /// A fresh receiver that the recipient subscribed to `resource`'s events of its own, once
    /// validated.
    pub async fn recipient_hook(&self, resource: &str) -> (Receiver, Subscription) {
        let hook = Receiver::start().await;
        let recipient = subject(RECIPIENT);
        let subscription = self
            .subscribe(RECIPIENT, resource, Some(&recipient), &hook.url(), None)
            .await;
        self.wait_validated(subscription.id).await;
        (hook, subscription)
    }

    /// Publishes a file-transfer event on the bus; in-process, returns once ingest committed
    /// and acked it.
    pub async fn publish(&self, event: &TransferEvent) {
        self.bus.publish(message(event)).await.unwrap();
    }

    /// Publishes a file-transfer event whose message carries `traceparent`, as the
    /// file-transfer service's are when the request that caused them was traced.
    pub async fn publish_traced(&self, event: &TransferEvent, traceparent: &str) {
        let message = message(event).with_header(TRACEPARENT, traceparent);
        self.bus.publish(message).await.unwrap();
    }

    /// Publishes a message ingest cannot decode.
    pub async fn publish_poison(&self) {
        let message = Message::new("filetransfer.published", b"{not json".to_vec());
        self.bus.publish(message).await.unwrap();
    }
}

/// The bus message the file-transfer service publishes for `event`.
fn message(event: &TransferEvent) -> Message {
    Message {
        id: event.id.to_string(),
        ..Message::new(event.kind.routing_key(), serde_json::to_vec(event).unwrap())
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
