//! `brokerd --demo` as a newcomer meets it: start it, paste the commands it prints into a shell
//! one after the other, and a file goes from the sender to the recipient. The README's
//! walk-through must show the same commands, so it cannot drift from what the demo prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use broker_tests::broker::brokerd_binary;
use broker_tests::{Broker, BrokerOptions};

/// The README, whose demo section must show the printed commands.
const README: &str = include_str!("../../README.md");
/// How the README writes the data directory: the default `./data`, from the repository root.
const README_DATA_DIR: &str = "$PWD/data";
/// How long seeding may take once the broker listens (RSA keys are made on first start).
const SEED_TIMEOUT: Duration = Duration::from_secs(60);
/// The line that introduces the commands.
const COMMANDS_HEADER: &str = "demo: send it and receive it";

#[tokio::test]
async fn the_printed_commands_are_the_readmes_and_send_and_receive_a_file() {
    let data_dir = Scratch::new("data");
    let broker = demo_broker(data_dir.path()).await;
    let commands = printed_commands(&broker).await;
    assert_the_readme_shows(&commands, data_dir.path());
    run_walkthrough(&broker, data_dir.path(), &commands).await;
}

#[tokio::test]
async fn a_second_demo_on_the_same_data_directory_reuses_the_first() {
    // The first demo is used, then stopped; the second starts on other ports with its state.
    let data_dir = Scratch::new("data");
    let first = demo_broker(data_dir.path()).await;
    let commands = printed_commands(&first).await;
    run_walkthrough(&first, data_dir.path(), &commands).await;
    let key = std::fs::read(demo_dir(data_dir.path()).join("sender.pem")).expect("the key");
    drop(first);

    let second = demo_broker(data_dir.path()).await;
    let again = printed_commands(&second).await;
    assert_eq!(again, commands, "a second demo prints the same commands");
    let reused = std::fs::read(demo_dir(data_dir.path()).join("sender.pem")).expect("the key");
    assert_eq!(reused, key, "a second demo keeps the sender's key");
    run_walkthrough(&second, data_dir.path(), &again).await;
}

/// Asserts that the README's demo section shows `printed` (with the data directory written
/// as the README writes it).
fn assert_the_readme_shows(printed: &[String], data_dir: &Path) {
    let canonical = std::fs::canonicalize(data_dir).expect("the data directory");
    let expected: Vec<String> = printed
        .iter()
        .map(|command| command.replace(&canonical.display().to_string(), README_DATA_DIR))
        .collect();
    assert_eq!(
        readme_commands(),
        expected,
        "the README's demo section must show the commands `brokerd --demo` prints (with the \
         data directory written {README_DATA_DIR})"
    );
}

/// `brokerd --demo` on `data_dir` (kept when it stops), on random ports.
async fn demo_broker(data_dir: &Path) -> Broker {
    Broker::start(BrokerOptions::new().arg("--demo").data_dir(data_dir)).await
}

/// `<data dir>/demo`, as the demo names it.
fn demo_dir(data_dir: &Path) -> PathBuf {
    std::fs::canonicalize(data_dir)
        .expect("the data directory")
        .join("demo")
}

/// Runs `commands` as a user would, in a shell, and checks each step's outcome.
async fn run_walkthrough(broker: &Broker, data_dir: &Path, commands: &[String]) {
    let mut shell = Shell::new();
    let mut id = None;
    for command in commands {
        let stdout = shell.run(broker, command).await;
        match subcommand(command).unwrap_or_default() {
            "send" => {
                let sent = stdout.trim().to_owned();
                assert!(
                    uuid::Uuid::parse_str(&sent).is_ok(),
                    "send prints the transfer id, not {sent:?}"
                );
                id = Some(sent);
            }
            "inbox" => {
                let id = id.as_deref().expect("the send comes before the inbox");
                assert!(
                    stdout.lines().any(|line| line.trim() == id),
                    "the recipient's inbox lists {id}: {stdout}"
                );
            }
            "download" => {
                let demo = demo_dir(data_dir);
                let sent = std::fs::read(demo.join("hello.txt")).expect("the sample file");
                let received = std::fs::read(demo.join("received.txt")).expect("the download");
                assert_eq!(received, sent, "the download is the file that was sent");
            }
            "show" => assert!(
                stdout.contains("AllConfirmedDownloaded"),
                "after the confirm the transfer is AllConfirmedDownloaded: {stdout}"
            ),
            _ => {}
        }
    }
    let run: Vec<&str> = commands.iter().filter_map(|c| subcommand(c)).collect();
    assert_eq!(
        run,
        ["send", "inbox", "download", "confirm", "show"],
        "the demo's commands send, find, download, confirm and show a file: {commands:#?}"
    );
}

