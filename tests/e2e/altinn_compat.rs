//! Altinn wire compatibility of the broker API, over real HTTP on SQLite and on PostgreSQL with
//! RabbitMQ: each scenario sends what Altinn's own clients send and checks that Broker answers as
//! Altinn's server (Altinn/altinn-broker, ASP.NET Core) does — status, `code`, field names and
//! JSON types, empty bodies, headers, input binding. Each names the Altinn test, request
//! collection or source file it mirrors. The resource registry's and Altinn Events' rules are in
//! `altinn_compat_registry` and `altinn_compat_events`.

use broker_tests::scenario::{
    OTHER_RECIPIENT, RECIPIENT, RESOURCE, SENDER, STRANGER, md5_hex, party, pattern, urn,
};
use broker_tests::{Database, Scenario, on_each_database};
use reqwest::Method;
use serde_json::{Value, json};

/// Altinn's detail texts (`src/Altinn.Broker.Application/Errors.cs`), word for word.
const NO_ACCESS: &str = "You must use a bearer token that represents a system user with access to \
                         the resource in the Resource Rights Registry";
const NOT_FOUND: &str = "The requested file transfer was not found";

const SERVICE_OWNER: &str = "altinn:serviceowner";

/// `POST /broker/api/v1/filetransfer` with a raw body and content type.
async fn initialize_raw(
    s: &Scenario,
    token: &str,
    content_type: &str,
    body: &str,
) -> broker_tests::Reply {
    s.send(
        s.request(Method::POST, "/broker/api/v1/filetransfer")
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body.to_owned()),
    )
    .await
}

on_each_database! {
    /// Input binding as ASP.NET binds it: the Postman collection's `FileName` (PascalCase) and
    /// string numbers, Bruno's PascalCase resource settings and `{"Name"}`, unknown members
    /// ignored, a `urn:altinn:resource:` resource id (`Initialize_WithUrnResourceId_Success`),
    /// and search parameters as `Search_RoleWithFromToAndStatus_Composes_AsSender` sends them
    /// (`yyyy-MM-dd HH:mm:ss`, `role=sender`), enums by number.
    async fn requests_bind_as_asp_net_binds_them(db: Database) {
        let s = Scenario::start(db).await;
        // Bruno's resource settings: PascalCase, nulls; Postman's: numbers as strings.
        s.put_settings(RESOURCE, json!({
            "MaxFileTransferSize": 2147483648_u64, "FileTransferTimeToLive": "P30D",
            "PurgeFileTransferAfterAllRecipientsConfirmed": true, "PurgeFileTransferGracePeriod": "PT2H",
            "UseManifestFileShim": false, "ExternalServiceCodeLegacy": null,
            "ExternalServiceEditionCodeLegacy": null, "RequiredParty": null,
        })).await.expect_status(204);
        s.put_settings(RESOURCE, json!({
            "resourceId": RESOURCE, "maxFileTransferSize": "1112391230", "fileTransferTimeToLive": "PT2H",
            "PurgeFileTransferAfterAllRecipientsConfirmed": false, "purgeFileTransferGracePeriod": "PT14H",
        })).await.expect_status(204);
        let settings = s.get_as(&s.owner, &format!("/broker/api/v1/resource/{RESOURCE}")).await.ok_json();
        assert_eq!(settings["maxFileTransferSize"], 1112391230, "a number sent as a string: {settings}");
        assert_eq!(settings["fileTransferTimeToLive"], "02:00:00", "{settings}");
        assert_eq!(settings["purgeFileTransferAfterAllRecipientsConfirmed"], false, "{settings}");
        assert_eq!(settings["purgeFileTransferGracePeriod"], "14:00:00", "{settings}");

        // Postman's initialize: `FileName` in PascalCase, the rest camelCase, an unknown member.
        let body = json!({
            "FileName": "system.ini", "resourceId": format!("urn:altinn:resource:{RESOURCE}"),
            "sendersFileTransferReference": "archiveno-20425", "sender": party(SENDER),
            "recipients": [party(RECIPIENT)], "propertyList": {"caseNumber": "123"},
            "somethingAltinnDoesNotKnow": [1, 2, 3],
        });
        let id = s.initialize(&s.sender.write, body).await.ok_json()["fileTransferId"]
            .as_str().expect("an id").to_owned();
        let overview = s.overview(&s.sender.write, &id).await.ok_json();
        assert_eq!(overview["fileName"], "system.ini");
        assert_eq!(overview["resourceId"], RESOURCE, "the URN prefix is dropped");
        s.upload(&s.sender.write, &id, b"bytes".to_vec()).await.expect_status(200);
        s.wait_for_status(&s.sender.write, &id, "Published").await;

        let found = |query: String| {
            let s = &s;
            async move { s.search(&s.sender.write, &query).await.ok_json() }
        };
        let now = chrono::Utc::now();
        let local = |minutes: i64| (now + chrono::TimeDelta::minutes(minutes)).format("%Y-%m-%d %H:%M:%S").to_string();
        let query = format!("resourceId={RESOURCE}&from={}&to={}&status=Published&role=sender", local(-2), local(2));
        assert_eq!(found(query).await, json!([id]), "ASP.NET's DateTimeOffset forms and names in any case");
        assert_eq!(found(format!("RESOURCEID={RESOURCE}&Status=3")).await, json!([id]), "an enum by its number");
        let bare_date = (now - chrono::TimeDelta::days(1)).format("%Y-%m-%d").to_string();
        assert_eq!(found(format!("resourceId={RESOURCE}&from={bare_date}")).await, json!([id]), "a bare date");

        // Bruno's service owner registration: `{"Name": …}` (already registered here: 7002).
        let again = s.call(&s.owner, Method::POST, "/broker/api/v1/serviceowner", Some(json!({"Name": "Digdir"}))).await;
        assert_eq!(again.assert_code(409, 7002)["detail"], "Service owner already exists");
    }
}

