//! Persistence of the token service: one trait, implemented for PostgreSQL and SQLite.
//!
//! Both implementations share their SQL (see [`sql`]): times are Unix seconds and parameters are
//! written `$n`, which both drivers accept, so the two backends cannot drift apart. The store
//! knows nothing of validation; it stores what the domain has already checked.

mod sql;

pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;

use crate::domain::grant::ReplayKey;

pub use postgres::PostgresTokenStore;
pub use sqlite::SqliteTokenStore;

/// A registered OAuth2 client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client id (`iss` of its assertions).
    pub client_id: String,
    /// The organisation it acts for.
    pub org_number: String,
    /// Display name.
    pub name: String,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
    /// Its public keys.
    pub keys: Vec<ClientKeyRecord>,
    /// Unix seconds.
    pub created_at: i64,
}

/// One public key of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKeyRecord {
    /// Key id, unique per client.
    pub kid: String,
    /// The public JWK as JSON.
    pub jwk: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// One of the service's own signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Rotation order; unique.
    pub generation: i64,
    /// Key id published in the JWK set.
    pub kid: String,
    /// PKCS#8 PEM private key.
    pub private_key: String,
    /// Unix seconds from which it signs.
    pub activates_at: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// A store failure; never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Outcome of inserting a row with a natural key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The row is new.
    New,
    /// A row with that key already existed; nothing was changed.
    AlreadyExists,
}

/// What the token service persists.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Inserts a client with its keys in one transaction.
    async fn insert_client(&self, client: &ClientRecord) -> Result<Inserted, StoreError>;
    /// A client with its keys.
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;
    /// Clients ordered by id, after `after`, at most `limit`.
    async fn list_clients(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ClientRecord>, StoreError>;
    /// Deletes a client and its keys; false when there was none.
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError>;
    /// Adds a key; `None` when the client does not exist.
    async fn add_client_key(
        &self,
        client_id: &str,
        key: &ClientKeyRecord,
    ) -> Result<Option<Inserted>, StoreError>;
    /// Removes a key; false when the client had no such key.
    async fn remove_client_key(&self, client_id: &str, kid: &str) -> Result<bool, StoreError>;

    /// Records an assertion's replay key (its `jti` or, without one, its digest, each in its own
    /// namespace); [`Inserted::AlreadyExists`] means a replay.
    async fn record_assertion(
        &self,
        client_id: &str,
        key: &ReplayKey,
        expires_at: i64,
    ) -> Result<Inserted, StoreError>;
    /// Forgets replay keys that expired before `now`; they can no longer be replayed anyway.
    async fn purge_assertions(&self, now: i64) -> Result<u64, StoreError>;

    /// Every signing key, oldest generation first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Adds a signing key; [`Inserted::AlreadyExists`] when another replica took that generation.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<Inserted, StoreError>;
    /// Deletes signing keys older than `generation`.
    async fn delete_signing_keys_before(&self, generation: i64) -> Result<u64, StoreError>;
}
