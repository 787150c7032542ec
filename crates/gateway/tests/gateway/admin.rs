//! The client registry: the admin credential, body shape checks, and forwarding.

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::json;

use crate::support::{ADMIN_TOKEN, gateway, header, send};

fn admin_post(token: Option<&str>, content_type: &str, body: &str) -> Request<Body> {
    let mut request = Request::post("/admin/v1/clients").header("content-type", content_type);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

const VALID_CLIENT: &str = r#"{"orgNumber": "991825827", "scopes": ["altinn:broker.read"],
    "jwks": {"keys": [{"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB"}]}}"#;

#[tokio::test]
async fn admin_routes_need_the_admin_token() {
    for token in [None, Some("wrong-token")] {
        let (response, body) = send(
            &gateway(),
            admin_post(token, "application/json", VALID_CLIENT),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(header(&response, "www-authenticate").starts_with("Bearer"));
        assert_eq!(
            header(&response, "content-type"),
            "application/problem+json"
        );
        assert_eq!(body["status"], 401);
    }
    let request = Request::get("/admin/v1/clients/some-client")
        .body(Body::empty())
        .unwrap();
    let (response, _) = send(&gateway(), request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_json_names_the_failing_field() {
    let cases = [
        (r#"{"scopes": [], "jwks": {"keys": []}}"#, "$"),
        (
            r#"{"orgNumber": 991825827, "scopes": [], "jwks": {"keys": []}}"#,
            "$.orgNumber",
        ),
        (
            r#"{"orgNumber": "991825827", "scopes": "a", "jwks": {"keys": []}}"#,
            "$.scopes",
        ),
        (
            r#"{"orgNumber": "991825827", "scopes": [], "jwks": {"keys": ["k"]}}"#,
            "$.jwks.keys[0]",
        ),
        (
            r#"{"orgNumber": "991825827", "scopes": [], "jwks": {}}"#,
            "$",
        ),
        (r#"{"orgNumber": "#, "$"),
    ];
    for (body, field) in cases {
        let (response, problem) = send(
            &gateway(),
            admin_post(Some(ADMIN_TOKEN), "application/json", body),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            header(&response, "content-type"),
            "application/problem+json"
        );
        assert!(problem["errors"][field].is_array(), "{field} in {problem}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let (response, body) = send(
        &gateway(),
        admin_post(Some(ADMIN_TOKEN), "text/plain", VALID_CLIENT),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["status"], 415);
}

#[tokio::test]
async fn admin_calls_while_the_token_service_is_down_are_503() {
    let authorization = format!("Bearer {ADMIN_TOKEN}");
    let requests = [
        admin_post(Some(ADMIN_TOKEN), "application/json", VALID_CLIENT),
        Request::get("/admin/v1/clients?pageSize=10")
            .header("authorization", &authorization)
            .body(Body::empty())
            .unwrap(),
        Request::delete("/admin/v1/clients/c1/keys/k1")
            .header("authorization", &authorization)
            .body(Body::empty())
            .unwrap(),
        Request::post("/admin/v1/clients/c1/keys")
            .header("authorization", &authorization)
            .header("content-type", "application/json")
            .body(Body::from(json!({"kty": "RSA", "kid": "k2"}).to_string()))
            .unwrap(),
    ];
    for request in requests {
        let uri = request.uri().clone();
        let (response, body) = send(&gateway(), request).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(body["status"], 503, "{uri}");
    }
}
