//! `POST /broker/api/v1/filetransfer/{id}/upload`: the raw body streamed into the service's
//! `Upload` client stream, and the streaming machinery the multipart upload and the tus PATCH
//! (`TusPatch`) share.
//!
//! The body is never held whole. Frames of at least [`PASS_THROUGH`] bytes go on as chunk
//! messages as they are; smaller ones are copied together into chunks of up to
//! [`CHUNK_SIZE`], so the service never sees a flood of tiny messages whatever the client's
//! frames, and a fast upload (whose frames are hyper's whole read buffer) is not copied here.
//!
//! A complete body ends the gRPC stream with an `end` message carrying the byte count. If the
//! body fails (the client disconnected, or sent fewer bytes than its `Content-Length`), the
//! stream ends without it, and the service discards the partial upload: a bare end of stream
//! is never taken for a finished upload, because a cancelled call can look just like one.

use std::fmt::Display;
use std::future::Ready;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use broker_common::Problem;
use broker_common::grpc::Channel;
use broker_proto::common::Principal;
use broker_proto::filetransfer as pb;
use broker_proto::filetransfer::file_transfer_service_client::FileTransferServiceClient;
use broker_proto::filetransfer::upload_message::Message;
use bytes::BytesMut;
use futures::stream::{Chain, Once};
use futures::{Stream, StreamExt};
use http::{HeaderMap, StatusCode, header};
use tokio::sync::oneshot;

use super::wire::FileTransferIdBody;
use super::{Sender, TransferId, WRITE};
use crate::auth::{Authenticated, Authorized};
use crate::clients::authorized_request;
use crate::routes::openapi::{FileBytes, ProblemDetails};
use crate::state::AppState;

/// Bytes per gRPC chunk: big enough that per-message costs vanish, far below gRPC's 4 MiB
/// default message limit, and small enough that a few in flight keep memory flat.
pub const CHUNK_SIZE: usize = 512 * 1024;
/// Frames at least this big are worth a message of their own: copying them costs more than
/// the message does.
const PASS_THROUGH: usize = 64 * 1024;

/// Uploads the file of an initialized transfer the caller sends.
#[utoipa::path(post, path = "/broker/api/v1/filetransfer/{fileTransferId}/upload",
    tag = "filetransfer",
    security(("bearer" = ["altinn:broker.write"])),
    params(("fileTransferId" = uuid::Uuid, Path, description = "The file transfer's id (a UUID)")),
    request_body(content = inline(FileBytes), content_type = "application/octet-stream",
        description = "The file's bytes"),
    responses(
        (status = 200, description = "Uploaded", body = FileTransferIdBody),
        (status = 400, description = "The id is not a UUID, the file is larger than the \
            resource allows, its checksum differs, or the body was cut short",
            body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body); or the \
            caller may not act for the party (a problem, code 6)",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing", body = ProblemDetails),
        (status = 404, description = "No such transfer, or the caller is not its sender",
            body = ProblemDetails),
        (status = 409, description = "The file was uploaded (or attempted) already",
            body = ProblemDetails),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Authorized<Sender>,
    TransferId(file_transfer_id): TransferId,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<FileTransferIdBody>, Problem> {
    let declared_length = declared_length(&headers);
    let messages = |principal| {
        let start = pb::UploadStart {
            principal: Some(principal),
            file_transfer_id,
            declared_length,
            ..pb::UploadStart::default()
        };
        (start, futures::stream::empty())
    };
    let id = send(
        &state,
        &caller,
        messages,
        body.into_data_stream(),
        |mut client, request| async move { client.upload(request).await },
    )
    .await?;
    Ok(Json(id.into()))
}

/// The body's length as its `Content-Length` declares it, if it does.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// The message stream [`send`] hands to the service: the start message, the body's chunks
/// and `end`, then the trailer.
pub type UploadStream<S, T> = Chain<Chain<Once<Ready<pb::UploadMessage>>, Rechunk<S>>, T>;

/// Streams `body` to the service between the two parts `messages` builds for the caller: the
/// start message, and what follows the `end` (nothing, but for a form whose metadata comes
/// after its file; should `body` fail, the stream has no `end` and the service keeps only what
/// its contract says of a cut stream, whatever follows). `rpc` makes the call on the stream
/// (`Upload`, or `TusPatch` for a tus PATCH). The service's answer, or a 400 if `body` fails
/// before its end.
pub async fn send<S, E, T, R, F>(
    state: &AppState,
    caller: &Authenticated,
    messages: impl FnOnce(Principal) -> (pb::UploadStart, T),
    body: S,
    rpc: impl FnOnce(FileTransferClient, tonic::Request<UploadStream<S, T>>) -> F,
) -> Result<R, Problem>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Display,
    T: Stream<Item = pb::UploadMessage> + Send + 'static,
    F: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
{
    let (abort, mut aborted) = oneshot::channel();
    let chunks = Rechunk::new(body, abort);
    let request = authorized_request(caller, &[WRITE], |principal| {
        let (start, trailer) = messages(principal);
        let first = pb::UploadMessage {
            message: Some(Message::Start(Box::new(start))),
        };
        futures::stream::once(std::future::ready(first))
            .chain(chunks)
            .chain(trailer)
    })?;
    // No overall timeout: an upload takes as long as its bytes take to arrive.
    let answer = rpc(state.clients.filetransfer(), request).await;
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

/// The client [`send`]'s `rpc` calls.
pub type FileTransferClient = FileTransferServiceClient<Channel>;

/// A byte stream as chunk messages of [`PASS_THROUGH`] to [`CHUNK_SIZE`] bytes (the last may
/// be shorter), then the `end` message with the total. When the source fails, the reason goes to `abort`
/// and the stream ends without the `end` message (see the module docs).
pub struct Rechunk<S> {
    source: S,
    buffer: BytesMut,
    abort: Option<oneshot::Sender<String>>,
    total: u64,
    state: Phase,
}

/// Where a [`Rechunk`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the source.
    Reading,
    /// The source ended: flush the buffer, then send `end`.
    Ended,
    /// Nothing more to send (after `end`, or after the source failed).
    Done,
}

