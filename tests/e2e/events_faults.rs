//! Nothing is lost when the infrastructure fails mid-stream, against the real RabbitMQ and
//! PostgreSQL: RabbitMQ restarts while transfers are being published, and (separately) the
//! event service is killed and started again. Every transfer's event reaches the recipient's
//! webhook at least once, and a duplicate carries the same CloudEvent id.
//!
//! The two tests take turns (a RabbitMQ restart would disturb any neighbour) and need
//! PostgreSQL and RabbitMQ: they skip without them, and fail in CI.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use broker_tests::events::subscription;
use broker_tests::events::types::PUBLISHED;
use broker_tests::scenario::RECIPIENT;
use broker_tests::{AccessList, Broker, BrokerOptions, Database, Scenario, Webhook, amqp_url};
use serde_json::json;
use tokio::sync::Mutex;

/// Transfers published per test.
const TRANSFERS: usize = 30;
/// After how many transfers the fault is injected.
const FAULT_AFTER: usize = 10;
/// How long every delivery may take to arrive once the fault is over.
const ARRIVAL: Duration = Duration::from_secs(120);

/// One fault at a time.
static TURN: Mutex<()> = Mutex::const_new(());

/// The servers one fault test shares between its broker processes: a fresh PostgreSQL
/// database, RabbitMQ with an exchange of its own, and one admin credential.
struct Servers {
    /// Kept alive (and dropped after the processes) by the test.
    _db: Database,
    database_url: String,
    amqp: String,
    exchange: String,
    admin: String,
}

impl Servers {
    /// PostgreSQL and RabbitMQ, or `None` when these tests skip.
    async fn get() -> Option<Self> {
        let amqp = amqp_url()?;
        let db = Database::postgres().await?;
        let Database::Postgres(postgres) = &db else {
            unreachable!("Database::postgres gives PostgreSQL");
        };
        Some(Self {
            database_url: postgres.url().to_owned(),
            _db: db,
            amqp,
            exchange: format!("broker-fault-{}", uuid::Uuid::new_v4().simple()),
            admin: format!("admin-{}", uuid::Uuid::new_v4().simple()),
        })
    }

    /// Options of a broker process on these servers; event deliveries time out quickly so a
    /// killed worker's leases come back soon.
    fn options(&self) -> BrokerOptions {
        Scenario::options(Database::Sqlite)
            .database_url(&self.database_url)
            .admin_token(&self.admin)
            .env("BROKER_AMQP_URL", &self.amqp)
            .env("BROKER_AMQP_EXCHANGE", &self.exchange)
            .env(
                "BROKER_EVENTS_RETRY_SCHEDULE",
                "200ms,500ms,1s,2s,2s,2s,2s,2s,2s,2s",
            )
            .env("BROKER_EVENTS_VALIDATION_SCHEDULE", "200ms,500ms,1s")
            .env("BROKER_EVENTS_DELIVERY_TIMEOUT", "2s")
    }
}

/// A recipient webhook subscribed to published events.
async fn subscribed_recipient(s: &Scenario) -> Webhook {
    let hook = Webhook::start().await;
    let mut body = subscription(&hook.url(), RECIPIENT);
    body["typeFilter"] = json!(PUBLISHED);
    s.subscribed(&s.recipient.events, body).await;
    hook
}

/// Waits until every transfer in `ids` reached `hook`; asserts duplicates share their id.
async fn assert_every_transfer_arrived(hook: &Webhook, ids: &[String]) {
    let wanted: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    hook.wait_until("every transfer's published event", ARRIVAL, |hook| {
        let seen: BTreeSet<String> = hook
            .delivered()
            .iter()
            .filter_map(|post| post.body["resourceinstance"].as_str().map(str::to_owned))
            .collect();
        wanted.iter().all(|id| seen.contains(*id))
    })
    .await;
    let mut event_ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for post in hook.delivered() {
        let transfer = post.body["resourceinstance"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        event_ids
            .entry(transfer)
            .or_default()
            .insert(post.id().to_owned());
    }
    for (transfer, ids) in &event_ids {
        assert_eq!(
            ids.len(),
            1,
            "transfer {transfer}: duplicates must carry one id, got {ids:?}"
        );
    }
    let delivered = hook.delivered().len();
    println!(
        "{} transfers, {delivered} deliveries ({} duplicates)",
        ids.len(),
        delivered - ids.len()
    );
}

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .args(args)
        .status()
        .unwrap_or_else(|error| panic!("cannot run rabbitmqctl {args:?}: {error}"));
    assert!(status.success(), "rabbitmqctl {args:?} failed: {status}");
}

#[tokio::test]
async fn no_event_is_lost_when_rabbitmq_restarts() {
    let _turn = TURN.lock().await;
    let Some(servers) = Servers::get().await else {
        return;
    };
    let s = Scenario::start_with(servers.options(), AccessList::Disabled).await;
    let hook = subscribed_recipient(&s).await;

    let mut ids = Vec::new();
    for n in 0..TRANSFERS {
        if n == FAULT_AFTER {
            rabbitmqctl(&["stop_app"]);
            tokio::time::sleep(Duration::from_secs(2)).await;
            rabbitmqctl(&["start_app"]);
            rabbitmqctl(&["await_startup"]);
        }
        ids.push(s.published(format!("transfer {n}").as_bytes()).await);
    }
    assert_every_transfer_arrived(&hook, &ids).await;
}

#[tokio::test]
async fn no_event_is_lost_when_the_event_service_is_killed() {
    let _turn = TURN.lock().await;
    let Some(servers) = Servers::get().await else {
        return;
    };
    let events_port = free_port();
    let events_url = format!("http://127.0.0.1:{events_port}");
    let front = servers
        .options()
        .services(&["gateway", "token", "access", "filetransfer"])
        .env("BROKER_EVENTS_URL", &events_url);
    let s = Scenario::start_with(front, AccessList::Disabled).await;
    let start_events = || {
        Broker::start(
            servers
                .options()
                .services(&["events"])
                .env("BROKER_GRPC_ADDR", format!("127.0.0.1:{events_port}"))
                .env("BROKER_PUBLIC_URL", s.base_url())
                .env("BROKER_TOKEN_URL", s.listening("token"))
                .env("BROKER_ACCESS_URL", s.listening("access")),
        )
    };
    let mut events = Some(start_events().await);
    let hook = subscribed_recipient(&s).await;
    // Slow answers keep deliveries in flight, so the kill catches leased ones.
    hook.answer_after(Duration::from_millis(200));

    let mut ids = Vec::new();
    for n in 0..TRANSFERS {
        if n == FAULT_AFTER {
            // Dropping kills it with SIGKILL: no shutdown, leases and unacked messages held.
            drop(events.take());
        }
        if n == 2 * FAULT_AFTER {
            events = Some(start_events().await);
        }
        ids.push(s.published(format!("transfer {n}").as_bytes()).await);
    }
    assert_every_transfer_arrived(&hook, &ids).await;
    drop(events);
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}
