//! [`EventStore`](super::EventStore) on a SQLite file, for embedded mode.

use std::path::Path;

use broker_common::db::WriteGate;
use sqlx::SqlitePool;

use super::StoreError;
use super::sql::event_store_impl;

/// The event store on SQLite.
#[derive(Clone)]
pub struct SqliteEventStore {
    pool: SqlitePool,
    writes: WriteGate,
}

impl SqliteEventStore {
    /// Opens (creating) the file and applies the migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let pool = broker_common::db::connect_sqlite(path).await?;
        sqlx::migrate!("../../migrations/events/sqlite")
            .run(&pool)
            .await?;
        Ok(Self {
            pool,
            writes: WriteGate::serial(),
        })
    }
}

// SQLite has one writer at a time, so the claim needs no row lock.
event_store_impl!(SqliteEventStore, super::sql::Dialect::Sqlite);
