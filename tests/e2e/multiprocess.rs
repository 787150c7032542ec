//! The broker as production runs it, end to end: the token service, the access registry, two
//! file-transfer replicas, two event-service replicas and the gateway, each its own `brokerd`
//! process, on one PostgreSQL database, one RabbitMQ exchange and one S3 bucket (moto), the
//! gateway balancing its calls between the replicas.
//!
//! Transfers go the whole way over HTTP: the service owner's resource and access list, clients
//! and JWT-bearer tokens, a recipient's and the sender's webhooks, initialize, a streamed and
//! checksummed upload, the published CloudEvent, search, whole and ranged downloads, confirm,
//! AllConfirmedDownloaded. Each replica of file transfer and of events is shown to have done
//! part of the work, from what the process itself did (the gRPC calls it logged serving, the
//! webhook POSTs its sockets carried), and every party gets each of its events: none lost, and
//! a redelivery only ever with the same id.
//!
//! Needs PostgreSQL, RabbitMQ and moto: skips without them, and fails in CI.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use broker_tests::cluster::{
    EVENTS, FILETRANSFER, FILETRANSFER_DOWNLOAD, FILETRANSFER_UPLOAD, served_calls,
};
use broker_tests::events::types::{ALL_CONFIRMED, CONFIRMED, INITIALIZED, PROCESSING, PUBLISHED};
use broker_tests::events::{resource_urn, subscription};
use broker_tests::scenario::{RECIPIENT, RESOURCE, SENDER, md5_hex, pattern, urn};
use broker_tests::webhook::Received;
use broker_tests::{AccessList, Cluster, Replicas, Webhook};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Transfers sent through the cluster.
const TRANSFERS: usize = 20;
/// Transfers under way at once.
const CONCURRENCY: usize = 4;
/// The smallest transfer; each is a little larger than the one before.
const SIZE: usize = 200 * 1024;
/// The upload's chunks, so the body is streamed rather than sent as one buffer.
const CHUNK: usize = 64 * 1024;
/// How long an event may take to arrive.
const ARRIVAL: Duration = Duration::from_secs(60);
/// How long to listen for surplus deliveries once everything arrived.
const QUIET: Duration = Duration::from_millis(1500);

/// What the recipient hears of each transfer.
const RECIPIENT_EVENTS: [&str; 2] = [PUBLISHED, CONFIRMED];
/// What the sender hears of each transfer.
const SENDER_EVENTS: [&str; 5] = [INITIALIZED, PROCESSING, PUBLISHED, CONFIRMED, ALL_CONFIRMED];

/// One cluster at a time: seven processes each are plenty for a CI runner.
static TURN: Mutex<()> = Mutex::const_new(());

/// Two replicas of each scaled service; the sender and the recipient on the resource's
/// access list.
async fn cluster() -> Option<Cluster> {
    let replicas = Replicas {
        filetransfer: 2,
        events: 2,
    };
    let members = AccessList::Members(vec![SENDER.to_owned(), RECIPIENT.to_owned()]);
    Cluster::start(replicas, members).await
}

/// The recipient's and the sender's webhooks, subscribed and validated, naming the
/// event-service replica behind each POST.
async fn subscribed_webhooks(cluster: &Cluster) -> (Webhook, Webhook) {
    let (recipient, sender) = tokio::join!(Webhook::start(), Webhook::start());
    for hook in [&recipient, &sender] {
        hook.identify_deliverers(&cluster.events_pids());
    }
    cluster
        .subscribed(
            &cluster.recipient.events,
            subscription(&recipient.url(), RECIPIENT),
        )
        .await;
    cluster
        .subscribed(&cluster.sender.events, subscription(&sender.url(), SENDER))
        .await;
    (recipient, sender)
}

/// Transfer `n`'s bytes: its own, so a mix-up between transfers shows.
fn content(n: usize) -> Vec<u8> {
    let mut bytes = format!("transfer {n}\n").into_bytes();
    bytes.extend(pattern(SIZE + n * 1000));
    bytes
}

/// `bytes` as a streamed request body of [`CHUNK`]-sized pieces.
fn streamed(bytes: &[u8]) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes
        .chunks(CHUNK)
        .map(|chunk| Ok(chunk.to_vec()))
        .collect();
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

