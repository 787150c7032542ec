//! The happy path of the token service through the gateway, as an Altinn client lives it:
//! an operator registers the client, the client trades a signed assertion for an access token,
//! exchanges that for a platform token, and calls the API with either. Plus the metadata
//! document and the client registry's admin API.

use broker_tests::{
    Broker, BrokerOptions, ClientKeys, DIGDIR, Database, READ, WRITE, on_each_database,
};
use reqwest::Method;
use serde_json::json;

on_each_database! {
    /// Register → assertion → access token → platform token → whoami, verifying both tokens
    /// against the published keys.
    async fn a_client_gets_a_token_exchanges_it_and_calls_the_api(db: Database) {
        let broker = Broker::start(BrokerOptions::new().database(db)).await;
        let client = broker.register_client(DIGDIR, &[WRITE, READ]).await;

        let reply = client.request_token(&client.assertion().scope(WRITE)).await;
        let issued = reply.clone().expect_status(200).json();
        assert!(reply.content_type().starts_with("application/json"));
        assert_eq!(issued["token_type"], "Bearer");
        assert_eq!(issued["scope"], WRITE);
        assert_eq!(issued["expires_in"], 120, "default access-token lifetime");
        let access_token = issued["access_token"].as_str().expect("access_token");

        let header = jsonwebtoken::decode_header(access_token).unwrap();
        assert!(header.kid.is_some(), "access tokens name their signing key");
        let claims = broker.verify(access_token).await;
        assert_eq!(claims["iss"], broker.issuer());
        assert_eq!(claims["client_id"], client.id.as_str());
        assert_eq!(claims["client_amr"], "private_key_jwt");
        assert_eq!(
            claims["consumer"],
            json!({"authority": "iso6523-actorid-upis", "ID": format!("0192:{DIGDIR}")})
        );
        assert_eq!(claims["scope"], WRITE);
        assert!(claims["jti"].as_str().is_some_and(|jti| !jti.is_empty()));
        let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
        assert!((iat - broker_tests::now()).abs() <= 10, "iat is now");
        assert_eq!(exp - iat, 120);

        let platform_token = broker.platform_token(access_token).await;
        let platform = broker.verify(&platform_token).await;
        assert_eq!(platform["iss"], broker.platform_issuer());
        assert_eq!(platform["urn:altinn:orgNumber"], DIGDIR);
        assert_eq!(platform["urn:altinn:authenticatemethod"], "maskinporten");
        assert_eq!(platform["urn:altinn:authlevel"], 3);
        assert!(platform["sid"].as_str().is_some_and(|sid| !sid.is_empty()), "a fresh sid");
        for copied in ["client_id", "consumer", "scope", "jti"] {
            assert_eq!(platform[copied], claims[copied], "{copied} is copied");
        }
        for dropped in ["aud", "client_amr"] {
            assert!(platform.get(dropped).is_none(), "{dropped} is dropped: {platform}");
        }
        let lifetime = platform["exp"].as_i64().unwrap() - platform["iat"].as_i64().unwrap();
        assert_eq!(lifetime, 1800, "platform tokens live 30 minutes");

        let me = broker.whoami(access_token).await.expect_status(200).json();
        assert_eq!(me["organisation"], DIGDIR);
        assert_eq!(me["clientId"], client.id.as_str());
        assert_eq!(me["scopes"], json!([WRITE]));
        assert_eq!(me["orgCode"], serde_json::Value::Null);
        assert_eq!(me["tokenKind"], "Maskinporten");

        let me = broker.whoami(&platform_token).await.expect_status(200).json();
        assert_eq!(me["organisation"], DIGDIR);
        assert_eq!(me["clientId"], client.id.as_str());
        assert_eq!(me["scopes"], json!([WRITE]));
        assert_eq!(me["tokenKind"], "Platform");
    }
}

