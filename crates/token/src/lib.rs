//! The token service: a Maskinporten-compatible authorization server (RFC 7523 JWT-bearer
//! grant), its client registry and signing keys, and the Altinn-style token exchange.
//!
//! This file only wires: configuration → store → keys → service → gRPC server and jobs.

pub mod config;
pub mod domain;
pub mod exchange;
pub mod grpc;
pub mod jobs;
pub mod keys;
pub mod service;
pub mod store;

use std::sync::Arc;

use anyhow::Context;
use broker_common::Shutdown;
use broker_common::admin::AdminToken;
use broker_common::clock::{Clock, SystemClock};
use broker_common::config::CommonConfig;
use broker_common::db::DatabaseTarget;
use broker_proto::token::token_service_server::TokenServiceServer;
use tokio::net::TcpListener;

pub use config::TokenConfig;

use crate::exchange::{ServiceOwnerDirectory, TrustedIssuers};
use crate::keys::{KeyPolicy, KeyRing};
use crate::service::{Endpoints, Lifetimes, TokenCore};
use crate::store::{PostgresTokenStore, SqliteTokenStore, TokenStore};

/// A token service ready to serve.
pub struct TokenServer {
    store: Arc<dyn TokenStore>,
    keys: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    grpc: grpc::TokenGrpc,
}

/// Opens the store named by the configuration (PostgreSQL, or SQLite in the data directory).
pub async fn open_store(common: &CommonConfig) -> anyhow::Result<Arc<dyn TokenStore>> {
    Ok(
        match DatabaseTarget::resolve(common.database_url.as_deref(), &common.data_dir, "token") {
            DatabaseTarget::Postgres(url) => Arc::new(
                PostgresTokenStore::connect(&url)
                    .await
                    .context("connecting the token store to PostgreSQL")?,
            ),
            DatabaseTarget::Sqlite(path) => Arc::new(
                SqliteTokenStore::open(&path)
                    .await
                    .with_context(|| format!("opening the token store {}", path.display()))?,
            ),
        },
    )
}

/// Builds the service: opens the store, loads (or creates) the signing keys. `owners` tells the
/// exchange which organisations are service owners.
pub async fn build(
    common: &CommonConfig,
    config: &TokenConfig,
    admin: AdminToken,
    owners: Arc<dyn ServiceOwnerDirectory>,
) -> anyhow::Result<TokenServer> {
    let store = open_store(common).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let lifetimes = Lifetimes {
        access: i64::try_from(config.token_lifetime_seconds)
            .context("BROKER_TOKEN_LIFETIME_SECONDS")?,
        platform: i64::try_from(config.platform_token_lifetime_seconds)
            .context("BROKER_PLATFORM_TOKEN_LIFETIME_SECONDS")?,
    };
    let rotation = i64::try_from(config.signing_key_rotation_hours)
        .ok()
        .and_then(|hours| hours.checked_mul(3600))
        .filter(|seconds| *seconds > 0)
        .context("BROKER_SIGNING_KEY_ROTATION_HOURS must be a positive number of hours")?;
    let policy = KeyPolicy {
        rotation,
        lead: (rotation / 10).min(3600),
        retain: lifetimes.access.max(lifetimes.platform),
    };
    let keys = Arc::new(
        KeyRing::load(store.clone(), policy, clock.unix())
            .await
            .context("loading signing keys")?,
    );
    let endpoints = Endpoints {
        issuer: common.issuer(),
        platform_issuer: common.platform_issuer(),
    };
    let trusted =
        TrustedIssuers::new(config.trusted_issuer_urls()).context("building the HTTP client")?;
    let core = Arc::new(TokenCore::new(
        store.clone(),
        keys.clone(),
        endpoints,
        lifetimes,
        trusted,
        owners,
        clock.clone(),
    ));
    Ok(TokenServer {
        store,
        keys,
        clock,
        grpc: grpc::TokenGrpc::new(core, admin),
    })
}

impl TokenServer {
    /// Serves gRPC (with the standard health service) on `listener` and runs the jobs, until
    /// `shutdown`.
    pub async fn serve(self, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<TokenServiceServer<grpc::TokenGrpc>>()
            .await;
        let jobs = tokio::spawn(jobs::run(
            self.store,
            self.keys,
            self.clock,
            shutdown.clone(),
        ));
        let routes = tonic::service::Routes::new(health_service)
            .add_service(TokenServiceServer::new(self.grpc));
        broker_common::grpc::serve(routes, listener, shutdown)
            .await
            .context("serving the token service")?;
        jobs.await.context("token jobs")?;
        Ok(())
    }
}
