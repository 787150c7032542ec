//! Faults on the production layout: every service its own `brokerd` process (two replicas of
//! file transfer and of events) on PostgreSQL, RabbitMQ and S3 (moto), while a few clients send
//! small transfers through the gateway. Mid-run, at fixed points of the run (after so many
//! transfers were begun), RabbitMQ is restarted twice, PostgreSQL once, one replica of each
//! scaled service is killed with SIGKILL twice (and started again on its address), and S3 is
//! unreachable for 30 s.
//!
//! A client whose call failed does what a real one does: it asks where its transfer stands,
//! uploads again while it is still Initialized, and otherwise begins a new transfer, leaving
//! the old one to the lifecycle jobs (a transfer whose uploading replica died is failed by the
//! upload lease, or at the latest as a stuck upload). At the end every transfer is Published or
//! Failed (or Initialized, never uploaded, when the client never learnt its id), every Published
//! one downloads byte for byte, the event log holds each transfer's events once, each of them
//! reached the sender's webhook under its one id, and the bucket holds exactly the bytes of the
//! Published transfers, with no open multipart upload holding a part (open ones without parts,
//! whose ids S3 gave but no lease recorded, are counted).
//!
//! PostgreSQL and RabbitMQ are private instances of this test (the shared ones must never be
//! restarted), S3 is moto behind a pausable proxy. Needs `initdb`, `rabbitmq-server` and
//! `moto_server`: skips without them, and fails in CI.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use broker_tests::cluster::Backends;
use broker_tests::events::resource_urn;
use broker_tests::events::subscription;
use broker_tests::events::types::{INITIALIZED, PUBLISHED};
use broker_tests::s3::S3Server;
use broker_tests::s3_proxy::TcpProxy;
use broker_tests::scenario::{RESOURCE, SENDER, md5_hex, pattern};
use broker_tests::servers::{PrivatePostgres, PrivateRabbit, sigkill};
use broker_tests::{AccessList, Broker, Cluster, Replicas, Webhook};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

/// Transfers the clients complete (each Published at least once).
const TRANSFERS: usize = 2_000;
/// Clients sending at once.
const CLIENTS: usize = 4;
/// The smallest transfer; transfer `n` has `n % 100` bytes more.
const SIZE: usize = 100;
/// How long S3 stays unreachable.
const S3_OUTAGE: Duration = Duration::from_secs(30);
/// How long a killed replica stays down before it is started again.
const DOWN: Duration = Duration::from_secs(1);
/// How long a client waits for its transfer to settle before it gives up on it.
const SETTLE: Duration = Duration::from_secs(60);
/// How long the transfers left behind may take to settle at the end: an upload lease, or
/// (before leases) the stuck-upload timeout of this test plus a lifecycle round.
const FINAL_SETTLE: Duration = Duration::from_secs(100);
/// How long every event may take to reach the log and the webhook once the faults are over.
const ARRIVAL: Duration = Duration::from_secs(90);
/// Every client call's limit, so a call cut off by a fault fails instead of hanging.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// A pause between a client's retries.
const BACKOFF: Duration = Duration::from_millis(250);
/// The failure of an upload, as the log names it.
const UPLOAD_FAILED: &str = "no.altinn.broker.uploadfailed";

/// One fault, injected while the clients keep sending.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `rabbitmqctl stop`, then the node started again on its data.
    RestartRabbit,
    /// PostgreSQL stopped in immediate mode (connections cut) and started again.
    RestartPostgres,
    /// Replica 0 of the service killed with SIGKILL and started again after [`DOWN`].
    Kill(&'static str),
    /// S3 unreachable for [`S3_OUTAGE`].
    S3Outage,
}

/// The faults in the order they strike, spread evenly over the run.
const FAULTS: [Fault; 8] = [
    Fault::Kill("filetransfer"),
    Fault::RestartRabbit,
    Fault::Kill("events"),
    Fault::RestartPostgres,
    Fault::S3Outage,
    Fault::Kill("filetransfer"),
    Fault::RestartRabbit,
    Fault::Kill("events"),
];

