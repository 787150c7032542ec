//! The file-transfer service over gRPC, as the gateway uses it: a real access registry and the
//! real service on loopback, SQLite (and PostgreSQL when `BROKER_TEST_DATABASE_URL` is set),
//! real bytes on local disk.

mod support;

use std::time::Duration;

use broker_proto::filetransfer as pb;
use bytes::Bytes;
use futures::StreamExt;
use support::*;

/// The resource's `maxFileTransferSize` in these tests.
const LIMIT: u64 = 8 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    transfers(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    if let Some(db) = broker_tests::database::postgres().await {
        transfers(Some(db.url())).await;
    }
}

async fn transfers(database_url: Option<&str>) {
    let mut env = Env::start(database_url, Some(LIMIT)).await;
    initialize_enforces_altinns_rules(&mut env).await;
    let published = upload_then_download_whole_and_by_ranges(&mut env).await;
    strangers_are_refused_and_unknown_ids_not_found(&mut env, &published).await;
    a_checksum_mismatch_fails_and_leaves_no_bytes(&mut env).await;
    of_two_concurrent_uploads_exactly_one_wins(&mut env).await;
    a_client_that_drops_mid_upload_leaves_a_failed_transfer_and_no_bytes(&mut env).await;
    uploads_over_the_limit_are_refused(&mut env).await;
    confirming_the_download_completes_the_transfer(&mut env, &published).await;
}

async fn initialize_enforces_altinns_rules(env: &mut Env) {
    let valid = broker_proto::filetransfer::InitializeRequest {
        resource_id: Some(RESOURCE.into()),
        file_name: Some("report.bin".into()),
        senders_file_transfer_reference: Some("ref".into()),
        sender: Some(format!("urn:altinn:organization:identifier-no:{SENDER}")),
        recipients: vec![format!("urn:altinn:organization:identifier-no:{RECIPIENT}")],
        ..Default::default()
    };
    let cases = [
        // Another organisation than the caller's as sender.
        (
            broker_proto::filetransfer::InitializeRequest {
                sender: Some(format!("0192:{RECIPIENT}")),
                ..valid.clone()
            },
            (401, Some(6)),
        ),
        // A resource without broker settings: Altinn's decision point says no to it.
        (
            broker_proto::filetransfer::InitializeRequest {
                resource_id: Some("unconfigured-resource".into()),
                ..valid.clone()
            },
            (401, Some(6)),
        ),
        // Disabling the virus scan without approval.
        (
            broker_proto::filetransfer::InitializeRequest {
                disable_virus_scan: true,
                ..valid.clone()
            },
            (400, Some(20)),
        ),
        // Malformed fields.
        (
            broker_proto::filetransfer::InitializeRequest {
                recipients: vec![],
                checksum: Some("NOT-MD5".into()),
                ..valid.clone()
            },
            (400, None),
        ),
    ];
    for (request, expected) in cases {
        let request = env.as_org(SENDER, request);
        let answer = env.files.initialize(request).await;
        assert_eq!(code_of(answer), expected);
    }
    let request = env.as_org(SENDER, valid);
    let id = env
        .files
        .initialize(request)
        .await
        .unwrap()
        .into_inner()
        .file_transfer_id;
    let overview = env.overview(&id).await;
    assert_eq!(overview.file_transfer_status, "Initialized");
    assert_eq!(
        overview.sender,
        format!("urn:altinn:organization:identifier-no:{SENDER}"),
        "the sender is echoed as it was sent"
    );
    assert_eq!(overview.published, None);
    assert!(overview.use_virus_scan);
}