/// The `broker` subcommand `line` runs: `send` in `ID=$(broker --profile sender send …)`.
fn subcommand(line: &str) -> Option<&str> {
    let mut words = line
        .split_whitespace()
        .skip_while(|word| !word.ends_with("broker"))
        .skip(1);
    while let Some(word) = words.next() {
        match word {
            "--profile" => {
                words.next();
            }
            flag if flag.starts_with("--") => {}
            subcommand => return Some(subcommand),
        }
    }
    None
}

/// The commands `brokerd --demo` printed, once it has printed them all.
async fn printed_commands(broker: &Broker) -> Vec<String> {
    let waited = tokio::time::timeout(SEED_TIMEOUT, async {
        loop {
            if let Some(commands) = commands_in(&broker.output()) {
                return commands;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| {
        panic!(
            "brokerd --demo printed no commands within {SEED_TIMEOUT:?}\n--- output ---\n{}",
            broker.output()
        )
    })
}

/// The indented lines after the commands' header on stdout, once the blank line that ends
/// them has appeared.
fn commands_in(output: &str) -> Option<Vec<String>> {
    let lines = output
        .lines()
        .filter(|line| !line.starts_with("[stderr] "))
        .skip_while(|line| !line.starts_with(COMMANDS_HEADER))
        .skip(1)
        .skip_while(|line| line.trim().is_empty());
    let mut commands = Vec::new();
    for line in lines {
        match line.strip_prefix("    ") {
            Some(command) => commands.push(command.to_owned()),
            None => return (!commands.is_empty()).then_some(commands),
        }
    }
    None
}

/// The commands in the README's demo section: the shell block after `brokerd --demo` prints
/// them, taken from the line that exports `BROKER_CLI_CONFIG` to the end of the block.
fn readme_commands() -> Vec<String> {
    README
        .lines()
        .skip_while(|line| !line.starts_with("export BROKER_CLI_CONFIG="))
        .take_while(|line| !line.starts_with("```"))
        .map(str::to_owned)
        .collect()
}

/// A directory of this test's under the system's temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "broker-demo-{what}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A shell session: each printed line runs in `bash` with the variables the earlier lines set,
/// as in a terminal where they were pasted one after the other.
struct Shell {
    variables: Vec<(String, String)>,
    cwd: Scratch,
    path: String,
}

impl Shell {
    fn new() -> Self {
        // The `broker` built beside `brokerd` (`cargo test --workspace` builds both), first on
        // PATH as the README tells a user to put it.
        let bin = brokerd_binary()
            .parent()
            .expect("brokerd's directory")
            .to_owned();
        let broker_cli = bin.join(format!("broker{}", std::env::consts::EXE_SUFFIX));
        assert!(
            broker_cli.is_file(),
            "the broker CLI is not built: expected {} (run `cargo build -p broker-cli`)",
            broker_cli.display()
        );
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Self {
            variables: Vec::new(),
            cwd: Scratch::new("shell"),
            path,
        }
    }

    /// Runs `line`, which must succeed, and answers its stdout. A line that sets a variable
    /// (`export NAME=…`, `NAME=$(…)`) keeps its value for the lines after it.
    async fn run(&mut self, broker: &Broker, line: &str) -> String {
        let assigned = assigned_variable(line);
        let script = match &assigned {
            Some(name) => format!("set -e\n{line}\nprintf %s \"${name}\""),
            None => format!("set -e\n{line}"),
        };
        let mut command = tokio::process::Command::new("bash");
        for (name, _) in std::env::vars() {
            // Only the demo's configuration counts, not the developer's.
            if name.starts_with("BROKER_CLI_") {
                command.env_remove(name);
            }
        }
        let output = command
            .arg("-c")
            .arg(&script)
            .envs(self.variables.iter().cloned())
            .env("PATH", &self.path)
            .current_dir(self.cwd.path())
            .output()
            .await
            .expect("running bash");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "`{line}` failed ({}):\n{}{}\n--- brokerd output ---\n{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr),
            broker.output()
        );
        if let Some(name) = assigned {
            self.variables.push((name, stdout.clone()));
        }
        stdout
    }
}

/// `NAME` when `line` is `export NAME=…` or `NAME=…`.
fn assigned_variable(line: &str) -> Option<String> {
    let assignment = line.strip_prefix("export ").unwrap_or(line);
    let (name, _) = assignment.split_once('=')?;
    let is_name = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    is_name.then(|| name.to_owned())
}
