//! Starting `brokerd` for a test: a fresh data directory, a random admin token, random ports,
//! and the process killed when the [`Broker`] is dropped.
//!
//! The binary is the one built next to the test executable (`target/<profile>/brokerd`); set
//! `BROKERD_BIN` to use another. Start-up is over when every `listening: <service> <url>` line
//! the mode prints has appeared on stdout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use broker_common::Shutdown;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::token::token_service_client::TokenServiceClient;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::api::Api;
use crate::database::{self, TestDatabase};

/// How long start-up may take before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Which database a broker uses.
#[derive(Debug)]
pub enum Database {
    /// SQLite files in the broker's data directory.
    Sqlite,
    /// A fresh PostgreSQL database, dropped after the broker.
    Postgres(TestDatabase),
}

impl Database {
    /// A fresh PostgreSQL database, or `None` when PostgreSQL tests skip (see [`database`]).
    pub async fn postgres() -> Option<Self> {
        database::postgres().await.map(Self::Postgres)
    }
}

/// How to start a broker.
#[derive(Debug)]
pub struct BrokerOptions {
    /// The services to run (`brokerd <service>…`); empty runs them all (embedded).
    services: Vec<&'static str>,
    args: Vec<String>,
    data_dir: Option<PathBuf>,
    database: Database,
    database_url: Option<String>,
    admin_token: String,
    env: Vec<(String, String)>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl BrokerOptions {
    /// Embedded mode on SQLite with a random admin token.
    pub fn new() -> Self {
        Self {
            services: Vec::new(),
            args: Vec::new(),
            data_dir: None,
            database: Database::Sqlite,
            database_url: None,
            admin_token: format!("admin-{}", uuid::Uuid::new_v4().simple()),
            env: Vec::new(),
        }
    }

    /// `brokerd token`: only the token service, on gRPC.
    pub fn token_service() -> Self {
        Self::new().services(&["token"])
    }

    /// `brokerd <service>…`: only these services (several share the process on loopback
    /// ports); the rest are reached at their `BROKER_*_URL`.
    pub fn services(mut self, services: &[&'static str]) -> Self {
        self.services = services.to_vec();
        self
    }

    /// An argument after the services, e.g. `--demo`.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Runs on `dir`, which the caller owns: it is kept when the broker stops, so another
    /// broker can start on it (a fresh directory, removed afterwards, otherwise).
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// The database the broker owns (a PostgreSQL one is dropped after the broker stops).
    pub fn database(mut self, database: Database) -> Self {
        self.database = database;
        self
    }

    /// A database shared with other brokers, which the caller keeps alive.
    pub fn database_url(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self
    }

    /// The admin credential (to share one between processes).
    pub fn admin_token(mut self, token: &str) -> Self {
        token.clone_into(&mut self.admin_token);
        self
    }

    /// An extra environment variable, e.g. `BROKER_TOKEN_LIFETIME_SECONDS`.
    pub fn env(mut self, name: &str, value: impl ToString) -> Self {
        self.env.push((name.to_owned(), value.to_string()));
        self
    }
}

/// Everything a process wrote to stdout and stderr. Cheap to clone.
#[derive(Clone, Default)]
pub struct ProcessLog(Arc<Mutex<String>>);

impl ProcessLog {
    /// The output so far.
    pub fn text(&self) -> String {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn push(&self, stream: &str, line: &str) {
        if let Ok(mut log) = self.0.lock() {
            log.push_str(stream);
            log.push_str(line);
            log.push('\n');
        }
    }
}

/// How a broker's services run.
enum Process {
    /// A `brokerd` child process, killed on drop.
    Child(Child),
    /// Services started inside the test process, stopped on drop.
    InProcess(Shutdown),
}

/// A running `brokerd`, killed on drop.
pub struct Broker {
    // Declared first so it is dropped (stopped) before the database is.
    process: Process,
    api: Api,
    listening: HashMap<String, String>,
    data_dir: PathBuf,
    /// Whether the data directory is the broker's own, removed when it stops.
    owns_data_dir: bool,
    log: ProcessLog,
    _database: Database,
}

impl std::ops::Deref for Broker {
    type Target = Api;

    /// A broker is used through its HTTP API: `broker.get("/health")`.
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Broker {
    /// Starts `brokerd` and waits until it listens; panics (with its output) when it does not.
    pub async fn start(options: BrokerOptions) -> Self {
        let binary = brokerd_binary();
        let (data_dir, owns_data_dir) = options.resolve_data_dir();
        let mut command = Command::new(&binary);
        command.args(&options.services).args(&options.args);
        // The test's own BROKER_* settings must not leak into the broker.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("BROKER_") {
                command.env_remove(name);
            }
        }
        command
            .envs(options.settings(&data_dir))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));

        let log = ProcessLog::default();
        let (lines, mut listening_lines) = mpsc::unbounded_channel();
        drain(
            child.stdout.take().expect("stdout"),
            "",
            log.clone(),
            Some(lines),
        );
        drain(
            child.stderr.take().expect("stderr"),
            "[stderr] ",
            log.clone(),
            None,
        );

        let mut needed: Vec<&str> = if options.services.is_empty() {
            vec!["gateway", "token"]
        } else {
            options.services.clone()
        };
        // Announced after the services, unless a test switched it off.
        if !options
            .env
            .iter()
            .any(|(name, value)| name == "BROKER_METRICS_ADDR" && value == "off")
        {
            needed.push("metrics");
        }
        let mut listening = HashMap::new();
        let waited = tokio::time::timeout(START_TIMEOUT, async {
            while !needed
                .iter()
                .all(|service| listening.contains_key(*service))
            {
                let Some(line) = listening_lines.recv().await else {
                    return false; // stdout closed: the process ended.
                };
                if let Some((service, url)) = parse_listening(&line) {
                    listening.insert(service, url);
                }
            }
            true
        })
        .await;
        match waited {
            Ok(true) => {}
            Ok(false) => {
                let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                // Let the stderr reader catch up with the last words.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "brokerd exited during start-up ({status:?})\n--- output ---\n{}",
                    log.text()
                );
            }
            Err(_) => panic!(
                "brokerd did not print `listening:` for {needed:?} within {START_TIMEOUT:?}\n--- output ---\n{}",
                log.text()
            ),
        }

