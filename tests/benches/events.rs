//! B7: publish → webhook received, p50/p99 at 200 events/s (budget p99 ≤ 250 ms), and
//! sustained deliveries per second (budget ≥ 1,000/s), nothing lost.
//!
//! Events are published to the event service over gRPC (`Publish`, the operator's entry for
//! producers without the bus) and delivered to a real webhook receiver on loopback. The anchor
//! is the same receiver taking the same number of POSTs straight from a plain HTTP client with
//! the same concurrency per endpoint: what loopback HTTP costs on this machine.
//!
//! Run: `cargo build --release -p brokerd && cargo bench -p broker-tests --bench events`
//! (`BENCH_EVENTS_SECONDS`, default 10, sets the paced phase; `BENCH_EVENTS_BURST`, default
//! 5000, the sustained one). Embedded on SQLite, or PostgreSQL when `BROKER_TEST_DATABASE_URL`
//! is set; everything shares the machine's cores.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_proto::events::PublishRequest;
use broker_proto::events::event_service_client::EventServiceClient;
use broker_tests::bench::{Row, ms, percentile, print_table};
use broker_tests::events::{resource_urn, subscription};
use broker_tests::scenario::{RECIPIENT, RESOURCE, urn};
use broker_tests::{AccessList, Database, Scenario, Webhook};
use serde_json::json;
use tokio::sync::Semaphore;
use tonic::transport::Channel;

const RATE_PER_SECOND: u64 = 200;
const MAX_P99_MS: f64 = 250.0;
const MIN_DELIVERIES_PER_SECOND: f64 = 1000.0;
/// Concurrent POSTs per endpoint, the event service's default, and so the anchor's too.
const PER_ENDPOINT: usize = 8;
/// Concurrent publish calls in the sustained phase.
const PUBLISHERS: usize = 32;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

fn main() {
    broker_tests::bench::run("events", run);
}

async fn run() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let seconds = broker_tests::bench::setting("BENCH_EVENTS_SECONDS", 10u64);
    let burst = broker_tests::bench::setting("BENCH_EVENTS_BURST", 5000usize);
    println!(
        "B7 events benchmark ({cores} cores, {RATE_PER_SECOND}/s for {seconds} s, burst {burst})"
    );
    broker_tests::bench::warn_if_busy(cores);
    let database = match Database::postgres().await {
        Some(postgres) => postgres,
        None => Database::Sqlite,
    };
    println!(
        "database: {}",
        match database {
            Database::Sqlite => "SQLite",
            Database::Postgres(_) => "PostgreSQL",
        }
    );
    let options = Scenario::options(database)
        .env("BROKER_EVENTS_MAX_PER_ENDPOINT", PER_ENDPOINT)
        .env("BROKER_LOG", "error");
    let s = Scenario::start_with(options, AccessList::Disabled).await;
    let hook = Webhook::start().await;
    s.subscribed(&s.recipient.events, subscription(&hook.url(), RECIPIENT))
        .await;
    let publisher = Publisher::connect(&s).await;

    // Paced: one event every 5 ms, each publish on its own task so a slow call does not
    // delay the next.
    let count = (RATE_PER_SECOND * seconds) as usize;
    let interval = Duration::from_secs(1) / RATE_PER_SECOND as u32;
    let mut ticker = tokio::time::interval(interval);
    let mut sent = HashMap::with_capacity(count);
    let mut calls = Vec::with_capacity(count);
    for _ in 0..count {
        ticker.tick().await;
        let id = uuid::Uuid::now_v7().to_string();
        sent.insert(id.clone(), Instant::now());
        let publisher = publisher.clone();
        calls.push(tokio::spawn(async move { publisher.publish(&id).await }));
    }
    for call in calls {
        call.await.expect("a publish task");
    }
    hook.wait_for_deliveries(count, DRAIN_TIMEOUT).await;
    let mut latencies: Vec<Duration> = hook
        .delivered()
        .iter()
        .filter_map(|post| Some(post.at - *sent.get(post.id())?))
        .collect();
    latencies.sort();
    broker_tests::bench::record_latencies(
        "B7 publish → webhook latency",
        &format!("at {RATE_PER_SECOND} events/s"),
        &latencies,
    );
    let p50 = ms(percentile(&latencies, 0.5));
    let p99 = ms(percentile(&latencies, 0.99));
    println!(
        "paced: {} events, {} deliveries, p50 {p50:.1} ms, p99 {p99:.1} ms, max {:.1} ms",
        count,
        latencies.len(),
        ms(latencies.last().copied().unwrap_or_default())
    );

    // Sustained: a burst published as fast as the service takes it; deliveries per second from
    // the first publish to the last arrival.
    let before = hook.delivered().len();
    let gate = Arc::new(Semaphore::new(PUBLISHERS));
    let started = Instant::now();
    let mut calls = Vec::with_capacity(burst);
    for _ in 0..burst {
        let permit = gate.clone().acquire_owned().await.expect("open semaphore");
        let publisher = publisher.clone();
        calls.push(tokio::spawn(async move {
            publisher.publish(&uuid::Uuid::now_v7().to_string()).await;
            drop(permit);
        }));
    }
    for call in calls {
        call.await.expect("a publish task");
    }
    let published = started.elapsed();
    hook.wait_for_deliveries(before + burst, DRAIN_TIMEOUT)
        .await;
    let drained = hook
        .delivered()
        .last()
        .map_or(started.elapsed(), |post| post.at - started);
    let ours = burst as f64 / drained.as_secs_f64();
    println!(
        "sustained: {burst} events published in {:.2} s ({:.0}/s), delivered in {:.2} s",
        published.as_secs_f64(),
        burst as f64 / published.as_secs_f64(),
        drained.as_secs_f64()
    );
    let anchor = anchor_rate(burst).await;
    let distinct: std::collections::HashSet<String> = hook
        .delivered()
        .iter()
        .map(|post| post.id().to_owned())
        .collect();
    let lost = count + burst - distinct.len();

    print_table(&[
        Row {
            budget: "B7",
            what: format!("publish → webhook p50 at {RATE_PER_SECOND}/s"),
            ours: format!("{p50:.1} ms"),
            anchor: "-".to_owned(),
            ratio: None,
            limit: "reported".to_owned(),
            meets: None,
        },
        Row {
            budget: "B7",
            what: format!("publish → webhook p99 at {RATE_PER_SECOND}/s"),
            ours: format!("{p99:.1} ms"),
            anchor: "-".to_owned(),
            ratio: None,
            limit: format!("≤ {MAX_P99_MS} ms"),
            meets: Some(p99 <= MAX_P99_MS),
        },
        Row {
            budget: "B7",
            what: format!("sustained deliveries/s ({burst} events)"),
            ours: format!("{ours:.0}/s"),
            anchor: format!("{anchor:.0}/s"),
            ratio: Some(ours / anchor),
            limit: format!("≥ {MIN_DELIVERIES_PER_SECOND}/s"),
            meets: Some(ours >= MIN_DELIVERIES_PER_SECOND),
        },
        Row {
            budget: "B7",
            what: "events lost".to_owned(),
            ours: lost.to_string(),
            anchor: "-".to_owned(),
            ratio: None,
            limit: "0".to_owned(),
            meets: Some(lost == 0),
        },
    ]);
}

