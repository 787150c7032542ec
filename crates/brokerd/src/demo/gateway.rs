//! The demo's calls to the broker it runs, over the gateway's public HTTP API: as the operator
//! (the admin credential) and as the service owner (a platform token from its client), the same
//! paths an operator follows by hand (see the README), so the demo exercises them rather than
//! going around them.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::DemoError;
use super::keys::ClientKey;

/// The grant type of `POST /token`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The gateway of the running broker.
pub struct Gateway {
    http: reqwest::Client,
    base: String,
}

impl Gateway {
    /// A client of the gateway at `base` (`http://host:port`).
    pub fn new(base: String) -> Result<Self, DemoError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|source| DemoError::Http {
                what: "building the HTTP client".to_owned(),
                source,
            })?;
        Ok(Self { http, base })
    }

    /// `method path` with `bearer` (and a JSON `body`); `what` names the step in errors, and
    /// the call must answer one of `accepted`. Answers the status and the body.
    pub async fn call(
        &self,
        what: &str,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
        accepted: &[StatusCode],
    ) -> Result<(StatusCode, String), DemoError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(bearer);
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(what, request, accepted).await
    }

    /// A Maskinporten-style access token of `client_id` for `scopes`.
    pub async fn token(
        &self,
        client_id: &str,
        key: &ClientKey,
        scopes: &[&str],
    ) -> Result<String, DemoError> {
        let metadata = self.http.get(format!(
            "{}/.well-known/oauth-authorization-server",
            self.base
        ));
        let (_, metadata) = answer("reading the issuer", metadata, &[StatusCode::OK]).await?;
        let issuer = json_field(&metadata, "issuer", "reading the issuer")?;
        let assertion = key.assertion(client_id, &issuer, &scopes.join(" "))?;
        let request = self
            .http
            .post(format!("{}/token", self.base))
            .form(&[("grant_type", JWT_BEARER), ("assertion", &assertion)]);
        let what = format!("getting a token for {client_id}");
        let (_, token) = answer(&what, request, &[StatusCode::OK]).await?;
        json_field(&token, "access_token", &what)
    }

    /// The platform token `token` exchanges for, as Altinn's service owners call with.
    pub async fn platform_token(&self, token: &str) -> Result<String, DemoError> {
        let request = self
            .http
            .get(format!(
                "{}/authentication/api/v1/exchange/maskinporten",
                self.base
            ))
            .bearer_auth(token);
        let (_, platform) = answer("exchanging a token", request, &[StatusCode::OK]).await?;
        Ok(platform.trim().to_owned())
    }
}

/// Sends `request`; any status outside `accepted` is [`DemoError::Refused`].
async fn answer(
    what: &str,
    request: reqwest::RequestBuilder,
    accepted: &[StatusCode],
) -> Result<(StatusCode, String), DemoError> {
    let failed = |source| DemoError::Http {
        what: what.to_owned(),
        source,
    };
    let response = request.send().await.map_err(failed)?;
    let status = response.status();
    let body = response.text().await.map_err(failed)?;
    if accepted.contains(&status) {
        Ok((status, body))
    } else {
        Err(DemoError::Refused {
            what: what.to_owned(),
            status: status.as_u16(),
            body,
        })
    }
}

/// The string `field` of a JSON object `body`.
fn json_field(body: &str, field: &str, what: &str) -> Result<String, DemoError> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|value| value[field].as_str().map(str::to_owned))
        .ok_or_else(|| DemoError::Unexpected {
            what: what.to_owned(),
            body: body.to_owned(),
        })
}
