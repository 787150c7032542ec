//! `brokerd`: runs Broker.
//!
//! With no arguments every service runs in this one process, each behind its own gRPC server on
//! loopback, with SQLite and files under the data directory: the embedded mode a fresh machine
//! needs. `brokerd <service>` runs one service alone, for production deployments where each
//! service scales on its own against PostgreSQL.

use std::process::ExitCode;

use anyhow::Context;
use broker_common::Shutdown;
use broker_common::admin::{AdminToken, AdminTokenSource};
use broker_common::config::{self, CommonConfig};
use broker_gateway::GatewayConfig;
use broker_token::TokenConfig;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

const USAGE: &str = "\
Usage: brokerd [SERVICE]

Runs Broker. Without SERVICE, every service runs in this process (embedded mode).

Services:
  gateway   the public HTTP gateway (BROKER_HTTP_ADDR)
  token     the token service (gRPC on BROKER_GRPC_ADDR)

Configuration comes from BROKER_* environment variables; see the README.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Embedded,
    Gateway,
    Token,
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

async fn run(mode: Mode) -> anyhow::Result<()> {
    let mut common: CommonConfig = config::load()?;
    let service_name = match mode {
        Mode::Embedded => "brokerd",
        Mode::Gateway => "broker-gateway",
        Mode::Token => "broker-token",
    };
    let _telemetry = broker_common::telemetry::init(service_name, &common)?;
    let (admin, source) = AdminToken::resolve(&common).context("resolving the admin token")?;
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    let mut services = JoinSet::new();

    // The gateway binds first so that an ephemeral port (`:0`) is known before the token
    // service derives its issuer from the public URL.
    let gateway = match mode {
        Mode::Embedded | Mode::Gateway => {
            let listener = TcpListener::bind(common.http_addr)
                .await
                .with_context(|| format!("binding the gateway to {}", common.http_addr))?;
            common.http_addr = listener.local_addr()?;
            Some(listener)
        }
        Mode::Token => None,
    };
    let mut gateway_config: GatewayConfig = config::load()?;

    if matches!(mode, Mode::Embedded | Mode::Token) {
        let addr = match mode {
            Mode::Embedded => std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            _ => common.grpc_addr,
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the token service to {addr}"))?;
        let addr = listener.local_addr()?;
        let token_config: TokenConfig = config::load()?;
        let token = broker_token::build(&common, &token_config, admin.clone()).await?;
        services.spawn(token.serve(listener, shutdown.clone()));
        gateway_config.token_url = broker_common::grpc::loopback_url(addr);
        announce("token", addr);
    }

    if let Some(listener) = gateway {
        let addr = listener.local_addr()?;
        let (common, admin, shutdown) = (common.clone(), admin.clone(), shutdown.clone());
        services.spawn(async move {
            broker_gateway::serve(&common, gateway_config, admin, listener, shutdown).await
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

/// The line tooling and tests wait for: `listening: <service> http://<addr>`.
fn announce(service: &str, addr: std::net::SocketAddr) {
    println!("listening: {service} http://{addr}");
}
