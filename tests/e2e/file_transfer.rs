//! The file-transfer API end to end over real HTTP, as Altinn clients use it: the whole life of
//! a transfer from initialize to AllConfirmedDownloaded, byte ranges, illegal transitions and
//! who may see what.

use broker_tests::scenario::{
    OTHER_RECIPIENT, RECIPIENT, RESOURCE, SENDER, md5_hex, party, pattern,
};
use broker_tests::{Checklist, Database, Expected, Scenario, on_each_database};
use serde_json::{Value, json};

/// The statuses of a history, oldest first.
fn statuses(history: &Value, field: &str) -> Vec<String> {
    history
        .as_array()
        .unwrap_or_else(|| panic!("a history array, got {history}"))
        .iter()
        .map(|entry| entry[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Whether `wanted` appears in `seen` in this order (other entries may come between).
fn in_order(seen: &[String], wanted: &[&str]) -> bool {
    let mut rest = seen.iter();
    wanted.iter().all(|w| rest.any(|s| s == w))
}

/// A recipient's entry in an overview.
fn recipient_entry<'a>(overview: &'a Value, org: &str) -> &'a Value {
    overview["recipients"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|r| r["recipient"].as_str().is_some_and(|p| p.ends_with(org)))
        })
        .unwrap_or_else(|| panic!("recipient {org} missing in {overview}"))
}

fn ids(reply: &Value) -> Vec<String> {
    reply
        .as_array()
        .unwrap_or_else(|| panic!("search answers an array of ids, got {reply}"))
        .iter()
        .map(|id| id.as_str().unwrap_or_default().to_owned())
        .collect()
}

