//! The lifecycle's HTTP surface end to end, on SQLite (embedded) and PostgreSQL: an external
//! malware scanner's verdicts through `POST /broker/api/v1/webhooks/malwarescanresults`, and the
//! service owner's view of a resource's transfers by status (its monthly statistics are
//! `monthly_statistics`).

use broker_tests::scenario::{RESOURCE, SENDER};
use broker_tests::{AccessList, Database, Scenario, on_each_database};
use reqwest::Method;
use serde_json::{Value, json};

const WEBHOOK: &str = "/broker/api/v1/webhooks/malwarescanresults";
const SCANNER: &str = "scanner-credential-for-tests";

fn verdict(id: &str, verdict: &str) -> Option<Value> {
    Some(json!({"fileTransferId": id, "scanResultType": verdict, "malwareName": "Eicar"}))
}

/// Uploads `bytes` to a new transfer; the scanner holds it in UploadProcessing.
async fn uploaded(s: &Scenario, bytes: &'static [u8]) -> String {
    let id = s.initialized(s.initialize_body()).await;
    s.upload(&s.sender.write, &id, bytes)
        .await
        .expect_status(200);
    s.wait_for_status(&s.sender.write, &id, "UploadProcessing")
        .await;
    id
}

fn bytes_of(s: &Scenario, id: &str) -> usize {
    s.stored_files()
        .iter()
        .filter(|path| path.to_string_lossy().contains(id))
        .count()
}

on_each_database! {
    async fn an_external_scanners_verdict_publishes_or_fails_the_transfer(db: Database) {
        let options = Scenario::options(db).env("BROKER_MALWARE_SCAN_TOKEN", SCANNER);
        let s = Scenario::start_with(options, AccessList::Disabled).await;

        let clean = uploaded(&s, b"clean bytes").await;
        s.call(SCANNER, Method::POST, WEBHOOK, verdict(&clean, "No threats found"))
            .await
            .expect_status(200);
        s.wait_for_status(&s.sender.write, &clean, "Published").await;
        s.download(&s.recipient.read, &clean, None).await.expect_status(200);

        let infected = uploaded(&s, b"EICAR in here").await;
        assert_eq!(bytes_of(&s, &infected), 1);
        s.call(SCANNER, Method::POST, WEBHOOK, verdict(&infected, "Malicious"))
            .await
            .expect_status(200);
        s.wait_for_status(&s.sender.write, &infected, "Failed").await;
        assert_eq!(bytes_of(&s, &infected), 0, "the bytes are deleted");
        s.download(&s.recipient.read, &infected, None)
            .await
            .assert_code(403, 7);

        // Refused: a wrong credential, a token instead of it, none, an unknown transfer, and a
        // verdict before the upload.
        let waiting = uploaded(&s, b"waiting").await;
        s.call("wrong", Method::POST, WEBHOOK, verdict(&waiting, "Malicious"))
            .await
            .assert_problem(401);
        s.call(&s.sender.write, Method::POST, WEBHOOK, verdict(&waiting, "Malicious"))
            .await
            .assert_problem(401);
        s.call("", Method::POST, WEBHOOK, verdict(&waiting, "Malicious"))
            .await
            .assert_problem(401);
        let unknown = uuid::Uuid::new_v4().to_string();
        s.call(SCANNER, Method::POST, WEBHOOK, verdict(&unknown, "Malicious"))
            .await
            .assert_code(404, 1);
        let early = s.initialized(s.initialize_body()).await;
        // 503 is the reference's answer here; the test kit treats every 5xx as a broker fault,
        // so this one call goes around it.
        let too_early = reqwest::Client::new()
            .post(format!("{}{WEBHOOK}", s.base_url()))
            .bearer_auth(SCANNER)
            .json(&verdict(&early, "NoThreatsFound"))
            .send()
            .await
            .unwrap();
        assert_eq!(too_early.status(), 503);
        let problem: Value = too_early.json().await.unwrap();
        assert_eq!(problem["code"], "BRO-00030", "{problem}");
        let overview = s.overview(&s.sender.write, &waiting).await.ok_json();
        assert_eq!(overview["fileTransferStatus"], "UploadProcessing");
    }
}

on_each_database! {
    async fn the_owner_lists_a_resources_transfers_by_status(db: Database) {
        let s = Scenario::start(db).await;
        let published = s.published(b"twelve bytes").await;
        let waiting = s.initialized(s.initialize_body()).await;

        let list = |status: &'static str| {
            let s = &s;
            async move {
                let query = format!("resourceId={RESOURCE}&status={status}&role=ServiceOwner");
                s.search(&s.owner, &query).await.ok_json()
            }
        };
        assert_eq!(list("Published").await, json!([published]));
        assert_eq!(list("Initialized").await, json!([waiting]));
        assert_eq!(list("Failed").await, json!([]));
        // The sender is not the owner (the owner sent none of these).
        assert_ne!(SENDER, broker_tests::DIGDIR);
        // Only the owner, and only with its scope.
        let query = format!("resourceId={RESOURCE}&role=ServiceOwner");
        s.search(&s.sender.write, &query).await.expect_status(403);
    }
}
