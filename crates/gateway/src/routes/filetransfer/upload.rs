//! `POST /broker/api/v1/filetransfer/{id}/upload`: the raw body streamed into the service's
//! `Upload` client stream, and the streaming machinery the multipart upload shares.
//!
//! The body is never held whole: its frames are copied once into fixed-size chunks
//! ([`CHUNK_SIZE`]) so the service sees a steady stream of equal messages whatever size the
//! client's frames have.
//!
//! If the body fails (the client disconnected, or sent fewer bytes than its `Content-Length`),
//! the gRPC stream must fail too, so the service discards the partial upload. Cancelling the
//! call cannot say so: the client then resets the HTTP/2 stream with CANCEL, which tonic's
//! server reports as a clean end of the request stream. So the stream instead carries one
//! message larger than the client's own send limit ([`MESSAGE_LIMIT`]); the encoder refuses it
//! and the stream is reset with INTERNAL_ERROR, which the service sees as an error.

use std::fmt::Display;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use broker_common::Problem;
use broker_proto::common::Principal;
use broker_proto::filetransfer as pb;
use broker_proto::filetransfer::upload_message::Message;
use bytes::BytesMut;
use futures::{Stream, StreamExt};
use http::{HeaderMap, StatusCode, header};
use tokio::sync::oneshot;

use super::wire::FileTransferIdBody;
use super::{TransferId, WRITE};
use crate::auth::Authenticated;
use crate::clients::authorized_request;
use crate::routes::openapi::ProblemDetails;
use crate::state::AppState;

/// Bytes per gRPC chunk: big enough that per-message costs vanish, far below gRPC's 4 MiB
/// default message limit, and small enough that a few in flight keep memory flat.
pub const CHUNK_SIZE: usize = 512 * 1024;

/// The largest upload message sent: gRPC's default receive limit, which the service keeps.
const MESSAGE_LIMIT: usize = 4 * 1024 * 1024;

