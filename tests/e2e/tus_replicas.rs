//! Resumable uploads (tus 1.0) across file-transfer replicas, as production runs them: every
//! service its own process, two file-transfer replicas behind the gateway, PostgreSQL, RabbitMQ
//! and S3 (moto) with 5 MiB parts (S3's smallest).
//!
//! One cluster, two stories in turn: an upload in PATCHes of a part and an odd tail, which the
//! gateway spreads over both replicas, is published with its MD5 and bytes and leaves exactly one
//! object; then a PATCH whose replica is killed (SIGKILL) mid-body is resumed through the other
//! replica from the offset HEAD reports, and published just as right, no multipart upload left.
//!
//! Needs PostgreSQL, RabbitMQ and moto: skips without them, and fails in CI.

use std::time::{Duration, Instant};

use broker_tests::cluster::served_calls;
use broker_tests::s3::S3Server;
use broker_tests::scenario::{md5_hex, pattern};
use broker_tests::tus::{TusClient, upload_offset, upload_path};
use broker_tests::{AccessList, Cluster, Replicas, Scenario};
use futures::SinkExt;
use serde_json::json;

/// The part size of uploads to S3: its minimum, so a few MiB make several parts.
const PART: usize = 5 << 20;
/// The file PATCH's gRPC call, as the replicas log it.
const TUS_PATCH: &str = "/broker.filetransfer.v1.FileTransferService/TusPatch";
/// Longer than the balanced channel's probe interval (1 s): by then a dead replica is out.
const NOTICED: Duration = Duration::from_millis(2500);
/// How long a process may take to go, a call to show in a log, or S3 to be tidied.
const SETTLE: Duration = Duration::from_secs(60);
/// Bytes per piece of a hand-fed body.
const PIECE: usize = 64 << 10;

/// Token, access, two file-transfer replicas storing 5 MiB parts in S3, one event service and
/// the gateway; `None` (after printing why) when a server is missing outside CI.
async fn setup() -> Option<Cluster> {
    let replicas = Replicas {
        filetransfer: 2,
        events: 1,
    };
    let settings = vec![
        ("BROKER_UPLOAD_PART_BYTES", PART.to_string()),
        // A killed replica's hold on an upload lapses soon.
        ("BROKER_UPLOAD_LEASE_SECONDS", "3".to_owned()),
    ];
    Cluster::start_with(replicas, AccessList::Disabled, settings).await
}

/// Initializes a transfer whose checksum is the MD5 of `bytes`.
async fn initialized_for(s: &Scenario, bytes: &[u8]) -> String {
    let mut body = s.initialize_body();
    body["checksum"] = json!(md5_hex(bytes));
    s.initialized(body).await
}

/// Waits until `id` is Published with `bytes`' MD5 and size, and downloads the very bytes.
async fn assert_published_as(s: &Scenario, id: &str, bytes: &[u8]) {
    let overview = s.wait_for_status(&s.sender.write, id, "Published").await;
    assert_eq!(overview["checksum"], md5_hex(bytes), "{overview}");
    assert_eq!(overview["fileTransferSize"], bytes.len(), "{overview}");
    let downloaded = s
        .download(&s.recipient.read, id, None)
        .await
        .expect_status(200);
    assert!(
        downloaded.bytes == bytes,
        "transfer {id}: the download differs"
    );
    let (first, last) = (PART - 100, PART + 100);
    let range = s
        .download(
            &s.recipient.read,
            id,
            Some(&format!("bytes={first}-{last}")),
        )
        .await
        .expect_status(206);
    assert!(
        range.bytes == bytes[first..=last],
        "transfer {id}: a range across a part boundary differs"
    );
}

