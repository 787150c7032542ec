//! The tus 1.0 requests of a resumable upload, on the transfer's own upload
//! (`/broker/api/v1/filetransfer/upload/tus/{fileTransferId}`): OPTIONS, POST (creation), HEAD
//! and PATCH, their headers, and the broker's plain-text refusals read into [`CliError::Tus`].
//!
//! Nothing here retries: what to do after a refusal is decided by the upload loop
//! (`commands/send/tus.rs`), which sees every refusal as a typed error.

use base64::Engine;
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};

use super::{Api, FILE_TRANSFERS};
use crate::error::{self, CliError};

/// The protocol version this client speaks.
pub const VERSION: &str = "1.0.0";
const TUS_RESUMABLE: &str = "Tus-Resumable";
const TUS_VERSION: &str = "Tus-Version";
const UPLOAD_LENGTH: &str = "Upload-Length";
const UPLOAD_OFFSET: &str = "Upload-Offset";
const UPLOAD_CHECKSUM: &str = "Upload-Checksum";
/// The only body type a PATCH may have.
const OFFSET_STREAM: &str = "application/offset+octet-stream";
/// How much of a refusal's text is kept.
const MESSAGE_CHARS: usize = 300;

/// Where the broker's copy of an upload stands, as HEAD reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upload {
    /// The bytes the broker holds durably.
    pub offset: u64,
    /// The upload's declared length.
    pub length: u64,
}

/// The path of transfer `id`'s upload.
pub fn upload_path(id: &str) -> String {
    format!("{FILE_TRANSFERS}/upload/tus/{id}")
}

/// An `Upload-Checksum` value: `md5 <base64 of the digest>`.
pub fn checksum_header(md5: &[u8]) -> String {
    format!(
        "md5 {}",
        base64::engine::general_purpose::STANDARD.encode(md5)
    )
}

impl Api {
    /// A tus request on transfer `id`'s upload, with `Tus-Resumable`.
    fn tus_request(&self, method: Method, id: &str) -> RequestBuilder {
        self.request(method, &upload_path(id))
            .header(TUS_RESUMABLE, VERSION)
    }

    /// Whether the broker takes tus 1.0 uploads for transfer `id` (OPTIONS): a broker without
    /// the endpoint answers 404 or 405.
    pub async fn tus_supported(&self, id: &str) -> Result<bool, CliError> {
        let response = self.tus_request(Method::OPTIONS, id).send().await?;
        match response.status() {
            status if status.is_success() => Ok(header_text(&response, TUS_VERSION)
                .is_some_and(|versions| versions.split(',').any(|v| v.trim() == VERSION))),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Ok(false),
            _ => Err(self.tus_refusal(response).await),
        }
    }

    /// Creates transfer `id`'s upload of `length` bytes (POST).
    pub async fn tus_create(&self, id: &str, length: u64) -> Result<(), CliError> {
        let response = self
            .tus_request(Method::POST, id)
            .header(UPLOAD_LENGTH, length)
            .send()
            .await?;
        if response.status() == StatusCode::CREATED {
            return Ok(());
        }
        Err(self.tus_refusal(response).await)
    }

    /// Where transfer `id`'s upload stands (HEAD); `None` when it has none yet.
    pub async fn tus_head(&self, id: &str) -> Result<Option<Upload>, CliError> {
        let response = self.tus_request(Method::HEAD, id).send().await?;
        match response.status() {
            StatusCode::OK => Ok(Some(Upload {
                offset: header_u64(&response, UPLOAD_OFFSET)?,
                length: header_u64(&response, UPLOAD_LENGTH)?,
            })),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.tus_refusal(response).await),
        }
    }

    /// Writes `body`, `length` bytes, at `offset` of transfer `id`'s upload (PATCH), with
    /// `checksum` as `Upload-Checksum` when given; returns the broker's new offset.
    pub async fn tus_patch(
        &self,
        id: &str,
        offset: u64,
        body: reqwest::Body,
        length: u64,
        checksum: Option<&str>,
    ) -> Result<u64, CliError> {
        let mut request = self
            .tus_request(Method::PATCH, id)
            .header(header::CONTENT_TYPE, OFFSET_STREAM)
            .header(header::CONTENT_LENGTH, length)
            .header(UPLOAD_OFFSET, offset);
        if let Some(checksum) = checksum {
            request = request.header(UPLOAD_CHECKSUM, checksum);
        }
        let response = request.body(body).send().await?;
        if response.status() == StatusCode::NO_CONTENT {
            return header_u64(&response, UPLOAD_OFFSET);
        }
        Err(self.tus_refusal(response).await)
    }

    /// The error for a refused tus request: a bare 401/403 or a problem as elsewhere, else the
    /// plain text tus servers answer with. A 401 forgets the cached token.
    async fn tus_refusal(&self, response: Response) -> CliError {
        let status = response.status();
        let challenge = header_text(&response, header::WWW_AUTHENTICATE.as_str());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(error) => return error.into(),
        };
        let error = match error::from_answer(status, challenge.as_deref(), &body) {
            CliError::Unexpected { .. } => CliError::Tus {
                status,
                message: plain_text(status, &body),
            },
            error => error,
        };
        self.check(&error);
        error
    }
}

/// A refusal's text, trimmed and cut short; the status's meaning when there is none.
fn plain_text(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return status.canonical_reason().unwrap_or("error").to_owned();
    }
    text.chars().take(MESSAGE_CHARS).collect()
}

/// Header `name` as text.
fn header_text(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Header `name` as a decimal count of bytes, which the answer must carry.
fn header_u64(response: &Response, name: &str) -> Result<u64, CliError> {
    header_text(response, name)
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| CliError::Unexpected {
            status: response.status(),
            body: format!("no readable {name} header"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_header_is_the_base64_md5() {
        use md5::Digest;
        // RFC 1321's test vector for "abc", and the tus checksum extension's format.
        let digest = md5::Md5::digest(b"abc");
        assert_eq!(checksum_header(&digest), "md5 kAFQmDzST7DWlj99KOF/cg==");
    }

    #[test]
    fn the_upload_is_the_transfers_own() {
        assert_eq!(
            upload_path("3f1c"),
            "/broker/api/v1/filetransfer/upload/tus/3f1c"
        );
    }

    #[test]
    fn refusals_keep_the_servers_words() {
        assert_eq!(
            plain_text(StatusCode::CONFLICT, b"Offset does not match file.\n"),
            "Offset does not match file."
        );
        assert_eq!(plain_text(StatusCode::NOT_FOUND, b""), "Not Found");
        assert_eq!(
            plain_text(StatusCode::BAD_REQUEST, &[b'x'; 1000]).len(),
            300
        );
    }
}