on_each_database! {
    /// What cannot be bound is ASP.NET's validation problem: the failing member under its JSON
    /// path, the body parameter reported missing, no `detail`; validation messages as
    /// `FileTransferControllerTests.Initialize_With11Properties_ValidationFailure`,
    /// `…InvalidKeyLength…` and `…InvalidValueLength…` read them.
    async fn bad_input_is_asp_nets_validation_problem(db: Database) {
        let s = Scenario::start(db).await;
        let problem = initialize_raw(&s, &s.sender.write, "application/json", r#"{"fileName": 5}"#)
            .await.assert_problem(400);
        assert_eq!(problem["title"], "One or more validation errors occurred.");
        assert!(problem.get("detail").is_none(), "{problem}");
        assert!(problem["errors"]["$.fileName"][0].as_str().unwrap_or_default()
            .starts_with("The JSON value could not be converted to System.String."), "{problem}");
        assert_eq!(problem["errors"]["initializeExt"][0], "The initializeExt field is required.");

        let mut body = s.initialize_body();
        body["propertyList"] = (0..11).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>().into();
        let problem = s.initialize(&s.sender.write, body).await.assert_problem(400);
        assert_eq!(problem["errors"]["PropertyList"][0], "PropertyList can contain at most 10 properties");
        let mut body = s.initialize_body();
        body["propertyList"] = json!({"k".repeat(54): "v"});
        let problem = s.initialize(&s.sender.write, body).await.assert_problem(400);
        assert!(problem["errors"]["PropertyList"][0].as_str().unwrap_or_default()
            .starts_with("PropertyList Key can not be longer than 50"), "{problem}");
        let mut body = s.initialize_body();
        body["propertyList"] = json!({"k": "A".repeat(3001)});
        let problem = s.initialize(&s.sender.write, body).await.assert_problem(400);
        assert!(problem["errors"]["PropertyList"][0].as_str().unwrap_or_default()
            .starts_with("PropertyList Value can not be longer than 3000"), "{problem}");

        // Left out, a member takes the model's default and the data annotations say so.
        let problem = s.initialize(&s.sender.write, json!({"sender": party(SENDER)})).await.assert_problem(400);
        let errors = &problem["errors"];
        assert_eq!(errors["FileName"], json!(["The FileName field is required.",
            "The field FileName must be a string with a minimum length of 1 and a maximum length of 255."]));
        assert_eq!(errors["Recipients"], json!(["One or more recipients are required"]));
        assert_eq!(errors["SendersFileTransferReference"], json!([
            "The field SendersFileTransferReference must be a string with a minimum length of 1 and a maximum length of 4096."]));
        let problem = s.search(&s.sender.write, "status=Published").await.assert_problem(400);
        assert_eq!(problem["errors"]["resourceId"], json!(["The resourceId field is required."]));
        let problem = s.search(&s.sender.write, &format!("resourceId={RESOURCE}&role=Both")).await.assert_problem(400);
        assert_eq!(problem["errors"]["role"], json!(["The value 'Both' is not valid."]));
    }
}

on_each_database! {
    /// The models as Altinn's: `published` a nullable time (null until published) and not part
    /// of the details (`GetFileTransferOverview_PublishedFieldIsVisible_NullBeforePublished_
    /// HasValueAfterPublished`), `expirationTime` always set, `checksum` `""` when left out and
    /// the file's MD5 once uploaded, `fileTransferSize` 0 before upload, the sender echoed as it
    /// was sent and the recipients as `0192:`, times as `DateTimeOffset` writes them.
    async fn the_overview_and_details_are_altinns_models(db: Database) {
        let s = Scenario::start(db).await;
        let mut body = s.initialize_body();
        body["sender"] = json!(urn(SENDER));
        body["recipients"] = json!([urn(RECIPIENT)]);
        let id = s.initialized(body).await;
        let overview = s.overview(&s.sender.write, &id).await.ok_json();
        assert_eq!(overview["published"], Value::Null, "{overview}");
        assert_eq!(overview["checksum"], "", "left out: {overview}");
        assert_eq!(overview["fileTransferSize"], 0);
        assert_eq!(overview["fileTransferStatusText"], "Ready for upload");
        assert!(overview["expirationTime"].as_str().is_some_and(|t| t.ends_with("+00:00")), "{overview}");
        assert_eq!(overview["sender"], urn(SENDER), "echoed as sent");
        assert_eq!(overview["recipients"][0]["recipient"], party(RECIPIENT));
        assert_eq!(overview["recipients"][0]["currentRecipientFileTransferStatusText"], "Initialized");

        let bytes = b"the file".to_vec();
        s.upload(&s.sender.write, &id, bytes.clone()).await.expect_status(200);
        let overview = s.wait_for_status(&s.sender.write, &id, "Published").await;
        let published = overview["published"].as_str().unwrap_or_else(|| panic!("a time: {overview}"));
        assert!(chrono::DateTime::parse_from_rfc3339(published).is_ok(), "{published}");
        assert_eq!(overview["checksum"], md5_hex(&bytes), "the file's MD5 once uploaded");
        assert_eq!(overview["fileTransferStatusText"], "Ready for download");
        let details = s.details(&s.sender.write, &id).await.ok_json();
        assert!(details.get("published").is_none(), "not part of the details: {details}");
        assert!(details["fileTransferStatusHistory"].is_array());

        // `"checksum": null` (Altinn's load test sends it) stays null until the upload.
        let mut body = s.initialize_body();
        body["checksum"] = Value::Null;
        let nulled = s.initialized(body).await;
        assert_eq!(s.overview(&s.sender.write, &nulled).await.ok_json()["checksum"], Value::Null);
    }
}

on_each_database! {
    /// Status semantics as Altinn's: `NormalFlow_WhenAllIsOK_Success` downloads again after
    /// confirming (200 in AllConfirmedDownloaded); a caller who is not a party gets 401 with
    /// code 6 on overview, details, upload, download and confirm (Altinn's decision point); an
    /// unknown id 404 with code 1 and every member of Altinn's problem
    /// (`InitializeFileTransfer_InvalidFileTransferId_ReturnsLegacyProblemDetailsFields`).
    async fn parties_and_statuses_as_altinn_decides_them(db: Database) {
        let s = Scenario::start(db).await;
        let bytes = pattern(1000);
        let id = s.published(&bytes).await;
        let pending = s.initialized(s.initialize_body()).await;
        for (name, reply) in [
            ("overview", s.overview(&s.stranger.both, &id).await),
            ("details", s.details(&s.stranger.both, &id).await),
            ("upload", s.upload(&s.stranger.both, &pending, b"x".to_vec()).await),
            ("download", s.download(&s.stranger.both, &id, None).await),
            ("confirm", s.confirm(&s.stranger.both, &id).await),
        ] {
            let problem = reply.assert_code(401, 6);
            assert_eq!(problem["detail"], NO_ACCESS, "{name}");
        }
        let unknown = uuid::Uuid::new_v4().to_string();
        let problem = s.download(&s.recipient.read, &unknown, None).await.assert_code(404, 1);
        assert_eq!(problem["title"], "Not Found");
        assert_eq!(problem["detail"], NOT_FOUND);
        assert_eq!(problem["code"], "BRO-00001");
        assert_eq!(problem["statusDescription"], "Not Found");
        assert!(problem["traceId"].as_str().is_some_and(|t| t.starts_with("00-")), "{problem}");

        s.download(&s.recipient.read, &id, None).await.expect_status(200);
        s.confirm(&s.recipient.read, &id).await.expect_status(204);
        s.wait_for_status(&s.sender.write, &id, "AllConfirmedDownloaded").await;
        let again = s.download(&s.recipient.read, &id, None).await.expect_status(200);
        assert!(again.bytes == bytes);
        // Once AllConfirmedDownloaded, confirming again is Altinn's code 10.
        s.confirm(&s.recipient.read, &id).await.assert_code(400, 10);
        let details = s.details(&s.recipient.read, &id).await.ok_json();
        let starts = details["recipientFileTransferStatusHistory"].as_array().expect("history")
            .iter().filter(|row| row["recipientFileTransferStatusCode"] == "DownloadStarted").count();
        assert_eq!(starts, 2, "every whole download is recorded: {details}");
        let recipient = &details["recipients"][0];
        assert_eq!(recipient["currentRecipientFileTransferStatusCode"], "DownloadConfirmed", "the highest status");

        // Ranged downloads within five minutes count once (`DownloadFile_ChunkedRangeDownloads_
        // ReassembleToFullFile`); a range on nothing is Altinn's 416 with code 29.
        let ranged = s.published(&bytes).await;
        for range in ["bytes=0-99", "bytes=100-"] {
            s.download(&s.recipient.read, &ranged, Some(range)).await.expect_status(206);
        }
        let details = s.details(&s.recipient.read, &ranged).await.ok_json();
        let starts = details["recipientFileTransferStatusHistory"].as_array().expect("history").iter()
            .filter(|row| row["recipientFileTransferStatusCode"] == "DownloadStarted")
            .count();
        assert_eq!(starts, 1, "{details}");
        let problem = s.download(&s.recipient.read, &ranged, Some("bytes=1000-")).await.assert_code(416, 29);
        assert_eq!(problem["detail"], "The requested byte range is not satisfiable.");
    }
}

on_each_database! {
    /// The sender is authorised by the access registry's decision: acting for another
    /// organisation is code 6 (`Initialize…` with the no-access resource), and a required
    /// party is Altinn's rule (`InitializeFileTransfer_WithRequiredParty_*`): the sender, or the
    /// one and only recipient.
    async fn initialize_asks_the_decision_and_applies_the_required_party(db: Database) {
        let s = Scenario::start(db).await;
        let mut body = s.initialize_body();
        body["sender"] = json!(party(STRANGER));
        assert_eq!(s.initialize(&s.sender.write, body).await.assert_code(401, 6)["detail"], NO_ACCESS);

        s.put_settings(RESOURCE, json!({"requiredParty": party(RECIPIENT)})).await.expect_status(204);
        let mut body = s.initialize_body();
        body["recipients"] = json!([party(OTHER_RECIPIENT)]);
        let problem = s.initialize(&s.sender.write, body).await.assert_code(400, 26);
        assert_eq!(problem["detail"], "The resource requires the service owner party to be present as part of the transaction.");
        let mut body = s.initialize_body();
        body["recipients"] = json!([party(RECIPIENT), party(OTHER_RECIPIENT)]);
        let problem = s.initialize(&s.sender.write, body).await.assert_code(400, 27);
        assert_eq!(problem["detail"], "When required party is specified and the required party is not the sender, the number of recipients can only be one.");
        s.initialize(&s.sender.write, s.initialize_body()).await.expect_status(200);
    }
}

on_each_database! {
    /// Service owner and resource settings as Altinn answers them (`ServiceOwnerController`,
    /// `ResourceControllerTests`): POST 200 with an empty body and 409 code 7002 again; GET 404
    /// code 7004 for an organisation that never registered, and Altinn's storage provider types;
    /// a PUT of settings 204 with no body; a GET before the resource is configured 400 code 25
    /// (`GetResource_WithResourceNotConfigured_ReturnsBadRequest`); durations read back as
    /// .NET TimeSpans; problems of these JSON-producing actions as `application/json`.
    async fn service_owner_and_resource_settings_as_altinn(db: Database) {
        let s = Scenario::start(db).await;
        let owner = s.get_as(&s.owner, "/broker/api/v1/serviceowner").await.ok_json();
        assert_eq!(owner["storageProviders"][0]["type"], "AltinnAzureWithoutVirusScan", "{owner}");
        assert_eq!(owner["storageProviders"][0]["deploymentStatus"], "Ready");

        let newcomer = s.register_client(STRANGER, &[SERVICE_OWNER]).await.token(&[SERVICE_OWNER]).await;
        let unknown = s.get_as(&newcomer, "/broker/api/v1/serviceowner").await;
        assert_eq!(unknown.assert_code(404, 7004)["detail"], "Service owner not found");
        assert_eq!(unknown.content_type(), "application/json; charset=utf-8", "[Produces] makes problems JSON");
        let registered = s.call(&newcomer, Method::POST, "/broker/api/v1/serviceowner", Some(json!({"name": "Stranger AS"}))).await.expect_status(200);
        assert!(registered.body.is_empty(), "Altinn answers Ok() with no body: {}", registered.body);
        s.call(&newcomer, Method::POST, "/broker/api/v1/serviceowner", Some(json!({"name": "Stranger AS"}))).await.assert_code(409, 7002);
        let blank = s.call(&newcomer, Method::POST, "/broker/api/v1/serviceowner", Some(json!({"name": null}))).await.assert_problem(400);
        assert_eq!(blank["errors"]["Name"], json!(["The Name field is required."]));

        s.publish_resource("not-yet-configured", &broker_tests::AccessList::Disabled).await;
        let problem = s.get_as(&s.owner, "/broker/api/v1/resource/not-yet-configured").await.assert_code(400, 25);
        assert_eq!(problem["detail"], "The resource has not been configured.");
        let stored = s.put_settings("not-yet-configured", json!({"fileTransferTimeToLive": "P1Y", "purgeFileTransferGracePeriod": "PT.5S"})).await.expect_status(204);
        assert!(stored.body.is_empty());
        let settings = s.get_as(&s.owner, "/broker/api/v1/resource/not-yet-configured").await.ok_json();
        assert_eq!(settings["fileTransferTimeToLive"], "365.00:00:00", "{settings}");
        assert_eq!(settings["purgeFileTransferGracePeriod"], "00:00:00.5000000", "{settings}");
        let problem = s.put_settings(RESOURCE, json!({"fileTransferTimeToLive": "P1W"})).await.assert_code(400, 14);
        assert_eq!(problem["detail"], "Invalid file transfer time to live format. Should follow ISO8601 standard for duration. Example: 'P30D' for 30 days.");
        let problem = s.put_settings(RESOURCE, json!({"maxFileTransferSize": 50_000_000_001_u64})).await.assert_code(400, 13);
        assert!(problem["detail"].as_str().unwrap_or_default().contains("higher than 50GB"), "{problem}");

        // The monthly statistics are Altinn's CSV (`ServiceOwnerStatisticsControllerTests`).
        let csv = s.get_as(&s.owner, "/broker/api/v1/statistics/monthly?year=2026&month=1").await.expect_status(200);
        assert_eq!(csv.content_type(), "text/csv");
        assert!(csv.body.starts_with("year,month,resourceId,senderVendor,recipientVendor,sender,recipient,"), "{}", csv.body);
    }
}

on_each_database! {
    /// Headers and content types as Altinn's pipeline sets them: `nosniff` and `no-store` on
    /// answers; an `Accept` naming nothing the action produces is 406 before the token is looked
    /// at (`AcceptHeaderValidationTests`), quality factors ignored; a raw upload of another type
    /// is a 415 with no body (`[Consumes]`), a JSON initialize of another type a 415 problem
    /// after authentication; a missing token 401 with the bearer challenge and no body, a
    /// missing scope 403 with no body; a download's problems stay `application/problem+json`.
    async fn headers_and_content_types_as_altinns_pipeline(db: Database) {
        let s = Scenario::start(db).await;
        let reply = s.initialize(&s.sender.write, s.initialize_body()).await.expect_status(200);
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("cache-control"), Some("no-store"));

        let with_accept = |accept: &'static str, token: Option<String>| {
            let s = &s;
            async move {
                let mut request = s.request(Method::POST, "/broker/api/v1/filetransfer")
                    .header("accept", accept).json(&s.initialize_body());
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                s.send(request).await
            }
        };
        let refused = with_accept("application/octet-stream", None).await;
        assert_eq!(refused.status, 406, "before authentication: {}", refused.body);
        assert_eq!(refused.body, "This endpoint does not support the requested Accept header. Supported Accept headers are: application/json, */*.");
        assert_eq!(refused.header("content-type"), None);
        with_accept("text/plain; q=0.9, text/markdown; q=0.8, application/json; q=0.5", Some(s.sender.write.clone()))
            .await.expect_status(200);

        let id = s.initialized(s.initialize_body()).await;
        let wrong_type = s.send(s.request(Method::POST, &format!("/broker/api/v1/filetransfer/{id}/upload"))
            .header("content-type", "text/plain").body("bytes")).await;
        assert_eq!((wrong_type.status.as_u16(), wrong_type.body.as_str()), (415, ""), "routing refuses it, no token needed");
        let not_json = initialize_raw(&s, &s.sender.write, "text/plain", "{}").await.assert_problem(415);
        assert_eq!(not_json["title"], "Unsupported Media Type");

        let anonymous = s.get(&format!("/broker/api/v1/filetransfer/{id}")).await;
        assert_eq!((anonymous.status.as_u16(), anonymous.body.as_str()), (401, ""));
        assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
        let wrong_scope = s.download(&s.recipient.write, &id, None).await;
        assert_eq!((wrong_scope.status.as_u16(), wrong_scope.body.as_str()), (403, ""));

        let problem = s.download(&s.recipient.read, &id, None).await.assert_code(403, 7);
        assert!(problem.is_object());
        let download = s.download(&s.recipient.read, &id, None).await;
        assert_eq!(download.content_type(), "application/problem+json", "no [Produces] on download");
        let overview_problem = s.overview(&s.stranger.both, &id).await;
        assert_eq!(overview_problem.content_type(), "application/json; charset=utf-8");
        let trailing = s.get_as(&s.sender.write, &format!("/broker/api/v1/filetransfer/{id}/")).await;
        assert_eq!(trailing.status, 200, "a trailing slash routes as without it: {}", trailing.body);
    }
}

