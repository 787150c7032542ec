//! The Altinn Broker v1 API at the gateway: what it decides itself (credentials, scopes, body and
//! query shape, ids, form layout) with the services down, and what it sends and renders across
//! the gRPC boundary (`streams`, `statistics`, against a recording stand-in of the service).

use axum::body::Body;
use http::{Method, Request, Response, StatusCode};
use serde_json::Value;

use crate::support::{gateway, header, maskinporten_claims, send, sign};

mod double;
mod lifecycle;
mod statistics;
mod streams;
mod tus;

const BASE: &str = "/broker/api/v1/filetransfer";
const ID: &str = "0b5a2d1c-8a61-4d5e-9d7e-1f2a3b4c5d6e";
const WRITE: &str = "altinn:broker.write";
const READ: &str = "altinn:broker.read";
const SERVICE_OWNER: &str = "altinn:serviceowner";

const INITIALIZE: &str = r#"{"resourceId": "broker-demo", "fileName": "a.txt",
    "sender": "0192:991825827", "recipients": ["0192:986252932"]}"#;

/// A caller's token with `scope`.
fn token(scope: &str) -> String {
    sign(&maskinporten_claims(scope))
}

/// A request with an optional bearer token and a body of `content_type`.
fn request(
    method: Method,
    uri: &str,
    bearer: Option<&str>,
    body: Option<(&str, String)>,
) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    match body {
        Some((content_type, body)) => request
            .header("content-type", content_type)
            .body(Body::from(body)),
        None => request.body(Body::empty()),
    }
    .unwrap()
}

/// A JSON body.
fn json(text: &str) -> Option<(&'static str, String)> {
    Some(("application/json", text.to_owned()))
}

