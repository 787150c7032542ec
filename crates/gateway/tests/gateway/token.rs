//! `POST /token`, metadata, keys and the exchange: what the gateway checks before forwarding.

use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::json;

use crate::support::{gateway, get, header, send, trace_id_of};

fn token_request(content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post("/token")
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn an_oversized_token_request_is_413_invalid_request() {
    let body = format!("grant_type=x&assertion={}", "a".repeat(65 * 1024));
    let (response, body) = send(
        &gateway(),
        token_request("application/x-www-form-urlencoded", body),
    )
    .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(header(&response, "content-type"), "application/json");
    assert_eq!(header(&response, "cache-control"), "no-store");
    assert_eq!(body["error"], "invalid_request");
    assert!(body["error_description"].is_string());
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "RFC 6749 fields only: {body}"
    );
}

#[tokio::test]
async fn a_token_request_that_is_not_a_form_is_400_invalid_request() {
    let (response, body) = send(
        &gateway(),
        token_request("application/json", r#"{"grant_type":"x"}"#),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&response, "content-type"), "application/json");
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn a_token_request_while_the_token_service_is_down_is_503() {
    let form = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=x";
    let (response, body) = send(
        &gateway(),
        token_request("application/x-www-form-urlencoded", form),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], 503);
}

#[tokio::test]
async fn metadata_and_keys_are_503_while_the_token_service_is_down() {
    for path in ["/.well-known/oauth-authorization-server", "/jwk"] {
        let (response, body) = send(&gateway(), get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(
            header(&response, "content-type"),
            "application/problem+json"
        );
        assert_eq!(body["status"], 503);
    }
}

#[tokio::test]
async fn the_exchange_needs_a_bearer_token() {
    let request = get("/authentication/api/v1/exchange/maskinporten")
        .body(Body::empty())
        .unwrap();
    let (response, body) = send(&gateway(), request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&response, "www-authenticate").starts_with("Bearer"));
    assert_eq!(body["status"], 401);
}

/// Altinn Authentication looks at the enterprise-user header only once the token is found
/// valid (the 410 itself is in the end-to-end token tests): before that, a missing token is 401.
#[tokio::test]
async fn the_exchange_checks_the_token_before_the_enterprise_user_header() {
    let request = get("/authentication/api/v1/exchange/maskinporten")
        .header("X-Altinn-EnterpriseUser-Authentication", "dXNlcjpwYXNz")
        .body(Body::empty())
        .unwrap();
    let (response, _) = send(&gateway(), request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// Another provider than Maskinporten is Altinn's plain-text 400, once a token is sent.
#[tokio::test]
async fn the_exchange_names_its_providers() {
    let request = get("/authentication/api/v1/exchange/google")
        .header("authorization", "Bearer x")
        .body(Body::empty())
        .unwrap();
    let (response, body) = send(&gateway(), request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(header(&response, "content-type").starts_with("text/plain"));
    assert_eq!(
        body,
        json!(
            "Invalid token provider: google. Trusted token providers are 'Maskinporten', \
             'Id-porten' and 'AltinnStudio'."
        )
    );
}

#[tokio::test]
async fn the_exchange_forwards_unverified_tokens_to_the_token_service() {
    // An external issuer's token is not ours to verify: the call reaches the (down) service.
    let request = get("/authentication/api/v1/exchange/maskinporten?test=true")
        .header("authorization", "Bearer not-our-token")
        .body(Body::empty())
        .unwrap();
    let (response, body) = send(&gateway(), request).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({
            "type": "https://tools.ietf.org/html/rfc9110#section-15.6.4",
            "title": "Service Unavailable",
            "status": 503,
            "detail": body["detail"],
            "traceId": trace_id_of(header(&response, "x-request-id")),
        })
    );
}
