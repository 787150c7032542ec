//! Every validation rule and error code of the reference's initialize and settings calls, one
//! named case each: the broker must answer each with its status and code (or the failing field),
//! and a failing run lists every rule it broke.

use broker_tests::scenario::{OTHER_RECIPIENT, RECIPIENT, SENDER, STRANGER, party, pattern, urn};
use broker_tests::{AccessList, Checklist, Database, Expected, Scenario, on_each_database};
use serde_json::{Map, Value, json};

/// The valid body with `field` set to `value` (`Value::Null` removes it).
fn with(mut body: Value, field: &str, value: Value) -> Value {
    let object = body.as_object_mut().expect("an object");
    if value.is_null() {
        object.remove(field);
    } else {
        object.insert(field.to_owned(), value);
    }
    body
}

fn properties(count: usize, key_len: usize, value_len: usize) -> Value {
    let mut map = Map::new();
    for i in 0..count {
        let key = format!("{i:0>key_len$}");
        map.insert(key, json!("v".repeat(value_len)));
    }
    Value::Object(map)
}

on_each_database! {
    /// `FileTransferInitialize`: each field's rule, and the sender/recipient rules.
    async fn initialize_refuses_each_invalid_field_with_its_name(db: Database) {
        let s = Scenario::start(db).await;
        let valid = s.initialize_body();
        let long = |n: usize| json!("a".repeat(n));
        let cases: Vec<(&str, Value, Expected)> = vec![
            ("resourceId missing", with(valid.clone(), "resourceId", Value::Null), Expected::Field("resourceId")),
            ("resourceId empty", with(valid.clone(), "resourceId", json!("")), Expected::Field("resourceId")),
            ("resourceId over 255", with(valid.clone(), "resourceId", long(256)), Expected::Field("resourceId")),
            ("fileName missing", with(valid.clone(), "fileName", Value::Null), Expected::Field("fileName")),
            ("fileName empty", with(valid.clone(), "fileName", json!("")), Expected::Field("fileName")),
            ("fileName over 255", with(valid.clone(), "fileName", long(256)), Expected::Field("fileName")),
            ("sendersFileTransferReference over 4096", with(valid.clone(), "sendersFileTransferReference", long(4097)), Expected::Field("sendersFileTransferReference")),
            ("sender missing", with(valid.clone(), "sender", Value::Null), Expected::Field("sender")),
            ("sender without prefix", with(valid.clone(), "sender", json!(SENDER)), Expected::Field("sender")),
            ("sender with 8 digits", with(valid.clone(), "sender", json!("0192:12345678")), Expected::Field("sender")),
            ("recipients missing", with(valid.clone(), "recipients", Value::Null), Expected::Field("recipients")),
            ("recipients empty", with(valid.clone(), "recipients", json!([])), Expected::Field("recipients")),
            ("recipient not an organisation", with(valid.clone(), "recipients", json!(["not-an-org"])), Expected::Field("recipients")),
            ("recipient with 10 digits", with(valid.clone(), "recipients", json!(["0192:1234567890"])), Expected::Field("recipients")),
            ("propertyList with 11 entries", with(valid.clone(), "propertyList", properties(11, 2, 1)), Expected::Field("propertyList")),
            ("propertyList key over 50", with(valid.clone(), "propertyList", properties(1, 51, 1)), Expected::Field("propertyList")),
            ("propertyList value over 3000", with(valid.clone(), "propertyList", properties(1, 2, 3001)), Expected::Field("propertyList")),
            ("checksum upper case", with(valid.clone(), "checksum", json!("D41D8CD98F00B204E9800998ECF8427E")), Expected::Field("checksum")),
            ("checksum of 31 characters", with(valid.clone(), "checksum", json!("d41d8cd98f00b204e9800998ecf8427")), Expected::Field("checksum")),
            // Altinn checks only length and case at initialize; the upload compares the MD5.
            ("checksum not hex", with(valid.clone(), "checksum", json!("g".repeat(32))), Expected::Status(200)),
            ("disabling the virus scan without approval", with(valid.clone(), "disableVirusScan", json!(true)), Expected::Code(400, 20)),
            // Altinn's decision point refuses a resource the broker has no settings for.
            ("resource never configured for the broker", with(valid.clone(), "resourceId", json!("unconfigured")), Expected::Code(401, 6)),
            // Limits reached exactly are fine.
            ("10 properties, 50-char keys, 3000-char values", with(valid.clone(), "propertyList", properties(10, 50, 3000)), Expected::Status(200)),
            ("255-character file name", with(valid.clone(), "fileName", long(255)), Expected::Status(200)),
            ("urn organisation identifiers", with(with(valid.clone(), "sender", json!(urn(SENDER))), "recipients", json!([urn(RECIPIENT)])), Expected::Status(200)),
            ("lower-case checksum", with(valid.clone(), "checksum", json!("d41d8cd98f00b204e9800998ecf8427e")), Expected::Status(200)),
        ];
        s.publish_resource("unconfigured", &AccessList::Disabled).await;
        let mut checks = Checklist::new();
        for (name, body, expected) in cases {
            checks.check(name, &s.initialize(&s.sender.write, body).await, expected);
        }
        let malformed = s
            .send(
                s.request(reqwest::Method::POST, "/broker/api/v1/filetransfer")
                    .bearer_auth(&s.sender.write)
                    .header("content-type", "application/json")
                    .body("{\"resourceId\": "),
            )
            .await;
        checks.check("malformed JSON", &malformed, Expected::Status(400));
        // The caller must be allowed to act for the sender: Altinn's 401 with code 6.
        let someone_else = with(valid.clone(), "sender", json!(party(STRANGER)));
        checks.check("sender is not the caller", &s.initialize(&s.sender.write, someone_else).await, Expected::Code(401, 6));
        checks.assert_all_passed();
    }
}