on_each_database! {
    /// Multipart initialize-and-upload with the parts in any order, as ASP.NET binds the whole
    /// form (`InitializeAndUploadFormDataTests.InitializeAndUpload_WhenAllIsOK_Success` with the
    /// file part first), and Altinn's `Metadata.*` names in its problems.
    async fn the_multipart_form_binds_in_any_order(db: Database) {
        let s = Scenario::start(db).await;
        let fields = vec![
            ("Metadata.FileName", "input.txt".to_owned()),
            ("Metadata.ResourceId", RESOURCE.to_owned()),
            ("Metadata.SendersFileTransferReference", "test-data".to_owned()),
            ("Metadata.Sender", party(SENDER)),
            ("Metadata.Recipients", party(RECIPIENT)),
            ("Metadata.PropertyList[key1]", "value1".to_owned()),
        ];
        let bytes = pattern(70_000);
        let created = s.initialize_and_upload_file_first(&s.sender.write, &fields, &bytes).await.ok_json();
        let id = created["fileTransferId"].as_str().expect("an id").to_owned();
        s.wait_for_status(&s.sender.write, &id, "Published").await;
        assert!(s.download(&s.recipient.read, &id, None).await.expect_status(200).bytes == bytes);
        let incomplete: Vec<_> = fields.into_iter().filter(|(name, _)| *name != "Metadata.FileName").collect();
        let problem = s.initialize_and_upload_file_first(&s.sender.write, &incomplete, &bytes).await.assert_problem(400);
        assert_eq!(problem["errors"]["Metadata.FileName"][0], "The FileName field is required.", "{problem}");
    }
}

