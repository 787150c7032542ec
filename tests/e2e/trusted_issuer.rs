//! The exchange accepts Maskinporten-style tokens from the external issuers an operator lists in
//! `BROKER_TRUSTED_ISSUERS` (keys found through their metadata), and nobody else's.

use broker_tests::{Broker, BrokerOptions, DIGDIR, FakeIssuer, WRITE};

#[tokio::test]
async fn a_token_from_a_trusted_issuer_is_exchanged() {
    let maskinporten = FakeIssuer::start().await;
    let broker = Broker::start(
        BrokerOptions::new().env("BROKER_TRUSTED_ISSUERS", maskinporten.metadata_url()),
    )
    .await;
    let claims = maskinporten.claims(DIGDIR, WRITE);
    let token = maskinporten.sign(&claims);

    let platform_token = broker.platform_token(&token).await;
    let platform = broker.verify(&platform_token).await;
    assert_eq!(platform["iss"], broker.platform_issuer());
    assert_eq!(platform["urn:altinn:orgNumber"], DIGDIR);
    assert_eq!(platform["urn:altinn:authenticatemethod"], "maskinporten");
    assert_eq!(platform["client_id"], claims["client_id"]);
    assert_eq!(platform["scope"], WRITE);

    let me = broker
        .whoami(&platform_token)
        .await
        .expect_status(200)
        .json();
    assert_eq!(me["organisation"], DIGDIR);
    assert_eq!(me["tokenKind"], "Platform");
}

#[tokio::test]
async fn a_token_from_an_untrusted_issuer_is_refused() {
    let trusted = FakeIssuer::start().await;
    let stranger = FakeIssuer::start().await;
    let broker =
        Broker::start(BrokerOptions::new().env("BROKER_TRUSTED_ISSUERS", trusted.metadata_url()))
            .await;
    let token = stranger.token(DIGDIR, WRITE);
    broker.exchange(&token).await.assert_problem(401);
    broker.whoami(&token).await.assert_unauthorized();

    // The stranger claiming to be the trusted issuer does not get in either.
    let mut claims = stranger.claims(DIGDIR, WRITE);
    claims["iss"] = trusted.issuer().into();
    let forged = stranger.sign(&claims);
    broker.exchange(&forged).await.assert_problem(401);

    // While the trusted issuer's tokens still work.
    broker
        .exchange(&trusted.token(DIGDIR, WRITE))
        .await
        .expect_status(200);
}

#[tokio::test]
async fn an_expired_token_from_a_trusted_issuer_is_refused() {
    let maskinporten = FakeIssuer::start().await;
    let broker = Broker::start(
        BrokerOptions::new().env("BROKER_TRUSTED_ISSUERS", maskinporten.metadata_url()),
    )
    .await;
    let mut claims = maskinporten.claims(DIGDIR, WRITE);
    let now = broker_tests::now();
    claims["iat"] = (now - 300).into();
    claims["exp"] = (now - 180).into();
    broker
        .exchange(&maskinporten.sign(&claims))
        .await
        .assert_problem(401);
}