async fn upload_then_download_whole_and_by_ranges(env: &mut Env) -> String {
    let file = content(3 * CHUNK + 12_345);
    let id = env.initialize(Some(&md5_hex(&file))).await;
    let uploaded = env
        .upload(&id, Some(file.len() as u64), chunked(&file))
        .await
        .unwrap();
    assert_eq!(uploaded, id);
    let overview = env.wait_for_status(&id, "Published").await;
    assert_eq!(overview.file_transfer_size, file.len() as u64);
    assert_eq!(overview.checksum, Some(md5_hex(&file)));
    assert!(overview.published.is_some());

    // The sender cannot download; the recipient gets the same bytes back.
    assert_eq!(code_of(env.download(SENDER, &id, "").await), (401, Some(6)));
    let (header, bytes) = env.download(RECIPIENT, &id, "").await.unwrap();
    assert!(!header.partial);
    assert_eq!(
        (header.total_size, header.first_byte, header.last_byte),
        (file.len() as u64, 0, file.len() as u64 - 1)
    );
    assert!(bytes == file, "the whole download differs from the upload");

    let size = file.len();
    let last = size - 1;
    for (range, first, end) in [
        ("bytes=0-0", 0, 0),
        (&format!("bytes={last}-{last}"), last, last),
        ("bytes=-10", size - 10, last),
        ("bytes=-99999999", 0, last),
        ("bytes=1000-", 1000, last),
        ("bytes=524000-600000", 524_000, 600_000),
        ("bytes=5-999999999", 5, last),
    ] {
        let (header, bytes) = env.download(RECIPIENT, &id, range).await.unwrap();
        assert!(header.partial, "{range}");
        assert_eq!(
            (header.first_byte, header.last_byte),
            (first as u64, end as u64),
            "{range}"
        );
        assert!(bytes == file[first..=end], "{range}: wrong bytes");
    }
    for whole in ["bytes=0-1,5-6", "bytes=x-y", "bytes=9-3"] {
        let (header, bytes) = env.download(RECIPIENT, &id, whole).await.unwrap();
        assert!(!header.partial, "{whole}");
        assert_eq!(bytes.len(), size, "{whole}");
    }
    assert_eq!(
        code_of(
            env.download(RECIPIENT, &id, &format!("bytes={size}-"))
                .await
        ),
        (416, Some(29))
    );

    // Every whole download is recorded, as Altinn records them; the ranged ones came within
    // five minutes of one and were not.
    let details = env.details(RECIPIENT, &id).await.unwrap();
    let statuses: Vec<_> = details
        .file_transfer_status_history
        .iter()
        .map(|entry| entry.file_transfer_status.as_str())
        .collect();
    assert_eq!(
        statuses,
        [
            "Initialized",
            "UploadStarted",
            "UploadProcessing",
            "Published"
        ]
    );
    let recipient: Vec<_> = details
        .recipient_file_transfer_status_history
        .iter()
        .map(|entry| entry.recipient_file_transfer_status_code.as_str())
        .collect();
    assert_eq!(
        recipient,
        [
            "Initialized",
            "DownloadStarted",
            "DownloadStarted",
            "DownloadStarted",
            "DownloadStarted"
        ]
    );
    id
}

/// A party to nothing gets Altinn's 401 with code 6; an id that names nothing, 404 with code 1.
async fn strangers_are_refused_and_unknown_ids_not_found(env: &mut Env, id: &str) {
    for (org, transfer, expected) in [
        (STRANGER, id.to_owned(), (401, Some(6))),
        (SENDER, uuid::Uuid::now_v7().to_string(), (404, Some(1))),
    ] {
        let answer = env.overview_as(org, &transfer).await;
        assert_eq!(code_of(answer), expected, "{org}");
        assert_eq!(code_of(env.details(org, &transfer).await), expected);
        assert_eq!(code_of(env.download(org, &transfer, "").await), expected);
    }
}

fn no_bytes_of(env: &Env, id: &str) {
    let left: Vec<_> = env
        .stored_files()
        .into_iter()
        .filter(|path| path.to_string_lossy().contains(id))
        .collect();
    assert!(left.is_empty(), "bytes of {id} left behind: {left:?}");
}

async fn a_checksum_mismatch_fails_and_leaves_no_bytes(env: &mut Env) {
    let file = content(CHUNK + 7);
    let id = env.initialize(Some(&md5_hex(b"something else"))).await;
    let answer = env.upload(&id, None, chunked(&file)).await;
    assert_eq!(code_of(answer), (400, Some(9)));
    env.wait_for_status(&id, "Failed").await;
    no_bytes_of(env, &id);
    // A failed transfer cannot be uploaded again.
    assert_eq!(
        code_of(env.upload(&id, None, chunked(&file)).await),
        (409, Some(4))
    );
}

async fn of_two_concurrent_uploads_exactly_one_wins(env: &mut Env) {
    let file = content(2 * CHUNK);
    let id = env.initialize(None).await;
    let (mut one, mut other) = (env.clone_clients(), env.clone_clients());
    let first = one.upload(&id, None, chunked(&file));
    let second = other.upload(&id, None, chunked(&file));
    let (first, second) = tokio::join!(first, second);
    let (won, lost) = match (first, second) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("expected exactly one winner, got {other:?}"),
    };
    assert_eq!(won, id);
    assert_eq!(code_of::<()>(Err(lost)), (409, Some(4)));
    env.wait_for_status(&id, "Published").await;
    let (_, bytes) = env.download(RECIPIENT, &id, "").await.unwrap();
    assert!(bytes == file);
}

async fn a_client_that_drops_mid_upload_leaves_a_failed_transfer_and_no_bytes(env: &mut Env) {
    let id = env.initialize(None).await;
    // Two chunks, then the client stalls until it is dropped.
    let stalled = repeated(2).chain(futures::stream::pending());
    let (mut other, connection) = env.through_cuttable_connection().await;
    let upload_id = id.clone();
    let upload = tokio::spawn(async move { other.upload(&upload_id, None, stalled).await });
    env.wait_for_status(&id, "UploadStarted").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    connection.abort();
    assert!(upload.await.unwrap().is_err());
    let overview = env.wait_for_status(&id, "Failed").await;
    assert!(overview.published.is_none());
    no_bytes_of(env, &id);
    assert_eq!(
        code_of(env.download(RECIPIENT, &id, "").await),
        (403, Some(7))
    );
}

