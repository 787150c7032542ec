//! Every way a token request can be wrong gets its RFC 6749 error with the right status, as
//! JSON, and never a server error; and the gateway refuses tokens it must not trust.
//!
//! One test per rule, each with its own broker, so a failure names the rule it broke.

use broker_tests::{
    Broker, BrokerOptions, ClientKeys, DIGDIR, FakeIssuer, JWT_BEARER, READ, TestClient, WRITE,
};
use jsonwebtoken::Algorithm;

/// A broker with one client of Digdir granted `altinn:broker.write`.
async fn given_a_registered_client() -> (Broker, TestClient) {
    let broker = Broker::start(BrokerOptions::new()).await;
    let client = broker.register_client(DIGDIR, &[WRITE]).await;
    (broker, client)
}

#[tokio::test]
async fn an_hs256_signed_assertion_is_invalid_grant() {
    let (broker, client) = given_a_registered_client().await;
    // A classic confusion attack: HMAC keyed with the public key's text.
    let forged = client
        .assertion()
        .sign_hs256(client.keys.jwk().to_string().as_bytes());
    broker
        .request_token(&forged)
        .await
        .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn an_unsigned_alg_none_assertion_is_invalid_grant() {
    let (broker, client) = given_a_registered_client().await;
    broker
        .request_token(&client.assertion().unsigned())
        .await
        .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn an_unknown_kid_is_invalid_grant() {
    let (_broker, client) = given_a_registered_client().await;
    client
        .request_token(&client.assertion().kid("no-such-key"))
        .await
        .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn a_signature_by_another_key_is_invalid_grant() {
    let (_broker, client) = given_a_registered_client().await;
    let intruder = ClientKeys::generate_with_kid(client.keys.kid());
    client
        .request_token(&client.assertion().signed_by(&intruder))
        .await
        .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn a_wrong_audience_is_invalid_grant() {
    let (broker, client) = given_a_registered_client().await;
    for aud in [
        broker.url("/token"),
        broker.base_url().to_owned(),
        "https://maskinporten.no/".to_owned(),
    ] {
        client
            .request_token(&client.assertion().audience(&aud))
            .await
            .assert_oauth_error(400, "invalid_grant");
    }
}

#[tokio::test]
async fn a_lifetime_over_120_seconds_is_invalid_grant() {
    let (_broker, client) = given_a_registered_client().await;
    client
        .request_token(&client.assertion().lifetime(121))
        .await
        .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn an_expired_assertion_is_invalid_grant() {
    let (_broker, client) = given_a_registered_client().await;
    // Issued within the clock skew, but already expired.
    let expired = client.assertion().issued_in(-5).expiring_in(-2);
    client
        .request_token(&expired)
        .await
        .assert_oauth_error(400, "invalid_grant");
    // Long expired.
    let ancient = client.assertion().issued_in(-3600);
    client
        .request_token(&ancient)
        .await
        .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn an_assertion_issued_in_the_future_is_invalid_grant() {
    let (_broker, client) = given_a_registered_client().await;
    client
        .request_token(&client.assertion().issued_in(60))
        .await
        .assert_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn a_replayed_assertion_is_invalid_grant() {
    let (broker, client) = given_a_registered_client().await;
    let assertion = client.assertion().sign();
    broker.request_token(&assertion).await.expect_status(200);
    broker
        .request_token(&assertion)
        .await
        .assert_oauth_error(400, "invalid_grant");
    // The same jti in a freshly signed assertion is a replay too.
    let jti = broker_tests::api::claims_unverified(&assertion)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    client
        .request_token(&client.assertion().jti(&jti))
        .await
        .assert_oauth_error(400, "invalid_grant");
}

/// A `jti` may be left out, but one that is sent must be 1-255 characters: an empty one is a
/// broken id, not a missing one.
#[tokio::test]
async fn an_empty_or_overlong_jti_is_invalid_grant() {
    let (_broker, client) = given_a_registered_client().await;
    for jti in [String::new(), "j".repeat(256)] {
        let refused = client
            .request_token(&client.assertion().jti(&jti))
            .await
            .assert_oauth_error(400, "invalid_grant");
        let description = refused["error_description"].as_str().unwrap_or_default();
        assert!(description.contains("jti"), "says why: {refused}");
    }
}

#[tokio::test]
async fn a_scope_not_granted_is_invalid_scope() {
    let (_broker, client) = given_a_registered_client().await;
    for scope in [READ, &format!("{WRITE} {READ}"), "altinn:serviceowner"] {
        client
            .request_token(&client.assertion().scope(scope))
            .await
            .assert_oauth_error(400, "invalid_scope");
    }
}

#[tokio::test]
async fn a_missing_grant_type_is_invalid_request() {
    let (broker, client) = given_a_registered_client().await;
    let assertion = client.assertion().sign();
    broker
        .post_form("/token", &[("assertion", &assertion)])
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported_grant_type() {
    let (broker, client) = given_a_registered_client().await;
    let assertion = client.assertion().sign();
    for grant_type in [
        "client_credentials",
        "password",
        "urn:ietf:params:oauth:grant-type:saml2-bearer",
    ] {
        broker
            .post_form(
                "/token",
                &[("grant_type", grant_type), ("assertion", &assertion)],
            )
            .await
            .assert_oauth_error(400, "unsupported_grant_type");
    }
}

#[tokio::test]
async fn a_missing_assertion_is_invalid_request() {
    let (broker, _client) = given_a_registered_client().await;
    broker
        .post_form("/token", &[("grant_type", JWT_BEARER)])
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn a_non_jwt_assertion_is_invalid_request() {
    let (broker, _client) = given_a_registered_client().await;
    broker
        .request_token("not-a-jwt")
        .await
        .assert_oauth_error(400, "invalid_request");
}

#[tokio::test]
async fn an_oversized_body_is_413_invalid_request() {
    let (broker, _client) = given_a_registered_client().await;
    let huge = "a".repeat(70 * 1024);
    broker
        .request_token(&huge)
        .await
        .assert_oauth_error(413, "invalid_request");
}

#[tokio::test]
async fn an_unknown_client_is_refused_without_a_server_error() {
    let (broker, client) = given_a_registered_client().await;
    let reply = client
        .request_token(&client.assertion().issuer("no-such-client"))
        .await;
    assert!(
        matches!(reply.status.as_u16(), 400 | 401),
        "{} {}",
        reply.status,
        reply.body
    );
    assert!(
        reply.content_type().starts_with("application/json"),
        "{reply:?}"
    );
    let body = reply.json();
    assert!(
        matches!(
            body["error"].as_str(),
            Some("invalid_client" | "invalid_grant")
        ),
        "{body}"
    );
    assert!(body["error_description"].is_string(), "{body}");
    drop(broker);
}

#[tokio::test]
async fn a_token_from_an_untrusted_issuer_is_401_at_the_gateway() {
    let (broker, _client) = given_a_registered_client().await;
    let stranger = FakeIssuer::start().await;
    let token = stranger.token(DIGDIR, WRITE);
    broker.whoami(&token).await.assert_unauthorized();
    broker.exchange(&token).await.assert_problem(401);

    // A token claiming the broker's own issuer but signed by a stranger's key.
    let mut claims = stranger.claims(DIGDIR, WRITE);
    claims["iss"] = broker.issuer().into();
    let forged = stranger.sign(&claims);
    broker.whoami(&forged).await.assert_unauthorized();
    broker.exchange(&forged).await.assert_problem(401);
}

#[tokio::test]
async fn no_token_or_a_garbled_token_is_401_at_the_gateway() {
    let (broker, _client) = given_a_registered_client().await;
    broker.get("/api/v1/whoami").await.assert_unauthorized();
    broker.whoami("not-a-jwt").await.assert_unauthorized();
    broker
        .get("/authentication/api/v1/exchange/maskinporten")
        .await
        .assert_problem(401);
    broker.exchange("not-a-jwt").await.assert_problem(401);
}

#[tokio::test]
async fn an_expired_platform_token_is_401() {
    let broker =
        Broker::start(BrokerOptions::new().env("BROKER_PLATFORM_TOKEN_LIFETIME_SECONDS", 1)).await;
    let client = broker.register_client(DIGDIR, &[WRITE]).await;
    let access_token = client.token(&[WRITE]).await;
    let platform_token = broker.platform_token(&access_token).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let problem = broker.whoami(&platform_token).await.assert_unauthorized();
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("expired"), "says why: {problem}");
    // The access token itself is still good.
    broker.whoami(&access_token).await.expect_status(200);
}

#[tokio::test]
async fn an_expired_access_token_is_401() {
    let broker = Broker::start(BrokerOptions::new().env("BROKER_TOKEN_LIFETIME_SECONDS", 1)).await;
    let client = broker.register_client(DIGDIR, &[WRITE]).await;
    let access_token = client.token(&[WRITE]).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let problem = broker.whoami(&access_token).await.assert_unauthorized();
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("expired"), "says why: {problem}");
}

#[tokio::test]
async fn the_exchange_refuses_an_access_token_expired_beyond_the_clock_skew() {
    let broker = Broker::start(BrokerOptions::new().env("BROKER_TOKEN_LIFETIME_SECONDS", 1)).await;
    let client = broker.register_client(DIGDIR, &[WRITE]).await;
    let access_token = client.token(&[WRITE]).await;
    // The exchange tolerates 10 s of clock skew, as Altinn Authentication does; the gateway
    // (like Altinn Broker) tolerates none.
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    broker.exchange(&access_token).await.assert_problem(401);
}

/// RS384 and RS512 assertions are accepted as Maskinporten accepts them.
#[tokio::test]
async fn rs384_and_rs512_assertions_are_accepted() {
    let (_broker, client) = given_a_registered_client().await;
    for alg in [Algorithm::RS384, Algorithm::RS512] {
        client
            .request_token(&client.assertion().alg(alg))
            .await
            .expect_status(200);
    }
}