/// Waits until the bucket holds only the published transfers' objects and no multipart upload
/// is left unfinished.
async fn assert_tidy(s3: &S3Server, published: &[&str]) {
    let mut expected: Vec<String> = published.iter().map(|id| format!("files/{id}")).collect();
    expected.sort();
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut keys = s3.keys().await;
        keys.sort();
        let unfinished = s3.unfinished_uploads_with_parts().await;
        if keys == expected && unfinished.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {SETTLE:?} the bucket holds {keys:?} (expected {expected:?}) and unfinished \
             multipart uploads {unfinished:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// TusPatch calls each file-transfer replica served so far.
fn patches_served(cluster: &Cluster) -> Vec<usize> {
    cluster
        .filetransfer
        .iter()
        .map(|replica| served_calls(replica, TUS_PATCH))
        .collect()
}

/// Six parts and an odd tail, created with its first bytes and PATCHed in pieces of a part
/// and an odd tail: published with its MD5, the very bytes downloaded, one object in S3.
async fn odd_chunks_spread_over_both_replicas_publish(setup: &Cluster) -> String {
    let s = setup;
    let tus = TusClient::new(s, &s.sender.write);
    let bytes = pattern(6 * PART + 777);
    let id = initialized_for(s, &bytes).await;
    let chunk = PART + 4097;
    let started = Instant::now();
    let created = tus
        .create_with_upload(&id, bytes.len() as u64, bytes[..chunk].to_vec())
        .await
        .expect_status(201);
    assert_eq!(upload_offset(&created), chunk as u64);
    let patches = tus.patch_rest(&upload_path(&id), &bytes, chunk).await;
    assert_published_as(s, &id, &bytes).await;
    println!(
        "{} MiB in {} PATCHes after a creating POST published in {:?}; TusPatch calls per \
         replica: {:?}",
        bytes.len() >> 20,
        patches,
        started.elapsed(),
        patches_served(s)
    );
    id
}

/// A PATCH of the rest after two parts and an odd tail is fed four parts, then its replica is
/// killed with SIGKILL; HEAD through the survivor reports at least what was acknowledged and no
/// more than was sent, and the PATCHes from there publish the file right.
async fn a_patch_cut_by_a_killed_replica_resumes_on_the_other(setup: &mut Cluster) -> String {
    let bytes = pattern(7 * PART + 1013);
    let (id, path, tus) = {
        let s = &*setup;
        let id = initialized_for(s, &bytes).await;
        let tus = TusClient::new(s, &s.sender.write);
        tus.create(&id, bytes.len() as u64).await.expect_status(201);
        (id.clone(), upload_path(&id), tus)
    };
    let acknowledged = 2 * PART + 4099;
    tus.patch(&path, 0, bytes[..acknowledged].to_vec())
        .await
        .expect_status(204);

    let before = patches_served(setup);
    let (mut feed, body) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let request = tus
        .patch_request(&path, acknowledged as u64, reqwest::Body::wrap_stream(body))
        .header("content-length", bytes.len() - acknowledged);
    // Sent by hand: the gateway may answer the cut call with a 5xx, which the kit takes for a bug.
    let patch = tokio::spawn(request.send());
    let fed = 4 * PART;
    for piece in bytes[acknowledged..acknowledged + fed].chunks(PIECE) {
        feed.send(Ok(piece.to_vec()))
            .await
            .expect("feeding the PATCH");
    }
    // Let the fed bytes reach the replica and its parts reach S3.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let deadline = Instant::now() + SETTLE;
    let serving = loop {
        let now = patches_served(setup);
        if let Some(replica) = (0..now.len()).find(|&n| now[n] > before[n]) {
            break replica;
        }
        assert!(
            Instant::now() < deadline,
            "no replica logged the PATCH: {now:?}\n{}",
            setup.outputs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let killed = setup.filetransfer.remove(serving);
    let pid = killed.pid().expect("a replica runs as a process");
    // Dropping a broker sends SIGKILL: no shutdown, whatever it held is gone.
    drop(killed);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "replica {pid} outlived SIGKILL");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(feed);
    let answered = tokio::time::timeout(SETTLE, patch)
        .await
        .expect("the cut PATCH is answered or fails")
        .expect("the PATCH task");
    println!(
        "replica {serving} killed with {} MiB of the PATCH fed; the client got {:?}",
        fed >> 20,
        answered.as_ref().map(reqwest::Response::status)
    );
    assert!(
        !matches!(&answered, Ok(response) if response.status() == 204),
        "a PATCH whose replica died mid-body was answered 204"
    );
    tokio::time::sleep(NOTICED).await;

    let s = &*setup;
    let kept = tus.offset(&path).await;
    assert!(
        kept >= acknowledged as u64 && kept <= (acknowledged + fed) as u64,
        "HEAD after the kill reports {kept}; {acknowledged} were acknowledged and {} sent",
        acknowledged + fed
    );
    println!(
        "the survivor reports offset {kept}: {} of the cut PATCH's {} bytes kept",
        kept - acknowledged as u64,
        fed
    );
    let survivor_before = served_calls(&s.filetransfer[0], TUS_PATCH);
    tus.patch_rest(&path, &bytes, 2 * PART + 4099).await;
    assert!(
        served_calls(&s.filetransfer[0], TUS_PATCH) > survivor_before,
        "the surviving replica took the rest"
    );
    assert_published_as(s, &id, &bytes).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_uploads_survive_and_span_file_transfer_replicas_on_s3() {
    let started = Instant::now();
    let Some(mut setup) = setup().await else {
        return;
    };
    let spread = odd_chunks_spread_over_both_replicas_publish(&setup).await;
    let resumed = a_patch_cut_by_a_killed_replica_resumes_on_the_other(&mut setup).await;
    assert_tidy(
        setup.s3().expect("the cluster's S3 server"),
        &[spread.as_str(), resumed.as_str()],
    )
    .await;
    println!("whole test {:?}", started.elapsed());
}
