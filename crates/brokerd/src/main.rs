//! `brokerd`: runs Broker.
//!
//! With no arguments every service runs in this one process, each behind its own gRPC server on
//! loopback, with SQLite and files under the data directory: the embedded mode a fresh machine
//! needs. `brokerd <service>` runs one service alone, for production deployments where each
//! service scales on its own against PostgreSQL.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use broker_common::Shutdown;
use broker_common::admin::{AdminToken, AdminTokenSource};
use broker_common::auth::{GrpcJwks, TokenVerifier};
use broker_common::config::{self, CommonConfig, ServiceUrls};
use broker_common::grpc;
use broker_filetransfer::FileTransferConfig;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::token::token_service_client::TokenServiceClient;
use broker_token::TokenConfig;
use broker_token::exchange::GrpcServiceOwners;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

const USAGE: &str = "\
Usage: brokerd [SERVICE]

Runs Broker. Without SERVICE, every service runs in this process (embedded mode).

Services:
  gateway   the public HTTP gateway (BROKER_HTTP_ADDR)
  token     the token service (gRPC on BROKER_GRPC_ADDR, default port 50051)
  access    the access registry (gRPC on BROKER_GRPC_ADDR, default port 50052)
  filetransfer
            the file-transfer service (gRPC on BROKER_GRPC_ADDR, default port 50053)

Configuration comes from BROKER_* environment variables; see the README.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Embedded,
    Gateway,
    Token,
    Access,
    FileTransfer,
}

impl Mode {
    fn runs(self, service: Mode) -> bool {
        self == Mode::Embedded || self == service
    }
}

fn parse_args() -> Result<Option<Mode>, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => Ok(Some(Mode::Embedded)),
        ["gateway"] => Ok(Some(Mode::Gateway)),
        ["token"] => Ok(Some(Mode::Token)),
        ["access"] => Ok(Some(Mode::Access)),
        ["filetransfer"] => Ok(Some(Mode::FileTransfer)),
        ["-h" | "--help" | "help"] => Ok(None),
        ["-V" | "--version"] => {
            println!("brokerd {}", env!("CARGO_PKG_VERSION"));
            std::process::exit(0);
        }
        other => Err(format!("unknown arguments: {}", other.join(" "))),
    }
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

/// Binds a service's gRPC listener: an ephemeral loopback port when embedded, else
/// `BROKER_GRPC_ADDR` or the service's default port.
async fn bind_grpc(mode: Mode, common: &CommonConfig, port: u16) -> anyhow::Result<TcpListener> {
    let addr = match mode {
        Mode::Embedded => SocketAddr::from(([127, 0, 0, 1], 0)),
        _ => common.grpc_addr_or(port),
    };
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding gRPC to {addr}"))
}

async fn run(mode: Mode) -> anyhow::Result<()> {
    let mut common: CommonConfig = config::load()?;
    let service_name = match mode {
        Mode::Embedded => "brokerd",
        Mode::Gateway => "broker-gateway",
        Mode::Token => "broker-token",
        Mode::Access => "broker-access",
        Mode::FileTransfer => "broker-filetransfer",
    };
    let _telemetry = broker_common::telemetry::init(service_name, &common)?;
    let (admin, source) = AdminToken::resolve(&common).context("resolving the admin token")?;
    let mut urls: ServiceUrls = config::load()?;
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    let mut services = JoinSet::new();
    if mode != Mode::Embedded && common.amqp_url.is_none() && mode.runs(Mode::Access) {
        tracing::warn!("BROKER_AMQP_URL is unset: other processes will not hear of access changes");
    }
    let bus = broker_common::bus::connect(&common).await?;

    // Every listener is bound before any service is built: an ephemeral gateway port fixes the
    // public URL (and so the issuer), and embedded services learn each other's addresses.
    let gateway = if mode.runs(Mode::Gateway) {
        let listener = TcpListener::bind(common.http_addr)
            .await
            .with_context(|| format!("binding the gateway to {}", common.http_addr))?;
        common.http_addr = listener.local_addr()?;
        Some(listener)
    } else {
        None
    };
    let token = if mode.runs(Mode::Token) {
        let listener = bind_grpc(mode, &common, config::TOKEN_PORT).await?;
        urls.token_url = broker_common::grpc::loopback_url(listener.local_addr()?);
        Some(listener)
    } else {
        None
    };
    let access = if mode.runs(Mode::Access) {
        let listener = bind_grpc(mode, &common, config::ACCESS_PORT).await?;
        urls.access_url = broker_common::grpc::loopback_url(listener.local_addr()?);
        Some(listener)
    } else {
        None
    };

    let filetransfer = if mode.runs(Mode::FileTransfer) {
        let listener = bind_grpc(mode, &common, config::FILETRANSFER_PORT).await?;
        urls.filetransfer_url = broker_common::grpc::loopback_url(listener.local_addr()?);
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