on_each_database! {
    /// Maskinporten's grant without a `jti`, as Altinn's Bruno collection and tus clients make
    /// it: a token, then the broker API with it; the same assertion again is refused.
    async fn a_grant_without_jti_works_once(db: Database) {
        let s = Scenario::start(db).await;
        let client = s.register_client(SENDER, &[broker_tests::WRITE]).await;
        let assertion = client.assertion().scope(broker_tests::WRITE).without_jti();
        let token = client.request_token(&assertion).await.expect_status(200).json()["access_token"]
            .as_str().expect("a token").to_owned();
        s.initialize(&token, s.initialize_body()).await.expect_status(200);
        client.request_token(&assertion).await.assert_oauth_error(400, "invalid_grant");
    }
}

on_each_database! {
    /// The malware webhook takes Azure Event Grid as Altinn's does (`MalwareScanResultController
    /// Tests`): the subscription handshake answered with its code, a Defender for Storage
    /// result applied to the transfer its blob names (204), a duplicate accepted.
    async fn the_malware_webhook_takes_event_grid(db: Database) {
        const SCANNER: &str = "scanner-credential-for-compat";
        let options = Scenario::options(db).env("BROKER_MALWARE_SCAN_TOKEN", SCANNER);
        let s = Scenario::start_with(options, broker_tests::AccessList::Disabled).await;
        let webhook = "/broker/api/v1/webhooks/malwarescanresults";
        let handshake = json!([{
            "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66", "topic": "/subscriptions/x", "subject": "",
            "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://www.contoso.com/"},
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2018-01-25T22:12:19.4556811Z", "metadataVersion": "1", "dataVersion": "1",
        }]);
        let answer = s.call(SCANNER, Method::POST, webhook, Some(handshake)).await.expect_status(200);
        assert_eq!(answer.body, r#"{"validationResponse":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}"#);

        let id = s.initialized(s.initialize_body()).await;
        s.upload(&s.sender.write, &id, b"scan me".to_vec()).await.expect_status(200);
        s.wait_for_status(&s.sender.write, &id, "UploadProcessing").await;
        let result = json!({
            "data": {
                "blobUri": format!("https://account.blob.core.windows.net/brokerfiles/{id}"),
                "correlationId": "21c48159-e5ef-4376-ba96-4f8d6e0f1c7f", "eTag": "0x1",
                "scanFinishedTimeUtc": "2026-01-01T00:00:00Z", "scanResultDetails": null,
                "scanResultType": "No threats found",
            },
            "dataVersion": "1.0", "eventTime": "2023-12-08T08:11:44.9464641Z",
            "eventType": "Microsoft.Security.MalwareScanningResult",
            "id": "21c48159-e5ef-4376-ba96-4f8d6e0f1c7f", "metadataVersion": "1", "subject": "blobs", "topic": "/t",
        });
        s.call(SCANNER, Method::POST, webhook, Some(result.clone())).await.expect_status(204);
        let overview = s.wait_for_status(&s.sender.write, &id, "Published").await;
        assert_eq!(overview["fileTransferStatusText"], "Ready for download");
        s.call(SCANNER, Method::POST, webhook, Some(result)).await.expect_status(204);
    }
}
