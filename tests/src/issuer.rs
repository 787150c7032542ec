//! A fake external Maskinporten-style issuer on loopback: RFC 8414 metadata and a JWK set over
//! HTTP, and tokens signed with its key, to test which issuers the broker trusts.

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::keys::ClientKeys;

/// A running fake issuer; the server stops on drop.
pub struct FakeIssuer {
    base: String,
    keys: ClientKeys,
    server: JoinHandle<()>,
}

impl FakeIssuer {
    /// Serves `/.well-known/oauth-authorization-server` and `/jwk` on a random loopback port.
    pub async fn start() -> Self {
        let keys = ClientKeys::generate();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the fake issuer");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let metadata = json!({
            "issuer": format!("{base}/"),
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": format!("{base}/jwk"),
            "grant_types_supported": ["urn:ietf:params:oauth:grant-type:jwt-bearer"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "RS512"],
        });
        let jwks = keys.jwks();
        let app = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || async move { Json(metadata) }),
            )
            .route("/jwk", get(move || async move { Json(jwks) }));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, keys, server }
    }

    /// The issuer identifier, with a trailing slash.
    pub fn issuer(&self) -> String {
        format!("{}/", self.base)
    }

    /// The metadata URL to list in `BROKER_TRUSTED_ISSUERS`.
    pub fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-authorization-server", self.base)
    }

    /// The claims of a Maskinporten access token for `org` with `scope`, valid for two minutes.
    pub fn claims(&self, org: &str, scope: &str) -> Value {
        let now = crate::now();
        json!({
            "iss": self.issuer(),
            "client_id": format!("external-{}", uuid::Uuid::new_v4().simple()),
            "client_amr": "private_key_jwt",
            "consumer": { "authority": "iso6523-actorid-upis", "ID": format!("0192:{org}") },
            "scope": scope,
            "token_type": "Bearer",
            "iat": now,
            "exp": now + 120,
            "jti": uuid::Uuid::new_v4().to_string(),
        })
    }

    /// A Maskinporten-style access token for `org` with `scope`, signed by this issuer.
    pub fn token(&self, org: &str, scope: &str) -> String {
        self.keys.sign(&self.claims(org, scope))
    }

    /// Signs arbitrary claims with this issuer's key.
    pub fn sign(&self, claims: &Value) -> String {
        self.keys.sign(claims)
    }
}

impl Drop for FakeIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}
