//! Broker run the way production runs it: every service its own `brokerd <service>` process,
//! file transfer and events as several replicas, all on one fresh PostgreSQL database, one
//! RabbitMQ exchange and one S3 bucket (moto), with the gateway reaching each service's
//! replicas through comma-separated URLs, between which its gRPC calls are balanced.
//!
//! [`Cluster::start`] starts the processes in the order their URLs become known (the access
//! registry and the token service need each other, so the token service's port is chosen
//! first), then the gateway, and sets the scenario's resource up through it: a [`Cluster`]
//! is used as the [`Scenario`] it derefs to.
//!
//! Which replica did the work is read from each process, never assumed: every service process
//! logs the gRPC calls it serves ([`served_calls`]), and a [`crate::Webhook`] can name the
//! event-service process that delivered each POST.

use std::time::{Duration, Instant};

use crate::broker::{Broker, BrokerOptions, Database};
use crate::s3::S3Server;
use crate::scenario::{AccessList, Scenario};

/// `Upload`, as the file-transfer service's gRPC path names it.
pub const FILETRANSFER_UPLOAD: &str = "/broker.filetransfer.v1.FileTransferService/Upload";
/// `Download` of the file-transfer service.
pub const FILETRANSFER_DOWNLOAD: &str = "/broker.filetransfer.v1.FileTransferService/Download";
/// The package of every file-transfer call.
pub const FILETRANSFER: &str = "/broker.filetransfer.v1.FileTransferService/";
/// The package of every event-service call.
pub const EVENTS: &str = "/broker.events.v1.EventService/";

/// What the gRPC servers' trace layer logs (at debug) when a call comes in.
const CALL_STARTED: &str = "started processing request";

/// How many replicas of the scaled services to run.
#[derive(Debug, Clone, Copy)]
pub struct Replicas {
    /// `brokerd filetransfer` processes.
    pub filetransfer: usize,
    /// `brokerd events` processes.
    pub events: usize,
}

/// Every service in its own process; dropped, it kills them all and then drops the database.
pub struct Cluster {
    // Fields drop in order: the gateway first, the servers last.
    scenario: Scenario,
    /// `brokerd token`.
    pub token: Broker,
    /// `brokerd access`.
    pub access: Broker,
    /// The `brokerd filetransfer` replicas (remove one and drop it to kill it with SIGKILL).
    pub filetransfer: Vec<Broker>,
    /// The `brokerd events` replicas.
    pub events: Vec<Broker>,
    shared: Shared,
    // The servers [`Cluster::start`] started for it (none when started on given backends).
    s3: Option<S3Server>,
    _database: Option<Database>,
}

