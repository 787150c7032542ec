//! The SQL of [`TokenStore`](super::TokenStore), written once and instantiated for each
//! database by [`token_store_impl!`]. Every statement is plain SQL valid on both PostgreSQL
//! and SQLite.

use super::{ClientKeyRecord, ClientRecord, StoreError};

pub(super) const INSERT_CLIENT: &str =
    "INSERT INTO clients (client_id, org_number, name, scopes, created_at)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (client_id) DO NOTHING";
pub(super) const INSERT_KEY: &str = "INSERT INTO client_keys (client_id, kid, jwk, created_at)
     VALUES ($1, $2, $3, $4) ON CONFLICT (client_id, kid) DO NOTHING";
pub(super) const SELECT_CLIENT: &str =
    "SELECT client_id, org_number, name, scopes, created_at FROM clients WHERE client_id = $1";
pub(super) const SELECT_CLIENTS: &str =
    "SELECT client_id, org_number, name, scopes, created_at FROM clients
     WHERE client_id > $1 ORDER BY client_id LIMIT $2";
pub(super) const SELECT_KEYS: &str =
    "SELECT kid, jwk, created_at FROM client_keys WHERE client_id = $1 ORDER BY created_at, kid";
pub(super) const DELETE_CLIENT: &str = "DELETE FROM clients WHERE client_id = $1";
pub(super) const CLIENT_EXISTS: &str = "SELECT 1 FROM clients WHERE client_id = $1";
pub(super) const DELETE_KEY: &str = "DELETE FROM client_keys WHERE client_id = $1 AND kid = $2";
pub(super) const INSERT_ASSERTION: &str = "INSERT INTO used_assertions (client_id, jti, expires_at)
     VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING";
pub(super) const PURGE_ASSERTIONS: &str = "DELETE FROM used_assertions WHERE expires_at < $1";
pub(super) const INSERT_ASSERTION_DIGEST: &str =
    "INSERT INTO used_assertion_digests (client_id, digest, expires_at)
     VALUES ($1, $2, $3) ON CONFLICT (client_id, digest) DO NOTHING";
pub(super) const PURGE_ASSERTION_DIGESTS: &str =
    "DELETE FROM used_assertion_digests WHERE expires_at < $1";
pub(super) const SELECT_SIGNING_KEYS: &str = "SELECT generation, kid, private_key, activates_at, created_at FROM signing_keys ORDER BY generation";
pub(super) const INSERT_SIGNING_KEY: &str =
    "INSERT INTO signing_keys (generation, kid, private_key, activates_at, created_at)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (generation) DO NOTHING";
pub(super) const DELETE_SIGNING_KEYS: &str = "DELETE FROM signing_keys WHERE generation < $1";

/// A client row before its keys are attached.
pub(super) type ClientRow = (String, String, String, String, i64);

pub(super) fn client_from_row(
    (client_id, org_number, name, scopes, created_at): ClientRow,
    keys: Vec<(String, String, i64)>,
) -> Result<ClientRecord, StoreError> {
    let scopes = serde_json::from_str(&scopes)
        .map_err(|error| StoreError::Corrupt(format!("scopes of client {client_id}: {error}")))?;
    Ok(ClientRecord {
        client_id,
        org_number,
        name,
        scopes,
        keys: keys
            .into_iter()
            .map(|(kid, jwk, created_at)| ClientKeyRecord {
                kid,
                jwk,
                created_at,
            })
            .collect(),
        created_at,
    })
}

pub(super) fn scopes_json(client: &ClientRecord) -> String {
    serde_json::Value::from(client.scopes.clone()).to_string()
}

