//! The HTTP face of a running broker: plain requests, the admin API, the token endpoint, the
//! exchange, and verifying issued tokens against the published keys.
//!
//! Every request checks the one rule that holds for all of them: the broker never answers 5xx.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::broker::ProcessLog;
use crate::client::TestClient;
use crate::keys::ClientKeys;
use crate::reply::Reply;

/// A handle on a broker's gateway. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    base: String,
    admin: String,
    http: reqwest::Client,
    log: ProcessLog,
}

impl Api {
    pub(crate) fn new(base: String, admin: String, log: ProcessLog) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        Self {
            base,
            admin,
            http,
            log,
        }
    }

    /// The gateway's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The Maskinporten-style issuer: the base URL with a trailing slash.
    pub fn issuer(&self) -> String {
        format!("{}/", self.base)
    }

    /// The issuer of platform tokens from the exchange.
    pub fn platform_issuer(&self) -> String {
        format!("{}/authentication/api/v1/openid/", self.base)
    }

    /// The admin credential.
    pub fn admin_token(&self) -> &str {
        &self.admin
    }

    /// What the broker process wrote so far (stdout and stderr), for failure messages.
    pub fn process_output(&self) -> String {
        self.log.text()
    }

    /// Sends a request, panicking (with the broker's output) on a transport error or a 5xx other
    /// than 501, which Altinn's Resource Registry answers on purpose (and so does Broker).
    pub async fn send(&self, request: RequestBuilder) -> Reply {
        let built = request.build().expect("building a request");
        let what = format!("{} {}", built.method(), built.url().path());
        let response = match self.http.execute(built).await {
            Ok(response) => response,
            Err(error) => panic!(
                "{what}: request failed: {error:#}\n--- broker output ---\n{}",
                self.log.text()
            ),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        let reply = Reply {
            request: what,
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        };
        assert!(
            !status.is_server_error() || status == reqwest::StatusCode::NOT_IMPLEMENTED,
            "{}: the broker answered {status}: {}\n--- broker output ---\n{}",
            reply.request,
            reply.body,
            self.log.text()
        );
        reply
    }

    /// A request builder for `path`.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// `GET path` without credentials.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }

    /// `GET path` with `Authorization: Bearer token`.
    pub async fn get_as(&self, token: &str, path: &str) -> Reply {
        self.send(self.request(Method::GET, path).bearer_auth(token))
            .await
    }

    /// `POST path` with a form body.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.send(self.request(Method::POST, path).form(fields))
            .await
    }

    /// An admin API call with `token` as the bearer (`None`: no `Authorization` header).
    pub async fn admin_call(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.request(method, path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    /// `GET` on the admin API with the admin credential.
    pub async fn admin_get(&self, path: &str) -> Reply {
        self.admin_call(Some(&self.admin), Method::GET, path, None)
            .await
    }

    /// `POST` JSON on the admin API with the admin credential.
    pub async fn admin_post(&self, path: &str, body: &Value) -> Reply {
        self.admin_call(Some(&self.admin), Method::POST, path, Some(body))
            .await
    }

    /// `DELETE` on the admin API with the admin credential.
    pub async fn admin_delete(&self, path: &str) -> Reply {
        self.admin_call(Some(&self.admin), Method::DELETE, path, None)
            .await
    }

    /// Registers a client of `org` with `scopes` and a new key pair.
    pub async fn register_client(&self, org: &str, scopes: &[&str]) -> TestClient {
        self.register_client_with_keys(org, scopes, ClientKeys::generate())
            .await
    }

    /// Registers a client of `org` with `scopes` and the public half of `keys`.
    pub async fn register_client_with_keys(
        &self,
        org: &str,
        scopes: &[&str],
        keys: ClientKeys,
    ) -> TestClient {
        let body = json!({
            "orgNumber": org,
            "scopes": scopes,
            "jwks": keys.jwks(),
            "name": format!("test client of {org}"),
        });
        let created = self
            .admin_post("/admin/v1/clients", &body)
            .await
            .expect_status(201)
            .json();
        let id = created["clientId"]
            .as_str()
            .unwrap_or_else(|| panic!("no clientId in {created}"))
            .to_owned();
        TestClient {
            id,
            org: org.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            keys,
            api: self.clone(),
        }
    }

    /// `POST /token` with the JWT-bearer grant and `assertion`.
    pub async fn request_token(&self, assertion: &str) -> Reply {
        self.post_form(
            "/token",
            &[("grant_type", crate::JWT_BEARER), ("assertion", assertion)],
        )
        .await
    }

    /// `GET /authentication/api/v1/exchange/maskinporten` with `token`.
    pub async fn exchange(&self, token: &str) -> Reply {
        self.get_as(token, "/authentication/api/v1/exchange/maskinporten")
            .await
    }

    /// `GET /api/v1/whoami` with `token`.
    pub async fn whoami(&self, token: &str) -> Reply {
        self.get_as(token, "/api/v1/whoami").await
    }

    /// Exchanges `token` for a platform token; panics unless that succeeds.
    pub async fn platform_token(&self, token: &str) -> String {
        self.exchange(token).await.expect_status(200).body
    }

    /// Verifies `token`'s RS256 signature and lifetime against `GET /jwk` (any issuer) and
    /// returns its claims.
    pub async fn verify(&self, token: &str) -> Value {
        let header = jsonwebtoken::decode_header(token)
            .unwrap_or_else(|error| panic!("not a JWT ({error}): {token}"));
        assert_eq!(header.alg, Algorithm::RS256, "tokens are signed with RS256");
        let kid = header.kid.expect("the token's header names its kid");
        let jwks = self.get("/jwk").await.expect_status(200).json();
        let jwk = jwks["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|key| key["kid"] == kid.as_str()))
            .unwrap_or_else(|| panic!("kid {kid} is not published at /jwk: {jwks}"));
        let key = DecodingKey::from_rsa_components(
            jwk["n"].as_str().expect("n"),
            jwk["e"].as_str().expect("e"),
        )
        .expect("a usable published key");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iat", "iss"]);
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .unwrap_or_else(|error| panic!("token does not verify against /jwk: {error}"))
            .claims
    }
}

/// A JWT's claims, read without checking anything (to inspect or forge tokens).
pub fn claims_unverified(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}