/// Transfer `n` from initialize to AllConfirmedDownloaded, with the recipient's published
/// event checked against it on the way; returns its id.
async fn send_and_receive(cluster: &Cluster, recipient_hook: &Webhook, n: usize) -> String {
    let (sender, recipient) = (&cluster.sender, &cluster.recipient);
    let bytes = content(n);
    let mut body = cluster.initialize_body();
    body["checksum"] = json!(md5_hex(&bytes));
    body["sendersFileTransferReference"] = json!(format!("multiprocess-{n}"));
    let id = cluster.initialized(body).await;

    let uploaded = cluster
        .upload(&sender.write, &id, streamed(&bytes))
        .await
        .ok_json();
    assert_eq!(uploaded["fileTransferId"], id.as_str());
    let overview = cluster
        .wait_for_status(&sender.write, &id, "Published")
        .await;
    assert_eq!(overview["fileTransferSize"], bytes.len(), "{overview}");
    assert_eq!(overview["checksum"], md5_hex(&bytes), "{overview}");
    assert_eq!(
        overview["sendersFileTransferReference"],
        format!("multiprocess-{n}")
    );

    let event = published_event(recipient_hook, &id).await;
    let event_body = &event.body;
    assert_eq!(
        event.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(event_body["specversion"], "1.0", "{event_body}");
    assert_eq!(
        event_body["resource"],
        resource_urn(RESOURCE),
        "{event_body}"
    );
    assert_eq!(event_body["subject"], urn(RECIPIENT), "{event_body}");
    assert_eq!(
        event_body["data"],
        json!({"Role": "Recipient"}),
        "{event_body}"
    );
    assert_eq!(
        event_body["source"],
        cluster.url("/broker/api/v1/filetransfer"),
        "{event_body}"
    );
    assert!(uuid::Uuid::parse_str(event.id()).is_ok(), "{event_body}");
    let time = event_body["time"].as_str().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(time).is_ok(),
        "{event_body}"
    );

    let query = format!("resourceId={RESOURCE}&status=Published&role=Recipient");
    let found = cluster.search(&recipient.read, &query).await.ok_json();
    assert!(
        found
            .as_array()
            .is_some_and(|ids| ids.iter().any(|found| found == id.as_str())),
        "the recipient finds {id}: {found}"
    );

    let whole = cluster
        .download(&recipient.read, &id, None)
        .await
        .expect_status(200);
    assert!(whole.bytes == bytes, "transfer {n}: the download differs");
    let (first, last) = (CHUNK - 100 + n, 2 * CHUNK + 100 + n);
    let part = cluster
        .download(&recipient.read, &id, Some(&format!("bytes={first}-{last}")))
        .await
        .expect_status(206);
    assert!(
        part.bytes == bytes[first..=last],
        "transfer {n}: the range differs"
    );
    let content_range = format!("bytes {first}-{last}/{}", bytes.len());
    assert_eq!(part.header("content-range"), Some(content_range.as_str()));

    cluster
        .confirm(&recipient.read, &id)
        .await
        .expect_status(204);
    let overview = cluster
        .wait_for_status(&sender.write, &id, "AllConfirmedDownloaded")
        .await;
    let recipients = &overview["recipients"];
    assert!(
        recipients[0]["recipient"]
            .as_str()
            .is_some_and(|who| who.ends_with(RECIPIENT)),
        "{overview}"
    );
    id
}

/// Waits for the published CloudEvent of transfer `id` at `hook` and returns it.
async fn published_event(hook: &Webhook, id: &str) -> Received {
    let is_it =
        |post: &Received| post.event_type() == PUBLISHED && post.body["resourceinstance"] == id;
    hook.wait_until(&format!("the published event of {id}"), ARRIVAL, |hook| {
        hook.delivered().iter().any(&is_it)
    })
    .await;
    hook.delivered()
        .into_iter()
        .find(|post| is_it(post))
        .expect("the event just seen")
}