on_each_database! {
    /// Settings, initialize, upload, Published, search, download whole and by range, confirm by
    /// both recipients, AllConfirmedDownloaded, with every status in both histories.
    async fn a_transfer_goes_from_initialize_to_all_confirmed_downloaded(db: Database) {
        let s = Scenario::start(db).await;
        let settings = s.get_as(&s.owner, &format!("/broker/api/v1/resource/{RESOURCE}")).await.ok_json();
        assert_eq!(settings["maxFileTransferSize"], broker_tests::scenario::MAX_SIZE, "{settings}");
        // Read back as .NET TimeSpans, as Altinn answers them.
        assert_eq!(settings["fileTransferTimeToLive"], "30.00:00:00", "default time to live: {settings}");
        assert_eq!(settings["purgeFileTransferAfterAllRecipientsConfirmed"], true, "{settings}");
        assert_eq!(settings["purgeFileTransferGracePeriod"], "02:00:00", "default grace period: {settings}");
        let owner = s.get_as(&s.owner, "/broker/api/v1/serviceowner").await.ok_json();
        assert_eq!(owner["name"], "Digitaliseringsdirektoratet", "{owner}");
        assert!(owner["storageProviders"].as_array().is_some_and(|p| !p.is_empty()), "{owner}");

        let bytes = pattern(300_000);
        let mut body = s.initialize_body();
        body["recipients"] = json!([party(RECIPIENT), party(OTHER_RECIPIENT)]);
        body["checksum"] = json!(md5_hex(&bytes));
        let id = s.initialized(body).await;
        let overview = s.overview(&s.sender.write, &id).await.ok_json();
        assert_eq!(overview["fileTransferStatus"], "Initialized", "{overview}");

        let uploaded = s.upload(&s.sender.write, &id, bytes.clone()).await.ok_json();
        assert_eq!(uploaded["fileTransferId"], id.as_str());
        let overview = s.wait_for_status(&s.sender.write, &id, "Published").await;
        assert_eq!(overview["fileTransferId"], id.as_str());
        assert_eq!(overview["resourceId"], RESOURCE);
        assert_eq!(overview["fileName"], "report.pdf");
        assert_eq!(overview["sendersFileTransferReference"], "ref-1");
        assert_eq!(overview["fileTransferSize"], bytes.len());
        assert_eq!(overview["checksum"], md5_hex(&bytes));
        assert_eq!(overview["sender"], party(SENDER));
        assert_eq!(overview["propertyList"], json!({"case": "42"}));
        assert!(overview["published"].is_string(), "published is a time now: {overview}");
        for org in [RECIPIENT, OTHER_RECIPIENT] {
            let entry = recipient_entry(&overview, org);
            assert_eq!(entry["currentRecipientFileTransferStatusCode"], "Initialized", "{entry}");
        }

        // The recipient finds it; filters narrow the search; others do not see it.
        let found = |reply: Value| ids(&reply).contains(&id);
        let search = |token: &str, query: &str| {
            let (token, query) = (token.to_owned(), format!("resourceId={RESOURCE}{query}"));
            let s = &s;
            async move { s.search(&token, &query).await.ok_json() }
        };
        assert!(found(search(&s.recipient.read, "").await), "the recipient finds it");
        assert!(found(search(&s.recipient.read, "&status=Published").await));
        assert!(!found(search(&s.recipient.read, "&status=Initialized").await));
        assert!(found(search(&s.recipient.read, "&role=Recipient").await));
        assert!(!found(search(&s.recipient.read, "&role=Sender").await));
        assert!(found(search(&s.sender.write, "&role=Sender").await), "the sender finds it");
        assert!(found(search(&s.recipient.read, "&recipientStatus=Initialized").await));
        assert!(!found(search(&s.recipient.read, "&from=2099-01-01T00:00:00Z").await));
        assert!(found(search(&s.recipient.read, "&from=2000-01-01T00:00:00Z&orderAscending=true").await));
        assert!(!found(search(&s.stranger.both, "").await), "a stranger does not find it");
        s.search(&s.recipient.read, "status=Published").await.assert_problem(400);

        // Whole, then by range, byte-identical.
        let whole = s.download(&s.recipient.read, &id, None).await.expect_status(200);
        assert!(whole.bytes == bytes, "the download differs from the upload ({} bytes)", whole.bytes.len());
        assert_eq!(whole.header("accept-ranges"), Some("bytes"));
        assert_eq!(whole.header("content-length"), Some(bytes.len().to_string().as_str()));
        let part = s.download(&s.recipient.read, &id, Some("bytes=1000-1999")).await.expect_status(206);
        assert!(part.bytes == bytes[1000..2000], "the range differs");
        assert_eq!(part.header("content-range"), Some(format!("bytes 1000-1999/{}", bytes.len()).as_str()));
        let details = s.details(&s.recipient.read, &id).await.ok_json();
        assert_eq!(recipient_entry(&details, RECIPIENT)["currentRecipientFileTransferStatusCode"], "DownloadStarted", "{details}");

        // Both confirm; the first confirmation twice.
        s.confirm(&s.recipient.read, &id).await.expect_status(204);
        s.confirm(&s.recipient.read, &id).await.expect_status(204);
        let overview = s.overview(&s.recipient.read, &id).await.ok_json();
        assert_eq!(overview["fileTransferStatus"], "Published", "one recipient left: {overview}");
        assert_eq!(recipient_entry(&overview, RECIPIENT)["currentRecipientFileTransferStatusCode"], "DownloadConfirmed");
        assert!(found(search(&s.recipient.read, "&recipientStatus=DownloadConfirmed").await));
        s.download(&s.other_recipient.read, &id, None).await.expect_status(200);
        s.confirm(&s.other_recipient.read, &id).await.expect_status(204);
        s.wait_for_status(&s.sender.write, &id, "AllConfirmedDownloaded").await;

        let details = s.details(&s.sender.write, &id).await.ok_json();
        let history = statuses(&details["fileTransferStatusHistory"], "fileTransferStatus");
        assert!(
            in_order(&history, &["Initialized", "UploadStarted", "UploadProcessing", "Published", "AllConfirmedDownloaded"]),
            "file transfer history: {history:?}"
        );
        assert_eq!(history.iter().filter(|s| *s == "Published").count(), 1, "published once: {history:?}");
        for org in [RECIPIENT, OTHER_RECIPIENT] {
            let rows: Vec<Value> = details["recipientFileTransferStatusHistory"]
                .as_array()
                .expect("a recipient history")
                .iter()
                .filter(|row| row["recipient"].as_str().is_some_and(|r| r.ends_with(org)))
                .cloned()
                .collect();
            let history = statuses(&Value::Array(rows), "recipientFileTransferStatusCode");
            assert!(
                in_order(&history, &["Initialized", "DownloadStarted", "DownloadConfirmed"]),
                "history of {org}: {history:?}"
            );
            assert_eq!(history.iter().filter(|s| *s == "DownloadConfirmed").count(), 1, "confirmed once: {history:?}");
        }
    }
}

