//! `brokerd`: Broker's daemon. `brokerd` alone runs every service in one process (embedded
//! mode: SQLite, the in-process bus, local files); `brokerd <service>` runs one service alone,
//! for production deployments where each service scales on its own against PostgreSQL;
//! `brokerd <service> <service>…` runs a few together (and reaches the rest at their configured
//! URLs). `brokerd --demo` is embedded mode seeded for a first file transfer; `brokerd migrate`
//! applies database migrations and exits. The composition lives in the library (`lib.rs`); this
//! file parses arguments, reads the configuration and reports.

use std::process::ExitCode;

use broker_common::Shutdown;
use broker_common::admin::AdminTokenSource;
use broker_common::config::{self, CommonConfig};
use brokerd::{Config, Mode, Service};

const USAGE: &str = "\
Usage: brokerd [SERVICE...]
       brokerd --demo
       brokerd migrate [SERVICE...]

Runs Broker. Without SERVICE, every service runs in this process (embedded mode). With one
SERVICE it runs alone on BROKER_GRPC_ADDR (or its default port); with several, they share this
process on loopback ports the way embedded mode does, and reach the others at BROKER_*_URL.

  --demo    embedded mode, seeded for a first transfer: a service owner, a broker resource,
            and a sender and a recipient with clients, keys and `broker` CLI profiles under
            <BROKER_DATA_DIR>/demo; prints the `broker` commands that send and receive a file
  migrate   applies the database migrations of the SERVICEs named (default: token, access,
            filetransfer and events) to BROKER_DATABASE_URL, or to the SQLite files in
            BROKER_DATA_DIR, and exits; run it before a new version's services start

Services:
  gateway   the public HTTP gateway (BROKER_HTTP_ADDR)
  token     the token service (gRPC on BROKER_GRPC_ADDR, default port 50051)
  access    the access registry (gRPC on BROKER_GRPC_ADDR, default port 50052)
  filetransfer
            the file-transfer service (gRPC on BROKER_GRPC_ADDR, default port 50053)
  events    the event service: subscriptions and webhook delivery (gRPC on
            BROKER_GRPC_ADDR, default port 50054)

Configuration comes from BROKER_* environment variables; see the README.";

/// What the command line asks for.
enum Command {
    Help,
    Version,
    Run(Mode),
    Demo,
    Migrate(Vec<Service>),
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    for arg in args {
        match arg.as_str() {
            "-h" | "--help" | "help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            _ => {}
        }
    }
    match args {
        [demo] if demo == "--demo" => Ok(Command::Demo),
        [migrate, services @ ..] if migrate == "migrate" => brokerd::migrate::targets(services)
            .map(Command::Migrate)
            .map_err(|error| error.to_string()),
        services => Mode::parse(services)
            .map(Command::Run)
            .map_err(|error| error.to_string()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse_args(&args) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("brokerd {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(command) => command,
        Err(error) => {
            eprintln!("brokerd: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    brokerd::memory::limit_arenas();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("brokerd: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match command {
        Command::Run(mode) => runtime.block_on(run(mode, false)),
        Command::Demo => runtime.block_on(run(Mode::all(), true)),
        Command::Migrate(services) => runtime.block_on(migrate(services)),
        Command::Help | Command::Version => Ok(()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("brokerd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `mode`'s services until they stop; with `demo`, seeds the demo once they listen.
async fn run(mode: Mode, demo: bool) -> anyhow::Result<()> {
    let config = Config::load()?;
    let data_dir = config.common.data_dir.clone();
    let _telemetry = broker_common::telemetry::init(&mode.process_name(), &config.common)?;
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    let running = brokerd::start(&mode, config, shutdown).await?;
    // The lines tooling and tests wait for: `listening: <service> http://<addr>`.
    for (service, addr) in running.listening() {
        println!("listening: {service} http://{addr}");
    }
    if let Some(addr) = running.metrics_addr() {
        println!("listening: metrics http://{addr}");
    }
    if mode.runs(Service::Gateway) {
        match running.admin_token_source() {
            AdminTokenSource::Configured => println!("admin token: from BROKER_ADMIN_TOKEN"),
            AdminTokenSource::File(path) => println!("admin token: stored in {}", path.display()),
        }
    }
    if demo {
        let seeded = brokerd::demo::seed(&running, &data_dir).await?;
        println!("{}", seeded.instructions());
    }
    running.wait().await
}

/// Applies `services`' migrations and returns.
async fn migrate(services: Vec<Service>) -> anyhow::Result<()> {
    let common: CommonConfig = config::load()?;
    let _telemetry = broker_common::telemetry::init("broker-migrate", &common)?;
    for service in services {
        brokerd::migrate::migrate(service, &common).await?;
        println!("migrated: {service}");
    }
    Ok(())
}
