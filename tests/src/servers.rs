//! Private PostgreSQL and RabbitMQ servers for the tests that restart them: the servers named by
//! `BROKER_TEST_DATABASE_URL` and `BROKER_TEST_AMQP_URL` are shared with every other test and
//! must never be stopped, so a fault test starts its own on free loopback ports, in temporary
//! directories, and stops and starts those.
//!
//! PostgreSQL is a fresh `initdb` cluster run with `pg_ctl` (as the `postgres` OS user when the
//! test runs as root, since PostgreSQL refuses root), trust authentication, TCP on 127.0.0.1 only.
//! RabbitMQ is a second node with its own name, ports, data directory, Erlang cookie and no
//! plugins. Both keep their data across a restart (the same directory and port); both are stopped
//! and their directories removed when dropped, also when the test panics.
//!
//! Without the programs, the tests skip with a line saying so; in CI they fail instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cluster::free_port;
use crate::database::in_ci;

/// Where Debian and Ubuntu install PostgreSQL's server programs.
const POSTGRES_BIN: &str = "/usr/lib/postgresql";
/// Where the RabbitMQ package keeps its own scripts (`/usr/sbin`'s wrappers switch to the
/// `rabbitmq` user and its shared cookie, which a private node must not use).
const RABBITMQ_BIN: &str = "/usr/lib/rabbitmq/bin";
/// How long a RabbitMQ node may take to boot.
const RABBITMQ_BOOT: Duration = Duration::from_secs(90);

/// `None` (after printing why) outside CI, a panic in CI: a fault test must not pass by skipping.
fn missing<T>(what: &str) -> Option<T> {
    assert!(!in_ci(), "{what}: the fault tests must run in CI, not skip");
    println!("skipping: {what}");
    None
}

/// A fresh directory under the system's temporary directory.
fn temp_dir(kind: &str) -> PathBuf {
    std::env::temp_dir().join(format!("broker-{kind}-{}", uuid::Uuid::new_v4().simple()))
}

