//! A gateway under test: the real router, its service addresses pointing at closed ports, and
//! tokens signed with a fixed test key the verifier trusts.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use broker_common::Problem;
use broker_common::admin::AdminToken;
use broker_common::auth::{JwkSet, JwksSource, RsaJwk, TokenVerifier};
use broker_common::config::CommonConfig;
use broker_common::config::ServiceUrls;
use broker_gateway::AppState;
use http::{Request, Response};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The admin credential of every test gateway.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Digdir's organisation number: nine digits with a valid check digit.
pub const ORG: &str = "991825827";

/// A 2048-bit RSA key made for these tests only.
const TEST_KEY_PEM: &[u8] = include_bytes!("test-key.pem");
/// The modulus of [`TEST_KEY_PEM`], base64url.
const TEST_KEY_N: &str = "t4UhtWNn0LLh-KecPtBOmKPa0LFQ8JOLKk-oViJIZL-hd5kT7Vyc-ln6PqsS2vAIw-gRatnlue551_HlF3Z-K_1a67sOKeVQPv3Q5ut1czIhfgJ52aepxfShtpA-mn7-wHw3Q6GRjqqLEo94OPE_OF0CDJrSYmUuy8iYEzHdFPIwWIdMWL04nz5MM9Uu6SyuFwXnJypWm6HWpbs-9QD582M1RkRyvC8e0IfnLBUs1Dih18sFle18F1g67hkgIM8s5MkGytupuMZgQX32Ev22HwUVmOdoR2FpgV3tF85pOV9owRZxCCHPSgFgdRI2wVC2-_1OHICPVwVoABSSIGULsw";
/// The `kid` the verifier knows the test key by.
pub const TEST_KID: &str = "test-key";

/// Publishes the test key, as the token service would publish its signing keys.
struct TestKeys;

#[async_trait::async_trait]
impl JwksSource for TestKeys {
    async fn fetch(&self) -> Result<JwkSet, Problem> {
        Ok(JwkSet {
            keys: vec![RsaJwk {
                kty: "RSA".to_owned(),
                kid: TEST_KID.to_owned(),
                n: TEST_KEY_N.to_owned(),
                e: "AQAB".to_owned(),
                key_use: Some("sig".to_owned()),
                alg: Some("RS256".to_owned()),
            }],
        })
    }
}

/// A loopback URL nothing listens on, so every gRPC call fails as the service being down.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{addr}")
}

/// Serves a stand-in backend's gRPC `routes` on a loopback port; its URL.
pub async fn serve_backend(routes: tonic::service::Routes) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let server = tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    url
}

/// The settings every test gateway shares (issuers derive from the default public URL).
pub fn common() -> CommonConfig {
    CommonConfig::default()
}

/// State whose services are down but whose verifier trusts the test key.
pub fn state() -> AppState {
    state_with_filetransfer(closed_port_url())
}

/// [`state`], but with the file-transfer service at `filetransfer_url`.
pub fn state_with_filetransfer(filetransfer_url: String) -> AppState {
    let common = common();
    let config = ServiceUrls {
        token_url: closed_port_url(),
        access_url: closed_port_url(),
        filetransfer_url,
        events_url: closed_port_url(),
    };
    let verifier = TokenVerifier::new(
        common.issuer(),
        common.platform_issuer(),
        Arc::new(TestKeys),
    );
    AppState::new(&common, &config, AdminToken::new(ADMIN_TOKEN))
        .expect("valid service URLs")
        .with_verifier(verifier)
}

/// The gateway's full router over [`state`].
pub fn gateway() -> Router {
    broker_gateway::router(state())
}

/// Sends one request and returns the answer with its body parsed as JSON (`Null` if empty).
pub async fn send(app: &Router, request: Request<Body>) -> (Response<()>, Value) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (Response::from_parts(parts, ()), json)
}

/// A header of `response` as text.
pub fn header<'a>(response: &'a Response<()>, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("text header"))
        .unwrap_or_default()
}

/// A GET request.
pub fn get(uri: &str) -> http::request::Builder {
    Request::get(uri)
}

/// Seconds since the epoch.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// The claims of a Maskinporten-style access token for [`ORG`] with `scope`.
pub fn maskinporten_claims(scope: &str) -> Value {
    json!({
        "iss": common().issuer(),
        "client_id": "test-client",
        "scope": scope,
        "consumer": {"authority": "iso6523-actorid-upis", "ID": format!("0192:{ORG}")},
        "iat": now(),
        "exp": now() + 120,
        "jti": "test-jti",
    })
}

/// The claims of a platform token (from the exchange) for a service owner.
pub fn platform_claims(scope: &str) -> Value {
    json!({
        "iss": common().platform_issuer(),
        "client_id": "test-client",
        "scope": scope,
        "urn:altinn:orgNumber": ORG,
        "urn:altinn:org": "digdir",
        "iat": now(),
        "exp": now() + 120,
    })
}

/// `claims` signed with the test key under `kid`.
pub fn sign_with_kid(claims: &Value, kid: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(TEST_KEY_PEM).expect("test key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

/// `claims` signed with the test key.
pub fn sign(claims: &Value) -> String {
    sign_with_kid(claims, TEST_KID)
}

/// The `traceId` the gateway gives a problem of an untraced request with id `request_id`: the
/// W3C form ASP.NET writes, made of the id's hex.
pub fn trace_id_of(request_id: &str) -> String {
    let simple = request_id.replace('-', "");
    format!("00-{simple}-{}-00", &simple[16..])
}