on_each_database! {
    /// Clients are listed, fetched and deleted; a deleted client gets no more tokens.
    async fn the_registry_lists_gets_and_deletes_clients(db: Database) {
        let broker = Broker::start(BrokerOptions::new().database(db)).await;
        let first = broker.register_client(DIGDIR, &[WRITE]).await;
        let second = broker.register_client(broker_tests::BRREG, &[READ]).await;

        let listed = broker.admin_get("/admin/v1/clients").await.expect_status(200).json();
        let ids = client_ids(&listed);
        assert!(ids.contains(&first.id) && ids.contains(&second.id), "listed: {listed}");

        let fetched = broker
            .admin_get(&format!("/admin/v1/clients/{}", second.id))
            .await
            .expect_status(200)
            .json();
        assert_eq!(fetched["clientId"], second.id.as_str());
        assert_eq!(fetched["orgNumber"], broker_tests::BRREG);
        assert_eq!(fetched["scopes"], json!([READ]));
        assert_eq!(fetched["jwks"]["keys"][0]["kid"], second.keys.kid());
        assert!(fetched["created"].is_string());

        let deleted = broker.admin_delete(&format!("/admin/v1/clients/{}", first.id)).await;
        assert!(deleted.status.is_success(), "delete: {} {}", deleted.status, deleted.body);
        broker
            .admin_get(&format!("/admin/v1/clients/{}", first.id))
            .await
            .assert_problem(404);
        let listed = broker.admin_get("/admin/v1/clients").await.expect_status(200).json();
        assert!(!client_ids(&listed).contains(&first.id), "still listed: {listed}");

        let refused = first.request_token(&first.assertion()).await;
        assert_refused_as_unknown_client(&refused);
    }
}

on_each_database! {
    /// A key added to a client signs grants at once; a removed key signs no more.
    async fn added_keys_sign_and_removed_keys_are_refused(db: Database) {
        let broker = Broker::start(BrokerOptions::new().database(db)).await;
        let client = broker.register_client(DIGDIR, &[WRITE]).await;
        let old_key = client.keys.clone();
        let new_key = ClientKeys::generate();

        let added = broker
            .admin_post(&format!("/admin/v1/clients/{}/keys", client.id), &new_key.jwk())
            .await;
        assert!(added.status.is_success(), "add key: {} {}", added.status, added.body);
        let with_new_key = client.assertion().signed_by(&new_key).kid(new_key.kid());
        client.request_token(&with_new_key).await.expect_status(200);

        let removed = broker
            .admin_delete(&format!("/admin/v1/clients/{}/keys/{}", client.id, old_key.kid()))
            .await;
        assert!(removed.status.is_success(), "remove key: {} {}", removed.status, removed.body);
        let fetched = broker
            .admin_get(&format!("/admin/v1/clients/{}", client.id))
            .await
            .expect_status(200)
            .json();
        assert_eq!(fetched["jwks"]["keys"].as_array().map(Vec::len), Some(1));
        assert_eq!(fetched["jwks"]["keys"][0]["kid"], new_key.kid());

        client
            .request_token(&client.assertion())
            .await
            .assert_oauth_error(400, "invalid_grant");
        let with_new_key = client.assertion().signed_by(&new_key).kid(new_key.kid());
        client.request_token(&with_new_key).await.expect_status(200);
    }
}

on_each_database! {
    /// A client holds at most ten keys: an eleventh is a conflict with what it has (409, a
    /// problem), not a bad key, and leaves the ten as they were.
    async fn an_eleventh_key_is_a_conflict(db: Database) {
        let broker = Broker::start(BrokerOptions::new().database(db)).await;
        let client = broker.register_client(DIGDIR, &[WRITE]).await;
        let keys = format!("/admin/v1/clients/{}/keys", client.id);
        // The same public key under other ids: a key's validity is not what is tested here.
        let key_named = |kid: String| {
            let mut jwk = client.keys.jwk();
            jwk["kid"] = kid.into();
            jwk
        };
        for n in 2..=10 {
            broker
                .admin_post(&keys, &key_named(format!("key-{n}")))
                .await
                .expect_status(200);
        }

        let refused = broker.admin_post(&keys, &key_named("key-11".into())).await;
        assert!(refused.content_type().starts_with("application/problem+json"));
        let problem = refused.expect_status(409).json();
        assert!(
            problem["detail"].as_str().is_some_and(|detail| detail.contains("10 keys")),
            "{problem}"
        );
        let fetched = broker
            .admin_get(&format!("/admin/v1/clients/{}", client.id))
            .await
            .expect_status(200)
            .json();
        assert_eq!(fetched["jwks"]["keys"].as_array().map(Vec::len), Some(10));
    }
}

on_each_database! {
    /// Maskinporten only recommends `jti`, and Altinn's own scripts leave it out: such a grant
    /// gets a token, and is still single-use, by a digest of what it signs.
    async fn a_grant_without_jti_gets_a_token_once(db: Database) {
        let broker = Broker::start(BrokerOptions::new().database(db)).await;
        let client = broker.register_client(DIGDIR, &[WRITE]).await;
        // Built from one base so they differ for certain: `iat` is whole seconds.
        let base = client.assertion().without_jti();
        let first = base.sign();
        let another = base.clone().lifetime(90);
        let with_null_jti = base.lifetime(100).claim("jti", serde_json::Value::Null);

        broker.request_token(&first).await.expect_status(200);
        let replayed = broker
            .request_token(&first)
            .await
            .assert_oauth_error(400, "invalid_grant");
        let description = replayed["error_description"].as_str().unwrap_or_default();
        assert!(description.contains("already used"), "says why: {replayed}");

        client.request_token(&another).await.expect_status(200);
        client.request_token(&with_null_jti).await.expect_status(200);
        // Signed anew it is the same grant: the digest covers what is signed, not the signature.
        client
            .request_token(&with_null_jti)
            .await
            .assert_oauth_error(400, "invalid_grant");
    }
}

