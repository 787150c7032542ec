//! What the access registry's gRPC tests share: a registry started on a loopback port with
//! real signed tokens, and request builders.

#![allow(dead_code)] // Each test binary uses its own subset of these helpers.

use std::sync::Arc;

use broker_bus::Bus;
use broker_common::Problem;
use broker_common::Shutdown;
use broker_common::admin::AdminToken;
use broker_common::auth::{JwkSet, JwksSource, TokenVerifier};
use broker_common::config::CommonConfig;
use broker_common::grpc::with_bearer;
use broker_proto::access as pb;
use broker_proto::access::access_registry_client::AccessRegistryClient;
use broker_proto::common::Principal;
use broker_tests::ClientKeys;
use serde_json::json;
use tonic::Request;
use tonic::transport::Channel;

pub const ADMIN: &str = "test-admin-token";

/// The token service's published keys, as a test key source: one RSA key this test signs with.
pub struct TestKeys(pub ClientKeys);

#[async_trait::async_trait]
impl JwksSource for TestKeys {
    async fn fetch(&self) -> Result<JwkSet, Problem> {
        Ok(serde_json::from_value(self.0.jwks()).expect("a JWK set"))
    }
}

pub struct Registry {
    pub client: AccessRegistryClient<Channel>,
    pub url: String,
    keys: ClientKeys,
    issuer: String,
    shutdown: Shutdown,
    dir: std::path::PathBuf,
}

impl Registry {
    /// Starts a registry on `database_url`, or on SQLite in a fresh data directory, with an
    /// in-process bus.
    pub async fn start(database_url: Option<&str>) -> Self {
        let dir = std::env::temp_dir().join(format!("broker-access-grpc-{}", uuid::Uuid::new_v4()));
        Self::start_with(
            database_url,
            dir,
            ClientKeys::generate(),
            Arc::new(broker_bus::InProcessBus::new()),
        )
        .await
    }

    /// Starts a registry on `database_url` (or SQLite in `dir`), trusting tokens signed by
    /// `keys`, announcing changes on `bus`. Replicas share `dir` and `keys`.
    pub async fn start_with(
        database_url: Option<&str>,
        dir: std::path::PathBuf,
        keys: ClientKeys,
        bus: Arc<dyn Bus>,
    ) -> Self {
        let common = CommonConfig {
            data_dir: dir.clone(),
            database_url: database_url.map(str::to_owned),
            ..CommonConfig::default()
        };
        let verifier = Arc::new(TokenVerifier::new(
            common.issuer(),
            common.platform_issuer(),
            Arc::new(TestKeys(keys.clone())),
        ));
        let server = broker_access::build(&common, AdminToken::new(ADMIN), verifier, bus)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = Shutdown::new();
        tokio::spawn(server.serve(listener, shutdown.clone()));
        Self {
            client: AccessRegistryClient::connect(url.clone()).await.unwrap(),
            url,
            keys,
            issuer: common.issuer(),
            shutdown,
            dir,
        }
    }

    /// A request carrying a token of `org` with `scopes`.
    pub fn as_org<T>(&self, org: &str, scopes: &[&str], message: T) -> Request<T> {
        let now = chrono::Utc::now().timestamp();
        let token = self.keys.sign(&json!({
            "iss": self.issuer,
            "consumer": {"authority": "iso6523-actorid-upis", "ID": format!("0192:{org}")},
            "scope": scopes.join(" "),
            "client_id": format!("client-{org}"),
            "iat": now,
            "exp": now + 120,
            "jti": uuid::Uuid::new_v4().to_string(),
        }));
        with_bearer(Request::new(message), &token)
    }

    pub fn as_admin<T>(message: T) -> Request<T> {
        with_bearer(Request::new(message), ADMIN)
    }

    pub async fn authorize(&mut self, principal: &str, action: &str, party: &str) -> String {
        let decision = self
            .client
            .authorize(question(principal, action, party))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(decision.permit, decision.reason == "permit");
        decision.reason
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.shutdown.trigger();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn urn(org: &str) -> String {
    format!("urn:altinn:organization:identifier-no:{org}")
}

pub fn question(principal: &str, action: &str, party: &str) -> pb::AuthorizeRequest {
    pb::AuthorizeRequest {
        principal: Some(Principal {
            org_number: principal.to_owned(),
            ..Principal::default()
        }),
        action: action.to_owned(),
        resource: "broker-resource".to_owned(),
        party: urn(party),
        instance: String::new(),
    }
}

/// Digdir's broker resource as the gateway writes it: every member Altinn's rules require.
pub fn broker_resource(mode: &str) -> String {
    let texts = json!({"nb": "Formidling", "nn": "Formidling", "en": "Broker"});
    json!({
        "identifier": "broker-resource",
        "title": texts,
        "description": texts,
        "rightDescription": texts,
        "contactPoints": [],
        "hasCompetentAuthority": {"organization": broker_tests::DIGDIR},
        "resourceType": "BrokerService",
        "accessListMode": mode,
    })
    .to_string()
}

/// Conditions naming one version in `If-Match`.
pub fn if_match(version: u64) -> Option<pb::Conditions> {
    Some(pb::Conditions {
        if_match: vec![version],
        ..pb::Conditions::default()
    })
}

pub fn status_of<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> u16 {
    Problem::from(result.expect_err("expected a problem")).status
}

pub fn list_request(identifier: &str) -> pb::UpsertAccessListRequest {
    pb::UpsertAccessListRequest {
        owner: "digdir".into(),
        identifier: identifier.into(),
        name: format!("list {identifier}"),
        ..pb::UpsertAccessListRequest::default()
    }
}