on_each_database! {
    /// Every Range edge case of the reference on one published transfer of 1,000 bytes.
    async fn ranges_serve_their_bytes_and_bad_ones_the_whole_file_or_416(db: Database) {
        let s = Scenario::start(db).await;
        let bytes = pattern(1000);
        let id = s.published(&bytes).await;
        let token = &s.recipient.read;
        let mut checks = Checklist::new();
        let cases: [(&str, &str, usize, usize); 6] = [
            ("first byte", "bytes=0-0", 0, 0),
            ("last byte", "bytes=999-999", 999, 999),
            ("suffix", "bytes=-10", 990, 999),
            ("open end", "bytes=500-", 500, 999),
            ("end past the file is clamped", "bytes=990-5000", 990, 999),
            ("whole file as a range", "bytes=0-999", 0, 999),
        ];
        for (name, range, first, last) in cases {
            let reply = s.download(token, &id, Some(range)).await;
            checks.check(name, &reply, Expected::Status(206));
            let content_range = format!("bytes {first}-{last}/1000");
            if reply.header("content-range") != Some(content_range.as_str()) {
                checks.fail(name, format!("Content-Range {:?}, expected {content_range}", reply.header("content-range")));
            }
            if reply.bytes != bytes[first..=last] {
                checks.fail(name, format!("{} bytes that are not {first}..={last}", reply.bytes.len()));
            }
            if reply.header("content-length") != Some((last - first + 1).to_string().as_str()) {
                checks.fail(name, format!("Content-Length {:?}", reply.header("content-length")));
            }
            if reply.header("accept-ranges") != Some("bytes") {
                checks.fail(name, format!("Accept-Ranges {:?}", reply.header("accept-ranges")));
            }
        }
        let unsatisfiable = [
            ("start at the end", "bytes=1000-"),
            ("start past the end", "bytes=5000-6000"),
            ("empty suffix (RFC 9110: unsatisfiable)", "bytes=-0"),
        ];
        for (name, range) in unsatisfiable {
            let reply = s.download(token, &id, Some(range)).await;
            checks.check(name, &reply, Expected::Code(416, 29));
        }
        let whole = [
            ("not bytes", "items=0-1"),
            ("garbage", "bytes=abc"),
            ("reversed", "bytes=5-1"),
            ("several ranges", "bytes=0-1,5-6"),
        ];
        for (name, range) in whole {
            let reply = s.download(token, &id, Some(range)).await;
            checks.check(name, &reply, Expected::Status(200));
            if reply.status == 200 && reply.bytes != bytes {
                checks.fail(name, "a 200 that is not the whole file");
            }
        }
        checks.assert_all_passed();
    }
}