/// Uploads the file of an initialized transfer the caller sends.
#[utoipa::path(post, path = "/broker/api/v1/filetransfer/{fileTransferId}/upload",
    tag = "filetransfer",
    security(("bearer" = ["altinn:broker.write"])),
    params(("fileTransferId" = String, Path, description = "The file transfer's id (a UUID)")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The file's bytes"),
    responses(
        (status = 200, description = "Uploaded", body = FileTransferIdBody),
        (status = 400, description = "The id is not a UUID, the file is larger than the \
            resource allows, its checksum differs, or the body was cut short",
            body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing", body = ProblemDetails),
        (status = 404, description = "No such transfer, or the caller is not its sender",
            body = ProblemDetails),
        (status = 409, description = "The file was uploaded (or attempted) already",
            body = ProblemDetails),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Authenticated,
    TransferId(file_transfer_id): TransferId,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<FileTransferIdBody>, Problem> {
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let start = |principal| pb::UploadStart {
        principal: Some(principal),
        file_transfer_id,
        initialize: None,
        declared_length,
    };
    let id = send(&state, &caller, start, body.into_data_stream()).await?;
    Ok(Json(id.into()))
}

/// Streams `body` to the service's `Upload` after the start message `start` builds; the
/// service's answer, or a 400 if `body` fails before its end.
pub async fn send<S, E>(
    state: &AppState,
    caller: &Authenticated,
    start: impl FnOnce(Principal) -> pb::UploadStart,
    body: S,
) -> Result<pb::FileTransferId, Problem>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Display,
{
    let (abort, mut aborted) = oneshot::channel();
    let chunks = Rechunk::new(body, abort).map(|chunk| pb::UploadMessage {
        message: Some(Message::Chunk(chunk)),
    });
    let request = authorized_request(caller, &[WRITE], |principal| {
        let first = pb::UploadMessage {
            message: Some(Message::Start(Box::new(start(principal)))),
        };
        futures::stream::once(std::future::ready(first)).chain(chunks)
    })?;
    let mut client = state
        .clients
        .filetransfer()
        .max_encoding_message_size(MESSAGE_LIMIT);
    // No overall timeout: an upload takes as long as its bytes take to arrive.
    let answer = client.upload(request).await;
    if let Ok(reason) = aborted.try_recv() {
        // The call failed because the body did; the client is told why (if it still listens).
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the upload body ended early: {reason}"),
        ));
    }
    answer
        .map(tonic::Response::into_inner)
        .map_err(Problem::from)
}

/// A byte stream regrouped into [`CHUNK_SIZE`] chunks (the last may be shorter). When the
/// source fails, the reason goes to `abort` and the stream yields one chunk over
/// [`MESSAGE_LIMIT`], which fails the gRPC stream (see the module docs), and never ends.
struct Rechunk<S> {
    source: S,
    buffer: BytesMut,
    abort: Option<oneshot::Sender<String>>,
    ended: bool,
}

impl<S> Rechunk<S> {
    fn new(source: S, abort: oneshot::Sender<String>) -> Self {
        Self {
            source,
            buffer: BytesMut::new(),
            abort: Some(abort),
            ended: false,
        }
    }
}

impl<S, E> Stream for Rechunk<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = &mut *self;
        loop {
            if this.buffer.len() >= CHUNK_SIZE {
                return Poll::Ready(Some(this.buffer.split_to(CHUNK_SIZE).freeze()));
            }
            if this.ended {
                let rest = (!this.buffer.is_empty()).then(|| this.buffer.split().freeze());
                return Poll::Ready(rest);
            }
            if this.abort.is_none() {
                // Failed: the oversized chunk has ended the call.
                return Poll::Pending;
            }
            match ready!(this.source.poll_next_unpin(cx)) {
                Some(Ok(frame)) => {
                    if this.buffer.capacity() - this.buffer.len() < frame.len() {
                        // One allocation per chunk, reused until it is handed on.
                        this.buffer.reserve(CHUNK_SIZE.max(frame.len()));
                    }
                    this.buffer.extend_from_slice(&frame);
                }
                Some(Err(error)) => {
                    if let Some(abort) = this.abort.take() {
                        let _ = abort.send(error.to_string());
                    }
                    return Poll::Ready(Some(Bytes::from(vec![0; MESSAGE_LIMIT + 1])));
                }
                None => this.ended = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(sizes: &[usize]) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        let frames: Vec<Result<Bytes, String>> = sizes
            .iter()
            .enumerate()
            .map(|(i, size)| Ok(Bytes::from(vec![i as u8; *size])))
            .collect();
        futures::stream::iter(frames)
    }

    #[tokio::test]
    async fn regroups_frames_into_full_chunks_and_a_short_last_one() {
        let (abort, _aborted) = oneshot::channel();
        let sizes = [1000, CHUNK_SIZE, 3 * CHUNK_SIZE / 2, CHUNK_SIZE / 2 + 10];
        let chunks: Vec<Bytes> = Rechunk::new(frames(&sizes), abort).collect().await;
        let total: usize = sizes.iter().sum();
        let lengths: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        assert_eq!(
            lengths,
            [CHUNK_SIZE, CHUNK_SIZE, CHUNK_SIZE, total - 3 * CHUNK_SIZE]
        );
        let expected: Vec<u8> = sizes
            .iter()
            .enumerate()
            .flat_map(|(i, size)| std::iter::repeat_n(i as u8, *size))
            .collect();
        assert_eq!(chunks.concat(), expected);
    }

    #[tokio::test]
    async fn a_failing_source_signals_abort_sends_an_oversized_chunk_and_never_ends() {
        let (abort, aborted) = oneshot::channel();
        let source = futures::stream::iter(vec![Ok(Bytes::from_static(b"abc")), Err("gone")]);
        let mut chunks = Rechunk::new(source, abort);
        assert_eq!(chunks.next().await.unwrap().len(), MESSAGE_LIMIT + 1);
        let next = tokio::time::timeout(std::time::Duration::from_millis(50), chunks.next());
        assert!(next.await.is_err(), "the stream must stay pending");
        assert_eq!(aborted.await.unwrap(), "gone");
    }
}
