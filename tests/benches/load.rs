//! B5: Altinn's load-test shape at 20 concurrent clients — initialize, upload 18 bytes, poll the
//! overview until Published — with initialize p99 ≤ 50 ms, upload p99 ≤ 100 ms and the
//! transfers/s reported.
//!
//! Run: `cargo build --release -p brokerd && cargo bench -p broker-tests --bench load`
//! (`BENCH_LOAD_SECONDS`, default 20, sets how long the clients run; `BENCH_CLIENTS` their
//! number). The broker runs embedded on SQLite, or on PostgreSQL when `BROKER_TEST_DATABASE_URL`
//! is set; the clients share its 2 cores. The three latency distributions are recorded for
//! `scripts/bench.sh`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_tests::bench::{Row, ms, percentile, print_table, record_latencies};
use broker_tests::{Database, Scenario};

const DEFAULT_CLIENTS: usize = 20;
const DEFAULT_SECONDS: u64 = 20;
const MAX_INITIALIZE_P99_MS: f64 = 50.0;
const MAX_UPLOAD_P99_MS: f64 = 100.0;
const PAYLOAD: &[u8] = b"18 bytes of data!\n";
const POLL: Duration = Duration::from_millis(10);

fn main() {
    broker_tests::bench::run("load", run);
}

/// What one client measured.
#[derive(Default)]
struct Timings {
    initialize: Vec<Duration>,
    upload: Vec<Duration>,
    published: Vec<Duration>,
}

async fn run() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let clients = broker_tests::bench::setting("BENCH_CLIENTS", DEFAULT_CLIENTS);
    let duration = Duration::from_secs(broker_tests::bench::setting(
        "BENCH_LOAD_SECONDS",
        DEFAULT_SECONDS,
    ));
    println!("B5 load benchmark ({cores} cores, {clients} clients, {duration:?})");
    broker_tests::bench::warn_if_busy(cores);
    assert_eq!(PAYLOAD.len(), 18);

    let database = match Database::postgres().await {
        Some(postgres) => postgres,
        None => Database::Sqlite,
    };
    let name = match database {
        Database::Sqlite => "SQLite",
        Database::Postgres(_) => "PostgreSQL",
    };
    println!("database: {name}");
    let scenario = Arc::new(Scenario::start(database).await);
    scenario.published(PAYLOAD).await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let scenario = scenario.clone();
            tokio::spawn(async move {
                let mut timings = Timings::default();
                while started.elapsed() < duration {
                    one_transfer(&scenario, &mut timings).await;
                }
                timings
            })
        })
        .collect();
    let mut all = Timings::default();
    for task in tasks {
        let timings = task.await.expect("a client");
        all.initialize.extend(timings.initialize);
        all.upload.extend(timings.upload);
        all.published.extend(timings.published);
    }
    let elapsed = started.elapsed();
    for list in [&mut all.initialize, &mut all.upload, &mut all.published] {
        list.sort();
    }
    let transfers = all.published.len();
    let rate = transfers as f64 / elapsed.as_secs_f64();
    for (name, list) in [
        ("initialize", &all.initialize),
        ("upload", &all.upload),
        ("initialize → Published", &all.published),
    ] {
        println!(
            "{name:<24} n={:<6} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
            list.len(),
            ms(percentile(list, 0.5)),
            ms(percentile(list, 0.99)),
            ms(list.last().copied().unwrap_or_default()),
        );
    }
    let plot = "B5 load-shape latency";
    record_latencies(plot, "initialize", &all.initialize);
    record_latencies(plot, "18-byte upload", &all.upload);
    record_latencies(plot, "initialize → Published", &all.published);
    let init_p99 = ms(percentile(&all.initialize, 0.99));
    let upload_p99 = ms(percentile(&all.upload, 0.99));
    print_table(&[
        Row {
            budget: "B5",
            what: format!("initialize p99, {clients} clients"),
            ours: format!("{init_p99:.1} ms"),
            anchor: "-".to_owned(),
            ratio: None,
            limit: format!("≤ {MAX_INITIALIZE_P99_MS} ms"),
            meets: Some(init_p99 <= MAX_INITIALIZE_P99_MS),
        },
        Row {
            budget: "B5",
            what: format!("18-byte upload p99, {clients} clients"),
            ours: format!("{upload_p99:.1} ms"),
            anchor: "-".to_owned(),
            ratio: None,
            limit: format!("≤ {MAX_UPLOAD_P99_MS} ms"),
            meets: Some(upload_p99 <= MAX_UPLOAD_P99_MS),
        },
        Row {
            budget: "B5",
            what: "transfers published per second".to_owned(),
            ours: format!("{rate:.1}/s"),
            anchor: "-".to_owned(),
            ratio: None,
            limit: "reported".to_owned(),
            meets: None,
        },
    ]);
}

/// Initialize, upload [`PAYLOAD`], poll until Published; records the three timings.
async fn one_transfer(scenario: &Scenario, timings: &mut Timings) {
    let token = &scenario.sender.write;
    let started = Instant::now();
    let created = scenario
        .initialize(token, scenario.initialize_body())
        .await
        .ok_json();
    timings.initialize.push(started.elapsed());
    let id = created["fileTransferId"]
        .as_str()
        .expect("an id")
        .to_owned();
    let sent = Instant::now();
    scenario
        .upload(token, &id, PAYLOAD.to_vec())
        .await
        .expect_status(200);
    timings.upload.push(sent.elapsed());
    loop {
        let overview = scenario.overview(token, &id).await.ok_json();
        match overview["fileTransferStatus"].as_str() {
            Some("Published") => break,
            Some("Failed" | "Cancelled") => panic!("transfer {id} settled as {overview}"),
            _ => tokio::time::sleep(POLL).await,
        }
    }
    timings.published.push(started.elapsed());
}
