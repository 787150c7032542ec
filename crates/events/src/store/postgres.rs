//! [`EventStore`](super::EventStore) on PostgreSQL, in the `events` schema.

use broker_common::db::WriteGate;
use sqlx::PgPool;

use super::StoreError;
use super::sql::event_store_impl;

/// The event store on PostgreSQL.
#[derive(Clone)]
pub struct PostgresEventStore {
    pool: PgPool,
    writes: WriteGate,
}

impl PostgresEventStore {
    /// Connects with `search_path=events` and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = broker_common::db::connect_postgres(url, "events", 16).await?;
        sqlx::migrate!("../../migrations/events/postgres")
            .run(&pool)
            .await?;
        Ok(Self {
            pool,
            writes: WriteGate::concurrent(),
        })
    }
}

// Concurrent delivery workers skip each other's rows instead of waiting for them.
event_store_impl!(PostgresEventStore, super::sql::Dialect::Postgres);
