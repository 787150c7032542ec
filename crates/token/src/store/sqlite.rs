//! [`TokenStore`](super::TokenStore) on a SQLite file, for embedded mode.

use std::path::Path;

use sqlx::SqlitePool;

use super::StoreError;
use super::sql::token_store_impl;

/// The token store on SQLite.
#[derive(Clone)]
pub struct SqliteTokenStore {
    pool: SqlitePool,
}

impl SqliteTokenStore {
    /// Opens (creating) the file and applies the migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let pool = broker_common::db::connect_sqlite(path).await?;
        sqlx::migrate!("../../migrations/token/sqlite")
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }
}

token_store_impl!(SqliteTokenStore);