/// Posts `count` CloudEvent-sized bodies straight to a fresh receiver, [`PER_ENDPOINT`] at a
/// time: the loopback HTTP rate the event service is compared with.
async fn anchor_rate(count: usize) -> f64 {
    let hook = Webhook::start().await;
    let client = reqwest::Client::new();
    let gate = Arc::new(Semaphore::new(PER_ENDPOINT));
    let started = Instant::now();
    let mut posts = Vec::with_capacity(count);
    for _ in 0..count {
        let permit = gate.clone().acquire_owned().await.expect("open semaphore");
        let body = cloud_event(&uuid::Uuid::now_v7().to_string()).to_string();
        let request = client
            .post(hook.url())
            .header("content-type", "application/cloudevents+json")
            .body(body);
        posts.push(tokio::spawn(async move {
            request.send().await.expect("anchor POST");
            drop(permit);
        }));
    }
    for post in posts {
        post.await.expect("an anchor task");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// A published event for the recipient of the scenario's resource.
fn cloud_event(id: &str) -> serde_json::Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "type": "no.altinn.broker.published",
        "source": "https://broker.example/broker/api/v1/filetransfer",
        "time": chrono::Utc::now().to_rfc3339(),
        "resource": resource_urn(RESOURCE),
        "resourceinstance": uuid::Uuid::new_v4().to_string(),
        "subject": urn(RECIPIENT),
        "data": {"Role": "Recipient"},
    })
}

/// The operator's `Publish` over gRPC.
#[derive(Clone)]
struct Publisher {
    client: EventServiceClient<Channel>,
    admin: String,
}

impl Publisher {
    async fn connect(s: &Scenario) -> Self {
        let client = EventServiceClient::connect(s.listening("events").to_owned())
            .await
            .expect("connecting to the event service");
        Self {
            client,
            admin: s.admin_token().to_owned(),
        }
    }

    async fn publish(&self, id: &str) {
        let request = tonic::Request::new(PublishRequest {
            principal: None,
            cloud_event_json: cloud_event(id).to_string(),
        });
        let request = broker_common::grpc::with_bearer(request, &self.admin);
        self.client
            .clone()
            .publish(request)
            .await
            .unwrap_or_else(|status| panic!("publish {id}: {status}"));
    }
}
