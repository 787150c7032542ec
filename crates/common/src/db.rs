//! Database connections. PostgreSQL gives each service its own schema (the service's
//! migrations and `_sqlx_migrations` live there), so services can share a server without ever
//! reading each other's tables. SQLite gives each service its own file.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, SqlitePool};

/// Which database a service uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A PostgreSQL URL.
    Postgres(String),
    /// A SQLite file path.
    Sqlite(std::path::PathBuf),
}

impl DatabaseTarget {
    /// PostgreSQL when the URL says so, else SQLite: the URL's path or `<data dir>/<service>.db`.
    pub fn resolve(url: Option<&str>, data_dir: &Path, service: &str) -> Self {
        match url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Self::Postgres(url.to_owned())
            }
            Some(url) => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                Self::Sqlite(path.into())
            }
            None => Self::Sqlite(data_dir.join(format!("{service}.db"))),
        }
    }
}

/// Connects to PostgreSQL with `search_path` set to `schema`, creating the schema if needed.
pub async fn connect_postgres(
    url: &str,
    schema: &str,
    max_connections: u32,
) -> sqlx::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)?;
    let mut admin = sqlx::PgConnection::connect_with(&options).await?;
    // Quoted identifier: schema names come from code, never from users.
    let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
    if let Err(error) = sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&mut admin)
        .await
    {
        // Two replicas creating the schema at once: one gets a unique violation, which is fine.
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(schema)
                .fetch_one(&mut admin)
                .await?;
        if !exists {
            return Err(error);
        }
    }
    admin.close().await?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.options([("search_path", schema)]))
        .await
}

/// Opens (creating if needed) a SQLite file in WAL mode with full fsync, so a commit that was
/// acknowledged survives a crash.
pub async fn connect_sqlite(path: &Path) -> sqlx::Result<SqlitePool> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
}

/// Serialises a store's write transactions when its database allows one writer at a time.
///
/// SQLite refuses a second writer with SQLITE_BUSY and its busy handler then sleeps in growing
/// steps (up to 100 ms), so concurrent writers turn into latency spikes; queueing them in the
/// process instead costs nothing, as they could not run at once anyway. PostgreSQL stores use
/// [`WriteGate::concurrent`], which never waits.
#[derive(Debug, Clone, Default)]
pub struct WriteGate(Option<Arc<tokio::sync::Mutex<()>>>);

impl WriteGate {
    /// One write transaction at a time (SQLite).
    pub fn serial() -> Self {
        Self(Some(Arc::default()))
    }

    /// No gate (PostgreSQL).
    pub fn concurrent() -> Self {
        Self(None)
    }

    /// Waits for this store's turn to write; the turn lasts as long as the returned guard.
    pub async fn enter(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.0 {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_targets() {
        let dir = Path::new("/data");
        assert_eq!(
            DatabaseTarget::resolve(None, dir, "token"),
            DatabaseTarget::Sqlite("/data/token.db".into())
        );
        assert_eq!(
            DatabaseTarget::resolve(Some("postgres://h/db"), dir, "token"),
            DatabaseTarget::Postgres("postgres://h/db".into())
        );
        assert_eq!(
            DatabaseTarget::resolve(Some("sqlite:///tmp/x.db"), dir, "token"),
            DatabaseTarget::Sqlite("/tmp/x.db".into())
        );
    }
}
