//! `brokerd`: runs Broker.
//!
//! With no arguments every service runs in this one process, each behind its own gRPC server on
//! loopback, with SQLite and files under the data directory: the embedded mode a fresh machine
//! needs. `brokerd <service>` runs one service alone, for production deployments where each
//! service scales on its own against PostgreSQL; `brokerd <service> <service>…` runs a few
//! together (and reaches the rest at their configured URLs).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use broker_common::Shutdown;
use broker_common::admin::{AdminToken, AdminTokenSource};
use broker_common::auth::{GrpcJwks, TokenVerifier};
use broker_common::config::{self, CommonConfig, ServiceUrls};
use broker_common::grpc;
use broker_events::EventsConfig;
use broker_filetransfer::FileTransferConfig;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::token::token_service_client::TokenServiceClient;
use broker_token::TokenConfig;
use broker_token::exchange::GrpcServiceOwners;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

const USAGE: &str = "\
Usage: brokerd [SERVICE...]

Runs Broker. Without SERVICE, every service runs in this process (embedded mode). With one
SERVICE it runs alone on BROKER_GRPC_ADDR (or its default port); with several, they share this
process on loopback ports the way embedded mode does, and reach the others at BROKER_*_URL.

Services:
  gateway   the public HTTP gateway (BROKER_HTTP_ADDR)
  token     the token service (gRPC on BROKER_GRPC_ADDR, default port 50051)
  access    the access registry (gRPC on BROKER_GRPC_ADDR, default port 50052)
  filetransfer
            the file-transfer service (gRPC on BROKER_GRPC_ADDR, default port 50053)
  events    the event service: subscriptions and webhook delivery (gRPC on
            BROKER_GRPC_ADDR, default port 50054)

Configuration comes from BROKER_* environment variables; see the README.";

/// One of Broker's services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Service {
    Gateway,
    Token,
    Access,
    FileTransfer,
    Events,
}

impl Service {
    const ALL: [Service; 5] = [
        Service::Gateway,
        Service::Token,
        Service::Access,
        Service::FileTransfer,
        Service::Events,
    ];

    fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Token => "token",
            Service::Access => "access",
            Service::FileTransfer => "filetransfer",
            Service::Events => "events",
        }
    }
}

/// The services this process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mode {
    services: BTreeSet<Service>,
}

impl Mode {
    fn runs(&self, service: Service) -> bool {
        self.services.contains(&service)
    }

    /// Every service: the embedded mode.
    fn is_embedded(&self) -> bool {
        self.services.len() == Service::ALL.len()
    }

    /// One service alone, as production runs them: it serves on its configured address.
    fn is_alone(&self) -> bool {
        self.services.len() == 1
    }

    /// The name traces and logs carry.
    fn process_name(&self) -> String {
        match self.services.iter().next() {
            Some(service) if self.is_alone() => format!("broker-{}", service.name()),
            _ => "brokerd".to_owned(),
        }
    }
}

fn parse_args() -> Result<Option<Mode>, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut services = BTreeSet::new();
    for arg in &args {
        match arg.as_str() {
            "-h" | "--help" | "help" => return Ok(None),
            "-V" | "--version" => {
                println!("brokerd {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            name => {
                let service = Service::ALL
                    .into_iter()
                    .find(|service| service.name() == name)
                    .ok_or_else(|| format!("unknown service: {name}"))?;
                services.insert(service);
            }
        }
    }
    if services.is_empty() {
        services.extend(Service::ALL);
    }
    Ok(Some(Mode { services }))
}

