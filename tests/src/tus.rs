//! tus 1.0 (resumable uploads) spoken by hand, the way tus-js-client or tuspy speak it: every
//! request names the protocol version, a bearer token authenticates it, and the answers are
//! read from their headers (`Upload-Offset`, `Location`, `Upload-Expires`) and plain-text
//! bodies.
//!
//! [`TusClient`] is one party's view of the uploads of a transfer: create (POST), look (HEAD),
//! write (PATCH), terminate (DELETE). Its calls return the whole [`Reply`] so a test can assert
//! any header; [`TusClient::upload`] and [`TusClient::patch_rest`] drive a whole upload for the
//! tests whose story is elsewhere.

use std::time::Duration;

use base64::Engine;
use reqwest::{Method, RequestBuilder};

use crate::api::Api;
use crate::reply::Reply;

/// Where the transfers' tus uploads live: `{BASE}/{fileTransferId}`.
pub const BASE: &str = "/broker/api/v1/filetransfer/upload/tus";
/// The protocol version every request names (`Tus-Resumable`) and every answer carries.
pub const VERSION: &str = "1.0.0";
/// The content type of a PATCH body, and of a creating POST that carries the first bytes.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// The content type of the plain-text error bodies.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
/// How long [`TusClient::patch_rest`] retries a PATCH refused because another request is still
/// writing the upload (423), e.g. a cut-off one the server has not finished with.
const LOCKED_TIMEOUT: Duration = Duration::from_secs(60);

/// The path of transfer `id`'s own upload (its tus id is the transfer id).
pub fn upload_path(id: &str) -> String {
    format!("{BASE}/{id}")
}

/// The path of partial upload `partial` of transfer `id`.
pub fn partial_path(id: &str, partial: &str) -> String {
    format!("{BASE}/{id}/partial/{partial}")
}

/// A digest algorithm of `Upload-Checksum`.
#[derive(Debug, Clone, Copy)]
pub enum Algorithm {
    /// `md5`.
    Md5,
    /// `sha256`.
    Sha256,
}

/// The `Upload-Checksum` value of `bytes`: the algorithm's name and the base64 digest.
pub fn checksum(algorithm: Algorithm, bytes: &[u8]) -> String {
    // md-5 and sha2 share the `digest` crate's trait.
    use md5::Digest as _;
    let (name, digest) = match algorithm {
        Algorithm::Md5 => ("md5", md5::Md5::digest(bytes).to_vec()),
        Algorithm::Sha256 => ("sha256", sha2::Sha256::digest(bytes).to_vec()),
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
    format!("{name} {encoded}")
}

/// A header of `reply` as a number; panics (showing the reply) when it is missing or not one.
#[track_caller]
pub fn number_header(reply: &Reply, name: &str) -> u64 {
    reply
        .header(name)
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "{}: {} without a numeric {name} (headers {:?}, body {})",
                reply.request, reply.status, reply.headers, reply.body
            )
        })
}

/// `Upload-Offset` of `reply`.
#[track_caller]
pub fn upload_offset(reply: &Reply) -> u64 {
    number_header(reply, "upload-offset")
}

/// Asserts a tus error answer: `status`, `Tus-Resumable`, and the plain-text `text` as body.
#[track_caller]
pub fn assert_text(reply: &Reply, status: u16, text: &str) {
    let shown = format!(
        "{}: {} {:?} {}",
        reply.request,
        reply.status,
        reply.content_type(),
        reply.body
    );
    assert_eq!(reply.status.as_u16(), status, "status of {shown}");
    assert_eq!(reply.content_type(), TEXT_PLAIN, "content type of {shown}");
    assert_eq!(reply.body, text, "body of {shown}");
    assert_resumable(reply);
}

/// Asserts the answer carries `Tus-Resumable: 1.0.0`.
#[track_caller]
pub fn assert_resumable(reply: &Reply) {
    assert_eq!(
        reply.header("tus-resumable"),
        Some(VERSION),
        "{}: {} without Tus-Resumable (headers {:?})",
        reply.request,
        reply.status,
        reply.headers
    );
}

/// A party's tus client: its bearer token on every request.
#[derive(Clone)]
pub struct TusClient {
    api: Api,
    token: String,
}