/// Waits until `hook` got each of `types` for every transfer in `ids`, listens a moment
/// longer, and asserts nothing else came and every event arrived under one id (a redelivery
/// carries its first delivery's id). Returns the distinct event ids.
async fn assert_each_event_once(
    who: &str,
    hook: &Webhook,
    ids: &[String],
    types: &[&str],
) -> BTreeSet<String> {
    let wanted: BTreeSet<(String, String)> = ids
        .iter()
        .flat_map(|id| types.iter().map(|kind| (id.clone(), (*kind).to_owned())))
        .collect();
    let seen = |hook: &Webhook| -> BTreeMap<(String, String), BTreeSet<String>> {
        let mut seen = BTreeMap::<_, BTreeSet<String>>::new();
        for post in hook.delivered() {
            let transfer = post.body["resourceinstance"].as_str().unwrap_or_default();
            seen.entry((transfer.to_owned(), post.event_type().to_owned()))
                .or_default()
                .insert(post.id().to_owned());
        }
        seen
    };
    hook.wait_until(&format!("every event of the {who}"), ARRIVAL, |hook| {
        let seen = seen(hook);
        wanted.iter().all(|key| seen.contains_key(key))
    })
    .await;
    tokio::time::sleep(QUIET).await;
    let seen = seen(hook);
    let surplus: Vec<_> = seen.keys().filter(|key| !wanted.contains(*key)).collect();
    assert!(
        surplus.is_empty(),
        "the {who} got events it should not: {surplus:?}"
    );
    for (key, event_ids) in &seen {
        assert_eq!(
            event_ids.len(),
            1,
            "the {who} got {key:?} under several ids: {event_ids:?}"
        );
    }
    let deliveries = hook.delivered().len();
    println!(
        "{who}: {} events, {deliveries} deliveries ({} redelivered)",
        wanted.len(),
        deliveries - wanted.len()
    );
    seen.into_values().flatten().collect()
}

/// Pulls every event `token` may read of the resource, page by page.
async fn pull_all(cluster: &Cluster, token: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut query = format!("resource={}&size=25&after=0", resource_urn(RESOURCE));
    loop {
        let page = cluster.pull(token, &query).await.ok_json();
        let page = page.as_array().cloned().unwrap_or_default();
        let Some(last) = page.last() else {
            return events;
        };
        query = format!(
            "resource={}&size=25&after={}",
            resource_urn(RESOURCE),
            last["id"].as_str().unwrap_or_default()
        );
        events.extend(page);
    }
}

