//! Issue 15's embedded-mode hardening, driven through the real `brokerd` and `broker` binaries:
//! a clean stop leaves every row in the `.db` files, an emptied or missing database stops the
//! start instead of starting empty, `brokerd backup`/`restore` bring a running broker's
//! transfers and clients to a fresh directory, `broker download` never overwrites or writes
//! through a link, callers' mistakes are not logged as errors, and fractional NumericDates are
//! accepted in assertions.

use std::path::{Path, PathBuf};
use std::process::Output;

use broker_tests::broker::brokerd_binary;
use broker_tests::scenario::{md5_hex, pattern};
use broker_tests::{Broker, BrokerOptions, Database, Scenario};
use reqwest::Method;
use serde_json::json;
use sqlx::Connection;

/// The databases embedded mode keeps.
const DATABASES: [&str; 4] = ["token.db", "access.db", "filetransfer.db", "events.db"];

/// A scenario's broker on SQLite in `dir`, which the test keeps.
async fn scenario_in(dir: &Path) -> Scenario {
    Scenario::start_with(
        Scenario::options(Database::Sqlite).data_dir(dir),
        Default::default(),
    )
    .await
}

/// Runs `brokerd <args>` to its end with only the given `BROKER_*` settings.
async fn brokerd(args: &[&str], settings: &[(&str, &Path)]) -> Output {
    let mut command = tokio::process::Command::new(brokerd_binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("BROKER_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .env("BROKER_HTTP_ADDR", "127.0.0.1:0")
        .env("BROKER_METRICS_ADDR", "off")
        .env("BROKER_LOG", "warn");
    for (name, value) in settings {
        command.env(name, value);
    }
    let run = command.kill_on_drop(true).output();
    tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("brokerd ends within a minute")
        .expect("running brokerd")
}

/// How many rows `table` has in the SQLite file `db` read on its own, without its `-wal`: a
/// copy in a directory of its own, as a file-level backup would have it.
async fn rows_alone(db: &Path, table: &str) -> i64 {
    let alone = tempfile::tempdir().expect("a directory");
    let copy = alone.path().join("copy.db");
    std::fs::copy(db, &copy).expect("copying the database file");
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", copy.display()))
        .await
        .expect("opening the copy");
    let query = format!("SELECT count(*) FROM {table}");
    sqlx::query_scalar(sqlx::AssertSqlSafe(query))
        .fetch_one(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("{table} in {} alone: {error}", db.display()))
}

#[tokio::test]
async fn a_clean_stop_leaves_every_row_in_the_database_files_and_the_marker_says_what_they_are() {
    let dir = tempfile::tempdir().expect("a data directory");
    let mut scenario = scenario_in(dir.path()).await;
    let id = scenario.published(b"kept in the file").await;
    let status = scenario.broker.terminate().await;
    assert!(status.success(), "a SIGTERM stop is clean: {status:?}");

    for name in DATABASES {
        let db = dir.path().join(name);
        let wal = std::fs::metadata(dir.path().join(format!("{name}-wal")))
            .map(|m| m.len())
            .unwrap_or(0);
        assert_eq!(wal, 0, "{name}'s log was emptied into the file");
        assert!(
            rows_alone(&db, "_sqlx_migrations").await > 0,
            "{name} alone holds its schema"
        );
    }
    let transfers = rows_alone(&dir.path().join("filetransfer.db"), "file_transfers").await;
    assert!(
        transfers >= 1,
        "the transfer {id} is in filetransfer.db alone"
    );
    assert!(rows_alone(&dir.path().join("token.db"), "clients").await >= 5);

    let marker: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("broker-data.json")).expect("the marker"),
    )
    .expect("the marker is JSON");
    assert_eq!(marker["format_version"], 1);
    assert!(marker["created"].is_string(), "{marker}");
    let mut listed: Vec<&str> = marker["databases"]
        .as_array()
        .expect("databases")
        .iter()
        .filter_map(|name| name.as_str())
        .collect();
    listed.sort_unstable();
    let mut expected = DATABASES.to_vec();
    expected.sort_unstable();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn an_emptied_or_missing_database_stops_the_start_and_a_new_directory_starts() {
    let dir = tempfile::tempdir().expect("a data directory");
    let mut scenario = scenario_in(dir.path()).await;
    scenario.published(b"must not vanish").await;
    assert!(scenario.broker.terminate().await.success());
    let data = [("BROKER_DATA_DIR", dir.path())];

    // An operator's copy that took only the 4 KiB shells would look like this: empty files.
    let emptied = dir.path().join("filetransfer.db");
    std::fs::write(&emptied, b"").expect("emptying filetransfer.db");
    let refused = brokerd(&[], &data).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "refused: {stderr}");
    assert!(
        stderr.contains("filetransfer.db is empty (0 bytes)") && stderr.contains("brokerd restore"),
        "{stderr}"
    );
    assert_eq!(std::fs::metadata(&emptied).map(|m| m.len()).ok(), Some(0));

    std::fs::remove_file(&emptied).expect("removing filetransfer.db");
    let refused = brokerd(&[], &data).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "refused: {stderr}");
    assert!(
        stderr.contains("filetransfer.db is missing") && stderr.contains("lists it"),
        "{stderr}"
    );
    assert!(!emptied.exists(), "no empty database was made in its place");

    // Without the marker (a directory from before it), the stored files still give it away.
    std::fs::remove_file(dir.path().join("broker-data.json")).expect("removing the marker");
    for name in DATABASES {
        let _ = std::fs::remove_file(dir.path().join(name));
    }
    let refused = brokerd(&[], &data).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("holds stored files"),
        "{stderr}"
    );

    let fresh = tempfile::tempdir().expect("a new data directory");
    let broker = Broker::start(BrokerOptions::new().data_dir(fresh.path())).await;
    broker.get("/health").await.expect_status(200);
    assert!(fresh.path().join("broker-data.json").is_file());
}