on_each_database! {
    /// Resource settings: each limit and format with its code, and the accepted maxima.
    async fn resource_settings_refuse_each_bad_value_with_its_code(db: Database) {
        let s = Scenario::start(db).await;
        let id = broker_tests::scenario::RESOURCE;
        let cases: Vec<(&str, Value, Expected)> = vec![
            ("negative max size", json!({"maxFileTransferSize": -1}), Expected::Code(400, 11)),
            ("zero max size", json!({"maxFileTransferSize": 0}), Expected::Code(400, 12)),
            ("max size over the virus-scan limit (50 GB)", json!({"maxFileTransferSize": 50_000_000_001_u64}), Expected::Code(400, 13)),
            ("max size over the global limit (32 × 50,000 MiB)", json!({"maxFileTransferSize": 1_677_721_600_001_u64}), Expected::Code(400, 22)),
            ("time to live not ISO-8601", json!({"maxFileTransferSize": 1000, "fileTransferTimeToLive": "30 days"}), Expected::Code(400, 14)),
            ("time to live over 365 days", json!({"maxFileTransferSize": 1000, "fileTransferTimeToLive": "P366D"}), Expected::Code(400, 15)),
            ("grace period not ISO-8601", json!({"maxFileTransferSize": 1000, "purgeFileTransferGracePeriod": "2 hours"}), Expected::Code(400, 17)),
            ("grace period over 24 hours", json!({"maxFileTransferSize": 1000, "purgeFileTransferGracePeriod": "PT25H"}), Expected::Code(400, 18)),
            ("the maxima", json!({"maxFileTransferSize": 1000, "fileTransferTimeToLive": "P365D", "purgeFileTransferGracePeriod": "PT24H", "purgeFileTransferAfterAllRecipientsConfirmed": false}), Expected::Status(204)),
        ];
        let mut checks = Checklist::new();
        for (name, body, expected) in cases {
            checks.check(name, &s.put_settings(id, body).await, expected);
        }
        // Altinn's model rule refuses it before its handler (whose code 23 is then unreachable).
        checks.check(
            "the manifest shim without legacy service codes",
            &s.put_settings(id, json!({"maxFileTransferSize": 1000, "useManifestFileShim": true})).await,
            Expected::Field(""),
        );
        checks.check(
            "settings of a resource the registry does not know",
            &s.put_settings("no-such-resource", json!({"maxFileTransferSize": 1000})).await,
            Expected::Code(403, 5),
        );
        let stored = s.get_as(&s.owner, &format!("/broker/api/v1/resource/{id}")).await.ok_json();
        // Durations come back as .NET TimeSpans, as Altinn writes them.
        let wanted = json!({"maxFileTransferSize": 1000, "fileTransferTimeToLive": "365.00:00:00", "purgeFileTransferGracePeriod": "1.00:00:00", "purgeFileTransferAfterAllRecipientsConfirmed": false});
        for (field, value) in wanted.as_object().expect("an object") {
            if &stored[field] != value {
                checks.fail("the maxima are stored", format!("{field} is {} in {stored}", stored[field]));
            }
        }
        checks.check(
            "settings need the service-owner scope",
            &s.call(&s.sender.both, reqwest::Method::PUT, &format!("/broker/api/v1/resource/{id}"), Some(json!({"maxFileTransferSize": 5}))).await,
            Expected::Status(403),
        );
        checks.assert_all_passed();
    }
}

