//! A typed client of the broker's public HTTP API. Every unsuccessful answer becomes a
//! [`CliError`] here (problem, OAuth error or transport failure), so commands only see results.
//! The tus requests of resumable uploads are in [`tus`].

pub mod tus;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::auth::{self, AccessToken};
use crate::error::{self, CliError};

/// How long to wait for a connection; transfers themselves may take as long as they take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The file-transfer API.
const FILE_TRANSFERS: &str = "/broker/api/v1/filetransfer";
/// The event subscriptions.
const SUBSCRIPTIONS: &str = "/events/api/v1/subscriptions";

/// HTTP to one broker, without credentials.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    /// A client for the gateway at `base` (no trailing slash).
    pub fn new(base: &str) -> Result<Self, CliError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("broker-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| CliError::Config(format!("cannot set up HTTP: {error}")))?;
        Ok(Self {
            client,
            base: base.to_owned(),
        })
    }

    fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request`; any answer but 2xx is an error.
    async fn send(request: RequestBuilder) -> Result<Response, CliError> {
        let response = request.send().await?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error::from_response(response).await)
    }

    /// `GET path` as JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> Result<T, CliError> {
        Ok(Self::send(self.request(Method::GET, path, token))
            .await?
            .json()
            .await?)
    }

    /// `POST path` with a form, answered with JSON.
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<T, CliError> {
        Ok(
            Self::send(self.request(Method::POST, path, None).form(fields))
                .await?
                .json()
                .await?,
        )
    }
}

/// The declaration that initializes a transfer (Altinn's `FileTransferInitialize`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Initialize {
    /// The resource.
    pub resource_id: String,
    /// The file's name.
    pub file_name: String,
    /// `0192:<orgnr>` of the sender.
    pub sender: String,
    /// `0192:<orgnr>` of each recipient.
    pub recipients: Vec<String>,
    /// The sender's properties.
    pub property_list: std::collections::BTreeMap<String, String>,
    /// MD5 of the file, lowercase hex.
    pub checksum: String,
    /// The sender's own reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub senders_file_transfer_reference: Option<String>,
}

/// How the broker answered a download request.
pub enum Download {
    /// The whole file (200), whether or not a range was asked for.
    Whole(Response),
    /// The asked range (206), with the first byte's offset from `Content-Range`.
    Partial(Response, u64),
    /// The range starts past the end (416).
    PastEnd,
}

/// The broker's API as one client, with its access token.
pub struct Api {
    http: Http,
    token: AccessToken,
}

impl Api {
    /// Calls through `http` with `token`.
    pub fn new(http: Http, token: AccessToken) -> Self {
        Self { http, token }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, path, Some(&self.token.access_token))
    }

    /// Sends `request`; a 401 also drops the token from the cache.
    async fn send(&self, request: RequestBuilder) -> Result<Response, CliError> {
        Http::send(request)
            .await
            .inspect_err(|error| self.check(error))
    }

    /// Forgets the token when `error` says the broker no longer accepts it.
    fn check(&self, error: &CliError) {
        let refused = match error {
            CliError::Problem(problem) => problem.status == StatusCode::UNAUTHORIZED.as_u16(),
            CliError::Refused { status, .. } | CliError::Tus { status, .. } => {
                *status == StatusCode::UNAUTHORIZED
            }
            _ => false,
        };
        if refused {
            auth::forget(&self.token);
        }
    }

    /// Whether the token is about to expire, so a long upload should get a new one first.
    pub fn token_expiring(&self) -> bool {
        !self.token.usable(auth::now())
    }

    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, CliError> {
        Ok(self.send(request).await?.json().await?)
    }

    /// Initializes a transfer and returns its id.
    pub async fn initialize(&self, body: &Initialize) -> Result<String, CliError> {
        let answer: Value = self
            .json(self.request(Method::POST, FILE_TRANSFERS).json(body))
            .await?;
        id_field(&answer, "fileTransferId")
    }

    /// Uploads the file's `length` bytes from `body`.
    pub async fn upload(&self, id: &str, body: reqwest::Body, length: u64) -> Result<(), CliError> {
        // The length is sent so the broker can refuse a file too large before any byte moves.
        let request = self
            .request(Method::POST, &format!("{FILE_TRANSFERS}/{id}/upload"))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, length)
            .body(body);
        self.send(request).await.map(drop)
    }

    /// The transfer's overview (`details`: with the status histories), as the broker wrote it.
    pub async fn transfer(&self, id: &str, details: bool) -> Result<Value, CliError> {
        let suffix = if details { "/details" } else { "" };
        self.json(self.request(Method::GET, &format!("{FILE_TRANSFERS}/{id}{suffix}")))
            .await
    }

    /// The ids of the caller's transfers matching `query` (`resourceId`, `status`, `role`, …).
    pub async fn search(&self, query: &[(&str, &str)]) -> Result<Vec<String>, CliError> {
        self.json(self.request(Method::GET, FILE_TRANSFERS).query(query))
            .await
    }

    /// Starts downloading the file from byte `from` on.
    pub async fn download(&self, id: &str, from: u64) -> Result<Download, CliError> {
        let mut request = self.request(Method::GET, &format!("{FILE_TRANSFERS}/{id}/download"));
        if from > 0 {
            request = request.header(header::RANGE, format!("bytes={from}-"));
        }
        let response = request.send().await?;
        match response.status() {
            StatusCode::OK => Ok(Download::Whole(response)),
            StatusCode::PARTIAL_CONTENT => {
                let start = response
                    .headers()
                    .get(header::CONTENT_RANGE)
                    .and_then(|value| value.to_str().ok())
                    .and_then(crate::commands::download::content_range_start)
                    .ok_or_else(|| CliError::Unexpected {
                        status: StatusCode::PARTIAL_CONTENT,
                        body: "a partial answer without a readable Content-Range".to_owned(),
                    })?;
                Ok(Download::Partial(response, start))
            }
            StatusCode::RANGE_NOT_SATISFIABLE => Ok(Download::PastEnd),
            _ => {
                let error = error::from_response(response).await;
                self.check(&error);
                Err(error)
            }
        }
    }

    /// Confirms the download as this recipient.
    pub async fn confirm(&self, id: &str) -> Result<(), CliError> {
        let path = format!("{FILE_TRANSFERS}/{id}/confirmdownload");
        self.send(self.request(Method::POST, &path)).await.map(drop)
    }

    /// Creates a subscription and returns it as the broker wrote it.
    pub async fn subscribe(&self, body: &Value) -> Result<Value, CliError> {
        self.json(self.request(Method::POST, SUBSCRIPTIONS).json(body))
            .await
    }

    /// The caller's subscriptions (`{"count", "subscriptions"}`).
    pub async fn subscriptions(&self) -> Result<Value, CliError> {
        self.json(self.request(Method::GET, SUBSCRIPTIONS)).await
    }

    /// Deletes a subscription.
    pub async fn unsubscribe(&self, id: &str) -> Result<(), CliError> {
        let path = format!("{SUBSCRIPTIONS}/{id}");
        self.send(self.request(Method::DELETE, &path))
            .await
            .map(drop)
    }

    /// The events matching `query` (`resource`, `after`, …), oldest first.
    pub async fn events(&self, query: &[(&str, &str)]) -> Result<Vec<Value>, CliError> {
        self.json(
            self.request(Method::GET, "/events/api/v1/events")
                .query(query),
        )
        .await
    }
}

/// The text field `name` of `answer`, which must be there.
fn id_field(answer: &Value, name: &str) -> Result<String, CliError> {
    answer[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| CliError::Unexpected {
            status: StatusCode::OK,
            body: format!("no {name} in {answer}"),
        })
}
