//! [`FileTransferStore`](super::FileTransferStore) on a SQLite file, for embedded mode.

use std::path::Path;

use sqlx::SqlitePool;

use broker_common::db::WriteGate;

use super::StoreError;
use super::sql::file_transfer_store_impl;
use super::tus::tus_store_impl;

/// The file-transfer store on SQLite.
#[derive(Clone)]
pub struct SqliteFileTransferStore {
    pool: SqlitePool,
    writes: WriteGate,
}

impl SqliteFileTransferStore {
    /// Opens (creating) the file and applies the migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let pool = broker_common::db::connect_sqlite(path).await?;
        sqlx::migrate!("../../migrations/filetransfer/sqlite")
            .run(&pool)
            .await?;
        Ok(Self {
            pool,
            writes: WriteGate::serial(),
        })
    }
}

// SQLite has one writer at a time, so the claim needs no row lock.
file_transfer_store_impl!(
    SqliteFileTransferStore,
    sqlx::Sqlite,
    broker_common::outbox::sql::CLAIM_SQLITE,
    super::sql::DUE_PURGE_SQLITE,
    super::sql::DUE_STUCK_SQLITE,
    super::sql::DUE_ABANDONED_SQLITE
);

tus_store_impl!(SqliteFileTransferStore);
