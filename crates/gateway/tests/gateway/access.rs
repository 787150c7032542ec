//! The access registry's public API: what the gateway decides itself (credentials, scopes,
//! If-Match, body shape and size) before anything reaches the service, and that public reads
//! reach it without a token.

use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::Value;

use crate::support::{ADMIN_TOKEN, gateway, header, maskinporten_claims, send, sign};

const RESOURCES: &str = "/resourceregistry/api/v1/resource";
const LISTS: &str = "/resourceregistry/api/v1/access-lists/digdir";
const RESOURCE_WRITE: &str = "altinn:resourceregistry/resource.write";
const LIST_READ: &str = "altinn:resourceregistry/accesslist.read";
const LIST_WRITE: &str = "altinn:resourceregistry/accesslist.write";

const RESOURCE: &str = r#"{"identifier": "broker-demo", "title": {"nb": "Demo"}}"#;
const LIST: &str = r#"{"name": "Allowed senders"}"#;
const MEMBERS: &str = r#"{"data": ["urn:altinn:organization:identifier-no:991825827"]}"#;

/// A caller's token with `scope`.
fn token(scope: &str) -> String {
    sign(&maskinporten_claims(scope))
}

/// A request with an optional bearer token and JSON body.
fn request(method: Method, uri: &str, bearer: Option<&str>, json: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    match json {
        Some(json) => request
            .header("content-type", "application/json")
            .body(Body::from(json.to_owned())),
        None => request.body(Body::empty()),
    }
    .unwrap()
}

/// `request` with an `If-Match` header.
fn if_match(mut request: Request<Body>, tag: &str) -> Request<Body> {
    request
        .headers_mut()
        .insert("if-match", tag.parse().unwrap());
    request
}

/// Sends `request` and checks the answer is a problem with `status`; returns the problem.
async fn expect_problem(request: Request<Body>, status: StatusCode) -> Value {
    let what = format!("{} {}", request.method(), request.uri());
    let (response, problem) = send(&gateway(), request).await;
    assert_eq!(response.status(), status, "{what}: {problem}");
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json",
        "{what}"
    );
    assert_eq!(problem["status"], status.as_u16(), "{what}");
    problem
}