        let base = listening
            .get("gateway")
            .cloned()
            .unwrap_or_else(|| options.public_url_or_unknown());
        Self {
            process: Process::Child(child),
            api: Api::new(base, options.admin_token.clone(), log.clone()),
            listening,
            data_dir,
            owns_data_dir,
            log,
            _database: options.database,
        }
    }

    /// Runs the options' services inside this test process (`brokerd::start`) instead of as a
    /// `brokerd` process, for tests that observe them from within, such as with an in-memory
    /// span exporter. Its log stays empty: what the services log goes to this process's
    /// subscriber.
    pub async fn in_process(options: BrokerOptions) -> Self {
        let (data_dir, owns_data_dir) = options.resolve_data_dir();
        let config = brokerd::Config::load_from(options.settings(&data_dir))
            .unwrap_or_else(|error| panic!("the options' settings: {error}"));
        let mode = brokerd::Mode::parse(&options.services).expect("known services");
        let shutdown = Shutdown::new();
        let running = brokerd::start(&mode, config, shutdown.clone())
            .await
            .unwrap_or_else(|error| panic!("starting the services in-process: {error:#}"));
        let mut listening: HashMap<String, String> = running
            .listening()
            .iter()
            .map(|(service, addr)| (service.name().to_owned(), format!("http://{addr}")))
            .collect();
        if let Some(addr) = running.metrics_addr() {
            listening.insert("metrics".to_owned(), format!("http://{addr}"));
        }
        tokio::spawn(async move {
            if let Err(error) = running.wait().await {
                eprintln!("in-process services stopped: {error:#}");
            }
        });
        let base = listening
            .get("gateway")
            .cloned()
            .unwrap_or_else(|| options.public_url_or_unknown());
        let log = ProcessLog::default();
        Self {
            process: Process::InProcess(shutdown),
            api: Api::new(base, options.admin_token.clone(), log.clone()),
            listening,
            data_dir,
            owns_data_dir,
            log,
            _database: options.database,
        }
    }

    /// The HTTP API (also reachable through `Deref`).
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The URL a service announced, e.g. `listening("token")`.
    pub fn listening(&self, service: &str) -> &str {
        self.listening
            .get(service)
            .unwrap_or_else(|| panic!("brokerd did not announce {service}"))
    }

    /// A gRPC client of the token service.
    pub async fn token_service(&self) -> TokenServiceClient<Channel> {
        TokenServiceClient::connect(self.listening("token").to_owned())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "cannot connect to the token service: {error}\n--- output ---\n{}",
                    self.log.text()
                )
            })
    }

    /// A gRPC client of the access registry (embedded mode announces it as `access`).
    pub async fn access_registry(&self) -> AccessRegistryClient<Channel> {
        AccessRegistryClient::connect(self.listening("access").to_owned())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "cannot connect to the access registry: {error}\n--- output ---\n{}",
                    self.log.text()
                )
            })
    }

    /// The process id, e.g. to read its CPU time or memory from `/proc` (`None` once reaped,
    /// and for services running inside the test process).
    pub fn pid(&self) -> Option<u32> {
        match &self.process {
            Process::Child(child) => child.id(),
            Process::InProcess(_) => None,
        }
    }

    /// Stops the process as an operator would (SIGTERM) and waits for it to end; its exit
    /// status. Panics for services running in this test process.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let Process::Child(child) = &mut self.process else {
            panic!("only a brokerd process can be terminated");
        };
        let pid = child.id().expect("the process is running").to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await;
        assert!(
            matches!(sent, Ok(status) if status.success()),
            "kill -TERM {pid}: {sent:?}"
        );
        let stopped = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        let Ok(status) = stopped else {
            panic!(
                "brokerd did not stop within 30 s of SIGTERM; it wrote:\n{}",
                self.log.text()
            );
        };
        status.expect("waiting for brokerd")
    }

    /// What the process wrote so far.
    pub fn output(&self) -> String {
        self.log.text()
    }

    /// The data directory (`BROKER_DATA_DIR`): SQLite files and, under `files/`, stored bytes.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }
}