on_each_database! {
    /// Size limits (code 16, from Content-Length and while streaming) and the access list
    /// (code 28).
    async fn size_limits_and_access_lists_refuse_with_their_codes(db: Database) {
        let s = Scenario::start_with(
            Scenario::options(db),
            AccessList::Members(vec![SENDER.to_owned(), RECIPIENT.to_owned()]),
        )
        .await;
        let mut checks = Checklist::new();
        let resource = broker_tests::scenario::RESOURCE;
        s.put_settings(resource, json!({"maxFileTransferSize": 1000})).await.expect_status(204);

        let mut both = s.initialize_body();
        both["recipients"] = json!([party(RECIPIENT), party(OTHER_RECIPIENT)]);
        checks.check("a recipient off the access list", &s.initialize(&s.sender.write, both).await, Expected::Code(400, 28));

        let exact = s.initialized(s.initialize_body()).await;
        checks.check("exactly the maximum size", &s.upload(&s.sender.write, &exact, pattern(1000)).await, Expected::Status(200));
        let over = s.initialized(s.initialize_body()).await;
        checks.check("one byte over, by Content-Length", &s.upload(&s.sender.write, &over, pattern(1001)).await, Expected::Code(400, 16));
        let streamed = s.initialized(s.initialize_body()).await;
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..4).map(|_| Ok(pattern(600))).collect();
        let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
        checks.check("over the maximum while streaming", &s.upload(&s.sender.write, &streamed, body).await, Expected::Code(400, 16));
        for (name, id) in [("by Content-Length", &over), ("while streaming", &streamed)] {
            let overview = s.overview(&s.sender.write, id).await.ok_json();
            if overview["fileTransferStatus"] == "Published" {
                checks.fail(name, format!("an oversized upload was published: {overview}"));
            }
        }
        checks.assert_all_passed();
    }
}

on_each_database! {
    /// A resource with a required party: it must be a recipient (code 26) and then the only one
    /// (code 27).
    async fn a_required_party_must_be_the_only_recipient(db: Database) {
        let s = Scenario::start(db).await;
        let resource = broker_tests::scenario::RESOURCE;
        s.put_settings(resource, json!({"maxFileTransferSize": 1000, "requiredParty": party(RECIPIENT)}))
            .await
            .expect_status(204);
        let mut checks = Checklist::new();
        let body = |recipients: Vec<&str>| {
            with(s.initialize_body(), "recipients", json!(recipients.into_iter().map(party).collect::<Vec<_>>()))
        };
        checks.check(
            "the required party is not a recipient",
            &s.initialize(&s.sender.write, body(vec![OTHER_RECIPIENT])).await,
            Expected::Code(400, 26),
        );
        checks.check(
            "the required party among others",
            &s.initialize(&s.sender.write, body(vec![RECIPIENT, OTHER_RECIPIENT])).await,
            Expected::Code(400, 27),
        );
        checks.check(
            "the required party alone",
            &s.initialize(&s.sender.write, body(vec![RECIPIENT])).await,
            Expected::Status(200),
        );
        checks.assert_all_passed();
    }
}
