//! The event service: file-transfer events as CloudEvents, Altinn Events–compatible
//! subscriptions with the validation handshake, pull, and durable webhook delivery with
//! retries, dead letters and optional Standard Webhooks signatures.
//!
//! This file only wires: configuration → store → ingest, delivery and validation loops → gRPC
//! server, with the access-change listeners that keep cached decisions honest beside them.

pub mod config;
pub mod delivery;
pub mod domain;
pub mod grpc;
pub mod ingest;
pub mod owners;
pub mod service;
pub mod store;
pub mod validation;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use broker_bus::Bus;
use broker_common::Shutdown;
use broker_common::admin::AdminToken;
use broker_common::auth::TokenVerifier;
use broker_common::authz::Authorizer;
use broker_common::clock::{Clock, SystemClock};
use broker_common::config::CommonConfig;
use broker_common::db::DatabaseTarget;
use broker_common::grpc::Channel;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::events::event_service_server::EventServiceServer;
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use config::{EventsConfig, SETTINGS};

use crate::delivery::Deliverer;
use crate::delivery::client::WebhookClient;
use crate::ingest::Ingest;
use crate::owners::RegistryOwners;
use crate::service::EventsCore;
use crate::store::{EventStore, PostgresEventStore, SqliteEventStore};
use crate::validation::Validator;

/// How long a cached access decision or resource owner may be used should change notices
/// stop arriving.
const DECISION_TTL: Duration = Duration::from_secs(60);

/// An event service ready to serve.
pub struct EventsServer {
    bus: Arc<dyn Bus>,
    authorizer: Arc<Authorizer>,
    owners: Arc<RegistryOwners>,
    ingest: Arc<Ingest>,
    queue: String,
    prefetch: u16,
    deliverer: Deliverer,
    validator: Validator,
    grpc: grpc::EventsGrpc,
}

/// Opens the store named by the configuration (PostgreSQL, or SQLite in the data directory).
pub async fn open_store(common: &CommonConfig) -> anyhow::Result<Arc<dyn EventStore>> {
    Ok(
        match DatabaseTarget::resolve(common.database_url.as_deref(), &common.data_dir, "events") {
            DatabaseTarget::Postgres(url) => Arc::new(
                PostgresEventStore::connect(&url)
                    .await
                    .context("connecting the event store to PostgreSQL")?,
            ),
            DatabaseTarget::Sqlite(path) => Arc::new(
                SqliteEventStore::open(&path)
                    .await
                    .with_context(|| format!("opening the event store {}", path.display()))?,
            ),
        },
    )
}

/// Builds the service: parses the settings and opens the store; `admin` guards publish and
/// the dead letters, `verifier` checks the tokens callers forward, `bus` carries the
/// file-transfer events in, and `access` is the access registry asked for decisions and owners.
pub async fn build(
    common: &CommonConfig,
    config: &EventsConfig,
    admin: AdminToken,
    verifier: Arc<TokenVerifier>,
    bus: Arc<dyn Bus>,
    access: AccessRegistryClient<Channel>,
) -> anyhow::Result<EventsServer> {
    let settings = config.parsed()?;
    let store = open_store(common).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let client = WebhookClient::new(
        settings.timeout,
        settings.allow_private_endpoints,
        settings.max_per_endpoint,
    )
    .context("building the webhook client")?;
    let authorizer = Authorizer::new(access.clone(), DECISION_TTL);
    let owners = RegistryOwners::new(access, DECISION_TTL);
    let deliveries = Arc::new(Notify::new());
    let validations = Arc::new(Notify::new());
    let public_url = common.public_url();
    let ingest = Arc::new(Ingest::new(
        store.clone(),
        owners.clone(),
        clock.clone(),
        public_url.clone(),
        deliveries.clone(),
    ));
    let core = Arc::new(EventsCore::new(
        store.clone(),
        authorizer.clone(),
        owners.clone(),
        ingest.clone(),
        clock.clone(),
        settings.allow_private_endpoints,
        validations.clone(),
        deliveries.clone(),
    ));
    let deliverer = Deliverer::new(
        store.clone(),
        client.clone(),
        clock.clone(),
        &settings,
        deliveries,
    );
    let validator = Validator::new(
        store,
        client,
        clock,
        settings.validation.clone(),
        settings.timeout,
        public_url,
        validations,
    );
    Ok(EventsServer {
        bus,
        authorizer,
        owners,
        ingest,
        queue: ingest::queue_name(&common.amqp_exchange),
        prefetch: config.events_prefetch,
        deliverer,
        validator,
        grpc: grpc::EventsGrpc::new(core, verifier, admin),
    })
}

impl EventsServer {
    /// Serves gRPC (with the standard health service) on `listener` until `shutdown`, while
    /// ingesting file-transfer events, validating subscriptions and delivering webhooks.
    pub async fn serve(self, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
        let ingest = tokio::spawn(ingest::consume(
            self.ingest,
            self.bus.clone(),
            self.queue,
            self.prefetch,
            shutdown.clone(),
        ));
        let deliverer = tokio::spawn(self.deliverer.run(shutdown.clone()));
        let validator = tokio::spawn(self.validator.run(shutdown.clone()));
        let decisions = self.authorizer.listen(self.bus.clone(), shutdown.clone());
        let owners = self.owners.listen(self.bus, shutdown.clone());
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<EventServiceServer<grpc::EventsGrpc>>()
            .await;
        let routes = tonic::service::Routes::new(health_service)
            .add_service(EventServiceServer::new(self.grpc));
        broker_common::grpc::serve(routes, listener, shutdown)
            .await
            .context("serving the event service")?;
        ingest.await.context("event ingest")?;
        deliverer.await.context("webhook delivery")?;
        validator.await.context("subscription validation")?;
        decisions.await.context("event access change listener")?;
        owners.await.context("event resource owner listener")?;
        Ok(())
    }
}