/// How many of `posts` each of `pids` delivered, in `pids` order; the last entry counts the
/// posts whose process could not be told.
fn delivered_per_process(posts: &[Received], pids: &[u32]) -> Vec<usize> {
    let mut counts = vec![0; pids.len() + 1];
    for post in posts {
        let slot = post
            .delivered_by
            .and_then(|pid| pids.iter().position(|p| *p == pid))
            .unwrap_or(pids.len());
        counts[slot] += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_go_end_to_end_through_separate_processes_and_both_replicas_work() {
    let _turn = TURN.lock().await;
    let started = Instant::now();
    let Some(cluster) = cluster().await else {
        return;
    };
    let (recipient_hook, sender_hook) = subscribed_webhooks(&cluster).await;
    println!("cluster ready in {:?}", started.elapsed());

    let flow = Instant::now();
    let ids: Vec<String> = futures::stream::iter(0..TRANSFERS)
        .map(|n| send_and_receive(&cluster, &recipient_hook, n))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    println!("{TRANSFERS} transfers end to end in {:?}", flow.elapsed());

    // Nothing lost, nothing twice under different ids, for either party.
    assert_each_event_once("recipient", &recipient_hook, &ids, &RECIPIENT_EVENTS).await;
    let sent = assert_each_event_once("sender", &sender_hook, &ids, &SENDER_EVENTS).await;
    // The event log a puller reads holds the very events the webhook got.
    let pulled: BTreeSet<String> = pull_all(&cluster, &cluster.sender.events)
        .await
        .iter()
        .map(|event| event["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(pulled, sent, "the sender pulls what its webhook got");

    // Both file-transfer replicas served uploads and downloads: each call once, by one of them.
    let uploads: Vec<usize> = cluster
        .filetransfer
        .iter()
        .map(|replica| served_calls(replica, FILETRANSFER_UPLOAD))
        .collect();
    let downloads: Vec<usize> = cluster
        .filetransfer
        .iter()
        .map(|replica| served_calls(replica, FILETRANSFER_DOWNLOAD))
        .collect();
    let event_calls: Vec<usize> = cluster
        .events
        .iter()
        .map(|replica| served_calls(replica, EVENTS))
        .collect();
    let pids = cluster.events_pids();
    let deliveries = delivered_per_process(
        &[recipient_hook.delivered(), sender_hook.delivered()].concat(),
        &pids,
    );
    println!(
        "uploads served per file-transfer replica: {uploads:?}; downloads: {downloads:?}; \
         event-service calls per replica: {event_calls:?}; webhook deliveries per event \
         replica (last: unattributed): {deliveries:?}"
    );
    let outputs = || cluster.outputs();
    assert_eq!(
        uploads.iter().sum::<usize>(),
        TRANSFERS,
        "one Upload call per transfer\n{}",
        outputs()
    );
    assert!(
        uploads.iter().all(|served| *served > 0),
        "every file-transfer replica served uploads: {uploads:?}"
    );
    assert_eq!(downloads.iter().sum::<usize>(), 2 * TRANSFERS);
    assert!(
        downloads.iter().all(|served| *served > 0),
        "every file-transfer replica served downloads: {downloads:?}"
    );
    assert!(
        deliveries[..pids.len()].iter().all(|count| *count > 0),
        "every event replica delivered webhooks: {deliveries:?}"
    );
    assert!(
        event_calls.iter().sum::<usize>() > 0,
        "the gateway called events"
    );
    println!("whole test {:?}", started.elapsed());
}

/// Transfers before one file-transfer replica is killed, and after.
const BEFORE_KILL: usize = 4;
const AFTER_KILL: usize = 8;
/// Calls sent after the kill, once the balanced channel had time to notice it.
const PROBES: usize = 40;
/// Longer than the balanced channel's probe interval (1 s): by then the dead replica is out.
const NOTICED: Duration = Duration::from_millis(2500);

/// One file-transfer replica is killed with SIGKILL between transfers. The gateway's balanced
/// channel probes its replicas and takes the dead one out: a probe interval later every call is
/// served by the survivor and readiness holds, transfers go on without a single refused call,
/// and no event is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_complete_through_the_surviving_replica_when_one_is_killed() {
    let _turn = TURN.lock().await;
    let Some(mut cluster) = cluster().await else {
        return;
    };
    let (recipient_hook, sender_hook) = subscribed_webhooks(&cluster).await;
    let mut ids = Vec::new();
    for n in 0..BEFORE_KILL {
        ids.push(send_and_receive(&cluster, &recipient_hook, n).await);
    }

    // SIGKILL, with nothing in flight: no shutdown, the process is simply gone.
    let killed = cluster.filetransfer.remove(1);
    drop(killed);
    tokio::time::sleep(NOTICED).await;
    let survivor_before = served_calls(&cluster.filetransfer[0], FILETRANSFER);

    let mut answers = BTreeMap::<u16, usize>::new();
    let mut ready = BTreeMap::<u16, usize>::new();
    for _ in 0..PROBES {
        let response = cluster
            .request(
                reqwest::Method::GET,
                &format!("/broker/api/v1/filetransfer/{}", ids[0]),
            )
            .bearer_auth(&cluster.sender.write)
            .send()
            .await
            .expect("the gateway answers");
        *answers.entry(response.status().as_u16()).or_default() += 1;
        let probe = cluster
            .request(reqwest::Method::GET, "/health/ready")
            .send()
            .await
            .expect("the gateway answers");
        *ready.entry(probe.status().as_u16()).or_default() += 1;
    }
    let all_served = BTreeMap::from([(200, PROBES)]);
    assert_eq!(
        (&answers, &ready),
        (&all_served, &all_served),
        "overview calls and readiness probes after the kill\n{}",
        cluster.outputs()
    );

    for n in BEFORE_KILL..BEFORE_KILL + AFTER_KILL {
        ids.push(send_and_receive(&cluster, &recipient_hook, n).await);
    }
    let survivor = served_calls(&cluster.filetransfer[0], FILETRANSFER) - survivor_before;
    assert!(survivor > 0, "the surviving replica served the calls");

    // Whatever the killed replica had leased in its outbox comes back: nothing is lost.
    assert_each_event_once("recipient", &recipient_hook, &ids, &RECIPIENT_EVENTS).await;
    assert_each_event_once("sender", &sender_hook, &ids, &SENDER_EVENTS).await;
}
