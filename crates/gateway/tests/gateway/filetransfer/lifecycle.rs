//! The lifecycle's routes at the gateway: the malware-scan-result webhook (a scanner's shared
//! credential, not a token, forwarded for the service to check) and the service owner's view of
//! a resource's transfers (`role=ServiceOwner`, scope `altinn:serviceowner`).

use http::{Method, StatusCode};

use super::double::Double;
use super::{BASE, ID, READ, SERVICE_OWNER, expect_bare, expect_problem, json, request, token};
use crate::support::send;

const WEBHOOK: &str = "/broker/api/v1/webhooks/malwarescanresults";

fn verdict_body() -> Option<(&'static str, String)> {
    json(&format!(
        r#"{{"fileTransferId": "{ID}", "scanResultType": "Malicious",
            "malwareName": "Eicar-Signature", "scanner": "defender"}}"#
    ))
}

#[tokio::test]
async fn a_verdict_without_a_credential_is_401_before_the_service() {
    let problem = expect_problem(
        request(Method::POST, WEBHOOK, None, verdict_body()),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(problem["status"], 401);
}

#[tokio::test]
async fn a_verdict_is_forwarded_with_the_scanners_credential() {
    let (double, app) = Double::start().await;
    let (response, body) = send(
        &app,
        request(
            Method::POST,
            WEBHOOK,
            Some("scanner-secret"),
            verdict_body(),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let seen = double.seen.lock().unwrap();
    let result = &seen.scan_results[0];
    assert_eq!(result.file_transfer_id, ID);
    assert_eq!(result.verdict, "Malicious");
    assert_eq!(result.malware_name, "Eicar-Signature");
    assert_eq!(result.scanner, "defender");
    assert_eq!(result.credential, "scanner-secret");
}

#[tokio::test]
async fn a_verdict_without_its_fields_is_400() {
    expect_problem(
        request(
            Method::POST,
            WEBHOOK,
            Some("scanner-secret"),
            json(r#"{"verdict": "Malicious"}"#),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn the_owners_view_needs_the_service_owner_scope() {
    let uri = format!("{BASE}?resourceId=broker-demo&status=Failed&role=ServiceOwner");
    expect_bare(
        request(Method::GET, &uri, Some(&token(READ)), None),
        StatusCode::FORBIDDEN,
    )
    .await;

    let (double, app) = Double::start().await;
    let (response, body) = send(
        &app,
        request(Method::GET, &uri, Some(&token(SERVICE_OWNER)), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body[0], ID);
    let seen = double.seen.lock().unwrap();
    assert_eq!(seen.searches[0].role, "ServiceOwner");
    assert_eq!(seen.searches[0].status, "Failed");
    assert_eq!(seen.searches[0].resource_id, "broker-demo");
}
