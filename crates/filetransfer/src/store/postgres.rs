//! [`FileTransferStore`](super::FileTransferStore) on PostgreSQL, in the `filetransfer` schema.

use sqlx::PgPool;

use broker_common::db::WriteGate;

use super::StoreError;
use super::sql::file_transfer_store_impl;
use super::tus::tus_store_impl;

/// The file-transfer store on PostgreSQL.
#[derive(Clone)]
pub struct PostgresFileTransferStore {
    pool: PgPool,
    writes: WriteGate,
}

impl PostgresFileTransferStore {
    /// Connects with `search_path=filetransfer` and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = broker_common::db::connect_postgres(url, "filetransfer", 16).await?;
        sqlx::migrate!("../../migrations/filetransfer/postgres")
            .run(&pool)
            .await?;
        Ok(Self {
            pool,
            writes: WriteGate::concurrent(),
        })
    }
}

// Concurrent relays skip each other's rows instead of waiting for them.
file_transfer_store_impl!(
    PostgresFileTransferStore,
    sqlx::Postgres,
    broker_common::outbox::sql::CLAIM_POSTGRES,
    super::sql::DUE_PURGE_POSTGRES,
    super::sql::DUE_STUCK_POSTGRES,
    super::sql::DUE_ABANDONED_POSTGRES
);

tus_store_impl!(PostgresFileTransferStore);
