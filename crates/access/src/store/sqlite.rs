//! [`AccessStore`](super::AccessStore) on a SQLite file, for embedded mode.

use std::path::Path;

use sqlx::SqlitePool;

use super::StoreError;
use super::sql::access_store_impl;

/// The access store on SQLite.
#[derive(Clone)]
pub struct SqliteAccessStore {
    pool: SqlitePool,
}

impl SqliteAccessStore {
    /// Opens (creating) the file and applies the migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let pool = broker_common::db::connect_sqlite(path).await?;
        sqlx::migrate!("../../migrations/access/sqlite")
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }
}

// SQLite has one writer at a time, so the claim needs no row lock.
access_store_impl!(
    SqliteAccessStore,
    sqlx::Sqlite,
    broker_common::outbox::sql::CLAIM_SQLITE
);