#[tokio::test]
async fn the_metadata_document_describes_the_token_endpoint() {
    let broker = Broker::start(BrokerOptions::new()).await;
    let metadata = broker
        .get("/.well-known/oauth-authorization-server")
        .await
        .expect_status(200)
        .json();
    assert_eq!(metadata["issuer"], broker.issuer());
    assert_eq!(metadata["token_endpoint"], broker.url("/token"));
    assert_eq!(metadata["jwks_uri"], broker.url("/jwk"));
    assert_eq!(
        metadata["grant_types_supported"],
        json!(["urn:ietf:params:oauth:grant-type:jwt-bearer"])
    );
    assert_eq!(
        metadata["token_endpoint_auth_methods_supported"],
        json!(["private_key_jwt"])
    );
    assert_eq!(
        metadata["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "RS384", "RS512"])
    );

    let jwks = broker.get("/jwk").await.expect_status(200).json();
    let keys = jwks["keys"].as_array().expect("a JWK set");
    assert!(!keys.is_empty(), "at least the current signing key");
    for key in keys {
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "RS256");
        for field in ["kid", "n", "e"] {
            assert!(key[field].is_string(), "{field} in {key}");
        }
    }
}

#[tokio::test]
async fn health_and_openapi_answer() {
    let broker = Broker::start(BrokerOptions::new()).await;
    broker.get("/health").await.expect_status(200);
    let openapi = broker.get("/openapi.json").await.expect_status(200).json();
    assert!(openapi["openapi"].is_string(), "openapi version: {openapi}");
    assert!(openapi["paths"].get("/token").is_some(), "documents /token");
}

#[tokio::test]
async fn a_bad_organisation_number_is_a_400_problem() {
    let broker = Broker::start(BrokerOptions::new()).await;
    let keys = ClientKeys::generate();
    for org in ["991825828", "12345678", "abcdefghi"] {
        let body = json!({"orgNumber": org, "scopes": [WRITE], "jwks": keys.jwks()});
        let problem = broker
            .admin_post("/admin/v1/clients", &body)
            .await
            .assert_problem(400);
        assert!(problem["errors"].is_object(), "field errors in {problem}");
    }
}

#[tokio::test]
async fn the_admin_api_refuses_a_wrong_or_missing_admin_token() {
    let broker = Broker::start(BrokerOptions::new()).await;
    let keys = ClientKeys::generate();
    let body = json!({"orgNumber": DIGDIR, "scopes": [WRITE], "jwks": keys.jwks()});
    for token in [Some("not-the-admin-token"), None] {
        broker
            .admin_call(token, Method::POST, "/admin/v1/clients", Some(&body))
            .await
            .expect_status(401);
        broker
            .admin_call(token, Method::GET, "/admin/v1/clients", None)
            .await
            .expect_status(401);
    }
    // And nothing was created by the refused calls.
    let listed = broker
        .admin_get("/admin/v1/clients")
        .await
        .expect_status(200)
        .json();
    assert!(client_ids(&listed).is_empty(), "listed: {listed}");
}

/// The client ids in a list answer: a bare array or an object holding one.
fn client_ids(listed: &serde_json::Value) -> Vec<String> {
    let items = listed.as_array().or_else(|| {
        ["clients", "items", "data"]
            .iter()
            .find_map(|field| listed[*field].as_array())
    });
    items
        .unwrap_or_else(|| panic!("no list of clients in {listed}"))
        .iter()
        .filter_map(|client| client["clientId"].as_str().map(str::to_owned))
        .collect()
}

/// RFC 6749 leaves the choice open: 400/401 with `invalid_client` or `invalid_grant`.
fn assert_refused_as_unknown_client(reply: &broker_tests::Reply) {
    assert!(
        matches!(reply.status.as_u16(), 400 | 401),
        "unknown client: {} {}",
        reply.status,
        reply.body
    );
    let body = reply.json();
    assert!(
        matches!(
            body["error"].as_str(),
            Some("invalid_client" | "invalid_grant")
        ),
        "unknown client: {body}"
    );
    assert!(body["error_description"].is_string(), "{body}");
}
