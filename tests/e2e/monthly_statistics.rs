//! A service owner's monthly statistics end to end over HTTP, on SQLite (embedded) and
//! PostgreSQL, mirroring Altinn's `ServiceOwnerStatisticsControllerTests`: the CSV of real
//! transfers with Altinn's headers, rows and counts, the vendor columns, the JSON view, and every
//! refusal in Altinn's order.

use broker_tests::reply::Reply;
use broker_tests::scenario::{OTHER_RECIPIENT, RECIPIENT, RESOURCE, SENDER, SERVICE_OWNER, party};
use broker_tests::{Database, Scenario, on_each_database};
use chrono::Datelike;
use reqwest::Method;
use serde_json::json;

const PATH: &str = "/broker/api/v1/statistics/monthly";
const HEADER: &str = "year,month,resourceId,senderVendor,recipientVendor,sender,recipient,\
    totalFileTransfers,uploadCount,totalTransferDownloadAttempts,transfersWithDownloadConfirmed\n";

/// `GET PATH?query` with `token`, and `Accept: accept` when given.
async fn report(s: &Scenario, token: &str, query: &str, accept: Option<&str>) -> Reply {
    let mut request = s
        .request(Method::GET, &format!("{PATH}?{query}"))
        .bearer_auth(token);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    s.send(request).await
}

/// The CSV's lines after the header, for the month `ym` ("2026,1"): each of `rows` prefixed
/// with it, and `\n` after each.
fn csv(ym: &str, rows: &[&str]) -> String {
    let mut csv = HEADER.to_owned();
    for row in rows {
        csv.push_str(&format!("{ym},{RESOURCE},{row}\n"));
    }
    csv
}

on_each_database! {
    async fn a_service_owner_gets_altinns_monthly_statistics(db: Database) {
        let s = Scenario::start(db).await;
        // One transfer to two recipients, downloaded by both and confirmed by the first, and
        // one to the first recipient that is never uploaded.
        let mut both = s.initialize_body();
        both["recipients"] = json!([party(RECIPIENT), party(OTHER_RECIPIENT)]);
        let shared = s.published_with(both, b"twelve bytes").await;
        s.download(&s.recipient.read, &shared, None).await.expect_status(200);
        s.confirm(&s.recipient.read, &shared).await.expect_status(204);
        s.download(&s.other_recipient.read, &shared, None).await.expect_status(200);
        s.initialized(s.initialize_body()).await;
        let overview = s.overview(&s.sender.write, &shared).await.ok_json();
        let created = chrono::DateTime::parse_from_rfc3339(overview["created"].as_str().unwrap())
            .unwrap();
        let (year, month) = (created.year(), created.month());
        let ym = format!("{year},{month}");
        let query = format!("year={year}&month={month}");
        let (sender, first, second) = (party(SENDER), party(RECIPIENT), party(OTHER_RECIPIENT));

        // Per sender and recipient: the first recipient counts both transfers, one published,
        // its one download and its confirmation; the second the shared transfer, unconfirmed.
        let end_users = csv(
            &ym,
            &[
                &format!(",,{sender},{first},2,1,1,1"),
                &format!(",,{sender},{second},1,1,1,0"),
            ],
        );
        let file_name = format!("monthly_statistics_{RESOURCE}_{year:04}-{month:02}.csv");
        let answer = report(&s, &s.owner, &format!("resourceId={RESOURCE}&{query}"), None).await;
        let answer = answer.expect_status(200);
        assert_eq!(answer.content_type(), "text/csv");
        assert_eq!(
            answer.header("content-disposition"),
            Some(format!("attachment; filename={file_name}; filename*=UTF-8''{file_name}").as_str())
        );
        assert_eq!(answer.body, end_users);
        // A `urn:altinn:resource:` id names the same resource.
        let urn = format!("resourceId=urn:altinn:resource:{RESOURCE}&{query}");
        let answer = report(&s, &s.owner, &urn, None).await.expect_status(200);
        assert_eq!(answer.body, end_users);
        // Without a resource: every resource of the owner (here the one).
        let all = report(&s, &s.owner, &query, Some("*/*")).await.expect_status(200);
        assert_eq!(all.body, end_users);
        let file_name = format!("monthly_statistics_all-resources_{year:04}-{month:02}.csv");
        assert!(
            all.header("content-disposition").unwrap().contains(&file_name),
            "{:?}",
            all.header("content-disposition")
        );

        // With the vendors (here the parties' own organisations, as their clients are theirs):
        // the unuploaded transfer has no recipient vendor, so it is a row of its own.
        let vendors = report(&s, &s.owner, &format!("{query}&includeVendor=true"), None).await;
        assert_eq!(
            vendors.expect_status(200).body,
            csv(
                &ym,
                &[
                    &format!("{sender},,{sender},{first},1,0,0,0"),
                    &format!("{sender},{first},{sender},{first},1,1,1,1"),
                    &format!("{sender},{second},{sender},{second},1,1,1,0"),
                ]
            )
        );
        let only_vendors = format!("{query}&includeEndUser=false&includeVendor=true");
        let vendors = report(&s, &s.owner, &only_vendors, Some("text/csv")).await;
        assert_eq!(
            vendors.expect_status(200).body,
            csv(
                &ym,
                &[
                    &format!("{sender},,,,1,0,0,0"),
                    &format!("{sender},{first},,,1,1,1,1"),
                    &format!("{sender},{second},,,1,1,1,0"),
                ]
            )
        );

        // The JSON view: the same rows under the columns' names.
        let rows = report(&s, &s.owner, &query, Some("application/json")).await;
        assert_eq!(rows.content_type(), "application/json");
        let row = |recipient: &str, counts: [u64; 4]| {
            json!({
                "year": year, "month": month, "resourceId": RESOURCE,
                "senderVendor": "", "recipientVendor": "",
                "sender": sender, "recipient": recipient,
                "totalFileTransfers": counts[0], "uploadCount": counts[1],
                "totalTransferDownloadAttempts": counts[2],
                "transfersWithDownloadConfirmed": counts[3],
            })
        };
        assert_eq!(
            rows.ok_json(),
            json!([row(&first, [2, 1, 1, 1]), row(&second, [1, 1, 1, 0])])
        );

        // A month with nothing in it is the header line alone.
        let empty = report(&s, &s.owner, "year=2000&month=1", None).await;
        assert_eq!(empty.expect_status(200).body, HEADER);
    }
}

