//! Database connections. PostgreSQL gives each service its own schema (the service's
//! migrations and `_sqlx_migrations` live there), so services can share a server without ever
//! reading each other's tables. SQLite gives each service its own file.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, SqlitePool};

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

/// What `PRAGMA wal_checkpoint(TRUNCATE)` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Whether every committed page reached the database file and the log was emptied; false
    /// when a reader still held the log.
    pub complete: bool,
}

/// A connection to an existing SQLite file, in the WAL mode the stores keep it in: another mode
/// asked for here would rewrite the file's header under the services' feet.
async fn open_existing_sqlite(path: &Path) -> sqlx::Result<sqlx::SqliteConnection> {
    SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10))
        .connect()
        .await
}

/// Copies every committed page of `path`'s write-ahead log into the database file and empties
/// the log, so the `.db` file alone holds the data (what a file-level backup copies).
pub async fn checkpoint_sqlite(path: &Path) -> sqlx::Result<Checkpoint> {
    let mut connection = open_existing_sqlite(path).await?;
    let (busy, _log, _checkpointed): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut connection)
            .await?;
    connection.close().await?;
    Ok(Checkpoint {
        complete: busy == 0,
    })
}

/// Writes a consistent copy of the SQLite database `path` to the new file `into` while others
/// read and write it (`VACUUM INTO`: one read transaction, so the copy is one moment's state).
pub async fn backup_sqlite(path: &Path, into: &Path) -> sqlx::Result<()> {
    let mut connection = open_existing_sqlite(path).await?;
    sqlx::query("VACUUM INTO ?")
        .bind(into.to_string_lossy().into_owned())
        .execute(&mut connection)
        .await?;
    connection.close().await
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

    #[tokio::test]
    async fn a_checkpoint_leaves_the_rows_in_the_database_file_and_a_backup_copies_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let pool = connect_sqlite(&path).await.unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (1), (2)")
            .execute(&pool)
            .await
            .unwrap();
        let backup = dir.path().join("copy.db");
        backup_sqlite(&path, &backup).await.unwrap();
        let checkpoint = checkpoint_sqlite(&path).await.unwrap();
        assert!(checkpoint.complete, "{checkpoint:?}");
        assert_eq!(
            std::fs::metadata(dir.path().join("x.db-wal"))
                .unwrap()
                .len(),
            0
        );
        pool.close().await;
        for file in [&path, &backup] {
            // The database file alone, without its log, as a file-level backup would copy it.
            let alone = tempfile::tempdir().unwrap();
            std::fs::copy(file, alone.path().join("alone.db")).unwrap();
            let pool = connect_sqlite(&alone.path().join("alone.db"))
                .await
                .unwrap();
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(count, 2, "{}", file.display());
        }
    }

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