async fn uploads_over_the_limit_are_refused(env: &mut Env) {
    // Declared too large: refused before any byte is read, and the transfer stays usable.
    let id = env.initialize(None).await;
    let answer = env.upload(&id, Some(LIMIT + 1), repeated(1)).await;
    assert_eq!(code_of(answer), (400, Some(16)));
    assert_eq!(env.overview(&id).await.file_transfer_status, "Initialized");

    // Too large as it arrives: refused at the first chunk past the limit.
    let chunks = (LIMIT as usize) / CHUNK + 1;
    let answer = env.upload(&id, None, repeated(chunks)).await;
    assert_eq!(code_of(answer), (400, Some(16)));
    env.wait_for_status(&id, "Failed").await;
    no_bytes_of(env, &id);

    // Exactly at the limit is fine.
    let id = env.initialize(None).await;
    let chunks = (LIMIT as usize) / CHUNK;
    env.upload(&id, Some(LIMIT), repeated(chunks))
        .await
        .unwrap();
    env.wait_for_status(&id, "Published").await;
}

async fn confirming_the_download_completes_the_transfer(env: &mut Env, id: &str) {
    assert_eq!(code_of(env.confirm(SENDER, id).await), (401, Some(6)));
    env.confirm(RECIPIENT, id).await.unwrap();
    env.wait_for_status(id, "AllConfirmedDownloaded").await;
    // Once every recipient confirmed, the transfer is no longer Published: refused.
    assert_eq!(code_of(env.confirm(RECIPIENT, id).await), (400, Some(10)));

    // Confirming before downloading is refused.
    let fresh = env.initialize(None).await;
    env.upload(
        &fresh,
        None,
        futures::stream::iter([Bytes::from_static(b"x")]),
    )
    .await
    .unwrap();
    env.wait_for_status(&fresh, "Published").await;
    assert_eq!(
        code_of(env.confirm(RECIPIENT, &fresh).await),
        (400, Some(19))
    );
}

/// The spooled upload's contract, with the service's ceiling lowered so a spool can pass it:
/// the spool becomes the transfer only with its `initialize` after `end`, and every other
/// ending leaves nothing in storage and no transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_becomes_a_transfer_only_with_its_initialize_and_otherwise_leaves_nothing() {
    use broker_proto::filetransfer::upload_message::Message;
    let ceiling = 4 * 1024 * 1024;
    let config = broker_filetransfer::FileTransferConfig {
        max_file_transfer_size: ceiling,
        max_virus_scan_size: ceiling,
        ..broker_filetransfer::FileTransferConfig::default()
    };
    let mut env = Env::start_with(None, None, config).await;
    let file = content(2 * CHUNK + 3);
    let request = env.initialize_request();
    let initialize = || Message::Initialize(Box::new(request.clone()));

    let id = env
        .upload_spooled(chunked(&file), vec![initialize()])
        .await
        .unwrap();
    env.wait_for_status(&id, "Published").await;
    let (_, bytes) = env.download(RECIPIENT, &id, "").await.unwrap();
    assert!(bytes == file, "the spooled file came back different");
    assert_eq!(env.stored_files().len(), 1, "{:?}", env.stored_files());

    let failures = [
        // Past the largest size any resource may allow: refused as it arrives.
        (
            repeated(ceiling as usize / CHUNK + 1),
            vec![initialize()],
            (400, Some(16)),
        ),
        // The stream ends after the file without its metadata.
        (repeated(1), vec![], (400, None)),
        // Something else than the metadata after the file.
        (
            repeated(1),
            vec![Message::Chunk(Bytes::from_static(b"x"))],
            (400, None),
        ),
    ];
    for (chunks, after, expected) in failures {
        let answer = env.upload_spooled(chunks, after).await;
        assert_eq!(code_of(answer), expected);
        assert_eq!(env.stored_files().len(), 1, "{:?}", env.stored_files());
    }
    // A start that names a transfer or carries the metadata is no spooled upload.
    let start = pb::UploadStart {
        spool: true,
        initialize: Some(request.clone()),
        ..pb::UploadStart::default()
    };
    let messages = futures::stream::iter([pb::UploadMessage {
        message: Some(Message::Start(Box::new(start))),
    }]);
    let request = env.as_org(SENDER, messages);
    let answer = env.files.upload(request).await;
    assert_eq!(code_of(answer).0, 400);
}
