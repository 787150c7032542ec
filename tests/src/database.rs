//! A fresh PostgreSQL database per test on the server named by `BROKER_TEST_DATABASE_URL`,
//! dropped (best effort) when the test is done.
//!
//! Without the variable, PostgreSQL tests skip with a line saying so; in CI (`CI` set) they
//! fail instead, so a misconfigured pipeline can never pass by skipping.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// The variable naming the PostgreSQL server tests may create databases on.
pub const SERVER_VAR: &str = "BROKER_TEST_DATABASE_URL";

/// A database created for one test.
#[derive(Debug)]
pub struct TestDatabase {
    server_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// The `postgres://…` URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name (`broker_test_<uuid>`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Whether we run in CI, where skipping a test is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// A fresh database, or `None` (after printing why) when PostgreSQL tests should skip.
///
/// Panics in CI without `BROKER_TEST_DATABASE_URL`, and whenever the server is named but cannot
/// be reached.
pub async fn postgres() -> Option<TestDatabase> {
    let server_url = match std::env::var(SERVER_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ if in_ci() => {
            panic!("{SERVER_VAR} is not set but CI is: PostgreSQL tests must run in CI, not skip")
        }
        _ => {
            println!("skipping: {SERVER_VAR} not set");
            return None;
        }
    };
    match create(&server_url).await {
        Ok(database) => Some(database),
        Err(error) => panic!("cannot create a test database on {server_url}: {error:#}"),
    }
}

async fn create(server_url: &str) -> anyhow::Result<TestDatabase> {
    let name = format!("broker_test_{}", uuid::Uuid::new_v4().simple());
    let mut connection = connect(server_url).await?;
    // The name is ours (a UUID), never user input.
    let statement = format!("CREATE DATABASE \"{name}\"");
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(&mut connection)
        .await?;
    connection.close().await?;
    let mut url = reqwest::Url::parse(server_url)?;
    url.set_path(&format!("/{name}"));
    Ok(TestDatabase {
        server_url: server_url.to_owned(),
        name,
        url: url.to_string(),
    })
}

async fn connect(server_url: &str) -> anyhow::Result<PgConnection> {
    let options = PgConnectOptions::from_str(server_url)?;
    Ok(tokio::time::timeout(
        Duration::from_secs(10),
        PgConnection::connect_with(&options),
    )
    .await
    .map_err(|_| anyhow::anyhow!("connecting timed out"))??)
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        // Drop cannot await, and the test's runtime may be shutting down: use a runtime of our
        // own on a thread of our own. FORCE ends the connections of brokers still running.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut connection = connect(&server_url).await?;
                let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut connection)
                    .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test database {}: {error:#}", self.name);
        }
    }
}