impl BrokerOptions {
    /// The data directory to use, and whether it is the broker's own (a fresh one, removed
    /// when the broker stops) rather than the caller's.
    fn resolve_data_dir(&self) -> (PathBuf, bool) {
        match &self.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).expect("creating the data directory");
                (dir.clone(), false)
            }
            None => (fresh_data_dir(), true),
        }
    }

    /// The `BROKER_*` settings the broker runs with: random ports, the data directory, the
    /// admin token, the database, then the options' own.
    fn settings(&self, data_dir: &std::path::Path) -> Vec<(String, String)> {
        let log_filter = std::env::var("BROKER_TEST_LOG").unwrap_or_else(|_| "warn".to_owned());
        let mut settings = vec![
            ("BROKER_HTTP_ADDR", "127.0.0.1:0".to_owned()),
            ("BROKER_GRPC_ADDR", "127.0.0.1:0".to_owned()),
            // Announced as `listening: metrics http://…`; several brokers share a test machine.
            ("BROKER_METRICS_ADDR", "127.0.0.1:0".to_owned()),
            ("BROKER_DATA_DIR", data_dir.display().to_string()),
            ("BROKER_ADMIN_TOKEN", self.admin_token.clone()),
            ("BROKER_LOG", log_filter),
        ];
        let database_url = match (&self.database_url, &self.database) {
            (Some(url), _) => Some(url.clone()),
            (None, Database::Postgres(db)) => Some(db.url().to_owned()),
            (None, Database::Sqlite) => None,
        };
        if let Some(url) = database_url {
            settings.push(("BROKER_DATABASE_URL", url));
        }
        let mut settings: Vec<(String, String)> = settings
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        settings.extend(self.env.iter().cloned());
        settings
    }

    fn public_url_or_unknown(&self) -> String {
        self.env
            .iter()
            .find(|(name, _)| name == "BROKER_PUBLIC_URL")
            .map(|(_, url)| url.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| "http://no-gateway.invalid".to_owned())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        match &mut self.process {
            Process::Child(child) => {
                let _ = child.start_kill();
            }
            Process::InProcess(shutdown) => shutdown.trigger(),
        }
        if self.owns_data_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// A new, empty data directory under the system's temporary directory.
fn fresh_data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("broker-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("creating the data directory");
    dir
}

/// `listening: token http://127.0.0.1:4000` → `("token", "http://127.0.0.1:4000")`.
fn parse_listening(line: &str) -> Option<(String, String)> {
    let rest = line.trim().strip_prefix("listening:")?;
    let mut words = rest.split_whitespace();
    Some((words.next()?.to_owned(), words.next()?.to_owned()))
}

/// Copies a stream into `log` line by line, forwarding `listening:` lines to `lines`.
fn drain(
    stream: impl AsyncRead + Unpin + Send + 'static,
    prefix: &'static str,
    log: ProcessLog,
    lines: Option<mpsc::UnboundedSender<String>>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            log.push(prefix, &line);
            if let Some(lines) = &lines
                && line.starts_with("listening:")
            {
                let _ = lines.send(line);
            }
        }
    });
}

/// The `brokerd` built with the running executable (`target/<profile>/deps/x` →
/// `target/<profile>/brokerd`), else `BROKERD_BIN`; panics with the command to run when neither
/// exists.
pub fn brokerd_binary() -> PathBuf {
    let name = format!("brokerd{}", std::env::consts::EXE_SUFFIX);
    let exe = std::env::current_exe().ok();
    let beside = exe.as_ref().and_then(|exe| {
        // Test executables live in deps/, bench executables too; examples elsewhere.
        let dir = exe.parent()?;
        let profile_dir = if dir.ends_with("deps") {
            dir.parent()?
        } else {
            dir
        };
        Some(profile_dir.join(&name))
    });
    if let Some(path) = beside.as_ref().filter(|p| p.is_file()) {
        return path.clone();
    }
    if let Some(path) = std::env::var_os("BROKERD_BIN").map(PathBuf::from) {
        assert!(
            path.is_file(),
            "BROKERD_BIN={} is not a file",
            path.display()
        );
        return path;
    }
    let release = exe
        .as_ref()
        .is_some_and(|exe| exe.components().any(|c| c.as_os_str() == "release"));
    let build = if release {
        "cargo build --release -p brokerd"
    } else {
        "cargo build -p brokerd"
    };
    panic!(
        "brokerd is not built: expected {} (or set BROKERD_BIN). Run `{build}` first.",
        beside.map(|p| p.display().to_string()).unwrap_or_default()
    );
}
