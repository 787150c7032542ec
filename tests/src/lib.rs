//! Broker's test kit: starts real `brokerd` processes and talks to them the way an Altinn
//! client would, over HTTP (and gRPC where a test needs a single service), so end-to-end tests
//! read like the scenario they prove.
//!
//! - [`broker`]: start a broker ([`Broker::start`]) in embedded mode or as `brokerd token`;
//! - [`api`]: the HTTP face of a running broker, admin calls included;
//! - [`keys`] and [`assertion`]: client key pairs and JWT-bearer grants, valid by default with
//!   one method per rule to break;
//! - [`client`]: a registered client that asks for tokens;
//! - [`checklist`]: table-driven cases that report every failing rule at once;
//! - [`reply`]: an HTTP answer with assertions for RFC 6749 errors and RFC 7807 problems;
//! - [`issuer`]: a fake external Maskinporten-style issuer on loopback;
//! - [`database`]: a fresh PostgreSQL database per test (`BROKER_TEST_DATABASE_URL`);
//! - [`amqp`]: the RabbitMQ server for bus tests (`BROKER_TEST_AMQP_URL`);
//! - [`scenario`]: a broker with a configured broker resource, a sender, recipients and a
//!   stranger, and the file-transfer calls they make;
//! - [`nginx`]: nginx on loopback, the anchor of the transfer benchmarks;
//! - [`events`]: subscriptions, pull and dead letters of the event API;
//! - [`webhook`]: a webhook receiver that records event deliveries and can fail on demand;
//! - [`bench`]: what the benchmarks in `benches/` share;
//! - [`cluster`]: every service its own process, file transfer and events as replicas, on
//!   PostgreSQL, RabbitMQ and S3;
//! - [`sockets`]: which local process holds a loopback connection;
//! - [`raw_http`]: raw TCP connections and hand-written requests to the gateway, and the
//!   process's memory, for tests of the listener's limits;
//! - [`python`]: the pinned Python tools some tests drive (generated client, schemathesis);
//! - [`node`]: the pinned Node.js packages some tests drive (tus-js-client), installed on first use;
//! - [`servers`]: private PostgreSQL and RabbitMQ servers a fault test may restart;
//! - [`s3_proxy`]: a TCP proxy that makes S3 unavailable on demand;
//! - [`tus`]: a tus 1.0 client spoken by hand (create, HEAD, PATCH, terminate).
//!
//! The tests run the `brokerd` binary next to the test executable (`target/debug/brokerd`), so
//! build it first: `cargo build -p brokerd && cargo test -p broker-tests`. `cargo test
//! --workspace` builds it on its own (brokerd has integration tests of its own).

pub mod amqp;
pub mod api;
pub mod assertion;
pub mod bench;
pub mod broker;
pub mod checklist;
pub mod client;
pub mod cluster;
pub mod database;
pub mod events;
pub mod issuer;
pub mod keys;
pub mod nginx;
pub mod node;
pub mod python;
pub mod raw_http;
pub mod reply;
pub mod s3;
pub mod s3_proxy;
pub mod scenario;
pub mod servers;
pub mod sockets;
pub mod tus;
pub mod webhook;

pub use amqp::amqp_url;
pub use api::Api;
pub use assertion::Assertion;
pub use broker::{Broker, BrokerOptions, Database};
pub use checklist::{Checklist, Expected};
pub use client::TestClient;
pub use cluster::{Cluster, Replicas};
pub use database::TestDatabase;
pub use issuer::FakeIssuer;
pub use keys::ClientKeys;
pub use reply::Reply;
pub use scenario::{AccessList, Party, Scenario, service_resource};
pub use webhook::Webhook;

/// Digdir's organisation number: a valid one to register clients with.
pub const DIGDIR: &str = "991825827";
/// Another valid organisation number (Brønnøysundregistrene).
pub const BRREG: &str = "974760673";
/// The sender's scope.
pub const WRITE: &str = "altinn:broker.write";
/// The recipient's scope.
pub const READ: &str = "altinn:broker.read";
/// The scope of event subscriptions and pull.
pub const SUBSCRIBE: &str = "altinn:events.subscribe";
/// The only grant type the token endpoint serves.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `count` distinct valid organisation numbers (mod-11 check digit right), none of them
/// [`DIGDIR`] or [`BRREG`].
pub fn org_numbers(count: usize) -> Vec<String> {
    const WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];
    let mut orgs = Vec::with_capacity(count);
    let mut base: u32 = 31_000_000;
    while orgs.len() < count {
        let digits = format!("{base:08}");
        base += 1;
        let sum: u32 = digits
            .bytes()
            .zip(WEIGHTS)
            .map(|(digit, weight)| u32::from(digit - b'0') * weight)
            .sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => continue,
            check => check,
        };
        orgs.push(format!("{digits}{check}"));
    }
    orgs
}

/// Defines `async fn $name(db: Database)` and runs it as two tests, `$name::sqlite` and
/// `$name::postgres`; the PostgreSQL one skips (outside CI) without `BROKER_TEST_DATABASE_URL`.
///
/// ```ignore
/// broker_tests::on_each_database! {
///     async fn a_client_gets_a_token(db: Database) {
///         let broker = Broker::start(BrokerOptions::new().database(db)).await;
///         // …
///     }
/// }
/// ```
#[macro_export]
macro_rules! on_each_database {
    ($(#[$meta:meta])* async fn $name:ident($db:ident: $database:ty) $body:block) => {
        $(#[$meta])*
        async fn $name($db: $database) $body

        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::Database::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(db) = $crate::Database::postgres().await {
                    super::$name(db).await;
                }
            }
        }
    };
}