/// A multipart/form-data body of `parts` (name, value).
fn form(parts: &[(&str, &str)]) -> Option<(&'static str, String)> {
    let mut body = String::new();
    for (name, value) in parts {
        body.push_str(&format!(
            "--BOUNDARY\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str("--BOUNDARY--\r\n");
    Some(("multipart/form-data; boundary=BOUNDARY", body))
}

/// The metadata parts of a valid initialize-and-upload form.
const METADATA: [(&str, &str); 4] = [
    ("Metadata.ResourceId", "broker-demo"),
    ("Metadata.FileName", "a.txt"),
    ("Metadata.Sender", "0192:991825827"),
    ("Metadata.Recipients[0]", "0192:986252932"),
];

/// The content type of the problems of `request`'s route: as ASP.NET's `[Produces]` makes it,
/// `application/json` where the action produces JSON, and `application/problem+json` for the
/// download, which produces nothing named.
fn problem_type(request: &Request<Body>) -> &'static str {
    let path = request.uri().path();
    if path.ends_with("/download") || path.contains("/webhooks/") {
        "application/problem+json"
    } else {
        "application/json; charset=utf-8"
    }
}

/// Sends `request` and checks the answer is a problem with `status`; returns the problem.
async fn expect_problem(request: Request<Body>, status: StatusCode) -> Value {
    let what = format!("{} {}", request.method(), request.uri());
    let content_type = problem_type(&request);
    let (response, problem) = send(&gateway(), request).await;
    assert_eq!(response.status(), status, "{what}: {problem}");
    assert_eq!(header(&response, "content-type"), content_type, "{what}");
    assert_eq!(problem["status"], status.as_u16(), "{what}: {problem}");
    problem
}

/// Sends `request` and checks the answer is `status` with no body, as ASP.NET answers a failed
/// authentication or authorization.
async fn expect_bare(request: Request<Body>, status: StatusCode) -> Response<()> {
    let what = format!("{} {}", request.method(), request.uri());
    let (response, body) = send(&gateway(), request).await;
    assert_eq!(response.status(), status, "{what}: {body}");
    assert_eq!(body, Value::Null, "{what}: no body");
    assert_eq!(header(&response, "content-type"), "", "{what}");
    response
}

/// Every route of the API with a well-formed request, and the scopes any of which it needs.
fn routes(bearer: Option<&str>) -> Vec<(Request<Body>, &'static [&'static str])> {
    let file = Some(("application/octet-stream", "bytes".to_owned()));
    let mut parts = METADATA.to_vec();
    parts.push(("FileTransfer", "bytes"));
    vec![
        (
            request(Method::POST, BASE, bearer, json(INITIALIZE)),
            &[WRITE],
        ),
        (
            request(Method::POST, &format!("{BASE}/{ID}/upload"), bearer, file),
            &[WRITE],
        ),
        (
            request(
                Method::POST,
                &format!("{BASE}/upload"),
                bearer,
                form(&parts),
            ),
            &[WRITE],
        ),
        (
            request(Method::GET, &format!("{BASE}/{ID}"), bearer, None),
            &[READ, WRITE],
        ),
        (
            request(Method::GET, &format!("{BASE}/{ID}/details"), bearer, None),
            &[READ, WRITE],
        ),
        (
            request(
                Method::GET,
                &format!("{BASE}?resourceId=broker-demo"),
                bearer,
                None,
            ),
            &[READ, WRITE],
        ),
        (
            request(Method::GET, &format!("{BASE}/{ID}/download"), bearer, None),
            &[READ],
        ),
        (
            request(
                Method::POST,
                &format!("{BASE}/{ID}/confirmdownload"),
                bearer,
                None,
            ),
            &[READ],
        ),
        (
            request(
                Method::POST,
                "/broker/api/v1/serviceowner",
                bearer,
                json(r#"{"name": "Digdir"}"#),
            ),
            &[SERVICE_OWNER],
        ),
        (
            request(Method::GET, "/broker/api/v1/serviceowner", bearer, None),
            &[SERVICE_OWNER],
        ),
        (
            request(
                Method::PUT,
                "/broker/api/v1/resource/broker-demo",
                bearer,
                json(r#"{"maxFileTransferSize": 1000}"#),
            ),
            &[SERVICE_OWNER],
        ),
        (
            request(
                Method::GET,
                "/broker/api/v1/resource/broker-demo",
                bearer,
                None,
            ),
            &[SERVICE_OWNER],
        ),
        (
            request(
                Method::GET,
                "/broker/api/v1/statistics/monthly?resourceId=broker-demo",
                bearer,
                None,
            ),
            &[SERVICE_OWNER],
        ),
    ]
}

/// As Altinn's JwtBearer schemes answer: 401 with no body, the challenge saying why.
#[tokio::test]
async fn every_route_needs_a_valid_token() {
    for (request, _) in routes(None) {
        let response = expect_bare(request, StatusCode::UNAUTHORIZED).await;
        assert_eq!(header(&response, "www-authenticate"), "Bearer");
    }
    for (request, _) in routes(Some("not-a-jwt")) {
        let response = expect_bare(request, StatusCode::UNAUTHORIZED).await;
        let challenge = header(&response, "www-authenticate");
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{challenge}"
        );
    }
}

#[tokio::test]
async fn each_route_refuses_tokens_without_its_scope() {
    for scope in [WRITE, READ, SERVICE_OWNER] {
        let bearer = token(scope);
        for (request, needs) in routes(Some(&bearer)) {
            let what = format!("{scope} on {} {}", request.method(), request.uri());
            let (response, problem) = send(&gateway(), request).await;
            if needs.contains(&scope) {
                // Allowed: forwarded to the (stopped) service.
                assert_eq!(
                    response.status(),
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{what}: {problem}"
                );
            } else {
                // Altinn's scope policy: 403, no body, no challenge.
                assert_eq!(
                    response.status(),
                    StatusCode::FORBIDDEN,
                    "{what}: {problem}"
                );
                assert_eq!(problem, Value::Null, "{what}");
                assert_eq!(header(&response, "www-authenticate"), "", "{what}");
            }
        }
    }
}

/// A body System.Text.Json cannot read is ASP.NET's validation problem: the failure under its
/// JSON path, and the body's parameter as missing.
#[tokio::test]
async fn malformed_json_is_400_naming_the_json_path() {
    let writer = token(&format!("{WRITE} {SERVICE_OWNER}"));
    let cases = [
        (
            BASE,
            Method::POST,
            r#"{"resourceId": "r", "fileName": "a", "sender": "s", "recipients": "x"}"#,
            "$.recipients",
            "initializeExt",
        ),
        (
            BASE,
            Method::POST,
            r#"{"resourceId": "r", "FileName": 5}"#,
            "$.fileName",
            "initializeExt",
        ),
        (
            BASE,
            Method::POST,
            r#"{"resourceId": "r", "propertyList": {"k": 1}}"#,
            "$.propertyList.k",
            "initializeExt",
        ),
        (BASE, Method::POST, "{", "$", "initializeExt"),
        (BASE, Method::POST, "", "", "initializeExt"),
        (
            "/broker/api/v1/resource/broker-demo",
            Method::PUT,
            r#"{"maxFileTransferSize": "big"}"#,
            "$.maxFileTransferSize",
            "resourceExt",
        ),
        (
            "/broker/api/v1/serviceowner",
            Method::POST,
            "{}",
            "$",
            "serviceOwnerInitializeExt",
        ),
    ];
    for (uri, method, body, key, parameter) in cases {
        let request = request(method, uri, Some(&writer), json(body));
        let (response, problem) = send(&gateway(), request).await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{body}: {problem}"
        );
        assert_eq!(problem["title"], "One or more validation errors occurred.");
        assert!(problem["errors"][key].is_array(), "{body}: {problem}");
        assert_eq!(
            problem["errors"][parameter][0],
            format!("The {parameter} field is required."),
            "{body}"
        );
    }
}

#[tokio::test]
async fn an_id_that_is_not_a_uuid_is_400() {
    let both = token(&format!("{READ} {WRITE}"));
    for (method, suffix) in [
        (Method::GET, ""),
        (Method::GET, "/details"),
        (Method::GET, "/download"),
        (Method::POST, "/confirmdownload"),
        (Method::POST, "/upload"),
    ] {
        let uri = format!("{BASE}/not-a-uuid{suffix}");
        let problem = expect_problem(
            request(method, &uri, Some(&both), None),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            problem["errors"]["fileTransferId"].is_array(),
            "{uri}: {problem}"
        );
    }
}

#[tokio::test]
async fn search_parameters_are_validated() {
    let reader = token(READ);
    let cases = [
        ("", "resourceId"),
        ("resourceId=r&status=Sent", "status"),
        ("resourceId=r&recipientStatus=Read", "recipientStatus"),
        ("resourceId=r&from=yesterday", "from"),
        ("resourceId=r&to=2026-13-01T00:00:00Z", "to"),
        ("resourceId=r&orderAscending=maybe", "orderAscending"),
        ("resourceId=r&role=Owner", "role"),
    ];
    for (query, field) in cases {
        let uri = format!("{BASE}?{query}");
        let problem = expect_problem(
            request(Method::GET, &uri, Some(&reader), None),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(problem["errors"][field].is_array(), "{query}: {problem}");
    }
    // Case-insensitive enums and offsets are accepted and go on to the service.
    let uri = format!(
        "{BASE}?resourceId=r&status=published&role=sender&from=2026-08-01T00:00:00%2B02:00"
    );
    expect_problem(
        request(Method::GET, &uri, Some(&reader), None),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
}

#[tokio::test]
async fn a_form_without_a_file_is_400() {
    // (A file that comes first goes to the service at once, to be spooled: see `streams`.)
    let writer = token(WRITE);
    let uri = format!("{BASE}/upload");
    // Metadata but no file.
    let problem = expect_problem(
        request(Method::POST, &uri, Some(&writer), form(&METADATA)),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(problem["errors"]["FileTransfer"].is_array(), "{problem}");
    // Not a form at all: ASP.NET's routing refuses it (415, no body), before the token counts.
    expect_bare(
        request(Method::POST, &uri, None, json(INITIALIZE)),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let (_, document) = send(
        &gateway(),
        request(Method::GET, "/openapi.json", None, None),
    )
    .await;
    let paths = document["paths"].as_object().expect("paths");
    for (path, methods) in [
        ("/broker/api/v1/filetransfer", &["get", "post"][..]),
        ("/broker/api/v1/filetransfer/upload", &["post"]),
        ("/broker/api/v1/filetransfer/{fileTransferId}", &["get"]),
        (
            "/broker/api/v1/filetransfer/{fileTransferId}/details",
            &["get"],
        ),
        (
            "/broker/api/v1/filetransfer/{fileTransferId}/upload",
            &["post"],
        ),
        (
            "/broker/api/v1/filetransfer/{fileTransferId}/download",
            &["get"],
        ),
        (
            "/broker/api/v1/filetransfer/{fileTransferId}/confirmdownload",
            &["post"],
        ),
        ("/broker/api/v1/serviceowner", &["get", "post"]),
        ("/broker/api/v1/resource/{resourceId}", &["get", "put"]),
        ("/broker/api/v1/statistics/monthly", &["get"]),
    ] {
        for method in methods {
            assert!(paths[path][method].is_object(), "{method} {path}");
        }
    }
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for schema in [
        "FileTransferInitialize",
        "FileTransferOverview",
        "FileTransferStatusDetails",
        "ResourceSettingsUpdate",
    ] {
        assert!(schemas.contains_key(schema), "{schema}");
    }
}

#[tokio::test]
async fn a_negative_max_size_is_refused_at_the_gateway_with_code_11() {
    // The contract carries sizes unsigned, so the gateway gives the reference's answer itself.
    let owner = token(SERVICE_OWNER);
    let put = request(
        Method::PUT,
        "/broker/api/v1/resource/broker-demo",
        Some(&owner),
        json(r#"{"maxFileTransferSize": -1}"#),
    );
    let problem = expect_problem(put, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem["code"], "BRO-00011", "{problem}");
}
