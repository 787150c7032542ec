//! A registered client: its id, organisation, scopes and key pair, and the calls it makes.

use crate::api::Api;
use crate::assertion::Assertion;
use crate::keys::ClientKeys;
use crate::reply::Reply;

/// A client registered through the admin API.
#[derive(Clone)]
pub struct TestClient {
    /// The client id (the assertion's `iss`).
    pub id: String,
    /// The organisation it acts for.
    pub org: String,
    /// The scopes it was granted.
    pub scopes: Vec<String>,
    /// The key pair it signs with.
    pub keys: ClientKeys,
    pub(crate) api: Api,
}

impl TestClient {
    /// A valid grant for all the client's scopes, signed with its key.
    pub fn assertion(&self) -> Assertion {
        Assertion::new(
            &self.keys,
            &self.id,
            &self.api.issuer(),
            &self.scopes.join(" "),
        )
    }

    /// Sends `assertion` to `POST /token`.
    pub async fn request_token(&self, assertion: &Assertion) -> Reply {
        self.api.request_token(&assertion.sign()).await
    }

    /// An access token for `scopes`; panics unless the broker issues one.
    pub async fn token(&self, scopes: &[&str]) -> String {
        let reply = self
            .request_token(&self.assertion().scope(&scopes.join(" ")))
            .await;
        let body = reply.expect_status(200).json();
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {body}"))
            .to_owned()
    }
}