/// The transfer whose start fault `k` waits for.
fn fault_point(k: usize) -> usize {
    (k + 1) * TRANSFERS / (FAULTS.len() + 1)
}

/// Transfer `n`'s bytes: its own, so a mix-up between transfers shows.
fn content(n: usize) -> Vec<u8> {
    let mut bytes = format!("fault transfer {n}\n").into_bytes();
    bytes.extend(pattern(SIZE + n % 100));
    bytes
}

/// The reference transfer `n` is sent under, and back.
fn reference(n: usize) -> String {
    format!("faults-{n}")
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    /// Calls that failed (a 5xx or no answer) and were made again.
    retries: AtomicUsize,
    /// Initialize calls that failed: each may have left an Initialized transfer whose id the
    /// client never learnt.
    lost_initializes: AtomicUsize,
    /// Transfers the clients gave up on (their upload failed and they were no longer
    /// Initialized), left to the lifecycle jobs.
    abandoned: AtomicUsize,
    /// Every transfer id a client got, with its transfer number.
    ids: Mutex<Vec<(String, usize)>>,
}

/// A client of the gateway that survives faults: a failed call is an `Err`, never a panic.
struct Client<'a> {
    cluster: &'a Cluster,
    http: reqwest::Client,
    tally: &'a Tally,
}

