//! [`AccessStore`](super::AccessStore) on PostgreSQL, in the `access` schema.

use sqlx::PgPool;

use super::StoreError;
use super::sql::access_store_impl;

/// The access store on PostgreSQL.
#[derive(Clone)]
pub struct PostgresAccessStore {
    pool: PgPool,
}

impl PostgresAccessStore {
    /// Connects with `search_path=access` and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = broker_common::db::connect_postgres(url, "access", 16).await?;
        sqlx::migrate!("../../migrations/access/postgres")
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }
}

// Concurrent relays skip each other's rows instead of waiting for them.
access_store_impl!(
    PostgresAccessStore,
    sqlx::Postgres,
    broker_common::outbox::sql::CLAIM_POSTGRES
);
