//! The monthly statistics at the gateway: Altinn's CSV with its headers, the JSON view by
//! `Accept`, Altinn's 406 (before the token), and the query bound as ASP.NET binds it, against
//! the recording stand-in of the service.

use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::json;

use super::double::Double;
use super::{READ, SERVICE_OWNER, request, token};
use crate::support::{header, send};

const PATH: &str = "/broker/api/v1/statistics/monthly";

/// A GET of the statistics with `query`, the owner's token (unless `bearer` is `None`) and
/// `accept`.
fn get(query: &str, bearer: Option<&str>, accept: Option<&str>) -> Request<Body> {
    let mut request = request(Method::GET, &format!("{PATH}?{query}"), bearer, None);
    if let Some(accept) = accept {
        request
            .headers_mut()
            .insert("accept", accept.parse().unwrap());
    }
    request
}

#[tokio::test]
async fn the_report_is_altinns_csv_file() {
    let (double, app) = Double::start().await;
    let owner = token(SERVICE_OWNER);
    let (response, body) = send(
        &app,
        get(
            "resourceId=broker-demo&year=2026&month=1",
            Some(&owner),
            None,
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(header(&response, "content-type"), "text/csv");
    assert_eq!(
        header(&response, "content-disposition"),
        "attachment; filename=monthly_statistics_broker-demo_2026-01.csv; \
         filename*=UTF-8''monthly_statistics_broker-demo_2026-01.csv"
    );
    assert_eq!(
        body,
        "year,month,resourceId,senderVendor,recipientVendor,sender,recipient,\
         totalFileTransfers,uploadCount,totalTransferDownloadAttempts,\
         transfersWithDownloadConfirmed\n\
         2026,1,broker-demo,,0192:986252932,0192:991825827,0192:986252932,3,2,3,2\n\
         2026,1,\"odd,\"\"name\"\"\",,0192:986252932,0192:991825827,0192:986252932,1,0,0,0\n"
    );
    let seen = double.seen.lock().unwrap();
    let sent = &seen.statistics[0];
    assert_eq!(
        (sent.year, sent.month, sent.resource_id.as_str()),
        (2026, 1, "broker-demo")
    );
    assert!(
        sent.include_end_user && !sent.include_vendor,
        "the defaults"
    );
}

#[tokio::test]
async fn a_report_of_every_resource_is_named_so() {
    let (_, app) = Double::start().await;
    let (response, _) = send(
        &app,
        get("year=2026&month=11", Some(&token(SERVICE_OWNER)), None),
    )
    .await;
    assert_eq!(
        header(&response, "content-disposition"),
        "attachment; filename=monthly_statistics_all-resources_2026-11.csv; \
         filename*=UTF-8''monthly_statistics_all-resources_2026-11.csv"
    );
}

#[tokio::test]
async fn names_bind_in_any_case_and_values_as_dotnet_reads_them() {
    let (double, app) = Double::start().await;
    let query = "YEAR=%202026%20&Month=0x2&includevendor=TRUE&IncludeEndUser=false&RESOURCEID=r";
    let (response, body) = send(&app, get(query, Some(&token(SERVICE_OWNER)), None)).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let seen = double.seen.lock().unwrap();
    let sent = &seen.statistics[0];
    assert_eq!(
        (
            sent.year,
            sent.month,
            sent.include_end_user,
            sent.include_vendor,
            sent.resource_id.as_str()
        ),
        (2026, 2, false, true, "r")
    );
}

#[tokio::test]
async fn accept_application_json_gets_the_rows_as_json() {
    let (_, app) = Double::start().await;
    let owner = token(SERVICE_OWNER);
    let (response, body) = send(
        &app,
        get("year=2026&month=3", Some(&owner), Some("application/json")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(header(&response, "content-type"), "application/json");
    assert!(response.headers().get("content-disposition").is_none());
    assert_eq!(
        body[0],
        json!({
            "year": 2026, "month": 3, "resourceId": "broker-demo",
            "senderVendor": "", "recipientVendor": "0192:986252932",
            "sender": "0192:991825827", "recipient": "0192:986252932",
            "totalFileTransfers": 3, "uploadCount": 2,
            "totalTransferDownloadAttempts": 3, "transfersWithDownloadConfirmed": 2,
        })
    );
    assert_eq!(body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn accept_lists_decide_the_representation_as_altinn_does() {
    let (_, app) = Double::start().await;
    let owner = token(SERVICE_OWNER);
    for (accept, content_type) in [
        // What axios (Bruno) sends: it lists */*, so Altinn's CSV.
        ("application/json, text/plain, */*", "text/csv"),
        ("text/csv", "text/csv"),
        ("TEXT/CSV; q=0.1", "text/csv"),
        ("text/plain, application/json;q=0.5", "application/json"),
    ] {
        let (response, body) =
            send(&app, get("year=2026&month=1", Some(&owner), Some(accept))).await;
        assert_eq!(response.status(), StatusCode::OK, "{accept}: {body}");
        assert_eq!(header(&response, "content-type"), content_type, "{accept}");
    }
}

#[tokio::test]
async fn another_accept_is_406_in_plain_text_before_the_token() {
    let (double, app) = Double::start().await;
    let owner = token(SERVICE_OWNER);
    for (accept, bearer) in [
        ("text/html", Some(owner.as_str())),
        ("application/*", Some(owner.as_str())),
        ("", Some(owner.as_str())),
        ("text/html", None),
    ] {
        let (response, body) = send(&app, get("year=2026&month=1", bearer, Some(accept))).await;
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE, "{accept:?}");
        assert!(
            response.headers().get("content-type").is_none(),
            "{accept:?}"
        );
        assert_eq!(
            body,
            "This endpoint does not support the requested Accept header. Supported Accept \
             headers are: text/csv, application/json, */*."
        );
    }
    assert!(double.seen.lock().unwrap().statistics.is_empty());
}

#[tokio::test]
async fn unreadable_values_are_a_validation_problem_after_the_scope_check() {
    let (double, app) = Double::start().await;
    let (response, problem) = send(
        &app,
        get(
            "year=abc&month=&includeVendor=1",
            Some(&token(SERVICE_OWNER)),
            None,
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    assert_eq!(
        problem["errors"],
        json!({
            "Year": ["The value 'abc' is not valid for Year."],
            "Month": ["The value '' is invalid."],
            "IncludeVendor": ["The value '1' is not valid for IncludeVendor."],
        })
    );
    let (response, problem) = send(&app, get("year=abc", Some(&token(READ)), None)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{problem}");
    assert!(double.seen.lock().unwrap().statistics.is_empty());
}