fn main() -> ExitCode {
    let mode = match parse_args() {
        Ok(Some(mode)) => mode,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("brokerd: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("brokerd: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(mode)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("brokerd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Binds a service's gRPC listener: `BROKER_GRPC_ADDR` or the service's default port when it
/// runs alone, else an ephemeral loopback port (its neighbours in this process learn it).
async fn bind_grpc(mode: &Mode, common: &CommonConfig, port: u16) -> anyhow::Result<TcpListener> {
    let addr = if mode.is_alone() {
        common.grpc_addr_or(port)
    } else {
        SocketAddr::from(([127, 0, 0, 1], 0))
    };
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding gRPC to {addr}"))
}

async fn run(mode: Mode) -> anyhow::Result<()> {
    let mut common: CommonConfig = config::load()?;
    let _telemetry = broker_common::telemetry::init(&mode.process_name(), &common)?;
    let (admin, source) = AdminToken::resolve(&common).context("resolving the admin token")?;
    let mut urls: ServiceUrls = config::load()?;
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    let mut services = JoinSet::new();
    if !mode.is_embedded() && common.amqp_url.is_none() && mode.runs(Service::Access) {
        tracing::warn!("BROKER_AMQP_URL is unset: other processes will not hear of access changes");
    }
    let bus = broker_common::bus::connect(&common).await?;

    // Every listener is bound before any service is built: an ephemeral gateway port fixes the
    // public URL (and so the issuer), and embedded services learn each other's addresses.
    let gateway = if mode.runs(Service::Gateway) {
        let listener = TcpListener::bind(common.http_addr)
            .await
            .with_context(|| format!("binding the gateway to {}", common.http_addr))?;
        common.http_addr = listener.local_addr()?;
        Some(listener)
    } else {
        None
    };
    let token = if mode.runs(Service::Token) {
        let listener = bind_grpc(&mode, &common, config::TOKEN_PORT).await?;
        urls.token_url = broker_common::grpc::loopback_url(listener.local_addr()?);
        Some(listener)
    } else {
        None
    };
    let access = if mode.runs(Service::Access) {
        let listener = bind_grpc(&mode, &common, config::ACCESS_PORT).await?;
        urls.access_url = broker_common::grpc::loopback_url(listener.local_addr()?);
        Some(listener)
    } else {
        None
    };

    let filetransfer = if mode.runs(Service::FileTransfer) {
        let listener = bind_grpc(&mode, &common, config::FILETRANSFER_PORT).await?;
        urls.filetransfer_url = broker_common::grpc::loopback_url(listener.local_addr()?);
        Some(listener)
    } else {
        None
    };

    let events = if mode.runs(Service::Events) {
        let listener = bind_grpc(&mode, &common, config::EVENTS_PORT).await?;
        urls.events_url = broker_common::grpc::loopback_url(listener.local_addr()?);
        Some(listener)
    } else {
        None
    };

    if let Some(listener) = token {
        let addr = listener.local_addr()?;
        let token_config: TokenConfig = config::load()?;
        let owners = GrpcServiceOwners(AccessRegistryClient::new(grpc::channel(&urls.access_url)?));
        let token =
            broker_token::build(&common, &token_config, admin.clone(), Arc::new(owners)).await?;
        services.spawn(token.serve(listener, shutdown.clone()));
        announce("token", addr);
    }

    if let Some(listener) = access {
        let addr = listener.local_addr()?;
        let verifier = verifier(&common, &urls)?;
        let access = broker_access::build(&common, admin.clone(), verifier, bus.clone()).await?;
        services.spawn(access.serve(listener, shutdown.clone()));
        announce("access", addr);
    }

    if let Some(listener) = filetransfer {
        let addr = listener.local_addr()?;
        let config: FileTransferConfig = config::load()?;
        let access = AccessRegistryClient::new(grpc::channel(&urls.access_url)?);
        let filetransfer = broker_filetransfer::build(
            &common,
            &config,
            verifier(&common, &urls)?,
            bus.clone(),
            access,
        )
        .await?;
        services.spawn(filetransfer.serve(listener, shutdown.clone()));
        announce("filetransfer", addr);
    }

    if let Some(listener) = events {
        let addr = listener.local_addr()?;
        let config: EventsConfig = config::load()?;
        let access = AccessRegistryClient::new(grpc::channel(&urls.access_url)?);
        let events = broker_events::build(
            &common,
            &config,
            admin.clone(),
            verifier(&common, &urls)?,
            bus.clone(),
            access,
        )
        .await?;
        services.spawn(events.serve(listener, shutdown.clone()));
        announce("events", addr);
    }

    if let Some(listener) = gateway {
        let addr = listener.local_addr()?;
        let gateway_urls = urls.clone();
        let (common, admin, shutdown) = (common.clone(), admin.clone(), shutdown.clone());
        services.spawn(async move {
            broker_gateway::serve(&common, gateway_urls, admin, listener, shutdown).await
        });
        announce("gateway", addr);
        match &source {
            AdminTokenSource::Configured => println!("admin token: from BROKER_ADMIN_TOKEN"),
            AdminTokenSource::File(path) => println!("admin token: stored in {}", path.display()),
        }
    }

    // The first service to stop (by error or signal) stops the others.
    let mut outcome = Ok(());
    while let Some(result) = services.join_next().await {
        shutdown.trigger();
        let result = result.context("a service panicked").and_then(|r| r);
        if let Err(error) = result
            && outcome.is_ok()
        {
            outcome = Err(error);
        }
    }
    outcome
}

/// A verifier of the Broker tokens callers forward, with keys fetched from the token service.
fn verifier(common: &CommonConfig, urls: &ServiceUrls) -> anyhow::Result<Arc<TokenVerifier>> {
    let jwks = GrpcJwks(TokenServiceClient::new(grpc::channel(&urls.token_url)?));
    Ok(Arc::new(TokenVerifier::new(
        common.issuer(),
        common.platform_issuer(),
        Arc::new(jwks),
    )))
}

/// The line tooling and tests wait for: `listening: <service> http://<addr>`.
fn announce(service: &str, addr: SocketAddr) {
    println!("listening: {service} http://{addr}");
}
