//! Resumable uploads (tus 1.0) over raw HTTP against a real broker, embedded on SQLite and on
//! PostgreSQL with RabbitMQ: discovery (OPTIONS), creation with and without a first body, HEAD,
//! chunked PATCHes until Published with the right MD5 and bytes, two PATCHes racing at one
//! offset, every refusal with its plain-text answer, termination and a fresh start, an expired
//! token finishing its own upload (and nobody else's), strangers and recipients refused, a PATCH
//! cut off mid-body keeping what arrived, the size limits, and an abandoned upload expiring.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use broker_tests::api::claims_unverified;
use broker_tests::raw_http::gateway_addr;
use broker_tests::scenario::{
    MAX_SIZE, RECIPIENT, RESOURCE, SENDER, STRANGER, md5_hex, party, pattern,
};
use broker_tests::tus::{
    Algorithm, OFFSET_OCTET_STREAM, TEXT_PLAIN, TusClient, VERSION, assert_resumable, assert_text,
    checksum, number_header, upload_offset, upload_path,
};
use broker_tests::{AccessList, Database, READ, Scenario, WRITE, on_each_database};
use futures::SinkExt;
use reqwest::Method;
use serde_json::json;
use tokio::io::AsyncWriteExt;

/// The file most stories upload: a few chunks and an odd tail.
const SIZE: usize = (1 << 20) + 1234;
/// PATCH size: not a divisor of [`SIZE`], so the last PATCH is short.
const CHUNK: usize = (256 << 10) + 7;
/// What the service answers a caller who is not the transfer's sender.
const NOT_SENDER: &str = "You must use a bearer token that represents a system user with access \
                          to the resource in the Resource Rights Registry";
/// What the service answers for an unknown transfer or upload.
const NOT_FOUND: &str = "The requested file transfer was not found";
/// What the service answers for a transfer past its upload.
const PAST_UPLOAD: &str = "A file transfer has already been, or attempted to be, created. Create \
                           a new file transfer resource to try again.";
/// How long the broker may take to remove bytes or fail an expired upload.
const SETTLE: Duration = Duration::from_secs(30);

/// Initializes a transfer from the sender whose `checksum` is the MD5 of `bytes`.
async fn initialized_for(s: &Scenario, token: &str, bytes: &[u8]) -> String {
    let mut body = s.initialize_body();
    body["checksum"] = json!(md5_hex(bytes));
    let created = s.initialize(token, body).await.ok_json();
    created["fileTransferId"]
        .as_str()
        .unwrap_or_else(|| panic!("no fileTransferId in {created}"))
        .to_owned()
}