#[tokio::test]
async fn a_backup_of_a_running_broker_restores_into_a_fresh_directory_that_serves_the_same_transfers()
 {
    let live = tempfile::tempdir().expect("a data directory");
    let mut scenario = scenario_in(live.path()).await;
    let bytes = pattern(300_000);
    let id = scenario.published(&bytes).await;
    let client = scenario
        .broker
        .register_client("310000027", &["altinn:broker.read"])
        .await;

    let backup = tempfile::tempdir().expect("a backup directory");
    let into = backup.path().join("copy");
    let made = brokerd(
        &["backup", into.to_str().expect("utf-8")],
        &[("BROKER_DATA_DIR", live.path())],
    )
    .await;
    assert!(made.status.success(), "backup: {made:?}");
    let printed = String::from_utf8_lossy(&made.stdout);
    assert!(printed.contains("backed up 4 databases"), "{printed}");
    // Made after the backup: not in it.
    let later = scenario.published(b"after the backup").await;

    let restored = tempfile::tempdir().expect("a new data directory");
    let into_arg = into.to_str().expect("utf-8");
    let put = brokerd(
        &["restore", into_arg],
        &[("BROKER_DATA_DIR", restored.path())],
    )
    .await;
    assert!(put.status.success(), "restore: {put:?}");
    // Restoring over data is refused without --force.
    let again = brokerd(
        &["restore", into_arg],
        &[("BROKER_DATA_DIR", restored.path())],
    )
    .await;
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && stderr.contains("--force"),
        "{stderr}"
    );

    // The restored broker takes the live one's address, so the issuer and tokens carry over.
    let address = scenario
        .broker
        .base_url()
        .trim_start_matches("http://")
        .to_owned();
    let admin = scenario.broker.admin_token().to_owned();
    assert!(scenario.broker.terminate().await.success());
    let broker = Broker::start(
        Scenario::options(Database::Sqlite)
            .data_dir(restored.path())
            .admin_token(&admin)
            .env("BROKER_HTTP_ADDR", &address),
    )
    .await;
    let overview = broker
        .get_as(
            &scenario.recipient.read,
            &format!("/broker/api/v1/filetransfer/{id}"),
        )
        .await
        .ok_json();
    assert_eq!(overview["fileTransferStatus"], "Published", "{overview}");
    assert_eq!(overview["checksum"], md5_hex(&bytes));
    let path = format!("/broker/api/v1/filetransfer/{id}/download");
    let download = broker
        .send(
            broker
                .request(Method::GET, &path)
                .bearer_auth(&scenario.recipient.read),
        )
        .await
        .expect_status(200);
    assert!(
        download.bytes == bytes,
        "the restored bytes are the sent ones"
    );
    broker
        .get_as(
            &scenario.recipient.read,
            &format!("/broker/api/v1/filetransfer/{later}"),
        )
        .await
        .expect_status(404);
    // The same client, with the same key, gets a token from the restored broker.
    client.token(&["altinn:broker.read"]).await;
}