impl TusClient {
    /// A client of the broker behind `api` acting with `token`.
    pub fn new(api: &Api, token: &str) -> Self {
        Self {
            api: api.clone(),
            token: token.to_owned(),
        }
    }

    /// `method path` with the bearer token and `Tus-Resumable: 1.0.0`.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.unversioned(method, path)
            .header("tus-resumable", VERSION)
    }

    /// `method path` with the bearer token only, for a test to name another protocol version
    /// or none (reqwest adds a header a second time rather than replacing it).
    pub fn unversioned(&self, method: Method, path: &str) -> RequestBuilder {
        self.api.request(method, path).bearer_auth(&self.token)
    }

    /// Sends `request` (see [`Api::send`]: any 5xx panics).
    pub async fn send(&self, request: RequestBuilder) -> Reply {
        self.api.send(request).await
    }

    /// `OPTIONS path`.
    pub async fn options(&self, path: &str) -> Reply {
        self.send(self.request(Method::OPTIONS, path)).await
    }

    /// `POST` creating transfer `id`'s upload of `length` bytes.
    pub async fn create(&self, id: &str, length: u64) -> Reply {
        let request = self
            .request(Method::POST, &upload_path(id))
            .header("upload-length", length);
        self.send(request).await
    }

    /// `POST` creating transfer `id`'s upload of `length` bytes with `first` as its first bytes
    /// (creation-with-upload).
    pub async fn create_with_upload(&self, id: &str, length: u64, first: Vec<u8>) -> Reply {
        let request = self
            .request(Method::POST, &upload_path(id))
            .header("upload-length", length)
            .header("content-type", OFFSET_OCTET_STREAM)
            .body(first);
        self.send(request).await
    }

    /// `HEAD path`.
    pub async fn head(&self, path: &str) -> Reply {
        self.send(self.request(Method::HEAD, path)).await
    }

    /// The durable offset of the upload at `path`; panics unless HEAD answers 200.
    pub async fn offset(&self, path: &str) -> u64 {
        upload_offset(&self.head(path).await.expect_status(200))
    }

    /// The `PATCH path` request writing `body` at `offset`, for a test to add headers to.
    pub fn patch_request(
        &self,
        path: &str,
        offset: u64,
        body: impl Into<reqwest::Body>,
    ) -> RequestBuilder {
        self.request(Method::PATCH, path)
            .header("upload-offset", offset)
            .header("content-type", OFFSET_OCTET_STREAM)
            .body(body)
    }

    /// `PATCH path` writing `body` at `offset`.
    pub async fn patch(&self, path: &str, offset: u64, body: impl Into<reqwest::Body>) -> Reply {
        self.send(self.patch_request(path, offset, body)).await
    }

    /// `DELETE path` (termination).
    pub async fn terminate(&self, path: &str) -> Reply {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// Writes `whole[offset..]` to the upload at `path` in PATCHes of at most `chunk` bytes,
    /// starting at its durable offset (HEAD), each answered 204 with the offset moved on; a 423
    /// (another request still writing) is retried for a while. Returns the PATCHes sent.
    pub async fn patch_rest(&self, path: &str, whole: &[u8], chunk: usize) -> usize {
        let mut offset = self.offset(path).await;
        let deadline = tokio::time::Instant::now() + LOCKED_TIMEOUT;
        let mut patches = 0;
        while offset < whole.len() as u64 {
            let start = usize::try_from(offset).expect("an offset within the file");
            let end = whole.len().min(start + chunk);
            let reply = self.patch(path, offset, whole[start..end].to_vec()).await;
            if reply.status == 423 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
                offset = self.offset(path).await;
                continue;
            }
            let reply = reply.expect_status(204);
            assert_resumable(&reply);
            assert_eq!(upload_offset(&reply), end as u64, "{}", reply.request);
            offset = end as u64;
            patches += 1;
        }
        patches
    }

    /// Uploads `bytes` as transfer `id`'s file: creates the upload, then PATCHes it in chunks of
    /// at most `chunk` bytes; panics unless every step succeeds.
    pub async fn upload(&self, id: &str, bytes: &[u8], chunk: usize) {
        self.create(id, bytes.len() as u64).await.expect_status(201);
        self.patch_rest(&upload_path(id), bytes, chunk).await;
    }
}