/// The transfer's `fileTransferStatus` now.
async fn status_of(s: &Scenario, id: &str) -> String {
    let overview = s.overview(&s.sender.write, id).await.ok_json();
    overview["fileTransferStatus"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until transfer `id` is Published, then checks its MD5, its size and the bytes the
/// recipient downloads against `bytes`.
async fn assert_published_as(s: &Scenario, id: &str, bytes: &[u8]) {
    assert_published_seen_by(s, &s.sender.write, &s.recipient.read, id, bytes).await;
}

/// [`assert_published_as`] with the sender's token `sender` and the recipient's `recipient`.
async fn assert_published_seen_by(
    s: &Scenario,
    sender: &str,
    recipient: &str,
    id: &str,
    bytes: &[u8],
) {
    let overview = s.wait_for_status(sender, id, "Published").await;
    assert_eq!(overview["checksum"], md5_hex(bytes), "{overview}");
    assert_eq!(overview["fileTransferSize"], bytes.len(), "{overview}");
    let downloaded = s.download(recipient, id, None).await.expect_status(200);
    assert!(
        downloaded.bytes == bytes,
        "transfer {id}: the downloaded bytes differ from the uploaded ones"
    );
}

/// `Upload-Expires` of `reply` as a time, asserting it is an HTTP-date (RFC 7231, as RFC 1123
/// writes it) in the future.
#[track_caller]
fn upload_expires(reply: &broker_tests::Reply) -> chrono::DateTime<chrono::Utc> {
    let text = reply.header("upload-expires").unwrap_or_else(|| {
        panic!(
            "{}: {} without Upload-Expires ({:?})",
            reply.request, reply.status, reply.headers
        )
    });
    assert!(
        text.ends_with(" GMT"),
        "{}: Upload-Expires {text}",
        reply.request
    );
    let expires = chrono::DateTime::parse_from_rfc2822(text)
        .unwrap_or_else(|error| panic!("{}: Upload-Expires {text}: {error}", reply.request))
        .to_utc();
    assert!(
        expires > chrono::Utc::now() - chrono::TimeDelta::seconds(1),
        "{}: Upload-Expires {text} is past",
        reply.request
    );
    expires
}

/// Waits until no file under the data directory names transfer `id`.
async fn assert_no_bytes_of(s: &Scenario, id: &str, why: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let left: Vec<_> = s
            .stored_files()
            .into_iter()
            .filter(|path| path.to_string_lossy().contains(id))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{why}: bytes of {id} left: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

on_each_database! {
    /// OPTIONS names the protocol and its limits; POST creates the upload (the transfer is then
    /// UploadStarted); HEAD tells the offset; PATCHes of odd sizes move it on until the last
    /// one publishes the file with its MD5, and the recipient downloads the very bytes. A PATCH
    /// at the end is answered as a finished one; a new POST is refused.
    async fn a_file_goes_up_in_patches_and_is_published(db: Database) {
        let s = Scenario::start(db).await;
        let tus = TusClient::new(&s, &s.sender.write);
        let bytes = pattern(SIZE);
        let id = initialized_for(&s, &s.sender.write, &bytes).await;
        let path = upload_path(&id);

        let options = tus.options(&path).await.expect_status(204);
        assert_resumable(&options);
        assert_eq!(options.header("tus-version"), Some(VERSION));
        let extensions: BTreeSet<&str> = options.header("tus-extension").unwrap_or_default().split(',').collect();
        let expected: BTreeSet<&str> = ["creation", "creation-with-upload", "termination", "checksum", "concatenation", "expiration"].into();
        assert_eq!(extensions, expected, "Tus-Extension");
        let algorithms: BTreeSet<&str> = options.header("tus-checksum-algorithm").unwrap_or_default().split(',').collect();
        assert_eq!(algorithms, BTreeSet::from(["md5", "sha1", "sha256"]), "Tus-Checksum-Algorithm");
        assert_eq!(number_header(&options, "tus-max-size"), MAX_SIZE);
        assert_eq!(status_of(&s, &id).await, "Initialized");

        let metadata = "filename cmVwb3J0LnBkZg==,filetype YXBwbGljYXRpb24vcGRm,empty";
        let created = tus
            .send(tus.request(Method::POST, &path).header("upload-length", bytes.len()).header("upload-metadata", metadata))
            .await
            .expect_status(201);
        assert_resumable(&created);
        assert_eq!(created.header("location"), Some(path.as_str()), "a relative Location");
        let expires = upload_expires(&created);
        assert_eq!(status_of(&s, &id).await, "UploadStarted");

        let head = tus.head(&path).await.expect_status(200);
        assert_resumable(&head);
        assert_eq!(upload_offset(&head), 0);
        assert_eq!(number_header(&head, "upload-length"), bytes.len() as u64);
        assert_eq!(head.header("cache-control"), Some("no-store"));
        assert_eq!(head.header("upload-metadata"), Some(metadata));
        assert!(head.body.is_empty());

        let mut offset = 0;
        for chunk in bytes.chunks(CHUNK) {
            let patched = tus.patch(&path, offset as u64, chunk.to_vec()).await.expect_status(204);
            assert_resumable(&patched);
            offset += chunk.len();
            assert_eq!(upload_offset(&patched), offset as u64);
            // A complete upload no longer expires, and its last answer says none.
            if offset < bytes.len() {
                assert!(upload_expires(&patched) >= expires, "the expiry slides forward");
                assert_eq!(tus.offset(&path).await, offset as u64, "HEAD after a PATCH");
                assert_eq!(status_of(&s, &id).await, "UploadStarted");
            }
        }
        // The last byte is durable and the transfer on its way before the last PATCH answers.
        let now = status_of(&s, &id).await;
        assert!(matches!(now.as_str(), "UploadProcessing" | "Published"), "after the last PATCH: {now}");
        assert_published_as(&s, &id, &bytes).await;

        let again = tus.patch(&path, bytes.len() as u64, Vec::new()).await.expect_status(204);
        assert_eq!(upload_offset(&again), bytes.len() as u64, "a PATCH at the end of a finished upload");
        assert_text(&tus.create(&id, 10).await, 409, PAST_UPLOAD);
    }
}

on_each_database! {
    /// creation-with-upload: a POST carrying the whole file publishes it; a POST carrying the
    /// first half answers its offset and the PATCH of the rest publishes.
    async fn a_creating_post_may_carry_the_first_bytes(db: Database) {
        let s = Scenario::start(db).await;
        let tus = TusClient::new(&s, &s.sender.write);
        let bytes = pattern(SIZE);

        let whole = initialized_for(&s, &s.sender.write, &bytes).await;
        let created = tus.create_with_upload(&whole, bytes.len() as u64, bytes.clone()).await.expect_status(201);
        assert_resumable(&created);
        assert_eq!(created.header("location"), Some(upload_path(&whole).as_str()));
        assert_eq!(upload_offset(&created), bytes.len() as u64);
        assert_published_as(&s, &whole, &bytes).await;

        let half = initialized_for(&s, &s.sender.write, &bytes).await;
        let created = tus.create_with_upload(&half, bytes.len() as u64, bytes[..SIZE / 2].to_vec()).await.expect_status(201);
        assert_eq!(upload_offset(&created), (SIZE / 2) as u64);
        upload_expires(&created);
        assert_eq!(tus.offset(&upload_path(&half)).await, (SIZE / 2) as u64);
        assert_eq!(status_of(&s, &half).await, "UploadStarted");
        tus.patch_rest(&upload_path(&half), &bytes, SIZE).await;
        assert_published_as(&s, &half, &bytes).await;
    }
}

on_each_database! {
    /// Two PATCHes at offset 0 at once, the first still streaming when the second arrives:
    /// exactly one is answered 204, the other 409 or 423, and the published bytes are the
    /// winner's alone.
    async fn of_two_patches_at_one_offset_exactly_one_wins(db: Database) {
        let s = Scenario::start(db).await;
        let tus = TusClient::new(&s, &s.sender.write);
        let id = s.initialized(s.initialize_body()).await;
        let path = upload_path(&id);
        tus.create(&id, SIZE as u64).await.expect_status(201);
        let (a, b) = (vec![b'a'; SIZE], vec![b'b'; SIZE]);

        // The first PATCH's body is fed by hand: half now, the rest once the second is answered.
        let (mut feed, body) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        let first = {
            let tus = tus.clone();
            let request = tus.patch_request(&path, 0, reqwest::Body::wrap_stream(body)).header("content-length", SIZE);
            tokio::spawn(async move { tus.send(request).await })
        };
        feed.send(Ok(a[..SIZE / 2].to_vec())).await.expect("feeding the first PATCH");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut second = {
            let tus = tus.clone();
            let request = tus.patch_request(&path, 0, b.clone());
            tokio::spawn(async move { tus.send(request).await })
        };
        // A server that makes the second wait for the first must not wait forever.
        let early = tokio::time::timeout(Duration::from_secs(5), &mut second).await;
        let answered_while_first_ran = early.is_ok();
        feed.send(Ok(a[SIZE / 2..].to_vec())).await.expect("feeding the rest");
        drop(feed);
        let first = first.await.expect("the first PATCH");
        let second = match early {
            Ok(second) => second,
            Err(_) => second.await,
        }
        .expect("the second PATCH");

        let statuses = [first.status.as_u16(), second.status.as_u16()];
        println!("racing PATCHes answered {statuses:?}; the second while the first ran: {answered_while_first_ran}");
        let (winner, loser) = match statuses {
            [204, _] => (&a, &second),
            [_, 204] => (&b, &first),
            _ => panic!("expected one 204, got {statuses:?}: {} / {}", first.body, second.body),
        };
        assert!(matches!(loser.status.as_u16(), 409 | 423), "the loser: {} {}", loser.status, loser.body);
        assert_eq!(loser.content_type(), TEXT_PLAIN, "{}", loser.body);
        assert_resumable(loser);
        assert_published_as(&s, &id, winner).await;
    }
}

on_each_database! {
    /// Every refusal of creation and PATCH, each with tus's status and its plain-text answer;
    /// refused requests change nothing, and checksummed PATCHes (md5, sha256) are taken.
    async fn refusals_answer_as_tus_does_and_change_nothing(db: Database) {
        let s = Scenario::start(db).await;
        let tus = TusClient::new(&s, &s.sender.write);
        let bytes = pattern(SIZE);
        let id = initialized_for(&s, &s.sender.write, &bytes).await;
        let path = upload_path(&id);
        let post = || tus.request(Method::POST, &path);

        let missing = tus.send(post()).await;
        assert_text(&missing, 400, "Missing Upload-Length header");
        let invalid = tus.send(post().header("upload-length", "ten")).await;
        assert_text(&invalid, 400, "Header Upload-Length must be a positive number");
        let deferred = tus.send(post().header("upload-defer-length", "1")).await;
        assert_text(&deferred, 400, "Upload-Defer-Length is not supported");
        let metadata = tus.send(post().header("upload-length", SIZE).header("upload-metadata", "filename not base64!")).await;
        assert_eq!(metadata.status, 400, "malformed Upload-Metadata: {}", metadata.body);
        assert_eq!(metadata.content_type(), TEXT_PLAIN);
        let unknown = uuid::Uuid::new_v4().to_string();
        assert_text(&tus.create(&unknown, 10).await, 404, NOT_FOUND);
        let head = tus.head(&upload_path(&unknown)).await;
        assert_eq!(head.status, 404);
        assert!(head.body.is_empty(), "HEAD errors have no body: {}", head.body);
        // Without the protocol version (checked after authentication; OPTIONS needs none).
        let unversioned = tus.send(tus.unversioned(Method::POST, &path).header("upload-length", SIZE)).await;
        assert_eq!(unversioned.status, 412, "{}", unversioned.body);
        assert_eq!(unversioned.header("tus-version"), Some(VERSION));
        assert!(unversioned.body.starts_with("Tus version") && unversioned.body.ends_with("is not supported. Supported versions: 1.0.0"), "{}", unversioned.body);
        let old = tus.send(tus.unversioned(Method::POST, &path).header("tus-resumable", "0.2.2").header("upload-length", SIZE)).await;
        assert_text(&old, 412, "Tus version 0.2.2 is not supported. Supported versions: 1.0.0");
        let anonymous = s.send(s.request(Method::POST, &path).header("tus-resumable", VERSION).header("upload-length", SIZE)).await;
        anonymous.assert_bare(401);
        tus.send(tus.unversioned(Method::OPTIONS, &path)).await.expect_status(204);
        assert_eq!(status_of(&s, &id).await, "Initialized", "refused creations start nothing");

        tus.create(&id, SIZE as u64).await.expect_status(201);
        let first = &bytes[..CHUNK];
        assert_text(&tus.patch(&path, 5, first.to_vec()).await, 409, "Offset does not match file. File offset: 0. Request offset: 5");
        let wrong_type = tus.send(tus.request(Method::PATCH, &path).header("upload-offset", 0).header("content-type", "application/octet-stream").body(first.to_vec())).await;
        assert_text(&wrong_type, 415, "Content-Type application/octet-stream is invalid. Must be application/offset+octet-stream");
        let no_offset = tus.send(tus.request(Method::PATCH, &path).header("content-type", OFFSET_OCTET_STREAM).body(first.to_vec())).await;
        assert_eq!(no_offset.status, 400, "a PATCH without Upload-Offset: {}", no_offset.body);
        let unversioned = tus.send(tus.unversioned(Method::PATCH, &path).header("upload-offset", 0).header("content-type", OFFSET_OCTET_STREAM).body(first.to_vec())).await;
        assert_eq!(unversioned.status, 412, "{}", unversioned.body);
        let unknown_algorithm = tus.send(tus.patch_request(&path, 0, first.to_vec()).header("upload-checksum", "crc32 AAAAAA==")).await;
        assert_text(&unknown_algorithm, 400, "Unsupported checksum algorithm. Supported algorithms are: md5,sha1,sha256");
        let mismatch = tus.send(tus.patch_request(&path, 0, first.to_vec()).header("upload-checksum", checksum(Algorithm::Md5, b"other bytes"))).await;
        assert_text(&mismatch, 460, "Header Upload-Checksum does not match the checksum of the file");
        assert_eq!(tus.offset(&path).await, 0, "a checksum mismatch keeps no bytes");
        assert_eq!(status_of(&s, &id).await, "UploadStarted");

        let md5 = tus.send(tus.patch_request(&path, 0, first.to_vec()).header("upload-checksum", checksum(Algorithm::Md5, first))).await.expect_status(204);
        assert_eq!(upload_offset(&md5), CHUNK as u64);
        let second = &bytes[CHUNK..2 * CHUNK];
        let sha256 = tus.send(tus.patch_request(&path, CHUNK as u64, second.to_vec()).header("upload-checksum", checksum(Algorithm::Sha256, second))).await.expect_status(204);
        assert_eq!(upload_offset(&sha256), 2 * CHUNK as u64);
        tus.patch_rest(&path, &bytes, CHUNK).await;
        assert_published_as(&s, &id, &bytes).await;
    }
}

on_each_database! {
    /// The resource's `maxFileTransferSize` is the largest Upload-Length (and Tus-Max-Size);
    /// bytes beyond the Upload-Length are refused; the upload still completes.
    async fn sizes_beyond_the_limit_or_the_length_are_400(db: Database) {
        let s = Scenario::start(db).await;
        s.put_settings(RESOURCE, json!({"maxFileTransferSize": 1000})).await.expect_status(204);
        let tus = TusClient::new(&s, &s.sender.write);
        let bytes = pattern(1000);
        let id = initialized_for(&s, &s.sender.write, &bytes).await;
        let path = upload_path(&id);
        let options = tus.options(&path).await.expect_status(204);
        assert_eq!(number_header(&options, "tus-max-size"), 1000);
        assert_text(&tus.create(&id, 1001).await, 400, "File size exceeds maximum");
        tus.create(&id, 1000).await.expect_status(201);
        // Its first 1,000 bytes are the file's, whatever the server keeps of them.
        let too_long = tus.patch(&path, 0, pattern(1001)).await;
        assert_text(&too_long, 400, "The request body is longer than the upload's remaining length");
        tus.patch_rest(&path, &bytes, 400).await;
        assert_published_as(&s, &id, &bytes).await;
    }
}

on_each_database! {
    /// DELETE terminates the upload: 204, then HEAD 404 and the bytes gone, while the transfer
    /// stays UploadStarted; a new POST and PATCHes upload and publish it. A Published
    /// transfer's upload cannot be terminated.
    async fn a_terminated_upload_may_start_over(db: Database) {
        let s = Scenario::start(db).await;
        let tus = TusClient::new(&s, &s.sender.write);
        let bytes = pattern(SIZE);
        let id = initialized_for(&s, &s.sender.write, &bytes).await;
        let path = upload_path(&id);
        tus.create(&id, SIZE as u64).await.expect_status(201);
        tus.patch(&path, 0, pattern(SIZE / 2)).await.expect_status(204);

        let terminated = tus.terminate(&path).await.expect_status(204);
        assert_resumable(&terminated);
        let head = tus.head(&path).await;
        assert_eq!(head.status, 404, "HEAD after DELETE");
        assert_text(&tus.patch(&path, (SIZE / 2) as u64, pattern(10)).await, 404, NOT_FOUND);
        assert_eq!(status_of(&s, &id).await, "UploadStarted");
        assert_no_bytes_of(&s, &id, "after DELETE").await;

        tus.create(&id, SIZE as u64).await.expect_status(201);
        assert_eq!(tus.offset(&path).await, 0, "a new upload starts at 0");
        tus.patch_rest(&path, &bytes, CHUNK).await;
        assert_published_as(&s, &id, &bytes).await;
        assert_text(&tus.terminate(&path).await, 409, PAST_UPLOAD);
    }
}

/// Token lifetime of the grace story: long enough to set an upload up, short to wait out.
const SHORT_TOKEN_SECONDS: u64 = 5;

/// Waits until every token in `tokens` has expired (the gateway allows no leeway).
async fn wait_until_expired(tokens: &[&str]) {
    let latest = tokens
        .iter()
        .map(|token| claims_unverified(token)["exp"].as_i64().expect("exp"))
        .max()
        .unwrap_or_default();
    let wait = latest + 1 - broker_tests::now();
    if wait > 0 {
        tokio::time::sleep(Duration::from_secs(wait.unsigned_abs())).await;
    }
}

on_each_database! {
    /// Tokens live five seconds. The upload's own token, expired, may go on with the upload it
    /// created (HEAD, PATCH) until it is complete; the same expired token is refused on the
    /// ordinary routes and for an upload it did not create; another client's expired token
    /// (of the same organisation, and of another sender organisation) is refused.
    async fn an_expired_token_may_finish_its_own_upload_only(db: Database) {
        let options = Scenario::options(db).env("BROKER_TOKEN_LIFETIME_SECONDS", SHORT_TOKEN_SECONDS);
        let s = Scenario::start_with(options, AccessList::Disabled).await;
        let (sender, same_org, other_org) = tokio::join!(
            s.register_client(SENDER, &[WRITE]),
            s.register_client(SENDER, &[WRITE]),
            s.register_client(STRANGER, &[WRITE]),
        );
        let token = sender.token(&[WRITE]).await;
        let bytes = pattern(SIZE);
        let id = initialized_for(&s, &token, &bytes).await;
        let idle = initialized_for(&s, &token, &bytes).await;
        let path = upload_path(&id);
        let tus = TusClient::new(&s, &token);
        tus.create(&id, SIZE as u64).await.expect_status(201);
        tus.patch(&path, 0, bytes[..CHUNK].to_vec()).await.expect_status(204);
        let (same_org, other_org) = (same_org.token(&[WRITE]).await, other_org.token(&[WRITE]).await);
        // The other organisation is a sender of the resource in its own right.
        let mut own = s.initialize_body();
        own["sender"] = json!(party(STRANGER));
        s.initialize(&other_org, own).await.ok_json();
        wait_until_expired(&[token.as_str(), same_org.as_str(), other_org.as_str()]).await;

        s.overview(&token, &id).await.expect_status(401);
        s.upload(&token, &idle, bytes.clone()).await.expect_status(401);
        assert_text(&tus.create(&idle, SIZE as u64).await, 401, NOT_SENDER);

        assert_eq!(tus.offset(&path).await, CHUNK as u64, "HEAD with the expired token");
        let patched = tus.patch(&path, CHUNK as u64, bytes[CHUNK..2 * CHUNK].to_vec()).await.expect_status(204);
        assert_eq!(upload_offset(&patched), 2 * CHUNK as u64);
        for (who, stale) in [("the same organisation's other client", &same_org), ("another sender organisation", &other_org)] {
            let stranger = TusClient::new(&s, stale);
            let refused = stranger.patch(&path, 2 * CHUNK as u64, bytes[2 * CHUNK..3 * CHUNK].to_vec()).await;
            assert_eq!(refused.status, 401, "{who}'s expired token: {}", refused.body);
            assert_eq!(stranger.head(&path).await.status, 401, "{who}'s expired token on HEAD");
        }
        assert_eq!(tus.offset(&path).await, 2 * CHUNK as u64, "refused PATCHes wrote nothing");

        tus.patch_rest(&path, &bytes, CHUNK).await;
        let fresh = sender.token(&[WRITE]).await;
        let reader = s.register_client(RECIPIENT, &[READ]).await.token(&[READ]).await;
        assert_published_seen_by(&s, &fresh, &reader, &id, &bytes).await;
        // The upload is no longer running: the expired token is done.
        assert_eq!(tus.head(&path).await.status, 401, "HEAD with an expired token after completion");
    }
}

on_each_database! {
    /// Another organisation's valid token is refused as not the sender (401 with the service's
    /// text; HEAD without a body), a recipient's token without the write scope gets 403, and
    /// none of it writes a byte.
    async fn other_parties_cannot_touch_the_upload(db: Database) {
        let s = Scenario::start(db).await;
        let tus = TusClient::new(&s, &s.sender.write);
        let bytes = pattern(SIZE);
        let id = initialized_for(&s, &s.sender.write, &bytes).await;
        let path = upload_path(&id);
        let stranger = TusClient::new(&s, &s.stranger.write);
        assert_text(&stranger.create(&id, SIZE as u64).await, 401, NOT_SENDER);
        assert_eq!(status_of(&s, &id).await, "Initialized");
        tus.create(&id, SIZE as u64).await.expect_status(201);
        for other in [&stranger, &TusClient::new(&s, &s.recipient.both)] {
            assert_text(&other.patch(&path, 0, bytes[..CHUNK].to_vec()).await, 401, NOT_SENDER);
            let head = other.head(&path).await;
            assert_eq!(head.status, 401, "HEAD by another party");
            assert!(head.body.is_empty());
            assert_text(&other.terminate(&path).await, 401, NOT_SENDER);
        }
        let reader = TusClient::new(&s, &s.recipient.read);
        reader.create(&id, SIZE as u64).await.assert_bare(403);
        reader.patch(&path, 0, bytes[..CHUNK].to_vec()).await.assert_bare(403);
        reader.head(&path).await.assert_bare(403);
        reader.options(&path).await.assert_bare(403);
        s.send(s.request(Method::HEAD, &path).header("tus-resumable", VERSION)).await.assert_bare(401);
        assert_eq!(tus.offset(&path).await, 0, "nothing was written");
        tus.patch_rest(&path, &bytes, CHUNK).await;
        assert_published_as(&s, &id, &bytes).await;
    }
}

on_each_database! {
    /// A PATCH that declares 4 MiB, sends 2 MiB and closes its connection keeps the bytes that
    /// reached the server: HEAD reports an offset past the old one (and no further than what
    /// was sent), and the upload completes from there with the right MD5.
    async fn a_patch_cut_off_mid_body_keeps_what_arrived(db: Database) {
        let s = Scenario::start(db).await;
        let tus = TusClient::new(&s, &s.sender.write);
        let bytes = pattern(8 << 20);
        let id = initialized_for(&s, &s.sender.write, &bytes).await;
        let path = upload_path(&id);
        tus.create(&id, bytes.len() as u64).await.expect_status(201);
        let before = 1 << 20;
        tus.patch(&path, 0, bytes[..before].to_vec()).await.expect_status(204);

        let (declared, sent) = (4 << 20, 2 << 20);
        let addr = gateway_addr(s.base_url());
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connecting to the gateway");
        let head = format!(
            "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Tus-Resumable: {VERSION}\r\nUpload-Offset: {before}\r\n\
             Content-Type: {OFFSET_OCTET_STREAM}\r\nContent-Length: {declared}\r\n\r\n",
            s.sender.write
        );
        stream.write_all(head.as_bytes()).await.expect("sending the headers");
        stream.write_all(&bytes[before..before + sent]).await.expect("sending half the body");
        stream.flush().await.expect("flushing");
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(stream);

        // The server finishes with the cut-off request in its own time: wait for the offset
        // to move, then for it to stay.
        let deadline = Instant::now() + SETTLE;
        let mut kept = tus.offset(&path).await;
        while kept == before as u64 {
            assert!(Instant::now() < deadline, "HEAD still reports {kept}: the bytes that arrived were dropped");
            tokio::time::sleep(Duration::from_millis(100)).await;
            kept = tus.offset(&path).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        kept = tus.offset(&path).await;
        assert!(kept > before as u64 && kept <= (before + sent) as u64, "kept offset {kept}");
        println!("a PATCH cut off after {} of {} bytes kept {}", sent, declared, kept - before as u64);
        tus.patch_rest(&path, &bytes, 3 << 20).await;
        assert_published_as(&s, &id, &bytes).await;
    }
}

/// The expiration of the expiry story: idle this long, an upload is failed.
const EXPIRATION_SECONDS: u64 = 4;

on_each_database! {
    /// Uploads expire four seconds after their last PATCH, and the lifecycle job runs every
    /// second: an abandoned upload's transfer goes Failed, its HEAD is 404 and its bytes go;
    /// an upload that keeps PATCHing every second for longer than that publishes.
    async fn an_abandoned_upload_expires_and_fails(db: Database) {
        let options = Scenario::options(db)
            .env("BROKER_TUS_EXPIRATION_SECONDS", EXPIRATION_SECONDS)
            .env("BROKER_LIFECYCLE_INTERVAL", "1s");
        let s = Scenario::start_with(options, AccessList::Disabled).await;
        let tus = TusClient::new(&s, &s.sender.write);
        let bytes = pattern(SIZE);

        let abandoned = initialized_for(&s, &s.sender.write, &bytes).await;
        let path = upload_path(&abandoned);
        let created = tus.create(&abandoned, SIZE as u64).await.expect_status(201);
        let expires = upload_expires(&created);
        let latest = chrono::Utc::now() + chrono::TimeDelta::seconds(EXPIRATION_SECONDS as i64 + 1);
        assert!(expires <= latest, "Upload-Expires {expires} is later than the setting allows");
        tus.patch(&path, 0, bytes[..CHUNK].to_vec()).await.expect_status(204);
        let idle_since = Instant::now();

        let kept = initialized_for(&s, &s.sender.write, &bytes).await;
        let kept_path = upload_path(&kept);
        tus.create(&kept, SIZE as u64).await.expect_status(201);
        let started = Instant::now();
        let mut offset = 0;
        for chunk in bytes.chunks(SIZE / 8) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            tus.patch(&kept_path, offset as u64, chunk.to_vec()).await.expect_status(204);
            offset += chunk.len();
        }
        assert!(started.elapsed() > Duration::from_secs(2 * EXPIRATION_SECONDS), "{:?}", started.elapsed());
        assert_published_as(&s, &kept, &bytes).await;

        s.wait_for_status(&s.sender.write, &abandoned, "Failed").await;
        println!("an abandoned upload failed {:?} after its last PATCH", idle_since.elapsed());
        assert_eq!(tus.head(&path).await.status, 404, "HEAD of an expired upload");
        let details = s.details(&s.sender.write, &abandoned).await.ok_json();
        let history = details["fileTransferStatusHistory"].to_string();
        assert!(history.contains("UploadStarted") && !history.contains("Published"), "{history}");
        assert_no_bytes_of(&s, &abandoned, "after expiry").await;
    }
}
