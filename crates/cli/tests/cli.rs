//! The `broker` binary end to end against a real embedded broker (run `cargo build -p brokerd`
//! first): a sender and a recipient each make a key with `keygen`, the operator registers them,
//! and they save profiles, send a file, find it in the inbox, download it (also resuming a
//! truncated partial file), confirm it, and watch its events — all as a user's shell would.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use broker_tests::scenario::{RECIPIENT, RESOURCE, SENDER, pattern};
use broker_tests::{Database, Scenario};
use serde_json::{Value, json};

/// How long events may take from the transfer to the pull.
const EVENTS_TIMEOUT: Duration = Duration::from_secs(60);

/// The `broker` binary with its own configuration directory.
struct Shell {
    dir: tempfile::TempDir,
}

impl Shell {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `broker args…` and returns what it did, whatever the outcome.
    async fn run(&self, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_broker"));
        for (name, _) in std::env::vars() {
            // Only this test's configuration counts, not the developer's.
            if name.starts_with("BROKER_CLI_") {
                command.env_remove(name);
            }
        }
        command
            .env("BROKER_CLI_CONFIG", self.path("config/config.toml"))
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .await
            .expect("running broker")
    }

    /// Runs `broker --json args…`, which must succeed, and parses its one line of output.
    async fn json(&self, args: &[&str]) -> Value {
        let output = self.run(&[&["--json"], args].concat()).await;
        assert!(
            output.status.success(),
            "broker {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "broker {args:?} printed no JSON ({error}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Runs `broker args…`, which must fail; returns its exit code and stderr.
    async fn fails(&self, args: &[&str]) -> (i32, String) {
        let output = self.run(args).await;
        assert!(!output.status.success(), "broker {args:?} succeeded");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Makes a key with `keygen`, has the operator register a client of `org` with it and saves
    /// the profile `name`.
    async fn given_registered_profile(&self, scenario: &Scenario, name: &str, org: &str) {
        let key = self.path(&format!("{name}.pem"));
        let key = key.to_str().expect("a UTF-8 path");
        let jwks = self.json(&["keygen", "--out", key]).await;
        assert_eq!(jwks["keys"][0]["kty"], "RSA");
        let created = scenario
            .admin_post(
                "/admin/v1/clients",
                &json!({
                    "orgNumber": org,
                    "scopes": ["altinn:broker.read", "altinn:broker.write",
                               "altinn:events.subscribe"],
                    "jwks": jwks,
                    "name": format!("broker CLI of {org}"),
                }),
            )
            .await
            .expect_status(201)
            .json();
        let client_id = created["clientId"].as_str().expect("a client id");
        let saved = self
            .json(&[
                "profile",
                "add",
                name,
                "--url",
                scenario.base_url(),
                "--client-id",
                client_id,
                "--org",
                org,
                "--key-file",
                key,
            ])
            .await;
        assert_eq!(saved["profile"]["org"], org);
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sender_and_a_recipient_exchange_a_file_through_the_cli() {
    let scenario = Scenario::start(Database::Sqlite).await;
    let shell = Shell::new();
    shell
        .given_registered_profile(&scenario, "sender", SENDER)
        .await;
    shell
        .given_registered_profile(&scenario, "recipient", RECIPIENT)
        .await;
    let profiles = shell.json(&["profile", "list"]).await;
    assert_eq!(
        profiles["default"], "sender",
        "the first profile is the default"
    );

    // A token is cached: asking twice gives the same one.
    let first = shell.json(&["token"]).await;
    let again = shell.json(&["token"]).await;
    assert!(
        first["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(first["access_token"], again["access_token"]);

    // Send.
    let bytes = pattern(300 * 1024 + 7);
    std::fs::write(shell.path("report.bin"), &bytes).expect("writing the file");
    let sent = shell
        .json(&[
            "send",
            "--resource",
            RESOURCE,
            "--recipient",
            &format!("0192:{RECIPIENT}"),
            "--property",
            "kind=test",
            "--reference",
            "ref-1",
            "--wait",
            "report.bin",
        ])
        .await;
    assert_eq!(sent["status"], "Published");
    assert_eq!(sent["size"], bytes.len());
    let id = sent["fileTransferId"].as_str().expect("an id").to_owned();

    // Without --json, the id alone: `id=$(broker send …)` works.
    let output = shell
        .run(&[
            "send",
            "--resource",
            RESOURCE,
            "--recipient",
            RECIPIENT,
            "report.bin",
        ])
        .await;
    assert!(output.status.success(), "{output:?}");
    let plain_id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(uuid::Uuid::parse_str(&plain_id).is_ok(), "{plain_id}");

    // Receive: the inbox, a whole download, and a resumed one.
    let inbox = shell
        .json(&["--profile", "recipient", "inbox", "--resource", RESOURCE])
        .await;
    assert!(
        inbox.as_array().expect("ids").iter().any(|i| i == &id),
        "{id} not in {inbox}"
    );
    let whole = shell
        .json(&["--profile", "recipient", "download", &id, "-o", "whole.bin"])
        .await;
    assert_eq!(whole["resumedFrom"], 0);
    assert_eq!(whole["checksumVerified"], true);
    assert_eq!(read(&shell.path("whole.bin")), bytes);

    std::fs::write(shell.path("resumed.bin.part"), &bytes[..1000]).expect("a partial file");
    let resumed = shell
        .json(&[
            "--profile",
            "recipient",
            "download",
            &id,
            "-o",
            "resumed.bin",
        ])
        .await;
    assert_eq!(resumed["resumedFrom"], 1000);
    assert_eq!(read(&shell.path("resumed.bin")), bytes);
    assert!(!shell.path("resumed.bin.part").exists());

    // Without -o, the file lands under its own name in the working directory, but never over
    // a file there (here the one sent).
    let refused = shell
        .run(&["--profile", "recipient", "download", &id])
        .await;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--force"),
        "{refused:?}"
    );
    assert_eq!(read(&shell.path("report.bin")), bytes);
    std::fs::remove_file(shell.path("report.bin")).expect("removing the sent file");
    let named = shell
        .json(&["--profile", "recipient", "download", &id])
        .await;
    assert_eq!(named["file"], "report.bin");

    let confirmed = shell
        .json(&["--profile", "recipient", "confirm", &id])
        .await;
    assert_eq!(confirmed["confirmed"], true);

    // The sender sees the recipient's confirmation.
    let shown = shell.json(&["show", &id, "--details"]).await;
    assert_eq!(shown["fileTransferId"], id.as_str());
    assert_eq!(shown["propertyList"]["kind"], "test");
    assert_eq!(shown["sendersFileTransferReference"], "ref-1");
    assert_eq!(
        shown["recipients"][0]["currentRecipientFileTransferStatusCode"],
        "DownloadConfirmed"
    );
    assert!(
        shown["fileTransferStatusHistory"]
            .as_array()
            .is_some_and(|history| history
                .iter()
                .any(|h| h["fileTransferStatus"] == "Published"))
    );

    let text = shell.run(&["show", &id]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("recipient   0192:{RECIPIENT} DownloadConfirmed")),
        "{text}"
    );

    // Events: subscribe, list, unsubscribe, and pull the transfer's.
    let subscription = shell
        .json(&[
            "subscribe",
            "--resource",
            RESOURCE,
            "--endpoint",
            "http://127.0.0.1:9/hook",
        ])
        .await;
    let subscription_id = &subscription["id"];
    let list = shell.json(&["subscriptions"]).await;
    assert!(
        list["subscriptions"]
            .as_array()
            .is_some_and(|all| all.iter().any(|s| &s["id"] == subscription_id)),
        "{subscription_id} not in {list}"
    );
    shell
        .json(&["unsubscribe", &subscription_id.to_string()])
        .await;

    let deadline = Instant::now() + EVENTS_TIMEOUT;
    loop {
        let output = shell
            .run(&["--json", "watch", "--resource", RESOURCE, "--once"])
            .await;
        assert!(output.status.success(), "{output:?}");
        let published = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).expect("one JSON event a line"))
            .any(|event| {
                event["resourceinstance"] == id.as_str()
                    && event["type"] == "no.altinn.broker.published"
            });
        if published {
            break;
        }
        assert!(Instant::now() < deadline, "no published event for {id}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_read_as_plain_words_with_exit_codes() {
    let scenario = Scenario::start(Database::Sqlite).await;
    let shell = Shell::new();
    shell
        .given_registered_profile(&scenario, "recipient", RECIPIENT)
        .await;

    // The broker's problem, in its own words.
    let unknown = uuid::Uuid::new_v4().to_string();
    let (code, stderr) = shell.fails(&["show", &unknown]).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    let output = shell.run(&["--json", "show", &unknown]).await;
    let error: Value = serde_json::from_slice(&output.stderr).expect("a JSON error");
    assert_eq!(error["status"], 404, "{error}");
    assert_eq!(error["code"], "BRO-00001", "{error}");
    assert!(error["traceId"].is_string(), "{error}");

    // The token service's refusal.
    let (code, stderr) = shell.fails(&["--client-id", "nobody", "token"]).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.starts_with("error: invalid_"), "{stderr}");

    // Nobody listening.
    let (code, stderr) = shell.fails(&["--url", "http://127.0.0.1:1", "token"]).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("cannot connect to http://127.0.0.1:1/"),
        "{stderr}"
    );

    // A cached token the broker refuses is forgotten: the next run gets a new one.
    shell.json(&["inbox", "--resource", RESOURCE]).await;
    let tokens = shell.path("config/tokens");
    for cached in std::fs::read_dir(&tokens).expect("cached tokens") {
        let refused = json!({"access_token": "refused", "scope": "x", "expires_at": i64::MAX / 2});
        std::fs::write(cached.expect("an entry").path(), refused.to_string()).expect("writing");
    }
    let (code, stderr) = shell.fails(&["inbox", "--resource", RESOURCE]).await;
    assert_eq!(code, 4, "{stderr}");
    shell.json(&["inbox", "--resource", RESOURCE]).await;

    // No profile at all.
    let empty = Shell::new();
    let (code, stderr) = empty.fails(&["inbox", "--resource", RESOURCE]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("broker profile add"), "{stderr}");
}
