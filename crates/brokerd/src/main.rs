//! `brokerd`: Broker's daemon. `brokerd` alone runs every service in one process (embedded
//! mode: SQLite, the in-process bus, local files); `brokerd <service>` runs one service alone,
//! for production deployments where each service scales on its own against PostgreSQL;
//! `brokerd <service> <service>…` runs a few together (and reaches the rest at their configured
//! URLs). `brokerd --demo` is embedded mode seeded for a first file transfer; `brokerd migrate`
//! applies database migrations and exits; `brokerd backup <dir>` / `brokerd restore <dir>` copy
//! the embedded data directory out and back. The composition lives in the library (`lib.rs`); this
//! file parses arguments, reads the configuration and reports.

use std::path::PathBuf;
use std::process::ExitCode;

use broker_common::Shutdown;
use broker_common::admin::AdminTokenSource;
use broker_common::config::{self, CommonConfig};
use brokerd::{Config, Mode, Service, data_dir};

const USAGE: &str = "\
Usage: brokerd [SERVICE...]
       brokerd --demo
       brokerd migrate [SERVICE...]
       brokerd backup DIR
       brokerd restore [--force] DIR

Runs Broker. Without SERVICE, every service runs in this process (embedded mode). With one
SERVICE it runs alone on BROKER_GRPC_ADDR (or its default port); with several, they share this
process on loopback ports the way embedded mode does, and reach the others at BROKER_*_URL.

  --demo    embedded mode, seeded for a first transfer: a service owner, a broker resource,
            and a sender and a recipient with clients, keys and `broker` CLI profiles under
            <BROKER_DATA_DIR>/demo; prints the `broker` commands that send and receive a file
  migrate   applies the database migrations of the SERVICEs named (default: token, access,
            filetransfer and events) to BROKER_DATABASE_URL, or to the SQLite files in
            BROKER_DATA_DIR, and exits; run it before a new version's services start
  backup    copies the SQLite databases and stored files of BROKER_DATA_DIR into DIR (new
            or empty), consistently, while the broker runs (embedded mode only)
  restore   copies a backup DIR into BROKER_DATA_DIR, which must be new or empty; --force
            first removes what it holds (stop the broker first)

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
    Backup(PathBuf),
    Restore { from: PathBuf, force: bool },
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
        [backup, dir] if backup == "backup" => Ok(Command::Backup(dir.into())),
        [restore, rest @ ..] if restore == "restore" => match rest {
            [dir] => Ok(Command::Restore {
                from: dir.into(),
                force: false,
            }),
            [force, dir] | [dir, force] if force == "--force" => Ok(Command::Restore {
                from: dir.into(),
                force: true,
            }),
            _ => Err("restore takes a backup directory (and optionally --force)".to_owned()),
        },
        [backup, ..] if backup == "backup" => {
            Err("backup takes one directory to write the backup into".to_owned())
        }
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
        Command::Backup(into) => runtime.block_on(backup(into)),
        Command::Restore { from, force } => restore(&from, force),
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
    let databases = data_dir::databases_of(&config.common, &mode);
    data_dir::check(&data_dir, &databases)?;
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    let running = brokerd::start(&mode, config, shutdown).await?;
    data_dir::record(&data_dir, &databases)?;
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
    let outcome = running.wait().await;
    // Every row into the `.db` files, where operators and file-level backups look.
    let checkpointed = data_dir::checkpoint(&databases).await;
    outcome?;
    Ok(checkpointed?)
}

/// Applies `services`' migrations and returns.
async fn migrate(services: Vec<Service>) -> anyhow::Result<()> {
    let common: CommonConfig = config::load()?;
    let _telemetry = broker_common::telemetry::init("broker-migrate", &common)?;
    let databases = data_dir::sqlite_databases(&common, services.iter().copied());
    data_dir::check(&common.data_dir, &databases)?;
    for service in services {
        brokerd::migrate::migrate(service, &common).await?;
        println!("migrated: {service}");
    }
    data_dir::record(&common.data_dir, &databases)?;
    data_dir::checkpoint(&databases).await?;
    Ok(())
}

/// Copies the embedded data directory into `into` while the broker may run.
async fn backup(into: PathBuf) -> anyhow::Result<()> {
    let common: CommonConfig = config::load()?;
    let copied = data_dir::backup(&common, &into).await?;
    println!(
        "backed up {} databases and {} files into {}",
        copied.databases,
        copied.files,
        into.display()
    );
    Ok(())
}

/// Copies the backup `from` into the data directory.
fn restore(from: &std::path::Path, force: bool) -> anyhow::Result<()> {
    let common: CommonConfig = config::load()?;
    let files = data_dir::restore(from, &common.data_dir, force)?;
    println!(
        "restored {files} files from {} into {}",
        from.display(),
        common.data_dir.display()
    );
    Ok(())
}
