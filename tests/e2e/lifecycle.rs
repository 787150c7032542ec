//! Replica-safe purging end to end: two file-transfer processes on one PostgreSQL database
//! (one beside the gateway, token and access services, one on its own) with RabbitMQ and
//! shared file storage. 1,000 transfers with a five-second time to live are uploaded (long
//! enough that none expires between its initialize and its upload); both processes run the
//! purge job every second. Every transfer is purged exactly once (one
//! `filepurged` and one `fileneverconfirmeddownloaded` outbox row each, counted in the
//! database) and no bytes remain.
//!
//! Needs PostgreSQL and RabbitMQ: skips without them, and fails in CI.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use broker_tests::{Broker, BrokerOptions, Database, Scenario, amqp_url};
use futures::StreamExt;
use serde_json::json;

/// Transfers purged.
const TRANSFERS: usize = 1_000;
/// Uploads in flight at once.
const CONCURRENCY: usize = 8;
/// How long purging everything may take once the last upload is in.
const PURGE_DEADLINE: Duration = Duration::from_secs(90);

/// A process's options on the shared database and exchange, with the jobs every second.
fn options(database_url: &str, amqp: &str, exchange: &str, admin: &str) -> BrokerOptions {
    Scenario::options(Database::Sqlite)
        .database_url(database_url)
        .admin_token(admin)
        .env("BROKER_AMQP_URL", amqp)
        .env("BROKER_AMQP_EXCHANGE", exchange)
        .env("BROKER_LIFECYCLE_INTERVAL", "1s")
        // Each round that did something is logged with its report.
        .env("BROKER_LOG", "warn,broker_filetransfer::jobs=info")
}

/// How many transfers a process's lifecycle rounds say they purged.
fn purged_by(log: &str) -> usize {
    log.lines()
        .filter(|line| line.contains("lifecycle round"))
        .filter_map(|line| {
            let rest = &line[line.find("purged: ")? + "purged: ".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<usize>().ok()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_purge_each_expired_transfer_exactly_once() {
    let Some(amqp) = amqp_url() else {
        return;
    };
    let Some(db) = Database::postgres().await else {
        return;
    };
    let Database::Postgres(test_db) = &db else {
        unreachable!("asked for PostgreSQL");
    };
    let url = test_db.url().to_owned();
    let exchange = format!("broker-lifecycle-{}", uuid::Uuid::new_v4().simple());
    let admin = format!("admin-{}", uuid::Uuid::new_v4().simple());

    let front = options(&url, &amqp, &exchange, &admin).services(&[
        "gateway",
        "token",
        "access",
        "filetransfer",
    ]);
    let s = Scenario::start_with(front, broker_tests::AccessList::Disabled).await;
    // The second replica shares the database, the bus and the file storage (the front's data
    // directory holds `files/`).
    let replica = Broker::start(
        options(&url, &amqp, &exchange, &admin)
            .services(&["filetransfer"])
            .env("BROKER_DATA_DIR", s.data_dir().display())
            .env("BROKER_TOKEN_URL", s.listening("token"))
            .env("BROKER_ACCESS_URL", s.listening("access")),
    )
    .await;
    s.put_settings(
        broker_tests::scenario::RESOURCE,
        json!({"fileTransferTimeToLive": "PT5S"}),
    )
    .await
    .expect_status(204);

    let started = Instant::now();
    let uploads = futures::stream::iter(0..TRANSFERS)
        .map(|n| {
            let s = &s;
            async move {
                let id = s.initialized(s.initialize_body()).await;
                s.upload(&s.sender.write, &id, format!("transfer {n}"))
                    .await
                    .expect_status(200);
                id
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<String>>()
        .await;
    println!("{TRANSFERS} transfers uploaded in {:?}", started.elapsed());

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let deadline = Instant::now() + PURGE_DEADLINE;
    loop {
        let (purged,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM filetransfer.file_transfers WHERE status = 'Purged'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if purged as usize == TRANSFERS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {purged} of {TRANSFERS} purged\n--- replica ---\n{}",
            replica.output()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("all purged {:?} after the start", started.elapsed());
    // Both replicas took part (each round logs its report once its bytes are deleted).
    let logged = Instant::now() + Duration::from_secs(10);
    let (front_share, replica_share) = loop {
        let shares = (purged_by(&s.output()), purged_by(&replica.output()));
        if shares.0 + shares.1 == TRANSFERS || Instant::now() > logged {
            break shares;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("purged by the front process: {front_share}, by the replica: {replica_share}");
    assert_eq!(front_share + replica_share, TRANSFERS);
    assert!(front_share > 0 && replica_share > 0, "both replicas purge");

    // Exactly one of each purge event per transfer, whichever replica purged it.
    for kind in ["filepurged", "fileneverconfirmeddownloaded"] {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT payload FROM filetransfer.outbox WHERE routing_key LIKE $1")
                .bind(format!("%.{kind}"))
                .fetch_all(&pool)
                .await
                .unwrap();
        let mut per_transfer = HashMap::<String, usize>::new();
        for (payload,) in rows {
            let event: serde_json::Value = serde_json::from_str(&payload).unwrap();
            let id = event["file_transfer_id"]
                .as_str()
                .or_else(|| event["fileTransferId"].as_str())
                .unwrap_or_else(|| panic!("no transfer id in {event}"))
                .to_owned();
            *per_transfer.entry(id).or_default() += 1;
        }
        assert_eq!(per_transfer.len(), TRANSFERS, "{kind}: one per transfer");
        for id in &uploads {
            assert_eq!(per_transfer.get(id), Some(&1), "{kind} of {id}");
        }
    }
    let (history,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM filetransfer.transfer_history WHERE status = 'Purged'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(history as usize, TRANSFERS, "one Purged history row each");

    // No bytes remain, and nothing is left for the sweep.
    let files = s.stored_files();
    assert!(
        files.is_empty(),
        "bytes left behind: {:?}",
        &files[..files.len().min(5)]
    );
    let (pending,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM filetransfer.file_transfers WHERE bytes_pending")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(pending, 0);

    // The overview shows Purged; the bytes cannot be downloaded any more.
    let overview = s.overview(&s.sender.write, &uploads[0]).await.ok_json();
    assert_eq!(overview["fileTransferStatus"], "Purged");
    pool.close().await;
    drop(replica);
    drop(s);
    drop(db);
}