on_each_database! {
    /// Uploading twice, downloading before Published, confirming before Published or before a
    /// download, and acting on a Failed or finished transfer: each refused with its code.
    async fn illegal_transitions_are_refused_and_change_nothing(db: Database) {
        let s = Scenario::start(db).await;
        let mut checks = Checklist::new();
        let (sender, recipient) = (&s.sender.write, &s.recipient.read);

        let initialized = s.initialized(s.initialize_body()).await;
        checks.check("download while Initialized", &s.download(recipient, &initialized, None).await, Expected::Code(403, 7));
        // Altinn asks for a file before it asks for the status: code 3, "No file uploaded yet".
        checks.check("confirm while Initialized", &s.confirm(recipient, &initialized).await, Expected::Code(400, 3));

        let published = s.published(b"published bytes").await;
        checks.check("confirm before any download", &s.confirm(recipient, &published).await, Expected::Code(400, 19));
        checks.check("upload after Published", &s.upload(sender, &published, b"again".to_vec()).await, Expected::Code(409, 4));
        let overview = s.overview(sender, &published).await.ok_json();
        if overview["fileTransferSize"] != 15 || overview["fileTransferStatus"] != "Published" {
            checks.fail("upload after Published", format!("changed the transfer: {overview}"));
        }

        let mut body = s.initialize_body();
        body["checksum"] = json!(md5_hex(b"other bytes"));
        let failed = s.initialized(body).await;
        checks.check("wrong checksum", &s.upload(sender, &failed, b"these bytes".to_vec()).await, Expected::Code(400, 9));
        s.wait_for_status(sender, &failed, "Failed").await;
        checks.check("upload after Failed", &s.upload(sender, &failed, b"these bytes".to_vec()).await, Expected::Code(409, 4));
        checks.check("download after Failed", &s.download(recipient, &failed, None).await, Expected::Code(403, 7));
        checks.check("confirm after Failed", &s.confirm(recipient, &failed).await, Expected::Code(400, 3));

        let done = s.published(b"done").await;
        s.download(recipient, &done, None).await.expect_status(200);
        s.confirm(recipient, &done).await.expect_status(204);
        s.wait_for_status(sender, &done, "AllConfirmedDownloaded").await;
        // "Again 204" holds while Published; once AllConfirmedDownloaded, confirming is refused.
        checks.check("confirm again after AllConfirmedDownloaded", &s.confirm(recipient, &done).await, Expected::Code(400, 10));
        // Altinn's `NormalFlow_WhenAllIsOK_Success` downloads again after confirming.
        checks.check("download after AllConfirmedDownloaded", &s.download(recipient, &done, None).await, Expected::Status(200));
        checks.check("upload after AllConfirmedDownloaded", &s.upload(sender, &done, b"x".to_vec()).await, Expected::Code(409, 4));
        let history = statuses(&s.details(sender, &done).await.ok_json()["fileTransferStatusHistory"], "fileTransferStatus");
        if history.last().map(String::as_str) != Some("AllConfirmedDownloaded") {
            checks.fail("AllConfirmedDownloaded stays", format!("history {history:?}"));
        }
        checks.assert_all_passed();
    }
}

