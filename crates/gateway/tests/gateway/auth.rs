//! The auth layer: `whoami` proves token verification, a tiny router proves the scope guard.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use broker_gateway::Authenticated;
use http::{Request, StatusCode};
use serde_json::json;

use crate::support::{
    ORG, gateway, header, maskinporten_claims, platform_claims, send, sign, sign_with_kid, state,
};

fn whoami(token: Option<&str>) -> Request<Body> {
    let mut request = Request::get("/api/v1/whoami");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn whoami_without_a_token_is_401_with_a_challenge() {
    let (response, body) = send(&gateway(), whoami(None)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&response, "www-authenticate"), "Bearer");
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    assert_eq!(body["status"], 401);
}

#[tokio::test]
async fn whoami_describes_a_maskinporten_caller() {
    let token = sign(&maskinporten_claims(
        "altinn:broker.read altinn:broker.write",
    ));
    let (response, body) = send(&gateway(), whoami(Some(&token))).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "organisation": ORG,
            "clientId": "test-client",
            "scopes": ["altinn:broker.read", "altinn:broker.write"],
            "orgCode": null,
            "tokenKind": "Maskinporten",
        })
    );
}

#[tokio::test]
async fn whoami_describes_a_platform_caller() {
    let token = sign(&platform_claims("altinn:serviceowner"));
    let (response, body) = send(&gateway(), whoami(Some(&token))).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    assert_eq!(body["tokenKind"], "Platform");
    assert_eq!(body["orgCode"], "digdir");
    assert_eq!(body["organisation"], ORG);
}

#[tokio::test]
async fn bad_tokens_are_401_invalid_token() {
    let mut expired = maskinporten_claims("altinn:broker.read");
    expired["exp"] = json!(expired["iat"].as_i64().unwrap() - 10);
    let mut foreign = maskinporten_claims("altinn:broker.read");
    foreign["iss"] = json!("https://maskinporten.no/");
    let valid = sign(&maskinporten_claims("altinn:broker.read"));
    let (head, payload, _) = {
        let mut parts = valid.split('.');
        (parts.next().unwrap(), parts.next().unwrap(), parts.next())
    };
    let tampered = format!("{head}.{payload}.AAAA");
    let tokens = [
        ("garbage", "not-a-jwt".to_owned()),
        ("expired", sign(&expired)),
        ("untrusted issuer", sign(&foreign)),
        (
            "unknown key",
            sign_with_kid(&maskinporten_claims("s"), "other-key"),
        ),
        ("bad signature", tampered),
    ];
    for (case, token) in tokens {
        let (response, body) = send(&gateway(), whoami(Some(&token))).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{case}: {body}"
        );
        assert!(
            header(&response, "www-authenticate").starts_with("Bearer error=\"invalid_token\""),
            "{case}"
        );
        assert_eq!(
            header(&response, "content-type"),
            "application/problem+json"
        );
    }
}

/// A route of the kind the broker API will have: readers or writers only.
fn guarded_router() -> Router {
    let handler = |caller: Authenticated| async move {
        caller
            .require_any_scope(&["altinn:broker.read", "altinn:broker.write"])
            .map(|caller| caller.client_id.clone())
    };
    Router::new()
        .route("/guarded", get(handler))
        .with_state(state())
}

fn guarded(scope: &str) -> Request<Body> {
    let token = sign(&maskinporten_claims(scope));
    Request::get("/guarded")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn the_scope_guard_lets_any_listed_scope_in() {
    let (response, body) = send(&guarded_router(), guarded("altinn:broker.write")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, json!("test-client"));
}

#[tokio::test]
async fn the_scope_guard_forbids_other_scopes() {
    let (response, body) = send(&guarded_router(), guarded("altinn:serviceowner")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        header(&response, "www-authenticate"),
        "Bearer error=\"insufficient_scope\", scope=\"altinn:broker.read altinn:broker.write\""
    );
    assert_eq!(body["status"], 403);
}