/// An answer below 500.
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Client<'_> {
    /// Sends `request`; a 5xx or a transport error is an `Err` (counted as a retry by callers).
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Answer, String> {
        let response = request.send().await.map_err(|error| error.to_string())?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|error| error.to_string())?;
        if status.is_server_error() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
        }
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    /// A request as the sender.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.cluster.url(path))
            .bearer_auth(&self.cluster.sender.write)
    }

    /// Counts a retry and waits a moment before it.
    async fn retrying(&self) {
        self.tally.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(BACKOFF).await;
    }

    /// Initializes transfer `n`, again until it is answered; the new id.
    async fn initialize(&self, n: usize) -> String {
        let mut body = self.cluster.initialize_body();
        body["checksum"] = json!(md5_hex(&content(n)));
        body["sendersFileTransferReference"] = json!(reference(n));
        loop {
            let request = self
                .request(Method::POST, "/broker/api/v1/filetransfer")
                .json(&body);
            match self.call(request).await {
                Ok(answer) if answer.status == StatusCode::OK => {
                    let id = answer.body["fileTransferId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("no fileTransferId in {}", answer.body))
                        .to_owned();
                    self.tally
                        .ids
                        .lock()
                        .expect("the ids")
                        .push((id.clone(), n));
                    return id;
                }
                Ok(answer) => panic!("initialize refused: {} {}", answer.status, answer.body),
                Err(_) => {
                    self.tally.lost_initializes.fetch_add(1, Ordering::Relaxed);
                    self.retrying().await;
                }
            }
        }
    }

    /// The transfer's status, asked again until it is answered.
    async fn status(&self, id: &str) -> String {
        loop {
            let request = self.request(Method::GET, &format!("/broker/api/v1/filetransfer/{id}"));
            match self.call(request).await {
                Ok(answer) if answer.status == StatusCode::OK => {
                    return answer.body["fileTransferStatus"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                }
                Ok(answer) => panic!("overview of {id}: {} {}", answer.status, answer.body),
                Err(_) => self.retrying().await,
            }
        }
    }

    /// Waits until the transfer is Published (`true`) or Failed or still unsettled after
    /// [`SETTLE`] (`false`).
    async fn published(&self, id: &str) -> bool {
        let deadline = Instant::now() + SETTLE;
        loop {
            match self.status(id).await.as_str() {
                "Published" => return true,
                "Failed" => return false,
                _ if Instant::now() > deadline => return false,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Sends transfer `n` until one of its transfers is Published.
    async fn send(&self, n: usize) {
        let bytes = content(n);
        'transfer: loop {
            let id = self.initialize(n).await;
            loop {
                let request = self
                    .request(
                        Method::POST,
                        &format!("/broker/api/v1/filetransfer/{id}/upload"),
                    )
                    .header("content-type", "application/octet-stream")
                    .body(bytes.clone());
                let uploaded = self.call(request).await;
                if matches!(&uploaded, Ok(answer) if answer.status == StatusCode::OK) {
                    break;
                }
                if let Ok(answer) = &uploaded
                    && answer.status != StatusCode::CONFLICT
                {
                    panic!("upload of {id} refused: {} {}", answer.status, answer.body);
                }
                self.retrying().await;
                match self.status(&id).await.as_str() {
                    "Initialized" => continue,
                    "Published" => return,
                    _ => {
                        // Uploading, or failed: a real client starts over with a new transfer.
                        self.tally.abandoned.fetch_add(1, Ordering::Relaxed);
                        continue 'transfer;
                    }
                }
            }
            if self.published(&id).await {
                return;
            }
            self.tally.abandoned.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The servers of this test and the cluster on them.
struct Setup {
    // Dropped in order: the cluster's processes before the servers they use.
    cluster: Cluster,
    proxy: TcpProxy,
    s3: S3Server,
    rabbit: PrivateRabbit,
    postgres: PrivatePostgres,
}

/// Private PostgreSQL and RabbitMQ, moto behind a proxy, and the cluster: `None` when a tool
/// is missing outside CI.
async fn setup() -> Option<Setup> {
    let postgres = PrivatePostgres::start().await?;
    let rabbit = PrivateRabbit::start().await?;
    let s3 = S3Server::start("broker-faults").await?;
    let proxy = TcpProxy::start(s3.addr()).await;
    let backends = Backends {
        database_url: postgres.url(),
        amqp_url: rabbit.url(),
        storage: s3.broker_env_through("files", &proxy.endpoint()),
        settings: vec![
            // A transfer whose uploading replica died fails within seconds…
            ("BROKER_UPLOAD_LEASE_SECONDS", "5".to_owned()),
            // …or, where there are no leases, as a stuck upload after a minute.
            ("BROKER_STUCK_UPLOAD_AFTER", "60s".to_owned()),
            ("BROKER_LIFECYCLE_INTERVAL", "5s".to_owned()),
            // A killed worker's deliveries come back soon, and deliveries outlast the faults.
            ("BROKER_EVENTS_DELIVERY_TIMEOUT", "2s".to_owned()),
            (
                "BROKER_EVENTS_RETRY_SCHEDULE",
                "200ms,500ms,1s,2s,5s,10s,20s,30s,30s".to_owned(),
            ),
        ],
    };
    let replicas = Replicas {
        filetransfer: 2,
        events: 2,
    };
    let cluster = Cluster::start_on(backends, replicas, AccessList::Disabled).await;
    Some(Setup {
        cluster,
        proxy,
        s3,
        rabbit,
        postgres,
    })
}

/// What the injector strikes: the servers, and the cluster's replicas.
struct Faulty<'a> {
    cluster: &'a Cluster,
    proxy: &'a TcpProxy,
    rabbit: &'a mut PrivateRabbit,
    postgres: &'a PrivatePostgres,
}

/// Injects [`FAULTS`], each once the clients began its transfer (`begun` passed its point),
/// telling them through `struck`; returns the processes started in place of killed ones.
async fn inject(
    setup: Faulty<'_>,
    begun: &AtomicUsize,
    struck: &watch::Sender<usize>,
) -> Vec<Broker> {
    let mut respawned: Vec<Broker> = Vec::new();
    // The process now serving replica 0 of each service.
    let mut current: BTreeMap<&str, u32> = BTreeMap::from([
        (
            "filetransfer",
            setup.cluster.filetransfer[0].pid().expect("a pid"),
        ),
        ("events", setup.cluster.events[0].pid().expect("a pid")),
    ]);
    for (k, fault) in FAULTS.into_iter().enumerate() {
        while begun.load(Ordering::SeqCst) <= fault_point(k) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        struck.send_replace(k + 1);
        let started = Instant::now();
        match fault {
            Fault::RestartRabbit => setup.rabbit.restart().await,
            Fault::RestartPostgres => setup.postgres.restart().await,
            Fault::Kill(service) => {
                sigkill(current[service]);
                tokio::time::sleep(DOWN).await;
                let process = setup.cluster.respawn(service, 0).await;
                current.insert(service, process.pid().expect("a pid"));
                respawned.push(process);
            }
            Fault::S3Outage => {
                setup.proxy.pause();
                tokio::time::sleep(S3_OUTAGE).await;
                setup.proxy.resume();
            }
        }
        println!(
            "fault {k} ({fault:?}) at transfer {}: over in {:?}",
            fault_point(k),
            started.elapsed()
        );
    }
    respawned
}

/// Every transfer's status, reference and storage key, from the file-transfer database.
async fn transfers(database: &sqlx::PgPool) -> Vec<(String, String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT id, status, COALESCE(senders_reference, ''), storage_key \
         FROM filetransfer.file_transfers",
    )
    .fetch_all(database)
    .await
    .expect("reading the transfers")
}

/// Waits until no transfer is still uploading; the transfers then.
async fn settled(database: &sqlx::PgPool) -> Vec<(String, String, String, Option<String>)> {
    let deadline = Instant::now() + FINAL_SETTLE;
    loop {
        let all = transfers(database).await;
        let unsettled: Vec<_> = all
            .iter()
            .filter(|(_, status, _, _)| {
                matches!(status.as_str(), "UploadStarted" | "UploadProcessing")
            })
            .collect();
        if unsettled.is_empty() || Instant::now() > deadline {
            assert!(
                unsettled.is_empty(),
                "transfers still uploading {FINAL_SETTLE:?} after the run: {unsettled:?}"
            );
            return all;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Pulls every event of the resource the sender may read.
async fn pull_all(cluster: &Cluster) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = "0".to_owned();
    loop {
        let query = format!(
            "resource={}&size=1000&after={after}",
            resource_urn(RESOURCE)
        );
        let page = cluster.pull(&cluster.sender.events, &query).await.ok_json();
        let page = page.as_array().cloned().unwrap_or_default();
        let Some(last) = page.last() else {
            return events;
        };
        after = last["id"].as_str().unwrap_or_default().to_owned();
        events.extend(page);
    }
}

/// `(transfer, type)` of a CloudEvent.
fn key(event: &Value) -> (String, String) {
    (
        event["resourceinstance"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        event["type"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The events each transfer must have in the log, by its final status.
fn expected_events(all: &[(String, String, String, Option<String>)]) -> BTreeSet<(String, String)> {
    let mut wanted = BTreeSet::new();
    for (id, status, _, _) in all {
        wanted.insert((id.clone(), INITIALIZED.to_owned()));
        match status.as_str() {
            "Published" => wanted.insert((id.clone(), PUBLISHED.to_owned())),
            "Failed" => wanted.insert((id.clone(), UPLOAD_FAILED.to_owned())),
            _ => false,
        };
    }
    wanted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_survive_restarts_kills_and_an_s3_outage_on_the_production_layout() {
    let started = Instant::now();
    let Some(mut setup) = setup().await else {
        return;
    };
    let hook = Webhook::start().await;
    setup
        .cluster
        .subscribed(
            &setup.cluster.sender.events,
            subscription(&hook.url(), SENDER),
        )
        .await;
    println!("servers and cluster ready in {:?}", started.elapsed());

    // The clients take transfer numbers in turn; the one at a fault's point waits until the
    // fault struck, so the faults fall at the same places in every run.
    let tally = Tally::default();
    let begun = AtomicUsize::new(0);
    let (struck, striking) = watch::channel(0);
    let http = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .build()
        .expect("an HTTP client");
    let run = Instant::now();
    let cluster = &setup.cluster;
    let clients = futures::future::join_all((0..CLIENTS).map(|_| {
        let client = Client {
            cluster,
            http: http.clone(),
            tally: &tally,
        };
        let (begun, mut striking) = (&begun, striking.clone());
        async move {
            loop {
                let n = begun.fetch_add(1, Ordering::SeqCst);
                if n >= TRANSFERS {
                    return;
                }
                let due = (0..FAULTS.len()).filter(|k| fault_point(*k) <= n).count();
                striking
                    .wait_for(|struck| *struck >= due)
                    .await
                    .expect("the injector");
                client.send(n).await;
            }
        }
    }));
    let respawned = {
        let faulty = Faulty {
            cluster: &setup.cluster,
            proxy: &setup.proxy,
            rabbit: &mut setup.rabbit,
            postgres: &setup.postgres,
        };
        tokio::join!(clients, inject(faulty, &begun, &struck)).1
    };
    let sending = run.elapsed();
    println!(
        "{TRANSFERS} transfers sent through {} faults in {sending:?}",
        FAULTS.len()
    );

    let s = &setup.cluster;
    let database = sqlx::PgPool::connect(&setup.postgres.url())
        .await
        .expect("connecting to the private PostgreSQL");
    let all = settled(&database).await;
    let known: BTreeMap<String, usize> =
        tally.ids.lock().expect("the ids").iter().cloned().collect();
    let mut by_status = BTreeMap::<String, usize>::new();
    for (id, status, _, _) in &all {
        *by_status.entry(status.clone()).or_default() += 1;
        match status.as_str() {
            "Published" | "Failed" => {}
            // Only a transfer whose initialize answer the client never got may wait for its
            // upload (and its time to live).
            "Initialized" => assert!(
                !known.contains_key(id),
                "transfer {id} of a client stayed Initialized"
            ),
            other => panic!("transfer {id} ended {other}"),
        }
    }
    let never_uploaded = by_status.get("Initialized").copied().unwrap_or_default();
    assert!(
        never_uploaded <= tally.lost_initializes.load(Ordering::Relaxed),
        "{never_uploaded} unknown Initialized transfers, more than the failed initialize calls"
    );

    // Every Published transfer downloads byte for byte; every transfer number got Published.
    let published: Vec<(String, usize)> = all
        .iter()
        .filter(|(_, status, _, _)| status == "Published")
        .map(|(id, _, reference, _)| {
            let n = reference
                .strip_prefix("faults-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("transfer {id} has reference {reference}"));
            (id.clone(), n)
        })
        .collect();
    let numbers: BTreeSet<usize> = published.iter().map(|(_, n)| *n).collect();
    assert_eq!(
        numbers.len(),
        TRANSFERS,
        "every transfer number is Published"
    );
    futures::stream::iter(&published)
        .for_each_concurrent(CLIENTS, |(id, n)| async move {
            let got = s
                .download(&s.recipient.read, id, None)
                .await
                .expect_status(200);
            assert!(
                got.bytes == content(*n),
                "transfer {id} ({n}) downloads other bytes"
            );
        })
        .await;

    // The event log: each transfer's events, each once.
    let wanted = expected_events(&all);
    let deadline = Instant::now() + ARRIVAL;
    let pulled = loop {
        let pulled = pull_all(s).await;
        let keys: BTreeSet<_> = pulled.iter().map(key).collect();
        let missing: Vec<_> = wanted.difference(&keys).collect();
        if missing.is_empty() {
            break pulled;
        }
        assert!(
            Instant::now() < deadline,
            "{} events never reached the log, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let mut logged = BTreeMap::<(String, String), BTreeSet<String>>::new();
    let mut log_ids = BTreeSet::new();
    for event in &pulled {
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        assert!(log_ids.insert(id.clone()), "event {id} twice in the log");
        logged.entry(key(event)).or_default().insert(id);
    }
    let twice: Vec<_> = logged.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "events logged under several ids: {twice:?}"
    );

    // The webhook: every logged event at least once, always under its one id.
    hook.wait_until("every logged event at the webhook", ARRIVAL, |hook| {
        let delivered: BTreeSet<String> = hook
            .delivered()
            .iter()
            .map(|post| post.id().to_owned())
            .collect();
        log_ids.iter().all(|id| delivered.contains(id))
    })
    .await;
    let posts = hook.delivered();
    let strangers: Vec<_> = posts
        .iter()
        .filter(|post| !log_ids.contains(post.id()))
        .map(|post| post.body.clone())
        .collect();
    assert!(
        strangers.is_empty(),
        "delivered events not in the log: {strangers:?}"
    );
    let redelivered = posts.len() - log_ids.len();

    // No orphan bytes: the bucket holds the Published transfers' objects and nothing else (the
    // lifecycle deletes a Failed transfer's bytes), and no open multipart upload holds a part
    // (the lease job aborts the upload of a replica killed mid-upload, or of one that failed
    // with S3 away). An open upload without parts holds no bytes: S3 began it, but its id never
    // reached a lease (the answer was cut by the outage, or the replica was killed before the
    // lease committed). Only a listing finds those; the bucket's AbortIncompleteMultipartUpload
    // rule removes them (README, Production). They are counted.
    let expected_keys: BTreeSet<String> = all
        .iter()
        .filter(|(_, status, _, _)| status == "Published")
        .filter_map(|(_, _, _, key)| key.as_ref().map(|key| format!("files/{key}")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let empty_uploads = loop {
        let keys: BTreeSet<String> = setup.s3.keys().await.into_iter().collect();
        let open = setup.s3.unfinished_uploads_with_parts().await;
        let orphans: Vec<&String> = open
            .iter()
            .filter(|(_, parts)| *parts > 0)
            .map(|(key, _)| key)
            .collect();
        if keys == expected_keys && orphans.is_empty() {
            break open.len();
        }
        if Instant::now() >= deadline {
            let mut histories = String::new();
            for key in &orphans {
                histories.push_str(&history(&database, key.trim_start_matches("files/")).await);
            }
            panic!(
                "orphan bytes: objects without a Published transfer {:?}, Published without \
                 bytes {:?}, open multipart uploads holding parts {orphans:?}; their \
                 transfers' histories:\n{histories}",
                keys.difference(&expected_keys).collect::<Vec<_>>(),
                expected_keys.difference(&keys).collect::<Vec<_>>(),
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };

    let failures: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT detail, count(*) FROM filetransfer.transfer_history WHERE status = 'Failed' \
         GROUP BY detail ORDER BY 2 DESC",
    )
    .fetch_all(&database)
    .await
    .expect("reading why transfers failed");
    println!("why transfers failed (detail, count): {failures:?}");
    println!(
        "transfers: {TRANSFERS} sent, {} created, {} published, {} failed, {never_uploaded} \
         never uploaded (initialize answer lost); client retries {}, transfers abandoned by \
         clients {}; events: {} logged, {} delivered to the webhook ({redelivered} redeliveries \
         under the same id), 0 duplicates by id; open multipart uploads without parts (no \
         bytes, ids never leased): {empty_uploads}; sending took {sending:?}, whole test {:?}",
        all.len(),
        published.len(),
        by_status.get("Failed").copied().unwrap_or_default(),
        tally.retries.load(Ordering::Relaxed),
        tally.abandoned.load(Ordering::Relaxed),
        log_ids.len(),
        posts.len(),
        started.elapsed()
    );
    drop(respawned);
}

/// Transfer `id`'s statuses and their details, one line each, for a failure's message.
async fn history(database: &sqlx::PgPool, id: &str) -> String {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT status, detail FROM filetransfer.transfer_history WHERE transfer_id = $1 \
         ORDER BY seq",
    )
    .bind(id)
    .fetch_all(database)
    .await
    .unwrap_or_default();
    format!("{id}: {rows:?}\n")
}