/// One write of each kind, by the scope it needs.
fn writes(bearer: Option<&str>) -> Vec<Request<Body>> {
    vec![
        request(Method::POST, RESOURCES, bearer, Some(RESOURCE)),
        request(
            Method::PUT,
            &format!("{RESOURCES}/broker-demo/policy"),
            bearer,
            Some(r#"{"rules": []}"#),
        ),
        request(
            Method::DELETE,
            &format!("{RESOURCES}/broker-demo"),
            bearer,
            None,
        ),
        request(Method::PUT, &format!("{LISTS}/senders"), bearer, Some(LIST)),
        request(
            Method::POST,
            &format!("{LISTS}/senders/members"),
            bearer,
            Some(MEMBERS),
        ),
        request(
            Method::PUT,
            &format!("{LISTS}/senders/resource-connections/broker-demo"),
            bearer,
            Some(r#"{"actionFilters": null}"#),
        ),
    ]
}

#[tokio::test]
async fn writes_without_a_token_are_401_with_a_challenge() {
    for request in writes(None) {
        let what = request.uri().to_string();
        let (response, _) = send(&gateway(), request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(header(&response, "www-authenticate"), "Bearer", "{what}");
    }
}

#[tokio::test]
async fn a_token_without_the_scope_is_403_naming_it() {
    let reader = token(LIST_READ);
    for request in writes(Some(&reader)) {
        let what = request.uri().to_string();
        let (response, body) = send(&gateway(), request).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}: {body}");
        let challenge = header(&response, "www-authenticate");
        assert!(
            challenge.starts_with("Bearer error=\"insufficient_scope\""),
            "{what}: {challenge}"
        );
        let wanted = if what.contains("access-lists") {
            LIST_WRITE
        } else {
            RESOURCE_WRITE
        };
        assert!(challenge.contains(wanted), "{what}: {challenge}");
    }
    // Listing access lists needs a list scope, whatever else the token has.
    let other = token(RESOURCE_WRITE);
    expect_problem(
        request(Method::GET, LISTS, Some(&other), None),
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn scoped_calls_reach_the_service() {
    let writer = token(&format!("{RESOURCE_WRITE} {LIST_WRITE}"));
    for request in writes(Some(&writer)) {
        expect_problem(request, StatusCode::SERVICE_UNAVAILABLE).await;
    }
    // The write scope also reads, as in Altinn.
    let list_writer = token(LIST_WRITE);
    let reads = [
        format!("{LISTS}?include=resources&resource=broker-demo&pageSize=10"),
        format!("{LISTS}/senders"),
        format!("{LISTS}/senders/members?token=x"),
        format!("{LISTS}/senders/resource-connections"),
    ];
    for uri in reads {
        let request = request(Method::GET, &uri, Some(&list_writer), None);
        expect_problem(request, StatusCode::SERVICE_UNAVAILABLE).await;
    }
}

#[tokio::test]
async fn public_reads_need_no_token() {
    for uri in [
        format!("{RESOURCES}/broker-demo"),
        format!("{RESOURCES}/resourcelist?pageSize=5"),
        format!("{RESOURCES}/broker-demo/policy"),
    ] {
        // 503 rather than 401: the request went on to the (stopped) access registry.
        expect_problem(
            request(Method::GET, &uri, None, None),
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
    }
}

#[tokio::test]
async fn a_malformed_if_match_is_400_naming_the_header() {
    let writer = token(&format!("{RESOURCE_WRITE} {LIST_WRITE}"));
    for tag in ["3", "\"three\"", "\"1\", \"2\""] {
        for write in writes(Some(&writer)) {
            let problem = expect_problem(if_match(write, tag), StatusCode::BAD_REQUEST).await;
            assert!(problem["errors"]["If-Match"].is_array(), "{tag}: {problem}");
        }
    }
}

#[tokio::test]
async fn well_formed_if_match_tags_are_forwarded() {
    let writer = token(LIST_WRITE);
    for tag in ["\"3\"", "W/\"3\"", "*"] {
        let write = request(
            Method::PUT,
            &format!("{LISTS}/senders"),
            Some(&writer),
            Some(LIST),
        );
        expect_problem(if_match(write, tag), StatusCode::SERVICE_UNAVAILABLE).await;
    }
    // No version 0 is ever issued, so it cannot match.
    let write = request(
        Method::PUT,
        &format!("{LISTS}/senders"),
        Some(&writer),
        Some(LIST),
    );
    expect_problem(if_match(write, "\"0\""), StatusCode::PRECONDITION_FAILED).await;
}

#[tokio::test]
async fn a_bad_body_names_the_failing_field() {
    let writer = token(&format!("{RESOURCE_WRITE} {LIST_WRITE}"));
    let cases = [
        (
            Method::POST,
            RESOURCES.to_owned(),
            r#"{"title": {}}"#,
            "identifier",
        ),
        (
            Method::POST,
            RESOURCES.to_owned(),
            r#"{"identifier": "x", "title": {"nb": 1}}"#,
            "title.nb",
        ),
        (
            Method::PUT,
            format!("{RESOURCES}/broker-demo/policy"),
            r#"{"rules": [{"subjects": "any-organization", "actions": []}]}"#,
            "rules[0].subjects",
        ),
        (
            Method::PUT,
            format!("{LISTS}/senders"),
            r#"{"name": 5}"#,
            "name",
        ),
        (
            Method::PUT,
            format!("{LISTS}/senders/members"),
            r#"{"data": "urn"}"#,
            "data",
        ),
        (
            Method::PUT,
            format!("{LISTS}/senders/resource-connections/broker-demo"),
            r#"{"actionFilters": "read"}"#,
            "actionFilters",
        ),
    ];
    for (method, uri, body, field) in cases {
        let problem = expect_problem(
            request(method, &uri, Some(&writer), Some(body)),
            StatusCode::BAD_REQUEST,
        )
        .await;
        // ASP.NET keys a body that does not bind by its JSON path (`$` when a member is missing).
        let key = if field == "identifier" {
            "$".to_owned()
        } else {
            format!("$.{field}")
        };
        assert!(problem["errors"][&key].is_array(), "{key}: {problem}");
    }
}

#[tokio::test]
async fn a_body_naming_another_resource_than_the_path_is_400() {
    let writer = token(RESOURCE_WRITE);
    let cases = [
        (format!("{RESOURCES}/other"), RESOURCE, "identifier"),
        (
            format!("{RESOURCES}/other/policy"),
            r#"{"resource": "broker-demo", "rules": []}"#,
            "resource",
        ),
    ];
    for (uri, body, field) in cases {
        let problem = expect_problem(
            request(Method::PUT, &uri, Some(&writer), Some(body)),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(problem["errors"][field].is_array(), "{field}: {problem}");
    }
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let writer = token(LIST_WRITE);
    let party = "\"urn:altinn:organization:identifier-no:991825827\",";
    let parties = party.repeat(1024 * 1024 / party.len() + 1);
    let body = format!("{{\"data\": [{}]}}", parties.trim_end_matches(','));
    assert!(body.len() > 1024 * 1024);
    expect_problem(
        request(
            Method::PUT,
            &format!("{LISTS}/senders/members"),
            Some(&writer),
            Some(&body),
        ),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
}

#[tokio::test]
async fn an_unknown_include_is_400() {
    let reader = token(LIST_READ);
    let problem = expect_problem(
        request(
            Method::GET,
            &format!("{LISTS}?include=members"),
            Some(&reader),
            None,
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(problem["errors"]["include"].is_array(), "{problem}");
}

#[tokio::test]
async fn service_owners_need_the_admin_token() {
    let owner = r#"{"orgNumber": "991825827", "orgCode": "digdir", "name": "Digdir"}"#;
    let caller = token(RESOURCE_WRITE);
    for bearer in [None, Some("wrong"), Some(caller.as_str())] {
        expect_problem(
            request(
                Method::POST,
                "/admin/v1/service-owners",
                bearer,
                Some(owner),
            ),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let admin = Some(ADMIN_TOKEN);
    let calls = [
        request(Method::POST, "/admin/v1/service-owners", admin, Some(owner)),
        request(
            Method::GET,
            "/admin/v1/service-owners?pageSize=5",
            admin,
            None,
        ),
        request(
            Method::DELETE,
            "/admin/v1/service-owners/digdir",
            admin,
            None,
        ),
    ];
    for call in calls {
        expect_problem(call, StatusCode::SERVICE_UNAVAILABLE).await;
    }
    let problem = expect_problem(
        request(
            Method::POST,
            "/admin/v1/service-owners",
            admin,
            Some(r#"{"orgNumber": "991825827", "name": "Digdir"}"#),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let missing = problem["errors"]["$"][0].as_str().unwrap_or_default();
    assert!(missing.contains("'orgCode'"), "{problem}");
}