/// Implements `TokenStore` for a struct `$store { pool: sqlx::Pool<_> }`.
macro_rules! token_store_impl {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::TokenStore for $store {
            async fn insert_client(
                &self,
                client: &$crate::store::ClientRecord,
            ) -> Result<$crate::store::Inserted, $crate::store::StoreError> {
                use $crate::store::sql::*;
                let mut tx = self.pool.begin().await?;
                let inserted = sqlx::query(INSERT_CLIENT)
                    .bind(&client.client_id)
                    .bind(&client.org_number)
                    .bind(&client.name)
                    .bind(scopes_json(client))
                    .bind(client.created_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if inserted == 0 {
                    return Ok($crate::store::Inserted::AlreadyExists);
                }
                for key in &client.keys {
                    sqlx::query(INSERT_KEY)
                        .bind(&client.client_id)
                        .bind(&key.kid)
                        .bind(&key.jwk)
                        .bind(key.created_at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok($crate::store::Inserted::New)
            }

            async fn client(
                &self,
                client_id: &str,
            ) -> Result<Option<$crate::store::ClientRecord>, $crate::store::StoreError> {
                use $crate::store::sql::*;
                let Some(row) = sqlx::query_as::<_, ClientRow>(SELECT_CLIENT)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let keys = sqlx::query_as(SELECT_KEYS)
                    .bind(client_id)
                    .fetch_all(&self.pool)
                    .await?;
                client_from_row(row, keys).map(Some)
            }

            async fn list_clients(
                &self,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<$crate::store::ClientRecord>, $crate::store::StoreError> {
                use $crate::store::sql::*;
                let rows = sqlx::query_as::<_, ClientRow>(SELECT_CLIENTS)
                    .bind(after.unwrap_or(""))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                let mut clients = Vec::with_capacity(rows.len());
                for row in rows {
                    let keys = sqlx::query_as(SELECT_KEYS)
                        .bind(&row.0)
                        .fetch_all(&self.pool)
                        .await?;
                    clients.push(client_from_row(row, keys)?);
                }
                Ok(clients)
            }

            async fn delete_client(
                &self,
                client_id: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let deleted = sqlx::query($crate::store::sql::DELETE_CLIENT)
                    .bind(client_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(deleted > 0)
            }

            async fn add_client_key(
                &self,
                client_id: &str,
                key: &$crate::store::ClientKeyRecord,
            ) -> Result<Option<$crate::store::Inserted>, $crate::store::StoreError> {
                use $crate::store::sql::*;
                let mut tx = self.pool.begin().await?;
                let exists = sqlx::query(CLIENT_EXISTS)
                    .bind(client_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                if !exists {
                    return Ok(None);
                }
                let inserted = sqlx::query(INSERT_KEY)
                    .bind(client_id)
                    .bind(&key.kid)
                    .bind(&key.jwk)
                    .bind(key.created_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(Some(if inserted == 0 {
                    $crate::store::Inserted::AlreadyExists
                } else {
                    $crate::store::Inserted::New
                }))
            }

            async fn remove_client_key(
                &self,
                client_id: &str,
                kid: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let deleted = sqlx::query($crate::store::sql::DELETE_KEY)
                    .bind(client_id)
                    .bind(kid)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(deleted > 0)
            }

            async fn record_assertion(
                &self,
                client_id: &str,
                key: &$crate::domain::grant::ReplayKey,
                expires_at: i64,
            ) -> Result<$crate::store::Inserted, $crate::store::StoreError> {
                use $crate::domain::grant::ReplayKey;
                use $crate::store::sql::*;
                // Each kind in its own table: a client chooses its jti freely, so a digest kept
                // beside jtis could collide with one.
                let (statement, value) = match key {
                    ReplayKey::Jti(jti) => (INSERT_ASSERTION, jti),
                    ReplayKey::Digest(digest) => (INSERT_ASSERTION_DIGEST, digest),
                };
                let inserted = sqlx::query(statement)
                    .bind(client_id)
                    .bind(value)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(if inserted == 0 {
                    $crate::store::Inserted::AlreadyExists
                } else {
                    $crate::store::Inserted::New
                })
            }

            async fn purge_assertions(&self, now: i64) -> Result<u64, $crate::store::StoreError> {
                use $crate::store::sql::*;
                let mut purged = 0;
                for statement in [PURGE_ASSERTIONS, PURGE_ASSERTION_DIGESTS] {
                    purged += sqlx::query(statement)
                        .bind(now)
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                }
                Ok(purged)
            }

            async fn signing_keys(
                &self,
            ) -> Result<Vec<$crate::store::SigningKeyRecord>, $crate::store::StoreError> {
                let rows: Vec<(i64, String, String, i64, i64)> =
                    sqlx::query_as($crate::store::sql::SELECT_SIGNING_KEYS)
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(|(generation, kid, private_key, activates_at, created_at)| {
                        $crate::store::SigningKeyRecord {
                            generation,
                            kid,
                            private_key,
                            activates_at,
                            created_at,
                        }
                    })
                    .collect())
            }

            async fn insert_signing_key(
                &self,
                key: &$crate::store::SigningKeyRecord,
            ) -> Result<$crate::store::Inserted, $crate::store::StoreError> {
                let inserted = sqlx::query($crate::store::sql::INSERT_SIGNING_KEY)
                    .bind(key.generation)
                    .bind(&key.kid)
                    .bind(&key.private_key)
                    .bind(key.activates_at)
                    .bind(key.created_at)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(if inserted == 0 {
                    $crate::store::Inserted::AlreadyExists
                } else {
                    $crate::store::Inserted::New
                })
            }

            async fn delete_signing_keys_before(
                &self,
                generation: i64,
            ) -> Result<u64, $crate::store::StoreError> {
                Ok(sqlx::query($crate::store::sql::DELETE_SIGNING_KEYS)
                    .bind(generation)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }
    };
}

pub(super) use token_store_impl;