/// A line of `output` that is logged at ERROR.
fn error_lines(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|line| line.contains(" ERROR ") || line.contains("\"level\":\"ERROR\""))
        .collect()
}

#[tokio::test]
async fn a_burst_of_bad_requests_logs_no_error_and_repeated_lines_are_limited() {
    let mut databases = vec![Database::Sqlite];
    databases.extend(Database::postgres().await);
    for database in databases {
        let options = Scenario::options(database).env("BROKER_LOG", "info");
        let scenario = Scenario::start_with(options, Default::default()).await;
        for round in 0..40 {
            let unknown = uuid::Uuid::new_v4();
            scenario
                .overview(&scenario.sender.read, &unknown.to_string())
                .await
                .expect_status(404);
            scenario
                .get_as(
                    "not-a-jwt",
                    &format!("/broker/api/v1/filetransfer/{unknown}"),
                )
                .await
                .expect_status(401);
            let mut body = scenario.initialize_body();
            body["recipients"] = json!([format!("0192:bad{round}")]);
            scenario.initialize(&scenario.sender.write, body).await;
        }
        let output = scenario.output();
        assert_eq!(error_lines(&output), Vec::<&str>::new(), "{output}");
        let not_found = output
            .lines()
            .filter(|line| line.contains("gRPC call refused") && line.contains("NotFound"))
            .count();
        assert!(
            (1..=broker_common::call_log::LINES_PER_WINDOW as usize).contains(&not_found),
            "40 NotFound answers, {not_found} lines:\n{output}"
        );
    }
}

#[tokio::test]
async fn fractional_numeric_dates_get_a_token_and_other_types_are_refused() {
    let mut databases = vec![Database::Sqlite];
    databases.extend(Database::postgres().await);
    for database in databases {
        let broker = Broker::start(BrokerOptions::new().database(database)).await;
        let client = broker
            .register_client("310000027", &["altinn:broker.read"])
            .await;
        let now = broker_tests::now() as f64;
        let fractional = client
            .assertion()
            .claim("iat", now + 0.25)
            .claim("exp", now + 60.5);
        let granted = client.request_token(&fractional).await.ok_json();
        assert!(granted["access_token"].is_string(), "{granted}");

        for (claim, value) in [("exp", json!("soon")), ("iat", json!(true))] {
            let refused = client
                .request_token(&client.assertion().claim(claim, value.clone()))
                .await;
            let body = refused.assert_oauth_error(400, "invalid_grant");
            assert!(
                body["error_description"]
                    .as_str()
                    .is_some_and(|d| d.contains(claim)),
                "{claim}={value}: {body}"
            );
        }
        let expired = client
            .assertion()
            .claim("iat", now - 5.5)
            .claim("exp", now - 0.5);
        client
            .request_token(&expired)
            .await
            .assert_oauth_error(400, "invalid_grant");
    }
}

/// `broker` beside `brokerd`.
fn broker_cli() -> PathBuf {
    let cli = brokerd_binary()
        .parent()
        .expect("brokerd's directory")
        .join("broker");
    assert!(
        cli.is_file(),
        "run `cargo build -p broker-cli`: {}",
        cli.display()
    );
    cli
}

