//! `GET /broker/api/v1/filetransfer/{id}/download`: the service's `Download` server stream as the
//! response body, chunk by chunk. The `Range` header is forwarded as sent; the service decides
//! what it means (one satisfiable range → 206, several or malformed → the whole file, a start
//! past the end → a 416 problem) and says so in the stream's first message.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use broker_common::Problem;
use broker_proto::filetransfer as pb;
use broker_proto::filetransfer::download_message::Message;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::{READ, Recipient, TransferId};
use crate::auth::Authorized;
use crate::clients::{authorized_request, call};
use crate::routes::openapi::{FileBytes, ProblemDetails};
use crate::state::AppState;

/// Downloads the file of a published transfer, whole or one byte range of it.
#[utoipa::path(get, path = "/broker/api/v1/filetransfer/{fileTransferId}/download",
    tag = "filetransfer",
    security(("bearer" = ["altinn:broker.read"])),
    params(
        ("fileTransferId" = uuid::Uuid, Path, description = "The file transfer's id (a UUID)"),
        ("Range" = Option<String>, Header, nullable = false,
            description = "One range: `bytes=a-b`, `bytes=a-` or `bytes=-n`"),
    ),
    responses(
        (status = 200, description = "The whole file", body = inline(FileBytes),
            content_type = "application/octet-stream",
            headers(
                ("Content-Disposition" = String, description = "`attachment` with the file name"),
                ("Accept-Ranges" = String, description = "`bytes`"),
            )),
        (status = 206, description = "The requested range", body = inline(FileBytes),
            content_type = "application/octet-stream",
            headers(
                ("Content-Range" = String, description = "`bytes a-b/total`"),
                ("Content-Disposition" = String, description = "`attachment` with the file name"),
                ("Accept-Ranges" = String, description = "`bytes`"),
            )),
        (status = 400, description = "The id is not a UUID", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body); or the \
            caller may not act for the party (a problem, code 6)",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing (no body), or the file is not \
            published (a problem, code 7)", body = ProblemDetails),
        (status = 404, description = "No such transfer, or the caller is not a recipient",
            body = ProblemDetails),
        (status = 416, description = "The range starts past the end of the file",
            body = ProblemDetails),
    ))]
pub async fn download(
    State(state): State<AppState>,
    caller: Authorized<Recipient>,
    TransferId(file_transfer_id): TransferId,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let range = headers
        .get(header::RANGE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    let request = authorized_request(&caller, &[READ], |principal| pb::DownloadRequest {
        principal: Some(principal),
        file_transfer_id,
        range,
    })?;
    let mut client = state.clients.filetransfer();
    let mut stream = call(client.download(request)).await?;
    let head = match stream.message().await.map_err(Problem::from)? {
        Some(pb::DownloadMessage {
            message: Some(Message::Header(head)),
        }) => *head,
        _ => return Err(protocol_violation()),
    };
    let chunks = stream.map(|message| match message?.message {
        Some(Message::Chunk(chunk)) => Ok(chunk),
        _ => Err(tonic::Status::internal(
            "a download message after the first was no chunk",
        )),
    });
    let mut response = Response::new(Body::from_stream(chunks));
    describe(&mut response, &head);
    Ok(response)
}

/// 502 for a service that broke the stream's contract.
fn protocol_violation() -> Problem {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "the file-transfer service did not start the download with its header",
    )
}

/// The status and headers of a download described by `head`.
fn describe(response: &mut Response, head: &pb::DownloadHeader) {
    let length = if head.total_size == 0 {
        0
    } else {
        (head.last_byte + 1).saturating_sub(head.first_byte)
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        super::attachment(&head.file_name),
    );
    if head.partial {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let range = format!(
            "bytes {}-{}/{}",
            head.first_byte, head.last_byte, head.total_size
        );
        if let Ok(value) = HeaderValue::try_from(range) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
}
