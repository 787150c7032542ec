//! Real third-party tus clients upload files through Broker's tus endpoint, on SQLite and on
//! PostgreSQL with RabbitMQ: tus-js-client (`tests/clients/js/upload.mjs`) in four parallel
//! partials that the server concatenates, and one upload killed halfway and resumed from its
//! URL storage; tuspy (`tests/clients/python/tus_upload.py`) chunk by chunk with checksums, and
//! one upload stopped after a few chunks and resumed from the server's offset. Each file is
//! then downloaded whole by the recipient, and the overview shows it Published with its MD5.
//!
//! The clients are pinned: tus-js-client in `tests/clients/js/package-lock.json` (installed
//! with `npm ci` under `target/` on first use), tuspy in `tests/clients/python/requirements.txt`
//! (`.ci/run` installs it). Without Node.js or tuspy the tests skip with a line saying so; in CI
//! they fail instead. The sender's token reaches the clients in their environment, never on a
//! command line or in their output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use broker_tests::node::{self, NodePackage};
use broker_tests::python::{self, PYTHON, tools_present};
use broker_tests::scenario::md5_hex;
use broker_tests::tus::{TusClient, upload_path};
use broker_tests::{Database, Scenario, on_each_database};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// One mebibyte.
const MIB: usize = 1 << 20;
/// How long one run of a client may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// A file of `len` random bytes (so partials concatenated out of order show) in a directory of
/// its own, which also holds the JS client's URL storage.
struct Sample {
    dir: tempfile::TempDir,
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Sample {
    fn new(len: usize) -> Self {
        let mut bytes = vec![0; len];
        getrandom::fill(&mut bytes).expect("random bytes");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("input.bin");
        std::fs::write(&path, &bytes).expect("writing the sample file");
        Self { dir, path, bytes }
    }

    /// The length as the `Upload-Offset`/`Upload-Length` headers count it.
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// The settings both client scripts read: where to upload `sample` to transfer `id`, as the
/// sender, in PATCHes of `chunk` bytes.
fn upload_to(command: &mut Command, s: &Scenario, id: &str, sample: &Sample, chunk: usize) {
    command
        .env("BROKER_TUS_ENDPOINT", s.url(&upload_path(id)))
        .env("BROKER_TOKEN", &s.sender.write)
        .env("TUS_FILE", &sample.path)
        .env("TUS_CHUNK_SIZE", chunk.to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
}

/// `python3 tus_upload.py`.
fn tuspy() -> Command {
    let mut command = Command::new(PYTHON);
    command.arg(python::client_dir().join("tus_upload.py"));
    command
}

/// The lines a client printed on stdout (`word value…`).
struct Printed(Vec<String>);

impl Printed {
    /// The words after `word` on every line that starts with it.
    fn all(&self, word: &str) -> Vec<Vec<&str>> {
        self.0
            .iter()
            .filter_map(|line| {
                let mut words = line.split(' ');
                (words.next() == Some(word)).then(|| words.collect())
            })
            .collect()
    }

    /// The words after `word` on the only line that starts with it.
    #[track_caller]
    fn one(&self, word: &str) -> Vec<&str> {
        let mut found = self.all(word);
        assert_eq!(
            found.len(),
            1,
            "one `{word}` line expected in {:#?}",
            self.0
        );
        found.remove(0)
    }

    /// The number after `word` on the only line that starts with it.
    #[track_caller]
    fn number(&self, word: &str) -> u64 {
        let words = self.one(word);
        words[0]
            .parse()
            .unwrap_or_else(|_| panic!("`{word}` without a number in {:#?}", self.0))
    }

    /// The answers the JS client got as `(method, url, status, Upload-Offset)`.
    fn responses(&self) -> Vec<(&str, &str, u16, &str)> {
        self.all("response")
            .into_iter()
            .map(|words| {
                let status = words[2].parse().expect("a status");
                (words[0], words[1], status, words[3])
            })
            .collect()
    }
}

/// Runs a client to its end; panics (with its output and the broker's) unless it succeeds.
async fn finish(what: &str, s: &Scenario, command: &mut Command) -> Printed {
    let output = tokio::time::timeout(CLIENT_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {CLIENT_TIMEOUT:?}"))
        .unwrap_or_else(|error| panic!("{what} did not start: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{}\n--- broker ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        s.output(),
    );
    Printed(stdout.lines().map(str::to_owned).collect())
}

/// Starts a client, reads its lines until one starts with `word`, then kills it (SIGKILL, as a
/// crash would end it); panics (with its output) when it ends or stalls first.
async fn kill_at(what: &str, s: &Scenario, command: &mut Command, word: &str) -> Printed {
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("{what} did not start: {error}"));
    let mut stderr = child.stderr.take().expect("stderr");
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    let reached = tokio::time::timeout(CLIENT_TIMEOUT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let done = line.split(' ').next() == Some(word);
            printed.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    child.kill().await.expect("killing the client");
    if reached != Ok(true) {
        let errors = errors.await.unwrap_or_default();
        panic!(
            "{what} never printed `{word}` ({reached:?}):\n--- stdout ---\n{}\n--- stderr ---\n{errors}\n--- broker ---\n{}",
            printed.join("\n"),
            s.output(),
        );
    }
    Printed(printed)
}

/// The path of one of the broker's absolute URLs.
#[track_caller]
fn path_of<'a>(s: &Scenario, url: &'a str) -> &'a str {
    url.strip_prefix(s.base_url())
        .unwrap_or_else(|| panic!("{url} is not on the broker at {}", s.base_url()))
}

/// Initializes a transfer as the sender, declaring the file's MD5 when `checksum` is given.
async fn initialized(s: &Scenario, checksum: Option<&[u8]>) -> String {
    let mut body = s.initialize_body();
    if let Some(bytes) = checksum {
        body["checksum"] = json!(md5_hex(bytes));
    }
    s.initialized(body).await
}

/// The transfer is Published with the file's size and MD5, and the recipient downloads exactly
/// the file.
async fn assert_delivered(s: &Scenario, id: &str, sample: &Sample) {
    let overview = s.wait_for_status(&s.sender.write, id, "Published").await;
    assert_eq!(overview["checksum"], md5_hex(&sample.bytes), "{overview}");
    assert_eq!(overview["fileTransferSize"], sample.len(), "{overview}");
    let download = s
        .download(&s.recipient.read, id, None)
        .await
        .expect_status(200);
    assert_eq!(
        download.bytes.len(),
        sample.bytes.len(),
        "downloaded length"
    );
    assert!(
        download.bytes == sample.bytes,
        "the downloaded bytes differ from the uploaded file (first difference at byte {:?})",
        download
            .bytes
            .iter()
            .zip(&sample.bytes)
            .position(|(got, sent)| got != sent)
    );
}

/// The installed JS client, or `None` when the test skips.
async fn tus_js_client() -> Option<NodePackage> {
    node::package("js").await
}

on_each_database! {
    /// tus-js-client with `parallelUploads: 4` sends a 6 MiB file as four partials of several
    /// PATCHes each and a final concatenation; the server joins them in the order the final
    /// header names them and publishes the file.
    async fn tus_js_client_uploads_four_parallel_partials(db: Database) {
        let Some(js) = tus_js_client().await else {
            return;
        };
        let s = Scenario::start(db).await;
        // No checksum at initialize, as Altinn's own harness: the server's MD5 must be the file's.
        let id = initialized(&s, None).await;
        let sample = Sample::new(6 * MIB + 4321);
        let mut command = js.script("upload.mjs");
        upload_to(&mut command, &s, &id, &sample, 256 * 1024);
        command.env("TUS_PARALLEL", "4");
        let printed = finish("tus-js-client", &s, &mut command).await;

        let responses = printed.responses();
        let mut patches: BTreeMap<&str, usize> = BTreeMap::new();
        for (method, url, status, _) in &responses {
            if *method == "PATCH" {
                assert_eq!(*status, 204, "{responses:#?}");
                *patches.entry(url).or_default() += 1;
            }
        }
        assert_eq!(patches.len(), 4, "four partials written: {responses:#?}");
        let partial_prefix = s.url(&format!("{}/partial/", upload_path(&id)));
        for (url, count) in &patches {
            assert!(url.starts_with(&partial_prefix), "{url} is a partial of {id}");
            assert!(*count >= 2, "{url} took {count} PATCH(es): {responses:#?}");
        }
        let creations = responses
            .iter()
            .filter(|(method, _, status, _)| *method == "POST" && *status == 201)
            .count();
        assert_eq!(creations, 5, "four partials and the final: {responses:#?}");
        assert_eq!(printed.one("done"), [s.url(&upload_path(&id))]);

        assert_delivered(&s, &id, &sample).await;
    }
}

on_each_database! {
    /// tus-js-client is killed halfway through a single upload of nine chunks (its first one
    /// sent with the creation POST); the server holds the accepted bytes, and a second run finds
    /// the upload in its URL storage, resumes at the server's offset and completes it.
    async fn tus_js_client_resumes_an_upload_after_being_killed(db: Database) {
        let Some(js) = tus_js_client().await else {
            return;
        };
        let s = Scenario::start(db).await;
        let sample = Sample::new(4 * MIB + 1234);
        let id = initialized(&s, Some(&sample.bytes)).await;
        let chunk = 512 * 1024;
        let storage = sample.dir.path().join("urls.json");
        let run = |pause: bool| {
            let mut command = js.script("upload.mjs");
            upload_to(&mut command, &s, &id, &sample, chunk);
            command
                .env("TUS_URL_STORAGE", &storage)
                .env("TUS_DATA_DURING_CREATION", "1");
            if pause {
                command.env("TUS_PAUSE_AT", (2 * MIB).to_string());
            }
            command
        };

        let first = kill_at("tus-js-client (first run)", &s, &mut run(true), "paused").await;
        let url = first.one("url")[0].to_owned();
        assert_eq!(url, s.url(&upload_path(&id)), "the transfer's own upload");
        let paused_at = first.number("paused");
        let tus = TusClient::new(&s, &s.sender.write);
        let offset = tus.offset(path_of(&s, &url)).await;
        assert_eq!(offset, paused_at, "the server holds every accepted chunk: {:#?}", first.0);
        assert!(offset > 0 && offset < sample.len(), "halfway: {offset}");
        let overview = s.overview(&s.sender.write, &id).await.ok_json();
        assert_eq!(overview["fileTransferStatus"], "UploadStarted", "{overview}");

        let second = finish("tus-js-client (second run)", &s, &mut run(false)).await;
        assert_eq!(second.one("resumed"), [url.as_str()], "found in the URL storage");
        let responses = second.responses();
        assert!(
            !responses.iter().any(|(method, ..)| *method == "POST"),
            "no new upload created: {responses:#?}"
        );
        let head = responses.first().expect("the second run asked the server");
        assert_eq!(
            (head.0, head.2, head.3),
            ("HEAD", 200, offset.to_string().as_str()),
            "the second run starts from the server's offset: {responses:#?}"
        );
        let chunks = second.all("chunk");
        let first_chunk: Vec<u64> = chunks[0].iter().map(|word| word.parse().expect("a number")).collect();
        assert_eq!(first_chunk[1] - first_chunk[0], offset, "resumed at {offset}: {chunks:?}");
        assert_eq!(second.one("done"), [url.as_str()]);

        assert_delivered(&s, &id, &sample).await;
    }
}

on_each_database! {
    /// tuspy creates the upload and sends a 3 MiB file in 256 KiB PATCHes, each with tuspy's
    /// `Upload-Checksum` (sha1).
    async fn tuspy_uploads_a_file_chunk_by_chunk_with_checksums(db: Database) {
        if !tools_present(&["tusclient"]).await {
            return;
        }
        let s = Scenario::start(db).await;
        let id = initialized(&s, None).await;
        let sample = Sample::new(3 * MIB + 777);
        let chunk = 256 * 1024;
        let mut command = tuspy();
        upload_to(&mut command, &s, &id, &sample, chunk);
        command.env("TUS_CHECKSUM", "1");
        let printed = finish("tuspy", &s, &mut command).await;

        assert_eq!(printed.one("url"), [s.url(&upload_path(&id))]);
        assert_eq!(printed.number("start"), 0);
        let offsets: Vec<u64> = printed
            .all("chunk")
            .iter()
            .map(|words| words[0].parse().expect("an offset"))
            .collect();
        let expected: Vec<u64> = (1..=sample.bytes.len().div_ceil(chunk))
            .map(|n| (n * chunk).min(sample.bytes.len()) as u64)
            .collect();
        assert_eq!(offsets, expected, "one PATCH per chunk, each moving the offset on");
        assert_eq!(printed.number("done"), sample.len());

        assert_delivered(&s, &id, &sample).await;
    }
}

on_each_database! {
    /// tuspy stops after five of nine chunks, as a client that went away; a second tuspy given
    /// the upload's URL asks the server for its offset, sends only the rest, and the transfer
    /// is published with the checksum declared at initialize.
    async fn tuspy_resumes_an_upload_from_the_servers_offset(db: Database) {
        if !tools_present(&["tusclient"]).await {
            return;
        }
        let s = Scenario::start(db).await;
        let sample = Sample::new(4 * MIB + 99);
        let id = initialized(&s, Some(&sample.bytes)).await;
        let chunk = 512 * 1024;

        let mut command = tuspy();
        upload_to(&mut command, &s, &id, &sample, chunk);
        command.env("TUS_STOP_AFTER_CHUNKS", "5");
        let first = finish("tuspy (first run)", &s, &mut command).await;
        let url = first.one("url")[0].to_owned();
        let stopped = first.number("stopped");
        assert_eq!(stopped, 5 * chunk as u64);
        let tus = TusClient::new(&s, &s.sender.write);
        assert_eq!(tus.offset(path_of(&s, &url)).await, stopped, "the server's offset");

        let mut command = tuspy();
        upload_to(&mut command, &s, &id, &sample, chunk);
        command.env("TUS_UPLOAD_URL", &url);
        let second = finish("tuspy (second run)", &s, &mut command).await;
        assert_eq!(second.one("url"), [url.as_str()]);
        assert_eq!(second.number("start"), stopped, "resumed from the server's offset");
        assert_eq!(second.all("chunk").len(), 4, "only the rest sent: {:#?}", second.0);
        assert_eq!(second.number("done"), sample.len());

        assert_delivered(&s, &id, &sample).await;
    }
}