/// What the demo printed once its instructions are out (the gateway answers before the demo's
/// setup has printed them).
async fn demo_instructions(broker: &Broker) -> String {
    for _ in 0..200 {
        let output = broker.output();
        if output.contains("broker --profile recipient show") {
            return output;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "the demo printed no instructions within 10 s:\n{}",
        broker.output()
    );
}

/// The word after `flag` in the demo's printed instructions.
fn demo_value(output: &str, flag: &str) -> String {
    output
        .split_whitespace()
        .skip_while(|word| *word != flag)
        .nth(1)
        .unwrap_or_else(|| panic!("{flag} in the demo's instructions:\n{output}"))
        .trim_matches(['\'', '"'])
        .to_owned()
}

/// Runs `broker --profile <profile> <args>` in `cwd` with the demo's configuration.
async fn cli(config: &str, cwd: &Path, profile: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(broker_cli())
        .args(["--profile", profile])
        .args(args)
        .env("BROKER_CLI_CONFIG", config)
        .current_dir(cwd)
        .output()
        .await
        .expect("running broker")
}

#[tokio::test]
async fn the_cli_never_overwrites_without_force_never_follows_a_link_and_tames_file_names() {
    let data = tempfile::tempdir().expect("a data directory");
    let broker = Broker::start(BrokerOptions::new().arg("--demo").data_dir(data.path())).await;
    let output = demo_instructions(&broker).await;
    let config = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("export BROKER_CLI_CONFIG="))
        .expect("the demo's configuration")
        .trim_matches(['\'', '"'])
        .to_owned();
    let resource = demo_value(&output, "--resource");
    let recipient = demo_value(&output, "--recipient");

    let outbox = tempfile::tempdir().expect("the sender's directory");
    std::fs::write(outbox.path().join(".bashrc"), b"sent bytes").expect("the file to send");
    let sent = cli(
        &config,
        outbox.path(),
        "sender",
        &[
            "send",
            "--resource",
            &resource,
            "--recipient",
            &recipient,
            "--wait",
            ".bashrc",
        ],
    )
    .await;
    assert!(sent.status.success(), "send: {sent:?}");
    let id = String::from_utf8_lossy(&sent.stdout).trim().to_owned();

    let inbox = tempfile::tempdir().expect("the recipient's directory");
    let here = inbox.path();
    // The sender's `.bashrc` lands as a visible `bashrc`, never as a dot-file.
    let saved = cli(&config, here, "recipient", &["download", &id]).await;
    assert!(saved.status.success(), "download: {saved:?}");
    assert!(!here.join(".bashrc").exists());
    assert_eq!(std::fs::read(here.join("bashrc")).unwrap(), b"sent bytes");

    // An existing file is left alone without --force, replaced with it.
    std::fs::write(here.join("bashrc"), b"mine").unwrap();
    let refused = cli(&config, here, "recipient", &["download", &id]).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(here.join("bashrc")).unwrap(), b"mine");
    let victim = here.join("victim.txt");
    std::fs::write(&victim, b"victim").unwrap();
    let refused = cli(
        &config,
        here,
        "recipient",
        &["download", &id, "-o", "victim.txt"],
    )
    .await;
    assert!(!refused.status.success());
    assert_eq!(std::fs::read(&victim).unwrap(), b"victim");
    let forced = cli(&config, here, "recipient", &["download", &id, "--force"]).await;
    assert!(forced.status.success(), "{forced:?}");
    assert_eq!(std::fs::read(here.join("bashrc")).unwrap(), b"sent bytes");

    // A link at the target is refused even with --force, and its target is untouched.
    std::fs::remove_file(here.join("bashrc")).unwrap();
    std::os::unix::fs::symlink(&victim, here.join("bashrc")).unwrap();
    for args in [vec!["download", &id], vec!["download", &id, "--force"]] {
        let refused = cli(&config, here, "recipient", &args).await;
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && stderr.contains("symbolic link"),
            "{args:?}: {stderr}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"victim");
    }
    // So is a link planted at the partial file's name.
    std::os::unix::fs::symlink(&victim, here.join("fresh.part")).unwrap();
    let refused = cli(
        &config,
        here,
        "recipient",
        &["download", &id, "-o", "fresh"],
    )
    .await;
    assert!(!refused.status.success(), "{refused:?}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"victim");
    assert!(!here.join("fresh").exists());
}