/// The servers a cluster runs on, when the test provides them (see [`Cluster::start_on`]).
pub struct Backends {
    /// The PostgreSQL database every service uses.
    pub database_url: String,
    /// The RabbitMQ server.
    pub amqp_url: String,
    /// The settings pointing file storage at S3 (e.g. [`S3Server::broker_env`]).
    pub storage: Vec<(&'static str, String)>,
    /// Further `BROKER_*` settings of every process (they win over the cluster's own).
    pub settings: Vec<(&'static str, String)>,
}

impl std::ops::Deref for Cluster {
    type Target = Scenario;

    /// The cluster is used through its gateway, as a scenario.
    fn deref(&self) -> &Scenario {
        &self.scenario
    }
}

/// What every process of one cluster shares.
struct Shared {
    database_url: String,
    amqp: String,
    exchange: String,
    admin: String,
    public_url: String,
    settings: Vec<(&'static str, String)>,
    storage: Vec<(&'static str, String)>,
}

impl Shared {
    /// A service process's options: the shared servers and credential, the gateway's public
    /// URL (the token issuer), and its gRPC calls logged so the work it did can be counted.
    fn options(&self, service: &'static str) -> BrokerOptions {
        let log = std::env::var("BROKER_TEST_LOG").unwrap_or_else(|_| "warn".to_owned());
        let options = Scenario::options(Database::Sqlite)
            .services(&[service])
            .database_url(&self.database_url)
            .admin_token(&self.admin)
            .env("BROKER_AMQP_URL", &self.amqp)
            .env("BROKER_AMQP_EXCHANGE", &self.exchange)
            .env("BROKER_PUBLIC_URL", &self.public_url)
            // Each call's span (named by its path) and the trace layer's line when it starts.
            .env(
                "BROKER_LOG",
                format!("{log},broker_common::grpc=info,tower_http=debug"),
            )
            // Test webhooks validate at once, and a failed delivery is tried again soon.
            .env("BROKER_EVENTS_VALIDATION_SCHEDULE", "200ms,500ms,1s")
            .env("BROKER_EVENTS_RETRY_SCHEDULE", "200ms,500ms,1s,2s,2s,2s");
        self.settings
            .iter()
            .fold(options, |options, (name, value)| options.env(name, value))
    }

    /// A file-transfer or event-service process's options: those of [`Shared::options`] and
    /// where the token service and the access registry are.
    fn backend(&self, service: &'static str, token: &Broker, access: &Broker) -> BrokerOptions {
        let options = self
            .options(service)
            .env("BROKER_TOKEN_URL", token.listening("token"))
            .env("BROKER_ACCESS_URL", access.listening("access"));
        match service {
            "filetransfer" => self
                .storage
                .iter()
                .fold(options, |options, (name, value)| options.env(name, value)),
            _ => options,
        }
    }
}

impl Cluster {
    /// Starts token, access, `replicas` of file transfer and events, and the gateway, each its
    /// own process, and sets the scenario's resource up with `access_list`. `None` (after printing
    /// why) when PostgreSQL, RabbitMQ or moto is missing outside CI; panics in CI.
    pub async fn start(replicas: Replicas, access_list: AccessList) -> Option<Self> {
        Self::start_with(replicas, access_list, Vec::new()).await
    }

    /// [`Cluster::start`] with further `BROKER_*` settings of every process.
    pub async fn start_with(
        replicas: Replicas,
        access_list: AccessList,
        settings: Vec<(&'static str, String)>,
    ) -> Option<Self> {
        let amqp_url = crate::amqp::amqp_url()?;
        let database = Database::postgres().await?;
        let s3 = S3Server::start("broker-cluster").await?;
        let Database::Postgres(postgres) = &database else {
            unreachable!("Database::postgres gives PostgreSQL");
        };
        let backends = Backends {
            database_url: postgres.url().to_owned(),
            amqp_url,
            storage: s3.broker_env("files"),
            settings,
        };
        let mut cluster = Self::start_on(backends, replicas, access_list).await;
        cluster.s3 = Some(s3);
        cluster._database = Some(database);
        Some(cluster)
    }

    /// [`Cluster::start`] on servers the test owns, e.g. private ones it restarts.
    pub async fn start_on(backends: Backends, replicas: Replicas, access_list: AccessList) -> Self {
        let started = Instant::now();
        let gateway_port = free_port();
        let shared = Shared {
            database_url: backends.database_url,
            amqp: backends.amqp_url,
            exchange: format!("broker-cluster-{}", uuid::Uuid::new_v4().simple()),
            admin: format!("admin-{}", uuid::Uuid::new_v4().simple()),
            public_url: format!("http://127.0.0.1:{gateway_port}"),
            settings: backends.settings,
            storage: backends.storage,
        };

        // The access registry verifies tokens with the token service, whose exchange asks the
        // registry about service owners: the token service's address is fixed first.
        let token_addr = format!("127.0.0.1:{}", free_port());
        let access = Broker::start(
            shared
                .options("access")
                .env("BROKER_TOKEN_URL", format!("http://{token_addr}")),
        )
        .await;
        let token = Broker::start(
            shared
                .options("token")
                .env("BROKER_GRPC_ADDR", &token_addr)
                .env("BROKER_ACCESS_URL", access.listening("access")),
        )
        .await;
        let backend = |service: &'static str| shared.backend(service, &token, &access);
        // Replicas start at once, as a rollout starts them: they race for their schema and
        // migrations on the one database.
        let filetransfer = futures::future::join_all(
            (0..replicas.filetransfer).map(|_| Broker::start(backend("filetransfer"))),
        );
        let events = futures::future::join_all(
            (0..replicas.events).map(|_| Broker::start(backend("events"))),
        );
        let (filetransfer, events) = tokio::join!(filetransfer, events);

        let gateway = shared
            .options("gateway")
            .env("BROKER_HTTP_ADDR", format!("127.0.0.1:{gateway_port}"))
            .env("BROKER_TOKEN_URL", token.listening("token"))
            .env("BROKER_ACCESS_URL", access.listening("access"))
            .env(
                "BROKER_FILETRANSFER_URL",
                urls(&filetransfer, "filetransfer"),
            )
            .env("BROKER_EVENTS_URL", urls(&events, "events"));
        let scenario = Scenario::start_with(gateway, access_list).await;
        println!(
            "cluster of {} processes up and set up in {:?}",
            3 + filetransfer.len() + events.len(),
            started.elapsed()
        );
        Self {
            scenario,
            token,
            access,
            filetransfer,
            events,
            shared,
            s3: None,
            _database: None,
        }
    }

    /// The S3 server holding every replica's file bytes, when [`Cluster::start`] started it.
    pub fn s3(&self) -> Option<&S3Server> {
        self.s3.as_ref()
    }

    /// Starts a new process of `service` (`filetransfer` or `events`) in the place of its
    /// replica `replica`, after that one was killed: on the same gRPC address, which the
    /// gateway's channel keeps dialling. The caller owns the new process.
    pub async fn respawn(&self, service: &'static str, replica: usize) -> Broker {
        let replicas = match service {
            "filetransfer" => &self.filetransfer,
            "events" => &self.events,
            other => panic!("{other} has no replicas"),
        };
        let url = replicas[replica].listening(service);
        let options = self
            .shared
            .backend(service, &self.token, &self.access)
            .env("BROKER_GRPC_ADDR", url.trim_start_matches("http://"));
        Broker::start(options).await
    }

    /// The process ids of the event-service replicas still running, in replica order.
    pub fn events_pids(&self) -> Vec<u32> {
        self.events.iter().filter_map(Broker::pid).collect()
    }

    /// Every process's output, each under its name, for failure messages.
    pub fn outputs(&self) -> String {
        let mut named = vec![
            ("gateway".to_owned(), &self.scenario.broker),
            ("token".to_owned(), &self.token),
            ("access".to_owned(), &self.access),
        ];
        for (service, replicas) in [
            ("filetransfer", &self.filetransfer),
            ("events", &self.events),
        ] {
            named.extend(
                replicas
                    .iter()
                    .enumerate()
                    .map(|(n, process)| (format!("{service} {n}"), process)),
            );
        }
        named
            .iter()
            .map(|(name, process)| format!("--- {name} ---\n{}", process.output()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The replicas' announced URLs, comma-separated, as a `BROKER_*_URL` lists them.
fn urls(replicas: &[Broker], service: &str) -> String {
    replicas
        .iter()
        .map(|replica| replica.listening(service))
        .collect::<Vec<_>>()
        .join(",")
}

/// How many gRPC calls whose path starts with `method` (a full path such as
/// [`FILETRANSFER_UPLOAD`], or a service's prefix such as [`EVENTS`]) `process` logged serving:
/// each call's span is named by its path, and the trace layer logs the call's start once.
pub fn served_calls(process: &Broker, method: &str) -> usize {
    process
        .output()
        .lines()
        .filter(|line| line.contains(CALL_STARTED))
        .filter(|line| {
            line.split("otel.name=")
                .nth(1)
                // The log shows the path quoted.
                .is_some_and(|name| name.trim_start_matches('"').starts_with(method))
        })
        .count()
}

/// Waits until `process` logged serving `calls` calls of `method`, or `timeout` passes (a
/// process's output reaches the test a moment after the call); returns the count.
pub async fn wait_for_served(
    process: &Broker,
    method: &str,
    calls: usize,
    timeout: Duration,
) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let served = served_calls(process, method);
        if served >= calls || Instant::now() > deadline {
            return served;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}