on_each_database! {
    /// Who may do what, as Altinn's decision point answers: a party to nothing gets 401 with
    /// code 6 (an unknown id 404 with code 1), the sender cannot download, a recipient cannot
    /// upload, a wrong scope is 403 and no token 401.
    async fn only_the_parties_see_a_transfer_and_each_only_in_its_role(db: Database) {
        let s = Scenario::start(db).await;
        let mut checks = Checklist::new();
        let id = s.published(b"for the recipient only").await;
        let pending = s.initialized(s.initialize_body()).await;
        let unknown = uuid::Uuid::new_v4().to_string();
        let stranger = &s.stranger.both;

        for (name, target, status, code) in [("unknown transfer", &unknown, 404, 1), ("stranger", &id, 401, 6)] {
            let token = if target == &unknown { &s.recipient.both } else { stranger };
            checks.check(&format!("{name}: overview"), &s.overview(token, target).await, Expected::Code(status, code));
            checks.check(&format!("{name}: details"), &s.details(token, target).await, Expected::Code(status, code));
            checks.check(&format!("{name}: download"), &s.download(token, target, None).await, Expected::Code(status, code));
            checks.check(&format!("{name}: confirm"), &s.confirm(token, target).await, Expected::Code(status, code));
        }
        checks.check("stranger: upload", &s.upload(stranger, &pending, b"x".to_vec()).await, Expected::Code(401, 6));
        checks.check("sender downloads", &s.download(&s.sender.both, &id, None).await, Expected::Code(401, 6));
        checks.check("sender confirms", &s.confirm(&s.sender.both, &id).await, Expected::Code(401, 6));
        let recipient_upload = s.upload(&s.recipient.both, &pending, b"x".to_vec()).await;
        // Altinn answers a party that is not the sender with code 6 (401, no access).
        checks.check("recipient uploads", &recipient_upload, Expected::Code(401, 6));
        let status = s.overview(&s.sender.write, &pending).await.ok_json()["fileTransferStatus"].clone();
        if status != "Initialized" {
            checks.fail("recipient uploads", format!("the transfer became {status}"));
        }
        // Either scope reads the overview; the other operations need their own.
        checks.check("recipient reads with read", &s.overview(&s.recipient.read, &id).await, Expected::Status(200));
        checks.check("sender reads with write", &s.overview(&s.sender.write, &id).await, Expected::Status(200));
        checks.check("initialize with read", &s.initialize(&s.sender.read, s.initialize_body()).await, Expected::Status(403));
        checks.check("upload with read", &s.upload(&s.sender.read, &pending, b"x".to_vec()).await, Expected::Status(403));
        checks.check("download with write", &s.download(&s.recipient.write, &id, None).await, Expected::Status(403));
        checks.check("confirm with write", &s.confirm(&s.recipient.write, &id).await, Expected::Status(403));
        checks.check("service-owner scope only", &s.overview(&s.owner, &id).await, Expected::Status(403));
        let anonymous = [
            ("initialize", s.send(s.request(reqwest::Method::POST, "/broker/api/v1/filetransfer").json(&s.initialize_body())).await),
            ("overview", s.get(&format!("/broker/api/v1/filetransfer/{id}")).await),
            ("download", s.get(&format!("/broker/api/v1/filetransfer/{id}/download")).await),
            ("search", s.get(&format!("/broker/api/v1/filetransfer?resourceId={RESOURCE}")).await),
        ];
        for (name, reply) in anonymous {
            checks.check(&format!("no token: {name}"), &reply, Expected::Status(401));
        }
        checks.assert_all_passed();
        assert_eq!(s.download(&s.recipient.read, &id, None).await.expect_status(200).bytes, b"for the recipient only");
    }
}

on_each_database! {
    /// Search answers at most 100 ids, newest first unless asked otherwise, and recipients see
    /// transfers that are not yet published.
    async fn search_answers_at_most_100_ids_and_recipients_see_unpublished_transfers(db: Database) {
        let s = Scenario::start(db).await;
        let mut created = Vec::new();
        for _ in 0..105 {
            created.push(s.initialized(s.initialize_body()).await);
        }
        let query = format!("resourceId={RESOURCE}");
        let newest_first = ids(&s.search(&s.sender.write, &query).await.ok_json());
        assert_eq!(newest_first.len(), 100, "at most 100 ids");
        assert_eq!(newest_first.first(), created.last(), "newest first by default");
        let oldest_first = ids(&s.search(&s.sender.write, &format!("{query}&orderAscending=true")).await.ok_json());
        assert_eq!(oldest_first.first(), created.first(), "oldest first when asked");
        let recipient = ids(&s.search(&s.recipient.read, &format!("{query}&status=Initialized")).await.ok_json());
        assert_eq!(recipient.len(), 100, "the recipient sees the Initialized transfers");
        assert!(ids(&s.search(&s.other_recipient.read, &query).await.ok_json()).is_empty(), "not a recipient of any");
    }
}