on_each_database! {
    async fn the_monthly_statistics_refuse_as_altinns_do(db: Database) {
        let s = Scenario::start(db).await;
        let owner = &s.owner;
        let problem = report(&s, owner, "year=2026&month=13", None).await.assert_code(400, 6003);
        assert_eq!(
            problem["detail"],
            "Invalid year or month. Provide a valid year and a month between 1 and 12."
        );
        report(&s, owner, "year=10000&month=1", None).await.assert_code(400, 6003);
        report(&s, owner, "month=1", None).await.assert_code(400, 6003);
        let neither = "year=2026&month=1&includeEndUser=false&includeVendor=false";
        let problem = report(&s, owner, neither, None).await.assert_code(400, 6005);
        assert_eq!(
            problem["detail"],
            "At least one of includeEndUser or includeVendor must be true."
        );
        // The month is checked before the projection, as Altinn does.
        let both_wrong = "year=2026&month=0&includeEndUser=false&includeVendor=false";
        report(&s, owner, both_wrong, None).await.assert_code(400, 6003);
        let problem = report(&s, owner, "year=abc&month=1", None).await.assert_problem(400);
        assert_eq!(
            problem["errors"]["Year"],
            json!(["The value 'abc' is not valid for Year."])
        );
        report(&s, owner, "resourceId=not-configured&year=2026&month=1", None)
            .await
            .assert_code(400, 25);

        // Another service owner may not read this owner's resource (but gets its own, empty).
        let other_owner = s
            .register_client(broker_tests::scenario::STRANGER, &[SERVICE_OWNER])
            .await
            .token(&[SERVICE_OWNER])
            .await;
        let theirs = format!("resourceId={RESOURCE}&year=2026&month=1");
        let problem = report(&s, &other_owner, &theirs, None).await.assert_code(401, 6);
        assert_eq!(
            problem["detail"],
            "You must use a bearer token that represents a system user with access to the \
             resource in the Resource Rights Registry"
        );
        let own = report(&s, &other_owner, "year=2026&month=1", None).await;
        assert_eq!(own.expect_status(200).body, HEADER);

        // A sender's token lacks the scope: Altinn's 403, no body.
        let forbidden = report(&s, &s.sender.write, "year=2026&month=1", None).await.expect_status(403);
        assert!(forbidden.body.is_empty(), "{}", forbidden.body);

        // Any other Accept is refused first, in Altinn's plain text.
        let refused = report(&s, owner, "year=2026&month=1", Some("text/html")).await;
        assert_eq!(refused.status, 406);
        assert_eq!(refused.header("content-type"), None);
        assert_eq!(
            refused.body,
            "This endpoint does not support the requested Accept header. Supported Accept \
             headers are: text/csv, application/json, */*."
        );
    }
}
