//! Uploads whose broker dies under them, and a disk that fills up: `kill -9` mid-body and a
//! restart on the same data fail the transfer within a minute (`uploadfailed`, as a dropped
//! client gets) and remove its staging file or abort its S3 multipart upload; a live upload
//! that outlasts several leases is never failed; a full disk is answered 507 and leaves nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use broker_tests::events::resource_urn;
use broker_tests::s3::S3Server;
use broker_tests::scenario::{RESOURCE, md5_hex, pattern};
use broker_tests::{AccessList, Broker, Database, Scenario, on_each_database};
use serde_json::{Value, json};

/// The lease the brokers run with: short, so the tests wait seconds, not half a minute.
const LEASE_SECONDS: u64 = 3;
/// What the issue allows between the crash and the failed transfer.
const WITHIN: Duration = Duration::from_secs(60);
/// Bytes per chunk of a slow body.
const CHUNK: usize = 64 * 1024;

/// How much of a slow body went out so far.
#[derive(Clone, Default)]
struct Sent(Arc<AtomicU64>);

impl Sent {
    fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Waits until `at_least` bytes went out.
    async fn reach(&self, at_least: u64) {
        let deadline = Instant::now() + WITHIN;
        while self.bytes() < at_least {
            assert!(
                Instant::now() < deadline,
                "only {} bytes sent",
                self.bytes()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A body of `size` bytes of `fill`, sent a chunk every `pause`, counted in `sent`.
fn slow_body(size: usize, pause: Duration, sent: &Sent) -> reqwest::Body {
    let sent = sent.clone();
    let stream = futures::stream::unfold(0usize, move |done| {
        let sent = sent.clone();
        async move {
            if done >= size {
                return None;
            }
            tokio::time::sleep(pause).await;
            let chunk = CHUNK.min(size - done);
            sent.0.fetch_add(chunk as u64, Ordering::Relaxed);
            Some((Ok::<_, std::io::Error>(vec![b'x'; chunk]), done + chunk))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

/// Where a broker keeps its data, kept across restarts: a directory of the test's, and the
/// PostgreSQL database when on PostgreSQL.
struct Place {
    dir: PathBuf,
    database: Option<broker_tests::database::TestDatabase>,
    /// The gateway's port: tokens name the gateway's URL as their issuer, so a restarted
    /// broker must listen where the one before it did for the parties' tokens to stay valid.
    port: u16,
}

impl Place {
    /// A fresh place on `db`'s kind of database.
    fn new(db: Database) -> Self {
        let dir = std::env::temp_dir().join(format!("broker-crash-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("creating the data directory");
        let database = match db {
            Database::Sqlite => None,
            Database::Postgres(database) => Some(database),
        };
        Self {
            dir,
            database,
            port: broker_tests::cluster::free_port(),
        }
    }

    /// Options for a broker on this place, with a short upload lease and `admin` as the
    /// admin credential (the same across restarts).
    fn options(&self, admin: &str) -> broker_tests::BrokerOptions {
        let mut options = Scenario::options(Database::Sqlite)
            .data_dir(&self.dir)
            .admin_token(admin)
            .env("BROKER_HTTP_ADDR", format!("127.0.0.1:{}", self.port))
            .env("BROKER_UPLOAD_LEASE_SECONDS", LEASE_SECONDS);
        if let Some(database) = &self.database {
            options = options.database_url(database.url());
        }
        options
    }

    /// The staging files under the data directory's `files/`.
    fn staging_files(&self) -> Vec<PathBuf> {
        files_under(&self.dir.join("files"))
            .into_iter()
            .filter(|path| path.to_string_lossy().ends_with(".upload"))
            .collect()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every regular file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// Kills the scenario's broker with SIGKILL and starts `restarted` in its place, keeping the
/// parties' tokens (the token service's keys live in the database).
async fn kill_and_restart(s: Scenario, restarted: broker_tests::BrokerOptions) -> Scenario {
    let Scenario {
        broker,
        owner,
        sender,
        recipient,
        other_recipient,
        stranger,
    } = s;
    let pid = broker.pid().expect("brokerd runs as a process");
    // Dropping a broker sends SIGKILL: no shutdown, no cleanup, as `kill -9`.
    drop(broker);
    let gone = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < gone {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Scenario {
        broker: Broker::start(restarted).await,
        owner,
        sender,
        recipient,
        other_recipient,
        stranger,
    }
}

/// Waits until transfer `id` is Failed; how long that took since `since`.
async fn failed_within(s: &Scenario, id: &str, since: Instant) -> Duration {
    let overview = s.wait_for_status(&s.sender.write, id, "Failed").await;
    let took = since.elapsed();
    assert!(took < WITHIN, "failed only after {took:?}: {overview}");
    let details = s.details(&s.sender.write, id).await.ok_json();
    let history = details["fileTransferStatusHistory"].to_string();
    assert!(
        history.contains("UploadStarted") && history.contains("Failed"),
        "{history}"
    );
    took
}

/// Waits until the sender can pull the `uploadfailed` event of transfer `id`.
async fn assert_upload_failed_event(s: &Scenario, id: &str) {
    let query = format!("resource={}&after=0&size=100", resource_urn(RESOURCE));
    let deadline = Instant::now() + WITHIN;
    loop {
        let events = s.pull(&s.sender.events, &query).await.ok_json();
        let failed = events
            .as_array()
            .into_iter()
            .flatten()
            .any(|event: &Value| {
                event["type"]
                    .as_str()
                    .is_some_and(|kind| kind.ends_with("uploadfailed"))
                    && event.to_string().contains(id)
            });
        if failed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no uploadfailed event for {id}: {events}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A new transfer uploads and publishes on `s`.
async fn a_new_upload_publishes(s: &Scenario) {
    let bytes = pattern(1 << 20);
    let mut body = s.initialize_body();
    body["checksum"] = json!(md5_hex(&bytes));
    let id = s.published_with(body, &bytes).await;
    let downloaded = s
        .download(&s.recipient.read, &id, None)
        .await
        .expect_status(200);
    assert!(
        downloaded.bytes == bytes,
        "the new upload came back different"
    );
}

on_each_database! {
    /// `kill -9` while 200 MiB stream in slowly, then a restart on the same data: the transfer
    /// is Failed within a minute with `uploadfailed`, its staging file is gone, and a new
    /// transfer uploads fine.
    async fn a_crash_mid_upload_fails_the_transfer_and_removes_its_staging_file(db: Database) {
        let place = Place::new(db);
        let admin = format!("admin-{}", uuid::Uuid::new_v4().simple());
        let s = Scenario::start_with(place.options(&admin), AccessList::Disabled).await;
        let id = s.initialized(s.initialize_body()).await;
        let sent = Sent::default();
        let body = slow_body(200 << 20, Duration::from_millis(5), &sent);
        let upload = {
            let request = s
                .request(reqwest::Method::POST, &format!("/broker/api/v1/filetransfer/{id}/upload"))
                .bearer_auth(&s.sender.write)
                .header("content-type", "application/octet-stream")
                .body(body);
            tokio::spawn(request.send())
        };
        sent.reach(16 << 20).await;
        let staged = place.staging_files();
        assert_eq!(staged.len(), 1, "one staging file while the upload runs: {staged:?}");
        let staged_bytes = std::fs::metadata(&staged[0]).map(|m| m.len()).unwrap_or(0);

        let killed = Instant::now();
        let s = kill_and_restart(s, place.options(&admin)).await;
        let restarted = killed.elapsed();
        assert!(upload.await.expect("the upload task").is_err(), "the killed broker answered");
        assert!(sent.bytes() < 200 << 20, "the kill landed mid-body");

        let took = failed_within(&s, &id, killed).await;
        let deadline = Instant::now() + WITHIN;
        while !place.staging_files().is_empty() {
            assert!(Instant::now() < deadline, "staging left: {:?}", place.staging_files());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let cleaned = killed.elapsed();
        println!(
            "killed with {} MiB sent ({} MiB staged); restarted in {restarted:?}; Failed {took:?} \
             and staging removed {cleaned:?} after the kill (lease {LEASE_SECONDS} s)",
            sent.bytes() >> 20,
            staged_bytes >> 20
        );
        assert!(files_under(&place.dir.join("files")).iter().all(|path| !path.to_string_lossy().contains(&id)));
        assert_upload_failed_event(&s, &id).await;
        s.upload(&s.sender.write, &id, pattern(10)).await.assert_code(409, 4);
        a_new_upload_publishes(&s).await;
    }
}

on_each_database! {
    /// An upload that keeps streaming for several lease periods is never failed: its process
    /// renews the lease while another process's lifecycle job (on PostgreSQL, a second broker
    /// on the same database; the job of its own process as well) runs every half lease.
    async fn a_slow_upload_outlasting_several_leases_publishes(db: Database) {
        let place = Place::new(db);
        let admin = format!("admin-{}", uuid::Uuid::new_v4().simple());
        let s = Scenario::start_with(place.options(&admin), AccessList::Disabled).await;
        let other_dir = std::env::temp_dir().join(format!("broker-other-{}", uuid::Uuid::new_v4()));
        let other = match &place.database {
            Some(database) => Some(
                Broker::start(
                    Scenario::options(Database::Sqlite)
                        .data_dir(&other_dir)
                        .admin_token(&admin)
                        .database_url(database.url())
                        .env("BROKER_UPLOAD_LEASE_SECONDS", LEASE_SECONDS),
                )
                .await,
            ),
            None => None,
        };
        let size = 200 * CHUNK;
        let mut body = s.initialize_body();
        body["checksum"] = json!(md5_hex("x".repeat(size).as_bytes()));
        let id = s.initialized(body).await;
        let started = Instant::now();
        let sent = Sent::default();
        s.upload(&s.sender.write, &id, slow_body(size, Duration::from_millis(60), &sent))
            .await
            .ok_json();
        let took = started.elapsed();
        assert!(
            took > Duration::from_secs(3 * LEASE_SECONDS),
            "the upload must outlast several leases, took {took:?}"
        );
        s.wait_for_status(&s.sender.write, &id, "Published").await;
        let downloaded = s.download(&s.recipient.read, &id, None).await.expect_status(200);
        assert_eq!(downloaded.bytes.len(), size);
        println!(
            "an upload of {took:?} ({:.1} leases of {LEASE_SECONDS} s) published{}",
            took.as_secs_f64() / LEASE_SECONDS as f64,
            if other.is_some() { ", a second broker's job running beside it" } else { "" }
        );
        drop(other);
        let _ = std::fs::remove_dir_all(&other_dir);
    }
}

/// The S3 multipart uploads in progress in `s3`'s bucket, by their upload ids.
async fn multipart_uploads(s3: &S3Server) -> Vec<String> {
    let env = s3.broker_env("files");
    let value = |name: &str| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let bucket = value("BROKER_STORAGE_URL")
        .trim_start_matches("s3://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let listing = reqwest::get(format!("{}/{bucket}?uploads", value("AWS_ENDPOINT")))
        .await
        .expect("listing multipart uploads")
        .text()
        .await
        .expect("the multipart listing");
    listing
        .split("<UploadId>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</UploadId>").map(|(id, _)| id.to_owned()))
        .collect()
}

/// On S3 (moto), `kill -9` mid-upload and a restart: the transfer is Failed and its multipart
/// upload aborted (none is left in progress), no object stored for it.
#[tokio::test]
async fn a_crash_mid_upload_to_s3_aborts_its_multipart_upload() {
    let Some(s3) = S3Server::start("broker-crash").await else {
        return;
    };
    let place = Place::new(Database::Sqlite);
    let admin = format!("admin-{}", uuid::Uuid::new_v4().simple());
    let on_s3 = |mut options: broker_tests::BrokerOptions| {
        for (name, value) in s3.broker_env("files") {
            options = options.env(name, value);
        }
        options
    };
    let s = Scenario::start_with(on_s3(place.options(&admin)), AccessList::Disabled).await;
    let id = s.initialized(s.initialize_body()).await;
    let sent = Sent::default();
    let request = s
        .request(
            reqwest::Method::POST,
            &format!("/broker/api/v1/filetransfer/{id}/upload"),
        )
        .bearer_auth(&s.sender.write)
        .header("content-type", "application/octet-stream")
        .body(slow_body(100 << 20, Duration::from_millis(5), &sent));
    let upload = tokio::spawn(request.send());
    // Past two 8 MiB parts, so parts of the upload are stored.
    sent.reach(24 << 20).await;
    let before = multipart_uploads(&s3).await;
    assert_eq!(
        before.len(),
        1,
        "one multipart upload in progress: {before:?}"
    );

    let killed = Instant::now();
    let s = kill_and_restart(s, on_s3(place.options(&admin))).await;
    let _ = upload.await;
    let took = failed_within(&s, &id, killed).await;
    let deadline = Instant::now() + WITHIN;
    loop {
        let left = multipart_uploads(&s3).await;
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "multipart uploads left: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "S3: killed with {} MiB sent; Failed {took:?} and the multipart upload aborted {:?} after the kill",
        sent.bytes() >> 20,
        killed.elapsed()
    );
    assert!(
        !s3.keys().await.iter().any(|key| key.contains(&id)),
        "no object for the failed upload: {:?}",
        s3.keys().await
    );
    assert_upload_failed_event(&s, &id).await;
    a_new_upload_publishes(&s).await;
}

/// A small tmpfs mounted over a directory, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` on `dir`; `None` when this machine does not let us mount.
    fn mount(dir: &Path, bytes: u64) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("creating the mount point");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|status| status.success());
        mounted.then(|| Self(dir.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: the broker may still be stopping.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

on_each_database! {
    /// The file storage on a 4 MiB disk (a tmpfs mounted as the data directory's `files/`): an
    /// 8 MiB upload is answered 507 Insufficient Storage as problem+json, the transfer Failed,
    /// nothing left on the disk; a smaller upload then fits and publishes.
    async fn a_full_disk_is_answered_507_and_leaves_nothing(db: Database) {
        let place = Place::new(db);
        let Some(disk) = SmallDisk::mount(&place.dir.join("files"), 4 << 20) else {
            println!("skipping: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)");
            return;
        };
        let admin = format!("admin-{}", uuid::Uuid::new_v4().simple());
        let s = Scenario::start_with(place.options(&admin), AccessList::Disabled).await;
        let id = s.initialized(s.initialize_body()).await;
        // Sent by hand: the kit's `upload` takes any 5xx for a broker bug.
        let full = s
            .request(reqwest::Method::POST, &format!("/broker/api/v1/filetransfer/{id}/upload"))
            .bearer_auth(&s.sender.write)
            .header("content-type", "application/octet-stream")
            .body(pattern(8 << 20))
            .send()
            .await
            .expect("an answer");
        assert_eq!(full.status(), 507);
        let content_type = full.headers().get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
        // Problems of an action producing JSON come as Altinn's ASP.NET sends them.
        assert!(
            content_type.starts_with("application/problem+json")
                || content_type == "application/json; charset=utf-8",
            "{content_type}"
        );
        let problem: Value = full.json().await.expect("a problem document");
        assert_eq!(problem["status"], 507, "{problem}");
        assert!(problem["type"].is_string() && problem["title"].is_string(), "{problem}");
        assert!(
            problem["detail"].as_str().is_some_and(|detail| detail.contains("full")),
            "{problem}"
        );
        let overview = s.wait_for_status(&s.sender.write, &id, "Failed").await;
        assert!(overview["fileTransferSize"].as_u64().is_none_or(|size| size == 0), "{overview}");
        let left = files_under(&place.dir.join("files"));
        assert!(left.is_empty(), "a full disk leaves nothing behind: {left:?}");
        assert_upload_failed_event(&s, &id).await;
        a_new_upload_publishes(&s).await;
        drop(s);
        drop(disk);
    }
}