/// Runs `command` to completion, panicking with its output when it fails.
fn run(mut command: Command) {
    let what = format!("{command:?}");
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `command` on a blocking thread, so the test's runtime keeps serving its clients.
async fn run_blocking(command: Command) {
    tokio::task::spawn_blocking(move || run(command))
        .await
        .expect("the command's thread");
}

/// A PostgreSQL server of the test's own.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Initializes a cluster in a temporary directory and starts it, or `None` (after printing
    /// why) when PostgreSQL's server programs are missing outside CI.
    pub async fn start() -> Option<Self> {
        let Some(bin) = postgres_bin() else {
            return missing(&format!("no initdb under {POSTGRES_BIN}/<version>/bin"));
        };
        let server = Self {
            bin,
            dir: temp_dir("faults-pg"),
            port: free_port(),
            as_postgres: running_as_root(),
        };
        let mut initdb = server.command("initdb");
        initdb
            .arg("-D")
            .arg(server.data())
            .args(["-A", "trust", "-U", "postgres", "--no-sync"]);
        std::fs::create_dir_all(&server.dir).expect("creating PostgreSQL's directory");
        if server.as_postgres {
            run({
                let mut chown = Command::new("chown");
                chown.arg("postgres:").arg(&server.dir);
                chown
            });
        }
        run_blocking(initdb).await;
        server.start_again().await;
        Some(server)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server on its data directory and port and waits until it accepts connections.
    pub async fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off \
             -c max_connections=300",
            self.port
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-o", &options, "start"]);
        run_blocking(start).await;
    }

    /// Stops the server at once (immediate mode: open connections are cut, as in a crash).
    pub async fn stop(&self) {
        run_blocking(self.stop_command()).await;
    }

    /// Stops the server and starts it again on the same data and port.
    pub async fn restart(&self) {
        self.stop().await;
        self.start_again().await;
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn stop_command(&self) -> Command {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"]);
        stop
    }

    /// `program` from PostgreSQL's directory, as the `postgres` user when we are root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", "postgres", "--"]).arg(program);
            runuser
        } else {
            Command::new(program)
        };
        command.stdin(Stdio::null());
        command
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop_command().output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest installed PostgreSQL's `bin` directory holding `initdb`.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir(POSTGRES_BIN)
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// Whether this process runs as root (whose `initdb` PostgreSQL refuses).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// A RabbitMQ node of the test's own.
pub struct PrivateRabbit {
    bin: PathBuf,
    dir: PathBuf,
    node: String,
    port: u16,
    dist_port: u16,
    server: Option<std::process::Child>,
}

impl PrivateRabbit {
    /// Starts a node in a temporary directory and waits until it serves AMQP, or `None` (after
    /// printing why) when RabbitMQ is missing outside CI.
    pub async fn start() -> Option<Self> {
        let Some(bin) = rabbitmq_bin() else {
            return missing("no rabbitmq-server");
        };
        let dir = temp_dir("faults-rabbitmq");
        std::fs::create_dir_all(&dir).expect("creating RabbitMQ's directory");
        let port = free_port();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("the plugins file");
        // Only loopback, and guest may log in from there.
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"),
        )
        .expect("the configuration file");
        let mut rabbit = Self {
            bin,
            node: format!("faults-{}@localhost", uuid::Uuid::new_v4().simple()),
            port,
            dist_port: free_port(),
            dir,
            server: None,
        };
        rabbit.start_again().await;
        Some(rabbit)
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the node on its data directory and waits until its applications run.
    pub async fn start_again(&mut self) {
        let log = std::fs::File::create(self.dir.join("server.out")).expect("the server's log");
        let server = self
            .command("rabbitmq-server")
            .stdout(log.try_clone().expect("the server's log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("starting rabbitmq-server: {error}"));
        self.server = Some(server);
        let mut wait = self.ctl();
        wait.arg("wait")
            .arg(self.pid_file())
            .args(["--timeout", &RABBITMQ_BOOT.as_secs().to_string()]);
        run_blocking(wait).await;
    }

    /// Stops the node (as an operator does) and waits until its process is gone.
    pub async fn stop(&mut self) {
        run_blocking(self.stop_command()).await;
        if let Some(mut server) = self.server.take() {
            tokio::task::spawn_blocking(move || server.wait())
                .await
                .expect("the wait's thread")
                .expect("waiting for rabbitmq-server");
        }
    }

    /// Stops the node and starts it again on the same data and ports.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("rabbitmq.pid")
    }

    /// `rabbitmqctl stop`, which returns once the node's process is gone.
    fn stop_command(&self) -> Command {
        let mut stop = self.ctl();
        stop.arg("stop").arg(self.pid_file());
        stop
    }

    /// `rabbitmqctl -n <node>`.
    fn ctl(&self) -> Command {
        let mut ctl = self.command("rabbitmqctl");
        ctl.args(["-n", &self.node]);
        ctl
    }

    /// One of RabbitMQ's scripts with this node's environment; `HOME` is the node's directory,
    /// so the node and its `rabbitmqctl` share an Erlang cookie of their own.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        let dir = |name: &str| self.dir.join(name);
        command
            .stdin(Stdio::null())
            .env("HOME", &self.dir)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir("log"))
            .env("RABBITMQ_CONFIG_FILE", dir("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", self.pid_file());
        command
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let stopped = self
                .stop_command()
                .output()
                .is_ok_and(|output| output.status.success());
            if !stopped {
                let _ = server.kill();
            }
            let _ = server.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory of `rabbitmq-server` and `rabbitmqctl`: the package's own, else the `PATH`'s.
fn rabbitmq_bin() -> Option<PathBuf> {
    let packaged = Path::new(RABBITMQ_BIN);
    if packaged.join("rabbitmq-server").is_file() {
        return Some(packaged.to_owned());
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).find(|dir| dir.join("rabbitmq-server").is_file())
    })
}

/// Kills process `pid` with SIGKILL: no shutdown, whatever it held is simply gone.
pub fn sigkill(pid: u32) {
    run({
        let mut kill = Command::new("kill");
        kill.args(["-KILL", &pid.to_string()]);
        kill
    });
}
