//! `brokerd migrate` as a deployment's migrations Job runs it: against fresh databases it
//! applies every migration of the services named (all with a database by default) and exits 0,
//! and running it again changes nothing.

use std::path::Path;
use std::process::Output;

use sqlx::Connection;

/// The services with a database, each with its migrations under `migrations/<service>/`.
const SERVICES: [&str; 4] = ["token", "access", "filetransfer", "events"];

/// Runs the built `brokerd` with `args` and `settings` (none of the test's own `BROKER_*`).
fn brokerd(args: &[&str], settings: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_brokerd"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("BROKER_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .envs(settings.iter().copied())
        .env("BROKER_LOG", "warn")
        .output()
        .expect("running brokerd")
}

/// Runs `brokerd migrate args…`, which must succeed.
fn migrate(args: &[&str], settings: &[(&str, &str)]) -> String {
    let output = brokerd(&[&["migrate"], args].concat(), settings);
    assert!(
        output.status.success(),
        "brokerd migrate {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// How many migrations `service` has for `database` (`sqlite` or `postgres`).
fn migrations(service: &str, database: &str) -> i64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(service)
        .join(database);
    let count = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|ext| ext == "sql"))
        })
        .count();
    i64::try_from(count).expect("a few migrations")
}

/// The migrations recorded as applied in `service`'s SQLite file under `data_dir`.
async fn applied_sqlite(data_dir: &Path, service: &str) -> i64 {
    let path = data_dir.join(format!("{service}.db"));
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut connection = sqlx::SqliteConnection::connect(&url)
        .await
        .unwrap_or_else(|error| panic!("opening {}: {error}", path.display()));
    sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("{service}'s migrations table: {error}"))
}

#[tokio::test]
async fn migrates_every_service_into_a_fresh_data_directory() {
    let data_dir = tempfile::tempdir().expect("a data directory");
    let settings = [("BROKER_DATA_DIR", data_dir.path().to_str().expect("utf-8"))];
    let printed = migrate(&[], &settings);
    for service in SERVICES {
        assert!(
            printed
                .lines()
                .any(|line| line == format!("migrated: {service}")),
            "migrate reports {service}: {printed}"
        );
        assert_eq!(
            applied_sqlite(data_dir.path(), service).await,
            migrations(service, "sqlite"),
            "every {service} migration is applied"
        );
    }
    // A second run (a Job retried, or the next release without new migrations) is a no-op.
    migrate(&[], &settings);
}

#[tokio::test]
async fn migrates_only_the_services_named() {
    let data_dir = tempfile::tempdir().expect("a data directory");
    let settings = [("BROKER_DATA_DIR", data_dir.path().to_str().expect("utf-8"))];
    migrate(&["token", "events"], &settings);
    for service in ["token", "events"] {
        assert_eq!(
            applied_sqlite(data_dir.path(), service).await,
            migrations(service, "sqlite")
        );
    }
    for service in ["access", "filetransfer"] {
        assert!(
            !data_dir.path().join(format!("{service}.db")).exists(),
            "{service} was not named, so its database is not created"
        );
    }
}

#[tokio::test]
async fn migrates_every_service_schema_on_postgres() {
    let Some(database) = broker_tests::database::postgres().await else {
        return;
    };
    let settings = [("BROKER_DATABASE_URL", database.url())];
    migrate(&[], &settings);
    migrate(&[], &settings);
    let mut connection = sqlx::PgConnection::connect(database.url())
        .await
        .expect("connecting to the test database");
    for service in SERVICES {
        // Each service keeps its tables, and its migrations table, in its own schema.
        let query = format!("SELECT count(*) FROM \"{service}\"._sqlx_migrations WHERE success");
        let applied: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(query))
            .fetch_one(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("{service}'s migrations table: {error}"));
        assert_eq!(applied, migrations(service, "postgres"), "{service}");
    }
    connection.close().await.expect("closing the connection");
}

#[test]
fn the_gateway_and_unknown_names_are_refused() {
    for (name, reason) in [
        ("gateway", "the gateway service has no database to migrate"),
        ("tokens", "unknown service: tokens"),
    ] {
        let output = brokerd(&["migrate", name], &[]);
        assert_eq!(output.status.code(), Some(2), "migrate {name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reason), "migrate {name}: {stderr}");
    }
}

#[test]
fn usage_lists_migrate_and_the_demo() {
    let output = brokerd(&["--help"], &[]);
    assert!(output.status.success());
    let usage = String::from_utf8_lossy(&output.stdout);
    assert!(usage.contains("brokerd migrate [SERVICE...]"), "{usage}");
    assert!(usage.contains("brokerd --demo"), "{usage}");
}
