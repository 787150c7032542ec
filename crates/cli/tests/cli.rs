//! The `broker` binary end to end against a real embedded broker (run `cargo build -p brokerd`
//! first): a sender and a recipient each make a key with `keygen`, the operator registers them,
//! and they save profiles, send a file, find it in the inbox, download it (also resuming a
//! truncated partial file), confirm it, and watch its events — all as a user's shell would.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use broker_tests::raw_http::gateway_addr;
use broker_tests::s3_proxy::TcpProxy;
use broker_tests::scenario::{RECIPIENT, RESOURCE, SENDER, md5_hex, pattern};
use broker_tests::tus::{TusClient, upload_offset, upload_path};
use broker_tests::{Database, Scenario};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// How long events may take from the transfer to the pull.
const EVENTS_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a tus send may take to store the bytes a test waits for.
const TUS_TIMEOUT: Duration = Duration::from_secs(60);
/// The tus threshold and chunk size of the tus stories: many small PATCHes, so a send is under
/// way long enough to be interrupted.
const TUS_CHUNK: &str = "1MiB";
/// The file of the tus stories, in chunks of [`TUS_CHUNK`] and a short last one.
const TUS_FILE_LEN: usize = (40 << 20) + 12_345;
/// How much of it the broker stores before the stories cut the sender off.
const TUS_CUT_AT: u64 = 4 << 20;

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

    /// `broker args…` in this shell's directory, with its configuration.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
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
            .args(args);
        command
    }

    /// Runs `broker args…` and returns what it did, whatever the outcome.
    async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("running broker")
    }

    /// Starts `broker args…` with its output piped, for a test that interrupts it.
    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting broker")
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

