//! The file-transfer service: the Altinn Broker v1 file transfer API behind gRPC, with statuses
//! and their history, service-owner and resource settings, and bytes streamed to object storage.
//!
//! This file only wires: configuration → store and storage → service → gRPC server, with the
//! outbox relay, the access-decision cache's change listener and the lifecycle jobs beside it.

pub mod config;
pub mod domain;
pub mod grpc;
pub mod jobs;
pub mod lease;
pub mod range;
pub mod scan;
pub mod service;
pub mod storage;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use broker_bus::Bus;
use broker_common::Shutdown;
use broker_common::auth::TokenVerifier;
use broker_common::authz::Authorizer;
use broker_common::clock::{Clock, SystemClock};
use broker_common::config::CommonConfig;
use broker_common::db::DatabaseTarget;
use broker_common::grpc::Channel;
use broker_common::outbox;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::filetransfer::file_transfer_service_server::FileTransferServiceServer;
use tokio::net::TcpListener;

pub use config::{FileTransferConfig, SETTINGS};

use crate::domain::settings::SizeLimits;
use crate::jobs::Lifecycle;
use crate::scan::{ClamdScanner, ExternalScanner, NoScanner, Scanner};
use crate::service::{FileTransferCore, TusSettings};
use crate::storage::Storage;
use crate::store::{
    FileTransferStore, PostgresFileTransferStore, SqliteFileTransferStore, StoreOutbox,
};

/// How long a cached access decision may be used should change notices stop arriving.
const DECISION_TTL: Duration = Duration::from_secs(60);
/// Largest gRPC message accepted: upload chunks are at most a few hundred KiB, with headroom.
const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// A file-transfer service ready to serve.
pub struct FileTransferServer {
    store: Arc<dyn FileTransferStore>,
    authorizer: Arc<Authorizer>,
    bus: Arc<dyn Bus>,
    grpc: grpc::FileTransferGrpc,
    lifecycle: Lifecycle,
}

/// Opens the store named by the configuration (PostgreSQL, or SQLite in the data directory).
pub async fn open_store(common: &CommonConfig) -> anyhow::Result<Arc<dyn FileTransferStore>> {
    Ok(
        match DatabaseTarget::resolve(
            common.database_url.as_deref(),
            &common.data_dir,
            "filetransfer",
        ) {
            DatabaseTarget::Postgres(url) => Arc::new(
                PostgresFileTransferStore::connect(&url)
                    .await
                    .context("connecting the file-transfer store to PostgreSQL")?,
            ),
            DatabaseTarget::Sqlite(path) => Arc::new(
                SqliteFileTransferStore::open(&path)
                    .await
                    .with_context(|| {
                        format!("opening the file-transfer store {}", path.display())
                    })?,
            ),
        },
    )
}

/// Builds the service: opens the store and the file storage; `verifier` checks the tokens
/// callers forward, `access` is the access registry asked for decisions and resources.
pub async fn build(
    common: &CommonConfig,
    config: &FileTransferConfig,
    verifier: Arc<TokenVerifier>,
    bus: Arc<dyn Bus>,
    access: AccessRegistryClient<Channel>,
) -> anyhow::Result<FileTransferServer> {
    build_with_clock(common, config, verifier, bus, access, Arc::new(SystemClock)).await
}

/// [`build`], with the service and its jobs reading the time from `clock`.
pub async fn build_with_clock(
    common: &CommonConfig,
    config: &FileTransferConfig,
    verifier: Arc<TokenVerifier>,
    bus: Arc<dyn Bus>,
    access: AccessRegistryClient<Channel>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<FileTransferServer> {
    let lifecycle_settings = config.lifecycle()?;
    let store = open_store(common).await?;
    let storage = Storage::open(
        config.storage_url.as_deref(),
        &common.data_dir.join("files"),
        config.upload_part_bytes,
    )
    .context("opening the file storage")?;
    let abandoned = storage
        .remove_abandoned()
        .await
        .context("removing what uploads of processes that died left in the file storage")?;
    if abandoned > 0 {
        tracing::info!(abandoned, "removed the files of uploads whose process died");
    }
    let authorizer = Authorizer::new(access, DECISION_TTL);
    let limits = SizeLimits {
        virus_scan: config.max_virus_scan_size,
        global: config.max_file_transfer_size,
    };
    let core = Arc::new(
        FileTransferCore::new(
            store.clone(),
            storage.clone(),
            authorizer.clone(),
            clock.clone(),
            limits,
            lifecycle_settings.upload_lease,
        )
        .with_scanner(scanner(config), config.malware_scan_token.clone())
        .with_tus(TusSettings {
            expiration: config.tus_expiration()?,
            token_grace: Duration::from_secs(config.tus_token_grace_seconds),
            claim: lifecycle_settings.upload_lease,
        }),
    );
    Ok(FileTransferServer {
        lifecycle: Lifecycle::new(store.clone(), storage, clock, lifecycle_settings),
        store,
        authorizer,
        bus,
        grpc: grpc::FileTransferGrpc::new(core, verifier),
    })
}

/// The malware scanner the configuration names: clamd, else the external scanner, else none.
fn scanner(config: &FileTransferConfig) -> Arc<dyn Scanner> {
    let set = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
    if set(&config.clamd_addr) {
        Arc::new(ClamdScanner::new(
            config.clamd_addr.clone().unwrap_or_default().trim(),
        ))
    } else if set(&config.malware_scan_token) {
        Arc::new(ExternalScanner)
    } else {
        Arc::new(NoScanner)
    }
}

impl FileTransferServer {
    /// Serves gRPC (with the standard health service) on `listener` until `shutdown`, relays
    /// the outbox to the bus, flushes cached access decisions on every access change, and runs
    /// the lifecycle jobs.
    pub async fn serve(self, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
        let relay = tokio::spawn(outbox::relay(
            Arc::new(StoreOutbox(self.store.clone())),
            self.bus.clone(),
            shutdown.clone(),
        ));
        let listener_task = self.authorizer.listen(self.bus.clone(), shutdown.clone());
        let lifecycle = tokio::spawn(self.lifecycle.run(shutdown.clone()));
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<FileTransferServiceServer<grpc::FileTransferGrpc>>()
            .await;
        let service = FileTransferServiceServer::new(self.grpc)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let routes = tonic::service::Routes::new(health_service).add_service(service);
        broker_common::grpc::serve(routes, listener, shutdown)
            .await
            .context("serving the file-transfer service")?;
        relay.await.context("file-transfer outbox relay")?;
        listener_task
            .await
            .context("file-transfer access change listener")?;
        lifecycle.await.context("file-transfer lifecycle jobs")?;
        Ok(())
    }
}
