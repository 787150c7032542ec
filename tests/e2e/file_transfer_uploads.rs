//! Uploads that race, break off or lie about their checksum, and the multipart
//! initialize-and-upload with its parts in either order: one winner, nothing published from a
//! broken upload, no bytes (nor spools) left behind, and the reference's failure for a wrong
//! checksum.

use std::time::Duration;

use broker_tests::scenario::{
    RECIPIENT, RESOURCE, SENDER, file_part_head, md5_hex, party, pattern,
};
use broker_tests::{Database, Expected, Scenario, on_each_database};
use serde_json::json;
use tokio::io::AsyncWriteExt;

/// How long the broker may take to clean up after a failed upload.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(15);

/// A body of `chunks` × 64 KiB of `fill`, sent slowly so two uploads surely overlap.
fn slow_body(fill: u8, chunks: usize) -> reqwest::Body {
    let stream = futures::stream::unfold(0, move |sent| async move {
        if sent == chunks {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        Some((Ok::<_, std::io::Error>(vec![fill; 64 * 1024]), sent + 1))
    });
    reqwest::Body::wrap_stream(stream)
}

/// Waits until no stored file is left under the data directory's `files/`.
async fn assert_no_stored_files(s: &Scenario, why: &str) {
    let deadline = tokio::time::Instant::now() + CLEANUP_TIMEOUT;
    loop {
        let left = s.stored_files();
        if left.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{why}: files left after {CLEANUP_TIMEOUT:?}: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

on_each_database! {
    /// Two uploads to one transfer at the same time: exactly one 200, the other 409 (code 4),
    /// and the published bytes are the winner's.
    async fn of_two_concurrent_uploads_exactly_one_wins(db: Database) {
        let s = Scenario::start(db).await;
        let id = s.initialized(s.initialize_body()).await;
        let (a, b) = tokio::join!(
            s.upload(&s.sender.write, &id, slow_body(b'a', 16)),
            s.upload(&s.sender.write, &id, slow_body(b'b', 16)),
        );
        let statuses = [a.status.as_u16(), b.status.as_u16()];
        let winner = match statuses {
            [200, 409] => {
                b.assert_code(409, 4);
                b'a'
            }
            [409, 200] => {
                a.assert_code(409, 4);
                b'b'
            }
            _ => panic!("expected one 200 and one 409, got {statuses:?}: {} / {}", a.body, b.body),
        };
        s.wait_for_status(&s.sender.write, &id, "Published").await;
        let bytes = s.download(&s.recipient.read, &id, None).await.expect_status(200).bytes;
        assert_eq!(bytes.len(), 16 * 64 * 1024);
        assert!(bytes.iter().all(|&byte| byte == winner), "the published bytes mix both uploads");
    }
}

on_each_database! {
    /// A client that sends the headers and half the body, then closes the connection: the
    /// transfer is not published and its bytes are removed.
    async fn an_upload_cut_off_midway_publishes_nothing_and_leaves_no_bytes(db: Database) {
        let s = Scenario::start(db).await;
        let id = s.initialized(s.initialize_body()).await;
        let address = s.base_url().trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connecting to the gateway");
        let length = 8 << 20;
        let head = format!(
            "POST /broker/api/v1/filetransfer/{id}/upload HTTP/1.1\r\nHost: {address}\r\n\
             Authorization: Bearer {}\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {length}\r\n\r\n",
            s.sender.write
        );
        stream.write_all(head.as_bytes()).await.expect("sending the headers");
        stream.write_all(&pattern(length / 2)).await.expect("sending half the body");
        stream.flush().await.expect("flushing");
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(stream);

        assert_no_stored_files(&s, "after a cut-off upload").await;
        let overview = s.overview(&s.sender.write, &id).await.ok_json();
        assert_ne!(overview["fileTransferStatus"], "Published", "{overview}");
        assert!(overview["published"] != true && overview["published"].as_str().is_none_or(str::is_empty), "never published: {overview}");
        s.download(&s.recipient.read, &id, None).await.assert_code(403, 7);
        let searched = s.search(&s.recipient.read, &format!("resourceId={}&status=Published", broker_tests::scenario::RESOURCE)).await.ok_json();
        assert!(!searched.to_string().contains(&id), "a cut-off upload is found as Published: {searched}");
    }
}

on_each_database! {
    /// A checksum that does not match the bytes: 400 code 9, the transfer Failed, no bytes kept.
    async fn a_wrong_checksum_fails_the_transfer_and_keeps_no_bytes(db: Database) {
        let s = Scenario::start(db).await;
        let mut body = s.initialize_body();
        body["checksum"] = json!(md5_hex(b"what the sender meant"));
        let id = s.initialized(body).await;
        s.upload(&s.sender.write, &id, pattern(100_000)).await.assert_code(400, 9);
        s.wait_for_status(&s.sender.write, &id, "Failed").await;
        assert_no_stored_files(&s, "after a checksum mismatch").await;
        let details = s.details(&s.sender.write, &id).await.ok_json();
        let history = details["fileTransferStatusHistory"].to_string();
        assert!(!history.contains("Published"), "a failed upload was published: {history}");
    }
}

on_each_database! {
    /// Initialize-and-upload as multipart/form-data: one call, then Published and downloadable;
    /// invalid metadata is refused with its field.
    async fn multipart_initialize_and_upload_publishes_in_one_call(db: Database) {
        let s = Scenario::start(db).await;
        let bytes = pattern(200_000);
        let mut metadata = s.initialize_body();
        metadata["checksum"] = json!(md5_hex(&bytes));
        let created = s.initialize_and_upload(&s.sender.write, &metadata, &bytes).await.ok_json();
        let id = created["fileTransferId"].as_str().unwrap_or_else(|| panic!("no fileTransferId in {created}")).to_owned();
        let overview = s.wait_for_status(&s.sender.write, &id, "Published").await;
        assert_eq!(overview["fileTransferSize"], bytes.len());
        assert_eq!(overview["fileName"], "report.pdf");
        let downloaded = s.download(&s.recipient.read, &id, None).await.expect_status(200);
        assert!(downloaded.bytes == bytes, "the multipart upload came back different");

        // The same as ASP.NET form keys, as Altinn's own clients send it.
        let fields = [
            ("Metadata.ResourceId", broker_tests::scenario::RESOURCE.to_owned()),
            ("Metadata.FileName", "form.txt".to_owned()),
            ("Metadata.SendersFileTransferReference", "form-1".to_owned()),
            ("Metadata.Sender", broker_tests::scenario::party(broker_tests::scenario::SENDER)),
            ("Metadata.Recipients[0]", broker_tests::scenario::party(broker_tests::scenario::RECIPIENT)),
            ("Metadata.PropertyList[case]", "7".to_owned()),
        ];
        let created = s.initialize_and_upload_form(&s.sender.write, &fields, b"form bytes").await.ok_json();
        let id = created["fileTransferId"].as_str().unwrap_or_else(|| panic!("no fileTransferId in {created}")).to_owned();
        let overview = s.wait_for_status(&s.sender.write, &id, "Published").await;
        assert_eq!(overview["fileName"], "form.txt");
        assert_eq!(overview["propertyList"], json!({"case": "7"}));
        assert_eq!(s.download(&s.recipient.read, &id, None).await.expect_status(200).bytes, b"form bytes");

        let mut invalid = s.initialize_body();
        invalid.as_object_mut().expect("an object").remove("fileName");
        s.initialize_and_upload(&s.sender.write, &invalid, &bytes).await.assert_expected(broker_tests::Expected::Field("fileName"));
        s.initialize_and_upload(&s.recipient.read, &metadata, &bytes).await.expect_status(403);
    }
}

/// A refused upload's answer reaches a client that is still sending: a recipient's token (no
/// `altinn:broker.write`) sending 2 MiB to either upload endpoint gets its 403 (with no body, as
/// Altinn answers a missing scope) every time, never a reset connection.
#[tokio::test]
async fn a_refused_upload_is_answered_while_the_client_still_sends() {
    let s = Scenario::start(Database::Sqlite).await;
    let id = s.initialized(s.initialize_body()).await;
    let bytes = pattern(2 * 1024 * 1024);
    for _ in 0..10 {
        let refused = s
            .upload(&s.recipient.read, &id, bytes.clone())
            .await
            .expect_status(403);
        assert!(refused.body.is_empty(), "{}", refused.body);
        s.initialize_and_upload(&s.recipient.read, &s.initialize_body(), &bytes)
            .await
            .expect_status(403);
    }
}

/// The metadata of a transfer of `file_name` as ASP.NET form keys.
fn form_fields(file_name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Metadata.ResourceId", RESOURCE.to_owned()),
        ("Metadata.FileName", file_name.to_owned()),
        (
            "Metadata.SendersFileTransferReference",
            "form-ref".to_owned(),
        ),
        ("Metadata.Sender", party(SENDER)),
        ("Metadata.Recipients[0]", party(RECIPIENT)),
    ]
}

/// Sets form field `name` of `fields` to `value`.
fn set_field(fields: &mut [(&'static str, String)], name: &str, value: &str) {
    let field = fields
        .iter_mut()
        .find(|(field, _)| *field == name)
        .unwrap_or_else(|| panic!("no {name} in the form"));
    field.1 = value.to_owned();
}

/// The statuses of a transfer's history, oldest first.
async fn status_history(s: &Scenario, id: &str) -> Vec<String> {
    let details = s.details(&s.sender.write, id).await.ok_json();
    details["fileTransferStatusHistory"]
        .as_array()
        .unwrap_or_else(|| panic!("no history in {details}"))
        .iter()
        .map(|entry| {
            entry["fileTransferStatus"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// The ids of the sender's transfers of the scenario's resource in `status`.
async fn transfers_in(s: &Scenario, status: &str) -> Vec<String> {
    let found = s
        .search(
            &s.sender.write,
            &format!("resourceId={RESOURCE}&status={status}"),
        )
        .await
        .ok_json();
    found
        .as_array()
        .unwrap_or_else(|| panic!("not a list of ids: {found}"))
        .iter()
        .map(|id| id.as_str().unwrap_or_default().to_owned())
        .collect()
}

on_each_database! {
    /// The file part before the metadata (as some HTTP clients order a form): the file is
    /// spooled, then becomes the transfer's bytes, with the same statuses as any upload and no
    /// spool left; the JSON `Metadata` part after the file works the same.
    async fn a_file_before_its_metadata_is_spooled_then_published(db: Database) {
        let s = Scenario::start(db).await;
        let bytes = pattern(5 * 1024 * 1024 + 17);
        let mut fields = form_fields("spooled.bin");
        fields.push(("Metadata.Checksum", md5_hex(&bytes)));
        fields.push(("Metadata.PropertyList[case]", "7".to_owned()));
        let created = s.initialize_and_upload_file_first(&s.sender.write, &fields, &bytes).await.ok_json();
        let id = created["fileTransferId"].as_str().unwrap_or_else(|| panic!("no fileTransferId in {created}")).to_owned();
        let overview = s.wait_for_status(&s.sender.write, &id, "Published").await;
        assert_eq!(overview["fileTransferSize"], bytes.len());
        assert_eq!(overview["checksum"], md5_hex(&bytes));
        assert_eq!(overview["fileName"], "spooled.bin");
        assert_eq!(overview["propertyList"], json!({"case": "7"}));
        let downloaded = s.download(&s.recipient.read, &id, None).await.expect_status(200);
        assert!(downloaded.bytes == bytes, "the spooled file came back different");
        let stored = s.stored_files();
        assert_eq!(stored, [s.data_dir().join("files").join(&id)], "only the transfer's bytes are left");

        // The same statuses as a form with the metadata first.
        let first = s.initialize_and_upload_form(&s.sender.write, &form_fields("first.bin"), b"metadata first").await.ok_json();
        let first = first["fileTransferId"].as_str().unwrap_or_default().to_owned();
        s.wait_for_status(&s.sender.write, &first, "Published").await;
        assert_eq!(status_history(&s, &id).await, status_history(&s, &first).await);

        let mut metadata = s.initialize_body();
        metadata["checksum"] = json!(md5_hex(b"json after the file"));
        let created = s.initialize_and_upload_file_first(&s.sender.write, &[("Metadata", metadata.to_string())], b"json after the file").await.ok_json();
        let id = created["fileTransferId"].as_str().unwrap_or_else(|| panic!("no fileTransferId in {created}")).to_owned();
        s.wait_for_status(&s.sender.write, &id, "Published").await;
        assert_eq!(s.download(&s.recipient.read, &id, None).await.expect_status(200).bytes, b"json after the file");
    }
}

on_each_database! {
    /// A spooled file whose checksum differs from the metadata after it: code 9 as for any
    /// upload, the transfer Failed, and neither the spool nor the transfer's bytes left.
    async fn a_file_first_with_a_wrong_checksum_fails_and_keeps_no_bytes(db: Database) {
        let s = Scenario::start(db).await;
        let mut fields = form_fields("report.pdf");
        fields.push(("Metadata.Checksum", md5_hex(b"what the sender meant")));
        s.initialize_and_upload_file_first(&s.sender.write, &fields, &pattern(100_000)).await.assert_code(400, 9);
        assert_no_stored_files(&s, "after a spooled file's checksum mismatch").await;
        let failed = transfers_in(&s, "Failed").await;
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(!status_history(&s, &failed[0]).await.contains(&"Published".to_owned()));
    }
}

on_each_database! {
    /// A spooled file larger than the resource allows (though within what any resource may
    /// allow): code 16 and the transfer Failed, as a too-large upload is, and no bytes left.
    async fn a_file_first_over_the_resources_limit_is_code_16_and_keeps_no_bytes(db: Database) {
        let s = Scenario::start(db).await;
        s.put_settings(RESOURCE, json!({"maxFileTransferSize": 1000})).await.expect_status(204);
        s.initialize_and_upload_file_first(&s.sender.write, &form_fields("big.bin"), &pattern(1001)).await.assert_code(400, 16);
        assert_no_stored_files(&s, "after a spooled file over the limit").await;
        let failed = transfers_in(&s, "Failed").await;
        assert_eq!(failed.len(), 1, "{failed:?}");
        s.wait_for_status(&s.sender.write, &failed[0], "Failed").await;
        // Exactly at the limit is fine.
        let created = s.initialize_and_upload_file_first(&s.sender.write, &form_fields("fits.bin"), &pattern(1000)).await.ok_json();
        s.wait_for_status(&s.sender.write, created["fileTransferId"].as_str().unwrap_or_default(), "Published").await;
    }
}

on_each_database! {
    /// Metadata after the file that is missing a field, invalid, or refused by initialize: the
    /// problem initialize would give (naming the field), no transfer, and no spool left.
    async fn a_file_first_with_bad_metadata_is_refused_and_leaves_no_spool(db: Database) {
        let s = Scenario::start(db).await;
        let bytes = pattern(300_000);
        let mut missing = form_fields("report.pdf");
        missing.retain(|(name, _)| *name != "Metadata.Sender");
        s.initialize_and_upload_file_first(&s.sender.write, &missing, &bytes).await.assert_expected(Expected::Field("Metadata.Sender"));
        assert_no_stored_files(&s, "after metadata missing its sender").await;

        let mut invalid = form_fields("report.pdf");
        set_field(&mut invalid, "Metadata.Sender", "0192:123");
        s.initialize_and_upload_file_first(&s.sender.write, &invalid, &bytes).await.assert_expected(Expected::Field("sender"));
        assert_no_stored_files(&s, "after an invalid sender").await;

        // Another organisation as the sender: initialize refuses it (code 6).
        let mut refused = form_fields("report.pdf");
        set_field(&mut refused, "Metadata.Sender", &party(RECIPIENT));
        s.initialize_and_upload_file_first(&s.sender.write, &refused, &bytes).await.assert_code(401, 6);
        assert_no_stored_files(&s, "after a refused initialize").await;

        // The file sent twice.
        let mut twice = vec![("FileTransfer", "again".to_owned())];
        twice.extend(form_fields("report.pdf"));
        s.initialize_and_upload_file_first(&s.sender.write, &twice, &bytes).await.assert_expected(Expected::Field("FileTransfer"));
        assert_no_stored_files(&s, "after a second file part").await;
        for status in ["Initialized", "UploadStarted", "Failed", "Published"] {
            assert_eq!(transfers_in(&s, status).await, Vec::<String>::new(), "{status}");
        }
    }
}

on_each_database! {
    /// A client that sends the file part first and goes away halfway through it: no transfer
    /// and no spool left.
    async fn a_client_gone_mid_file_before_its_metadata_leaves_no_spool(db: Database) {
        let s = Scenario::start(db).await;
        let address = s.base_url().trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connecting to the gateway");
        let length = 8 << 20;
        let boundary = "cut-off";
        let head = format!(
            "POST /broker/api/v1/filetransfer/upload HTTP/1.1\r\nHost: {address}\r\n\
             Authorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
             Content-Length: {length}\r\n\r\n{}",
            s.sender.write,
            file_part_head(boundary),
        );
        stream.write_all(head.as_bytes()).await.expect("sending the headers");
        stream.write_all(&pattern(length / 2)).await.expect("sending half the file");
        stream.flush().await.expect("flushing");
        // The spool is being written by now.
        let deadline = tokio::time::Instant::now() + CLEANUP_TIMEOUT;
        while s.stored_files().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "the file was never spooled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(stream);

        assert_no_stored_files(&s, "after a client gone mid-file").await;
        for status in ["Initialized", "UploadStarted", "Failed"] {
            assert_eq!(transfers_in(&s, status).await, Vec::<String>::new(), "{status}");
        }
    }
}
