//! File bytes in S3-compatible object storage: the same flow as on local disk, over a real S3
//! protocol server (moto), with uploads large enough to take several multipart parts, and a
//! form's file spooled before its metadata.

use broker_tests::s3::S3Server;
use broker_tests::scenario::{RECIPIENT, RESOURCE, SENDER, md5_hex, party, pattern};
use broker_tests::{AccessList, Database, Scenario};
use serde_json::json;

/// Larger than two 8 MiB parts, so the multipart upload has three.
const SIZE: usize = 20 * 1024 * 1024 + 123;

#[tokio::test]
async fn transfers_round_trip_through_s3_and_failures_leave_no_object() {
    let Some(s3) = S3Server::start("broker-test").await else {
        return;
    };
    let mut options = Scenario::options(Database::Sqlite);
    for (name, value) in s3.broker_env("files") {
        options = options.env(name, value);
    }
    let s = Scenario::start_with(options, AccessList::Disabled).await;
    s.put_settings(RESOURCE, json!({"maxFileTransferSize": SIZE as u64}))
        .await
        .expect_status(204);

    let bytes = pattern(SIZE);
    let mut body = s.initialize_body();
    body["checksum"] = json!(md5_hex(&bytes));
    let id = s.published_with(body, &bytes).await;
    let keys = s3.keys().await;
    assert_eq!(
        keys,
        [format!("files/{id}")],
        "one object, under the prefix"
    );

    let whole = s
        .download(&s.recipient.read, &id, None)
        .await
        .expect_status(200);
    assert!(whole.bytes == bytes, "the download is byte-identical");
    let part = s
        .download(&s.recipient.read, &id, Some("bytes=8388600-8388700"))
        .await
        .expect_status(206);
    assert!(
        part.bytes == bytes[8_388_600..=8_388_700],
        "a range across a part boundary"
    );

    let mut wrong = s.initialize_body();
    wrong["checksum"] = json!("0".repeat(32));
    let failed = s.initialized(wrong).await;
    s.upload(&s.sender.write, &failed, bytes.clone())
        .await
        .expect_status(400);
    s.wait_for_status(&s.sender.write, &failed, "Failed").await;
    assert!(
        !s3.keys().await.iter().any(|key| key.contains(&failed)),
        "a failed upload leaves no object: {:?}",
        s3.keys().await
    );

    // The file part before the metadata: spooled under `spool/`, then copied by S3 itself to
    // the transfer's key, and the spool deleted.
    let mut fields = vec![
        ("Metadata.ResourceId", RESOURCE.to_owned()),
        ("Metadata.FileName", "spooled.bin".to_owned()),
        ("Metadata.SendersFileTransferReference", "s3-1".to_owned()),
        ("Metadata.Sender", party(SENDER)),
        ("Metadata.Recipients[0]", party(RECIPIENT)),
    ];
    let created = s
        .initialize_and_upload_file_first(&s.sender.write, &fields, &bytes)
        .await
        .ok_json();
    let spooled = created["fileTransferId"]
        .as_str()
        .unwrap_or_else(|| panic!("no fileTransferId in {created}"))
        .to_owned();
    s.wait_for_status(&s.sender.write, &spooled, "Published")
        .await;
    let whole = s
        .download(&s.recipient.read, &spooled, None)
        .await
        .expect_status(200);
    assert!(
        whole.bytes == bytes,
        "the spooled download is byte-identical"
    );
    assert!(
        !s3.keys().await.iter().any(|key| key.contains("spool")),
        "no spool is left: {:?}",
        s3.keys().await
    );

    // A spooled file that fails its checksum, or whose metadata is incomplete, leaves nothing.
    fields.push(("Metadata.Checksum", "0".repeat(32)));
    let before = s3.keys().await;
    s.initialize_and_upload_file_first(&s.sender.write, &fields, &bytes)
        .await
        .assert_code(400, 9);
    s.initialize_and_upload_file_first(&s.sender.write, &fields[..2], &bytes)
        .await
        .expect_status(400);
    assert_eq!(
        s3.keys().await,
        before,
        "failed spooled uploads leave no object"
    );
}
