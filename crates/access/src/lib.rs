//! The access registry: service owners, resources with their policies, access lists, and the
//! authorization decision every other service asks for (`Authorize`), answered from an
//! in-memory cache that every committed write flushes.
//!
//! This file only wires: configuration → store → cache → service → gRPC server.

pub mod cache;
pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;

use std::sync::Arc;

use anyhow::Context;
use broker_bus::Bus;
use broker_common::Shutdown;
use broker_common::admin::AdminToken;
use broker_common::auth::TokenVerifier;
use broker_common::authz::CHANGE_BINDING;
use broker_common::clock::SystemClock;
use broker_common::config::CommonConfig;
use broker_common::db::DatabaseTarget;
use broker_common::{changes, outbox};
use broker_proto::access::access_registry_server::AccessRegistryServer;
use tokio::net::TcpListener;

use crate::cache::{DecisionCache, Invalidator};
use crate::service::AccessCore;
use crate::store::{AccessStore, PostgresAccessStore, SqliteAccessStore, StoreOutbox};

/// An access registry ready to serve.
pub struct AccessServer {
    cache: Arc<DecisionCache>,
    store: Arc<dyn AccessStore>,
    bus: Arc<dyn Bus>,
    grpc: grpc::AccessGrpc,
}

/// Opens the store named by the configuration (PostgreSQL, or SQLite in the data directory).
pub async fn open_store(common: &CommonConfig) -> anyhow::Result<Arc<dyn AccessStore>> {
    Ok(
        match DatabaseTarget::resolve(common.database_url.as_deref(), &common.data_dir, "access") {
            DatabaseTarget::Postgres(url) => Arc::new(
                PostgresAccessStore::connect(&url)
                    .await
                    .context("connecting the access store to PostgreSQL")?,
            ),
            DatabaseTarget::Sqlite(path) => Arc::new(
                SqliteAccessStore::open(&path)
                    .await
                    .with_context(|| format!("opening the access store {}", path.display()))?,
            ),
        },
    )
}

/// Builds the service: opens the store; `verifier` checks the tokens callers forward.
pub async fn build(
    common: &CommonConfig,
    admin: AdminToken,
    verifier: Arc<TokenVerifier>,
    bus: Arc<dyn Bus>,
) -> anyhow::Result<AccessServer> {
    let store = open_store(common).await?;
    let cache = Arc::new(DecisionCache::default());
    let core = Arc::new(AccessCore::new(
        store.clone(),
        cache.clone(),
        Arc::new(SystemClock),
    ));
    Ok(AccessServer {
        cache,
        store,
        bus,
        grpc: grpc::AccessGrpc::new(core, admin, verifier),
    })
}

impl AccessServer {
    /// A handle that flushes the decision cache, for the bus consumer that hears of other
    /// replicas' writes.
    pub fn invalidator(&self) -> Invalidator {
        Invalidator::new(self.cache.clone())
    }

    /// Serves gRPC (with the standard health service) on `listener` until `shutdown`, relays
    /// this replica's change notices to the bus, and flushes its cache on other replicas' notices.
    pub async fn serve(self, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
        let relay = tokio::spawn(outbox::relay(
            Arc::new(StoreOutbox(self.store.clone())),
            self.bus.clone(),
            shutdown.clone(),
        ));
        let invalidator = self.invalidator();
        let listener_task = tokio::spawn(changes::listen(
            self.bus.clone(),
            vec![CHANGE_BINDING.to_owned()],
            Arc::new(move || invalidator.invalidate_all()),
            shutdown.clone(),
        ));
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<AccessRegistryServer<grpc::AccessGrpc>>()
            .await;
        let routes = tonic::service::Routes::new(health_service)
            .add_service(AccessRegistryServer::new(self.grpc));
        broker_common::grpc::serve(routes, listener, shutdown)
            .await
            .context("serving the access registry")?;
        relay.await.context("access outbox relay")?;
        listener_task.await.context("access change listener")?;
        Ok(())
    }
}
