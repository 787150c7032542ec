//! [`TokenStore`](super::TokenStore) on PostgreSQL, in the `token` schema.

use sqlx::PgPool;

use super::StoreError;
use super::sql::token_store_impl;

/// The token store on PostgreSQL.
#[derive(Clone)]
pub struct PostgresTokenStore {
    pool: PgPool,
}

impl PostgresTokenStore {
    /// Connects with `search_path=token` and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = broker_common::db::connect_postgres(url, "token", 16).await?;
        sqlx::migrate!("../../migrations/token/postgres")
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }
}

token_store_impl!(PostgresTokenStore);