/// A chunk message.
fn chunk(bytes: Bytes) -> pb::UploadMessage {
    pb::UploadMessage {
        message: Some(Message::Chunk(bytes)),
    }
}

impl<S> Rechunk<S> {
    fn new(source: S, abort: oneshot::Sender<String>) -> Self {
        Self {
            source,
            buffer: BytesMut::new(),
            abort: Some(abort),
            total: 0,
            state: Phase::Reading,
        }
    }
}

impl<S, E> Stream for Rechunk<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    type Item = pb::UploadMessage;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<pb::UploadMessage>> {
        let this = &mut *self;
        loop {
            if this.buffer.len() >= CHUNK_SIZE {
                return Poll::Ready(Some(chunk(this.buffer.split_to(CHUNK_SIZE).freeze())));
            }
            match this.state {
                Phase::Reading => {}
                Phase::Ended if !this.buffer.is_empty() => {
                    return Poll::Ready(Some(chunk(this.buffer.split().freeze())));
                }
                Phase::Ended => {
                    this.state = Phase::Done;
                    return Poll::Ready(Some(pb::UploadMessage {
                        message: Some(Message::End(pb::UploadEnd {
                            total_bytes: this.total,
                        })),
                    }));
                }
                Phase::Done => return Poll::Ready(None),
            }
            match ready!(this.source.poll_next_unpin(cx)) {
                Some(Ok(frame)) => {
                    this.total += frame.len() as u64;
                    if this.buffer.is_empty() && (PASS_THROUGH..=CHUNK_SIZE).contains(&frame.len())
                    {
                        return Poll::Ready(Some(chunk(frame)));
                    }
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
                    this.state = Phase::Done;
                    return Poll::Ready(None);
                }
                None => this.state = Phase::Ended,
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
        let mut messages: Vec<pb::UploadMessage> =
            Rechunk::new(frames(&sizes), abort).collect().await;
        let total: usize = sizes.iter().sum();
        let end = messages.pop().and_then(|message| message.message);
        assert_eq!(
            end,
            Some(Message::End(pb::UploadEnd {
                total_bytes: total as u64
            }))
        );
        let chunks: Vec<Bytes> = messages
            .into_iter()
            .map(|message| match message.message {
                Some(Message::Chunk(bytes)) => bytes,
                other => panic!("expected a chunk, got {other:?}"),
            })
            .collect();
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
    async fn big_frames_go_on_uncopied_and_small_ones_are_gathered() {
        let (abort, _aborted) = oneshot::channel();
        let sizes = [PASS_THROUGH, 100, 200, CHUNK_SIZE, 300_000];
        let source: Vec<Bytes> = frames(&sizes).map(Result::unwrap).collect::<Vec<_>>().await;
        let first = source[0].as_ptr();
        let messages: Vec<pb::UploadMessage> = Rechunk::new(
            futures::stream::iter(source.into_iter().map(Ok::<_, String>)),
            abort,
        )
        .collect()
        .await;
        let chunks: Vec<Bytes> = messages
            .into_iter()
            .filter_map(|message| match message.message {
                Some(Message::Chunk(bytes)) => Some(bytes),
                _ => None,
            })
            .collect();
        let lengths: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        // The first frame passes as it is; the small ones start a buffer that the next frames
        // fill to a whole chunk.
        assert_eq!(lengths, [PASS_THROUGH, CHUNK_SIZE, 100 + 200 + 300_000]);
        assert_eq!(chunks[0].as_ptr(), first, "the big frame was copied");
    }

    #[tokio::test]
    async fn a_failing_source_signals_abort_and_ends_without_the_end_message() {
        let (abort, aborted) = oneshot::channel();
        let source = futures::stream::iter(vec![Ok(Bytes::from_static(b"abc")), Err("gone")]);
        let messages: Vec<pb::UploadMessage> = Rechunk::new(source, abort).collect().await;
        assert!(
            messages
                .iter()
                .all(|message| !matches!(message.message, Some(Message::End(_)))),
            "an aborted body must not send `end`: {messages:?}"
        );
        assert_eq!(aborted.await.unwrap(), "gone");
    }
}