/// A tus send of `file` through `proxy`, started in `shell`; returns the process and the id it
/// announced on stderr before uploading.
async fn tus_send(shell: &Shell, proxy: &TcpProxy, file: &str, more: &[&str]) -> (Child, String) {
    let endpoint = proxy.endpoint();
    let mut args = vec![
        "--json",
        "--url",
        &endpoint,
        "send",
        "--resource",
        RESOURCE,
        "--recipient",
        RECIPIENT,
        "--tus-threshold",
        TUS_CHUNK,
        "--tus-chunk-size",
        TUS_CHUNK,
    ];
    args.extend_from_slice(more);
    args.push(file);
    let mut child = shell.spawn(&args);
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let line = lines
        .next_line()
        .await
        .expect("reading stderr")
        .expect("send announces the transfer before uploading");
    let announced: Value = serde_json::from_str(&line).expect("a JSON line");
    let id = announced["fileTransferId"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {announced}"))
        .to_owned();
    assert_eq!(
        announced["resumeWith"],
        format!("broker send --resume {id} {file}")
    );
    // The rest of stderr (an error, if any) is read when the test asks for the output.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, id)
}

/// Waits until the broker holds at least `at_least` bytes of transfer `id`'s upload, while
/// `send` is still running.
async fn until_stored(tus: &TusClient, send: &mut Child, id: &str, at_least: u64) -> u64 {
    let deadline = Instant::now() + TUS_TIMEOUT;
    loop {
        let head = tus.head(&upload_path(id)).await;
        if head.status == 200 && upload_offset(&head) >= at_least {
            return upload_offset(&head);
        }
        assert!(
            send.try_wait().expect("polling send").is_none(),
            "the send ended before it stored {at_least} bytes"
        );
        assert!(Instant::now() < deadline, "no {at_least} bytes stored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The recipient downloads transfer `id` and gets `bytes`, whose MD5 the broker shows.
async fn assert_received(shell: &Shell, id: &str, bytes: &[u8]) {
    let got = shell
        .json(&["--profile", "recipient", "download", id, "-o", "got.bin"])
        .await;
    assert_eq!(got["checksumVerified"], true);
    assert!(
        read(&shell.path("got.bin")) == bytes,
        "the downloaded bytes differ"
    );
    let shown = shell.json(&["show", id]).await;
    assert_eq!(shown["checksum"], md5_hex(bytes));
    assert_eq!(shown["fileTransferSize"], bytes.len());
    std::fs::remove_file(shell.path("got.bin")).expect("removing the download");
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

/// A broker, a shell with the sender's and the recipient's profiles, a `big.bin` of
/// [`TUS_FILE_LEN`] bytes in it (and those bytes), and a sender's token.
async fn tus_sender() -> (Scenario, Shell, Vec<u8>, String) {
    let scenario = Scenario::start(Database::Sqlite).await;
    let shell = Shell::new();
    shell
        .given_registered_profile(&scenario, "sender", SENDER)
        .await;
    shell
        .given_registered_profile(&scenario, "recipient", RECIPIENT)
        .await;
    let bytes = pattern(TUS_FILE_LEN);
    std::fs::write(shell.path("big.bin"), &bytes).expect("writing the file");
    let token = shell.json(&["token"]).await["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    (scenario, shell, bytes, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tus_send_goes_on_by_itself_after_its_connection_is_cut() {
    let (scenario, shell, bytes, token) = tus_sender().await;
    let tus = TusClient::new(scenario.api(), &token);

    // The sender's connections go through a proxy that cuts them for a moment; each chunk
    // carries its checksum.
    let proxy = TcpProxy::start(gateway_addr(scenario.base_url())).await;
    let more = ["--wait", "--tus-checksum"];
    let (mut send, id) = tus_send(&shell, &proxy, "big.bin", &more).await;
    until_stored(&tus, &mut send, &id, TUS_CUT_AT).await;
    proxy.pause();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.resume();

    let output = send.wait_with_output().await.expect("send ends");
    assert!(output.status.success(), "{output:?}");
    let sent: Value = serde_json::from_slice(&output.stdout).expect("one JSON result");
    assert_eq!(sent["fileTransferId"], id.as_str());
    assert_eq!(sent["status"], "Published");
    assert_eq!(sent["resumable"], true);
    assert_eq!(sent["resumedFrom"], 0);
    assert_eq!(tus.offset(&upload_path(&id)).await, bytes.len() as u64);
    assert_received(&shell, &id, &bytes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_tus_send_is_resumed_where_the_broker_stopped() {
    let (scenario, shell, bytes, token) = tus_sender().await;
    let tus = TusClient::new(scenario.api(), &token);

    // Halfway, the connection is cut for good and the sender killed while it waits to retry.
    let proxy = TcpProxy::start(gateway_addr(scenario.base_url())).await;
    let (mut send, id) = tus_send(&shell, &proxy, "big.bin", &[]).await;
    until_stored(&tus, &mut send, &id, TUS_CUT_AT).await;
    proxy.pause();
    send.kill().await.expect("killing send");
    let stopped_at = tus.offset(&upload_path(&id)).await;
    assert!(
        (TUS_CUT_AT..bytes.len() as u64).contains(&stopped_at),
        "stopped at {stopped_at}"
    );

    // Another file is not taken for the interrupted one.
    std::fs::write(shell.path("other.bin"), b"other bytes").expect("writing");
    let (code, stderr) = shell.fails(&["send", "--resume", &id, "other.bin"]).await;
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("is not the file of transfer"), "{stderr}");

    let resumed = shell
        .json(&[
            "send",
            "--resume",
            &id,
            "--tus-chunk-size",
            TUS_CHUNK,
            "--wait",
            "big.bin",
        ])
        .await;
    assert_eq!(resumed["fileTransferId"], id.as_str());
    assert_eq!(resumed["status"], "Published");
    let resumed_from = resumed["resumedFrom"].as_u64().expect("an offset");
    assert!(
        resumed_from >= stopped_at && resumed_from < bytes.len() as u64,
        "resumed from {resumed_from}, stopped at {stopped_at}"
    );
    assert_received(&shell, &id, &bytes).await;

    // Resuming a finished send sends nothing.
    let again = shell.json(&["send", "--resume", &id, "big.bin"]).await;
    assert_eq!(again["resumedFrom"], bytes.len());
}
